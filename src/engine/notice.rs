//! The notice each new enterprise or department assignment sends: its measures line by line (or the
//! department's duty), the period, the deadline and the acknowledgement link.
//!
//! A round of assignments can name 300,000 enterprises; rendering and queuing that many messages
//! inside the warning's transaction would hold up the warning itself. So the round's transaction
//! queues one *fan-out* (an [`crate::engine::assign::OnRound`] hook): a document saying "notify every
//! enterprise of round N, starting at entry 0". The fan-out loop ([`run`]) then turns it into outbox
//! messages a chunk at a time, each chunk in one transaction that also advances the fan-out's cursor.
//! A chunk is prepared on a snapshot off the writer ([`prepare`]: the list read, the data built, the
//! messages encoded), the next one while the writer queues the one before ([`step`]); the writer's
//! job ([`apply`]) writes it only if the cursor is still where it was prepared from.
//! Message ids derive from the assignment key, so a chunk done twice (a crash between the outbox write
//! and … there is no between: they are one transaction) or a retry queues nothing twice. Once the
//! round's transaction has committed, every notice of it is as good as queued: nothing can lose it.
//!
//! Departments have no address on the list: their contacts are on the roster (`departments:`, per
//! region and department id), and each contact is mailed the department's duties with its link by the
//! same fan-out (templates `department_*`), as the roster is live when the chunk is done. A department
//! without a contact is told nothing: `hazeflow check` warns of it, and the warning's progress shows it
//! as 无联系人 instead of overdue (it is not chased either; see [`crate::engine::escalate`]).
//! Negotiated reductions queue their own notice ([`crate::engine::negotiate`]).

use std::sync::Arc;
use std::time::Duration as StdDuration;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::json;
use tokio_util::sync::CancellationToken;

use crate::domain::playbook::PlaybookSet;
use crate::domain::region::Regions;
use crate::engine::Engine;
use crate::engine::assign::{self, AssignmentStatus, OnRound, Party, Round, TokenKey};
use crate::engine::escalate::{enterprise_recipient, task_json};
use crate::notify::NotifyStage;
use crate::notify::outbox;
use crate::notify::{AssignmentNotice, Recipient, Roster, assignment_message};
use crate::registry::Defaults;
use crate::store::{Collection, seq_key};
use crate::store::{Store, StoreError, Tx, View};

/// Pending fan-outs, key `{round seq:012}` → [`FanOut`].
pub const FANOUT: Collection = Collection::NoticeFanout;

/// Notices queued per transaction: small enough that an acknowledgement waiting behind a chunk waits
/// about 20 ms, large enough that the commits do not dominate.
pub const CHUNK: usize = 200;

/// How often the loop looks for work when there was none.
const POLL: StdDuration = StdDuration::from_millis(100);

/// A round whose notices are still to be queued from entry `next` on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FanOut {
    /// The round.
    pub round: u64,
    /// The first entry not yet done.
    pub next: u32,
    /// For the end of the warning (解除/取消) or a decided end withdrawn, instead of the round's measures.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub end: Option<End>,
}

/// What an end notice says.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct End {
    /// `lifted` (解除), `cancelled` (取消, before the start) or `withdrawn` (a decided lift no longer holds).
    pub kind: String,
    /// When the end takes (or was to take) effect.
    pub at: DateTime<Utc>,
    /// When it was decided: the notices are queued as of then.
    pub decided: DateTime<Utc>,
    /// Not sent before this: the lead time ahead of the end (提前发布解除预警信息), or at once when decided later.
    #[serde(default)]
    pub not_before: Option<DateTime<Utc>>,
}

