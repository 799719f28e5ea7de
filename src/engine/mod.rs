//! The engine: the daemon's operations, each one write job that reads state, runs the pure core
//! (assessment, lifecycle) and records what happened, in one transaction.
//!
//! In: forecasts, consultation triggers, sign-offs, directives, operator actions, clock ticks, from
//! the inbox, the scheduler and the HTTP API. Out: records in the store, and results for the caller.
//! Running episodes keep the playbook version they started with (see [`Playbooks`]).

pub mod ack;
pub mod approval;
pub mod assign;
pub mod drill;
pub mod episode;
pub mod escalate;
pub mod inspect;
pub mod link_keys;
pub mod list;
pub mod negotiate;
pub mod notice;
pub mod opinion;
pub mod report;
pub mod reportup;
pub mod republish;
pub mod upstream;

use std::collections::BTreeMap;
use std::sync::{Arc, RwLock};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::clock::Clock;
use crate::domain::assess::{Assessment, assess_region};
use crate::domain::forecast::{self, Forecast, ForecastError, ParseOptions};
use crate::domain::level::LevelId;
use crate::domain::playbook::{Playbook, PlaybookError, PlaybookSet};
use crate::domain::region::{RegionCode, Regions};
use crate::domain::warning::{Event, Input, LifecycleError, RegionState};
use crate::store::Collection;
use crate::store::{ConsultationRecord, DirectiveRecord, RecordBody, Store, StoreError, Tx, Upstream, events};

/// The live playbooks, plus every version an episode may still be pinned to.
#[derive(Debug, Default)]
pub struct Playbooks {
    live: RwLock<Arc<PlaybookSet>>,
    pinned: RwLock<BTreeMap<String, Arc<Playbook>>>,
    last_reload: RwLock<ReloadStatus>,
    /// Loads put live (the start's included) and refused, for `/metrics`.
    pub loads: [std::sync::atomic::AtomicU64; 2],
}

/// The outcome of the last (re)load.
#[derive(Debug, Clone, Default, Serialize)]
pub struct ReloadStatus {
    /// When.
    pub at: Option<DateTime<Utc>>,
    /// Versions live after it.
    pub versions: Vec<String>,
    /// Errors that made it refuse (the old set stayed live).
    pub errors: Vec<String>,
}

impl Playbooks {
    /// Starts with a loaded set.
    pub fn new(set: PlaybookSet, at: DateTime<Utc>) -> Playbooks {
        let p = Playbooks::default();
        p.swap(set, at);
        p
    }

    /// Puts a loaded set live.
    pub fn swap(&self, set: PlaybookSet, at: DateTime<Utc>) {
        let versions = set.iter().map(|p| p.pin()).collect();
        if let Ok(mut pinned) = self.pinned.write() {
            for pb in set.iter() {
                pinned.entry(pb.pin()).or_insert_with(|| pb.clone());
            }
        }
        if let Ok(mut live) = self.live.write() {
            *live = Arc::new(set);
        }
        self.loads[0].fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        if let Ok(mut s) = self.last_reload.write() {
            *s = ReloadStatus {
                at: Some(at),
                versions,
                errors: Vec::new(),
            };
        }
    }

    /// The live set.
    pub fn live(&self) -> Arc<PlaybookSet> {
        self.live.read().map(|g| g.clone()).unwrap_or_default()
    }

    /// The playbook an episode is pinned to, if still known.
    pub fn pinned(&self, pin: &str) -> Option<Arc<Playbook>> {
        self.pinned.read().ok().and_then(|g| g.get(pin).cloned())
    }

    /// The outcome of the last reload.
    pub fn status(&self) -> ReloadStatus {
        self.last_reload.read().map(|g| g.clone()).unwrap_or_default()
    }

    /// Loads the folder again; on any error the live set stays and the errors are returned.
    pub fn reload(&self, dir: &std::path::Path, regions: &Regions, at: DateTime<Utc>) -> Result<Vec<String>, Vec<PlaybookError>> {
        match crate::domain::playbook::load_paths(&[dir.to_path_buf()], regions) {
            Ok(set) => {
                self.swap(set, at);
                Ok(self.status().versions)
            }
            Err(errors) => {
                self.refused(at, errors.iter().map(ToString::to_string).collect());
                Err(errors)
            }
        }
    }

