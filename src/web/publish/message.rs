//! Which log records become public messages, derived again from the event log on every read, so a
//! message never changes once published and survives restarts.
//!
//! In: the lifecycle records of one region (every warning it has had), in log order. Out: the
//! [`Message`]s, one per record that the public must hear about, and the region's state after the
//! last record. Pure apart from [`collect`] and [`find`], which read them from a [`ReadTx`].
//!
//! What is published: the issue of a warning (`Alert`); a level change, an extension, an earlier
//! start, a re-publication while in force (`Update`, referencing every earlier message of the episode); a lift or a cancellation
//! (`Cancel`, the same references). Proposals awaiting sign-off, withdrawn proposals, the start
//! itself, lift windows and directive holds stay internal. A warning re-opened after its lift
//! starts a new episode with a new `Alert`.
//!
//! The region's records are folded through [`RegionState::apply`], the lifecycle's own fold, so the
//! warning a record belongs to is the one the lifecycle says, whatever index it was filed under.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::domain::level::{LevelId, Ranked};
use crate::domain::region::RegionCode;
use crate::domain::warning::{EventKind, RegionState, Status, Warning};
use crate::store::{ReadTx, Record, RecordBody, StoreError};

/// CAP `msgType`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum MsgType {
    /// The first message of an episode.
    Alert,
    /// Supersedes the earlier messages of the episode.
    Update,
    /// Ends the episode.
    Cancel,
}

impl MsgType {
    /// The CAP name.
    pub fn as_str(self) -> &'static str {
        match self {
            MsgType::Alert => "Alert",
            MsgType::Update => "Update",
            MsgType::Cancel => "Cancel",
        }
    }
}

/// What happened, in the words the templates branch on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Change {
    /// Issued (发布).
    Issue,
    /// Raised to a higher level (升级).
    Upgrade,
    /// Lowered to a lower level (降级).
    Downgrade,
    /// The expected end moved later (延长).
    Extend,
    /// Starts earlier than announced (提前).
    Reschedule,
    /// Lifted after it started (解除).
    Lift,
    /// Called off before it started (取消).
    Cancel,
    /// Published again while in force (定时重新发布, the playbook's `republish_hours`).
    Republish,
}

/// An earlier message a later one refers to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Reference {
    /// Its identifier.
    pub id: String,
    /// When it was sent.
    pub sent: DateTime<Utc>,
}

/// One public message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Message {
    /// `{warning_id}-{seq}`: the record that caused it.
    pub id: String,
    /// The warning.
    pub warning_id: String,
    /// Sequence number of that record.
    pub seq: u64,
    /// CAP message type.
    pub msg_type: MsgType,
    /// What happened.
    pub change: Change,
    /// When it was recorded, i.e. published.
    pub sent: DateTime<Utc>,
    /// When the change takes effect.
    pub effective: DateTime<Utc>,
    /// The warning as it stood after the change.
    pub warning: Warning,
    /// The level before a level change.
    pub previous_level: Option<LevelId>,
    /// Every earlier message of the episode, oldest first (empty for an `Alert`).
    pub references: Vec<Reference>,
}

/// One region's messages and its state after the last record.
#[derive(Debug, Clone, Default)]
pub struct RegionMessages {
    /// Oldest first.
    pub messages: Vec<Message>,
    /// The fold of every record.
    pub state: RegionState,
}

impl RegionMessages {
    /// The signed warning in force or announced, if any (never a proposal awaiting sign-off).
    pub fn current(&self) -> Option<&Warning> {
        self.state
            .warning
            .as_ref()
            .filter(|w| matches!(w.status, Status::Issued | Status::Active) && w.issued_at.is_some())
    }
}

