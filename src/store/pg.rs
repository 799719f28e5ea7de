//! The PostgreSQL backend (`store.url` / `HAZEFLOW_STORE_URL` = `postgres://…`): the port's twelve
//! tables as plain SQL tables, one batch of jobs per transaction, a job taken back with
//! `ROLLBACK TO SAVEPOINT`, snapshots as `REPEATABLE READ READ ONLY` transactions.
//!
//! Schema: every table is `hazeflow_<name>` with its key columns (`k`, and `k2` for two-part keys:
//! numbers as `bigint`, text as `text COLLATE "C"`, so that text sorts by its bytes as in the embedded
//! file) and the value `v bytea` (JSON documents as UTF-8: `convert_from(v, 'UTF8')::jsonb` reads them
//! in SQL). Migrations are embedded ([`MIGRATIONS`]) and run at start under an advisory lock, so two
//! nodes starting together migrate once; `hazeflow_schema` records the version reached.
//!
//! The client is the blocking `postgres` crate (tokio-postgres underneath): the writer is a thread of
//! its own and the jobs are synchronous closures. Calls made from a task of the daemon's runtime leave
//! the runtime's worker first (`block_in_place`), as the client runs its own small runtime.

use std::cell::RefCell;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use postgres::types::ToSql;
use postgres::{Client, GenericClient, NoTls};

use super::port::{Backend, BatchFailed, Key, ReadPort, Row, Scan, Table, Visit, WritePort};
use super::{FORMAT_VERSION, StoreError};

/// Schema migrations, in order; each runs once, in one transaction.
const MIGRATIONS: &[&str] = &[MIGRATION_1, MIGRATION_2];

const MIGRATION_1: &str = r#"
CREATE TABLE hazeflow_meta (k text COLLATE "C" PRIMARY KEY, v bytea NOT NULL);
CREATE TABLE hazeflow_events (k bigint PRIMARY KEY, v bytea NOT NULL);
CREATE TABLE hazeflow_forecasts (k text COLLATE "C" PRIMARY KEY, v bytea NOT NULL);
CREATE TABLE hazeflow_latest_forecast (k bigint PRIMARY KEY, v bytea NOT NULL);
CREATE TABLE hazeflow_consultations (k bigint PRIMARY KEY, v bytea NOT NULL);
CREATE TABLE hazeflow_region_states (k bigint PRIMARY KEY, v bytea NOT NULL);
CREATE TABLE hazeflow_warnings (k text COLLATE "C" PRIMARY KEY, v bytea NOT NULL);
CREATE TABLE hazeflow_warning_events (k text COLLATE "C", k2 bigint, v bytea NOT NULL, PRIMARY KEY (k, k2));
CREATE TABLE hazeflow_directives (k text COLLATE "C" PRIMARY KEY, v bytea NOT NULL);
CREATE TABLE hazeflow_counters (k text COLLATE "C" PRIMARY KEY, v bytea NOT NULL);
CREATE TABLE hazeflow_docs (k text COLLATE "C", k2 text COLLATE "C", v bytea NOT NULL, PRIMARY KEY (k, k2));
CREATE TABLE hazeflow_items (k bigint, k2 bigint, v bytea NOT NULL, PRIMARY KEY (k, k2));
"#;

/// Leadership: the current term (raised by each new leader) and who holds it.
const MIGRATION_2: &str = r#"
CREATE TABLE hazeflow_leader (
    id integer PRIMARY KEY CHECK (id = 1),
    term bigint NOT NULL,
    node text NOT NULL,
    since timestamptz NOT NULL DEFAULT now()
);
INSERT INTO hazeflow_leader (id, term, node) VALUES (1, 0, '');
"#;

/// The advisory lock a leader holds on its own connection, for as long as it leads.
const LEADER_LOCK: i64 = 0x6861_7a65_6c65_6164; // "hazelead"

/// The advisory lock every batch takes in its transaction: one writer at a time across the nodes
/// (the log's sequence numbers are allocated in the batch).
const WRITE_LOCK: i64 = 0x6861_7a65_7772_6974; // "hazewrit"

/// How often a follower asks for the leader's lock, and a leader checks its connection.
const ELECTION_EVERY: std::time::Duration = std::time::Duration::from_millis(500);

/// A leader that has not heard from the database for this long stops acting as the leader (its
/// workers stop), even while its check has not failed yet (a network cut leaves a call hanging).
const LEASE: std::time::Duration = std::time::Duration::from_secs(3);

/// What the election's session asks of the server, so that the server ends the session of a leader
/// cut off by the network (and so frees the leader's lock) within a few seconds: keepalive probes
/// after 2 s of silence, 1 s apart, 3 of them; data unacknowledged for 4 s ends it too. Settings a
/// server does not know (a PostgreSQL-compatible one) are skipped.
const ELECTION_SESSION: &[&str] = &[
    "SET tcp_keepalives_idle = 2",
    "SET tcp_keepalives_interval = 1",
    "SET tcp_keepalives_count = 3",
    "SET tcp_user_timeout = 4000",
];

/// The advisory lock key under which nodes migrate (one at a time).
const MIGRATION_LOCK: i64 = 0x6861_7a65_666c_6f77; // "hazeflow"

/// Idle read connections kept.
const IDLE_READERS: usize = 8;

/// Rows per statement of a bulk write.
const CHUNK: usize = 5000;

