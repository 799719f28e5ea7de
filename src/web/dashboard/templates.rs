//! The page templates (minijinja 2, auto-escaped because every name ends in `.html`).
//!
//! Operators may edit them: a file in `<playbooks>/templates/dashboard/` wins over the copy shipped
//! in the binary, so a daemon pointed at another playbooks folder without templates still has pages.
//! Loaded like every template set ([`crate::templates`]): at start and on a reload.

use std::path::Path;

use minijinja::{Environment, UndefinedBehavior};
use serde::Serialize;

use crate::domain::diagnostic::Diagnostic;

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
        "drills.html",
        include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/playbooks/templates/dashboard/drills.html")),
    ),
    (
        "opinion.html",
        include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/playbooks/templates/dashboard/opinion.html")),
    ),
    (
        "approval.html",
        include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/playbooks/templates/dashboard/approval.html")),
    ),
    (
        "report.html",
        include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/playbooks/templates/dashboard/report.html")),
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

/// The compiled pages.
pub struct Templates {
    env: Environment<'static>,
}

impl Templates {
    /// The files of `dir` where there are, else the embedded copies, compiled; errors name the file.
    pub fn load(dir: &Path) -> Result<Templates, Vec<Diagnostic>> {
        let files = crate::templates::read_shipped(dir, EMBEDDED)?;
        let mut env = Environment::new();
        // A misspelt variable fails the render (and the tests) instead of printing nothing.
        env.set_undefined_behavior(UndefinedBehavior::SemiStrict);
        let mut errors = Vec::new();
        for (name, text) in files {
            if let Err(e) = env.add_template_owned(name.clone(), text) {
                errors.push(crate::templates::compile_error(dir, &name, &e));
            }
        }
        if errors.is_empty() { Ok(Templates { env }) } else { Err(errors) }
    }

    /// Renders a page.
    pub fn render<S: Serialize>(&self, name: &str, ctx: &S) -> Result<String, minijinja::Error> {
        self.env.get_template(name)?.render(ctx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_shipped_template_parses() {
        let t = Templates::load(Path::new("/nonexistent")).unwrap_or_else(|e| panic!("{e:?}"));
        for (name, _) in EMBEDDED {
            t.env.get_template(name).unwrap_or_else(|e| panic!("{name}: {e:#}"));
        }
    }
}
