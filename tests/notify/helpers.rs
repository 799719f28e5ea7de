//! The real parts a notification test needs besides the daemon of `tests/common`: a test roster, an
//! SMTP server in this process (the `mailin` protocol engine on a socket we control, so it can be
//! started late and stopped), a webhook receiver (a tiny axum server), and the steps of a proposal.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::http::{HeaderMap, StatusCode};
use hazeflow::clock::Clock;
use hazeflow::config::Settings;
use hazeflow::notify::outbox::{self, OutboxMessage};
use serde_json::Value;
use tempfile::TempDir;
use tokio_rustls::rustls;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivatePkcs8KeyDer};

pub use crate::common::*;

/// The test roster: Taiyuan's day shift has two duty officers, one of whose name tries to inject a
/// header and a script; the deputy head signs orange.
pub const ROSTER: &str = r#"
notify:
  proposed:        { to: [duty, signer], template: warning_proposed }
  change_proposed: { to: [duty, signer], template: warning_proposed }
  issued:          { to: [duty], template: warning_issued }
  level_changed:   { to: [duty], template: warning_changed }
  lifted:          { to: [duty], template: warning_lifted }
  cancelled:       { to: [duty], template: warning_cancelled }
  delivery_failed: { to: [duty], template: delivery_failed }
regions:
  "140000":
    - { id: sx-duty, name: 省值班员, role: duty_officer, email: duty@sx.example.cn, shifts: [{ days: [daily], from: "00:00", to: "00:00" }] }
  "140100":
    - { id: ty-wang-fang, name: 王芳, role: duty_officer, email: wang.fang@ty.example.cn, phone: "0351-0000101", shifts: [{ days: [weekdays], from: "08:00", to: "18:00" }] }
    - id: ty-evil
      name: "Mallory\r\nBcc: evil@example.com\r\nX-Injected: yes <script>alert(1)</script>"
      role: duty_officer
      email: mallory@ty.example.cn
      shifts: [{ days: [weekdays], from: "08:00", to: "18:00" }]
    - { id: ty-night, name: 刘洋, role: duty_officer, email: liu.yang@ty.example.cn, shifts: [{ days: [weekdays], from: "18:00", to: "08:00" }] }
    - { id: ty-deputy, name: 赵建国, role: deputy_head, email: zhao.jianguo@ty.example.cn }
    - { id: ty-head, name: 孙志强, role: head, email: sun.zhiqiang@ty.example.cn }
"#;

/// Who the proposal reaches (duty staff on shift + the signer), and the issue notice (duty staff).
pub const PROPOSAL_TO: &[&str] = &["wang.fang@ty.example.cn", "mallory@ty.example.cn", "zhao.jianguo@ty.example.cn"];
/// Who the issue notice reaches.
pub const ISSUE_TO: &[&str] = &["wang.fang@ty.example.cn", "mallory@ty.example.cn"];
/// Who each decision's report goes to (信息报送 to the province's command office, Shanxi's playbook).
pub const UPPER_TO: &[&str] = &["yjb@shanxi.example.cn"];

/// Settings of a test daemon living in `dir`: the test roster, mail written as files unless a test
/// points it at SMTP.
pub fn settings_in(dir: &Path) -> Settings {
    let mut s = base_settings(dir);
    s.shutdown_deadline_secs = 10;
    let roster = dir.join("roster.yaml");
    std::fs::write(&roster, ROSTER).expect("the roster is written");
    s.roster = roster;
    s.mail.rate_per_sec = 0.0;
    s.mail.retry.base_secs = 30;
    s.validate().expect("the test settings are valid");
    s
}

/// Starts the daemon in `dir` with the settings `tweak` leaves.
pub async fn spawn_app_in(dir: TempDir, clock: Clock, tweak: impl FnOnce(&mut Settings)) -> TestApp {
    let mut settings = settings_in(dir.path());
    tweak(&mut settings);
    TestApp::start(dir, clock, settings).await
}

/// Starts the daemon in a fresh folder.
pub async fn spawn_app(tweak: impl FnOnce(&mut Settings)) -> TestApp {
    spawn_app_in(TempDir::new().expect("a temporary folder"), clock(), tweak).await
}

impl TestApp {
    /// The forecast centre sends Taiyuan's AQI for seven days from 2026-12-02, issued at `issued_at`.
    pub async fn taiyuan_forecast(&self, issued_at: &str, aqi: &[u32]) {
        let csv = forecast_csv(issued_at, SOURCE, "140100", "2026-12-02", aqi);
        let (status, body) = self.post_body("/api/v1/forecasts", Some(DEPUTY), csv).await;
        assert_eq!(status, reqwest::StatusCode::CREATED, "{body}");
    }

