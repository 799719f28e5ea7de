//! The daemon's loops: the forecast inbox and the scheduler (consultations at cron times, the clock
//! tick). Each takes what it needs — the engine, its settings — never the HTTP state.
pub mod inbox;
pub mod schedule;
