//! The application: built from [`Settings`], run until a shutdown token fires. Tests start the very
//! same thing on port 0 with a temporary data folder and a manual clock.
//!
//! It opens the store, loads the playbooks, binds the HTTP listener, seeds the demo forecast on first
//! start, and runs the inbox watcher, the scheduler, the clock tick and the HTTP server as tracked
//! tasks. On shutdown: stop accepting, let each task finish its unit of work, close the store last.

use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use serde_json::json;
use tokio::net::TcpListener;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::clock::Clock;
use crate::config::Settings;
use crate::domain::playbook;
use crate::domain::region::Regions;
use crate::engine::{Engine, Playbooks};
use crate::store::{RecordBody, Store};
use crate::web::api::{self, Staff};
use crate::workers::{inbox, schedule};

/// How often the clock tick runs.
const TICK_EVERY: Duration = Duration::from_millis(500);

/// What every task and handler shares.
pub struct AppState {
    /// The operations.
    pub engine: Engine,
    /// The settings it runs with.
    pub settings: Settings,
    /// Whether an accepted forecast triggers a consultation at once.
    pub consult_on_forecast: bool,
    /// Wakes the scheduler for an on-demand consultation.
    pub consult_requested: Notify,
    /// Wakes whoever follows state changes (notifier, pages).
    pub changed: Notify,
    /// Measure defaults: industry × grade × level, deadlines, department duties.
    pub defaults: Arc<crate::registry::Defaults>,
    /// The acknowledgement token secret.
    pub tokens: crate::engine::assign::TokenKey,
    /// The notifier's stage: its roster and templates are reloaded with the playbooks.
    pub notify: Arc<crate::notify::NotifyStage>,
    /// The staff tokens now: those of the configuration and environment, then those of
    /// `staff.tokens_file`, which a reload reads again.
    pub staff: std::sync::RwLock<Vec<crate::config::StaffToken>>,
}

impl AppState {
    /// Asks the scheduler for a consultation now.
    pub fn trigger_consultation(&self) {
        self.consult_requested.notify_one();
    }

    /// Tells followers that state changed.
    pub fn after_change(&self) {
        self.changed.notify_waiters();
    }

    /// The staff member whose token hashes to `sha256`.
    pub fn staff_for(&self, sha256: &str) -> Option<Staff> {
        let tokens = self.staff.read().unwrap_or_else(std::sync::PoisonError::into_inner);
        tokens.iter().find(|t| t.sha256 == sha256).map(|t| Staff {
            name: t.name.clone(),
            role: t.role.clone(),
        })
    }

    /// The staff tokens a reload would put live: the fixed ones of the configuration and environment,
    /// then the tokens file read again (an error names the file and line). `None`: no tokens file.
    fn reread_staff(&self) -> Option<Result<Vec<crate::config::StaffToken>, String>> {
        let f = self.settings.staff.tokens_file.as_ref()?;
        let fixed = &self.settings.staff.tokens[..self.settings.staff.tokens.len().saturating_sub(self.settings.staff.from_file)];
        Some(
            crate::config::read_token_file(f)
                .map(|read| fixed.iter().cloned().chain(read).collect())
                .map_err(|e| format!("{e:#}")),
        )
    }

