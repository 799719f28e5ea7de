//! Mail, roster and webhook settings: environment over the file, secrets never shown.

use hazeflow::config::{self, Settings, SmtpTls};

fn default() -> Settings {
    Settings::parse("default", config::DEFAULT_YAML).unwrap()
}

#[test]
fn the_default_writes_eml_files_under_the_data_folder() {
    let s = default();
    s.validate().unwrap();
    assert!(s.mail.smtp.host.is_none());
    assert_eq!(s.mail.dir_in(&s.data_dir), std::path::Path::new("./data/mail"));
    assert_eq!(s.roster, std::path::Path::new("./config/roster.yaml"));
}

#[test]
fn a_real_smtp_server_is_one_set_of_environment_variables_away_and_the_password_is_never_printed() {
    let mut s = default();
    s.apply_env(|k| {
        Some(
            match k {
                "HAZEFLOW_SMTP_HOST" => "smtp.sthjt.shanxi.example.cn",
                "HAZEFLOW_SMTP_PORT" => "465",
                "HAZEFLOW_SMTP_TLS" => "tls",
                "HAZEFLOW_SMTP_USER" => "hazeflow",
                "HAZEFLOW_SMTP_PASSWORD" => "correct horse battery staple",
                "HAZEFLOW_MAIL_FROM" => "应急办 <yjb@sthjt.shanxi.example.cn>",
                "HAZEFLOW_MAIL_DIR" => "/tmp/unused",
                _ => return None,
            }
            .to_string(),
        )
    })
    .unwrap();
    s.validate().unwrap();
    let smtp = &s.mail.smtp;
    assert_eq!(
        (smtp.host.as_deref(), smtp.port(), smtp.tls, smtp.user.as_deref()),
        (Some("smtp.sthjt.shanxi.example.cn"), 465, SmtpTls::Tls, Some("hazeflow"))
    );
    assert_eq!(smtp.password.as_ref().map(|p| p.expose()), Some("correct horse battery staple"));
    assert_eq!(s.mail.from, "应急办 <yjb@sthjt.shanxi.example.cn>");
    assert!(!format!("{s:?}").contains("battery"), "the password shows in Debug output");
}

#[test]
fn bad_mail_settings_are_named() {
    let mut s = default();
    let e = s.apply_env(|k| (k == "HAZEFLOW_SMTP_TLS").then(|| "ssl".to_string())).unwrap_err();
    assert_eq!(e.to_string(), "HAZEFLOW_SMTP_TLS=\"ssl\" is none of none, starttls, tls");
    let mut s = default();
    s.mail.smtp.host = Some("smtp.example.cn".into());
    s.mail.smtp.user = Some("u".into());
    assert!(
        s.validate()
            .unwrap_err()
            .to_string()
            .starts_with("mail.smtp.user is set but there is no password")
    );
    let mut s = default();
    s.mail.from = "not a mailbox".into();
    assert!(s.validate().unwrap_err().to_string().starts_with("mail.from:"));
    let mut s = default();
    s.mail.retry.factor = 0.5;
    assert_eq!(s.validate().unwrap_err().to_string(), "mail.retry.factor: must be 1 or more");
}

#[test]
fn the_backoff_grows_by_the_factor_up_to_its_cap() {
    let r = default().mail.retry;
    let secs: Vec<i64> = (1..=9).map(|a| r.delay_after(a).num_seconds()).collect();
    assert_eq!(secs, [30, 60, 120, 240, 480, 960, 1920, 3600, 3600]);
}

#[test]
fn the_shipped_notification_files_pass_the_check() {
    let mut s = default();
    s.playbooks = concat!(env!("CARGO_MANIFEST_DIR"), "/playbooks").into();
    s.roster = concat!(env!("CARGO_MANIFEST_DIR"), "/config/roster.yaml").into();
    let summary = hazeflow::notify::check(&s, hazeflow::domain::region::Regions::shanxi()).unwrap_or_else(|e| panic!("{e:#?}"));
    assert_eq!(
        (summary.regions, summary.routes, summary.kinds, summary.department_contacts),
        (13, 10, 26, 117),
        "{summary}"
    );
}