/// The SQL table of a port table.
fn sql_table(t: Table) -> &'static str {
    match t {
        Table::Meta => "hazeflow_meta",
        Table::Events => "hazeflow_events",
        Table::Forecasts => "hazeflow_forecasts",
        Table::Latest => "hazeflow_latest_forecast",
        Table::Consultations => "hazeflow_consultations",
        Table::RegionStates => "hazeflow_region_states",
        Table::Warnings => "hazeflow_warnings",
        Table::WarningEvents => "hazeflow_warning_events",
        Table::Directives => "hazeflow_directives",
        Table::Counters => "hazeflow_counters",
        Table::Docs => "hazeflow_docs",
        Table::Items => "hazeflow_items",
    }
}

/// Whether a table's key has two parts.
fn two_part(t: Table) -> bool {
    matches!(t, Table::WarningEvents | Table::Docs | Table::Items)
}

type Param = Box<dyn ToSql + Sync + Send>;

fn int(v: u64) -> Result<Param, StoreError> {
    i64::try_from(v)
        .map(|v| Box::new(v) as Param)
        .map_err(|_| StoreError::Refused(format!("{v} is too large for the database (at most {})", i64::MAX)))
}

/// The key's parts as query parameters.
fn key_params(table: Table, key: Key<'_>) -> Result<Vec<Param>, StoreError> {
    let fits = matches!(
        (table, key),
        (Table::Events | Table::Consultations, Key::Seq(_))
            | (Table::Latest | Table::RegionStates, Key::Region(_))
            | (
                Table::Meta | Table::Forecasts | Table::Warnings | Table::Directives | Table::Counters,
                Key::Name(_)
            )
            | (Table::WarningEvents, Key::WarningEvent(..))
            | (Table::Docs, Key::Doc(..))
            | (Table::Items, Key::Item(..))
    );
    if !fits {
        return Err(StoreError::Refused(format!("key {key:?} does not fit table {}", table.name())));
    }
    Ok(match key {
        Key::Seq(s) => vec![int(s)?],
        Key::Region(r) => vec![Box::new(i64::from(r))],
        Key::Name(n) => vec![Box::new(n.to_string())],
        Key::WarningEvent(id, s) => vec![Box::new(id.to_string()), int(s)?],
        Key::Doc(c, k) => vec![Box::new(c.to_string()), Box::new(k.to_string())],
        Key::Item(b, i) => vec![int(b)?, Box::new(i64::from(i))],
    })
}

/// The key of a row (`k`, then `k2` where the table has one), as the table shapes it.
fn row_key<'r>(table: Table, row: &'r postgres::Row) -> Result<Key<'r>, StoreError> {
    let e = |err: postgres::Error| StoreError::Corrupt {
        table: table.name(),
        message: err.to_string(),
    };
    let u = |v: i64| u64::try_from(v).unwrap_or(0);
    Ok(match table {
        Table::Events | Table::Consultations => Key::Seq(u(row.try_get(0).map_err(e)?)),
        Table::Latest | Table::RegionStates => Key::Region(u32::try_from(row.try_get::<_, i64>(0).map_err(e)?).unwrap_or(0)),
        Table::Meta | Table::Forecasts | Table::Warnings | Table::Directives | Table::Counters => Key::Name(row.try_get(0).map_err(e)?),
        Table::WarningEvents => Key::WarningEvent(row.try_get(0).map_err(e)?, u(row.try_get(1).map_err(e)?)),
        Table::Docs => Key::Doc(row.try_get(0).map_err(e)?, row.try_get(1).map_err(e)?),
        Table::Items => Key::Item(
            u(row.try_get(0).map_err(e)?),
            u32::try_from(row.try_get::<_, i64>(1).map_err(e)?).unwrap_or(0),
        ),
    })
}

/// Runs `f`, leaving the runtime's worker first when called from a task (the client blocks on a
/// runtime of its own, which tokio refuses inside another).
fn blocking<R: Send>(f: impl FnOnce() -> R + Send) -> R {
    use tokio::runtime::{Handle, RuntimeFlavor};
    match Handle::try_current() {
        Ok(h) if h.runtime_flavor() == RuntimeFlavor::MultiThread => tokio::task::block_in_place(f),
        Ok(_) => std::thread::scope(|s| match s.spawn(f).join() {
            Ok(r) => r,
            Err(panic) => std::panic::resume_unwind(panic),
        }),
        Err(_) => f(),
    }
}

/// A store's location for messages: a path as it is, a connection string without its password.
pub fn safe_location(url: &str) -> String {
    if !(url.starts_with("postgres://") || url.starts_with("postgresql://")) {
        // A path as it is; a `key=value` connection string may hold a password.
        return if url.contains('=') {
            "postgres (key=value settings)".to_string()
        } else {
            url.to_string()
        };
    }
    match url.split_once("://") {
        Some((scheme, rest)) => match rest.rsplit_once('@') {
            Some((user, host)) => {
                let user = user.split(':').next().unwrap_or("");
                format!("{scheme}://{user}@{host}")
            }
            None => url.to_string(),
        },
        None => "postgres (key=value settings)".to_string(),
    }
}

/// Reads over a client or a transaction.
struct Sql<'s> {
    shown: &'s str,
}

