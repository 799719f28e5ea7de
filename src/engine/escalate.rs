//! Reminders and escalation (催办与逐级上报): an acknowledgement that does not come in time is chased,
//! then reported up the chain of duty staff, by durable timers.
//!
//! In: every new round of assignments (an [`OnRound`](crate::engine::assign::OnRound) hook, inside the transaction
//! that makes it), the timing per level and the escalation chain from the measure defaults
//! (`remind_before_hours`, `escalate_every_hours`, `escalation: [county, city, province]`), the duty
//! roster, the clock. Out: reminder emails to enterprises, overdue and escalation emails to duty staff
//! listing who is missing, inspection tasks ([`crate::engine::inspect`]) for overdue enterprises, and records
//! `ack_reminded`, `ack_overdue`, `ack_escalated` in the event log.
//!
//! # Timers
//!
//! Timers are documents of the collection `ack_timers`, keyed `{due ms, 15 digits}/{warning}/{batch}/{step}`
//! so that the due ones are a key range. One timer covers a *batch*: a round of assignments (they share
//! the `{seq:012}` suffix of their keys, the level and the deadline), which keeps a
//! province-wide red warning to four timer documents per warning instead of four per enterprise. For a
//! batch with deadline D:
//!
//! | step | due | what it does for each assignment of the batch still active and not received |
//! |---|---|---|
//! | `remind` | D − `remind_before_hours` | emails the enterprise (template `ack_reminder`) |
//! | `overdue` | D | tells the duty staff of the first tier of the chain (template `ack_overdue`), opens an inspection |
//! | `escalate-k` | D + k × `escalate_every_hours` | tells the duty staff of tier k of the chain (template `ack_escalated`) |
//!
//! The loop ([`run`]) takes due timers in one write job per batch of timers: it removes each timer and
//! queues its messages in the same transaction, so a timer fires exactly once, also across a crash or a
//! restart (timers that fell due while the daemon was down fire at start, in due order). An assignment
//! acknowledged (received), superseded or ended by then is simply not among those chased.
//!
//! The tier of a party (an enterprise's county, a department's region) is its own region or the
//! ancestor at that tier; a tier below the party's own region means the party's region, and a step that
//! would tell the same region again for a party is skipped for it. "Duty staff" are those on shift
//! ([`Roster::on_duty`](crate::notify::Roster::on_duty)): a county without anyone on shift falls back
//! to the nearest tier above.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration as StdDuration;

use chrono::{DateTime, Duration, Utc};
use chrono_tz::Asia::Shanghai;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

use crate::domain::ack_step::AckStep;
use crate::domain::approval::{ApprovalForm, FormStage};
use crate::domain::playbook::PlaybookSet;
use crate::domain::region::{RegionCode, Regions, Tier};
use crate::engine::Engine;
use crate::engine::assign::{self, Assignment, AssignmentStatus, OnRound, Party, Round, TokenKey};
use crate::notify::{AssignmentNotice, Channel, NotifyStage, OutboxMessage, Recipient, enqueue_for_assignment, outbox};
use crate::registry::{Defaults, Enterprise};
use crate::store::events::{AckEscalation, AckReminded, Event, RegionTold};
use crate::store::{Collection, millis_key, seq_key};
use crate::store::{RecordBody, StoreError, Tx};

/// Timer documents, key `{due ms:015}/{warning id}/{batch:012}/{step}`.
pub const TIMERS: Collection = Collection::AckTimers;

/// How often the loop looks at the clock (the clock may be a test's manual one).
const POLL: StdDuration = std::time::Duration::from_millis(200);

/// Timers fired per write job.
const TIMERS_PER_JOB: usize = 16;

/// At most this many missing parties are named in one message to duty staff (the count is exact).
const LISTED: usize = 200;

/// What a timer does when it fires.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "step", rename_all = "snake_case")]
pub enum Step {
    /// Remind each enterprise that has not acknowledged.
    Remind,
    /// Tell the first tier of the chain who is missing, and open inspections.
    Overdue {
        /// `county`, `city` or `province`.
        tier: String,
    },
    /// Tell tier `round` of the chain who is still missing.
    Escalate {
        /// 1 for the second tier of the chain, …
        round: u32,
        /// `county`, `city` or `province`.
        tier: String,
    },
}

impl Step {
    fn name(&self) -> String {
        match self {
            Step::Remind => "1-remind".into(),
            Step::Overdue { .. } => "2-overdue".into(),
            Step::Escalate { round, .. } => format!("3-escalate-{round}"),
        }
    }

    /// The chain index of the tier told (none for a reminder).
    fn round(&self) -> Option<u32> {
        match self {
            Step::Remind => None,
            Step::Overdue { .. } => Some(0),
            Step::Escalate { round, .. } => Some(*round),
        }
    }
}

/// A durable timer over one batch of assignments.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Timer {
    /// The warning.
    pub warning_id: String,
    /// The `{seq}` suffix shared by the assignment keys of the batch.
    pub batch: u64,
    /// What it does.
    #[serde(flatten)]
    pub step: Step,
    /// When it fires.
    pub due: DateTime<Utc>,
    /// The acknowledgement deadline of the batch.
    pub deadline: DateTime<Utc>,
    /// The escalation chain when it was scheduled (tier names, lowest first).
    pub chain: Vec<String>,
    /// Which acknowledgement it chases: 收到 (by the batch's acknowledgement deadline) or
    /// 措施已落实 (by the measures' start: chases only those who confirmed receipt).
    #[serde(default = "received", skip_serializing_if = "is_received")]
    pub stage: AckStep,
    /// Set for the timers of an approval form (审批表, [`crate::engine::approval`]): which form and which
    /// of its deadlines; `batch` is then the form's number within its warning, and the duty staff of
    /// the warning's region (then each tier of the chain) are told instead of parties chased.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub form: Option<FormTimer>,
}

