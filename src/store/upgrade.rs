//! Upgrades of the store's format in place: an ordered list of steps, each from format `v` to
//! `v + 1`, run when a store of an older format is opened (the embedded file and PostgreSQL alike,
//! through the port).
//!
//! For each step, in order:
//!
//! 1. a backup of the whole store is written first (the same consistent copy as `hazeflow backup`,
//!    an embedded file whatever the backend): beside the embedded file as
//!    `hazeflow.redb.format-{v}.bak`, for PostgreSQL into the folder the daemon names
//!    (`{data_dir}/backups/`); no backup, no step;
//! 2. the step runs as one job of the writer, that is in one transaction, together with the new
//!    format version and an entry of the store's history (meta `history`); a step that finds the
//!    store already past its format (another node did it) does nothing;
//! 3. the step is logged (format, what it did, the backup, how long);
//!
//! then, once every step has run, every row of every table is decoded and the views are rebuilt from
//! the event log and compared ([`ReadTx::check_tables`], [`ReadTx::verify_views`]): a store that does
//! not pass is refused (the backup is named in the error).
//!
//! Format 3 (this build): the store keeps its history in meta (`history`, JSON): when it was made or
//! first seen, and every format step since, with the time, the hazeflow version that ran it, the
//! number of events then and the backup written before it. The step 2 → 3 starts that history with
//! what the log tells of the store's beginning (its first record's time).

use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::port::{Key, ReadPort, Table};
use super::tx::{ReadTx, Tx};
use super::{FORMAT_VERSION, Store, StoreError};

/// The meta key of the store's history.
pub(crate) const HISTORY_KEY: &str = "history";

/// The meta key of the format version.
pub(crate) const FORMAT_KEY: &str = "format_version";

/// One entry of the store's history.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HistoryEntry {
    /// The format the store had from then on.
    pub format: u32,
    /// `created` (a new store), `found` (a store older than its history: what its log tells) or
    /// `upgraded` (a step of this module).
    pub how: String,
    /// When (for `found`: the store's first event, if it has one).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub at: Option<DateTime<Utc>>,
    /// The hazeflow version that wrote the entry.
    pub hazeflow: String,
    /// Events in the log then.
    pub events: u64,
    /// The backup written before the step.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backup: Option<String>,
}

/// A step from format `from` to `from + 1`: writes what the new format has and the old lacks, in the
/// transaction it is given; returns what it did, for the log.
struct Step {
    from: u32,
    what: &'static str,
    run: fn(&mut Tx<'_>) -> Result<String, StoreError>,
}

/// The steps, in order; the last ends at [`FORMAT_VERSION`].
const STEPS: &[Step] = &[Step {
    from: 2,
    what: "the store's history in meta (`history`)",
    run: step_2_to_3,
}];

/// The oldest format this build upgrades.
pub(crate) fn oldest_upgradable() -> u32 {
    STEPS.first().map_or(FORMAT_VERSION, |s| s.from)
}

/// Whether a store of format `found` opens with this build (the same, or older with steps up to
/// this one).
pub(crate) fn can_open(found: u32) -> bool {
    found == FORMAT_VERSION || (oldest_upgradable()..FORMAT_VERSION).contains(&found)
}

/// Format 2 → 3: the history begins with what the log tells: the store was of format 2 from its
/// first record on.
fn step_2_to_3(tx: &mut Tx<'_>) -> Result<String, StoreError> {
    let first = tx.events_after(0, 1)?.into_iter().next();
    let events = tx.event_count()?;
    let found = HistoryEntry {
        format: 2,
        how: "found".into(),
        at: first.as_ref().map(|r| r.recorded_at),
        hazeflow: "(an earlier release)".into(),
        events,
        backup: None,
    };
    put_history(tx, &[found])?;
    Ok(format!(
        "history started: format 2 since {}",
        first.map_or_else(|| "(no event yet)".to_string(), |r| r.recorded_at.to_rfc3339())
    ))
}

fn put_history(tx: &mut Tx<'_>, history: &[HistoryEntry]) -> Result<(), StoreError> {
    tx.put_meta(HISTORY_KEY, &serde_json::to_vec(history).unwrap_or_default())
}

/// The history a new store starts with.
pub(crate) fn created_history(at: DateTime<Utc>) -> Vec<u8> {
    serde_json::to_vec(&[HistoryEntry {
        format: FORMAT_VERSION,
        how: "created".into(),
        at: Some(at),
        hazeflow: env!("CARGO_PKG_VERSION").into(),
        events: 0,
        backup: None,
    }])
    .unwrap_or_default()
}

/// Where the backup before a step goes.
#[derive(Debug, Clone)]
pub(crate) enum BackupPlace {
    /// Beside the embedded file: `{file}.format-{v}.bak`.
    Beside(PathBuf),
    /// Into a folder: `hazeflow-format-{v}-{time}.redb`.
    Folder(PathBuf),
    /// No backup (a scratch copy being checked, which is itself the copy).
    None,
}

impl BackupPlace {
    fn path(&self, from: u32) -> Option<PathBuf> {
        let stamp = Utc::now().format("%Y%m%dT%H%M%S");
        match self {
            BackupPlace::Beside(file) => {
                let named = |suffix: String| {
                    let mut s = file.as_os_str().to_owned();
                    s.push(suffix);
                    PathBuf::from(s)
                };
                let plain = named(format!(".format-{from}.bak"));
                Some(if plain.exists() {
                    named(format!(".format-{from}.{stamp}.bak"))
                } else {
                    plain
                })
            }
            BackupPlace::Folder(dir) => Some(dir.join(format!("hazeflow-format-{from}-{stamp}.redb"))),
            BackupPlace::None => None,
        }
    }
}

/// What one step did.
#[derive(Debug, Clone)]
pub struct Upgraded {
    /// From this format to the next.
    pub from: u32,
    /// What it did.
    pub did: String,
    /// The backup written before it.
    pub backup: Option<PathBuf>,
}

fn format_of(port: &dyn ReadPort) -> Result<Option<u32>, StoreError> {
    Ok(port
        .get(Table::Meta, Key::Name(FORMAT_KEY))?
        .map(|b| u32::from_le_bytes(b.try_into().unwrap_or([0; 4]))))
}

fn history_of(port: &dyn ReadPort) -> Result<Vec<HistoryEntry>, StoreError> {
    match port.get(Table::Meta, Key::Name(HISTORY_KEY))? {
        Some(b) => serde_json::from_slice(&b).map_err(|e| StoreError::Corrupt {
            table: "meta",
            message: format!("history: {e}"),
        }),
        None => Ok(Vec::new()),
    }
}

impl ReadTx {
    /// The store's format (`None`: not recorded, a store being made).
    pub fn format_version(&self) -> Result<Option<u32>, StoreError> {
        format_of(self.port())
    }