impl Sql<'_> {
    fn err(&self, e: impl std::fmt::Display) -> StoreError {
        StoreError::Database {
            path: PathBuf::from(self.shown),
            message: e.to_string(),
        }
    }

    fn query<C: GenericClient + Send>(&self, c: &mut C, sql: &str, params: &[Param]) -> Result<Vec<postgres::Row>, StoreError> {
        let refs: Vec<&(dyn ToSql + Sync)> = params.iter().map(|p| p.as_ref() as &(dyn ToSql + Sync)).collect();
        blocking(|| c.query(sql, &refs)).map_err(|e| self.err(e))
    }

    fn execute<C: GenericClient + Send>(&self, c: &mut C, sql: &str, params: &[Param]) -> Result<u64, StoreError> {
        let refs: Vec<&(dyn ToSql + Sync)> = params.iter().map(|p| p.as_ref() as &(dyn ToSql + Sync)).collect();
        blocking(|| c.execute(sql, &refs)).map_err(|e| self.err(e))
    }

    fn get<C: GenericClient + Send>(&self, c: &mut C, table: Table, key: Key<'_>) -> Result<Option<Vec<u8>>, StoreError> {
        let params = key_params(table, key)?;
        let cond = if two_part(table) { "k = $1 AND k2 = $2" } else { "k = $1" };
        let sql = format!("SELECT v FROM {} WHERE {cond}", sql_table(table));
        let rows = self.query(c, &sql, &params)?;
        rows.first()
            .map(|r| r.try_get::<_, Vec<u8>>(0).map_err(|e| self.err(e)))
            .transpose()
    }

    fn get_many<C: GenericClient + Send>(&self, c: &mut C, table: Table, keys: &[Key<'_>]) -> Result<Vec<Option<Vec<u8>>>, StoreError> {
        // Documents of one collection in one statement; anything else key by key.
        let one_collection = match keys.first() {
            Some(Key::Doc(first, _)) if table == Table::Docs => keys.iter().all(|k| matches!(k, Key::Doc(c, _) if c == first)),
            _ => false,
        };
        if !one_collection {
            return keys.iter().map(|k| self.get(c, table, *k)).collect();
        }
        let Some(Key::Doc(collection, _)) = keys.first() else {
            return Ok(Vec::new());
        };
        let names: Vec<String> = keys
            .iter()
            .filter_map(|k| if let Key::Doc(_, n) = k { Some(n.to_string()) } else { None })
            .collect();
        let mut found = std::collections::HashMap::with_capacity(names.len());
        for chunk in names.chunks(CHUNK) {
            let params: Vec<Param> = vec![Box::new(collection.to_string()), Box::new(chunk.to_vec())];
            for row in self.query(c, "SELECT k2, v FROM hazeflow_docs WHERE k = $1 AND k2 = ANY($2)", &params)? {
                let k: String = row.try_get(0).map_err(|e| self.err(e))?;
                let v: Vec<u8> = row.try_get(1).map_err(|e| self.err(e))?;
                found.insert(k, v);
            }
        }
        Ok(names.iter().map(|n| found.get(n).cloned()).collect())
    }

    fn scan<C: GenericClient + Send>(
        &self,
        c: &mut C,
        table: Table,
        scan: Scan<'_>,
        limit: usize,
        visit: Visit<'_>,
    ) -> Result<(), StoreError> {
        let t = sql_table(table);
        let cols = if two_part(table) { "k, k2, v" } else { "k, v" };
        let order = if two_part(table) { "k, k2" } else { "k" };
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let (sql, params): (String, Vec<Param>) = match (table, scan) {
            (_, Scan::All { rev }) => {
                let dir = if rev { "DESC" } else { "ASC" };
                let order = if two_part(table) {
                    format!("k {dir}, k2 {dir}")
                } else {
                    format!("k {dir}")
                };
                (format!("SELECT {cols} FROM {t} ORDER BY {order} LIMIT $1"), vec![Box::new(limit)])
            }
            (Table::Events | Table::Consultations, Scan::SeqFrom(from)) => (
                format!("SELECT {cols} FROM {t} WHERE k >= $1 ORDER BY {order} LIMIT $2"),
                vec![int(from)?, Box::new(limit)],
            ),
            (Table::WarningEvents, Scan::Warning(id)) => (
                format!("SELECT {cols} FROM {t} WHERE k = $1 ORDER BY {order} LIMIT $2"),
                vec![Box::new(id.to_string()), Box::new(limit)],
            ),
            (Table::Items, Scan::Items { batch, from }) => (
                format!("SELECT {cols} FROM {t} WHERE k = $1 AND k2 >= $2 ORDER BY {order} LIMIT $3"),
                vec![int(batch)?, Box::new(i64::from(from)), Box::new(limit)],
            ),
            (Table::Docs, Scan::Docs { collection, prefix, after }) => {
                let mut sql = format!("SELECT {cols} FROM {t} WHERE k = $1 AND k2 >= $2");
                let mut params: Vec<Param> = vec![Box::new(collection.to_string()), Box::new(prefix.to_string())];
                if !after.is_empty() {
                    params.push(Box::new(after.to_string()));
                    sql.push_str(&format!(" AND k2 > ${}", params.len()));
                }
                if let Some(end) = prefix_end(prefix) {
                    params.push(Box::new(end));
                    sql.push_str(&format!(" AND k2 < ${}", params.len()));
                }
                params.push(Box::new(limit));
                sql.push_str(&format!(" ORDER BY {order} LIMIT ${}", params.len()));
                (sql, params)
            }
            (t, s) => return Err(StoreError::Refused(format!("scan {s:?} does not fit table {}", t.name()))),
        };
        let rows = self.query(c, &sql, &params)?;
        let value_col = if two_part(table) { 2 } else { 1 };
        for row in &rows {
            let key = row_key(table, row)?;
            let v: &[u8] = row.try_get(value_col).map_err(|e| self.err(e))?;
            if !visit(key, v)? {
                break;
            }
        }
        Ok(())
    }

    fn len<C: GenericClient + Send>(&self, c: &mut C, table: Table) -> Result<u64, StoreError> {
        let rows = self.query(c, &format!("SELECT count(*) FROM {}", sql_table(table)), &[])?;
        let n: i64 = rows.first().map_or(Ok(0), |r| r.try_get(0)).map_err(|e| self.err(e))?;
        Ok(u64::try_from(n).unwrap_or(0))
    }
}

