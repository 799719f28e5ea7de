//! Publishing (信息发布; Shanxi plan item 36: 及时发布重污染天气预警提示信息): every issue, change and
//! lift of a signed warning, told to the public as a page, an Atom feed and CAP 1.2 messages.
//!
//! In: the event log (read, never written) and the playbooks (level names, colours, response
//! grades). Out: `GET /public` (HTML, Chinese), `GET /public/feed.atom` (Atom 1.0) and
//! `GET /public/cap/{id}.xml` (CAP 1.2). Messages are derived from the warning records on every
//! request, so they are the same after a restart and need no state of their own; a message's id is
//! `{warning_id}-{seq}` of the record that caused it. Proposals awaiting sign-off are never public.
//!
//! # Layout
//!
//! - [`message`]: which records become messages (`Alert`, `Update` with references, `Cancel`);
//! - [`view`]: a message resolved for readers: region names, level colours, Asia/Shanghai times;
//! - [`text`]: the words, from operator-editable templates and `advice.yaml` under
//!   `{playbooks}/templates/public/`;
//! - [`cap`], [`atom`], `page`: the three ways out.

pub mod atom;
pub mod cap;
pub mod message;
mod page;
pub mod text;
pub mod view;

use std::collections::HashMap;
use std::sync::Arc;

use axum::Router;
use axum::extract::{Path, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::routing::get;

use crate::domain::playbook::{Issuer, Playbook};
use crate::domain::region::RegionCode;
use crate::web::AppState;
use crate::web::api::ApiError;
use message::{Message, MsgType};
use text::{Lang, MessageText, Texts};
use view::{LevelView, MessageView, Time};

/// The `tag:` URI authority of feed and entry ids (RFC 4151): a domain and the year the ids were first
/// minted. Readers use the ids to tell entries apart, so it does not change with the deployment's
/// address; it is an `example.cn` name, never a real government domain.
pub const TAG_AUTHORITY: &str = "hazeflow.example.cn,2026";

/// Entries in the feed.
pub const FEED_LIMIT: usize = 100;

/// Messages listed under "latest" on the page.
const RECENT_ON_PAGE: usize = 20;

/// How long readers may cache what is served (seconds).
const MAX_AGE: &str = "public, max-age=60";

type Shared = State<Arc<AppState>>;

/// The public routes (mounted by the application beside the API).
pub fn router() -> Router<Arc<AppState>> {
    Router::new()
        .route("/public", get(public_page))
        .route("/public/feed.atom", get(feed))
        .route("/public/cap/{file}", get(cap_file))
}

/// Resolves messages for one request: playbooks looked up once per episode pin, texts loaded once.
struct Publisher<'a> {
    state: &'a AppState,
    texts: Arc<Texts>,
    playbooks: HashMap<(String, RegionCode), Option<Arc<Playbook>>>,
}

impl<'a> Publisher<'a> {
    fn new(state: &'a AppState) -> Self {
        Publisher {
            state,
            texts: state.pages.get().public.clone(),
            playbooks: HashMap::new(),
        }
    }

    fn base_url(&self) -> &str {
        self.state.settings.http.public_url.trim_end_matches('/')
    }

    /// The playbook the episode is pinned to, or the one now governing the region when that
    /// version is no longer loaded.
    fn playbook(&mut self, pin: &str, region: RegionCode) -> Option<Arc<Playbook>> {
        let engine = &self.state.engine;
        self.playbooks
            .entry((pin.to_string(), region))
            .or_insert_with(|| {
                engine
                    .playbooks
                    .pinned(pin)
                    .or_else(|| engine.playbooks.live().for_region(region, engine.regions).cloned())
            })
            .clone()
    }

    /// A level of a playbook as the public sees it (grey by its id when the playbook lost it).
    fn level_view(pb: Option<&Arc<Playbook>>, id: &str, rank: u32) -> LevelView {
        match pb.and_then(|p| p.level(id).map(|l| (l, p))) {
            Some((l, p)) => LevelView::new(l, p.levels.iter().map(|l| l.rank).max().unwrap_or(l.rank)),
            None => LevelView::unknown(id, rank),
        }
    }