/// What an approval form's timer chases.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FormTimer {
    /// The form's id.
    pub id: String,
    /// Its completion or its relay.
    pub stage: FormStage,
}

fn received() -> AckStep {
    AckStep::Received
}

fn is_received(s: &AckStep) -> bool {
    *s == AckStep::Received
}

fn timer_key(t: &Timer) -> String {
    let form = match &t.form {
        Some(f) if f.stage == FormStage::Form => ".form",
        Some(_) => ".relay",
        None => "",
    };
    format!(
        "{}/{}/{}/{}{}{form}",
        millis_key(t.due),
        t.warning_id,
        seq_key(t.batch),
        t.step.name(),
        stage_suffix(&t.stage)
    )
}

/// `""` for the first acknowledgement, `.in_place` for the second (timer keys, message ids).
fn stage_suffix(stage: &AckStep) -> String {
    if *stage == AckStep::Received {
        String::new()
    } else {
        format!(".{stage}")
    }
}

/// `2026年12月2日 08:05`, as people read times.
pub fn local(t: DateTime<Utc>) -> String {
    t.with_timezone(&Shanghai).format("%Y年%-m月%-d日 %H:%M").to_string()
}

fn tier_name(t: Tier) -> String {
    t.to_string()
}

fn parse_tier(s: &str) -> Option<Tier> {
    match s {
        "county" => Some(Tier::County),
        "city" => Some(Tier::City),
        "province" => Some(Tier::Province),
        _ => None,
    }
}

/// The timers of a round (pure): for receipt by the acknowledgement deadline, then for the measures
/// in place by their deadline ([`Round::in_place_by`]), each a reminder, an overdue report and escalation.
pub fn timers_for(defaults: &Defaults, r: &Round) -> Vec<Timer> {
    let chain: Vec<String> = defaults.escalation.iter().map(|t| tier_name(*t)).collect();
    let every = defaults.escalate_every(&r.level).unwrap_or_else(|| Duration::hours(2));
    let mut out = Vec::new();
    for (stage, deadline) in [(AckStep::Received, r.ack_deadline), (AckStep::InPlace, r.in_place_by())] {
        let make = |step: Step, due: DateTime<Utc>| Timer {
            warning_id: r.warning_id.clone(),
            batch: r.seq,
            step,
            due,
            deadline,
            chain: chain.clone(),
            stage,
            form: None,
        };
        if let Some(before) = defaults.remind_before(&r.level) {
            let at = deadline - before;
            if at > r.created_at {
                out.push(make(Step::Remind, at));
            }
        }
        if let Some(first) = chain.first() {
            out.push(make(Step::Overdue { tier: first.clone() }, deadline));
        }
        for (round, tier) in chain.iter().enumerate().skip(1) {
            out.push(make(
                Step::Escalate {
                    round: round as u32,
                    tier: tier.clone(),
                },
                deadline + every * round as i32,
            ));
        }
    }
    out
}

/// The timers of one deadline of an approval form (pure): a reminder `remind_before_hours` ahead (when
/// that is after `from`), the report to the first tier of the chain at the deadline, then the next
/// tiers every `escalate_every_hours` — the level's settings in the measure defaults, as for
/// acknowledgements.
pub fn form_timers(defaults: &Defaults, form: &ApprovalForm, stage: FormStage, from: DateTime<Utc>, deadline: DateTime<Utc>) -> Vec<Timer> {
    let chain: Vec<String> = defaults.escalation.iter().map(|t| tier_name(*t)).collect();
    let every = defaults.escalate_every(&form.level).unwrap_or_else(|| Duration::hours(2));
    let make = |step: Step, due: DateTime<Utc>| Timer {
        warning_id: form.warning_id.clone(),
        batch: u64::from(form.n),
        step,
        due,
        deadline,
        chain: chain.clone(),
        stage: AckStep::Received,
        form: Some(FormTimer {
            id: form.id.clone(),
            stage,
        }),
    };
    let mut out = Vec::new();
    if let Some(before) = defaults.remind_before(&form.level)
        && deadline - before > from
    {
        out.push(make(Step::Remind, deadline - before));
    }
    for (round, tier) in chain.iter().enumerate() {
        let step = if round == 0 {
            Step::Overdue { tier: tier.clone() }
        } else {
            Step::Escalate {
                round: round as u32,
                tier: tier.clone(),
            }
        };
        out.push(make(step, deadline + every * round as i32));
    }
    out
}

/// Schedules the timers of one deadline of an approval form, in the caller's transaction.
pub fn schedule_form(
    tx: &mut Tx<'_>,
    defaults: &Defaults,
    form: &ApprovalForm,
    stage: FormStage,
    from: DateTime<Utc>,
    deadline: DateTime<Utc>,
) -> Result<(), StoreError> {
    for t in &form_timers(defaults, form, stage, from, deadline) {
        tx.put_doc(TIMERS, &timer_key(t), t)?;
    }
    Ok(())
}

/// Schedules the timers of a round, in the caller's transaction.
pub fn schedule(tx: &mut Tx<'_>, defaults: &Defaults, r: &Round) -> Result<(), StoreError> {
    for t in &timers_for(defaults, r) {
        tx.put_doc(TIMERS, &timer_key(t), t)?;
    }
    Ok(())
}

