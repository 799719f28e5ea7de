//! Email through lettre: SMTP (STARTTLS or implicit TLS, AUTH, a pool of connections: `smtp.rs`),
//! or by default `.eml` files in a folder. [`Email`] is the channel's [`Sender`] (`channel.rs`).
//!
//! In: an outbox message's id, recipient and rendered text. Out: a MIME message (UTF-8, encoded
//! headers, `multipart/alternative` of plain text and HTML) handed to the transport; the transport's
//! answer or a [`NotifyError`] that says whether trying again may help.
//!
//! A message is byte-identical on every attempt: the Message-ID is `<{message id}@hazeflow>`, the
//! Date is the time it was queued, and the MIME boundary is derived from the id. A server (or a
//! person) can therefore recognise a resend. Display names are cleaned of control characters and
//! given to lettre as [`Mailbox`] values, which quote or encode them: a name cannot add a header.

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use anyhow::Context;
use chrono::{DateTime, Utc};
use lettre::address::Envelope;
use lettre::message::header::ContentType;
use lettre::message::header::{Header, HeaderName, HeaderValue};
use lettre::message::{Attachment as LettreAttachment, Mailbox, MultiPart, SinglePart};
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Certificate, TlsParameters};
use lettre::transport::smtp::extension::ClientId;
use lettre::{Address, Message};
use sha2::{Digest, Sha256};

use super::NotifyError;
use super::channel::Sender;
use super::outbox::{Attachment, Channel, OutboxMessage};
use super::smtp::{SmtpConfig, SmtpPool};
use super::templates::{Rendered, one_line};
use crate::config::{MailSettings, SmtpTls};

/// The Message-ID of an outbox message.
pub fn message_id(id: &str) -> String {
    format!("<{id}@hazeflow>")
}

/// The MIME boundary of an outbox message: fixed per id, so every attempt is the same bytes.
pub fn boundary(id: &str) -> String {
    let h = hex::encode(Sha256::digest(id.as_bytes()));
    format!("hazeflow-{}", &h[..32])
}

/// A display name safe for a header: no control characters (CR, LF, NUL …), one line; `None` when
/// nothing is left.
pub fn display_name(name: &str) -> Option<String> {
    Some(one_line(name)).filter(|n| !n.is_empty())
}

/// `Auto-Submitted: auto-generated` (RFC 3834): out-of-office replies stay away.
#[derive(Debug, Clone)]
struct AutoSubmitted;

impl Header for AutoSubmitted {
    fn name() -> HeaderName {
        HeaderName::new_from_ascii_str("Auto-Submitted")
    }

    fn parse(_: &str) -> Result<Self, Box<dyn std::error::Error + Send + Sync>> {
        Ok(AutoSubmitted)
    }

    fn display(&self) -> HeaderValue {
        HeaderValue::new(Self::name(), "auto-generated".to_string())
    }
}

/// The sender of a message about a warning: the configured address under the name of the body that
/// issues the warning (`issuer` in the message's data: 太原市重污染天气应急指挥部办公室), so that a city's
/// warning does not reach people in the province's name. Other messages keep the configured sender.
pub fn from_issuer(from: &Mailbox, data: &serde_json::Value) -> Mailbox {
    match data.get("issuer").and_then(serde_json::Value::as_str).and_then(display_name) {
        Some(name) => Mailbox::new(Some(name), from.email.clone()),
        None => from.clone(),
    }
}

/// Builds the email of an outbox message.
pub fn compose(
    from: &Mailbox,
    to_name: &str,
    to_address: &str,
    id: &str,
    date: DateTime<Utc>,
    r: &Rendered,
) -> Result<Message, NotifyError> {
    compose_with(from, to_name, to_address, id, date, r, &[])
}

