//! The hook for later stages of the pipeline (assignments, the notification outbox): called inside
//! the transaction that records lifecycle events.

use chrono::{DateTime, Utc};

use super::{StoreError, Tx};
use crate::domain::playbook::Playbook;
use crate::domain::warning::{Event, RegionState};

/// A later stage of the pipeline that acts on lifecycle events in the same transaction that records
/// them (assignments, the notification outbox): a crash can never leave a warning without its
/// consequences, nor consequences without their warning.
pub trait Stage: Send + Sync {
    /// Called once per lifecycle step that produced events, after they are appended.
    fn on_warning_events(
        &self,
        tx: &mut Tx<'_>,
        now: DateTime<Utc>,
        events: &[Event],
        state: &RegionState,
        playbook: &Playbook,
    ) -> Result<(), StoreError>;
}
