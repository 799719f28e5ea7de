//! The command line: offline commands on a data folder, the client of a running daemon, backup and
//! restore.
pub mod backup;
pub mod client;
pub mod commands;
pub mod daemon_list;
