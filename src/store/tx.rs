//! The typed API over a transaction: domain types in, domain types out, over any backend's port.

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::StoreError;
use super::keys::{Collection, DRILL_LANE, lane_key};
use super::port::{Key, ReadPort, Scan, Table, WritePort};
use super::record::{ConsultationRecord, DirectiveRecord, Record, RecordBody};
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

/// A value encoded for the store ahead of its write ([`Tx::put_encoded_docs`]): the encoding, the
/// costly part of a bulk write, can then run off the writer thread.
#[derive(Debug, Clone)]
pub struct Encoded(Vec<u8>);

impl Encoded {
    /// `v` as the store keeps it.
    pub fn of<T: Serialize>(v: &T) -> Encoded {
        Encoded(encode(v))
    }

    /// Its size in bytes.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether it is empty (never, for a value).
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// Decodes every row a scan visits.
fn collect<T: DeserializeOwned>(port: &dyn ReadPort, table: Table, scan: Scan<'_>, limit: usize) -> Result<Vec<T>, StoreError> {
    let mut out = Vec::new();
    port.scan(table, scan, limit, &mut |_, v| {
        out.push(decode(table.name(), v)?);
        Ok(true)
    })?;
    Ok(out)
}

/// Getters shared by reads and writes, over the port.
macro_rules! getters {
    () => {
        /// A forecast by id.
        pub fn forecast(&self, id: &str) -> Result<Option<Forecast>, StoreError> {
            self.port()
                .get(Table::Forecasts, Key::Name(id))?
                .map(|v| decode("forecasts", &v))
                .transpose()
        }

        /// The latest forecast (by issue time) that covers the region.
        pub fn latest_forecast(&self, region: RegionCode) -> Result<Option<Forecast>, StoreError> {
            match self.port().get(Table::Latest, Key::Region(region.as_u32()))? {
                Some(id) => self.forecast(&String::from_utf8_lossy(&id)),
                None => Ok(None),
            }
        }

        /// Regions that have a forecast.
        pub fn forecast_regions(&self) -> Result<Vec<RegionCode>, StoreError> {
            let mut out = Vec::new();
            self.port()
                .scan(Table::Latest, Scan::All { rev: false }, usize::MAX, &mut |k, _| {
                    if let Key::Region(r) = k
                        && let Ok(c) = RegionCode::from_u32(r)
                    {
                        out.push(c);
                    }
                    Ok(true)
                })?;
            Ok(out)
        }

        /// A region's lifecycle state (its real warnings).
        pub fn region_state(&self, region: RegionCode) -> Result<RegionState, StoreError> {
            self.lane_state(region, false)
        }

        /// A region's lifecycle state of real warnings, or of drills (演练) with `exercise`.
        pub fn lane_state(&self, region: RegionCode, exercise: bool) -> Result<RegionState, StoreError> {
            let mut state: RegionState = self
                .port()
                .get(Table::RegionStates, Key::Region(lane_key(region, exercise)))?
                .map(|v| decode("region_states", &v))
                .transpose()?
                .unwrap_or_default();
            state.exercise = exercise;
            Ok(state)
        }

        /// Every region's drill state (演练), by region.
        pub fn drill_states(&self) -> Result<Vec<(RegionCode, RegionState)>, StoreError> {
            Ok(self.lane_states()?.into_iter().filter(|(_, s)| s.exercise).collect())
        }

        /// Every region's states of both lanes in one scan: the real ones by region, then the drills.
        pub fn lane_states(&self) -> Result<Vec<(RegionCode, RegionState)>, StoreError> {
            let mut out = Vec::new();
            self.port()
                .scan(Table::RegionStates, Scan::All { rev: false }, usize::MAX, &mut |k, v| {
                    if let Key::Region(r) = k {
                        let exercise = r >= DRILL_LANE;
                        if let Ok(c) = RegionCode::from_u32(if exercise { r - DRILL_LANE } else { r }) {
                            let mut s: RegionState = decode("region_states", v)?;
                            s.exercise = exercise;
                            out.push((c, s));
                        }
                    }
                    Ok(true)
                })?;
            Ok(out)
        }

        /// Every region's lifecycle state of real warnings (drills: [`Self::drill_states`]).
        pub fn region_states(&self) -> Result<Vec<(RegionCode, RegionState)>, StoreError> {
            let mut out = Vec::new();
            self.port()
                .scan(Table::RegionStates, Scan::All { rev: false }, usize::MAX, &mut |k, v| {
                    if let Key::Region(r) = k
                        && let Ok(c) = RegionCode::from_u32(r)
                    {
                        out.push((c, decode("region_states", v)?));
                    }
                    Ok(true)
                })?;
            Ok(out)
        }

        /// A warning by id.
        pub fn warning(&self, id: &str) -> Result<Option<Warning>, StoreError> {
            self.port()
                .get(Table::Warnings, Key::Name(id))?
                .map(|v| decode("warnings", &v))
                .transpose()
        }

        /// Every warning, by id.
        pub fn warnings(&self) -> Result<Vec<Warning>, StoreError> {
            collect(self.port(), Table::Warnings, Scan::All { rev: false }, usize::MAX)
        }

        /// The log records of one warning, in order.
        pub fn warning_history(&self, id: &str) -> Result<Vec<Record>, StoreError> {
            let mut seqs = Vec::new();
            self.port()
                .scan(Table::WarningEvents, Scan::Warning(id), usize::MAX, &mut |k, _| {
                    if let Key::WarningEvent(_, s) = k {
                        seqs.push(s);
                    }
                    Ok(true)
                })?;
            let mut out = Vec::new();
            for s in seqs {
                if let Some(v) = self.port().get(Table::Events, Key::Seq(s))? {
                    out.push(decode("events", &v)?);
                }
            }
            Ok(out)
        }

        /// Log records with seq > `after`, at most `limit`.
        pub fn events_after(&self, after: u64, limit: usize) -> Result<Vec<Record>, StoreError> {
            collect(self.port(), Table::Events, Scan::SeqFrom(after.saturating_add(1)), limit)
        }

        /// The last seq written (0 for an empty log).
        pub fn last_seq(&self) -> Result<u64, StoreError> {
            let mut last = 0;
            self.port().scan(Table::Events, Scan::All { rev: true }, 1, &mut |k, _| {
                if let Key::Seq(s) = k {
                    last = s;
                }
                Ok(false)
            })?;
            Ok(last)
        }

        /// Number of log records.
        pub fn event_count(&self) -> Result<u64, StoreError> {
            self.port().len(Table::Events)
        }

        /// The latest consultations, newest first.
        pub fn consultations(&self, limit: usize) -> Result<Vec<ConsultationRecord>, StoreError> {
            collect(self.port(), Table::Consultations, Scan::All { rev: true }, limit)
        }

        /// A consultation by seq.
        pub fn consultation(&self, seq: u64) -> Result<Option<ConsultationRecord>, StoreError> {
            self.port()
                .get(Table::Consultations, Key::Seq(seq))?
                .map(|v| decode("consultations", &v))
                .transpose()
        }

        /// A directive by id.
        pub fn directive(&self, id: &str) -> Result<Option<DirectiveRecord>, StoreError> {
            self.port()
                .get(Table::Directives, Key::Name(id))?
                .map(|v| decode("directives", &v))
                .transpose()
        }

        /// Every directive.
        pub fn directives(&self) -> Result<Vec<DirectiveRecord>, StoreError> {
            collect(self.port(), Table::Directives, Scan::All { rev: false }, usize::MAX)
        }

        /// A counter (0 when never counted).
        pub fn counter(&self, name: &str) -> Result<u64, StoreError> {
            Ok(self
                .port()
                .get(Table::Counters, Key::Name(name))?
                .map_or(0, |v| counter_value(&v)))
        }

        /// Every counter.
        pub fn counters(&self) -> Result<Vec<(String, u64)>, StoreError> {
            let mut out = Vec::new();
            self.port()
                .scan(Table::Counters, Scan::All { rev: false }, usize::MAX, &mut |k, v| {
                    if let Key::Name(n) = k {
                        out.push((n.to_string(), counter_value(v)));
                    }
                    Ok(true)
                })?;
            Ok(out)
        }

        /// A document of a collection.
        pub fn doc<T: DeserializeOwned>(&self, collection: Collection, key: &str) -> Result<Option<T>, StoreError> {
            self.port()
                .get(Table::Docs, Key::Doc(collection.name(), key))?
                .map(|v| decode("docs", &v))
                .transpose()
        }

        /// Keys (only) of a collection that start with `prefix`, in order, after `after`, at most `limit`.
        pub fn doc_keys(&self, collection: Collection, prefix: &str, after: &str, limit: usize) -> Result<Vec<String>, StoreError> {
            let mut out = Vec::new();
            let scan = Scan::Docs {
                collection: collection.name(),
                prefix,
                after,
            };
            self.port().scan(Table::Docs, scan, limit, &mut |k, _| {
                if let Key::Doc(_, key) = k {
                    out.push(key.to_string());
                }
                Ok(true)
            })?;
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
            let mut out = Vec::new();
            let scan = Scan::Docs {
                collection: collection.name(),
                prefix,
                after,
            };
            self.port().scan(Table::Docs, scan, limit, &mut |k, v| {
                if let Key::Doc(_, key) = k {
                    out.push((key.to_string(), decode("docs", v)?));
                }
                Ok(true)
            })?;
            Ok(out)
        }

        /// Reads many documents of a collection in one pass.
        pub fn get_docs<T: DeserializeOwned>(&self, collection: Collection, keys: &[String]) -> Result<Vec<Option<T>>, StoreError> {
            let collection = collection.name();
            let keys: Vec<Key<'_>> = keys.iter().map(|k| Key::Doc(collection, k)).collect();
            self.port()
                .get_many(Table::Docs, &keys)?
                .into_iter()
                .map(|v| v.map(|v| decode("docs", &v)).transpose())
                .collect()
        }

        /// An item of a numbered run.
        pub fn item<T: DeserializeOwned>(&self, batch: u64, index: u32) -> Result<Option<T>, StoreError> {
            self.port()
                .get(Table::Items, Key::Item(batch, index))?
                .map(|v| decode("items", &v))
                .transpose()
        }

        /// Items `from..` of a run, in order, at most `limit`.
        pub fn items<T: DeserializeOwned>(&self, batch: u64, from: u32, limit: usize) -> Result<Vec<(u32, T)>, StoreError> {
            let mut out = Vec::new();
            self.port()
                .scan(Table::Items, Scan::Items { batch, from }, limit, &mut |k, v| {
                    if let Key::Item(_, i) = k {
                        out.push((i, decode("items", v)?));
                    }
                    Ok(true)
                })?;
            Ok(out)
        }
    };
}

/// A counter's value (8 bytes, little-endian; 0 when malformed).
fn counter_value(v: &[u8]) -> u64 {
    <[u8; 8]>::try_from(v).map_or(0, u64::from_le_bytes)
}

/// A read snapshot.
pub struct ReadTx {
    port: Box<dyn ReadPort>,
}

impl ReadTx {
    pub(crate) fn new(port: Box<dyn ReadPort>) -> Self {
        ReadTx { port }
    }

