//! Assignments (一厂一策 in force): when a warning is issued, changed or lifted, every enterprise on the
//! list in its region, and every department with duties at that level, gets an assignment — written in
//! the same transaction as the warning event, so a crash can never show one without the other.
//!
//! In: lifecycle events (through [`Stage`]), the stored list ([`crate::engine::list`]), the measure defaults
//! (acknowledgement deadline and department duties per level). Out: assignment *rounds*.
//!
//! # Rounds
//!
//! The assignments made in one transaction for one warning (its issue, or a level change) form a
//! [`Round`]: one small header document (warning, level, period, deadline) and a numbered run of
//! [`Entry`]s, one per party, sorted by party key, stored under sequential keys `(round seq, index)`.
//! A province-wide red warning over 300,000 enterprises is thus one header and 300,000 small
//! sequential inserts, instead of several documents per enterprise. Acknowledgements are written
//! into the party's entry.
//!
//! What is not stored is derived when read ([`Resolver`]):
//! - the *status* of an assignment: ended when its warning is lifted or cancelled; superseded when a
//!   later round of the same warning (and track) names the party, or when a more specific warning
//!   (the party's county or city) that is live made a later round naming it — an enterprise follows
//!   the most specific region with a live warning, and returns to the wider one when that ends;
//! - the acknowledgement *token*: `(round seq, index)` and an HMAC of the assignment key, so the link
//!   finds its entry directly and nothing secret is stored (see [`TokenKey`]);
//! - the measures: they follow from the enterprise's record and the defaults
//!   ([`crate::registry::Defaults::measures_for`]) when shown or mailed.
//!
//! Keys stay readable: an assignment is `{warning id}/{party key}/{round seq:012}`; the party key is
//! `e:{uscc}`, `d:{region}:{department}`, or `n:{uscc}` for a negotiated reduction (its own track, see
//! [`crate::engine::negotiate`]).

use std::collections::HashMap;
use std::sync::Arc;

use base64::Engine as _;
use chrono::{DateTime, Duration, Utc};
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;

use crate::domain::ack_step::AckStep;
use crate::domain::level::LevelId;
use crate::domain::playbook::Playbook;
use crate::domain::region::{RegionCode, Regions};
use crate::domain::warning::{Event, EventKind, RegionState, Status, Warning};
use crate::engine::Stage;
use crate::engine::link_keys::KeyRing;
use crate::engine::list::{BY_USCC, MEMBERS, region_prefix};
use crate::registry::Defaults;
use crate::store::{Collection, seq_key};
use crate::store::{RecordBody, StoreError, Tx, View, events};

/// Round headers, key `{warning id}/{seq:012}` → [`Round`].
pub const ROUNDS: Collection = Collection::AssignmentRounds;
/// Round headers by sequence number, key `{seq:012}` → [`Round`] (a token names only the seq).
pub const ROUND_SEQ: Collection = Collection::AssignmentRoundSeq;
/// The counter bumped by everything that can change a derived status (a new round, a warning's end):
/// a status resolved on a snapshot still holds in a write that finds the same epoch.
pub const EPOCH: &str = "assignment_epoch";

/// Who is assigned; defined with the records that carry it (`acknowledged`).
pub use crate::store::events::Party;

impl Party {
    /// The key part naming the party: `e:{uscc}` or `d:{region}:{id}`.
    pub fn key(&self) -> String {
        match self {
            Party::Enterprise { uscc, .. } => format!("e:{uscc}"),
            Party::Department { id, region, .. } => format!("d:{region}:{id}"),
        }
    }
}

/// Where an assignment is in its life.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum AssignmentStatus {
    /// In force.
    Active,
    /// Replaced by a newer assignment (the level changed).
    Superseded { by: String, at: DateTime<Utc> },
    /// The warning ended: lifted (解除), or cancelled before its start (取消).
    Ended {
        at: DateTime<Utc>,
        /// The warning was cancelled (取消), not lifted.
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        cancelled: bool,
    },
}

/// One acknowledgement step.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ack {
    /// 收到 or 措施已落实.
    pub step: AckStep,
    /// When.
    pub at: DateTime<Utc>,
    /// Name given.
    pub name: String,
    /// Phone given.
    pub phone: String,
    /// The lines confirmed with 措施已落实, in their words (every measure line, the commitment or the
    /// duty; earlier versions kept the production line ids ticked).
    #[serde(default)]
    pub lines: Vec<String>,
    /// Note.
    #[serde(default)]
    pub note: String,
    /// Client address and user agent.
    pub ip: String,
    /// User agent.
    pub user_agent: String,
}

/// An assignment: a party's duty under one level of one warning (a round's entry with its derived
/// status).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Assignment {
    /// Its key, `{warning id}/{party key}/{round seq:012}`.
    pub key: String,
    /// The warning.
    pub warning_id: String,
    /// The warning's region.
    pub warning_region: RegionCode,
    /// Who.
    pub party: Party,
    /// The level.
    pub level: LevelId,
    /// From when the measures apply (the warning start).
    pub applies_from: DateTime<Utc>,
    /// Acknowledge by.
    pub ack_deadline: DateTime<Utc>,
    /// 措施已落实 by (from the measure defaults when the round was made; `None` in rounds of earlier
    /// versions: see [`in_place_by`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub in_place_deadline: Option<DateTime<Utc>>,
    /// When it was made.
    pub created_at: DateTime<Utc>,
    /// Status.
    pub status: AssignmentStatus,
    /// Acknowledgements, in order.
    #[serde(default)]
    pub acks: Vec<Ack>,
    /// Department duty text (departments only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duty: Option<String>,
    /// A negotiated reduction (协商减排) instead of the list's measures (see [`crate::engine::negotiate`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub negotiated: Option<crate::engine::negotiate::Commitment>,
    /// The round (its sequence number in the event log).
    pub round: u64,
    /// The entry's place in its round.
    pub index: u32,
    /// Of a drill (演练): its notices, reminders and ack page say so.
    #[serde(default, skip_serializing_if = "crate::domain::warning::is_false")]
    pub exercise: bool,
}

/// When 措施已落实 is due: the measures' start plus the level's `in_place_after_start_hours`, never
/// before the receipt deadline (a change that takes effect at once still leaves the time to
/// acknowledge it).
pub fn in_place_deadline(applies_from: DateTime<Utc>, ack_deadline: DateTime<Utc>, after_start: Duration) -> DateTime<Utc> {
    (applies_from + after_start).max(ack_deadline)
}

