//! [`NatsSettings`], what the operator gave, checked once into [`NatsOptions`] before any
//! connection: every file readable (its error names the setting and the path), one way of
//! authenticating, a client certificate with its key.

use std::path::{Path, PathBuf};

use super::options::{Auth, Tls};
use super::servers::{self, UrlCredentials};
use super::{NatsOptions, OptionsError, Secret, Setting};

/// The connection settings as given: paths and names, and the two secrets that come only
/// from the environment, already wrapped.
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct NatsSettings {
    /// Seed server URLs, comma-separated.
    pub servers: String,
    pub creds: Option<PathBuf>,
    pub nkey: Option<PathBuf>,
    pub user: Option<String>,
    pub password: Option<Secret>,
    pub password_file: Option<PathBuf>,
    pub token: Option<Secret>,
    pub token_file: Option<PathBuf>,
    pub tls_ca: Option<PathBuf>,
    pub tls_cert: Option<PathBuf>,
    pub tls_key: Option<PathBuf>,
    pub tls_first: bool,
}

impl NatsSettings {
    /// Validates the settings and reads every secret file, once, at start.
    pub fn resolve(self) -> Result<NatsOptions, OptionsError> {
        let (servers, in_url) = servers::parse(&self.servers)?;
        let ways = [
            self.creds.as_ref().map(|_| Setting::Creds.to_string()),
            self.nkey.as_ref().map(|_| Setting::Nkey.to_string()),
            first_given(&[
                (Setting::User, self.user.is_some()),
                (Setting::Password, self.password.is_some()),
                (Setting::PasswordFile, self.password_file.is_some()),
            ]),
            first_given(&[
                (Setting::Token, self.token.is_some()),
                (Setting::TokenFile, self.token_file.is_some()),
            ]),
            in_url
                .as_ref()
                .map(|_| format!("credentials in {}", Setting::Servers)),
        ];
        let given: Vec<String> = ways.into_iter().flatten().collect();
        if given.len() > 1 {
            return Err(OptionsError::ConflictingAuth { given });
        }
        let password = secret(
            (Setting::Password, self.password),
            (Setting::PasswordFile, self.password_file),
        )?;
        let token = secret(
            (Setting::Token, self.token),
            (Setting::TokenFile, self.token_file),
        )?;
        let auth = if let Some(path) = self.creds {
            let contents = read(Setting::Creds, &path)?;
            // The parser's messages say what is missing, never what the file holds.
            async_nats::ConnectOptions::new()
                .credentials(&contents)
                .map_err(|e| {
                    invalid(
                        Setting::Creds,
                        &path,
                        format!("is not a NATS credentials file: {e}"),
                    )
                })?;
            Auth::Creds(Secret::new(contents))
        } else if let Some(path) = self.nkey {
            let seed = read(Setting::Nkey, &path)?.trim().to_owned();
            if nkeys::KeyPair::from_seed(&seed).is_err() {
                return Err(invalid(
                    Setting::Nkey,
                    &path,
                    "does not hold an nkey seed (one line, S...)".into(),
                ));
            }
            if !seed.starts_with("SU") {
                return Err(invalid(
                    Setting::Nkey,
                    &path,
                    "holds an nkey seed, but not a user's (SU...)".into(),
                ));
            }
            Auth::Nkey(Secret::new(seed))
        } else if let Some(user) = self.user {
            let (_, password) = password.ok_or_else(|| OptionsError::Needs {
                setting: Setting::User,
                needs: format!(
                    "a password: {} or {}",
                    Setting::Password,
                    Setting::PasswordFile
                ),
            })?;
            Auth::UserPassword { user, password }
        } else if let Some((setting, _)) = password {
            return Err(OptionsError::Needs {
                setting,
                needs: format!("a user: {}", Setting::User),
            });
        } else if let Some((_, token)) = token {
            Auth::Token(token)
        } else {
            match in_url {
                Some(UrlCredentials::UserPassword { user, password }) => Auth::UserPassword {
                    user,
                    password: Secret::new(password),
                },
                Some(UrlCredentials::Token(token)) => Auth::Token(Secret::new(token)),
                None => Auth::None,
            }
        };
        let client = match (self.tls_cert, self.tls_key) {
            (Some(cert), Some(key)) => Some((
                readable(Setting::TlsCert, cert)?,
                readable(Setting::TlsKey, key)?,
            )),
            (Some(_), None) => return Err(needs(Setting::TlsCert, Setting::TlsKey)),
            (None, Some(_)) => return Err(needs(Setting::TlsKey, Setting::TlsCert)),
            (None, None) => None,
        };
        let tls = Tls {
            ca: self
                .tls_ca
                .map(|p| readable(Setting::TlsCa, p))
                .transpose()?,
            client,
            first: self.tls_first,
        };
        Ok(NatsOptions {
            servers,
            auth,
            tls,
            inbox_prefix: None,
        })
    }
}

fn first_given(settings: &[(Setting, bool)]) -> Option<String> {
    settings
        .iter()
        .find(|(_, given)| *given)
        .map(|(s, _)| s.to_string())
}

/// A secret from the environment or from a file, not both; returns which setting gave it
/// (password and user are checked against each other by name).
fn secret(
    (env, value): (Setting, Option<Secret>),
    (file, path): (Setting, Option<PathBuf>),
) -> Result<Option<(Setting, Secret)>, OptionsError> {
    match (value, path) {
        (Some(_), Some(_)) => Err(OptionsError::Twice {
            first: env,
            second: file,
        }),
        (Some(value), None) => Ok(Some((env, value))),
        (None, Some(path)) => {
            let text = read(file, &path)?;
            // `kubectl create secret --from-file` and editors leave a final newline.
            let text = text.trim_end_matches(['\n', '\r']);
            if text.is_empty() {
                return Err(invalid(file, &path, "is empty".into()));
            }
            Ok(Some((file, Secret::new(text))))
        }
        (None, None) => Ok(None),
    }
}

fn read(setting: Setting, path: &Path) -> Result<String, OptionsError> {
    std::fs::read_to_string(path).map_err(|source| OptionsError::Unreadable {
        setting,
        path: path.to_owned(),
        source,
    })
}

/// Checks that a file the client library reads later can be read now, so that the error
/// names the flag; keeps the path.
fn readable(setting: Setting, path: PathBuf) -> Result<PathBuf, OptionsError> {
    std::fs::read(&path)
        .map(|_| path.clone())
        .map_err(|source| OptionsError::Unreadable {
            setting,
            path,
            source,
        })
}

fn invalid(setting: Setting, path: &Path, reason: String) -> OptionsError {
    OptionsError::Invalid {
        setting,
        path: path.to_owned(),
        reason,
    }
}

fn needs(setting: Setting, other: Setting) -> OptionsError {
    OptionsError::Needs {
        setting,
        needs: other.to_string(),
    }
}
