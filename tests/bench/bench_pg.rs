//! Benchmark: the embedded store and PostgreSQL side by side, in one run on one machine.
//!
//! ```sh
//! cargo build --release --example bench_pg --example bench_assign --example bench_ack
//! target/release/examples/bench_pg [ENTERPRISES] [ACK_ASSIGNMENTS] [RUNS]   # default 300000 100000 3
//! target/release/examples/bench_pg 0 30000 5    # acknowledgements only, five runs
//! ```
//!
//! It starts a PostgreSQL cluster of its own (Debian's `postgresql` package; `initdb` into a
//! temporary folder under `target/`, on loopback) with PostgreSQL's durable defaults — `fsync`,
//! `synchronous_commit` and `full_page_writes` on — and then, RUNS times, alternating the order:
//! `bench_assign ENTERPRISES 42` on an embedded file and on a fresh PostgreSQL database (red over
//! every province: the time until every assignment is durable, then the notice fan-outs), and
//! `bench_ack ACK_ASSIGNMENTS 64` on each (durable acknowledgements over HTTP at 64 clients). Each
//! benchmark runs as its own process, the release build beside this one (`target/release/examples/`).
//! With ENTERPRISES 0 the assignment benchmark is left out.
//!
//! The reference, in each run on the same cluster: PostgreSQL's own `pgbench -b simple-update` (a
//! transaction of one UPDATE, one SELECT and one INSERT, as each acknowledgement is one durable
//! transaction's worth of work) at 64 clients for 10 s, scale 10. It prints every run's figures, then
//! the medians, ranges and the ratios PostgreSQL / embedded and hazeflow on PostgreSQL / pgbench.

use std::process::Command;

/// The tests' cluster helper (it asks its parent module for a free port).
#[path = "../common/pg.rs"]
#[allow(dead_code)]
mod pg;