/// [`compose`] with files attached: `multipart/mixed` of the text (and HTML) and each file, every
/// boundary derived from the id (the same bytes on every attempt).
pub fn compose_with(
    from: &Mailbox,
    to_name: &str,
    to_address: &str,
    id: &str,
    date: DateTime<Utc>,
    r: &Rendered,
    attachments: &[Attachment],
) -> Result<Message, NotifyError> {
    let address: Address = to_address
        .trim()
        .parse()
        .map_err(|e| NotifyError::permanent(format!("\"{to_address}\" is not an email address: {e}")))?;
    let to = Mailbox::new(display_name(to_name), address);
    let builder = Message::builder()
        .from(from.clone())
        .to(to)
        .subject(r.subject.clone())
        .message_id(Some(message_id(id)))
        .date(SystemTime::from(date))
        .user_agent("hazeflow".to_string())
        .header(AutoSubmitted);
    let built = if attachments.is_empty() {
        match &r.html {
            Some(html) => builder.multipart(
                MultiPart::alternative()
                    .boundary(boundary(id))
                    .singlepart(SinglePart::plain(r.text.clone()))
                    .singlepart(SinglePart::html(html.clone())),
            ),
            None => builder.singlepart(SinglePart::plain(r.text.clone())),
        }
    } else {
        let first = MultiPart::mixed().boundary(boundary(&format!("{id}/mixed")));
        let mut mixed = match &r.html {
            Some(html) => first.multipart(
                MultiPart::alternative()
                    .boundary(boundary(id))
                    .singlepart(SinglePart::plain(r.text.clone()))
                    .singlepart(SinglePart::html(html.clone())),
            ),
            None => first.singlepart(SinglePart::plain(r.text.clone())),
        };
        for a in attachments {
            let bytes = a
                .bytes()
                .ok_or_else(|| NotifyError::permanent(format!("attachment {} is not valid base64", a.name)))?;
            let content_type = ContentType::parse(&a.content_type)
                .map_err(|e| NotifyError::permanent(format!("attachment {}: content type: {e}", a.name)))?;
            let name = display_name(&a.name).unwrap_or_else(|| "attachment".into());
            mixed = mixed.singlepart(LettreAttachment::new(name).body(bytes, content_type));
        }
        builder.multipart(mixed)
    };
    built.map_err(|e| NotifyError::permanent(format!("cannot build the email: {e}")))
}

/// Where email goes.
pub enum Mailer {
    /// An SMTP server, through a pool of connections.
    Smtp {
        /// The pool.
        pool: Box<SmtpPool>,
        /// `host:port`, for logs.
        server: String,
    },
    /// `.eml` files in a folder (no mail server configured).
    Files {
        /// The folder.
        dir: PathBuf,
    },
}

impl std::fmt::Debug for Mailer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.describe())
    }
}

impl Mailer {
    /// From the settings: SMTP when `mail.smtp.host` is set, else files in `mail.dir`.
    pub fn from_settings(mail: &MailSettings, data_dir: &Path) -> anyhow::Result<Mailer> {
        let s = &mail.smtp;
        let Some(host) = s.host.as_deref() else {
            let dir = mail.dir_in(data_dir);
            // The messages carry names and addresses: a new folder is its owner's only.
            crate::config::private_dir(&dir).with_context(|| format!("mail.dir: cannot create {}", dir.display()))?;
            return Ok(Mailer::Files { dir });
        };
        let tls_parameters = if s.tls == SmtpTls::None {
            None
        } else {
            let mut params = TlsParameters::builder(host.to_string());
            if let Some(ca) = &s.ca_file {
                let pem = std::fs::read(ca).with_context(|| format!("mail.smtp.ca_file: cannot read {}", ca.display()))?;
                params = params.add_root_certificate(Certificate::from_pem(&pem).context("mail.smtp.ca_file: not a PEM certificate")?);
            }
            Some(params.build().context("mail.smtp: cannot set up TLS")?)
        };
        let credentials = match (&s.user, &s.password) {
            (Some(user), Some(password)) => Some(Credentials::new(user.clone(), password.expose().to_string())),
            _ => None,
        };
        let hello = s.hello_name.clone().map_or_else(ClientId::default, ClientId::Domain);
        let pool = Box::new(SmtpPool::new(SmtpConfig {
            host: host.to_string(),
            port: s.port(),
            tls: s.tls,
            tls_parameters,
            credentials,
            hello,
            timeout: Duration::from_secs(s.timeout_secs),
            max_idle: s.pool_size as usize,
        }));
        Ok(Mailer::Smtp {
            pool,
            server: format!("{host}:{}", s.port()),
        })
    }

