//! The store's port: what a storage backend offers the typed API of [`super::Tx`] and [`super::ReadTx`].
//!
//! A backend keeps a fixed set of [`Table`]s, each with one key shape ([`Key`]) and byte values (the
//! typed API encodes them; JSON for documents). It offers snapshots to read ([`ReadPort`]), one write
//! transaction per batch of jobs ([`WritePort`]) in which each job can be taken back on its own
//! (`begin_job` / `end_job`), and a way back into service after a storage fault. The embedded redb file
//! ([`super::embedded`]) is one backend; a database server is another, written against this port alone:
//! no domain code and no typed method changes with the backend.
//!
//! Order: every scan visits keys in ascending order of the key's parts (numbers numerically, text by
//! its bytes), or descending with `rev`.

use super::StoreError;

/// The tables every backend keeps.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum Table {
    /// name → bytes (the format version).
    Meta,
    /// [`Key::Seq`] → a log record.
    Events,
    /// [`Key::Name`] (forecast id) → a forecast.
    Forecasts,
    /// [`Key::Region`] → the id of its current forecast (UTF-8).
    Latest,
    /// [`Key::Seq`] → a consultation.
    Consultations,
    /// [`Key::Region`] → its lifecycle state.
    RegionStates,
    /// [`Key::Name`] (warning id) → a warning.
    Warnings,
    /// [`Key::WarningEvent`] → nothing (the history index).
    WarningEvents,
    /// [`Key::Name`] (directive id) → a directive.
    Directives,
    /// [`Key::Name`] → a counter (8 bytes, little-endian).
    Counters,
    /// [`Key::Doc`] → a document of a collection.
    Docs,
    /// [`Key::Item`] → an item of a numbered run.
    Items,
}

impl Table {
    /// Every table.
    pub(crate) const ALL: [Table; 12] = [
        Table::Meta,
        Table::Events,
        Table::Forecasts,
        Table::Latest,
        Table::Consultations,
        Table::RegionStates,
        Table::Warnings,
        Table::WarningEvents,
        Table::Directives,
        Table::Counters,
        Table::Docs,
        Table::Items,
    ];

    /// The table's name (in messages, and as each backend names it).
    pub(crate) fn name(self) -> &'static str {
        match self {
            Table::Meta => "meta",
            Table::Events => "events",
            Table::Forecasts => "forecasts",
            Table::Latest => "latest_forecast",
            Table::Consultations => "consultations",
            Table::RegionStates => "region_states",
            Table::Warnings => "warnings",
            Table::WarningEvents => "warning_events",
            Table::Directives => "directives",
            Table::Counters => "counters",
            Table::Docs => "docs",
            Table::Items => "items",
        }
    }
}

/// A key; each table has one shape (see [`Table`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Key<'a> {
    Seq(u64),
    Region(u32),
    Name(&'a str),
    /// (warning id, seq).
    WarningEvent(&'a str, u64),
    /// (collection, key).
    Doc(&'a str, &'a str),
    /// (batch, index).
    Item(u64, u32),
}

/// A key, owned (copies between stores).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) enum OwnedKey {
    Seq(u64),
    Region(u32),
    Name(String),
    WarningEvent(String, u64),
    Doc(String, String),
    Item(u64, u32),
}

impl OwnedKey {
    pub(crate) fn of(key: Key<'_>) -> OwnedKey {
        match key {
            Key::Seq(s) => OwnedKey::Seq(s),
            Key::Region(r) => OwnedKey::Region(r),
            Key::Name(n) => OwnedKey::Name(n.to_string()),
            Key::WarningEvent(id, s) => OwnedKey::WarningEvent(id.to_string(), s),
            Key::Doc(c, k) => OwnedKey::Doc(c.to_string(), k.to_string()),
            Key::Item(b, i) => OwnedKey::Item(b, i),
        }
    }

    pub(crate) fn key(&self) -> Key<'_> {
        match self {
            OwnedKey::Seq(s) => Key::Seq(*s),
            OwnedKey::Region(r) => Key::Region(*r),
            OwnedKey::Name(n) => Key::Name(n),
            OwnedKey::WarningEvent(id, s) => Key::WarningEvent(id, *s),
            OwnedKey::Doc(c, k) => Key::Doc(c, k),
            OwnedKey::Item(b, i) => Key::Item(*b, *i),
        }
    }
}

