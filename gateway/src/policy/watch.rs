//! Loading the policy file, and re-loading it when its content changes.
//!
//! Polling rather than inotify: a Kubernetes ConfigMap volume swaps a symlink when it
//! updates, which file-change events report unreliably, and reading one small file every
//! few seconds costs nothing. The file is compared by content, so a touched but unchanged
//! file is no change.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use super::{Policies, Policy};
use crate::metrics::METRICS;

/// How often the file is checked for a new version.
pub const POLL: Duration = Duration::from_secs(2);

/// Largest policy file read: a policy is a few rules, not data.
pub const MAX_POLICY_BYTES: u64 = 1024 * 1024;

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PolicyError {
    #[error("cannot read the policy file {path}: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("the policy file {path} is larger than {MAX_POLICY_BYTES} bytes")]
    TooLarge { path: PathBuf },
    #[error("the policy file {path} is not a valid policy: {source}")]
    Invalid {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
}

/// Loads `path` now (an error here stops the gateway from starting), then follows it until
/// `stop`.
pub async fn watch(path: PathBuf, stop: CancellationToken) -> Result<Policies, PolicyError> {
    let first = load(&path).await?;
    tracing::info!(path = %path.display(), digest = first.digest(), "authorization policy loaded");
    METRICS.policy_reloads.with_label_values(&["loaded"]).inc();
    let (tx, rx) = watch::channel(Some(Arc::new(first)));
    tokio::spawn(follow(path, tx, stop));
    Ok(Policies { rx })
}

async fn follow(path: PathBuf, tx: watch::Sender<Option<Arc<Policy>>>, stop: CancellationToken) {
    loop {
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tokio::time::sleep(POLL) => {}
        }
        let current = tx.borrow().as_ref().map(|p| p.digest().to_owned());
        match load(&path).await {
            Ok(policy) if Some(policy.digest()) == current.as_deref() => {}
            Ok(policy) => {
                tracing::info!(path = %path.display(), digest = policy.digest(), "authorization policy changed");
                METRICS.policy_reloads.with_label_values(&["loaded"]).inc();
                tx.send_replace(Some(Arc::new(policy)));
            }
            Err(e) => {
                // Keep the last good policy: a typo must not open or close everything.
                tracing::error!(error = %e, "keeping the previous authorization policy");
                METRICS.policy_reloads.with_label_values(&["refused"]).inc();
            }
        }
    }
}

async fn load(path: &Path) -> Result<Policy, PolicyError> {
    let read = |source| PolicyError::Read {
        path: path.to_owned(),
        source,
    };
    let size = tokio::fs::metadata(path).await.map_err(read)?.len();
    if size > MAX_POLICY_BYTES {
        return Err(PolicyError::TooLarge {
            path: path.to_owned(),
        });
    }
    let text = tokio::fs::read(path).await.map_err(read)?;
    Policy::parse(&text).map_err(|source| PolicyError::Invalid {
        path: path.to_owned(),
        source,
    })
}