/// Queues the end notices of a warning: every enterprise of its latest round of list measures is told
/// that the warning ends at `at` (or, `withdrawn`, that it does not end then after all), from `not_before`
/// on. One fan-out, done in chunks like the start; the key sorts after the round's own fan-out.
pub fn queue_end(
    tx: &mut Tx<'_>,
    warning_id: &str,
    kind: &str,
    at: DateTime<Utc>,
    decided: DateTime<Utc>,
    not_before: DateTime<Utc>,
) -> Result<(), StoreError> {
    let Some(round) = latest_round(tx, warning_id)? else {
        return Ok(());
    };
    let key = end_key(round.seq, kind, at);
    let end = End {
        kind: kind.to_string(),
        at,
        decided,
        not_before: Some(not_before.max(decided)),
    };
    tx.put_doc(
        FANOUT,
        &key,
        &FanOut {
            round: round.seq,
            next: 0,
            end: Some(end),
        },
    )
}

/// A decided lift no longer holds: if its notices have not gone out yet, they never will (returns true);
/// else the caller tells everyone that the measures go on.
pub fn drop_end(tx: &mut Tx<'_>, warning_id: &str, at: DateTime<Utc>) -> Result<bool, StoreError> {
    let Some(round) = latest_round(tx, warning_id)? else {
        return Ok(true);
    };
    for kind in ["lifted", "cancelled"] {
        let key = end_key(round.seq, kind, at);
        if let Some(f) = tx.doc::<FanOut>(FANOUT, &key)? {
            if f.next == 0 {
                tx.remove_doc(FANOUT, &key)?;
                return Ok(true);
            }
            return Ok(false);
        }
    }
    // Gone: either sent whole, or never queued (no round).
    Ok(false)
}

fn latest_round(tx: &Tx<'_>, warning_id: &str) -> Result<Option<Round>, StoreError> {
    Ok(assign::rounds_of(tx, warning_id)?
        .into_iter()
        .filter(|r| r.track.is_empty() && r.count > 0)
        .max_by_key(|r| r.seq))
}

fn end_key(round: u64, kind: &str, at: DateTime<Utc>) -> String {
    format!("{round:012}.{kind}.{}", at.timestamp())
}

/// The hook: a fan-out for every round of the list's measures that names anyone.
pub fn hook() -> Arc<OnRound> {
    Arc::new(|tx: &mut Tx<'_>, r: &Round| {
        if r.track.is_empty() && r.count > 0 {
            tx.put_doc(
                FANOUT,
                &seq_key(r.seq),
                &FanOut {
                    round: r.seq,
                    next: 0,
                    end: None,
                },
            )?;
        }
        Ok(())
    })
}

/// What a notice needs besides the store.
#[derive(Clone)]
pub struct Notices {
    /// Measures and level names.
    pub defaults: Arc<Defaults>,
    /// Region names.
    pub regions: &'static Regions,
    /// The daemon's public address, for links.
    pub public_url: String,
    /// For the acknowledgement links.
    pub tokens: TokenKey,
    /// The live playbooks: who issues a warning (the notice is in its name).
    pub playbooks: Arc<PlaybookSet>,
    /// The roster live now (department contacts; it may be reloaded between chunks).
    pub roster: Arc<dyn Fn() -> Arc<Roster> + Send + Sync>,
}

impl Notices {
    /// From the daemon's parts: `public_url` is `http.public_url`; the roster is read from the
    /// notifier's stage each time (a reload may replace it between chunks).
    pub fn new(engine: &Engine, defaults: Arc<Defaults>, public_url: String, tokens: TokenKey, notify: Arc<NotifyStage>) -> Notices {
        Notices {
            defaults,
            regions: engine.regions,
            public_url,
            tokens,
            playbooks: engine.playbooks.live(),
            roster: Arc::new(move || notify.roster()),
        }
    }
}

/// The notices of the next entries of one fan-out, prepared on a snapshot (or in a transaction) and
/// queued by [`apply`] in a write transaction: reading the list, building each notice's data and
/// encoding it happen before, and outside, the writer's job.
#[derive(Debug)]
pub struct Chunk {
    /// The fan-out's key.
    key: String,
    /// The warning of its round (empty when the round is gone).
    warning: String,
    /// The fan-out as it was read, with its cursor where this chunk starts.
    from: FanOut,
    /// The cursor after this chunk; `None`: the fan-out is done with it (removed).
    next: Option<u32>,
    /// Entries gone through.
    entries: usize,
    /// The messages, ready to queue.
    messages: Vec<outbox::Ready>,
}

