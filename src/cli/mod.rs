//! The `keygate` command line: serving, and the admin commands of the contract.
//! Bad input exits non-zero with one line on stderr and changes nothing.

mod apikey;
mod issuer;
mod mailbox;
mod ops;
mod people;
pub mod serve;

use self::apikey::{apikey, ApikeyCmd};
use self::issuer::{apps, client, AppsCmd, ClientCmd, KeysCmd};
use self::mailbox::{authkey, mailbox, AuthkeyCmd, MailboxCmd};
use self::ops::{audit, completions, print_demo, AuditCmd};
use self::people::{member, read_password, workspace, MemberCmd, UserCmd, WorkspaceCmd};

use crate::accounts::{self, Plan, Role};
use crate::apikeys::{self, Access, ListFilter};
use crate::config::Config;
use crate::credentials::cache::CredentialCache;
use crate::credentials::{scopes, signing_keys as keys};
use crate::db::{self, rfc3339, DbConn};
use crate::error::Error;
use crate::oauth::authorizations;
use clap::{Args, CommandFactory, Parser, Subcommand};
use serde_json::{json, Value};
use std::io::BufRead;
use std::path::PathBuf;

#[derive(Parser, Debug)]
#[command(
    name = "keygate",
    version,
    about = "OAuth 2.0 authorization server and API-key service"
)]
#[command(
    after_help = "Examples:\n  keygate demo\n  keygate --json workspace create --name Acme\n  keygate apikey create --workspace WS_ID --name crm-sync --access read_only --expires 2027-01-31"
)]
pub struct Cli {
    /// Print one JSON object per line on stdout.
    #[arg(long, global = true)]
    json: bool,
    /// sqlite://PATH (or a plain path) or postgres://… [env: KEYGATE_DATABASE_URL, DATABASE_URL]
    #[arg(long, global = true)]
    database_url: Option<String>,
    /// The issuer URL every endpoint is built from [env: KEYGATE_ISSUER]
    #[arg(long, global = true)]
    issuer: Option<String>,
    /// The listening address [env: KEYGATE_BIND]
    #[arg(long, global = true)]
    bind: Option<String>,
    /// Also answer Postfix's SMTP AUTH (Dovecot protocol) on HOST:PORT or unix:PATH [env: KEYGATE_SASL_BIND]
    #[arg(long, global = true, value_name = "HOST:PORT|unix:PATH")]
    sasl_bind: Option<String>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Start the server (logs to stderr).
    #[command(
        after_help = "Example:\n  KEYGATE_ISSUER=https://id.example.com keygate serve --bind 0.0.0.0:8080"
    )]
    Serve,
    /// Seed a demo workspace, owner and client if absent, print how to try the flow, then serve.
    #[command(after_help = "Example:\n  cargo run --release -- demo")]
    Demo,
    /// Run pending database migrations and exit.
    #[command(
        after_help = "Example:\n  keygate migrate --database-url postgres://keygate@localhost/keygate"
    )]
    Migrate,
    /// Workspaces.
    #[command(
        subcommand,
        after_help = "Examples:\n  keygate --json workspace create --name Acme\n  keygate workspace set-plan WS_ID --plan free"
    )]
    Workspace(WorkspaceCmd),
    /// People who sign in.
    #[command(
        subcommand,
        after_help = "Example:\n  echo 'a long password' | keygate user create --email ada@example.com --password-stdin"
    )]
    User(UserCmd),
    /// Workspace memberships.
    #[command(
        subcommand,
        after_help = "Examples:\n  keygate member add --workspace WS_ID --user USER_ID --role owner\n  keygate member remove --workspace WS_ID --user USER_ID"
    )]
    Member(MemberCmd),
    /// OAuth clients (third-party apps).
    #[command(
        subcommand,
        after_help = "Examples:\n  keygate client create --name 'Acme CRM' --redirect-uri https://crm.example.com/callback\n  keygate --json client list\n  keygate client delete CLIENT_ID"
    )]
    Client(ClientCmd),
    /// Workspace API keys.
    #[command(
        subcommand,
        after_help = "Examples:\n  keygate apikey create --workspace WS_ID --name crm-sync --access read_only\n  keygate apikey create --workspace WS_ID --name forms --access custom --scope forms:read --allow-ip 203.0.113.0/24\n  keygate --json apikey list --workspace WS_ID\n  keygate apikey rotate KEY_ID --grace 7d\n  keygate apikey revoke KEY_ID"
    )]
    Apikey(ApikeyCmd),
    /// Mailboxes: a workspace's sending identities (SMTP).
    #[command(
        subcommand,
        after_help = "Examples:\n  keygate mailbox create --workspace WS_ID --address sales@example.com\n  keygate --json mailbox list --workspace WS_ID\n  keygate mailbox delete MAILBOX_ID"
    )]
    Mailbox(MailboxCmd),
    /// Mailbox auth keys: the SMTP password of one mailbox, one per sending tool.
    #[command(
        subcommand,
        after_help = "Examples:\n  keygate authkey create --mailbox MAILBOX_ID --name 'Outreach Primary'\n  keygate --json authkey list --mailbox MAILBOX_ID\n  keygate authkey disable KEY_ID"
    )]
    Authkey(AuthkeyCmd),
    /// Authorized apps (OAuth authorizations) of a workspace.
    #[command(
        subcommand,
        after_help = "Examples:\n  keygate --json apps list --workspace WS_ID\n  keygate apps revoke AUTHORIZATION_ID"
    )]
    Apps(AppsCmd),
    /// Access-token signing keys.
    #[command(subcommand, after_help = "Example:\n  keygate keys rotate")]
    Keys(KeysCmd),
    /// A workspace's security log.
    #[command(
        subcommand,
        after_help = "Example:\n  keygate --json audit list --workspace WS_ID --limit 20"
    )]
    Audit(AuditCmd),
    /// Copy the SQLite database to a new file; safe while keygate serves.
    #[command(
        after_help = "Example:\n  keygate --json backup --to /var/backups/keygate-2027-01-31.db\n\nSQLite only; for PostgreSQL use pg_dump -Fc."
    )]
    Backup {
        /// The backup file to write; it must not exist yet.
        #[arg(long, value_name = "FILE")]
        to: PathBuf,
    },
    /// Replace the SQLite database with a backup. Stop keygate first.
    #[command(
        after_help = "Example:\n  keygate restore --from /var/backups/keygate-2027-01-31.db\n\nThe backup is checked (a SQLite database that passes its integrity check and has\nkeygate's tables) before the configured database is replaced. SQLite only; for\nPostgreSQL use pg_restore."
    )]
    Restore {
        /// The backup to restore (made by keygate backup).
        #[arg(long, value_name = "FILE")]
        from: PathBuf,
    },
    /// Print a shell completion script on stdout.
    #[command(
        after_help = "Examples:\n  keygate completions bash > /etc/bash_completion.d/keygate\n  keygate completions zsh > \"${fpath[1]}/_keygate\"\n  keygate completions fish > ~/.config/fish/completions/keygate.fish"
    )]
    Completions {
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
}

