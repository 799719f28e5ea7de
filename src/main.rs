//! `hazeflow`: parses the command line, sets up logging and calls the library.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use hazeflow::cli::commands;

/// Heavy-pollution-weather emergency response (重污染天气应急): forecasts, warnings, measures,
/// acknowledgements.
#[derive(Parser)]
#[command(name = "hazeflow", version, about)]
struct Cli {
    #[command(flatten)]
    server: Server,
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
        #[arg(long, required = true)]
        now: bool,
    },
    /// Warnings on the running daemon: list, show, sign, lift.
    Warnings {
        #[command(subcommand)]
        command: WarningsCommand,
    },
    /// Drills (演练) on the running daemon: the drill warnings and the drill report.
    Drill {
        #[command(subcommand)]
        command: DrillCommand,
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
    /// A consistent copy of the store: from the file when the daemon is stopped, else through the
    /// running daemon (a token of the highest staff role). The copy is checked before it is kept.
    Backup {
        /// The file to write (must not exist).
        out: PathBuf,
        /// A configuration file (default: the embedded config/default.yaml).
        #[arg(long)]
        config: Option<PathBuf>,
    },
    /// Put a backup in place of the store (the daemon must be stopped); the current file is kept
    /// beside it.
    Restore {
        /// The backup file.
        backup: PathBuf,
        /// A configuration file (default: the embedded config/default.yaml).
        #[arg(long)]
        config: Option<PathBuf>,
    },
    /// Move a store to another backend (the daemons must be stopped): every table copied into an
    /// empty target in one transaction, then compared row by row. Each side is a `.redb` file or a
    /// `postgres://` connection string.
    Migrate {
        /// The store to read: a redb file or `postgres://…`.
        #[arg(long)]
        from: String,
        /// The empty store to write: a redb file (made when missing) or `postgres://…`.
        #[arg(long)]
        to: String,
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
    /// Reload the playbooks, the duty roster, the message templates, the staff tokens and the
    /// acknowledgement-link keys of the running daemon.
    Reload,
    /// The keys that sign acknowledgement links (in the data folder), or with `--session` the
    /// dashboard's session keys: list them, or add the next one (rotate); a running daemon signs
    /// with a new key after its next reload.
    TokenKey {
        /// A configuration file: its data folder (default: the embedded config/default.yaml).
        #[arg(long, global = true)]
        config: Option<PathBuf>,
        #[command(subcommand)]
        command: TokenKeyCommand,
    },
    /// Regional directives (区域应急指令) on the running daemon: list, issue, lift.
    Directives {
        #[command(subcommand)]
        command: DirectivesCommand,
    },
    /// The audit log (event log) of the running daemon, in pages after a sequence number.
    Events {
        /// Records after this sequence number.
        #[arg(long, default_value_t = 0)]
        after: u64,
        /// At most this many.
        #[arg(long, default_value_t = 100)]
        limit: u64,
    },
    /// Acknowledgement progress of a warning on the running daemon: per region, and who is missing.
    Acks {
        /// Warning id.
        id: String,
    },
    /// Print a completion script for a shell (bash, zsh, fish, elvish, powershell).
    Completions {
        /// The shell.
        shell: clap_complete::Shell,
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

/// Options every command takes, before or after its name: where the daemon is, who asks, and how
/// the answer is printed.
#[derive(clap::Args, Clone)]
struct Server {
    /// The daemon's address (commands that talk to the running daemon).
    #[arg(long, global = true, env = "HAZEFLOW_SERVER", default_value = "http://127.0.0.1:8080")]
    server: String,
    /// A staff token.
    #[arg(long, global = true, env = "HAZEFLOW_TOKEN", hide_env_values = true)]
    token: Option<String>,
    /// text (for people, with a summary line) or json (for scripts: the API's answer, or an offline
    /// command's summary as one object); refused (exit 2) by `daemon`, `completions`, `registry board`.
    #[arg(long, global = true, value_enum, default_value_t = Output::Text)]
    output: Output,
}

#[derive(clap::ValueEnum, Clone, Copy, PartialEq, Eq)]
enum Output {
    Text,
    Json,
}

impl Server {
    fn client(&self) -> hazeflow::cli::client::Client {
        hazeflow::cli::client::Client::new(&self.server, self.token.clone()).json(self.json())
    }
    fn json(&self) -> bool {
        self.output == Output::Json
    }
}

#[derive(Subcommand)]
enum ForecastCommand {
    /// Submit a forecast file (CSV or JSON).
    Submit {
        /// The file.
        file: PathBuf,
        /// A drill's forecast (演练): it runs the regions' drill lanes, whatever the file says.
        #[arg(long)]
        exercise: bool,
    },
}

#[derive(Subcommand)]
enum DrillCommand {
    /// The drill warnings, newest first.
    List,
    /// Per region: minutes from the notice to 收到 and to 措施已落实 (median, 90th percentile, last).
    Report {
        /// The drill warning's id.
        id: String,
    },
}

#[derive(Subcommand)]
enum WarningsCommand {
    /// Current warning per region.
    List,
    /// One warning with its full history.
    Show {
        /// Warning id.
        id: String,
    },
    /// Sign warnings awaiting sign-off (with the role of your token).
    Sign {
        /// Warning ids.
        ids: Vec<String>,
        /// Sign every warning awaiting sign-off that your role may sign.
        #[arg(long)]
        pending: bool,
        /// Why a consultation's proposal is signed before its record (会商意见) is completed, where the
        /// playbook asks for the record first (record_before_sign); kept on the record's page and the 审批表.
        #[arg(long, value_name = "REASON")]
        without_record: Option<String>,
    },
    /// Lift a warning.
    Lift {
        /// Warning id.
        id: String,
        /// Why.
        #[arg(long)]
        reason: Option<String>,
    },
}

#[derive(Subcommand)]
enum DirectivesCommand {
    /// Directives issued, active and lifted.
    List,
    /// Issue a directive: every region named, and every region below them, is held at least at its
    /// level from its start until it is lifted (the issuing tier's signer of that level).
    Issue {
        /// Its id (the document number, e.g. 晋气指〔2026〕3号).
        #[arg(long)]
        id: String,
        /// Its name.
        #[arg(long)]
        name: String,
        /// The lowest level it holds (yellow, orange, red).
        #[arg(long)]
        min_level: hazeflow::domain::level::LevelId,
        /// Region codes, comma-separated.
        #[arg(long, value_delimiter = ',', required = true)]
        regions: Vec<String>,
        /// Start, Asia/Shanghai ("2026-12-02 00:00").
        #[arg(long)]
        from: String,
        /// End, Asia/Shanghai (none: until lifted).
        #[arg(long)]
        until: Option<String>,
        /// The issuing tier's region code (default: the province).
        #[arg(long)]
        issued_by: Option<String>,
    },
    /// Lift a directive.
    Lift {
        /// Its id.
        id: String,
    },
}

#[derive(Subcommand)]
enum TokenKeyCommand {
    /// The keys in service, oldest first; the last signs new links (`--session`: new dashboard forms).
    List {
        /// The dashboard's session keys instead of the ack-link keys.
        #[arg(long)]
        session: bool,
    },
    /// Add the next key (k1, k2, …); older keys go on verifying the links (`--session`: the
    /// dashboard's forms and sessions) they signed until their file is removed (and the daemon
    /// reloaded).
    Rotate {
        /// The dashboard's session keys (`session-keys/k{N}.key`; the legacy `session.key` is `k0`)
        /// instead of the ack-link keys.
        #[arg(long)]
        session: bool,
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
    },
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_multi_thread().enable_all().build()?)
}

fn init_logs(format: &str, level: &str) {
    hazeflow::logs::init(format, level);
}

fn daemon(config: Option<PathBuf>) -> anyhow::Result<ExitCode> {
    let settings = hazeflow::config::Settings::load(config.as_deref())?;
    init_logs(&settings.log.format, &settings.log.level);
    runtime()?.block_on(async move {
        let app = hazeflow::app::Application::build(settings.clone(), hazeflow::clock::Clock::System).await?;
        let state = app.state();
        let shutdown = tokio_util::sync::CancellationToken::new();
        spawn_signals(state.clone(), shutdown.clone())?;
        let url = settings.http.public_url.trim_end_matches('/').to_string();
        let mail = match &settings.mail.smtp.host {
            Some(host) => format!("smtp://{host}:{}", settings.mail.smtp.port()),
            None => settings.mail.dir_in(&settings.data_dir).display().to_string(),
        };
        tracing::info!(
            dashboard = %format!("{url}/"),
            public_page = %format!("{url}/public"),
            api = %format!("{url}/api/v1"),
            port = app.port(),
            inbox = %settings.inbox.dir.display(),
            database = %settings.db_path().display(),
            mail = %mail,
            "hazeflow is running"
        );
        if settings.demo {
            tracing::info!(
                token = "hazeflow-demo",
                list = "HAZEFLOW_TOKEN=hazeflow-demo hazeflow warnings list",
                sign = "HAZEFLOW_TOKEN=hazeflow-demo hazeflow warnings sign --pending",
                "demo: a sample forecast is in the inbox; the proposals await sign-off"
            );
        }
        hazeflow::systemd::notify("READY=1");
        if let Some(every) = hazeflow::systemd::watchdog_every() {
            let (state, stop) = (state.clone(), shutdown.clone());
            tokio::spawn(async move {
                let mut tick = tokio::time::interval(every);
                loop {
                    tokio::select! {
                        _ = stop.cancelled() => break,
                        _ = tick.tick() => {
                            // Alive means the store answers: a hung store stops the pings and systemd restarts us.
                            if state.engine.store.read(|r| r.last_seq()).is_ok() {
                                hazeflow::systemd::notify("WATCHDOG=1");
                            }
                        }
                    }
                }
            });
        }
        let stopping = shutdown.clone();
        tokio::spawn(async move {
            stopping.cancelled().await;
            hazeflow::systemd::notify("STOPPING=1");
        });
        app.run_until_stopped(shutdown).await?;
        Ok(ExitCode::SUCCESS)
    })
}

#[cfg(unix)]
fn spawn_signals(state: std::sync::Arc<hazeflow::web::AppState>, shutdown: tokio_util::sync::CancellationToken) -> anyhow::Result<()> {
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
fn spawn_signals(_state: std::sync::Arc<hazeflow::web::AppState>, shutdown: tokio_util::sync::CancellationToken) -> anyhow::Result<()> {
    tokio::spawn(async move {
        let _ = tokio::signal::ctrl_c().await;
        shutdown.cancel();
    });
    Ok(())
}

fn verify(config: Option<PathBuf>, scratch: Option<PathBuf>, json: bool) -> anyhow::Result<ExitCode> {
    let settings = hazeflow::config::Settings::load(config.as_deref())?;
    let ok = commands::verify(&settings.db_path(), scratch.as_deref(), json)?;
    Ok(if ok { ExitCode::SUCCESS } else { ExitCode::from(1) })
}

fn registry(config: Option<PathBuf>, mut command: hazeflow::registry::cli::RegistryCommand, server: &Server) -> anyhow::Result<ExitCode> {
    use hazeflow::registry::cli::RegistryCommand;
    // `--output json` is each command's own `--json`; a notice board is a text to post.
    if server.json() {
        match &mut command {
            RegistryCommand::Import { json, .. }
            | RegistryCommand::Coverage { json, .. }
            | RegistryCommand::Reductions { json, .. }
            | RegistryCommand::Check { json, .. } => *json = true,
            RegistryCommand::Board { .. } => {
                return Ok(refuse_json("registry board", "it prints the notice board's text, to post as it is"));
            }
        }
    }
    let settings = hazeflow::config::Settings::load(config.as_deref())?;
    let db = settings.db_path();
    // An import records into the store, creating it in a fresh data folder; the other commands
    // read the seed list until there is a store.
    let records = matches!(command, RegistryCommand::Import { dry_run: false, .. });
    // The reports only read the list: while the daemon holds the store, they ask it.
    let report = matches!(
        command,
        RegistryCommand::Reductions { .. } | RegistryCommand::Board { .. } | RegistryCommand::Coverage { .. }
    );
    if db.exists() || records {
        match hazeflow::engine::list::StoreList::open(&db) {
            Ok(mut source) => hazeflow::registry::cli::run(command, &mut source),
            Err(e) if report && hazeflow::cli::daemon_list::in_use(&e) => {
                let mut source = hazeflow::cli::daemon_list::DaemonList::new(server.client(), &server.server);
                hazeflow::registry::cli::run(command, &mut source)
            }
            Err(e) => Err(e),
        }
    } else {
        hazeflow::registry::cli::run(command, &mut hazeflow::registry::cli::SeedList::default())
    }
}

/// Refuses `--output json` for a command that has no JSON form: a message naming why, exit code 2
/// (a usage error, as clap's own).
fn refuse_json(command: &str, why: &str) -> ExitCode {
    eprintln!("error: `hazeflow {command}` has no JSON output ({why}); run it without --output json");
    ExitCode::from(2)
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    if !matches!(cli.command, Command::Daemon { .. }) {
        init_logs("text", "warn");
        // `hazeflow warnings list | head`: the reader went away; stop quietly, as Unix tools do,
        // instead of a panic about printing (Rust ignores SIGPIPE, so println! fails).
        let default = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            let p = info.payload();
            let msg = p
                .downcast_ref::<String>()
                .map(String::as_str)
                .or_else(|| p.downcast_ref::<&str>().copied())
                .unwrap_or("");
            if msg.contains("failed printing to stdout") && msg.contains("Broken pipe") {
                std::process::exit(0);
            }
            default(info);
        }));
    }
    let server = cli.server.clone();
    if server.json() {
        match &cli.command {
            Command::Daemon { .. } => return refuse_json("daemon", "its log is JSON with log.format: json"),
            Command::Completions { .. } => return refuse_json("completions", "it prints a shell script"),
            _ => {}
        }
    }
    let result = match cli.command {
        Command::Daemon { config } => daemon(config),
        Command::Forecast {
            command: ForecastCommand::Submit { file, exercise },
        } => runtime().and_then(|rt| rt.block_on(server.client().submit(&file, exercise))),
        Command::Drill { command } => runtime().and_then(|rt| {
            rt.block_on(async {
                match command {
                    DrillCommand::List => server.client().drills().await,
                    DrillCommand::Report { id } => server.client().drill_report(&id).await,
                }
            })
        }),
        Command::Consult { now: _ } => runtime().and_then(|rt| rt.block_on(server.client().consult())),
        Command::Warnings { command } => runtime().and_then(|rt| {
            rt.block_on(async {
                match command {
                    WarningsCommand::List => server.client().list().await,
                    WarningsCommand::Show { id } => server.client().show(&id).await,
                    WarningsCommand::Sign {
                        ids,
                        pending,
                        without_record,
                    } => server.client().sign(&ids, pending, without_record.as_deref()).await,
                    WarningsCommand::Lift { id, reason } => server.client().lift(&id, reason).await,
                }
            })
        }),
        Command::Episode {
            command: EpisodeCommand::Summary { id, json },
        } => runtime().and_then(|rt| rt.block_on(server.client().episode_summary(&id, json || server.json()))),
        Command::Directives { command } => runtime().and_then(|rt| {
            rt.block_on(async {
                let c = server.client();
                match command {
                    DirectivesCommand::List => c.directives().await,
                    DirectivesCommand::Issue {
                        id,
                        name,
                        min_level,
                        regions,
                        from,
                        until,
                        issued_by,
                    } => {
                        let body = serde_json::json!({
                            "id": id, "name": name, "min_level": min_level, "regions": regions,
                            "from": from, "until": until, "issued_by": issued_by,
                        });
                        c.issue_directive(body).await
                    }
                    DirectivesCommand::Lift { id } => c.lift_directive(&id).await,
                }
            })
        }),
        Command::Events { after, limit } => runtime().and_then(|rt| rt.block_on(server.client().events(after, limit))),
        Command::Acks { id } => runtime().and_then(|rt| rt.block_on(server.client().acks(&id))),
        Command::Completions { shell } => {
            use clap::CommandFactory;
            clap_complete::generate(shell, &mut Cli::command(), "hazeflow", &mut std::io::stdout());
            Ok(ExitCode::SUCCESS)
        }
        Command::Verify { config, scratch } => verify(config, scratch, server.json()),
        Command::Backup { out, config } => hazeflow::config::Settings::load(config.as_deref())
            .and_then(|s| runtime().and_then(|rt| rt.block_on(hazeflow::cli::backup::backup(&s, &out, &server.client(), server.json())))),
        Command::Restore { backup, config } => {
            hazeflow::config::Settings::load(config.as_deref()).and_then(|s| hazeflow::cli::backup::restore(&s, &backup, server.json()))
        }
        Command::Migrate { from, to } => runtime().and_then(|rt| rt.block_on(commands::migrate(&from, &to, server.json()))),
        Command::Registry { config, command } => registry(config, command, &server),
        Command::Reload => runtime().and_then(|rt| rt.block_on(server.client().reload())),
        Command::TokenKey { config, command } => hazeflow::config::Settings::load(config.as_deref()).and_then(|s| match command {
            TokenKeyCommand::List { session: false } => commands::token_keys(&s, false, server.json()),
            TokenKeyCommand::Rotate { session: false } => commands::token_keys(&s, true, server.json()),
            TokenKeyCommand::List { session: true } => commands::session_keys(&s, false, server.json()),
            TokenKeyCommand::Rotate { session: true } => commands::session_keys(&s, true, server.json()),
        }),
        Command::Check { paths, config } => commands::check(&paths, config.as_deref(), server.json()),
        Command::Aqi { file, standard } => commands::aqi(&file, standard.as_deref(), server.json()),
        Command::Assess { forecast, playbook, json } => commands::assess(&forecast, playbook.as_deref(), json || server.json()),
        Command::Replay {
            observations,
            playbook,
            json,
            stats,
        } => commands::replay(&observations, &playbook, json || server.json(), stats),
    };
    // Exit codes: 0 done, 1 failed (bad input, refused, not found), 2 usage (clap's own), 3 the
    // daemon could not be reached.
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            if e.downcast_ref::<hazeflow::cli::client::Unreachable>().is_some() {
                ExitCode::from(3)
            } else {
                ExitCode::from(1)
            }
        }
    }
}
