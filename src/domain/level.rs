//! A warning level's id (预警级别): the id a playbook gives a level (`yellow`, `orange`, `red`), as
//! warnings, events, directives, assignments and the reduction list carry it.
//!
//! Playbooks define the levels, so the id is not an enum: [`LevelId`] is the id as written, stored
//! and sent as the bare string it always was (`#[serde(transparent)]`: the same JSON, YAML and CSV),
//! and compared with `&str` where code names a level. Its order and names come from the playbook
//! ([`crate::domain::playbook::Playbook::level`]); where the order travels with the id (a warning,
//! its pending change, a plan's steps and runs) [`Ranked`] holds both.

use std::borrow::Borrow;
use std::fmt;
use std::ops::Deref;

use serde::{Deserialize, Serialize};

/// A level's id as the playbook defines it (`orange`). Serialised as the bare string.
#[derive(Debug, Clone, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct LevelId(String);

impl LevelId {
    /// The id `id`.
    pub fn new(id: impl Into<String>) -> LevelId {
        LevelId(id.into())
    }

    /// The id as written.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl Deref for LevelId {
    type Target = str;

    fn deref(&self) -> &str {
        &self.0
    }
}

impl AsRef<str> for LevelId {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl Borrow<str> for LevelId {
    fn borrow(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for LevelId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl From<&str> for LevelId {
    fn from(id: &str) -> LevelId {
        LevelId(id.to_string())
    }
}

impl From<String> for LevelId {
    fn from(id: String) -> LevelId {
        LevelId(id)
    }
}

impl From<&String> for LevelId {
    fn from(id: &String) -> LevelId {
        LevelId(id.clone())
    }
}

impl From<&LevelId> for LevelId {
    fn from(id: &LevelId) -> LevelId {
        id.clone()
    }
}

impl From<LevelId> for String {
    fn from(id: LevelId) -> String {
        id.0
    }
}

impl PartialEq<str> for LevelId {
    fn eq(&self, other: &str) -> bool {
        self.0 == other
    }
}

impl PartialEq<&str> for LevelId {
    fn eq(&self, other: &&str) -> bool {
        self.0 == *other
    }
}

impl PartialEq<String> for LevelId {
    fn eq(&self, other: &String) -> bool {
        &self.0 == other
    }
}

impl PartialEq<LevelId> for str {
    fn eq(&self, other: &LevelId) -> bool {
        self == other.0
    }
}

impl PartialEq<LevelId> for &str {
    fn eq(&self, other: &LevelId) -> bool {
        *self == other.0
    }
}

impl PartialEq<LevelId> for String {
    fn eq(&self, other: &LevelId) -> bool {
        *self == other.0
    }
}

/// A level with its rank (a higher rank is a more severe level), as a warning, its pending change
/// and its plan's steps carry it: the rank recorded with the id is the pinned playbook's, so a later
/// playbook does not re-order the history. Stored as the two fields `level` and `rank` of the
/// record holding it (`#[serde(flatten)]`), as they always were.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Ranked {
    /// The level.
    #[serde(rename = "level")]
    pub id: LevelId,
    /// Its rank in the playbook that defined it.
    pub rank: u32,
}

impl Ranked {
    /// `id` at `rank`.
    pub fn new(id: impl Into<LevelId>, rank: u32) -> Ranked {
        Ranked { id: id.into(), rank }
    }
}

impl PartialEq<str> for Ranked {
    fn eq(&self, other: &str) -> bool {
        self.id == *other
    }
}

impl PartialEq<&str> for Ranked {
    fn eq(&self, other: &&str) -> bool {
        self.id == **other
    }
}

/// A ranked level reads as its id (`pb.level(&w.level)`, `needs(pb, &change.level)`).
impl Deref for Ranked {
    type Target = LevelId;

    fn deref(&self) -> &LevelId {
        &self.id
    }
}

impl fmt::Display for Ranked {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_id_is_stored_and_read_as_the_bare_string() {
        let id = LevelId::from("orange");
        assert_eq!(serde_json::to_string(&id).unwrap(), "\"orange\"");
        assert_eq!(serde_json::from_str::<LevelId>("\"orange\"").unwrap(), id);
        assert_eq!(serde_saphyr::from_str::<Vec<LevelId>>("[yellow, red]").unwrap(), ["yellow", "red"]);
        let mut csv = csv::Reader::from_reader("level,n\nred,1\n".as_bytes());
        let rows: Vec<(LevelId, u32)> = csv.deserialize().map(Result::unwrap).collect();
        assert_eq!(rows, [(LevelId::from("red"), 1)]);
        assert_eq!(id.to_string(), "orange");
        assert_eq!(id, "orange");
        assert_eq!("orange", id);
        assert_ne!(id, "red");
        assert!(id.starts_with("or"));
    }

    #[test]
    fn a_ranked_level_is_its_two_fields() {
        let r = Ranked::new("red", 3);
        assert_eq!(serde_json::to_string(&r).unwrap(), r#"{"level":"red","rank":3}"#);
    }
}
