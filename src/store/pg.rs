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

use super::port::{Backend, BatchFailed, Key, OwnedKey, ReadPort, Row, Scan, Table, Visit, WritePort};
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

/// Connections for snapshots, at most (a snapshot waits for one when all are in use).
const READERS: usize = 8;

/// How long a snapshot waits for a connection when all are in use.
const READER_WAIT: std::time::Duration = std::time::Duration::from_secs(10);

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

/// The statements prepared on one connection, by their SQL text (each text is prepared once per
/// connection, then only bound and executed: one round trip per statement instead of two).
type Stmts = std::collections::HashMap<String, postgres::Statement>;

/// Prepared statements kept per connection (the texts are a few dozen; the bound is a safeguard).
const MAX_STATEMENTS: usize = 512;

/// A connection and the statements prepared on it.
struct Conn {
    client: Client,
    stmts: RefCell<Stmts>,
}

impl Conn {
    fn new(client: Client) -> Conn {
        Conn {
            client,
            stmts: RefCell::new(Stmts::new()),
        }
    }

    fn is_closed(&self) -> bool {
        self.client.is_closed()
    }
}

/// Reads over a client or a transaction.
struct Sql<'s> {
    shown: &'s str,
    /// The connection's prepared statements (none: each statement is prepared unnamed).
    stmts: Option<&'s RefCell<Stmts>>,
}

impl Sql<'_> {
    fn err(&self, e: impl std::fmt::Display) -> StoreError {
        StoreError::Database {
            path: PathBuf::from(self.shown),
            message: e.to_string(),
        }
    }

    /// The prepared statement of `sql` on this connection (prepared now if it is new).
    fn statement<C: GenericClient + Send>(&self, c: &mut C, sql: &str) -> Result<Option<postgres::Statement>, StoreError> {
        let Some(cache) = self.stmts else { return Ok(None) };
        if let Some(st) = cache.borrow().get(sql) {
            return Ok(Some(st.clone()));
        }
        let st = blocking(|| c.prepare(sql)).map_err(|e| self.err(e))?;
        let mut m = cache.borrow_mut();
        if m.len() >= MAX_STATEMENTS {
            m.clear();
        }
        m.insert(sql.to_string(), st.clone());
        Ok(Some(st))
    }

    fn query<C: GenericClient + Send>(&self, c: &mut C, sql: &str, params: &[Param]) -> Result<Vec<postgres::Row>, StoreError> {
        let st = self.statement(c, sql)?;
        let refs: Vec<&(dyn ToSql + Sync)> = params.iter().map(|p| p.as_ref() as &(dyn ToSql + Sync)).collect();
        match st {
            Some(st) => blocking(|| c.query(&st, &refs)),
            None => blocking(|| c.query(sql, &refs)),
        }
        .map_err(|e| self.err(e))
    }

    fn execute<C: GenericClient + Send>(&self, c: &mut C, sql: &str, params: &[Param]) -> Result<u64, StoreError> {
        let st = self.statement(c, sql)?;
        let refs: Vec<&(dyn ToSql + Sync)> = params.iter().map(|p| p.as_ref() as &(dyn ToSql + Sync)).collect();
        match st {
            Some(st) => blocking(|| c.execute(&st, &refs)),
            None => blocking(|| c.execute(sql, &refs)),
        }
        .map_err(|e| self.err(e))
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
        // Items in one statement.
        if table == Table::Items && keys.len() > 1 {
            let (mut runs, mut indexes) = (Vec::with_capacity(keys.len()), Vec::with_capacity(keys.len()));
            for k in keys {
                let Key::Item(b, i) = *k else {
                    return Err(StoreError::Refused(format!("key {k:?} does not fit items")));
                };
                runs.push(i64::try_from(b).map_err(|_| StoreError::Refused(format!("run {b} is too large")))?);
                indexes.push(i64::from(i));
            }
            let mut found = std::collections::HashMap::with_capacity(keys.len());
            for (r, i) in runs.chunks(CHUNK).zip(indexes.chunks(CHUNK)) {
                let params: Vec<Param> = vec![Box::new(r.to_vec()), Box::new(i.to_vec())];
                let sql = "SELECT k, k2, v FROM hazeflow_items WHERE (k, k2) IN (SELECT * FROM unnest($1::bigint[], $2::bigint[]))";
                for row in self.query(c, sql, &params)? {
                    let k: i64 = row.try_get(0).map_err(|e| self.err(e))?;
                    let k2: i64 = row.try_get(1).map_err(|e| self.err(e))?;
                    let v: Vec<u8> = row.try_get(2).map_err(|e| self.err(e))?;
                    found.insert((k, k2), v);
                }
            }
            return Ok(runs.iter().zip(&indexes).map(|(r, i)| found.get(&(*r, *i)).cloned()).collect());
        }
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
    writer: Mutex<Option<Conn>>,
    /// Idle connections for snapshots.
    readers: Arc<Readers>,
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
            readers: Arc::new(Readers::default()),
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
        Sql {
            shown: &self.shown,
            stmts: None,
        }
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
            *w = Some(Conn::new(client));
        }
        Ok(())
    }
}