/// The least string greater than every string that starts with `prefix` (in byte order, which is
/// code point order for UTF-8); `None` for the empty prefix or one of only `char::MAX`.
fn prefix_end(prefix: &str) -> Option<String> {
    let mut chars: Vec<char> = prefix.chars().collect();
    while let Some(last) = chars.pop() {
        let mut next = last as u32 + 1;
        if (0xD800..=0xDFFF).contains(&next) {
            next = 0xE000;
        }
        if let Some(c) = char::from_u32(next) {
            chars.push(c);
            return Some(chars.into_iter().collect());
        }
    }
    None
}

/// The client's side of noticing a dead server or network, where the connection string does not say
/// otherwise: a connection attempt gives up after 5 s (then the next host of the list is tried), and
/// a connection whose peer stopped answering TCP (keepalive probes after 5 s idle, 2 s apart, 3 of
/// them; data unacknowledged for 10 s) fails instead of hanging.
fn with_timeouts(config: &mut postgres::Config, url: &str) {
    use std::time::Duration;
    if !url.contains("connect_timeout") {
        config.connect_timeout(Duration::from_secs(5));
    }
    if !url.contains("keepalives_idle") {
        config.keepalives_idle(Duration::from_secs(5));
    }
    if !url.contains("keepalives_interval") {
        config.keepalives_interval(Duration::from_secs(2));
    }
    if !url.contains("keepalives_retries") {
        config.keepalives_retries(3);
    }
    if !url.contains("tcp_user_timeout") {
        config.tcp_user_timeout(Duration::from_secs(10));
    }
}

/// The PostgreSQL store.
pub(crate) struct Pg {
    config: postgres::Config,
    shown: String,
    /// The term this node leads in (0: not the leader), checked by every batch (fencing).
    term: Arc<std::sync::atomic::AtomicU64>,
    /// The elector's stop flag and thread.
    stop: Arc<std::sync::atomic::AtomicBool>,
    elector: Mutex<Option<std::thread::JoinHandle<()>>>,
    /// The thread that ends the leadership when the election has not heard from the database (see [`LEASE`]).
    lease: Mutex<Option<std::thread::JoinHandle<()>>>,
    /// The writer's connection (the writer thread only); none until connected or after a failure.
    writer: Mutex<Option<Client>>,
    /// Idle connections for snapshots.
    readers: Arc<Mutex<Vec<Client>>>,
}

impl Pg {
    /// Connects, runs the migrations this build knows and checks the format version.
    pub(crate) fn open(url: &str) -> Result<Pg, StoreError> {
        let shown = safe_location(url);
        let mut config: postgres::Config = url.parse().map_err(|e| StoreError::Database {
            path: PathBuf::from(&shown),
            message: format!("not a PostgreSQL connection string: {e}"),
        })?;
        with_timeouts(&mut config, url);
        let pg = Pg {
            config,
            shown,
            term: Arc::new(std::sync::atomic::AtomicU64::new(0)),
            stop: Arc::new(std::sync::atomic::AtomicBool::new(false)),
            elector: Mutex::new(None),
            lease: Mutex::new(None),
            writer: Mutex::new(None),
            readers: Arc::new(Mutex::new(Vec::new())),
        };
        pg.migrate()?;
        Ok(pg)
    }

    /// Starts the election: a thread that takes the leader's advisory lock on a connection of its own
    /// when it is free, raises the term, and reports the role on `roles`; it lets go (follower) when
    /// that connection fails. `node` names this node in `hazeflow_leader`.
    pub(crate) fn elect(&self, node: String, roles: tokio::sync::watch::Sender<super::Role>) {
        let config = self.config.clone();
        let (term, stop, shown) = (self.term.clone(), self.stop.clone(), self.shown.clone());
        let heard = Arc::new(Heard::default());
        let roles = Arc::new(roles);
        let (heard2, roles2) = (heard.clone(), roles.clone());
        let handle = std::thread::Builder::new()
            .name("store-elector".into())
            .spawn(move || elector(&config, &node, &term, &stop, &roles2, &shown, &heard2));
        match handle {
            Ok(h) => {
                if let Ok(mut g) = self.elector.lock() {
                    *g = Some(h);
                }
            }
            Err(e) => tracing::error!(error = %e, "cannot start the leader election"),
        }
        let (term, stop) = (self.term.clone(), self.stop.clone());
        let lease = std::thread::Builder::new()
            .name("store-lease".into())
            .spawn(move || lease(&term, &stop, &roles, &heard));
        match lease {
            Ok(h) => {
                if let Ok(mut g) = self.lease.lock() {
                    *g = Some(h);
                }
            }
            Err(e) => tracing::error!(error = %e, "cannot start the leader's lease watch"),
        }
    }

