//! The settings are refused before connecting, with messages that name the setting and the
//! path and never a secret.

use std::path::PathBuf;

use super::*;

struct Files(tempfile::TempDir);

impl Files {
    fn new() -> Self {
        Self(tempfile::tempdir().unwrap())
    }

    fn write(&self, name: &str, text: &str) -> PathBuf {
        let path = self.0.path().join(name);
        std::fs::write(&path, text).unwrap();
        path
    }

    fn missing(&self) -> PathBuf {
        self.0.path().join("missing")
    }
}

fn local() -> NatsSettings {
    NatsSettings {
        servers: DEFAULT_URL.into(),
        ..Default::default()
    }
}

fn user_seed() -> String {
    nkeys::KeyPair::new_user().seed().unwrap()
}

#[test]
fn an_unreadable_file_names_its_flag_and_path() {
    let files = Files::new();
    let set: [fn(&mut NatsSettings, PathBuf); 6] = [
        |s, p| s.creds = Some(p),
        |s, p| s.nkey = Some(p),
        |s, p| {
            s.user = Some("u".into());
            s.password_file = Some(p)
        },
        |s, p| s.token_file = Some(p),
        |s, p| s.tls_ca = Some(p),
        |s, p| {
            s.tls_cert = Some(p.clone());
            s.tls_key = Some(p)
        },
    ];
    let flags = [
        "--nats-creds (MCPBUS_NATS_CREDS)",
        "--nats-nkey (MCPBUS_NATS_NKEY)",
        "--nats-password-file (MCPBUS_NATS_PASSWORD_FILE)",
        "--nats-token-file (MCPBUS_NATS_TOKEN_FILE)",
        "--nats-tls-ca (MCPBUS_NATS_TLS_CA)",
        "--nats-tls-cert (MCPBUS_NATS_TLS_CERT)",
    ];
    for (set, flag) in set.into_iter().zip(flags) {
        let mut s = local();
        set(&mut s, files.missing());
        let e = s.resolve().unwrap_err().to_string();
        assert!(e.starts_with(flag), "{e}");
        assert!(e.contains(&files.missing().display().to_string()), "{e}");
    }
}

#[test]
fn one_way_of_authenticating_at_a_time() {
    let files = Files::new();
    let seed = files.write("user.nk", &user_seed());
    let mut s = local();
    s.creds = Some(files.write("x.creds", "x"));
    s.nkey = Some(seed.clone());
    s.token = Some(Secret::new("t"));
    let e = s.resolve().unwrap_err().to_string();
    assert!(
        e.starts_with("--nats-creds (MCPBUS_NATS_CREDS) and --nats-nkey (MCPBUS_NATS_NKEY) and MCPBUS_NATS_TOKEN cannot be combined."),
        "{e}"
    );
    assert!(
        e.contains("Authenticate one way: --nats-creds, --nats-nkey, --nats-user with a password"),
        "{e}"
    );
    assert!(
        e.contains("client certificate (--nats-tls-cert with --nats-tls-key) goes with any"),
        "{e}"
    );
    let mut s = local();
    s.servers = "nats://tok@h".into();
    s.user = Some("u".into());
    let e = s.resolve().unwrap_err().to_string();
    assert!(
        e.starts_with("--nats-user (MCPBUS_NATS_USER) and credentials in --nats (MCPBUS_NATS_URL)"),
        "{e}"
    );
    // A client certificate goes with an nkey.
    let mut s = local();
    s.nkey = Some(seed);
    s.tls_cert = Some(files.write("c.pem", "c"));
    s.tls_key = Some(files.write("k.pem", "k"));
    s.resolve().unwrap();
}

