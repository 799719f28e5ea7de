//! The CLI's client of the running daemon (`forecast submit`, `consult --now`, `warnings …`,
//! `directives …`): plain HTTP calls to the API, printed for people, with a summary line.

use std::path::Path;
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use serde_json::Value;

/// Where the daemon is and who is asking.
pub struct Client {
    base: String,
    token: Option<String>,
    http: reqwest::Client,
    /// Print the API's JSON answer instead of text (`--output json`).
    json: bool,
}

/// The daemon could not be reached (the CLI exits 3).
#[derive(Debug, thiserror::Error)]
#[error("cannot reach the daemon at {base} (is it running?): {source}")]
pub struct Unreachable {
    base: String,
    #[source]
    source: reqwest::Error,
}

impl Client {
    /// A client for `server` (e.g. `http://127.0.0.1:8080`) with a staff token.
    pub fn new(server: &str, token: Option<String>) -> Client {
        Client {
            base: server.trim_end_matches('/').to_string(),
            token,
            http: reqwest::Client::new(),
            json: false,
        }
    }

    /// Prints JSON answers instead of text.
    pub fn json(mut self, json: bool) -> Client {
        self.json = json;
        self
    }

    /// With `--output json`: prints the answer and says so.
    fn printed_json(&self, v: &Value) -> Result<bool> {
        if self.json {
            println!("{}", serde_json::to_string_pretty(v)?);
        }
        Ok(self.json)
    }

    async fn send(&self, req: reqwest::RequestBuilder) -> Result<Value> {
        let req = match &self.token {
            Some(t) => req.bearer_auth(t),
            None => req,
        };
        let resp = req.send().await.map_err(|source| Unreachable {
            base: self.base.clone(),
            source,
        })?;
        let status = resp.status();
        let body: Value = resp.json().await.unwrap_or(Value::Null);
        if !status.is_success() {
            let msg = body.get("error").and_then(Value::as_str).unwrap_or("no message");
            bail!("{status}: {msg}");
        }
        Ok(body)
    }

    async fn get(&self, path: &str) -> Result<Value> {
        self.send(self.http.get(format!("{}{path}", self.base))).await
    }

    async fn post(&self, path: &str, body: Option<Value>) -> Result<Value> {
        let req = self.http.post(format!("{}{path}", self.base));
        let req = match body {
            Some(b) => req.json(&b),
            None => req,
        };
        self.send(req).await
    }

    /// `POST /api/v1/backup`, streamed into `to`.
    pub async fn backup(&self, to: &Path) -> Result<u64> {
        use tokio::io::AsyncWriteExt;
        let mut req = self.http.post(format!("{}/api/v1/backup", self.base));
        if let Some(t) = &self.token {
            req = req.bearer_auth(t);
        }
        let mut resp = req.send().await.map_err(|source| Unreachable {
            base: self.base.clone(),
            source,
        })?;
        let status = resp.status();
        if !status.is_success() {
            let body: Value = resp.json().await.unwrap_or(Value::Null);
            let msg = body.get("error").and_then(Value::as_str).unwrap_or("no message");
            bail!("{status}: {msg}");
        }
        // The whole store (personal data, keys): 0600 from its creation.
        let mut file =
            tokio::fs::File::from_std(crate::config::create_private(to).with_context(|| format!("cannot write {}", to.display()))?);
        let mut n = 0u64;
        while let Some(chunk) = resp.chunk().await.context("the download broke off")? {
            file.write_all(&chunk).await?;
            n += chunk.len() as u64;
        }
        file.sync_all().await?;
        Ok(n)
    }

    /// `hazeflow forecast submit FILE`.
    pub async fn submit(&self, file: &Path, exercise: bool) -> Result<ExitCode> {
        let bytes = std::fs::read(file).with_context(|| format!("cannot read {}", file.display()))?;
        let name = file.file_name().map(|n| n.to_string_lossy().to_string()).unwrap_or_default();
        let query = if exercise { "?exercise=true" } else { "" };
        let v = self
            .send(
                self.http
                    .post(format!("{}/api/v1/forecasts{query}", self.base))
                    .header("x-file-name", name)
                    .body(bytes),
            )
            .await?;
        if self.printed_json(&v)? {
            return Ok(ExitCode::SUCCESS);
        }
        let dup = v["duplicate"].as_bool().unwrap_or(false);
        let drill = v["exercise"].as_bool().unwrap_or(false);
        println!(
            "{}forecast {} {} ({} regions)",
            if drill { "drill " } else { "" },
            v["id"].as_str().unwrap_or("?"),
            if dup {
                "was already recorded; nothing changed"
            } else if drill {
                "recorded and consulted for the drill"
            } else {
                "recorded"
            },
            v["regions"]
        );
        Ok(ExitCode::SUCCESS)
    }

