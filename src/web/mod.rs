//! The HTTP adapter: the server loop, the JSON API, the duty-staff dashboard, the public pages and
//! the enterprise pages. It alone owns [`AppState`], the routers and [`api::ApiError`].
pub mod ack;
pub mod api;
pub mod authority;
pub mod consult;
pub mod dashboard;
pub mod drill;
pub mod episode;
pub mod inspect;
pub mod negotiate;
pub mod pages;
pub mod publish;
pub mod report;
pub mod server;
pub mod state;
pub mod upstream;

pub use pages::Pages;
pub use state::AppState;

/// Text a user typed for one line (a name, a phone): control characters dropped, at most `max`
/// characters, trimmed — it is shown to staff and written to logs.
pub(crate) fn clean_line(s: &str, max: usize) -> String {
    clean(s, max, false)
}

/// Text a user typed that may span lines (a note, a finding): as [`clean_line`], line breaks kept.
pub(crate) fn clean_text(s: &str, max: usize) -> String {
    clean(s, max, true)
}

fn clean(s: &str, max: usize, keep_newlines: bool) -> String {
    s.chars()
        .filter(|c| !c.is_control() || (keep_newlines && *c == '\n'))
        .take(max)
        .collect::<String>()
        .trim()
        .to_string()
}

/// One log line for a state change a person asked for (a forecast, a consultation, a reload, an
/// acknowledgement, an inspection, a negotiated reduction): who (`actor`: the token's holder, or the
/// party of an acknowledgement link), what (`action`), on what (`subject`, and the warning when there
/// is one). The engine logs signing, lifting, cancelling and directives the same way.
pub(crate) fn log_recorded(actor: &str, action: &str, subject: &str, warning: Option<&str>) {
    match warning {
        Some(warning) => tracing::info!(actor, action, subject, warning, "recorded"),
        None => tracing::info!(actor, action, subject, "recorded"),
    }
}
