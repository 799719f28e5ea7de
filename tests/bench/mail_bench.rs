//! Delivery benchmark: how fast the outbox drains into a local SMTP sink, through the real worker
//! (claim in a transaction, render the shipped templates, send over a pool of SMTP connections,
//! record each attempt durably), next to postfix's plain load generator into the same sink.
//!
//! ```text
//! apt-get install postfix                          # smtp-sink and smtp-source; the mail server need not run
//! smtp-sink -u nobody -c 127.0.0.1:2525 1000 >/dev/null &   # accepts and discards (-u: needed as root)
//! cargo run --release --example mail_bench -- --messages 20000 --concurrency 20
//! time smtp-source -s 20 -l 4799 -m 20000 -f a@example.cn -t b@example.cn 127.0.0.1:2525
//! ```
//!
//! Options: `--messages N` (default 10000), `--smtp HOST:PORT` (default 127.0.0.1:2525),
//! `--concurrency C` (SMTP sessions in use and pooled, default 20), `--in-flight F` (messages sent and
//! not yet recorded, `mail.concurrency`: what a kill -9 could send twice; default C). The messages are queued first (not
//! timed), then the clock runs until the last is recorded as sent. It prints the message size, so that
//! `smtp-source -l` sends the same. `--transport-only`: the pool alone (one message rendered once, no
//! store), and the cost of rendering + composing one message. `--files`: `.eml` files instead of SMTP.
//!
//! The figures, with the runs, ranges and the reference of each day they were measured, are in the
//! README's Benchmarks table (the first figure written here, 79–85 % of `smtp-source`, did not
//! reproduce; the table says what did).

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use hazeflow::clock::Clock;
use hazeflow::config::{self, Settings, SmtpTls};
use hazeflow::domain::region::Regions;
use hazeflow::notify::outbox::{self, Channel, OutboxMessage, Recipient};
use hazeflow::notify::{self, deliver, templates};
use hazeflow::store::Store;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

fn arg(args: &[String], name: &str) -> Option<String> {
    args.iter().position(|a| a == name).and_then(|i| args.get(i + 1)).cloned()
}