    /// Reloads the playbooks folder, the duty roster, the message templates and the staff tokens file,
    /// all or nothing: on any error the old playbooks, roster, templates and tokens all stay live and
    /// the errors (each naming its file and line) are returned. Recorded either way; a roster or templates that changed are
    /// recorded too (`notify_reloaded`).
    pub async fn reload_playbooks(&self, actor: &str) -> Result<Vec<String>, Vec<String>> {
        let now = self.engine.clock.now();
        let regions = self.engine.regions;
        let playbooks = crate::domain::playbook::load_paths(std::slice::from_ref(&self.settings.playbooks), regions)
            .map_err(|e| e.iter().map(ToString::to_string).collect::<Vec<String>>());
        let files = crate::notify::Files::load(&self.settings, regions);
        let staff = self.reread_staff().transpose().map_err(|e| vec![e]);
        let (versions, errors, notify) = match (playbooks, files, staff) {
            (Ok(set), Ok(files), Ok(staff)) => {
                if let Some(staff) = staff {
                    let mut live = self.staff.write().unwrap_or_else(std::sync::PoisonError::into_inner);
                    if *live != staff {
                        tracing::info!(tokens = staff.len(), before = live.len(), "staff tokens reloaded");
                    }
                    *live = staff;
                }
                let summary = files.summary(&self.settings);
                let digests = json!({ "roster": files.roster.digest(), "templates": files.templates.digest() });
                self.engine.playbooks.swap(set, now);
                let changed = self.notify.replace(files);
                let mut data = serde_json::to_value(&summary).unwrap_or_default();
                data["digests"] = digests;
                (self.engine.playbooks.status().versions, Vec::new(), changed.then_some(data))
            }
            (playbooks, files, staff) => {
                let errors: Vec<String> = playbooks
                    .err()
                    .unwrap_or_default()
                    .into_iter()
                    .chain(files.err().unwrap_or_default())
                    .chain(staff.err().unwrap_or_default())
                    .collect();
                self.engine.playbooks.refused(now, errors.clone());
                (self.engine.playbooks.status().versions, errors, None)
            }
        };
        let body = RecordBody::PlaybooksReloaded {
            versions: versions.clone(),
            errors: errors.clone(),
        };
        let actor = actor.to_string();
        let notified = notify.clone();
        let recorded = self
            .engine
            .store
            .write(move |tx| {
                tx.append(now, &actor, None, body)?;
                if let Some(data) = notified {
                    tx.append(
                        now,
                        &actor,
                        None,
                        RecordBody::Other {
                            kind: "notify_reloaded".into(),
                            data,
                        },
                    )?;
                }
                Ok(())
            })
            .await;
        if let Err(e) = recorded {
            tracing::error!(error = %e, "could not record the reload");
        }
        if !errors.is_empty() {
            tracing::warn!(errors = ?errors, "reload refused; the old playbooks, roster, templates and staff tokens stay live");
            return Err(errors);
        }
        if let Err(e) = self.engine.remember_playbooks().await {
            tracing::error!(error = %e, "could not keep the sources of the new playbook versions");
        }
        match notify {
            Some(n) => tracing::info!(versions = ?versions, notify = %n, "playbooks reloaded; new roster or templates live"),
            None => tracing::info!(versions = ?versions, "playbooks reloaded; roster and templates unchanged"),
        }
        Ok(versions)
    }
}

/// The province every root playbook lies in (Shanxi for the shipped ones); `None` when they span
/// provinces or there is none.
fn home_province(set: &playbook::PlaybookSet) -> Option<crate::domain::region::RegionCode> {
    let mut provinces = set.roots().map(|p| p.scope.province());
    let first = provinces.next()?;
    provinces.all(|p| p == first).then_some(first)
}

/// The built application, ready to run.
pub struct Application {
    listener: TcpListener,
    state: Arc<AppState>,
    delivery: Arc<crate::notify::Delivery>,
    escalation: Arc<crate::engine::escalate::Escalation>,
}