/// The 措施已落实 deadline recorded on a round or assignment; rounds of earlier versions recorded none
/// and had it at the measures' start (never before the receipt deadline).
pub fn in_place_by(recorded: Option<DateTime<Utc>>, applies_from: DateTime<Utc>, ack_deadline: DateTime<Utc>) -> DateTime<Utc> {
    recorded.unwrap_or_else(|| in_place_deadline(applies_from, ack_deadline, Duration::zero()))
}

impl Assignment {
    /// When 措施已落实 is due.
    pub fn in_place_by(&self) -> DateTime<Utc> {
        in_place_by(self.in_place_deadline, self.applies_from, self.ack_deadline)
    }

    /// Whether the step was acknowledged.
    pub fn has(&self, step: AckStep) -> bool {
        self.acks.iter().any(|a| a.step == step)
    }
}

/// The assignments made in one transaction for one warning.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Round {
    /// Sequence number of its `assignments_made` record: unique, and the key of its entries.
    pub seq: u64,
    /// The warning.
    pub warning_id: String,
    /// The warning's region.
    pub warning_region: RegionCode,
    /// The level.
    pub level: LevelId,
    /// From when the measures apply.
    pub applies_from: DateTime<Utc>,
    /// Acknowledge by.
    pub ack_deadline: DateTime<Utc>,
    /// 措施已落实 by (`None` in rounds of earlier versions: see [`in_place_by`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub in_place_deadline: Option<DateTime<Utc>>,
    /// When it was made.
    pub created_at: DateTime<Utc>,
    /// Number of entries.
    pub count: u32,
    /// Empty for the list's measures; `n:{uscc}` for a negotiated reduction (which supersedes only the
    /// enterprise's earlier negotiated reductions of the warning).
    #[serde(default)]
    pub track: String,
    /// The negotiated commitment (negotiated rounds).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub negotiated: Option<crate::engine::negotiate::Commitment>,
    /// A drill's round (演练).
    #[serde(default, skip_serializing_if = "crate::domain::warning::is_false")]
    pub exercise: bool,
}

impl Round {
    /// When 措施已落实 is due.
    pub fn in_place_by(&self) -> DateTime<Utc> {
        in_place_by(self.in_place_deadline, self.applies_from, self.ack_deadline)
    }

    /// The party key an entry has in this round.
    pub fn party_key(&self, party: &Party) -> String {
        if self.track.is_empty() { party.key() } else { self.track.clone() }
    }

    /// The assignment key of a party in this round.
    pub fn assignment_key(&self, party: &Party) -> String {
        format!("{}/{}/{}", self.warning_id, self.party_key(party), seq_key(self.seq))
    }

    fn doc_key(&self) -> String {
        format!("{}/{}", self.warning_id, seq_key(self.seq))
    }

    /// An entry of this round as an assignment with the given status.
    pub fn assignment(&self, index: u32, entry: Entry, status: AssignmentStatus) -> Assignment {
        Assignment {
            key: self.assignment_key(&entry.party),
            warning_id: self.warning_id.clone(),
            warning_region: self.warning_region,
            party: entry.party,
            level: self.level.clone(),
            applies_from: self.applies_from,
            ack_deadline: self.ack_deadline,
            in_place_deadline: self.in_place_deadline,
            created_at: self.created_at,
            status,
            acks: entry.acks,
            duty: entry.duty,
            negotiated: self.negotiated.clone(),
            round: self.seq,
            index,
            exercise: self.exercise,
        }
    }
}

/// One party of a round, as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    /// Who.
    pub party: Party,
    /// Department duty text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duty: Option<String>,
    /// Acknowledgements, in order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub acks: Vec<Ack>,
}

/// Makes and checks acknowledgement tokens. A token is the signing key's id and a dot (`k2.`), then
/// 38 URL-safe characters: the round's sequence number and the entry's index (so the link finds its
/// entry without an index table), then the first 128 bits of HMAC-SHA256 of the assignment key under
/// that key. Nothing secret is stored: the database alone cannot produce a working link, and a guessed
/// link fails the MAC. A token without a key id was made before key ids and is checked with the
/// legacy key ([`crate::engine::link_keys`]). Clones share the keys, which a reload replaces.
#[derive(Clone)]
pub struct TokenKey(Arc<std::sync::RwLock<Arc<KeyRing>>>);

const TOKEN_BYTES: usize = 8 + 4 + 16;

impl TokenKey {
    /// One key, `k1`, from secret bytes.
    pub fn new(secret: [u8; 32]) -> TokenKey {
        TokenKey::from_ring(KeyRing::new(std::collections::BTreeMap::from([(1, secret)]), None).unwrap_or_else(|_| unreachable!("one key")))
    }

    /// These keys.
    pub fn from_ring(ring: KeyRing) -> TokenKey {
        TokenKey(Arc::new(std::sync::RwLock::new(Arc::new(ring))))
    }

    /// The keys in service.
    pub fn ring(&self) -> Arc<KeyRing> {
        self.0.read().unwrap_or_else(std::sync::PoisonError::into_inner).clone()
    }

    /// Puts other keys in service (a reload); whether they differ from the old ones.
    pub fn replace(&self, ring: KeyRing) -> bool {
        let mut live = self.0.write().unwrap_or_else(std::sync::PoisonError::into_inner);
        let changed = **live != ring;
        *live = Arc::new(ring);
        changed
    }

    fn mac(secret: &[u8; 32], key: &str) -> Hmac<Sha256> {
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(secret).unwrap_or_else(|_| unreachable_hmac());
        mac.update(key.as_bytes());
        mac
    }

    /// The token of an assignment.
    pub fn token(&self, a: &Assignment) -> String {
        self.token_at(a.round, a.index, &a.key)
    }

    /// The token of the entry `index` of round `seq` whose assignment key is `key`, signed by the
    /// newest key.
    pub fn token_at(&self, seq: u64, index: u32, key: &str) -> String {
        let ring = self.ring();
        let (id, secret) = ring.signing();
        let mut bytes = Vec::with_capacity(TOKEN_BYTES);
        bytes.extend_from_slice(&seq.to_be_bytes());
        bytes.extend_from_slice(&index.to_be_bytes());
        bytes.extend_from_slice(&Self::mac(secret, key).finalize().into_bytes()[..16]);
        format!(
            "{}.{}",
            crate::engine::link_keys::id_name(id),
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
        )
    }

    /// The entry a well-formed token names, `(round seq, index)`, read from the token alone (nothing
    /// verified: [`Resolver::by_token`] checks its MAC against the entry).
    pub fn item_of(token: &str) -> Option<(u64, u32)> {
        Self::parse(token).map(|(_, seq, index, _)| (seq, index))
    }

