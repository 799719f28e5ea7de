//! The warning lifecycle (预警启动、调整、解除), a pure state machine per region.
//!
//! In: the region's current [`RegionState`], an [`Input`] (a consultation's assessment, a sign-off, a
//! regional directive, an operator's action, or a clock tick), `now` and the [`Playbook`]. Out: the
//! [`Event`]s to record. The state is a fold of those events ([`RegionState::apply`]), so the daemon
//! can rebuild it from the log. No clock, no disk.
//!
//! proposed (awaiting sign-off) → issued (start in the future) → active → lifted; upgrades wait for
//! their signer, downgrades and lifts follow the lift rule (below the current level for the lift
//! window; the higher level holds meanwhile), a lift followed by a new episode within the merge gap
//! re-opens the same warning, and a directive (调度令) holds a region at its level until released.

use chrono::{DateTime, Duration, NaiveDate, TimeZone, Utc};
use chrono_tz::Asia::Shanghai;
use serde::{Deserialize, Serialize};

use crate::consult::Assessment;
use crate::playbook::{Playbook, SignOff};
use crate::region::RegionCode;

/// Where a warning is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// Proposed by a consultation, awaiting sign-off.
    Pending,
    /// Signed and published; starts in the future.
    Issued,
    /// In force.
    Active,
    /// Over.
    Lifted,
    /// Withdrawn before it started.
    Cancelled,
}

impl Status {
    /// Pending, issued or active.
    pub fn is_live(self) -> bool {
        matches!(self, Status::Pending | Status::Issued | Status::Active)
    }
}

/// A change of level awaiting its signer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PendingChange {
    /// The level proposed.
    pub level: String,
    /// Its rank.
    pub rank: u32,
    /// The expected end that comes with it.
    pub expected_end: DateTime<Utc>,
    /// The rule that fired.
    pub rule: Option<String>,
}

/// A directive holding this region.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Hold {
    /// Directive id.
    pub directive: String,
    /// Least level.
    pub min_level: String,
    /// Its rank.
    pub rank: u32,
    /// Until when, if known.
    pub until: Option<DateTime<Utc>>,
}

/// One region's warning episode.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Warning {
    /// `REGION-YYYYMMDD-N`.
    pub id: String,
    /// The region.
    pub region: RegionCode,
    /// Where it is in its life.
    pub status: Status,
    /// The level in force (or proposed, while pending).
    pub level: String,
    /// Its rank.
    pub rank: u32,
    /// When measures apply from.
    pub start: DateTime<Utc>,
    /// When it is expected to end.
    pub expected_end: DateTime<Utc>,
    /// The rule that fired last.
    pub rule: Option<String>,
    /// When it was issued (signed), if it was.
    pub issued_at: Option<DateTime<Utc>>,
    /// When it was lifted or cancelled.
    pub ended_at: Option<DateTime<Utc>>,
    /// An upgrade awaiting its signer.
    pub pending_change: Option<PendingChange>,
    /// Since when consultations have put it below its level, and what they propose instead.
    pub below: Option<(DateTime<Utc>, Option<String>, u32)>,
    /// Directives holding it.
    pub holds: Vec<Hold>,
    /// The playbook pinned for the episode (`id@version`).
    pub playbook: String,
}

/// A region's lifecycle state.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct RegionState {
    /// The current or last warning.
    pub warning: Option<Warning>,
    /// How many episodes the region has had.
    pub episodes: u32,
}

