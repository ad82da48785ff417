//! The `keygate` command line against a test database: the runner, its output,
//! and short typed helpers for the set-up commands tests repeat.

use super::db::TestDb;
use super::fixture::PASSWORD;
use serde_json::Value;
use std::io::Write;
use std::process::{Command, Stdio};

pub const BIN: &str = env!("CARGO_BIN_EXE_keygate");

impl TestDb {
    /// Creates a user with the test password through the CLI; returns its id.
    pub fn create_user(&self, email: &str) -> String {
        let out = self.cli_stdin(
            &[
                "--json",
                "user",
                "create",
                "--email",
                email,
                "--password-stdin",
            ],
            Some(&format!("{PASSWORD}\n")),
        );
        assert_eq!(out.code, 0, "user create: {}", out.stderr);
        let v: Value = serde_json::from_str(out.stdout.trim()).expect("one JSON object");
        v["id"].as_str().expect("id").to_string()
    }

    /// Runs `keygate` against this database.
    pub fn cli(&self, args: &[&str]) -> CliOut {
        self.cli_stdin(args, None)
    }

    pub fn cli_stdin(&self, args: &[&str], stdin: Option<&str>) -> CliOut {
        self.cli_full(args, stdin, &[])
    }

    /// Runs `keygate` against this database with more environment (e.g.
    /// `KEYGATE_DNS_SERVER`).
    pub fn cli_env(&self, args: &[&str], env: &[(&str, &str)]) -> CliOut {
        self.cli_full(args, None, env)
    }

    fn cli_full(&self, args: &[&str], stdin: Option<&str>, env: &[(&str, &str)]) -> CliOut {
        let mut child = Command::new(BIN)
            .args(args)
            .envs(env.iter().copied())
            .env_remove("RUST_LOG")
            .env_remove("DATABASE_URL")
            .env("KEYGATE_DATABASE_URL", &self.url)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("run keygate");
        {
            let mut input = child.stdin.take().expect("stdin");
            if let Some(s) = stdin {
                // A command refused before it reads stdin closes the pipe early.
                let _ = input.write_all(s.as_bytes());
            }
        }
        let out = child.wait_with_output().expect("wait for keygate");
        CliOut::from(out)
    }

    /// Runs a `--json` command that must succeed; returns its one JSON line.
    pub fn json(&self, args: &[&str]) -> Value {
        let mut all = vec!["--json"];
        all.extend_from_slice(args);
        let out = self.cli(&all);
        assert_eq!(out.code, 0, "keygate {args:?} failed: {}", out.stderr);
        assert!(
            out.stderr.is_empty(),
            "admin command wrote to stderr: {}",
            out.stderr
        );
        serde_json::from_str(out.stdout.trim())
            .unwrap_or_else(|e| panic!("not one JSON object ({e}): {:?}", out.stdout))
    }

    /// Every JSON line a `--json` listing printed.
    pub fn json_lines(&self, args: &[&str]) -> Vec<Value> {
        let mut all = vec!["--json"];
        all.extend_from_slice(args);
        let out = self.cli(&all);
        assert_eq!(out.code, 0, "keygate {args:?} failed: {}", out.stderr);
        out.stdout
            .lines()
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("bad JSON line {l:?}: {e}")))
            .collect()
    }
}

/// The set-up commands tests repeat, each one line at the call site. Each runs
/// `--json`, must succeed, and returns what the command printed. Tests about the
/// commands' own argument handling spell their arguments out instead.
impl TestDb {
    /// `workspace create --name NAME`; returns the workspace's id.
    pub fn create_workspace(&self, name: &str) -> String {
        let v = self.json(&["workspace", "create", "--name", name]);
        v["id"]
            .as_str()
            .unwrap_or_else(|| panic!("no id in {v}"))
            .to_string()
    }

    /// `member add --workspace WS --user USER --role ROLE`.
    pub fn add_member(&self, workspace: &str, user: &str, role: &str) -> Value {
        self.json(&[
            "member",
            "add",
            "--workspace",
            workspace,
            "--user",
            user,
            "--role",
            role,
        ])
    }

    /// `apikey create --workspace WS --name NAME --access ACCESS`; the key's
    /// secret is in `key`.
    pub fn create_api_key(&self, workspace: &str, name: &str, access: &str) -> Value {
        self.create_api_key_with(workspace, name, access, &[])
    }

    /// `apikey create … --expires DAY` (DAY is the last day the key works).
    pub fn create_api_key_expiring(
        &self,
        workspace: &str,
        name: &str,
        access: &str,
        expires: &str,
    ) -> Value {
        self.create_api_key_with(workspace, name, access, &["--expires", expires])
    }

    /// `apikey create --workspace WS --name NAME --access ACCESS EXTRA…`.
    fn create_api_key_with(
        &self,
        workspace: &str,
        name: &str,
        access: &str,
        extra: &[&str],
    ) -> Value {
        let mut args = vec![
            "apikey",
            "create",
            "--workspace",
            workspace,
            "--name",
            name,
            "--access",
            access,
        ];
        args.extend_from_slice(extra);
        self.json(&args)
    }

    /// `domain add --workspace WS --domain DOMAIN --verified`: a sending
    /// domain verified on the operator's word, so that the workspace may
    /// create mailboxes in it (tests of the DNS check itself use
    /// `support::dns`).
    pub fn verified_domain(&self, workspace: &str, domain: &str) -> Value {
        self.json(&[
            "domain",
            "add",
            "--workspace",
            workspace,
            "--domain",
            domain,
            "--verified",
        ])
    }

    /// `client create --name NAME --redirect-uri URI`: a confidential client
    /// (`client_id`, `client_secret`).
    pub fn create_client(&self, name: &str, redirect_uri: &str) -> Value {
        self.json(&[
            "client",
            "create",
            "--name",
            name,
            "--redirect-uri",
            redirect_uri,
        ])
    }

    /// `client create … --public`: a public client (`client_id`, no secret).
    pub fn create_public_client(&self, name: &str, redirect_uri: &str) -> Value {
        self.json(&[
            "client",
            "create",
            "--name",
            name,
            "--redirect-uri",
            redirect_uri,
            "--public",
        ])
    }
}

#[derive(Debug)]
pub struct CliOut {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl From<std::process::Output> for CliOut {
    fn from(out: std::process::Output) -> CliOut {
        CliOut {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }
}

impl CliOut {
    /// A refused command: non-zero, one clear line on stderr, nothing on stdout.
    pub fn assert_refused(&self, mentions: &str) {
        assert_ne!(
            self.code, 0,
            "expected failure, got success: {}",
            self.stdout
        );
        assert!(
            self.stdout.is_empty(),
            "a failed command printed on stdout: {}",
            self.stdout
        );
        let lines: Vec<&str> = self.stderr.lines().collect();
        assert_eq!(
            lines.len(),
            1,
            "expected one line on stderr, got {:?}",
            self.stderr
        );
        assert!(
            self.stderr
                .to_lowercase()
                .contains(&mentions.to_lowercase()),
            "stderr {:?} does not mention {mentions:?}",
            self.stderr
        );
    }
}
