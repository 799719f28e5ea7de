//! `hazeflow`: parses the command line, sets up logging and calls the library.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use hazeflow::commands;

/// Heavy-pollution-weather emergency response (重污染天气应急): forecasts, warnings, measures,
/// acknowledgements.
#[derive(Parser)]
#[command(name = "hazeflow", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Validate playbooks, seed files, the duty roster and the message templates (each rendered with
    /// sample data); prints file:line:column: message per error, exit 1 on any.
    Check {
        /// Playbook files or folders, or a seeds folder. Default: the playbooks folder, its history/*,
        /// seeds/, and the roster and templates of the configuration.
        paths: Vec<PathBuf>,
        /// A configuration file: its playbooks folder, roster and templates (default: the embedded
        /// config/default.yaml). With paths, the roster and templates are checked too.
        #[arg(long)]
        config: Option<PathBuf>,
    },
    /// Print region,date,aqi,category,primary_pollutants for a CSV of concentrations.
    Aqi {
        /// The CSV file (forecast format).
        file: PathBuf,
        /// hj633-2012 or hj633-2026; by default chosen by each row's date.
        #[arg(long)]
        standard: Option<String>,
    },
    /// Dry run of one consultation: proposed level per region and the rule that fired. Changes nothing.
    Assess {
        /// The forecast file (CSV or JSON).
        #[arg(long)]
        forecast: PathBuf,
        /// A playbook file (default: the live set in playbooks/).
        #[arg(long)]
        playbook: Option<PathBuf>,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Run the daemon: inbox watcher, scheduler, HTTP server (embedded defaults without --config).
    Daemon {
        /// A configuration file (default: the embedded config/default.yaml).
        #[arg(long)]
        config: Option<PathBuf>,
    },
    /// Hand forecasts to the running daemon.
    Forecast {
        #[command(subcommand)]
        command: ForecastCommand,
    },
    /// Hold a consultation now on the running daemon.
    Consult {
        /// Required: run it now.
        #[arg(long)]
        now: bool,
        #[command(flatten)]
        server: Server,
    },
    /// Warnings on the running daemon: list, show, sign, lift.
    Warnings {
        #[command(subcommand)]
        command: WarningsCommand,
    },
    /// After an episode (总结评估): the summary of a warning on the running daemon.
    Episode {
        #[command(subcommand)]
        command: EpisodeCommand,
    },
    /// Check the store deeply without changing it: a copy is opened with redb's integrity check, every
    /// row of every table decoded, and every view rebuilt from the event log and compared.
    Verify {
        /// A configuration file (default: the embedded config/default.yaml).
        #[arg(long)]
        config: Option<PathBuf>,
        /// Where the copy is made (default: the system's temporary folder); it is removed afterwards.
        #[arg(long)]
        scratch: Option<PathBuf>,
    },
    /// The emergency reduction list: import, coverage, reductions, notice boards, synthetic lists.
    Registry {
        /// The configuration whose database holds the list (the daemon must be stopped). Without a
        /// database yet, commands read the seed list.
        #[arg(long, global = true)]
        config: Option<PathBuf>,
        #[command(subcommand)]
        command: hazeflow::registry::cli::RegistryCommand,
    },
    /// Reload the playbooks, the duty roster and the message templates of the running daemon.
    Reload {
        #[command(flatten)]
        server: Server,
    },
    /// Replay a daily series as perfect forecasts: per-day proposals and the warnings produced.
    Replay {
        /// The observations (forecast CSV format).
        #[arg(long)]
        observations: PathBuf,
        /// The playbook file.
        #[arg(long)]
        playbook: PathBuf,
        /// Print JSON.
        #[arg(long)]
        json: bool,
        /// Print only how the rules did: warning-days, their observed AQI, PM-polluted days covered,
        /// O3-led warning-days, effective times off a day boundary.
        #[arg(long)]
        stats: bool,
    },
}

/// Where the daemon is.
#[derive(clap::Args, Clone)]
struct Server {
    /// The daemon's address.
    #[arg(long, env = "HAZEFLOW_SERVER", default_value = "http://127.0.0.1:8080")]
    server: String,
    /// A staff token.
    #[arg(long, env = "HAZEFLOW_TOKEN", hide_env_values = true)]
    token: Option<String>,
}

impl Server {
    fn client(&self) -> hazeflow::client::Client {
        hazeflow::client::Client::new(&self.server, self.token.clone())
    }
}

#[derive(Subcommand)]
enum ForecastCommand {
    /// Submit a forecast file (CSV or JSON).
    Submit {
        /// The file.
        file: PathBuf,
        #[command(flatten)]
        server: Server,
    },
}

#[derive(Subcommand)]
enum WarningsCommand {
    /// Current warning per region.
    List {
        #[command(flatten)]
        server: Server,
    },
    /// One warning with its full history.
    Show {
        /// Warning id.
        id: String,
        #[command(flatten)]
        server: Server,
    },
    /// Sign warnings awaiting sign-off (with the role of your token).
    Sign {
        /// Warning ids.
        ids: Vec<String>,
        /// Sign every warning awaiting sign-off that your role may sign.
        #[arg(long)]
        pending: bool,
        #[command(flatten)]
        server: Server,
    },
    /// Lift a warning.
    Lift {
        /// Warning id.
        id: String,
        /// Why.
        #[arg(long)]
        reason: Option<String>,
        #[command(flatten)]
        server: Server,
    },
}

