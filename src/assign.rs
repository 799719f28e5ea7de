//! Assignments (一厂一策 in force): when a warning is issued, changed or lifted, every enterprise on the
//! list in its region, and every department with duties at that level, gets an assignment — written in
//! the same transaction as the warning event, so a crash can never show one without the other.
//!
//! In: lifecycle events (through [`Stage`]), the stored list ([`crate::list`]), the measure defaults
//! (acknowledgement deadline and department duties per level). Out: assignment documents with their
//! acknowledgement token index. A level change supersedes the old assignment with a new one; a lift or
//! cancel ends them. The measures themselves are not copied: they follow from the enterprise's record
//! and the defaults ([`crate::registry::Defaults::measures_for`]) when shown or mailed, which keeps a
//! province-wide red warning to a few small writes per enterprise.
//!
//! An enterprise follows the most specific region with a live warning: a city's warning skips the
//! enterprises of a county that has its own.

use std::collections::HashMap;
use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::engine::Stage;
use crate::list::{ENTERPRISES, region_prefix};
use crate::playbook::Playbook;
use crate::region::{RegionCode, Regions};
use crate::registry::Defaults;
use crate::store::{ReadTx, RecordBody, StoreError, Tx};
use crate::warning::{Event, EventKind, RegionState, Status};

/// Assignment documents, key `{warning id}/{party}/{seq:012}`.
pub const ASSIGNMENTS: &str = "assignments";
/// The current assignment of a party in a warning, key `{warning id}/{party}` → assignment key.
pub const CURRENT: &str = "assignment_current";
/// A party's assignments, key `{party}/{warning id}/{seq:012}` → assignment key.
pub const BY_PARTY: &str = "assignment_by_party";
/// Acknowledgement tokens, key SHA-256 hex of the token → assignment key.
pub const TOKENS: &str = "ack_tokens";

/// Who is assigned.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Party {
    /// An enterprise on the list.
    Enterprise { uscc: String, county: RegionCode },
    /// A department (住建, 交通 …) of the warning's region.
    Department { id: String, name: String, region: RegionCode },
}

impl Party {
    /// The key part naming the party: `e:{uscc}` or `d:{region}:{id}`.
    pub fn key(&self) -> String {
        match self {
            Party::Enterprise { uscc, .. } => format!("e:{uscc}"),
            Party::Department { id, region, .. } => format!("d:{region}:{id}"),
        }
    }
}

/// Where an assignment is in its life.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum AssignmentStatus {
    /// In force.
    Active,
    /// Replaced by a newer assignment (the level changed).
    Superseded { by: String, at: DateTime<Utc> },
    /// The warning ended.
    Ended { at: DateTime<Utc> },
}

/// One acknowledgement step.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ack {
    /// `received` (收到) or `in_place` (措施已落实).
    pub step: String,
    /// When.
    pub at: DateTime<Utc>,
    /// Name given.
    pub name: String,
    /// Phone given.
    pub phone: String,
    /// Lines confirmed (in_place), if given per line.
    #[serde(default)]
    pub lines: Vec<String>,
    /// Note.
    #[serde(default)]
    pub note: String,
    /// Client address and user agent.
    pub ip: String,
    /// User agent.
    pub user_agent: String,
}

/// An assignment: a party's duty under one level of one warning.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Assignment {
    /// Its key.
    pub key: String,
    /// The warning.
    pub warning_id: String,
    /// The warning's region.
    pub warning_region: RegionCode,
    /// Who.
    pub party: Party,
    /// The level.
    pub level: String,
    /// From when the measures apply (the warning start).
    pub applies_from: DateTime<Utc>,
    /// Acknowledge by.
    pub ack_deadline: DateTime<Utc>,
    /// When it was made.
    pub created_at: DateTime<Utc>,
    /// Status.
    pub status: AssignmentStatus,
    /// Acknowledgements, in order.
    #[serde(default)]
    pub acks: Vec<Ack>,
    /// Department duty text (departments only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duty: Option<String>,
    /// A negotiated reduction (协商减排) instead of the list's measures (see [`crate::negotiate`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub negotiated: Option<crate::negotiate::Commitment>,
}

