//! The rules, pure: regions, AQI, forecasts, playbooks, assessment, the warning lifecycle, replay,
//! the warning in force, and which role may do what. No disk, clock, network, runtime or database
//! here except where a file says so (the playbook loader reads the playbooks folder).
pub mod ack_step;
pub mod approval;
pub mod aqi;
pub mod assess;
pub mod authority;
pub mod diagnostic;
pub mod forecast;
pub mod in_force;
pub mod level;
pub mod opinion;
pub mod playbook;
pub mod region;
pub mod replay;
pub mod warning;