/// Which rows a scan visits.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Scan<'a> {
    /// Every row of the table, descending when `rev`.
    All { rev: bool },
    /// Rows with a sequence number ≥ `from`.
    SeqFrom(u64),
    /// The history index of one warning.
    Warning(&'a str),
    /// Documents of `collection` whose key starts with `prefix` and is greater than `after`
    /// (no bound when empty).
    Docs {
        collection: &'a str,
        prefix: &'a str,
        after: &'a str,
    },
    /// Items `from..` of one run.
    Items { batch: u64, from: u32 },
}

/// What a scan's visitor says: go on, or stop here.
pub(crate) type Visit<'f> = &'f mut dyn FnMut(Key<'_>, &[u8]) -> Result<bool, StoreError>;

/// Fills the value of row `i` into the buffer and returns its key (bulk writes).
pub(crate) type Row<'f, 'k> = &'f mut dyn FnMut(usize, &mut Vec<u8>) -> Result<Key<'k>, StoreError>;

/// Reads, in a snapshot or inside the write transaction.
pub(crate) trait ReadPort {
    /// The value at `key`.
    fn get(&self, table: Table, key: Key<'_>) -> Result<Option<Vec<u8>>, StoreError>;
    /// The values at `keys`, in their order (one pass where the backend can).
    fn get_many(&self, table: Table, keys: &[Key<'_>]) -> Result<Vec<Option<Vec<u8>>>, StoreError> {
        keys.iter().map(|k| self.get(table, *k)).collect()
    }
    /// Visits the rows of `scan` in key order, at most `limit`, while `visit` returns true.
    fn scan(&self, table: Table, scan: Scan<'_>, limit: usize, visit: Visit<'_>) -> Result<(), StoreError>;
    /// Number of rows.
    fn len(&self, table: Table) -> Result<u64, StoreError>;
}

/// Writes of one batch's transaction. Every write of a job is taken back when the job ends with
/// `ok == false`; a storage error makes the caller abort the whole batch.
pub(crate) trait WritePort: ReadPort {
    /// Writes `value` at `key`.
    fn put(&mut self, table: Table, key: Key<'_>, value: &[u8]) -> Result<(), StoreError>;
    /// Writes `n` rows; `row(i, buf)` fills `buf` with the value of row `i` and returns its key. Rows
    /// come in the order asked for: callers pass them in key order where they can.
    fn put_many<'k>(&mut self, table: Table, n: usize, row: Row<'_, 'k>) -> Result<(), StoreError>;
    /// Removes `key` (nothing when absent).
    fn remove(&mut self, table: Table, key: Key<'_>) -> Result<(), StoreError>;
    /// Reads `keys` ahead for the jobs of the batch, where the backend gains by it (a database server:
    /// one round trip); the default does nothing.
    fn prefetch(&mut self, _table: Table, _keys: &[Key<'_>]) -> Result<(), StoreError> {
        Ok(())
    }
    /// A job starts: its writes can be taken back from here on.
    fn begin_job(&mut self) -> Result<(), StoreError>;
    /// The job ended; when `ok` is false every write it made is taken back.
    fn end_job(&mut self, ok: bool) -> Result<(), StoreError>;
    /// What the running job's undo costs: (entries, heap bytes) — for the store's own tests.
    #[cfg(test)]
    fn undo_cost(&self) -> (usize, usize) {
        (0, 0)
    }
}

/// Why a batch could not be committed (when the transaction could not even begin, `run` was not
/// called and its jobs are refused unrun).
#[derive(Debug)]
pub(crate) struct BatchFailed {
    pub reason: String,
}

/// A storage backend: snapshots, batches, and the way back after a fault.
pub(crate) trait Backend: Send + Sync {
    /// A read snapshot; `None` while the backend is out of service (being reopened).
    fn snapshot(&self) -> Result<Option<Box<dyn ReadPort>>, StoreError>;
    /// Begins a transaction, lets `run` do the batch's jobs in it, and commits when `run` returns
    /// `Ok` (nothing is committed otherwise): durably when it says `true`; with `false` (the batch is
    /// durable in the journal already) a backend may commit without its own fsync.
    fn batch(&self, run: &mut dyn FnMut(&mut dyn WritePort) -> Result<bool, String>) -> Result<(), BatchFailed>;
    /// After a failed batch: `Ok` when the backend still takes commits (the batch alone was at
    /// fault), else why not (the backend then goes out of service until [`Backend::recover`] works).
    fn still_writable(&self) -> Result<(), String>;
    /// Tries to put the backend back in service (reopen, reconnect); `Ok` once a commit works.
    fn recover(&self) -> Result<(), String>;
}
