//! The typed API over a transaction: domain types in, domain types out.

use super::keys::Collection;
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use redb::{Database, ReadTransaction, ReadableTable, ReadableTableMetadata, WriteTransaction};
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::keys::*;
use super::record::{ConsultationRecord, DirectiveRecord, Record, RecordBody};
use super::undo::{Entry, NamedTable, SeqTable, UndoLog, replaced};
use super::{FORMAT_VERSION, StoreError, db_err};
use crate::domain::forecast::Forecast;
use crate::domain::region::RegionCode;
use crate::domain::warning::{RegionState, Warning};

fn decode<T: DeserializeOwned>(table: &'static str, bytes: &[u8]) -> Result<T, StoreError> {
    serde_json::from_slice(bytes).map_err(|e| StoreError::Corrupt {
        table,
        message: e.to_string(),
    })
}

fn encode<T: Serialize>(v: &T) -> Vec<u8> {
    // Serialising our own types to JSON cannot fail (no maps with non-string keys).
    serde_json::to_vec(v).unwrap_or_default()
}

/// Creates the tables and checks the format version.
pub(crate) fn init(db: &Database, path: &Path) -> Result<(), StoreError> {
    let txn = db.begin_write().map_err(|e| db_err(path, e))?;
    {
        let mut meta = txn.open_table(META).map_err(|e| db_err(path, e))?;
        let found = meta.get(FORMAT_KEY).map_err(|e| db_err(path, e))?.map(|v| {
            let b = v.value();
            u32::from_le_bytes(b.try_into().unwrap_or([0; 4]))
        });
        match found {
            Some(v) if v > FORMAT_VERSION => {
                return Err(StoreError::TooNew {
                    path: path.to_path_buf(),
                    found: v,
                });
            }
            Some(v) if v < FORMAT_VERSION => {
                return Err(StoreError::TooOld {
                    path: path.to_path_buf(),
                    found: v,
                });
            }
            Some(_) => {}
            None => {
                meta.insert(FORMAT_KEY, FORMAT_VERSION.to_le_bytes().as_slice())
                    .map_err(|e| db_err(path, e))?;
            }
        }
        // Create every table so that readers never meet a missing one.
        txn.open_table(EVENTS).map_err(|e| db_err(path, e))?;
        txn.open_table(FORECASTS).map_err(|e| db_err(path, e))?;
        txn.open_table(LATEST).map_err(|e| db_err(path, e))?;
        txn.open_table(CONSULTATIONS).map_err(|e| db_err(path, e))?;
        txn.open_table(REGION_STATES).map_err(|e| db_err(path, e))?;
        txn.open_table(WARNINGS).map_err(|e| db_err(path, e))?;
        txn.open_table(WARNING_EVENTS).map_err(|e| db_err(path, e))?;
        txn.open_table(DIRECTIVES).map_err(|e| db_err(path, e))?;
        txn.open_table(COUNTERS).map_err(|e| db_err(path, e))?;
        txn.open_table(DOCS).map_err(|e| db_err(path, e))?;
        txn.open_table(ITEMS).map_err(|e| db_err(path, e))?;
    }
    txn.commit().map_err(|e| db_err(path, e))
}

