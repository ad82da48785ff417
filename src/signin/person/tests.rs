use super::*;
use crate::db::testkit::TestDb;

const IDP: &str = "https://idp.example.test";

fn claimed<'a>(subject: &'a str, email: Option<&'a str>, verified: bool) -> Claimed<'a> {
    Claimed {
        issuer: IDP,
        subject,
        email,
        email_verified: verified,
    }
}

fn go(conn: &mut DbConn, c: &Claimed<'_>, create: bool) -> Result<SignedIn, Failure> {
    sign_in(conn, c, create, 3600, "192.0.2.1")
}

#[test]
fn a_verified_email_links_once_and_the_identity_signs_in_after() {
    let db = TestDb::new();
    let mut conn = db.conn();
    let ada = accounts::create_user(&mut conn, "ada@example.test", "password1").unwrap();
    let ws = accounts::create_workspace(&mut conn, "Acme", accounts::Plan::Free).unwrap();
    accounts::add_member(&mut conn, &ws.id, &ada.id, accounts::Role::Owner).unwrap();

    let first = go(
        &mut conn,
        &claimed("s1", Some("ADA@example.test"), true),
        false,
    )
    .unwrap();
    assert_eq!(
        (first.user.id.as_str(), first.found),
        (ada.id.as_str(), Found::LinkedNow)
    );
    assert!(sessions::resolve(&mut conn, &first.session_cookie)
        .unwrap()
        .is_some());
    // Linked now: the email no longer matters.
    let again = go(
        &mut conn,
        &claimed("s1", Some("other@example.test"), false),
        false,
    )
    .unwrap();
    assert_eq!(
        (again.user.id, again.found),
        (ada.id.clone(), Found::Linked)
    );
    assert_ne!(again.session_cookie, first.session_cookie);
    assert!(audit::on_record(&mut conn, &ada.id, audit::IDENTITY_LINKED).unwrap());
    assert!(audit::on_record(&mut conn, &ada.id, audit::SIGNED_IN_WITH_PROVIDER).unwrap());
}

#[test]
fn unverified_and_unknown_people_get_no_session_and_nothing_is_made() {
    let db = TestDb::new();
    let mut conn = db.conn();
    accounts::create_user(&mut conn, "ada@example.test", "password1").unwrap();
    let r = go(
        &mut conn,
        &claimed("s1", Some("ada@example.test"), false),
        true,
    );
    assert!(matches!(r, Err(Failure::UnverifiedEmail)), "{r:?}");
    let r = go(
        &mut conn,
        &claimed("s2", Some("new@example.test"), true),
        false,
    );
    assert!(matches!(r, Err(Failure::UnknownAccount)), "{r:?}");
    let r = go(&mut conn, &claimed("s3", None, true), true);
    assert!(matches!(r, Err(Failure::UnknownAccount)), "{r:?}");
    assert_eq!(identities::find_user(&mut conn, IDP, "s1").unwrap(), None);
    assert!(accounts::find_user_by_email(&mut conn, "new@example.test")
        .unwrap()
        .is_none());
}

#[test]
fn with_creation_on_a_verified_new_email_makes_a_person_without_a_password() {
    let db = TestDb::new();
    let mut conn = db.conn();
    let made = go(
        &mut conn,
        &claimed("s9", Some("New@Example.test"), true),
        true,
    )
    .unwrap();
    assert_eq!(made.found, Found::Created);
    assert_eq!(made.user.email, "new@example.test");
    assert!(!made.user.has_password());
    assert!(accounts::workspaces_of(&mut conn, &made.user.id)
        .unwrap()
        .is_empty());
    let again = go(&mut conn, &claimed("s9", None, false), true).unwrap();
    assert_eq!((again.user.id, again.found), (made.user.id, Found::Linked));
}
