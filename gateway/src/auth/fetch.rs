//! The one HTTP client that talks to authorization servers, bounded in time and size: a slow
//! or hostile server (or a wrong URL) must not hold a request or fill memory.

use std::time::Duration;

use reqwest::{Client, Url};
use serde_json::Value;

use super::error::FetchError;

/// Largest metadata, JWKS or introspection answer read. Real ones are a few KB; 256 KiB
/// leaves room for large key sets while bounding what a bad server can make us hold.
pub const MAX_DOCUMENT_BYTES: usize = 256 * 1024;
/// Whole-exchange deadline. Verifying a token waits on it only when keys or an
/// introspection answer are not cached.
const TIMEOUT: Duration = Duration::from_secs(5);

/// A client for authorization servers.
#[derive(Clone)]
pub struct Fetcher {
    http: Client,
}

impl Fetcher {
    pub fn new() -> Self {
        // TLS is rustls with ring and the system's roots (the workspace's reqwest features).
        let http = Client::builder()
            .connect_timeout(TIMEOUT)
            .timeout(TIMEOUT)
            // Metadata and keys are served where configured or discovered; a redirect
            // elsewhere is not followed.
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("mcpbus-gateway/", env!("CARGO_PKG_VERSION")))
            .build()
            .expect("a TLS client with the ring provider builds");
        Self { http }
    }

    pub async fn get_json(&self, url: &Url) -> Result<Value, FetchError> {
        let request = self
            .http
            .get(url.clone())
            .header("accept", "application/json");
        self.json(url, request).await
    }

    /// POSTs a form (RFC 7662 introspection) with HTTP Basic client authentication.
    pub async fn post_form(
        &self,
        url: &Url,
        form: &[(&str, &str)],
        client: Option<(&str, Option<&str>)>,
    ) -> Result<Value, FetchError> {
        let mut request = self
            .http
            .post(url.clone())
            .header("accept", "application/json")
            .form(form);
        if let Some((id, secret)) = client {
            request = request.basic_auth(id, secret);
        }
        self.json(url, request).await
    }

    async fn json(&self, url: &Url, request: reqwest::RequestBuilder) -> Result<Value, FetchError> {
        let http = |source| FetchError::Http {
            url: url.to_string(),
            source,
        };
        let mut response = request.send().await.map_err(http)?;
        if !response.status().is_success() {
            return Err(FetchError::Status {
                url: url.to_string(),
                status: response.status().as_u16(),
            });
        }
        let mut body = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(http)? {
            if body.len() + chunk.len() > MAX_DOCUMENT_BYTES {
                return Err(FetchError::TooLarge {
                    url: url.to_string(),
                    limit: MAX_DOCUMENT_BYTES,
                });
            }
            body.extend_from_slice(&chunk);
        }
        serde_json::from_slice(&body).map_err(|source| FetchError::Json {
            url: url.to_string(),
            source,
        })
    }
}

impl Default for Fetcher {
    fn default() -> Self {
        Self::new()
    }
}