/// Getters shared by reads and writes, over anything that opens tables.
macro_rules! getters {
    () => {
        /// A forecast by id.
        pub fn forecast(&self, id: &str) -> Result<Option<Forecast>, StoreError> {
            let t = self.open(FORECASTS)?;
            t.get(id)
                .map_err(|e| self.err(e))?
                .map(|v| decode("forecasts", v.value()))
                .transpose()
        }

        /// The latest forecast (by issue time) that covers the region.
        pub fn latest_forecast(&self, region: RegionCode) -> Result<Option<Forecast>, StoreError> {
            let id = {
                let t = self.open(LATEST)?;
                t.get(region.as_u32())
                    .map_err(|e| self.err(e))?
                    .map(|v| v.value().to_string())
            };
            match id {
                Some(id) => self.forecast(&id),
                None => Ok(None),
            }
        }

        /// Regions that have a forecast.
        pub fn forecast_regions(&self) -> Result<Vec<RegionCode>, StoreError> {
            let t = self.open(LATEST)?;
            let mut out = Vec::new();
            for item in t.iter().map_err(|e| self.err(e))? {
                let (k, _) = item.map_err(|e| self.err(e))?;
                if let Ok(c) = RegionCode::from_u32(k.value()) {
                    out.push(c);
                }
            }
            Ok(out)
        }

        /// A region's lifecycle state.
        pub fn region_state(&self, region: RegionCode) -> Result<RegionState, StoreError> {
            let t = self.open(REGION_STATES)?;
            Ok(t.get(region.as_u32())
                .map_err(|e| self.err(e))?
                .map(|v| decode("region_states", v.value()))
                .transpose()?
                .unwrap_or_default())
        }

        /// Every region's lifecycle state.
        pub fn region_states(&self) -> Result<Vec<(RegionCode, RegionState)>, StoreError> {
            let t = self.open(REGION_STATES)?;
            let mut out = Vec::new();
            for item in t.iter().map_err(|e| self.err(e))? {
                let (k, v) = item.map_err(|e| self.err(e))?;
                if let Ok(c) = RegionCode::from_u32(k.value()) {
                    out.push((c, decode("region_states", v.value())?));
                }
            }
            Ok(out)
        }

        /// A warning by id.
        pub fn warning(&self, id: &str) -> Result<Option<Warning>, StoreError> {
            let t = self.open(WARNINGS)?;
            t.get(id)
                .map_err(|e| self.err(e))?
                .map(|v| decode("warnings", v.value()))
                .transpose()
        }

        /// Every warning, by id.
        pub fn warnings(&self) -> Result<Vec<Warning>, StoreError> {
            let t = self.open(WARNINGS)?;
            let mut out = Vec::new();
            for item in t.iter().map_err(|e| self.err(e))? {
                let (_, v) = item.map_err(|e| self.err(e))?;
                out.push(decode("warnings", v.value())?);
            }
            Ok(out)
        }

        /// The log records of one warning, in order.
        pub fn warning_history(&self, id: &str) -> Result<Vec<Record>, StoreError> {
            let seqs: Vec<u64> = {
                let t = self.open(WARNING_EVENTS)?;
                let mut v = Vec::new();
                for item in t.range((id, 0u64)..=(id, u64::MAX)).map_err(|e| self.err(e))? {
                    let (k, _) = item.map_err(|e| self.err(e))?;
                    v.push(k.value().1);
                }
                v
            };
            let t = self.open(EVENTS)?;
            let mut out = Vec::new();
            for s in seqs {
                if let Some(v) = t.get(s).map_err(|e| self.err(e))? {
                    out.push(decode("events", v.value())?);
                }
            }
            Ok(out)
        }

        /// Log records with seq > `after`, at most `limit`.
        pub fn events_after(&self, after: u64, limit: usize) -> Result<Vec<Record>, StoreError> {
            let t = self.open(EVENTS)?;
            let mut out = Vec::new();
            for item in t.range(after.saturating_add(1)..).map_err(|e| self.err(e))?.take(limit) {
                let (_, v) = item.map_err(|e| self.err(e))?;
                out.push(decode("events", v.value())?);
            }
            Ok(out)
        }

        /// The last seq written (0 for an empty log).
        pub fn last_seq(&self) -> Result<u64, StoreError> {
            let t = self.open(EVENTS)?;
            Ok(t.last().map_err(|e| self.err(e))?.map_or(0, |(k, _)| k.value()))
        }

        /// Number of log records.
        pub fn event_count(&self) -> Result<u64, StoreError> {
            let t = self.open(EVENTS)?;
            t.len().map_err(|e| self.err(e))
        }

        /// The latest consultations, newest first.
        pub fn consultations(&self, limit: usize) -> Result<Vec<ConsultationRecord>, StoreError> {
            let t = self.open(CONSULTATIONS)?;
            let mut out = Vec::new();
            for item in t.iter().map_err(|e| self.err(e))?.rev().take(limit) {
                let (_, v) = item.map_err(|e| self.err(e))?;
                out.push(decode("consultations", v.value())?);
            }
            Ok(out)
        }

        /// A directive by id.
        pub fn directive(&self, id: &str) -> Result<Option<DirectiveRecord>, StoreError> {
            let t = self.open(DIRECTIVES)?;
            t.get(id)
                .map_err(|e| self.err(e))?
                .map(|v| decode("directives", v.value()))
                .transpose()
        }

        /// Every directive.
        pub fn directives(&self) -> Result<Vec<DirectiveRecord>, StoreError> {
            let t = self.open(DIRECTIVES)?;
            let mut out = Vec::new();
            for item in t.iter().map_err(|e| self.err(e))? {
                let (_, v) = item.map_err(|e| self.err(e))?;
                out.push(decode("directives", v.value())?);
            }
            Ok(out)
        }

        /// A counter (0 when never counted).
        pub fn counter(&self, name: &str) -> Result<u64, StoreError> {
            let t = self.open(COUNTERS)?;
            Ok(t.get(name).map_err(|e| self.err(e))?.map_or(0, |v| v.value()))
        }

        /// Every counter.
        pub fn counters(&self) -> Result<Vec<(String, u64)>, StoreError> {
            let t = self.open(COUNTERS)?;
            let mut out = Vec::new();
            for item in t.iter().map_err(|e| self.err(e))? {
                let (k, v) = item.map_err(|e| self.err(e))?;
                out.push((k.value().to_string(), v.value()));
            }
            Ok(out)
        }

        /// A document of a collection.
        pub fn doc<T: DeserializeOwned>(&self, collection: Collection, key: &str) -> Result<Option<T>, StoreError> {
            let collection = collection.name();
            let t = self.open(DOCS)?;
            t.get((collection, key))
                .map_err(|e| self.err(e))?
                .map(|v| decode("docs", v.value()))
                .transpose()
        }

        /// Keys (only) of a collection that start with `prefix`, in order, after `after`, at most `limit`.
        pub fn doc_keys(&self, collection: Collection, prefix: &str, after: &str, limit: usize) -> Result<Vec<String>, StoreError> {
            let collection = collection.name();
            let t = self.open(DOCS)?;
            let start = if after.is_empty() || after < prefix {
                prefix.to_string()
            } else {
                after.to_string()
            };
            let mut out = Vec::new();
            for item in t.range((collection, start.as_str())..).map_err(|e| self.err(e))? {
                let (k, _) = item.map_err(|e| self.err(e))?;
                let (c, key) = k.value();
                if c != collection || !key.starts_with(prefix) || out.len() >= limit {
                    break;
                }
                if !after.is_empty() && key <= after {
                    continue;
                }
                out.push(key.to_string());
            }
            Ok(out)
        }

        /// Documents of a collection whose key starts with `prefix`, in key order, after `after`
        /// (exclusive; empty for the start), at most `limit`.
        pub fn docs<T: DeserializeOwned>(
            &self,
            collection: Collection,
            prefix: &str,
            after: &str,
            limit: usize,
        ) -> Result<Vec<(String, T)>, StoreError> {
            let collection = collection.name();
            let t = self.open(DOCS)?;
            let start = if after.is_empty() || after < prefix {
                prefix.to_string()
            } else {
                after.to_string()
            };
            let mut out = Vec::new();
            for item in t.range((collection, start.as_str())..).map_err(|e| self.err(e))? {
                let (k, v) = item.map_err(|e| self.err(e))?;
                let (c, key) = k.value();
                if c != collection || !key.starts_with(prefix) || out.len() >= limit {
                    break;
                }
                if !after.is_empty() && key <= after {
                    continue;
                }
                out.push((key.to_string(), decode("docs", v.value())?));
            }
            Ok(out)
        }

        /// An item of a numbered run.
        pub fn item<T: DeserializeOwned>(&self, batch: u64, index: u32) -> Result<Option<T>, StoreError> {
            let t = self.open(ITEMS)?;
            t.get((batch, index))
                .map_err(|e| self.err(e))?
                .map(|v| decode("items", v.value()))
                .transpose()
        }

        /// Items `from..` of a run, in order, at most `limit`.
        pub fn items<T: DeserializeOwned>(&self, batch: u64, from: u32, limit: usize) -> Result<Vec<(u32, T)>, StoreError> {
            let t = self.open(ITEMS)?;
            let mut out = Vec::new();
            for item in t
                .range((batch, from)..=(batch, u32::MAX))
                .map_err(|e| self.err(e))?
                .take(limit)
            {
                let (k, v) = item.map_err(|e| self.err(e))?;
                out.push((k.value().1, decode("items", v.value())?));
            }
            Ok(out)
        }
    };
}

