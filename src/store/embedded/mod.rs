//! The embedded backend: one redb file. The default store, and the only place that knows redb.
//!
//! - `tables.rs`: the table definitions (names, key and value types on disk);
//! - `undo.rs`: a job's undo log (redb cannot make a savepoint in a dirty transaction);
//! - this file: opening and checking the file, snapshots, batches, and reopening after a fault.
//!
//! When the disk fails (full, I/O error), redb refuses every later write until the file is opened
//! again, so [`Embedded::recover`] takes the database out of service (snapshots answer `None` for the
//! moment it takes), opens the file again and tries an empty commit.

mod tables;
mod undo;

use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use redb::{Database, ReadTransaction, ReadableDatabase, ReadableTable, ReadableTableMetadata, TableDefinition, WriteTransaction};

use self::tables::*;
use self::undo::UndoLog;
use super::port::{Backend, BatchFailed, Key, ReadPort, Row, Scan, Table, Visit, WritePort};
use super::{FORMAT_VERSION, StoreError, db_err, upgrade};

/// redb's page cache (its default is 1 GiB). 256 MiB holds the interior pages of a national list and
/// its assignments many times over, and keeps the daemon's resident memory well under 1 GiB.
const CACHE_BYTES: usize = 256 << 20;

/// Free space the store's file system must have before a failed store is put back in service, and
/// below which a failed write counts as a full disk. An empty commit rewrites only redb's header in
/// place, so it succeeds on a full disk and cannot decide alone.
const MIN_FREE_BYTES: u64 = 1 << 20;

/// The embedded store file.
pub(crate) struct Embedded {
    path: PathBuf,
    /// redb's page cache, in bytes.
    cache_bytes: usize,
    /// The database in service (none while it is reopened).
    db: RwLock<Option<Arc<Database>>>,
}

impl Embedded {
    /// Opens the file, or creates it where no file exists, and checks its format. A file that is
    /// empty or not a redb database is refused (never replaced by a new store). After a crash, redb
    /// repairs the file on open.
    pub(crate) fn open(path: &Path) -> Result<Embedded, StoreError> {
        Embedded::open_with_cache(path, CACHE_BYTES)
    }

    /// [`Embedded::open`] with a page cache of `cache_bytes` (redb holds a transaction's dirty pages
    /// within it too, writing the excess to the file before the commit).
    pub(crate) fn open_with_cache(path: &Path, cache_bytes: usize) -> Result<Embedded, StoreError> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(|e| db_err(path, e))?;
        }
        check_file(path)?;
        if !path.exists() {
            // A new store holds personal data and, on first start, keys: 0600 from its creation
            // (redb initialises an empty file as it does a missing one).
            crate::config::create_new_private(path).map_err(|e| db_err(path, e))?;
        }
        let db = open_db(path, cache_bytes)?;
        init(&db, path)?;
        Ok(Embedded {
            path: path.to_path_buf(),
            cache_bytes,
            db: RwLock::new(Some(Arc::new(db))),
        })
    }

    /// Opens a file that was checked elsewhere (a scratch copy), with redb's full integrity check.
    pub(crate) fn open_checked(copy: &Path, named: &Path) -> Result<Embedded, StoreError> {
        let db = Database::builder()
            .set_check_integrity_on_open(true)
            .set_cache_size(64 << 20)
            .open(copy)
            .map_err(|e| db_err(named, format!("redb's integrity check failed: {e}")))?;
        Ok(Embedded {
            path: copy.to_path_buf(),
            cache_bytes: 64 << 20,
            db: RwLock::new(Some(Arc::new(db))),
        })
    }

    /// Creates a new file for a copy (`path` must not exist), with every table.
    /// The file is 0600 from its creation: a copy holds the whole store (personal data, keys).
    pub(crate) fn create_new(path: &Path) -> Result<Embedded, StoreError> {
        crate::config::create_new_private(path).map_err(|e| db_err(path, e))?;
        let db = Database::builder()
            .set_cache_size(64 << 20)
            .create(path)
            .map_err(|e| db_err(path, e))?;
        create_tables(&db, path)?;
        Ok(Embedded {
            path: path.to_path_buf(),
            cache_bytes: 64 << 20,
            db: RwLock::new(Some(Arc::new(db))),
        })
    }

    fn current(&self) -> Option<Arc<Database>> {
        self.db.read().ok().and_then(|g| g.clone())
    }
}