    /// Records a refused reload: the live set stays, the status names the errors.
    pub fn refused(&self, at: DateTime<Utc>, errors: Vec<String>) {
        self.loads[1].fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        if let Ok(mut s) = self.last_reload.write() {
            s.at = Some(at);
            s.errors = errors;
        }
    }
}

/// The store collection that keeps, per pinned version (`id@version`), the files it was compiled
/// from, so that an episode keeps its version across restarts even when the folder has moved on.
pub const PLAYBOOK_SOURCES: Collection = Collection::PlaybookSources;

/// The files a playbook version was compiled from: its own and its parents'.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlaybookSource {
    /// `id@version`.
    pub pin: String,
    /// The digest it compiled to.
    pub digest: String,
    /// `(path, text)` of each file.
    pub files: Vec<(std::path::PathBuf, String)>,
}

impl PlaybookSource {
    /// Compiles the version again.
    fn compile(&self, regions: &Regions) -> Option<Arc<Playbook>> {
        let set = crate::domain::playbook::load_files(self.files.clone(), regions).ok()?;
        set.iter().find(|p| p.pin() == self.pin && p.digest == self.digest).cloned()
    }
}

impl Playbooks {
    /// The sources of every live playbook, read back from disk; one whose files changed since they
    /// were compiled is left out.
    fn live_sources(&self, regions: &Regions) -> Vec<PlaybookSource> {
        let set = self.live();
        let mut out = Vec::new();
        'books: for pb in set.iter() {
            let mut files = Vec::new();
            let mut next = Some(pb.clone());
            while let Some(p) = next {
                let Ok(text) = std::fs::read_to_string(&p.file) else {
                    continue 'books;
                };
                files.push((p.file.clone(), text));
                next = p.parent.as_deref().and_then(|id| set.get(id)).cloned();
            }
            let source = PlaybookSource {
                pin: pb.pin(),
                digest: pb.digest.clone(),
                files,
            };
            if source.compile(regions).is_some() {
                out.push(source);
            }
        }
        out
    }
}

pub use crate::store::Stage;

/// Everything the operations need.
pub struct Engine {
    /// Stages that follow lifecycle events (assignments, notifications), in order.
    pub stages: Vec<Arc<dyn Stage>>,
    /// The store.
    pub store: Store,
    /// The playbooks.
    pub playbooks: Playbooks,
    /// The region table.
    pub regions: &'static Regions,
    /// The clock.
    pub clock: Clock,
    /// Largest accepted forecast.
    pub max_forecast_bytes: usize,
    /// How far ahead of the clock a forecast's `issued_at` may lie (`forecast.max_ahead_minutes`).
    pub forecast_max_ahead: chrono::Duration,
    /// Wakes the scheduler for an on-demand consultation.
    pub consult_requested: Arc<tokio::sync::Notify>,
    /// Wakes whoever follows state changes (delivery, pages).
    pub changed: Arc<tokio::sync::Notify>,
}

/// Why an operation was refused.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// Bad input: the caller's fault (400).
    #[error("{0}")]
    BadInput(String),
    /// No such thing (404).
    #[error("{0}")]
    NotFound(String),
    /// Not allowed (403).
    #[error("{0}")]
    Forbidden(String),
    /// Not now (409).
    #[error("{0}")]
    Conflict(String),
    /// The store failed (500/503).
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<LifecycleError> for EngineError {
    fn from(e: LifecycleError) -> Self {
        match e {
            LifecycleError::Forbidden { .. } => EngineError::Forbidden(e.to_string()),
            LifecycleError::UndefinedLevel(_) => EngineError::BadInput(e.to_string()),
            _ => EngineError::Conflict(e.to_string()),
        }
    }
}

/// Why a submitted forecast was not taken.
#[derive(Debug, thiserror::Error)]
pub enum SubmitError {
    /// The file is wrong (recorded as rejected); sending it again changes nothing.
    #[error(transparent)]
    Rejected(ForecastError),
    /// The store could not record it; it may be sent again.
    #[error("{file}: not recorded: {error}")]
    NotRecorded {
        /// The file.
        file: String,
        /// Why.
        error: StoreError,
    },
}

