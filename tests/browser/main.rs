//! The duty-staff dashboard, end to end: the real daemon (`Application::build` on port 0, a temporary
//! data folder, the shipped playbooks, a manual clock) driven by headless Chromium through
//! chromedriver, plus plain-HTTP tests of what a browser must never be able to do.
//!
//! - `helpers`: `spawn_app()`, forecasts over the JSON API, logging in over plain HTTP;
//! - `browser`: finding and starting chromedriver + Chromium (or skipping: see below), screenshots,
//!   and the in-page checks (labels, overflow, contrast);
//! - `http`: CSRF, login redirects, cookies, HTML escaping, the playbook check, without a browser;
//! - `flow`: the head on duty signs pending proposals in the browser and sees the grid coloured; the
//!   warning page, consultations, playbooks (with a check), the list and its reports; an enterprise
//!   acknowledges and the progress updates; every page at 1280 px and on a 375 px phone;
//! - `drill`: the head signs a drill (演练) on the 演练 page; the start page keeps showing the real
//!   warning of the same region only; the drill's report and its own page say it is a drill;
//! - `consult`: the duty officer completes a 会商意见 lowering a proposal, then completes and prints its
//!   审批表 (Chromium's print to PDF, read back with `pdftotext`);
//! - `keyboard`: logging in with the keyboard alone;
//! - `chinese`: every page and mail of an episode (issue, change, cancel, lift) has no English sentence;
//! - `ack`: an enterprise acknowledges on a phone from the link in the notice mailed to it (收到, then
//!   措施已落实 with lines and a note) while the duty officer's warning page counts it in its county;
//!   the acknowledgement page at phone width (no overflow, named controls, Tab order) and with the
//!   keyboard alone (Space and Enter on the buttons).
//!
//! Without `chromium` and `chromedriver` on the PATH (or `HAZEFLOW_CHROMIUM` /
//! `HAZEFLOW_CHROMEDRIVER`) the browser tests print "skipped: chromium not installed" and pass, except
//! when `CI=true`: there they fail, because `.ci/run` installs them. Screenshots go to
//! `target/browser-screenshots/`, which CI keeps as artifacts.

mod ack;
mod browser;
mod chinese;
mod consult;
mod drill;
mod flow;
mod helpers;
mod http;
mod keyboard;