/// Folds one region's lifecycle records (in log order) into its public messages.
pub fn derive<'a>(records: impl IntoIterator<Item = &'a Record>) -> RegionMessages {
    let mut out = RegionMessages::default();
    // The messages of the episode published so far; empty while nothing is public.
    let mut episode: Vec<Reference> = Vec::new();
    for rec in records {
        let RecordBody::Warning { event, .. } = &rec.body else { continue };
        let before = out.state.warning.clone();
        out.state.apply(event);
        let Some(after) = out.state.warning.clone() else { continue };
        let public = !episode.is_empty();
        // A decided level change is published when it is decided, with its effective time; its taking
        // effect later is then no news.
        let announced = before.as_ref().and_then(|b| b.next.clone());
        let mut shown = after.clone();
        let mut effective = event.at;
        let (msg_type, change, previous_level) = match &event.kind {
            EventKind::Issued { start, .. } if public => {
                effective = *start;
                (MsgType::Update, Change::Issue, None)
            }
            EventKind::Issued { start, .. } => {
                effective = *start;
                (MsgType::Alert, Change::Issue, None)
            }
            EventKind::Scheduled {
                to: Some(to),
                rank,
                effective: at,
                ..
            } if public => {
                let up = *rank > after.level.rank;
                effective = *at;
                let from = after.level.id.clone();
                shown.level = Ranked::new(to.clone(), *rank);
                (MsgType::Update, if up { Change::Upgrade } else { Change::Downgrade }, Some(from))
            }
            EventKind::LevelChanged { from, rank, .. } if public && announced.is_none() => {
                let up = before.as_ref().is_none_or(|b| *rank > b.level.rank);
                (
                    MsgType::Update,
                    if up { Change::Upgrade } else { Change::Downgrade },
                    Some(from.clone()),
                )
            }
            EventKind::Extended { .. } if public => (MsgType::Update, Change::Extend, None),
            EventKind::Republished { .. } if public => (MsgType::Update, Change::Republish, None),
            EventKind::Rescheduled { start } if public => {
                effective = *start;
                (MsgType::Update, Change::Reschedule, None)
            }
            // The public hears of the end when it takes effect (the expected end is in every earlier message).
            EventKind::Lifted if public => (MsgType::Cancel, Change::Lift, None),
            EventKind::Cancelled if public => (MsgType::Cancel, Change::Cancel, None),
            _ => continue,
        };
        let id = format!("{}-{}", after.id, rec.seq);
        let references = if msg_type == MsgType::Alert { Vec::new() } else { episode.clone() };
        out.messages.push(Message {
            id: id.clone(),
            warning_id: after.id.clone(),
            seq: rec.seq,
            msg_type,
            change,
            sent: rec.recorded_at,
            effective,
            warning: shown,
            previous_level,
            references,
        });
        if msg_type == MsgType::Cancel {
            episode.clear();
        } else {
            episode.push(Reference { id, sent: rec.recorded_at });
        }
    }
    out
}

/// Every region that has ever had a signed warning, with its messages. Real warnings only: the public
/// page and the feed never show a drill (演练), whose messages [`find`] still serves as CAP `Exercise`.
pub fn collect(r: &ReadTx) -> Result<BTreeMap<RegionCode, RegionMessages>, StoreError> {
    let mut by_region: BTreeMap<RegionCode, (bool, Vec<String>)> = BTreeMap::new();
    for w in r.warnings()?.into_iter().filter(|w| !w.exercise) {
        let e = by_region.entry(w.region).or_default();
        e.0 |= w.issued_at.is_some();
        e.1.push(w.id);
    }
    let mut out = BTreeMap::new();
    for (region, (ever_issued, ids)) in by_region {
        if ever_issued {
            out.insert(region, region_messages(r, &ids)?);
        }
    }
    Ok(out)
}

