//! The notice each new enterprise assignment sends: its measures line by line, the period, the
//! deadline and the acknowledgement link — queued in the outbox in the same transaction that makes
//! the assignment (an [`crate::assign::OnAssigned`] hook), rendered and mailed by the notifier.
//!
//! Departments have no address on the list; their duties reach them through the roster routes.

use std::sync::Arc;

use serde_json::json;

use crate::assign::{Assignment, OnAssigned, Party};
use crate::escalate::{enterprise_recipient, task_json};
use crate::notify::{AssignmentNotice, enqueue_for_assignment};
use crate::region::Regions;
use crate::registry::Defaults;
use crate::store::{StoreError, Tx};

/// The hook: one `assignment_issued` email per new enterprise assignment (a level change makes a new
/// assignment, and so a new notice).
pub fn hook(defaults: Arc<Defaults>, regions: &'static Regions, public_url: String) -> Arc<OnAssigned> {
    let base = public_url.trim_end_matches('/').to_string();
    Arc::new(move |tx: &mut Tx<'_>, a: &Assignment, token: &str| -> Result<(), StoreError> {
        let Party::Enterprise { uscc, .. } = &a.party else { return Ok(()) };
        let Some(county) = tx.doc::<String>(crate::list::BY_USCC, uscc)? else {
            return Ok(());
        };
        let Some(e) = tx.doc::<crate::registry::Enterprise>(crate::list::ENTERPRISES, &format!("{county}/{uscc}"))? else {
            return Ok(());
        };
        let Some(to) = enterprise_recipient(&e) else { return Ok(()) };
        let mut data = task_json(&defaults, &e, a);
        data["event"] = json!("assignment_issued");
        data["recipient"] = json!({ "name": to.name });
        data["ack_url"] = json!(format!("{base}/ack/{token}"));
        data["region_name"] = json!(regions.name(a.warning_region));
        data["level_name"] = json!(defaults.level(&a.level).map_or(a.level.clone(), |l| l.name.clone()));
        let notice = AssignmentNotice {
            assignment_id: a.key.clone(),
            kind: "issued".into(),
            to,
            template: "assignment_issued".into(),
            data,
            region: Some(a.warning_region),
        };
        enqueue_for_assignment(tx, a.created_at, notice)?;
        Ok(())
    })
}
