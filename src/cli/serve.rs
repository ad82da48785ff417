//! Starting and stopping a serving node.

use crate::config::Config;
use crate::mailboxes::authenticator::MailboxAuthenticator;
use crate::node::state::Services;
use crate::smtp;
use actix_web::dev::ServerHandle;
use actix_web::middleware::from_fn;
use actix_web::{web, App, HttpServer};
use std::net::TcpListener;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

/// Opens the database, loads keys, binds, serves until SIGTERM/SIGINT, drains
/// in-flight requests, and writes the last usage counts.
pub fn run(config: Config) -> Result<(), String> {
    let config = config.serving()?;
    warn_if_unsealed(&config);
    let open_files = raise_open_files_limit();
    // A bad SASL address fails before anything else starts.
    let sasl_bind = config
        .sasl_bind
        .as_deref()
        .map(smtp::Bind::parse)
        .transpose()
        .map_err(|e| format!("KEYGATE_SASL_BIND: {e}"))?;
    let pool = crate::db::connect(&config.database_url, config.db_pool_size)?;
    let listener = TcpListener::bind(&config.bind)
        .map_err(|e| format!("cannot listen on {}: {e}", config.bind))?;
    let services = Arc::new(Services::new(config, pool)?);
    let addr = listener.local_addr().map_err(|e| e.to_string())?;
    log::info!(
        "keygate listening on http://{addr} (issuer {})",
        services.config.issuer
    );
    let stop = Arc::new(AtomicBool::new(false));
    let maintenance = crate::node::maintenance::spawn(services.clone(), stop.clone());
    log_metrics_listener(&services.config);
    let sasl = sasl_bind.map(|bind| (bind, sasl_limits(&services.config, open_files)));
    let result = actix_web::rt::System::new().block_on(serve_all(services, listener, sasl));
    stop.store(true, Ordering::Relaxed);
    let _ = maintenance.join();
    log::info!("keygate stopped");
    result
}

fn warn_if_unsealed(config: &Config) {
    if config.master_key.is_none() {
        log::warn!(
            "KEYGATE_MASTER_KEY is not set: signing keys are stored unencrypted in the database. \
             Set it to a long random value to encrypt them at rest."
        );
    }
}

/// Says where `/metrics` is served, if anywhere.
fn log_metrics_listener(config: &Config) {
    match (&config.metrics_bind, &config.metrics_token) {
        (Some(bind), _) => log::info!("/metrics is served on http://{bind} only"),
        (None, Some(_)) => {
            log::info!("/metrics is served on the main listener to KEYGATE_METRICS_TOKEN only")
        }
        (None, None) => log::info!(
            "/metrics is off: set KEYGATE_METRICS_BIND (a private address) or KEYGATE_METRICS_TOKEN"
        ),
    }
}

/// Serves HTTP, and SMTP AUTH when asked, until HTTP stops.
async fn serve_all(
    services: Arc<Services>,
    listener: TcpListener,
    sasl: Option<(smtp::Bind, smtp::Limits)>,
) -> Result<(), String> {
    let smtp_auth = match sasl {
        Some((bind, limits)) => Some(start_sasl(&bind, services.clone(), limits).await?),
        None => None,
    };
    let deliverer = crate::webhooks::delivery::Deliverer {
        pool: services.pool.clone(),
        client: services.outbound.clone(),
        master_key: services.config.master_key,
    };
    let webhooks = actix_web::rt::spawn(crate::webhooks::delivery::run(deliverer));
    let result = serve_http(services, listener).await;
    webhooks.abort();
    if let Some(task) = smtp_auth {
        // Dropping the listener's future ends its connections (and removes
        // a unix socket).
        task.abort();
        let _ = task.await;
    }
    result
}