/// What happened to a submitted forecast.
#[derive(Debug, Clone, Serialize)]
pub struct Submitted {
    /// Its id.
    pub id: String,
    /// True when the same forecast was already recorded (nothing new was written).
    pub duplicate: bool,
    /// Regions it covers.
    pub regions: usize,
    /// Sequence number of its record (0 for a duplicate).
    pub seq: u64,
    /// A drill's forecast (演练), consulted at once for the drill lanes of its regions.
    pub exercise: bool,
}

/// Records lifecycle events, each under its warning's id, then runs the stages on them.
fn record_events(
    tx: &mut Tx<'_>,
    now: DateTime<Utc>,
    events: &[Event],
    state_after: &RegionState,
    pb: &Playbook,
    stages: &[Arc<dyn Stage>],
) -> Result<(), StoreError> {
    if events.is_empty() {
        return Ok(());
    }
    let id = state_after.warning.as_ref().map(|w| w.id.clone()).unwrap_or_default();
    for e in events {
        tx.append(
            now,
            &e.actor,
            Some(e.playbook.clone()),
            RecordBody::Warning {
                warning_id: id.clone(),
                event: e.clone(),
            },
        )?;
    }
    for stage in stages {
        stage.on_warning_events(tx, now, events, state_after, pb)?;
    }
    Ok(())
}

/// One consultation in `tx`: each region assessed on its forecast, in the lane of real warnings or of
/// drills (`exercise`), the record kept and the results fed to the lifecycle.
fn hold_consultation(
    tx: &mut Tx<'_>,
    now: DateTime<Utc>,
    set: &PlaybookSet,
    me: &EngineView,
    trigger: &str,
    sources: Vec<(RegionCode, Arc<Forecast>)>,
    exercise: bool,
) -> Result<Option<ConsultationRecord>, StoreError> {
    let mut plans: Vec<(RegionCode, RegionState, Arc<Playbook>, Assessment)> = Vec::new();
    for (region, f) in sources {
        let state = tx.lane_state(region, exercise)?;
        let Some(pb) = me.playbook_for(set, region, &state) else {
            continue;
        };
        let Some(days) = f.series.get(&region) else { continue };
        let issue = now.with_timezone(&chrono_tz::Asia::Shanghai).date_naive().max(f.issue_date());
        // A running warning's earlier days count for runs that go on into this forecast.
        let earlier = state
            .live()
            .and_then(|w| w.plan.as_ref())
            .map(|p| p.days.as_slice())
            .unwrap_or_default();
        let days = crate::domain::assess::with_earlier(days, earlier, pb.horizon_days as usize);
        plans.push((region, state, pb.clone(), assess_region(region, &days, issue, &f.id, &pb)));
    }
    let record = ConsultationRecord {
        seq: 0,
        at: now,
        trigger: trigger.to_string(),
        assessments: plans.iter().map(|p| p.3.clone()).collect(),
        exercise,
    };
    let rec = tx.append(now, "consultation", None, RecordBody::ConsultationHeld { consultation: record })?;
    for (region, mut state, pb, a) in plans {
        // The consultation counts before the clock: at the very instant a lift window ends,
        // a consultation that calls for the level again keeps the warning rather than
        // lifting and re-proposing it (the step ticks after the consultation).
        let events = state.step(region, Input::Consultation(&a), now, &pb).unwrap_or_default();
        record_events(tx, now, &events, &state, &pb, &me.stages)?;
    }
    match rec.body {
        RecordBody::ConsultationHeld { consultation } => Ok(Some(consultation)),
        _ => Ok(None),
    }
}

impl Engine {
    /// Asks the scheduler for a consultation now.
    pub fn trigger_consultation(&self) {
        self.consult_requested.notify_one();
    }

    /// Tells followers that state changed.
    pub fn after_change(&self) {
        self.changed.notify_waiters();
    }