/// The hook for [`crate::engine::assign::AssignStage::on_round`]: schedules the timers of each new round.
pub fn hook(defaults: Arc<Defaults>) -> Arc<OnRound> {
    Arc::new(move |tx: &mut Tx<'_>, r: &Round| schedule(tx, &defaults, r))
}

/// Every acknowledgement timer, in due order (tests, the summary); the approval forms' are left out.
pub fn pending(r: &crate::store::ReadTx) -> Result<Vec<Timer>, StoreError> {
    Ok(r.docs::<Timer>(TIMERS, "", "", usize::MAX)?
        .into_iter()
        .map(|(_, t)| t)
        .filter(|t| t.form.is_none())
        .collect())
}

/// The timers of approval forms still to fire, in due order.
pub fn pending_forms(r: &crate::store::ReadTx) -> Result<Vec<Timer>, StoreError> {
    Ok(r.docs::<Timer>(TIMERS, "", "", usize::MAX)?
        .into_iter()
        .map(|(_, t)| t)
        .filter(|t| t.form.is_some())
        .collect())
}

/// What the timer loop needs besides the store.
pub struct Escalation {
    /// The notifier (its roster says who is on duty).
    pub notify: Arc<NotifyStage>,
    /// Timing, chain, measures.
    pub defaults: Arc<Defaults>,
    /// For the acknowledgement links in reminders.
    pub tokens: TokenKey,
    /// The region table.
    pub regions: &'static Regions,
    /// The daemon's public address, for links.
    pub public_url: String,
}

/// A party that has not acknowledged, with what messages say about it.
struct Missing {
    a: Assignment,
    enterprise: Option<Enterprise>,
}

impl Missing {
    fn region(&self) -> RegionCode {
        crate::engine::assign::party_region(&self.a)
    }

    fn listing(&self, regions: &Regions) -> Value {
        let (kind, name, uscc, contact) = match (&self.a.party, &self.enterprise) {
            (Party::Enterprise { uscc, .. }, Some(e)) => {
                let c = e.responsible();
                let kind = if self.a.negotiated.is_some() { "negotiated" } else { "enterprise" };
                (
                    kind,
                    e.name.clone(),
                    Some(uscc.clone()),
                    c.map(|c| (c.name.clone(), c.phone.as_str().to_string())),
                )
            }
            (Party::Enterprise { uscc, .. }, None) => ("enterprise", uscc.clone(), Some(uscc.clone()), None),
            (Party::Department { name, region, .. }, _) => ("department", format!("{}{}", regions.name(*region), name), None, None),
        };
        json!({
            "kind": kind,
            "kind_name": match kind { "negotiated" => "协商减排", "department" => "部门", _ => "企业" },
            "name": name,
            "uscc": uscc,
            "region_name": regions.name(self.region()),
            "contact_name": contact.as_ref().map(|c| c.0.clone()),
            "contact_phone": contact.as_ref().map(|c| c.1.clone()),
            "deadline": local(self.a.ack_deadline),
            "assignment": self.a.key,
        })
    }
}

/// What one person of the duty staff is told in one job: a section per region and timer.
struct Digest {
    /// The message id's stem: the first section's warning, batch and step.
    id: String,
    /// The first section's warning.
    cause: String,
    /// The first section's region.
    region: Option<RegionCode>,
    recipient: Recipient,
    recipient_json: Value,
    sections: Vec<Value>,
}

/// The assignments of a round that are active and not received, but for departments without a contact
/// on the roster (told nothing, so not chased: progress shows them as 无联系人).
fn missing_of(tx: &Tx<'_>, batch: u64, stage: AckStep, roster: &crate::notify::Roster) -> Result<Vec<Missing>, StoreError> {
    let Some(round) = assign::round(tx, batch)? else {
        return Ok(Vec::new());
    };
    let mut res = assign::Resolver::new(tx);
    let mut out = Vec::new();
    let mut from = 0;
    loop {
        let page = assign::entries(tx, &round, from, 10_000)?;
        let Some((last, _)) = page.last() else { break };
        from = last + 1;
        for (i, e) in page {
            let has = |step: AckStep| e.acks.iter().any(|k| k.step == step);
            // The second stage chases those who confirmed receipt (the others are chased by the first).
            if has(stage) || (stage == AckStep::InPlace && !has(AckStep::Received)) {
                continue;
            }
            let a = res.assignment(&round, i, e)?;
            if a.status != AssignmentStatus::Active {
                continue;
            }
            let enterprise = match &a.party {
                Party::Enterprise { uscc, .. } => crate::engine::inspect::enterprise_in(tx, uscc)?,
                Party::Department { id, region, .. } => {
                    if roster.department_contacts(*region, id).is_empty() {
                        continue;
                    }
                    None
                }
            };
            out.push(Missing { a, enterprise });
        }
    }
    Ok(out)
}

/// The region of `tier` for a party in `r`: its ancestor at that tier, or `r` itself when `r` is at
/// or above it.
pub fn tier_region(regions: &Regions, r: RegionCode, tier: Tier) -> RegionCode {
    if r.tier() <= tier {
        return r;
    }
    regions.ancestors(r).into_iter().find(|a| a.tier() == tier).unwrap_or(match tier {
        Tier::Province => r.province(),
        Tier::City => r.city().unwrap_or(r),
        Tier::County => r,
    })
}

/// The level's display data for messages.
fn level_json(set: &PlaybookSet, regions: &Regions, defaults: &Defaults, warning_region: RegionCode, level: &str) -> Value {
    let l = set.for_region(warning_region, regions).and_then(|p| p.level(level));
    let name = l
        .map(|l| l.name.clone())
        .or_else(|| defaults.level(level).map(|l| l.name.clone()))
        .unwrap_or_else(|| level.to_string());
    json!({
        "level": level,
        "level_name": name,
        "response": l.map(|l| l.response.clone()).unwrap_or_default(),
        "level_colour": l.map(|l| l.colour.clone()),
    })
}

fn merge(mut base: Value, more: &Value) -> Value {
    if let (Some(b), Some(m)) = (base.as_object_mut(), more.as_object()) {
        for (k, v) in m {
            b.insert(k.clone(), v.clone());
        }
    }
    base
}

/// The enterprise's notice recipient: its 责任人 if that one has an email, else the first address.
pub fn enterprise_recipient(e: &Enterprise) -> Option<Recipient> {
    let c = e
        .responsible()
        .filter(|c| c.email.is_some())
        .or_else(|| e.contacts.iter().find(|c| c.email.is_some()))?;
    let email = c.email.as_ref()?;
    Some(Recipient {
        key: format!("e{}", e.uscc.as_str()),
        name: c.name.clone(),
        address: email.as_str().to_string(),
    })
}

/// What an enterprise's notices say about its task: the measures (or the negotiated commitment), each
/// as [`crate::registry::measure_json`] words it — the same lines as its 公示牌.
pub fn task_json(defaults: &Defaults, e: &Enterprise, a: &Assignment) -> Value {
    let measures: Vec<Value> = match &a.negotiated {
        Some(n) => vec![crate::registry::commitment_json(&n.commitment, &n.reductions_text())],
        None => defaults
            .measures_for(e, &a.level)
            .iter()
            .map(crate::registry::measure_json)
            .collect(),
    };
    json!({
        "enterprise": { "name": e.name, "uscc": e.uscc.as_str() },
        "measures": measures,
        "negotiated": a.negotiated,
        "applies_from": local(a.applies_from),
        "deadline": local(a.ack_deadline),
        "in_place_deadline": local(a.in_place_by()),
        "hotline": defaults.board.hotline,
        "exercise": a.exercise,
    })
}

impl Escalation {
    fn base(&self) -> &str {
        self.public_url.trim_end_matches('/')
    }

    /// The acknowledgement link of an assignment.
    pub fn ack_url(&self, a: &Assignment) -> String {
        format!("{}/ack/{}", self.base(), self.tokens.token(a))
    }

    /// Fires the timers due at `now`, at most `limit`, in this transaction. Returns how many fired.
    pub fn fire_due(&self, tx: &mut Tx<'_>, set: &PlaybookSet, now: DateTime<Utc>, limit: usize) -> Result<usize, StoreError> {
        self.fire(tx, set, now, limit).map(|f| f.count)
    }

    /// [`Escalation::fire_due`], saying which timers fired (for the log).
    fn fire(&self, tx: &mut Tx<'_>, set: &PlaybookSet, now: DateTime<Utc>, limit: usize) -> Result<Fired, StoreError> {
        let cut = now.timestamp_millis().max(0);
        let due: Vec<(String, Timer)> = tx
            .docs::<Timer>(TIMERS, "", "", limit)?
            .into_iter()
            .take_while(|(k, _)| k.get(..15).and_then(|t| t.parse::<i64>().ok()).is_some_and(|t| t <= cut))
            .collect();
        let mut summary = Fired {
            count: due.len(),
            ..Fired::default()
        };
        for (_, t) in &due {
            summary.warnings.insert(t.warning_id.clone());
            match &t.form {
                Some(f) => {
                    summary.forms.insert(f.id.clone());
                }
                None => {
                    summary.rounds.insert(t.batch);
                    summary.steps.insert(step_name(&t.step).to_string());
                }
            }
        }
        // Read everything first: a job must not fail after it has written.
        let mut plans = Vec::with_capacity(due.len());
        let mut forms = Vec::new();
        let roster = self.notify.roster();
        for (key, t) in due {
            if let Some(f) = &t.form {
                let form = crate::engine::approval::form(tx, &f.id)?;
                forms.push((key, t, form));
                continue;
            }
            let missing = missing_of(tx, t.batch, t.stage, &roster)?;
            let warning_region = tx.warning(&t.warning_id)?.map(|w| w.region);
            let mut open = Vec::new();
            if matches!(t.step, Step::Overdue { .. }) {
                for m in &missing {
                    if let (Party::Enterprise { .. }, Some(e)) = (&m.a.party, &m.enterprise)
                        && !crate::engine::inspect::exists_for(tx, &m.a)?
                    {
                        open.push(crate::engine::inspect::Inspection::overdue(&m.a, e, now));
                    }
                }
            }
            plans.push((key, t, missing, warning_region, open));
        }
        debug_assert_eq!(summary.count, plans.len() + forms.len());
        for (key, t, form) in forms {
            tx.remove_doc(TIMERS, &key)?;
            if let Some(form) = form {
                self.chase_form(tx, set, now, &t, &form)?;
            }
        }
        // Duty staff get one digest per person for all the timers of this job (all regions in it).
        let mut digests: BTreeMap<String, Digest> = BTreeMap::new();
        for (key, t, missing, warning_region, open) in plans {
            tx.remove_doc(TIMERS, &key)?;
            let Some(warning_region) = warning_region else { continue };
            let Some(first) = missing.first() else { continue };
            let level = level_json(set, self.regions, &self.defaults, warning_region, &first.a.level);
            let common = merge(
                json!({
                    "warning_id": t.warning_id,
                    "region": warning_region,
                    "region_name": self.regions.name(warning_region),
                    "issuer": crate::domain::playbook::issuer_of(set, warning_region, self.regions).name,
                    "deadline": local(t.deadline),
                    "stage": t.stage,
                    "at": local(now),
                    "dashboard_url": format!("{}/", self.base()),
                    "warning_url": format!("{}/warnings/{}", self.base(), t.warning_id),
                    "exercise": first.a.exercise,
                }),
                &level,
            );
            match &t.step {
                Step::Remind => self.remind(tx, now, &t, &missing, &common)?,
                step => self.report(tx, now, &t, step, &missing, &common, open, &mut digests)?,
            }
        }
        self.send_digests(tx, now, digests)?;
        Ok(summary)
    }

    /// Queues one message per person for the sections gathered in this job: `ack_overdue` when any
    /// section is a first report, else `ack_escalated`. The message carries the first section's fields
    /// at the top (so a one-region digest reads as before), `sections` (each region's report), `total`.
    fn send_digests(&self, tx: &mut Tx<'_>, now: DateTime<Utc>, digests: BTreeMap<String, Digest>) -> Result<(), StoreError> {
        for (person, d) in digests {
            let Some(first) = d.sections.first() else { continue };
            let overdue = d.sections.iter().any(|s| s["event"] == "ack_overdue");
            let (template, event) = if overdue {
                ("ack_overdue", "ack_overdue")
            } else {
                ("ack_escalated", "ack_escalated")
            };
            let mut data = first.clone();
            data["event"] = json!(event);
            data["recipient"] = d.recipient_json.clone();
            data["total"] = json!(d.sections.iter().map(|s| s["count"].as_u64().unwrap_or(0)).sum::<u64>());
            data["sections"] = json!(d.sections);
            let msg = OutboxMessage::new(
                &format!("{}-{person}-email", d.id),
                Channel::Email,
                d.recipient,
                template,
                data,
                &d.cause,
                d.region,
                now,
            );
            let queued = u64::from(outbox::enqueue_new(tx, msg)?);
            tx.bump(&format!("{event}_notices"), queued)?;
            tx.bump("ack_digests_sections", d.sections.len() as u64)?;
        }
        Ok(())
    }

    fn remind(&self, tx: &mut Tx<'_>, now: DateTime<Utc>, t: &Timer, missing: &[Missing], common: &Value) -> Result<(), StoreError> {
        let mut queued = 0u64;
        let roster = self.notify.roster();
        for m in missing {
            // A department: each of its contacts is reminded of its duty (template department_reminder).
            if let Party::Department { id, name, region } = &m.a.party {
                for c in roster.department_contacts(*region, id) {
                    let mut data = common.clone();
                    data["event"] = json!("department_reminder");
                    data["department"] = json!({ "id": id, "name": format!("{}{name}", self.regions.name(*region)) });
                    data["duty"] = json!(m.a.duty);
                    data["applies_from"] = json!(local(m.a.applies_from));
                    data["deadline"] = json!(local(t.deadline));
                    data["in_place_deadline"] = json!(local(m.a.in_place_by()));
                    data["overdue"] = json!(now >= t.deadline);
                    data["hotline"] = json!(self.defaults.board.hotline);
                    data["recipient"] = json!({ "name": c.name });
                    data["ack_url"] = json!(self.ack_url(&m.a));
                    let notice = AssignmentNotice {
                        assignment_id: m.a.key.clone(),
                        kind: format!("reminder{}", stage_suffix(&t.stage)),
                        to: Recipient {
                            key: format!("d{}", c.email.to_ascii_lowercase()),
                            name: c.name.clone(),
                            address: c.email.clone(),
                        },
                        template: "department_reminder".into(),
                        data,
                        region: Some(*region),
                    };
                    queued += u64::from(enqueue_for_assignment(tx, now, notice)?);
                }
                continue;
            }
            let Some(e) = &m.enterprise else { continue };
            let Some(to) = enterprise_recipient(e) else { continue };
            let mut data = merge(common.clone(), &task_json(&self.defaults, e, &m.a));
            data["event"] = json!("ack_reminder");
            data["recipient"] = json!({ "name": to.name });
            data["ack_url"] = json!(self.ack_url(&m.a));
            data["deadline"] = json!(local(t.deadline));
            data["overdue"] = json!(now >= t.deadline);
            let notice = AssignmentNotice {
                assignment_id: m.a.key.clone(),
                kind: format!("reminder{}", stage_suffix(&t.stage)),
                to,
                template: "ack_reminder".into(),
                data,
                region: Some(m.region()),
            };
            queued += u64::from(enqueue_for_assignment(tx, now, notice)?);
        }
        if queued > 0 {
            tx.bump("ack_reminders", queued)?;
            tx.append(
                now,
                "escalation",
                None,
                RecordBody::Other(Event::AckReminded(AckReminded {
                    batch: t.batch,
                    reminders: queued,
                    stage: t.stage,
                    warning_id: t.warning_id.clone(),
                })),
            )?;
        }
        Ok(())
    }

    /// An approval form's timer: unless its stage is done (or the form void), the duty staff of the
    /// warning's region (a reminder) or of the step's tier (overdue, escalation) are told, one message
    /// each (template `approval_overdue`), and `approval_chased` is recorded.
    fn chase_form(&self, tx: &mut Tx<'_>, set: &PlaybookSet, now: DateTime<Utc>, t: &Timer, form: &ApprovalForm) -> Result<(), StoreError> {
        let Some(ft) = &t.form else { return Ok(()) };
        if form.done(ft.stage) {
            return Ok(());
        }
        let chain: Vec<Tier> = t.chain.iter().filter_map(|s| parse_tier(s)).collect();
        let region = match t.step.round() {
            None => form.region,
            Some(round) => {
                let Some(tier) = chain.get(round as usize).copied() else {
                    return Ok(());
                };
                let r = tier_region(self.regions, form.region, tier);
                // A step that would tell the region the previous step told is skipped.
                let prev = match round {
                    0 => None,
                    k => chain.get(k as usize - 1).map(|p| tier_region(self.regions, form.region, *p)),
                };
                if prev == Some(r) {
                    return Ok(());
                }
                r
            }
        };
        let people = self.notify.roster().on_duty(region, now);
        if people.is_empty() {
            tracing::warn!(region = %region, form = %form.id, "nobody on duty to tell of an approval form");
            tx.bump("notify_nobody_to_tell", 1)?;
        }
        let step = match &t.step {
            Step::Remind => "remind".to_string(),
            Step::Overdue { .. } => "overdue".to_string(),
            Step::Escalate { round, .. } => format!("escalate-{round}"),
        };
        let stage = match ft.stage {
            FormStage::Form => "form",
            FormStage::Relay => "relay",
        };
        let level = level_json(set, self.regions, &self.defaults, form.region, &form.level);
        let data = merge(
            json!({
                "event": "approval_overdue",
                "warning_id": form.warning_id,
                "region": form.region,
                "region_name": self.regions.name(form.region),
                "issuer": form.issuer,
                "form": { "id": form.id, "kind": form.kind, "kind_name": form.kind.zh() },
                "stage": stage,
                "step": step,
                "overdue": !matches!(t.step, Step::Remind),
                "deadline": local(t.deadline),
                "at": local(now),
                "tier_region": region,
                "tier_region_name": self.regions.name(region),
                "dashboard_url": format!("{}/", self.base()),
                "approval_url": format!("{}/approvals/{}", self.base(), form.id),
                "exercise": form.exercise,
            }),
            &level,
        );
        for p in &people {
            let mut d = data.clone();
            d["recipient"] = json!({ "name": p.name, "role": p.role, "region": p.region });
            let msg = OutboxMessage::new(
                &format!("{}.{stage}.{step}-{}-email", form.id, p.id),
                Channel::Email,
                Recipient {
                    key: p.id.clone(),
                    name: p.name.clone(),
                    address: p.email.clone(),
                },
                "approval_overdue",
                d,
                &form.warning_id,
                Some(region),
                now,
            );
            let queued = u64::from(outbox::enqueue_new(tx, msg)?);
            tx.bump("approval_chased_notices", queued)?;
        }
        tx.append(
            now,
            "escalation",
            None,
            RecordBody::Other(Event::ApprovalChased(crate::store::events::ApprovalChased {
                form: form.id.clone(),
                stage: ft.stage,
                step,
                tier_region: region,
                told: people.iter().map(|p| p.id.clone()).collect(),
                warning_id: form.warning_id.clone(),
            })),
        )?;
        Ok(())
    }

    #[allow(clippy::too_many_arguments)]
    fn report(
        &self,
        tx: &mut Tx<'_>,
        now: DateTime<Utc>,
        t: &Timer,
        step: &Step,
        missing: &[Missing],
        common: &Value,
        open: Vec<crate::engine::inspect::Inspection>,
        digests: &mut BTreeMap<String, Digest>,
    ) -> Result<(), StoreError> {
        let round = step.round().unwrap_or(0) as usize;
        let chain: Vec<Tier> = t.chain.iter().filter_map(|s| parse_tier(s)).collect();
        let Some(tier) = chain.get(round).copied() else { return Ok(()) };
        // Group the missing parties by the region this step tells; skip a party whose region for this
        // step is the one the previous step told already.
        let mut groups: BTreeMap<RegionCode, Vec<&Missing>> = BTreeMap::new();
        for m in missing {
            let r = tier_region(self.regions, m.region(), tier);
            if round > 0
                && chain
                    .get(round - 1)
                    .is_some_and(|prev| tier_region(self.regions, m.region(), *prev) == r)
            {
                continue;
            }
            groups.entry(r).or_default().push(m);
        }
        let mut opened: BTreeMap<RegionCode, usize> = BTreeMap::new();
        for i in &open {
            *opened.entry(tier_region(self.regions, i.county, tier)).or_default() += 1;
        }
        for i in open {
            crate::engine::inspect::put_new(tx, now, &i, "escalation")?;
        }
        let (event, label) = match step {
            Step::Overdue { .. } => ("ack_overdue", "overdue".to_string()),
            _ => ("ack_escalated", format!("escalate{round}")),
        };
        let mut per_region = BTreeMap::new();
        for (region, list) in &groups {
            let people = self.notify.roster().on_duty(*region, now);
            if people.is_empty() {
                tracing::warn!(region = %region, warning = %t.warning_id, "nobody on duty to tell of overdue acknowledgements");
                tx.bump("notify_nobody_to_tell", 1)?;
            }
            let listed: Vec<Value> = list.iter().take(LISTED).map(|m| m.listing(self.regions)).collect();
            let data = merge(
                common.clone(),
                &json!({
                    "event": event,
                    "tier": tier_name(tier),
                    "round": round,
                    "tier_region": region,
                    "tier_region_name": self.regions.name(*region),
                    "count": list.len(),
                    "enterprises": list.iter().filter(|m| matches!(m.a.party, Party::Enterprise { .. })).count(),
                    "departments": list.iter().filter(|m| matches!(m.a.party, Party::Department { .. })).count(),
                    "missing": listed,
                    "more": list.len().saturating_sub(LISTED),
                    "inspections_opened": opened.get(region).copied().unwrap_or(0),
                    // The dashboard's warning page (progress, who is missing), not the API.
                    "acks_url": format!("{}/warnings/{}#ack-h", self.base(), t.warning_id),
                }),
            );
            // A drill's reports go in digests of their own: a mail never mixes a drill with real warnings.
            let drill = if common["exercise"] == json!(true) { "-drill" } else { "" };
            for p in &people {
                let d = digests.entry(format!("{}{drill}", p.id)).or_insert_with(|| Digest {
                    id: format!("{}.{:012}.{label}{}", t.warning_id, t.batch, stage_suffix(&t.stage)),
                    cause: t.warning_id.clone(),
                    region: Some(*region),
                    recipient: Recipient {
                        key: p.id.clone(),
                        name: p.name.clone(),
                        address: p.email.clone(),
                    },
                    recipient_json: json!({ "name": p.name, "role": p.role, "region": p.region }),
                    sections: Vec::new(),
                });
                d.sections.push(data.clone());
            }
            per_region.insert(
                *region,
                RegionTold {
                    missing: list.len() as u64,
                    told: people.iter().map(|p| p.id.clone()).collect(),
                },
            );
        }
        if !groups.is_empty() {
            let told = AckEscalation {
                batch: t.batch,
                missing: missing.len() as u64,
                regions: per_region,
                round: step.round().unwrap_or(0),
                stage: t.stage,
                tier: tier_name(tier),
                warning_id: t.warning_id.clone(),
            };
            let body = match step {
                Step::Overdue { .. } => Event::AckOverdue(told),
                _ => Event::AckEscalated(told),
            };
            tx.append(now, "escalation", None, RecordBody::Other(body))?;
        }
        Ok(())
    }
}

/// Which timers a job fired (for the log).
#[derive(Debug, Default)]
struct Fired {
    count: usize,
    warnings: BTreeSet<String>,
    rounds: BTreeSet<u64>,
    steps: BTreeSet<String>,
    forms: BTreeSet<String>,
}

/// A step's name in the log.
fn step_name(step: &Step) -> &'static str {
    match step {
        Step::Remind => "remind",
        Step::Overdue { .. } => "overdue",
        Step::Escalate { .. } => "escalate",
    }
}

