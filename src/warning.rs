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
    Proposed {
        id: String,
        level: String,
        rank: u32,
        start: DateTime<Utc>,
        expected_end: DateTime<Utc>,
        rule: Option<String>,
        needs: String,
        reopened: bool,
    },
    /// The warning is issued (signed, automatic, or by directive).
    Issued {
        id: String,
        level: String,
        rank: u32,
        start: DateTime<Utc>,
        expected_end: DateTime<Utc>,
        rule: Option<String>,
        signer: Option<String>,
        reopened: bool,
    },
    /// A proposal was withdrawn before sign-off (the forecast no longer calls for it).
    Withdrawn,
    /// The start time came.
    Started,
    /// An upgrade awaits its signer.
    ChangeProposed {
        level: String,
        rank: u32,
        expected_end: DateTime<Utc>,
        rule: Option<String>,
        needs: String,
    },
    /// The pending upgrade is no longer called for.
    ChangeWithdrawn,
    /// The level changed.
    LevelChanged {
        from: String,
        to: String,
        rank: u32,
        expected_end: DateTime<Utc>,
        rule: Option<String>,
        signer: Option<String>,
    },
    /// The expected end moved later.
    Extended { expected_end: DateTime<Utc> },
    /// An issued warning that has not started yet starts earlier: the forecast brings the episode forward.
    Rescheduled { start: DateTime<Utc> },
    /// Consultations now put the region below its level; the lift window runs from `since`.
    Below {
        since: DateTime<Utc>,
        proposal: Option<String>,
        rank: u32,
    },
    /// A consultation called for the level again; the lift window is reset.
    BelowCleared,
    /// Lifted (解除).
    Lifted,
    /// Cancelled before it started.
    Cancelled,
    /// A directive holds the region at least at its level.
    DirectiveApplied {
        directive: String,
        min_level: String,
        rank: u32,
        until: Option<DateTime<Utc>>,
    },
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
    Directive {
        id: &'a str,
        min_level: &'a str,
        from: DateTime<Utc>,
        until: Option<DateTime<Utc>>,
    },
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
        .map_or_else(
            || DateTime::<Utc>::from_naive_utc_and_offset(d.and_hms_opt(0, 0, 0).unwrap_or_default(), Utc),
            |t| t.with_timezone(&Utc),
        )
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
        let mut d = Decider {
            state: self.clone(),
            region,
            now,
            pb,
            out: Vec::new(),
        };
        d.run(input)?;
        Ok(d.out)
    }

    /// Folds one event into the state.
    pub fn apply(&mut self, e: &Event) {
        match &e.kind {
            EventKind::Proposed {
                id,
                level,
                rank,
                start,
                expected_end,
                rule,
                reopened,
                ..
            }
            | EventKind::Issued {
                id,
                level,
                rank,
                start,
                expected_end,
                rule,
                reopened,
                ..
            } => {
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
                    EventKind::ChangeProposed {
                        level,
                        rank,
                        expected_end,
                        rule,
                        ..
                    } => {
                        w.pending_change = Some(PendingChange {
                            level: level.clone(),
                            rank: *rank,
                            expected_end: *expected_end,
                            rule: rule.clone(),
                        });
                    }
                    EventKind::ChangeWithdrawn => w.pending_change = None,
                    EventKind::LevelChanged {
                        to,
                        rank,
                        expected_end,
                        rule,
                        ..
                    } => {
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
                    EventKind::DirectiveApplied {
                        directive,
                        min_level,
                        rank,
                        until,
                    } => {
                        w.holds.retain(|h| &h.directive != directive);
                        w.holds.push(Hold {
                            directive: directive.clone(),
                            min_level: min_level.clone(),
                            rank: *rank,
                            until: *until,
                        });
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
        let e = Event {
            region: self.region,
            at,
            actor: actor.to_string(),
            reason,
            forecast_id: forecast_id.map(str::to_string),
            playbook,
            kind,
        };
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
            Input::Directive {
                id,
                min_level,
                from,
                until,
            } => self.directive(id, min_level, from, until)?,
            Input::DirectiveLifted { id } => {
                if self.live().is_some_and(|w| w.holds.iter().any(|h| h.directive == id)) {
                    self.emit(
                        self.now,
                        &format!("directive:{id}"),
                        format!("directive {id} released"),
                        None,
                        EventKind::DirectiveReleased { directive: id.into() },
                    );
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
        if let Some(w) = &self.state.warning
            && w.status == Status::Lifted
            && w.ended_at.is_some_and(|end| start - end < self.pb.merge_gap)
        {
            return (w.id.clone(), true);
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
                Some(role) => self.emit(
                    self.now,
                    actor,
                    reason,
                    fid,
                    EventKind::Proposed {
                        id,
                        level,
                        rank: a.rank,
                        start,
                        expected_end: end,
                        rule: a.rule.clone(),
                        needs: role,
                        reopened,
                    },
                ),
                None => self.emit(
                    self.now,
                    "auto",
                    reason,
                    fid,
                    EventKind::Issued {
                        id,
                        level,
                        rank: a.rank,
                        start,
                        expected_end: end,
                        rule: a.rule.clone(),
                        signer: None,
                        reopened,
                    },
                ),
            }
            return;
        };
        match w.status {
            Status::Pending => {
                let Some(level) = a.level.clone() else {
                    self.emit(
                        self.now,
                        actor,
                        "forecast no longer meets any level".into(),
                        fid,
                        EventKind::Withdrawn,
                    );
                    return;
                };
                let (start, end) = self.span_of(a);
                if level != w.level || start != w.start || end != w.expected_end {
                    let reason = format!("forecast now meets {level} ({})", a.rule.clone().unwrap_or_default());
                    match needs(self.pb, &level) {
                        Some(role) => self.emit(
                            self.now,
                            actor,
                            reason,
                            fid,
                            EventKind::Proposed {
                                id: w.id,
                                level,
                                rank: a.rank,
                                start,
                                expected_end: end,
                                rule: a.rule.clone(),
                                needs: role,
                                reopened: false,
                            },
                        ),
                        None => self.emit(
                            self.now,
                            "auto",
                            reason,
                            fid,
                            EventKind::Issued {
                                id: w.id,
                                level,
                                rank: a.rank,
                                start,
                                expected_end: end,
                                rule: a.rule.clone(),
                                signer: None,
                                reopened: false,
                            },
                        ),
                    }
                }
            }
            _ => {
                let (start, end) = self.span_of(a);
                if w.status == Status::Issued && a.rank >= w.rank && start < w.start {
                    self.emit(
                        self.now,
                        actor,
                        "forecast brings the episode forward".into(),
                        fid,
                        EventKind::Rescheduled { start },
                    );
                }
                if a.rank > w.rank {
                    if w.below.is_some() {
                        self.emit(
                            self.now,
                            actor,
                            "forecast calls for the level again".into(),
                            fid,
                            EventKind::BelowCleared,
                        );
                    }
                    let level = a.level.clone().unwrap_or_default();
                    let end = end.max(w.expected_end);
                    let reason = format!("forecast meets {level} ({})", a.rule.clone().unwrap_or_default());
                    match needs(self.pb, &level) {
                        Some(role) if w.pending_change.as_ref().is_none_or(|p| p.level != level || p.expected_end != end) => self.emit(
                            self.now,
                            actor,
                            reason,
                            fid,
                            EventKind::ChangeProposed {
                                level,
                                rank: a.rank,
                                expected_end: end,
                                rule: a.rule.clone(),
                                needs: role,
                            },
                        ),
                        Some(_) => {}
                        None => self.emit(
                            self.now,
                            "auto",
                            reason,
                            fid,
                            EventKind::LevelChanged {
                                from: w.level.clone(),
                                to: level,
                                rank: a.rank,
                                expected_end: end,
                                rule: a.rule.clone(),
                                signer: None,
                            },
                        ),
                    }
                    return;
                }
                if w.pending_change.is_some() {
                    self.emit(
                        self.now,
                        actor,
                        "forecast no longer calls for the higher level".into(),
                        fid,
                        EventKind::ChangeWithdrawn,
                    );
                }
                let target = a.rank.max(self.floor());
                if target >= w.rank {
                    if w.below.is_some() {
                        self.emit(
                            self.now,
                            actor,
                            "forecast calls for the level again".into(),
                            fid,
                            EventKind::BelowCleared,
                        );
                    }
                    if a.rank == w.rank && end > w.expected_end {
                        self.emit(
                            self.now,
                            actor,
                            format!("forecast keeps {} until later", w.level),
                            fid,
                            EventKind::Extended { expected_end: end },
                        );
                    }
                    return;
                }
                let proposal = if target == a.rank {
                    a.level.clone()
                } else {
                    self.pb.levels.iter().find(|l| l.rank == target).map(|l| l.id.clone())
                };
                let since = if self.pb.hold_higher {
                    w.below.as_ref().map_or(self.now, |b| b.0)
                } else {
                    self.now - self.pb.lift_window
                };
                if w.below.as_ref().is_none_or(|b| b.1 != proposal) {
                    let reason = format!("forecast below {} (proposes {})", w.level, proposal.as_deref().unwrap_or("none"));
                    self.emit(
                        self.now,
                        actor,
                        reason,
                        fid,
                        EventKind::Below {
                            since,
                            proposal,
                            rank: target,
                        },
                    );
                }
            }
        }
    }

    /// Clock-driven changes: start, directive expiry, and the lift rule.
    fn tick(&mut self) {
        let Some(w) = self.live().cloned() else { return };
        for h in &w.holds {
            if let Some(until) = h.until.filter(|u| *u <= self.now) {
                self.emit(
                    until,
                    "clock",
                    format!("directive {} ran out", h.directive),
                    None,
                    EventKind::DirectiveReleased {
                        directive: h.directive.clone(),
                    },
                );
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
                None if w.status == Status::Issued => {
                    self.emit(at.max(w.issued_at.unwrap_or(at)), "clock", reason, None, EventKind::Cancelled)
                }
                None => self.emit(at, "clock", reason, None, EventKind::Lifted),
                Some(level) => self.emit(
                    at,
                    "clock",
                    reason,
                    None,
                    EventKind::LevelChanged {
                        from: w.level.clone(),
                        to: level.clone(),
                        rank: *rank,
                        expected_end: w.expected_end,
                        rule: None,
                        signer: None,
                    },
                ),
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
            return Err(LifecycleError::Forbidden {
                role: role.into(),
                needs: needs(self.pb, &level).unwrap_or_default(),
                level,
            });
        }
        let reason = format!("signed by {signer} ({role})");
        if w.status == Status::Pending {
            let start = w.start.max(self.now + self.pb.lead_time);
            let end = end.max(start);
            self.emit(
                self.now,
                signer,
                reason,
                None,
                EventKind::Issued {
                    id: w.id,
                    level,
                    rank,
                    start,
                    expected_end: end,
                    rule,
                    signer: Some(signer.into()),
                    reopened: false,
                },
            );
        } else {
            self.emit(
                self.now,
                signer,
                reason,
                None,
                EventKind::LevelChanged {
                    from: w.level,
                    to: level,
                    rank,
                    expected_end: end,
                    rule,
                    signer: Some(signer.into()),
                },
            );
        }
        Ok(())
    }

    fn directive(&mut self, id: &str, min_level: &str, from: DateTime<Utc>, until: Option<DateTime<Utc>>) -> Result<(), LifecycleError> {
        let rank = self
            .pb
            .level(min_level)
            .ok_or_else(|| LifecycleError::UndefinedLevel(min_level.into()))?
            .rank;
        let actor = format!("directive:{id}");
        let start = from.max(self.now);
        let end = until.unwrap_or(start + Duration::days(1));
        match self.live().cloned() {
            None => {
                let (wid, reopened) = self.episode_id(start);
                self.emit(
                    self.now,
                    &actor,
                    format!("directive {id}: at least {min_level}"),
                    None,
                    EventKind::Issued {
                        id: wid,
                        level: min_level.into(),
                        rank,
                        start,
                        expected_end: end,
                        rule: None,
                        signer: Some(actor.clone()),
                        reopened,
                    },
                );
            }
            Some(w) if w.status == Status::Pending => {
                let (level, rank) = if w.rank > rank {
                    (w.level.clone(), w.rank)
                } else {
                    (min_level.to_string(), rank)
                };
                self.emit(
                    self.now,
                    &actor,
                    format!("directive {id}: at least {min_level}"),
                    None,
                    EventKind::Issued {
                        id: w.id,
                        level,
                        rank,
                        start: w.start.min(start),
                        expected_end: w.expected_end.max(end),
                        rule: w.rule.clone(),
                        signer: Some(actor.clone()),
                        reopened: false,
                    },
                );
            }
            Some(w) if w.rank < rank => {
                self.emit(
                    self.now,
                    &actor,
                    format!("directive {id}: at least {min_level}"),
                    None,
                    EventKind::LevelChanged {
                        from: w.level,
                        to: min_level.into(),
                        rank,
                        expected_end: w.expected_end.max(end),
                        rule: None,
                        signer: Some(actor.clone()),
                    },
                );
            }
            Some(_) => {}
        }
        self.emit(
            self.now,
            &actor,
            format!("held at least at {min_level} by directive {id}"),
            None,
            EventKind::DirectiveApplied {
                directive: id.into(),
                min_level: min_level.into(),
                rank,
                until,
            },
        );
        if self.live().is_some_and(|w| w.below.as_ref().is_some_and(|b| b.2 < rank)) {
            self.emit(self.now, &actor, "directive holds the level".into(), None, EventKind::BelowCleared);
        }
        Ok(())
    }

    fn manual_end(&mut self, actor: &str, reason: &str, cancel: bool) -> Result<(), LifecycleError> {
        let w = self.live().cloned().ok_or(LifecycleError::NoWarning(self.region))?;
        if let Some(h) = w.holds.first() {
            return Err(LifecycleError::Held {
                id: w.id,
                directive: h.directive.clone(),
            });
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

#[cfg(test)]
mod tests {
    //! Every transition of the lifecycle on a small playbook, as a timeline in Asia/Shanghai time. Each step also
    //! checks the event-sourcing property: folding every event recorded so far from an empty state gives the
    //! state the step produced.

    use super::*;
    use crate::consult::assess_region;
    use crate::forecast::{DayValue, parse_time};
    use crate::playbook::load_files;
    use crate::region::Regions;

    /// Four levels so that both kinds of sign-off are there: blue is automatic, yellow and orange need a deputy
    /// head, red the head.
    const PLAYBOOK: &str = r##"
id: test
version: "7"
name: 测试预案
scope: "140000"
horizon_days: 7
lead_time_hours: 24
lift_window_hours: 36
merge_gap_hours: 48
hold_higher: true
roles:
  - { id: duty_officer, name: 值班员, rank: 1 }
  - { id: deputy_head, name: 分管副省长, rank: 2 }
  - { id: head, name: 省长, rank: 3 }
levels:
  - { id: blue, rank: 1, name: 蓝色预警, colour: "#0000FF", response: Ⅳ级, sign_off: auto, entry: { aqi_gt: 150, days: 1 } }
  - { id: yellow, rank: 2, name: 黄色预警, colour: "#FFFF00", response: Ⅲ级, sign_off: deputy_head, entry: { aqi_gt: 200, days: 1 } }
  - { id: orange, rank: 3, name: 橙色预警, colour: "#FF7E00", response: Ⅱ级, sign_off: deputy_head, entry: { aqi_gt: 200, days: 2 } }
  - id: red
    rank: 4
    name: 红色预警
    colour: "#FF0000"
    response: Ⅰ级
    sign_off: head
    entry: { all: [ { aqi_gt: 200, days: 3 }, { aqi_gt: 300, days: 1 } ] }
"##;

    const ORDER: &str = "晋气防办调度令-2026-4";

    fn playbook(yaml: &str) -> Playbook {
        let set = load_files(vec![("test.yaml".into(), yaml.to_string())], Regions::shanxi()).expect("the test playbook is valid");
        set.get("test").unwrap().as_ref().clone()
    }

    fn region() -> RegionCode {
        RegionCode::parse("140100").unwrap()
    }

    /// A time in Asia/Shanghai.
    fn t(s: &str) -> DateTime<Utc> {
        parse_time(s).unwrap().with_timezone(&Utc)
    }

    fn kind_name(k: &EventKind) -> &'static str {
        match k {
            EventKind::Proposed { .. } => "proposed",
            EventKind::Issued { .. } => "issued",
            EventKind::Withdrawn => "withdrawn",
            EventKind::Started => "started",
            EventKind::ChangeProposed { .. } => "change_proposed",
            EventKind::ChangeWithdrawn => "change_withdrawn",
            EventKind::LevelChanged { .. } => "level_changed",
            EventKind::Extended { .. } => "extended",
            EventKind::Rescheduled { .. } => "rescheduled",
            EventKind::Below { .. } => "below",
            EventKind::BelowCleared => "below_cleared",
            EventKind::Lifted => "lifted",
            EventKind::Cancelled => "cancelled",
            EventKind::DirectiveApplied { .. } => "directive_applied",
            EventKind::DirectiveReleased { .. } => "directive_released",
        }
    }

    fn kinds(events: &[Event]) -> Vec<&'static str> {
        events.iter().map(|e| kind_name(&e.kind)).collect()
    }

    /// One region's lifecycle with its event log.
    struct Timeline {
        pb: Playbook,
        state: RegionState,
        log: Vec<Event>,
        forecasts: u32,
    }

    impl Timeline {
        fn new() -> Self {
            Self::with(playbook(PLAYBOOK))
        }

        fn with(pb: Playbook) -> Self {
            Timeline {
                pb,
                state: RegionState::default(),
                log: Vec::new(),
                forecasts: 0,
            }
        }

        fn try_input(&mut self, now: &str, input: Input<'_>) -> Result<Vec<Event>, LifecycleError> {
            let before = self.state.clone();
            let result = self.state.step(region(), input, t(now), &self.pb);
            match &result {
                Ok(events) => self.log.extend(events.iter().cloned()),
                Err(_) => assert_eq!(self.state, before, "a refused input changes nothing"),
            }
            let mut folded = RegionState::default();
            for e in &self.log {
                folded.apply(e);
            }
            assert_eq!(folded, self.state, "the state is the fold of its events");
            result
        }

        fn input(&mut self, now: &str, input: Input<'_>) -> Vec<Event> {
            self.try_input(now, input).expect("input accepted")
        }

        /// A consultation at `now` whose forecast gives `values` for the days after `now`'s date.
        fn consult(&mut self, now: &str, values: &[u16]) -> Vec<Event> {
            self.forecasts += 1;
            let a = self.assessment(now, values);
            self.input(now, Input::Consultation(&a))
        }

        fn assessment(&self, now: &str, values: &[u16]) -> Assessment {
            let issue = t(now).with_timezone(&Shanghai).date_naive();
            let days: Vec<DayValue> = values
                .iter()
                .enumerate()
                .map(|(i, v)| DayValue {
                    date: issue + Duration::days(1 + i as i64),
                    aqi: Some(*v),
                    primary: Vec::new(),
                    computed: false,
                })
                .collect();
            assess_region(region(), &days, issue, &format!("f{}", self.forecasts), &self.pb)
        }

        fn tick(&mut self, now: &str) -> Vec<Event> {
            self.input(now, Input::Tick)
        }

        fn sign(&mut self, now: &str, signer: &str, role: &str) -> Vec<Event> {
            self.input(now, Input::SignOff { signer, role })
        }

        fn warning(&self) -> &Warning {
            self.state.warning.as_ref().expect("a warning")
        }
    }

    /// Orange proposed on 12-01 16:00 for 12-03 and 12-04.
    fn proposed_orange() -> Timeline {
        let mut tl = Timeline::new();
        tl.consult("2026-12-01 16:00", &[50, 201, 201, 50]);
        tl
    }

    /// The same, signed at 17:00: issued, starting 12-03 00:00.
    fn issued_orange() -> Timeline {
        let mut tl = proposed_orange();
        tl.sign("2026-12-01 17:00", "张副省长", "deputy_head");
        tl
    }

    /// The same, started.
    fn active_orange() -> Timeline {
        let mut tl = issued_orange();
        tl.tick("2026-12-03 00:00");
        assert_eq!(tl.warning().status, Status::Active);
        tl
    }

    // ---- proposal, sign-off, issue, start ------------------------------------------------------------------------

    #[test]
    fn a_consultation_that_meets_a_signed_level_proposes_it_and_waits_for_the_signer() {
        let tl = proposed_orange();
        assert_eq!(tl.log.len(), 1);
        let e = &tl.log[0];
        assert_eq!(
            e.kind,
            EventKind::Proposed {
                id: "140100-20261201-1".into(),
                level: "orange".into(),
                rank: 3,
                start: t("2026-12-03 00:00"),
                expected_end: t("2026-12-05 00:00"),
                rule: Some("AQI>200 for 2 days".into()),
                needs: "deputy_head".into(),
                reopened: false,
            }
        );
        assert_eq!((e.at, e.actor.as_str()), (t("2026-12-01 16:00"), "consultation"));
        assert_eq!(e.reason, "forecast meets orange (AQI>200 for 2 days)");
        assert_eq!((e.forecast_id.as_deref(), e.playbook.as_str()), (Some("f1"), "test@7"));
        let w = tl.warning();
        assert_eq!((w.status, w.level.as_str(), w.issued_at), (Status::Pending, "orange", None));
        assert_eq!(tl.state.episodes, 1);
    }

    #[test]
    fn signing_issues_the_warning_to_start_on_the_first_covered_day() {
        let tl = issued_orange();
        let e = tl.log.last().unwrap();
        assert_eq!(
            e.kind,
            EventKind::Issued {
                id: "140100-20261201-1".into(),
                level: "orange".into(),
                rank: 3,
                start: t("2026-12-03 00:00"),
                expected_end: t("2026-12-05 00:00"),
                rule: Some("AQI>200 for 2 days".into()),
                signer: Some("张副省长".into()),
                reopened: false,
            }
        );
        assert_eq!(
            (e.actor.as_str(), e.reason.as_str()),
            ("张副省长", "signed by 张副省长 (deputy_head)")
        );
        let w = tl.warning();
        assert_eq!((w.status, w.issued_at), (Status::Issued, Some(t("2026-12-01 17:00"))));
    }

    #[test]
    fn a_late_signature_starts_the_warning_no_sooner_than_the_lead_time_after_it() {
        let mut tl = proposed_orange();
        tl.sign("2026-12-02 10:00", "张副省长", "deputy_head");
        assert_eq!(
            tl.warning().start,
            t("2026-12-03 10:00"),
            "24 h after the signature, not 12-03 00:00"
        );
        assert_eq!(tl.warning().status, Status::Issued);
    }

    #[test]
    fn the_warning_becomes_active_when_its_start_time_comes() {
        let mut tl = issued_orange();
        assert!(tl.tick("2026-12-02 23:59").is_empty());
        let events = tl.tick("2026-12-03 00:00");
        assert_eq!(kinds(&events), ["started"]);
        assert_eq!((events[0].at, events[0].actor.as_str()), (t("2026-12-03 00:00"), "clock"));
        assert_eq!(tl.warning().status, Status::Active);
        // A late tick records the start when it happened, not when it was noticed.
        let mut tl = issued_orange();
        let events = tl.tick("2026-12-03 09:00");
        assert_eq!(events[0].at, t("2026-12-03 00:00"));
    }

    #[test]
    fn a_level_that_needs_no_signature_is_issued_at_once() {
        let mut tl = Timeline::new();
        let events = tl.consult("2026-12-01 16:00", &[151, 100]);
        assert_eq!(kinds(&events), ["issued"]);
        assert_eq!(events[0].actor, "auto");
        let EventKind::Issued { level, signer, start, .. } = &events[0].kind else {
            unreachable!()
        };
        assert_eq!((level.as_str(), signer, *start), ("blue", &None, t("2026-12-02 16:00")));
        assert_eq!(tl.warning().status, Status::Issued);
    }

    #[test]
    fn a_signer_whose_role_may_not_sign_the_level_is_refused_and_nothing_changes() {
        let mut tl = proposed_orange();
        let refused = tl.try_input(
            "2026-12-01 17:00",
            Input::SignOff {
                signer: "值班员",
                role: "duty_officer",
            },
        );
        assert_eq!(
            refused,
            Err(LifecycleError::Forbidden {
                role: "duty_officer".into(),
                level: "orange".into(),
                needs: "deputy_head".into()
            })
        );
        let refused = tl.try_input(
            "2026-12-01 17:00",
            Input::SignOff {
                signer: "某人",
                role: "no_such_role",
            },
        );
        assert!(matches!(refused, Err(LifecycleError::Forbidden { .. })));
        assert_eq!(tl.warning().status, Status::Pending);
        // The head may sign what a deputy head may.
        tl.sign("2026-12-01 18:00", "王省长", "head");
        assert_eq!(tl.warning().status, Status::Issued);
    }

    #[test]
    fn signing_when_nothing_awaits_a_signature_is_refused() {
        let mut tl = Timeline::new();
        let refused = tl.try_input(
            "2026-12-01 17:00",
            Input::SignOff {
                signer: "王省长",
                role: "head",
            },
        );
        assert_eq!(refused, Err(LifecycleError::NothingToSign(region())));
        let mut tl = issued_orange();
        let refused = tl.try_input(
            "2026-12-01 18:00",
            Input::SignOff {
                signer: "王省长",
                role: "head",
            },
        );
        assert_eq!(refused, Err(LifecycleError::NothingToSign(region())));
    }

    #[test]
    fn a_pending_proposal_follows_the_latest_forecast() {
        let mut tl = proposed_orange();
        let events = tl.consult("2026-12-02 09:00", &[301, 301, 301, 50]);
        assert_eq!(kinds(&events), ["proposed"]);
        let EventKind::Proposed {
            id, level, needs, start, ..
        } = &events[0].kind
        else {
            unreachable!()
        };
        assert_eq!((id.as_str(), level.as_str(), needs.as_str()), ("140100-20261201-1", "red", "head"));
        assert_eq!(*start, t("2026-12-03 09:00"), "12-03 00:00 is sooner than the lead time allows");
        assert_eq!(tl.state.episodes, 1, "the same episode");
        // The same forecast again proposes nothing new.
        assert!(tl.consult("2026-12-02 09:00", &[301, 301, 301, 50]).is_empty());
    }

    #[test]
    fn a_pending_proposal_is_withdrawn_when_the_forecast_no_longer_meets_any_level() {
        let mut tl = proposed_orange();
        let events = tl.consult("2026-12-02 16:00", &[50, 50, 50]);
        assert_eq!(kinds(&events), ["withdrawn"]);
        assert_eq!(events[0].reason, "forecast no longer meets any level");
        assert_eq!(tl.warning().status, Status::Cancelled);
        assert!(tl.state.live().is_none());
        // The next episode gets a new id.
        let events = tl.consult("2026-12-03 16:00", &[201, 201]);
        let EventKind::Proposed { id, reopened, .. } = &events[0].kind else {
            unreachable!()
        };
        assert_eq!((id.as_str(), *reopened), ("140100-20261203-2", false));
    }

    // ---- upgrade -------------------------------------------------------------------------------------------------

    #[test]
    fn an_upgrade_waits_for_its_signer_and_then_changes_the_level() {
        let mut tl = active_orange();
        let events = tl.consult("2026-12-03 16:00", &[301, 301, 301, 50]);
        assert_eq!(kinds(&events), ["change_proposed"]);
        assert_eq!(
            events[0].kind,
            EventKind::ChangeProposed {
                level: "red".into(),
                rank: 4,
                expected_end: t("2026-12-07 00:00"),
                rule: Some("AQI>200 for 3 days and AQI>300 for 1 day".into()),
                needs: "head".into(),
            }
        );
        assert_eq!(tl.warning().level, "orange", "orange holds until red is signed");
        let refused = tl.try_input(
            "2026-12-03 17:00",
            Input::SignOff {
                signer: "张副省长",
                role: "deputy_head",
            },
        );
        assert_eq!(
            refused,
            Err(LifecycleError::Forbidden {
                role: "deputy_head".into(),
                level: "red".into(),
                needs: "head".into()
            }),
            "the refusal names who may sign the upgrade"
        );
        assert_eq!(
            refused.unwrap_err().to_string(),
            "role \"deputy_head\" may not sign a red warning (needs head)"
        );
        let events = tl.sign("2026-12-03 17:00", "王省长", "head");
        assert_eq!(
            events[0].kind,
            EventKind::LevelChanged {
                from: "orange".into(),
                to: "red".into(),
                rank: 4,
                expected_end: t("2026-12-07 00:00"),
                rule: Some("AQI>200 for 3 days and AQI>300 for 1 day".into()),
                signer: Some("王省长".into()),
            }
        );
        let w = tl.warning();
        assert_eq!((w.level.as_str(), w.rank, &w.pending_change), ("red", 4, &None));
        assert_eq!(w.id, "140100-20261201-1", "an upgrade is the same warning");
    }

    #[test]
    fn an_upgrade_no_longer_called_for_is_withdrawn() {
        let mut tl = active_orange();
        tl.consult("2026-12-03 16:00", &[301, 301, 301, 50]);
        assert!(tl.warning().pending_change.is_some());
        let events = tl.consult("2026-12-04 09:00", &[201, 201, 50]);
        assert_eq!(kinds(&events), ["change_withdrawn", "extended"], "orange still, now until 12-07");
        assert_eq!((tl.warning().level.as_str(), &tl.warning().pending_change), ("orange", &None));
        let refused = tl.try_input(
            "2026-12-04 10:00",
            Input::SignOff {
                signer: "王省长",
                role: "head",
            },
        );
        assert_eq!(refused, Err(LifecycleError::NothingToSign(region())));
    }

    #[test]
    fn an_upgrade_to_a_level_that_needs_no_signature_happens_at_once() {
        let mut tl = Timeline::new();
        // Yellow without a signature too.
        tl.pb.levels[1].sign_off = SignOff::Auto;
        tl.consult("2026-12-01 16:00", &[151]);
        let events = tl.consult("2026-12-01 20:00", &[201]);
        assert_eq!(kinds(&events), ["level_changed"]);
        assert_eq!((events[0].actor.as_str(), tl.warning().level.as_str()), ("auto", "yellow"));
    }

    // ---- downgrade, lift and the lift window --------------------------------------------------------------------

    #[test]
    fn a_lower_proposal_starts_the_lift_window_and_the_higher_level_holds_until_it_passes() {
        let mut tl = active_orange();
        let events = tl.consult("2026-12-03 16:00", &[201, 50, 50]);
        assert_eq!(kinds(&events), ["below"]);
        assert_eq!(
            events[0].kind,
            EventKind::Below {
                since: t("2026-12-03 16:00"),
                proposal: Some("yellow".into()),
                rank: 2
            }
        );
        assert_eq!(events[0].reason, "forecast below orange (proposes yellow)");
        assert_eq!(tl.warning().level, "orange");
        assert!(
            tl.consult("2026-12-04 16:00", &[201, 50]).is_empty(),
            "still below: the window keeps running"
        );
        assert!(tl.tick("2026-12-05 03:59").is_empty());
        let events = tl.tick("2026-12-05 04:00");
        assert_eq!(kinds(&events), ["level_changed"]);
        assert_eq!((events[0].at, events[0].actor.as_str()), (t("2026-12-05 04:00"), "clock"));
        assert_eq!(events[0].reason, "below orange for the lift window of 36 h");
        let EventKind::LevelChanged { from, to, signer, .. } = &events[0].kind else {
            unreachable!()
        };
        assert_eq!((from.as_str(), to.as_str(), signer), ("orange", "yellow", &None));
        // Then nothing at all: lifted 36 h after the first consultation below yellow.
        let events = tl.consult("2026-12-05 16:00", &[50, 50]);
        assert_eq!(
            events[0].kind,
            EventKind::Below {
                since: t("2026-12-05 16:00"),
                proposal: None,
                rank: 0
            }
        );
        assert!(tl.tick("2026-12-07 03:59").is_empty());
        let events = tl.tick("2026-12-07 04:00");
        assert_eq!(kinds(&events), ["lifted"]);
        let w = tl.warning();
        assert_eq!((w.status, w.ended_at), (Status::Lifted, Some(t("2026-12-07 04:00"))));
        assert!(tl.state.live().is_none());
    }

    #[test]
    fn a_forecast_below_every_level_lifts_the_warning_after_the_lift_window() {
        let mut tl = active_orange();
        tl.consult("2026-12-03 16:00", &[50, 50, 50]);
        let events = tl.tick("2026-12-05 04:00");
        assert_eq!(kinds(&events), ["lifted"]);
        assert_eq!(events[0].at, t("2026-12-05 04:00"));
    }

    #[test]
    fn a_proposal_back_up_to_the_level_clears_the_lift_window() {
        let mut tl = active_orange();
        tl.consult("2026-12-03 16:00", &[50, 50, 50]);
        let events = tl.consult("2026-12-04 16:00", &[201, 201, 50]);
        assert_eq!(kinds(&events), ["below_cleared", "extended"]);
        assert_eq!(tl.warning().below, None);
        assert!(tl.tick("2026-12-05 04:00").is_empty(), "no lift: the window was reset");
        assert_eq!(tl.warning().status, Status::Active);
    }

    #[test]
    fn a_forecast_that_falls_further_keeps_the_window_running_from_its_first_day() {
        let mut tl = active_orange();
        tl.consult("2026-12-03 16:00", &[201, 50]);
        let events = tl.consult("2026-12-04 16:00", &[50, 50]);
        assert_eq!(
            events[0].kind,
            EventKind::Below {
                since: t("2026-12-03 16:00"),
                proposal: None,
                rank: 0
            }
        );
        assert_eq!(kinds(&tl.tick("2026-12-05 04:00")), ["lifted"]);
    }

    #[test]
    fn without_hold_higher_a_lower_proposal_takes_effect_at_once() {
        let mut tl = Timeline::with(playbook(&PLAYBOOK.replace("hold_higher: true", "hold_higher: false")));
        tl.consult("2026-12-01 16:00", &[50, 201, 201, 50]);
        tl.sign("2026-12-01 17:00", "张副省长", "deputy_head");
        tl.tick("2026-12-03 00:00");
        let events = tl.consult("2026-12-03 16:00", &[201, 50]);
        assert_eq!(kinds(&events), ["below", "level_changed"]);
        assert_eq!(events[1].at, t("2026-12-03 16:00"));
        assert_eq!(tl.warning().level, "yellow");
    }

    #[test]
    fn an_issued_warning_whose_forecast_clears_before_it_starts_is_cancelled_after_the_lift_window() {
        let mut tl = Timeline::new();
        tl.consult("2026-12-01 16:00", &[50, 50, 50, 50, 201, 201]);
        tl.sign("2026-12-01 17:00", "张副省长", "deputy_head");
        assert_eq!(tl.warning().start, t("2026-12-06 00:00"));
        tl.consult("2026-12-02 16:00", &[50, 50, 50]);
        let events = tl.tick("2026-12-04 04:00");
        assert_eq!(kinds(&events), ["cancelled"]);
        assert_eq!(tl.warning().status, Status::Cancelled);
    }

    // ---- extend, reschedule, cancel, manual lift ---------------------------------------------------------------

    #[test]
    fn a_forecast_that_keeps_the_level_until_later_extends_the_warning() {
        let mut tl = active_orange();
        let events = tl.consult("2026-12-03 16:00", &[201, 201, 201]);
        assert_eq!(kinds(&events), ["extended"]);
        assert_eq!(
            events[0].kind,
            EventKind::Extended {
                expected_end: t("2026-12-07 00:00")
            }
        );
        assert_eq!(events[0].reason, "forecast keeps orange until later");
        assert!(
            tl.consult("2026-12-04 16:00", &[201, 201]).is_empty(),
            "an end that is not later changes nothing"
        );
        assert_eq!(tl.warning().expected_end, t("2026-12-07 00:00"));
    }

    #[test]
    fn an_issued_warning_that_has_not_started_moves_earlier_when_the_episode_comes_sooner() {
        let mut tl = Timeline::new();
        tl.consult("2026-12-01 16:00", &[50, 50, 201, 201]);
        tl.sign("2026-12-01 17:00", "张副省长", "deputy_head");
        assert_eq!(tl.warning().start, t("2026-12-04 00:00"));
        let events = tl.consult("2026-12-02 08:00", &[201, 201, 50]);
        assert_eq!(kinds(&events), ["rescheduled"]);
        assert_eq!(
            events[0].kind,
            EventKind::Rescheduled {
                start: t("2026-12-03 08:00")
            },
            "no sooner than the lead time"
        );
        assert_eq!(tl.warning().start, t("2026-12-03 08:00"));
    }

    #[test]
    fn a_warning_can_be_cancelled_before_it_starts() {
        let mut tl = issued_orange();
        let events = tl.input(
            "2026-12-02 09:00",
            Input::Cancel {
                actor: "值班员王五",
                reason: "会商意见调整",
            },
        );
        assert_eq!(kinds(&events), ["cancelled"]);
        assert_eq!(
            (events[0].actor.as_str(), events[0].reason.as_str()),
            ("值班员王五", "会商意见调整")
        );
        let w = tl.warning();
        assert_eq!((w.status, w.ended_at), (Status::Cancelled, Some(t("2026-12-02 09:00"))));
        assert!(tl.tick("2026-12-03 00:00").is_empty(), "a cancelled warning never starts");
    }

    #[test]
    fn an_active_warning_cannot_be_cancelled_but_can_be_lifted_by_hand() {
        let mut tl = active_orange();
        let refused = tl.try_input(
            "2026-12-03 09:00",
            Input::Cancel {
                actor: "值班员王五",
                reason: "x",
            },
        );
        assert_eq!(refused, Err(LifecycleError::Started("140100-20261201-1".into())));
        assert_eq!(
            refused.unwrap_err().to_string(),
            "warning 140100-20261201-1 has started; lift it instead of cancelling"
        );
        let events = tl.input(
            "2026-12-03 09:00",
            Input::Lift {
                actor: "王省长",
                reason: "空气质量好转",
            },
        );
        assert_eq!(kinds(&events), ["lifted"]);
        assert_eq!((events[0].actor.as_str(), events[0].reason.as_str()), ("王省长", "空气质量好转"));
        assert_eq!(tl.warning().status, Status::Lifted);
        let refused = tl.try_input(
            "2026-12-03 10:00",
            Input::Lift {
                actor: "王省长",
                reason: "again",
            },
        );
        assert_eq!(refused, Err(LifecycleError::NoWarning(region())));
    }

    #[test]
    fn a_proposal_withdrawn_by_hand_never_issues() {
        let mut tl = proposed_orange();
        let events = tl.input(
            "2026-12-01 17:00",
            Input::Cancel {
                actor: "值班员王五",
                reason: "误报",
            },
        );
        assert_eq!(kinds(&events), ["withdrawn"]);
        let refused = tl.try_input(
            "2026-12-01 18:00",
            Input::SignOff {
                signer: "张副省长",
                role: "deputy_head",
            },
        );
        assert_eq!(refused, Err(LifecycleError::NothingToSign(region())));
    }

    // ---- merge gap ---------------------------------------------------------------------------------------------

    #[test]
    fn a_new_episode_within_the_merge_gap_after_a_lift_reopens_the_same_warning() {
        let mut tl = active_orange();
        tl.input(
            "2026-12-05 10:00",
            Input::Lift {
                actor: "王省长",
                reason: "好转",
            },
        );
        // Starts 12-06 16:00 at the earliest: 30 h after the lift, within the 48 h gap.
        let events = tl.consult("2026-12-05 16:00", &[201, 201]);
        let EventKind::Proposed { id, reopened, start, .. } = &events[0].kind else {
            panic!("{events:?}")
        };
        assert_eq!((id.as_str(), *reopened, *start), ("140100-20261201-1", true, t("2026-12-06 16:00")));
        assert_eq!(tl.state.episodes, 1);
        tl.sign("2026-12-05 17:00", "张副省长", "deputy_head");
        let w = tl.warning();
        assert_eq!((w.id.as_str(), w.status, w.ended_at), ("140100-20261201-1", Status::Issued, None));
    }

    #[test]
    fn a_new_episode_beyond_the_merge_gap_is_a_new_warning() {
        let mut tl = active_orange();
        tl.input(
            "2026-12-05 10:00",
            Input::Lift {
                actor: "王省长",
                reason: "好转",
            },
        );
        // Starts 12-08 16:00 at the earliest: 78 h after the lift.
        let events = tl.consult("2026-12-07 16:00", &[201, 201]);
        let EventKind::Proposed { id, reopened, .. } = &events[0].kind else {
            panic!("{events:?}")
        };
        assert_eq!((id.as_str(), *reopened), ("140100-20261207-2", false));
        assert_eq!(tl.state.episodes, 2);
    }

    // ---- directives (调度令) ----------------------------------------------------------------------------------

    fn directive(from: &str, until: Option<&str>) -> (DateTime<Utc>, Option<DateTime<Utc>>) {
        (t(from), until.map(t))
    }

    #[test]
    fn a_directive_issues_its_level_without_sign_off_and_holds_it_until_released() {
        let mut tl = Timeline::new();
        let (from, until) = directive("2026-12-01 00:00", None);
        let events = tl.input(
            "2026-12-01 16:00",
            Input::Directive {
                id: ORDER,
                min_level: "orange",
                from,
                until,
            },
        );
        assert_eq!(kinds(&events), ["issued", "directive_applied"]);
        let EventKind::Issued { level, signer, start, .. } = &events[0].kind else {
            unreachable!()
        };
        assert_eq!(
            (level.as_str(), signer.as_deref(), *start),
            ("orange", Some("directive:晋气防办调度令-2026-4"), t("2026-12-01 16:00"))
        );
        assert_eq!(events[0].actor, "directive:晋气防办调度令-2026-4");
        assert_eq!(tl.warning().status, Status::Active, "in force at once");
        // Held: no manual lift, no cancel, and a clear forecast does not start the lift window.
        let refused = tl.try_input(
            "2026-12-02 09:00",
            Input::Lift {
                actor: "王省长",
                reason: "好转",
            },
        );
        assert_eq!(
            refused,
            Err(LifecycleError::Held {
                id: "140100-20261201-1".into(),
                directive: ORDER.into()
            })
        );
        assert!(
            tl.try_input(
                "2026-12-02 09:00",
                Input::Cancel {
                    actor: "王省长",
                    reason: "x"
                }
            )
            .is_err()
        );
        assert!(tl.consult("2026-12-02 16:00", &[50, 50, 50]).is_empty());
        assert!(tl.tick("2026-12-20 00:00").is_empty());
        assert_eq!(tl.warning().level, "orange");
        // Released: now the forecast decides, with the lift window.
        let events = tl.input("2026-12-20 09:00", Input::DirectiveLifted { id: ORDER });
        assert_eq!(kinds(&events), ["directive_released"]);
        assert_eq!(events[0].reason, "directive 晋气防办调度令-2026-4 released");
        assert!(tl.warning().holds.is_empty());
        tl.consult("2026-12-20 16:00", &[50, 50]);
        assert_eq!(kinds(&tl.tick("2026-12-22 04:00")), ["lifted"]);
    }

    #[test]
    fn a_directive_with_an_end_releases_the_region_when_it_passes() {
        let mut tl = Timeline::new();
        let (from, until) = directive("2026-12-01 00:00", Some("2026-12-03 00:00"));
        tl.input(
            "2026-12-01 16:00",
            Input::Directive {
                id: ORDER,
                min_level: "orange",
                from,
                until,
            },
        );
        assert_eq!(tl.warning().expected_end, t("2026-12-03 00:00"));
        let events = tl.tick("2026-12-03 08:00");
        assert_eq!(kinds(&events), ["directive_released"]);
        assert_eq!((events[0].at, events[0].actor.as_str()), (t("2026-12-03 00:00"), "clock"));
    }

    #[test]
    fn a_directive_that_starts_later_issues_a_warning_that_starts_then() {
        let mut tl = Timeline::new();
        let (from, until) = directive("2026-12-03 00:00", None);
        tl.input(
            "2026-12-01 16:00",
            Input::Directive {
                id: ORDER,
                min_level: "yellow",
                from,
                until,
            },
        );
        let w = tl.warning();
        assert_eq!((w.status, w.start), (Status::Issued, t("2026-12-03 00:00")));
    }

    #[test]
    fn a_directive_issues_a_pending_proposal_at_its_level_or_the_higher_one() {
        let mut tl = Timeline::new();
        tl.consult("2026-12-01 16:00", &[201]);
        assert_eq!((tl.warning().status, tl.warning().level.as_str()), (Status::Pending, "yellow"));
        let (from, until) = directive("2026-12-01 00:00", None);
        let events = tl.input(
            "2026-12-01 18:00",
            Input::Directive {
                id: ORDER,
                min_level: "orange",
                from,
                until,
            },
        );
        assert_eq!(kinds(&events), ["issued", "directive_applied"]);
        assert_eq!(tl.warning().status, Status::Active);
        assert_eq!(tl.warning().level, "orange");
        let mut tl = Timeline::new();
        tl.consult("2026-12-01 16:00", &[301, 301, 301]);
        tl.input(
            "2026-12-01 18:00",
            Input::Directive {
                id: ORDER,
                min_level: "orange",
                from,
                until,
            },
        );
        assert_eq!(tl.warning().level, "red", "a directive never lowers");
    }

    #[test]
    fn a_directive_raises_a_lower_warning_to_its_level() {
        let mut tl = Timeline::new();
        tl.consult("2026-12-01 16:00", &[151]);
        tl.tick("2026-12-02 16:00");
        assert_eq!((tl.warning().status, tl.warning().level.as_str()), (Status::Active, "blue"));
        let (from, until) = directive("2026-12-02 00:00", None);
        let events = tl.input(
            "2026-12-02 17:00",
            Input::Directive {
                id: ORDER,
                min_level: "orange",
                from,
                until,
            },
        );
        assert_eq!(kinds(&events), ["level_changed", "directive_applied"]);
        let EventKind::LevelChanged { from, to, signer, .. } = &events[0].kind else {
            unreachable!()
        };
        assert_eq!(
            (from.as_str(), to.as_str(), signer.as_deref()),
            ("blue", "orange", Some("directive:晋气防办调度令-2026-4"))
        );
    }

    #[test]
    fn under_a_directive_a_higher_warning_comes_down_only_to_the_directives_level() {
        let mut tl = active_orange();
        tl.consult("2026-12-03 16:00", &[301, 301, 301]);
        tl.sign("2026-12-03 17:00", "王省长", "head");
        let (from, until) = directive("2026-12-03 00:00", None);
        tl.input(
            "2026-12-03 18:00",
            Input::Directive {
                id: ORDER,
                min_level: "orange",
                from,
                until,
            },
        );
        let events = tl.consult("2026-12-04 16:00", &[50, 50, 50]);
        assert_eq!(
            events[0].kind,
            EventKind::Below {
                since: t("2026-12-04 16:00"),
                proposal: Some("orange".into()),
                rank: 3
            }
        );
        let events = tl.tick("2026-12-06 04:00");
        assert_eq!(kinds(&events), ["level_changed"]);
        assert_eq!(tl.warning().level, "orange");
        assert!(tl.tick("2026-12-30 00:00").is_empty(), "held at orange");
        assert_eq!(tl.warning().status, Status::Active);
    }

    #[test]
    fn a_directive_naming_an_undefined_level_is_refused() {
        let mut tl = Timeline::new();
        let (from, until) = directive("2026-12-01 00:00", None);
        let refused = tl.try_input(
            "2026-12-01 16:00",
            Input::Directive {
                id: ORDER,
                min_level: "purple",
                from,
                until,
            },
        );
        assert_eq!(refused, Err(LifecycleError::UndefinedLevel("purple".into())));
    }

    // ---- what the log records ----------------------------------------------------------------------------------

    #[test]
    fn events_carry_the_playbook_version_pinned_when_the_episode_began() {
        let mut tl = proposed_orange();
        // The playbook is revised mid-episode: the episode keeps the version it started with.
        tl.pb = playbook(&PLAYBOOK.replace("version: \"7\"", "version: \"8\""));
        tl.sign("2026-12-01 17:00", "张副省长", "deputy_head");
        tl.tick("2026-12-03 00:00");
        tl.input(
            "2026-12-03 09:00",
            Input::Lift {
                actor: "王省长",
                reason: "好转",
            },
        );
        assert!(
            tl.log.iter().all(|e| e.playbook == "test@7"),
            "{:?}",
            tl.log.iter().map(|e| &e.playbook).collect::<Vec<_>>()
        );
        assert_eq!(tl.warning().playbook, "test@7");
        let events = tl.consult("2026-12-10 16:00", &[201, 201]);
        assert_eq!(events[0].playbook, "test@8", "a new episode takes the live version");
    }

    #[test]
    fn every_event_says_who_when_why_and_from_which_forecast() {
        let mut tl = active_orange();
        tl.consult("2026-12-03 16:00", &[50]);
        tl.tick("2026-12-05 04:00");
        let rows: Vec<(&str, &str, Option<&str>)> = tl
            .log
            .iter()
            .map(|e| (kind_name(&e.kind), e.actor.as_str(), e.forecast_id.as_deref()))
            .collect();
        assert_eq!(
            rows,
            [
                ("proposed", "consultation", Some("f1")),
                ("issued", "张副省长", None),
                ("started", "clock", None),
                ("below", "consultation", Some("f2")),
                ("lifted", "clock", None),
            ]
        );
        assert!(tl.log.iter().all(|e| !e.reason.is_empty() && e.region == region()));
        let times: Vec<DateTime<Utc>> = tl.log.iter().map(|e| e.at).collect();
        assert!(times.windows(2).all(|p| p[0] <= p[1]), "{times:?}");
    }

    #[test]
    fn the_state_rebuilt_from_the_stored_log_is_the_state_that_was_left() {
        let mut tl = active_orange();
        tl.consult("2026-12-03 16:00", &[301, 301, 301]);
        tl.sign("2026-12-03 17:00", "王省长", "head");
        let (from, until) = directive("2026-12-03 00:00", Some("2026-12-08 00:00"));
        tl.input(
            "2026-12-03 18:00",
            Input::Directive {
                id: ORDER,
                min_level: "orange",
                from,
                until,
            },
        );
        tl.consult("2026-12-04 16:00", &[201, 50]);
        tl.tick("2026-12-08 12:00");
        tl.consult("2026-12-08 16:00", &[50]);
        tl.tick("2026-12-10 04:00");
        tl.consult("2026-12-10 16:00", &[201, 201]);
        // Through JSON, as the store keeps it.
        let json = serde_json::to_string(&tl.log).unwrap();
        let stored: Vec<Event> = serde_json::from_str(&json).unwrap();
        assert_eq!(stored, tl.log);
        let mut rebuilt = RegionState::default();
        for e in &stored {
            rebuilt.apply(e);
        }
        assert_eq!(rebuilt, tl.state);
        assert!(kinds(&tl.log).contains(&"directive_released"));
        assert!(kinds(&tl.log).contains(&"lifted"));
    }

    #[test]
    fn deciding_alone_changes_nothing() {
        let tl = proposed_orange();
        let before = tl.state.clone();
        let events = tl
            .state
            .decide(
                region(),
                Input::SignOff {
                    signer: "张副省长",
                    role: "deputy_head",
                },
                t("2026-12-01 17:00"),
                &tl.pb,
            )
            .unwrap();
        assert_eq!(kinds(&events), ["issued"]);
        assert_eq!(tl.state, before);
    }
}