    fn sql(&self) -> Sql<'_> {
        Sql { shown: &self.shown }
    }

    fn connect(&self) -> Result<Client, StoreError> {
        let config = self.config.clone();
        blocking(move || config.connect(NoTls)).map_err(|e| self.sql().err(e))
    }

    fn migrate(&self) -> Result<(), StoreError> {
        let sql = self.sql();
        let mut client = self.connect()?;
        let mut tx = blocking(|| client.transaction()).map_err(|e| sql.err(e))?;
        sql.execute(&mut tx, "SELECT pg_advisory_xact_lock($1)", &[Box::new(MIGRATION_LOCK)])?;
        sql.execute(
            &mut tx,
            "CREATE TABLE IF NOT EXISTS hazeflow_schema (version integer NOT NULL)",
            &[],
        )?;
        let rows = sql.query(&mut tx, "SELECT max(version) FROM hazeflow_schema", &[])?;
        let reached: i32 = rows
            .first()
            .and_then(|r| r.try_get::<_, Option<i32>>(0).ok().flatten())
            .unwrap_or(0);
        let known = i32::try_from(MIGRATIONS.len()).unwrap_or(i32::MAX);
        if reached > known {
            return Err(sql.err(format!(
                "the database's schema is at migration {reached}; this hazeflow knows {known} (upgrade hazeflow)"
            )));
        }
        for (i, m) in MIGRATIONS.iter().enumerate().skip(usize::try_from(reached).unwrap_or(0)) {
            blocking(|| tx.batch_execute(m)).map_err(|e| sql.err(format!("migration {}: {e}", i + 1)))?;
            let version = i32::try_from(i + 1).unwrap_or(i32::MAX);
            sql.execute(&mut tx, "INSERT INTO hazeflow_schema (version) VALUES ($1)", &[Box::new(version)])?;
            tracing::info!(migration = i + 1, "store migrated");
        }
        // The data format, as in the embedded file.
        let found = sql.get(&mut tx, Table::Meta, Key::Name("format_version"))?;
        match found.map(|b| u32::from_le_bytes(b.try_into().unwrap_or([0; 4]))) {
            Some(v) if v > FORMAT_VERSION => {
                return Err(StoreError::TooNew {
                    path: PathBuf::from(&self.shown),
                    found: v,
                });
            }
            // An older format is upgraded once the store runs (`upgrade.rs`), if this build can.
            Some(v) if !super::upgrade::can_open(v) => {
                return Err(StoreError::TooOld {
                    path: PathBuf::from(&self.shown),
                    found: v,
                });
            }
            Some(_) => {}
            None => {
                let params: Vec<Param> = vec![
                    Box::new("format_version".to_string()),
                    Box::new(FORMAT_VERSION.to_le_bytes().to_vec()),
                    Box::new(super::upgrade::HISTORY_KEY.to_string()),
                    Box::new(super::upgrade::created_history(chrono::Utc::now())),
                ];
                sql.execute(&mut tx, "INSERT INTO hazeflow_meta (k, v) VALUES ($1, $2), ($3, $4)", &params)?;
            }
        }
        blocking(|| tx.commit()).map_err(|e| sql.err(e))?;
        if let Ok(mut w) = self.writer.lock() {
            *w = Some(client);
        }
        Ok(())
    }
}

impl Backend for Pg {
    fn snapshot(&self) -> Result<Option<Box<dyn ReadPort>>, StoreError> {
        let idle = self.readers.lock().ok().and_then(|mut p| p.pop());
        let mut client = match idle {
            Some(c) if !c.is_closed() => c,
            // Dropping a client blocks (it closes its connection): off the runtime's worker.
            Some(closed) => {
                blocking(move || drop(closed));
                self.connect()?
            }
            None => self.connect()?,
        };
        let sql = self.sql();
        if let Err(e) = blocking(|| client.batch_execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")) {
            blocking(move || drop(client));
            return Err(sql.err(e));
        }
        Ok(Some(Box::new(PgRead {
            client: RefCell::new(Some(client)),
            pool: self.readers.clone(),
            shown: self.shown.clone(),
        })))
    }

    fn batch(&self, run: &mut dyn FnMut(&mut dyn WritePort) -> Result<(), String>) -> Result<(), BatchFailed> {
        let failed = |reason: String| BatchFailed { reason };
        let mut guard = self
            .writer
            .lock()
            .map_err(|_| failed("the writer's connection is poisoned".into()))?;
        if guard.as_ref().is_none_or(Client::is_closed) {
            *guard = Some(self.connect().map_err(|e| failed(e.to_string()))?);
        }
        let Some(client) = guard.as_mut() else {
            return Err(failed("no connection".into()));
        };
        let outcome = match blocking(|| client.transaction()).map_err(|e| failed(e.to_string())) {
            Ok(tx) => {
                let mut port = PgWrite {
                    tx: RefCell::new(tx),
                    shown: &self.shown,
                };
                // One writer at a time across the nodes; a node that led in an earlier term writes
                // nothing more as the leader (fencing).
                let fenced = port.fence(self.term.load(std::sync::atomic::Ordering::SeqCst));
                if let Err(reason) = fenced {
                    if reason.deposed {
                        self.term.store(0, std::sync::atomic::Ordering::SeqCst);
                    }
                    return Err(failed(reason.message));
                }
                match run(&mut port) {
                    Ok(()) => {
                        let tx = port.tx.into_inner();
                        blocking(|| tx.commit()).map_err(|e| failed(e.to_string()))
                    }
                    // Dropping the transaction rolls it back.
                    Err(e) => Err(failed(e)),
                }
            }
            Err(e) => Err(e),
        };
        if outcome.is_err() && guard.as_ref().is_some_and(Client::is_closed) {
            *guard = None;
        }
        outcome
    }

