//! Deep checks for `hazeflow verify`: a copy of the file opened with redb's integrity check (every
//! page's checksum), then every row of every table decoded.
//!
//! The original file is only read (copied byte for byte); redb never opens it, so nothing of it
//! changes, whatever state it is in (a file needing repair would be repaired, that is written to, by
//! any writable open; a read-only open refuses such a file).

use std::path::{Path, PathBuf};

use serde::de::DeserializeOwned;

use super::embedded::{Embedded, check_file};
use super::port::{Backend, Key, Scan, Table};
use super::record::{ConsultationRecord, DirectiveRecord, Record};
use super::tx::ReadTx;
use super::upgrade::{self, FORMAT_KEY, HISTORY_KEY, HistoryEntry};
use super::{FORMAT_VERSION, StoreError, db_err};
use crate::domain::forecast::Forecast;
use crate::domain::warning::{RegionState, Warning};

/// A checked copy of a store file, for reading.
pub struct Checked {
    db: Embedded,
    copy: PathBuf,
}

impl Checked {
    /// Copies `original` into `scratch` and opens the copy with redb's full integrity check (it
    /// repairs the copy if the original was not closed cleanly). A file that is empty, not redb, or
    /// fails the check is an error naming the original.
    pub fn open_copy(original: &Path, scratch: &Path) -> Result<Checked, StoreError> {
        if !original.exists() {
            return Err(db_err(original, "no such file"));
        }
        check_file(original)?;
        let copy = scratch.join("verify-copy.redb");
        std::fs::copy(original, &copy).map_err(|e| db_err(original, format!("cannot copy it to {}: {e}", copy.display())))?;
        let db = Embedded::open_checked(&copy, original)?;
        Ok(Checked { db, copy })
    }

    /// Runs `f` on a snapshot of the copy.
    pub fn read<T>(&self, f: impl FnOnce(&ReadTx) -> Result<T, StoreError>) -> Result<T, StoreError> {
        let port = self.db.snapshot()?.ok_or_else(|| db_err(&self.copy, "not open"))?;
        f(&ReadTx::new(port))
    }
}

/// What [`ReadTx::check_tables`] found.
#[derive(Debug, Default)]
pub struct TableReport {
    /// Rows read, per table.
    pub rows: Vec<(&'static str, u64)>,
    /// Rows that do not decode, or keys that disagree with their value.
    pub problems: Vec<String>,
    /// The store's format when it is older than this build's and this build upgrades it (on its next
    /// open by the daemon or a command).
    pub older_format: Option<u32>,
}

fn typed<T: DeserializeOwned>(table: &'static str, key: &str, bytes: &[u8], problems: &mut Vec<String>) -> Option<T> {
    match serde_json::from_slice(bytes) {
        Ok(v) => Some(v),
        Err(e) => {
            if problems.len() < 1000 {
                problems.push(format!("{table} {key}: does not decode: {e}"));
            }
            None
        }
    }
}

impl ReadTx {
    /// Reads every row of every table and decodes it: the log's records (gap-free from 1, each under
    /// its own seq), forecasts, consultations, region states, warnings, directives, and every
    /// document and item as JSON.
    pub fn check_tables(&self) -> Result<TableReport, StoreError> {
        let mut r = TableReport::default();
        let p = &mut r.problems;
        let port = self.port();
        macro_rules! each {
            ($table:expr, |$k:ident, $v:ident| $body:block) => {{
                let mut n = 0u64;
                port.scan($table, Scan::All { rev: false }, usize::MAX, &mut |$k, $v| {
                    n += 1;
                    $body
                    Ok(true)
                })?;
                r.rows.push(($table.name(), n));
            }};
        }
        let text = |k: Key<'_>| match k {
            Key::Seq(s) => s.to_string(),
            Key::Region(c) => c.to_string(),
            Key::Name(n) => n.to_string(),
            Key::WarningEvent(id, s) => format!("{id}/{s}"),
            Key::Doc(c, k) => format!("{c}/{k}"),
            Key::Item(b, i) => format!("{b}/{i}"),
        };
        let mut format = None;
        let mut history: Option<Vec<HistoryEntry>> = None;
        each!(Table::Meta, |k, v| {
            if k == Key::Name(FORMAT_KEY) {
                format = <[u8; 4]>::try_from(v).map(u32::from_le_bytes).ok();
            } else if k == Key::Name(HISTORY_KEY) {
                history = typed("meta", HISTORY_KEY, v, p);
            }
        });
        match format {
            Some(FORMAT_VERSION) => match &history {
                // Format 3 on: the history ends at the store's format, in ascending formats.
                Some(h) if h.last().map(|e| e.format) == Some(FORMAT_VERSION) && h.windows(2).all(|w| w[0].format < w[1].format) => {}
                Some(h) => p.push(format!(
                    "meta: the history ({} entries) does not end at format {FORMAT_VERSION} in ascending formats",
                    h.len()
                )),
                None => p.push(format!("meta: no history, which a store of format {FORMAT_VERSION} keeps")),
            },
            // An older format that this build upgrades when it opens the store.
            Some(v) if upgrade::can_open(v) => r.older_format = Some(v),
            found => p.push(format!("meta: format version {found:?}, expected {FORMAT_VERSION}")),
        }
        let mut expected = 1u64;
        each!(Table::Events, |k, v| {
            let Key::Seq(k) = k else { return Ok(true) };
            if let Some(rec) = typed::<Record>("events", &k.to_string(), v, p)
                && rec.seq != k
            {
                p.push(format!("events {k}: holds the record of seq {}", rec.seq));
            }
            if k != expected {
                p.push(format!("events: seq {k} follows {} (a gap or a repeat)", expected - 1));
            }
            expected = k + 1;
        });
        each!(Table::Forecasts, |k, v| {
            typed::<Forecast>("forecasts", &text(k), v, p);
        });
        each!(Table::Latest, |k, v| {
            let _ = (k, v);
        });
        each!(Table::Consultations, |k, v| {
            typed::<ConsultationRecord>("consultations", &text(k), v, p);
        });
        each!(Table::RegionStates, |k, v| {
            typed::<RegionState>("region_states", &text(k), v, p);
        });
        each!(Table::Warnings, |k, v| {
            typed::<Warning>("warnings", &text(k), v, p);
        });
        each!(Table::WarningEvents, |k, v| {
            let _ = (k, v);
        });
        each!(Table::Directives, |k, v| {
            typed::<DirectiveRecord>("directives", &text(k), v, p);
        });
        each!(Table::Counters, |k, v| {
            let _ = (k, v);
        });
        each!(Table::Docs, |k, v| {
            typed::<serde_json::Value>("docs", &text(k), v, p);
        });
        each!(Table::Items, |k, v| {
            typed::<serde_json::Value>("items", &text(k), v, p);
        });
        Ok(r)
    }
}