    /// `hazeflow drill list`.
    pub async fn drills(&self) -> Result<ExitCode> {
        let v = self.get("/api/v1/drills").await?;
        if self.printed_json(&v)? {
            return Ok(ExitCode::SUCCESS);
        }
        let list = v["drills"].as_array().cloned().unwrap_or_default();
        for w in &list {
            println!(
                "{:<24} {:<7} {:<9} issued {}  ended {}",
                w["id"].as_str().unwrap_or("?"),
                w["level"].as_str().unwrap_or("?"),
                w["status"].as_str().unwrap_or("?"),
                local(&w["issued_at"]),
                local(&w["ended_at"]),
            );
        }
        println!("{} drill warnings", list.len());
        Ok(ExitCode::SUCCESS)
    }

    /// `hazeflow drill report ID`.
    pub async fn drill_report(&self, id: &str) -> Result<ExitCode> {
        let v = self.get(&format!("/api/v1/drills/{id}/report")).await?;
        if self.printed_json(&v)? {
            return Ok(ExitCode::SUCCESS);
        }
        let mut out = String::new();
        crate::engine::drill::print_report(&v, &mut out)?;
        print!("{out}");
        Ok(ExitCode::SUCCESS)
    }

    /// `hazeflow consult --now`.
    pub async fn consult(&self) -> Result<ExitCode> {
        let v = self.post("/api/v1/consultations", None).await?;
        if self.printed_json(&v)? {
            return Ok(ExitCode::SUCCESS);
        }
        let list = v["assessments"].as_array().cloned().unwrap_or_default();
        for a in &list {
            println!(
                "{}  {:<8} {}",
                a["region"].as_str().unwrap_or("?"),
                a["level"].as_str().unwrap_or("none"),
                a["rule"].as_str().unwrap_or("-")
            );
        }
        println!("consultation held over {} regions", list.len());
        Ok(ExitCode::SUCCESS)
    }

    /// `hazeflow warnings list`.
    pub async fn list(&self) -> Result<ExitCode> {
        let v = self.get("/api/v1/warnings").await?;
        if self.printed_json(&v)? {
            return Ok(ExitCode::SUCCESS);
        }
        let list = v["warnings"].as_array().cloned().unwrap_or_default();
        let mut pending = 0;
        for w in &list {
            let p = w["pending_sign_off"].as_bool().unwrap_or(false);
            pending += usize::from(p);
            println!(
                "{:<22} {} {:<8} {:<10} {:<7} start {}  end {}{}",
                w["id"].as_str().unwrap_or("?"),
                w["region"].as_str().unwrap_or("?"),
                w["region_name"].as_str().unwrap_or(""),
                w["status"].as_str().unwrap_or("?"),
                w["level"].as_str().unwrap_or("?"),
                local(&w["start"]),
                local(&w["expected_end"]),
                if p { "  (awaiting sign-off)" } else { "" }
            );
            if let Some(t) = w["timeline"].as_str() {
                println!("{:<22} {t}", "");
            }
        }
        println!("{} warnings, {pending} awaiting sign-off", list.len());
        Ok(ExitCode::SUCCESS)
    }

    /// `hazeflow warnings show ID`.
    pub async fn show(&self, id: &str) -> Result<ExitCode> {
        let v = self.get(&format!("/api/v1/warnings/{id}")).await?;
        println!("{}", serde_json::to_string_pretty(&v)?);
        Ok(ExitCode::SUCCESS)
    }

    /// `hazeflow warnings sign ID…` or `--pending`; `--without-record REASON`: sign a consultation's
    /// proposal before its record (会商意见) is completed, saying why.
    pub async fn sign(&self, ids: &[String], pending: bool, without_record: Option<&str>) -> Result<ExitCode> {
        let mut ids = ids.to_vec();
        if pending {
            let v = self.get("/api/v1/warnings").await?;
            for w in v["warnings"].as_array().cloned().unwrap_or_default() {
                if w["pending_sign_off"].as_bool().unwrap_or(false) {
                    ids.push(w["id"].as_str().unwrap_or_default().to_string());
                }
            }
        }
        let mut failed = 0;
        for id in &ids {
            let body = without_record.map(|r| serde_json::json!({ "without_record": r }));
            match self.post(&format!("/api/v1/warnings/{id}/sign"), body).await {
                Ok(v) => println!("{id}: signed ({} events)", v["events"].as_array().map_or(0, Vec::len)),
                Err(e) => {
                    failed += 1;
                    eprintln!("{id}: {e}");
                }
            }
        }
        println!("{} signed, {failed} refused", ids.len() - failed);
        Ok(if failed > 0 { ExitCode::from(1) } else { ExitCode::SUCCESS })
    }

