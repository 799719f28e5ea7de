//! The warning lifecycle (预警启动、调整、解除), a pure state machine per region.
//!
//! In: the region's current [`RegionState`], an [`Input`] (a consultation's assessment, a sign-off, a
//! regional directive, an operator's action, or a clock tick), `now` and the [`Playbook`]. Out: the
//! [`Event`]s to record. The state is a fold of those events ([`RegionState::apply`]), so the daemon
//! can rebuild it from the log. No clock, no disk.
//!
//! proposed (awaiting sign-off) → issued (start in the future) → active → lifted. A warning follows
//! the forecast's polluted run ([`crate::domain::assess::plan`]): it starts at 00:00 of the run's first day (or at
//! once when that has passed; the lead time says how early to announce, it never postpones the start),
//! changes level at the day boundaries where the run's level changes, and ends at 00:00 of the first clean
//! day. Every change is decided at a consultation (or sign-off, directive, operator) and recorded as
//! [`EventKind::Scheduled`] with its effective time, announced at once; the clock makes it take effect
//! ([`EventKind::LevelChanged`], [`EventKind::Lifted`]). Upgrades wait for their signer; downgrades and
//! lifts are decided when the forecast shows the air below the level for the lift window from the
//! change; dips shorter than the lift window keep the higher level. A lift followed by a new episode
//! within the merge gap re-opens the same warning, and a directive (调度令) holds a region at its level
//! until released, when the warning follows the forecast again at once.

use chrono::{DateTime, Duration, Utc};
use chrono_tz::Asia::Shanghai;
use serde::{Deserialize, Serialize};

use crate::domain::assess::{self, Assessment, Plan, Step};
use crate::domain::level::{LevelId, Ranked};
use crate::domain::playbook::{Playbook, SignOff};
use crate::domain::region::RegionCode;

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
    /// The level proposed, with its rank.
    #[serde(flatten)]
    pub level: Ranked,
    /// The expected end that comes with it.
    pub expected_end: DateTime<Utc>,
    /// The rule that fired.
    pub rule: Option<String>,
    /// When it would take effect.
    #[serde(default)]
    pub effective: Option<DateTime<Utc>>,
}

/// A change decided and announced, taking effect at `at`: a new level, or the end (`level: None`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Scheduled {
    /// When it takes effect.
    pub at: DateTime<Utc>,
    /// The level from then, or `None` for the lift (or, before the start, the cancellation).
    pub level: Option<LevelId>,
    /// Its rank (0 for the end).
    pub rank: u32,
    /// Who decided it.
    pub signer: Option<String>,
}

/// A directive holding this region.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Hold {
    /// Directive id.
    pub directive: String,
    /// Least level.
    pub min_level: LevelId,
    /// Its rank.
    pub rank: u32,
    /// Until when, if known.
    pub until: Option<DateTime<Utc>>,
    /// A warning from above (上级预警): its issuer and document number, in Chinese.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
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
    /// The level in force (or proposed, while pending), with its rank.
    #[serde(flatten)]
    pub level: Ranked,
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
    /// The change decided and announced, not yet in effect.
    #[serde(default)]
    pub next: Option<Scheduled>,
    /// The latest consultation's plan for the episode.
    #[serde(default)]
    pub plan: Option<Plan>,
    /// Issued later than the lead time before its start.
    #[serde(default)]
    pub lead_missed: bool,
    /// Directives holding it.
    pub holds: Vec<Hold>,
    /// The playbook pinned for the episode (`id@version`).
    pub playbook: String,
    /// A drill (演练): kept apart from the region's real warnings, its notices marked 【演练】.
    #[serde(default, skip_serializing_if = "is_false")]
    pub exercise: bool,
}

/// A region's lifecycle state. A region has two, kept apart: its real warnings, and its drills
/// (演练, `exercise`), so that a drill never changes, lifts or blocks a real warning, nor the reverse.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct RegionState {
    /// The current or last warning.
    pub warning: Option<Warning>,
    /// How many episodes the region has had.
    pub episodes: u32,
    /// The drill lane: its events and warnings are drills.
    #[serde(default, skip_serializing_if = "is_false")]
    pub exercise: bool,
}

/// For `skip_serializing_if`: a flag that is off is left out, so records written before drills
/// existed read back, and are written, exactly as they were.
pub fn is_false(b: &bool) -> bool {
    !*b
}

/// What happened, as recorded in the event log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum EventKind {
    /// A consultation proposes a level that awaits sign-off (a new episode, a re-opened one, or an update).
    Proposed {
        id: String,
        /// The level, with its rank (the fields `level` and `rank`).
        #[serde(flatten)]
        level: Ranked,
        start: DateTime<Utc>,
        expected_end: DateTime<Utc>,
        rule: Option<String>,
        needs: String,
        reopened: bool,
        /// The level timeline the forecast calls for.
        #[serde(default)]
        plan: Vec<Step>,
    },
    /// The warning is issued (signed, automatic, or by directive).
    Issued {
        id: String,
        /// The level, with its rank (the fields `level` and `rank`).
        #[serde(flatten)]
        level: Ranked,
        start: DateTime<Utc>,
        expected_end: DateTime<Utc>,
        rule: Option<String>,
        signer: Option<String>,
        reopened: bool,
        /// The level timeline the forecast calls for.
        #[serde(default)]
        plan: Vec<Step>,
        /// Issued less than the lead time before its start (原则上提前24小时).
        #[serde(default)]
        lead_missed: bool,
    },
    /// A proposal was withdrawn before sign-off (the forecast no longer calls for it).
    Withdrawn,
    /// The start time came.
    Started,
    /// An upgrade awaits its signer.
    ChangeProposed {
        /// The level, with its rank (the fields `level` and `rank`).
        #[serde(flatten)]
        level: Ranked,
        expected_end: DateTime<Utc>,
        rule: Option<String>,
        needs: String,
        /// When it would take effect.
        #[serde(default)]
        effective: Option<DateTime<Utc>>,
    },
    /// A change is decided and announced; it takes effect at `effective` (`to: None`: the lift, or before
    /// the start the cancellation). The notices go out now.
    Scheduled {
        to: Option<LevelId>,
        rank: u32,
        effective: DateTime<Utc>,
        signer: Option<String>,
        rule: Option<String>,
    },
    /// The decided change no longer holds (a later forecast); nothing changes at its time.
    Unscheduled,
    /// The latest forecast's plan for the episode (informational: the timeline shown everywhere).
    Replanned { plan: Plan, expected_end: DateTime<Utc> },
    /// The pending upgrade is no longer called for.
    ChangeWithdrawn,
    /// The level changed (at the event's time).
    LevelChanged {
        from: LevelId,
        to: LevelId,
        rank: u32,
        expected_end: DateTime<Utc>,
        rule: Option<String>,
        signer: Option<String>,
    },
    /// The expected end moved later.
    Extended { expected_end: DateTime<Utc> },
    /// An issued warning that has not started yet starts earlier: the forecast brings the episode forward.
    Rescheduled { start: DateTime<Utc> },
    /// Recorded by earlier versions (a lift window running); no longer made, read as nothing.
    Below {
        since: DateTime<Utc>,
        proposal: Option<String>,
        rank: u32,
    },
    /// Recorded by earlier versions; no longer made, read as nothing.
    BelowCleared,
    /// Lifted (解除).
    Lifted,
    /// Cancelled before it started.
    Cancelled,
    /// A directive holds the region at least at its level.
    DirectiveApplied {
        directive: String,
        min_level: LevelId,
        rank: u32,
        until: Option<DateTime<Utc>>,
        /// A warning from above (上级预警): its issuer and document number, in Chinese.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        source: Option<String>,
    },
    /// A directive no longer holds the region. For a warning from above: its `source` (as in
    /// [`EventKind::DirectiveApplied`]) and its lift's own document number (解除文号), when given.
    DirectiveReleased {
        directive: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        source: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        doc_no: Option<String>,
    },
    /// The warning in force was published again (定时重新发布, the playbook's `republish_hours`): the
    /// `n`th time, at `level`, with `reminders` enterprises not yet in place reminded. Changes nothing.
    Republished { n: u32, level: LevelId, reminders: u64 },
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
    /// Of a drill (演练): the region's drill lane, not its real warnings.
    #[serde(default, skip_serializing_if = "is_false")]
    pub exercise: bool,
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
        /// When the warning is expected to end, if `until` does not say (a warning from above).
        expected_end: Option<DateTime<Utc>>,
        /// A warning from above (上级预警): its issuer and document number, in Chinese; named in the
        /// reasons instead of `调度令ID`.
        source: Option<&'a str>,
    },
    /// A directive is released; `doc_no`: the lift's own document number (解除文号) of a warning
    /// from above, named in the reason.
    DirectiveLifted { id: &'a str, doc_no: Option<&'a str> },
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
    Forbidden { role: String, level: LevelId, needs: String },
    /// There is no live warning.
    #[error("region {0} has no live warning")]
    NoWarning(RegionCode),
    /// A directive holds the warning.
    #[error("warning {id} is held by directive {directive} until it is released")]
    Held { id: String, directive: String },
    /// A warning from above holds the warning.
    #[error("warning {id} is held by the warning from above {directive} ({upstream}) until its own lift arrives")]
    HeldFromAbove { id: String, directive: String, upstream: String },
    /// The warning has started; lift it instead.
    #[error("warning {0} has started; lift it instead of cancelling")]
    Started(String),
    /// A level the playbook does not define.
    #[error("undefined level \"{0}\"")]
    UndefinedLevel(LevelId),
}