impl Backend for Embedded {
    fn snapshot(&self) -> Result<Option<Box<dyn ReadPort>>, StoreError> {
        let Some(db) = self.current() else { return Ok(None) };
        let txn = db.begin_read().map_err(|e| db_err(&self.path, e))?;
        Ok(Some(Box::new(RedbRead {
            txn,
            path: self.path.clone(),
        })))
    }

    fn batch(&self, run: &mut dyn FnMut(&mut dyn WritePort) -> Result<bool, String>) -> Result<(), BatchFailed> {
        let failed = |reason: String| BatchFailed { reason };
        let Some(db) = self.current() else {
            return Err(failed("the store is not open".into()));
        };
        let mut txn = db.begin_write().map_err(|e| failed(e.to_string()))?;
        // Every commit saves redb's allocator state (two-phase commit): after a crash, opening loads it
        // instead of walking every tree of the file to rebuild it (restart after kill -9 with a national
        // list: see the README's benchmarks). `HAZEFLOW_STORE_QUICK_REPAIR=0` turns it off: cheaper
        // commits, a slower start after a crash.
        txn.set_quick_repair(quick_repair());
        let durable = {
            let mut port = RedbWrite {
                txn: &txn,
                path: &self.path,
                undo: UndoLog::default(),
            };
            run(&mut port).map_err(failed)?
        };
        if !durable {
            // Durable in the journal already: visible at once, written to the file by the next
            // durable commit (`journal.rs`).
            txn.set_durability(redb::Durability::None).map_err(|e| failed(e.to_string()))?;
        }
        txn.commit().map_err(|e| failed(e.to_string()))
    }

    fn still_writable(&self) -> Result<(), String> {
        disk_room(&self.path)?;
        let db = self.current().ok_or("the store is not open")?;
        let txn = db.begin_write().map_err(|e| e.to_string())?;
        txn.commit().map_err(|e| e.to_string())
    }

    fn recover(&self) -> Result<(), String> {
        // Out of service: new snapshots see none; wait for the reads in progress to let go (redb opens
        // a file once per process).
        let old = self.db.write().ok().and_then(|mut g| g.take());
        if let Some(old) = old {
            let mut old = old;
            let deadline = Instant::now() + Duration::from_secs(5);
            loop {
                match Arc::try_unwrap(old) {
                    Ok(d) => {
                        drop(d);
                        break;
                    }
                    Err(still) => {
                        if Instant::now() > deadline {
                            // A read holds on: keep the old one and try again later.
                            if let Ok(mut g) = self.db.write() {
                                *g = Some(still);
                            }
                            return Err("reads still hold the database; cannot reopen yet".into());
                        }
                        old = still;
                        std::thread::sleep(Duration::from_millis(5));
                    }
                }
            }
        }
        disk_room(&self.path)?;
        let fresh = Arc::new(open_db(&self.path, self.cache_bytes).map_err(|e| e.to_string())?);
        // Back in service for reads at once, even if writing still fails.
        if let Ok(mut g) = self.db.write() {
            *g = Some(fresh.clone());
        }
        let txn = fresh.begin_write().map_err(|e| e.to_string())?;
        txn.commit().map_err(|e| e.to_string())
    }
}

/// redb's first bytes (its header's magic number).
const REDB_MAGIC: [u8; 9] = [b'r', b'e', b'd', b'b', 0x1A, 0x0A, 0xA9, 0x0D, 0x0A];