    fn still_writable(&self) -> Result<(), String> {
        let mut guard = self.writer.lock().map_err(|_| "the writer's connection is poisoned".to_string())?;
        if guard.as_ref().is_none_or(Client::is_closed) {
            *guard = Some(self.connect().map_err(|e| e.to_string())?);
        }
        let client = guard.as_mut().ok_or("no connection")?;
        blocking(|| client.batch_execute("SELECT 1")).map_err(|e| e.to_string())
    }

    fn recover(&self) -> Result<(), String> {
        if let Ok(mut g) = self.writer.lock() {
            g.take();
        }
        if let Ok(mut p) = self.readers.lock() {
            p.clear();
        }
        self.still_writable()
    }
}

/// A snapshot: a read-only transaction on a connection of the pool, given back when dropped.
struct PgRead {
    client: RefCell<Option<Client>>,
    pool: Arc<Mutex<Vec<Client>>>,
    shown: String,
}

impl PgRead {
    fn with<R>(&self, f: impl FnOnce(&Sql<'_>, &mut Client) -> Result<R, StoreError>) -> Result<R, StoreError> {
        let sql = Sql { shown: &self.shown };
        let mut c = self.client.borrow_mut();
        let client = c.as_mut().ok_or_else(|| sql.err("the snapshot's connection is gone"))?;
        f(&sql, client)
    }
}

impl Drop for PgRead {
    fn drop(&mut self) {
        // Ending the transaction and closing a connection block: off the runtime's worker.
        if let Some(mut c) = self.client.get_mut().take() {
            let pool = &self.pool;
            blocking(move || {
                if c.batch_execute("COMMIT").is_ok()
                    && let Ok(mut p) = pool.lock()
                    && p.len() < IDLE_READERS
                {
                    p.push(c);
                }
            });
        }
    }
}

impl Drop for Pg {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::SeqCst);
        if let Some(h) = self.elector.get_mut().ok().and_then(Option::take) {
            let _ = blocking(move || h.join());
        }
        if let Some(h) = self.lease.get_mut().ok().and_then(Option::take) {
            let _ = blocking(move || h.join());
        }
        // Closing a connection blocks: off the runtime's worker.
        let writer = self.writer.get_mut().ok().and_then(Option::take);
        let readers = self.readers.lock().map(|mut p| std::mem::take(&mut *p)).unwrap_or_default();
        blocking(move || drop((writer, readers)));
    }
}

impl ReadPort for PgRead {
    fn get(&self, table: Table, key: Key<'_>) -> Result<Option<Vec<u8>>, StoreError> {
        self.with(|s, c| s.get(c, table, key))
    }
    fn get_many(&self, table: Table, keys: &[Key<'_>]) -> Result<Vec<Option<Vec<u8>>>, StoreError> {
        self.with(|s, c| s.get_many(c, table, keys))
    }
    fn scan(&self, table: Table, scan: Scan<'_>, limit: usize, visit: Visit<'_>) -> Result<(), StoreError> {
        self.with(|s, c| s.scan(c, table, scan, limit, visit))
    }
    fn len(&self, table: Table) -> Result<u64, StoreError> {
        self.with(|s, c| s.len(c, table))
    }
}

/// Why a batch was refused before it ran.
struct Fenced {
    message: String,
    /// This node lost the leadership.
    deposed: bool,
}

/// The election's loop (see [`Pg::elect`]).
fn elector(
    config: &postgres::Config,
    node: &str,
    term: &std::sync::atomic::AtomicU64,
    stop: &std::sync::atomic::AtomicBool,
    roles: &tokio::sync::watch::Sender<super::Role>,
    shown: &str,
    heard: &Heard,
) {
    use std::sync::atomic::Ordering;
    let follow = |why: &str| {
        if term.swap(0, Ordering::SeqCst) != 0 {
            tracing::warn!(reason = why, "no longer the leader");
        }
        roles.send_replace(super::Role::Follower);
    };
    while !stop.load(Ordering::SeqCst) {
        let mut client = match config.connect(NoTls) {
            Ok(c) => c,
            Err(e) => {
                follow("the election's connection failed");
                tracing::warn!(database = shown, error = %e, "cannot reach the database for the election; trying again");
                std::thread::sleep(ELECTION_EVERY);
                continue;
            }
        };
        for set in ELECTION_SESSION {
            if let Err(e) = client.batch_execute(set) {
                tracing::debug!(setting = set, error = %e, "the server does not take this setting");
            }
        }
        while !stop.load(Ordering::SeqCst) {
            if term.load(Ordering::SeqCst) != 0 {
                // Leading: the lock lasts as long as this connection.
                if let Err(e) = client.batch_execute("SELECT 1") {
                    tracing::warn!(error = %e, "the leader's connection failed");
                    follow("the leader's connection failed");
                    break;
                }
                heard.now();
            } else {
                let got = client
                    .query_one("SELECT pg_try_advisory_lock($1)", &[&LEADER_LOCK])
                    .and_then(|r| r.try_get::<_, bool>(0));
                match got {
                    Ok(true) => {
                        let raised = client
                            .query_one(
                                "UPDATE hazeflow_leader SET term = term + 1, node = $1, since = now() WHERE id = 1 RETURNING term",
                                &[&node],
                            )
                            .and_then(|r| r.try_get::<_, i64>(0));
                        match raised {
                            Ok(t) => {
                                let t = u64::try_from(t).unwrap_or(0);
                                heard.now();
                                term.store(t, Ordering::SeqCst);
                                tracing::info!(term = t, node, "this node leads");
                                roles.send_replace(super::Role::Leader { term: t });
                            }
                            Err(e) => {
                                tracing::warn!(error = %e, "took the leader's lock but cannot raise the term");
                                break;
                            }
                        }
                    }
                    Ok(false) => {
                        if *roles.borrow() != super::Role::Follower {
                            roles.send_replace(super::Role::Follower);
                        }
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "the election's connection failed");
                        follow("the election's connection failed");
                        break;
                    }
                }
            }
            std::thread::sleep(ELECTION_EVERY);
        }
    }
    follow("stopping");
}

