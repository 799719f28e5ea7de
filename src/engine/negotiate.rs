//! Negotiated reductions (协商减排): an extra cut agreed with a large emitter for one episode, beyond
//! its list measures, recorded as its own action that the enterprise acknowledges from its own link
//! and that is chased, escalated and inspected like its measures.
//!
//! In: `POST /api/v1/warnings/{id}/negotiated` (staff) with
//! `{ "uscc": …, "commitment": "2#焦炉出焦时间延长至48小时", "reductions": { "so2": 0.4, "nox": 1.1 }, "note": … }`
//! (`reductions` in t/day, expected over the episode; at least one above 0), and
//! `GET /api/v1/warnings/{id}/negotiated` (staff). Out, in one transaction: a `negotiated_reduction_agreed`
//! record, an assignment round of its own track `n:{uscc}` (key `{warning}/n:{uscc}/{seq}`, so a level
//! change leaves it alone and a new agreement supersedes the old one; the warning's lift ends it) with
//! its own acknowledgement token, its reminder/overdue/escalation timers ([`crate::engine::escalate`]) and an email
//! to the enterprise (template `negotiated_issued`) with its link. The response carries the link too, for
//! staff who agreed it by phone.

use crate::engine::assign::{self, Assignment};

/// The commitment of a negotiated reduction; defined with the records that carry it
/// (`negotiated_reduction_agreed`).
pub use crate::store::events::Commitment;

impl Commitment {
    /// `减排量（吨/日）：SO2 0.4，NOx 1.1`.
    pub fn reductions_text(&self) -> String {
        let parts: Vec<String> = self
            .reductions
            .iter()
            .filter(|(_, x)| *x > 0.0)
            .map(|(p, x)| format!("{} {}", p.label(), crate::registry::fmt_num(x)))
            .collect();
        format!("协商减排量（吨/日）：{}", parts.join("，"))
    }
}

/// The negotiated reductions of a warning, every version (current ones `active`).
pub fn of_warning(r: &crate::store::ReadTx, warning_id: &str) -> Result<Vec<Assignment>, crate::store::StoreError> {
    let mut res = assign::Resolver::new(r);
    let mut out = Vec::new();
    for round in assign::rounds_of(r, warning_id)?.iter().filter(|r| !r.track.is_empty()) {
        for (i, e) in assign::entries(r, round, 0, usize::MAX)? {
            out.push(res.assignment(round, i, e)?);
        }
    }
    Ok(out)
}