    /// Where a well-formed token points: `(key id, round seq, index, mac)`; no key id: the legacy key.
    fn parse(token: &str) -> Option<(Option<u32>, u64, u32, [u8; 16])> {
        let (id, rest) = match token.split_once('.') {
            Some((id, rest)) => (Some(crate::engine::link_keys::parse_id(id)?), rest),
            None => (None, token),
        };
        let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(rest).ok()?;
        if bytes.len() != TOKEN_BYTES {
            return None;
        }
        let seq = u64::from_be_bytes(bytes[..8].try_into().ok()?);
        let index = u32::from_be_bytes(bytes[8..12].try_into().ok()?);
        Some((id, seq, index, bytes[12..].try_into().ok()?))
    }

    /// Whether `mac` is the MAC of `key` under the key `id` (constant time); a key no longer in
    /// service verifies nothing.
    fn verify(&self, id: Option<u32>, key: &str, mac: &[u8; 16]) -> bool {
        let ring = self.ring();
        ring.get(id)
            .is_some_and(|secret| Self::mac(secret, key).verify_truncated_left(mac).is_ok())
    }
}

fn unreachable_hmac() -> Hmac<Sha256> {
    // HMAC accepts keys of any length; this is never called.
    <Hmac<Sha256> as Mac>::new_from_slice(b"k").expect("HMAC takes any key length")
}

/// The link keys ([`crate::engine::link_keys`]: the data folder, or the shared store), making the
/// first on a first start.
pub fn load_token_key(home: &crate::engine::link_keys::KeyHome) -> anyhow::Result<TokenKey> {
    home.load_or_create().map(TokenKey::from_ring)
}