#[test]
fn pairs_are_given_together() {
    let files = Files::new();
    let pem = files.write("c.pem", "c");
    let mut s = local();
    s.tls_cert = Some(pem.clone());
    let e = s.resolve().unwrap_err().to_string();
    assert_eq!(
        e,
        "--nats-tls-cert (MCPBUS_NATS_TLS_CERT) needs --nats-tls-key (MCPBUS_NATS_TLS_KEY)"
    );
    let mut s = local();
    s.tls_key = Some(pem);
    assert!(s
        .resolve()
        .unwrap_err()
        .to_string()
        .starts_with("--nats-tls-key"));
    let mut s = local();
    s.user = Some("u".into());
    let e = s.resolve().unwrap_err().to_string();
    assert!(
        e.contains("needs a password: MCPBUS_NATS_PASSWORD or --nats-password-file"),
        "{e}"
    );
    let mut s = local();
    s.password = Some(Secret::new("hunter2"));
    let e = s.resolve().unwrap_err().to_string();
    assert_eq!(
        e,
        "MCPBUS_NATS_PASSWORD needs a user: --nats-user (MCPBUS_NATS_USER)"
    );
    let mut s = local();
    s.user = Some("u".into());
    s.password = Some(Secret::new("hunter2"));
    s.password_file = Some(files.write("pw", "hunter2"));
    let e = s.resolve().unwrap_err().to_string();
    assert!(
        e.contains("MCPBUS_NATS_PASSWORD and --nats-password-file"),
        "{e}"
    );
}

#[test]
fn secret_files_are_read_and_never_shown() {
    let files = Files::new();
    let mut s = local();
    s.user = Some("u".into());
    s.password_file = Some(files.write("pw", "hunter2\n"));
    let options = s.resolve().unwrap();
    assert!(
        matches!(&options.auth, options::Auth::UserPassword { password, .. } if password.expose() == "hunter2")
    );
    let debug = format!("{options:?}");
    assert!(
        !debug.contains("hunter2") && debug.contains("a user and password"),
        "{debug}"
    );
    assert_eq!(options.scrub("bad hunter2 here"), "bad *** here");

    let mut s = local();
    s.token_file = Some(files.write("token", "\n"));
    let e = s.resolve().unwrap_err().to_string();
    assert!(
        e.starts_with("--nats-token-file (MCPBUS_NATS_TOKEN_FILE)") && e.ends_with("is empty"),
        "{e}"
    );

    // Contents that are not what the flag expects are not echoed.
    let mut s = local();
    s.nkey = Some(files.write("user.nk", "SUnot-a-seed-hunter2"));
    let e = s.resolve().unwrap_err().to_string();
    assert!(
        e.contains("does not hold an nkey seed") && !e.contains("hunter2"),
        "{e}"
    );
    let mut s = local();
    s.nkey = Some(files.write("account.nk", &nkeys::KeyPair::new_account().seed().unwrap()));
    assert!(s
        .resolve()
        .unwrap_err()
        .to_string()
        .contains("not a user's"));
    let mut s = local();
    s.creds = Some(files.write("x.creds", "hunter2"));
    let e = s.resolve().unwrap_err().to_string();
    assert!(
        e.contains("is not a NATS credentials file") && !e.contains("hunter2"),
        "{e}"
    );
}

#[test]
fn an_nkey_seed_file_is_accepted_with_whitespace() {
    let files = Files::new();
    let seed = user_seed();
    let mut s = local();
    s.nkey = Some(files.write("user.nk", &format!("{seed}\n")));
    let options = s.resolve().unwrap();
    assert!(matches!(&options.auth, options::Auth::Nkey(s) if s.expose() == seed));
    assert!(!format!("{options:?}").contains(&seed));
}

#[test]
fn the_inbox_prefix_is_the_callers_and_unset_by_default() {
    let options = NatsOptions::new("nats://a:1,nats://b:2").unwrap();
    assert_eq!(options.inbox_prefix(), None);
    assert_eq!(options.servers.addrs.len(), 2);
    let options = options.with_inbox_prefix("_INBOX_gateway");
    assert_eq!(options.inbox_prefix(), Some("_INBOX_gateway"));
    assert_eq!(NatsOptions::default().servers_shown(), DEFAULT_URL);
}

#[tokio::test]
async fn a_connect_error_shows_no_credentials() {
    // Nothing listens on port 1.
    let options = NatsOptions::new("nats://u:hunter2@127.0.0.1:1").unwrap();
    let e = connect(&options, "t").await.unwrap_err().to_string();
    assert!(
        e.starts_with("cannot connect to NATS at nats://***@127.0.0.1:1: "),
        "{e}"
    );
    assert!(!e.contains("hunter2"), "{e}");
}
