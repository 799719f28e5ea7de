//! The level in force per region: a county under a city-wide (or province-wide) warning is under
//! that warning even when it has none of its own.
//!
//! In: the region table and the regions' warning states (as the store keeps them). Out: for a
//! region, the warning in force there ([`in_force`]) — the highest-ranked *active* warning among
//! the region's own and its ancestors' (the nearest wins a tie) — with the region it was issued
//! for. Pure: no clock (an active warning is in force; an issued one starts later), no store.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::domain::region::{RegionCode, Regions};
use crate::domain::warning::{RegionState, Status, Warning};

/// The warning in force in a region and where it comes from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct InForce<'a> {
    /// The warning (its level, id and playbook).
    pub warning: &'a Warning,
    /// The region it was issued for: the region itself, or its city or province.
    pub from: RegionCode,
    /// Whether it comes from a region above (`from != region`).
    pub inherited: bool,
}

/// The warning in force in `region` (after alias resolution): the highest-ranked active warning of
/// the region and the regions above it, the nearest on a tie; `None` when none is active.
pub fn in_force<'a>(region: RegionCode, regions: &Regions, states: &'a BTreeMap<RegionCode, RegionState>) -> Option<InForce<'a>> {
    let region = regions.resolve(region).unwrap_or(region);
    let mut best: Option<InForce<'a>> = None;
    for code in std::iter::once(region).chain(regions.ancestors(region)) {
        let Some(w) = states
            .get(&code)
            .and_then(|s| s.warning.as_ref())
            .filter(|w| w.status == Status::Active)
        else {
            continue;
        };
        if best.as_ref().is_none_or(|b| w.level.rank > b.warning.level.rank) {
            best = Some(InForce {
                warning: w,
                from: code,
                inherited: code != region,
            });
        }
    }
    best
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use chrono::{TimeZone, Utc};

    fn code(s: &str) -> RegionCode {
        RegionCode::parse(s).unwrap()
    }

    /// A region's state holding one warning (also the public page's tests).
    pub(crate) fn state(region: &str, level: &str, rank: u32, status: Status) -> (RegionCode, RegionState) {
        let start = Utc.with_ymd_and_hms(2026, 12, 2, 0, 0, 0).unwrap();
        let w = Warning {
            id: format!("w-{region}"),
            region: code(region),
            status,
            level: crate::domain::level::Ranked::new(level, rank),
            start,
            expected_end: start + chrono::Duration::days(3),
            rule: None,
            issued_at: Some(start),
            ended_at: None,
            pending_change: None,
            next: None,
            plan: None,
            lead_missed: false,
            holds: Vec::new(),
            playbook: "shanxi@2024.1".into(),
            exercise: false,
        };
        (
            code(region),
            RegionState {
                warning: Some(w),
                episodes: 1,
                exercise: false,
            },
        )
    }

    #[test]
    fn a_county_under_an_active_city_warning_is_under_it() {
        let r = Regions::shanxi();
        let states: BTreeMap<_, _> = [state("140100", "orange", 2, Status::Active)].into_iter().collect();
        let f = in_force(code("140105"), r, &states).unwrap();
        assert_eq!((f.warning.id.as_str(), f.from, f.inherited), ("w-140100", code("140100"), true));
        assert_eq!(f.warning.level, "orange");
        let own = in_force(code("140100"), r, &states).unwrap();
        assert!(!own.inherited);
        assert!(in_force(code("140212"), r, &states).is_none(), "another city's county");
        assert!(in_force(code("140000"), r, &states).is_none(), "not upwards");
    }

    #[test]
    fn the_higher_level_wins_and_the_nearest_on_a_tie_and_only_active_warnings_count() {
        let r = Regions::shanxi();
        let states: BTreeMap<_, _> = [
            state("140000", "yellow", 1, Status::Active),
            state("140100", "red", 3, Status::Active),
            state("140105", "yellow", 1, Status::Active),
            state("140200", "red", 3, Status::Pending),
            state("140300", "orange", 2, Status::Issued),
            state("140400", "orange", 2, Status::Lifted),
        ]
        .into_iter()
        .collect();
        assert_eq!(in_force(code("140105"), r, &states).unwrap().from, code("140100"));
        assert_eq!(in_force(code("140106"), r, &states).unwrap().warning.level, "red");
        for county in ["140212", "140302", "140403"] {
            let f = in_force(code(county), r, &states).unwrap();
            assert_eq!((f.from, f.warning.level.as_str()), (code("140000"), "yellow"), "{county}");
        }
        // A retired code is read as its successor (长治县 → 上党区).
        assert_eq!(in_force(code("140421"), r, &states).unwrap().from, code("140000"));
        let tie: BTreeMap<_, _> = [
            state("140000", "orange", 2, Status::Active),
            state("140100", "orange", 2, Status::Active),
        ]
        .into_iter()
        .collect();
        assert_eq!(in_force(code("140105"), r, &tie).unwrap().from, code("140100"));
    }
}
