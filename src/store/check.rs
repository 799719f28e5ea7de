//! Deep checks for `hazeflow verify`: a copy of the file opened with redb's integrity check (every
//! page's checksum), then every row of every table decoded.
//!
//! The original file is only read (copied byte for byte); redb never opens it, so nothing of it
//! changes, whatever state it is in (a file needing repair would be repaired, that is written to, by
//! any writable open; a read-only open refuses such a file).

use std::path::{Path, PathBuf};

use redb::{Database, ReadableDatabase, ReadableTable};
use serde::de::DeserializeOwned;

use super::keys::*;
use super::record::{ConsultationRecord, DirectiveRecord, Record};
use super::tx::ReadTx;
use super::{FORMAT_VERSION, StoreError, check_file, db_err};
use crate::domain::forecast::Forecast;
use crate::domain::warning::{RegionState, Warning};

/// A checked copy of a store file, for reading.
pub struct Checked {
    db: Database,
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
        let db = Database::builder()
            .set_check_integrity_on_open(true)
            .set_cache_size(64 << 20)
            .open(&copy)
            .map_err(|e| db_err(original, format!("redb's integrity check failed: {e}")))?;
        Ok(Checked { db, copy })
    }

    /// Runs `f` on a snapshot of the copy.
    pub fn read<T>(&self, f: impl FnOnce(&ReadTx) -> Result<T, StoreError>) -> Result<T, StoreError> {
        let txn = self.db.begin_read().map_err(|e| db_err(&self.copy, e))?;
        f(&ReadTx::new(txn, &self.copy))
    }
}

/// What [`ReadTx::check_tables`] found.
#[derive(Debug, Default)]
pub struct TableReport {
    /// Rows read, per table.
    pub rows: Vec<(&'static str, u64)>,
    /// Rows that do not decode, or keys that disagree with their value.
    pub problems: Vec<String>,
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
        macro_rules! each {
            ($def:ident, $name:literal, |$k:ident, $v:ident| $body:block) => {{
                let t = self.txn_table($def)?;
                let mut n = 0u64;
                for row in t.iter().map_err(|e| self.read_err(e))? {
                    let (k, v) = row.map_err(|e| self.read_err(e))?;
                    let $k = k.value();
                    let $v = v.value();
                    n += 1;
                    $body
                }
                r.rows.push(($name, n));
            }};
        }
        each!(META, "meta", |k, v| {
            if k == FORMAT_KEY {
                let found = <[u8; 4]>::try_from(v).map(u32::from_le_bytes).ok();
                if found != Some(FORMAT_VERSION) {
                    p.push(format!("meta: format version {found:?}, expected {FORMAT_VERSION}"));
                }
            }
        });
        let mut expected = 1u64;
        each!(EVENTS, "events", |k, v| {
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
        each!(FORECASTS, "forecasts", |k, v| {
            typed::<Forecast>("forecasts", k, v, p);
        });
        each!(LATEST, "latest_forecast", |k, v| {
            let _ = (k, v);
        });
        each!(CONSULTATIONS, "consultations", |k, v| {
            typed::<ConsultationRecord>("consultations", &k.to_string(), v, p);
        });
        each!(REGION_STATES, "region_states", |k, v| {
            typed::<RegionState>("region_states", &k.to_string(), v, p);
        });
        each!(WARNINGS, "warnings", |k, v| {
            typed::<Warning>("warnings", k, v, p);
        });
        each!(WARNING_EVENTS, "warning_events", |k, v| {
            let _ = (k, v);
        });
        each!(DIRECTIVES, "directives", |k, v| {
            typed::<DirectiveRecord>("directives", k, v, p);
        });
        each!(COUNTERS, "counters", |k, v| {
            let _ = (k, v);
        });
        each!(DOCS, "docs", |k, v| {
            typed::<serde_json::Value>("docs", &format!("{}/{}", k.0, k.1), v, p);
        });
        each!(ITEMS, "items", |k, v| {
            typed::<serde_json::Value>("items", &format!("{}/{}", k.0, k.1), v, p);
        });
        Ok(r)
    }
}
