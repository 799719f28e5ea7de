//! The store: one module owns the data, behind a port (`port.rs`) with one backend today, the
//! embedded redb file (`embedded/`). Every state change is a [`Record`]
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
//! - A job that returns `Err` leaves no trace, wherever it failed: the backend takes back every write
//!   it made before the next job of the batch runs (the embedded file with an undo log, as redb cannot
//!   make a savepoint in a dirty transaction), and the log's next sequence number is restored, so the
//!   log stays gap-free. The other jobs of the batch neither see its writes nor lose theirs.
//! - A storage error (I/O, a value too large, a failure while undoing) aborts the whole batch: nothing
//!   of it is committed and every caller of the batch gets the error.
//! - A job that panics stops the writer: its batch is lost and the store is closed.
//!
//! When writing fails (disk full, I/O error), the writer asks the backend to recover (the embedded
//! file is taken out of service — reads answer [`StoreError::Unavailable`] for the moment it takes —
//! opened again and tried with an empty commit), with back-off (0.25 s doubling to 8 s), until a
//! commit works again. Meanwhile every job is refused at once with the reason, [`Store::fault`] says what is wrong (`/healthz` answers 503), and once
//! writing works again the outage is handed to whoever asked ([`Store::take_outages`]; the daemon
//! records it and alerts the duty staff then, since nothing can be recorded while the disk fails).
//!
//! - `port.rs`: what a backend offers (tables, keys, snapshots, batches, recovery);
//! - `embedded/`: the redb file, the default backend (the only code that knows redb);
//! - `pg.rs`: PostgreSQL, the same tables as SQL tables (the only code that knows SQL);
//! - `journal.rs`: the embedded file's journal of quick jobs (acknowledgements): one `fdatasync` per
//!   batch instead of redb's durable commit, redone after a crash ([`Store::write_journaled`]);
//! - `keys.rs`: the collections of the `docs` table and ordered keys;
//! - `tx.rs`: the typed read/write API, over any backend;
//! - `record.rs`: what the log holds;
//! - `events.rs`: the records other modules write, one struct per kind;
//! - `backup.rs`: a consistent copy from one read transaction, while the writer goes on;
//! - `copy.rs`: a store moved to another backend and compared row by row (`hazeflow migrate`).

mod backup;
mod check;
mod copy;
mod embedded;
pub mod events;
mod journal;
mod keys;
mod pg;
mod port;
mod record;
mod stage;
#[cfg(test)]
mod tests;
mod tx;
mod upgrade;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc as std_mpsc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use tokio::sync::oneshot;

use self::port::Backend;

pub use backup::BackupSummary;
pub use check::{Checked, TableReport};
pub use copy::{CopySummary, differences};
pub use keys::{Collection, millis_key, seq_key, version_key};
pub use pg::safe_location;
pub use record::{ConsultationRecord, DirectiveRecord, Record, RecordBody, Upstream, UpstreamArea};
pub use stage::Stage;
pub use tx::{Encoded, ReadTx, Tx, View};
pub use upgrade::{HistoryEntry, Upgraded};