/// Exit codes: 0 success, 1 refused input or failed operation, 2 usage error.
pub fn main() -> i32 {
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            let code = if e.use_stderr() { 2 } else { 0 };
            let _ = e.print();
            return code;
        }
    };
    let serving = matches!(cli.command, Command::Serve | Command::Demo);
    init_logging(serving);
    match run(cli) {
        Ok(()) => 0,
        Err(msg) => {
            // One line, whatever the cause wrote (libpq's messages span several).
            let line: Vec<&str> = msg
                .lines()
                .map(str::trim)
                .filter(|l| !l.is_empty())
                .collect();
            eprintln!("error: {}", line.join(" "));
            1
        }
    }
}

fn init_logging(serving: bool) {
    // Admin commands stay quiet at the default level: stderr holds only errors.
    let default = if serving { "info" } else { "error" };
    let mut builder =
        env_logger::Builder::from_env(env_logger::Env::default().default_filter_or(default));
    if crate::config::json_logs() {
        // One JSON object per line, for log shippers.
        builder.format(|buf, record| {
            use std::io::Write;
            let line = json!({
                "ts": chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
                "level": record.level().as_str(),
                "target": record.target(),
                "msg": record.args().to_string(),
            });
            writeln!(buf, "{line}")
        });
    } else {
        builder.format_timestamp_millis();
    }
    let _ = builder.try_init();
}

/// After a change other running nodes must honour (a revocation), wait until
/// their revocation poll has certainly seen it, so that the next request made
/// after this command returns is refused.
fn await_propagation(config: &Config) {
    std::thread::sleep(std::time::Duration::from_millis(
        config.revocation_poll_ms * 3 + 50,
    ));
}

struct Out {
    json: bool,
}

impl Out {
    fn emit(&self, value: Value, human: String) {
        if self.json {
            println!("{value}");
        } else {
            println!("{human}");
        }
    }
}