    /// Keeps the sources of the live playbook versions in the store, and pins every version kept
    /// there (the first one seen under an `id@version` wins, as within a run): called on start and
    /// after each reload, so that running episodes keep their version across restarts.
    pub async fn remember_playbooks(&self) -> Result<(), StoreError> {
        let regions = self.regions;
        let stored: Vec<(String, PlaybookSource)> = self.store.read(|r| r.docs(PLAYBOOK_SOURCES, "", "", usize::MAX))?;
        if let Ok(mut pinned) = self.playbooks.pinned.write() {
            for (_, source) in &stored {
                match source.compile(regions) {
                    Some(pb) => {
                        pinned.insert(source.pin.clone(), pb);
                    }
                    None => {
                        tracing::warn!(pin = %source.pin, "a stored playbook version no longer compiles; its episodes follow the live one")
                    }
                }
            }
        }
        let known: Vec<String> = stored.into_iter().map(|(k, _)| k).collect();
        let new: Vec<PlaybookSource> = self
            .playbooks
            .live_sources(regions)
            .into_iter()
            .filter(|s| !known.contains(&s.pin))
            .collect();
        if new.is_empty() {
            return Ok(());
        }
        self.store
            .write(move |tx| {
                for s in &new {
                    if tx.doc::<PlaybookSource>(PLAYBOOK_SOURCES, &s.pin)?.is_none() {
                        tx.put_doc(PLAYBOOK_SOURCES, &s.pin, s)?;
                    }
                }
                Ok(())
            })
            .await
    }

    /// Parses and records a forecast. A rejected one is recorded as rejected (for the audit log and
    /// metrics) and its error returned; nothing else changes.
    pub async fn submit_forecast(&self, file: &str, bytes: &[u8], via: &str) -> Result<Submitted, SubmitError> {
        self.submit_forecast_as(file, bytes, via, false).await
    }

    /// [`Engine::submit_forecast`]; `exercise` marks it a drill's (演练) whatever the file says.
    /// A drill's forecast is consulted at once for the drill lanes of its regions.
    pub async fn submit_forecast_as(&self, file: &str, bytes: &[u8], via: &str, exercise: bool) -> Result<Submitted, SubmitError> {
        let now = self.clock.now();
        // Issued no later than the allowed clock skew ahead, and no earlier than the longest horizon
        // of the live playbooks (10 days without any): one forecast "issued" in 2099 must never hide
        // the later ones, and a stale one covers nothing a consultation still looks at.
        let horizon = self.playbooks.live().iter().map(|p| p.horizon_days).max().unwrap_or(10);
        let opts = ParseOptions {
            max_bytes: self.max_forecast_bytes,
            issued_bounds: Some(forecast::IssuedBounds {
                earliest: now - chrono::Duration::days(i64::from(horizon)),
                earliest_why: format!("{horizon} days before now, the longest playbook horizon"),
                latest: now + self.forecast_max_ahead,
                latest_why: format!(
                    "{} minutes ahead of now, forecast.max_ahead_minutes",
                    self.forecast_max_ahead.num_minutes()
                ),
            }),
            exercise,
            ..ParseOptions::forecast()
        };
        match forecast::parse(file, bytes, self.regions, &opts) {
            Ok(f) => {
                let via = via.to_string();
                let (set, me) = (self.playbooks.live(), self.snapshot());
                let r = self
                    .store
                    .write::<_, StoreError, _>(move |tx| {
                        if tx.forecast(&f.id)?.is_some() {
                            return Ok(Submitted {
                                id: f.id.clone(),
                                duplicate: true,
                                regions: f.series.len(),
                                seq: 0,
                                exercise: f.exercise,
                            });
                        }
                        let regions = f.series.len();
                        let (id, exercise) = (f.id.clone(), f.exercise);
                        // A drill's forecast is consulted at once, for the drill lanes of its
                        // regions: the scheduled consultations read the real forecasts only.
                        let drill = f.exercise.then(|| Arc::new(f.clone()));
                        let rec = tx.append(
                            now,
                            &via,
                            None,
                            RecordBody::ForecastAccepted {
                                forecast: f,
                                via: via.clone(),
                            },
                        )?;
                        if let Some(f) = drill {
                            let sources = f.series.keys().map(|r| (*r, f.clone())).collect();
                            hold_consultation(tx, now, &set, &me, "演练", sources, true)?;
                        }
                        Ok(Submitted {
                            id,
                            duplicate: false,
                            regions,
                            seq: rec.seq,
                            exercise,
                        })
                    })
                    .await;
                r.map_err(|error| SubmitError::NotRecorded { file: file.into(), error })
            }
            Err(err) => {
                let (f, msg, v) = (file.to_string(), err.to_string(), via.to_string());
                let _ = self
                    .store
                    .write(move |tx| {
                        tx.append(
                            now,
                            &v,
                            None,
                            RecordBody::ForecastRejected {
                                file: f,
                                error: msg,
                                via: v.clone(),
                            },
                        )
                    })
                    .await;
                Err(SubmitError::Rejected(err))
            }
        }
    }

