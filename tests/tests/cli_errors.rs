//! Start-up failures are one clear line on stderr and a non-zero exit, not a backtrace; and
//! SIGTERM stops a gateway cleanly.

use std::process::Command;
use std::time::Duration;

use harness::{bin, Cluster};

fn one_error_line(output: &std::process::Output, program: &str, expect: &str) {
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    let lines: Vec<&str> = stderr.lines().filter(|l| !l.trim().is_empty()).collect();
    assert_eq!(lines.len(), 1, "expected one line, got:\n{stderr}");
    assert!(
        lines[0].starts_with(&format!("{program}: error: ")),
        "{stderr}"
    );
    assert!(lines[0].contains(expect), "{stderr}");
}

#[test]
fn unreachable_nats_is_one_line() {
    let port = harness::free_port();
    let out = Command::new(bin("mcpbus-gateway"))
        .args([
            "--nats",
            "nats://127.0.0.1:1",
            "--listen",
            &format!("127.0.0.1:{port}"),
            // Not the default metrics port: another gateway on this machine may hold it.
            "--metrics-listen",
            "off",
        ])
        .output()
        .unwrap();
    one_error_line(
        &out,
        "mcpbus-gateway",
        "cannot connect to NATS at nats://127.0.0.1:1",
    );
    let out = Command::new(bin("mcpbus-worker"))
        .args(["--nats", "nats://127.0.0.1:1", "demo"])
        .output()
        .unwrap();
    one_error_line(
        &out,
        "mcpbus-worker",
        "cannot connect to NATS at nats://127.0.0.1:1",
    );
}

#[test]
fn a_taken_port_is_one_line() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let out = Command::new(bin("mcpbus-gateway"))
        .args(["--listen", &addr, "--nats", "nats://127.0.0.1:1"])
        .args(["--metrics-listen", "off"])
        .output()
        .unwrap();
    one_error_line(&out, "mcpbus-gateway", &format!("cannot listen on {addr}"));
    // The metrics listener's port too.
    let out = Command::new(bin("mcpbus-gateway"))
        .args(["--nats", "nats://127.0.0.1:1", "--metrics-listen", &addr])
        .args(["--listen", &format!("127.0.0.1:{}", harness::free_port())])
        .output()
        .unwrap();
    one_error_line(&out, "mcpbus-gateway", &format!("cannot listen on {addr}"));
}

#[tokio::test(flavor = "multi_thread")]
async fn sigterm_stops_a_gateway_cleanly() {
    let mut cluster = Cluster::start(1, &[]).await.unwrap();
    cluster.gateways[0].proc.terminate();
    let status = cluster.gateways[0]
        .proc
        .wait_exit(Duration::from_secs(15))
        .expect("gateway exits after SIGTERM");
    assert!(status.success(), "exit status {status:?}");
    assert!(cluster.gateways[0].proc.log().contains("gateway stopped"));
}
