//! `/admin/v1/workspaces` and their members.

use super::{caller, change, gone, json_body, list_query, post, read, to_value, Answer, Made};
use crate::accounts::{self, directory, members, Plan, Role, Workspace};
use crate::admin;
use crate::db::paging::Listed;
use crate::http::Svc;
use actix_web::{web, HttpRequest};
use serde::Deserialize;
use serde_json::{json, Value};

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/workspaces", web::post().to(create))
        .route("/workspaces", web::get().to(list))
        .route("/workspaces/{id}", web::get().to(get))
        .route("/workspaces/{id}", web::patch().to(update))
        .route("/workspaces/{id}", web::delete().to(delete))
        .route("/workspaces/{id}/members", web::get().to(list_members))
        .route(
            "/workspaces/{id}/members/{person}",
            web::put().to(put_member),
        )
        .route(
            "/workspaces/{id}/members/{person}",
            web::delete().to(remove_member),
        );
}

pub fn workspace_json(w: &Workspace) -> Value {
    json!({
        "id": w.id, "name": w.name, "plan": w.plan, "external_id": w.external_id,
        "created_at": crate::db::rfc3339(w.created_at),
    })
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewWorkspace {
    name: String,
    plan: Option<String>,
    external_id: Option<String>,
}

async fn create(svc: Svc, req: HttpRequest, payload: web::Payload) -> Answer {
    let caller = caller(&svc, &req).await?;
    let (body, raw): (NewWorkspace, _) = json_body(&req, payload).await?;
    post(&svc, &req, caller, raw, move |_, conn, by| {
        let plan = Plan::parse(body.plan.as_deref().unwrap_or("pro"))?;
        let ws =
            directory::create_workspace(conn, &body.name, plan, body.external_id.as_deref(), by)?;
        Ok(Made::created(workspace_json(&ws)))
    })
    .await
}

async fn list(svc: Svc, req: HttpRequest) -> Answer {
    caller(&svc, &req).await?;
    let (paging, q) = list_query(&req)?;
    if q.email.is_some() {
        return Err(super::AdminError::invalid(
            "workspaces are not looked up by email",
        ));
    }
    read(&svc, move |_, conn| {
        let page = match &q.external_id {
            Some(ext) => Listed::one(directory::workspace_by_external_id(conn, ext)?),
            None => directory::list_workspaces(conn, &paging)?,
        };
        Ok(to_value(&page.map(|w| workspace_json(&w))))
    })
    .await
}

async fn get(svc: Svc, req: HttpRequest, id: web::Path<String>) -> Answer {
    caller(&svc, &req).await?;
    let id = id.into_inner();
    read(&svc, move |_, conn| {
        Ok(workspace_json(&accounts::find_workspace(conn, &id)?))
    })
    .await
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct WorkspacePatch {
    name: Option<String>,
    plan: Option<String>,
}

async fn update(
    svc: Svc,
    req: HttpRequest,
    id: web::Path<String>,
    payload: web::Payload,
) -> Answer {
    let caller = caller(&svc, &req).await?;
    let (body, _): (WorkspacePatch, _) = json_body(&req, payload).await?;
    let id = id.into_inner();
    change(&svc, caller, move |_, conn, by| {
        let plan = body.plan.as_deref().map(Plan::parse).transpose()?;
        let ws = admin::workspaces::update(conn, &id, body.name.as_deref(), plan, by)?;
        Ok(Made::ok(workspace_json(&ws)))
    })
    .await
}

async fn delete(svc: Svc, req: HttpRequest, id: web::Path<String>) -> Answer {
    let caller = caller(&svc, &req).await?;
    let id = id.into_inner();
    change(&svc, caller, move |svc, conn, by| {
        admin::workspaces::delete(conn, &svc.credentials.cache, &id, by)?;
        Ok(gone())
    })
    .await
}

fn member_json(workspace_id: &str, m: &members::Member) -> Value {
    json!({
        "workspace_id": workspace_id, "user_id": m.user_id, "email": m.email,
        "role": m.role.as_str(), "created_at": crate::db::rfc3339(m.joined_at),
    })
}

async fn list_members(svc: Svc, req: HttpRequest, id: web::Path<String>) -> Answer {
    caller(&svc, &req).await?;
    let (paging, q) = list_query(&req)?;
    if q.email.is_some() || q.external_id.is_some() {
        return Err(super::AdminError::invalid(
            "members are listed by page only",
        ));
    }
    let id = id.into_inner();
    read(&svc, move |_, conn| {
        let page = members::page(conn, &id, &paging)?;
        Ok(to_value(&page.map(|m| member_json(&id, &m))))
    })
    .await
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RoleBody {
    role: String,
}

/// Adds a member, or changes their role (leaving owner/admin revokes the apps
/// they approved there; the last owner keeps theirs).
async fn put_member(
    svc: Svc,
    req: HttpRequest,
    path: web::Path<(String, String)>,
    payload: web::Payload,
) -> Answer {
    let caller = caller(&svc, &req).await?;
    let (body, _): (RoleBody, _) = json_body(&req, payload).await?;
    let (ws, person) = path.into_inner();
    change(&svc, caller, move |svc, conn, by| {
        let role = Role::parse(&body.role)?;
        let (m, added) =
            admin::members::set_role(conn, &svc.credentials.cache, &ws, &person, role, by)?;
        let body = member_json(&ws, &m);
        Ok(if added {
            Made::created(body)
        } else {
            Made::ok(body)
        })
    })
    .await
}

async fn remove_member(svc: Svc, req: HttpRequest, path: web::Path<(String, String)>) -> Answer {
    let caller = caller(&svc, &req).await?;
    let (ws, person) = path.into_inner();
    change(&svc, caller, move |svc, conn, by| {
        admin::members::remove(conn, &svc.credentials.cache, &ws, &person, by)?;
        Ok(gone())
    })
    .await
}