/// One message by id (`{warning_id}-{seq}`), if it exists.
pub fn find(r: &ReadTx, id: &str) -> Result<Option<Message>, StoreError> {
    let Some((warning_id, seq)) = id.rsplit_once('-') else {
        return Ok(None);
    };
    let Ok(seq) = seq.parse::<u64>() else { return Ok(None) };
    let Some(w) = r.warning(warning_id)? else { return Ok(None) };
    // The region's warnings of the same lane: a drill's messages never reference real ones.
    let ids: Vec<String> = r
        .warnings()?
        .into_iter()
        .filter(|x| x.region == w.region && x.exercise == w.exercise)
        .map(|x| x.id)
        .collect();
    Ok(region_messages(r, &ids)?
        .messages
        .into_iter()
        .find(|m| m.seq == seq && m.warning_id == warning_id))
}

/// The region's records are the union of its warnings' histories, in log order.
fn region_messages(r: &ReadTx, warning_ids: &[String]) -> Result<RegionMessages, StoreError> {
    let mut records: BTreeMap<u64, Record> = BTreeMap::new();
    for id in warning_ids {
        for rec in r.warning_history(id)? {
            records.insert(rec.seq, rec);
        }
    }
    Ok(derive(records.values()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::warning::Event;
    use chrono::TimeZone;

    const W: &str = "140100-20261201-1";

    fn t(h: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 12, 1, 0, 0, 0).unwrap() + chrono::Duration::hours(h.into())
    }

    fn region() -> RegionCode {
        RegionCode::parse("140100").unwrap()
    }

    fn rec(seq: u64, at: u32, kind: EventKind) -> Record {
        let event = Event {
            region: region(),
            at: t(at),
            actor: "x".into(),
            reason: "r".into(),
            forecast_id: None,
            playbook: "taiyuan@1".into(),
            kind,
            exercise: false,
        };
        Record {
            seq,
            recorded_at: t(at),
            actor: "x".into(),
            playbook: None,
            body: RecordBody::Warning {
                warning_id: W.into(),
                event,
            },
        }
    }

    fn proposed(seq: u64, at: u32, id: &str, reopened: bool) -> Record {
        rec(
            seq,
            at,
            EventKind::Proposed {
                id: id.into(),
                level: Ranked::new("yellow", 1),
                start: t(at + 24),
                expected_end: t(at + 72),
                rule: None,
                needs: "deputy_head".into(),
                reopened,
                plan: Vec::new(),
            },
        )
    }

    fn issued(seq: u64, at: u32, id: &str, reopened: bool) -> Record {
        rec(
            seq,
            at,
            EventKind::Issued {
                id: id.into(),
                level: Ranked::new("yellow", 1),
                start: t(at + 24),
                expected_end: t(at + 72),
                rule: None,
                signer: Some("李".into()),
                reopened,
                plan: Vec::new(),
                lead_missed: false,
            },
        )
    }

    fn upgrade(seq: u64, at: u32) -> Record {
        rec(
            seq,
            at,
            EventKind::LevelChanged {
                from: "yellow".into(),
                to: "orange".into(),
                rank: 2,
                expected_end: t(at + 72),
                rule: None,
                signer: None,
            },
        )
    }

    fn summary(m: &RegionMessages) -> Vec<(String, &'static str, Vec<String>)> {
        m.messages
            .iter()
            .map(|m| {
                (
                    m.id.clone(),
                    m.msg_type.as_str(),
                    m.references.iter().map(|r| r.id.clone()).collect(),
                )
            })
            .collect()
    }

    #[test]
    fn an_episode_is_an_alert_then_updates_referencing_all_before_then_a_cancel() {
        let log = [
            proposed(1, 0, W, false),
            issued(2, 1, W, false),
            rec(3, 25, EventKind::Started),
            rec(
                4,
                26,
                EventKind::ChangeProposed {
                    level: Ranked::new("orange", 2),
                    expected_end: t(90),
                    rule: None,
                    needs: "deputy_head".into(),
                    effective: None,
                },
            ),
            upgrade(5, 27),
            rec(6, 28, EventKind::Extended { expected_end: t(120) }),
            rec(
                7,
                30,
                EventKind::Below {
                    since: t(30),
                    proposal: None,
                    rank: 0,
                },
            ),
            rec(8, 66, EventKind::Lifted),
        ];
        let m = derive(&log);
        let r = |s: &[&str]| s.iter().map(|x| x.to_string()).collect::<Vec<_>>();
        assert_eq!(
            summary(&m),
            [
                (format!("{W}-2"), "Alert", r(&[])),
                (format!("{W}-5"), "Update", r(&[&format!("{W}-2")])),
                (format!("{W}-6"), "Update", r(&[&format!("{W}-2"), &format!("{W}-5")])),
                (
                    format!("{W}-8"),
                    "Cancel",
                    r(&[&format!("{W}-2"), &format!("{W}-5"), &format!("{W}-6")])
                ),
            ]
        );
        let changes: Vec<Change> = m.messages.iter().map(|m| m.change).collect();
        assert_eq!(changes, [Change::Issue, Change::Upgrade, Change::Extend, Change::Lift]);
        assert_eq!(m.messages[1].previous_level.as_deref(), Some("yellow"));
        assert_eq!(
            m.messages[1].warning.level, "orange",
            "each message carries the warning as it stood then"
        );
        assert_eq!(m.messages[0].warning.level, "yellow");
        assert!(m.current().is_none(), "lifted");
    }

    #[test]
    fn a_proposal_that_is_never_signed_publishes_nothing() {
        let m = derive(&[proposed(1, 0, W, false), rec(2, 3, EventKind::Withdrawn)]);
        assert!(m.messages.is_empty());
        let m = derive(&[proposed(1, 0, W, false)]);
        assert!(m.current().is_none(), "a pending proposal is not public");
    }

    #[test]
    fn a_warning_cancelled_before_its_start_ends_with_a_cancel() {
        let m = derive(&[proposed(1, 0, W, false), issued(2, 1, W, false), rec(3, 5, EventKind::Cancelled)]);
        let changes: Vec<(MsgType, Change)> = m.messages.iter().map(|m| (m.msg_type, m.change)).collect();
        assert_eq!(changes, [(MsgType::Alert, Change::Issue), (MsgType::Cancel, Change::Cancel)]);
    }

    #[test]
    fn a_warning_reopened_after_its_lift_starts_again_with_an_alert() {
        let log = [
            issued(1, 0, W, false),
            rec(2, 30, EventKind::Started),
            rec(3, 40, EventKind::Lifted),
            proposed(4, 50, W, true),
            issued(5, 51, W, true),
            upgrade(6, 60),
        ];
        let m = derive(&log);
        let r = |s: &[&str]| s.iter().map(|x| x.to_string()).collect::<Vec<_>>();
        assert_eq!(
            summary(&m),
            [
                (format!("{W}-1"), "Alert", r(&[])),
                (format!("{W}-3"), "Cancel", r(&[&format!("{W}-1")])),
                (format!("{W}-5"), "Alert", r(&[])),
                (format!("{W}-6"), "Update", r(&[&format!("{W}-5")])),
            ]
        );
        assert_eq!(m.current().map(|w| w.level.as_str()), Some("orange"));
    }

    #[test]
    fn a_lift_filed_under_the_next_warning_still_ends_the_warning_it_belongs_to() {
        // One step that lifts the old warning and proposes a new one files both under the new id;
        // the fold still attributes the lift to the old warning.
        let next = "140100-20261210-2";
        let mut lift = rec(3, 40, EventKind::Lifted);
        if let RecordBody::Warning { warning_id, .. } = &mut lift.body {
            *warning_id = next.into();
        }
        let m = derive(&[
            issued(1, 0, W, false),
            rec(2, 30, EventKind::Started),
            lift,
            proposed(4, 40, next, false),
        ]);
        let ids: Vec<(&str, MsgType)> = m.messages.iter().map(|m| (m.id.as_str(), m.msg_type)).collect();
        assert_eq!(ids, [(&*format!("{W}-1"), MsgType::Alert), (&*format!("{W}-3"), MsgType::Cancel)]);
    }
}