/// What happened, as recorded in the event log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum EventKind {
    /// A consultation proposes a level that awaits sign-off (a new episode, a re-opened one, or an update).
    Proposed { id: String, level: String, rank: u32, start: DateTime<Utc>, expected_end: DateTime<Utc>, rule: Option<String>, needs: String, reopened: bool },
    /// The warning is issued (signed, automatic, or by directive).
    Issued { id: String, level: String, rank: u32, start: DateTime<Utc>, expected_end: DateTime<Utc>, rule: Option<String>, signer: Option<String>, reopened: bool },
    /// A proposal was withdrawn before sign-off (the forecast no longer calls for it).
    Withdrawn,
    /// The start time came.
    Started,
    /// An upgrade awaits its signer.
    ChangeProposed { level: String, rank: u32, expected_end: DateTime<Utc>, rule: Option<String>, needs: String },
    /// The pending upgrade is no longer called for.
    ChangeWithdrawn,
    /// The level changed.
    LevelChanged { from: String, to: String, rank: u32, expected_end: DateTime<Utc>, rule: Option<String>, signer: Option<String> },
    /// The expected end moved later.
    Extended { expected_end: DateTime<Utc> },
    /// An issued warning that has not started yet starts earlier: the forecast brings the episode forward.
    Rescheduled { start: DateTime<Utc> },
    /// Consultations now put the region below its level; the lift window runs from `since`.
    Below { since: DateTime<Utc>, proposal: Option<String>, rank: u32 },
    /// A consultation called for the level again; the lift window is reset.
    BelowCleared,
    /// Lifted (解除).
    Lifted,
    /// Cancelled before it started.
    Cancelled,
    /// A directive holds the region at least at its level.
    DirectiveApplied { directive: String, min_level: String, rank: u32, until: Option<DateTime<Utc>> },
    /// A directive no longer holds the region.
    DirectiveReleased { directive: String },
}

/// An event with who, when and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Event {
    /// The region.
    pub region: RegionCode,
    /// When it takes effect.
    pub at: DateTime<Utc>,
    /// Who: a signer's name, `consultation`, `directive:ID`, `clock`, an operator.
    pub actor: String,
    /// Why, in words.
    pub reason: String,
    /// The forecast behind it, if any.
    pub forecast_id: Option<String>,
    /// The playbook pinned for the episode.
    pub playbook: String,
    /// What happened.
    #[serde(flatten)]
    pub kind: EventKind,
}

/// What can happen to a region.
#[derive(Debug, Clone)]
pub enum Input<'a> {
    /// A consultation's assessment for this region.
    Consultation(&'a Assessment),
    /// A signer signs what is pending.
    SignOff { signer: &'a str, role: &'a str },
    /// A regional directive reaches this region.
    Directive { id: &'a str, min_level: &'a str, from: DateTime<Utc>, until: Option<DateTime<Utc>> },
    /// A directive is released.
    DirectiveLifted { id: &'a str },
    /// An operator lifts the warning.
    Lift { actor: &'a str, reason: &'a str },
    /// An operator cancels a warning that has not started.
    Cancel { actor: &'a str, reason: &'a str },
    /// Time passes.
    Tick,
}

/// Why an input was refused. Nothing changes.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LifecycleError {
    /// There is nothing awaiting sign-off.
    #[error("nothing awaits sign-off in region {0}")]
    NothingToSign(RegionCode),
    /// The role may not sign this level.
    #[error("role \"{role}\" may not sign a {level} warning (needs {needs})")]
    Forbidden { role: String, level: String, needs: String },
    /// There is no live warning.
    #[error("region {0} has no live warning")]
    NoWarning(RegionCode),
    /// A directive holds the warning.
    #[error("warning {id} is held by directive {directive} until it is released")]
    Held { id: String, directive: String },
    /// The warning has started; lift it instead.
    #[error("warning {0} has started; lift it instead of cancelling")]
    Started(String),
    /// A level the playbook does not define.
    #[error("undefined level \"{0}\"")]
    UndefinedLevel(String),
}

/// Start of a day (00:00 Asia/Shanghai) as UTC.
pub fn day_start(d: NaiveDate) -> DateTime<Utc> {
    Shanghai
        .from_local_datetime(&d.and_hms_opt(0, 0, 0).unwrap_or_default())
        .single()
        .map_or_else(|| DateTime::<Utc>::from_naive_utc_and_offset(d.and_hms_opt(0, 0, 0).unwrap_or_default(), Utc), |t| t.with_timezone(&Utc))
}

fn needs(pb: &Playbook, level: &str) -> Option<String> {
    match pb.level(level).map(|l| &l.sign_off) {
        Some(SignOff::Role(r)) => Some(r.clone()),
        _ => None,
    }
}