    /// Holds a consultation now over every region with a forecast (or only `only`), and feeds the
    /// results to the lifecycle. `slot`, when given, is a scheduled slot that runs at most once.
    /// Real warnings only: a drill's forecast is consulted when it arrives ([`Engine::submit_forecast`]).
    pub async fn consult(
        &self,
        trigger: &str,
        slot: Option<DateTime<Utc>>,
        only: Option<Vec<RegionCode>>,
    ) -> Result<Option<ConsultationRecord>, EngineError> {
        let now = self.clock.now();
        let set = self.playbooks.live();
        let trigger = trigger.to_string();
        let me = self.snapshot();
        self.store
            .write(move |tx| {
                if let Some(slot) = slot {
                    let key = "last_consultation_slot";
                    if tx.counter(key)? >= slot.timestamp() as u64 {
                        return Ok(None);
                    }
                    let last = tx.counter(key)?;
                    tx.bump(key, slot.timestamp() as u64 - last)?;
                }
                let mut regions = tx.forecast_regions()?;
                if let Some(only) = &only {
                    regions.retain(|r| only.contains(r));
                }
                let mut sources = Vec::new();
                for region in regions {
                    if let Some(f) = tx.latest_forecast(region)? {
                        sources.push((region, Arc::new(f)));
                    }
                }
                hold_consultation(tx, now, &set, &me, &trigger, sources, false)
            })
            .await
            .map_err(EngineError::Store)
    }

    /// A copy of what jobs need, to move into the writer.
    fn snapshot(&self) -> Arc<EngineView> {
        Arc::new(EngineView {
            regions: self.regions,
            pinned: self.playbooks.pinned.read().map(|g| g.clone()).unwrap_or_default(),
            stages: self.stages.clone(),
        })
    }

    /// Applies an input to the region of a warning (sign, lift, cancel).
    pub async fn warning_action(&self, warning_id: &str, action: WarningAction) -> Result<Vec<Event>, EngineError> {
        self.warning_action_noted(warning_id, action, None).await
    }

    /// [`Engine::warning_action`], with a note kept beside the events in the same transaction (a
    /// name typed in a request, which never replaces the token holder as the actor).
    pub async fn warning_action_noted(
        &self,
        warning_id: &str,
        action: WarningAction,
        note: Option<String>,
    ) -> Result<Vec<Event>, EngineError> {
        let now = self.clock.now();
        let set = self.playbooks.live();
        let me = self.snapshot();
        let id = warning_id.to_string();
        let (what, who) = match &action {
            WarningAction::Sign { signer, .. } => ("sign", signer.clone()),
            WarningAction::Lift { actor, .. } => ("lift", actor.clone()),
            WarningAction::Cancel { actor, .. } => ("cancel", actor.clone()),
        };
        let result = self
            .store
            .write(move |tx| {
                let w = tx.warning(&id)?.ok_or_else(|| EngineError::NotFound(format!("no warning {id}")))?;
                let mut state = tx.lane_state(w.region, w.exercise)?;
                if state.warning.as_ref().map(|x| &x.id) != Some(&id) || !w.status.is_live() {
                    return Err(EngineError::Conflict(
                        format!("warning {id} is {:?}, not live", w.status).to_lowercase(),
                    ));
                }
                let pb = me
                    .playbook_for(&set, w.region, &state)
                    .ok_or_else(|| EngineError::Conflict(format!("no playbook governs region {}", w.region)))?;
                // A lift or a cancellation needs the authority to sign the highest level the
                // warning holds or awaits (a sign-off is checked by the lifecycle itself).
                let (what, role) = match &action {
                    WarningAction::Lift { role, .. } => ("lift", Some(role)),
                    WarningAction::Cancel { role, .. } => ("cancel", Some(role)),
                    WarningAction::Sign { .. } => ("sign", None),
                };
                if let Some(role) = role {
                    let level = match &w.pending_change {
                        Some(p) if p.level.rank > w.level.rank => &p.level,
                        _ => &w.level,
                    };
                    crate::domain::authority::may_act(&pb, level, role, what).map_err(|r| EngineError::Forbidden(r.0))?;
                }
                let (actor, input) = match &action {
                    WarningAction::Sign { signer, role, .. } => (signer, Input::SignOff { signer, role }),
                    WarningAction::Lift { actor, reason, .. } => (actor, Input::Lift { actor, reason }),
                    WarningAction::Cancel { actor, reason, .. } => (actor, Input::Cancel { actor, reason }),
                };
                let events = state.step(w.region, input, now, &pb).map_err(EngineError::from)?;
                // 会商意见 before sign-off (`record_before_sign`): what a consultation proposed waits
                // for its record, unless the signer says why not (kept on the form and as a note).
                let waiver = match &action {
                    WarningAction::Sign { without_record, .. } if pb.record_before_sign => record_gate(tx, &id, without_record.as_deref())?,
                    _ => None,
                };
                record_events(tx, now, &events, &state, &pb, &me.stages)?;
                if let Some((form_id, seq, reason)) = &waiver {
                    approval::signed_without_record(tx, now, actor, form_id, reason)?;
                    tx.append(
                        now,
                        actor,
                        None,
                        RecordBody::Other(events::Event::Note(events::Note {
                            action: what.into(),
                            note: format!("未附会商意见签发（第{seq}号会商），理由：{reason}"),
                            warning: id.clone(),
                        })),
                    )?;
                }
                if let Some(note) = &note {
                    tx.append(
                        now,
                        actor,
                        None,
                        RecordBody::Other(events::Event::Note(events::Note {
                            action: what.into(),
                            note: note.clone(),
                            warning: id.clone(),
                        })),
                    )?;
                }
                Ok(events)
            })
            .await;
        log_action(what, &who, warning_id, &result);
        result
    }

