//! `mcpbus-bench direct`: issue 18's P1 and P1s. The same `tools/call echo` load against a
//! direct rmcp echo server (`direct_server.rs`, its own process) and against the cluster
//! (gateway → JetStream → demo worker) on both lanes, alternating target by target within
//! each round, so that every ratio compares runs taken seconds apart on the same machine.
//!
//! Per run it reports throughput, p50 and p99 (from the load generator), and the CPU time of
//! every process of the target from `/proc/<pid>/stat` (utime + stime, all threads, nats-server
//! included), divided by the calls made. It also reports what the load generator and every
//! other process on the machine used meanwhile (`/proc/stat`), which is how noisy the run was.
//!
//! The load generator is `wrk` (HTTP/1.1 keep-alive, one Lua script per target) when it is on
//! PATH, else this binary's own client (reqwest, keep-alive, every response checked).
//! With `--perf-dir`, each target is then sampled with `perf record -e cpu-clock` under load.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{bail, ensure, Context, Result};
use clap::{Parser, ValueEnum};
use harness::mcp::{modern_meta, Session, ACCEPT_BOTH, MODERN};
use harness::{free_port, Cluster, Proc, DEMO_TOOLS};
use serde_json::{json, Value};

#[derive(Parser)]
pub struct Args {
    /// Seconds per measured run.
    #[arg(long, default_value_t = 5)]
    secs: u64,
    /// Rounds; each round runs every target once at every connection count.
    #[arg(long, default_value_t = 3)]
    rounds: usize,
    /// Connection counts (HTTP/1.1 keep-alive, one call in flight on each).
    #[arg(long, value_delimiter = ',', default_value = "32,1")]
    connections: Vec<usize>,
    /// Load generator.
    #[arg(long, value_enum, default_value_t = Load::Auto)]
    load: Load,
    /// After the rounds, sample every target's processes with `perf record -e cpu-clock`
    /// under load at `--perf-connections`, one `<target>.data` file each in this folder.
    #[arg(long)]
    perf_dir: Option<PathBuf>,
    /// Seconds of load per target under `perf record`.
    #[arg(long, default_value_t = 10)]
    perf_secs: u64,
    /// Connections while sampling with `perf record`.
    #[arg(long, default_value_t = 32)]
    perf_connections: usize,
    /// Let the gateway answer calls as SSE streams (its default) instead of one JSON body
    /// (`--json-tool-calls`, what the direct server does).
    #[arg(long)]
    sse: bool,
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Load {
    /// wrk when it is on PATH, else `rust`.
    Auto,
    Wrk,
    Rust,
}

/// One system under test and the request it is sent.
#[derive(Clone)]
struct Target {
    name: &'static str,
    /// File-name stem for `--perf-dir`.
    slug: &'static str,
    url: String,
    headers: Vec<(String, String)>,
    body: String,
    /// Every process whose CPU time counts for this target.
    procs: Vec<(&'static str, u32)>,
}

/// What one run measured.
struct Run {
    calls: u64,
    per_sec: f64,
    p50_ms: f64,
    p99_ms: f64,
    /// CPU µs per call of each of the target's processes, in `Target::procs` order.
    cpu_us: Vec<f64>,
    loadgen_us: f64,
    /// Cores busy with anything else (other builds, the benchmark's idle processes).
    other_cores: f64,
}

impl Run {
    fn cpu_total_us(&self) -> f64 {
        self.cpu_us.iter().sum()
    }
}

/// Sampling rate of `perf record`: one sample per this many per second of CPU.
const PERF_HZ: u32 = 4999;

/// `/proc` reports CPU time in clock ticks of `USER_HZ`, 100 on Linux everywhere.
const TICKS_PER_SEC: f64 = 100.0;

pub async fn run(args: Args) -> Result<()> {
    let load = match args.load {
        Load::Auto if which("wrk") => Load::Wrk,
        Load::Auto => Load::Rust,
        l => l,
    };
    let mut cluster = Cluster::start(0, &[]).await?;
    let mut gateway_args = if args.sse {
        vec![]
    } else {
        vec!["--json-tool-calls"]
    };
    gateway_args.extend(harness::LOAD_FROM_LOOPBACK);
    cluster.add_gateway(&gateway_args).await?;
    let worker = cluster.add_worker(&["demo", "--max-in-flight", "64"])?;
    cluster
        .wait_for_tools(&DEMO_TOOLS, Duration::from_secs(20))
        .await?;
    let (direct, direct_url) = start_direct_server(cluster.dir.path())?;
    let gateway = cluster.gateway_urls()[0].clone();
    let cluster_procs = vec![
        ("gateway", cluster.gateways[0].proc.pid()),
        ("nats-server", cluster.nats.node(0).proc.pid()),
        ("worker", cluster.workers[worker].pid()),
    ];

    let echo = json!({"name": "echo", "arguments": {"text": "hello"}});
    let mut stateless_params = echo.clone();
    stateless_params["_meta"] = modern_meta();
    let session = Session::open(&gateway, "2025-11-25").await?;
    let headers = |extra: &[(&str, &str)]| {
        let mut h = vec![
            ("content-type".to_owned(), "application/json".to_owned()),
            ("accept".to_owned(), ACCEPT_BOTH.to_owned()),
        ];
        h.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
        h
    };
    let stateless_headers = headers(&[
        ("mcp-protocol-version", MODERN),
        ("mcp-method", "tools/call"),
        ("mcp-name", "echo"),
    ]);
    let targets = [
        Target {
            name: "direct rmcp server (stateless, JSON)",
            slug: "direct",
            url: direct_url,
            headers: stateless_headers.clone(),
            body: rpc(&stateless_params),
            procs: vec![("direct server", direct.pid())],
        },
        Target {
            name: "mcpbus stateless lane (2026-07-28)",
            slug: "stateless",
            url: gateway.clone(),
            headers: stateless_headers,
            body: rpc(&stateless_params),
            procs: cluster_procs.clone(),
        },
        Target {
            name: "mcpbus session lane (2025-11-25)",
            slug: "session",
            url: gateway.clone(),
            headers: headers(&[
                ("mcp-session-id", &session.id),
                ("mcp-protocol-version", "2025-11-25"),
            ]),
            body: rpc(&echo),
            procs: cluster_procs,
        },
    ];
    let scripts = tempfile::tempdir()?;
    for t in &targets {
        check_one(t).await.with_context(|| t.name)?;
        if load == Load::Wrk {
            write_wrk_script(t, scripts.path())?;
        }
    }
    let max_conns = *args
        .connections
        .iter()
        .max()
        .context("no connection count")?;
    for t in &targets {
        drive(load, t, max_conns, 1, scripts.path()).await?; // warm-up
    }

    println!(
        "Load generator: {}; {} s per run; {} rounds.\n",
        if load == Load::Wrk {
            "wrk"
        } else {
            "mcpbus-bench (reqwest)"
        },
        args.secs,
        args.rounds
    );
    println!("| Round | Target | Conns | Calls | Calls/s | p50 (ms) | p99 (ms) | CPU/call (µs) | of which | Load generator (µs/call) | Other load (cores) |");
    println!("|---|---|---|---|---|---|---|---|---|---|---|");
    // runs[target][conns index] = one Run per round.
    let mut runs: Vec<Vec<Vec<Run>>> = targets
        .iter()
        .map(|_| args.connections.iter().map(|_| Vec::new()).collect())
        .collect();
    for round in 1..=args.rounds {
        for (ci, &conns) in args.connections.iter().enumerate() {
            for (ti, t) in targets.iter().enumerate() {
                let r = drive(load, t, conns, args.secs, scripts.path()).await?;
                let of_which = t
                    .procs
                    .iter()
                    .zip(&r.cpu_us)
                    .map(|((n, _), us)| format!("{n} {us:.0}"))
                    .collect::<Vec<_>>()
                    .join(", ");
                println!(
                    "| {round} | {} | {conns} | {} | {:.0} | {:.3} | {:.3} | {:.1} | {of_which} | {:.1} | {:.2} |",
                    t.name,
                    r.calls,
                    r.per_sec,
                    r.p50_ms,
                    r.p99_ms,
                    r.cpu_total_us(),
                    r.loadgen_us,
                    r.other_cores
                );
                runs[ti][ci].push(r);
            }
        }
    }
    summarize(&targets, &args.connections, &runs);

    if let Some(dir) = &args.perf_dir {
        std::fs::create_dir_all(dir)?;
        println!("\n| perf record (cpu-clock) | Conns | Calls | Calls/s | File |");
        println!("|---|---|---|---|---|");
        for t in &targets {
            let file = dir.join(format!("{}.data", t.slug));
            let pids = t
                .procs
                .iter()
                .map(|(_, p)| p.to_string())
                .collect::<Vec<_>>()
                .join(",");
            let mut perf = std::process::Command::new("perf")
                .args(["record", "-e", "cpu-clock", "-g", "-p", &pids])
                .arg(format!("-F{PERF_HZ}"))
                .arg("-o")
                .arg(&file)
                .args(["--", "sleep", &(args.perf_secs + 1).to_string()])
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::null())
                .spawn()
                .context("perf record")?;
            tokio::time::sleep(Duration::from_millis(500)).await;
            let r = drive(
                load,
                t,
                args.perf_connections,
                args.perf_secs,
                scripts.path(),
            )
            .await?;
            perf.wait()?;
            // What tests/perf/breakdown.py needs to turn samples into µs per call.
            let procs: serde_json::Map<String, Value> = t
                .procs
                .iter()
                .map(|(n, p)| (n.to_string(), json!(p)))
                .collect();
            std::fs::write(
                dir.join(format!("{}.json", t.slug)),
                json!({"calls": r.calls, "freq": PERF_HZ, "procs": procs}).to_string(),
            )?;
            println!(
                "| {} | {} | {} | {:.0} | {} |",
                t.name,
                args.perf_connections,
                r.calls,
                r.per_sec,
                file.display()
            );
        }
    }
    drop(direct);
    Ok(())
}

/// Medians over the rounds, and each cluster target against the direct server (target 0).
fn summarize(targets: &[Target], connections: &[usize], runs: &[Vec<Vec<Run>>]) {
    let med = |ti: usize, ci: usize, f: &dyn Fn(&Run) -> f64| {
        let mut v: Vec<f64> = runs[ti][ci].iter().map(f).collect();
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    println!("\nMedians over the rounds (ratio and added latency against the direct server):\n");
    println!("| Target | Conns | Calls/s | × direct | p50 (ms) | added p50 | p99 (ms) | added p99 | CPU/call (µs) | × direct | Other load (cores) |");
    println!("|---|---|---|---|---|---|---|---|---|---|---|");
    for (ti, t) in targets.iter().enumerate() {
        for (ci, conns) in connections.iter().enumerate() {
            let rate = med(ti, ci, &|r| r.per_sec);
            let p50 = med(ti, ci, &|r| r.p50_ms);
            let p99 = med(ti, ci, &|r| r.p99_ms);
            let cpu = med(ti, ci, &Run::cpu_total_us);
            println!(
                "| {} | {conns} | {rate:.0} | {:.3} | {p50:.3} | {:+.3} | {p99:.3} | {:+.3} | {cpu:.1} | {:.2} | {:.2} |",
                t.name,
                rate / med(0, ci, &|r| r.per_sec),
                p50 - med(0, ci, &|r| r.p50_ms),
                p99 - med(0, ci, &|r| r.p99_ms),
                cpu / med(0, ci, &Run::cpu_total_us),
                med(ti, ci, &|r| r.other_cores),
            );
        }
    }
}

fn rpc(params: &Value) -> String {
    json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": params}).to_string()
}

/// Starts `mcpbus-bench direct-server` (this binary) on a free port.
fn start_direct_server(dir: &Path) -> Result<(Proc, String)> {
    let port = free_port();
    let proc = Proc::spawn(
        "direct-server",
        std::process::Command::new(std::env::current_exe()?).args([
            "direct-server",
            "--listen",
            &format!("127.0.0.1:{port}"),
        ]),
        dir,
    )?;
    harness::wait_for_port(port, Duration::from_secs(10))?;
    Ok((proc, format!("http://127.0.0.1:{port}/mcp")))
}

/// One call, its answer checked, before any load: wrk only counts HTTP errors.
async fn check_one(t: &Target) -> Result<()> {
    let body = call(&reqwest::Client::new(), t).await?;
    ensure!(
        body["result"]["content"][0]["text"] == "hello",
        "bad response: {body}"
    );
    Ok(())
}

async fn call(http: &reqwest::Client, t: &Target) -> Result<Value> {
    let mut req = http.post(&t.url).body(t.body.clone());
    for (k, v) in &t.headers {
        req = req.header(k, v);
    }
    let resp = req.send().await?;
    ensure!(resp.status().is_success(), "HTTP {}", resp.status());
    let text = resp.text().await?;
    // An SSE answer (`--sse`): the response is the last `data:` line.
    let json = match text
        .lines()
        .filter_map(|l| l.strip_prefix("data:"))
        .next_back()
    {
        Some(data) if !text.starts_with('{') => data.trim(),
        _ => &text,
    };
    Ok(serde_json::from_str(json)?)
}

/// Runs `conns` connections against `t` for `secs` and reads the CPU every process used.
async fn drive(load: Load, t: &Target, conns: usize, secs: u64, scripts: &Path) -> Result<Run> {
    let procs_before: Vec<u64> = t
        .procs
        .iter()
        .map(|(_, p)| proc_ticks(&format!("/proc/{p}/stat")).map(|(own, _)| own))
        .collect::<Result<_>>()?;
    let (self_before, children_before) = proc_ticks("/proc/self/stat")?;
    let machine_before = machine_busy_ticks()?;
    let (calls, elapsed, p50_ms, p99_ms) = match load {
        Load::Wrk => wrk(t, conns, secs, scripts).await?,
        _ => own_client(t, conns, secs).await?,
    };
    let machine = machine_busy_ticks()? - machine_before;
    let (self_after, children_after) = proc_ticks("/proc/self/stat")?;
    let mut cpu_us = Vec::new();
    let mut target_ticks = 0;
    for ((_, p), before) in t.procs.iter().zip(procs_before) {
        let ticks = proc_ticks(&format!("/proc/{p}/stat"))?.0 - before;
        target_ticks += ticks;
        cpu_us.push(ticks as f64 / TICKS_PER_SEC * 1e6 / calls as f64);
    }
    let loadgen = (self_after - self_before) + (children_after - children_before);
    let other = machine.saturating_sub(target_ticks + loadgen);
    Ok(Run {
        calls,
        per_sec: calls as f64 / elapsed,
        p50_ms,
        p99_ms,
        cpu_us,
        loadgen_us: loadgen as f64 / TICKS_PER_SEC * 1e6 / calls as f64,
        other_cores: other as f64 / TICKS_PER_SEC / elapsed,
    })
}

/// (utime + stime, cutime + cstime) of a process, in ticks.
fn proc_ticks(path: &str) -> Result<(u64, u64)> {
    let stat = std::fs::read_to_string(path).with_context(|| path.to_owned())?;
    // Fields after the command name, which is in parentheses and may hold spaces.
    let rest = &stat[stat.rfind(')').context("malformed stat")? + 2..];
    let f: Vec<u64> = rest
        .split_whitespace()
        .skip(11)
        .take(4)
        .map(str::parse)
        .collect::<Result<_, _>>()?;
    Ok((f[0] + f[1], f[2] + f[3]))
}

/// Busy ticks of the whole machine (all CPUs; everything but idle and iowait).
fn machine_busy_ticks() -> Result<u64> {
    let stat = std::fs::read_to_string("/proc/stat")?;
    let line = stat.lines().next().context("empty /proc/stat")?;
    let v: Vec<u64> = line
        .split_whitespace()
        .skip(1)
        .map(str::parse)
        .collect::<Result<_, _>>()?;
    Ok(v.iter().take(8).sum::<u64>() - v[3] - v[4])
}

fn which(bin: &str) -> bool {
    std::env::var_os("PATH")
        .is_some_and(|p| std::env::split_paths(&p).any(|d| d.join(bin).is_file()))
}

/// The request of `t` as a wrk Lua script; `done` prints the figures on one line.
fn write_wrk_script(t: &Target, dir: &Path) -> Result<()> {
    let body = dir.join(format!("{}.json", t.slug));
    std::fs::write(&body, &t.body)?;
    let mut lua = format!(
        "local f = assert(io.open({:?}, \"rb\"))\nwrk.body = f:read(\"*a\")\nf:close()\nwrk.method = \"POST\"\n",
        body.to_str().context("utf-8 temp path")?
    );
    for (k, v) in &t.headers {
        lua += &format!("wrk.headers[{k:?}] = {v:?}\n");
    }
    lua += r#"
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format("MCPBUS %d %d %d %d %d\n", summary.requests, summary.duration,
    latency:percentile(50.0), latency:percentile(99.0),
    e.connect + e.read + e.write + e.status + e.timeout))
end
"#;
    std::fs::write(dir.join(format!("{}.lua", t.slug)), lua)?;
    Ok(())
}

/// (calls, seconds, p50 ms, p99 ms) from one wrk run.
async fn wrk(t: &Target, conns: usize, secs: u64, scripts: &Path) -> Result<(u64, f64, f64, f64)> {
    let out = tokio::process::Command::new("wrk")
        .arg(format!("-t{}", conns.min(2)))
        .arg(format!("-c{conns}"))
        .arg(format!("-d{secs}s"))
        .arg("-s")
        .arg(scripts.join(format!("{}.lua", t.slug)))
        .arg(&t.url)
        .output()
        .await
        .context("running wrk")?;
    let text = String::from_utf8_lossy(&out.stdout);
    let Some(line) = text.lines().find_map(|l| l.strip_prefix("MCPBUS ")) else {
        bail!(
            "wrk printed no figures: {text}{}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    let v: Vec<u64> = line
        .split_whitespace()
        .map(str::parse)
        .collect::<Result<_, _>>()?;
    ensure!(v[4] == 0, "{}: wrk saw {} errors", t.name, v[4]);
    Ok((
        v[0],
        v[1] as f64 / 1e6,
        v[2] as f64 / 1e3,
        v[3] as f64 / 1e3,
    ))
}

/// The same load from this process: `conns` keep-alive connections, each calling in a loop
/// until `secs` are over; every answer is checked.
async fn own_client(t: &Target, conns: usize, secs: u64) -> Result<(u64, f64, f64, f64)> {
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(conns)
        .build()?;
    let started = Instant::now();
    let until = started + Duration::from_secs(secs);
    let mut tasks = Vec::new();
    for _ in 0..conns {
        let http = http.clone();
        let t = t.clone();
        tasks.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            while Instant::now() < until {
                let t0 = Instant::now();
                let body = call(&http, &t).await?;
                ensure!(
                    body["result"]["content"][0]["text"] == "hello",
                    "bad response: {body}"
                );
                latencies.push(t0.elapsed());
            }
            Ok::<_, anyhow::Error>(latencies)
        }));
    }
    let mut all = Vec::new();
    for task in tasks {
        all.extend(task.await.context("call task")??);
    }
    let elapsed = started.elapsed().as_secs_f64();
    all.sort();
    Ok((
        all.len() as u64,
        elapsed,
        crate::echo::percentile_ms(&all, 0.50),
        crate::echo::percentile_ms(&all, 0.99),
    ))
}
