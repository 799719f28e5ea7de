//! The `/public` page: the warnings in force or announced, grouped by level (highest first) with the
//! health advice of each level once, and the latest messages. The HTML is the operators' template
//! (`page.html.j2`); this builds what it is given.

use serde::Serialize;

use super::text::{MessageText, Texts};
use super::view::{LevelView, MessageView, RegionView, Time};

/// A warning as the page lists it.
#[derive(Debug, Clone, Serialize)]
pub struct Row {
    /// Where.
    pub region: RegionView,
    /// From.
    pub start: Time,
    /// Until (expected).
    pub end: Time,
    /// The level timeline in words, when the consultation gave one.
    pub timeline: Option<String>,
    /// In force now (else announced).
    pub in_force: bool,
    /// When the episode was issued.
    pub issued: Time,
    /// Who issued it (发布单位).
    pub issuer: String,
    /// The latest message's CAP file.
    pub cap_path: String,
    /// The latest message's headline.
    pub headline: String,
}

/// The warnings of one level.
#[derive(Debug, Clone, Serialize)]
pub struct Group {
    /// The level.
    pub level: LevelView,
    /// Its health advice (中文).
    pub advice: Vec<String>,
    /// Its regions, by code.
    pub warnings: Vec<Row>,
}

/// A message in the "latest" list.
#[derive(Debug, Clone, Serialize)]
pub struct Recent {
    /// Headline (中文).
    pub headline: String,
    /// When.
    pub sent: Time,
    /// Its CAP file.
    pub cap_path: String,
    /// `Alert`, `Update`, `Cancel`.
    pub msg_type: &'static str,
}

/// A current warning: the latest message of its episode, when the episode was issued, and the
/// message's words; `in_force` as of now.
pub struct Current<'a> {
    /// The latest message.
    pub view: &'a MessageView,
    /// Its words.
    pub text: &'a MessageText,
    /// When the episode's `Alert` was sent.
    pub issued: Time,
    /// Whether it is in force now.
    pub in_force: bool,
}

/// Groups the current warnings by level, highest first.
pub fn groups(current: &[Current<'_>]) -> Vec<Group> {
    let mut out: Vec<Group> = Vec::new();
    for c in current {
        let row = Row {
            region: c.view.region.clone(),
            start: c.view.start.clone(),
            end: c.view.end.clone(),
            timeline: c.view.timeline.clone(),
            in_force: c.in_force,
            issued: c.issued.clone(),
            issuer: c.text.sender_name.clone(),
            cap_path: c.view.cap_path.clone(),
            headline: c.text.headline.clone(),
        };
        match out.iter_mut().find(|g| g.level == c.view.level) {
            Some(g) => g.warnings.push(row),
            None => out.push(Group {
                level: c.view.level.clone(),
                advice: c.view.advice.zh.clone(),
                warnings: vec![row],
            }),
        }
    }
    out.sort_by(|a, b| b.level.rank.cmp(&a.level.rank).then_with(|| a.level.id.cmp(&b.level.id)));
    for g in &mut out {
        g.warnings.sort_by(|a, b| a.region.code.cmp(&b.region.code));
    }
    out
}

/// A region whose coming days are led by ozone (health advice only, no reductions).
#[derive(Debug, Clone, Serialize)]
pub struct Ozone {
    /// The region's full name.
    pub region: String,
    /// The days, `12月5日、12月6日`.
    pub dates: String,
}

/// What the page shows.
pub struct PageData<'a> {
    /// The page's title.
    pub title: &'a str,
    /// When anything was last published.
    pub updated: Option<&'a Time>,
    /// The current warnings by level.
    pub groups: &'a [Group],
    /// The latest messages.
    pub recent: &'a [Recent],
    /// Ozone-led regions, and the advice for them.
    pub ozone: &'a [Ozone],
    /// The ozone advice lines.
    pub ozone_advice: &'a [String],
}

/// Renders the page.
pub fn render(texts: &Texts, d: &PageData<'_>, feed_url: &str) -> Result<String, minijinja::Error> {
    let (title, updated, groups, recent, ozone, ozone_advice) = (d.title, d.updated, d.groups, d.recent, d.ozone, d.ozone_advice);
    texts.page(minijinja::context! { title, updated, groups, recent, feed_url, ozone, ozone_advice })
}
