//! `/admin/v1/people`.

use super::{caller, change, gone, json_body, list_query, post, read, to_value, Answer, Made};
use crate::accounts::identities::{self, IdentityRef};
use crate::accounts::{self, directory, User};
use crate::admin::people::{self, PersonPatch};
use crate::db::paging::Listed;
use crate::db::DbConn;
use crate::error::Result;
use crate::http::Svc;
use actix_web::{web, HttpRequest};
use serde::Deserialize;
use serde_json::{json, Value};

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/people", web::post().to(create))
        .route("/people", web::get().to(list))
        .route("/people/{id}", web::get().to(get))
        .route("/people/{id}", web::patch().to(update))
        .route("/people/{id}", web::delete().to(delete));
}

fn person_json(u: &User, ids: &[IdentityRef]) -> Value {
    json!({
        "id": u.id, "email": u.email, "external_id": u.external_id,
        "disabled": u.is_disabled(), "identities": ids,
        "created_at": crate::db::rfc3339(u.created_at),
    })
}

/// People with their identities: one query for all of them.
fn people_json(conn: &mut DbConn, page: Listed<User>) -> Result<Value> {
    let ids: Vec<String> = page.data.iter().map(|u| u.id.clone()).collect();
    let mut linked = identities::of_users(conn, &ids)?;
    let page = page.map(|u| {
        let ids = linked.remove(&u.id).unwrap_or_default();
        person_json(&u, &ids)
    });
    Ok(to_value(&page))
}

fn one_json(conn: &mut DbConn, u: &User) -> Result<Value> {
    let mut linked = identities::of_users(conn, std::slice::from_ref(&u.id))?;
    Ok(person_json(u, &linked.remove(&u.id).unwrap_or_default()))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewPerson {
    email: String,
    external_id: Option<String>,
    password: Option<String>,
}

async fn create(svc: Svc, req: HttpRequest, payload: web::Payload) -> Answer {
    let caller = caller(&svc, &req).await?;
    let (body, raw): (NewPerson, _) = json_body(&req, payload).await?;
    post(&svc, &req, caller, raw, move |_, conn, _| {
        let user = directory::create_person(
            conn,
            &directory::NewPerson {
                email: &body.email,
                password: body.password.as_deref(),
                external_id: body.external_id.as_deref(),
            },
        )?;
        Ok(Made::created(person_json(&user, &[])))
    })
    .await
}

async fn list(svc: Svc, req: HttpRequest) -> Answer {
    caller(&svc, &req).await?;
    let (paging, q) = list_query(&req)?;
    read(&svc, move |_, conn| {
        let page = match (&q.email, &q.external_id) {
            (Some(_), Some(_)) => {
                return Err(crate::error::Error::invalid(
                    "look a person up by email or by external_id, not both",
                ))
            }
            (Some(email), None) => Listed::one(accounts::find_user_by_email(conn, email)?),
            (None, Some(ext)) => Listed::one(directory::person_by_external_id(conn, ext)?),
            (None, None) => directory::list_people(conn, &paging)?,
        };
        people_json(conn, page)
    })
    .await
}

async fn get(svc: Svc, req: HttpRequest, id: web::Path<String>) -> Answer {
    caller(&svc, &req).await?;
    let id = id.into_inner();
    read(&svc, move |_, conn| {
        let user = accounts::find_user(conn, &id)?;
        one_json(conn, &user)
    })
    .await
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Patch {
    email: Option<String>,
    disabled: Option<bool>,
}

async fn update(
    svc: Svc,
    req: HttpRequest,
    id: web::Path<String>,
    payload: web::Payload,
) -> Answer {
    let caller = caller(&svc, &req).await?;
    let (body, _): (Patch, _) = json_body(&req, payload).await?;
    let id = id.into_inner();
    change(&svc, caller, move |svc, conn, by| {
        let patch = PersonPatch {
            email: body.email.as_deref(),
            disabled: body.disabled,
        };
        let user = people::update(conn, &svc.credentials.cache, &id, &patch, by)?;
        Ok(Made::ok(one_json(conn, &user)?))
    })
    .await
}

async fn delete(svc: Svc, req: HttpRequest, id: web::Path<String>) -> Answer {
    let caller = caller(&svc, &req).await?;
    let id = id.into_inner();
    change(&svc, caller, move |svc, conn, by| {
        people::delete(conn, &svc.credentials.cache, &id, by)?;
        Ok(gone())
    })
    .await
}
