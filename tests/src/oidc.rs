//! A real authorization server for the auth tests: panva's `oidc-provider` (a certified
//! OpenID provider), run by `tests/clients/oidc/provider.mjs` on a free loopback port.
//! `scripts/test.sh` installs it (pinned in that folder's package-lock.json).
//!
//! Its clients and what their tokens look like are listed at the top of `provider.mjs`.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{anyhow, bail, Context, Result};
use serde_json::Value;

use crate::{free_port, wait_for_port, workspace_root, Proc};

/// One running authorization server.
pub struct AuthServer {
    pub proc: Proc,
    pub port: u16,
}

/// Node 24 when the test script provides it (`MCPBUS_NODE24`: oidc-provider supports it),
/// else the machine's `node` (it runs there with a warning).
fn node() -> PathBuf {
    std::env::var("MCPBUS_NODE24")
        .map(PathBuf::from)
        .unwrap_or_else(|_| PathBuf::from("node"))
}

impl AuthServer {
    /// Starts a provider whose clients' default resource is `resource`. `name` tells two
    /// providers' logs apart.
    pub fn start(dir: &Path, name: &str, resource: &str) -> Result<Self> {
        let folder = workspace_root().join("tests/clients/oidc");
        if !folder.join("node_modules/oidc-provider").exists() {
            bail!(
                "{} has no node_modules: run scripts/test.sh, which installs oidc-provider",
                folder.display()
            );
        }
        let port = free_port();
        let proc = Proc::spawn(
            name,
            std::process::Command::new(node())
                .current_dir(&folder)
                .arg("provider.mjs")
                .args([&port.to_string(), resource]),
            dir,
        )
        .context("starting oidc-provider")?;
        wait_for_port(port, Duration::from_secs(20))?;
        Ok(Self { proc, port })
    }

    /// The issuer: exactly the `iss` of its tokens.
    pub fn issuer(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    pub fn introspection_url(&self) -> String {
        format!("{}/token/introspection", self.issuer())
    }

    /// An access token from the client credentials grant (RFC 6749 §4.4) for `resource`
    /// (RFC 8707) with `scope`; `client` is one of those in `provider.mjs`.
    pub async fn token(&self, client: &str, resource: &str, scope: &str) -> Result<String> {
        let response = reqwest::Client::new()
            .post(format!("{}/token", self.issuer()))
            .basic_auth(client, Some(format!("{client}-secret")))
            .form(&[
                ("grant_type", "client_credentials"),
                ("resource", resource),
                ("scope", scope),
            ])
            .timeout(Duration::from_secs(10))
            .send()
            .await?;
        let status = response.status();
        let body: Value = response.json().await?;
        if !status.is_success() {
            bail!("the token endpoint answered {status}: {body}");
        }
        body["access_token"]
            .as_str()
            .map(str::to_owned)
            .ok_or_else(|| anyhow!("no access_token in {body}"))
    }
}