/// Binds the Dovecot-protocol listener for Postfix's SMTP AUTH and serves it on
/// this runtime until the returned task is aborted.
async fn start_sasl(
    bind: &smtp::Bind,
    services: Arc<Services>,
    limits: smtp::Limits,
) -> Result<actix_web::rt::task::JoinHandle<()>, String> {
    let listener = smtp::Listener::bind(bind)
        .await
        .map_err(|e| format!("cannot listen on {bind} for SASL: {e}"))?;
    let at = listener.local_addr().map_err(|e| e.to_string())?;
    log::info!(
        "keygate SMTP AUTH (Dovecot protocol) listening on {at} (at most {} connections, {} per peer)",
        limits.max_connections,
        limits.max_connections_per_peer
    );
    let auth = Arc::new(MailboxAuthenticator::new(services));
    Ok(actix_web::rt::spawn(smtp::serve(listener, auth, limits)))
}
/// Raises the soft limit on open files to the hard one (every connection,
/// HTTP or SMTP AUTH, holds a descriptor, and the usual soft limit is 1024),
/// logs the outcome and answers the soft limit in force, when known.
fn raise_open_files_limit() -> Option<u64> {
    let before = rlimit::Resource::NOFILE.get().ok();
    match rlimit::increase_nofile_limit(rlimit::INFINITY) {
        Ok(now) => {
            match before {
                Some((soft, _)) if soft < now => {
                    log::info!("open files limit raised from {soft} to {now} (the hard limit)")
                }
                _ => log::info!("open files limit: {now}"),
            }
            Some(now)
        }
        Err(e) => {
            log::warn!("cannot raise the open files limit: {e}");
            before.map(|(soft, _)| soft)
        }
    }
}

/// The SMTP AUTH listener's limits: the defaults, the settings, and at most
/// half the open files limit, so that its connections cannot take the
/// descriptors HTTP and the database need.
fn sasl_limits(config: &Config, open_files: Option<u64>) -> smtp::Limits {
    let mut limits = smtp::Limits::default();
    if let Some(n) = config.sasl_max_connections {
        limits.max_connections = n;
    }
    if let Some(n) = config.sasl_max_connections_per_peer {
        limits.max_connections_per_peer = n;
    }
    if let Some(files) = open_files {
        let budget = usize::try_from(files / 2).unwrap_or(usize::MAX).max(1);
        if limits.max_connections > budget && config.sasl_bind.is_some() {
            log::warn!(
                "SMTP AUTH: {} connections would take more than half the open files limit ({files}): serving at most {budget}",
                limits.max_connections
            );
        }
        limits.max_connections = limits.max_connections.min(budget);
    }
    limits
}

/// Serves HTTP (and metrics on their own listener when asked) until SIGTERM or
/// SIGINT, draining in-flight requests.
async fn serve_http(services: Arc<Services>, listener: TcpListener) -> Result<(), String> {
    let data = web::Data::from(services.clone());
    let https = services.config.https();
    let server = HttpServer::new(move || {
        let config = &data.config;
        App::new()
            .app_data(data.clone())
            // Innermost: a panicking handler becomes a 500 that the headers
            // and the request log below still see.
            .wrap(from_fn(crate::http::panic::catch_panic))
            .wrap(crate::http::default_headers(https))
            .wrap(from_fn(crate::http::observe::observe))
            .configure(|cfg| crate::http::configure(cfg, config))
            .configure(crate::http::demo::configure)
    })
    .shutdown_timeout(10)
    .listen(listener)
    .map_err(|e| format!("cannot serve: {e}"))?
    .run();
    let metrics = match &services.config.metrics_bind {
        Some(bind) => Some(start_metrics(bind, services.clone())?),
        None => None,
    };
    let result = server.await.map_err(|e| format!("server error: {e}"));
    if let Some(handle) = metrics {
        handle.stop(true).await;
    }
    result
}

/// Metrics on their own listener, away from the public one, until stopped.
fn start_metrics(bind: &str, services: Arc<Services>) -> Result<ServerHandle, String> {
    let data = web::Data::from(services);
    let metrics = HttpServer::new(move || {
        App::new()
            .app_data(data.clone())
            .route("/metrics", web::get().to(crate::http::metrics))
    })
    .workers(1)
    .bind(bind)
    .map_err(|e| format!("cannot listen on {bind} for metrics: {e}"))?
    .run();
    let handle = metrics.handle();
    actix_web::rt::spawn(metrics);
    Ok(handle)
}