impl Backend for Pg {
    fn snapshot(&self) -> Result<Option<Box<dyn ReadPort>>, StoreError> {
        let sql = self.sql();
        let config = &self.config;
        let mut conn = blocking(|| self.readers.take(|| config.connect(NoTls))).map_err(|e| sql.err(e))?;
        let client = &mut conn.client;
        if let Err(e) = blocking(|| client.batch_execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")) {
            let readers = &self.readers;
            blocking(move || readers.give(false, Some(conn)));
            return Err(sql.err(e));
        }
        Ok(Some(Box::new(PgRead {
            client: RefCell::new(Some(conn)),
            pool: self.readers.clone(),
            shown: self.shown.clone(),
        })))
    }

    fn batch(&self, run: &mut dyn FnMut(&mut dyn WritePort) -> Result<bool, String>) -> Result<(), BatchFailed> {
        let failed = |reason: String| BatchFailed { reason };
        let mut guard = self
            .writer
            .lock()
            .map_err(|_| failed("the writer's connection is poisoned".into()))?;
        if guard.as_ref().is_none_or(Conn::is_closed) {
            *guard = Some(Conn::new(self.connect().map_err(|e| failed(e.to_string()))?));
        }
        let Some(Conn { client, stmts }) = guard.as_mut() else {
            return Err(failed("no connection".into()));
        };
        // One round trip: the transaction, the write lock (one writer at a time across the nodes),
        // and the term, read after the lock is held (fencing: a node that led in an earlier term
        // writes nothing more as the leader).
        let mine = self.term.load(std::sync::atomic::Ordering::SeqCst);
        let begin = if mine == 0 {
            format!("BEGIN; SELECT pg_advisory_xact_lock({WRITE_LOCK})")
        } else {
            format!("BEGIN; SELECT pg_advisory_xact_lock({WRITE_LOCK}); SELECT term FROM hazeflow_leader WHERE id = 1")
        };
        let outcome = match blocking(|| client.simple_query(&begin)) {
            Err(e) => {
                let _ = blocking(|| client.batch_execute("ROLLBACK"));
                Err(failed(e.to_string()))
            }
            Ok(answers) => {
                if let Err(reason) = fence(mine, &answers) {
                    if reason.deposed {
                        self.term.store(0, std::sync::atomic::Ordering::SeqCst);
                    }
                    let _ = blocking(|| client.batch_execute("ROLLBACK"));
                    return Err(failed(reason.message));
                }
                let mut port = PgWrite {
                    client: RefCell::new(&mut *client),
                    stmts,
                    shown: &self.shown,
                    buf: RefCell::new(Buffer::default()),
                };
                // The writes still buffered go out before the commit.
                // Always durable: PostgreSQL has no journal here.
                let done = run(&mut port).and_then(|_durable| port.send_pending(None).map_err(|e| e.to_string()));
                drop(port);
                match done {
                    Ok(()) => blocking(|| client.batch_execute("COMMIT")).map_err(|e| failed(e.to_string())),
                    Err(e) => {
                        let _ = blocking(|| client.batch_execute("ROLLBACK"));
                        Err(failed(e))
                    }
                }
            }
        };
        if outcome.is_err() && guard.as_ref().is_some_and(Conn::is_closed) {
            *guard = None;
        }
        outcome
    }

    fn still_writable(&self) -> Result<(), String> {
        let mut guard = self.writer.lock().map_err(|_| "the writer's connection is poisoned".to_string())?;
        if guard.as_ref().is_none_or(Conn::is_closed) {
            *guard = Some(Conn::new(self.connect().map_err(|e| e.to_string())?));
        }
        let client = &mut guard.as_mut().ok_or("no connection")?.client;
        blocking(|| client.batch_execute("SELECT 1")).map_err(|e| e.to_string())
    }