/// A read snapshot.
pub struct ReadTx {
    txn: ReadTransaction,
    path: PathBuf,
}

impl ReadTx {
    pub(crate) fn new(txn: ReadTransaction, path: &Path) -> Self {
        ReadTx {
            txn,
            path: path.to_path_buf(),
        }
    }

    fn err(&self, e: impl std::fmt::Display) -> StoreError {
        db_err(&self.path, e)
    }

    fn open<K: redb::Key + 'static, V: redb::Value + 'static>(
        &self,
        def: redb::TableDefinition<K, V>,
    ) -> Result<redb::ReadOnlyTable<K, V>, StoreError> {
        self.txn.open_table(def).map_err(|e| self.err(e))
    }

    /// A table, for the deep checks of `check.rs`.
    pub(crate) fn txn_table<K: redb::Key + 'static, V: redb::Value + 'static>(
        &self,
        def: redb::TableDefinition<K, V>,
    ) -> Result<redb::ReadOnlyTable<K, V>, StoreError> {
        self.open(def)
    }

    pub(crate) fn read_err(&self, e: impl std::fmt::Display) -> StoreError {
        self.err(e)
    }

    getters!();
}

/// A write transaction shared by one batch of jobs.
pub struct Tx<'a> {
    txn: &'a WriteTransaction,
    path: PathBuf,
    failed: Option<String>,
    next_seq: Option<u64>,
    /// What the running job wrote, to take back if it fails.
    undo: UndoLog,
    /// `next_seq` when the running job started.
    job_next_seq: Option<u64>,
}