impl Chunk {
    /// Where the fan-out stands once this chunk is queued: its key and cursor (`None` once it is done).
    pub fn after(&self) -> Option<(String, u32)> {
        self.next.map(|n| (self.key.clone(), n))
    }
}

/// Queues the notices of the next at most `limit` entries of the oldest fan-out, in this
/// transaction. Returns how many entries it went through (0: nothing to do).
pub fn expand(n: &Notices, tx: &mut Tx<'_>, limit: usize, now: DateTime<Utc>) -> Result<usize, StoreError> {
    match prepare(n, tx, None, limit, now)? {
        Some(chunk) => Ok(apply(tx, chunk)?.unwrap_or(0)),
        None => Ok(0),
    }
}

/// Prepares the notices of the next at most `limit` entries of the oldest due fan-out on `v` (a
/// snapshot: the writer is not held while the list is read and the messages are built). `ahead`: a
/// chunk of that fan-out is being queued and leaves its cursor here — prepare the entries after it.
/// `None`: nothing to do.
pub fn prepare<V: View>(
    n: &Notices,
    v: &V,
    ahead: Option<(&str, u32)>,
    limit: usize,
    now: DateTime<Utc>,
) -> Result<Option<Chunk>, StoreError> {
    // The oldest fan-out that is due (an end notice waits for its time).
    let due = v
        .docs::<FanOut>(FANOUT, "", "", 256)?
        .into_iter()
        .find(|(_, f)| f.end.as_ref().and_then(|e| e.not_before).is_none_or(|t| t <= now));
    let Some((key, mut f)) = due else {
        return Ok(None);
    };
    if let Some((k, next)) = ahead {
        if k != key {
            // Another fan-out came first in the snapshot: prepare once the chunk is in.
            return Ok(None);
        }
        f.next = f.next.max(next);
    }
    let Some(round) = assign::round(v, f.round)? else {
        return Ok(Some(Chunk {
            key,
            warning: String::new(),
            from: f,
            next: None,
            entries: 0,
            messages: Vec::new(),
        }));
    };
    let base = n.public_url.trim_end_matches('/');
    let regions = n.regions;
    let defaults = &n.defaults;
    let page = assign::entries(v, &round, f.next, limit)?;
    // A round after the warning's first is a change of level (调整).
    let changed = f.end.is_none()
        && assign::rounds_of(v, &round.warning_id)?
            .iter()
            .any(|r| r.track.is_empty() && r.seq < round.seq);
    // The page's enterprises in one read (one statement on PostgreSQL, not two round trips each), at
    // the county the entry names; one that has moved county since is looked up by its code.
    let keys: Vec<String> = page
        .iter()
        .filter_map(|(_, entry)| match &entry.party {
            Party::Enterprise { uscc, county, .. } => Some(format!("{county}/{uscc}")),
            _ => None,
        })
        .collect();
    let mut found = v
        .get_docs::<crate::registry::Enterprise>(crate::engine::list::ENTERPRISES, &keys)?
        .into_iter();
    let mut notices = Vec::with_capacity(page.len());
    let roster = (n.roster)();
    for (i, entry) in &page {
        if let Party::Department { .. } = &entry.party {
            let a = round.assignment(*i, entry.clone(), AssignmentStatus::Active);
            notices.extend(department_notices(n, &roster, &a, f.end.as_ref(), changed));
            continue;
        }
        let Party::Enterprise { uscc, .. } = &entry.party else { continue };
        let e = match found.next().flatten() {
            Some(e) => e,
            None => match crate::engine::inspect::enterprise_in(v, uscc)? {
                Some(e) => e,
                None => continue,
            },
        };
        let Some(to) = enterprise_recipient(&e) else { continue };
        let a = round.assignment(*i, entry.clone(), AssignmentStatus::Active);
        let mut data = task_json(defaults, &e, &a);
        data["recipient"] = json!({ "name": to.name });
        data["ack_url"] = json!(format!("{base}/ack/{}", n.tokens.token(&a)));
        data["region_name"] = json!(regions.name(a.warning_region));
        data["issuer"] = json!(crate::domain::playbook::issuer_of(&n.playbooks, a.warning_region, regions).name);
        data["level_name"] = json!(defaults.level(&a.level).map_or_else(|| a.level.to_string(), |l| l.name.clone()));
        let (kind, template) = match &f.end {
            None => {
                data["event"] = json!("assignment_issued");
                data["change"] = json!(changed);
                ("issued".to_string(), "assignment_issued".to_string())
            }
            Some(end) => {
                data["event"] = json!(format!("assignment_{}", end.kind));
                data["ends_at"] = json!(crate::notify::stage::local(end.at));
                (format!("{}-{}", end.kind, end.at.timestamp()), format!("assignment_{}", end.kind))
            }
        };
        notices.push(AssignmentNotice {
            assignment_id: a.key.clone(),
            kind,
            to,
            template,
            data,
            region: Some(a.warning_region),
        });
    }
    let queued_at = f.end.as_ref().map_or(round.created_at, |e| e.not_before.unwrap_or(e.decided));
    let messages = notices
        .into_iter()
        .map(|notice| outbox::ready(assignment_message(queued_at, notice)))
        .collect();
    let next = page.last().map_or(round.count, |(i, _)| i + 1);
    Ok(Some(Chunk {
        key,
        warning: round.warning_id.clone(),
        from: f,
        next: (!page.is_empty() && next < round.count).then_some(next),
        entries: page.len(),
        messages,
    }))
}