/// Called for every round made, in the same transaction (escalation timers and the notices hook here).
pub type OnRound = dyn Fn(&mut Tx<'_>, &Round) -> Result<(), StoreError> + Send + Sync;

/// The stage that makes assignments from lifecycle events.
pub struct AssignStage {
    /// Measure defaults: deadlines and department duties per level.
    pub defaults: Arc<Defaults>,
    /// The region table.
    pub regions: &'static Regions,
    /// Hooks run for each new round (timers, notices).
    pub on_round: Vec<Arc<OnRound>>,
}

impl Stage for AssignStage {
    fn on_warning_events(
        &self,
        tx: &mut Tx<'_>,
        now: DateTime<Utc>,
        events: &[Event],
        state: &RegionState,
        pb: &Playbook,
    ) -> Result<(), StoreError> {
        let Some(w) = &state.warning else { return Ok(()) };
        for e in events {
            match &e.kind {
                EventKind::Issued { level, start, .. } => self.assign_all(tx, now, w, level, *start)?,
                // A decided level change re-assigns when it is decided (announced ahead), in force from its time.
                EventKind::Scheduled {
                    to: Some(to), effective, ..
                } if matches!(w.status, Status::Issued | Status::Active) => self.assign_all(tx, now, w, to, (*effective).max(w.start))?,
                // The end decided: every enterprise told before hears of it now, with its time.
                EventKind::Scheduled { to: None, effective, .. } => {
                    let before_start = w.status == Status::Cancelled || (w.status == Status::Issued && *effective <= w.start);
                    let kind = if before_start { "cancelled" } else { "lifted" };
                    crate::engine::notice::queue_end(tx, &w.id, kind, *effective, now, *effective - pb.lead_time)?;
                }
                // A decided end withdrawn by a later forecast: those told of it hear that the measures go on.
                EventKind::Unscheduled => {
                    let history = tx.warning_history(&w.id)?;
                    let this = history
                        .iter()
                        .rposition(|r| matches!(&r.body, RecordBody::Warning { event, .. } if event == e))
                        .unwrap_or(history.len());
                    let withdrawn = history[..this].iter().rev().find_map(|r| match &r.body {
                        RecordBody::Warning { event, .. } => match &event.kind {
                            EventKind::Scheduled { to, effective, .. } => Some((to.is_none(), *effective)),
                            _ => None,
                        },
                        _ => None,
                    });
                    if let Some((true, at)) = withdrawn
                        && !crate::engine::notice::drop_end(tx, &w.id, at)?
                    {
                        crate::engine::notice::queue_end(tx, &w.id, "withdrawn", at, now, now)?;
                    }
                }
                EventKind::Lifted | EventKind::Cancelled => {
                    tx.bump(EPOCH, 1)?;
                    let rounds = rounds_of(tx, &w.id)?;
                    tx.append(
                        now,
                        "assign",
                        None,
                        RecordBody::Other(events::Event::AssignmentsEnded(events::AssignmentsEnded {
                            rounds: rounds.len() as u64,
                            warning_id: w.id.clone(),
                        })),
                    )?;
                }
                _ => {}
            }
        }
        Ok(())
    }
}

impl AssignStage {
    /// The entries of a warning region, sorted by party key: enterprises under it (minus counties
    /// with their own live warning) and the departments with duties at `level`.
    /// A drill's round (`exercise`) leaves out the counties with their own live drill.
    fn parties(&self, tx: &Tx<'_>, region: RegionCode, level: &str, exercise: bool) -> Result<Vec<(String, Entry)>, StoreError> {
        let mut out = Vec::new();
        let mut own_warning: HashMap<RegionCode, bool> = HashMap::new();
        let prefix = region_prefix(region);
        let mut after = String::new();
        loop {
            let keys = tx.doc_keys(MEMBERS, &prefix, &after, 50_000)?;
            let Some(last) = keys.last() else { break };
            after = last.clone();
            for k in keys {
                let Some((county, uscc)) = k.split_once('/') else { continue };
                let Ok(county) = RegionCode::parse(county) else { continue };
                if county != region {
                    let has_own = match own_warning.get(&county) {
                        Some(v) => *v,
                        None => {
                            let v = tx
                                .lane_state(county, exercise)?
                                .live()
                                .is_some_and(|w| matches!(w.status, Status::Issued | Status::Active));
                            own_warning.insert(county, v);
                            v
                        }
                    };
                    if has_own {
                        continue;
                    }
                }
                let party = Party::Enterprise {
                    uscc: uscc.to_string(),
                    county,
                };
                out.push((
                    party.key(),
                    Entry {
                        party,
                        duty: None,
                        acks: Vec::new(),
                    },
                ));
            }
        }
        for (d, duty) in self.defaults.duties(level) {
            let party = Party::Department {
                id: d.id.clone(),
                name: d.name.clone(),
                region,
            };
            out.push((
                party.key(),
                Entry {
                    party,
                    duty: Some(duty.to_string()),
                    acks: Vec::new(),
                },
            ));
        }
        out.sort_unstable_by(|a, b| a.0.cmp(&b.0));
        Ok(out)
    }

    fn assign_all(&self, tx: &mut Tx<'_>, now: DateTime<Utc>, w: &Warning, level: &str, start: DateTime<Utc>) -> Result<(), StoreError> {
        let deadline = now + self.defaults.ack_deadline(level).unwrap_or_else(|| Duration::hours(6));
        let parties = self.parties(tx, w.region, level, w.exercise)?;
        let entries: Vec<Entry> = parties.into_iter().map(|(_, e)| e).collect();
        let round = Round {
            seq: 0,
            warning_id: w.id.clone(),
            warning_region: w.region,
            level: level.into(),
            applies_from: start,
            ack_deadline: deadline,
            in_place_deadline: Some(in_place_deadline(
                start,
                deadline,
                self.defaults.in_place_after(level).unwrap_or_else(Duration::zero),
            )),
            created_at: now,
            count: u32::try_from(entries.len()).map_err(|_| StoreError::Refused("more than 4 billion parties".into()))?,
            track: String::new(),
            negotiated: None,
            exercise: w.exercise,
        };
        write_round(tx, round, &entries, &self.on_round)?;
        Ok(())
    }
}

/// Writes a round: its `assignments_made` record (whose seq becomes the round's), its header and its
/// entries, then runs the hooks. Returns the round.
pub fn write_round(tx: &mut Tx<'_>, mut round: Round, entries: &[Entry], hooks: &[Arc<OnRound>]) -> Result<Round, StoreError> {
    let rec = tx.append(
        round.created_at,
        "assign",
        None,
        RecordBody::Other(events::Event::AssignmentsMade(events::AssignmentsMade {
            count: round.count,
            level: round.level.clone(),
            track: round.track.clone(),
            warning_id: round.warning_id.clone(),
        })),
    )?;
    round.seq = rec.seq;
    tx.bump(EPOCH, 1)?;
    tx.put_items(round.seq, entries)?;
    tx.put_doc(ROUNDS, &round.doc_key(), &round)?;
    tx.put_doc(ROUND_SEQ, &seq_key(round.seq), &round)?;
    for hook in hooks {
        hook(tx, &round)?;
    }
    Ok(round)
}

/// The current status epoch (see [`EPOCH`]).
pub fn epoch<V: View>(v: &V) -> Result<u64, StoreError> {
    v.counter(EPOCH)
}

/// A round by its sequence number.
pub fn round<V: View>(v: &V, seq: u64) -> Result<Option<Round>, StoreError> {
    v.doc(ROUND_SEQ, &format!("{seq:012}"))
}

/// The rounds of a warning, oldest first.
pub fn rounds_of<V: View>(v: &V, warning_id: &str) -> Result<Vec<Round>, StoreError> {
    Ok(v.docs::<Round>(ROUNDS, &format!("{warning_id}/"), "", usize::MAX)?
        .into_iter()
        .map(|(_, r)| r)
        .collect())
}

/// Every round, oldest first.
pub fn all_rounds<V: View>(v: &V) -> Result<Vec<Round>, StoreError> {
    Ok(v.docs::<Round>(ROUND_SEQ, "", "", usize::MAX)?
        .into_iter()
        .map(|(_, r)| r)
        .collect())
}

/// The entry of party key `pk` in a round (binary search: entries are sorted by party key).
pub fn find<V: View>(v: &V, round: &Round, pk: &str) -> Result<Option<(u32, Entry)>, StoreError> {
    let (mut lo, mut hi) = (0u32, round.count);
    while lo < hi {
        let mid = lo + (hi - lo) / 2;
        let Some(e) = v.item::<Entry>(round.seq, mid)? else {
            return Ok(None);
        };
        match round.party_key(&e.party).as_str().cmp(pk) {
            std::cmp::Ordering::Equal => return Ok(Some((mid, e))),
            std::cmp::Ordering::Less => lo = mid + 1,
            std::cmp::Ordering::Greater => hi = mid,
        }
    }
    Ok(None)
}

/// Entries `from..` of a round, at most `limit`.
pub fn entries<V: View>(v: &V, round: &Round, from: u32, limit: usize) -> Result<Vec<(u32, Entry)>, StoreError> {
    v.items(round.seq, from, limit)
}

/// Writes an assignment's acknowledgements back into its entry (the caller decided; see [`crate::engine::ack`]).
pub fn put_acks(tx: &mut Tx<'_>, a: &Assignment) -> Result<(), StoreError> {
    let entry = Entry {
        party: a.party.clone(),
        duty: a.duty.clone(),
        acks: a.acks.clone(),
    };
    tx.put_item(a.round, a.index, &entry)
}

/// What status derivation looked up: warnings, the rounds of each warning, the live warning of each
/// county and city, round headers by seq. Everything in it changes only with the [`EPOCH`] (a warning
/// going from issued to active changes nothing a status depends on), so a memo made on a snapshot of
/// one epoch serves every later snapshot of that epoch ([`memo_for`]).
#[derive(Default, Clone)]
pub struct Memo {
    warnings: HashMap<String, Option<Warning>>,
    rounds: HashMap<String, Arc<Vec<Round>>>,
    live: HashMap<(RegionCode, bool), Option<String>>,
    by_seq: HashMap<u64, Option<Arc<Round>>>,
}

/// Memos of the snapshot decisions, per open store ([`crate::store::Store::id`]): (epoch, memo).
static MEMOS: std::sync::LazyLock<std::sync::Mutex<HashMap<u64, (u64, Memo)>>> = std::sync::LazyLock::new(Default::default);

/// The memo of `epoch` for the store `store` (a copy: requests at the same time each get one; empty
/// if it is of another epoch). Only for snapshots: a write transaction may hold what is not committed.
pub fn memo_for(store: u64, epoch: u64) -> Memo {
    let memos = MEMOS.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    match memos.get(&store) {
        Some((e, memo)) if *e == epoch => memo.clone(),
        _ => Memo::default(),
    }
}

/// Gives a memo back for the next snapshot of the same epoch (it replaces the kept one when it knows
/// at least as much: it started as a copy of it, or of an older one).
pub fn memo_back(store: u64, epoch: u64, memo: Memo) {
    let mut memos = MEMOS.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    match memos.get(&store) {
        Some((e, _)) if *e > epoch => {}
        Some((e, kept)) if *e == epoch && kept.size() > memo.size() => {}
        _ => {
            memos.insert(store, (epoch, memo));
        }
    }
}

impl Memo {
    /// How many lookups it holds.
    fn size(&self) -> usize {
        self.warnings.len() + self.rounds.len() + self.live.len() + self.by_seq.len()
    }
}

/// Derives assignment status, remembering what it looked up (warnings, rounds, live warnings of
/// counties and cities), so that listing a whole round costs a few reads more than its entries.
pub struct Resolver<'v, V: View> {
    v: &'v V,
    memo: Memo,
}