impl Assignment {
    /// Whether the step was acknowledged.
    pub fn has(&self, step: &str) -> bool {
        self.acks.iter().any(|a| a.step == step)
    }
}

/// Makes and checks acknowledgement tokens: HMAC-SHA256 of the assignment key with a server secret,
/// 128 bits as 32 hex digits. Only their SHA-256 is stored; the mailer derives the token again from the key.
#[derive(Clone)]
pub struct TokenKey([u8; 32]);

impl TokenKey {
    /// From secret bytes.
    pub fn new(secret: [u8; 32]) -> TokenKey {
        TokenKey(secret)
    }

    /// The token of an assignment.
    pub fn token(&self, assignment_key: &str) -> String {
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&self.0).unwrap_or_else(|_| unreachable_hmac());
        mac.update(assignment_key.as_bytes());
        let bytes = mac.finalize().into_bytes();
        hex::encode(&bytes[..16])
    }
}

fn unreachable_hmac() -> Hmac<Sha256> {
    // HMAC accepts keys of any length; this is never called.
    <Hmac<Sha256> as Mac>::new_from_slice(b"k").expect("HMAC takes any key length")
}

/// SHA-256 hex of a token, as stored.
pub fn token_hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// Reads the token secret from `HAZEFLOW_TOKEN_KEY` (64 hex digits) or `{data_dir}/token.key`,
/// creating the file (mode 0600) on first start.
pub fn load_token_key(data_dir: &std::path::Path) -> anyhow::Result<TokenKey> {
    use anyhow::Context;
    let parse = |s: &str| -> Option<[u8; 32]> { hex::decode(s.trim()).ok().and_then(|v| v.try_into().ok()) };
    if let Ok(v) = std::env::var("HAZEFLOW_TOKEN_KEY") {
        return parse(&v).map(TokenKey).context("HAZEFLOW_TOKEN_KEY must be 64 hex digits");
    }
    let path = data_dir.join("token.key");
    if let Ok(text) = std::fs::read_to_string(&path) {
        return parse(&text)
            .map(TokenKey)
            .with_context(|| format!("{} must hold 64 hex digits", path.display()));
    }
    std::fs::create_dir_all(data_dir)?;
    let secret: [u8; 32] = rand::random();
    let tmp = data_dir.join("token.key.tmp");
    std::fs::write(&tmp, hex::encode(secret))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(0o600))?;
    }
    std::fs::rename(&tmp, &path)?;
    Ok(TokenKey(secret))
}

