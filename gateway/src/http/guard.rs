//! Transport checks that come before any JSON is read: DNS-rebinding protection (Host and
//! Origin), and the media types the MCP Streamable HTTP transport requires.

use axum::http::{header, HeaderMap, StatusCode};

use super::wire::McpError;
use bus_schema::mcp::code;

/// Checks `Host` and `Origin` against the configured allow-lists.
pub fn check_host_and_origin(
    headers: &HeaderMap,
    allowed_hosts: &[String],
    allowed_origins: &[String],
) -> Result<(), McpError> {
    if !allows_any(allowed_hosts) {
        let host = headers
            .get(header::HOST)
            .and_then(|h| h.to_str().ok())
            .unwrap_or("");
        let name = strip_port(host);
        if !allowed_hosts.iter().any(|a| a.eq_ignore_ascii_case(name)) {
            // 421: the request reached a server that does not serve this host name, which is
            // what a DNS-rebinding page looks like from here.
            return Err(McpError::new(
                StatusCode::MISDIRECTED_REQUEST,
                code::INVALID_REQUEST,
                format!("Host {host:?} is not allowed (see --allowed-hosts)"),
            ));
        }
    }
    if let Some(origin) = headers.get(header::ORIGIN) {
        let origin = origin.to_str().unwrap_or("");
        if !allows_any(allowed_origins) && !origin_allowed(origin, allowed_origins) {
            return Err(McpError::new(
                StatusCode::FORBIDDEN,
                code::INVALID_REQUEST,
                format!("Origin {origin:?} is not allowed (see --allowed-origins)"),
            ));
        }
    }
    Ok(())
}

fn allows_any(list: &[String]) -> bool {
    list.iter().any(|a| a == "*")
}

/// `host:port` → `host`, keeping IPv6 brackets (`[::1]:8080` → `[::1]`).
fn strip_port(host: &str) -> &str {
    if host.starts_with('[') {
        return host.find(']').map_or(host, |end| &host[..=end]);
    }
    match host.rsplit_once(':') {
        Some((name, port)) if port.bytes().all(|b| b.is_ascii_digit()) => name,
        _ => host,
    }
}

/// An allow-list entry is either a full origin (`https://app.example.com`) or a bare host
/// name that matches it under any scheme and port.
fn origin_allowed(origin: &str, allowed: &[String]) -> bool {
    let host = origin
        .split_once("://")
        .map(|(_, rest)| strip_port(rest.trim_end_matches('/')))
        .unwrap_or("");
    allowed.iter().any(|a| {
        if a.contains("://") {
            a.trim_end_matches('/')
                .eq_ignore_ascii_case(origin.trim_end_matches('/'))
        } else {
            !host.is_empty() && a.eq_ignore_ascii_case(host)
        }
    })
}

/// POST bodies must be JSON (415 otherwise).
pub fn check_content_type(headers: &HeaderMap) -> Result<(), McpError> {
    let ct = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let media = ct.split(';').next().unwrap_or("").trim();
    if media.eq_ignore_ascii_case("application/json") {
        Ok(())
    } else {
        Err(McpError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            code::INVALID_REQUEST,
            format!("Unsupported Media Type: Content-Type must be application/json, got {ct:?}"),
        ))
    }
}

/// What the client's `Accept` header admits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Accepts {
    pub json: bool,
    pub sse: bool,
}

pub fn accepts(headers: &HeaderMap) -> Accepts {
    let mut out = Accepts {
        json: false,
        sse: false,
    };
    for value in headers.get_all(header::ACCEPT) {
        for item in value.to_str().unwrap_or("").split(',') {
            let media = item
                .split(';')
                .next()
                .unwrap_or("")
                .trim()
                .to_ascii_lowercase();
            match media.as_str() {
                "*/*" => (out.json, out.sse) = (true, true),
                "application/json" | "application/*" => out.json = true,
                "text/event-stream" | "text/*" => out.sse = true,
                _ => {}
            }
        }
    }
    out
}

/// A POST must accept both JSON and SSE responses (406 otherwise).
pub fn check_post_accept(headers: &HeaderMap) -> Result<(), McpError> {
    let a = accepts(headers);
    if a.json && a.sse {
        Ok(())
    } else {
        Err(McpError::new(
            StatusCode::NOT_ACCEPTABLE,
            code::INVALID_REQUEST,
            "Not Acceptable: Accept must list both application/json and text/event-stream",
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn loopback() -> Vec<String> {
        vec!["localhost".into(), "127.0.0.1".into(), "[::1]".into()]
    }

    fn headers(pairs: &[(header::HeaderName, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(k.clone(), HeaderValue::from_str(v).unwrap());
        }
        h
    }

    #[test]
    fn loopback_hosts_pass_and_others_get_421() {
        for ok in ["127.0.0.1:8080", "localhost", "[::1]:9"] {
            assert!(
                check_host_and_origin(&headers(&[(header::HOST, ok)]), &loopback(), &loopback())
                    .is_ok(),
                "{ok}"
            );
        }
        let err = check_host_and_origin(
            &headers(&[(header::HOST, "evil.example:8080")]),
            &loopback(),
            &loopback(),
        )
        .unwrap_err();
        assert_eq!(err.status, StatusCode::MISDIRECTED_REQUEST);
        assert!(check_host_and_origin(
            &headers(&[(header::HOST, "x")]),
            &["*".into()],
            &loopback()
        )
        .is_ok());
    }

    #[test]
    fn foreign_origins_get_403() {
        let h = headers(&[
            (header::HOST, "localhost"),
            (header::ORIGIN, "https://evil.example"),
        ]);
        assert_eq!(
            check_host_and_origin(&h, &loopback(), &loopback())
                .unwrap_err()
                .status,
            StatusCode::FORBIDDEN
        );
        let h = headers(&[
            (header::HOST, "localhost"),
            (header::ORIGIN, "http://localhost:5173"),
        ]);
        assert!(check_host_and_origin(&h, &loopback(), &loopback()).is_ok());
        let h = headers(&[(header::HOST, "localhost"), (header::ORIGIN, "null")]);
        assert!(check_host_and_origin(&h, &loopback(), &loopback()).is_err());
        let exact = vec!["https://app.example.com".to_string()];
        let h = headers(&[
            (header::HOST, "localhost"),
            (header::ORIGIN, "https://app.example.com"),
        ]);
        assert!(check_host_and_origin(&h, &loopback(), &exact).is_ok());
    }

    #[test]
    fn accept_and_content_type() {
        assert!(check_post_accept(&headers(&[(
            header::ACCEPT,
            "application/json, text/event-stream"
        )]))
        .is_ok());
        assert!(check_post_accept(&headers(&[(header::ACCEPT, "*/*")])).is_ok());
        assert_eq!(
            check_post_accept(&headers(&[(header::ACCEPT, "application/json")]))
                .unwrap_err()
                .status,
            StatusCode::NOT_ACCEPTABLE
        );
        assert!(check_content_type(&headers(&[(
            header::CONTENT_TYPE,
            "application/json; charset=utf-8"
        )]))
        .is_ok());
        assert_eq!(
            check_content_type(&headers(&[(header::CONTENT_TYPE, "text/plain")]))
                .unwrap_err()
                .status,
            StatusCode::UNSUPPORTED_MEDIA_TYPE
        );
    }
}
