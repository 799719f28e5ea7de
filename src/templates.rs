//! How every template set is loaded — the notices (`templates/notify/`), the dashboard's pages
//! (`templates/dashboard/`), the public page and messages (`templates/public/`) and the
//! acknowledgement page (`templates/ack/`) — and when.
//!
//! One policy: a set is read from its folder in the playbooks folder, where a file of a shipped
//! name overrides the copy embedded in the binary (so a folder without it still has every shipped
//! template; the notices also take the folder's own kinds, which the roster's routes may name); it
//! is read and compiled whole at start and again
//! on a reload (SIGHUP, `POST /api/v1/playbooks/reload`, the dashboard's 重新载入), never per
//! request. A reload that finds a broken file changes nothing and names the file; the set in
//! service stays.

use std::path::Path;
use std::sync::{Arc, RwLock};

use crate::domain::diagnostic::Diagnostic;

/// The texts of a set: each shipped `(name, text)` with the folder's file of that name instead when
/// there is one. Errors name the file that cannot be read.
pub fn read_shipped(dir: &Path, shipped: &[(&str, &str)]) -> Result<Vec<(String, String)>, Vec<Diagnostic>> {
    let mut out = Vec::with_capacity(shipped.len());
    let mut errors = Vec::new();
    for (name, text) in shipped {
        let path = dir.join(name);
        match std::fs::read_to_string(&path) {
            Ok(t) => out.push(((*name).to_string(), t)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => out.push(((*name).to_string(), (*text).to_string())),
            Err(e) => errors.push(Diagnostic::at(path.display().to_string(), 0, 0, format!("cannot read: {e}"))),
        }
    }
    if errors.is_empty() { Ok(out) } else { Err(errors) }
}

/// [`read_shipped`], then the folder's other files whose names end in `suffix` (a set operators may
/// extend with their own names: the notices, whose kinds the roster's routes name), all sorted by
/// name. A folder that does not exist holds no file: the shipped copies alone.
pub fn read_shipped_and_own(dir: &Path, shipped: &[(&str, &str)], suffix: &str) -> Result<Vec<(String, String)>, Vec<Diagnostic>> {
    let mut out = read_shipped(dir, shipped);
    let own = match std::fs::read_dir(dir) {
        Ok(rd) => {
            let mut names: Vec<String> = rd
                .filter_map(Result::ok)
                .filter(|e| e.path().is_file())
                .map(|e| e.file_name().to_string_lossy().to_string())
                .filter(|n| n.ends_with(suffix) && !shipped.iter().any(|(s, _)| s == n))
                .collect();
            names.sort();
            names
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
        Err(e) => {
            return Err(vec![Diagnostic::at(
                dir.display().to_string(),
                0,
                0,
                format!("cannot read the templates folder: {e}"),
            )]);
        }
    };
    for name in own {
        let path = dir.join(&name);
        match (std::fs::read_to_string(&path), &mut out) {
            (Ok(t), Ok(files)) => files.push((name, t)),
            (Ok(_), Err(_)) => {}
            (Err(e), Ok(_)) => out = Err(vec![Diagnostic::at(path.display().to_string(), 0, 0, format!("cannot read: {e}"))]),
            (Err(e), Err(errors)) => errors.push(Diagnostic::at(path.display().to_string(), 0, 0, format!("cannot read: {e}"))),
        }
    }
    let mut files = out?;
    files.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(files)
}

/// A template's compile error as a diagnostic on its file in `dir`.
pub fn compile_error(dir: &Path, name: &str, e: &minijinja::Error) -> Diagnostic {
    let detail = e.detail().unwrap_or("");
    let message = if detail.is_empty() {
        e.kind().to_string()
    } else {
        format!("{}: {detail}", e.kind())
    };
    Diagnostic::at(dir.join(name).display().to_string(), e.line().unwrap_or(0) as u64, 0, message)
}

/// A loaded set in service, replaced whole by a reload (readers keep the one they took).
pub struct Live<T>(RwLock<Arc<T>>);

impl<T> Live<T> {
    /// In service from now.
    pub fn new(value: T) -> Live<T> {
        Live(RwLock::new(Arc::new(value)))
    }

    /// The set in service.
    pub fn get(&self) -> Arc<T> {
        self.0.read().unwrap_or_else(std::sync::PoisonError::into_inner).clone()
    }

    /// Puts `value` in service.
    pub fn set(&self, value: T) {
        *self.0.write().unwrap_or_else(std::sync::PoisonError::into_inner) = Arc::new(value);
    }
}
