//! `hazeflow backup OUT` and `hazeflow restore BACKUP`: the CLI side of backups.
//!
//! A backup is a consistent copy of the store (see `store/backup.rs`). With `store.url` naming
//! PostgreSQL it is taken from the database (one snapshot transaction, the daemons go on). With the
//! daemon stopped it is taken from the file; while the daemon runs (the file is locked by it) it is taken through the
//! daemon (`POST /api/v1/backup`, the highest staff role), streamed into `OUT.part`, checked (it
//! opens and its views agree with its log) and renamed to `OUT`. A restore needs the daemon
//! stopped: the backup is checked the same way, the current file is kept as
//! `hazeflow.redb.before-restore-{time}` (its journal, `hazeflow.redb.journal`, beside it as
//! `hazeflow.redb.before-restore-{time}.journal`), and the backup is copied into place.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result, bail};

use crate::config::Settings;
use crate::store::Store;

/// Whether an open failed because another process (the daemon) holds the file.
fn locked(e: &crate::store::StoreError) -> bool {
    let m = e.to_string().to_lowercase();
    m.contains("lock") || m.contains("already open")
}

/// Opens a copy and checks it: events counted, every view rebuilt from the log and compared.
fn check(path: &Path) -> Result<u64> {
    // A copy of an older format is upgraded without a backup of its own (the original is one).
    let store = Store::open_scratch(path).with_context(|| format!("{} does not open as a hazeflow store", path.display()))?;
    let checked = store.read(|r| Ok((r.verify_views()?, r.event_count()?)));
    store.close();
    let (diffs, events) = checked?;
    if !diffs.is_empty() {
        bail!(
            "{}: {} views differ from the log:\n{}",
            path.display(),
            diffs.len(),
            diffs.join("\n")
        );
    }
    Ok(events)
}

fn sibling(path: &Path, suffix: &str) -> PathBuf {
    let mut s = path.as_os_str().to_owned();
    s.push(suffix);
    PathBuf::from(s)
}

/// `hazeflow backup OUT`: from PostgreSQL when the configuration names it (`store.url`), else from
/// the file when the daemon is stopped, else through the daemon. `json`: the summary as one object.
pub async fn backup(settings: &Settings, out: &Path, client: &crate::cli::client::Client, json: bool) -> Result<ExitCode> {
    if out.exists() {
        bail!("{} exists: a backup never overwrites; choose a new name", out.display());
    }
    let db = settings.db_path();
    let started = std::time::Instant::now();
    let (how, source) = match &settings.store.url {
        // A shared store: read in one snapshot transaction (the daemons go on writing), as a client
        // that never takes part in the election.
        Some(url) => {
            let store = Store::open_postgres_client(url).context("the PostgreSQL store does not open")?;
            let taken = store.backup_to(out);
            store.close();
            taken?;
            ("from PostgreSQL", crate::store::safe_location(url))
        }
        None => {
            if !db.exists() {
                bail!("no store at {}: nothing to back up", db.display());
            }
            let how = match Store::open(&db) {
                Ok(store) => {
                    // Acknowledgements in the journal are not in the file yet (the daemon stopped
                    // without a clean close): a copy of the file alone would miss them.
                    let journal = crate::store::journal_path(&db);
                    if std::fs::metadata(&journal).is_ok_and(|m| m.len() > 0) {
                        store.close();
                        bail!(
                            "{} holds acknowledgements that are not in {} yet (the daemon stopped without a clean close): start the daemon once (it redoes them before it serves), then take the backup; nothing was written",
                            journal.display(),
                            db.display()
                        );
                    }
                    let taken = store.backup_to(out);
                    store.close();
                    taken?;
                    "from the file (the daemon is stopped)"
                }
                Err(e) if locked(&e) => {
                    let part = sibling(out, ".part");
                    let fetched = client.backup(&part).await;
                    if let Err(e) = fetched {
                        let _ = std::fs::remove_file(&part);
                        return Err(e.context("the store is in use by the daemon; taking the backup through it failed"));
                    }
                    std::fs::rename(&part, out).with_context(|| format!("cannot rename {} to {}", part.display(), out.display()))?;
                    "through the running daemon"
                }
                Err(e) => return Err(e.into()),
            };
            (how, db.display().to_string())
        }
    };
    let events = check(out)?;
    crate::config::private_file(out)?;
    let bytes = std::fs::metadata(out)?.len();
    let seconds = started.elapsed().as_secs_f64();
    if json {
        let v = serde_json::json!({
            "backup": out.display().to_string(),
            "store": source,
            "taken": how,
            "events": events,
            "bytes": bytes,
            "seconds": seconds,
            "views_agree": true,
        });
        println!("{}", serde_json::to_string_pretty(&v)?);
        return Ok(ExitCode::SUCCESS);
    }
    println!(
        "backup {}: {events} events, {:.1} MiB, taken {how} in {seconds:.1} s; its views agree with its log",
        out.display(),
        bytes as f64 / (1u64 << 20) as f64,
    );
    Ok(ExitCode::SUCCESS)
}

