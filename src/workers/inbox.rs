//! The inbox: a folder watched for forecast files, and for warnings from above (上级预警) and their
//! lifts as JSON files with a `kind` (`upstream_warning`, `upstream_warning_lift`: the API's bodies,
//! [`crate::engine::upstream`]); a JSON file without `kind` is a forecast.
//!
//! In: files dropped into the folder. Producers write under a name the inbox ignores (`.part`, `.tmp`
//! or a leading dot) and then rename into place. Otherwise a file is read only once its size and
//! modification time have stayed the same for one poll, and a file whose last line has no
//! terminating newline (a writer paused mid-line) waits longer: until it has stayed the same for
//! [`INCOMPLETE_GRACE_POLLS`] polls, after which it is read and judged as it is. Out: each file recorded through
//! the [`Engine`] and moved to `processed/`, or moved to `rejected/` with `FILE.error` beside it giving
//! `file:line:column: reason`. A file is moved only after its record is committed, so a crash in
//! between makes it be read again, and recorded once (forecasts are keyed by content).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use tokio_util::sync::CancellationToken;

use crate::config::InboxSettings;
use crate::engine::{Engine, EngineError, SubmitError};
use crate::store::DirectiveRecord;

/// Polls a file without a final newline must stay unchanged before it is read anyway.
pub const INCOMPLETE_GRACE_POLLS: u32 = 10;

/// What the inbox remembers of a file between passes: its size and modification time, and for how
/// many passes they have not changed.
type Seen = HashMap<PathBuf, ((u64, SystemTime), u32)>;

/// What one pass did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Pass {
    /// Files accepted (new or duplicate), drills' (演练) not counted: a drill's forecast was consulted
    /// for its drill lanes when it was recorded, and asks for no real consultation.
    pub accepted: usize,
    /// Drills' forecasts accepted.
    pub drills: usize,
    /// Warnings from above and their lifts taken.
    pub upstream: usize,
    /// Files rejected.
    pub rejected: usize,
}

