//! The `/public` page: the warnings in force or announced, grouped by level (highest first) with the
//! health advice of each level once, and the latest messages. The HTML is the operators' template
//! (`page.html.j2`); this builds what it is given.

use std::collections::BTreeMap;

use serde::Serialize;

use super::text::{MessageText, Texts};
use super::view::{LevelView, MessageView, RegionView, Time};
use crate::domain::in_force::in_force;
use crate::domain::region::{RegionCode, Regions, Tier};
use crate::domain::warning::{RegionState, Warning};

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

/// A county and the warning in force there ([`crate::domain::in_force`]): its own, or its city's or
/// province's.
#[derive(Debug, Clone, Serialize)]
pub struct CountyRow {
    /// 小店区.
    pub name: String,
    /// The level in force, `None` when no warning is in force there.
    pub level: Option<LevelView>,
    /// Where the warning comes from: `随太原市预警`, `本地预警`; empty without one.
    pub source: String,
}

/// The counties of one city, listed when at least one of them is under a warning in force.
#[derive(Debug, Clone, Serialize)]
pub struct CityCounties {
    /// 太原市.
    pub city: String,
    /// Its counties, by code.
    pub counties: Vec<CountyRow>,
}

/// The per-county view: the cities with a county under a warning in force (each with all its
/// counties), and how many counties of the other cities have none.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Counties {
    /// Cities with at least one county under a warning, by code.
    pub cities: Vec<CityCounties>,
    /// Counties of the cities not listed (none of them under a warning).
    pub others: usize,
}

/// Builds the per-county view from each county's warning in force (`level` names a warning's
/// level from its playbook).
pub fn counties(regions: &Regions, states: &BTreeMap<RegionCode, RegionState>, mut level: impl FnMut(&Warning) -> LevelView) -> Counties {
    let mut by_city: BTreeMap<RegionCode, Vec<CountyRow>> = BTreeMap::new();
    for r in regions.all().filter(|r| r.tier == Tier::County) {
        let city = regions.ancestors(r.code).first().copied().unwrap_or(r.code);
        let row = match in_force(r.code, regions, states) {
            Some(f) => CountyRow {
                name: r.name.clone(),
                level: Some(level(f.warning)),
                source: if f.inherited {
                    format!("随{}预警", regions.name(f.from))
                } else {
                    "本地预警".to_string()
                },
            },
            None => CountyRow {
                name: r.name.clone(),
                level: None,
                source: String::new(),
            },
        };
        by_city.entry(city).or_default().push(row);
    }
    let mut out = Counties::default();
    for (city, rows) in by_city {
        if rows.iter().any(|c| c.level.is_some()) {
            out.cities.push(CityCounties {
                city: regions.name(city),
                counties: rows,
            });
        } else {
            out.others += rows.len();
        }
    }
    out
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
    /// The level in force per county.
    pub counties: &'a Counties,
}

/// Renders the page.
pub fn render(texts: &Texts, d: &PageData<'_>, feed_url: &str) -> Result<String, minijinja::Error> {
    let (title, updated, groups, recent, ozone, ozone_advice, counties) =
        (d.title, d.updated, d.groups, d.recent, d.ozone, d.ozone_advice, d.counties);
    texts.page(minijinja::context! { title, updated, groups, recent, feed_url, ozone, ozone_advice, counties })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::warning::Status;

    fn state(region: &str, level: &str, rank: u32) -> (RegionCode, RegionState) {
        crate::domain::in_force::tests::state(region, level, rank, Status::Active)
    }

    #[test]
    fn each_county_shows_its_own_or_its_citys_or_provinces_warning_and_where_it_comes_from() {
        let r = Regions::shanxi();
        let level = |w: &Warning| LevelView::unknown(&format!("{}级", w.level), w.level.rank);
        // A province-wide yellow, Taiyuan orange, Xiaodian red of its own.
        let states: BTreeMap<_, _> = [state("140000", "黄色", 1), state("140100", "橙色", 2), state("140105", "红色", 3)]
            .into_iter()
            .collect();
        let c = counties(r, &states, level);
        let total = r.all().filter(|x| x.tier == Tier::County).count();
        assert_eq!(c.others, 0, "the province's warning covers every county");
        assert_eq!(c.cities.iter().map(|x| x.counties.len()).sum::<usize>(), total);
        let row = |city: &str, county: &str| {
            let city = c.cities.iter().find(|x| x.city == city).unwrap();
            let row = city.counties.iter().find(|x| x.name == county).unwrap();
            (row.level.as_ref().map(|l| l.name.clone()).unwrap_or_default(), row.source.clone())
        };
        assert_eq!(row("太原市", "小店区"), ("红色级".into(), "本地预警".into()));
        assert_eq!(row("太原市", "迎泽区"), ("橙色级".into(), "随太原市预警".into()));
        assert_eq!(row("大同市", "平城区"), ("黄色级".into(), "随山西省预警".into()));

        // Only Taiyuan: its counties are listed, every other county is counted as without a warning.
        let only: BTreeMap<_, _> = [state("140100", "橙色", 2)].into_iter().collect();
        let c = counties(r, &only, level);
        assert_eq!(c.cities.len(), 1);
        assert_eq!(c.cities[0].city, "太原市");
        assert_eq!(c.others, total - c.cities[0].counties.len());
        assert!(c.cities[0].counties.iter().all(|x| x.source == "随太原市预警"));
        assert!(counties(r, &BTreeMap::new(), level).cities.is_empty());
    }
}