/// Refuses an existing file that cannot be a store: empty, or not a redb file. (A missing file is
/// fine: a new store is made.)
pub(crate) fn check_file(path: &Path) -> Result<(), StoreError> {
    use std::io::Read;
    let refuse = |what: &str| StoreError::Database {
        path: path.to_path_buf(),
        message: format!(
            "{what}; refusing to start on it (a new store is made only where no file exists: move the file away, or restore a backup)"
        ),
    };
    let mut file = match std::fs::File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(db_err(path, e)),
    };
    let len = file.metadata().map_err(|e| db_err(path, e))?.len();
    if len == 0 {
        return Err(refuse("the file is empty (0 bytes), not a hazeflow store"));
    }
    let mut head = [0u8; REDB_MAGIC.len()];
    let got = file.read(&mut head).map_err(|e| db_err(path, e))?;
    if got < head.len() || head != REDB_MAGIC {
        return Err(refuse(&format!(
            "the file ({len} bytes) is not a redb database (it does not start with redb's header)"
        )));
    }
    Ok(())
}

/// Opens the file (creating it when missing) with the store's settings.
fn open_db(path: &Path, cache_bytes: usize) -> Result<Database, StoreError> {
    Database::builder()
        .set_cache_size(cache_bytes)
        .create(path)
        .map_err(|e| db_err(path, e))
}

/// Creates the tables and checks the format version.
fn init(db: &Database, path: &Path) -> Result<(), StoreError> {
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
            // An older format is upgraded once the store runs (`upgrade.rs`), if this build can.
            Some(v) if !upgrade::can_open(v) => {
                return Err(StoreError::TooOld {
                    path: path.to_path_buf(),
                    found: v,
                });
            }
            Some(_) => {}
            None => {
                meta.insert(FORMAT_KEY, FORMAT_VERSION.to_le_bytes().as_slice())
                    .map_err(|e| db_err(path, e))?;
                meta.insert(upgrade::HISTORY_KEY, upgrade::created_history(chrono::Utc::now()).as_slice())
                    .map_err(|e| db_err(path, e))?;
            }
        }
    }
    txn.commit().map_err(|e| db_err(path, e))?;
    create_tables(db, path)
}

/// Creates every table, so that readers never meet a missing one.
fn create_tables(db: &Database, path: &Path) -> Result<(), StoreError> {
    let txn = db.begin_write().map_err(|e| db_err(path, e))?;
    let e = |err: redb::TableError| db_err(path, err);
    txn.open_table(META).map_err(e)?;
    txn.open_table(EVENTS).map_err(e)?;
    txn.open_table(FORECASTS).map_err(e)?;
    txn.open_table(LATEST).map_err(e)?;
    txn.open_table(CONSULTATIONS).map_err(e)?;
    txn.open_table(REGION_STATES).map_err(e)?;
    txn.open_table(WARNINGS).map_err(e)?;
    txn.open_table(WARNING_EVENTS).map_err(e)?;
    txn.open_table(DIRECTIVES).map_err(e)?;
    txn.open_table(COUNTERS).map_err(e)?;
    txn.open_table(DOCS).map_err(e)?;
    txn.open_table(ITEMS).map_err(e)?;
    txn.commit().map_err(|err| db_err(path, err))
}

/// Whether commits save the allocator state (`HAZEFLOW_STORE_QUICK_REPAIR`, default on), read once.
fn quick_repair() -> bool {
    static ON: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *ON.get_or_init(|| std::env::var("HAZEFLOW_STORE_QUICK_REPAIR").map_or(true, |v| !matches!(v.trim(), "0" | "false" | "no" | "off")))
}

/// Whether the file system holding the store has [`MIN_FREE_BYTES`] free for unprivileged writers.
/// When it cannot be asked, the probe decides alone.
fn disk_room(path: &Path) -> Result<(), String> {
    let dir = path.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."));
    match rustix::fs::statvfs(dir) {
        Ok(s) => {
            let free = s.f_bavail.saturating_mul(s.f_frsize);
            if free < MIN_FREE_BYTES {
                Err(format!(
                    "No space left on device: {free} bytes free in {}, {MIN_FREE_BYTES} needed before the store writes again",
                    dir.display()
                ))
            } else {
                Ok(())
            }
        }
        Err(_) => Ok(()),
    }
}

fn shape(table: Table, key: Key<'_>) -> StoreError {
    StoreError::Refused(format!("key {key:?} does not fit table {}", table.name()))
}