    fn recover(&self) -> Result<(), String> {
        if let Ok(mut g) = self.writer.lock() {
            g.take();
        }
        let idle = self.readers.forget_idle();
        blocking(move || drop(idle));
        self.still_writable()
    }
}

/// The snapshots' connections: at most [`READERS`] open; a snapshot waits for one while all are in
/// use (rather than opening more, which would cost the server a process each and could pass its
/// `max_connections`).
#[derive(Default)]
struct Readers {
    state: Mutex<ReadersState>,
    freed: std::sync::Condvar,
}

#[derive(Default)]
struct ReadersState {
    idle: Vec<Conn>,
    /// Open: idle or in use.
    open: usize,
}

impl Readers {
    /// An idle connection, a new one while fewer than [`READERS`] are open, or the next one given
    /// back (at most [`READER_WAIT`]). Blocks.
    fn take(&self, connect: impl Fn() -> Result<Client, postgres::Error>) -> Result<Conn, String> {
        let deadline = std::time::Instant::now() + READER_WAIT;
        let mut st = self.state.lock().map_err(|_| "the snapshot pool is poisoned".to_string())?;
        loop {
            if let Some(c) = st.idle.pop() {
                if !c.is_closed() {
                    return Ok(c);
                }
                st.open -= 1;
                drop(c);
                continue;
            }
            if st.open < READERS {
                st.open += 1;
                drop(st);
                return match connect() {
                    Ok(c) => Ok(Conn::new(c)),
                    Err(e) => {
                        self.give(false, None);
                        Err(e.to_string())
                    }
                };
            }
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            if left.is_zero() {
                return Err(format!(
                    "no connection for a snapshot within {} s: all {READERS} are in use",
                    READER_WAIT.as_secs()
                ));
            }
            st = self
                .freed
                .wait_timeout(st, left)
                .map_err(|_| "the snapshot pool is poisoned".to_string())?
                .0;
        }
    }

    /// Gives a connection back: kept when `keep` (its transaction ended well), else closed (`None`: a
    /// connection that could not be opened).
    fn give(&self, keep: bool, conn: Option<Conn>) {
        let closed = match self.state.lock() {
            Ok(mut st) => match conn {
                Some(c) if keep => {
                    st.idle.push(c);
                    None
                }
                other => {
                    st.open = st.open.saturating_sub(1);
                    other
                }
            },
            Err(_) => conn,
        };
        self.freed.notify_one();
        // Closing a connection blocks; the callers are off the runtime's worker.
        drop(closed);
    }

    /// The idle connections, taken out of the pool (to be closed).
    fn forget_idle(&self) -> Vec<Conn> {
        match self.state.lock() {
            Ok(mut st) => {
                let idle = std::mem::take(&mut st.idle);
                st.open = st.open.saturating_sub(idle.len());
                idle
            }
            Err(_) => Vec::new(),
        }
    }
}

/// A snapshot: a read-only transaction on a connection of the pool, given back when dropped.
struct PgRead {
    client: RefCell<Option<Conn>>,
    pool: Arc<Readers>,
    shown: String,
}