impl<'v, V: View> Resolver<'v, V> {
    /// Over a snapshot or transaction.
    pub fn new(v: &'v V) -> Self {
        Resolver { v, memo: Memo::default() }
    }

    /// Over a snapshot, with what an earlier snapshot of the same epoch looked up.
    pub fn with_memo(v: &'v V, memo: Memo) -> Self {
        Resolver { v, memo }
    }

    /// What it looked up.
    pub fn into_memo(self) -> Memo {
        self.memo
    }

    fn warning(&mut self, id: &str) -> Result<Option<Warning>, StoreError> {
        if let Some(w) = self.memo.warnings.get(id) {
            return Ok(w.clone());
        }
        let w = self.v.warning(id)?;
        self.memo.warnings.insert(id.to_string(), w.clone());
        Ok(w)
    }

    fn rounds(&mut self, warning_id: &str) -> Result<Arc<Vec<Round>>, StoreError> {
        if let Some(r) = self.memo.rounds.get(warning_id) {
            return Ok(r.clone());
        }
        let r = Arc::new(rounds_of(self.v, warning_id)?);
        self.memo.rounds.insert(warning_id.to_string(), r.clone());
        Ok(r)
    }

    fn round(&mut self, seq: u64) -> Result<Option<Arc<Round>>, StoreError> {
        if let Some(r) = self.memo.by_seq.get(&seq) {
            return Ok(r.clone());
        }
        let r = round(self.v, seq)?.map(Arc::new);
        self.memo.by_seq.insert(seq, r.clone());
        Ok(r)
    }

    /// The id of the issued or active warning of exactly `region`, if any, among real warnings or
    /// drills (`exercise`): a drill never supersedes a real assignment, nor the reverse.
    fn live_of(&mut self, region: RegionCode, exercise: bool) -> Result<Option<String>, StoreError> {
        if let Some(l) = self.memo.live.get(&(region, exercise)) {
            return Ok(l.clone());
        }
        let l = self
            .v
            .lane_state(region, exercise)?
            .warning
            .filter(|w| matches!(w.status, Status::Issued | Status::Active))
            .map(|w| w.id);
        self.memo.live.insert((region, exercise), l.clone());
        Ok(l)
    }

    /// The status of the entry of `party` in `round`.
    pub fn status(&mut self, round: &Round, party: &Party) -> Result<AssignmentStatus, StoreError> {
        let pk = round.party_key(party);
        let rounds = self.rounds(&round.warning_id)?;
        let later: Vec<&Round> = rounds.iter().filter(|r| r.seq > round.seq && r.track == round.track).collect();
        for r in later.iter().rev() {
            if let Some((_, e)) = find(self.v, r, &pk)? {
                return Ok(AssignmentStatus::Superseded {
                    by: r.assignment_key(&e.party),
                    at: r.created_at,
                });
            }
        }
        let w = self.warning(&round.warning_id)?;
        let exercise = w.as_ref().is_some_and(|w| w.exercise);
        if !w.as_ref().is_some_and(|w| matches!(w.status, Status::Issued | Status::Active)) {
            let cancelled = w.as_ref().is_some_and(|w| w.status == Status::Cancelled);
            let at = w.and_then(|w| w.ended_at).unwrap_or(round.created_at);
            return Ok(AssignmentStatus::Ended { at, cancelled });
        }
        // A live warning of the party's own county or city, more specific than this one.
        if let (Party::Enterprise { county, .. }, true) = (party, round.track.is_empty()) {
            let mut nearer = vec![*county];
            nearer.extend(county.city());
            for r in nearer {
                if r.tier() <= round.warning_region.tier() {
                    continue;
                }
                let Some(id) = self.live_of(r, exercise)? else { continue };
                let theirs = self.rounds(&id)?;
                for t in theirs.iter().rev().filter(|t| t.seq > round.seq && t.track.is_empty()) {
                    if let Some((_, e)) = find(self.v, t, &pk)? {
                        return Ok(AssignmentStatus::Superseded {
                            by: t.assignment_key(&e.party),
                            at: t.created_at,
                        });
                    }
                }
            }
        }
        if let Some(r) = later.last() {
            // A later round of this warning left the party out (it left the list).
            return Ok(AssignmentStatus::Ended {
                at: r.created_at,
                cancelled: false,
            });
        }
        Ok(AssignmentStatus::Active)
    }

    /// The entry `index` of `round` as an assignment.
    pub fn assignment(&mut self, round: &Round, index: u32, entry: Entry) -> Result<Assignment, StoreError> {
        let status = self.status(round, &entry.party)?;
        Ok(round.assignment(index, entry, status))
    }

    /// An assignment by key.
    pub fn get(&mut self, key: &str) -> Result<Option<Assignment>, StoreError> {
        let mut parts = key.splitn(3, '/');
        let (Some(warning_id), Some(pk), Some(seq)) = (parts.next(), parts.next(), parts.next()) else {
            return Ok(None);
        };
        let Ok(seq) = seq.parse::<u64>() else { return Ok(None) };
        let Some(r) = round(self.v, seq)?.filter(|r| r.warning_id == warning_id) else {
            return Ok(None);
        };
        match find(self.v, &r, pk)? {
            Some((i, e)) => Ok(Some(self.assignment(&r, i, e)?)),
            None => Ok(None),
        }
    }
}

/// An assignment by key.
pub fn get<V: View>(v: &V, key: &str) -> Result<Option<Assignment>, StoreError> {
    Resolver::new(v).get(key)
}

/// [`by_token`] inside a write job, with what the earlier jobs of the same batch looked up at the
/// same epoch (on PostgreSQL each lookup the memo saves, such as a warning's rounds, is a round trip;
/// a batch of acknowledgements mostly asks about the same few warnings). The memo lives in the batch's
/// transaction ([`Tx::keep_memo`]): it is dropped when a job fails and with the batch, and it is used
/// only while the epoch is the one it was made at, as a snapshot's memo is ([`Memo`]).
pub fn by_token_in_batch(tx: &mut Tx<'_>, tokens: &TokenKey, token: &str) -> Result<Option<Assignment>, StoreError> {
    let epoch = epoch(tx)?;
    let memo = match tx.take_memo::<(u64, Memo)>() {
        Some((at, memo)) if at == epoch => memo,
        _ => Memo::default(),
    };
    let mut res = Resolver::with_memo(&*tx, memo);
    let found = res.by_token(tokens, token);
    let memo = res.into_memo();
    tx.keep_memo((epoch, memo));
    found
}