/// The on-disk format this build writes and reads.
/// Version 2: assignments as rounds (a header document and a numbered run of entries) instead of
/// four documents per assignment. Version 3: the store's history in meta (`history`); a store of
/// format 2 is upgraded in place when opened (`upgrade.rs`).
pub const FORMAT_VERSION: u32 = 3;

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
    /// The file was written by an older hazeflow with another layout, and cannot be upgraded here.
    #[error(
        "database {path} has format version {found}, older than this hazeflow's {FORMAT_VERSION}; it cannot be read in place (this hazeflow upgrades format {} and later when it opens the store: the daemon, or for the embedded file any command that opens it; a store older than that needs a new data folder, the old one stays untouched)",
        upgrade::oldest_upgradable()
    )]
    TooOld { path: PathBuf, found: u32 },
    /// The writer has stopped (shutdown).
    #[error("the store is closed")]
    Closed,
    /// Writing fails (disk full, I/O error); the store is being reopened.
    #[error("the store cannot write since {since}: {reason}")]
    Unavailable { reason: String, since: DateTime<Utc> },
    /// A stored value could not be decoded.
    #[error("corrupt value in {table}: {message}")]
    Corrupt { table: &'static str, message: String },
    /// Refused with a message (backup, limits; domain refusals travel typed in the job's own error type, see [`Store::write`]).
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
/// What a job runs: its outcome (whether to keep its writes) and what tells its caller after the commit.
type JobRun = Box<dyn FnOnce(&mut Tx<'_>) -> (bool, Finisher) + Send>;

/// A job for the writer, and the items it will read (read for the whole batch at once first, where
/// the backend gains by it: one round trip to a database server instead of one per job).
struct Job {
    run: JobRun,
    reads: Vec<(u64, u32)>,
    /// How to redo the job after a crash ([`Store::write_journaled`]), or how to redo such jobs.
    journal: JobJournal,
}

/// What a job has to do with the journal.
enum JobJournal {
    /// Nothing: its batch commits durably.
    None,
    /// The record that redoes it: a batch of such jobs only is made durable by the journal.
    Record(Vec<u8>),
    /// Redo the journal's records with this (the daemon, once it can), then use the journal.
    Arm(Replayer, oneshot::Sender<Result<usize, String>>),
}

/// Redoes one journal record in a transaction ([`Store::replay_journal`]).
pub type Replayer = Arc<dyn Fn(&mut Tx<'_>, &[u8]) -> Result<(), StoreError> + Send + Sync>;

/// The writer's journal: the file, and once armed, how its records are redone.
struct JournalState {
    journal: journal::Journal,
    replayer: Option<Replayer>,
}

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

/// This node's role where several nodes share one database (PostgreSQL). The embedded file has one
/// node, always the leader (term 0).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Runs the scheduler, timers, inbox, notice fan-out and delivery; `term` rises with each new
    /// leader, and a batch of a node whose term has passed is refused (fencing).
    Leader { term: u64 },
    /// Serves the dashboard, the API, ack and public pages, and writes what they take.
    Follower,
}

impl Role {
    /// Whether this node leads.
    pub fn is_leader(self) -> bool {
        matches!(self, Role::Leader { .. })
    }
}

/// Why writes fail at the moment, and since when.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fault {
    /// The error of the last failed write or reopen.
    pub reason: String,
    /// When writes started failing.
    pub since: DateTime<Utc>,
    /// Reopen attempts so far.
    pub attempts: u32,
}

/// A time writes failed, handed over once a commit works again.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outage {
    /// The first error.
    pub reason: String,
    /// When writes started failing.
    pub since: DateTime<Utc>,
    /// When a commit worked again.
    pub until: DateTime<Utc>,
    /// Jobs refused meanwhile (their callers got the error).
    pub refused: u64,
}

/// What the writer shares with the handles: the current fault and the outages not yet handed over.
#[derive(Default)]
struct Health {
    fault: std::sync::Mutex<Option<Fault>>,
    outages: std::sync::Mutex<Vec<Outage>>,
}

/// First wait before reopening after a failed write, doubled each failed attempt up to [`BACKOFF_MAX`].
const BACKOFF_FIRST: Duration = Duration::from_millis(250);
const BACKOFF_MAX: Duration = Duration::from_secs(8);

struct Inner {
    backend: Arc<dyn Backend>,
    kind: &'static str,
    /// The node's role, as the election reports it.
    roles: tokio::sync::watch::Sender<Role>,
    health: Arc<Health>,
    /// Unique among the stores opened by this process (caches key on it, not on the path: a file
    /// deleted and made again at the same path is another database).
    id: u64,
    stats: Arc<Stats>,
    path: PathBuf,
    jobs: std::sync::Mutex<Option<std_mpsc::Sender<Job>>>,
    writer: std::sync::Mutex<Option<JoinHandle<()>>>,
    /// Whether the writer has a journal ([`Store::write_journaled`]).
    journaled: bool,
}

/// The journal beside an embedded store file (`{file}.journal`, `journal.rs`): acknowledgements
/// answered and not yet durable in the file itself.
pub fn journal_path(store: &Path) -> PathBuf {
    journal::path_for(store)
}

impl Store {
    /// Opens the database file, or creates it where no file exists, and starts the writer thread.
    /// A file that is empty or not a redb database is refused (never replaced by a new store). After
    /// a crash, redb repairs the file on open.
    ///
    /// A file of an older format is upgraded in place first (`upgrade.rs`), after a backup beside it
    /// (`{file}.format-{N}.bak`).
    pub fn open(path: &Path) -> Result<Store, StoreError> {
        Store::open_embedded(path, &upgrade::BackupPlace::Beside(path.to_path_buf()))
    }

