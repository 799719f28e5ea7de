//! An SMTP server on a socket of this process (the `mailin` protocol engine on a socket the test
//! controls, so it can be started late and stopped), for the tests that need a real SMTP conversation
//! (`notify`, `acks`). Included by path in those test binaries.

use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use mailin::{AuthMechanism, Handler, Response, SessionBuilder};

use hazeflow::config::{Settings, SmtpTls};

use crate::common::eventually;

/// A mail the server accepted.
#[derive(Debug, Clone)]
pub struct Received {
    /// Envelope recipients.
    pub to: Vec<String>,
    /// The message as sent (headers and body).
    pub data: Vec<u8>,
    /// AUTH PLAIN user and password given on the session, if any.
    pub auth: Option<(String, String)>,
}

impl Received {
    /// Parsed.
    pub fn parsed(&self) -> mail_parser::Message<'_> {
        mail_parser::MessageParser::default()
            .parse(&self.data)
            .expect("a parseable message")
    }

    /// The Message-ID (without brackets).
    pub fn message_id(&self) -> String {
        self.parsed().message_id().unwrap_or_default().to_string()
    }
}

#[derive(Clone)]
struct Collector {
    inbox: Arc<Mutex<Vec<Received>>>,
    to: Vec<String>,
    data: Vec<u8>,
    auth: Option<(String, String)>,
    accept: Option<(String, String)>,
}

impl Handler for Collector {
    fn data_start(&mut self, _domain: &str, _from: &str, _is8bit: bool, to: &[String]) -> Response {
        self.to = to.to_vec();
        self.data.clear();
        mailin::response::OK
    }

    fn data(&mut self, buf: &[u8]) -> std::io::Result<()> {
        self.data.extend_from_slice(buf);
        Ok(())
    }

    fn data_end(&mut self) -> Response {
        let r = Received {
            to: std::mem::take(&mut self.to),
            data: std::mem::take(&mut self.data),
            auth: self.auth.clone(),
        };
        self.inbox.lock().expect("the inbox lock").push(r);
        mailin::response::OK
    }

    fn auth_plain(&mut self, _authz: &str, user: &str, password: &str) -> Response {
        if self.accept.as_ref().is_some_and(|(u, p)| u == user && p == password) {
            self.auth = Some((user.to_string(), password.to_string()));
            mailin::response::AUTH_OK
        } else {
            mailin::response::INVALID_CREDENTIALS
        }
    }
}

/// An SMTP server on a socket of this process; stops when dropped.
pub struct SmtpServer {
    /// Its port.
    pub port: u16,
    inbox: Arc<Mutex<Vec<Received>>>,
    stop: Arc<AtomicBool>,
    sessions: Arc<AtomicUsize>,
    pipelined: Arc<AtomicUsize>,
}

impl SmtpServer {
    /// Listens on `127.0.0.1:port` (0: any free port). With `auth`, AUTH PLAIN is offered and
    /// required to match.
    pub fn start(port: u16, auth: Option<(&str, &str)>) -> SmtpServer {
        SmtpServer::start_with(port, auth, false)
    }

    /// As [`SmtpServer::start`]; with `pipelining`, the EHLO reply offers PIPELINING (RFC 2920; the
    /// server reads line by line, so commands sent ahead wait in its buffer) and
    /// [`SmtpServer::pipelined`] counts the transactions whose RCPT TO and DATA had arrived with
    /// their MAIL FROM (it counts them either way).
    pub fn start_with(port: u16, auth: Option<(&str, &str)>, pipelining: bool) -> SmtpServer {
        let listener = TcpListener::bind(("127.0.0.1", port)).expect("the SMTP port is free");
        listener.set_nonblocking(true).expect("a non-blocking listener");
        let port = listener.local_addr().expect("an address").port();
        let inbox = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let sessions = Arc::new(AtomicUsize::new(0));
        let pipelined = Arc::new(AtomicUsize::new(0));
        let mut builder = SessionBuilder::new("smtp.test.example.cn");
        if auth.is_some() {
            builder.enable_auth(AuthMechanism::Plain);
            builder.insecure_enable_plaintext_auth();
        }
        let builder = Arc::new(builder);
        let handler = Collector {
            inbox: inbox.clone(),
            to: Vec::new(),
            data: Vec::new(),
            auth: None,
            accept: auth.map(|(u, p)| (u.to_string(), p.to_string())),
        };
        let (stop2, sessions2, pipelined2) = (stop.clone(), sessions.clone(), pipelined.clone());
        std::thread::spawn(move || {
            while !stop2.load(Ordering::SeqCst) {
                match listener.accept() {
                    Ok((stream, peer)) => {
                        sessions2.fetch_add(1, Ordering::SeqCst);
                        let (builder, handler, stop, pipelined) = (builder.clone(), handler.clone(), stop2.clone(), pipelined2.clone());
                        std::thread::spawn(move || serve(stream, peer, &builder, handler, &stop, &pipelined, pipelining));
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(5)),
                }
            }
        });
        SmtpServer {
            port,
            inbox,
            stop,
            sessions,
            pipelined,
        }
    }

