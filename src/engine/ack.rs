//! The progress of a warning's acknowledgements (回执), per region, and who is missing. The
//! acknowledgement itself arrives over HTTP (the web layer's `ack` pages).

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde_json::{Value, json};

use crate::domain::ack_step::AckStep;
use crate::engine::assign::{self, AssignmentStatus, Party};
use crate::engine::list;
use crate::notify::Roster;
use crate::store::{Store, StoreError};

/// Acknowledgement progress of one region.
#[derive(Debug, Default, Clone, serde::Serialize)]
pub struct Progress {
    /// Current assignments.
    pub assigned: usize,
    /// Received.
    pub received: usize,
    /// Measures in place.
    pub in_place: usize,
    /// Past the deadline without a "received".
    pub overdue: usize,
    /// Departments without a contact on the roster and without a "received": told nothing, so not
    /// counted overdue (无联系人).
    pub no_contact: usize,
    /// Received, but past the measures' start without "in place" (措施落实逾期).
    pub in_place_overdue: usize,
}

/// Progress per region (the party's county or department region) of a warning's current assignments,
/// and who is missing (not received), at most `missing_limit`.
pub fn progress_of(
    store: &Store,
    roster: &Roster,
    warning_id: &str,
    now: DateTime<Utc>,
    missing_limit: usize,
) -> Result<(BTreeMap<String, Progress>, Vec<Value>), StoreError> {
    store.read(|r| {
        let mut per: BTreeMap<String, Progress> = BTreeMap::new();
        let mut missing = Vec::new();
        let mut after = String::new();
        loop {
            let batch = assign::of_warning(r, warning_id, &after, 10_000)?;
            let Some(last) = batch.last() else { break };
            after = last.key.clone();
            for a in batch.into_iter().filter(|a| a.status == AssignmentStatus::Active) {
                let p = per.entry(assign::party_region(&a).to_string()).or_default();
                p.assigned += 1;
                let rec = a.has(AckStep::Received);
                p.received += usize::from(rec);
                p.in_place += usize::from(a.has(AckStep::InPlace));
                p.in_place_overdue += usize::from(
                    rec && !a.has(AckStep::InPlace) && now > a.in_place_by(),
                );
                if !rec {
                    let no_contact = match &a.party {
                        Party::Department { id, region, .. } => roster.department_contacts(*region, id).is_empty(),
                        Party::Enterprise { .. } => false,
                    };
                    let overdue = !no_contact && now > a.ack_deadline;
                    p.overdue += usize::from(overdue);
                    p.no_contact += usize::from(no_contact);
                    if missing.len() < missing_limit {
                        let contact = match &a.party {
                            Party::Enterprise { uscc, .. } => list::enterprise(r, uscc)?.map(|e| {
                                let c = e.responsible().map(|c| json!({ "name": c.name, "phone": c.phone.as_str(), "email": c.email.as_ref().map(|m| m.as_str().to_string()) }));
                                json!({ "name": e.name, "contact": c })
                            }),
                            Party::Department { id, name, region } => {
                                let c = roster
                                    .department_contacts(*region, id)
                                    .first()
                                    .map(|c| json!({ "name": c.name, "phone": c.phone, "email": c.email }));
                                Some(json!({ "name": name, "contact": c }))
                            }
                        };
                        missing.push(json!({ "assignment": a.key, "party": a.party, "deadline": a.ack_deadline, "in_place_deadline": a.in_place_by(), "overdue": overdue, "no_contact": no_contact, "who": contact }));
                    }
                }
            }
        }
        Ok((per, missing))
    })
}
