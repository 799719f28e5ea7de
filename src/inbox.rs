//! The inbox: a folder watched for forecast files.
//!
//! In: files dropped into the folder (write-then-rename is best; otherwise a file is read only once
//! its size and modification time have stayed the same for one poll). Out: each file recorded through
//! the [`Engine`] and moved to `processed/`, or moved to `rejected/` with `FILE.error` beside it giving
//! `file:line:column: reason`. A file is moved only after its record is committed, so a crash in
//! between makes it be read again, and recorded once (forecasts are keyed by content).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use tokio_util::sync::CancellationToken;

use crate::app::AppState;

/// What one pass did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Pass {
    /// Files accepted (new or duplicate).
    pub accepted: usize,
    /// Files rejected.
    pub rejected: usize,
}

/// Watches until cancelled.
pub async fn run(state: std::sync::Arc<AppState>, cancel: CancellationToken) {
    let dir = state.settings.inbox.dir.clone();
    let poll = Duration::from_millis(state.settings.inbox.poll_ms);
    let mut seen: HashMap<PathBuf, (u64, SystemTime)> = HashMap::new();
    loop {
        match run_once(&state, &dir, &mut seen).await {
            Ok(p) if p.accepted > 0 && state.consult_on_forecast => state.trigger_consultation(),
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, dir = %dir.display(), "inbox pass failed"),
        }
        tokio::select! {
            () = cancel.cancelled() => break,
            () = tokio::time::sleep(poll) => {}
        }
    }
}

fn candidates(dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir)? {
        let p = e?.path();
        let name = p.file_name().and_then(|n| n.to_str()).unwrap_or("");
        let partial = name.starts_with('.') || name.ends_with(".tmp") || name.ends_with(".part") || name.ends_with(".error");
        if p.is_file() && !partial {
            out.push(p);
        }
    }
    out.sort();
    Ok(out)
}

/// One pass over the folder. `seen` remembers sizes from the last pass: a file is read once it has
/// not changed between two passes.
pub async fn run_once(state: &AppState, dir: &Path, seen: &mut HashMap<PathBuf, (u64, SystemTime)>) -> std::io::Result<Pass> {
    std::fs::create_dir_all(dir)?;
    let mut pass = Pass::default();
    let files = candidates(dir)?;
    seen.retain(|p, _| files.contains(p));
    for path in files {
        let meta = std::fs::metadata(&path)?;
        let stamp = (meta.len(), meta.modified().unwrap_or(SystemTime::UNIX_EPOCH));
        if seen.get(&path) != Some(&stamp) {
            seen.insert(path, stamp);
            continue;
        }
        seen.remove(&path);
        let name = path.file_name().map(|n| n.to_string_lossy().to_string()).unwrap_or_default();
        let bytes = std::fs::read(&path)?;
        match state.engine.submit_forecast(&name, &bytes, "inbox").await {
            Ok(sub) => {
                tracing::info!(file = %name, id = %sub.id, duplicate = sub.duplicate, "forecast accepted from the inbox");
                move_to(&path, &dir.join("processed"))?;
                pass.accepted += 1;
            }
            Err(e) if e.reason.starts_with("not recorded") => {
                tracing::error!(file = %name, error = %e, "forecast could not be recorded; left in the inbox");
            }
            Err(e) => {
                tracing::warn!(file = %name, error = %e, "forecast rejected");
                let target = move_to(&path, &dir.join("rejected"))?;
                let mut err_name = target.clone().into_os_string();
                err_name.push(".error");
                std::fs::write(PathBuf::from(err_name), format!("{e}\n"))?;
                pass.rejected += 1;
            }
        }
    }
    Ok(pass)
}

/// Moves a file into a folder, keeping its name (with `-N` added if taken).
fn move_to(path: &Path, folder: &Path) -> std::io::Result<PathBuf> {
    std::fs::create_dir_all(folder)?;
    let name = path.file_name().map(|n| n.to_string_lossy().to_string()).unwrap_or_default();
    let mut target = folder.join(&name);
    let mut n = 1;
    while target.exists() {
        target = folder.join(format!("{name}-{n}"));
        n += 1;
    }
    std::fs::rename(path, &target)?;
    Ok(target)
}