pub use crate::domain::assess::day_start;

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
                start,
                expected_end,
                rule,
                reopened,
                ..
            }
            | EventKind::Issued {
                id,
                level,
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
                        start: *start,
                        expected_end: *expected_end,
                        rule: rule.clone(),
                        issued_at: None,
                        ended_at: None,
                        pending_change: None,
                        next: None,
                        plan: None,
                        lead_missed: false,
                        holds: Vec::new(),
                        playbook: e.playbook.clone(),
                        exercise: e.exercise,
                    });
                }
                if let Some(w) = self.warning.as_mut() {
                    w.level = level.clone();
                    w.start = *start;
                    w.expected_end = *expected_end;
                    w.rule = rule.clone();
                    w.ended_at = None;
                    w.next = None;
                    if let EventKind::Issued { lead_missed, .. } = &e.kind {
                        w.lead_missed = *lead_missed;
                    }
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
                        w.next = None;
                    }
                    EventKind::Started => w.status = Status::Active,
                    EventKind::ChangeProposed {
                        level,
                        expected_end,
                        rule,
                        effective,
                        ..
                    } => {
                        w.pending_change = Some(PendingChange {
                            level: level.clone(),
                            expected_end: *expected_end,
                            rule: rule.clone(),
                            effective: *effective,
                        });
                    }
                    EventKind::ChangeWithdrawn => w.pending_change = None,
                    EventKind::Scheduled {
                        to,
                        rank,
                        effective,
                        signer,
                        ..
                    } => {
                        if w.pending_change.as_ref().is_some_and(|p| *rank >= p.level.rank) || to.is_none() {
                            w.pending_change = None;
                        }
                        w.next = Some(Scheduled {
                            at: *effective,
                            level: to.clone(),
                            rank: *rank,
                            signer: signer.clone(),
                        });
                    }
                    EventKind::Unscheduled => w.next = None,
                    EventKind::Replanned { plan, expected_end } => {
                        w.plan = Some(plan.clone());
                        w.expected_end = *expected_end;
                    }
                    EventKind::LevelChanged {
                        to,
                        rank,
                        expected_end,
                        rule,
                        ..
                    } => {
                        w.level = Ranked::new(to.clone(), *rank);
                        w.expected_end = *expected_end;
                        if rule.is_some() {
                            w.rule = rule.clone();
                        }
                        if w.pending_change.as_ref().is_some_and(|p| p.level.rank <= *rank) {
                            w.pending_change = None;
                        }
                        w.next = None;
                    }
                    EventKind::Extended { expected_end } => w.expected_end = *expected_end,
                    EventKind::Rescheduled { start } => w.start = *start,
                    EventKind::Below { .. } | EventKind::BelowCleared | EventKind::Republished { .. } => {}
                    EventKind::Lifted => {
                        w.status = Status::Lifted;
                        w.ended_at = Some(e.at);
                        w.pending_change = None;
                        w.next = None;
                        w.holds.clear();
                    }
                    EventKind::DirectiveApplied {
                        directive,
                        min_level,
                        rank,
                        until,
                        source,
                    } => {
                        w.holds.retain(|h| &h.directive != directive);
                        w.holds.push(Hold {
                            directive: directive.clone(),
                            min_level: min_level.clone(),
                            rank: *rank,
                            until: *until,
                            source: source.clone(),
                        });
                    }
                    EventKind::DirectiveReleased { directive, .. } => w.holds.retain(|h| &h.directive != directive),
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

/// Who may decide an upgrade on the spot (a signer signing, a directive).
#[derive(Clone, Copy)]
struct Authority<'s> {
    name: &'s str,
    role: Option<&'s str>,
}

/// A level's Chinese name (黄色预警), or the id when the playbook does not know it.
fn level_name(pb: &Playbook, id: &str) -> String {
    pb.level(id).map_or_else(|| id.to_string(), |l| l.name.clone())
}

