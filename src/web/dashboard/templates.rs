//! The page templates (minijinja 2, auto-escaped because every name ends in `.html`).
//!
//! Operators may edit them: a file in `<playbooks>/templates/dashboard/` wins over the copy shipped
//! in the binary, so a daemon pointed at another playbooks folder without templates still has pages.
//! Templates are read on first use and again after a playbook reload.

use std::path::PathBuf;
use std::sync::RwLock;

use minijinja::{Environment, UndefinedBehavior};
use serde::Serialize;

/// The shipped templates, by name.
const EMBEDDED: &[(&str, &str)] = &[
    (
        "base.html",
        include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/playbooks/templates/dashboard/base.html")),
    ),
    (
        "login.html",
        include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/playbooks/templates/dashboard/login.html")),
    ),
    (
        "now.html",
        include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/playbooks/templates/dashboard/now.html")),
    ),
    (
        "consultations.html",
        include_str!(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/playbooks/templates/dashboard/consultations.html"
        )),
    ),
    (
        "warning.html",
        include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/playbooks/templates/dashboard/warning.html")),
    ),
    (
        "playbooks.html",
        include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/playbooks/templates/dashboard/playbooks.html")),
    ),
    (
        "error.html",
        include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/playbooks/templates/dashboard/error.html")),
    ),
    (
        "list.html",
        include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/playbooks/templates/dashboard/list.html")),
    ),
    (
        "enterprise.html",
        include_str!(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/playbooks/templates/dashboard/enterprise.html"
        )),
    ),
    (
        "reports.html",
        include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/playbooks/templates/dashboard/reports.html")),
    ),
    (
        "_proposals.html",
        include_str!(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/playbooks/templates/dashboard/_proposals.html"
        )),
    ),
    (
        "_chart.html",
        include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/playbooks/templates/dashboard/_chart.html")),
    ),
];

/// The template environment.
pub(super) struct Templates {
    env: RwLock<Environment<'static>>,
}

impl Templates {
    /// Files in `dir` first, then the embedded copies.
    pub(super) fn new(dir: PathBuf) -> Templates {
        let mut env = Environment::new();
        // A misspelt variable fails the render (and the tests) instead of printing nothing.
        env.set_undefined_behavior(UndefinedBehavior::SemiStrict);
        env.set_loader(move |name| {
            if name.contains(['/', '\\']) || name.contains("..") {
                return Ok(None);
            }
            let path = dir.join(name);
            if path.is_file() {
                return std::fs::read_to_string(&path).map(Some).map_err(|e| {
                    minijinja::Error::new(
                        minijinja::ErrorKind::InvalidOperation,
                        format!("cannot read {}: {e}", path.display()),
                    )
                });
            }
            Ok(EMBEDDED.iter().find(|(n, _)| *n == name).map(|(_, t)| (*t).to_string()))
        });
        Templates { env: RwLock::new(env) }
    }

    /// Renders a page.
    pub(super) fn render<S: Serialize>(&self, name: &str, ctx: &S) -> Result<String, minijinja::Error> {
        let env = self.env.read().unwrap_or_else(|p| p.into_inner());
        env.get_template(name)?.render(ctx)
    }

    /// Forgets the loaded templates so the next render reads the files again.
    pub(super) fn reload(&self) {
        self.env.write().unwrap_or_else(|p| p.into_inner()).clear_templates();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_shipped_template_parses() {
        let t = Templates::new(PathBuf::from("/nonexistent"));
        let env = t.env.read().unwrap();
        for (name, _) in EMBEDDED {
            env.get_template(name).unwrap_or_else(|e| panic!("{name}: {e:#}"));
        }
    }
}
