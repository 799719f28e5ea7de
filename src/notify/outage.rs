//! Store outages told to the duty staff: while writes fail (disk full, I/O errors) nothing can be
//! recorded, so the store keeps the outage ([`crate::store::Store::take_outages`]) and this loop, once
//! a commit works again, records it (`store_outage`) and queues a `store_fault` notice to the duty
//! staff of the province (the root region) in the same transaction. During the outage it is logged
//! at error level on every failed attempt, and `/healthz` answers 503 with the reason.

use std::sync::Arc;
use std::time::Duration;

use serde_json::json;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use super::NotifyStage;
use super::stage::{EventNotice, local};
use crate::clock::Clock;
use crate::domain::region::Regions;
use crate::store::Store;
use crate::store::events::{Event, StoreOutage};
use crate::store::{Outage, RecordBody};

/// How often the loop asks the store for ended outages.
const EVERY: Duration = Duration::from_millis(500);

/// Runs until `cancel` fires.
pub async fn run(store: Store, clock: Clock, regions: &'static Regions, stage: Arc<NotifyStage>, cancel: CancellationToken) {
    let mut waiting: Vec<Outage> = Vec::new();
    loop {
        tokio::select! {
            () = cancel.cancelled() => break,
            () = tokio::time::sleep(EVERY) => {}
        }
        waiting.extend(store.take_outages());
        if waiting.is_empty() {
            continue;
        }
        // The job recording them: how many outages and since when.
        let since = waiting.iter().map(|o| o.since).min().map(|t| t.to_rfc3339());
        let span = tracing::info_span!("job", kind = "outage", outages = waiting.len(), since = since.as_deref());
        let outages = waiting.clone();
        let stage = stage.clone();
        let now = clock.now();
        let root = regions.all().find(|r| r.parent.is_none()).map(|r| r.code);
        let written = store
            .write::<_, crate::store::StoreError, _>(move |tx| {
                for o in &outages {
                    let outage = StoreOutage {
                        cause: cause_of(&o.reason).into(),
                        minutes: (o.until - o.since).num_minutes(),
                        reason: o.reason.clone(),
                        refused: o.refused,
                        since: local(o.since),
                        until: local(o.until),
                    };
                    let rec = tx.append(now, "store", None, RecordBody::Other(Event::StoreOutage(outage.clone())))?;
                    let Some(region) = root else { continue };
                    let base = stage.public_url.trim_end_matches('/');
                    let mut ctx = json!({
                        "event": "store_fault",
                        "region": region,
                        "region_name": stage.regions.name(region),
                        "at": local(now),
                        "outage": outage,
                        "dashboard_url": format!("{base}/"),
                    });
                    ctx["outage"]["seq"] = json!(rec.seq);
                    let key = rec.seq.to_string();
                    stage.notify_event(
                        tx,
                        now,
                        EventNotice {
                            event: "store_fault",
                            region,
                            key,
                            cause: "store",
                            data: ctx,
                            signer_role: None,
                            exclude: None,
                            playbook: None,
                        },
                    )?;
                }
                Ok(())
            })
            .instrument(span.clone())
            .await;
        let _in = span.enter();
        match written {
            Ok(()) => {
                tracing::warn!(count = waiting.len(), "store outage recorded; the duty staff are told");
                waiting.clear();
            }
            Err(e) => tracing::error!(error = %e, "cannot record the store outage yet; trying again"),
        }
    }
}

/// The error in words for the duty staff (the error itself stays in the record and the log).
fn cause_of(reason: &str) -> &'static str {
    if reason.contains("os error 28") || reason.contains("No space left") {
        "磁盘空间已满"
    } else if reason.contains("os error 122") || reason.contains("quota") {
        "磁盘配额已用尽"
    } else {
        "磁盘读写错误"
    }
}
