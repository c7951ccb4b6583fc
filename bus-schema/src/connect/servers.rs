//! Seed server URLs: parsed once, credentials an operator still puts in a URL taken out of
//! it (async-nats ignores them there), and a shown form with no secret for errors and logs.

use async_nats::ServerAddr;
use percent_encoding::percent_decode_str;

use super::OptionsError;

/// Credentials found in a URL's userinfo, read as nats.go and nats.py read them:
/// `user:password@` or `token@`.
#[derive(Clone, PartialEq, Eq)]
pub(crate) enum UrlCredentials {
    UserPassword { user: String, password: String },
    Token(String),
}

/// The seed servers, without credentials.
#[derive(Clone)]
pub(crate) struct Servers {
    pub(crate) addrs: Vec<ServerAddr>,
    /// The URLs as given, comma-separated, userinfo replaced by `***`.
    pub(crate) shown: String,
}

/// Parses comma-separated seed URLs (`nats://`, `tls://`, or `host:port`).
pub(crate) fn parse(list: &str) -> Result<(Servers, Option<UrlCredentials>), OptionsError> {
    let given: Vec<&str> = list
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .collect();
    if given.is_empty() {
        return Err(OptionsError::NoServers);
    }
    let (mut addrs, mut credentials) = (Vec::new(), None);
    for url in &given {
        let bad = |reason: String| OptionsError::BadServer {
            shown: redact_url(url),
            reason,
        };
        // Neither message names more of the input than its scheme.
        let mut parsed = url
            .parse::<ServerAddr>()
            .map_err(|e| bad(e.to_string()))?
            .into_inner();
        if let Some(found) = userinfo(&parsed) {
            match &credentials {
                Some(earlier) if *earlier != found => {
                    return Err(OptionsError::UrlCredentialsDiffer)
                }
                _ => credentials = Some(found),
            }
            // Only fails for URLs that cannot have userinfo, and this one had some.
            let _ = parsed.set_username("");
            let _ = parsed.set_password(None);
        }
        addrs.push(ServerAddr::from_url(parsed).map_err(|e| bad(e.to_string()))?);
    }
    let shown = given
        .iter()
        .map(|u| redact_url(u))
        .collect::<Vec<_>>()
        .join(", ");
    Ok((Servers { addrs, shown }, credentials))
}

fn userinfo(url: &url::Url) -> Option<UrlCredentials> {
    let decode = |s: &str| percent_decode_str(s).decode_utf8_lossy().into_owned();
    let user = decode(url.username());
    match url.password() {
        Some(password) => Some(UrlCredentials::UserPassword {
            user,
            password: decode(password),
        }),
        None if user.is_empty() => None,
        None => Some(UrlCredentials::Token(user)),
    }
}

/// `url` with any userinfo replaced by `***`: `nats://***@host:4222`. Works on any text, so
/// that even a URL that does not parse is shown safely.
pub fn redact_url(url: &str) -> String {
    let start = url.find("://").map_or(0, |i| i + 3);
    let rest = &url[start..];
    let authority = &rest[..rest.find(['/', '?', '#']).unwrap_or(rest.len())];
    match authority.rfind('@') {
        Some(at) => format!("{}***{}", &url[..start], &rest[at..]),
        None => url.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn userinfo_is_redacted_in_any_text() {
        assert_eq!(redact_url("nats://u:p@h:4222"), "nats://***@h:4222");
        assert_eq!(redact_url("tls://tok@h"), "tls://***@h");
        assert_eq!(redact_url("u:p@h:4222/x@y"), "***@h:4222/x@y");
        assert_eq!(redact_url("nats://h:4222"), "nats://h:4222");
        assert_eq!(redact_url("nats://a@b@h:1"), "nats://***@h:1");
    }

    #[test]
    fn seeds_are_split_and_stripped_of_their_credentials() {
        let (servers, creds) = parse(" nats://u:p%40ss@a:1 , tls://u:p%40ss@b:2,").unwrap();
        let urls: Vec<&str> = servers.addrs.iter().map(|a| a.as_url_str()).collect();
        assert_eq!(urls, ["nats://a:1", "tls://b:2"]);
        assert_eq!(servers.shown, "nats://***@a:1, tls://***@b:2");
        assert!(
            creds
                == Some(UrlCredentials::UserPassword {
                    user: "u".into(),
                    password: "p@ss".into()
                })
        );
        let (_, creds) = parse("nats://s3cret@a").unwrap();
        assert!(creds == Some(UrlCredentials::Token("s3cret".into())));
        let (servers, creds) = parse("127.0.0.1:4222").unwrap();
        assert!(creds.is_none());
        assert_eq!(servers.addrs[0].port(), 4222);
    }

    #[test]
    fn bad_seeds_are_refused_without_their_secrets() {
        assert!(matches!(parse(" , "), Err(OptionsError::NoServers)));
        let e = parse("http://u:hunter2@a:1").err().unwrap().to_string();
        assert!(
            e.contains("http://***@a:1") && !e.contains("hunter2"),
            "{e}"
        );
        let e = parse("nats://u:one@a,nats://u:two@b").err().unwrap();
        assert!(matches!(e, OptionsError::UrlCredentialsDiffer));
    }
}