/// When the election last heard from the database (milliseconds since the elector started).
struct Heard {
    since: std::time::Instant,
    at_ms: std::sync::atomic::AtomicU64,
}

impl Default for Heard {
    fn default() -> Self {
        Heard {
            since: std::time::Instant::now(),
            at_ms: std::sync::atomic::AtomicU64::new(0),
        }
    }
}

impl Heard {
    fn now(&self) {
        let ms = u64::try_from(self.since.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.at_ms.store(ms, std::sync::atomic::Ordering::SeqCst);
    }

    fn silent_for(&self) -> std::time::Duration {
        let at = std::time::Duration::from_millis(self.at_ms.load(std::sync::atomic::Ordering::SeqCst));
        self.since.elapsed().saturating_sub(at)
    }
}

/// The leader's lease: a leader whose election has not heard from the database for [`LEASE`] (its
/// check hangs on a cut network) stops acting as the leader; it leads again only through a new
/// election (a new term). Writes are fenced by the term anyway; this stops its workers (mail
/// included) while the database cannot tell it that another node leads.
fn lease(
    term: &std::sync::atomic::AtomicU64,
    stop: &std::sync::atomic::AtomicBool,
    roles: &tokio::sync::watch::Sender<super::Role>,
    heard: &Heard,
) {
    use std::sync::atomic::Ordering;
    while !stop.load(Ordering::SeqCst) {
        std::thread::sleep(ELECTION_EVERY / 2);
        let silent = heard.silent_for();
        if silent > LEASE && term.load(Ordering::SeqCst) != 0 {
            let was = term.swap(0, Ordering::SeqCst);
            if was != 0 {
                tracing::warn!(
                    term = was,
                    silent_ms = u64::try_from(silent.as_millis()).unwrap_or(u64::MAX),
                    "no answer from the database within the lease: no longer acting as the leader"
                );
                roles.send_replace(super::Role::Follower);
            }
        }
    }
}

/// The transaction of one batch.
struct PgWrite<'c> {
    tx: RefCell<postgres::Transaction<'c>>,
    shown: &'c str,
}

impl<'c> PgWrite<'c> {
    fn sql(&self) -> Sql<'c> {
        Sql { shown: self.shown }
    }

    fn upsert_sql(table: Table) -> String {
        let t = sql_table(table);
        if two_part(table) {
            format!("INSERT INTO {t} (k, k2, v) VALUES ($1, $2, $3) ON CONFLICT (k, k2) DO UPDATE SET v = EXCLUDED.v")
        } else {
            format!("INSERT INTO {t} (k, v) VALUES ($1, $2) ON CONFLICT (k) DO UPDATE SET v = EXCLUDED.v")
        }
    }

    /// Takes the write lock and checks the term: `mine` (0 when this node does not lead) must still be
    /// the current one.
    fn fence(&mut self, mine: u64) -> Result<(), Fenced> {
        let s = self.sql();
        let plain = |e: StoreError| Fenced {
            message: e.to_string(),
            deposed: false,
        };
        s.execute(self.tx.get_mut(), "SELECT pg_advisory_xact_lock($1)", &[Box::new(WRITE_LOCK)])
            .map_err(plain)?;
        if mine == 0 {
            return Ok(());
        }
        let rows = s
            .query(self.tx.get_mut(), "SELECT term FROM hazeflow_leader WHERE id = 1", &[])
            .map_err(plain)?;
        let current: i64 = rows.first().and_then(|r| r.try_get(0).ok()).unwrap_or(0);
        if u64::try_from(current).ok() == Some(mine) {
            Ok(())
        } else {
            Err(Fenced {
                message: format!(
                    "this node led in term {mine}, but the leader is now in term {current}: it writes nothing more as the leader"
                ),
                deposed: true,
            })
        }
    }

    fn statement(&self, sql: &str) -> Result<(), StoreError> {
        let s = self.sql();
        let mut tx = self.tx.borrow_mut();
        let tx = &mut *tx;
        blocking(|| tx.batch_execute(sql)).map_err(|e| s.err(e))
    }

    /// One chunk of a bulk write: rows with their keys as parameter arrays.
    fn put_chunk(&mut self, table: Table, keys: Vec<Key<'_>>, values: Vec<Vec<u8>>) -> Result<(), StoreError> {
        let s = self.sql();
        let t = sql_table(table);
        let (sql, params): (String, Vec<Param>) = match table {
            Table::Docs => {
                let (mut c, mut k) = (Vec::with_capacity(keys.len()), Vec::with_capacity(keys.len()));
                for key in &keys {
                    let Key::Doc(a, b) = *key else {
                        return Err(StoreError::Refused(format!("key {key:?} does not fit docs")));
                    };
                    c.push(a.to_string());
                    k.push(b.to_string());
                }
                (
                    format!(
                        "INSERT INTO {t} (k, k2, v) SELECT * FROM unnest($1::text[], $2::text[], $3::bytea[]) ON CONFLICT (k, k2) DO UPDATE SET v = EXCLUDED.v"
                    ),
                    vec![Box::new(c), Box::new(k), Box::new(values)],
                )
            }
            _ => {
                let (mut b, mut i) = (Vec::with_capacity(keys.len()), Vec::with_capacity(keys.len()));
                for key in &keys {
                    let Key::Item(x, y) = *key else {
                        return Err(StoreError::Refused(format!("key {key:?} does not fit items")));
                    };
                    b.push(i64::try_from(x).map_err(|_| StoreError::Refused(format!("batch {x} is too large")))?);
                    i.push(i64::from(y));
                }
                (
                    format!(
                        "INSERT INTO {t} (k, k2, v) SELECT * FROM unnest($1::bigint[], $2::bigint[], $3::bytea[]) ON CONFLICT (k, k2) DO UPDATE SET v = EXCLUDED.v"
                    ),
                    vec![Box::new(b), Box::new(i), Box::new(values)],
                )
            }
        };
        s.execute(self.tx.get_mut(), &sql, &params).map(drop)
    }
}

