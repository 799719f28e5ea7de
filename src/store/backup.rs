//! Backups: a consistent copy of the store, taken inside one read transaction (a snapshot; the writer
//! goes on meanwhile), written into a new redb file beside the target (`{out}.part`), synced to disk,
//! then renamed into place. A table the copy does not know stops it (a new table must be added
//! here), so a backup is never silently partial.
//!
//! Restore is the reverse, with the daemon stopped: the backup is checked (it opens, every view
//! agrees with its log), the current file is kept beside it, the backup copied into place.

use std::path::{Path, PathBuf};

use redb::{
    Database, ReadTransaction, ReadableDatabase, ReadableTable, ReadableTableMetadata, TableDefinition, TableHandle, WriteTransaction,
};

use super::keys::*;
use super::{Store, StoreError, db_err};

/// What a backup holds.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct BackupSummary {
    /// The file written.
    pub path: PathBuf,
    /// Records in its event log.
    pub events: u64,
    /// Rows copied, all tables.
    pub rows: u64,
    /// Its size.
    pub bytes: u64,
}

impl Store {
    /// Writes a consistent copy of the store to `out` (which must not exist).
    pub fn backup_to(&self, out: &Path) -> Result<BackupSummary, StoreError> {
        let db = self.inner.health.db.read().ok().and_then(|g| g.clone());
        let Some(db) = db else {
            return Err(self.unavailable());
        };
        let src = db.begin_read().map_err(|e| db_err(&self.inner.path, e))?;
        copy_into(&src, &self.inner.path, out)
    }
}

/// Copies every table of `src` into a new file `out`, through `{out}.part`.
fn copy_into(src: &ReadTransaction, from: &Path, out: &Path) -> Result<BackupSummary, StoreError> {
    let refuse = |m: String| StoreError::Refused(m);
    if out.exists() {
        return Err(refuse(format!(
            "{} exists: a backup never overwrites; choose a new name",
            out.display()
        )));
    }
    let known = [
        META.name(),
        EVENTS.name(),
        FORECASTS.name(),
        LATEST.name(),
        CONSULTATIONS.name(),
        REGION_STATES.name(),
        WARNINGS.name(),
        WARNING_EVENTS.name(),
        DIRECTIVES.name(),
        COUNTERS.name(),
        DOCS.name(),
        ITEMS.name(),
    ];
    let tables: Vec<String> = src
        .list_tables()
        .map_err(|e| db_err(from, e))?
        .map(|t| t.name().to_string())
        .collect();
    if let Some(t) = tables.iter().find(|t| !known.contains(&t.as_str())) {
        return Err(refuse(format!(
            "table {t} is unknown to the backup: this hazeflow cannot copy it whole"
        )));
    }
    let mut part = out.as_os_str().to_owned();
    part.push(".part");
    let part = PathBuf::from(part);
    let _ = std::fs::remove_file(&part);
    let dst = Database::builder()
        .set_cache_size(64 << 20)
        .create(&part)
        .map_err(|e| db_err(&part, e))?;
    let w = dst.begin_write().map_err(|e| db_err(&part, e))?;
    let e = |err: redb::Error| db_err(&part, err);
    let mut rows = 0;
    rows += copy(src, &w, META).map_err(e)?;
    rows += copy(src, &w, EVENTS).map_err(e)?;
    rows += copy(src, &w, FORECASTS).map_err(e)?;
    rows += copy(src, &w, LATEST).map_err(e)?;
    rows += copy(src, &w, CONSULTATIONS).map_err(e)?;
    rows += copy(src, &w, REGION_STATES).map_err(e)?;
    rows += copy(src, &w, WARNINGS).map_err(e)?;
    rows += copy(src, &w, WARNING_EVENTS).map_err(e)?;
    rows += copy(src, &w, DIRECTIVES).map_err(e)?;
    rows += copy(src, &w, COUNTERS).map_err(e)?;
    rows += copy(src, &w, DOCS).map_err(e)?;
    rows += copy(src, &w, ITEMS).map_err(e)?;
    let events = match src.open_table(EVENTS) {
        Ok(t) => t.len().map_err(|err| db_err(from, err))?,
        Err(_) => 0,
    };
    w.commit().map_err(|err| db_err(&part, err))?;
    drop(dst);
    let sync = |p: &Path| std::fs::File::open(p).and_then(|f| f.sync_all());
    sync(&part).map_err(|err| db_err(&part, err))?;
    #[cfg(unix)]
    crate::config::private_file(&part).map_err(|err| db_err(&part, err))?;
    std::fs::rename(&part, out).map_err(|err| db_err(out, err))?;
    if let Some(dir) = out.parent().filter(|d| !d.as_os_str().is_empty()) {
        let _ = sync(dir);
    }
    let bytes = std::fs::metadata(out).map_err(|err| db_err(out, err))?.len();
    Ok(BackupSummary {
        path: out.to_path_buf(),
        events,
        rows,
        bytes,
    })
}

/// Copies one table, row by row; a table not in the source is left out.
fn copy<K: redb::Key + 'static, V: redb::Value + 'static>(
    src: &ReadTransaction,
    dst: &WriteTransaction,
    def: TableDefinition<K, V>,
) -> Result<u64, redb::Error> {
    let from = match src.open_table(def) {
        Ok(t) => t,
        Err(redb::TableError::TableDoesNotExist(_)) => return Ok(0),
        Err(e) => return Err(e.into()),
    };
    let mut to = dst.open_table(def)?;
    let mut n = 0;
    for row in from.iter()? {
        let (k, v) = row?;
        to.insert(k.value(), v.value())?;
        n += 1;
    }
    Ok(n)
}