impl<'a> Tx<'a> {
    pub(crate) fn new(txn: &'a WriteTransaction, path: &Path) -> Self {
        Tx {
            txn,
            path: path.to_path_buf(),
            failed: None,
            next_seq: None,
            undo: UndoLog::default(),
            job_next_seq: None,
        }
    }

    /// Starts a job: its writes are logged from here on.
    pub(crate) fn begin_job(&mut self) {
        self.undo = UndoLog::default();
        self.job_next_seq = self.next_seq;
    }

    /// Ends a job. When it failed (`ok` false), takes its writes back, newest first, so that the next
    /// job of the batch, and the commit, see the tables as they were before it. A storage error while
    /// undoing aborts the batch.
    pub(crate) fn end_job(&mut self, ok: bool) {
        let undo = std::mem::take(&mut self.undo);
        if ok || self.failed.is_some() {
            // Committed with the batch, or the batch aborts anyway.
            return;
        }
        if let Err(e) = undo.apply(self.txn) {
            self.failed.get_or_insert_with(|| format!("undoing a failed job: {e}"));
        }
        self.next_seq = self.job_next_seq;
    }

    /// The running job's undo log.
    #[cfg(test)]
    pub(super) fn undo_log(&self) -> &UndoLog {
        &self.undo
    }