impl RegionState {
    /// Decides the events an input causes, applies them, and returns them.
    pub fn step(&mut self, region: RegionCode, input: Input<'_>, now: DateTime<Utc>, pb: &Playbook) -> Result<Vec<Event>, LifecycleError> {
        let events = self.decide(region, input, now, pb)?;
        for e in &events {
            self.apply(e);
        }
        Ok(events)
    }

    /// The live warning, if any.
    pub fn live(&self) -> Option<&Warning> {
        self.warning.as_ref().filter(|w| w.status.is_live())
    }

    /// Decides without changing anything.
    pub fn decide(&self, region: RegionCode, input: Input<'_>, now: DateTime<Utc>, pb: &Playbook) -> Result<Vec<Event>, LifecycleError> {
        let mut d = Decider { state: self.clone(), region, now, pb, out: Vec::new() };
        d.run(input)?;
        Ok(d.out)
    }

    /// Folds one event into the state.
    pub fn apply(&mut self, e: &Event) {
        match &e.kind {
            EventKind::Proposed { id, level, rank, start, expected_end, rule, reopened, .. }
            | EventKind::Issued { id, level, rank, start, expected_end, rule, reopened, .. } => {
                let issued = matches!(e.kind, EventKind::Issued { .. });
                let same = self.warning.as_ref().is_some_and(|w| &w.id == id);
                if !same {
                    if !reopened {
                        self.episodes += 1;
                    }
                    self.warning = Some(Warning {
                        id: id.clone(),
                        region: e.region,
                        status: Status::Pending,
                        level: level.clone(),
                        rank: *rank,
                        start: *start,
                        expected_end: *expected_end,
                        rule: rule.clone(),
                        issued_at: None,
                        ended_at: None,
                        pending_change: None,
                        below: None,
                        holds: Vec::new(),
                        playbook: e.playbook.clone(),
                    });
                }
                if let Some(w) = self.warning.as_mut() {
                    w.level = level.clone();
                    w.rank = *rank;
                    w.start = *start;
                    w.expected_end = *expected_end;
                    w.rule = rule.clone();
                    w.ended_at = None;
                    w.below = None;
                    if issued {
                        w.status = if *start <= e.at { Status::Active } else { Status::Issued };
                        w.issued_at = Some(e.at);
                    } else {
                        w.status = Status::Pending;
                    }
                }
            }
            kind => {
                let Some(w) = self.warning.as_mut() else { return };
                match kind {
                    EventKind::Withdrawn | EventKind::Cancelled => {
                        w.status = Status::Cancelled;
                        w.ended_at = Some(e.at);
                        w.pending_change = None;
                    }
                    EventKind::Started => w.status = Status::Active,
                    EventKind::ChangeProposed { level, rank, expected_end, rule, .. } => {
                        w.pending_change = Some(PendingChange { level: level.clone(), rank: *rank, expected_end: *expected_end, rule: rule.clone() });
                    }
                    EventKind::ChangeWithdrawn => w.pending_change = None,
                    EventKind::LevelChanged { to, rank, expected_end, rule, .. } => {
                        w.level = to.clone();
                        w.rank = *rank;
                        w.expected_end = *expected_end;
                        w.rule = rule.clone();
                        w.pending_change = None;
                        w.below = None;
                    }
                    EventKind::Extended { expected_end } => w.expected_end = *expected_end,
                    EventKind::Rescheduled { start } => w.start = *start,
                    EventKind::Below { since, proposal, rank } => w.below = Some((*since, proposal.clone(), *rank)),
                    EventKind::BelowCleared => w.below = None,
                    EventKind::Lifted => {
                        w.status = Status::Lifted;
                        w.ended_at = Some(e.at);
                        w.pending_change = None;
                        w.below = None;
                        w.holds.clear();
                    }
                    EventKind::DirectiveApplied { directive, min_level, rank, until } => {
                        w.holds.retain(|h| &h.directive != directive);
                        w.holds.push(Hold { directive: directive.clone(), min_level: min_level.clone(), rank: *rank, until: *until });
                    }
                    EventKind::DirectiveReleased { directive } => w.holds.retain(|h| &h.directive != directive),
                    EventKind::Proposed { .. } | EventKind::Issued { .. } => {}
                }
            }
        }
    }
}