/// Called for every assignment made, in the same transaction (the notification outbox hooks here).
pub type OnAssigned = dyn Fn(&mut Tx<'_>, &Assignment, &str) -> Result<(), StoreError> + Send + Sync;

/// The stage that makes assignments from lifecycle events.
pub struct AssignStage {
    /// Measure defaults: deadlines and department duties per level.
    pub defaults: Arc<Defaults>,
    /// Token secret.
    pub tokens: TokenKey,
    /// The region table.
    pub regions: &'static Regions,
    /// Hooks run for each new assignment, given its token (notifications).
    pub on_assigned: Vec<Arc<OnAssigned>>,
}

impl Stage for AssignStage {
    fn on_warning_events(
        &self,
        tx: &mut Tx<'_>,
        now: DateTime<Utc>,
        events: &[Event],
        state: &RegionState,
        _pb: &Playbook,
    ) -> Result<(), StoreError> {
        let Some(w) = &state.warning else { return Ok(()) };
        let seq = tx.last_seq()?;
        for e in events {
            match &e.kind {
                EventKind::Issued { level, start, .. } => self.assign_all(tx, now, seq, &w.id, w.region, level, *start)?,
                EventKind::LevelChanged { to, .. } if matches!(w.status, Status::Issued | Status::Active) => {
                    self.assign_all(tx, now, seq, &w.id, w.region, to, w.start)?
                }
                EventKind::Lifted | EventKind::Cancelled => self.end_all(tx, now, &w.id)?,
                _ => {}
            }
        }
        Ok(())
    }
}

impl AssignStage {
    /// The parties of a warning region: enterprises under it (minus counties with their own live
    /// warning) and the departments with duties at `level`.
    fn parties(&self, tx: &Tx<'_>, region: RegionCode, level: &str) -> Result<Vec<(Party, Option<String>)>, StoreError> {
        let mut out = Vec::new();
        let mut own_warning: HashMap<String, bool> = HashMap::new();
        let prefix = region_prefix(region);
        let mut after = String::new();
        loop {
            let keys = tx.doc_keys(ENTERPRISES, &prefix, &after, 10_000)?;
            let Some(last) = keys.last() else { break };
            after = last.clone();
            for k in keys {
                let Some((county, uscc)) = k.split_once('/') else { continue };
                let Ok(county) = RegionCode::parse(county) else { continue };
                if county != region {
                    let has_own = match own_warning.get(county.to_string().as_str()) {
                        Some(v) => *v,
                        None => {
                            let v = tx
                                .region_state(county)?
                                .live()
                                .is_some_and(|w| matches!(w.status, Status::Issued | Status::Active));
                            own_warning.insert(county.to_string(), v);
                            v
                        }
                    };
                    if has_own {
                        continue;
                    }
                }
                out.push((
                    Party::Enterprise {
                        uscc: uscc.to_string(),
                        county,
                    },
                    None,
                ));
            }
        }
        for (d, duty) in self.defaults.duties(level) {
            out.push((
                Party::Department {
                    id: d.id.clone(),
                    name: d.name.clone(),
                    region,
                },
                Some(duty.to_string()),
            ));
        }
        Ok(out)
    }

    #[allow(clippy::too_many_arguments)]
    fn assign_all(
        &self,
        tx: &mut Tx<'_>,
        now: DateTime<Utc>,
        seq: u64,
        warning_id: &str,
        region: RegionCode,
        level: &str,
        start: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let deadline = now + self.defaults.ack_deadline(level).unwrap_or_else(|| Duration::hours(6));
        let parties = self.parties(tx, region, level)?;
        // Bulk reads and writes: one table open per collection, not per document (a province-wide
        // red warning makes hundreds of thousands of assignments in this one transaction).
        let current_keys: Vec<String> = parties.iter().map(|(p, _)| format!("{warning_id}/{}", p.key())).collect();
        let old_keys: Vec<Option<String>> = tx.get_docs(CURRENT, &current_keys)?;
        let old_keys_present: Vec<String> = old_keys.iter().flatten().cloned().collect();
        let olds: Vec<Option<Assignment>> = tx.get_docs(ASSIGNMENTS, &old_keys_present)?;
        let mut assignments: Vec<(String, Assignment)> = Vec::with_capacity(parties.len() + olds.len());
        let mut superseded: Vec<(String, Assignment)> = Vec::new();
        let mut current: Vec<(String, String)> = Vec::with_capacity(parties.len());
        let mut by_party: Vec<(String, String)> = Vec::with_capacity(parties.len());
        let mut tokens: Vec<(String, String)> = Vec::with_capacity(parties.len());
        let mut made: Vec<(Assignment, String)> = Vec::with_capacity(parties.len());
        let mut old_by_current: HashMap<&str, Assignment> = HashMap::new();
        for (ck, old) in current_keys.iter().zip(old_keys.iter()) {
            if let Some(ok) = old
                && let Some(pos) = old_keys_present.iter().position(|k| k == ok)
                && let Some(Some(a)) = olds.get(pos)
            {
                old_by_current.insert(ck.as_str(), a.clone());
            }
        }
        for ((party, duty), current_key) in parties.into_iter().zip(current_keys.iter()) {
            let pk = party.key();
            let key = format!("{warning_id}/{pk}/{seq:012}");
            if let Some(mut old) = old_by_current.remove(current_key.as_str())
                && old.status == AssignmentStatus::Active
            {
                old.status = AssignmentStatus::Superseded { by: key.clone(), at: now };
                superseded.push((old.key.clone(), old));
            }
            let a = Assignment {
                key: key.clone(),
                warning_id: warning_id.to_string(),
                warning_region: region,
                party,
                level: level.to_string(),
                applies_from: start,
                ack_deadline: deadline,
                created_at: now,
                status: AssignmentStatus::Active,
                acks: Vec::new(),
                duty,
                negotiated: None,
            };
            let token = self.tokens.token(&key);
            current.push((current_key.clone(), key.clone()));
            by_party.push((format!("{pk}/{warning_id}/{seq:012}"), key.clone()));
            tokens.push((token_hash(&token), key.clone()));
            assignments.push((key, a.clone()));
            made.push((a, token));
        }
        assignments.extend(superseded);
        tx.put_docs(ASSIGNMENTS, &assignments)?;
        tx.put_docs(CURRENT, &current)?;
        tx.put_docs(BY_PARTY, &by_party)?;
        tx.put_docs(TOKENS, &tokens)?;
        for (a, token) in &made {
            for hook in &self.on_assigned {
                hook(tx, a, token)?;
            }
        }
        tx.append(
            now,
            "assign",
            None,
            RecordBody::Other {
                kind: "assignments_made".into(),
                data: serde_json::json!({ "warning_id": warning_id, "level": level, "count": made.len() }),
            },
        )?;
        Ok(())
    }

    fn end_all(&self, tx: &mut Tx<'_>, now: DateTime<Utc>, warning_id: &str) -> Result<(), StoreError> {
        let prefix = format!("{warning_id}/");
        let mut after = String::new();
        let mut ended = 0u64;
        loop {
            let batch = tx.docs::<String>(CURRENT, &prefix, &after, 10_000)?;
            let Some((last, _)) = batch.last() else { break };
            after = last.clone();
            for (_, key) in batch {
                if let Some(mut a) = tx.doc::<Assignment>(ASSIGNMENTS, &key)?
                    && a.status == AssignmentStatus::Active
                {
                    a.status = AssignmentStatus::Ended { at: now };
                    tx.put_doc(ASSIGNMENTS, &key, &a)?;
                    ended += 1;
                }
            }
        }
        tx.append(
            now,
            "assign",
            None,
            RecordBody::Other {
                kind: "assignments_ended".into(),
                data: serde_json::json!({ "warning_id": warning_id, "count": ended }),
            },
        )?;
        Ok(())
    }
}

/// Assignments of a warning (current ones only when `current_only`), optionally of one region (the
/// enterprise's county or the department's region, or anything below it), paged by key.
pub fn of_warning(r: &ReadTx, warning_id: &str, after: &str, limit: usize) -> Result<Vec<Assignment>, StoreError> {
    Ok(r.docs::<Assignment>(ASSIGNMENTS, &format!("{warning_id}/"), after, limit)?
        .into_iter()
        .map(|(_, a)| a)
        .collect())
}

/// A party's assignments, newest last.
pub fn of_party(r: &ReadTx, party_key: &str) -> Result<Vec<Assignment>, StoreError> {
    let keys = r.docs::<String>(BY_PARTY, &format!("{party_key}/"), "", usize::MAX)?;
    let mut out = Vec::new();
    for (_, k) in keys {
        if let Some(a) = r.doc::<Assignment>(ASSIGNMENTS, &k)? {
            out.push(a);
        }
    }
    out.sort_by_key(|a| a.created_at);
    Ok(out)
}

/// The assignment a token belongs to.
pub fn by_token(r: &ReadTx, token: &str) -> Result<Option<Assignment>, StoreError> {
    match r.doc::<String>(TOKENS, &token_hash(token))? {
        Some(k) => r.doc(ASSIGNMENTS, &k),
        None => Ok(None),
    }
}

/// The region an assignment's party belongs to.
pub fn party_region(a: &Assignment) -> RegionCode {
    match &a.party {
        Party::Enterprise { county, .. } => *county,
        Party::Department { region, .. } => *region,
    }
}