/// The assignment a token belongs to (none for a malformed, unknown or forged token).
pub fn by_token<V: View>(v: &V, tokens: &TokenKey, token: &str) -> Result<Option<Assignment>, StoreError> {
    Resolver::new(v).by_token(tokens, token)
}

impl<V: View> Resolver<'_, V> {
    /// The assignment a token belongs to (none for a malformed, unknown or forged token).
    pub fn by_token(&mut self, tokens: &TokenKey, token: &str) -> Result<Option<Assignment>, StoreError> {
        let Some((id, seq, index, mac)) = TokenKey::parse(token) else {
            return Ok(None);
        };
        let Some(r) = self.round(seq)? else { return Ok(None) };
        let Some(entry) = self.v.item::<Entry>(seq, index)? else {
            return Ok(None);
        };
        if !tokens.verify(id, &r.assignment_key(&entry.party), &mac) {
            return Ok(None);
        }
        Ok(Some(self.assignment(&r, index, entry)?))
    }
}

/// The token of the assignment with this key (links to the current assignment of a superseded one).
pub fn token_of_key<V: View>(v: &V, tokens: &TokenKey, key: &str) -> Result<Option<String>, StoreError> {
    Ok(get(v, key)?.map(|a| tokens.token(&a)))
}

/// Assignments of a warning, every round in order, each round in party-key order; paged by the key
/// of the last one seen (`after`, empty for the start).
pub fn of_warning<V: View>(v: &V, warning_id: &str, after: &str, limit: usize) -> Result<Vec<Assignment>, StoreError> {
    let mut res = Resolver::new(v);
    let rounds = res.rounds(warning_id)?;
    let (mut from_seq, mut from_index) = (0u64, 0u32);
    if !after.is_empty() {
        let mut parts = after.splitn(3, '/');
        let (_, pk, seq) = (parts.next(), parts.next().unwrap_or(""), parts.next().unwrap_or(""));
        from_seq = seq.parse().unwrap_or(u64::MAX);
        from_index = match rounds.iter().find(|r| r.seq == from_seq) {
            Some(r) => find(v, r, pk)?.map_or(r.count, |(i, _)| i + 1),
            None => u32::MAX,
        };
    }
    let mut out = Vec::new();
    for r in rounds.iter().filter(|r| r.seq >= from_seq) {
        let mut from = if r.seq == from_seq { from_index } else { 0 };
        while out.len() < limit && from < r.count {
            let page = entries(v, r, from, (limit - out.len()).min(10_000))?;
            let Some((last, _)) = page.last() else { break };
            from = last + 1;
            for (i, e) in page {
                out.push(res.assignment(r, i, e)?);
            }
        }
        if out.len() >= limit {
            break;
        }
    }
    Ok(out)
}

/// Whether `region` is `county` or one of its ancestors, by code.
fn covers(region: RegionCode, county: RegionCode) -> bool {
    region == county || county.city() == Some(region) || county.province() == region
}

/// A party's assignments (`e:{uscc}` — with its negotiated reductions — or `d:{region}:{id}`),
/// oldest first.
pub fn of_party<V: View>(v: &V, party_key: &str) -> Result<Vec<Assignment>, StoreError> {
    let (region, negotiated) = if let Some(uscc) = party_key.strip_prefix("e:") {
        let county = v.doc::<String>(BY_USCC, uscc)?.and_then(|c| RegionCode::parse(&c).ok());
        (county, Some(format!("n:{uscc}")))
    } else {
        let region = party_key
            .strip_prefix("d:")
            .and_then(|r| r.split(':').next())
            .and_then(|r| RegionCode::parse(r).ok());
        (region, None)
    };
    let mut res = Resolver::new(v);
    let mut out = Vec::new();
    for r in all_rounds(v)? {
        if region.is_some_and(|c| !covers(r.warning_region, c)) {
            continue;
        }
        let pk = if r.track.is_empty() {
            party_key.to_string()
        } else if negotiated.as_deref() == Some(r.track.as_str()) {
            r.track.clone()
        } else {
            continue;
        };
        if let Some((i, e)) = find(v, &r, &pk)? {
            out.push(res.assignment(&r, i, e)?);
        }
    }
    out.sort_by_key(|a| a.created_at);
    Ok(out)
}

/// The assignment in force of a party key (`e:…`, `n:…`, `d:…`) in a warning: the latest round of its
/// track naming it, if that one is active.
pub fn current<V: View>(v: &V, warning_id: &str, party_key: &str) -> Result<Option<Assignment>, StoreError> {
    let mut res = Resolver::new(v);
    let rounds = res.rounds(warning_id)?;
    let negotiated = party_key.starts_with("n:");
    for r in rounds
        .iter()
        .rev()
        .filter(|r| if negotiated { r.track == party_key } else { r.track.is_empty() })
    {
        if let Some((i, e)) = find(v, r, party_key)? {
            let a = res.assignment(r, i, e)?;
            return Ok((a.status == AssignmentStatus::Active).then_some(a));
        }
    }
    Ok(None)
}

/// The region an assignment's party belongs to.
pub fn party_region(a: &Assignment) -> RegionCode {
    match &a.party {
        Party::Enterprise { county, .. } => *county,
        Party::Department { region, .. } => *region,
    }
}