impl Application {
    /// Opens everything; fails with a clear message if the store or the playbooks cannot be loaded.
    pub async fn build(settings: Settings, clock: Clock) -> Result<Application> {
        let set = playbook::load_paths(std::slice::from_ref(&settings.playbooks), Regions::national()).map_err(|errors| {
            let text: Vec<String> = errors.iter().map(ToString::to_string).collect();
            anyhow::anyhow!(
                "the playbooks in {} have errors:\n{}",
                settings.playbooks.display(),
                text.join("\n")
            )
        })?;
        // The whole country's codes, scoped to the province of the root playbooks (the grid, the
        // dashboard's region choices).
        let regions = Regions::for_province(home_province(&set));
        // The data folder holds personal data (contacts, acknowledgements) and keys: its owner only.
        crate::config::private_dir(&settings.data_dir)?;
        let store = Store::open(&settings.db_path())?;
        crate::config::private_file(&settings.db_path())?;
        let now = clock.now();
        let notify = crate::notify::build(&settings, regions)?;
        let defaults = Arc::new(crate::registry::load_defaults(&settings.measures).map_err(|errors| {
            let text: Vec<String> = errors.iter().map(ToString::to_string).collect();
            anyhow::anyhow!(
                "the measure defaults {} have errors:\n{}",
                settings.measures.display(),
                text.join("\n")
            )
        })?);
        for e in crate::registry::unknown_levels(&settings.measures.display().to_string(), &defaults, &set) {
            tracing::warn!("{e}");
        }
        let tokens = crate::engine::assign::load_token_key(&settings.data_dir)?;
        let assign = Arc::new(crate::engine::assign::AssignStage {
            defaults: defaults.clone(),
            regions,
            on_round: vec![
                crate::engine::notice::hook(),
                crate::engine::escalate::hook(defaults.clone()),
                crate::engine::inspect::hook(),
            ],
        });
        let escalation = Arc::new(crate::engine::escalate::Escalation {
            notify: notify.stage.clone(),
            defaults: defaults.clone(),
            tokens: tokens.clone(),
            regions,
            public_url: settings.http.public_url.clone(),
        });
        let mut engine = Engine {
            stages: Vec::new(),
            store,
            playbooks: Playbooks::new(set, now),
            regions,
            clock,
            max_forecast_bytes: settings.inbox.max_bytes,
            forecast_max_ahead: chrono::Duration::minutes(i64::try_from(settings.forecast.max_ahead_minutes).unwrap_or(i64::MAX / 120_000)),
        };
        engine.remember_playbooks().await?;
        // Assignments first, so that the notifications of the same event can name them.
        engine.stages.push(assign);
        engine.stages.push(notify.stage.clone());
        // Inspection tasks still open when a warning ends are closed as 无需检查.
        engine.stages.push(Arc::new(crate::engine::inspect::EndStage));
        let addr = settings.listen_addr()?;
        let listener = TcpListener::bind(addr).await.with_context(|| format!("cannot listen on {addr}"))?;
        let staff = std::sync::RwLock::new(settings.staff.tokens.clone());
        let state = Arc::new(AppState {
            engine,
            settings,
            staff,
            consult_on_forecast: true,
            consult_requested: Notify::new(),
            changed: Notify::new(),
            defaults,
            tokens,
            notify: notify.stage.clone(),
        });
        if let Some(dir) = state.settings.list_seed.clone() {
            crate::engine::list::seed(&state, &dir).await?;
        }
        if state.settings.demo {
            crate::demo::seed_inbox(&state)?;
        }
        Ok(Application {
            listener,
            state,
            delivery: notify.delivery,
            escalation,
        })
    }

    /// The port it listens on.
    pub fn port(&self) -> u16 {
        self.listener.local_addr().map(|a| a.port()).unwrap_or(0)
    }

    /// The shared state (tests drive the engine through it).
    pub fn state(&self) -> Arc<AppState> {
        self.state.clone()
    }

    /// Runs until `shutdown` fires, then stops under the configured deadline.
    pub async fn run_until_stopped(self, shutdown: CancellationToken) -> Result<()> {
        let tracker = TaskTracker::new();
        let state = self.state.clone();
        tracker.spawn(inbox::run(state.clone(), shutdown.clone()));
        tracker.spawn(schedule::run_consultations(state.clone(), shutdown.clone()));
        tracker.spawn(schedule::run_ticks(state.clone(), shutdown.clone(), TICK_EVERY));
        tracker.spawn(crate::notify::deliver::run(self.delivery.clone(), state.clone(), shutdown.clone()));
        tracker.spawn(crate::engine::escalate::run(
            self.escalation.clone(),
            state.clone(),
            shutdown.clone(),
        ));
        tracker.spawn(crate::engine::notice::run(state.clone(), shutdown.clone()));
        tracker.spawn(crate::notify::outage::run(state.clone(), shutdown.clone()));
        let router = api::router()
            .merge(crate::engine::ack::router())
            .merge(
                crate::engine::inspect::router()
                    .merge(crate::engine::negotiate::router())
                    .route_layer(axum::middleware::from_fn_with_state(
                        state.clone(),
                        crate::domain::authority::staff_writes,
                    )),
            )
            .merge(crate::engine::episode::router())
            .merge(crate::web::publish::router())
            .merge(crate::web::dashboard::router(&state.settings)?)
            .with_state(state.clone());
        let limits = crate::web::server::Limits::from_settings(&state.settings);
        let router = crate::web::server::wrap(router, limits);
        tracker.spawn(crate::web::server::serve(self.listener, router, limits, shutdown.clone()));
        tracker.close();
        shutdown.cancelled().await;
        tracing::info!("shutting down: finishing current work");
        let deadline = Duration::from_secs(state.settings.shutdown_deadline_secs);
        if tokio::time::timeout(deadline, tracker.wait()).await.is_err() {
            tracing::warn!(?deadline, "tasks did not finish in time");
        }
        state.engine.store.close();
        tracing::info!("stopped; the store is closed");
        Ok(())
    }
}
