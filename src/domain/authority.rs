//! Who may do what: every write by staff is decided by the live playbooks and the role on the
//! staff member's token (never by a name or a role typed in a request).
//!
//! | write | needs |
//! |---|---|
//! | sign a proposal or a level change (adjust) | a role that may sign that level (`Playbook::may_sign`) |
//! | lift or cancel a warning | a role that may sign the highest level the warning holds or awaits, in the playbook governing it |
//! | issue or lift a directive | a role that may sign its `min_level` in the playbook of the issuing tier (`issued_by`): the head for red |
//! | record or lift a warning from above (上级预警) | as for a directive at its highest level (through the inbox: none, the folder is the authority) |
//! | reload playbooks, roster, templates | the highest role of the root (province) playbook — `head` in the shipped ones |
//! | inspections, negotiated reductions | a role the root playbook defines (`duty_officer` and above) |
//! | forecasts, consultations on demand | any staff token |
//!
//! A refusal is [`Refusal`]: a message naming the role needed, answered 403.

use crate::domain::playbook::{Playbook, PlaybookSet, SignOff};

/// Why a write was refused (403), naming the role needed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal(pub String);

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// The role a level's sign-off needs in `pb` (`None`: automatic).
fn signer_of(pb: &Playbook, level: &str) -> Option<String> {
    match pb.level(level).map(|l| &l.sign_off) {
        Some(SignOff::Role(r)) => Some(r.clone()),
        _ => None,
    }
}

/// Whether `role` may act on (`what`: "lift", "cancel", "issue a directive at") a `level` under `pb`.
pub fn may_act(pb: &Playbook, level: &str, role: &str, what: &str) -> Result<(), Refusal> {
    if pb.may_sign(level, role) {
        return Ok(());
    }
    let needs = signer_of(pb, level).unwrap_or_else(|| format!("a role of playbook {}", pb.pin()));
    Err(Refusal(format!(
        "role \"{role}\" may not {what} a {level} warning: needs role \"{needs}\" or higher (playbook {})",
        pb.pin()
    )))
}

/// The highest role of the root playbooks: who may reload them.
pub fn top_role(set: &PlaybookSet) -> Option<(String, u32)> {
    set.roots()
        .flat_map(|p| p.roles.iter())
        .max_by_key(|r| r.rank)
        .map(|r| (r.id.clone(), r.rank))
}

/// Rank of `role` in the root playbooks (the highest if several define it).
fn root_rank(set: &PlaybookSet, role: &str) -> Option<u32> {
    set.roots().filter_map(|p| p.role(role)).map(|r| r.rank).max()
}

/// Reload (and any list import over HTTP): the highest staff role of the root playbook.
pub fn require_top(set: &PlaybookSet, role: &str, what: &str) -> Result<(), Refusal> {
    let Some((top, rank)) = top_role(set) else {
        return Err(Refusal(format!("no playbook defines roles; nobody may {what}")));
    };
    match root_rank(set, role) {
        Some(r) if r >= rank => Ok(()),
        _ => Err(Refusal(format!(
            "role \"{role}\" may not {what}: needs role \"{top}\" (the highest staff role)"
        ))),
    }
}

/// Inspections and negotiated reductions: any role the root playbook defines.
pub fn require_staff_role(set: &PlaybookSet, role: &str, what: &str) -> Result<(), Refusal> {
    if root_rank(set, role).is_some() {
        return Ok(());
    }
    let lowest = set
        .roots()
        .flat_map(|p| p.roles.iter())
        .min_by_key(|r| r.rank)
        .map_or_else(|| "a playbook role".to_string(), |r| format!("role \"{}\"", r.id));
    Err(Refusal(format!(
        "role \"{role}\" may not {what}: needs {lowest} or higher (a role the playbook defines)"
    )))
}