    /// For logs: `smtp://host:port` or `files in DIR`.
    pub fn describe(&self) -> String {
        match self {
            Mailer::Smtp { server, .. } => format!("smtp://{server}"),
            Mailer::Files { dir } => format!(".eml files in {}", dir.display()),
        }
    }

    /// `smtp` or `file`.
    pub fn kind(&self) -> &'static str {
        match self {
            Mailer::Smtp { .. } => "smtp",
            Mailer::Files { .. } => "file",
        }
    }

    /// Sends one message; the answer is the server's reply (`250 …`) or the file written.
    pub async fn send(&self, id: &str, message: &Message) -> Result<String, NotifyError> {
        self.send_bytes(id, message.envelope(), &message.formatted()).await
    }

    /// Sends a message already formatted ([`Message::formatted`]) to its envelope.
    pub async fn send_bytes(&self, id: &str, envelope: &Envelope, bytes: &[u8]) -> Result<String, NotifyError> {
        match self {
            Mailer::Smtp { pool, .. } => pool.send(envelope, bytes).await,
            Mailer::Files { dir } => {
                let (dir, id, bytes) = (dir.clone(), id.to_string(), bytes.to_vec());
                tokio::task::spawn_blocking(move || write_eml(&dir, &id, &bytes))
                    .await
                    .map_err(|e| NotifyError::retryable(format!("writing the file: {e}")))?
                    .map_err(|e| NotifyError::retryable(format!("writing the file: {e}")))
            }
        }
    }
}

/// The email channel: the configured sender (`mail.from`) and where mail goes.
pub struct Email {
    mailer: Mailer,
    from: Mailbox,
}

impl Email {
    /// From the settings: `mail.from`, then the transport ([`Mailer::from_settings`]).
    pub fn from_settings(mail: &MailSettings, data_dir: &Path) -> anyhow::Result<Email> {
        let from = mail
            .from
            .parse()
            .with_context(|| format!("mail.from: \"{}\" is not a mailbox", mail.from))?;
        Ok(Email {
            mailer: Mailer::from_settings(mail, data_dir)?,
            from,
        })
    }
}

impl Sender for Email {
    fn channel(&self) -> Channel {
        Channel::Email
    }

    fn describe(&self) -> String {
        self.mailer.describe()
    }

    /// The envelope and the bytes of the message.
    type Ready = (Envelope, Vec<u8>);

    /// Composes the message ([`compose`], from the issuer: [`from_issuer`]) and formats it.
    fn prepare(&self, msg: &OutboxMessage, r: &Rendered) -> Result<(Envelope, Vec<u8>), NotifyError> {
        let m = compose_with(
            &from_issuer(&self.from, &msg.data),
            &msg.recipient.name,
            &msg.recipient.address,
            &msg.id,
            msg.created_at,
            r,
            &msg.attachments,
        )?;
        Ok((m.envelope().clone(), m.formatted()))
    }

    /// Hands the formatted message to the transport.
    async fn send(&self, msg: &OutboxMessage, (envelope, bytes): &(Envelope, Vec<u8>)) -> Result<String, NotifyError> {
        self.mailer.send_bytes(&msg.id, envelope, bytes).await
    }
}