/// Fires every timer due at `now`, a job at a time. Returns how many fired. Each job runs in a span
/// `job` (`kind = "timers"`) and says which warnings, rounds, steps and approval forms it fired.
pub async fn run_once(esc: &Arc<Escalation>, engine: &Engine, now: DateTime<Utc>) -> Result<usize, StoreError> {
    let cut = millis_key(now);
    let mut fired = 0;
    loop {
        let any = engine.store.read(|r| {
            Ok(r.doc_keys(TIMERS, "", "", 1)?
                .first()
                .is_some_and(|k| k.get(..15).is_some_and(|d| d <= cut.as_str())))
        })?;
        if !any {
            return Ok(fired);
        }
        let (esc, set) = (esc.clone(), engine.playbooks.live());
        let span = tracing::info_span!("job", kind = "timers", due = %crate::engine::escalate::local(now));
        let done = engine.store.write(move |tx| esc.fire(tx, &set, now, TIMERS_PER_JOB)).await;
        let _in = span.enter();
        let done = done.inspect_err(|e| tracing::error!(error = %e, "acknowledgement timers failed; they stay due"))?;
        if done.count > 0 {
            tracing::info!(
                fired = done.count,
                warnings = crate::logs::list(&done.warnings.iter().collect::<Vec<_>>()),
                rounds = crate::logs::list(&done.rounds.iter().collect::<Vec<_>>()),
                steps = crate::logs::list(&done.steps.iter().collect::<Vec<_>>()),
                forms = crate::logs::list(&done.forms.iter().collect::<Vec<_>>()),
                "timers fired"
            );
        }
        let n = done.count;
        fired += n;
        if n == 0 {
            return Ok(fired);
        }
    }
}

