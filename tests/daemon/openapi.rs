//! The API description (generated from the handlers' `#[utoipa::path]` annotations by
//! `src/web/api/openapi.rs`, served at `/api/v1/openapi.json`) and the routes cannot drift apart: every
//! route the source declares is described and every operation described is routed (the router's own
//! `Allow` header for each path lists exactly the methods described), every list pages the same way,
//! and a request body's described required fields are the ones the handler refuses a body without.

use std::collections::BTreeSet;
use std::path::Path;

use reqwest::StatusCode;
use serde_json::Value;

use crate::helpers::*;

/// `(METHOD, path)` of every `.route("…", get(…).post(…))` under `src/web/` whose path is the API's.
fn declared_routes() -> BTreeSet<(String, String)> {
    fn walk(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
        for e in std::fs::read_dir(dir).expect("a source folder") {
            let p = e.expect("an entry").path();
            if p.is_dir() {
                walk(&p, out);
            } else if p.extension().is_some_and(|x| x == "rs") {
                out.push(p);
            }
        }
    }
    let mut files = Vec::new();
    walk(&Path::new(env!("CARGO_MANIFEST_DIR")).join("src/web"), &mut files);
    let mut routes = BTreeSet::new();
    for f in files {
        let text = std::fs::read_to_string(&f).expect("a source file");
        for (at, _) in text.match_indices(".route(\"") {
            let rest = &text[at + ".route(\"".len()..];
            let path = &rest[..rest.find('"').expect("a closing quote")];
            // The route call's text: up to the parenthesis that closes `.route(`.
            let mut depth = 1;
            let call: String = rest
                .chars()
                .take_while(|c| {
                    match c {
                        '(' => depth += 1,
                        ')' => depth -= 1,
                        _ => {}
                    }
                    depth > 0
                })
                .collect();
            if !(path.starts_with("/api/") || path == "/healthz" || path == "/metrics") {
                continue;
            }
            for m in ["get", "post", "put", "patch", "delete"] {
                let used = call
                    .match_indices(&format!("{m}("))
                    .any(|(i, _)| i == 0 || !call[..i].ends_with(|c: char| c.is_alphanumeric() || c == '_'));
                if used {
                    routes.insert((m.to_uppercase(), path.to_string()));
                }
            }
        }
    }
    routes
}

/// `schema` with its `$ref` (to `#/components/schemas/…`) followed.
fn resolve<'a>(doc: &'a Value, schema: &'a Value) -> &'a Value {
    match schema["$ref"].as_str().and_then(|r| r.strip_prefix("#/components/schemas/")) {
        Some(name) => &doc["components"]["schemas"][name],
        None => schema,
    }
}