impl PgRead {
    fn with<R>(&self, f: impl FnOnce(&Sql<'_>, &mut Client) -> Result<R, StoreError>) -> Result<R, StoreError> {
        let mut c = self.client.borrow_mut();
        let Some(Conn { client, stmts }) = c.as_mut() else {
            return Err(Sql {
                shown: &self.shown,
                stmts: None,
            }
            .err("the snapshot's connection is gone"));
        };
        let sql = Sql {
            shown: &self.shown,
            stmts: Some(stmts),
        };
        f(&sql, client)
    }
}

impl Drop for PgRead {
    fn drop(&mut self) {
        // Ending the transaction and closing a connection block: off the runtime's worker.
        if let Some(mut c) = self.client.get_mut().take() {
            let pool = &self.pool;
            blocking(move || {
                let ended = c.client.batch_execute("COMMIT").is_ok();
                pool.give(ended, Some(c));
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
        let readers = self.readers.forget_idle();
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

/// Checks the term read after the write lock was taken (the answers of the batch's first round
/// trip): `mine` (0 when this node does not lead) must still be the current one.
fn fence(mine: u64, answers: &[postgres::SimpleQueryMessage]) -> Result<(), Fenced> {
    if mine == 0 {
        return Ok(());
    }
    let current: i64 = answers
        .iter()
        .rev()
        .find_map(|m| match m {
            postgres::SimpleQueryMessage::Row(r) => r.get(0).and_then(|t| t.parse().ok()),
            _ => None,
        })
        .unwrap_or(0);
    if u64::try_from(current).ok() == Some(mine) {
        Ok(())
    } else {
        Err(Fenced {
            message: format!("this node led in term {mine}, but the leader is now in term {current}: it writes nothing more as the leader"),
            deposed: true,
        })
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

/// A cell of a table: the write buffer's and the read cache's key.
type Cell = (Table, OwnedKey);

/// Values the read cache holds at most (it is cleared when full).
const KNOWN_MAX: usize = 16_384;

/// Rows of a bulk write above which they go to the server at once rather than through the buffer.
const BUFFERED_ROWS: usize = 256;

/// What a batch's transaction keeps on the client: the writes not yet sent, the values it has read,
/// and how to take back the running job.
///
/// Within a batch the transaction holds the write lock (no other node writes), so a value read once
/// stays what the server holds until this transaction writes it: reads are answered from the buffer
/// and the cache first. Writes are sent grouped (one statement per table and kind) before a scan or a
/// count, before a bulk write, and before the commit. A job is taken back on the client as long as its
/// writes are still buffered; once some were sent, a savepoint taken before them is rolled back.
#[derive(Default)]
struct Buffer {
    /// Writes not yet sent: the value, or `None` for a removal.
    pending: std::collections::HashMap<Cell, Option<Vec<u8>>>,
    /// Values as the server holds them in this transaction (read or sent); `None`: absent.
    known: std::collections::HashMap<Cell, Option<Vec<u8>>>,
    /// The running job's changes to `pending`: the entry before (`None`: there was none).
    undo: Vec<(Cell, Option<Option<Vec<u8>>>)>,
    /// A job is running.
    in_job: bool,
    /// The running job sent writes after the savepoint `hazeflow_job`.
    savepoint: bool,
    /// A statement failed where no savepoint can take it back: the transaction is aborted.
    broken: Option<String>,
}

impl Buffer {
    fn remember(&mut self, cell: Cell, value: Option<Vec<u8>>) {
        if self.known.len() >= KNOWN_MAX {
            self.known.clear();
        }
        self.known.insert(cell, value);
    }

    /// The value at `cell` if the client knows it.
    fn lookup(&self, cell: &Cell) -> Option<Option<Vec<u8>>> {
        self.pending.get(cell).or_else(|| self.known.get(cell)).cloned()
    }

    fn write(&mut self, cell: Cell, value: Option<Vec<u8>>) {
        let before = self.pending.insert(cell.clone(), value);
        if self.in_job {
            self.undo.push((cell, before));
        }
    }
}

/// A key's parts as arrays, one per key column (bulk statements over `unnest`).
enum Column {
    Int(Vec<i64>),
    Text(Vec<String>),
}

impl Column {
    fn sql_type(&self) -> &'static str {
        match self {
            Column::Int(_) => "bigint",
            Column::Text(_) => "text",
        }
    }

    fn param(self) -> Param {
        match self {
            Column::Int(v) => Box::new(v),
            Column::Text(v) => Box::new(v),
        }
    }
}

/// The key columns of `keys` (each of `table`'s shape).
fn key_columns(table: Table, keys: &[&OwnedKey]) -> Result<Vec<Column>, StoreError> {
    let i = |v: u64| i64::try_from(v).map_err(|_| StoreError::Refused(format!("{v} is too large for the database")));
    let misfit = |k: &OwnedKey| StoreError::Refused(format!("key {k:?} does not fit table {}", table.name()));
    let n = keys.len();
    Ok(match table {
        Table::Events | Table::Consultations | Table::Latest | Table::RegionStates => {
            let mut a = Vec::with_capacity(n);
            for k in keys {
                match k {
                    OwnedKey::Seq(s) => a.push(i(*s)?),
                    OwnedKey::Region(r) => a.push(i64::from(*r)),
                    other => return Err(misfit(other)),
                }
            }
            vec![Column::Int(a)]
        }
        Table::Meta | Table::Forecasts | Table::Warnings | Table::Directives | Table::Counters => {
            let mut a = Vec::with_capacity(n);
            for k in keys {
                let OwnedKey::Name(s) = k else { return Err(misfit(k)) };
                a.push(s.clone());
            }
            vec![Column::Text(a)]
        }
        Table::WarningEvents => {
            let (mut a, mut b) = (Vec::with_capacity(n), Vec::with_capacity(n));
            for k in keys {
                let OwnedKey::WarningEvent(id, s) = k else { return Err(misfit(k)) };
                a.push(id.clone());
                b.push(i(*s)?);
            }
            vec![Column::Text(a), Column::Int(b)]
        }
        Table::Docs => {
            let (mut a, mut b) = (Vec::with_capacity(n), Vec::with_capacity(n));
            for k in keys {
                let OwnedKey::Doc(c, d) = k else { return Err(misfit(k)) };
                a.push(c.clone());
                b.push(d.clone());
            }
            vec![Column::Text(a), Column::Text(b)]
        }
        Table::Items => {
            let (mut a, mut b) = (Vec::with_capacity(n), Vec::with_capacity(n));
            for k in keys {
                let OwnedKey::Item(x, y) = k else { return Err(misfit(k)) };
                a.push(i(*x)?);
                b.push(i64::from(*y));
            }
            vec![Column::Int(a), Column::Int(b)]
        }
    })
}

/// Checks what the server would refuse in a key, so that a job is refused when it writes it (a
/// write's error would otherwise surface only when the buffer is sent, and fail the whole batch).
fn check_key(table: Table, key: Key<'_>) -> Result<(), StoreError> {
    key_params(table, key)?;
    let text_ok = |s: &str| !s.contains('\0');
    let fine = match key {
        Key::Name(a) => text_ok(a),
        Key::WarningEvent(a, s) => text_ok(a) && i64::try_from(s).is_ok(),
        Key::Doc(a, b) => text_ok(a) && text_ok(b),
        Key::Seq(s) | Key::Item(s, _) => i64::try_from(s).is_ok(),
        Key::Region(_) => true,
    };
    if fine {
        Ok(())
    } else {
        Err(StoreError::Refused(format!(
            "key {key:?} cannot be stored (a NUL character or a number too large)"
        )))
    }
}

/// Statements sent as one (parts of one `WITH`), at most.
const MAX_PARTS: usize = 16;

/// `sql` with its parameter places `${0}`, `${1}`, … numbered from `$1 + offset`.
fn numbered(sql: &str, offset: usize) -> String {
    let mut out = sql.to_string();
    for i in (0..4).rev() {
        out = out.replace(&format!("${{{i}}}"), &format!("${}", i + offset + 1));
    }
    out
}

/// The writes to one table: (the table, its rows to write, its keys to remove).
type TableWrites = (Table, Vec<(OwnedKey, Vec<u8>)>, Vec<OwnedKey>);

/// The transaction of one batch.
struct PgWrite<'c> {
    /// The writer's connection, inside the batch's transaction.
    client: RefCell<&'c mut Client>,
    stmts: &'c RefCell<Stmts>,
    shown: &'c str,
    buf: RefCell<Buffer>,
}

impl<'c> PgWrite<'c> {
    fn sql(&self) -> Sql<'c> {
        Sql {
            shown: self.shown,
            stmts: Some(self.stmts),
        }
    }

    /// A statement's outcome; an error outside a savepoint leaves the transaction aborted, so the
    /// batch must fail (noted in `broken`).
    fn checked<R>(&self, r: Result<R, StoreError>) -> Result<R, StoreError> {
        if let Err(e) = &r {
            let mut b = self.buf.borrow_mut();
            if !(b.in_job && b.savepoint) && b.broken.is_none() {
                b.broken = Some(e.to_string());
            }
        }
        r
    }

    fn statement(&self, sql: &str) -> Result<(), StoreError> {
        let s = self.sql();
        let mut c = self.client.borrow_mut();
        let c = &mut **c;
        let r = blocking(|| c.batch_execute(sql)).map_err(|e| s.err(e));
        self.checked(r)
    }

    /// Sends `rows` (values, or `None` for removals): one statement per kind and chunk.
    fn send_rows(&self, rows: Vec<(Cell, Option<Vec<u8>>)>) -> Result<(), StoreError> {
        let mut per: std::collections::BTreeMap<&'static str, TableWrites> = std::collections::BTreeMap::new();
        for ((table, key), value) in rows {
            let e = per.entry(table.name()).or_insert_with(|| (table, Vec::new(), Vec::new()));
            match value {
                Some(v) => e.1.push((key, v)),
                None => e.2.push(key),
            }
        }
        // Each table's writes and removals as a statement over `unnest` of parameter arrays, a chunk of
        // rows each; when every part fits in one chunk they go as one statement (data-modifying `WITH`
        // parts): one round trip for the whole buffer.
        let mut parts: Vec<(String, Vec<Param>)> = Vec::new();
        for (_, (table, puts, removes)) in per {
            let t = sql_table(table);
            for chunk in puts.chunks(CHUNK) {
                let keys: Vec<&OwnedKey> = chunk.iter().map(|(k, _)| k).collect();
                let cols = key_columns(table, &keys)?;
                let (names, conflict) = if cols.len() == 2 { ("k, k2, v", "k, k2") } else { ("k, v", "k") };
                let casts: Vec<String> = cols
                    .iter()
                    .enumerate()
                    .map(|(i, c)| format!("${{{}}}::{}[]", i, c.sql_type()))
                    .collect();
                let sql = format!(
                    "INSERT INTO {t} ({names}) SELECT * FROM unnest({}, ${{{}}}::bytea[]) ON CONFLICT ({conflict}) DO UPDATE SET v = EXCLUDED.v",
                    casts.join(", "),
                    cols.len()
                );
                let mut params: Vec<Param> = cols.into_iter().map(Column::param).collect();
                params.push(Box::new(chunk.iter().map(|(_, v)| v.clone()).collect::<Vec<Vec<u8>>>()));
                parts.push((sql, params));
            }
            for chunk in removes.chunks(CHUNK) {
                let keys: Vec<&OwnedKey> = chunk.iter().collect();
                let cols = key_columns(table, &keys)?;
                let sql = if cols.len() == 2 {
                    format!(
                        "DELETE FROM {t} AS x USING unnest(${{0}}::{}[], ${{1}}::{}[]) AS d(a, b) WHERE x.k = d.a AND x.k2 = d.b",
                        cols[0].sql_type(),
                        cols[1].sql_type()
                    )
                } else {
                    format!("DELETE FROM {t} WHERE k = ANY(${{0}}::{}[])", cols[0].sql_type())
                };
                parts.push((sql, cols.into_iter().map(Column::param).collect()));
            }
        }
        let s = self.sql();
        let one = parts.len() <= MAX_PARTS && parts.iter().all(|(_, p)| p.len() <= 3);
        if one && parts.len() > 1 {
            let mut sql = String::from("WITH ");
            let mut params: Vec<Param> = Vec::new();
            for (i, (part, p)) in parts.into_iter().enumerate() {
                if i > 0 {
                    sql.push_str(", ");
                }
                sql.push_str(&format!("w{i} AS ({})", numbered(&part, params.len())));
                params.extend(p);
            }
            sql.push_str(" SELECT 1");
            let r = s.execute(&mut **self.client.borrow_mut(), &sql, &params);
            self.checked(r)?;
        } else {
            for (part, params) in parts {
                let r = s.execute(&mut **self.client.borrow_mut(), &numbered(&part, 0), &params);
                self.checked(r)?;
            }
        }
        Ok(())
    }

    /// Sends the buffered writes (of table `only`, or all). Within a job that has buffered writes of
    /// its own among them and no savepoint yet, every earlier job's writes go first, then the
    /// savepoint, then this job's, so that the job can still be taken back alone: once a savepoint is
    /// taken, the buffer holds only the running job's writes.
    fn send_pending(&self, only: Option<Table>) -> Result<(), StoreError> {
        if let Some(why) = self.buf.borrow().broken.clone() {
            return Err(self.sql().err(format!("the transaction was aborted: {why}")));
        }
        let sel = |t: Table| only.is_none_or(|o| o == t);
        let (earlier, mine) = {
            let mut b = self.buf.borrow_mut();
            if !b.pending.keys().any(|(t, _)| sel(*t)) {
                return Ok(());
            }
            if b.in_job && !b.savepoint && b.undo.iter().any(|((t, _), _)| sel(*t)) {
                // This job's cells with their current values; the buffer back as before the job.
                let undo = std::mem::take(&mut b.undo);
                let mut mine = Vec::new();
                for (cell, _) in &undo {
                    if let Some(v) = b.pending.remove(cell) {
                        mine.push((cell.clone(), v));
                    }
                }
                for (cell, before) in undo.into_iter().rev() {
                    match before {
                        Some(v) => b.pending.insert(cell, v),
                        None => b.pending.remove(&cell),
                    };
                }
                // This job's writes of other tables stay buffered (sent later, after the savepoint).
                let (now, later): (Vec<_>, Vec<_>) = mine.into_iter().partition(|((t, _), _)| sel(*t));
                let earlier: Vec<_> = b.pending.drain().collect();
                for (cell, v) in later {
                    b.pending.insert(cell.clone(), v);
                    b.undo.push((cell, None));
                }
                (earlier, Some(now))
            } else {
                let cells: Vec<Cell> = b.pending.keys().filter(|(t, _)| sel(*t)).cloned().collect();
                let mut rows = Vec::with_capacity(cells.len());
                for cell in cells {
                    if let Some(v) = b.pending.remove(&cell) {
                        rows.push((cell, v));
                    }
                }
                // After the savepoint, what is sent is the job's own and taken back on the server.
                b.undo.retain(|((t, _), _)| !sel(*t));
                (rows, None)
            }
        };
        self.send_and_remember(earlier)?;
        if let Some(mine) = mine {
            self.take_savepoint()?;
            self.send_and_remember(mine)?;
        }
        Ok(())
    }

    fn send_and_remember(&self, rows: Vec<(Cell, Option<Vec<u8>>)>) -> Result<(), StoreError> {
        if rows.is_empty() {
            return Ok(());
        }
        let remember = rows.len() <= BUFFERED_ROWS;
        let cells: Vec<(Cell, Option<Vec<u8>>)> = if remember { rows.clone() } else { Vec::new() };
        let forget: Vec<Cell> = if remember {
            Vec::new()
        } else {
            rows.iter().map(|(c, _)| c.clone()).collect()
        };
        self.send_rows(rows)?;
        let mut b = self.buf.borrow_mut();
        for (cell, v) in cells {
            b.remember(cell, v);
        }
        for cell in forget {
            b.known.remove(&cell);
        }
        Ok(())
    }

    /// The running job's savepoint, before it sends its first write.
    fn take_savepoint(&self) -> Result<(), StoreError> {
        let needed = {
            let b = self.buf.borrow();
            b.in_job && !b.savepoint
        };
        if needed {
            self.statement("SAVEPOINT hazeflow_job")?;
            self.buf.borrow_mut().savepoint = true;
        }
        Ok(())
    }

    /// One chunk of a bulk write: rows with their keys as parameter arrays.
    fn put_chunk(&mut self, table: Table, keys: Vec<Key<'_>>, values: Vec<Vec<u8>>) -> Result<(), StoreError> {
        let owned: Vec<OwnedKey> = keys.iter().map(|k| OwnedKey::of(*k)).collect();
        let rows = owned.into_iter().zip(values).map(|(k, v)| ((table, k), Some(v))).collect();
        self.send_rows(rows)
    }
}

impl ReadPort for PgWrite<'_> {
    fn get(&self, table: Table, key: Key<'_>) -> Result<Option<Vec<u8>>, StoreError> {
        let cell = (table, OwnedKey::of(key));
        if let Some(v) = self.buf.borrow().lookup(&cell) {
            return Ok(v);
        }
        let r = self.sql().get(&mut **self.client.borrow_mut(), table, key);
        let v = self.checked(r)?;
        self.buf.borrow_mut().remember(cell, v.clone());
        Ok(v)
    }
    fn get_many(&self, table: Table, keys: &[Key<'_>]) -> Result<Vec<Option<Vec<u8>>>, StoreError> {
        let mut out: Vec<Option<Option<Vec<u8>>>> = Vec::with_capacity(keys.len());
        let mut missing = Vec::new();
        {
            let b = self.buf.borrow();
            for (i, k) in keys.iter().enumerate() {
                let v = if b.pending.is_empty() && b.known.is_empty() {
                    None
                } else {
                    b.lookup(&(table, OwnedKey::of(*k)))
                };
                if v.is_none() {
                    missing.push(i);
                }
                out.push(v);
            }
        }
        if !missing.is_empty() {
            let ask: Vec<Key<'_>> = missing.iter().map(|&i| keys[i]).collect();
            let r = self.sql().get_many(&mut **self.client.borrow_mut(), table, &ask);
            let found = self.checked(r)?;
            let remember = found.len() <= BUFFERED_ROWS;
            let mut b = self.buf.borrow_mut();
            for (&i, v) in missing.iter().zip(found) {
                if remember {
                    b.remember((table, OwnedKey::of(keys[i])), v.clone());
                }
                out[i] = Some(v);
            }
        }
        Ok(out.into_iter().map(Option::unwrap_or_default).collect())
    }
    fn scan(&self, table: Table, scan: Scan<'_>, limit: usize, visit: Visit<'_>) -> Result<(), StoreError> {
        // The server answers the scan: the table's buffered writes go first.
        self.send_pending(Some(table))?;
        let r = self.sql().scan(&mut **self.client.borrow_mut(), table, scan, limit, visit);
        self.checked(r)
    }
    fn len(&self, table: Table) -> Result<u64, StoreError> {
        self.send_pending(Some(table))?;
        let r = self.sql().len(&mut **self.client.borrow_mut(), table);
        self.checked(r)
    }
}

impl WritePort for PgWrite<'_> {
    fn put(&mut self, table: Table, key: Key<'_>, value: &[u8]) -> Result<(), StoreError> {
        check_key(table, key)?;
        let big = {
            let b = self.buf.get_mut();
            b.write((table, OwnedKey::of(key)), Some(value.to_vec()));
            b.pending.len() >= CHUNK
        };
        if big { self.send_pending(None) } else { Ok(()) }
    }

    fn put_many<'k>(&mut self, table: Table, n: usize, row: Row<'_, 'k>) -> Result<(), StoreError> {
        if n <= BUFFERED_ROWS || !matches!(table, Table::Docs | Table::Items) {
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
        // Many rows: straight to the server, after what is buffered and the job's savepoint.
        self.send_pending(None)?;
        self.take_savepoint()?;
        self.buf.get_mut().known.retain(|(t, _), _| *t != table);
        let mut keys: Vec<Key<'k>> = Vec::with_capacity(CHUNK.min(n));
        let mut values: Vec<Vec<u8>> = Vec::with_capacity(CHUNK.min(n));
        for i in 0..n {
            let mut buf = Vec::with_capacity(256);
            let key = row(i, &mut buf)?;
            check_key(table, key)?;
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
        check_key(table, key)?;
        self.buf.get_mut().write((table, OwnedKey::of(key)), None);
        Ok(())
    }

    fn prefetch(&mut self, table: Table, keys: &[Key<'_>]) -> Result<(), StoreError> {
        let ask: Vec<Key<'_>> = {
            let b = self.buf.get_mut();
            keys.iter()
                .copied()
                .filter(|k| b.lookup(&(table, OwnedKey::of(*k))).is_none())
                .take(KNOWN_MAX / 4)
                .collect()
        };
        if ask.is_empty() {
            return Ok(());
        }
        let r = self.sql().get_many(&mut **self.client.borrow_mut(), table, &ask);
        let found = self.checked(r)?;
        let b = self.buf.get_mut();
        for (k, v) in ask.iter().zip(found) {
            b.remember((table, OwnedKey::of(*k)), v);
        }
        Ok(())
    }

    fn begin_job(&mut self) -> Result<(), StoreError> {
        let b = self.buf.get_mut();
        b.in_job = true;
        b.savepoint = false;
        b.undo.clear();
        Ok(())
    }

    fn end_job(&mut self, ok: bool) -> Result<(), StoreError> {
        let (savepoint, undo) = {
            let b = self.buf.get_mut();
            let undo = std::mem::take(&mut b.undo);
            let savepoint = b.savepoint;
            b.in_job = false;
            b.savepoint = false;
            (savepoint, undo)
        };
        if ok {
            if savepoint {
                self.statement("RELEASE SAVEPOINT hazeflow_job")?;
            }
        } else {
            let b = self.buf.get_mut();
            for (cell, before) in undo.into_iter().rev() {
                match before {
                    Some(v) => b.pending.insert(cell, v),
                    None => b.pending.remove(&cell),
                };
            }
            if savepoint {
                // What the job sent is taken back on the server; what was read since may be of it.
                b.known.clear();
                self.statement("ROLLBACK TO SAVEPOINT hazeflow_job; RELEASE SAVEPOINT hazeflow_job")?;
            }
        }
        match self.buf.get_mut().broken.clone() {
            Some(why) => Err(self.sql().err(format!("the transaction was aborted: {why}"))),
            None => Ok(()),
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