    pub(crate) fn port(&self) -> &dyn ReadPort {
        self.port.as_ref()
    }

    getters!();
}

/// A write transaction shared by one batch of jobs.
pub struct Tx<'a> {
    port: &'a mut dyn WritePort,
    failed: Option<String>,
    next_seq: Option<u64>,
    /// `next_seq` when the running job started.
    job_next_seq: Option<u64>,
    /// What a job looked up that later jobs may use again ([`Tx::take_memo`]); the writer carries it
    /// from a batch that committed to the next.
    pub(crate) memo: Option<Box<dyn std::any::Any>>,
}

impl<'a> Tx<'a> {
    pub(crate) fn new(port: &'a mut dyn WritePort) -> Self {
        Tx {
            port,
            failed: None,
            next_seq: None,
            job_next_seq: None,
            memo: None,
        }
    }

    /// What an earlier job kept with [`Tx::keep_memo`], if it is of this type (taken: give it back
    /// with what was added): a job of this batch, or of an earlier batch that committed (the writer
    /// carries it over). A job that fails drops it, as its writes are taken back and the memo may
    /// reflect them; a batch that fails leaves none to the next. The memo's owner decides when it
    /// still holds (the assignment resolver keys it by the assignment epoch).
    pub fn take_memo<T: 'static>(&mut self) -> Option<T> {
        self.memo.take()?.downcast::<T>().ok().map(|b| *b)
    }

    /// Keeps `memo` for the later jobs (replacing any other).
    pub fn keep_memo<T: 'static>(&mut self, memo: T) {
        self.memo = Some(Box::new(memo));
    }

    pub(crate) fn port(&self) -> &dyn ReadPort {
        &*self.port
    }

    /// Starts a job: its writes can be taken back from here on.
    pub(crate) fn begin_job(&mut self) {
        self.job_next_seq = self.next_seq;
        if self.failed.is_none()
            && let Err(e) = self.port.begin_job()
        {
            self.failed = Some(format!("starting a job: {e}"));
        }
    }

    /// Ends a job. When it failed (`ok` false), the backend takes its writes back, so that the next
    /// job of the batch, and the commit, see the tables as they were before it. A storage error while
    /// undoing aborts the batch.
    pub(crate) fn end_job(&mut self, ok: bool) {
        if self.failed.is_some() {
            // The batch aborts anyway.
            return;
        }
        if let Err(e) = self.port.end_job(ok) {
            self.failed.get_or_insert_with(|| format!("undoing a failed job: {e}"));
        }
        if !ok {
            self.next_seq = self.job_next_seq;
            self.memo = None;
        }
    }

    /// Reads these items ahead, for the jobs of the batch (a hint: a backend that gains nothing by it
    /// ignores it; an error here is left to the job that reads the item).
    pub(crate) fn prefetch_items(&mut self, items: &[(u64, u32)]) {
        if items.is_empty() || self.failed.is_some() {
            return;
        }
        let keys: Vec<Key<'_>> = items.iter().map(|&(b, i)| Key::Item(b, i)).collect();
        if let Err(e) = self.port.prefetch(Table::Items, &keys) {
            tracing::debug!(error = %e, "reading ahead failed");
        }
    }

    /// What the running job's undo costs in the backend: (entries, heap bytes).
    #[cfg(test)]
    pub(super) fn undo_cost(&self) -> (usize, usize) {
        self.port.undo_cost()
    }

    /// Whether every write went through; a failed write aborts the batch.
    pub(crate) fn finish(self) -> Result<(), String> {
        self.failed.map_or(Ok(()), Err)
    }

    /// Records a storage error: the batch aborts.
    fn fail(&mut self, e: StoreError) -> StoreError {
        self.failed.get_or_insert_with(|| e.to_string());
        e
    }

    fn put(&mut self, table: Table, key: Key<'_>, value: &[u8]) -> Result<(), StoreError> {
        let r = self.port.put(table, key, value);
        r.map_err(|e| self.fail(e))
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
        self.put(Table::Events, Key::Seq(seq), &encode(&record))?;
        self.bump(&format!("events_{}", record.body.kind()), 1)?;
        self.apply_views(&record)?;
        Ok(record)
    }

    fn apply_views(&mut self, record: &Record) -> Result<(), StoreError> {
        match &record.body {
            RecordBody::ForecastAccepted { forecast, .. } => {
                self.put(Table::Forecasts, Key::Name(&forecast.id), &encode(forecast))?;
                // The current forecast of a region is the latest received (every one recorded was
                // valid, its issue time bounded when it arrived). A drill's forecast never is.
                for region in forecast.series.keys().filter(|_| !forecast.exercise) {
                    self.put(Table::Latest, Key::Region(region.as_u32()), forecast.id.as_bytes())?;
                }
            }
            RecordBody::ConsultationHeld { consultation } => {
                self.put(Table::Consultations, Key::Seq(record.seq), &encode(consultation))?;
            }
            RecordBody::Warning { warning_id, event } => {
                let mut state = self.lane_state(event.region, event.exercise)?;
                state.apply(event);
                self.put(
                    Table::RegionStates,
                    Key::Region(lane_key(event.region, event.exercise)),
                    &encode(&state),
                )?;
                if let Some(w) = &state.warning {
                    self.put(Table::Warnings, Key::Name(&w.id), &encode(w))?;
                }
                self.put(Table::WarningEvents, Key::WarningEvent(warning_id, record.seq), &[])?;
            }
            RecordBody::DirectiveIssued { directive } => {
                self.put(Table::Directives, Key::Name(&directive.id), &encode(directive))?;
            }
            RecordBody::DirectiveLifted { id, doc_no } => {
                if let Some(mut d) = self.directive(id)? {
                    d.active = false;
                    if let Some(u) = d.upstream.as_mut() {
                        u.lift_doc_no.clone_from(doc_no);
                        u.lifted_at = Some(record.recorded_at);
                    }
                    self.put(Table::Directives, Key::Name(id), &encode(&d))?;
                }
            }
            RecordBody::ForecastRejected { .. } | RecordBody::PlaybooksReloaded { .. } | RecordBody::Other(_) => {}
        }
        Ok(())
    }

    /// Writes a row of the meta table (the format version, the store's history).
    pub(crate) fn put_meta(&mut self, name: &str, value: &[u8]) -> Result<(), StoreError> {
        self.put(Table::Meta, Key::Name(name), value)
    }

    /// Removes a row of the meta table (the store's tests: a store of an older format).
    #[cfg(test)]
    pub(crate) fn remove_meta(&mut self, name: &str) -> Result<(), StoreError> {
        let r = self.port.remove(Table::Meta, Key::Name(name));
        r.map_err(|e| self.fail(e))
    }

    /// Adds to a counter.
    pub fn bump(&mut self, name: &str, by: u64) -> Result<(), StoreError> {
        let new = self.counter(name)? + by;
        self.put(Table::Counters, Key::Name(name), &new.to_le_bytes())
    }

    /// Writes a document of a collection.
    pub fn put_doc<T: Serialize>(&mut self, collection: Collection, key: &str, value: &T) -> Result<(), StoreError> {
        self.put(Table::Docs, Key::Doc(collection.name(), key), &encode(value))
    }

    /// Writes many documents of a collection in one pass (bulk paths: assignments, lists).
    pub fn put_docs<T: Serialize>(&mut self, collection: Collection, items: &[(String, T)]) -> Result<(), StoreError> {
        let collection = collection.name();
        // In key order: B-tree inserts in order touch each page once (sequential keys load several
        // times faster than random ones here).
        let mut order: Vec<usize> = (0..items.len()).collect();
        order.sort_unstable_by(|a, b| items[*a].0.cmp(&items[*b].0));
        let r = self.port.put_many(Table::Docs, items.len(), &mut |i, buf| {
            let (k, v) = &items[order[i]];
            serde_json::to_writer(&mut *buf, v).map_err(|e| StoreError::Refused(e.to_string()))?;
            Ok(Key::Doc(collection, k))
        });
        r.map_err(|e| self.fail(e))
    }

    /// Writes many documents encoded beforehand ([`Encoded`], e.g. on another thread), in key order.
    pub fn put_encoded_docs(&mut self, collection: Collection, items: &[(String, Encoded)]) -> Result<(), StoreError> {
        let collection = collection.name();
        let mut order: Vec<usize> = (0..items.len()).collect();
        order.sort_unstable_by(|a, b| items[*a].0.cmp(&items[*b].0));
        let r = self.port.put_many(Table::Docs, items.len(), &mut |i, buf| {
            let (k, v) = &items[order[i]];
            buf.extend_from_slice(&v.0);
            Ok(Key::Doc(collection, k))
        });
        r.map_err(|e| self.fail(e))
    }

    /// Whether each of `keys` names a document of the collection (one pass; nothing decoded).
    pub fn docs_exist(&self, collection: Collection, keys: &[String]) -> Result<Vec<bool>, StoreError> {
        let collection = collection.name();
        let keys: Vec<Key<'_>> = keys.iter().map(|k| Key::Doc(collection, k)).collect();
        Ok(self.port.get_many(Table::Docs, &keys)?.iter().map(Option::is_some).collect())
    }

    /// Writes a numbered run: item `i` of `items` at `(batch, i)`, in one pass (in key order, so each
    /// B-tree page is touched once).
    pub fn put_items<T: Serialize>(&mut self, batch: u64, items: &[T]) -> Result<(), StoreError> {
        if u32::try_from(items.len()).is_err() {
            return Err(self.fail(StoreError::Refused(format!("a run of {} items is too long", items.len()))));
        }
        let r = self.port.put_many(Table::Items, items.len(), &mut |i, buf| {
            serde_json::to_writer(&mut *buf, &items[i]).map_err(|e| StoreError::Refused(e.to_string()))?;
            Ok(Key::Item(batch, i as u32))
        });
        r.map_err(|e| self.fail(e))
    }

    /// Rewrites one item of a run.
    pub fn put_item<T: Serialize>(&mut self, batch: u64, index: u32, value: &T) -> Result<(), StoreError> {
        self.put(Table::Items, Key::Item(batch, index), &encode(value))
    }

    /// Copies every row of `table` from `from` (another store's snapshot), in key order.
    pub(crate) fn copy_table(&mut self, table: Table, from: &dyn ReadPort) -> Result<u64, StoreError> {
        let mut rows: Vec<(super::port::OwnedKey, Vec<u8>)> = Vec::new();
        from.scan(table, Scan::All { rev: false }, usize::MAX, &mut |k, v| {
            rows.push((super::port::OwnedKey::of(k), v.to_vec()));
            Ok(true)
        })?;
        let n = rows.len();
        let r = self.port.put_many(table, n, &mut |i, buf| {
            buf.extend_from_slice(&rows[i].1);
            Ok(rows[i].0.key())
        });
        r.map_err(|e| self.fail(e))?;
        Ok(n as u64)
    }

    /// Removes a document.
    pub fn remove_doc(&mut self, collection: Collection, key: &str) -> Result<(), StoreError> {
        let r = self.port.remove(Table::Docs, Key::Doc(collection.name(), key));
        r.map_err(|e| self.fail(e))
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
                    RecordBody::Warning { event, .. } => {
                        let state = states.entry(lane_key(event.region, event.exercise)).or_default();
                        state.exercise = event.exercise;
                        state.apply(&event)
                    }
                    RecordBody::ForecastAccepted { forecast, .. } => {
                        for region in forecast.series.keys().filter(|_| !forecast.exercise) {
                            latest.insert(region.as_u32(), (forecast.issued_at, forecast.id.clone()));
                        }
                    }
                    RecordBody::DirectiveIssued { directive } => {
                        directives.insert(directive.id, true);
                    }
                    RecordBody::DirectiveLifted { id, .. } => {
                        directives.insert(id, false);
                    }
                    _ => {}
                }
            }
        }
        let mut diffs = Vec::new();
        let stored: BTreeMap<u32, RegionState> = (self.region_states()?.into_iter().map(|(c, s)| (c.as_u32(), s)))
            .chain(self.drill_states()?.into_iter().map(|(c, s)| (lane_key(c, true), s)))
            .collect();
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
            let stored = self
                .port()
                .get(Table::Latest, Key::Region(*region))?
                .map(|v| String::from_utf8_lossy(&v).into_owned());
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
    /// Many documents of a collection by key, in one pass (on PostgreSQL one statement).
    fn get_docs<T: DeserializeOwned>(&self, collection: Collection, keys: &[String]) -> Result<Vec<Option<T>>, StoreError>;
    /// A warning by id.
    fn warning(&self, id: &str) -> Result<Option<Warning>, StoreError>;
    /// A region's lifecycle state (its real warnings).
    fn region_state(&self, region: RegionCode) -> Result<RegionState, StoreError>;
    /// A region's lifecycle state of real warnings, or of drills with `exercise`.
    fn lane_state(&self, region: RegionCode, exercise: bool) -> Result<RegionState, StoreError>;
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
            fn get_docs<T: DeserializeOwned>(&self, collection: Collection, keys: &[String]) -> Result<Vec<Option<T>>, StoreError> {
                <$t>::get_docs(self, collection, keys)
            }
            fn warning(&self, id: &str) -> Result<Option<Warning>, StoreError> {
                <$t>::warning(self, id)
            }
            fn region_state(&self, region: RegionCode) -> Result<RegionState, StoreError> {
                <$t>::region_state(self, region)
            }
            fn lane_state(&self, region: RegionCode, exercise: bool) -> Result<RegionState, StoreError> {
                <$t>::lane_state(self, region, exercise)
            }
            fn counter(&self, name: &str) -> Result<u64, StoreError> {
                <$t>::counter(self, name)
            }
        }
    };
}

view!(ReadTx);
view!(Tx<'_>);