impl ReadPort for PgWrite<'_> {
    fn get(&self, table: Table, key: Key<'_>) -> Result<Option<Vec<u8>>, StoreError> {
        self.sql().get(&mut *self.tx.borrow_mut(), table, key)
    }
    fn get_many(&self, table: Table, keys: &[Key<'_>]) -> Result<Vec<Option<Vec<u8>>>, StoreError> {
        self.sql().get_many(&mut *self.tx.borrow_mut(), table, keys)
    }
    fn scan(&self, table: Table, scan: Scan<'_>, limit: usize, visit: Visit<'_>) -> Result<(), StoreError> {
        self.sql().scan(&mut *self.tx.borrow_mut(), table, scan, limit, visit)
    }
    fn len(&self, table: Table) -> Result<u64, StoreError> {
        self.sql().len(&mut *self.tx.borrow_mut(), table)
    }
}

impl WritePort for PgWrite<'_> {
    fn put(&mut self, table: Table, key: Key<'_>, value: &[u8]) -> Result<(), StoreError> {
        let mut params = key_params(table, key)?;
        params.push(Box::new(value.to_vec()));
        let s = self.sql();
        s.execute(self.tx.get_mut(), &Self::upsert_sql(table), &params).map(drop)
    }

    fn put_many<'k>(&mut self, table: Table, n: usize, row: Row<'_, 'k>) -> Result<(), StoreError> {
        if !matches!(table, Table::Docs | Table::Items) {
            let mut buf = Vec::new();
            for i in 0..n {
                buf.clear();
                let key = row(i, &mut buf)?;
                let value = std::mem::take(&mut buf);
                self.put(table, key, &value)?;
                buf = value;
            }
            return Ok(());
        }
        let mut keys: Vec<Key<'k>> = Vec::with_capacity(CHUNK.min(n));
        let mut values: Vec<Vec<u8>> = Vec::with_capacity(CHUNK.min(n));
        for i in 0..n {
            let mut buf = Vec::with_capacity(256);
            let key = row(i, &mut buf)?;
            // A key written twice in one statement is refused by PostgreSQL: the later value wins.
            if let Some(at) = keys.iter().rposition(|k| *k == key) {
                values[at] = buf;
                continue;
            }
            keys.push(key);
            values.push(buf);
            if keys.len() == CHUNK {
                self.put_chunk(table, std::mem::take(&mut keys), std::mem::take(&mut values))?;
            }
        }
        if !keys.is_empty() {
            self.put_chunk(table, keys, values)?;
        }
        Ok(())
    }

    fn remove(&mut self, table: Table, key: Key<'_>) -> Result<(), StoreError> {
        let params = key_params(table, key)?;
        let cond = if two_part(table) { "k = $1 AND k2 = $2" } else { "k = $1" };
        let s = self.sql();
        s.execute(
            self.tx.get_mut(),
            &format!("DELETE FROM {} WHERE {cond}", sql_table(table)),
            &params,
        )
        .map(drop)
    }

    fn begin_job(&mut self) -> Result<(), StoreError> {
        self.statement("SAVEPOINT hazeflow_job")
    }

    fn end_job(&mut self, ok: bool) -> Result<(), StoreError> {
        if ok {
            self.statement("RELEASE SAVEPOINT hazeflow_job")
        } else {
            self.statement("ROLLBACK TO SAVEPOINT hazeflow_job; RELEASE SAVEPOINT hazeflow_job")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::prefix_end;

    #[test]
    fn prefix_ends_bound_every_key_with_the_prefix() {
        assert_eq!(prefix_end(""), None);
        assert_eq!(prefix_end("140100/").as_deref(), Some("1401000"));
        assert_eq!(prefix_end("a\u{D7FF}").as_deref(), Some("a\u{E000}"));
        assert_eq!(prefix_end("b\u{10FFFF}").as_deref(), Some("c"));
        for key in ["140100/", "140100/x", "140100/\u{10FFFF}"] {
            assert!(key < "1401000");
        }
    }
}