    /// Transactions whose RCPT TO and DATA arrived with their MAIL FROM (counted whether or not
    /// PIPELINING was offered).
    pub fn pipelined(&self) -> usize {
        self.pipelined.load(Ordering::SeqCst)
    }

    /// Everything accepted so far.
    pub fn received(&self) -> Vec<Received> {
        self.inbox.lock().expect("the inbox lock").clone()
    }

    /// SMTP sessions opened so far.
    pub fn sessions(&self) -> usize {
        self.sessions.load(Ordering::SeqCst)
    }

    /// Waits until `n` messages have arrived.
    pub async fn wait_for(&self, n: usize) -> Vec<Received> {
        eventually(&format!("{n} emails arrive"), || async {
            let r = self.received();
            (r.len() >= n).then_some(r)
        })
        .await
    }
}

impl Drop for SmtpServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
    }
}

fn serve(
    stream: TcpStream,
    peer: SocketAddr,
    builder: &Arc<SessionBuilder>,
    handler: Collector,
    stop: &AtomicBool,
    pipelined: &AtomicUsize,
    offer: bool,
) {
    let _ = stream.set_read_timeout(Some(Duration::from_millis(50)));
    let mut writer = match stream.try_clone() {
        Ok(w) => w,
        Err(_) => return,
    };
    let mut reader = BufReader::new(stream);
    let mut session = builder.build(peer.ip(), handler);
    if session.greeting().write_to(&mut writer).is_err() {
        return;
    }
    let mut line = Vec::new();
    while !stop.load(Ordering::SeqCst) {
        match reader.read_until(b'\n', &mut line) {
            Ok(0) => return,
            Ok(_) if line.ends_with(b"\n") => {
                let upper = line.to_ascii_uppercase();
                if upper.starts_with(b"MAIL FROM:") {
                    // Sent ahead: already in the buffer before this MAIL FROM is answered.
                    let ahead = reader.buffer();
                    if ahead.windows(8).any(|w| w == b"RCPT TO:") && ahead.windows(6).any(|w| w == b"DATA\r\n") {
                        pipelined.fetch_add(1, Ordering::SeqCst);
                    }
                }
                let res = session.process(&line);
                line.clear();
                match res.action {
                    mailin::Action::Reply if offer && upper.starts_with(b"EHLO") => {
                        // mailin's reply, with PIPELINING offered after its first line.
                        let mut reply = Vec::new();
                        if res.write_to(&mut reply).is_err() {
                            return;
                        }
                        let at = reply.iter().position(|b| *b == b'\n').map_or(reply.len(), |i| i + 1);
                        reply.splice(at..at, b"250-PIPELINING\r\n".iter().copied());
                        if writer.write_all(&reply).is_err() || writer.flush().is_err() {
                            return;
                        }
                    }
                    mailin::Action::Reply => {
                        if res.write_to(&mut writer).is_err() || writer.flush().is_err() {
                            return;
                        }
                    }
                    mailin::Action::Close => {
                        let _ = res.write_to(&mut writer);
                        return;
                    }
                    mailin::Action::NoReply => {}
                    mailin::Action::UpgradeTls => return,
                }
            }
            Ok(_) => {}
            Err(e) if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) => {}
            Err(_) => return,
        }
    }
}

/// Points the mail at an SMTP server on localhost (plain text, as a local relay).
pub fn smtp_to(s: &mut Settings, port: u16) {
    s.mail.smtp.host = Some("127.0.0.1".into());
    s.mail.smtp.port = Some(port);
    s.mail.smtp.tls = SmtpTls::None;
    s.mail.smtp.timeout_secs = 5;
}