fn described(doc: &Value) -> BTreeSet<(String, String)> {
    let mut out = BTreeSet::new();
    for (path, ops) in doc["paths"].as_object().expect("paths") {
        for method in ops.as_object().expect("operations").keys() {
            out.insert((method.to_uppercase(), path.clone()));
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_openapi_document_describes_exactly_the_routes_of_the_router() {
    let app = spawn_app(clock()).await;
    // Served without a token; no copy of it is kept in the repository any more.
    let (status, doc) = app.get("/api/v1/openapi.json", None).await;
    assert_eq!(status, StatusCode::OK, "{doc}");
    assert!(doc["openapi"].as_str().is_some_and(|v| v.starts_with("3.1")), "{}", doc["openapi"]);
    assert!(
        !Path::new(env!("CARGO_MANIFEST_DIR")).join("src/web/api/openapi.json").exists(),
        "the hand-written document is gone"
    );
    // Every error is described as the JSON the API answers with.
    let error = &doc["components"]["schemas"]["ErrorBody"];
    assert_eq!(error["required"], serde_json::json!(["error"]), "{error}");
    let (status, body) = app.get("/api/v1/warnings/no-such-warning", Some(HEAD)).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(body["error"].is_string(), "{body}");
    let not_found = &doc["paths"]["/api/v1/warnings/{id}"]["get"]["responses"]["404"];
    assert_eq!(
        not_found["content"]["application/json"]["schema"]["$ref"], "#/components/schemas/ErrorBody",
        "{not_found}"
    );

    // The source's routes and the document's operations are the same set.
    let declared = declared_routes();
    let described = described(&doc);
    assert!(declared.len() > 25, "the scan found the routes: {declared:?}");
    let undocumented: Vec<_> = declared.difference(&described).collect();
    let unrouted: Vec<_> = described.difference(&declared).collect();
    assert!(
        undocumented.is_empty() && unrouted.is_empty(),
        "routes not described (a handler without #[utoipa::path], or not in the paths(…) of src/web/api/openapi.rs): {undocumented:?}; described but not declared: {unrouted:?}"
    );

    // The router agrees: for every path described, a method it does not route is answered 405 with
    // `Allow` listing exactly the methods described (HEAD comes with GET).
    for (path, ops) in doc["paths"].as_object().expect("paths") {
        let url = app.url(&path.replace(['{', '}'], ""));
        let resp = app
            .http()
            .request(reqwest::Method::from_bytes(b"PROPFIND").expect("a method"), &url)
            // (with a staff token: the inspections' middleware asks for one before the router's 405)
            .bearer_auth(HEAD)
            .send()
            .await
            .expect("the daemon answers");
        assert_eq!(resp.status(), StatusCode::METHOD_NOT_ALLOWED, "{path} is routed");
        let allow: BTreeSet<String> = resp
            .headers()
            .get("allow")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .split(',')
            .map(|m| m.trim().to_string())
            .filter(|m| !m.is_empty() && m != "HEAD")
            .collect();
        let methods: BTreeSet<String> = ops.as_object().expect("operations").keys().map(|m| m.to_uppercase()).collect();
        assert_eq!(allow, methods, "{path}");
        for (_, op) in ops.as_object().expect("operations") {
            assert!(op["summary"].is_string() && op["responses"].is_object(), "{path}: {op}");
        }
    }

    // Every list pages the same way: `limit` and `after` described, `next_after` in the answer.
    let lists: Vec<(&String, &Value)> = doc["paths"]
        .as_object()
        .expect("paths")
        .iter()
        .filter_map(|(p, ops)| ops.get("get").map(|op| (p, op)))
        .filter(|(_, op)| {
            resolve(&doc, &op["responses"]["200"]["content"]["application/json"]["schema"])["properties"]["next_after"].is_object()
        })
        .collect();
    assert_eq!(lists.len(), 14, "{:?}", lists.iter().map(|l| l.0).collect::<Vec<_>>());
    for (path, op) in lists {
        let names: BTreeSet<&str> = op["parameters"]
            .as_array()
            .expect("parameters")
            .iter()
            .filter_map(|p| p["name"].as_str())
            .collect();
        assert!(names.contains("limit") && names.contains("after"), "{path}: {names:?}");
    }
    app.stop().await;
}

/// The body of `POST /api/v1/directives` as the document describes it is the body the handler takes:
/// a body without any one of the described required fields is refused with a JSON 400 naming it, a
/// body with only the required ones is taken, and a field the document does not describe is refused
/// (`additionalProperties: false`), named.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_bodys_described_required_fields_are_what_the_handler_refuses_a_body_without() {
    let app = spawn_app(clock()).await;
    let (_, doc) = app.get("/api/v1/openapi.json", None).await;
    let op = &doc["paths"]["/api/v1/directives"]["post"];
    assert_eq!(op["requestBody"]["required"], true, "{op}");
    let schema = resolve(&doc, &op["requestBody"]["content"]["application/json"]["schema"]);
    assert_eq!(schema["additionalProperties"], false, "{schema}");
    let required: BTreeSet<String> = schema["required"]
        .as_array()
        .unwrap_or_else(|| panic!("required fields: {schema}"))
        .iter()
        .filter_map(|f| f.as_str().map(str::to_string))
        .collect();
    let described: BTreeSet<String> = schema["properties"].as_object().expect("properties").keys().cloned().collect();
    assert_eq!(
        required,
        ["from", "id", "min_level", "name", "regions"].map(str::to_string).into(),
        "{schema}"
    );
    let full = serde_json::json!({
        "id": "D-DOC", "name": "调度令", "min_level": "orange", "regions": ["140100"],
        "from": "2026-12-05 00:00", "until": "2026-12-08 00:00", "issued_by": "140000", "exercise": false,
    });
    let keys: BTreeSet<String> = full.as_object().expect("an object").keys().cloned().collect();
    assert_eq!(keys, described, "the test's body holds every described field");
    for field in &required {
        let mut body = full.clone();
        body.as_object_mut().expect("an object").remove(field);
        let (status, answer) = app.post_json("/api/v1/directives", Some(HEAD), &body).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "without {field}: {answer}");
        assert!(
            answer["error"].as_str().is_some_and(|e| e.contains(&format!("`{field}`"))),
            "the error names {field}: {answer}"
        );
    }
    let unknown = {
        let mut body = full.clone();
        body["colour"] = serde_json::json!("橙色");
        body
    };
    let (status, answer) = app.post_json("/api/v1/directives", Some(HEAD), &unknown).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{answer}");
    assert!(answer["error"].as_str().is_some_and(|e| e.contains("colour")), "{answer}");
    // Only the required fields: taken.
    let only_required: serde_json::Map<String, Value> = full
        .as_object()
        .expect("an object")
        .iter()
        .filter(|(k, _)| required.contains(*k))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    let (status, answer) = app.post_json("/api/v1/directives", Some(HEAD), &Value::Object(only_required)).await;
    assert_eq!(status, StatusCode::CREATED, "{answer}");
    app.stop().await;
}

/// Walks a list page by page with `limit` and `after`; the whole list and the number of pages.
async fn walk(app: &TestApp, path: &str, key: &str, limit: usize) -> (Vec<Value>, usize) {
    let (mut all, mut pages, mut after) = (Vec::new(), 0, String::new());
    loop {
        let sep = if path.contains('?') { '&' } else { '?' };
        let (status, body) = app.get(&format!("{path}{sep}limit={limit}&after={after}"), Some(HEAD)).await;
        assert_eq!(status, StatusCode::OK, "{path}: {body}");
        let page = body[key].as_array().cloned().expect("a list");
        assert!(page.len() <= limit, "{path}");
        pages += 1;
        all.extend(page);
        match &body["next_after"] {
            Value::Null => return (all, pages),
            Value::String(s) => after = s.clone(),
            Value::Number(n) => after = n.to_string(),
            other => panic!("{path}: next_after {other}"),
        }
        assert!(pages < 1000, "{path} does not end");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_list_pages_with_limit_and_after_and_says_next_after_until_nothing_follows() {
    let app = spawn_app(clock()).await;
    // Proposals for three cities (a submitted forecast is consulted at once), more consultations,
    // and a few directives.
    for city in ["140100", "140200", "140300"] {
        let f = forecast_csv(
            "2026-12-01 14:00",
            "省生态环境监测和应急保障中心",
            city,
            "2026-12-01",
            &[120, 160, 230, 240, 180, 120, 100],
        );
        let (status, body) = app.submit(f).await;
        assert!(status.is_success(), "{body}");
    }
    eventually("three proposals", || async { (app.warnings().await.len() >= 3).then_some(()) }).await;
    for n in 0..3 {
        let (status, body) = app.post("/api/v1/consultations", Some(HEAD)).await;
        assert_eq!(status, StatusCode::CREATED, "{n}: {body}");
    }
    for (id, region) in [("D-1", "140100"), ("D-2", "140200"), ("D-3", "140300")] {
        let directive = serde_json::json!({
            "id": id, "name": "调度令", "min_level": "orange", "regions": [region],
            "from": "2026-12-05 00:00", "until": "2026-12-08 00:00",
        });
        let (status, body) = app.post_json("/api/v1/directives", Some(HEAD), &directive).await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
    }
    for (id, region) in [("U-1", "140400"), ("U-2", "140500"), ("U-3", "140600")] {
        let upstream = serde_json::json!({
            "id": id, "doc_no": format!("晋重污应急〔2026〕{id}号"), "issuer": "山西省重污染天气应急指挥部",
            "areas": [{ "level": "orange", "regions": [region] }], "start": "2026-12-05 00:00",
        });
        let (status, body) = app.post_json("/api/v1/upstream-warnings", Some(HEAD), &upstream).await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
    }
    // A page of each list read whole equals the list walked two by two.
    for (path, key) in [
        ("/api/v1/regions", "regions"),
        ("/api/v1/directives", "directives"),
        ("/api/v1/upstream-warnings", "upstream_warnings"),
        ("/api/v1/playbooks", "playbooks"),
        ("/api/v1/consultations", "consultations"),
        ("/api/v1/events", "events"),
        ("/api/v1/warnings", "warnings"),
        ("/api/v1/inspections", "inspections"),
        ("/api/v1/enterprises", "enterprises"),
        ("/api/v1/approvals", "approvals"),
    ] {
        let (status, whole) = app.get(&format!("{path}?limit=1000"), Some(HEAD)).await;
        assert_eq!(status, StatusCode::OK, "{path}: {whole}");
        assert_eq!(whole["next_after"], Value::Null, "{path}: everything in one page");
        let whole = whole[key].as_array().cloned().expect("a list");
        let (walked, pages) = walk(&app, path, key, 2).await;
        assert_eq!(walked, whole, "{path}");
        assert!(pages >= whole.len().div_ceil(2), "{path}");
        // limit=0 is refused as JSON; an unknown cursor of a list held whole just starts after it.
        let (status, body) = app.get(&format!("{path}?limit=0"), Some(HEAD)).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{path}: {body}");
        assert!(body["error"].as_str().is_some_and(|e| e.contains("limit")), "{body}");
    }
    let (walked, pages) = walk(&app, "/api/v1/warnings", "warnings", 1).await;
    // (the directives hold their cities and counties too)
    assert!(
        walked.len() >= 3 && pages == walked.len(),
        "one warning a page, nothing after the last: {pages}"
    );
    let (_, regions) = app.get("/api/v1/regions", Some(HEAD)).await;
    assert!(
        regions["regions"].as_array().is_some_and(|r| r.len() > 100) && regions["next_after"].is_null(),
        "a province's regions are one page by default"
    );
    let (walked, _) = walk(&app, "/api/v1/consultations", "consultations", 1).await;
    let seqs: Vec<u64> = walked.iter().map(|c| c["seq"].as_u64().expect("a seq")).collect();
    assert!(seqs.len() >= 3 && seqs.windows(2).all(|w| w[0] > w[1]), "newest first: {seqs:?}");
    let (walked, _) = walk(&app, "/api/v1/directives", "directives", 1).await;
    assert_eq!(
        walked.iter().map(|d| d["id"].as_str().unwrap_or("")).collect::<Vec<_>>(),
        ["D-1", "D-2", "D-3"]
    );
    let (walked, _) = walk(&app, "/api/v1/upstream-warnings", "upstream_warnings", 1).await;
    assert_eq!(
        walked.iter().map(|d| d["id"].as_str().unwrap_or("")).collect::<Vec<_>>(),
        ["U-1", "U-2", "U-3"]
    );
    app.stop().await;
}
