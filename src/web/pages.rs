//! The templates of the HTTP pages — the dashboard, the public page and its messages, the
//! acknowledgement page — loaded together, at start and on every reload ([`crate::templates`]).

use std::path::Path;

use crate::web::ack::AckPage;
use crate::web::dashboard::templates::Templates as DashboardTemplates;
use crate::web::publish::text::{TEMPLATE_DIR, Texts};

/// The compiled page templates in service.
pub struct Pages {
    /// `templates/dashboard/`.
    pub dashboard: DashboardTemplates,
    /// `templates/public/`: the public page, the CAP/Atom message words, the health advice.
    pub public: std::sync::Arc<Texts>,
    /// `templates/ack/`.
    pub ack: AckPage,
}

impl Pages {
    /// Reads the three folders of `playbooks`; every error names its file.
    pub fn load(playbooks: &Path) -> Result<Pages, Vec<String>> {
        let templates = playbooks.join("templates");
        let dashboard = DashboardTemplates::load(&templates.join("dashboard"));
        let public = Texts::load(&playbooks.join(TEMPLATE_DIR));
        let ack = AckPage::load(&templates.join("ack"));
        match (dashboard, public, ack) {
            (Ok(dashboard), Ok(public), Ok(ack)) => Ok(Pages {
                dashboard,
                public: std::sync::Arc::new(public),
                ack,
            }),
            (dashboard, public, ack) => {
                let mut errors: Vec<String> = dashboard.err().unwrap_or_default().iter().map(ToString::to_string).collect();
                errors.extend(public.err());
                errors.extend(ack.err().unwrap_or_default().iter().map(ToString::to_string));
                Err(errors)
            }
        }
    }
}