    /// Issues a regional directive: every region named, and every known region below them, is raised
    /// to at least its level and held there until it is lifted.
    /// `role` must be one that may sign the directive's level in the playbook of the issuing tier;
    /// `None`: a warning from above dropped in the inbox, whose folder is the authority (like a
    /// forecast's: whoever may write it is the office's document system). A drill's directive (`d.exercise`, 演练) holds the regions' drill lanes, never their real
    /// warnings. A warning from above (上级预警, `d.upstream`) is a directive with a level per group of
    /// regions (the highest where groups overlap), named by its issuer and document number in the
    /// warnings' reasons; one marked as a drill steps `tx.lane_state(region, true)` and nothing else.
    pub async fn issue_directive(&self, d: DirectiveRecord, actor: &str, role: Option<&str>) -> Result<Vec<Event>, EngineError> {
        let now = self.clock.now();
        let set = self.playbooks.live();
        match role {
            Some(role) => directive_authority(&set, self.regions, &d, role, "issue a directive at")?,
            // The inbox: no role; the level must still be one the issuing tier defines.
            None => directive_authority(&set, self.regions, &d, "", "issue a directive at")
                .or_else(|e| if matches!(e, EngineError::Forbidden(_)) { Ok(()) } else { Err(e) })?,
        }
        let me = self.snapshot();
        let actor = actor.to_string();
        let (who, subject) = (actor.clone(), d.id.clone());
        let result = self
            .store
            .write(move |tx| {
                if tx.directive(&d.id)?.is_some() {
                    return Err(EngineError::Conflict(format!("directive {} exists already", d.id)));
                }
                let mut plans = Vec::new();
                for (r, levels) in me.targets(&d) {
                    // A drill's directive holds the drill lanes only; a real one the real warnings.
                    let state = tx.lane_state(r, d.exercise)?;
                    let pb = me
                        .playbook_for(&set, r, &state)
                        .ok_or_else(|| EngineError::BadInput(format!("no playbook governs region {r}")))?;
                    let mut level: Option<(u32, LevelId)> = None;
                    for l in levels {
                        let rank = pb
                            .level(&l)
                            .ok_or_else(|| EngineError::BadInput(format!("undefined level \"{l}\" in playbook {}", pb.pin())))?
                            .rank;
                        if level.as_ref().is_none_or(|(top, _)| rank > *top) {
                            level = Some((rank, l));
                        }
                    }
                    let Some((_, level)) = level else { continue };
                    plans.push((r, state, pb, level));
                }
                tx.append(now, &actor, None, RecordBody::DirectiveIssued { directive: d.clone() })?;
                let source = d.upstream.as_ref().map(Upstream::source);
                let mut all = Vec::new();
                for (r, mut state, pb, level) in plans {
                    let events = state
                        .step(
                            r,
                            Input::Directive {
                                id: &d.id,
                                min_level: &level,
                                from: d.from,
                                until: d.until,
                                expected_end: d.upstream.as_ref().and_then(|u| u.expected_end),
                                source: source.as_deref(),
                            },
                            now,
                            &pb,
                        )
                        .map_err(EngineError::from)?;
                    record_events(tx, now, &events, &state, &pb, &me.stages)?;
                    all.extend(events);
                }
                Ok(all)
            })
            .await;
        log_action("issue directive", &who, &subject, &result);
        result
    }

