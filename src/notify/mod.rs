//! Notifications: who is told what, the outbox, and delivery by email and webhooks.
//!
//! In: lifecycle events (through [`NotifyStage`], an engine [`Stage`](crate::store::Stage) that runs
//! inside the transaction recording them), notices from other stages ([`enqueue_for_assignment`],
//! [`NotifyStage::notify_event`]), the duty roster (`config/roster.yaml`), the templates
//! (`playbooks/templates/notify/`) and the `mail:` / `webhooks:` settings. Out: emails (SMTP, or `.eml`
//! files by default) and signed webhook POSTs, with every attempt in a delivery log.
//!
//! The path of a message:
//!
//! 1. `roster.rs`: the event's route in the roster's `notify:` mapping names audiences (`duty`,
//!    `signer`, `role:…`, `parent_duty`) and a template; the roster resolves them to people on duty now.
//! 2. `stage.rs`: one [`OutboxMessage`] per person (and per subscribed webhook endpoint), with an id
//!    derived from its cause, queued by `outbox.rs` in the same transaction as the event.
//! 3. `deliver.rs`: the worker claims due messages, renders them (`templates.rs`), sends them
//!    through their channel's [`Sender`] (`channel.rs`; `email.rs` with `smtp.rs`, `webhook.rs`),
//!    records the attempt, retries with backoff, and alerts the duty staff once when a message
//!    finally fails. Its module docs say exactly what is guaranteed after a crash.
//! 4. `outage.rs`: a time the store could not write (disk full), recorded and told to the province's
//!    duty staff once writing works again.
//!
//! Channels: every channel is one [`Sender`] with its own concurrency lane and retry policy, and the
//! worker dispatches through the trait only. Adding SMS later = one new file implementing [`Sender`]
//! (`sms.rs`) + one [`Channel`] variant + its settings (`sms:` with rate, concurrency and retries),
//! registered by one line in [`channel::from_settings`]; `channel.rs` lists the steps exactly.

pub mod channel;
pub mod deliver;
pub mod email;
pub mod outage;
pub mod outbox;
mod pipeline;
pub mod roster;
pub mod smtp;
pub mod stage;
pub mod templates;
pub mod webhook;

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::sync::{Arc, RwLock};

pub use channel::Sender;
pub use deliver::Delivery;
pub use outbox::{Channel, OutboxMessage, Recipient, Status, enqueue};
pub use roster::{DepartmentContact, Person, Roster};
pub use stage::{AssignmentNotice, EventNotice, NotifyStage, assignment_message, enqueue_for_assignment, event_name};
pub use templates::Templates;

use crate::config::Settings;
use crate::domain::region::{RegionCode, Regions};

/// Why an attempt failed, and whether another attempt may succeed.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{message}")]
pub struct NotifyError {
    message: String,
    retryable: bool,
}

impl NotifyError {
    /// A failure that may pass (server down, timeout, 4xx SMTP reply, HTTP 5xx).
    pub fn retryable(message: impl Into<String>) -> NotifyError {
        NotifyError {
            message: message.into(),
            retryable: true,
        }
    }

    /// A failure that will not pass by itself (5xx SMTP reply, bad address, HTTP 4xx).
    pub fn permanent(message: impl Into<String>) -> NotifyError {
        NotifyError {
            message: message.into(),
            retryable: false,
        }
    }

    /// Whether to try again.
    pub fn is_retryable(&self) -> bool {
        self.retryable
    }
}

/// The templates folder: `templates/notify/` in the playbooks folder.
pub fn templates_dir(settings: &Settings) -> PathBuf {
    settings.playbooks.join("templates").join("notify")
}

/// The files operators edit: the duty roster and the message templates, loaded and checked together.
/// The daemon loads them at start and again on a reload ([`NotifyStage::reload`]).
#[derive(Debug)]
pub struct Files {
    /// The duty roster.
    pub roster: Arc<Roster>,
    /// The compiled templates.
    pub templates: Arc<Templates>,
}