/// Writes `{dir}/{id}.eml` through a temporary file and a rename: a reader never sees half a
/// message, and writing the same message again replaces it with the same bytes. The message holds
/// names and addresses (personal data): the file is 0600 from its creation, a folder made here 0700.
fn write_eml(dir: &Path, id: &str, bytes: &[u8]) -> std::io::Result<String> {
    use std::io::Write;
    if !dir.is_dir() {
        let mut b = std::fs::DirBuilder::new();
        b.recursive(true);
        #[cfg(unix)]
        std::os::unix::fs::DirBuilderExt::mode(&mut b, 0o700);
        b.create(dir)?;
    }
    let path = dir.join(format!("{id}.eml"));
    let tmp = dir.join(format!(".{id}.eml.tmp"));
    {
        let mut f = crate::config::create_private(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
    }
    std::fs::rename(&tmp, &path)?;
    Ok(format!("written {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rendered() -> Rendered {
        Rendered {
            subject: "【橙色预警】太原市重污染天气橙色预警（Ⅱ级）启动通知".into(),
            text: "王芳同志：\n启动。\n".into(),
            html: Some("<p>王芳同志：</p>".into()),
        }
    }

    fn from() -> Mailbox {
        "山西省重污染天气应急指挥部办公室 <hazeflow@example.cn>".parse().unwrap()
    }

    #[test]
    fn a_message_with_a_file_attached_is_the_same_bytes_on_every_attempt_and_names_the_file_in_chinese() {
        let t = DateTime::parse_from_rfc3339("2026-12-01T16:05:00+08:00")
            .unwrap()
            .with_timezone(&Utc);
        let files = [Attachment::new(
            "太原市重污染天气应急响应总结评估报告.docx",
            "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
            b"PK\x03\x04 not really a zip",
        )];
        let make = || {
            compose_with(&from(), "办公室", "yjb@shanxi.example.cn", "r-upper-email", t, &rendered(), &files)
                .unwrap()
                .formatted()
        };
        let (a, b) = (make(), make());
        assert_eq!(a, b);
        let m = mail_parser::MessageParser::default().parse(&a).unwrap();
        assert_eq!(
            m.body_text(0).map(|t| t.replace("\r\n", "\n")).as_deref(),
            Some("王芳同志：\n启动。\n")
        );
        let file = m.attachment(0).expect("the file");
        use mail_parser::MimeHeaders;
        assert_eq!(file.attachment_name(), Some("太原市重污染天气应急响应总结评估报告.docx"));
        assert_eq!(file.contents(), b"PK\x03\x04 not really a zip");
    }

    #[test]
    fn the_same_message_is_the_same_bytes_on_every_attempt() {
        let t = DateTime::parse_from_rfc3339("2026-12-01T16:05:00+08:00")
            .unwrap()
            .with_timezone(&Utc);
        let a = compose(&from(), "王芳", "wang.fang@ty.example.cn", "7-ty-wang-fang-email", t, &rendered())
            .unwrap()
            .formatted();
        let b = compose(&from(), "王芳", "wang.fang@ty.example.cn", "7-ty-wang-fang-email", t, &rendered())
            .unwrap()
            .formatted();
        assert_eq!(a, b);
        let text = String::from_utf8_lossy(&a);
        assert!(text.contains("Message-ID: <7-ty-wang-fang-email@hazeflow>"), "{text}");
        assert!(text.contains("multipart/alternative") && text.contains(&boundary("7-ty-wang-fang-email")));
    }

    #[test]
    fn a_name_with_line_breaks_cannot_add_a_header() {
        let t = Utc::now();
        let m = compose(
            &from(),
            "王芳\r\nBcc: evil@example.com\r\n<script>",
            "wang.fang@ty.example.cn",
            "1-x-email",
            t,
            &rendered(),
        )
        .unwrap();
        let bytes = m.formatted();
        let text = String::from_utf8_lossy(&bytes);
        let headers = text.split("\r\n\r\n").next().unwrap();
        assert!(!headers.lines().any(|l| l.to_ascii_lowercase().starts_with("bcc:")), "{headers}");
        assert_eq!(m.envelope().to().len(), 1);
    }

    #[test]
    fn a_bad_address_fails_for_good() {
        let e = compose(&from(), "x", "not an address", "1-x-email", Utc::now(), &rendered()).unwrap_err();
        assert!(!e.is_retryable());
    }
}