    /// `hazeflow warnings lift ID`.
    pub async fn lift(&self, id: &str, reason: Option<String>) -> Result<ExitCode> {
        let body = reason.map(|r| serde_json::json!({ "reason": r }));
        let v = self.post(&format!("/api/v1/warnings/{id}/lift"), body).await?;
        if self.printed_json(&v)? {
            return Ok(ExitCode::SUCCESS);
        }
        println!("{id}: {} events recorded", v["events"].as_array().map_or(0, Vec::len));
        Ok(ExitCode::SUCCESS)
    }

    /// `hazeflow episode summary ID [--json]`.
    pub async fn episode_summary(&self, id: &str, json: bool) -> Result<ExitCode> {
        let v = self.get(&format!("/api/v1/warnings/{id}/summary")).await?;
        if json {
            println!("{}", serde_json::to_string_pretty(&v)?);
        } else {
            let mut out = String::new();
            crate::engine::episode::print_table(&v, &mut out)?;
            print!("{out}");
        }
        Ok(ExitCode::SUCCESS)
    }

    /// `hazeflow directives list`.
    pub async fn directives(&self) -> Result<ExitCode> {
        let v = self.get("/api/v1/directives").await?;
        if self.printed_json(&v)? {
            return Ok(ExitCode::SUCCESS);
        }
        let list = v["directives"].as_array().cloned().unwrap_or_default();
        let mut active = 0;
        for d in &list {
            let on = d["active"].as_bool().unwrap_or(false);
            active += usize::from(on);
            println!(
                "{:<24} {:<7} {:<8} from {}  until {}  {}  {}",
                d["id"].as_str().unwrap_or("?"),
                d["min_level"].as_str().unwrap_or("?"),
                if on { "active" } else { "lifted" },
                local(&d["from"]),
                local(&d["until"]),
                d["regions"]
                    .as_array()
                    .map(|r| r.iter().filter_map(Value::as_str).collect::<Vec<_>>().join(","))
                    .unwrap_or_default(),
                d["name"].as_str().unwrap_or("")
            );
        }
        println!("{} directives, {active} active", list.len());
        Ok(ExitCode::SUCCESS)
    }

    /// `hazeflow directives issue …`.
    pub async fn issue_directive(&self, body: Value) -> Result<ExitCode> {
        let id = body["id"].as_str().unwrap_or("?").to_string();
        let v = self.post("/api/v1/directives", Some(body)).await?;
        if self.printed_json(&v)? {
            return Ok(ExitCode::SUCCESS);
        }
        println!(
            "directive {id} issued: {} events recorded",
            v["events"].as_array().map_or(0, Vec::len)
        );
        Ok(ExitCode::SUCCESS)
    }

    /// `hazeflow directives lift ID`.
    pub async fn lift_directive(&self, id: &str) -> Result<ExitCode> {
        let v = self.post(&format!("/api/v1/directives/{id}/lift"), None).await?;
        if self.printed_json(&v)? {
            return Ok(ExitCode::SUCCESS);
        }
        println!(
            "directive {id} lifted: {} events recorded",
            v["events"].as_array().map_or(0, Vec::len)
        );
        Ok(ExitCode::SUCCESS)
    }