    /// Whether every write went through; a failed write aborts the batch.
    pub(crate) fn finish(self) -> Result<(), String> {
        self.failed.map_or(Ok(()), Err)
    }

    /// Inserts into a table of byte values and logs what the insert replaced (`undo` records the value
    /// before, called only when the value changed). A failed insert aborts the batch.
    fn put_bytes<'k, K: redb::Key + 'static>(
        &mut self,
        def: redb::TableDefinition<K, &'static [u8]>,
        key: impl std::borrow::Borrow<K::SelfType<'k>>,
        value: &[u8],
        undo: impl FnOnce(&mut UndoLog, Option<Vec<u8>>),
    ) -> Result<(), StoreError> {
        let before = (|| {
            let mut t = self.open(def)?;
            let old = t.insert(key, value).map_err(|e| self.err(e))?;
            Ok(replaced(old, value))
        })();
        match before {
            Ok(Some(b)) => {
                undo(&mut self.undo, b);
                Ok(())
            }
            Ok(None) => Ok(()),
            Err(e) => Err(self.fail(e)),
        }
    }

    fn err(&self, e: impl std::fmt::Display) -> StoreError {
        db_err(&self.path, e)
    }

    fn fail(&mut self, e: StoreError) -> StoreError {
        self.failed.get_or_insert_with(|| e.to_string());
        e
    }

