//! Warnings from above (上级预警): the body of one (over `POST /api/v1/upstream-warnings` or as a
//! JSON file in the inbox with `"kind": "upstream_warning"`) and of its lift (`…/{id}/lift`, or a file
//! with `"kind": "upstream_warning_lift"`), checked into a [`DirectiveRecord`] with [`Upstream`], every
//! error naming its field. Both channels go through here, so they accept and refuse the same things.
//!
//! In: JSON bytes, the live playbooks and the regions. Out: the directive to issue, or the lift's id
//! and document number (解除文号); errors as [`EngineError::BadInput`].

use chrono::{DateTime, Utc};
use serde::Deserialize;

use crate::domain::forecast::parse_time;
use crate::domain::level::LevelId;
use crate::domain::region::{RegionCode, Regions};
use crate::engine::{Engine, EngineError};
use crate::store::{DirectiveRecord, Upstream, UpstreamArea};

/// The `kind` of a warning from above in an inbox file (optional over the API).
pub const KIND: &str = "upstream_warning";
/// The `kind` of its lift in an inbox file (optional over the API).
pub const LIFT_KIND: &str = "upstream_warning_lift";

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = UpstreamWarningBody)]
pub(crate) struct Body {
    /// optional here; required in an inbox file (a JSON file with this kind, dropped in the inbox, is taken as this call)
    #[serde(default)]
    kind: Option<String>,
    /// its id here (used by …/{id}/lift)
    id: String,
    /// the upstream document number (文号)
    doc_no: String,
    /// who issued it (生态环境部, 山西省重污染天气应急指挥部, …)
    issuer: String,
    /// the issuing tier's region code (default the home province; the ministry's warnings too); who may record it: as for a directive of its highest level issued by this tier
    issued_by: Option<String>,
    /// groups of regions and their levels (several: a partial-area warning; a region in two groups takes the higher level)
    areas: Vec<AreaBody>,
    /// RFC 3339 or YYYY-MM-DD HH:MM (Asia/Shanghai)
    start: String,
    /// when it is expected to end (shown; only its lift ends it)
    expected_end: Option<String>,
    /// a drill's (演练): it holds the regions' drill lanes only
    #[serde(default)]
    exercise: bool,
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = UpstreamArea)]
pub(crate) struct AreaBody {
    /// yellow, orange or red
    #[schema(value_type = String)]
    level: LevelId,
    /// region codes or group:ID
    regions: Vec<String>,
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = UpstreamLiftBody)]
pub(crate) struct LiftBody {
    /// optional here; required in an inbox file
    #[serde(default)]
    kind: Option<String>,
    /// Only in an inbox file (over the API the path names the warning).
    #[serde(default)]
    id: Option<String>,
    /// the lift's own document number (解除文号), kept on the warning from above as lift_doc_no and named in the warnings' history
    doc_no: String,
}

/// A lift of a warning from above, as checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lift {
    /// The warning's id (from the file; over the API, from the path).
    pub id: Option<String>,
    /// The lift's own document number (解除文号).
    pub doc_no: String,
}

fn bad(m: impl Into<String>) -> EngineError {
    EngineError::BadInput(m.into())
}

fn time(field: &str, v: &str) -> Result<DateTime<Utc>, EngineError> {
    parse_time(v)
        .map(|t| t.with_timezone(&Utc))
        .ok_or_else(|| bad(format!("{field}: \"{v}\" is not a time (RFC 3339 or YYYY-MM-DD HH:MM)")))
}

/// One line of text typed by someone: control characters dropped, at most `max` characters, trimmed.
fn clean_line(s: &str, max: usize) -> String {
    s.chars()
        .filter(|c| !c.is_control())
        .take(max)
        .collect::<String>()
        .trim()
        .to_string()
}

fn required(field: &str, v: &str) -> Result<String, EngineError> {
    let v = clean_line(v, 200);
    if v.is_empty() {
        return Err(bad(format!("{field}: must not be empty")));
    }
    Ok(v)
}

fn kind_is(kind: Option<&str>, want: &str) -> Result<(), EngineError> {
    match kind {
        None => Ok(()),
        Some(k) if k == want => Ok(()),
        Some(k) => Err(bad(format!("kind: \"{k}\" is not \"{want}\""))),
    }
}

/// The region issuing a directive: `issued_by` when given, else the home province (`home`; Shanxi
/// when the table is not scoped).
pub fn issuer_of(issued_by: Option<&str>, home: Option<RegionCode>) -> Result<RegionCode, String> {
    match issued_by {
        Some(c) => RegionCode::parse(c).map_err(|e| format!("issued_by: {e}")),
        None => Ok(home.unwrap_or(crate::domain::region::SHANXI)),
    }
}

/// The regions a directive or a warning from above names (`field`: codes and `group:NAME`), each
/// below the issuing region `issued_by`; errors name `field`.
pub fn regions_below(regions: &Regions, field: &str, named: &[String], issued_by: RegionCode) -> Result<Vec<RegionCode>, String> {
    let mut out = Vec::new();
    for r in named {
        let codes = match r.strip_prefix("group:") {
            // A group may span provinces (汾渭平原): the directive reaches its members within the
            // issuing region (checked below for single codes).
            Some(g) => {
                let members = regions.group(g).ok_or_else(|| format!("{field}: unknown group \"{g}\""))?;
                let inside: Vec<RegionCode> = members
                    .iter()
                    .copied()
                    .filter(|c| *c != issued_by && regions.is_within(*c, issued_by))
                    .collect();
                if inside.is_empty() {
                    return Err(format!("{field}: group \"{g}\" has no member below the issuing region {issued_by}"));
                }
                inside
            }
            None => {
                let c = RegionCode::parse(r).map_err(|e| format!("{field}: {e}"))?;
                vec![regions.resolve(c).ok_or_else(|| format!("{field}: unknown region {c}"))?]
            }
        };
        out.extend(codes);
    }
    if out.is_empty() {
        return Err(format!("{field}: name at least one region"));
    }
    if let Some(r) = out.iter().find(|r| **r == issued_by || !regions.is_within(**r, issued_by)) {
        return Err(format!("{field}: {r} is not below the issuing region {issued_by}"));
    }
    Ok(out)
}

