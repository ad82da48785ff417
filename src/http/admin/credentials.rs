//! `/admin/v1/…/api-keys` and `…/authorizations`.

use super::{action, caller, json_body, list_query, post, read, to_value, Answer, Made};
use crate::apikeys::{self, Access, ApiKey, NewKey};
use crate::db::paging::{Listed, Paging};
use crate::db::rfc3339;
use crate::http::Svc;
use crate::oauth::authorizations::{self, AppRow, Cause};
use actix_web::{web, HttpRequest};
use serde::Deserialize;
use serde_json::{json, Value};

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/workspaces/{id}/api-keys", web::get().to(list_keys))
        .route("/workspaces/{id}/api-keys", web::post().to(create_key))
        .route("/api-keys/{id}/rotate", web::post().to(rotate_key))
        .route("/api-keys/{id}/revoke", web::post().to(revoke_key))
        .route("/workspaces/{id}/authorizations", web::get().to(list_apps))
        .route("/authorizations/{id}/revoke", web::post().to(revoke_app));
}

fn key_json(k: &ApiKey, secret: Option<&str>) -> Value {
    let mut v = json!({
        "id": k.id, "workspace_id": k.workspace_id, "name": k.name, "prefix": k.prefix(),
        "access": k.access, "scopes": k.scope_names(), "status": k.status_at(crate::db::now()).as_str(),
        "expires_at": k.expires_at.map(rfc3339), "created_at": rfc3339(k.created_at),
        "last_used_at": k.last_used_at.map(rfc3339),
    });
    if let (Some(secret), Value::Object(map)) = (secret, &mut v) {
        map.insert("key".into(), json!(secret));
    }
    v
}

/// A page of rows already loaded newest first (by id), after the cursor.
fn page_of<T>(rows: Vec<T>, paging: &Paging, id: impl Fn(&T) -> &str) -> Listed<T> {
    let after: Vec<T> = rows
        .into_iter()
        .filter(|r| paging.cursor.as_deref().is_none_or(|c| id(r) < c))
        .take(paging.limit as usize + 1)
        .collect();
    paging.page(after, |r| id(r).to_string())
}

async fn list_keys(svc: Svc, req: HttpRequest, ws: web::Path<String>) -> Answer {
    caller(&svc, &req).await?;
    let (paging, _) = list_query(&req)?;
    let ws = ws.into_inner();
    read(&svc, move |_, conn| {
        crate::accounts::find_workspace(conn, &ws)?;
        let rows = apikeys::list(conn, &ws, &Default::default())?;
        let page = page_of(rows, &paging, |r| &r.key.id);
        Ok(to_value(&page.map(|r| key_json(&r.key, None))))
    })
    .await
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewKeyBody {
    name: String,
    access: String,
    expires: Option<String>,
}

async fn create_key(
    svc: Svc,
    req: HttpRequest,
    ws: web::Path<String>,
    payload: web::Payload,
) -> Answer {
    let caller = caller(&svc, &req).await?;
    let (body, raw): (NewKeyBody, _) = json_body(&req, payload).await?;
    let ws = ws.into_inner();
    post(&svc, &req, caller, raw, move |_, conn, by| {
        crate::accounts::find_workspace(conn, &ws)?;
        let spec = NewKey {
            workspace_id: &ws,
            name: &body.name,
            access: Access::parse(&body.access)?,
            expires_at: apikeys::parse_expiry(body.expires.as_deref())?,
            allowed_ips: None,
            mailbox_id: None,
        };
        let issued = apikeys::create_key(conn, &spec, by)?;
        Ok(Made::created(key_json(&issued.key, Some(&issued.secret))).secret("key"))
    })
    .await
}

async fn rotate_key(
    svc: Svc,
    req: HttpRequest,
    id: web::Path<String>,
    payload: web::Payload,
) -> Answer {
    action(&svc, &req, id, payload, |svc, conn, by, id| {
        let issued = apikeys::rotate(conn, &svc.credentials.cache, id, by)?;
        Ok(Made::ok(key_json(&issued.key, Some(&issued.secret))).secret("key"))
    })
    .await
}

async fn revoke_key(
    svc: Svc,
    req: HttpRequest,
    id: web::Path<String>,
    payload: web::Payload,
) -> Answer {
    action(&svc, &req, id, payload, |svc, conn, by, id| {
        let key = apikeys::revoke(conn, &svc.credentials.cache, id, by)?;
        Ok(Made::ok(key_json(&key, None)))
    })
    .await
}

fn app_json(row: &AppRow) -> Value {
    let a = &row.authorization;
    json!({
        "id": a.id, "app_name": row.app_name, "client_id": a.client_id,
        "workspace_id": a.workspace_id, "scopes": crate::credentials::scopes::split(&a.scopes),
        "authorized_at": rfc3339(a.created_at), "authorized_by": row.authorized_by,
        "status": a.status(),
    })
}

async fn list_apps(svc: Svc, req: HttpRequest, ws: web::Path<String>) -> Answer {
    caller(&svc, &req).await?;
    let (paging, _) = list_query(&req)?;
    let ws = ws.into_inner();
    read(&svc, move |_, conn| {
        crate::accounts::find_workspace(conn, &ws)?;
        let rows = authorizations::list_for_workspace(conn, &ws)?;
        let page = page_of(rows, &paging, |r| &r.authorization.id);
        Ok(to_value(&page.map(|r| app_json(&r))))
    })
    .await
}

async fn revoke_app(
    svc: Svc,
    req: HttpRequest,
    id: web::Path<String>,
    payload: web::Payload,
) -> Answer {
    action(&svc, &req, id, payload, |svc, conn, by, id| {
        let a = authorizations::revoke(conn, &svc.credentials.cache, id, Cause::Person(by))?;
        Ok(Made::ok(json!({"id": a.id, "status": a.status()})))
    })
    .await
}