/// What a set of notification files holds, for summaries (`hazeflow check`, reloads); defined with
/// the records that carry them (`notify_reloaded`).
pub use crate::store::events::{CalendarSummary, FilesSummary};

impl std::fmt::Display for FilesSummary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "roster {} ({} people, {} regions, {} routes, {} department contacts{}), {} message templates in {}",
            self.roster.display(),
            self.people,
            self.regions,
            self.routes,
            self.department_contacts,
            match self.calendar {
                c if c == CalendarSummary::default() => String::new(),
                c => format!(
                    "; calendar: holidays {} days, workdays {}, swaps {}, overrides {}",
                    c.holiday_dates, c.workdays, c.swaps, c.overrides
                ),
            },
            self.kinds,
            self.templates.display()
        )
    }
}

impl Files {
    /// Loads the roster and the templates the settings name, and checks that every route's template
    /// exists and every webhook subscription has a route. Fails with every problem found, each
    /// naming its file (`file:line:column: message`) or setting.
    pub fn load(settings: &Settings, regions: &'static Regions) -> Result<Files, Vec<String>> {
        let roster = Roster::load_for(&settings.roster, regions);
        let templates = Templates::load(&templates_dir(settings));
        match (roster, templates) {
            (Ok(roster), Ok(templates)) => {
                let problems = cross_check(&roster, &templates, settings);
                if problems.is_empty() {
                    Ok(Files {
                        roster: Arc::new(roster),
                        templates: Arc::new(templates),
                    })
                } else {
                    Err(problems)
                }
            }
            (roster, templates) => Err(roster
                .err()
                .unwrap_or_default()
                .iter()
                .map(ToString::to_string)
                .chain(templates.err().unwrap_or_default())
                .collect()),
        }
    }

    /// Whether these are the same files as `other`, by content.
    pub fn same_as(&self, other: &Files) -> bool {
        self.roster.digest() == other.roster.digest() && self.templates.digest() == other.templates.digest()
    }

    /// What they hold.
    pub fn summary(&self, settings: &Settings) -> FilesSummary {
        FilesSummary {
            roster: settings.roster.clone(),
            people: self.roster.people().count(),
            regions: self.roster.regions().count(),
            routes: self.roster.routes().len(),
            department_contacts: self.roster.department_contact_count(),
            calendar: {
                let c = self.roster.calendar();
                CalendarSummary {
                    holiday_dates: c.holidays.len(),
                    workdays: c.workdays.len(),
                    swaps: c.swaps.len(),
                    overrides: c.overrides.values().map(Vec::len).sum(),
                }
            },
            templates: templates_dir(settings),
            kinds: self.templates.kinds().len(),
        }
    }
}

/// The stage for the engine and the worker for the daemon, built from the settings.
pub struct Notify {
    /// Push onto `engine.stages`; hand to stages that notify (assignments, escalation).
    pub stage: Arc<NotifyStage>,
    /// Run with [`deliver::run`].
    pub delivery: Arc<Delivery>,
}

/// Loads the roster and the templates ([`Files::load`]) and sets up the transports. Fails with
/// every problem found.
pub fn build(settings: &Settings, regions: &'static Regions) -> anyhow::Result<Notify> {
    let files = Files::load(settings, regions).map_err(|e| anyhow::anyhow!("the notification files have errors:\n{}", e.join("\n")))?;
    let subscriptions = settings
        .webhooks
        .endpoints
        .iter()
        .map(|e| stage::Subscription {
            id: e.id.clone(),
            events: e.events.iter().cloned().collect(),
            regions: e.regions.iter().filter_map(|r| RegionCode::parse(r).ok()).collect(),
        })
        .collect();
    let stage = Arc::new(NotifyStage {
        files: RwLock::new(Arc::new(files)),
        subscriptions,
        regions,
        public_url: settings.http.public_url.clone(),
    });
    let delivery = Arc::new(Delivery::new(stage.clone(), channel::from_settings(settings)?)?);
    Ok(Notify { stage, delivery })
}