    /// Opens a scratch copy (a backup being checked before a restore): upgraded like [`Store::open`]
    /// when older, but without a backup of its own (the original is the backup).
    pub fn open_scratch(path: &Path) -> Result<Store, StoreError> {
        Store::open_embedded(path, &upgrade::BackupPlace::None)
    }

    /// [`Store::open`] with a page cache of `cache_bytes` instead of the daemon's 256 MiB: a
    /// command that reads or writes a large list once (`registry import`) keeps its memory for the
    /// list.
    pub fn open_with_cache(path: &Path, cache_bytes: usize) -> Result<Store, StoreError> {
        Store::open_backend(
            embedded::Embedded::open_with_cache(path, cache_bytes)?,
            path,
            &upgrade::BackupPlace::Beside(path.to_path_buf()),
        )
    }

    fn open_embedded(path: &Path, backups: &upgrade::BackupPlace) -> Result<Store, StoreError> {
        Store::open_backend(embedded::Embedded::open(path)?, path, backups)
    }

    /// The embedded file with its journal (a scratch copy has none: it is checked, not served).
    fn open_backend(backend: embedded::Embedded, path: &Path, backups: &upgrade::BackupPlace) -> Result<Store, StoreError> {
        let journal = match backups {
            upgrade::BackupPlace::None | upgrade::BackupPlace::Folder(_) => None,
            upgrade::BackupPlace::Beside(_) => {
                let (journal, records) = journal::Journal::open(path).map_err(|e| db_err(&journal::path_for(path), e))?;
                if !records.is_empty() {
                    tracing::warn!(
                        records = records.len(),
                        journal = %journal::path_for(path).display(),
                        "the journal holds acknowledgements the store does not hold durably yet (the process stopped without a clean close); the daemon redoes them before it serves"
                    );
                }
                Some(JournalState { journal, replayer: None })
            }
        };
        let backend: Arc<dyn Backend> = Arc::new(backend);
        let store = Store::start_with(backend, "embedded", path, Role::Leader { term: 0 }, journal)?;
        store.upgrade(backups, path)?;
        Ok(store)
    }

    /// Runs the format steps a store of an older format needs; closes the store when they fail.
    fn upgrade(&self, backups: &upgrade::BackupPlace, shown: &Path) -> Result<Vec<Upgraded>, StoreError> {
        let done = upgrade::run(self, backups, shown);
        if done.is_err() {
            self.close();
        }
        done
    }

    /// Connects to a PostgreSQL database (`postgres://…`), migrates its schema and starts the writer.
    /// The node takes part in the election of the leader from here on ([`Store::roles`]). A store of
    /// an older format is refused (see [`Store::open_postgres_upgrading`]).
    pub fn open_postgres(url: &str) -> Result<Store, StoreError> {
        Store::open_postgres_with(url, None)
    }

    /// As [`Store::open_postgres`], but a store of an older format is upgraded first, each step after
    /// a backup of the whole store written into `backups` (an embedded file, as `hazeflow backup`
    /// writes); when that backup cannot be written, nothing is changed and the open fails. Several
    /// nodes starting together upgrade once (each step checks the format under the write lock).
    pub fn open_postgres_upgrading(url: &str, backups: &Path) -> Result<Store, StoreError> {
        Store::open_postgres_with(url, Some(upgrade::BackupPlace::Folder(backups.to_path_buf())))
    }

    fn open_postgres_with(url: &str, backups: Option<upgrade::BackupPlace>) -> Result<Store, StoreError> {
        let pg = Arc::new(pg::Pg::open(url)?);
        let shown = PathBuf::from(safe_location(url));
        let store = Store::start(pg.clone(), "postgres", &shown, Role::Follower)?;
        match &backups {
            Some(place) => {
                store.upgrade(place, &shown)?;
            }
            None => store.refuse_older(&shown)?,
        }
        pg.elect(node_name(), store.inner.roles.clone());
        Ok(store)
    }