    /// A forecast over HTTP that puts Taiyuan at orange from tomorrow, then waits for the proposal;
    /// returns the warning id.
    pub async fn propose_orange_for_taiyuan(&self) -> String {
        self.taiyuan_forecast("2026-12-01 14:00", &[235, 245, 190, 120, 90, 80, 70]).await;
        eventually("the consultation proposes orange for Taiyuan", || async {
            let (_, body) = self.get("/api/v1/warnings", Some(DEPUTY)).await;
            body["warnings"]
                .as_array()?
                .iter()
                .find(|w| w["region"] == "140100" && w["status"] == "pending")
                .and_then(|w| w["id"].as_str().map(str::to_string))
        })
        .await
    }

    /// The deputy head signs over HTTP.
    pub async fn sign(&self, id: &str) {
        let (status, body) = self
            .post_json(
                &format!("/api/v1/warnings/{id}/sign"),
                Some(DEPUTY),
                &serde_json::json!({ "without_record": "本测试不涉及会商意见" }),
            )
            .await;
        assert_eq!(status, reqwest::StatusCode::OK, "{body}");
        self.state.after_change();
    }

    /// Waits until the warning's history holds `n` proposals (`proposed` events); returns them.
    pub async fn proposals_recorded(&self, id: &str, n: usize) -> Vec<Value> {
        eventually(&format!("{n} proposals of {id} are recorded"), || async {
            let (_, body) = self.get(&format!("/api/v1/warnings/{id}"), Some(DEPUTY)).await;
            let proposed: Vec<Value> = body["history"]
                .as_array()?
                .iter()
                .filter(|r| r["event"]["kind"] == "proposed")
                .map(|r| r["event"].clone())
                .collect();
            (proposed.len() >= n).then_some(proposed)
        })
        .await
    }

    /// Waits until every queued message has been sent (or failed).
    pub async fn settled(&self, n: usize) -> Vec<OutboxMessage> {
        eventually(&format!("{n} messages are sent"), || async {
            let all = self.outbox();
            (all.len() == n && all.iter().all(|m| m.status == outbox::Status::Sent)).then_some(all)
        })
        .await
    }
}

// ---------------------------------------------------------------------------------------------
// SMTP server

pub use crate::smtp::{Received, SmtpServer, smtp_to};

// ---------------------------------------------------------------------------------------------
// Webhook receiver

/// One POST the receiver took.
#[derive(Debug, Clone)]
pub struct Hook {
    /// Its headers.
    pub headers: HeaderMap,
    /// Its body.
    pub body: Bytes,
}

/// A tiny axum server on `127.0.0.1:0` that records every POST to `/hook` it accepts.
pub struct WebhookReceiver {
    /// `http://127.0.0.1:PORT/hook` (or `https://` from [`WebhookReceiver::start_tls`]).
    pub url: String,
    got: Arc<Mutex<Vec<Hook>>>,
    handshake_errors: Arc<Mutex<Vec<String>>>,
}

/// `POST /hook`: the first `fail_first` get `status`, the rest are recorded and get 200.
fn hook_router(got: Arc<Mutex<Vec<Hook>>>, fail_first: usize, status: StatusCode) -> axum::Router {
    let seen = Arc::new(AtomicUsize::new(0));
    axum::Router::new().route(
        "/hook",
        axum::routing::post(move |headers: HeaderMap, body: Bytes| {
            let (g, s) = (got.clone(), seen.clone());
            async move {
                if s.fetch_add(1, Ordering::SeqCst) < fail_first {
                    return status;
                }
                g.lock().expect("the lock").push(Hook { headers, body });
                StatusCode::OK
            }
        }),
    )
}

// ---------------------------------------------------------------------------------------------
// TLS: a private CA made at test time, and a listener that serves only TLS

/// A CA made for one test (as a department network's private CA would be), and a server
/// certificate it signed for `127.0.0.1` and `localhost`.
pub struct TestCa {
    /// The CA certificate, PEM (what a `ca_file` holds).
    pub ca_pem: String,
    server_cert: CertificateDer<'static>,
    server_key: PrivatePkcs8KeyDer<'static>,
}

impl TestCa {
    /// Generates a fresh CA key and certificate, and a server key and certificate signed by it.
    pub fn generate() -> TestCa {
        let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).expect("CA parameters");
        ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        ca_params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "hazeflow test department CA");
        ca_params.key_usages = vec![
            rcgen::KeyUsagePurpose::KeyCertSign,
            rcgen::KeyUsagePurpose::CrlSign,
            rcgen::KeyUsagePurpose::DigitalSignature,
        ];
        let ca = rcgen::CertifiedIssuer::self_signed(ca_params, rcgen::KeyPair::generate().expect("a CA key")).expect("the CA certificate");

        let mut params = rcgen::CertificateParams::new(vec!["127.0.0.1".to_string(), "localhost".to_string()]).expect("server parameters");
        params.distinguished_name.push(rcgen::DnType::CommonName, "sms-gateway.test");
        params.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ServerAuth];
        params.use_authority_key_identifier_extension = true;
        let key = rcgen::KeyPair::generate().expect("a server key");
        let cert = params.signed_by(&key, &ca).expect("the server certificate");
        TestCa {
            ca_pem: ca.pem(),
            server_cert: cert.der().clone(),
            server_key: PrivatePkcs8KeyDer::from(key.serialize_der()),
        }
    }

    /// Writes the CA certificate into `dir`; returns the file.
    pub fn write_ca_file(&self, dir: &Path) -> std::path::PathBuf {
        let f = dir.join("department-ca.pem");
        std::fs::write(&f, &self.ca_pem).expect("the CA file is written");
        f
    }

    fn server_config(&self) -> Arc<rustls::ServerConfig> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .expect("TLS versions")
            .with_no_client_auth()
            .with_single_cert(vec![self.server_cert.clone()], self.server_key.clone_key().into())
            .expect("the server certificate and key");
        Arc::new(config)
    }
}

