//! The store: one module owns the embedded database (redb). Every state change is a [`Record`]
//! appended to the event log; current state (forecasts, consultations, region states, warnings,
//! directives) is kept as views written in the same transaction as the record.
//!
//! In: closures that read and write through [`Tx`] (typed methods, domain types only). Out: their
//! results, once committed with fsync. One writer thread takes writes from every caller and commits
//! whatever is waiting in one transaction (group commit), so durability costs one fsync per batch, not
//! per request.
//!
//! Each job is all or nothing, whatever the rest of its batch does:
//!
//! - A job that returns `Ok` is committed with its batch; its caller gets the result once the commit
//!   (fsync) has returned.
//! - A job that returns `Err` leaves no trace, wherever it failed: every write it made is taken back
//!   (its undo log, applied newest first) before the next job of the batch runs, and the log's next
//!   sequence number is restored, so the log stays gap-free. The other jobs of the batch neither see
//!   its writes nor lose theirs. Redb cannot make a savepoint in a dirty transaction, so [`Tx`] logs
//!   the value each write replaced (redb's `insert` and `remove` return it, no extra read).
//! - A storage error (I/O, a value too large, a failure while undoing) aborts the whole batch: nothing
//!   of it is committed and every caller of the batch gets the error.
//! - A job that panics stops the writer: its batch is lost and the store is closed.
//!
//! - `keys.rs`: table definitions and key encoding;
//! - `tx.rs`: the typed read/write API;
//! - `undo.rs`: a job's undo log;
//! - `record.rs`: what the log holds.
//! - `backup.rs`: a consistent copy from one read transaction, while the writer goes on.

mod backup;
mod keys;
mod record;
#[cfg(test)]
mod tests;
mod tx;
mod undo;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc as std_mpsc;
use std::thread::JoinHandle;
use std::time::Instant;

use redb::{Database, ReadableDatabase};
use tokio::sync::oneshot;

pub use backup::BackupSummary;
pub use record::{ConsultationRecord, DirectiveRecord, Record, RecordBody};
pub use tx::{ReadTx, Tx, View};

/// The on-disk format this build writes and reads.
/// Version 2: assignments as rounds (a header document and a numbered run of entries) instead of
/// four documents per assignment.
pub const FORMAT_VERSION: u32 = 2;

/// redb's page cache (its default is 1 GiB). 256 MiB holds the interior pages of a national list and
/// its assignments many times over, and keeps the daemon's resident memory well under 1 GiB.
const CACHE_BYTES: usize = 256 << 20;

/// Most jobs committed in one transaction.
const MAX_BATCH: usize = 4096;

/// What can go wrong with the store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database could not be opened or written.
    #[error("database {path}: {message}")]
    Database { path: PathBuf, message: String },
    /// The file was written by a newer hazeflow.
    #[error("database {path} has format version {found}; this hazeflow reads version {FORMAT_VERSION} and older (upgrade hazeflow)")]
    TooNew { path: PathBuf, found: u32 },
    /// The file was written by an older hazeflow with another layout.
    #[error(
        "database {path} has format version {found}, older than this hazeflow's {FORMAT_VERSION}; it cannot be read in place (start with a new data folder; the old one stays untouched)"
    )]
    TooOld { path: PathBuf, found: u32 },
    /// The writer has stopped (shutdown).
    #[error("the store is closed")]
    Closed,
    /// A stored value could not be decoded.
    #[error("corrupt value in {table}: {message}")]
    Corrupt { table: &'static str, message: String },
    /// The job refused (a domain error, as text).
    #[error("{0}")]
    Refused(String),
}

pub(crate) fn db_err(path: &Path, e: impl std::fmt::Display) -> StoreError {
    StoreError::Database {
        path: path.to_path_buf(),
        message: e.to_string(),
    }
}

type Finisher = Box<dyn FnOnce(Result<(), String>) + Send>;
/// A write job: runs in the writer, says whether it succeeded (a failed job's writes are taken back)
/// and hands back what tells its caller once the batch is committed.
type Job = Box<dyn FnOnce(&mut Tx<'_>) -> (bool, Finisher) + Send>;

/// Handle to the store; cheap to clone.
#[derive(Clone)]
pub struct Store {
    inner: Arc<Inner>,
}

/// What the writer has done since the store was opened (for `/metrics` and the benchmarks).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct WriterStats {
    /// Transactions committed (or attempted).
    pub batches: u64,
    /// Jobs run.
    pub jobs: u64,
    /// Time spent running jobs, µs.
    pub job_micros: u64,
    /// Time spent committing (writing pages, fsync), µs.
    pub commit_micros: u64,
}

#[derive(Default)]
struct Stats {
    batches: AtomicU64,
    jobs: AtomicU64,
    job_micros: AtomicU64,
    commit_micros: AtomicU64,
}

struct Inner {
    db: Arc<Database>,
    /// Unique among the stores opened by this process (caches key on it, not on the path: a file
    /// deleted and made again at the same path is another database).
    id: u64,
    stats: Arc<Stats>,
    path: PathBuf,
    jobs: std::sync::Mutex<Option<std_mpsc::Sender<Job>>>,
    writer: std::sync::Mutex<Option<JoinHandle<()>>>,
}