fn str_table(table: Table) -> Option<TableDefinition<'static, &'static str, &'static [u8]>> {
    match table {
        Table::Meta => Some(META),
        Table::Forecasts => Some(FORECASTS),
        Table::Warnings => Some(WARNINGS),
        Table::Directives => Some(DIRECTIVES),
        _ => None,
    }
}

fn seq_table(table: Table) -> Option<TableDefinition<'static, u64, &'static [u8]>> {
    match table {
        Table::Events => Some(EVENTS),
        Table::Consultations => Some(CONSULTATIONS),
        _ => None,
    }
}

/// Reads over anything that opens tables (a snapshot, or the write transaction).
macro_rules! reads {
    () => {
        fn get(&self, table: Table, key: Key<'_>) -> Result<Option<Vec<u8>>, StoreError> {
            let e = |err: redb::StorageError| db_err(self.path(), err);
            Ok(match (table, key) {
                (Table::Latest, Key::Region(r)) => self.open(LATEST)?.get(r).map_err(e)?.map(|v| v.value().as_bytes().to_vec()),
                (Table::RegionStates, Key::Region(r)) => self.open(REGION_STATES)?.get(r).map_err(e)?.map(|v| v.value().to_vec()),
                (Table::Counters, Key::Name(n)) => self
                    .open(COUNTERS)?
                    .get(n)
                    .map_err(e)?
                    .map(|v| v.value().to_le_bytes().to_vec()),
                (Table::WarningEvents, Key::WarningEvent(id, s)) => self.open(WARNING_EVENTS)?.get((id, s)).map_err(e)?.map(|_| Vec::new()),
                (Table::Docs, Key::Doc(c, k)) => self.open(DOCS)?.get((c, k)).map_err(e)?.map(|v| v.value().to_vec()),
                (Table::Items, Key::Item(b, i)) => self.open(ITEMS)?.get((b, i)).map_err(e)?.map(|v| v.value().to_vec()),
                (t, Key::Name(n)) if str_table(t).is_some() => {
                    let def = str_table(t).ok_or_else(|| shape(table, key))?;
                    self.open(def)?.get(n).map_err(e)?.map(|v| v.value().to_vec())
                }
                (t, Key::Seq(s)) if seq_table(t).is_some() => {
                    let def = seq_table(t).ok_or_else(|| shape(table, key))?;
                    self.open(def)?.get(s).map_err(e)?.map(|v| v.value().to_vec())
                }
                _ => return Err(shape(table, key)),
            })
        }

        fn get_many(&self, table: Table, keys: &[Key<'_>]) -> Result<Vec<Option<Vec<u8>>>, StoreError> {
            if table != Table::Docs {
                return keys.iter().map(|k| self.get(table, *k)).collect();
            }
            let t = self.open(DOCS)?;
            let mut out = Vec::with_capacity(keys.len());
            for k in keys {
                let Key::Doc(c, k) = *k else { return Err(shape(table, *k)) };
                out.push(t.get((c, k)).map_err(|e| db_err(self.path(), e))?.map(|v| v.value().to_vec()));
            }
            Ok(out)
        }

        fn scan(&self, table: Table, scan: Scan<'_>, limit: usize, visit: Visit<'_>) -> Result<(), StoreError> {
            let path = self.path();
            let e = |err: redb::StorageError| db_err(path, err);
            // Visits `iter` (rows of one table) in the scan's order.
            macro_rules! each {
                ($table:expr, $kty:ty, $range:expr, $rev:expr, |$k:ident, $v:ident| $key:expr, $val:expr) => {{
                    let table = $table;
                    let iter = table.range::<$kty>($range).map_err(e)?;
                    let rows: Box<dyn Iterator<Item = _>> = if $rev { Box::new(iter.rev()) } else { Box::new(iter) };
                    for (n, row) in rows.enumerate() {
                        if n >= limit {
                            break;
                        }
                        let (kg, vg) = row.map_err(e)?;
                        let $k = kg.value();
                        let $v = vg.value();
                        if !visit($key, $val)? {
                            break;
                        }
                    }
                }};
            }
            match (table, scan) {
                (Table::Latest, Scan::All { rev }) => {
                    each!(self.open(LATEST)?, u32, .., rev, |k, v| Key::Region(k), v.as_bytes())
                }
                (Table::RegionStates, Scan::All { rev }) => {
                    each!(self.open(REGION_STATES)?, u32, .., rev, |k, v| Key::Region(k), v)
                }
                (Table::Counters, Scan::All { rev }) => {
                    each!(self.open(COUNTERS)?, &str, .., rev, |k, v| Key::Name(k), &v.to_le_bytes())
                }
                (Table::WarningEvents, Scan::All { rev }) => {
                    each!(
                        self.open(WARNING_EVENTS)?,
                        (&str, u64),
                        ..,
                        rev,
                        |k, v| {
                            let () = v;
                            Key::WarningEvent(k.0, k.1)
                        },
                        &[]
                    )
                }
                (Table::WarningEvents, Scan::Warning(id)) => {
                    each!(
                        self.open(WARNING_EVENTS)?,
                        (&str, u64),
                        (id, 0u64)..=(id, u64::MAX),
                        false,
                        |k, v| {
                            let () = v;
                            Key::WarningEvent(k.0, k.1)
                        },
                        &[]
                    )
                }
                (Table::Docs, Scan::All { rev }) => {
                    each!(self.open(DOCS)?, (&str, &str), .., rev, |k, v| Key::Doc(k.0, k.1), v)
                }
                (
                    Table::Docs,
                    Scan::Docs {
                        collection,
                        prefix,
                        after,
                    },
                ) => {
                    let start = if after.is_empty() || after < prefix { prefix } else { after };
                    let t = self.open(DOCS)?;
                    let mut n = 0usize;
                    for row in t.range((collection, start)..).map_err(e)? {
                        let (k, v) = row.map_err(e)?;
                        let (c, key) = k.value();
                        if c != collection || !key.starts_with(prefix) || n >= limit {
                            break;
                        }
                        if !after.is_empty() && key <= after {
                            continue;
                        }
                        n += 1;
                        if !visit(Key::Doc(c, key), v.value())? {
                            break;
                        }
                    }
                }
                (Table::Items, Scan::All { rev }) => {
                    each!(self.open(ITEMS)?, (u64, u32), .., rev, |k, v| Key::Item(k.0, k.1), v)
                }
                (Table::Items, Scan::Items { batch, from }) => {
                    each!(
                        self.open(ITEMS)?,
                        (u64, u32),
                        (batch, from)..=(batch, u32::MAX),
                        false,
                        |k, v| Key::Item(k.0, k.1),
                        v
                    )
                }
                (t, Scan::All { rev }) if str_table(t).is_some() => {
                    let def = str_table(t).ok_or_else(|| StoreError::Refused(format!("no scan of {}", t.name())))?;
                    each!(self.open(def)?, &str, .., rev, |k, v| Key::Name(k), v)
                }
                (t, Scan::All { rev }) if seq_table(t).is_some() => {
                    let def = seq_table(t).ok_or_else(|| StoreError::Refused(format!("no scan of {}", t.name())))?;
                    each!(self.open(def)?, u64, .., rev, |k, v| Key::Seq(k), v)
                }
                (t, Scan::SeqFrom(from)) if seq_table(t).is_some() => {
                    let def = seq_table(t).ok_or_else(|| StoreError::Refused(format!("no scan of {}", t.name())))?;
                    each!(self.open(def)?, u64, from.., false, |k, v| Key::Seq(k), v)
                }
                (t, s) => return Err(StoreError::Refused(format!("scan {s:?} does not fit table {}", t.name()))),
            }
            Ok(())
        }

        fn len(&self, table: Table) -> Result<u64, StoreError> {
            let e = |err: redb::StorageError| db_err(self.path(), err);
            match table {
                Table::Latest => self.open(LATEST)?.len().map_err(e),
                Table::RegionStates => self.open(REGION_STATES)?.len().map_err(e),
                Table::Counters => self.open(COUNTERS)?.len().map_err(e),
                Table::WarningEvents => self.open(WARNING_EVENTS)?.len().map_err(e),
                Table::Docs => self.open(DOCS)?.len().map_err(e),
                Table::Items => self.open(ITEMS)?.len().map_err(e),
                t => match (str_table(t), seq_table(t)) {
                    (Some(def), _) => self.open(def)?.len().map_err(e),
                    (_, Some(def)) => self.open(def)?.len().map_err(e),
                    _ => Err(StoreError::Refused(format!("no length of {}", t.name()))),
                },
            }
        }
    };
}

/// A read snapshot of the file.
struct RedbRead {
    txn: ReadTransaction,
    path: PathBuf,
}

impl RedbRead {
    fn path(&self) -> &Path {
        &self.path
    }

    fn open<K: redb::Key + 'static, V: redb::Value + 'static>(
        &self,
        def: TableDefinition<K, V>,
    ) -> Result<redb::ReadOnlyTable<K, V>, StoreError> {
        self.txn.open_table(def).map_err(|e| db_err(&self.path, e))
    }
}

impl ReadPort for RedbRead {
    reads!();
}

/// The write transaction of one batch, with the running job's undo log.
struct RedbWrite<'a> {
    txn: &'a WriteTransaction,
    path: &'a Path,
    undo: UndoLog,
}

