//! The `keygate` command line: serving, and the admin commands of the contract.
//! Bad input exits non-zero with one line on stderr and changes nothing.

pub mod serve;

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
        after_help = "Example:\n  keygate client create --name 'Acme CRM' --redirect-uri https://crm.example.com/callback"
    )]
    Client(ClientCmd),
    /// Workspace API keys.
    #[command(
        subcommand,
        after_help = "Examples:\n  keygate apikey create --workspace WS_ID --name crm-sync --access read_only\n  keygate --json apikey list --workspace WS_ID\n  keygate apikey revoke KEY_ID"
    )]
    Apikey(ApikeyCmd),
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

#[derive(Subcommand, Debug)]
enum WorkspaceCmd {
    /// Create a workspace.
    #[command(after_help = "Example:\n  keygate workspace create --name Acme --plan pro")]
    Create {
        #[arg(long)]
        name: String,
        /// free (no API access) or pro (API access).
        #[arg(long, default_value = "pro")]
        plan: String,
    },
    /// Change a workspace's plan.
    #[command(after_help = "Example:\n  keygate workspace set-plan WS_ID --plan free")]
    SetPlan {
        id: String,
        #[arg(long)]
        plan: String,
    },
}

#[derive(Subcommand, Debug)]
enum UserCmd {
    /// Create a user; the password is read from stdin (one line).
    #[command(
        after_help = "Example:\n  echo 'a long password' | keygate user create --email ada@example.com --password-stdin"
    )]
    Create {
        #[arg(long)]
        email: String,
        #[arg(long, required = true)]
        password_stdin: bool,
    },
}

#[derive(Subcommand, Debug)]
enum MemberCmd {
    /// Add a user to a workspace.
    #[command(
        after_help = "Example:\n  keygate member add --workspace WS_ID --user USER_ID --role owner"
    )]
    Add {
        #[arg(long)]
        workspace: String,
        #[arg(long)]
        user: String,
        /// owner, admin or member.
        #[arg(long)]
        role: String,
    },
    /// Remove a user from a workspace; revokes the apps they authorized there.
    #[command(after_help = "Example:\n  keygate member remove --workspace WS_ID --user USER_ID")]
    Remove {
        #[arg(long)]
        workspace: String,
        #[arg(long)]
        user: String,
    },
}

#[derive(Subcommand, Debug)]
enum ClientCmd {
    /// Register an OAuth client.
    #[command(
        after_help = "Example:\n  keygate client create --name 'Acme CRM' --redirect-uri https://crm.example.com/callback"
    )]
    Create {
        #[arg(long)]
        name: String,
        #[arg(long = "redirect-uri", required = true)]
        redirect_uris: Vec<String>,
        /// A public client (no secret; PKCE only), for native and browser apps.
        #[arg(long)]
        public: bool,
    },
}

#[derive(Subcommand, Debug)]
enum ApikeyCmd {
    /// Generate a key; the full key is printed once.
    #[command(
        after_help = "Example:\n  keygate apikey create --workspace WS_ID --name crm-sync --access read_only --expires 2027-01-31"
    )]
    Create {
        #[arg(long)]
        workspace: String,
        #[arg(long)]
        name: String,
        /// read_only or read_write.
        #[arg(long)]
        access: String,
        /// The last day the key works (YYYY-MM-DD, UTC); omit for never.
        #[arg(long)]
        expires: Option<String>,
    },
    /// List a workspace's keys, newest first.
    #[command(
        after_help = "Example:\n  keygate --json apikey list --workspace WS_ID --status active"
    )]
    List {
        #[arg(long)]
        workspace: String,
        /// Search name, creator, workspace or purpose.
        #[arg(long)]
        search: Option<String>,
        /// active, expired or revoked.
        #[arg(long)]
        status: Option<String>,
    },
    /// Give a key a new secret (printed once); the old one stops at once.
    #[command(after_help = "Example:\n  keygate apikey rotate KEY_ID")]
    Rotate { id: String },
    /// Revoke a key: immediate and final.
    #[command(after_help = "Example:\n  keygate apikey revoke KEY_ID")]
    Revoke { id: String },
    /// Daily request counts of a key (kept for 90 days), oldest first.
    #[command(after_help = "Example:\n  keygate --json apikey usage KEY_ID --days 30")]
    Usage {
        id: String,
        /// How many days back, up to 90.
        #[arg(long, default_value_t = 90)]
        days: i64,
    },
}