    fn open<K: redb::Key + 'static, V: redb::Value + 'static>(
        &self,
        def: redb::TableDefinition<K, V>,
    ) -> Result<redb::Table<'_, K, V>, StoreError> {
        self.txn.open_table(def).map_err(|e| self.err(e))
    }

    getters!();

    /// Appends a record and updates the views it touches, in this transaction.
    pub fn append(&mut self, at: DateTime<Utc>, actor: &str, playbook: Option<String>, body: RecordBody) -> Result<Record, StoreError> {
        let r = self.append_inner(at, actor, playbook, body);
        r.map_err(|e| self.fail(e))
    }

    fn append_inner(&mut self, at: DateTime<Utc>, actor: &str, playbook: Option<String>, body: RecordBody) -> Result<Record, StoreError> {
        let seq = match self.next_seq {
            Some(s) => s,
            None => self.last_seq()? + 1,
        };
        self.next_seq = Some(seq + 1);
        let mut body = body;
        if let RecordBody::ConsultationHeld { consultation } = &mut body {
            consultation.seq = seq;
        }
        let record = Record {
            seq,
            recorded_at: at,
            actor: actor.to_string(),
            playbook,
            body,
        };
        self.put_bytes(EVENTS, seq, &encode(&record), |u, b| u.push(Entry::Seq(SeqTable::Events, seq, b)))?;
        self.bump(&format!("events_{}", record.body.kind()), 1)?;
        self.apply_views(&record)?;
        Ok(record)
    }

    fn apply_views(&mut self, record: &Record) -> Result<(), StoreError> {
        match &record.body {
            RecordBody::ForecastAccepted { forecast, .. } => {
                self.put_bytes(FORECASTS, forecast.id.as_str(), &encode(forecast), |u, b| {
                    u.push(Entry::Named(NamedTable::Forecasts, forecast.id.clone(), b))
                })?;
                // The current forecast of a region is the latest received (every one recorded was
                // valid, its issue time bounded when it arrived).
                for region in forecast.series.keys() {
                    {
                        let before = {
                            let mut t = self.open(LATEST)?;
                            let old = t.insert(region.as_u32(), forecast.id.as_str()).map_err(|e| self.err(e))?;
                            match old {
                                None => Some(None),
                                Some(g) if g.value() == forecast.id => None,
                                Some(g) => Some(Some(g.value().to_string())),
                            }
                        };
                        if let Some(b) = before {
                            self.undo.push(Entry::Latest(region.as_u32(), b));
                        }
                    }
                }
            }
            RecordBody::ConsultationHeld { consultation } => {
                self.put_bytes(CONSULTATIONS, record.seq, &encode(consultation), |u, b| {
                    u.push(Entry::Seq(SeqTable::Consultations, record.seq, b))
                })?;
            }
            RecordBody::Warning { warning_id, event } => {
                let mut state = self.region_state(event.region)?;
                state.apply(event);
                let region = event.region.as_u32();
                self.put_bytes(REGION_STATES, region, &encode(&state), |u, b| u.push(Entry::RegionState(region, b)))?;
                if let Some(w) = &state.warning {
                    self.put_bytes(WARNINGS, w.id.as_str(), &encode(w), |u, b| {
                        u.push(Entry::Named(NamedTable::Warnings, w.id.clone(), b))
                    })?;
                }
                let existed = self
                    .open(WARNING_EVENTS)?
                    .insert((warning_id.as_str(), record.seq), ())
                    .map_err(|e| self.err(e))?
                    .is_some();
                if !existed {
                    self.undo.push(Entry::WarningEvent(warning_id.clone(), record.seq));
                }
            }
            RecordBody::DirectiveIssued { directive } => {
                self.put_bytes(DIRECTIVES, directive.id.as_str(), &encode(directive), |u, b| {
                    u.push(Entry::Named(NamedTable::Directives, directive.id.clone(), b))
                })?;
            }
            RecordBody::DirectiveLifted { id } => {
                if let Some(mut d) = self.directive(id)? {
                    d.active = false;
                    self.put_bytes(DIRECTIVES, id.as_str(), &encode(&d), |u, b| {
                        u.push(Entry::Named(NamedTable::Directives, id.clone(), b))
                    })?;
                }
            }
            RecordBody::ForecastRejected { .. } | RecordBody::PlaybooksReloaded { .. } | RecordBody::Other(_) => {}
        }
        Ok(())
    }

    /// Adds to a counter.
    pub fn bump(&mut self, name: &str, by: u64) -> Result<(), StoreError> {
        let now = self.counter(name)?;
        let new = now + by;
        let r = self
            .open(COUNTERS)?
            .insert(name, new)
            .map(|old| old.map(|g| g.value()))
            .map_err(|e| self.err(e));
        match r {
            Ok(old) => {
                if old != Some(new) {
                    self.undo.push(Entry::Counter(name.to_string(), old));
                }
                Ok(())
            }
            Err(e) => Err(self.fail(e)),
        }
    }

    /// Writes a document of a collection.
    pub fn put_doc<T: Serialize>(&mut self, collection: Collection, key: &str, value: &T) -> Result<(), StoreError> {
        let collection = collection.name();
        self.put_bytes(DOCS, (collection, key), &encode(value), |u, b| u.doc(collection, key, b))
    }

    /// Writes many documents of a collection, opening the table once (bulk paths: assignments, lists).
    pub fn put_docs<T: Serialize>(&mut self, collection: Collection, items: &[(String, T)]) -> Result<(), StoreError> {
        let collection = collection.name();
        // In key order: B-tree inserts in order touch each page once (sequential keys load several
        // times faster than random ones here).
        let mut order: Vec<usize> = (0..items.len()).collect();
        order.sort_unstable_by(|a, b| items[*a].0.cmp(&items[*b].0));
        let r = (|| {
            let err = |e: &dyn std::fmt::Display| db_err(&self.path, e);
            let mut t = self.txn.open_table(DOCS).map_err(|e| err(&e))?;
            for i in order {
                let (k, v) = &items[i];
                let bytes = encode(v);
                let old = t.insert((collection, k.as_str()), bytes.as_slice()).map_err(|e| err(&e))?;
                if let Some(b) = replaced(old, &bytes) {
                    self.undo.doc(collection, k, b);
                }
            }
            Ok(())
        })();
        r.map_err(|e| self.fail(e))
    }

    /// Reads many documents of a collection, opening the table once.
    pub fn get_docs<T: DeserializeOwned>(&self, collection: Collection, keys: &[String]) -> Result<Vec<Option<T>>, StoreError> {
        let collection = collection.name();
        let t = self.open(DOCS)?;
        let mut out = Vec::with_capacity(keys.len());
        for k in keys {
            out.push(
                t.get((collection, k.as_str()))
                    .map_err(|e| self.err(e))?
                    .map(|v| decode("docs", v.value()))
                    .transpose()?,
            );
        }
        Ok(out)
    }

    /// Writes a numbered run: item `i` of `items` at `(batch, i)`, opening the table once (in key order,
    /// so each B-tree page is touched once).
    pub fn put_items<T: Serialize>(&mut self, batch: u64, items: &[T]) -> Result<(), StoreError> {
        let r = (|| {
            let err = |e: &dyn std::fmt::Display| db_err(&self.path, e);
            let mut t = self.txn.open_table(ITEMS).map_err(|e| err(&e))?;
            let mut buf = Vec::with_capacity(256);
            for (i, v) in items.iter().enumerate() {
                buf.clear();
                serde_json::to_writer(&mut buf, v).map_err(|e| err(&e))?;
                let i = u32::try_from(i).map_err(|e| err(&e))?;
                let old = t.insert((batch, i), buf.as_slice()).map_err(|e| err(&e))?;
                if let Some(b) = replaced(old, &buf) {
                    self.undo.item(batch, i, b);
                }
            }
            Ok(())
        })();
        r.map_err(|e| self.fail(e))
    }

    /// Rewrites one item of a run.
    pub fn put_item<T: Serialize>(&mut self, batch: u64, index: u32, value: &T) -> Result<(), StoreError> {
        self.put_bytes(ITEMS, (batch, index), &encode(value), |u, b| u.item(batch, index, b))
    }

    /// Removes a document.
    pub fn remove_doc(&mut self, collection: Collection, key: &str) -> Result<(), StoreError> {
        let collection = collection.name();
        let r = self
            .open(DOCS)?
            .remove((collection, key))
            .map(|old| old.map(|g| g.value().to_vec()))
            .map_err(|e| self.err(e));
        match r {
            Ok(old) => {
                if old.is_some() {
                    self.undo.doc(collection, key, old);
                }
                Ok(())
            }
            Err(e) => Err(self.fail(e)),
        }
    }
}