/// Routes without templates, subscriptions without routes.
fn cross_check(roster: &Roster, templates: &Templates, settings: &Settings) -> Vec<String> {
    let mut out = Vec::new();
    let mut seen = BTreeSet::new();
    for (event, route) in roster.routes() {
        if seen.insert(route.template.clone()) && !templates.has(&route.template) {
            out.push(format!(
                "{}:{}:{}: the route of \"{event}\" names template \"{}\", but {} or {} is missing",
                settings.roster.display(),
                route.at.0,
                route.at.1,
                route.template,
                templates_dir(settings).join(format!("{}.subject.j2", route.template)).display(),
                templates_dir(settings).join(format!("{}.txt.j2", route.template)).display(),
            ));
        }
    }
    // Department contacts name departments of the measure defaults (whose own errors are reported
    // with that file), and are told with the department templates.
    if let Ok(defaults) = crate::registry::load_defaults(&settings.measures) {
        let known: Vec<&str> = defaults.departments.iter().map(|d| d.id.as_str()).collect();
        out.extend(roster.unknown_departments(&known).iter().map(ToString::to_string));
    }
    if roster.has_department_contacts() {
        for kind in DEPARTMENT_TEMPLATES {
            if !templates.has(kind) {
                out.push(format!(
                    "{}: the roster names department contacts, but {} or {} is missing",
                    settings.roster.display(),
                    templates_dir(settings).join(format!("{kind}.subject.j2")).display(),
                    templates_dir(settings).join(format!("{kind}.txt.j2")).display(),
                ));
            }
        }
    }
    for (i, e) in settings.webhooks.endpoints.iter().enumerate() {
        for ev in &e.events {
            if roster.route(ev).is_none() {
                out.push(format!(
                    "webhooks.endpoints[{i}].events: \"{ev}\" has no route in the roster's notify: mapping (the route names its template)"
                ));
            }
        }
    }
    out
}

/// The templates a department's notices use (start or change, lift, cancel, a decided lift withdrawn,
/// a reminder of either stage).
pub const DEPARTMENT_TEMPLATES: [&str; 5] = [
    "department_reminder",
    "department_issued",
    "department_lifted",
    "department_cancelled",
    "department_withdrawn",
];

/// What `hazeflow check` warns of without failing: departments with duties but no contact in a region
/// on the roster.
pub fn warnings(settings: &Settings, regions: &'static Regions) -> Vec<String> {
    let (Ok(roster), Ok(defaults)) = (
        Roster::load_for(&settings.roster, regions),
        crate::registry::load_defaults(&settings.measures),
    ) else {
        return Vec::new();
    };
    let known: Vec<(&str, &str)> = defaults.departments.iter().map(|d| (d.id.as_str(), d.name.as_str())).collect();
    roster.departments_without_contact(&known).iter().map(ToString::to_string).collect()
}

/// What `hazeflow check` reports about the notification files: the roster, the templates (every
/// kind rendered with sample data, strictly: [`Templates::check_all`]), and their cross-references.
/// Every problem names its file and line and column, or its setting.
pub fn check(settings: &Settings, regions: &'static Regions) -> Result<FilesSummary, Vec<String>> {
    let dir = templates_dir(settings);
    let roster = Roster::load_for(&settings.roster, regions);
    let templates = Templates::load(&dir);
    let mut errors = Vec::new();
    if let Err(e) = &roster {
        errors.extend(e.iter().map(ToString::to_string));
    }
    match &templates {
        Ok(t) => errors.extend(t.check_all(&dir)),
        Err(e) => errors.extend(e.iter().cloned()),
    }
    match (roster, templates) {
        (Ok(roster), Ok(templates)) => {
            errors.extend(cross_check(&roster, &templates, settings));
            if errors.is_empty() {
                Ok(Files {
                    roster: Arc::new(roster),
                    templates: Arc::new(templates),
                }
                .summary(settings))
            } else {
                Err(errors)
            }
        }
        _ => Err(errors),
    }
}