#[derive(Subcommand)]
enum EpisodeCommand {
    /// Level history, assignments, acknowledgement rates and times per region, inspections, expected
    /// reductions against the targets.
    Summary {
        /// Warning id.
        id: String,
        /// Print the JSON of GET /api/v1/warnings/{id}/summary.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        server: Server,
    },
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_multi_thread().enable_all().build()?)
}

fn init_logs(format: &str, level: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(level));
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    if format == "json" {
        builder.json().init();
    } else {
        builder.init();
    }
}

fn daemon(config: Option<PathBuf>) -> anyhow::Result<ExitCode> {
    let settings = hazeflow::config::Settings::load(config.as_deref())?;
    init_logs(&settings.log.format, &settings.log.level);
    runtime()?.block_on(async move {
        let app = hazeflow::app::Application::build(settings.clone(), hazeflow::clock::Clock::System).await?;
        let state = app.state();
        let shutdown = tokio_util::sync::CancellationToken::new();
        spawn_signals(state.clone(), shutdown.clone())?;
        let url = settings.http.public_url.clone();
        eprintln!("hazeflow is running: dashboard and API at {url} (port {}), inbox {}, database {}", app.port(), settings.inbox.dir.display(), settings.db_path().display());
        if settings.demo {
            eprintln!("demo: a sample forecast is in the inbox; see the proposals with\n  HAZEFLOW_TOKEN=hazeflow-demo hazeflow warnings list\nand sign them with\n  HAZEFLOW_TOKEN=hazeflow-demo hazeflow warnings sign --pending");
        }
        app.run_until_stopped(shutdown).await?;
        Ok(ExitCode::SUCCESS)
    })
}

#[cfg(unix)]
fn spawn_signals(state: std::sync::Arc<hazeflow::app::AppState>, shutdown: tokio_util::sync::CancellationToken) -> anyhow::Result<()> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    let mut hup = signal(SignalKind::hangup())?;
    tokio::spawn(async move {
        loop {
            tokio::select! {
                _ = term.recv() => break,
                _ = int.recv() => break,
                _ = hup.recv() => {
                    let _ = state.reload_playbooks("SIGHUP").await;
                }
            }
        }
        shutdown.cancel();
    });
    Ok(())
}

#[cfg(not(unix))]
fn spawn_signals(_state: std::sync::Arc<hazeflow::app::AppState>, shutdown: tokio_util::sync::CancellationToken) -> anyhow::Result<()> {
    tokio::spawn(async move {
        let _ = tokio::signal::ctrl_c().await;
        shutdown.cancel();
    });
    Ok(())
}

fn verify(config: Option<PathBuf>, scratch: Option<PathBuf>) -> anyhow::Result<ExitCode> {
    let settings = hazeflow::config::Settings::load(config.as_deref())?;
    let ok = commands::verify(&settings.db_path(), scratch.as_deref())?;
    Ok(if ok { ExitCode::SUCCESS } else { ExitCode::from(1) })
}

fn registry(config: Option<PathBuf>, command: hazeflow::registry::cli::RegistryCommand) -> anyhow::Result<ExitCode> {
    let settings = hazeflow::config::Settings::load(config.as_deref())?;
    let db = settings.db_path();
    // An import records into the store, creating it in a fresh data folder; the other commands
    // read the seed list until there is a store.
    let records = matches!(command, hazeflow::registry::cli::RegistryCommand::Import { dry_run: false, .. });
    if db.exists() || records {
        let mut source = hazeflow::list::StoreList::open(&db)?;
        hazeflow::registry::cli::run(command, &mut source)
    } else {
        hazeflow::registry::cli::run(command, &mut hazeflow::registry::cli::SeedList::default())
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    if !matches!(cli.command, Command::Daemon { .. }) {
        init_logs("text", "warn");
    }
    let result = match cli.command {
        Command::Daemon { config } => daemon(config),
        Command::Forecast {
            command: ForecastCommand::Submit { file, server },
        } => runtime().and_then(|rt| rt.block_on(server.client().submit(&file))),
        Command::Consult { now, server } => {
            if now {
                runtime().and_then(|rt| rt.block_on(server.client().consult()))
            } else {
                Err(anyhow::anyhow!(
                    "consult needs --now (scheduled consultations run inside the daemon)"
                ))
            }
        }
        Command::Warnings { command } => runtime().and_then(|rt| {
            rt.block_on(async {
                match command {
                    WarningsCommand::List { server } => server.client().list().await,
                    WarningsCommand::Show { id, server } => server.client().show(&id).await,
                    WarningsCommand::Sign { ids, pending, server } => server.client().sign(&ids, pending).await,
                    WarningsCommand::Lift { id, reason, server } => server.client().lift(&id, reason).await,
                }
            })
        }),
        Command::Episode {
            command: EpisodeCommand::Summary { id, json, server },
        } => runtime().and_then(|rt| rt.block_on(server.client().episode_summary(&id, json))),
        Command::Verify { config, scratch } => verify(config, scratch),
        Command::Registry { config, command } => registry(config, command),
        Command::Reload { server } => runtime().and_then(|rt| rt.block_on(server.client().reload())),
        Command::Check { paths, config } => commands::check(&paths, config.as_deref()),
        Command::Aqi { file, standard } => commands::aqi(&file, standard.as_deref()),
        Command::Assess { forecast, playbook, json } => commands::assess(&forecast, playbook.as_deref(), json),
        Command::Replay {
            observations,
            playbook,
            json,
            stats,
        } => commands::replay(&observations, &playbook, json, stats),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(2)
        }
    }
}