/// Accepts TCP connections and completes a TLS handshake on each before axum sees it; a failed
/// handshake is recorded and the connection dropped.
struct TlsListener {
    tcp: tokio::net::TcpListener,
    acceptor: tokio_rustls::TlsAcceptor,
    errors: Arc<Mutex<Vec<String>>>,
}

impl axum::serve::Listener for TlsListener {
    type Io = tokio_rustls::server::TlsStream<tokio::net::TcpStream>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, SocketAddr) {
        loop {
            let Ok((tcp, peer)) = self.tcp.accept().await else { continue };
            match tokio::time::timeout(Duration::from_secs(5), self.acceptor.accept(tcp)).await {
                Ok(Ok(tls)) => return (tls, peer),
                Ok(Err(e)) => self.errors.lock().expect("the lock").push(e.to_string()),
                Err(_) => self.errors.lock().expect("the lock").push("handshake timed out".into()),
            }
        }
    }

    fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.tcp.local_addr()
    }
}

impl WebhookReceiver {
    /// Starts it; the first `fail_first` POSTs get 503.
    pub async fn start(fail_first: usize) -> WebhookReceiver {
        Self::start_failing(fail_first, StatusCode::SERVICE_UNAVAILABLE).await
    }

    /// Starts it; the first `fail_first` POSTs get `status`.
    pub async fn start_failing(fail_first: usize, status: StatusCode) -> WebhookReceiver {
        let got: Arc<Mutex<Vec<Hook>>> = Arc::new(Mutex::new(Vec::new()));
        let app = hook_router(got.clone(), fail_first, status);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("a port");
        let url = format!("http://{}/hook", listener.local_addr().expect("an address"));
        tokio::spawn(async move { axum::serve(listener, app).await });
        WebhookReceiver {
            url,
            got,
            handshake_errors: Arc::default(),
        }
    }

    /// Starts it behind TLS only (`https://127.0.0.1:PORT/hook`), with the server certificate of
    /// `ca`; every POST gets 200. A connection whose TLS handshake fails is recorded, not served.
    pub async fn start_tls(ca: &TestCa) -> WebhookReceiver {
        let got: Arc<Mutex<Vec<Hook>>> = Arc::new(Mutex::new(Vec::new()));
        let app = hook_router(got.clone(), 0, StatusCode::OK);
        let tcp = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("a port");
        let url = format!("https://{}/hook", tcp.local_addr().expect("an address"));
        let handshake_errors: Arc<Mutex<Vec<String>>> = Arc::default();
        let listener = TlsListener {
            tcp,
            acceptor: tokio_rustls::TlsAcceptor::from(ca.server_config()),
            errors: handshake_errors.clone(),
        };
        tokio::spawn(async move { axum::serve(listener, app).await });
        WebhookReceiver {
            url,
            got,
            handshake_errors,
        }
    }

    /// TLS handshakes that failed (the client refused the certificate, …).
    pub fn handshake_errors(&self) -> Vec<String> {
        self.handshake_errors.lock().expect("the lock").clone()
    }

    /// The POSTs accepted so far.
    pub fn received(&self) -> Vec<Hook> {
        self.got.lock().expect("the lock").clone()
    }
}

/// A TLS front on `127.0.0.1:PORT` for a plain server on `backend_port`: completes the handshake
/// with the certificate of `ca`, then passes bytes both ways (implicit TLS, as SMTPS on port 465).
/// Returns its port and a count of completed handshakes.
pub async fn tls_front(ca: &TestCa, backend_port: u16) -> (u16, Arc<AtomicUsize>) {
    let tcp = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("a port");
    let port = tcp.local_addr().expect("an address").port();
    let acceptor = tokio_rustls::TlsAcceptor::from(ca.server_config());
    let handshakes = Arc::new(AtomicUsize::new(0));
    let done = handshakes.clone();
    tokio::spawn(async move {
        while let Ok((client, _)) = tcp.accept().await {
            let (acceptor, done) = (acceptor.clone(), done.clone());
            tokio::spawn(async move {
                let Ok(mut tls) = acceptor.accept(client).await else { return };
                done.fetch_add(1, Ordering::SeqCst);
                let Ok(mut backend) = tokio::net::TcpStream::connect(("127.0.0.1", backend_port)).await else {
                    return;
                };
                let _ = tokio::io::copy_bidirectional(&mut tls, &mut backend).await;
            });
        }
    });
    (port, handshakes)
}