/// Queues a prepared chunk and moves its fan-out's cursor on, in this transaction. Returns how many
/// entries it went through (at least 1), or `None` when the fan-out is no longer where the chunk was
/// prepared from (done meanwhile, or dropped): nothing is written, prepare again.
pub fn apply(tx: &mut Tx<'_>, chunk: Chunk) -> Result<Option<usize>, StoreError> {
    match tx.doc::<FanOut>(FANOUT, &chunk.key)? {
        Some(f) if f == chunk.from => {}
        _ => return Ok(None),
    }
    outbox::enqueue_ready(tx, chunk.messages)?;
    match chunk.next {
        Some(next) => tx.put_doc(FANOUT, &chunk.key, &FanOut { next, ..chunk.from })?,
        None => tx.remove_doc(FANOUT, &chunk.key)?,
    }
    Ok(Some(chunk.entries.max(1)))
}

/// One step of the fan-out on `store`: queues the chunk prepared ahead (or prepares one on a snapshot)
/// and, while the writer queues it, prepares the next on another snapshot, on a blocking thread, so the
/// two cores share the work. Returns the entries gone through (0: nothing to do).
pub async fn step(store: &Store, n: &Notices, limit: usize, now: DateTime<Utc>, ahead: &mut Option<Chunk>) -> Result<usize, StoreError> {
    let chunk = match ahead.take() {
        Some(c) => Some(c),
        None => prepare_on_snapshot(store, n, None, limit, now)
            .await
            .inspect_err(|e| tracing::error!(error = %e, "cannot prepare assignment notices; trying again"))?,
    };
    let Some(chunk) = chunk else { return Ok(0) };
    let after = chunk.after();
    // The chunk's job: its warning, round, where in the round it starts, what it queues.
    let span = tracing::info_span!(
        "job",
        kind = "fanout",
        warning = %chunk.warning,
        round = chunk.from.round,
        from = chunk.from.next,
        entries = chunk.entries,
        messages = chunk.messages.len(),
        end = chunk.from.end.as_ref().map(|e| e.kind.as_str()),
    );
    let done_with_round = chunk.next.is_none();
    let write = store.write(move |tx| apply(tx, chunk));
    let next = async {
        match after {
            Some(after) => prepare_on_snapshot(store, n, Some(after), limit, now).await,
            None => Ok(None),
        }
    };
    let (written, next) = tokio::join!(write, next);
    let _in = span.enter();
    match written {
        Ok(Some(done)) => {
            if done_with_round {
                tracing::info!("notices queued; the fan-out of this round is done");
            } else {
                tracing::debug!("notices queued");
            }
            // A failed preparation is done again at the next step, on a fresh snapshot.
            *ahead = next.ok().flatten();
            Ok(done)
        }
        // The fan-out moved meanwhile: prepare afresh.
        Ok(None) => {
            tracing::debug!("the fan-out moved meanwhile; preparing again");
            Ok(1)
        }
        Err(e) => {
            tracing::error!(error = %e, "cannot queue these notices; trying again");
            Err(e)
        }
    }
}

