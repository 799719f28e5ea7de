//! Backups: a consistent copy of the store, taken inside one read transaction (a snapshot; the writer
//! goes on meanwhile), written into a new redb file beside the target (`{out}.part`), synced to disk,
//! then renamed into place. It copies every table of the port ([`Table::ALL`]) through the port, so a
//! backup is never partial and is an embedded file whatever the backend.
//!
//! Restore is the reverse, with the daemon stopped: the backup is checked (it opens, every view
//! agrees with its log), the current file is kept beside it, the backup copied into place.

use std::path::{Path, PathBuf};

use super::embedded::Embedded;
use super::port::{Backend, ReadPort, Scan, Table};
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
        self.read(|r| copy_into(r.port(), out))
    }
}

/// Copies every table of `src` into a new file `out`, through `{out}.part`.
fn copy_into(src: &dyn ReadPort, out: &Path) -> Result<BackupSummary, StoreError> {
    if out.exists() {
        return Err(StoreError::Refused(format!(
            "{} exists: a backup never overwrites; choose a new name",
            out.display()
        )));
    }
    let mut part = out.as_os_str().to_owned();
    part.push(".part");
    let part = PathBuf::from(part);
    let _ = std::fs::remove_file(&part);
    let dst = Embedded::create_new(&part)?;
    let mut rows = 0;
    dst.batch(&mut |w| {
        for table in Table::ALL {
            src.scan(table, Scan::All { rev: false }, usize::MAX, &mut |k, v| {
                w.put(table, k, v)?;
                rows += 1;
                Ok(true)
            })
            .map_err(|e| e.to_string())?;
        }
        Ok(true)
    })
    .map_err(|f| db_err(&part, f.reason))?;
    let events = src.len(Table::Events)?;
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