impl Store {
    /// Opens (or creates) the database file and starts the writer thread. After a crash, redb repairs
    /// the file on open.
    pub fn open(path: &Path) -> Result<Store, StoreError> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(|e| db_err(path, e))?;
        }
        let db = Database::builder()
            .set_cache_size(CACHE_BYTES)
            .create(path)
            .map_err(|e| db_err(path, e))?;
        let db = Arc::new(db);
        tx::init(&db, path)?;
        let (send, recv) = std_mpsc::channel::<Job>();
        let wdb = db.clone();
        let wpath = path.to_path_buf();
        let stats = Arc::new(Stats::default());
        let wstats = stats.clone();
        let writer = std::thread::Builder::new()
            .name("store-writer".into())
            .spawn(move || writer_loop(&wdb, &wpath, &recv, &wstats))
            .map_err(|e| db_err(path, e))?;
        Ok(Store {
            inner: Arc::new(Inner {
                db,
                id: NEXT_ID.fetch_add(1, Ordering::Relaxed),
                stats,
                path: path.to_path_buf(),
                jobs: std::sync::Mutex::new(Some(send)),
                writer: std::sync::Mutex::new(Some(writer)),
            }),
        })
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.inner.path
    }

    /// This store's id, unique in the process.
    pub fn id(&self) -> u64 {
        self.inner.id
    }

    /// Runs `f` in the next write batch; returns its result once the batch is committed (fsync). When
    /// `f` returns an error, nothing it wrote is committed.
    pub async fn write<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&mut Tx<'_>) -> Result<T, StoreError> + Send + 'static,
    {
        self.submit(f)?.await.map_err(|_| StoreError::Closed)?
    }

    /// Queues `f` for the writer; the receiver gets its result once the batch is committed.
    fn submit<T, F>(&self, f: F) -> Result<oneshot::Receiver<Result<T, StoreError>>, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&mut Tx<'_>) -> Result<T, StoreError> + Send + 'static,
    {
        let (send, recv) = oneshot::channel::<Result<T, StoreError>>();
        let job: Job = Box::new(move |tx: &mut Tx<'_>| {
            let result = f(tx);
            let ok = result.is_ok();
            let finish: Finisher = Box::new(move |commit: Result<(), String>| {
                let out = match commit {
                    Ok(()) => result,
                    Err(message) => Err(StoreError::Database {
                        path: PathBuf::from("(commit)"),
                        message,
                    }),
                };
                let _ = send.send(out);
            });
            (ok, finish)
        });
        let guard = self.inner.jobs.lock().map_err(|_| StoreError::Closed)?;
        guard
            .as_ref()
            .ok_or(StoreError::Closed)?
            .send(job)
            .map_err(|_| StoreError::Closed)?;
        Ok(recv)
    }

    /// What the writer has done so far.
    pub fn stats(&self) -> WriterStats {
        let s = &self.inner.stats;
        WriterStats {
            batches: s.batches.load(Ordering::Relaxed),
            jobs: s.jobs.load(Ordering::Relaxed),
            job_micros: s.job_micros.load(Ordering::Relaxed),
            commit_micros: s.commit_micros.load(Ordering::Relaxed),
        }
    }

    /// Runs `f` on a consistent snapshot.
    pub fn read<T>(&self, f: impl FnOnce(&ReadTx) -> Result<T, StoreError>) -> Result<T, StoreError> {
        let txn = self.inner.db.begin_read().map_err(|e| db_err(&self.inner.path, e))?;
        let r = ReadTx::new(txn, &self.inner.path);
        f(&r)
    }

    /// Stops taking writes, lets the writer finish what is queued, and waits for it.
    pub fn close(&self) {
        if let Ok(mut g) = self.inner.jobs.lock() {
            g.take();
        }
        if let Some(h) = self.inner.writer.lock().ok().and_then(|mut g| g.take()) {
            let _ = h.join();
        }
    }
}

static NEXT_ID: AtomicU64 = AtomicU64::new(1);

fn micros(d: std::time::Duration) -> u64 {
    u64::try_from(d.as_micros()).unwrap_or(u64::MAX)
}

fn writer_loop(db: &Database, path: &Path, jobs: &std_mpsc::Receiver<Job>, stats: &Stats) {
    while let Ok(first) = jobs.recv() {
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match jobs.try_recv() {
                Ok(j) => batch.push(j),
                Err(_) => break,
            }
        }
        let txn = match db.begin_write() {
            Ok(t) => t,
            Err(e) => {
                tracing::error!(error = %e, "cannot begin a write transaction");
                continue; // the jobs are dropped: their callers see StoreError::Closed
            }
        };
        let mut finishers = Vec::with_capacity(batch.len());
        let started = Instant::now();
        stats.jobs.fetch_add(batch.len() as u64, Ordering::Relaxed);
        let outcome = {
            let mut tx = Tx::new(&txn, path);
            for job in batch {
                tx.begin_job();
                let (ok, finish) = job(&mut tx);
                tx.end_job(ok);
                finishers.push(finish);
            }
            tx.finish()
        };
        let ran = Instant::now();
        let commit = outcome.and_then(|()| txn.commit().map_err(|e| e.to_string()));
        stats.batches.fetch_add(1, Ordering::Relaxed);
        stats.job_micros.fetch_add(micros(ran - started), Ordering::Relaxed);
        stats.commit_micros.fetch_add(micros(ran.elapsed()), Ordering::Relaxed);
        if let Err(e) = &commit {
            tracing::error!(error = %e, "commit failed; the batch is lost and its callers are told");
        }
        for f in finishers {
            f(commit.clone());
        }
    }
}
