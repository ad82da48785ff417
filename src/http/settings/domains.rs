//! The Domains section of the Mailboxes page: add a sending domain, see the
//! TXT record to publish (with copy buttons), Verify it (with what DNS
//! answered when it fails), its status and last check, and remove it.
//! Owners and admins only; the rules are `mailboxes::domains`'.

use super::mailboxes::{render_refused, DomainForm};
use super::*;
use crate::mailboxes::domains::{self, dns::Dns, SendingDomain, Verification};

/// A domain as the page shows it.
pub(super) struct DomainLine {
    pub(super) id: String,
    pub(super) domain: String,
    pub(super) status: String,
    pub(super) txt_name: String,
    pub(super) txt_value: String,
    pub(super) verified: String,
    pub(super) checked: String,
    pub(super) by_operator: bool,
}

impl DomainLine {
    pub(super) fn of(d: &SendingDomain) -> DomainLine {
        DomainLine {
            id: d.id.clone(),
            domain: d.domain.clone(),
            status: d.status.clone(),
            txt_name: d.txt_name(),
            txt_value: d.txt_value(),
            verified: day(d.verified_at, "not yet"),
            checked: day(d.checked_at, "never"),
            by_operator: d.by_operator,
        }
    }
}

/// The notices of this section.
pub(super) fn notice_text(code: &str) -> Option<&'static str> {
    match code {
        "domain_added" => Some("Domain added. Publish its TXT record, then verify it."),
        "domain_verified" => Some("Domain verified. Its mailboxes may send."),
        "domain_removed" => Some("Domain removed, with its mailboxes."),
        _ => None,
    }
}

const NEXT: &str = "/settings/mailboxes";

pub(super) fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/settings/domains", web::post().to(add_domain))
        .route(
            "/settings/domains/{id}/verify",
            web::post().to(verify_domain),
        )
        .route(
            "/settings/domains/{id}/remove",
            web::post().to(remove_domain),
        );
}

fn page_url(workspace_id: &str, notice: &str) -> String {
    format!("/settings/mailboxes?workspace={workspace_id}&notice={notice}#domains-title")
}

async fn add_domain(svc: Svc, post: FormPost) -> HttpResponse {
    on_post(svc, post, |svc, conn, post| {
        let ctx = manager_of_posted(conn, post, "add sending domains", NEXT)?;
        let typed = field(&post.form, "domain");
        match domains::add(conn, &ctx.current.id, &typed, false, by(&ctx, post)) {
            Ok(d) => Ok(Page::SeeOther(page_url(&d.workspace_id, "domain_added"))),
            Err(e) => render_refused(svc, conn, &ctx, e, DomainForm { typed: &typed }),
        }
    })
    .await
}

const MANAGE: Guard = Guard {
    what: "manage its sending domains",
    missing: "No such domain.",
    next: NEXT,
};

fn managed_domain(
    conn: &mut DbConn,
    post: &FormPost,
    id: &str,
) -> Result<(Box<Context>, SendingDomain), Stop> {
    let found = domains::find(conn, id);
    managed(conn, post, &MANAGE, found, |d| &d.workspace_id)
}

/// What the first step of a verification leads to.
enum First {
    Answer(Page),
    Lookup(SendingDomain),
}

/// The guard, and whether DNS must be asked (a domain another workspace
/// holds is refused at once).
fn first_step(svc: &Services, conn: &mut DbConn, post: &FormPost, id: &str) -> Result<First, Stop> {
    let (ctx, d) = managed_domain(conn, post, id)?;
    match domains::begin(conn, d) {
        Ok(Verification::Done(d)) => Ok(First::Answer(Page::SeeOther(page_url(
            &d.workspace_id,
            "domain_verified",
        )))),
        Ok(Verification::Lookup(d)) => Ok(First::Lookup(d)),
        Err(e) => Ok(First::Answer(render_refused(
            svc,
            conn,
            &ctx,
            e,
            DomainForm::default(),
        )?)),
    }
}

/// Verify: the guard, then DNS (no connection held while it answers), then
/// the outcome: back with a notice, or the page with what DNS answered.
async fn verify_domain(svc: Svc, path: web::Path<String>, post: FormPost) -> HttpResponse {
    let id = path.into_inner();
    let step = crate::http::with_conn(&svc, move |svc, conn| {
        let first = match first_step(svc, conn, &post, &id) {
            Ok(first) => first,
            Err(stop) => First::Answer(stop.settle()?),
        };
        Ok((post, first))
    })
    .await;
    let (post, d) = match step {
        Ok((post, First::Lookup(d))) => (post, d),
        Ok((_, First::Answer(page))) => return respond(Ok(page)),
        Err(e) => return respond(Err(e)),
    };
    let answer = Dns::from_config(&svc.config).txt(&d.txt_name()).await;
    on_post(svc, post, move |svc, conn, post| {
        let (ctx, d) = managed_domain(conn, post, &d.id)?;
        let cache = &svc.credentials.cache;
        match domains::conclude(conn, cache, &d, &answer, by(&ctx, post)) {
            Ok(d) => Ok(Page::SeeOther(page_url(&d.workspace_id, "domain_verified"))),
            Err(e) => render_refused(svc, conn, &ctx, e, DomainForm::default()),
        }
    })
    .await
}

/// Remove, with the domain typed to confirm it: its mailboxes go too.
async fn remove_domain(svc: Svc, path: web::Path<String>, post: FormPost) -> HttpResponse {
    on_post(svc, post, move |svc, conn, post| {
        let (ctx, d) = managed_domain(conn, post, &path)?;
        let typed = field(&post.form, "confirm_domain");
        if !typed.trim().eq_ignore_ascii_case(&d.domain) {
            let e = Error::invalid(format!(
                "To remove the domain, type it exactly: {}",
                d.domain
            ));
            return render_refused(svc, conn, &ctx, e, DomainForm::default());
        }
        let cache = &svc.credentials.cache;
        let keys = &crate::apikeys::RESTRICTED_KEYS;
        domains::remove(conn, cache, &d.id, by(&ctx, post), keys)?;
        Ok(Page::SeeOther(page_url(&d.workspace_id, "domain_removed")))
    })
    .await
}
