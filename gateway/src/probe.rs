//! `mcpbus-gateway --probe`: asks a running gateway whether it is ready, for a container's
//! health check.
//!
//! The images hold no shell and no HTTP client (deploy/images/), so Docker's `HEALTHCHECK`
//! and compose's `healthcheck:` can only run the gateway's own binary. The probe takes the
//! same `--listen` (or `MCPBUS_LISTEN`) as the gateway it checks, so one environment serves
//! both. It speaks plain HTTP/1.1 over std's blocking socket: no runtime, no NATS, no
//! configuration beyond the address, so it answers in milliseconds and never starts a
//! second gateway by mistake.

use std::io::{Read, Write};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, TcpStream};
use std::time::Duration;

/// How long the whole probe may take: well under Docker's default 30 s check timeout, and
/// enough for a gateway on a loaded machine.
const PROBE_TIMEOUT: Duration = Duration::from_secs(3);

/// Why the gateway is not ready, as the probe saw it.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ProbeError {
    #[error("no answer from {addr}: {source}")]
    Unreachable {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("{addr} answered /readyz with {status_line:?}")]
    NotReady {
        addr: SocketAddr,
        status_line: String,
    },
}

/// The address to probe for a gateway listening on `listen`: an unspecified address
/// (`0.0.0.0`, `::`) is reached through loopback, from inside the same container.
pub fn target(listen: SocketAddr) -> SocketAddr {
    let ip = match listen.ip() {
        IpAddr::V4(ip) if ip.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
        IpAddr::V6(ip) if ip.is_unspecified() => IpAddr::V6(Ipv6Addr::LOCALHOST),
        ip => ip,
    };
    SocketAddr::new(ip, listen.port())
}

/// `GET /readyz` on the gateway listening on `listen`; `Ok` when it answered 200.
pub fn ready(listen: SocketAddr) -> Result<(), ProbeError> {
    let addr = target(listen);
    let unreachable = |source| ProbeError::Unreachable { addr, source };
    let mut stream = TcpStream::connect_timeout(&addr, PROBE_TIMEOUT).map_err(unreachable)?;
    stream
        .set_read_timeout(Some(PROBE_TIMEOUT))
        .map_err(unreachable)?;
    stream
        .set_write_timeout(Some(PROBE_TIMEOUT))
        .map_err(unreachable)?;
    // The Host header names loopback, which the gateway's Host check always accepts.
    let request = format!(
        "GET /readyz HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n\r\n",
        host_header(addr)
    );
    stream.write_all(request.as_bytes()).map_err(unreachable)?;
    // The status line is all that matters; 64 bytes hold it whole.
    let mut head = [0u8; 64];
    let mut read = 0;
    while read < head.len() {
        match stream.read(&mut head[read..]).map_err(unreachable)? {
            0 => break,
            n => read += n,
        }
        if head[..read].contains(&b'\n') {
            break;
        }
    }
    let text = String::from_utf8_lossy(&head[..read]);
    let status_line = text.lines().next().unwrap_or_default().to_owned();
    if status_line.split(' ').nth(1) == Some("200") {
        Ok(())
    } else {
        Err(ProbeError::NotReady { addr, status_line })
    }
}

fn host_header(addr: SocketAddr) -> String {
    match addr.ip() {
        IpAddr::V6(ip) => format!("[{ip}]:{}", addr.port()),
        IpAddr::V4(ip) => format!("{ip}:{}", addr.port()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::TcpListener;

    /// A one-shot server answering the first request with `status_line`.
    fn answering(status_line: &'static str) -> SocketAddr {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        std::thread::spawn(move || {
            let (mut conn, _) = listener.accept().unwrap();
            let mut buf = [0u8; 1024];
            let n = conn.read(&mut buf).unwrap();
            let request = String::from_utf8_lossy(&buf[..n]).to_string();
            assert!(request.starts_with("GET /readyz HTTP/1.1\r\n"), "{request}");
            let body = format!("{status_line}\r\ncontent-length: 0\r\n\r\n");
            conn.write_all(body.as_bytes()).unwrap();
        });
        addr
    }

    #[test]
    fn a_gateway_answering_200_is_ready() {
        assert!(ready(answering("HTTP/1.1 200 OK")).is_ok());
    }

    #[test]
    fn a_gateway_answering_503_is_not_ready() {
        let err = ready(answering("HTTP/1.1 503 Service Unavailable")).unwrap_err();
        assert!(matches!(err, ProbeError::NotReady { .. }), "{err}");
    }

    #[test]
    fn nothing_listening_is_not_ready() {
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let err = ready(SocketAddr::from(([127, 0, 0, 1], port))).unwrap_err();
        assert!(matches!(err, ProbeError::Unreachable { .. }), "{err}");
    }

    #[test]
    fn an_unspecified_listen_address_is_probed_on_loopback() {
        assert_eq!(
            target("0.0.0.0:8080".parse().unwrap()),
            "127.0.0.1:8080".parse().unwrap()
        );
        assert_eq!(
            target("[::]:8080".parse().unwrap()),
            "[::1]:8080".parse().unwrap()
        );
        assert_eq!(
            target("10.0.0.5:80".parse().unwrap()),
            "10.0.0.5:80".parse().unwrap()
        );
    }
}