/// A free port on 127.0.0.1.
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// Runs one example (built beside this one); its output, echoed.
fn example(name: &str, args: &[String]) -> anyhow::Result<String> {
    let exe = std::env::current_exe()?.with_file_name(name);
    anyhow::ensure!(
        exe.exists(),
        "{} is not built: cargo build --release --example bench_pg --example bench_assign --example bench_ack",
        exe.display()
    );
    let out = Command::new(&exe).args(args).output()?;
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    print!("{text}");
    anyhow::ensure!(
        out.status.success(),
        "{name} {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(text)
}

/// The number after `label` up to `unit` on the line starting with `line` (`"red over"`, `"in "`,
/// `"s ("`): a duration in seconds or milliseconds, or a rate.
fn figure(text: &str, line: &str, after: &str) -> Option<f64> {
    let l = text.lines().find(|l| l.starts_with(line))?;
    let rest = &l[l.find(after)? + after.len()..];
    let num: String = rest.chars().take_while(|c| c.is_ascii_digit() || *c == '.').collect();
    let value: f64 = num.parse().ok()?;
    let unit = &rest[num.len()..];
    Some(if unit.starts_with("ms") {
        value / 1000.0
    } else if unit.starts_with("µs") {
        value / 1e6
    } else {
        value
    })
}

fn summary(name: &str, values: &[f64]) -> String {
    let mut v = values.to_vec();
    v.sort_by(|a, b| a.total_cmp(b));
    if v.is_empty() {
        return format!("{name}: no figure");
    }
    let median = if v.len() % 2 == 1 {
        v[v.len() / 2]
    } else {
        (v[v.len() / 2 - 1] + v[v.len() / 2]) / 2.0
    };
    format!(
        "{name}: median {median:.3}, range {:.3}–{:.3} over {} runs",
        v[0],
        v[v.len() - 1],
        v.len()
    )
}

fn median(values: &[f64]) -> f64 {
    let mut v = values.to_vec();
    v.sort_by(|a, b| a.total_cmp(b));
    if v.is_empty() { f64::NAN } else { v[v.len() / 2] }
}

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let enterprises: usize = args.get(1).and_then(|a| a.parse().ok()).unwrap_or(300_000);
    let acks: usize = args.get(2).and_then(|a| a.parse().ok()).unwrap_or(100_000);
    let runs: usize = args.get(3).and_then(|a| a.parse().ok()).unwrap_or(3);
    let target = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("target");
    std::fs::create_dir_all(&target)?;
    let cluster = pg::PgCluster::start_durable(&target);
    println!(
        "PostgreSQL on 127.0.0.1:{} (fsync, synchronous_commit, full_page_writes on)",
        cluster.port
    );

    // (durable seconds, start fan-out seconds, acks/s, ack p99 seconds) per store.
    let mut embedded: Vec<[Option<f64>; 4]> = Vec::new();
    let mut postgres: Vec<[Option<f64>; 4]> = Vec::new();
    let mut pgbench_tps: Vec<f64> = Vec::new();
    let pgbench = cluster.program("pgbench");
    let reference = cluster.database("pgbench_reference");
    let init = Command::new(&pgbench).args(["-i", "-s", "10", "-q", &reference]).output()?;
    anyhow::ensure!(
        init.status.success(),
        "pgbench -i failed: {}",
        String::from_utf8_lossy(&init.stderr)
    );
    for run in 0..runs {
        let out = Command::new(&pgbench)
            .args(["-c", "64", "-j", "2", "-T", "10", "-b", "simple-update", &reference])
            .output()?;
        let text = String::from_utf8_lossy(&out.stdout);
        let tps = text
            .lines()
            .find_map(|l| l.strip_prefix("tps = "))
            .and_then(|r| r.split(' ').next())
            .and_then(|n| n.parse::<f64>().ok());
        match tps {
            Some(t) => {
                println!("== run {} of {runs}: pgbench simple-update, 64 clients: {t:.0} tps", run + 1);
                pgbench_tps.push(t);
            }
            None => println!("pgbench gave no figure: {text}{}", String::from_utf8_lossy(&out.stderr)),
        }
        for pg_first in [run % 2 == 1] {
            let order = if pg_first { [true, false] } else { [false, true] };
            for on_pg in order {
                let mut assign_args = vec![enterprises.to_string(), "42".to_string()];
                let mut ack_args = vec![acks.to_string(), "64".to_string()];
                if on_pg {
                    for (what, a) in [("assign", &mut assign_args), ("ack", &mut ack_args)] {
                        a.push("--store".into());
                        a.push(cluster.database(&format!("bench_{what}_{run}")));
                    }
                }
                let which = if on_pg { "postgres" } else { "embedded" };
                println!("== run {} of {runs}: {which}", run + 1);
                let a = if enterprises > 0 {
                    example("bench_assign", &assign_args)?
                } else {
                    String::new()
                };
                let k = example("bench_ack", &ack_args)?;
                let row = [
                    figure(&a, "red over", "durable in "),
                    figure(&a, "start fan-out:", "messages in "),
                    figure(&k, &format!("{acks} acks"), ": ").or_else(|| {
                        k.lines()
                            .find(|l| l.contains("durable acks/s"))
                            .and_then(|l| l.split(": ").nth(1))
                            .and_then(|r| r.split(' ').next())
                            .and_then(|n| n.parse().ok())
                    }),
                    figure(&k, &format!("{acks} acks"), "p99 "),
                ];
                if on_pg { postgres.push(row) } else { embedded.push(row) }
            }
        }
    }
    println!("\n== summary ({enterprises} enterprises, {acks} acknowledgements at 64 clients)");
    let names = ["assignments durable (s)", "start fan-out (s)", "durable acks/s", "ack p99 (s)"];
    for (i, name) in names.iter().enumerate() {
        let e: Vec<f64> = embedded.iter().filter_map(|r| r[i]).collect();
        let p: Vec<f64> = postgres.iter().filter_map(|r| r[i]).collect();
        println!("{}", summary(&format!("{name}, embedded"), &e));
        println!("{}", summary(&format!("{name}, postgres"), &p));
        println!("  ratio postgres / embedded (medians): {:.2}", median(&p) / median(&e));
    }
    println!("{}", summary("pgbench simple-update tps (reference)", &pgbench_tps));
    let p_acks: Vec<f64> = postgres.iter().filter_map(|r| r[2]).collect();
    println!(
        "  ratio hazeflow acks/s on postgres / pgbench tps (medians): {:.2}",
        median(&p_acks) / median(&pgbench_tps)
    );
    Ok(())
}
