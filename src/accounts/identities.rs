//! A person's identities at the product's identity provider: the (issuer,
//! `sub`) pairs that sign them in (OpenID Connect Core 1.0 §2: `sub` is unique
//! only within its issuer, so the pair is the key).

use crate::db::schema::identities;
use crate::db::{self, DbConn};
use crate::error::{Error, Result};
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Text};
use serde::Serialize;
use std::collections::HashMap;

/// The longest issuer or subject kept (OIDC allows `sub` up to 255 ASCII
/// characters; issuers are URLs).
pub const MAX_LEN: usize = 2048;

#[derive(Queryable, Selectable, Insertable, Clone, Debug)]
#[diesel(table_name = identities)]
pub struct Identity {
    pub issuer: String,
    pub subject: String,
    pub user_id: String,
    pub created_at: i64,
}

/// An identity as the admin API shows it.
#[derive(Serialize, Clone, Debug, PartialEq, Eq)]
pub struct IdentityRef {
    pub issuer: String,
    pub subject: String,
}

fn check(what: &str, value: &str) -> Result<()> {
    if value.is_empty() || value.len() > MAX_LEN || value.chars().any(char::is_control) {
        return Err(Error::invalid(format!(
            "the identity's {what} must be 1 to {MAX_LEN} bytes without control characters"
        )));
    }
    Ok(())
}

/// Links (issuer, subject) to a person. Linking the same pair to the same
/// person again is a no-op; to another person, a conflict.
pub fn link(conn: &mut DbConn, user_id: &str, issuer: &str, subject: &str) -> Result<()> {
    check("issuer", issuer)?;
    check("subject", subject)?;
    let row = Identity {
        issuer: issuer.to_string(),
        subject: subject.to_string(),
        user_id: user_id.to_string(),
        created_at: db::now(),
    };
    // No unique violation to recover from: on PostgreSQL it would abort the
    // transaction the link is part of (two first sign-ins at once).
    db::write_values(
        conn,
        [&row],
        4,
        |values| {
            format!(
                "INSERT INTO identities (issuer, subject, user_id, created_at) VALUES {values} \
                 ON CONFLICT (issuer, subject) DO NOTHING"
            )
        },
        |q, r| {
            q.bind::<Text, _>(r.issuer.clone())
                .bind::<Text, _>(r.subject.clone())
                .bind::<Text, _>(r.user_id.clone())
                .bind::<BigInt, _>(r.created_at)
        },
    )?;
    match find_user(conn, issuer, subject)? {
        Some(owner) if owner == user_id => Ok(()),
        _ => Err(Error::conflict(
            "that identity is already linked to another person",
        )),
    }
}

/// The id of the person linked to (issuer, subject), if any.
pub fn find_user(conn: &mut DbConn, issuer: &str, subject: &str) -> Result<Option<String>> {
    Ok(identities::table
        .find((issuer, subject))
        .select(identities::user_id)
        .first(conn)
        .optional()?)
}

/// The identities of each of `user_ids` (people without one are absent), in
/// the order they were linked.
pub fn of_users(
    conn: &mut DbConn,
    user_ids: &[String],
) -> Result<HashMap<String, Vec<IdentityRef>>> {
    let mut out: HashMap<String, Vec<IdentityRef>> = HashMap::new();
    if user_ids.is_empty() {
        return Ok(out);
    }
    let rows: Vec<Identity> = identities::table
        .filter(identities::user_id.eq_any(user_ids))
        .order((identities::created_at.asc(), identities::issuer.asc()))
        .select(Identity::as_select())
        .load(conn)?;
    for r in rows {
        out.entry(r.user_id).or_default().push(IdentityRef {
            issuer: r.issuer,
            subject: r.subject,
        });
    }
    Ok(out)
}

/// Removes every identity of a person (before the person is deleted).
pub fn remove_all_of(conn: &mut DbConn, user_id: &str) -> Result<usize> {
    Ok(diesel::delete(identities::table.filter(identities::user_id.eq(user_id))).execute(conn)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_identity_links_one_person_and_is_found_by_issuer_and_subject() {
        let db = crate::db::testkit::TestDb::new();
        let mut conn = db.conn();
        let ada = crate::accounts::create_user(&mut conn, "ada@example.test", "password1").unwrap();
        let bob = crate::accounts::create_user(&mut conn, "bob@example.test", "password1").unwrap();
        let idp = "https://idp.example.test";
        link(&mut conn, &ada.id, idp, "sub-1").unwrap();
        link(&mut conn, &ada.id, idp, "sub-1").unwrap();
        let e = link(&mut conn, &bob.id, idp, "sub-1").unwrap_err();
        assert!(matches!(e, Error::Conflict(_)), "{e:?}");
        assert!(link(&mut conn, &bob.id, idp, "").is_err());
        assert_eq!(
            find_user(&mut conn, idp, "sub-1").unwrap(),
            Some(ada.id.clone())
        );
        assert_eq!(
            find_user(&mut conn, "https://other.test", "sub-1").unwrap(),
            None
        );
        let map = of_users(&mut conn, &[ada.id.clone(), bob.id.clone()]).unwrap();
        assert_eq!(map[&ada.id].len(), 1);
        assert!(!map.contains_key(&bob.id));
        assert_eq!(remove_all_of(&mut conn, &ada.id).unwrap(), 1);
        assert_eq!(find_user(&mut conn, idp, "sub-1").unwrap(), None);
    }
}