    /// A warning's level, from the playbook it is pinned to.
    fn warning_level(&mut self, w: &crate::domain::warning::Warning) -> LevelView {
        let pb = self.playbook(&w.playbook, w.region);
        Self::level_view(pb.as_ref(), &w.level, w.level.rank)
    }

    fn view(&mut self, m: &Message) -> MessageView {
        let pb = self.playbook(&m.warning.playbook, m.warning.region);
        let level = |id: &str, rank: u32| Self::level_view(pb.as_ref(), id, rank);
        let advice = self.texts.advice(&m.warning.level);
        let regions = self.state.engine.regions;
        let issuer = pb
            .as_ref()
            .map_or_else(|| Issuer::of_scope(m.warning.region, regions), |p| p.issuer.clone());
        MessageView::new(m, regions, issuer, level, advice, self.base_url())
    }

    /// A message's words; when the operators' templates fail on it, the built-in ones.
    fn words(&self, m: &MessageView, lang: Lang) -> Result<MessageText, ApiError> {
        self.texts.message(m, lang).or_else(|e| {
            tracing::error!(error = %e, message = %m.id, "a public template failed; the built-in one is used");
            Texts::builtin().message(m, lang).map_err(|e| ApiError::Internal(e.to_string()))
        })
    }

    /// A line without a message (`feed_title`), in Chinese.
    fn line(&self, name: &str) -> String {
        self.texts
            .line(Lang::Zh, name)
            .or_else(|_| Texts::builtin().line(Lang::Zh, name))
            .unwrap_or_default()
    }
}

fn respond(content_type: &'static str, body: String) -> Response {
    ([(header::CONTENT_TYPE, content_type), (header::CACHE_CONTROL, MAX_AGE)], body).into_response()
}

/// Every message, newest first, with the regions' current warnings.
fn newest_first(all: &mut [&Message]) {
    all.sort_by(|a, b| b.sent.cmp(&a.sent).then(b.seq.cmp(&a.seq)));
}

async fn public_page(State(s): Shared) -> Result<Response, ApiError> {
    let regions = s.engine.store.read(message::collect)?;
    let now = s.engine.clock.now();
    let mut p = Publisher::new(&s);
    let mut current = Vec::new();
    for rm in regions.values() {
        let (Some(w), Some(last)) = (rm.current(), rm.messages.last()) else {
            continue;
        };
        let view = p.view(last);
        let issued = if last.msg_type == MsgType::Alert {
            last.sent
        } else {
            last.references.first().map_or(last.sent, |r| r.sent)
        };
        let text = p.words(&view, Lang::Zh)?;
        current.push((view, text, Time::new(issued), w.start <= now));
    }
    let current: Vec<page::Current<'_>> = current
        .iter()
        .map(|(view, text, issued, in_force)| page::Current {
            view,
            text,
            issued: issued.clone(),
            in_force: *in_force,
        })
        .collect();
    let groups = page::groups(&current);
    // The level in force per county (a county under its city's or province's warning), from the
    // same records as the rest of the page: only signed warnings now in force.
    let states: std::collections::BTreeMap<RegionCode, crate::domain::warning::RegionState> =
        regions.iter().map(|(code, rm)| (*code, rm.state.clone())).collect();
    let counties = page::counties(s.engine.regions, &states, |w| p.warning_level(w));
    let mut all: Vec<&Message> = regions.values().flat_map(|r| r.messages.iter()).collect();
    newest_first(&mut all);
    let updated = all.first().map(|m| Time::new(m.sent));
    let mut recent = Vec::new();
    for m in all.iter().take(RECENT_ON_PAGE) {
        let view = p.view(m);
        let text = p.words(&view, Lang::Zh)?;
        recent.push(page::Recent {
            headline: text.headline,
            sent: view.sent,
            cap_path: view.cap_path,
            msg_type: m.msg_type.as_str(),
        });
    }
    let title = p.line("feed_title");
    // Ozone-led days ahead in the latest consultation: health advice, no reductions.
    let today = now.with_timezone(&chrono_tz::Asia::Shanghai).date_naive();
    let latest = s.engine.store.read(|r| r.consultations(1))?;
    let ozone: Vec<page::Ozone> = latest
        .iter()
        .flat_map(|c| &c.assessments)
        .filter_map(|a| {
            let days: Vec<String> = a
                .advisories
                .iter()
                .filter(|x| x.lead == "o3" && x.date >= today)
                .map(|x| x.date.format("%-m月%-d日").to_string())
                .collect();
            (!days.is_empty()).then(|| page::Ozone {
                region: s.engine.regions.name(a.region),
                dates: days.join("、"),
            })
        })
        .collect();
    let ozone_advice = p.texts.advice("o3").zh;
    let data = page::PageData {
        title: &title,
        updated: updated.as_ref(),
        groups: &groups,
        recent: &recent,
        ozone: &ozone,
        ozone_advice: &ozone_advice,
        counties: &counties,
    };
    let html = page::render(&p.texts, &data, "/public/feed.atom").or_else(|e| {
        tracing::error!(error = %e, "the public page template failed; the built-in one is used");
        page::render(&Texts::builtin(), &data, "/public/feed.atom").map_err(|e| ApiError::Internal(e.to_string()))
    })?;
    Ok(respond("text/html; charset=utf-8", html))
}