impl RedbWrite<'_> {
    fn path(&self) -> &Path {
        self.path
    }

    fn open<K: redb::Key + 'static, V: redb::Value + 'static>(
        &self,
        def: TableDefinition<K, V>,
    ) -> Result<redb::Table<'_, K, V>, StoreError> {
        self.txn.open_table(def).map_err(|e| db_err(self.path, e))
    }
}

impl ReadPort for RedbWrite<'_> {
    reads!();
}

/// What an insert or a removal replaced, as the undo log needs it: `None` when the value did not
/// change (nothing to undo), `Some(None)` when the key was absent, `Some(Some(old))` otherwise.
fn replaced(old: Option<&[u8]>, new: Option<&[u8]>) -> Option<Option<Vec<u8>>> {
    match old {
        None if new.is_none() => None,
        None => Some(None),
        Some(o) if Some(o) == new => None,
        Some(o) => Some(Some(o.to_vec())),
    }
}

impl RedbWrite<'_> {
    /// Writes (`Some`) or removes (`None`) one row; returns what it replaced, for the undo log.
    fn set(&self, table: Table, key: Key<'_>, value: Option<&[u8]>) -> Result<Option<Option<Vec<u8>>>, StoreError> {
        let e = |err: redb::StorageError| db_err(self.path, err);
        let text = |v: &[u8]| {
            std::str::from_utf8(v)
                .map(str::to_string)
                .map_err(|err| StoreError::Refused(err.to_string()))
        };
        Ok(match (table, key) {
            (Table::Latest, Key::Region(r)) => {
                let mut t = self.open(LATEST)?;
                let old = match value {
                    Some(v) => t.insert(r, text(v)?.as_str()).map_err(e)?,
                    None => t.remove(r).map_err(e)?,
                }
                .map(|g| g.value().as_bytes().to_vec());
                replaced(old.as_deref(), value)
            }
            (Table::Counters, Key::Name(n)) => {
                let mut t = self.open(COUNTERS)?;
                let old = match value {
                    Some(v) => {
                        let v = <[u8; 8]>::try_from(v).map_err(|_| StoreError::Refused("a counter is 8 bytes".into()))?;
                        t.insert(n, u64::from_le_bytes(v)).map_err(e)?
                    }
                    None => t.remove(n).map_err(e)?,
                }
                .map(|g| g.value().to_le_bytes().to_vec());
                replaced(old.as_deref(), value)
            }
            (Table::WarningEvents, Key::WarningEvent(id, s)) => {
                let mut t = self.open(WARNING_EVENTS)?;
                let old = match value {
                    Some(_) => t.insert((id, s), ()).map_err(e)?,
                    None => t.remove((id, s)).map_err(e)?,
                }
                .map(|_| Vec::new());
                replaced(old.as_deref(), value.map(|_| &[][..]))
            }
            (Table::RegionStates, Key::Region(r)) => bytes_set(self.open(REGION_STATES)?, r, value, e)?,
            (Table::Docs, Key::Doc(c, k)) => bytes_set(self.open(DOCS)?, (c, k), value, e)?,
            (Table::Items, Key::Item(b, i)) => bytes_set(self.open(ITEMS)?, (b, i), value, e)?,
            (t, Key::Name(n)) if str_table(t).is_some() => {
                let def = str_table(t).ok_or_else(|| shape(table, key))?;
                bytes_set(self.open(def)?, n, value, e)?
            }
            (t, Key::Seq(s)) if seq_table(t).is_some() => {
                let def = seq_table(t).ok_or_else(|| shape(table, key))?;
                bytes_set(self.open(def)?, s, value, e)?
            }
            _ => return Err(shape(table, key)),
        })
    }
}