impl Engine {
    /// Checks the body of a warning from above (JSON) into the directive that records it; every
    /// error names its field. Who may record it is decided by [`Engine::issue_directive`].
    pub fn upstream_warning(&self, body: &[u8]) -> Result<DirectiveRecord, EngineError> {
        let b: Body = serde_json::from_slice(body).map_err(|e| bad(format!("invalid JSON body: {e}")))?;
        kind_is(b.kind.as_deref(), KIND)?;
        let id = required("id", &b.id)?;
        let doc_no = required("doc_no", &b.doc_no)?;
        let issuer = required("issuer", &b.issuer)?;
        let issued_by = issuer_of(b.issued_by.as_deref(), self.regions.scope()).map_err(bad)?;
        if b.areas.is_empty() {
            return Err(bad("areas: name at least one group of regions and its level"));
        }
        let set = self.playbooks.live();
        let mut areas = Vec::new();
        // The highest level named, by its rank in the issuing tier's playbook (for who may record it).
        let mut top: Option<(u32, LevelId)> = None;
        for (i, a) in b.areas.iter().enumerate() {
            let regions = regions_below(self.regions, &format!("areas[{i}].regions"), &a.regions, issued_by).map_err(bad)?;
            for r in &regions {
                let Some(pb) = set.for_region(*r, self.regions) else {
                    return Err(bad(format!("areas[{i}].regions: no playbook governs region {r}")));
                };
                if pb.level(&a.level).is_none() {
                    let known: Vec<&str> = pb.levels.iter().map(|l| l.id.as_str()).collect();
                    return Err(bad(format!(
                        "areas[{i}].level: undefined level \"{}\" (playbook {} defines {})",
                        a.level,
                        pb.pin(),
                        known.join(", ")
                    )));
                }
            }
            if let Some(rank) = set
                .for_region(issued_by, self.regions)
                .and_then(|pb| pb.level(&a.level))
                .map(|l| l.rank)
                && top.as_ref().is_none_or(|(t, _)| rank > *t)
            {
                top = Some((rank, a.level.clone()));
            }
            areas.push(UpstreamArea {
                level: a.level.clone(),
                regions,
            });
        }
        let start = time("start", &b.start)?;
        let expected_end = b.expected_end.as_deref().map(|u| time("expected_end", u)).transpose()?;
        if expected_end.is_some_and(|e| e <= start) {
            return Err(bad("expected_end: must be after start"));
        }
        let mut regions: Vec<_> = areas.iter().flat_map(|a| a.regions.iter().copied()).collect();
        regions.sort();
        regions.dedup();
        Ok(DirectiveRecord {
            id,
            name: format!("{issuer}预警（{doc_no}）"),
            min_level: top.map_or_else(|| areas[0].level.clone(), |(_, l)| l),
            regions,
            from: start,
            until: None,
            issued_by,
            active: true,
            exercise: b.exercise,
            upstream: Some(Upstream {
                doc_no,
                issuer,
                expected_end,
                areas,
                lift_doc_no: None,
                lifted_at: None,
            }),
        })
    }
}

/// Checks the body of a lift of a warning from above: its document number (解除文号) is required;
/// `id` only in an inbox file (`id_required`).
pub fn lift_of(body: &[u8], id_required: bool) -> Result<Lift, EngineError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Err(bad("doc_no: required (the lift's own document number, 解除文号)"));
    }
    let b: LiftBody = serde_json::from_slice(body).map_err(|e| bad(format!("invalid JSON body: {e}")))?;
    kind_is(b.kind.as_deref(), LIFT_KIND)?;
    let id = match b.id.as_deref().map(|v| required("id", v)).transpose()? {
        None if id_required => return Err(bad("id: required (the warning from above it lifts)")),
        id => id,
    };
    Ok(Lift {
        id,
        doc_no: required("doc_no", &b.doc_no)?,
    })
}

/// What a JSON file in the inbox is, by its `kind` (a forecast has none): `None` for a forecast
/// (judged as one), `Some(Ok(KIND))` or `Some(Ok(LIFT_KIND))` for a warning from above or its lift,
/// `Some(Err(_))` for a kind the inbox does not know (the error names the field).
pub fn kind_of_file(name: &str, bytes: &[u8]) -> Option<Result<&'static str, EngineError>> {
    if !name.to_ascii_lowercase().ends_with(".json") {
        return None;
    }
    #[derive(Deserialize)]
    struct Kind {
        kind: Option<serde_json::Value>,
    }
    match serde_json::from_slice::<Kind>(bytes).ok()?.kind? {
        serde_json::Value::String(k) if k == KIND => Some(Ok(KIND)),
        serde_json::Value::String(k) if k == LIFT_KIND => Some(Ok(LIFT_KIND)),
        other => Some(Err(bad(format!(
            "kind: {other} is not \"{KIND}\" nor \"{LIFT_KIND}\" (a forecast has no kind)"
        )))),
    }
}