fn conn_for(config: &Config) -> Result<DbConn, String> {
    db::connect_single(&config.database_url)
}

fn time_or_null(t: Option<i64>) -> Value {
    t.map(|t| Value::String(rfc3339(t))).unwrap_or(Value::Null)
}

fn run(cli: Cli) -> Result<(), String> {
    // Completions need no configuration or database.
    if let Command::Completions { shell } = cli.command {
        return completions(shell);
    }
    let mut config = Config::resolve(cli.database_url, cli.issuer, cli.bind)?;
    if cli.sasl_bind.is_some() {
        config.sasl_bind = cli.sasl_bind;
    }
    let out = Out { json: cli.json };
    let e = |e: Error| e.to_string();
    match cli.command {
        Command::Serve => crate::cli::serve::run(config),
        Command::Demo => {
            let demo = {
                let mut conn = conn_for(&config)?;
                crate::node::demo::seed(&mut conn, &config).map_err(e)?
            };
            config.demo = true;
            print_demo(&config, &demo);
            if out.json {
                // The same, for scripts: one line on stdout before serving.
                println!(
                    "{}",
                    json!({
                        "workspace_id": demo.workspace_id,
                        "client_id": demo.client_id,
                        "redirect_uri": demo.redirect_uri,
                        "email": crate::node::demo::EMAIL,
                        "password": crate::node::demo::PASSWORD,
                        "code_verifier": crate::node::demo::VERIFIER,
                        "authorize_url": crate::node::demo::authorize_url(&config, &demo),
                    })
                );
            }
            crate::cli::serve::run(config)
        }
        Command::Migrate => {
            conn_for(&config)?;
            out.emit(
                json!({"migrated": true}),
                "migrations are up to date".into(),
            );
            Ok(())
        }
        Command::Workspace(cmd) => {
            let mut conn = conn_for(&config)?;
            workspace(&mut conn, &config, &out, cmd).map_err(e)
        }
        Command::User(UserCmd::Create {
            email,
            password_stdin: _,
        }) => {
            let password = read_password()?;
            let mut conn = conn_for(&config)?;
            let user = accounts::create_user(&mut conn, &email, &password).map_err(e)?;
            out.emit(
                json!({"id": user.id, "email": user.email}),
                format!("created user {} ({})", user.email, user.id),
            );
            Ok(())
        }
        Command::Member(cmd) => {
            let mut conn = conn_for(&config)?;
            member(&mut conn, &config, &out, cmd).map_err(e)
        }
        Command::Client(cmd) => {
            let mut conn = conn_for(&config)?;
            client(&mut conn, &config, &out, cmd).map_err(e)
        }
        Command::Apikey(cmd) => {
            let mut conn = conn_for(&config)?;
            apikey(&mut conn, &config, &out, cmd).map_err(e)
        }
        Command::Mailbox(cmd) => {
            let mut conn = conn_for(&config)?;
            mailbox(&mut conn, &config, &out, cmd).map_err(e)
        }
        Command::Authkey(cmd) => {
            let mut conn = conn_for(&config)?;
            authkey(&mut conn, &config, &out, cmd).map_err(e)
        }
        Command::Apps(cmd) => {
            let mut conn = conn_for(&config)?;
            apps(&mut conn, &config, &out, cmd).map_err(e)
        }
        Command::Keys(KeysCmd::Rotate) => {
            let mut conn = conn_for(&config)?;
            let kid = keys::rotate(&mut conn, config.master_key.as_ref()).map_err(e)?;
            out.emit(
                json!({"kid": kid}),
                format!(
                    "new signing key {kid}; older keys stay published until their tokens expire"
                ),
            );
            Ok(())
        }
        Command::Audit(cmd) => {
            let mut conn = conn_for(&config)?;
            audit(&mut conn, &out, cmd).map_err(e)
        }
        Command::Backup { to } => {
            let bytes = crate::db::backup::backup(&config.database_url, &to)?;
            out.emit(
                json!({"backup": to.display().to_string(), "bytes": bytes}),
                format!("backed up to {} ({bytes} bytes)", to.display()),
            );
            Ok(())
        }
        Command::Restore { from } => {
            let (database, bytes) = crate::db::backup::restore(&config.database_url, &from)?;
            out.emit(
                json!({"restored": from.display().to_string(), "database": database.display().to_string(), "bytes": bytes}),
                format!(
                    "restored {} into {} ({bytes} bytes)",
                    from.display(),
                    database.display()
                ),
            );
            Ok(())
        }
        Command::Completions { shell } => completions(shell),
    }
}