async fn prepare_on_snapshot(
    store: &Store,
    n: &Notices,
    ahead: Option<(String, u32)>,
    limit: usize,
    now: DateTime<Utc>,
) -> Result<Option<Chunk>, StoreError> {
    let (store, n) = (store.clone(), n.clone());
    tokio::task::spawn_blocking(move || store.read(|r| prepare(&n, r, ahead.as_ref().map(|(k, i)| (k.as_str(), *i)), limit, now)))
        .await
        .map_err(|e| StoreError::Refused(format!("preparing notices: {e}")))?
}

/// The notices of a department's assignment: one per contact of the department in its region (none
/// without a contact). `end`: the warning's end instead of the duties; `changed`: a level change.
fn department_notices(n: &Notices, roster: &Roster, a: &assign::Assignment, end: Option<&End>, changed: bool) -> Vec<AssignmentNotice> {
    let Party::Department { id, name, region } = &a.party else {
        return Vec::new();
    };
    let contacts = roster.department_contacts(*region, id);
    let base = n.public_url.trim_end_matches('/');
    let region_name = n.regions.name(*region);
    let mut data = json!({
        "department": { "id": id, "name": format!("{region_name}{name}") },
        "duty": a.duty,
        "region_name": n.regions.name(a.warning_region),
        "level_name": n.defaults.level(&a.level).map_or_else(|| a.level.to_string(), |l| l.name.clone()),
        "applies_from": crate::engine::escalate::local(a.applies_from),
        "deadline": crate::engine::escalate::local(a.ack_deadline),
        "in_place_deadline": crate::engine::escalate::local(a.in_place_by()),
        "ack_url": format!("{base}/ack/{}", n.tokens.token(a)),
        "hotline": n.defaults.board.hotline,
        "change": changed,
        "exercise": a.exercise,
    });
    let (kind, template) = match end {
        None => {
            data["event"] = json!("department_issued");
            ("issued".to_string(), "department_issued".to_string())
        }
        Some(end) => {
            data["event"] = json!(format!("department_{}", end.kind));
            data["ends_at"] = json!(crate::notify::stage::local(end.at));
            (format!("{}-{}", end.kind, end.at.timestamp()), format!("department_{}", end.kind))
        }
    };
    contacts
        .iter()
        .map(|c| {
            let mut data = data.clone();
            data["recipient"] = json!({ "name": c.name });
            AssignmentNotice {
                assignment_id: a.key.clone(),
                kind: kind.clone(),
                // The address names the contact: the same person twice is told once.
                to: Recipient {
                    key: format!("d{}", c.email.to_ascii_lowercase()),
                    name: c.name.clone(),
                    address: c.email.clone(),
                },
                template: template.clone(),
                data,
                region: Some(*region),
            }
        })
        .collect()
}

/// Whether fan-outs are waiting (tests, the summary).
pub fn pending(r: &crate::store::ReadTx) -> Result<usize, StoreError> {
    Ok(r.docs::<FanOut>(FANOUT, "", "", usize::MAX)?.len())
}

