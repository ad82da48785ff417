//! `/v1`: thin handlers over `crate::v1`. The extractor [`Caller`] runs the
//! check with the scope each endpoint needs; each handler parses, calls one
//! function of the area and answers; `error` writes every failure in the
//! contract's envelope.

mod body;
pub(crate) mod caller;
pub mod dpop;
pub mod error;

use super::{client_address, Svc};
use crate::credentials::bearer::Principal;
use crate::credentials::Credentials;
use crate::db::Pool;
use crate::mailboxes::authenticator::FailureLimit;
use crate::node::state::Services;
use crate::v1::{self as area, resources::Resource, V1Error};
use actix_web::http::header;
use actix_web::{web, HttpRequest, HttpResponse};
use caller::{
    Caller, FormsRead, FormsWrite, MailboxesRead, MailboxesWrite, TagsRead, TagsWrite,
    WorkspaceRead,
};
pub use error::ApiError;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::scope("/v1")
            .service(
                web::resource("/workspace")
                    .route(web::get().to(workspace))
                    .default_service(web::to(|| async { not_allowed("GET") })),
            )
            .service(
                web::resource("/tags")
                    .route(web::get().to(list_tags))
                    .route(web::post().to(create_tag))
                    .default_service(web::to(|| async { not_allowed("GET, POST") })),
            )
            .service(
                web::resource("/forms")
                    .route(web::get().to(list_forms))
                    .route(web::post().to(create_form))
                    .default_service(web::to(|| async { not_allowed("GET, POST") })),
            )
            .service(
                web::resource("/mailboxes")
                    .route(web::get().to(list_mailboxes))
                    .route(web::post().to(create_mailbox))
                    .default_service(web::to(|| async { not_allowed("GET, POST") })),
            )
            .service(
                web::resource("/mailboxes/{id}")
                    .route(web::get().to(get_mailbox))
                    .route(web::delete().to(delete_mailbox))
                    .default_service(web::to(|| async { not_allowed("GET, DELETE") })),
            )
            .service(
                web::resource("/domains")
                    .route(web::get().to(list_domains))
                    .route(web::post().to(create_domain))
                    .default_service(web::to(|| async { not_allowed("GET, POST") })),
            )
            .service(
                web::resource("/domains/{id}/verify")
                    .route(web::post().to(verify_domain))
                    .default_service(web::to(|| async { not_allowed("POST") })),
            )
            .default_service(web::to(not_found)),
    );
}

/// What `/v1` uses of this node.
impl area::Node for Services {
    fn pool(&self) -> &Pool {
        &self.pool
    }
    fn credentials(&self) -> &Credentials {
        &self.credentials
    }
    fn bearer_failures(&self) -> Option<&dyn FailureLimit> {
        self.limits.as_ref().map(|l| &l.bearer_address as _)
    }
    fn dns(&self) -> crate::mailboxes::domains::dns::Dns {
        crate::mailboxes::domains::dns::Dns::from_config(&self.config)
    }

    fn writes(&self) -> Option<&crate::db::group::Group> {
        Some(&self.writes)
    }
}

/// `/v1`'s RFC 9728 protected resource metadata, which a `401` names.
fn resource_metadata(svc: &Services) -> String {
    format!("{}/.well-known/oauth-protected-resource", svc.config.issuer)
}

/// A 500 in the envelope (for the panic guard in `http::panic`).
pub fn internal_error_response() -> HttpResponse {
    error::response(&V1Error::InternalError, None)
}

type Answer = Result<HttpResponse, ApiError>;

async fn workspace(svc: Svc, caller: Caller<WorkspaceRead>) -> Answer {
    let body = area::workspace(&svc, &caller.principal).await?;
    Ok(HttpResponse::Ok().json(body))
}

async fn list(svc: Svc, req: HttpRequest, caller: &Principal, resource: Resource) -> Answer {
    let query = body::list_query(&req)?;
    let page = area::resources::list(&svc, caller, resource, query).await?;
    Ok(HttpResponse::Ok().json(page))
}