    /// Refuses a store of an older format (a command on a shared store: the daemon upgrades it).
    fn refuse_older(&self, shown: &Path) -> Result<(), StoreError> {
        let found = self.read(|r| r.format_version())?.unwrap_or(FORMAT_VERSION);
        if found < FORMAT_VERSION {
            self.close();
            return Err(StoreError::Refused(format!(
                "{}: the store has format {found}, older than this hazeflow's {FORMAT_VERSION}: start a daemon of this release on it once (it upgrades the store after a backup into its data folder's backups/), then run this again",
                shown.display()
            )));
        }
        Ok(())
    }

    /// Connects to a PostgreSQL database as a command does: reads and writes in its own transactions,
    /// never a candidate for leader (a command must not take the daemons' work). A store of an older
    /// format is refused.
    pub fn open_postgres_client(url: &str) -> Result<Store, StoreError> {
        let pg = Arc::new(pg::Pg::open(url)?);
        let shown = PathBuf::from(safe_location(url));
        let store = Store::start(pg, "postgres", &shown, Role::Follower)?;
        store.refuse_older(&shown)?;
        Ok(store)
    }

    /// Starts the writer thread over an opened backend.
    fn start(backend: Arc<dyn Backend>, kind: &'static str, path: &Path, role: Role) -> Result<Store, StoreError> {
        Store::start_with(backend, kind, path, role, None)
    }

    fn start_with(
        backend: Arc<dyn Backend>,
        kind: &'static str,
        path: &Path,
        role: Role,
        journal: Option<JournalState>,
    ) -> Result<Store, StoreError> {
        let journaled = journal.is_some();
        let (send, recv) = std_mpsc::channel::<Job>();
        let health = Arc::new(Health::default());
        let whealth = health.clone();
        let wbackend = backend.clone();
        let stats = Arc::new(Stats::default());
        let wstats = stats.clone();
        let writer = std::thread::Builder::new()
            .name("store-writer".into())
            .spawn(move || writer_loop(&*wbackend, &whealth, &recv, &wstats, journal))
            .map_err(|e| db_err(path, e))?;
        Ok(Store {
            inner: Arc::new(Inner {
                backend,
                kind,
                roles: tokio::sync::watch::Sender::new(role),
                health,
                id: NEXT_ID.fetch_add(1, Ordering::Relaxed),
                stats,
                path: path.to_path_buf(),
                jobs: std::sync::Mutex::new(Some(send)),
                writer: std::sync::Mutex::new(Some(writer)),
                journaled,
            }),
        })
    }

    /// Why writes fail at the moment (`None` when they work).
    pub fn fault(&self) -> Option<Fault> {
        self.inner.health.fault.lock().ok().and_then(|g| g.clone())
    }

    /// The outages that ended since the last call (each handed over once).
    pub fn take_outages(&self) -> Vec<Outage> {
        self.inner
            .health
            .outages
            .lock()
            .map(|mut g| std::mem::take(&mut *g))
            .unwrap_or_default()
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.inner.path
    }

