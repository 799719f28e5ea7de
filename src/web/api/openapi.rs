//! The OpenAPI 3.1 document served at `GET /api/v1/openapi.json`, generated with `utoipa` from the
//! handlers: each API handler carries a `#[utoipa::path(...)]` annotation (method, path, parameters,
//! request body, responses with their statuses) next to its code, the JSON request bodies derive
//! `ToSchema` from the very structs the handlers deserialize (so their required fields and
//! `additionalProperties: false` follow `#[serde(default)]` and `deny_unknown_fields`), and every
//! error is [`ErrorBody`] (`{"error": "…"}`, what [`super::ApiError`] answers).
//!
//! What is described loosely: the answers are built with `json!` from domain objects (a warning, a
//! consultation, an approval form, …) whose full schema would mean deriving `ToSchema` across half the
//! crate; they are `object`s here, and the envelopes around them (a list's items and `next_after`, the
//! `events` that followed an action) are the `…Page`/`…Answer` structs below, which describe the keys
//! the handlers answer with. `tests/daemon/openapi.rs` checks the document against the router (every
//! route described, every described path routed) and against the handlers' refusals.
//!
//! In: the annotations. Out: [`json`], built once.

use std::sync::OnceLock;

use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi, ToSchema};

/// Every error of the API: `{"error": "…"}`, with its status.
#[derive(ToSchema)]
#[allow(dead_code)] // described here; built by `ApiError::into_response` with `json!`
pub(crate) struct ErrorBody {
    /// What went wrong, in words (the field at fault named first where there is one).
    error: String,
}

#[derive(OpenApi)]
#[openapi(
    info(
        title = "hazeflow API",
        version = "1",
        description = r#"The JSON API of the hazeflow daemon (重污染天气应急). Every operation needs `Authorization: Bearer TOKEN` (a staff token) unless its `security` is `[{}]` (no credential). Errors are always `{"error": "…"}`.

Paging: every list takes `limit` (1–1000; its default is named per list) and `after` (the cursor of the last item seen: the list's key, named per list) and answers with the items and `next_after`: the cursor to pass as `after` for the next page, or null when nothing follows (a full page may be followed by an empty one). Each list has a fixed order, named in its summary."#
    ),
    servers((url = "/")),
    security(("staff" = [])),
    modifiers(&StaffToken),
    tags((name = "api"), (name = "acknowledgements"), (name = "inspections"), (name = "operations")),
    paths(
        super::healthz,
        super::metrics::metrics,
        super::openapi_json,
        super::submit_forecast,
        super::list_consultations,
        super::consult_now,
        super::list_warnings,
        super::list_regions,
        super::show_warning,
        super::sign,
        super::lift,
        super::cancel,
        super::list_directives,
        super::issue_directive,
        super::lift_directive,
        super::events,
        super::playbooks,
        super::reload,
        super::backup,
        crate::web::upstream::list,
        crate::web::upstream::record,
        crate::web::upstream::lift,
        crate::web::ack::api_ack,
        crate::web::ack::progress,
        crate::web::ack::assignments,
        crate::web::ack::enterprises,
        crate::web::ack::enterprise,
        crate::web::inspect::list,
        crate::web::inspect::open,
        crate::web::inspect::show,
        crate::web::inspect::result,
        crate::web::negotiate::list,
        crate::web::negotiate::agree,
        crate::web::episode::summary,
        crate::web::drill::list,
        crate::web::drill::drill_report,
        crate::web::consult::show_opinion,
        crate::web::consult::record_opinion,
        crate::web::consult::list_forms,
        crate::web::consult::show_form,
        crate::web::consult::complete,
        crate::web::consult::relay,
        crate::web::consult::docx,
        crate::web::report::list,
        crate::web::report::show,
        crate::web::report::docx
    )
)]
struct ApiDoc;

/// The `staff` security scheme every operation needs unless it says `security: [{}]`.
struct StaffToken;

impl Modify for StaffToken {
    fn modify(&self, doc: &mut utoipa::openapi::OpenApi) {
        let components = doc.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "staff",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some("a staff token (staff.tokens, HAZEFLOW_STAFF_TOKENS or the tokens file); GET also accepts the dashboard's session cookie"))
                    .build(),
            ),
        );
    }
}

