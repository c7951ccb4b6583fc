//! How `bridge stdio` starts a third-party MCP server: its command line, a cleared
//! environment holding only what the operator allowed, and optionally another user and group.
//!
//! A bridged server is untrusted code (the MCP security best practices, "Local MCP Server
//! Compromise"): it must not read the worker's NATS URL and password, another bridge's
//! upstream token, or anything else the worker was started with. Only this module builds the
//! child's `Command`; it knows nothing of MCP.

use std::collections::BTreeMap;
use std::ffi::OsString;

/// Passed unless `--no-default-env`: servers need `PATH` to find their interpreter and
/// `HOME` for their caches and configuration, and neither is a secret.
pub const DEFAULT_ENV: [&str; 2] = ["PATH", "HOME"];

/// `EPERM` (1 on every unix): what `setuid`/`setgid` return to a process without the right.
const EPERM: i32 = 1;

/// One `--env` flag.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EnvRule {
    /// `--env NAME`: the worker's own value of `NAME`, if it has one.
    Pass(String),
    /// `--env NAME=value`: this value, whatever the worker has.
    Set(String, String),
}

impl std::str::FromStr for EnvRule {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (name, value) = match s.split_once('=') {
            Some((name, value)) => (name, Some(value)),
            None => (s, None),
        };
        if name.is_empty() || name.contains('\0') || value.is_some_and(|v| v.contains('\0')) {
            return Err(format!(
                "{s:?} is not NAME or NAME=value (a non-empty name, no NUL byte)"
            ));
        }
        Ok(match value {
            Some(value) => EnvRule::Set(name.to_owned(), value.to_owned()),
            None => EnvRule::Pass(name.to_owned()),
        })
    }
}

/// A stdio server as the bridge starts it, every time it (re)starts.
#[derive(Clone, PartialEq, Eq)]
pub struct StdioServer {
    /// The program and its arguments.
    pub command: Vec<String>,
    /// The child's whole environment, resolved once when the worker starts so that every
    /// restart gets the same one.
    pub env: BTreeMap<String, OsString>,
    /// Run the server as this user (`--uid`): least privilege for third-party code.
    pub uid: Option<u32>,
    /// Run the server as this group (`--gid`).
    pub gid: Option<u32>,
}

/// Names the variables but not their values, which may be secrets.
impl std::fmt::Debug for StdioServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StdioServer")
            .field("command", &self.command)
            .field("env", &self.env.keys().collect::<Vec<_>>())
            .field("uid", &self.uid)
            .field("gid", &self.gid)
            .finish()
    }
}

impl StdioServer {
    /// The server `command` with the environment `rules` allow, each `Pass` taking its value
    /// from `worker_env` (the worker's environment; a parameter so that tests need not touch
    /// the process's own). `PATH` and `HOME` pass too when `default_env`; a later rule for
    /// the same name wins.
    pub fn new(
        command: Vec<String>,
        rules: &[EnvRule],
        default_env: bool,
        worker_env: impl Fn(&str) -> Option<OsString>,
    ) -> Self {
        let defaults = DEFAULT_ENV
            .iter()
            .filter(|_| default_env)
            .map(|n| EnvRule::Pass((*n).to_owned()));
        let mut env = BTreeMap::new();
        for rule in defaults.chain(rules.iter().cloned()) {
            match rule {
                EnvRule::Pass(name) => match worker_env(&name) {
                    Some(value) => env.insert(name, value),
                    None => env.remove(&name),
                },
                EnvRule::Set(name, value) => env.insert(name, value.into()),
            };
        }
        Self {
            command,
            env,
            uid: None,
            gid: None,
        }
    }

    /// The command to spawn: nothing of the worker's environment but `env`, under `uid` and
    /// `gid` when set.
    pub fn command(&self) -> Result<tokio::process::Command, String> {
        let (program, args) = self.command.split_first().ok_or("no command to run")?;
        let mut cmd = tokio::process::Command::new(program);
        cmd.args(args).env_clear().envs(&self.env);
        #[cfg(unix)]
        {
            if let Some(uid) = self.uid {
                cmd.uid(uid);
            }
            if let Some(gid) = self.gid {
                cmd.gid(gid);
            }
        }
        #[cfg(not(unix))]
        if self.uid.is_some() || self.gid.is_some() {
            return Err("--uid and --gid work on unix only".into());
        }
        Ok(cmd)
    }