/// Works out the events for one input, applying each to a scratch copy so later steps see earlier ones.
struct Decider<'a> {
    state: RegionState,
    region: RegionCode,
    now: DateTime<Utc>,
    pb: &'a Playbook,
    out: Vec<Event>,
}

impl Decider<'_> {
    fn emit(&mut self, at: DateTime<Utc>, actor: &str, reason: String, forecast_id: Option<&str>, kind: EventKind) {
        let playbook = self.state.live().map_or_else(|| self.pb.pin(), |w| w.playbook.clone());
        let e = Event { region: self.region, at, actor: actor.to_string(), reason, forecast_id: forecast_id.map(str::to_string), playbook, kind };
        self.state.apply(&e);
        self.out.push(e);
    }

    fn live(&self) -> Option<&Warning> {
        self.state.live()
    }

    fn floor(&self) -> u32 {
        self.live().map_or(0, |w| w.holds.iter().map(|h| h.rank).max().unwrap_or(0))
    }

    fn run(&mut self, input: Input<'_>) -> Result<(), LifecycleError> {
        match input {
            Input::Consultation(a) => self.consultation(a),
            Input::SignOff { signer, role } => self.sign_off(signer, role)?,
            Input::Directive { id, min_level, from, until } => self.directive(id, min_level, from, until)?,
            Input::DirectiveLifted { id } => {
                if self.live().is_some_and(|w| w.holds.iter().any(|h| h.directive == id)) {
                    self.emit(self.now, &format!("directive:{id}"), format!("directive {id} released"), None, EventKind::DirectiveReleased { directive: id.into() });
                }
            }
            Input::Lift { actor, reason } => self.manual_end(actor, reason, false)?,
            Input::Cancel { actor, reason } => self.manual_end(actor, reason, true)?,
            Input::Tick => {}
        }
        self.tick();
        Ok(())
    }

    /// New episode id, or the last one when this start lies within the merge gap of its end.
    fn episode_id(&self, start: DateTime<Utc>) -> (String, bool) {
        if let Some(w) = &self.state.warning {
            if w.status == Status::Lifted && w.ended_at.is_some_and(|end| start - end < self.pb.merge_gap) {
                return (w.id.clone(), true);
            }
        }
        let date = self.now.with_timezone(&Shanghai).format("%Y%m%d");
        (format!("{}-{date}-{}", self.region, self.state.episodes + 1), false)
    }

    fn span_of(&self, a: &Assessment) -> (DateTime<Utc>, DateTime<Utc>) {
        let first = a.days.first().map_or(self.now, |d| day_start(*d));
        let last = a.days.last().map_or(self.now, |d| day_start(d.succ_opt().unwrap_or(*d)));
        ((first).max(self.now + self.pb.lead_time), last.max(self.now + self.pb.lead_time))
    }

    fn consultation(&mut self, a: &Assessment) {
        let fid = Some(a.forecast_id.as_str());
        let actor = "consultation";
        let Some(w) = self.live().cloned() else {
            let Some(level) = a.level.clone() else { return };
            let (start, end) = self.span_of(a);
            let (id, reopened) = self.episode_id(start);
            let reason = format!("forecast meets {} ({})", level, a.rule.clone().unwrap_or_default());
            match needs(self.pb, &level) {
                Some(role) => self.emit(self.now, actor, reason, fid, EventKind::Proposed { id, level, rank: a.rank, start, expected_end: end, rule: a.rule.clone(), needs: role, reopened }),
                None => self.emit(self.now, "auto", reason, fid, EventKind::Issued { id, level, rank: a.rank, start, expected_end: end, rule: a.rule.clone(), signer: None, reopened }),
            }
            return;
        };
        match w.status {
            Status::Pending => {
                let Some(level) = a.level.clone() else {
                    self.emit(self.now, actor, "forecast no longer meets any level".into(), fid, EventKind::Withdrawn);
                    return;
                };
                let (start, end) = self.span_of(a);
                if level != w.level || start != w.start || end != w.expected_end {
                    let reason = format!("forecast now meets {level} ({})", a.rule.clone().unwrap_or_default());
                    match needs(self.pb, &level) {
                        Some(role) => self.emit(self.now, actor, reason, fid, EventKind::Proposed { id: w.id, level, rank: a.rank, start, expected_end: end, rule: a.rule.clone(), needs: role, reopened: false }),
                        None => self.emit(self.now, "auto", reason, fid, EventKind::Issued { id: w.id, level, rank: a.rank, start, expected_end: end, rule: a.rule.clone(), signer: None, reopened: false }),
                    }
                }
            }
            _ => {
                let (start, end) = self.span_of(a);
                if w.status == Status::Issued && a.rank >= w.rank && start < w.start {
                    self.emit(self.now, actor, "forecast brings the episode forward".into(), fid, EventKind::Rescheduled { start });
                }
                if a.rank > w.rank {
                    if w.below.is_some() {
                        self.emit(self.now, actor, "forecast calls for the level again".into(), fid, EventKind::BelowCleared);
                    }
                    let level = a.level.clone().unwrap_or_default();
                    let end = end.max(w.expected_end);
                    let reason = format!("forecast meets {level} ({})", a.rule.clone().unwrap_or_default());
                    match needs(self.pb, &level) {
                        Some(role) if w.pending_change.as_ref().is_none_or(|p| p.level != level || p.expected_end != end) => {
                            self.emit(self.now, actor, reason, fid, EventKind::ChangeProposed { level, rank: a.rank, expected_end: end, rule: a.rule.clone(), needs: role })
                        }
                        Some(_) => {}
                        None => self.emit(self.now, "auto", reason, fid, EventKind::LevelChanged { from: w.level.clone(), to: level, rank: a.rank, expected_end: end, rule: a.rule.clone(), signer: None }),
                    }
                    return;
                }
                if w.pending_change.is_some() {
                    self.emit(self.now, actor, "forecast no longer calls for the higher level".into(), fid, EventKind::ChangeWithdrawn);
                }
                let target = a.rank.max(self.floor());
                if target >= w.rank {
                    if w.below.is_some() {
                        self.emit(self.now, actor, "forecast calls for the level again".into(), fid, EventKind::BelowCleared);
                    }
                    if a.rank == w.rank && end > w.expected_end {
                        self.emit(self.now, actor, format!("forecast keeps {} until later", w.level), fid, EventKind::Extended { expected_end: end });
                    }
                    return;
                }
                let proposal = if target == a.rank { a.level.clone() } else { self.pb.levels.iter().find(|l| l.rank == target).map(|l| l.id.clone()) };
                let since = if self.pb.hold_higher { w.below.as_ref().map_or(self.now, |b| b.0) } else { self.now - self.pb.lift_window };
                if w.below.as_ref().is_none_or(|b| b.1 != proposal) {
                    let reason = format!("forecast below {} (proposes {})", w.level, proposal.as_deref().unwrap_or("none"));
                    self.emit(self.now, actor, reason, fid, EventKind::Below { since, proposal, rank: target });
                }
            }
        }
    }

    /// Clock-driven changes: start, directive expiry, and the lift rule.
    fn tick(&mut self) {
        let Some(w) = self.live().cloned() else { return };
        for h in &w.holds {
            if let Some(until) = h.until.filter(|u| *u <= self.now) {
                self.emit(until, "clock", format!("directive {} ran out", h.directive), None, EventKind::DirectiveReleased { directive: h.directive.clone() });
            }
        }
        let Some(w) = self.live().cloned() else { return };
        if w.status == Status::Issued && w.start <= self.now {
            self.emit(w.start, "clock", "start time reached".into(), None, EventKind::Started);
        }
        let Some(w) = self.live().cloned() else { return };
        if let Some((since, proposal, rank)) = &w.below {
            let at = *since + self.pb.lift_window;
            if at > self.now || matches!(w.status, Status::Pending) || *rank < self.floor() {
                return;
            }
            let reason = format!("below {} for the lift window of {} h", w.level, self.pb.lift_window.num_hours());
            match proposal {
                None if w.status == Status::Issued => self.emit(at.max(w.issued_at.unwrap_or(at)), "clock", reason, None, EventKind::Cancelled),
                None => self.emit(at, "clock", reason, None, EventKind::Lifted),
                Some(level) => self.emit(at, "clock", reason, None, EventKind::LevelChanged { from: w.level.clone(), to: level.clone(), rank: *rank, expected_end: w.expected_end, rule: None, signer: None }),
            }
        }
    }

    fn sign_off(&mut self, signer: &str, role: &str) -> Result<(), LifecycleError> {
        let w = self.live().cloned().ok_or(LifecycleError::NothingToSign(self.region))?;
        let (level, rank, end, rule) = match (&w.status, &w.pending_change) {
            (Status::Pending, _) => (w.level.clone(), w.rank, w.expected_end, w.rule.clone()),
            (_, Some(p)) => (p.level.clone(), p.rank, p.expected_end, p.rule.clone()),
            _ => return Err(LifecycleError::NothingToSign(self.region)),
        };
        if !self.pb.may_sign(&level, role) {
            return Err(LifecycleError::Forbidden { role: role.into(), needs: needs(self.pb, &level).unwrap_or_default(), level });
        }
        let reason = format!("signed by {signer} ({role})");
        if w.status == Status::Pending {
            let start = w.start.max(self.now + self.pb.lead_time);
            let end = end.max(start);
            self.emit(self.now, signer, reason, None, EventKind::Issued { id: w.id, level, rank, start, expected_end: end, rule, signer: Some(signer.into()), reopened: false });
        } else {
            self.emit(self.now, signer, reason, None, EventKind::LevelChanged { from: w.level, to: level, rank, expected_end: end, rule, signer: Some(signer.into()) });
        }
        Ok(())
    }

    fn directive(&mut self, id: &str, min_level: &str, from: DateTime<Utc>, until: Option<DateTime<Utc>>) -> Result<(), LifecycleError> {
        let rank = self.pb.level(min_level).ok_or_else(|| LifecycleError::UndefinedLevel(min_level.into()))?.rank;
        let actor = format!("directive:{id}");
        let start = from.max(self.now);
        let end = until.unwrap_or(start + Duration::days(1));
        match self.live().cloned() {
            None => {
                let (wid, reopened) = self.episode_id(start);
                self.emit(self.now, &actor, format!("directive {id}: at least {min_level}"), None, EventKind::Issued { id: wid, level: min_level.into(), rank, start, expected_end: end, rule: None, signer: Some(actor.clone()), reopened });
            }
            Some(w) if w.status == Status::Pending => {
                let (level, rank) = if w.rank > rank { (w.level.clone(), w.rank) } else { (min_level.to_string(), rank) };
                self.emit(self.now, &actor, format!("directive {id}: at least {min_level}"), None, EventKind::Issued { id: w.id, level, rank, start: w.start.min(start), expected_end: w.expected_end.max(end), rule: w.rule.clone(), signer: Some(actor.clone()), reopened: false });
            }
            Some(w) if w.rank < rank => {
                self.emit(self.now, &actor, format!("directive {id}: at least {min_level}"), None, EventKind::LevelChanged { from: w.level, to: min_level.into(), rank, expected_end: w.expected_end.max(end), rule: None, signer: Some(actor.clone()) });
            }
            Some(_) => {}
        }
        self.emit(self.now, &actor, format!("held at least at {min_level} by directive {id}"), None, EventKind::DirectiveApplied { directive: id.into(), min_level: min_level.into(), rank, until });
        if self.live().is_some_and(|w| w.below.as_ref().is_some_and(|b| b.2 < rank)) {
            self.emit(self.now, &actor, "directive holds the level".into(), None, EventKind::BelowCleared);
        }
        Ok(())
    }

    fn manual_end(&mut self, actor: &str, reason: &str, cancel: bool) -> Result<(), LifecycleError> {
        let w = self.live().cloned().ok_or(LifecycleError::NoWarning(self.region))?;
        if let Some(h) = w.holds.first() {
            return Err(LifecycleError::Held { id: w.id, directive: h.directive.clone() });
        }
        let kind = match (w.status, cancel) {
            (Status::Active, true) => return Err(LifecycleError::Started(w.id)),
            (Status::Active, false) => EventKind::Lifted,
            (Status::Pending, _) => EventKind::Withdrawn,
            _ => EventKind::Cancelled,
        };
        self.emit(self.now, actor, reason.to_string(), None, kind);
        Ok(())
    }
}