/// The document as served (JSON), generated on first use.
pub fn json() -> &'static str {
    static DOC: OnceLock<String> = OnceLock::new();
    DOC.get_or_init(|| ApiDoc::openapi().to_json().expect("the OpenAPI document serializes"))
}

// The envelopes of the answers (see the module's doc): described, the handlers answer the same keys.

/// a page
#[derive(ToSchema)]
#[allow(dead_code)]
pub(crate) struct GetConsultationsPage {
    /// a consultation: seq, at, trigger, assessments per region
    #[schema(value_type = Vec<Object>)]
    consultations: Vec<serde_json::Value>,
    /// pass as `after` for the next page; null when nothing follows
    next_after: Option<i64>,
}

/// a page
#[derive(ToSchema)]
#[allow(dead_code)]
pub(crate) struct GetWarningsPage {
    /// a region's warning: level, status, start, expected end, pending sign-off, holds, timeline
    #[schema(value_type = Vec<Object>)]
    warnings: Vec<serde_json::Value>,
    /// pass as `after` for the next page; null when nothing follows
    next_after: Option<String>,
}

/// a page
#[derive(ToSchema)]
#[allow(dead_code)]
pub(crate) struct GetRegionsPage {
    /// region, name, tier, parent, own_warning, in_force
    #[schema(value_type = Vec<Object>)]
    regions: Vec<serde_json::Value>,
    /// pass as `after` for the next page; null when nothing follows
    next_after: Option<String>,
}

/// The events that followed an action (their records, as `GET /api/v1/events` lists them).
#[derive(ToSchema)]
#[allow(dead_code)]
pub(crate) struct EventsFollowed {
    #[schema(value_type = Vec<Object>)]
    events: Vec<serde_json::Value>,
}

/// a page
#[derive(ToSchema)]
#[allow(dead_code)]
pub(crate) struct GetDirectivesPage {
    /// id, name, min_level, regions, from, until, issued_by, active
    #[schema(value_type = Vec<Object>)]
    directives: Vec<serde_json::Value>,
    /// pass as `after` for the next page; null when nothing follows
    next_after: Option<String>,
}

/// a page
#[derive(ToSchema)]
#[allow(dead_code)]
pub(crate) struct GetUpstreamWarningsPage {
    /// id, name, min_level (its highest level), regions (every region named), from (its start), issued_by, active, exercise, upstream: doc_no (文号), issuer, expected_end, areas [{level, regions}]
    #[schema(value_type = Vec<Object>)]
    upstream_warnings: Vec<serde_json::Value>,
    /// pass as `after` for the next page; null when nothing follows
    next_after: Option<String>,
}

/// the record and the events that followed
#[derive(ToSchema)]
#[allow(dead_code)]
pub(crate) struct PostUpstreamWarningsAnswer201 {
    #[schema(value_type = Object)]
    upstream_warning: serde_json::Value,
    #[schema(value_type = Vec<Object>)]
    events: Vec<serde_json::Value>,
}

/// a page
#[derive(ToSchema)]
#[allow(dead_code)]
pub(crate) struct GetEventsPage {
    /// a log record: seq, recorded_at, actor, kind, data
    #[schema(value_type = Vec<Object>)]
    events: Vec<serde_json::Value>,
    /// pass as `after` for the next page; null when nothing follows
    next_after: Option<i64>,
}

/// a page and `last_reload`
#[derive(ToSchema)]
#[allow(dead_code)]
pub(crate) struct GetPlaybooksPage {
    /// id, version, digest, file, scope, parent
    #[schema(value_type = Vec<Object>)]
    playbooks: Vec<serde_json::Value>,
    /// pass as `after` for the next page; null when nothing follows
    next_after: Option<String>,
}

/// a page
#[derive(ToSchema)]
#[allow(dead_code)]
pub(crate) struct GetWarningsIdAssignmentsPage {
    /// an assignment: key, party, level, measures or duty, acks, status
    #[schema(value_type = Vec<Object>)]
    assignments: Vec<serde_json::Value>,
    /// pass as `after` for the next page; null when nothing follows
    next_after: Option<String>,
}