    /// The daemon's current emergency reduction list (`GET /api/v1/enterprises`, walked to its end),
    /// or `None` when it has none; refused if the list changes between pages.
    pub async fn reduction_list(&self) -> Result<Option<crate::registry::ListVersion>> {
        let mut enterprises: Vec<crate::registry::Enterprise> = Vec::new();
        let mut after = String::new();
        let mut head: Option<Value> = None;
        loop {
            let page = self
                .get(&format!("/api/v1/enterprises?limit=1000&after={}", query_value(&after)))
                .await?;
            let this = Value::Array(vec![page["version"].clone(), page["digest"].clone(), page["recorded_at"].clone()]);
            if *head.get_or_insert_with(|| this.clone()) != this {
                bail!("the daemon's list changed while it was read (a new version); run the report again");
            }
            let items: Vec<crate::registry::Enterprise> =
                serde_json::from_value(page["enterprises"].clone()).context("the daemon's enterprises")?;
            enterprises.extend(items);
            match page["next_after"].as_str() {
                Some(next) => after = next.to_string(),
                None => break,
            }
        }
        let head = head.unwrap_or(Value::Null);
        let Some(version) = head[0].as_u64() else {
            return Ok(None);
        };
        enterprises.sort_by(|a, b| a.uscc.as_str().cmp(b.uscc.as_str()));
        Ok(Some(crate::registry::ListVersion {
            version: u32::try_from(version).context("the list's version")?,
            created_at: serde_json::from_value(head[2].clone()).context("the list's recorded_at")?,
            enterprises,
            digest: head[1].as_str().unwrap_or_default().to_string(),
        }))
    }

    /// `hazeflow events [--after N] [--limit N]`.
    pub async fn events(&self, after: u64, limit: u64) -> Result<ExitCode> {
        let v = self.get(&format!("/api/v1/events?after={after}&limit={limit}")).await?;
        if self.printed_json(&v)? {
            return Ok(ExitCode::SUCCESS);
        }
        let list = v["events"].as_array().cloned().unwrap_or_default();
        for e in &list {
            println!(
                "{:>8}  {}  {:<22} {}",
                e["seq"],
                local(&e["recorded_at"]),
                e["kind"].as_str().or(e["type"].as_str()).unwrap_or("?"),
                e["actor"].as_str().unwrap_or("")
            );
        }
        let last = list.last().map_or(after, |e| e["seq"].as_u64().unwrap_or(after));
        println!("{} events after {after}; the next page: --after {last}", list.len());
        Ok(ExitCode::SUCCESS)
    }

    /// `hazeflow acks ID`: acknowledgement progress per region, and who is missing.
    pub async fn acks(&self, id: &str) -> Result<ExitCode> {
        let v = self.get(&format!("/api/v1/warnings/{id}/acks")).await?;
        if self.printed_json(&v)? {
            return Ok(ExitCode::SUCCESS);
        }
        let row = |name: &str, p: &Value| {
            println!(
                "{name:<10} assigned {:>6}  received {:>6}  in place {:>6}  overdue {:>6}",
                p["assigned"], p["received"], p["in_place"], p["overdue"]
            );
        };
        if let Some(regions) = v["regions"].as_object() {
            for (r, p) in regions {
                row(r, p);
            }
        }
        row("total", &v["total"]);
        let missing = v["missing"].as_array().map_or(0, Vec::len);
        println!(
            "warning {id}: {} of {} received; {missing} listed as missing",
            v["total"]["received"], v["total"]["assigned"]
        );
        Ok(ExitCode::SUCCESS)
    }

    /// `hazeflow reload`: the playbooks, the roster and the templates.
    pub async fn reload(&self) -> Result<ExitCode> {
        let v = self.post("/api/v1/playbooks/reload", None).await?;
        if self.printed_json(&v)? {
            return Ok(ExitCode::SUCCESS);
        }
        let n = &v["notify"];
        let keys: Vec<&str> = v["link_keys"]
            .as_array()
            .map(|k| k.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        let session: Vec<&str> = v["session_keys"]
            .as_array()
            .map(|k| k.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        println!(
            "reloaded: {}; roster {} ({} people, {} routes), {} message templates; ack-link keys {} ({} signs); dashboard session keys {} ({} signs)",
            v["versions"],
            n["roster"],
            n["people"],
            n["routes"],
            n["kinds"],
            keys.join(", "),
            keys.last().unwrap_or(&"-"),
            session.join(", "),
            session.last().unwrap_or(&"-")
        );
        Ok(ExitCode::SUCCESS)
    }
}

fn local(v: &Value) -> String {
    v.as_str()
        .and_then(|s| chrono::DateTime::parse_from_rfc3339(s).ok())
        .map(|t| t.with_timezone(&chrono_tz::Asia::Shanghai).format("%Y-%m-%d %H:%M").to_string())
        .unwrap_or_else(|| "-".into())
}

/// A cursor as a query value, percent-encoded (`{county}/{uscc}`: the `/` among letters and digits).
fn query_value(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b == b'-' || b == b'_' {
                char::from(b).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}