impl ReadTx {
    /// Folds the whole log again and compares the result with the stored views (region states,
    /// warnings, latest forecasts, directives). Returns the differences, empty when they agree.
    pub fn verify_views(&self) -> Result<Vec<String>, StoreError> {
        use std::collections::BTreeMap;
        let mut states: BTreeMap<u32, RegionState> = BTreeMap::new();
        let mut latest: BTreeMap<u32, (DateTime<chrono::FixedOffset>, String)> = BTreeMap::new();
        let mut directives: BTreeMap<String, bool> = BTreeMap::new();
        let mut after = 0;
        loop {
            let batch = self.events_after(after, 10_000)?;
            let Some(last) = batch.last() else { break };
            after = last.seq;
            for r in batch {
                match r.body {
                    RecordBody::Warning { event, .. } => states.entry(event.region.as_u32()).or_default().apply(&event),
                    RecordBody::ForecastAccepted { forecast, .. } => {
                        for region in forecast.series.keys() {
                            latest.insert(region.as_u32(), (forecast.issued_at, forecast.id.clone()));
                        }
                    }
                    RecordBody::DirectiveIssued { directive } => {
                        directives.insert(directive.id, true);
                    }
                    RecordBody::DirectiveLifted { id } => {
                        directives.insert(id, false);
                    }
                    _ => {}
                }
            }
        }
        let mut diffs = Vec::new();
        let stored: BTreeMap<u32, RegionState> = self.region_states()?.into_iter().map(|(c, s)| (c.as_u32(), s)).collect();
        if stored != states {
            for (k, v) in &states {
                if stored.get(k) != Some(v) {
                    diffs.push(format!("region {k}: the stored state differs from the log"));
                }
            }
            for k in stored.keys().filter(|k| !states.contains_key(k)) {
                diffs.push(format!("region {k}: a stored state with no events"));
            }
        }
        for s in states.values() {
            if let Some(w) = &s.warning
                && self.warning(&w.id)?.as_ref() != Some(w)
            {
                diffs.push(format!("warning {}: the stored view differs from the log", w.id));
            }
        }
        for (region, (_, id)) in &latest {
            let t = self.open(LATEST)?;
            let stored = t.get(*region).map_err(|e| self.err(e))?.map(|v| v.value().to_string());
            if stored.as_deref() != Some(id.as_str()) {
                diffs.push(format!("region {region}: latest forecast {stored:?} but the log says {id}"));
            }
        }
        for (id, active) in &directives {
            if self.directive(id)?.map(|d| d.active) != Some(*active) {
                diffs.push(format!("directive {id}: the stored view differs from the log"));
            }
        }
        Ok(diffs)
    }
}