async fn create(
    svc: Svc,
    req: HttpRequest,
    payload: web::Payload,
    caller: &Principal,
    resource: Resource,
) -> Answer {
    let name = body::field(&req, payload, "name").await?;
    let item = area::resources::create(&svc, caller, resource, &name).await?;
    Ok(HttpResponse::Created().json(item))
}

async fn list_tags(svc: Svc, caller: Caller<TagsRead>, req: HttpRequest) -> Answer {
    list(svc, req, &caller.principal, Resource::Tags).await
}

async fn create_tag(
    svc: Svc,
    caller: Caller<TagsWrite>,
    req: HttpRequest,
    payload: web::Payload,
) -> Answer {
    create(svc, req, payload, &caller.principal, Resource::Tags).await
}

async fn list_forms(svc: Svc, caller: Caller<FormsRead>, req: HttpRequest) -> Answer {
    list(svc, req, &caller.principal, Resource::Forms).await
}

async fn create_form(
    svc: Svc,
    caller: Caller<FormsWrite>,
    req: HttpRequest,
    payload: web::Payload,
) -> Answer {
    create(svc, req, payload, &caller.principal, Resource::Forms).await
}

async fn list_mailboxes(svc: Svc, caller: Caller<MailboxesRead>, req: HttpRequest) -> Answer {
    let query = body::list_query(&req)?;
    let page = area::mailboxes::list(&svc, &caller.principal, query).await?;
    Ok(HttpResponse::Ok().json(page))
}

async fn get_mailbox(svc: Svc, caller: Caller<MailboxesRead>, path: web::Path<String>) -> Answer {
    let mailbox = area::mailboxes::get(&svc, &caller.principal, path.into_inner()).await?;
    Ok(HttpResponse::Ok().json(mailbox))
}

async fn create_mailbox(
    svc: Svc,
    caller: Caller<MailboxesWrite>,
    req: HttpRequest,
    payload: web::Payload,
) -> Answer {
    let address = body::field(&req, payload, "address").await?;
    let from = client_address(&svc, &req);
    let mailbox = area::mailboxes::create(&svc, &caller.principal, address, from).await?;
    Ok(HttpResponse::Created().json(mailbox))
}

async fn delete_mailbox(
    svc: Svc,
    caller: Caller<MailboxesWrite>,
    req: HttpRequest,
    path: web::Path<String>,
) -> Answer {
    let from = client_address(&svc, &req);
    area::mailboxes::delete(&svc, &caller.principal, path.into_inner(), from).await?;
    Ok(HttpResponse::NoContent().finish())
}

async fn list_domains(svc: Svc, caller: Caller<MailboxesRead>, req: HttpRequest) -> Answer {
    let query = body::list_query(&req)?;
    let page = area::domains::list(&svc, &caller.principal, query).await?;
    Ok(HttpResponse::Ok().json(page))
}

async fn create_domain(
    svc: Svc,
    caller: Caller<MailboxesWrite>,
    req: HttpRequest,
    payload: web::Payload,
) -> Answer {
    let domain = body::field(&req, payload, "domain").await?;
    let from = client_address(&svc, &req);
    let made = area::domains::create(&svc, &caller.principal, domain, from).await?;
    Ok(HttpResponse::Created().json(made))
}

async fn verify_domain(
    svc: Svc,
    caller: Caller<MailboxesWrite>,
    req: HttpRequest,
    path: web::Path<String>,
) -> Answer {
    let from = client_address(&svc, &req);
    let id = path.into_inner();
    let verified = area::domains::verify(&svc, &caller.principal, id, from).await?;
    Ok(HttpResponse::Ok().json(verified))
}

async fn not_found() -> HttpResponse {
    error::response(&V1Error::NotFound("No such endpoint."), None)
}

fn not_allowed(allow: &'static str) -> HttpResponse {
    let mut r = error::response(&V1Error::MethodNotAllowed, None);
    r.headers_mut()
        .insert(header::ALLOW, header::HeaderValue::from_static(allow));
    r
}
