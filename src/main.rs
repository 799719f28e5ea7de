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
    /// Validate playbooks and seed files; prints file:line:column: message per error, exit 1 on any.
    Check {
        /// Playbook files or folders, or a seeds folder. Default: playbooks/, playbooks/history/*, seeds/.
        paths: Vec<PathBuf>,
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
    },
}

fn main() -> ExitCode {
    tracing_subscriber::fmt().with_env_filter(tracing_subscriber::EnvFilter::from_default_env()).with_writer(std::io::stderr).init();
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Check { paths } => commands::check(&paths),
        Command::Aqi { file, standard } => commands::aqi(&file, standard.as_deref()),
        Command::Assess { forecast, playbook, json } => commands::assess(&forecast, playbook.as_deref(), json),
        Command::Replay { observations, playbook, json } => commands::replay(&observations, &playbook, json),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(2)
        }
    }
}