    /// Lifts a directive: the regions it held follow their own forecasts again.
    /// `role`: as for issuing it (`None`: the inbox, whose folder is the authority, as for issuing).
    /// `doc_no`: a warning from above's lift's own document number (解除文号), kept on it and named in
    /// the reasons.
    pub async fn lift_directive(
        &self,
        id: &str,
        actor: &str,
        role: Option<&str>,
        doc_no: Option<String>,
    ) -> Result<Vec<Event>, EngineError> {
        let now = self.clock.now();
        let set = self.playbooks.live();
        let me = self.snapshot();
        let (id, actor, role) = (id.to_string(), actor.to_string(), role.map(str::to_string));
        let (what, who, subject) = ("lift directive", actor.clone(), id.clone());
        let result = self
            .store
            .write(move |tx| {
                let d = tx
                    .directive(&id)?
                    .ok_or_else(|| EngineError::NotFound(format!("no directive {id}")))?;
                if let Some(role) = &role {
                    directive_authority(&set, me.regions, &d, role, "lift a directive at")?;
                }
                if !d.active {
                    return Err(EngineError::Conflict(format!("directive {id} was lifted already")));
                }
                tx.append(
                    now,
                    &actor,
                    None,
                    RecordBody::DirectiveLifted {
                        id: id.clone(),
                        doc_no: doc_no.clone(),
                    },
                )?;
                let mut all = Vec::new();
                for r in me.expand(&d.regions) {
                    let mut state = tx.lane_state(r, d.exercise)?;
                    let Some(pb) = me.playbook_for(&set, r, &state) else { continue };
                    let input = Input::DirectiveLifted {
                        id: &id,
                        doc_no: doc_no.as_deref(),
                    };
                    let events = state.step(r, input, now, &pb).unwrap_or_default();
                    record_events(tx, now, &events, &state, &pb, &me.stages)?;
                    all.extend(events);
                }
                Ok(all)
            })
            .await;
        log_action(what, &who, &subject, &result);
        result
    }

    /// Lets time act: starts, directive expiry, lifts after the lift window.
    pub async fn tick(&self) -> Result<Vec<Event>, EngineError> {
        let now = self.clock.now();
        let set = self.playbooks.live();
        let me = self.snapshot();
        self.store
            .write(move |tx| {
                let mut all = Vec::new();
                // Both lanes: a drill starts, changes and ends on the clock as a real warning does.
                for (r, mut state) in tx.lane_states()? {
                    if state.live().is_none() {
                        continue;
                    }
                    let Some(pb) = me.playbook_for(&set, r, &state) else { continue };
                    let events = state.step(r, Input::Tick, now, &pb).unwrap_or_default();
                    record_events(tx, now, &events, &state, &pb, &me.stages)?;
                    all.extend(events);
                }
                Ok(all)
            })
            .await
            .map_err(EngineError::Store)
    }
}

/// Whether `role` may issue or lift `d`: it must be able to sign `d.min_level` in the playbook that
/// governs the issuing tier (`issued_by`).
fn directive_authority(set: &PlaybookSet, regions: &Regions, d: &DirectiveRecord, role: &str, what: &str) -> Result<(), EngineError> {
    let pb = set
        .for_region(d.issued_by, regions)
        .ok_or_else(|| EngineError::BadInput(format!("issued_by: no playbook governs region {}", d.issued_by)))?;
    if pb.level(&d.min_level).is_none() {
        return Err(EngineError::BadInput(format!(
            "undefined level \"{}\" in playbook {} (of the issuing tier)",
            d.min_level,
            pb.pin()
        )));
    }
    crate::domain::authority::may_act(pb, &d.min_level, role, what).map_err(|r| EngineError::Forbidden(r.0))
}