/// Watches until cancelled.
///
/// `consult_on_forecast`: whether an accepted forecast asks for a consultation at once.
pub async fn run(engine: std::sync::Arc<Engine>, settings: InboxSettings, consult_on_forecast: bool, cancel: CancellationToken) {
    let dir = settings.dir.clone();
    let poll = Duration::from_millis(settings.poll_ms);
    let mut seen: Seen = HashMap::new();
    loop {
        match run_once(&engine, &dir, &mut seen).await {
            Ok(p) if p.accepted > 0 && consult_on_forecast => engine.trigger_consultation(),
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

/// Whether the file's last byte is a newline (an empty file counts as complete: it is judged).
fn ends_with_newline(path: &Path, len: u64) -> std::io::Result<bool> {
    use std::io::{Read, Seek, SeekFrom};
    if len == 0 {
        return Ok(true);
    }
    let mut f = std::fs::File::open(path)?;
    f.seek(SeekFrom::Start(len - 1))?;
    let mut last = [0u8; 1];
    f.read_exact(&mut last)?;
    Ok(last[0] == b'\n')
}

/// One pass over the folder. `seen` remembers sizes from the last passes: a file is read once it has
/// not changed between two passes, or [`INCOMPLETE_GRACE_POLLS`] when its last line is incomplete.
async fn run_once(engine: &Engine, dir: &Path, seen: &mut Seen) -> std::io::Result<Pass> {
    std::fs::create_dir_all(dir)?;
    let mut pass = Pass::default();
    let files = candidates(dir)?;
    seen.retain(|p, _| files.contains(p));
    for path in files {
        let meta = std::fs::metadata(&path)?;
        let stamp = (meta.len(), meta.modified().unwrap_or(SystemTime::UNIX_EPOCH));
        let unchanged = match seen.get_mut(&path) {
            Some(entry) if entry.0 == stamp => {
                entry.1 += 1;
                entry.1
            }
            _ => {
                seen.insert(path, (stamp, 0));
                continue;
            }
        };
        if unchanged < INCOMPLETE_GRACE_POLLS && !ends_with_newline(&path, stamp.0)? {
            if unchanged == 1 {
                tracing::info!(file = %path.display(), "the last line has no newline yet: waiting for the writer");
            }
            continue;
        }
        seen.remove(&path);
        let name = path.file_name().map(|n| n.to_string_lossy().to_string()).unwrap_or_default();
        let bytes = std::fs::read(&path)?;
        if let Some(kind) = crate::engine::upstream::kind_of_file(&name, &bytes) {
            let span = tracing::info_span!("job", kind = "inbox", file = %name);
            let taken = tracing::Instrument::instrument(take_upstream(engine, kind, &bytes), span.clone()).await;
            let _job = span.enter();
            match taken {
                Ok(what) => {
                    tracing::info!(file = %name, what = %what, "warning from above taken from the inbox");
                    move_to(&path, &dir.join("processed"))?;
                    pass.upstream += 1;
                }
                Err(EngineError::Store(e)) => {
                    tracing::error!(file = %name, error = %e, "warning from above could not be recorded; left in the inbox");
                }
                Err(e) => {
                    tracing::warn!(file = %name, error = %e, "warning from above rejected");
                    reject(&path, dir, &format!("{name}: {e}"))?;
                    pass.rejected += 1;
                }
            }
            continue;
        }
        // One span per job: what is logged about this file (and by the engine for it) carries it.
        let span = tracing::info_span!("job", kind = "inbox", file = %name);
        let submitted = tracing::Instrument::instrument(engine.submit_forecast(&name, &bytes, "inbox"), span.clone()).await;
        let _job = span.enter();
        match submitted {
            Ok(sub) => {
                tracing::info!(file = %name, id = %sub.id, duplicate = sub.duplicate, exercise = sub.exercise, "forecast accepted from the inbox");
                move_to(&path, &dir.join("processed"))?;
                if sub.exercise {
                    pass.drills += 1;
                } else {
                    pass.accepted += 1;
                }
            }
            Err(e @ SubmitError::NotRecorded { .. }) => {
                tracing::error!(file = %name, error = %e, "forecast could not be recorded; left in the inbox");
            }
            Err(e) => {
                tracing::warn!(file = %name, error = %e, "forecast rejected");
                reject(&path, dir, &e.to_string())?;
                pass.rejected += 1;
            }
        }
    }
    Ok(pass)
}

/// Moves a file to `rejected/` with `FILE.error` beside it saying why.
fn reject(path: &Path, dir: &Path, why: &str) -> std::io::Result<()> {
    let target = move_to(path, &dir.join("rejected"))?;
    let mut err_name = target.into_os_string();
    err_name.push(".error");
    std::fs::write(PathBuf::from(err_name), format!("{why}\n"))
}

/// A warning from above (`"kind": "upstream_warning"`) or its lift (`"kind": "upstream_warning_lift"`)
/// dropped in the inbox: checked as the API's body is, then recorded as by the API with actor `inbox`
/// and no role (the folder is the authority). The same file read again after a crash between its
/// record and its move (the same warning recorded already, or the same lift) is taken as done.
/// Returns what was done, for the log.
async fn take_upstream(engine: &Engine, kind: Result<&'static str, EngineError>, bytes: &[u8]) -> Result<String, EngineError> {
    use crate::engine::upstream::{KIND, lift_of};
    if kind? == KIND {
        let d = engine.upstream_warning(bytes)?;
        match engine.store.read(|r| r.directive(&d.id))? {
            Some(had)
                if had.upstream.is_some()
                    && DirectiveRecord {
                        active: true,
                        upstream: d.upstream.clone(),
                        ..had.clone()
                    } == d =>
            {
                return Ok(format!("{} recorded already", d.id));
            }
            Some(had) if had.upstream.is_some() => {
                return Err(EngineError::Conflict(format!(
                    "id: warning from above {} exists already, with other content",
                    d.id
                )));
            }
            Some(_) => return Err(EngineError::Conflict(format!("id: {} is a directive's id already", d.id))),
            None => {}
        }
        let id = d.id.clone();
        engine.issue_directive(d, "inbox", None).await?;
        return Ok(format!("{id} recorded"));
    }
    let l = lift_of(bytes, true)?;
    let id = l.id.clone().unwrap_or_default();
    match engine.store.read(|r| r.directive(&id))? {
        Some(d) if d.upstream.is_some() => {
            if !d.active && d.upstream.as_ref().and_then(|u| u.lift_doc_no.as_ref()) == Some(&l.doc_no) {
                return Ok(format!("{id} lifted already"));
            }
        }
        _ => return Err(EngineError::NotFound(format!("id: no warning from above {id}"))),
    }
    engine.lift_directive(&id, "inbox", None, Some(l.doc_no)).await?;
    Ok(format!("{id} lifted"))
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
