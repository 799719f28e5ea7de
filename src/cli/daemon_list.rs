//! The list reports (`registry reductions`, `registry board`, `registry coverage`) while the daemon
//! runs: it holds the store's file, so the current list is read from it, a page at a time
//! (`GET /api/v1/enterprises`), with the staff token of `--token`.

use anyhow::{Result, bail};

use crate::cli::client::Client;
use crate::registry::cli::ListSource;
use crate::registry::import::ImportOptions;
use crate::registry::{ListDiff, ListVersion};

/// Whether opening the store failed because another process (the daemon) holds the file.
pub fn in_use(e: &anyhow::Error) -> bool {
    let m = format!("{e:#}").to_lowercase();
    m.contains("already open") || m.contains("cannot acquire lock")
}

/// The current list as the running daemon has it; read once, when a report first asks for it.
pub struct DaemonList {
    client: Client,
    server: String,
}

impl DaemonList {
    /// A source asking the daemon at `server` through `client`.
    pub fn new(client: Client, server: &str) -> DaemonList {
        DaemonList {
            client,
            server: server.to_string(),
        }
    }
}

impl ListSource for DaemonList {
    fn current(&mut self, _opts: &ImportOptions<'_>) -> Result<Option<ListVersion>> {
        eprintln!(
            "the store is in use by the daemon: reading the list through the daemon at {}",
            self.server
        );
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
        rt.block_on(self.client.reduction_list())
    }

    fn record(&mut self, _: crate::registry::import::Staged, _: &ListDiff) -> Result<()> {
        bail!("the daemon is running: stop it before importing a list")
    }
}