/// The fan-out loop: queues notices chunk by chunk until cancelled.
pub async fn run(engine: Arc<Engine>, mut notices: Notices, cancel: CancellationToken) {
    let mut ahead = None;
    loop {
        if cancel.is_cancelled() {
            break;
        }
        notices.playbooks = engine.playbooks.live();
        let now = engine.clock.now();
        match step(&engine.store, &notices, CHUNK, now, &mut ahead).await {
            Ok(0) => {}
            Ok(_) => continue,
            // Logged in the chunk's span when the chunk was prepared.
            Err(e) => tracing::debug!(error = %e, "the fan-out step failed"),
        }
        tokio::select! {
            () = cancel.cancelled() => break,
            () = tokio::time::sleep(POLL) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::assign::AssignStage;
    use crate::engine::assign::tests::{issued, step as issue, store_with_list};
    use crate::notify::outbox::all_messages;

    fn notices() -> Notices {
        let regions = Regions::shanxi();
        let set = crate::domain::playbook::load_paths(&[std::path::PathBuf::from("playbooks/shanxi.yaml")], regions).unwrap();
        let roster = Arc::new(Roster::load(std::path::Path::new("config/roster.yaml")).unwrap());
        Notices {
            defaults: Arc::new(crate::registry::shanxi_defaults().clone()),
            regions,
            public_url: "https://hazeflow.example.cn".into(),
            tokens: TokenKey::new([7; 32]),
            playbooks: Arc::new(set),
            roster: Arc::new(move || roster.clone()),
        }
    }

    #[tokio::test]
    async fn chunks_prepared_on_snapshots_queue_every_notice_once_and_a_stale_chunk_writes_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let (store, who) = store_with_list(dir.path()).await;
        let n = notices();
        let stage = Arc::new(AssignStage {
            defaults: n.defaults.clone(),
            regions: n.regions,
            on_round: vec![hook()],
        });
        issue(&store, &stage, 140100, issued("140100-T-1", "orange")).await;
        let now = Utc::now();
        let queued = |store: &Store| store.read(|r| r.counter("notify_queued_email")).unwrap();

        // The first entry, and the second prepared ahead of it (as the loop does while the writer
        // queues the first).
        let first = store.read(|r| prepare(&n, r, None, 1, now)).unwrap().unwrap();
        let after = first.after().unwrap();
        let second = store.read(|r| prepare(&n, r, Some((&after.0, after.1)), 1, now)).unwrap().unwrap();
        let again = store.read(|r| prepare(&n, r, None, 1, now)).unwrap().unwrap();
        // Out of turn: the fan-out is not where the second chunk starts; nothing is written.
        assert_eq!(store.write(move |tx| apply(tx, second)).await.unwrap(), None);
        assert_eq!(queued(&store), 0);
        assert_eq!(store.write(move |tx| apply(tx, first)).await.unwrap(), Some(1));
        let one = queued(&store);
        assert_eq!(one, 1, "the first entry's notice");
        // The first chunk prepared twice (a retry after the writer took it): the second copy is stale.
        assert_eq!(store.write(move |tx| apply(tx, again)).await.unwrap(), None);
        assert_eq!(queued(&store), one);

        // The loop's steps (each chunk prepared while the one before is written) do the rest.
        let mut ahead = None;
        while step(&store, &n, 1, now, &mut ahead).await.unwrap() > 0 {}
        assert_eq!(store.read(pending).unwrap(), 0);
        let messages = store.read(all_messages).unwrap();
        assert_eq!(messages.len() as u64, queued(&store));
        // Every enterprise of the list once, with its own link; departments with contacts besides.
        for (uscc, _) in &who {
            let to: Vec<_> = messages.iter().filter(|m| m.recipient.key == format!("e{uscc}")).collect();
            assert_eq!(to.len(), 1, "{uscc}: {:?}", to.iter().map(|m| &m.id).collect::<Vec<_>>());
            assert_eq!(to[0].template, "assignment_issued");
            assert!(
                to[0].data["ack_url"]
                    .as_str()
                    .unwrap()
                    .starts_with("https://hazeflow.example.cn/ack/")
            );
        }
        let ids: std::collections::BTreeSet<&str> = messages.iter().map(|m| m.id.as_str()).collect();
        assert_eq!(ids.len(), messages.len());
    }
}