    /// The store's history (empty for a store of format 2 or older).
    pub fn store_history(&self) -> Result<Vec<HistoryEntry>, StoreError> {
        history_of(self.port())
    }
}

impl Tx<'_> {
    /// The store's format, inside the transaction.
    pub(crate) fn format_version(&self) -> Result<Option<u32>, StoreError> {
        format_of(self.port())
    }

    /// The store's history, inside the transaction.
    pub(crate) fn store_history(&self) -> Result<Vec<HistoryEntry>, StoreError> {
        history_of(self.port())
    }
}

/// Brings an opened store of an older format up to [`FORMAT_VERSION`], step by step (see the
/// module's text); nothing when it is current. `shown` names the store in messages.
pub(crate) fn run(store: &Store, backups: &BackupPlace, shown: &Path) -> Result<Vec<Upgraded>, StoreError> {
    let found = store.read(|r| r.format_version())?.unwrap_or(FORMAT_VERSION);
    if found == FORMAT_VERSION {
        return Ok(Vec::new());
    }
    if !can_open(found) {
        return Err(StoreError::TooOld {
            path: shown.to_path_buf(),
            found,
        });
    }
    let mut done = Vec::new();
    for step in STEPS.iter().filter(|s| s.from >= found) {
        let started = std::time::Instant::now();
        let backup = match backups.path(step.from) {
            Some(path) => {
                if let Some(dir) = path.parent() {
                    crate::config::private_dir(dir).map_err(|e| super::db_err(dir, format!("{e:#}")))?;
                }
                let b = store.backup_to(&path).map_err(|e| {
                    StoreError::Refused(format!(
                        "{}: the backup before the upgrade from format {} could not be written to {} ({e}); nothing was changed",
                        shown.display(),
                        step.from,
                        path.display()
                    ))
                })?;
                Some(b.path)
            }
            None => None,
        };
        let (from, run, shown_backup) = (step.from, step.run, backup.as_ref().map(|p| p.display().to_string()));
        let did = store.write_blocking(move |tx| {
            // Under the writer (and, on PostgreSQL, its lock across the nodes): another node may have
            // run this step meanwhile.
            let now = tx.format_version()?.unwrap_or(FORMAT_VERSION);
            if now != from {
                return Ok(None);
            }
            let did = run(tx)?;
            let mut history = tx.store_history()?;
            history.push(HistoryEntry {
                format: from + 1,
                how: "upgraded".into(),
                at: Some(Utc::now()),
                hazeflow: env!("CARGO_PKG_VERSION").into(),
                events: tx.event_count()?,
                backup: shown_backup,
            });
            put_history(tx, &history)?;
            tx.put_meta(FORMAT_KEY, &(from + 1).to_le_bytes())?;
            Ok(Some(did))
        })?;
        match did {
            Some(did) => {
                tracing::warn!(
                    store = %shown.display(),
                    from = step.from,
                    to = step.from + 1,
                    step = step.what,
                    did = %did,
                    backup = backup.as_ref().map(|p| p.display().to_string()).unwrap_or_default(),
                    ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
                    "store format upgraded"
                );
                done.push(Upgraded {
                    from: step.from,
                    did,
                    backup,
                });
            }
            None => tracing::info!(store = %shown.display(), from = step.from, "store format step already done (by another node)"),
        }
    }
    // Checked afterwards, as `hazeflow verify` does (rows decode, views agree with the log).
    let problems = store.read(|r| {
        let mut p = r.check_tables()?.problems;
        if p.is_empty() {
            p.extend(r.verify_views()?);
        }
        Ok(p)
    })?;
    if !problems.is_empty() {
        let backup = done
            .first()
            .and_then(|u| u.backup.as_ref())
            .map_or_else(|| "none written".to_string(), |p| p.display().to_string());
        return Err(StoreError::Refused(format!(
            "{}: after the upgrade to format {FORMAT_VERSION} the store does not check ({} problems, first: {}); restore the backup ({backup}) and report this",
            shown.display(),
            problems.len(),
            problems[0]
        )));
    }
    Ok(done)
}