#[derive(Subcommand, Debug)]
enum AppsCmd {
    /// List a workspace's authorizations, newest first.
    #[command(after_help = "Example:\n  keygate --json apps list --workspace WS_ID")]
    List {
        #[arg(long)]
        workspace: String,
    },
    /// Revoke an authorization and every token issued under it.
    #[command(after_help = "Example:\n  keygate apps revoke AUTHORIZATION_ID")]
    Revoke { id: String },
}

#[derive(Subcommand, Debug)]
enum KeysCmd {
    /// Add a new signing key; older keys stay published until their tokens expire.
    #[command(after_help = "Example:\n  keygate keys rotate")]
    Rotate,
}

#[derive(Subcommand, Debug)]
enum AuditCmd {
    /// Show a workspace's security log, newest first.
    #[command(after_help = "Example:\n  keygate --json audit list --workspace WS_ID")]
    List(AuditList),
}

#[derive(Args, Debug)]
struct AuditList {
    #[arg(long)]
    workspace: String,
    #[arg(long, default_value_t = 100)]
    limit: i64,
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
    if std::env::var("KEYGATE_LOG_FORMAT").is_ok_and(|f| f.eq_ignore_ascii_case("json")) {
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
        Command::Client(ClientCmd::Create {
            name,
            redirect_uris,
            public,
        }) => {
            let mut conn = conn_for(&config)?;
            let created = crate::oauth::clients::create(&mut conn, &name, &redirect_uris, public)
                .map_err(e)?;
            let mut v = json!({"client_id": created.client.id});
            if let Some(secret) = &created.secret {
                v["client_secret"] = json!(secret);
            }
            let human = match &created.secret {
                Some(s) => format!(
                    "client_id: {}\nclient_secret: {s}\n(the secret is shown only now)",
                    created.client.id
                ),
                None => format!(
                    "client_id: {} (public client: no secret, PKCE only)",
                    created.client.id
                ),
            };
            out.emit(v, human);
            Ok(())
        }
        Command::Apikey(cmd) => {
            let mut conn = conn_for(&config)?;
            apikey(&mut conn, &config, &out, cmd).map_err(e)
        }
        Command::Apps(cmd) => {
            let mut conn = conn_for(&config)?;
            apps(&mut conn, &config, &out, cmd).map_err(e)
        }
        Command::Keys(KeysCmd::Rotate) => {
            let mut conn = conn_for(&config)?;
            let kid = keys::rotate(&mut conn).map_err(e)?;
            out.emit(
                json!({"kid": kid}),
                format!(
                    "new signing key {kid}; older keys stay published until their tokens expire"
                ),
            );
            Ok(())
        }
        Command::Audit(AuditCmd::List(a)) => {
            let mut conn = conn_for(&config)?;
            accounts::find_workspace(&mut conn, &a.workspace).map_err(e)?;
            for ev in
                crate::accounts::audit::list(&mut conn, &a.workspace, a.limit.clamp(1, 10_000))
                    .map_err(e)?
            {
                out.emit(
                    json!({"id": ev.id, "workspace_id": ev.workspace_id, "actor": ev.actor, "action": ev.action,
                           "subject": ev.subject, "client_address": ev.client_address, "created_at": rfc3339(ev.created_at)}),
                    format!("{}  {}  {}  {}", rfc3339(ev.created_at), ev.action, ev.subject, ev.actor),
                );
            }
            Ok(())
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

fn completions(shell: clap_complete::Shell) -> Result<(), String> {
    crate::db::backup::completions(shell, &mut Cli::command(), &mut std::io::stdout())
}

fn read_password() -> Result<String, String> {
    let mut line = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut line)
        .map_err(|e| format!("cannot read the password from stdin: {e}"))?;
    let password = line.trim_end_matches(['\n', '\r']).to_string();
    if password.is_empty() {
        return Err("no password on stdin (pipe one line into --password-stdin)".into());
    }
    Ok(password)
}

fn workspace(
    conn: &mut DbConn,
    config: &Config,
    out: &Out,
    cmd: WorkspaceCmd,
) -> Result<(), Error> {
    match cmd {
        WorkspaceCmd::Create { name, plan } => {
            let ws = accounts::create_workspace(conn, &name, Plan::parse(&plan)?)?;
            out.emit(
                json!({"id": ws.id, "name": ws.name}),
                format!(
                    "created workspace {} ({}, plan {})",
                    ws.name, ws.id, ws.plan
                ),
            );
        }
        WorkspaceCmd::SetPlan { id, plan } => {
            let ws = apikeys::set_plan(conn, &id, Plan::parse(&plan)?)?;
            await_propagation(config);
            out.emit(
                json!({"id": ws.id, "name": ws.name, "plan": ws.plan}),
                format!("workspace {} is now on plan {}", ws.id, ws.plan),
            );
        }
    }
    Ok(())
}

fn member(conn: &mut DbConn, config: &Config, out: &Out, cmd: MemberCmd) -> Result<(), Error> {
    match cmd {
        MemberCmd::Add {
            workspace,
            user,
            role,
        } => {
            let role = Role::parse(&role)?;
            let m = accounts::add_member(conn, &workspace, &user, role)?;
            out.emit(
                json!({"workspace_id": m.workspace_id, "user_id": m.user_id, "role": m.role}),
                format!(
                    "added user {} to workspace {} as {}",
                    m.user_id, m.workspace_id, m.role
                ),
            );
        }
        MemberCmd::Remove { workspace, user } => {
            let revoked =
                authorizations::remove_member(conn, &workspace, &user, apikeys::CLI_ACTOR)?;
            await_propagation(config);
            out.emit(
                json!({"workspace_id": workspace, "user_id": user, "removed": true, "revoked_authorizations": revoked}),
                format!("removed user {user} from workspace {workspace}; revoked {revoked} authorization(s)"),
            );
        }
    }
    Ok(())
}

fn key_json(key: &apikeys::ApiKey, secret: Option<&str>) -> Value {
    let mut v = json!({
        "id": key.id,
        "prefix": key.prefix(),
        "access": key.access,
        "expires_at": time_or_null(key.expires_at),
    });
    if let Some(s) = secret {
        v["key"] = json!(s);
    }
    v
}

fn apikey(conn: &mut DbConn, config: &Config, out: &Out, cmd: ApikeyCmd) -> Result<(), Error> {
    match cmd {
        ApikeyCmd::Create {
            workspace,
            name,
            access,
            expires,
        } => {
            let access = Access::parse(&access)?;
            if expires.as_deref().is_some_and(|e| e.trim().is_empty()) {
                return Err(Error::invalid(
                    "--expires needs a date (YYYY-MM-DD); omit it for a key that never expires",
                ));
            }
            let expires_at = apikeys::parse_expiry(expires.as_deref())?;
            let issued = apikeys::create(
                conn,
                &workspace,
                &name,
                access,
                expires_at,
                apikeys::CLI_ACTOR,
                None,
            )?;
            out.emit(
                key_json(&issued.key, Some(&issued.secret)),
                format!(
                    "{}\n(key {} \"{}\"; shown only now: store it safely)",
                    issued.secret, issued.key.id, issued.key.name
                ),
            );
        }
        ApikeyCmd::List {
            workspace,
            search,
            status,
        } => {
            if let Some(s) = status.as_deref() {
                if !["active", "expired", "revoked"].contains(&s) {
                    return Err(Error::invalid(format!(
                        "unknown status {s:?}: expected active, expired or revoked"
                    )));
                }
            }
            accounts::find_workspace(conn, &workspace)?;
            let now = db::now();
            for row in apikeys::list(
                conn,
                &workspace,
                &ListFilter {
                    query: search,
                    status,
                },
            )? {
                let k = &row.key;
                let mut v = key_json(k, None);
                v["name"] = json!(k.name);
                v["workspace_id"] = json!(k.workspace_id);
                v["created_by"] = json!(row.creator);
                v["created_at"] = json!(rfc3339(k.created_at));
                v["usage_count"] = json!(k.usage_count);
                v["last_used_at"] = time_or_null(k.last_used_at);
                v["status"] = json!(k.status_at(now).as_str());
                out.emit(
                    v,
                    format!(
                        "{}  {:<24} {:<10} {:<8} used {}",
                        k.prefix(),
                        k.name,
                        k.access,
                        k.status_at(now).as_str(),
                        k.usage_count
                    ),
                );
            }
        }
        ApikeyCmd::Rotate { id } => {
            let issued = apikeys::rotate(
                conn,
                &CredentialCache::detached(),
                &id,
                apikeys::CLI_ACTOR,
                None,
            )?;
            await_propagation(config);
            out.emit(
                key_json(&issued.key, Some(&issued.secret)),
                format!(
                    "{}\n(new secret for key {}; the old one no longer works)",
                    issued.secret, issued.key.id
                ),
            );
        }
        ApikeyCmd::Usage { id, days } => {
            if !(1..=crate::credentials::usage::RETENTION_DAYS).contains(&days) {
                return Err(Error::invalid("--days must be from 1 to 90"));
            }
            let key = apikeys::find(conn, &id)?;
            let today = crate::credentials::usage::day_of(db::now());
            let series = crate::credentials::usage::series(
                conn,
                crate::credentials::usage::API_KEY,
                &key.id,
                today - days + 1,
            )?;
            let counts: std::collections::HashMap<i64, i64> = series.into_iter().collect();
            for day in (today - days + 1)..=today {
                let n = counts.get(&day).copied().unwrap_or(0);
                let date = crate::credentials::usage::date_of(day);
                out.emit(
                    json!({"id": key.id, "date": date, "count": n}),
                    format!("{date}  {n}"),
                );
            }
        }
        ApikeyCmd::Revoke { id } => {
            let key = apikeys::revoke(
                conn,
                &CredentialCache::detached(),
                &id,
                apikeys::CLI_ACTOR,
                None,
            )?;
            await_propagation(config);
            out.emit(
                json!({"id": key.id, "status": "revoked"}),
                format!("revoked key {} ({})", key.id, key.name),
            );
        }
    }
    Ok(())
}

fn apps(conn: &mut DbConn, config: &Config, out: &Out, cmd: AppsCmd) -> Result<(), Error> {
    match cmd {
        AppsCmd::List { workspace } => {
            accounts::find_workspace(conn, &workspace)?;
            for row in authorizations::list_for_workspace(conn, &workspace)? {
                let a = &row.authorization;
                out.emit(
                    json!({
                        "id": a.id,
                        "app_name": row.app_name,
                        "client_id": a.client_id,
                        "workspace_id": a.workspace_id,
                        "scopes": scopes::split(&a.scopes),
                        "authorized_at": rfc3339(a.created_at),
                        "status": a.status(),
                        "authorized_by": row.authorized_by,
                        "last_used_at": time_or_null(a.last_used_at),
                    }),
                    format!(
                        "{}  {:<24} {:<8} {}  {}",
                        a.id,
                        row.app_name,
                        a.status(),
                        rfc3339(a.created_at),
                        a.scopes
                    ),
                );
            }
        }
        AppsCmd::Revoke { id } => {
            let a = authorizations::revoke(
                conn,
                &CredentialCache::detached(),
                &id,
                authorizations::Cause::Person {
                    actor: apikeys::CLI_ACTOR,
                    address: None,
                },
            )?;
            await_propagation(config);
            out.emit(
                json!({"id": a.id, "status": "revoked"}),
                format!("revoked authorization {}", a.id),
            );
        }
    }
    Ok(())
}

fn print_demo(config: &Config, demo: &crate::node::demo::Demo) {
    eprintln!(
        "\nkeygate demo\n\
         ------------\n\
         Sign in as:      {email} / {password}\n\
         Workspace:       {ws}\n\
         Demo client:     {client} (public, PKCE)\n\n\
         1. Open this authorization request in a browser, sign in and approve:\n   {url}\n\
         2. The demo callback page shows the code and the curl command that exchanges it.\n\
         3. Manage API keys and authorized apps at {issuer}/settings\n",
        email = crate::node::demo::EMAIL,
        password = crate::node::demo::PASSWORD,
        ws = demo.workspace_id,
        client = demo.client_id,
        url = crate::node::demo::authorize_url(config, demo),
        issuer = config.issuer,
    );
}