#[tokio::main]
async fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let n: usize = arg(&args, "--messages").map(|v| v.parse()).transpose()?.unwrap_or(10_000);
    let smtp = arg(&args, "--smtp").unwrap_or_else(|| "127.0.0.1:2525".into());
    let concurrency: usize = arg(&args, "--concurrency").map(|v| v.parse()).transpose()?.unwrap_or(20);
    let (host, port) = smtp.rsplit_once(':').context("--smtp HOST:PORT")?;

    let dir = tempfile::tempdir()?;
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let mut s = Settings::parse("default", config::DEFAULT_YAML)?;
    s.data_dir = dir.path().to_path_buf();
    s.playbooks = root.join("playbooks");
    s.roster = root.join("config/roster.yaml");
    s.mail.smtp.host = (!args.iter().any(|a| a == "--files")).then(|| host.to_string());
    s.mail.smtp.port = Some(port.parse()?);
    s.mail.smtp.tls = SmtpTls::None;
    s.mail.smtp.pool_size = concurrency as u32;
    s.mail.concurrency = arg(&args, "--in-flight").map(|v| v.parse()).transpose()?.unwrap_or(concurrency);
    s.mail.rate_per_sec = 0.0;
    s.validate()?;
    let built = notify::build(&s, Regions::shanxi())?;
    let store = Store::open(&s.db_path())?;
    let clock = Clock::System;

    // One issue notice per message, as the stage queues them.
    let data = templates::sample_data("warning_issued");
    let size = {
        let t = templates::Templates::load(&notify::templates_dir(&s)).map_err(|e| anyhow::anyhow!(e.join("\n")))?;
        let r = t.render("warning_issued", &data).map_err(anyhow::Error::msg)?;
        let from = s.mail.from.parse()?;
        notify::email::compose(&from, "王芳", "wang.fang@ty.example.cn", "1-ty-wang-fang-email", clock.now(), &r)?
            .formatted()
            .len()
    };
    if args.iter().any(|a| a == "--transport-only") {
        return transport_only(&s, n, concurrency).await;
    }
    let now = clock.now();
    for chunk in (0..n).collect::<Vec<_>>().chunks(5000) {
        let msgs: Vec<OutboxMessage> = chunk
            .iter()
            .map(|i| {
                let to = Recipient {
                    key: format!("p{i}"),
                    name: "王芳".into(),
                    address: format!("duty{i}@ty.example.cn"),
                };
                OutboxMessage::new(
                    &format!("{i}-p{i}-email"),
                    Channel::Email,
                    to,
                    "warning_issued",
                    data.clone(),
                    "bench",
                    None,
                    now,
                )
            })
            .collect();
        store
            .write(move |tx| {
                for m in msgs {
                    outbox::enqueue(tx, m)?;
                }
                Ok::<_, hazeflow::store::StoreError>(())
            })
            .await?;
    }
    println!(
        "queued {n} messages of {size} bytes; delivering to {smtp} over {concurrency} SMTP sessions, {} in flight",
        s.mail.concurrency
    );

    let cancel = CancellationToken::new();
    let started = Instant::now();
    let worker = tokio::spawn(deliver::run_loop(
        built.delivery.clone(),
        store.clone(),
        clock,
        Arc::new(Notify::new()),
        cancel.clone(),
    ));
    loop {
        let (sent, failed) = store.read(|r| {
            Ok((
                r.counter("notify_sent_email")?,
                r.counter("notify_retried_email")? + r.counter("notify_failed_email")?,
            ))
        })?;
        if failed > 0 {
            cancel.cancel();
            let why = store
                .read(outbox::all_messages)?
                .into_iter()
                .find_map(|m| m.last_error)
                .unwrap_or_default();
            bail!("{failed} attempts failed (is the sink running on {smtp}?): {why}");
        }
        if sent as usize >= n {
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let secs = started.elapsed().as_secs_f64();
    cancel.cancel();
    worker.await?;
    store.close();
    println!("delivered {n} messages in {secs:.2} s: {:.0} messages/s", n as f64 / secs);
    Ok(())
}

/// The transport alone: the same message rendered once, sent `n` times over the pool by
/// `concurrency` tasks, no store. The ceiling the worker can reach.
async fn transport_only(s: &Settings, n: usize, concurrency: usize) -> Result<()> {
    let mailer = Arc::new(notify::email::Mailer::from_settings(&s.mail, &s.data_dir)?);
    let t = templates::Templates::load(&notify::templates_dir(s)).map_err(|e| anyhow::anyhow!(e.join("\n")))?;
    let r = t
        .render("warning_issued", &templates::sample_data("warning_issued"))
        .map_err(anyhow::Error::msg)?;
    let from = s.mail.from.parse()?;
    let t0 = Instant::now();
    for i in 0..2000 {
        let mut data = templates::sample_data("warning_issued");
        data["recipient"]["name"] = serde_json::json!(format!("值班员{i}"));
        let r = t.render("warning_issued", &data).map_err(anyhow::Error::msg)?;
        let _ = notify::email::compose(
            &from,
            "王芳",
            "wang.fang@ty.example.cn",
            &format!("{i}-x-email"),
            chrono::Utc::now(),
            &r,
        )?
        .formatted();
    }
    println!("render + compose: {:.0} µs per message", t0.elapsed().as_secs_f64() * 1e6 / 2000.0);
    let m = Arc::new(notify::email::compose(
        &from,
        "王芳",
        "wang.fang@ty.example.cn",
        "1-ty-wang-fang-email",
        chrono::Utc::now(),
        &r,
    )?);
    let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let started = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..concurrency {
        let (m, next, mailer) = (m.clone(), next.clone(), mailer.clone());
        tasks.spawn(async move {
            while next.fetch_add(1, std::sync::atomic::Ordering::SeqCst) < n {
                mailer.send("1-ty-wang-fang-email", &m).await?;
            }
            Ok::<(), notify::NotifyError>(())
        });
    }
    while let Some(r) = tasks.join_next().await {
        r??;
    }
    let secs = started.elapsed().as_secs_f64();
    println!("transport only: {n} messages in {secs:.2} s: {:.0} messages/s", n as f64 / secs);
    Ok(())
}