/// Reads offered by both a snapshot ([`ReadTx`]) and a write transaction ([`Tx`]), for code that runs
/// in either (an acknowledgement decides inside its write; a page reads a snapshot).
pub trait View {
    /// A document of a collection.
    fn doc<T: DeserializeOwned>(&self, collection: Collection, key: &str) -> Result<Option<T>, StoreError>;
    /// Documents by key prefix, after `after`, at most `limit`.
    fn docs<T: DeserializeOwned>(
        &self,
        collection: Collection,
        prefix: &str,
        after: &str,
        limit: usize,
    ) -> Result<Vec<(String, T)>, StoreError>;
    /// An item of a numbered run.
    fn item<T: DeserializeOwned>(&self, batch: u64, index: u32) -> Result<Option<T>, StoreError>;
    /// Items `from..` of a run.
    fn items<T: DeserializeOwned>(&self, batch: u64, from: u32, limit: usize) -> Result<Vec<(u32, T)>, StoreError>;
    /// A warning by id.
    fn warning(&self, id: &str) -> Result<Option<Warning>, StoreError>;
    /// A region's lifecycle state.
    fn region_state(&self, region: RegionCode) -> Result<RegionState, StoreError>;
    /// A counter (0 when never counted).
    fn counter(&self, name: &str) -> Result<u64, StoreError>;
}

macro_rules! view {
    ($t:ty) => {
        impl View for $t {
            fn doc<T: DeserializeOwned>(&self, collection: Collection, key: &str) -> Result<Option<T>, StoreError> {
                <$t>::doc(self, collection, key)
            }
            fn docs<T: DeserializeOwned>(
                &self,
                collection: Collection,
                prefix: &str,
                after: &str,
                limit: usize,
            ) -> Result<Vec<(String, T)>, StoreError> {
                <$t>::docs(self, collection, prefix, after, limit)
            }
            fn item<T: DeserializeOwned>(&self, batch: u64, index: u32) -> Result<Option<T>, StoreError> {
                <$t>::item(self, batch, index)
            }
            fn items<T: DeserializeOwned>(&self, batch: u64, from: u32, limit: usize) -> Result<Vec<(u32, T)>, StoreError> {
                <$t>::items(self, batch, from, limit)
            }
            fn warning(&self, id: &str) -> Result<Option<Warning>, StoreError> {
                <$t>::warning(self, id)
            }
            fn region_state(&self, region: RegionCode) -> Result<RegionState, StoreError> {
                <$t>::region_state(self, region)
            }
            fn counter(&self, name: &str) -> Result<u64, StoreError> {
                <$t>::counter(self, name)
            }
        }
    };
}

view!(ReadTx);
view!(Tx<'_>);
