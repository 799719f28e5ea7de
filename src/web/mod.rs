//! The HTTP adapter: the server loop, the JSON API, the duty-staff dashboard, the public pages and
//! the enterprise pages. It alone owns [`AppState`], the routers and [`api::ApiError`].
pub mod ack;
pub mod api;
pub mod authority;
pub mod dashboard;
pub mod episode;
pub mod inspect;
pub mod negotiate;
pub mod pages;
pub mod publish;
pub mod server;
pub mod state;

pub use pages::Pages;
pub use state::AppState;