/// An operator's or signer's action on a warning.
#[derive(Debug, Clone)]
pub enum WarningAction {
    /// Sign what is pending. `without_record`: the signer's reason for signing a consultation's
    /// proposal before its record (会商意见) is completed, where the playbook asks for it first
    /// (`record_before_sign`).
    Sign {
        signer: String,
        role: String,
        without_record: Option<String>,
    },
    /// Lift (the actor's role must be one that may sign the warning's level).
    Lift { actor: String, role: String, reason: String },
    /// Cancel before start (the same authority as a lift).
    Cancel { actor: String, role: String, reason: String },
}

/// The gate of `record_before_sign`: the unsigned form awaiting this sign-off, if a consultation
/// proposed it and that consultation's record (会商意见) is not completed, refuses the sign-off (409,
/// in Chinese, naming the consultation) unless `without_record` gives a reason. `Ok(Some((form,
/// consultation, reason)))`: signed without the record; `Ok(None)`: nothing holds it.
fn record_gate(tx: &Tx<'_>, warning: &str, without_record: Option<&str>) -> Result<Option<(String, u64, String)>, EngineError> {
    let Some(seq) = opinion::record_awaited(tx, warning)? else {
        return Ok(None);
    };
    let form = approval::forms_of(tx, warning)?
        .into_iter()
        .rev()
        .find(|f| f.void.is_none() && !f.signed() && f.consultation == Some(seq))
        .map(|f| f.id)
        .unwrap_or_default();
    match without_record.map(str::trim).filter(|r| !r.is_empty()) {
        Some(reason) => Ok(Some((form, seq, reason.chars().take(500).collect()))),
        None => Err(EngineError::Conflict(format!(
            "须先完成会商意见：该预警由第{seq}号会商提出，其会商意见尚未填写（/consultations/{seq}），请填写后再签发；\
             如需未附会商意见即签发，请说明理由（without_record）"
        ))),
    }
}

/// What jobs running in the writer need from the engine.
struct EngineView {
    regions: &'static Regions,
    pinned: BTreeMap<String, Arc<Playbook>>,
    stages: Vec<Arc<dyn Stage>>,
}

impl EngineView {
    fn playbook_for(&self, set: &PlaybookSet, region: RegionCode, state: &RegionState) -> Option<Arc<Playbook>> {
        if let Some(w) = state.live()
            && let Some(p) = self.pinned.get(&w.playbook)
        {
            return Some(p.clone());
        }
        set.for_region(region, self.regions).cloned()
    }

    /// The regions a directive reaches, each with the levels it names for it: the directive's level
    /// for every region named and below; a warning from above's level per group (a region in several
    /// groups gets each of their levels, the caller keeps the highest).
    fn targets(&self, d: &DirectiveRecord) -> BTreeMap<RegionCode, Vec<LevelId>> {
        let mut out: BTreeMap<RegionCode, Vec<LevelId>> = BTreeMap::new();
        let areas = match &d.upstream {
            Some(u) => u.areas.iter().map(|a| (&a.level, a.regions.as_slice())).collect(),
            None => vec![(&d.min_level, d.regions.as_slice())],
        };
        for (level, regions) in areas {
            for r in self.expand(regions) {
                out.entry(r).or_default().push(level.clone());
            }
        }
        out
    }

    /// The regions named and every known region below them.
    fn expand(&self, named: &[RegionCode]) -> Vec<RegionCode> {
        let mut out: Vec<RegionCode> = Vec::new();
        for r in named {
            out.push(*r);
            out.extend(self.regions.descendants(*r));
        }
        out.sort();
        out.dedup();
        out
    }
}

/// A forecast's day values, for callers that show them.
pub fn forecast_days(f: &Forecast, region: RegionCode) -> Vec<(chrono::NaiveDate, Option<u16>)> {
    f.series
        .get(&region)
        .map(|d| d.iter().map(|v| (v.date, v.aqi)).collect())
        .unwrap_or_default()
}

/// One log line per state change asked for by a person: who, what, on which warning or directive,
/// and what it did (the events recorded) or why it was refused.
fn log_action(what: &str, actor: &str, subject: &str, result: &Result<Vec<Event>, EngineError>) {
    match result {
        Ok(events) => tracing::info!(actor, action = what, subject, events = events.len(), "recorded"),
        Err(e) => tracing::warn!(actor, action = what, subject, error = %e, "refused"),
    }
}