/// A time as people read it: `12月5日0时` (Asia/Shanghai), minutes only when there are some.
pub fn zh_time(t: DateTime<Utc>) -> String {
    let l = t.with_timezone(&Shanghai);
    if l.format("%M").to_string() == "00" {
        l.format("%-m月%-d日%-H时").to_string()
    } else {
        l.format("%-m月%-d日%-H时%M分").to_string()
    }
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
            exercise: self.state.exercise,
        };
        self.state.apply(&e);
        self.out.push(e);
    }

    fn live(&self) -> Option<&Warning> {
        self.state.live()
    }

    fn run(&mut self, input: Input<'_>) -> Result<(), LifecycleError> {
        // What the clock has already brought (a start, a decided change) comes before the input.
        if !matches!(input, Input::Tick) {
            self.tick();
        }
        match input {
            Input::Consultation(a) => self.consultation(a),
            Input::SignOff { signer, role } => self.sign_off(signer, role)?,
            Input::Directive {
                id,
                min_level,
                from,
                until,
                expected_end,
                source,
            } => self.directive(id, min_level, from, until.or(expected_end), until, source)?,
            Input::DirectiveLifted { id, doc_no } => {
                if let Some(h) = self.live().and_then(|w| w.holds.iter().find(|h| h.directive == id)).cloned() {
                    let what = h.source.clone().unwrap_or_else(|| format!("调度令{id}"));
                    let reason = match doc_no {
                        Some(d) => format!("{what}解除（解除文号：{d}）"),
                        None => format!("{what}解除"),
                    };
                    self.emit(
                        self.now,
                        &format!("directive:{id}"),
                        reason,
                        None,
                        EventKind::DirectiveReleased {
                            directive: id.into(),
                            source: h.source,
                            doc_no: doc_no.map(str::to_string),
                        },
                    );
                    self.follow(None, None);
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
        // A drill's id says so (`-D1`), and never takes a real warning's id.
        let drill = if self.state.exercise { "D" } else { "" };
        (format!("{}-{date}-{drill}{}", self.region, self.state.episodes + 1), false)
    }

    fn rule_of(&self, level: &str) -> Option<String> {
        self.pb.level(level).map(|l| l.entry.to_string())
    }

    /// Records the plan when it differs from the one held, with the end it implies.
    fn replan(&mut self, plan: Plan, fid: Option<&str>) {
        let Some(w) = self.live().cloned() else { return };
        if w.plan.as_ref() == Some(&plan) {
            return;
        }
        let hold_until = w.holds.iter().filter_map(|h| h.until).max();
        let expected_end = if w.holds.is_empty() {
            plan.end
        } else {
            plan.end.max(hold_until.unwrap_or(w.expected_end))
        };
        let reason = if plan.steps.is_empty() {
            "会商预测污染过程结束".to_string()
        } else {
            format!("会商预测：{}", timeline_text(self.pb, &plan.steps, plan.end, plan.end < plan.until))
        };
        if expected_end > w.expected_end && w.status != Status::Pending {
            self.emit(
                self.now,
                "consultation",
                format!("预计结束时间延至{}", zh_time(expected_end)),
                fid,
                EventKind::Extended { expected_end },
            );
        }
        self.emit(self.now, "consultation", reason, fid, EventKind::Replanned { plan, expected_end });
    }

    fn consultation(&mut self, a: &Assessment) {
        let fid = Some(a.forecast_id.as_str());
        let actor = "consultation";
        let live = self.live().cloned();
        let carry = match (&live, a.window.first()) {
            (Some(w), Some((first, _))) if w.status != Status::Pending && w.start < day_start(*first) => w.level.rank,
            _ => 0,
        };
        let Some(plan) = assess::plan(a, carry, self.pb) else { return };
        let Some(w) = live.filter(|w| w.status != Status::Pending || !plan.steps.is_empty()) else {
            if self.live().is_some() {
                // A proposal the forecast no longer calls for.
                self.emit(
                    self.now,
                    actor,
                    "会商预测不再达到预警条件，撤回提议".into(),
                    fid,
                    EventKind::Withdrawn,
                );
                return;
            }
            let Some(first) = plan.steps.first().cloned() else { return };
            let start = first.at.max(self.now);
            let (id, reopened) = self.episode_id(start);
            let rule = self.rule_of(&first.level);
            let reason = format!(
                "会商预测达到{}条件：{}",
                level_name(self.pb, &first.level),
                timeline_text(self.pb, &plan.steps, plan.end, plan.end < plan.until)
            );
            let steps = plan.steps.clone();
            match needs(self.pb, &first.level) {
                Some(role) => self.emit(
                    self.now,
                    actor,
                    reason,
                    fid,
                    EventKind::Proposed {
                        id,
                        level: first.level.clone(),
                        start,
                        expected_end: plan.end,
                        rule,
                        needs: role,
                        reopened,
                        plan: steps,
                    },
                ),
                None => self.emit(
                    self.now,
                    "auto",
                    reason,
                    fid,
                    EventKind::Issued {
                        id,
                        level: first.level.clone(),
                        start,
                        expected_end: plan.end,
                        rule,
                        signer: None,
                        reopened,
                        plan: steps,
                        lead_missed: start < self.now + self.pb.lead_time,
                    },
                ),
            }
            self.replan(plan, fid);
            self.follow(fid, None);
            return;
        };
        match w.status {
            Status::Pending => {
                let first = plan.steps[0].clone();
                let start = first.at.max(self.now);
                let same_steps = w.plan.as_ref().is_some_and(|p| p.steps == plan.steps && p.end == plan.end);
                if first.level != w.level || start != w.start || plan.end != w.expected_end || !same_steps {
                    let reason = format!(
                        "会商预测更新：{}",
                        timeline_text(self.pb, &plan.steps, plan.end, plan.end < plan.until)
                    );
                    let rule = self.rule_of(&first.level);
                    match needs(self.pb, &first.level) {
                        Some(role) => self.emit(
                            self.now,
                            actor,
                            reason,
                            fid,
                            EventKind::Proposed {
                                id: w.id,
                                level: first.level.clone(),
                                start,
                                expected_end: plan.end,
                                rule,
                                needs: role,
                                reopened: false,
                                plan: plan.steps.clone(),
                            },
                        ),
                        None => self.emit(
                            self.now,
                            "auto",
                            reason,
                            fid,
                            EventKind::Issued {
                                id: w.id,
                                level: first.level.clone(),
                                start,
                                expected_end: plan.end,
                                rule,
                                signer: None,
                                reopened: false,
                                plan: plan.steps.clone(),
                                lead_missed: start < self.now + self.pb.lead_time,
                            },
                        ),
                    }
                }
                self.replan(plan, fid);
                self.follow(fid, None);
            }
            _ => {
                // An issued warning that has not started follows the run's start, earlier or later.
                if w.status == Status::Issued
                    && carry == 0
                    && let Some(first) = plan.steps.first()
                {
                    let start = first.at.max(self.now);
                    if start != w.start {
                        self.emit(
                            self.now,
                            actor,
                            format!("会商预测污染过程自{}开始，预警生效时间调整", zh_time(start)),
                            fid,
                            EventKind::Rescheduled { start },
                        );
                    }
                }
                self.replan(plan, fid);
                self.follow(fid, None);
            }
        }
    }

    /// The level the plan and the directives call for at `t`, where the trajectory already decided puts
    /// `decided`: before the forecast starts the plan says nothing new, beyond its end nothing at all (`None`).
    fn desired(w: &Warning, t: DateTime<Utc>, decided: u32) -> Option<u32> {
        let floor = w
            .holds
            .iter()
            .filter(|h| h.until.is_none_or(|u| t < u))
            .map(|h| h.rank)
            .max()
            .unwrap_or(0);
        match &w.plan {
            Some(p) if t < p.from => Some(decided.max(floor)),
            Some(p) => p.rank_at(t).map(|r| r.max(floor)),
            None => Some(floor),
        }
    }

    /// Decides the next change of an issued or active warning from its plan and holds: an upgrade is
    /// proposed for signing (or scheduled, when no signature is needed or `authority` may sign it); a
    /// downgrade or the lift is scheduled when the air stays below the level for the lift window after
    /// it; a decided change the plan no longer supports is withdrawn.
    fn follow(&mut self, fid: Option<&str>, authority: Option<Authority<'_>>) {
        for _ in 0..4 {
            let Some(w) = self.live().cloned() else { return };
            if w.status == Status::Pending {
                return;
            }
            let t0 = w.start.max(self.now);
            // The trajectory already decided: the level in force, then the scheduled change.
            let decided = |t: DateTime<Utc>| match &w.next {
                Some(n) if n.at <= t => n.rank,
                _ => w.level.rank,
            };
            let mut times: Vec<DateTime<Utc>> = vec![t0];
            if let Some(p) = &w.plan {
                times.extend(p.steps.iter().map(|s| s.at));
                times.push(p.end);
                times.push(p.from);
            }
            times.extend(w.holds.iter().filter_map(|h| h.until));
            times.extend(w.next.as_ref().map(|n| n.at));
            times.retain(|t| *t >= t0);
            times.sort();
            times.dedup();
            let mismatch = times
                .iter()
                .map_while(|t| Self::desired(&w, *t, decided(*t)).map(|d| (*t, d)))
                .find(|(t, d)| *d != decided(*t));
            let Some((t, d)) = mismatch else {
                if w.pending_change.is_some() {
                    self.emit(
                        self.now,
                        "consultation",
                        "会商预测不再需要升级，撤回升级提议".into(),
                        fid,
                        EventKind::ChangeWithdrawn,
                    );
                }
                return;
            };
            if let Some(n) = &w.next {
                if t > n.at {
                    // Decided after the scheduled change has taken effect.
                    return;
                }
                self.emit(
                    self.now,
                    "consultation",
                    format!("会商预测变化，撤回原定于{}的调整", zh_time(n.at)),
                    fid,
                    EventKind::Unscheduled,
                );
                continue;
            }
            let c = w.level.rank;
            if d > c {
                let Some(level) = self.pb.levels.iter().find(|l| l.rank == d).map(|l| l.id.clone()) else {
                    return;
                };
                let rule = self.rule_of(&level);
                let may = match (needs(self.pb, &level), authority) {
                    (None, _) => Some("auto".to_string()),
                    (Some(_), Some(a)) if a.role.is_none_or(|r| self.pb.may_sign(&level, r)) => Some(a.name.to_string()),
                    _ => None,
                };
                match may {
                    Some(signer) => {
                        let reason = if signer == "auto" {
                            format!("{}无需签发，自{}起执行", level_name(self.pb, &level), zh_time(t))
                        } else {
                            format!("由{signer}签发：自{}起升级为{}", zh_time(t), level_name(self.pb, &level))
                        };
                        self.emit(
                            self.now,
                            &signer,
                            reason,
                            fid,
                            EventKind::Scheduled {
                                to: Some(level),
                                rank: d,
                                effective: t,
                                signer: (signer != "auto").then_some(signer.clone()),
                                rule,
                            },
                        );
                    }
                    None => {
                        let role = needs(self.pb, &level).unwrap_or_default();
                        if w.pending_change
                            .as_ref()
                            .is_none_or(|p| p.level.id != level || p.effective != Some(t))
                        {
                            self.emit(
                                self.now,
                                "consultation",
                                format!("会商预测自{}起达到{}条件，待签发", zh_time(t), level_name(self.pb, &level)),
                                fid,
                                EventKind::ChangeProposed {
                                    level: Ranked::new(level, d),
                                    expected_end: w.expected_end,
                                    rule,
                                    needs: role,
                                    effective: Some(t),
                                },
                            );
                        }
                    }
                }
                return;
            }
            // Down: decided once the air stays below the level for the lift window from `t`.
            if w.pending_change.is_some() {
                self.emit(
                    self.now,
                    "consultation",
                    "会商预测不再需要升级，撤回升级提议".into(),
                    fid,
                    EventKind::ChangeWithdrawn,
                );
            }
            let checks = (self.pb.lift_window.num_hours().max(1) + 23) / 24;
            let below = |at: DateTime<Utc>| Self::desired(&w, at, c).is_some_and(|x| x < c);
            let confirmed =
                (0..checks).all(|k| below(t + Duration::hours(24 * k))) && below(t + self.pb.lift_window - Duration::seconds(1));
            if !confirmed {
                return;
            }
            let level = (d > 0)
                .then(|| self.pb.levels.iter().find(|l| l.rank == d).map(|l| l.id.clone()))
                .flatten();
            // Called off before it starts: at once, nothing is in force yet.
            let t = if level.is_none() && w.status == Status::Issued && t <= w.start {
                self.now
            } else {
                t
            };
            let held = w.holds.iter().any(|h| h.until.is_none_or(|u| t < u));
            let reason = match &level {
                Some(l) => format!("空气质量预计改善，自{}起降为{}", zh_time(t), level_name(self.pb, l)),
                None if held => format!("调度令解除，自{}起解除预警", zh_time(t)),
                None if w.status == Status::Issued && t <= w.start => "会商预测不再出现污染过程，取消预警".to_string(),
                None => format!(
                    "空气质量预计改善至预警条件以下并持续{}小时以上，于{}解除",
                    self.pb.lift_window.num_hours(),
                    zh_time(t)
                ),
            };
            let rule = level.as_deref().and_then(|l| self.rule_of(l));
            self.emit(
                self.now,
                "consultation",
                reason,
                fid,
                EventKind::Scheduled {
                    to: level,
                    rank: d,
                    effective: t,
                    signer: None,
                    rule,
                },
            );
            return;
        }
    }

    /// Clock-driven changes: directive expiry, the start, and decided changes whose time has come.
    fn tick(&mut self) {
        for _ in 0..16 {
            let Some(w) = self.live().cloned() else { return };
            if let Some(h) = w.holds.iter().find(|h| h.until.is_some_and(|u| u <= self.now)) {
                let until = h.until.unwrap_or(self.now);
                self.emit(
                    until,
                    "clock",
                    format!("调度令{}到期", h.directive),
                    None,
                    EventKind::DirectiveReleased {
                        directive: h.directive.clone(),
                        source: None,
                        doc_no: None,
                    },
                );
                self.follow(None, None);
                continue;
            }
            let cancel_first = w.next.as_ref().is_some_and(|n| n.level.is_none() && n.at <= w.start);
            if w.status == Status::Issued && w.start <= self.now && !cancel_first {
                self.emit(w.start, "clock", "到达生效时间".into(), None, EventKind::Started);
                continue;
            }
            let Some(n) = w.next.clone().filter(|n| n.at <= self.now) else {
                return;
            };
            let actor = n.signer.clone().unwrap_or_else(|| "clock".into());
            match &n.level {
                Some(level) => {
                    let rule = self.rule_of(level);
                    self.emit(
                        n.at,
                        &actor,
                        format!("自{}起执行{}", zh_time(n.at), level_name(self.pb, level)),
                        None,
                        EventKind::LevelChanged {
                            from: w.level.id.clone(),
                            to: level.clone(),
                            rank: n.rank,
                            expected_end: w.expected_end,
                            rule,
                            signer: n.signer.clone(),
                        },
                    );
                }
                None if w.status == Status::Issued => {
                    self.emit(n.at, &actor, "预警在生效前取消".into(), None, EventKind::Cancelled);
                }
                None => self.emit(n.at, &actor, format!("{}解除", zh_time(n.at)), None, EventKind::Lifted),
            }
            self.follow(None, None);
        }
    }

    fn sign_off(&mut self, signer: &str, role: &str) -> Result<(), LifecycleError> {
        let w = self.live().cloned().ok_or(LifecycleError::NothingToSign(self.region))?;
        let level = match (&w.status, &w.pending_change) {
            (Status::Pending, _) => w.level.clone(),
            (_, Some(p)) => p.level.clone(),
            _ => return Err(LifecycleError::NothingToSign(self.region)),
        };
        if !self.pb.may_sign(&level, role) {
            return Err(LifecycleError::Forbidden {
                role: role.into(),
                needs: needs(self.pb, &level).unwrap_or_default(),
                level: level.id,
            });
        }
        let title = self.pb.role(role).map_or(role, |r| r.name.as_str()).to_string();
        if w.status == Status::Pending {
            let start = w.start.max(self.now);
            let lead_missed = start < self.now + self.pb.lead_time;
            let mut reason = format!("由{signer}（{title}）签发，自{}起执行", zh_time(start));
            if lead_missed {
                reason.push_str(&format!("（距生效不足{}小时，未达提前发布要求）", self.pb.lead_time.num_hours()));
            }
            self.emit(
                self.now,
                signer,
                reason,
                None,
                EventKind::Issued {
                    id: w.id,
                    level,
                    start,
                    expected_end: w.expected_end.max(start),
                    rule: w.rule.clone(),
                    signer: Some(signer.into()),
                    reopened: false,
                    plan: w.plan.as_ref().map(|p| p.steps.clone()).unwrap_or_default(),
                    lead_missed,
                },
            );
            self.follow(
                None,
                Some(Authority {
                    name: signer,
                    role: Some(role),
                }),
            );
        } else if let Some(p) = &w.pending_change {
            let at = p.effective.unwrap_or(self.now).max(self.now);
            self.emit(
                self.now,
                signer,
                format!(
                    "由{signer}（{title}）签发：自{}起升级为{}",
                    zh_time(at),
                    level_name(self.pb, &p.level)
                ),
                None,
                EventKind::Scheduled {
                    to: Some(p.level.id.clone()),
                    rank: p.level.rank,
                    effective: at,
                    signer: Some(signer.into()),
                    rule: p.rule.clone(),
                },
            );
        }
        Ok(())
    }

    /// A directive (or a warning from above, `source`) holds the region at least at `min_level` from
    /// `from`; the warning is expected to end at `expected_end`, the hold runs out at `until`.
    fn directive(
        &mut self,
        id: &str,
        min_level: &str,
        from: DateTime<Utc>,
        expected_end: Option<DateTime<Utc>>,
        until: Option<DateTime<Utc>>,
        source: Option<&str>,
    ) -> Result<(), LifecycleError> {
        let rank = self
            .pb
            .level(min_level)
            .ok_or_else(|| LifecycleError::UndefinedLevel(min_level.into()))?
            .rank;
        let actor = format!("directive:{id}");
        let start = from.max(self.now);
        let end = expected_end.unwrap_or(start + Duration::days(1));
        let reason = match source {
            Some(s) => format!("根据{s}，自{}起至少执行{}", zh_time(start), level_name(self.pb, min_level)),
            None => format!("调度令{id}：自{}起至少执行{}", zh_time(start), level_name(self.pb, min_level)),
        };
        match self.live().cloned() {
            None => {
                let (wid, reopened) = self.episode_id(start);
                self.emit(
                    self.now,
                    &actor,
                    reason.clone(),
                    None,
                    EventKind::Issued {
                        id: wid,
                        level: Ranked::new(min_level, rank),
                        start,
                        expected_end: end,
                        rule: None,
                        signer: Some(actor.clone()),
                        reopened,
                        plan: Vec::new(),
                        lead_missed: false,
                    },
                );
            }
            Some(w) if w.status == Status::Pending => {
                let level = if w.level.rank > rank {
                    w.level.clone()
                } else {
                    Ranked::new(min_level, rank)
                };
                self.emit(
                    self.now,
                    &actor,
                    reason.clone(),
                    None,
                    EventKind::Issued {
                        id: w.id,
                        level,
                        start: w.start.min(start),
                        expected_end: w.expected_end.max(end),
                        rule: w.rule.clone(),
                        signer: Some(actor.clone()),
                        reopened: false,
                        plan: w.plan.as_ref().map(|p| p.steps.clone()).unwrap_or_default(),
                        lead_missed: false,
                    },
                );
            }
            Some(_) => {}
        }
        self.emit(
            self.now,
            &actor,
            reason,
            None,
            EventKind::DirectiveApplied {
                directive: id.into(),
                min_level: min_level.into(),
                rank,
                until,
                source: source.map(str::to_string),
            },
        );
        if let Some(w) = self.live().cloned()
            && end > w.expected_end
        {
            self.emit(
                self.now,
                &actor,
                format!("预计结束时间延至{}", zh_time(end)),
                None,
                EventKind::Extended { expected_end: end },
            );
        }
        self.follow(None, Some(Authority { name: &actor, role: None }));
        Ok(())
    }

    fn manual_end(&mut self, actor: &str, reason: &str, cancel: bool) -> Result<(), LifecycleError> {
        let w = self.live().cloned().ok_or(LifecycleError::NoWarning(self.region))?;
        if let Some(h) = w.holds.first() {
            return Err(match &h.source {
                Some(source) => LifecycleError::HeldFromAbove {
                    id: w.id,
                    directive: h.directive.clone(),
                    upstream: source.clone(),
                },
                None => LifecycleError::Held {
                    id: w.id,
                    directive: h.directive.clone(),
                },
            });
        }
        match (w.status, cancel) {
            (Status::Active, true) => return Err(LifecycleError::Started(w.id)),
            (Status::Pending, _) => {
                self.emit(self.now, actor, reason.to_string(), None, EventKind::Withdrawn);
                return Ok(());
            }
            _ => {}
        }
        self.emit(
            self.now,
            actor,
            reason.to_string(),
            None,
            EventKind::Scheduled {
                to: None,
                rank: 0,
                effective: self.now,
                signer: Some(actor.to_string()),
                rule: None,
            },
        );
        Ok(())
    }
}

/// A warning's timeline in words, as its plan has it, with the first change no earlier than the warning's
/// own start (a warning issued after its run began starts at its issue).
pub fn timeline_of(w: &Warning, pb: Option<&Playbook>) -> Option<String> {
    timeline_named(w, |id| pb.map_or_else(|| id.to_string(), |pb| level_name(pb, id)))
}

/// [`timeline_of`] with the level names from `name` (the public page names levels its own way).
pub fn timeline_named(w: &Warning, name: impl Fn(&str) -> String) -> Option<String> {
    let p = w.plan.as_ref().filter(|p| !p.steps.is_empty())?;
    let steps: Vec<Step> = p
        .steps
        .iter()
        .map(|s| Step {
            at: if w.status == Status::Pending { s.at } else { s.at.max(w.start) },
            ..s.clone()
        })
        .collect();
    Some(timeline_words(&steps, p.end, p.end < p.until, name))
}

/// [`timeline_text`] where the playbook may be unknown (level ids stand for names then).
pub fn timeline_text_opt(pb: Option<&Playbook>, steps: &[Step], end: DateTime<Utc>, ends: bool) -> String {
    timeline_words(steps, end, ends, |id| pb.map_or_else(|| id.to_string(), |pb| level_name(pb, id)))
}

/// The one wording of a timeline; `name` gives a level's name.
fn timeline_words(steps: &[Step], end: DateTime<Utc>, ends: bool, name: impl Fn(&str) -> String) -> String {
    let mut parts: Vec<String> = steps.iter().map(|s| format!("{}起{}", zh_time(s.at), name(&s.level))).collect();
    if ends {
        parts.push(format!("预计{}解除", zh_time(end)));
    } else if !steps.is_empty() {
        parts.push(format!("持续至预报期末（{}）以后", zh_time(end)));
    }
    parts.join("；")
}

/// A level timeline in words: `12月5日0时起黄色预警；12月6日0时起橙色预警；预计12月8日0时解除`.
/// `ends` says whether the forecast shows the end (else the run lasts to the end of the forecast).
pub fn timeline_text(pb: &Playbook, steps: &[Step], end: DateTime<Utc>, ends: bool) -> String {
    timeline_text_opt(Some(pb), steps, end, ends)
}

#[cfg(test)]
mod tests {
    //! Every rule of the lifecycle on a small playbook, as a timeline in Asia/Shanghai time. Each step also
    //! checks the event-sourcing property: folding every event recorded so far from an empty state gives the
    //! state the step produced.

    use super::*;
    use crate::domain::assess::assess_region;
    use crate::domain::forecast::{DayValue, parse_time};
    use crate::domain::playbook::load_files;
    use crate::domain::region::Regions;
    use chrono::NaiveDate;

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
            EventKind::Scheduled { .. } => "scheduled",
            EventKind::Unscheduled => "unscheduled",
            EventKind::Replanned { .. } => "replanned",
            EventKind::LevelChanged { .. } => "level_changed",
            EventKind::Extended { .. } => "extended",
            EventKind::Rescheduled { .. } => "rescheduled",
            EventKind::Below { .. } => "below",
            EventKind::BelowCleared => "below_cleared",
            EventKind::Lifted => "lifted",
            EventKind::Cancelled => "cancelled",
            EventKind::DirectiveApplied { .. } => "directive_applied",
            EventKind::DirectiveReleased { .. } => "directive_released",
            EventKind::Republished { .. } => "republished",
        }
    }

    fn kinds(events: &[Event]) -> Vec<&'static str> {
        events.iter().map(|e| kind_name(&e.kind)).collect()
    }

    /// The decided change among `events`: (effective time, level or None for the end).
    fn scheduled(events: &[Event]) -> Vec<(DateTime<Utc>, Option<&str>)> {
        events
            .iter()
            .filter_map(|e| match &e.kind {
                EventKind::Scheduled { to, effective, .. } => Some((*effective, to.as_deref())),
                _ => None,
            })
            .collect()
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
            let first = t(now).with_timezone(&Shanghai).date_naive() + Duration::days(1);
            self.consult_from(now, first, values)
        }

        /// A consultation at `now` whose series starts on `first` (days before `now`'s date are the recent past).
        fn consult_from(&mut self, now: &str, first: NaiveDate, values: &[u16]) -> Vec<Event> {
            self.forecasts += 1;
            let issue = t(now).with_timezone(&Shanghai).date_naive();
            let days: Vec<DayValue> = values
                .iter()
                .enumerate()
                .map(|(i, v)| DayValue {
                    date: first + Duration::days(i as i64),
                    aqi: Some(*v),
                    primary: Vec::new(),
                    computed: false,
                    dust: false,
                })
                .collect();
            let a = assess_region(region(), &days, issue, &format!("f{}", self.forecasts), &self.pb);
            self.input(now, Input::Consultation(&a))
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

    fn d(s: &str) -> NaiveDate {
        NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
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

    // ---- proposal, sign-off, effective times ------------------------------------------------------------------

    #[test]
    fn a_consultation_proposes_the_runs_level_from_its_first_day_and_waits_for_the_signer() {
        let tl = proposed_orange();
        assert_eq!(kinds(&tl.log), ["proposed", "replanned"]);
        let e = &tl.log[0];
        assert_eq!(
            e.kind,
            EventKind::Proposed {
                id: "140100-20261201-1".into(),
                level: Ranked::new("orange", 3),
                start: t("2026-12-03 00:00"),
                expected_end: t("2026-12-05 00:00"),
                rule: Some("日AQI>200持续48小时".into()),
                needs: "deputy_head".into(),
                reopened: false,
                plan: vec![Step {
                    at: t("2026-12-03 00:00"),
                    level: Ranked::new("orange", 3),
                }],
            }
        );
        assert_eq!((e.at, e.actor.as_str()), (t("2026-12-01 16:00"), "consultation"));
        assert_eq!(e.reason, "会商预测达到橙色预警条件：12月3日0时起橙色预警；预计12月5日0时解除");
        assert_eq!((e.forecast_id.as_deref(), e.playbook.as_str()), (Some("f1"), "test@7"));
        let w = tl.warning();
        assert_eq!((w.status, w.level.as_str(), w.issued_at), (Status::Pending, "orange", None));
        assert_eq!(tl.state.episodes, 1);
    }

    #[test]
    fn signing_ahead_of_the_lead_time_issues_the_warning_for_00_00_of_the_runs_first_day() {
        let tl = issued_orange();
        let e = tl.log.last().unwrap();
        let EventKind::Issued {
            start,
            signer,
            lead_missed,
            ..
        } = &e.kind
        else {
            panic!("{e:?}")
        };
        assert_eq!(
            (*start, signer.as_deref(), *lead_missed),
            (t("2026-12-03 00:00"), Some("张副省长"), false)
        );
        assert_eq!(e.reason, "由张副省长（分管副省长）签发，自12月3日0时起执行");
        assert_eq!(tl.warning().status, Status::Issued);
    }

    #[test]
    fn a_run_sooner_than_the_lead_time_still_starts_at_its_first_day_and_the_record_says_so() {
        let mut tl = Timeline::new();
        tl.consult("2026-12-01 16:00", &[201, 201, 50, 50]);
        let events = tl.sign("2026-12-01 16:30", "张副省长", "deputy_head");
        let EventKind::Issued { start, lead_missed, .. } = &events[0].kind else {
            panic!("{events:?}")
        };
        assert_eq!((*start, *lead_missed), (t("2026-12-02 00:00"), true), "not pushed to 12-02 16:30");
        assert!(events[0].reason.contains("未达提前发布要求"), "{}", events[0].reason);
        // The forecast shows the air clean from 12-04 for two days: the lift is decided with the issue.
        assert_eq!(scheduled(&events), [(t("2026-12-04 00:00"), None)]);
    }

    #[test]
    fn a_run_that_has_begun_starts_at_once_when_signed() {
        let mut tl = Timeline::new();
        tl.consult("2026-12-01 16:00", &[201, 201, 50, 50]);
        let events = tl.sign("2026-12-02 09:00", "张副省长", "deputy_head");
        let EventKind::Issued { start, lead_missed, .. } = &events[0].kind else {
            panic!("{events:?}")
        };
        assert_eq!((*start, *lead_missed), (t("2026-12-02 09:00"), true));
        assert_eq!(tl.warning().status, Status::Active);
    }

    #[test]
    fn the_warning_becomes_active_at_its_start_time() {
        let mut tl = issued_orange();
        assert!(tl.tick("2026-12-02 23:59").is_empty());
        let events = tl.tick("2026-12-03 00:05");
        assert_eq!(kinds(&events), ["started"]);
        assert_eq!(
            events[0].at,
            t("2026-12-03 00:00"),
            "effective at the stated time, not when the clock looked"
        );
    }

    #[test]
    fn a_level_that_needs_no_signature_is_issued_at_once_and_its_end_decided() {
        let mut tl = Timeline::new();
        let events = tl.consult("2026-12-01 16:00", &[160, 50, 50]);
        assert_eq!(kinds(&events), ["issued", "replanned", "scheduled"]);
        assert_eq!(events[0].actor, "auto");
        assert_eq!(scheduled(&events), [(t("2026-12-03 00:00"), None)]);
        let events = tl.tick("2026-12-03 00:00");
        assert_eq!(kinds(&events), ["started", "lifted"]);
        assert_eq!(events[1].at, t("2026-12-03 00:00"));
    }

    #[test]
    fn a_signer_whose_role_may_not_sign_the_level_is_refused_and_nothing_changes() {
        let mut tl = proposed_orange();
        let refused = tl.try_input(
            "2026-12-01 17:00",
            Input::SignOff {
                signer: "王五",
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
        assert_eq!(tl.warning().status, Status::Pending);
    }

    #[test]
    fn signing_when_nothing_awaits_a_signature_is_refused() {
        let mut tl = Timeline::new();
        assert_eq!(
            tl.try_input(
                "2026-12-01 17:00",
                Input::SignOff {
                    signer: "张副省长",
                    role: "deputy_head"
                }
            ),
            Err(LifecycleError::NothingToSign(region()))
        );
    }

    #[test]
    fn a_pending_proposal_follows_the_latest_forecast_and_is_withdrawn_when_it_clears() {
        let mut tl = proposed_orange();
        let events = tl.consult("2026-12-02 09:00", &[201, 201, 201, 50, 50]);
        assert_eq!(kinds(&events), ["proposed", "replanned"]);
        let w = tl.warning();
        assert_eq!((w.start, w.expected_end), (t("2026-12-03 00:00"), t("2026-12-06 00:00")));
        let events = tl.consult("2026-12-02 16:00", &[50, 50, 50]);
        assert_eq!(kinds(&events), ["withdrawn"]);
        assert_eq!(tl.warning().status, Status::Cancelled);
    }

    // ---- the level timeline -------------------------------------------------------------------------------------

    #[test]
    fn one_signature_issues_the_whole_timeline_and_each_change_takes_effect_at_its_day() {
        let mut tl = Timeline::new();
        // 12-02 one day >200 (yellow), 12-03 a one-day dip, 12-04..05 orange, then clean.
        let events = tl.consult("2026-12-01 16:00", &[201, 100, 201, 201, 50, 50]);
        let EventKind::Proposed { level, plan, .. } = &events[0].kind else {
            panic!("{events:?}")
        };
        assert_eq!(level, "yellow");
        assert_eq!(
            plan.iter().map(|s| (s.at, s.level.as_str())).collect::<Vec<_>>(),
            [(t("2026-12-02 00:00"), "yellow"), (t("2026-12-04 00:00"), "orange")]
        );
        let events = tl.sign("2026-12-01 17:00", "张副省长", "deputy_head");
        assert_eq!(kinds(&events), ["issued", "scheduled"]);
        assert_eq!(scheduled(&events), [(t("2026-12-04 00:00"), Some("orange"))]);
        assert_eq!(kinds(&tl.tick("2026-12-02 00:00")), ["started"]);
        assert_eq!(tl.warning().level, "yellow", "12-03's dip keeps yellow");
        let events = tl.tick("2026-12-04 00:00");
        assert_eq!(kinds(&events), ["level_changed", "scheduled"]);
        assert_eq!((events[0].at, tl.warning().level.as_str()), (t("2026-12-04 00:00"), "orange"));
        assert_eq!(
            scheduled(&events),
            [(t("2026-12-06 00:00"), None)],
            "the lift is decided as soon as it is the next change"
        );
        let events = tl.tick("2026-12-06 00:00");
        assert_eq!(kinds(&events), ["lifted"]);
        assert_eq!(events[0].at, t("2026-12-06 00:00"));
    }

    #[test]
    fn an_upgrade_beyond_the_signers_authority_waits_for_the_higher_signer_with_its_effective_time() {
        let mut tl = Timeline::new();
        // Orange 12-02..03, a one-day dip, then red 12-05..07 (301 inside a three-day run above 200).
        tl.consult("2026-12-01 16:00", &[201, 201, 50, 201, 301, 201, 50]);
        let events = tl.sign("2026-12-01 17:00", "张副省长", "deputy_head");
        assert_eq!(kinds(&events), ["issued", "change_proposed"]);
        let EventKind::ChangeProposed {
            level, effective, needs, ..
        } = &events[1].kind
        else {
            panic!("{events:?}")
        };
        assert_eq!(
            (level.as_str(), *effective, needs.as_str()),
            ("red", Some(t("2026-12-05 00:00")), "head")
        );
        assert_eq!(tl.warning().level, "orange");
        let events = tl.sign("2026-12-02 10:00", "王省长", "head");
        assert_eq!(scheduled(&events), [(t("2026-12-05 00:00"), Some("red"))]);
        assert!(tl.warning().pending_change.is_none());
        tl.tick("2026-12-02 00:00");
        let events = tl.tick("2026-12-05 00:00");
        assert_eq!(kinds(&events)[0], "level_changed");
        assert_eq!((events[0].at, tl.warning().level.as_str()), (t("2026-12-05 00:00"), "red"));
    }

    #[test]
    fn an_upgrade_signed_after_its_time_takes_effect_at_once() {
        let mut tl = Timeline::new();
        tl.consult("2026-12-01 16:00", &[201, 201, 50, 201, 301, 201, 50]);
        tl.sign("2026-12-01 17:00", "张副省长", "deputy_head");
        let events = tl.sign("2026-12-05 09:00", "王省长", "head");
        assert_eq!(kinds(&events), ["started", "scheduled", "level_changed"]);
        assert_eq!(events[2].at, t("2026-12-05 09:00"));
    }

    #[test]
    fn the_lift_is_decided_when_the_forecast_shows_the_lift_window_clean_and_takes_effect_at_the_runs_end() {
        let mut tl = active_orange();
        // 12-04 16:00: the forecast (from 12-03) shows 12-04 still above 200, clean from 12-05.
        let events = tl.consult_from("2026-12-04 16:00", d("2026-12-03"), &[201, 201, 50, 50, 50]);
        assert_eq!(scheduled(&events), [(t("2026-12-05 00:00"), None)]);
        assert!(
            events
                .iter()
                .any(|e| e.reason == "空气质量预计改善至预警条件以下并持续36小时以上，于12月5日0时解除")
        );
        assert_eq!(tl.warning().status, Status::Active, "measures stay in force until then");
        let events = tl.tick("2026-12-05 00:00");
        assert_eq!(kinds(&events), ["lifted"]);
        assert_eq!(events[0].at, t("2026-12-05 00:00"));
    }

    #[test]
    fn the_lift_waits_while_the_forecast_does_not_reach_across_the_lift_window() {
        let mut tl = active_orange();
        // Clean 12-05, and the forecast ends: 24 h of clean air is less than the 36 h lift window.
        let events = tl.consult_from("2026-12-04 16:00", d("2026-12-03"), &[201, 201, 50]);
        assert!(scheduled(&events).is_empty(), "{events:?}");
        assert_eq!(tl.warning().status, Status::Active);
    }

    #[test]
    fn a_dip_shorter_than_the_lift_window_keeps_the_higher_level() {
        let mut tl = Timeline::new();
        tl.consult("2026-12-01 16:00", &[201, 201, 100, 201, 201, 50, 50]);
        let events = tl.sign("2026-12-01 17:00", "张副省长", "deputy_head");
        assert_eq!(
            scheduled(&events),
            [(t("2026-12-07 00:00"), None)],
            "one warning over the one-day dip"
        );
        assert_eq!(tl.warning().level, "orange");
    }

    #[test]
    fn a_dip_as_long_as_the_lift_window_ends_the_warning() {
        let mut tl = Timeline::new();
        tl.consult("2026-12-01 16:00", &[201, 201, 100, 100, 201, 201, 50]);
        let events = tl.sign("2026-12-01 17:00", "张副省长", "deputy_head");
        assert_eq!(
            scheduled(&events),
            [(t("2026-12-04 00:00"), None)],
            "48 h below: lifted at 12-04 00:00"
        );
    }

    #[test]
    fn a_downgrade_is_decided_ahead_and_takes_effect_at_the_day_the_level_falls() {
        let mut tl = Timeline::new();
        tl.consult("2026-12-01 16:00", &[201, 201, 160, 160, 50, 50]);
        let events = tl.sign("2026-12-01 17:00", "张副省长", "deputy_head");
        assert_eq!(scheduled(&events), [(t("2026-12-04 00:00"), Some("blue"))]);
        tl.tick("2026-12-02 00:00");
        let events = tl.tick("2026-12-04 00:00");
        assert_eq!(kinds(&events), ["level_changed", "scheduled"]);
        assert_eq!(tl.warning().level, "blue");
        assert_eq!(scheduled(&events), [(t("2026-12-06 00:00"), None)]);
    }

    #[test]
    fn a_decided_lift_is_withdrawn_when_a_later_forecast_extends_the_run() {
        let mut tl = active_orange();
        tl.consult_from("2026-12-04 16:00", d("2026-12-03"), &[201, 201, 50, 50, 50]);
        let events = tl.consult_from("2026-12-04 20:00", d("2026-12-04"), &[201, 201, 201, 50, 50]);
        assert_eq!(kinds(&events), ["extended", "replanned", "unscheduled", "scheduled"]);
        assert_eq!(scheduled(&events), [(t("2026-12-07 00:00"), None)]);
        assert_eq!(tl.warning().expected_end, t("2026-12-07 00:00"));
        assert!(tl.tick("2026-12-05 00:00").is_empty(), "nothing happens at the withdrawn time");
    }

    #[test]
    fn an_issued_warning_follows_the_runs_start_earlier_or_later() {
        let mut tl = Timeline::new();
        tl.consult("2026-12-01 16:00", &[50, 50, 201, 201]);
        tl.sign("2026-12-01 17:00", "张副省长", "deputy_head");
        assert_eq!(tl.warning().start, t("2026-12-04 00:00"));
        let events = tl.consult_from("2026-12-02 08:00", d("2026-12-02"), &[50, 201, 201, 50]);
        assert_eq!(kinds(&events)[0], "rescheduled");
        assert_eq!(
            tl.warning().start,
            t("2026-12-03 00:00"),
            "at the run's first day, lead time or not"
        );
    }

    #[test]
    fn an_issued_warning_whose_forecast_clears_before_it_starts_is_cancelled_at_once() {
        let mut tl = issued_orange();
        let events = tl.consult_from("2026-12-02 09:00", d("2026-12-02"), &[50, 50, 50, 50]);
        assert_eq!(kinds(&events), ["replanned", "scheduled", "cancelled"]);
        assert_eq!(events[2].at, t("2026-12-02 09:00"));
        assert!(tl.tick("2026-12-03 00:00").is_empty(), "a cancelled warning never starts");
    }

    #[test]
    fn the_national_red_needs_its_day_above_300_inside_the_run_above_200() {
        // Datong's counterexample: the 301 lies in another run.
        let mut tl = Timeline::new();
        let events = tl.consult("2026-12-01 16:00", &[201, 201, 201, 100, 301]);
        let EventKind::Proposed { level, plan, .. } = &events[0].kind else {
            panic!("{events:?}")
        };
        assert_eq!(level, "orange");
        assert!(plan.iter().all(|s| s.level != "red"), "{plan:?}");
        let events = Timeline::new().consult("2026-12-01 16:00", &[201, 301, 201, 50, 50]);
        let EventKind::Proposed { level, .. } = &events[0].kind else {
            panic!("{events:?}")
        };
        assert_eq!(level, "red", "one run: 201, 301, 201");
    }

    // ---- by hand ----------------------------------------------------------------------------------------------

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
        assert_eq!(kinds(&events), ["scheduled", "cancelled"]);
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
        let events = tl.input(
            "2026-12-03 09:00",
            Input::Lift {
                actor: "王省长",
                reason: "空气质量好转",
            },
        );
        assert_eq!(kinds(&events), ["scheduled", "lifted"]);
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
        let events = tl.consult("2026-12-05 16:00", &[201, 201]);
        let EventKind::Proposed { id, reopened, start, .. } = &events[0].kind else {
            panic!("{events:?}")
        };
        assert_eq!((id.as_str(), *reopened, *start), ("140100-20261201-1", true, t("2026-12-06 00:00")));
        assert_eq!(tl.state.episodes, 1);
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
        let events = tl.consult("2026-12-07 16:00", &[201, 201]);
        let EventKind::Proposed { id, reopened, .. } = &events[0].kind else {
            panic!("{events:?}")
        };
        assert_eq!((id.as_str(), *reopened), ("140100-20261207-2", false));
        assert_eq!(tl.state.episodes, 2);
    }

    // ---- directives (调度令) ----------------------------------------------------------------------------------

    fn apply_directive(tl: &mut Timeline, now: &str, min_level: &str, until: Option<&str>) -> Vec<Event> {
        tl.input(
            now,
            Input::Directive {
                id: ORDER,
                min_level,
                from: t("2026-12-01 00:00"),
                until: until.map(t),
                expected_end: None,
                source: None,
            },
        )
    }

    #[test]
    fn a_directive_issues_its_level_without_sign_off_and_holds_it_until_released_then_lifts_at_once() {
        let mut tl = Timeline::new();
        let events = apply_directive(&mut tl, "2026-12-01 16:00", "orange", None);
        assert_eq!(kinds(&events), ["issued", "directive_applied"]);
        assert_eq!(tl.warning().status, Status::Active);
        let events = tl.consult_from("2026-12-02 16:00", d("2026-12-02"), &[50, 50, 50, 50]);
        assert!(scheduled(&events).is_empty(), "clean air does not lift a held warning");
        assert_eq!(tl.warning().level, "orange");
        let events = tl.input("2026-12-03 10:00", Input::DirectiveLifted { id: ORDER, doc_no: None });
        assert_eq!(kinds(&events), ["directive_released", "scheduled", "lifted"]);
        assert_eq!(events[2].at, t("2026-12-03 10:00"), "no further wait");
    }

    #[test]
    fn a_directive_with_an_end_announces_the_lift_for_that_time() {
        let mut tl = Timeline::new();
        let events = apply_directive(&mut tl, "2026-12-01 16:00", "orange", Some("2026-12-03 00:00"));
        assert_eq!(scheduled(&events), [(t("2026-12-03 00:00"), None)]);
        let events = tl.tick("2026-12-03 00:00");
        assert_eq!(kinds(&events), ["directive_released", "lifted"]);
        assert_eq!(events[1].at, t("2026-12-03 00:00"));
    }

    #[test]
    fn a_directive_raises_a_lower_warning_to_its_level_at_once() {
        let mut tl = active_orange();
        let events = apply_directive(&mut tl, "2026-12-03 10:00", "red", None);
        assert_eq!(kinds(&events), ["directive_applied", "scheduled", "level_changed"]);
        assert_eq!(tl.warning().level, "red");
        assert_eq!(events[1].actor, format!("directive:{ORDER}"));
    }

    #[test]
    fn under_a_directive_a_higher_warning_comes_down_only_to_the_directives_level() {
        let mut tl = active_orange();
        apply_directive(&mut tl, "2026-12-03 10:00", "yellow", None);
        let events = tl.consult_from("2026-12-04 16:00", d("2026-12-03"), &[201, 201, 50, 50, 50]);
        assert_eq!(scheduled(&events), [(t("2026-12-05 00:00"), Some("yellow"))]);
    }

    #[test]
    fn a_warning_from_above_is_named_in_the_reasons_refuses_a_local_lift_and_its_expected_end_lifts_nothing() {
        let mut tl = Timeline::new();
        let source = "山西省重污染天气应急指挥部预警（晋重污应急〔2026〕5号）";
        let events = tl.input(
            "2026-12-01 16:00",
            Input::Directive {
                id: ORDER,
                min_level: "orange",
                from: t("2026-12-02 00:00"),
                until: None,
                expected_end: Some(t("2026-12-03 00:00")),
                source: Some(source),
            },
        );
        assert_eq!(events[0].reason, format!("根据{source}，自12月2日0时起至少执行橙色预警"));
        assert_eq!(tl.warning().expected_end, t("2026-12-03 00:00"));
        assert_eq!(tl.warning().holds[0].source.as_deref(), Some(source));
        let refused = tl.try_input(
            "2026-12-02 10:00",
            Input::Lift {
                actor: "李副市长",
                reason: "好转",
            },
        );
        assert!(matches!(refused, Err(LifecycleError::HeldFromAbove { .. })), "{refused:?}");
        // Past its expected end it still holds: only its lift ends it.
        tl.tick("2026-12-04 00:00");
        assert_eq!((tl.warning().status, tl.warning().level.id.as_str()), (Status::Active, "orange"));
        let events = tl.input(
            "2026-12-04 10:00",
            Input::DirectiveLifted {
                id: ORDER,
                doc_no: Some("晋重污应急〔2026〕6号"),
            },
        );
        assert_eq!(events[0].reason, format!("{source}解除（解除文号：晋重污应急〔2026〕6号）"));
        assert_eq!(tl.warning().status, Status::Lifted);
    }

    #[test]
    fn a_directive_naming_an_undefined_level_is_refused() {
        let mut tl = Timeline::new();
        let refused = tl.try_input(
            "2026-12-01 16:00",
            Input::Directive {
                id: ORDER,
                min_level: "purple",
                from: t("2026-12-01 00:00"),
                until: None,
                expected_end: None,
                source: None,
            },
        );
        assert_eq!(refused, Err(LifecycleError::UndefinedLevel("purple".into())));
    }

    // ---- the record ------------------------------------------------------------------------------------------

    #[test]
    fn events_carry_the_playbook_version_pinned_when_the_episode_began() {
        let mut tl = active_orange();
        tl.pb.version = "8".into();
        let events = tl.consult_from("2026-12-04 16:00", d("2026-12-03"), &[201, 201, 50, 50, 50]);
        assert!(events.iter().all(|e| e.playbook == "test@7"), "{events:?}");
    }

    #[test]
    fn every_event_says_who_when_why_and_from_which_forecast() {
        let tl = active_orange();
        for e in &tl.log {
            assert!(!e.actor.is_empty() && !e.reason.is_empty(), "{e:?}");
            assert!(
                e.reason.chars().any(|c| ('\u{4e00}'..='\u{9fff}').contains(&c)),
                "reasons read in Chinese: {e:?}"
            );
        }
        assert_eq!(tl.log[0].forecast_id.as_deref(), Some("f1"));
    }

    #[test]
    fn the_state_rebuilt_from_the_stored_log_is_the_state_that_was_left() {
        let tl = active_orange();
        let json = serde_json::to_string(&tl.log).unwrap();
        let back: Vec<Event> = serde_json::from_str(&json).unwrap();
        let mut folded = RegionState::default();
        for e in &back {
            folded.apply(e);
        }
        assert_eq!(folded, tl.state);
    }

    #[test]
    fn a_level_and_its_rank_are_stored_as_the_two_fields_they_always_were() {
        // Records as earlier versions wrote them: read, then written again byte for byte.
        let issued = r#"{"region":"140100","at":"2026-12-01T08:05:00Z","actor":"李副市长","reason":"签发","forecast_id":"f1","playbook":"taiyuan@2026.1","kind":"issued","id":"140100-20261202-1","level":"orange","rank":2,"start":"2026-12-01T16:00:00Z","expected_end":"2026-12-04T16:00:00Z","rule":"r","signer":"李副市长","reopened":false,"plan":[{"at":"2026-12-01T16:00:00Z","level":"orange","rank":2},{"at":"2026-12-02T16:00:00Z","level":"red","rank":3}],"lead_missed":true}"#;
        let change = r#"{"region":"140100","at":"2026-12-01T08:05:00Z","actor":"consultation","reason":"待签发","forecast_id":null,"playbook":"taiyuan@2026.1","kind":"change_proposed","level":"red","rank":3,"expected_end":"2026-12-04T16:00:00Z","rule":null,"needs":"head","effective":"2026-12-02T16:00:00Z"}"#;
        for json in [issued, change] {
            let e: Event = serde_json::from_str(json).unwrap();
            assert_eq!(serde_json::to_string(&e).unwrap(), json);
        }
        let e: Event = serde_json::from_str(issued).unwrap();
        let EventKind::Issued { level, plan, .. } = &e.kind else {
            panic!("{e:?}")
        };
        assert_eq!((level, plan[1].level.rank), (&Ranked::new("orange", 2), 3));
        let mut state = RegionState::default();
        state.apply(&e);
        state.apply(&serde_json::from_str(change).unwrap());
        let w = state.warning.unwrap();
        let json = serde_json::to_value(&w).unwrap();
        assert_eq!(
            (&json["level"], &json["rank"]),
            (&serde_json::json!("orange"), &serde_json::json!(2))
        );
        assert_eq!(
            (&json["pending_change"]["level"], &json["pending_change"]["rank"]),
            (&serde_json::json!("red"), &serde_json::json!(3))
        );
        let text = serde_json::to_string(&w).unwrap();
        assert!(text.contains(r#""status":"issued","level":"orange","rank":2,"start":"#), "{text}");
        assert_eq!(serde_json::from_str::<Warning>(&text).unwrap(), w);
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
        assert!(!events.is_empty());
        assert_eq!(tl.state, before);
    }
}
