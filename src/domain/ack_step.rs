//! The two acknowledgements (回执) an enterprise or a department gives for its assignment: first
//! "received" (收到), then "measures in place" (措施已落实). Stored and sent as `received` and
//! `in_place`.

use serde::{Deserialize, Serialize};

/// One acknowledgement step.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AckStep {
    /// 收到: the notice reached the party.
    Received,
    /// 措施已落实: the measures are in place (per line, with a note).
    InPlace,
}

impl AckStep {
    /// Both, in the order they are given.
    pub const ALL: [AckStep; 2] = [AckStep::Received, AckStep::InPlace];

    /// The name in data and URLs: `received`, `in_place`.
    pub fn as_str(self) -> &'static str {
        match self {
            AckStep::Received => "received",
            AckStep::InPlace => "in_place",
        }
    }

    /// From its name.
    pub fn parse(s: &str) -> Option<AckStep> {
        AckStep::ALL.into_iter().find(|k| k.as_str() == s)
    }

    /// As duty staff and enterprises read it when given: 已收到, 措施已落实.
    pub fn done_zh(self) -> &'static str {
        match self {
            AckStep::Received => "已收到",
            AckStep::InPlace => "措施已落实",
        }
    }
}

impl std::fmt::Display for AckStep {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_step_is_stored_under_its_old_name() {
        for k in AckStep::ALL {
            assert_eq!(serde_json::to_string(&k).unwrap(), format!("\"{}\"", k.as_str()));
            assert_eq!(AckStep::parse(k.as_str()), Some(k));
        }
        assert_eq!(AckStep::parse("in place"), None);
    }
}