    /// The backend's kind: `embedded` (the redb file) or `postgres`.
    pub fn kind(&self) -> &'static str {
        self.inner.kind
    }

    /// This node's role now.
    pub fn role(&self) -> Role {
        *self.inner.roles.borrow()
    }

    /// The node's role as it changes.
    pub fn roles(&self) -> tokio::sync::watch::Receiver<Role> {
        self.inner.roles.subscribe()
    }

    /// This store's id, unique in the process.
    pub fn id(&self) -> u64 {
        self.inner.id
    }

    /// Runs `f` in the next write batch; returns its result once the batch is committed (fsync). When
    /// `f` returns an error, nothing it wrote is committed.
    ///
    /// The job's error type is the caller's: a domain refusal travels back typed (`EngineError`, an
    /// acknowledgement's refusal, …); the store's own failures reach it through `From<StoreError>`.
    pub async fn write<T, E, F>(&self, f: F) -> Result<T, E>
    where
        T: Send + 'static,
        E: From<StoreError> + Send + 'static,
        F: FnOnce(&mut Tx<'_>) -> Result<T, E> + Send + 'static,
    {
        // A job dropped unrun (writes failing) reaches its caller as the fault.
        self.submit(f, Vec::new())?.await.map_err(|_| E::from(self.unavailable()))?
    }

    /// As [`Store::write`], saying which items (`(run, index)`) the job will read: the writer reads
    /// those of a whole batch together before its jobs run (a hint; the job reads them as usual).
    pub async fn write_reading<T, E, F>(&self, items: Vec<(u64, u32)>, f: F) -> Result<T, E>
    where
        T: Send + 'static,
        E: From<StoreError> + Send + 'static,
        F: FnOnce(&mut Tx<'_>) -> Result<T, E> + Send + 'static,
    {
        self.submit(f, items)?.await.map_err(|_| E::from(self.unavailable()))?
    }

    /// As [`Store::write_reading`], for a small job that `record` can redo: on the embedded file, a
    /// batch of such jobs is made durable by appending their records to the journal (one
    /// `fdatasync`, `journal.rs`) instead of by redb's durable commit, and after a crash the records
    /// are redone by the [`Replayer`] given to [`Store::replay_journal`]. Redoing must decide again
    /// from the record alone and change nothing when the job's effect is there already; done in
    /// order on the state they were first done on, the records give the log the same sequence
    /// numbers. Elsewhere (PostgreSQL) it is [`Store::write_reading`].
    pub async fn write_journaled<T, E, F>(&self, items: Vec<(u64, u32)>, record: Vec<u8>, f: F) -> Result<T, E>
    where
        T: Send + 'static,
        E: From<StoreError> + Send + 'static,
        F: FnOnce(&mut Tx<'_>) -> Result<T, E> + Send + 'static,
    {
        let journal = if self.inner.journaled {
            JobJournal::Record(record)
        } else {
            JobJournal::None
        };
        self.submit_job(f, items, journal)?.await.map_err(|_| E::from(self.unavailable()))?
    }

    /// Redoes what the journal holds with `replay` (one record at a time, each all or nothing, in one
    /// durable commit), empties it, and from then on takes [`Store::write_journaled`] jobs through
    /// it; the same `replay` redoes the journal after the file is reopened following a disk fault.
    /// Returns how many records were redone (one whose effect is in the store already counts,
    /// changing nothing; one that fails is logged and dropped). A store without a journal returns 0.
    ///
    /// The daemon calls it before it serves, so that nothing reads the store without the records.
    pub async fn replay_journal(&self, replay: Replayer) -> Result<usize, StoreError> {
        if !self.inner.journaled {
            return Ok(0);
        }
        let (send, recv) = oneshot::channel();
        let job = Job {
            run: Box::new(|_tx: &mut Tx<'_>| (true, Box::new(|_| {}) as Finisher)),
            reads: Vec::new(),
            journal: JobJournal::Arm(replay, send),
        };
        self.send_job(job)?;
        recv.await.map_err(|_| self.unavailable())?.map_err(|message| StoreError::Database {
            path: journal::path_for(&self.inner.path),
            message,
        })
    }

    fn send_job(&self, job: Job) -> Result<(), StoreError> {
        let guard = self.inner.jobs.lock().map_err(|_| StoreError::Closed)?;
        guard.as_ref().ok_or(StoreError::Closed)?.send(job).map_err(|_| StoreError::Closed)
    }

    /// Queues `f` for the writer; the receiver gets its result once the batch is committed.
    fn submit<T, E, F>(&self, f: F, reads: Vec<(u64, u32)>) -> Result<oneshot::Receiver<Result<T, E>>, StoreError>
    where
        T: Send + 'static,
        E: From<StoreError> + Send + 'static,
        F: FnOnce(&mut Tx<'_>) -> Result<T, E> + Send + 'static,
    {
        self.submit_job(f, reads, JobJournal::None)
    }

    fn submit_job<T, E, F>(&self, f: F, reads: Vec<(u64, u32)>, journal: JobJournal) -> Result<oneshot::Receiver<Result<T, E>>, StoreError>
    where
        T: Send + 'static,
        E: From<StoreError> + Send + 'static,
        F: FnOnce(&mut Tx<'_>) -> Result<T, E> + Send + 'static,
    {
        let (send, recv) = oneshot::channel::<Result<T, E>>();
        let run = Box::new(move |tx: &mut Tx<'_>| {
            let result = f(tx);
            let ok = result.is_ok();
            let finish: Finisher = Box::new(move |commit: Result<(), String>| {
                let out = match commit {
                    Ok(()) => result,
                    Err(message) => Err(E::from(StoreError::Database {
                        path: PathBuf::from("(commit)"),
                        message,
                    })),
                };
                let _ = send.send(out);
            });
            (ok, finish)
        });
        self.send_job(Job { run, reads, journal })?;
        Ok(recv)
    }

    /// [`Store::write`] for a caller that is not a task (opening the store): waits on a thread of its
    /// own, so that it works inside and outside a runtime.
    pub(crate) fn write_blocking<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&mut Tx<'_>) -> Result<T, StoreError> + Send + 'static,
    {
        let recv = self.submit(f, Vec::new())?;
        let got = std::thread::scope(|s| s.spawn(move || recv.blocking_recv()).join());
        match got {
            Ok(Ok(result)) => result,
            _ => Err(self.unavailable()),
        }
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
        let Some(port) = self.inner.backend.snapshot()? else {
            return Err(self.unavailable());
        };
        f(&ReadTx::new(port))
    }

    fn unavailable(&self) -> StoreError {
        match self.fault() {
            Some(f) => StoreError::Unavailable {
                reason: f.reason,
                since: f.since,
            },
            None => StoreError::Closed,
        }
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

/// This node's name in the leader table: host and process.
fn node_name() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap_or_default();
    format!("{} pid {}", host.trim(), std::process::id())
}

fn micros(d: std::time::Duration) -> u64 {
    u64::try_from(d.as_micros()).unwrap_or(u64::MAX)
}

fn writer_loop(backend: &dyn Backend, health: &Health, jobs: &std_mpsc::Receiver<Job>, stats: &Stats, mut journal: Option<JournalState>) {
    let mut backoff = BACKOFF_FIRST;
    let mut next_try = Instant::now();
    let mut refused: u64 = 0;
    // What the jobs of the last committed batch kept for later jobs ([`Tx::keep_memo`]).
    let mut memo: Option<Box<dyn std::any::Any>> = None;
    loop {
        // While faulty, wake up to try again even when no job comes; while the journal holds
        // records, wake up to make them durable in the store (a checkpoint) when they are due.
        let checkpoint_in = journal.as_ref().filter(|j| j.replayer.is_some()).and_then(|j| j.journal.due_in());
        let wait = if health_faulty(health) {
            Some(next_try.saturating_duration_since(Instant::now()))
        } else {
            checkpoint_in
        };
        let first = match wait {
            Some(wait) => match jobs.recv_timeout(wait) {
                Ok(j) => Some(j),
                Err(std_mpsc::RecvTimeoutError::Timeout) => None,
                Err(std_mpsc::RecvTimeoutError::Disconnected) => break,
            },
            None => match jobs.recv() {
                Ok(j) => Some(j),
                Err(_) => break,
            },
        };
        if health_faulty(health) && Instant::now() >= next_try {
            match backend.recover() {
                Ok(()) => {
                    backoff = BACKOFF_FIRST;
                    // Reopened, the file is back at its last durable commit: redo the journal.
                    redo_journal(backend, stats, &mut memo, journal.as_mut());
                    let fault = health.fault.lock().ok().and_then(|mut g| g.take());
                    if let Some(f) = fault {
                        let until = Utc::now();
                        tracing::warn!(since = %f.since, attempts = f.attempts, refused, "the store writes again");
                        if let Ok(mut o) = health.outages.lock() {
                            o.push(Outage {
                                reason: f.reason,
                                since: f.since,
                                until,
                                refused,
                            });
                        }
                    }
                    refused = 0;
                }
                Err(e) => {
                    if let Ok(mut g) = health.fault.lock()
                        && let Some(f) = g.as_mut()
                    {
                        f.attempts += 1;
                        tracing::error!(error = %e, attempts = f.attempts, since = %f.since, "STORE CANNOT WRITE: reopening failed; trying again");
                    }
                    next_try = Instant::now() + backoff;
                    backoff = (backoff * 2).min(BACKOFF_MAX);
                }
            }
        }
        let mut batch = Vec::new();
        if let Some(first) = first {
            batch.push(first);
            while batch.len() < MAX_BATCH {
                match jobs.try_recv() {
                    Ok(j) => batch.push(j),
                    Err(_) => break,
                }
            }
        } else if health_faulty(health) || !journal.as_ref().is_some_and(|j| j.replayer.is_some() && j.journal.due()) {
            continue;
        }
        // (An empty batch here is a checkpoint: a durable commit that empties the journal.)
        let fault = health.fault.lock().ok().and_then(|g| g.clone());
        if let Some(f) = fault {
            refused += batch.len() as u64;
            refuse(batch, &format!("the store cannot write since {}: {}", f.since, f.reason));
            continue;
        }
        if let Err((reason, unrun)) = run_batch(backend, batch, stats, &mut memo, journal.as_mut()) {
            tracing::error!(error = %reason, "a write batch failed; the batch is lost and its callers are told");
            // A failure of the batch alone (a value too large) leaves the database writable; a
            // failing disk does not.
            if let Err(why) = backend.still_writable() {
                tracing::error!(error = %why, "STORE CANNOT WRITE: reopening the store with back-off");
                if let Ok(mut g) = health.fault.lock() {
                    *g = Some(Fault {
                        reason,
                        since: Utc::now(),
                        attempts: 0,
                    });
                }
                backoff = BACKOFF_FIRST;
                next_try = Instant::now() + backoff;
            }
            refused += unrun.len() as u64;
            refuse(unrun, "begin failed");
        }
    }
    // Closing: what the journal holds goes into the store durably, and the journal is emptied.
    if journal.as_ref().is_some_and(|j| j.replayer.is_some() && !j.journal.is_empty()) && !health_faulty(health) {
        let _ = run_batch(backend, Vec::new(), stats, &mut memo, journal.as_mut());
    }
}

/// After the file was reopened: the journal's records redone in one durable commit, then emptied.
fn redo_journal(backend: &dyn Backend, stats: &Stats, memo: &mut Option<Box<dyn std::any::Any>>, journal: Option<&mut JournalState>) {
    let Some(js) = journal else { return };
    let Some(replay) = js.replayer.clone() else { return };
    if js.journal.is_empty() {
        return;
    }
    let (send, recv) = oneshot::channel();
    let arm = Job {
        run: Box::new(|_tx: &mut Tx<'_>| (true, Box::new(|_| {}) as Finisher)),
        reads: Vec::new(),
        journal: JobJournal::Arm(replay, send),
    };
    match run_batch(backend, vec![arm], stats, memo, Some(js)) {
        Ok(()) => match recv.blocking_recv() {
            Ok(Ok(n)) => tracing::warn!(records = n, "the journal's records were redone after the store was reopened"),
            Ok(Err(e)) => {
                tracing::error!(error = %e, "cannot redo the journal after the store was reopened; it is redone at the next start")
            }
            Err(_) => {}
        },
        Err((e, _)) => tracing::error!(error = %e, "cannot redo the journal after the store was reopened; it is redone at the next start"),
    }
}

fn health_faulty(health: &Health) -> bool {
    health.fault.lock().map(|g| g.is_some()).unwrap_or(true)
}

/// Every job of the batch gets `message` without running.
fn refuse(batch: Vec<Job>, message: &str) {
    // A job only hands back its finisher once run; run none, tell each caller.
    for job in batch {
        drop(job);
    }
    tracing::debug!(message, "jobs refused");
}

/// Runs a batch in one transaction and commits it; every caller is told. An error that leaves the
/// database unable to write (begin, commit) is returned.
///
/// `memo`: what the jobs of the previous batch kept for later ones ([`Tx::keep_memo`]), handed to this
/// batch's jobs and replaced by what they keep once it commits (a batch that fails leaves none: what
/// it looked up may have been of writes that are not there).
///
/// `journal`: a batch whose jobs all carry a record is made durable by the journal and committed
/// without durability; any other batch (an empty one is a checkpoint) commits durably and empties
/// the journal. A job that arms the journal has its records redone first, in this batch.
fn run_batch(
    backend: &dyn Backend,
    mut batch: Vec<Job>,
    stats: &Stats,
    memo: &mut Option<Box<dyn std::any::Any>>,
    mut journal: Option<&mut JournalState>,
) -> Result<(), (String, Vec<Job>)> {
    let mut finishers = Vec::with_capacity(batch.len());
    let started = Instant::now();
    let mut ran = started;
    stats.jobs.fetch_add(batch.len() as u64, Ordering::Relaxed);
    // An arming job: the journal's records are redone in this batch with its replayer.
    let mut arming = Vec::new();
    for job in &mut batch {
        if let JobJournal::Arm(..) = job.journal
            && let JobJournal::Arm(replay, told) = std::mem::replace(&mut job.journal, JobJournal::None)
        {
            arming.push((replay, told));
        }
    }
    let mut redo: Vec<Vec<u8>> = Vec::new();
    let replay = match (journal.as_deref_mut(), arming.first()) {
        (Some(js), Some((replay, _))) => match js.journal.records() {
            Ok(records) => {
                redo = records;
                Some(replay.clone())
            }
            Err(e) => {
                for (_, told) in arming.drain(..) {
                    let _ = told.send(Err(format!("cannot read the journal: {e}")));
                }
                None
            }
        },
        _ => None,
    };
    let armed = journal.as_ref().is_some_and(|j| j.replayer.is_some());
    let journaled = armed
        && arming.is_empty()
        && !batch.is_empty()
        && !journal.as_ref().is_some_and(|j| j.journal.due())
        && batch.iter().all(|j| matches!(j.journal, JobJournal::Record(_)));
    let mut jobs = Some(batch);
    let mut carried = memo.take();
    let mut kept = None;
    let mut redone = 0usize;
    let mut durable = true;
    let mut appended_from = None;
    let outcome = backend.batch(&mut |port| {
        let mut tx = Tx::new(port);
        tx.memo = carried.take();
        if let Some(replay) = &replay {
            for record in &redo {
                tx.begin_job();
                let done = replay(&mut tx, record);
                if let Err(e) = &done {
                    tracing::warn!(error = %e, "a journal record could not be redone; it is dropped");
                }
                tx.end_job(done.is_ok());
                redone += usize::from(done.is_ok());
            }
        }
        let jobs = jobs.take().unwrap_or_default();
        let reads: Vec<(u64, u32)> = jobs.iter().flat_map(|j| j.reads.iter().copied()).collect();
        tx.prefetch_items(&reads);
        let mut records: Vec<Vec<u8>> = Vec::new();
        for job in jobs {
            tx.begin_job();
            let (ok, finish) = (job.run)(&mut tx);
            tx.end_job(ok);
            if ok && let JobJournal::Record(r) = job.journal {
                records.push(r);
            }
            finishers.push(finish);
        }
        ran = Instant::now();
        kept = tx.memo.take();
        tx.finish()?;
        durable = true;
        if journaled && let Some(js) = journal.as_deref_mut() {
            if records.is_empty() {
                durable = false;
            } else {
                let before = js.journal.len();
                let refs: Vec<&[u8]> = records.iter().map(Vec::as_slice).collect();
                match js.journal.append(&refs) {
                    Ok(()) => {
                        durable = false;
                        appended_from = Some(before);
                    }
                    // Made durable by the store's own commit instead.
                    Err(e) => tracing::warn!(error = %e, "cannot append to the journal; committing durably"),
                }
            }
        }
        Ok(durable)
    });
    if outcome.is_ok() {
        *memo = kept;
    }
    stats.batches.fetch_add(1, Ordering::Relaxed);
    stats.job_micros.fetch_add(micros(ran - started), Ordering::Relaxed);
    stats.commit_micros.fetch_add(micros(ran.elapsed()), Ordering::Relaxed);
    if let Some(js) = journal {
        match &outcome {
            // Everything before a durable commit is durable in the store.
            Ok(()) if durable && (armed || replay.is_some()) => js.journal.clear(),
            Ok(()) => {}
            Err(_) => {
                if let Some(before) = appended_from {
                    js.journal.cut_to(before);
                }
            }
        }
        if outcome.is_ok()
            && let Some(replay) = replay
        {
            if redone > 0 {
                tracing::warn!(records = redone, "redid the journal's records");
            }
            js.replayer = Some(replay);
        }
    }
    for (_, told) in arming {
        let _ = told.send(outcome.as_ref().map(|()| redone).map_err(|f| f.reason.clone()));
    }
    let commit = outcome.as_ref().map(|_| ()).map_err(|f| f.reason.clone());
    for f in finishers {
        f(commit.clone());
    }
    match outcome {
        Ok(()) => Ok(()),
        Err(f) => Err((f.reason, jobs.take().unwrap_or_default())),
    }
}