/// Writes or removes one row of a table of byte values; returns what it replaced.
fn bytes_set<'k, K: redb::Key + 'static>(
    mut t: redb::Table<'_, K, &'static [u8]>,
    key: impl std::borrow::Borrow<K::SelfType<'k>>,
    value: Option<&[u8]>,
    e: impl Fn(redb::StorageError) -> StoreError,
) -> Result<Option<Option<Vec<u8>>>, StoreError> {
    let old = match value {
        Some(v) => t.insert(key, v).map_err(&e)?,
        None => t.remove(key).map_err(&e)?,
    };
    let old = old.map(|g| g.value().to_vec());
    Ok(replaced(old.as_deref(), value))
}

impl WritePort for RedbWrite<'_> {
    fn put(&mut self, table: Table, key: Key<'_>, value: &[u8]) -> Result<(), StoreError> {
        if let Some(before) = self.set(table, key, Some(value))? {
            self.undo.push(table, key, before);
        }
        Ok(())
    }

    fn put_many<'k>(&mut self, table: Table, n: usize, row: Row<'_, 'k>) -> Result<(), StoreError> {
        let e = |err: redb::StorageError| db_err(self.path, err);
        let mut buf = Vec::with_capacity(256);
        // One open table for the whole run (bulk paths: a list, a round of assignments).
        match table {
            Table::Docs => {
                let mut t = self.txn.open_table(DOCS).map_err(|err| db_err(self.path, err))?;
                for i in 0..n {
                    buf.clear();
                    let key = row(i, &mut buf)?;
                    let Key::Doc(c, k) = key else { return Err(shape(table, key)) };
                    let old = t.insert((c, k), buf.as_slice()).map_err(e)?.map(|g| g.value().to_vec());
                    if let Some(before) = replaced(old.as_deref(), Some(&buf)) {
                        self.undo.push(table, key, before);
                    }
                }
            }
            Table::Items => {
                let mut t = self.txn.open_table(ITEMS).map_err(|err| db_err(self.path, err))?;
                for i in 0..n {
                    buf.clear();
                    let key = row(i, &mut buf)?;
                    let Key::Item(b, x) = key else { return Err(shape(table, key)) };
                    let old = t.insert((b, x), buf.as_slice()).map_err(e)?.map(|g| g.value().to_vec());
                    if let Some(before) = replaced(old.as_deref(), Some(&buf)) {
                        self.undo.push(table, key, before);
                    }
                }
            }
            _ => {
                for i in 0..n {
                    buf.clear();
                    let key = row(i, &mut buf)?;
                    let value = std::mem::take(&mut buf);
                    self.put(table, key, &value)?;
                    buf = value;
                }
            }
        }
        Ok(())
    }

    fn remove(&mut self, table: Table, key: Key<'_>) -> Result<(), StoreError> {
        if let Some(before) = self.set(table, key, None)? {
            self.undo.push(table, key, before);
        }
        Ok(())
    }

    fn begin_job(&mut self) -> Result<(), StoreError> {
        self.undo = UndoLog::default();
        Ok(())
    }

    #[cfg(test)]
    fn undo_cost(&self) -> (usize, usize) {
        (self.undo.len(), self.undo.heap_bytes())
    }

    fn end_job(&mut self, ok: bool) -> Result<(), StoreError> {
        let undo = std::mem::take(&mut self.undo);
        if ok {
            return Ok(());
        }
        let path = self.path;
        undo.undo(|table, key, before| self.set(table, key, before).map(|_| ()), |e| db_err(path, e))
    }
}