async fn feed(State(s): Shared) -> Result<Response, ApiError> {
    let regions = s.engine.store.read(message::collect)?;
    let mut p = Publisher::new(&s);
    let mut all: Vec<&Message> = regions.values().flat_map(|r| r.messages.iter()).collect();
    newest_first(&mut all);
    let mut entries = Vec::new();
    for m in all.iter().take(FEED_LIMIT) {
        let view = p.view(m);
        let text = p.words(&view, Lang::Zh)?;
        entries.push((view, text));
    }
    let updated = Time::new(all.first().map_or_else(|| s.engine.clock.now(), |m| m.sent));
    let title = p.line("feed_title");
    // The feed speaks for the top tier (the province); each entry names its own issuer.
    let live = s.engine.playbooks.live();
    let author = live
        .roots()
        .min_by_key(|p| p.scope)
        .map(|p| p.issuer.name.clone())
        .or_else(|| s.engine.regions.scope().map(|home| Issuer::of_scope(home, s.engine.regions).name))
        .unwrap_or_else(|| "重污染天气应急指挥部办公室".to_string());
    let base = p.base_url();
    let (self_url, page_url) = (format!("{base}/public/feed.atom"), format!("{base}/public"));
    let info = atom::FeedInfo {
        title: &title,
        author: &author,
        self_url: &self_url,
        page_url: &page_url,
        updated: &updated,
    };
    let refs: Vec<(&MessageView, &MessageText)> = entries.iter().map(|(v, t)| (v, t)).collect();
    Ok(respond(atom::CONTENT_TYPE, atom::write(&info, &refs)))
}

async fn cap_file(State(s): Shared, Path(file): Path<String>) -> Result<Response, ApiError> {
    let not_found = || ApiError::NotFound(format!("no public message {file}"));
    let id = file.strip_suffix(".xml").ok_or_else(not_found)?;
    let m = s.engine.store.read(|r| message::find(r, id))?.ok_or_else(not_found)?;
    let mut p = Publisher::new(&s);
    let view = p.view(&m);
    let (zh, en) = (p.words(&view, Lang::Zh)?, p.words(&view, Lang::En)?);
    let web = format!("{}/public", p.base_url());
    Ok(respond(cap::CONTENT_TYPE, cap::write(&view, &zh, &en, &web)))
}
