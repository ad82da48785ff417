//! The `keygate` command line: serving, and the admin commands of the contract.
//! Bad input exits non-zero with one line on stderr and changes nothing.

mod admin;
mod apikey;
mod domain;
mod issuer;
mod machine;
mod mailbox;
mod ops;
mod output;
mod people;
mod resource;
pub mod serve;

use self::apikey::ApikeyCmd;
use self::domain::DomainCmd;
use self::issuer::{AppsCmd, ClientCmd, KeysCmd};
use self::mailbox::{AuthkeyCmd, MailboxCmd};
use self::ops::{completions, AuditCmd};
use self::output::{LogLine, Out};
use self::people::{MemberCmd, UserCmd, WorkspaceCmd};
use self::resource::ResourceCmd;

use crate::config::Config;
use crate::db::{self, DbConn};
use crate::error::Error;
use clap::{Parser, Subcommand};
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
    /// Sending domains: a workspace's mailboxes may only be in domains it has verified by DNS.
    #[command(
        subcommand,
        after_help = "Examples:\n  keygate domain add --workspace WS_ID --domain example.com\n  keygate domain verify DOMAIN_ID\n  keygate --json domain list --workspace WS_ID\n  keygate domain remove DOMAIN_ID"
    )]
    Domain(DomainCmd),
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
    /// Protected resources: the product's own APIs that trust keygate's
    /// credentials (through a gateway, or by introspection).
    #[command(
        subcommand,
        after_help = "Examples:\n  keygate resource create --identifier https://api.example.com --name 'Acme API' --route 'GET /tags tags:read'\n  keygate --json resource list\n  keygate resource delete RESOURCE_ID"
    )]
    Resource(ResourceCmd),
    /// Identity providers a workspace trusts for identity assertion grants.
    #[command(
        subcommand,
        after_help = "Examples:\n  keygate trust add --workspace WS_ID --idp-issuer https://idp.example.com --jwks-uri https://idp.example.com/jwks\n  keygate --json trust list --workspace WS_ID\n  keygate trust remove TRUST_ID"
    )]
    Trust(machine::TrustCmd),
    /// Access-token signing keys.
    #[command(subcommand, after_help = "Example:\n  keygate keys rotate")]
    Keys(KeysCmd),
    /// A workspace's security log.
    #[command(
        subcommand,
        after_help = "Example:\n  keygate --json audit list --workspace WS_ID --limit 20"
    )]
    Audit(AuditCmd),
    /// Admin tokens: the bearer tokens of the admin API (/admin/v1).
    #[command(
        subcommand,
        name = "admin-token",
        after_help = "Examples:\n  keygate --json admin-token create --name product-backend\n  keygate admin-token revoke TOKEN_ID"
    )]
    AdminToken(admin::AdminTokenCmd),
    /// Webhook endpoints: where events are delivered.
    #[command(
        subcommand,
        after_help = "Examples:\n  keygate --json webhook create --url https://hooks.example.com/keygate\n  keygate --json webhook deliveries ENDPOINT_ID"
    )]
    Webhook(admin::WebhookCmd),
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
            let line = LogLine {
                level: record.level().as_str(),
                msg: record.args().to_string(),
                target: record.target().to_string(),
                ts: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
            };
            writeln!(
                buf,
                "{}",
                serde_json::to_string(&line).map_err(std::io::Error::other)?
            )
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

fn conn_for(config: &Config) -> Result<DbConn, String> {
    db::connect_single(&config.database_url)
}

/// Runs a command of the database on one connection; its error as one line.
fn with_conn(
    config: &Config,
    command: impl FnOnce(&mut DbConn) -> Result<(), Error>,
) -> Result<(), String> {
    let mut conn = conn_for(config)?;
    command(&mut conn).map_err(|e| e.to_string())
}

fn run(cli: Cli) -> Result<(), String> {
    // Completions need no configuration or database.
    if let Command::Completions { shell } = cli.command {
        return completions(shell);
    }
    // Events written by commands name what they are about.
    crate::accounts::install_names(&crate::node::names::AreaNames);
    let mut config = Config::resolve(cli.database_url, cli.issuer, cli.bind)?;
    if cli.sasl_bind.is_some() {
        config.sasl_bind = cli.sasl_bind;
    }
    dispatch(cli.command, config, &Out { json: cli.json })
}

fn dispatch(command: Command, config: Config, out: &Out) -> Result<(), String> {
    let cfg = &config;
    match command {
        Command::Serve => serve::run(config),
        Command::Demo => ops::demo(config, out),
        Command::Migrate => ops::migrate(cfg, out),
        Command::Workspace(cmd) => with_conn(cfg, |c| people::workspace(c, cfg, out, cmd)),
        Command::User(cmd) => people::user(cfg, out, cmd),
        Command::Member(cmd) => with_conn(cfg, |c| people::member(c, cfg, out, cmd)),
        Command::Client(cmd) => with_conn(cfg, |c| issuer::client(c, cfg, out, cmd)),
        Command::Apikey(cmd) => with_conn(cfg, |c| apikey::apikey(c, cfg, out, cmd)),
        Command::Mailbox(cmd) => with_conn(cfg, |c| mailbox::mailbox(c, cfg, out, cmd)),
        Command::Domain(cmd) => with_conn(cfg, |c| domain::domain(c, cfg, out, cmd)),
        Command::Authkey(cmd) => with_conn(cfg, |c| mailbox::authkey(c, cfg, out, cmd)),
        Command::Apps(cmd) => with_conn(cfg, |c| issuer::apps(c, cfg, out, cmd)),
        Command::Resource(cmd) => with_conn(cfg, |c| resource::resource(c, cfg, out, cmd)),
        Command::Trust(cmd) => with_conn(cfg, |c| machine::trust(c, out, cmd)),
        Command::Keys(cmd) => with_conn(cfg, |c| issuer::keys(c, cfg, out, cmd)),
        Command::Audit(cmd) => with_conn(cfg, |c| ops::audit(c, out, cmd)),
        Command::AdminToken(cmd) => with_conn(cfg, |c| admin::admin_token(c, out, cmd)),
        Command::Webhook(cmd) => with_conn(cfg, |c| admin::webhook(c, cfg, out, cmd)),
        Command::Backup { to } => ops::backup(cfg, out, &to),
        Command::Restore { from } => ops::restore(cfg, out, &from),
        Command::Completions { shell } => completions(shell),
    }
}