/// The timer loop: fires due timers until cancelled; a job in progress finishes first.
pub async fn run(esc: Arc<Escalation>, engine: Arc<Engine>, cancel: CancellationToken) {
    loop {
        let now = engine.clock.now();
        match run_once(&esc, &engine, now).await {
            Ok(0) => {}
            Ok(n) => {
                tracing::info!(timers = n, "acknowledgement timers fired");
                engine.after_change();
            }
            // Logged in the job's span.
            Err(e) => tracing::debug!(error = %e, "the timer job failed"),
        }
        tokio::select! {
            () = cancel.cancelled() => break,
            () = tokio::time::sleep(POLL) => {}
        }
    }
}

/// For `hazeflow verify`: every timer decodes, sits under its own key, and belongs to a stored round
/// of its warning (`rounds`: seq → warning id, from [`crate::engine::assign::check`]).
pub fn check(r: &crate::store::ReadTx, rounds: &std::collections::BTreeMap<u64, String>) -> Result<Vec<String>, StoreError> {
    let mut diffs = Vec::new();
    for (key, v) in r.docs::<serde_json::Value>(TIMERS, "", "", usize::MAX)? {
        match serde_json::from_value::<Timer>(v) {
            Ok(t) => {
                if timer_key(&t) != key {
                    diffs.push(format!("timer {key}: holds the timer {}", timer_key(&t)));
                }
                if let Some(f) = &t.form {
                    if crate::engine::approval::form(r, &f.id)?.is_none() {
                        diffs.push(format!("timer {key}: no approval form {}", f.id));
                    }
                } else if rounds.get(&t.batch) != Some(&t.warning_id) {
                    diffs.push(format!("timer {key}: no round {} of warning {}", t.batch, t.warning_id));
                }
            }
            Err(e) => diffs.push(format!("timer {key}: does not decode: {e}")),
        }
    }
    Ok(diffs)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registry::shanxi_defaults;

    fn round(level: &str, seq: u64) -> Round {
        let t0 = DateTime::parse_from_rfc3339("2026-12-02T00:05:00Z").unwrap().with_timezone(&Utc);
        Round {
            seq,
            warning_id: "140100-20261202-1".into(),
            warning_region: RegionCode::parse("140100").unwrap(),
            level: level.into(),
            applies_from: t0 + Duration::hours(24),
            ack_deadline: t0 + shanxi_defaults().ack_deadline(level).unwrap(),
            in_place_deadline: None,
            created_at: t0,
            count: 1,
            track: String::new(),
            negotiated: None,
            exercise: false,
        }
    }

    #[test]
    fn a_batch_is_reminded_before_its_deadline_then_reported_to_each_tier_of_the_chain_in_turn() {
        let d = shanxi_defaults();
        let a = round("orange", 42);
        let t0 = a.created_at;
        let got: Vec<(String, i64)> = timers_for(d, &a)
            .iter()
            .map(|t| (t.step.name(), (t.due - t0).num_minutes()))
            .collect();
        // Orange: 4 h to acknowledge, a reminder 1 h before, then every 2 h the next tier.
        // Then the measures in place by their start (24 h after the round): a reminder 1 h before, … .
        let want = [
            ("1-remind", 180),
            ("2-overdue", 240),
            ("3-escalate-1", 360),
            ("3-escalate-2", 480),
            ("1-remind", 1380),
            ("2-overdue", 1440),
            ("3-escalate-1", 1560),
            ("3-escalate-2", 1680),
        ];
        assert_eq!(got, want.map(|(s, m)| (s.to_string(), m)));
        let stages: Vec<AckStep> = timers_for(d, &a).into_iter().map(|t| t.stage).collect();
        assert_eq!(stages, [[AckStep::Received; 4], [AckStep::InPlace; 4]].concat());
        let keys: Vec<String> = timers_for(d, &a).iter().map(timer_key).collect();
        let mut sorted = keys.clone();
        sorted.sort();
        assert_eq!(keys, sorted, "keys sort in due order");
        assert!(keys[0].ends_with("/140100-20261202-1/000000000042/1-remind"), "{}", keys[0]);
        assert!(keys[4].ends_with("/000000000042/1-remind.in_place"), "{}", keys[4]);
        // Red: 2 h, a reminder 30 min before, escalation every hour.
        let red = round("red", 43);
        let got: Vec<i64> = timers_for(d, &red).iter().map(|t| (t.due - t0).num_minutes()).collect();
        assert_eq!(got, [90, 120, 180, 240, 1410, 1440, 1500, 1560]);
        // Measures in force at once: in place is due with receipt, not before.
        let mut now = round("red", 44);
        now.applies_from = now.created_at;
        let t = timers_for(d, &now);
        assert!(
            t.iter()
                .filter(|t| t.stage == AckStep::InPlace)
                .all(|t| t.deadline == now.ack_deadline)
        );
    }

    /// Data shaped like what [`Escalation::remind`], [`Escalation::report`] and the negotiated notice give
    /// their templates.
    fn sample(name: &str) -> Value {
        let mut v = json!({
            "event": name, "stage": "received", "warning_id": "140100-20261202-1", "region": "140100", "region_name": "太原市",
            "level": "orange", "level_name": "橙色预警", "response": "Ⅱ级", "level_colour": "#FF7E00",
            "deadline": "2026年12月2日 12:05", "at": "2026年12月2日 12:05", "issuer": "太原市重污染天气应急指挥部办公室",
            "dashboard_url": "https://h.example.cn/", "warning_url": "https://h.example.cn/warnings/140100-20261202-1",
            "recipient": { "name": "白雪", "role": "duty_officer", "region": "140105" },
        });
        let task = json!({
            "enterprise": { "name": "太原市晋阳水泥有限公司", "uscc": "91140105MA0K3T7W5X" },
            "measures": [{ "item": "1#熟料线：限产20%", "line_name": "1#熟料线", "text": "限产20%", "note": "" }, { "item": "全厂：停止公路运输（x）", "line_name": null, "text": "停止公路运输", "note": "x" }],
            "negotiated": if name == "negotiated_issued" { json!({ "commitment": "2#焦炉出焦时间延长至72小时", "reductions": { "so2": 0.3, "nox": 0.5, "pm": 0.0, "vocs": 0.0 }, "agreed_by": "值班员", "note": "电话协商" }) } else { Value::Null },
            "applies_from": "2026年12月3日 08:05", "in_place_deadline": "2026年12月3日 08:05", "hotline": "12369", "ack_url": "https://h.example.cn/ack/0123", "overdue": false,
        });
        let report = json!({
            "tier": "county", "round": 0, "tier_region": "140105", "tier_region_name": "小店区", "count": 2,
            "enterprises": 2, "departments": 0, "more": 0, "inspections_opened": 2, "acks_url": "https://h.example.cn/api/v1/warnings/x/acks",
            "missing": [{ "kind": "enterprise", "kind_name": "企业", "name": "太原市晋阳水泥有限公司", "uscc": "91140105MA0K3T7W5X",
                          "region_name": "小店区", "contact_name": "王建国", "contact_phone": "13800000001", "deadline": "2026年12月2日 12:05", "assignment": "k" }],
        });
        v = merge(
            v,
            if name.starts_with("ack_reminder") || name == "negotiated_issued" {
                &task
            } else {
                &report
            },
        );
        v["sections"] = json!([v.clone()]);
        v["total"] = v["count"].clone();
        v
    }

    #[test]
    fn every_shipped_escalation_template_renders_its_data_in_strict_mode_and_escapes_html() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("playbooks/templates/notify");
        let mut env = minijinja::Environment::new();
        env.set_undefined_behavior(minijinja::UndefinedBehavior::Strict);
        env.set_auto_escape_callback(|n| {
            if n.ends_with(".html.j2") {
                minijinja::AutoEscape::Html
            } else {
                minijinja::AutoEscape::None
            }
        });
        for f in std::fs::read_dir(&dir).unwrap().map(|e| e.unwrap().path()) {
            let name = f.file_name().unwrap().to_string_lossy().to_string();
            env.add_template_owned(name, std::fs::read_to_string(&f).unwrap()).unwrap();
        }
        for name in ["ack_reminder", "ack_overdue", "ack_escalated", "negotiated_issued"] {
            let mut data = sample(name);
            data["recipient"]["name"] = json!("<b>白雪</b>");
            for part in ["subject", "txt", "html"] {
                let out = env
                    .get_template(&format!("{name}.{part}.j2"))
                    .unwrap()
                    .render(&data)
                    .unwrap_or_else(|e| panic!("{name}.{part}: {e:#}"));
                assert!(!out.trim().is_empty(), "{name}.{part}");
                if part == "html" {
                    assert!(
                        !out.contains("<b>白雪") && out.contains("&lt;b&gt;白雪"),
                        "{name}.html escapes: {out}"
                    );
                }
            }
        }
        let subject = env
            .get_template("ack_overdue.subject.j2")
            .unwrap()
            .render(sample("ack_overdue"))
            .unwrap();
        assert_eq!(
            subject.trim(),
            "【逾期未确认】小店区2家单位未确认太原市重污染天气橙色预警应急响应任务"
        );
    }

    #[test]
    fn each_tier_of_the_chain_is_the_partys_own_region_or_its_ancestor_at_that_tier() {
        let r = Regions::shanxi();
        let c = |s: &str| RegionCode::parse(s).unwrap();
        let table = [
            ("140105", Tier::County, "140105"),
            ("140105", Tier::City, "140100"),
            ("140105", Tier::Province, "140000"),
            ("140100", Tier::County, "140100"), // a city's department: the city itself
            ("140100", Tier::Province, "140000"),
        ];
        for (from, tier, want) in table {
            assert_eq!(tier_region(r, c(from), tier), c(want), "{from} {tier}");
        }
    }
}