    /// Why spawning failed, naming `--uid`/`--gid` when switching to them was refused.
    pub fn spawn_error(&self, e: &std::io::Error) -> String {
        let flags: Vec<String> = [("--uid", self.uid), ("--gid", self.gid)]
            .into_iter()
            .filter_map(|(flag, id)| id.map(|id| format!("{flag} {id}")))
            .collect();
        if e.raw_os_error() == Some(EPERM) && !flags.is_empty() {
            format!(
                "cannot run the server as {}: {e}; the worker needs root (or CAP_SETUID and \
                 CAP_SETGID) to switch user or group",
                flags.join(" ")
            )
        } else {
            e.to_string()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn worker_env(name: &str) -> Option<OsString> {
        let vars = [
            ("PATH", "/usr/bin:/bin"),
            ("HOME", "/home/worker"),
            ("MCPBUS_NATS_URL", "nats://user:secret@nats:4222"),
            ("API_KEY", "k"),
        ];
        vars.iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| OsString::from(v))
    }

    fn rules(flags: &[&str]) -> Vec<EnvRule> {
        flags.iter().map(|f| f.parse().unwrap()).collect()
    }

    fn names(s: &StdioServer) -> Vec<&str> {
        s.env.keys().map(String::as_str).collect()
    }

    #[test]
    fn flags_name_a_variable_or_set_one() {
        assert_eq!(rules(&["A"]), [EnvRule::Pass("A".into())]);
        assert_eq!(
            rules(&["A=b=c", "E="]),
            [
                EnvRule::Set("A".into(), "b=c".into()),
                EnvRule::Set("E".into(), String::new())
            ]
        );
        assert!("".parse::<EnvRule>().is_err());
        assert!("=value".parse::<EnvRule>().is_err());
        assert!("A=\0".parse::<EnvRule>().is_err());
    }

    #[test]
    fn only_path_home_and_allowed_names_reach_the_server() {
        let s = StdioServer::new(
            vec!["srv".into()],
            &rules(&["API_KEY", "MODE=ro", "UNSET"]),
            true,
            worker_env,
        );
        assert_eq!(names(&s), ["API_KEY", "HOME", "MODE", "PATH"]);
        assert_eq!(s.env["MODE"], "ro");
        assert_eq!(s.env["HOME"], "/home/worker");
    }

    #[test]
    fn defaults_can_be_dropped_or_overridden() {
        let s = StdioServer::new(vec!["srv".into()], &[], false, worker_env);
        assert!(s.env.is_empty());
        let s = StdioServer::new(vec!["srv".into()], &rules(&["HOME=/tmp"]), true, worker_env);
        assert_eq!(s.env["HOME"], "/tmp");
    }

    #[tokio::test]
    async fn the_child_sees_exactly_its_environment() {
        // A real process: `env` prints what it was given.
        let s = StdioServer::new(vec!["env".into()], &rules(&["MODE=ro"]), true, |n| {
            (n == "PATH").then(|| std::env::var_os("PATH")).flatten()
        });
        let out = s.command().unwrap().output().await.unwrap();
        let mut seen: Vec<String> = String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter_map(|l| l.split_once('=').map(|(n, _)| n.to_owned()))
            .collect();
        seen.sort();
        assert_eq!(seen, ["MODE", "PATH"]);
    }

    #[test]
    fn a_refused_switch_names_the_flags() {
        let mut s = StdioServer::new(vec!["srv".into()], &[], true, worker_env);
        s.uid = Some(1000);
        let refused = std::io::Error::from_raw_os_error(EPERM);
        let why = s.spawn_error(&refused);
        assert!(why.contains("--uid 1000") && why.contains("root"), "{why}");
        let missing = std::io::Error::from_raw_os_error(2);
        assert!(!s.spawn_error(&missing).contains("--uid"));
    }
}
