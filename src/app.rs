//! The application: built from [`Settings`], run until a shutdown token fires. Tests start the very
//! same thing on port 0 with a temporary data folder and a manual clock.
//!
//! It opens the store, loads the playbooks, binds the HTTP listener, seeds the demo forecast on first
//! start, and runs the inbox watcher, the scheduler, the clock tick and the HTTP server as tracked
//! tasks. On shutdown: stop accepting, let each task finish its unit of work, close the store last.

use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use tokio::net::TcpListener;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::clock::Clock;
use crate::config::Settings;
use crate::domain::playbook;
use crate::domain::region::Regions;
use crate::engine::{Engine, Playbooks};
use crate::store::Store;
use crate::web::AppState;
use crate::web::api;
use crate::workers::{inbox, schedule};

/// How often the clock tick runs.
const TICK_EVERY: Duration = Duration::from_millis(500);

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
        let store = match &settings.store.url {
            // A store of an older format is upgraded, after a backup into the data folder.
            Some(url) => Store::open_postgres_upgrading(url, &settings.data_dir.join("backups"))?,
            None => {
                let store = Store::open(&settings.db_path())?;
                crate::config::private_file(&settings.db_path())?;
                store
            }
        };
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
        let keys = crate::engine::link_keys::KeyHome::for_store(&store, &settings.data_dir);
        let tokens = crate::engine::assign::load_token_key(&keys)?;
        // Acknowledgements answered before a crash and not yet durable in the store file are in its
        // journal: redone before anything reads the store (and the journal taken into use).
        let redone = store.replay_journal(crate::web::ack::replayer(tokens.clone())).await?;
        if redone > 0 {
            tracing::warn!(records = redone, "acknowledgements redone from the store's journal");
        }
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
            consult_requested: Arc::new(Notify::new()),
            changed: Arc::new(Notify::new()),
        };
        engine.remember_playbooks().await?;
        // Assignments first, so that the notifications of the same event can name them.
        engine.stages.push(assign);
        engine.stages.push(notify.stage.clone());
        // Inspection tasks still open when a warning ends are closed as 无需检查.
        engine.stages.push(Arc::new(crate::engine::inspect::EndStage));
        // Each decision's approval form (审批表) and its timers.
        engine.stages.push(Arc::new(crate::engine::approval::ApprovalStage {
            defaults: defaults.clone(),
        }));
        // Each decision reported up (信息报送), and the summary marked due when a warning ends.
        engine.stages.push(Arc::new(crate::engine::reportup::ReportStage {
            regions,
            public_url: settings.http.public_url.clone(),
        }));
        let addr = settings.listen_addr()?;
        let listener = TcpListener::bind(addr).await.with_context(|| format!("cannot listen on {addr}"))?;
        let staff = std::sync::RwLock::new(settings.staff.tokens.clone());
        let pages = crate::web::Pages::load(&settings.playbooks).map_err(|errors| {
            anyhow::anyhow!(
                "the page templates in {} have errors:\n{}",
                settings.playbooks.display(),
                errors.join("\n")
            )
        })?;
        let state = Arc::new(AppState {
            engine: Arc::new(engine),
            settings,
            staff,
            pages: crate::templates::Live::new(pages),
            consult_on_forecast: true,
            defaults,
            tokens,
            session_keys: Arc::new(std::sync::RwLock::new(keys.load_or_create_session()?)),
            keys,
            notify: notify.stage.clone(),
        });
        if let Some(dir) = state.settings.list_seed.clone() {
            crate::engine::list::seed(&state.engine, &state.defaults, &dir).await?;
        }
        if state.settings.demo {
            crate::demo::seed_inbox(&state.engine, &state.settings.inbox.dir)?;
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
        // The leader's work (one node at a time where nodes share a database; always here with the
        // embedded file): started when this node leads, stopped when it no longer does.
        tracker.spawn(lead(
            state.clone(),
            self.delivery.clone(),
            self.escalation.clone(),
            shutdown.clone(),
        ));
        let router = api::router()
            .merge(crate::web::ack::router())
            .merge(
                crate::web::inspect::router()
                    .merge(crate::web::negotiate::router())
                    .merge(crate::web::consult::router())
                    .route_layer(axum::middleware::from_fn_with_state(
                        state.clone(),
                        crate::web::authority::staff_writes,
                    )),
            )
            .merge(crate::web::episode::router())
            .merge(crate::web::drill::router())
            .merge(crate::web::report::router())
            .merge(crate::web::upstream::router())
            .merge(crate::web::publish::router())
            .merge(crate::web::dashboard::router(&state.settings, state.session_keys.clone())?)
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

/// Runs the leader's work — inbox, scheduler and ticks, notice fan-out, timers, delivery, outage
/// alerts — for every term this node leads, until `shutdown`.
async fn lead(
    state: Arc<AppState>,
    delivery: Arc<crate::notify::Delivery>,
    escalation: Arc<crate::engine::escalate::Escalation>,
    shutdown: CancellationToken,
) {
    let engine = state.engine.clone();
    let mut roles = engine.store.roles();
    loop {
        // Wait to lead.
        while !roles.borrow_and_update().is_leader() {
            tokio::select! {
                () = shutdown.cancelled() => return,
                changed = roles.changed() => if changed.is_err() { return },
            }
        }
        let role = engine.store.role();
        if engine.store.kind() != "embedded" {
            tracing::info!(?role, "leading: starting the scheduler, timers, inbox, fan-out and delivery");
        }
        let term = shutdown.child_token();
        let work = TaskTracker::new();
        work.spawn(inbox::run(
            engine.clone(),
            state.settings.inbox.clone(),
            state.consult_on_forecast,
            term.clone(),
        ));
        work.spawn(schedule::run_consultations(engine.clone(), term.clone(), state.consult_on_forecast));
        work.spawn(schedule::run_ticks(engine.clone(), term.clone(), TICK_EVERY));
        work.spawn(crate::notify::deliver::run(
            delivery.clone(),
            engine.store.clone(),
            engine.clock.clone(),
            engine.changed.clone(),
            term.clone(),
        ));
        work.spawn(crate::engine::escalate::run(escalation.clone(), engine.clone(), term.clone()));
        work.spawn(crate::engine::report::run(
            engine.clone(),
            state.settings.http.public_url.clone(),
            crate::engine::report::Loop {
                summaries: crate::engine::reportup::SummaryInputs {
                    defaults: state.defaults.clone(),
                    list_seed: state.settings.list_seed.clone(),
                },
                escalation: escalation.clone(),
            },
            term.clone(),
        ));
        let notices = crate::engine::notice::Notices::new(
            &engine,
            state.defaults.clone(),
            state.settings.http.public_url.clone(),
            state.tokens.clone(),
            state.notify.clone(),
        );
        work.spawn(crate::engine::notice::run(engine.clone(), notices, term.clone()));
        work.spawn(crate::notify::outage::run(
            engine.store.clone(),
            engine.clock.clone(),
            engine.regions,
            state.notify.clone(),
            term.clone(),
        ));
        work.close();
        // Lead until shut down or deposed.
        loop {
            tokio::select! {
                () = shutdown.cancelled() => break,
                changed = roles.changed() => {
                    if changed.is_err() || !roles.borrow_and_update().is_leader() {
                        tracing::warn!("no longer the leader: stopping the leader's work");
                        break;
                    }
                }
            }
        }
        term.cancel();
        work.wait().await;
        if shutdown.is_cancelled() {
            return;
        }
    }
}