/// `hazeflow restore BACKUP`: the daemon must be stopped.
pub fn restore(settings: &Settings, backup: &Path, json: bool) -> Result<ExitCode> {
    if let Some(url) = &settings.store.url {
        bail!(
            "the store is on PostgreSQL ({}): a backup goes back with `hazeflow migrate --from {} --to postgres://…` into an empty database (the daemons stopped)",
            crate::store::safe_location(url),
            backup.display()
        );
    }
    let db = &settings.db_path();
    if !backup.is_file() {
        bail!("no backup at {}", backup.display());
    }
    if db.exists() {
        match Store::open(db) {
            Ok(store) => store.close(),
            Err(e) if locked(&e) => bail!("{} is in use: stop the daemon before a restore", db.display()),
            // A damaged current file is what a restore is for: it is kept aside below.
            Err(_) => {}
        }
    }
    // Checked on a scratch copy: opening may touch a file, and the backup stays as it was.
    let scratch = sibling(db, ".restore.part");
    let _ = std::fs::remove_file(&scratch);
    if let Some(dir) = db.parent().filter(|d| !d.as_os_str().is_empty()) {
        crate::config::private_dir(dir)?;
    }
    std::fs::copy(backup, &scratch).with_context(|| format!("cannot copy {} to {}", backup.display(), scratch.display()))?;
    let events = match check(&scratch) {
        Ok(n) => n,
        Err(e) => {
            let _ = std::fs::remove_file(&scratch);
            return Err(e.context(format!("{} is not a good backup; nothing was changed", backup.display())));
        }
    };
    std::fs::File::open(&scratch).and_then(|f| f.sync_all())?;
    crate::config::private_file(&scratch)?;
    let kept = if db.exists() {
        let aside = sibling(db, &format!(".before-restore-{}", chrono::Utc::now().format("%Y%m%d%H%M%S")));
        std::fs::rename(db, &aside).with_context(|| format!("cannot keep {} as {}", db.display(), aside.display()))?;
        // The journal belongs to the file it was written beside: it goes aside with it, so that the
        // restored store does not redo acknowledgements made after the backup.
        let journal = crate::store::journal_path(db);
        if journal.exists() {
            let to = crate::store::journal_path(&aside);
            std::fs::rename(&journal, &to).with_context(|| format!("cannot keep {} as {}", journal.display(), to.display()))?;
        }
        Some(aside)
    } else {
        None
    };
    std::fs::rename(&scratch, db).with_context(|| format!("cannot put the backup in place at {}", db.display()))?;
    if json {
        let v = serde_json::json!({
            "restored": db.display().to_string(),
            "backup": backup.display().to_string(),
            "events": events,
            "kept": kept.as_ref().map(|p| p.display().to_string()),
        });
        println!("{}", serde_json::to_string_pretty(&v)?);
        return Ok(ExitCode::SUCCESS);
    }
    match kept {
        Some(aside) => println!(
            "restored {} from {}: {events} events; the previous file is kept as {}",
            db.display(),
            backup.display(),
            aside.display()
        ),
        None => println!("restored {} from {}: {events} events", db.display(), backup.display()),
    }
    Ok(ExitCode::SUCCESS)
}