/// a page
#[derive(ToSchema)]
#[allow(dead_code)]
pub(crate) struct GetEnterprisesPage {
    /// the list version the page belongs to (null: no list yet); the same on every page of a walk
    version: Option<i64>,
    /// when that version was recorded
    recorded_at: Option<String>,
    /// SHA-256 of the version's enterprises
    digest: Option<String>,
    /// an enterprise's 一厂一策 record as imported (uscc, name, county, industry, grade, lines, measures, contacts, …)
    #[schema(value_type = Vec<Object>)]
    enterprises: Vec<serde_json::Value>,
    /// pass as `after` for the next page; null when nothing follows
    next_after: Option<String>,
}

/// a page and `open` (how many of the page are open)
#[derive(ToSchema)]
#[allow(dead_code)]
pub(crate) struct GetInspectionsPage {
    /// an inspection task
    #[schema(value_type = Vec<Object>)]
    inspections: Vec<serde_json::Value>,
    /// pass as `after` for the next page; null when nothing follows
    next_after: Option<String>,
}

/// a page
#[derive(ToSchema)]
#[allow(dead_code)]
pub(crate) struct GetWarningsIdNegotiatedPage {
    /// a negotiated reduction, acknowledged and inspected like measures
    #[schema(value_type = Vec<Object>)]
    negotiated: Vec<serde_json::Value>,
    /// pass as `after` for the next page; null when nothing follows
    next_after: Option<String>,
}

/// a page
#[derive(ToSchema)]
#[allow(dead_code)]
pub(crate) struct GetDrillsPage {
    /// a warning as GET /api/v1/warnings/{id} gives it, with `exercise: true`
    #[schema(value_type = Vec<Object>)]
    drills: Vec<serde_json::Value>,
    /// pass as `after` for the next page; null when nothing follows
    next_after: Option<String>,
}

/// the consultation and its record (`opinion`, null until recorded)
#[derive(ToSchema)]
#[allow(dead_code)]
pub(crate) struct GetConsultationsSeqOpinionAnswer {
    #[schema(value_type = Object)]
    consultation: serde_json::Value,
    #[schema(value_type = Option<Object>)]
    opinion: Option<serde_json::Value>,
    /// its proposals signed before the record: form, warning, region, signer, signed_at, reason
    #[schema(value_type = Vec<Object>)]
    signed_without_record: Vec<serde_json::Value>,
}

/// recorded
#[derive(ToSchema)]
#[allow(dead_code)]
pub(crate) struct PostConsultationsSeqOpinionAnswer201 {
    #[schema(value_type = Object)]
    opinion: serde_json::Value,
}

/// a page
#[derive(ToSchema)]
#[allow(dead_code)]
pub(crate) struct GetApprovalsPage {
    /// `form` (the record), `title`, `region_name`, `fields` ([{label, value}] as the form shows them), `achieved` (`form` and `relay`: due, done, minutes, late)
    #[schema(value_type = Vec<Object>)]
    approvals: Vec<serde_json::Value>,
    /// pass as `after` for the next page; null when nothing follows
    next_after: Option<String>,
}

/// An approval form (审批表) as the API shows it.
#[derive(ToSchema)]
#[allow(dead_code)]
pub(crate) struct ApprovalAnswer {
    /// `form` (the record), `title`, `region_name`, `fields` ([{label, value}] as the form shows them), `achieved` (`form` and `relay`: due, done, minutes, late)
    #[schema(value_type = Object)]
    approval: serde_json::Value,
}

/// a page
#[derive(ToSchema)]
#[allow(dead_code)]
pub(crate) struct GetReportsPage {
    /// `report` (the record: `id`, `kind` (`daily`), `warning_id`, `region`, `level`, `date`, `as_of`, `counties` [{county, name, assigned, received, in_place, overdue, in_place_overdue, inspected, problems, inspections_open}], `total`, `problems` [{county_name, enterprise, note, inspected_at}], `to` {name, email} or null, `message` (the mail's id), `exercise` for a drill's), `title`, `heading` (the title without the drill mark), `lead` (the opening paragraph), `columns` and `rows` (the table as printed, the total last), `page_url`, `docx_url`
    #[schema(value_type = Vec<Object>)]
    reports: Vec<serde_json::Value>,
    /// pass as `after` for the next page; null when nothing follows
    next_after: Option<String>,
}