/// For `hazeflow verify`: the rounds rebuilt from the log's `assignments_made` records and compared
/// with the stored ones (both headers, the warning, the count, every entry present and decoding).
/// Returns the differences and the rounds found (seq → warning id), for the timers' check.
pub fn check(r: &crate::store::ReadTx) -> Result<(Vec<String>, std::collections::BTreeMap<u64, String>), StoreError> {
    use std::collections::BTreeMap;
    let mut from_log: BTreeMap<u64, (String, u64)> = BTreeMap::new();
    let mut diffs = Vec::new();
    let mut after = 0;
    loop {
        let batch = r.events_after(after, 10_000)?;
        let Some(last) = batch.last() else { break };
        after = last.seq;
        for rec in batch {
            match &rec.body {
                RecordBody::Other(events::Event::AssignmentsMade(m)) => {
                    from_log.insert(rec.seq, (m.warning_id.clone(), u64::from(m.count)));
                }
                RecordBody::Other(events::Event::Unknown { kind, data }) if kind == "assignments_made" => {
                    diffs.push(format!("record {}: assignments_made whose data does not decode: {data}", rec.seq));
                }
                _ => {}
            }
        }
    }
    let mut stored: BTreeMap<u64, String> = BTreeMap::new();
    for (key, v) in r.docs::<serde_json::Value>(ROUND_SEQ, "", "", usize::MAX)? {
        let round = match serde_json::from_value::<Round>(v) {
            Ok(x) => x,
            Err(e) => {
                diffs.push(format!("assignment round {key}: does not decode: {e}"));
                continue;
            }
        };
        if key != seq_key(round.seq) {
            diffs.push(format!("assignment round {key}: holds round {}", round.seq));
        }
        match from_log.get(&round.seq) {
            None => diffs.push(format!("assignment round {}: no assignments_made record in the log", round.seq)),
            Some((w, n)) => {
                if *w != round.warning_id || *n != u64::from(round.count) {
                    diffs.push(format!(
                        "assignment round {}: warning {} with {} entries, the log says {w} with {n}",
                        round.seq, round.warning_id, round.count
                    ));
                }
            }
        }
        if r.doc::<serde_json::Value>(ROUNDS, &round.doc_key())?.is_none() {
            diffs.push(format!("assignment round {}: missing from the warning's index", round.seq));
        }
        let entries = r.items::<serde_json::Value>(round.seq, 0, round.count as usize + 1)?;
        let decoded = entries
            .iter()
            .filter(|(_, e)| serde_json::from_value::<Entry>(e.clone()).is_ok())
            .count();
        let contiguous = entries.iter().enumerate().all(|(i, (k, _))| *k as usize == i);
        if entries.len() != round.count as usize || !contiguous || decoded != entries.len() {
            diffs.push(format!(
                "assignment round {}: {} entries stored ({decoded} decode), {} expected",
                round.seq,
                entries.len(),
                round.count
            ));
        }
        stored.insert(round.seq, round.warning_id);
    }
    for (seq, (w, _)) in &from_log {
        if !stored.contains_key(seq) {
            diffs.push(format!("assignment round {seq} of warning {w}: in the log but not stored"));
        }
    }
    Ok((diffs, stored))
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::domain::level::Ranked;
    use crate::registry::import::ImportOptions;
    use crate::registry::{Enterprise, ListVersion, import};
    use crate::store::Store;

    const XIAODIAN: u32 = 140105;
    const YINGZE: u32 = 140106;

    fn code(c: u32) -> RegionCode {
        RegionCode::from_u32(c).unwrap()
    }

    /// The first `n` enterprises of the Shanxi seed list (seeds/registry/), with their lines and
    /// measures.
    fn seed_enterprises(n: usize) -> Vec<Enterprise> {
        let read = |f: &str| std::fs::read_to_string(std::path::Path::new("seeds/registry").join(f)).unwrap();
        let (enterprises, measures) = (read("enterprises.csv"), read("measures.csv"));
        // The header and n rows (the seed files quote no cell), then the measures file's header
        // and the rows of those n.
        let rows: Vec<&str> = enterprises.lines().filter(|l| !l.starts_with('#')).take(n + 1).collect();
        let of = |row: &str| row.split(',').next().unwrap_or("").to_string();
        let usccs: Vec<String> = rows[1..].iter().map(|r| of(r)).collect();
        let m_rows: Vec<&str> = measures
            .lines()
            .filter(|l| !l.starts_with('#'))
            .enumerate()
            .filter(|(i, l)| *i == 0 || usccs.contains(&of(l)))
            .map(|(_, l)| l)
            .collect();
        let opts = ImportOptions {
            defaults: crate::registry::shanxi_defaults(),
            regions: Some(Regions::shanxi()),
        };
        let (e, m) = (rows.join("\n"), m_rows.join("\n"));
        let list = import::import_csv(("enterprises.csv", &e), Some(("measures.csv", &m)), &opts, &mut |_, _| {}).unwrap();
        assert_eq!(list.len(), n);
        list
    }

    /// A store with four enterprises of the seed list, moved two to Xiaodian and two to Yingze
    /// (both in Taiyuan).
    pub(crate) async fn store_with_list(dir: &std::path::Path) -> (Store, Vec<(String, RegionCode)>) {
        let store = Store::open(&dir.join("t.redb")).unwrap();
        let mut list = seed_enterprises(4);
        for (i, e) in list.iter_mut().enumerate() {
            e.county = code(if i % 2 == 0 { XIAODIAN } else { YINGZE });
        }
        let who: Vec<(String, RegionCode)> = list.iter().map(|e| (e.uscc.as_str().to_string(), e.county)).collect();
        let now = Utc::now();
        let version = ListVersion::new(list, None, now);
        let diff = import::diff_enterprises(&[], &version.enterprises);
        crate::engine::list::record(&store, version, diff, "test", now).await.unwrap();
        (store, who)
    }

    /// Appends a lifecycle event for `region` and runs the assignment stage on it, as the engine does.
    pub(crate) async fn step(store: &Store, stage: &Arc<AssignStage>, region: u32, kind: EventKind) {
        let pb = crate::domain::playbook::load_paths(&[std::path::PathBuf::from("playbooks/shanxi.yaml")], Regions::shanxi())
            .unwrap()
            .get("shanxi")
            .cloned()
            .unwrap();
        let stage = stage.clone();
        store
            .write(move |tx| {
                let now = Utc::now();
                let e = Event {
                    region: code(region),
                    at: now,
                    actor: "test".into(),
                    reason: "test".into(),
                    forecast_id: None,
                    playbook: pb.pin(),
                    kind,
                    exercise: false,
                };
                let mut state = tx.region_state(code(region))?;
                state.apply(&e);
                let id = state.warning.as_ref().map(|w| w.id.clone()).unwrap_or_default();
                tx.append(
                    now,
                    "test",
                    None,
                    RecordBody::Warning {
                        warning_id: id,
                        event: e.clone(),
                    },
                )?;
                stage.on_warning_events(tx, now, &[e], &state, &pb)
            })
            .await
            .unwrap();
    }

    pub(crate) fn issued(id: &str, level: &str) -> EventKind {
        EventKind::Issued {
            id: id.into(),
            level: Ranked::new(level, if level == "red" { 3 } else { 2 }),
            start: Utc::now(),
            expected_end: Utc::now() + Duration::days(2),
            rule: None,
            signer: None,
            reopened: false,
            plan: Vec::new(),
            lead_missed: false,
        }
    }

    fn state_of(store: &Store, uscc: &str) -> Vec<(String, String)> {
        store
            .read(|r| of_party(r, &format!("e:{uscc}")))
            .unwrap()
            .into_iter()
            .map(|a| {
                let s = match a.status {
                    AssignmentStatus::Active => "active".to_string(),
                    AssignmentStatus::Superseded { by, .. } => format!("superseded by {}", by.split('/').next().unwrap_or("")),
                    AssignmentStatus::Ended { .. } => "ended".to_string(),
                };
                (a.warning_id, s)
            })
            .collect()
    }

    #[tokio::test]
    async fn an_enterprise_follows_the_most_specific_live_warning_and_returns_to_the_wider_one_when_it_ends() {
        let dir = tempfile::tempdir().unwrap();
        let (store, who) = store_with_list(dir.path()).await;
        let defaults = Arc::new(crate::registry::shanxi_defaults().clone());
        let stage = Arc::new(AssignStage {
            defaults,
            regions: Regions::shanxi(),
            on_round: Vec::new(),
        });
        let (in_xiaodian, in_yingze) = (&who[0].0, &who[1].0);

        step(&store, &stage, 140100, issued("140100-T-1", "orange")).await;
        assert_eq!(state_of(&store, in_xiaodian), [("140100-T-1".to_string(), "active".to_string())]);

        // Xiaodian gets its own red warning: its enterprises follow it; Yingze's stay with the city.
        step(&store, &stage, XIAODIAN, issued("140105-T-1", "red")).await;
        assert_eq!(
            state_of(&store, in_xiaodian),
            [
                ("140100-T-1".to_string(), "superseded by 140105-T-1".to_string()),
                ("140105-T-1".to_string(), "active".to_string())
            ]
        );
        assert_eq!(state_of(&store, in_yingze), [("140100-T-1".to_string(), "active".to_string())]);
        let active: usize = store
            .read(|r| of_warning(r, "140100-T-1", "", usize::MAX))
            .unwrap()
            .iter()
            .filter(|a| matches!(a.party, Party::Enterprise { .. }) && a.status == AssignmentStatus::Active)
            .count();
        assert_eq!(active, 2, "the city's warning has only Yingze's two enterprises in force");

        // Xiaodian's warning ends (cancelled before its start): back to the city's measures.
        step(&store, &stage, XIAODIAN, EventKind::Cancelled).await;
        assert_eq!(
            state_of(&store, in_xiaodian),
            [
                ("140100-T-1".to_string(), "active".to_string()),
                ("140105-T-1".to_string(), "ended".to_string())
            ]
        );

        // A level change decided for the city supersedes, and the city's end ends everything.
        step(
            &store,
            &stage,
            140100,
            EventKind::Scheduled {
                to: Some("red".into()),
                rank: 3,
                effective: Utc::now(),
                signer: None,
                rule: None,
            },
        )
        .await;
        let s = state_of(&store, in_yingze);
        assert_eq!(s[0].1, "superseded by 140100-T-1");
        assert_eq!(s[1].1, "active");
        store.close();
    }

    #[tokio::test]
    async fn a_token_finds_only_its_own_assignment_and_a_changed_character_finds_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let (store, _) = store_with_list(dir.path()).await;
        let stage = Arc::new(AssignStage {
            defaults: Arc::new(crate::registry::shanxi_defaults().clone()),
            regions: Regions::shanxi(),
            on_round: Vec::new(),
        });
        step(&store, &stage, 140100, issued("140100-T-1", "orange")).await;
        let keys = TokenKey::new([9; 32]);
        let all = store.read(|r| of_warning(r, "140100-T-1", "", usize::MAX)).unwrap();
        assert!(all.len() > 4, "four enterprises and the departments");
        for a in &all {
            let token = keys.token(a);
            assert!(token.len() >= 38, "{token}");
            let found = store.read(|r| by_token(r, &keys, &token)).unwrap();
            assert_eq!(found.map(|f| f.key), Some(a.key.clone()));
            // Every single-character change is refused.
            for i in 0..token.len() {
                let mut t: Vec<char> = token.chars().collect();
                t[i] = if t[i] == 'A' { 'B' } else { 'A' };
                let t: String = t.into_iter().collect();
                assert!(store.read(|r| by_token(r, &keys, &t)).unwrap().is_none(), "{t}");
            }
            // Another secret's token for the same place is refused.
            let other = TokenKey::new([8; 32]).token(a);
            assert!(store.read(|r| by_token(r, &keys, &other)).unwrap().is_none());
        }
        store.close();
    }

    #[tokio::test]
    async fn after_a_rotation_old_links_and_links_without_a_key_id_still_work_until_their_key_is_removed() {
        let dir = tempfile::tempdir().unwrap();
        let (store, _) = store_with_list(dir.path()).await;
        let stage = Arc::new(AssignStage {
            defaults: Arc::new(crate::registry::shanxi_defaults().clone()),
            regions: Regions::shanxi(),
            on_round: Vec::new(),
        });
        step(&store, &stage, 140100, issued("140100-T-1", "orange")).await;
        let a = store.read(|r| of_warning(r, "140100-T-1", "", 1)).unwrap().remove(0);
        let find = |keys: &TokenKey, token: &str| store.read(|r| by_token(r, keys, token)).unwrap().map(|f| f.key);
        let ring = |ids: &[u32], legacy: bool| {
            let keys = ids.iter().map(|n| (*n, [*n as u8; 32])).collect();
            KeyRing::new(keys, legacy.then_some([0; 32])).unwrap()
        };
        // A link of an earlier release: no key id, signed by the one key of then (now "legacy").
        let legacy = TokenKey::new([0; 32]).token(&a).trim_start_matches("k1.").to_string();
        let keys = TokenKey::from_ring(ring(&[1], true));
        let first = keys.token(&a);
        assert!(first.starts_with("k1.") && first.len() == 41, "{first}");
        assert_eq!(find(&keys, &legacy), Some(a.key.clone()), "the legacy link works");
        // Rotated: k2 signs, k1 and legacy links still work.
        assert!(keys.replace(ring(&[1, 2], true)));
        let second = keys.token(&a);
        assert!(second.starts_with("k2."), "{second}");
        for t in [&legacy, &first, &second] {
            assert_eq!(find(&keys, t), Some(a.key.clone()), "{t}");
        }
        // A link naming another key id than its signer fails.
        let relabelled = format!("k2.{}", &first[3..]);
        assert_eq!(find(&keys, &relabelled), None);
        // k1 and the legacy key removed: their links stop working, k2's go on.
        keys.replace(ring(&[2], false));
        assert_eq!(find(&keys, &legacy), None);
        assert_eq!(find(&keys, &first), None);
        assert_eq!(find(&keys, &second), Some(a.key.clone()));
        assert_eq!(find(&keys, &format!("k3.{}", &second[3..])), None, "an unknown key id");
        store.close();
    }
}
