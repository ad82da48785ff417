//! Client ID metadata documents fetched over real HTTPS from a loopback test
//! server: what is accepted, what is refused, and how fetches are shared and
//! cached (draft-ietf-oauth-client-id-metadata-document).

use crate::https_server::{HttpsServer, Reply};
use keygate::oauth::registration::cimd::{CimdConfig, CimdError, Fetcher};
use keygate::oauth::registration::{GrantType, Offered};
use keygate::outbound::OutboundError;
use serde_json::{json, Value};
use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;
use std::time::{Duration, Instant};

const PATH: &str = "/oauth/client.json";

fn config(server: &HttpsServer) -> CimdConfig {
    CimdConfig {
        allowed_hosts: vec!["127.0.0.1".into(), "localhost".into()],
        ca_file: Some(server.ca_file().to_path_buf()),
        connect_timeout: Duration::from_secs(2),
        total_timeout: Duration::from_secs(3),
        min_ttl: Duration::ZERO,
        ..CimdConfig::default()
    }
}

fn fetcher_with(config: CimdConfig) -> Fetcher {
    Fetcher::new(config, Offered::new(["read", "write"])).expect("fetcher")
}

fn fetcher(server: &HttpsServer) -> Fetcher {
    fetcher_with(config(server))
}

fn document(client_id: &str, name: &str) -> Value {
    json!({
        "client_id": client_id,
        "client_name": name,
        "redirect_uris": ["https://app.example.com/callback", "http://127.0.0.1/callback"],
        "grant_types": ["authorization_code", "refresh_token", "client_credentials"],
        "token_endpoint_auth_method": "client_secret_post",
        "token_endpoint_auth_methods_supported": ["client_secret_post", "none"],
        "scope": "read openid",
        "software_statement": "ignored",
    })
}

#[tokio::test]
async fn a_good_document_is_fetched_validated_and_cached() {
    let server = HttpsServer::start();
    let id = server.url(PATH);
    server.set(PATH, Reply::json(&document(&id, "Test App")));
    let f = fetcher(&server);

    let doc = f.fetch(&id).await.expect("document");
    assert_eq!(doc.client_id, id);
    assert_eq!(doc.client_name, "Test App");
    assert_eq!(doc.host, "127.0.0.1");
    assert_eq!(
        doc.grant_types,
        vec![GrantType::AuthorizationCode, GrantType::RefreshToken]
    );
    assert_eq!(doc.scope.as_deref(), Some("read"));
    assert!(doc.redirect_uri_allowed("http://127.0.0.1:41234/callback"));
    assert!(doc.redirect_uri_allowed("https://app.example.com/callback"));
    assert!(!doc.redirect_uri_allowed("https://app.example.com/other"));

    let again = f.fetch(&id).await.expect("cached");
    assert!(Arc::ptr_eq(&doc, &again));
    assert_eq!(server.hits(PATH), 1, "the second fetch came from the cache");
    assert_eq!(f.cached_len(), 1);
}

#[tokio::test]
async fn a_host_name_on_the_allow_list_is_fetched_with_its_certificate_name() {
    let server = HttpsServer::start();
    let id = server.localhost_url(PATH);
    server.set(PATH, Reply::json(&document(&id, "Local")));
    let doc = fetcher(&server).fetch(&id).await.expect("document");
    assert_eq!(doc.host, "localhost");
    assert_eq!(doc.client_name, "Local");
}

#[tokio::test]
async fn a_document_for_another_client_id_is_refused() {
    let server = HttpsServer::start();
    let id = server.url(PATH);
    server.set(
        PATH,
        Reply::json(&document(&server.url("/other.json"), "Impostor")),
    );
    let err = fetcher(&server).fetch(&id).await.unwrap_err();
    assert_eq!(err, CimdError::ClientIdMismatch);
}

#[tokio::test]
async fn redirects_are_not_followed() {
    let server = HttpsServer::start();
    let id = server.url("/moved");
    server.set(PATH, Reply::json(&document(&id, "Target")));
    for status in [301, 302, 303, 307, 308] {
        server.set("/moved", Reply::redirect(status, &server.url(PATH)));
        let err = fetcher(&server).fetch(&id).await.unwrap_err();
        assert_eq!(err, CimdError::Fetch(OutboundError::Redirect(status)));
    }
    assert_eq!(
        server.hits(PATH),
        0,
        "the redirect target was never requested"
    );
}

#[tokio::test]
async fn only_200_with_a_json_object_is_accepted() {
    let server = HttpsServer::start();
    let id = server.url(PATH);
    let f = fetcher(&server);
    for (reply, want) in [
        (Reply::status(404), "status"),
        (Reply::status(204), "status"),
        (
            Reply::raw(500, "application/json", document(&id, "x").to_string()),
            "status",
        ),
        (Reply::raw(200, "text/html", "<html></html>"), "json"),
        (Reply::json(&json!([document(&id, "x")])), "json"),
        (Reply::json(&json!("a string")), "json"),
    ] {
        server.set(PATH, reply);
        let err = f.fetch(&id).await.unwrap_err();
        match want {
            "status" => assert!(
                matches!(err, CimdError::Fetch(OutboundError::Status(_))),
                "{err:?}"
            ),
            _ => assert!(matches!(err, CimdError::NotJsonObject(_)), "{err:?}"),
        }
    }
}

#[tokio::test]
async fn documents_over_5_kib_are_refused_without_reading_them_whole() {
    let server = HttpsServer::start();
    let id = server.url(PATH);
    let f = fetcher(&server);

    server.set(PATH, Reply::json_of_size(document(&id, "Big"), 5 * 1024));
    assert!(f.fetch(&id).await.is_ok(), "exactly 5 KiB is fine");
    f.forget(&id);

    server.set(
        PATH,
        Reply::json_of_size(document(&id, "Big"), 5 * 1024 + 1),
    );
    assert_eq!(
        f.fetch(&id).await.unwrap_err(),
        CimdError::Fetch(OutboundError::TooLarge(5 * 1024))
    );

    // Without Content-Length the body is cut off while streaming.
    server.set(
        PATH,
        Reply::json_of_size(document(&id, "Huge"), 10 * 1024 * 1024).without_content_length(),
    );
    let started = Instant::now();
    assert_eq!(
        f.fetch(&id).await.unwrap_err(),
        CimdError::Fetch(OutboundError::TooLarge(5 * 1024))
    );
    assert!(started.elapsed() < Duration::from_secs(2));
}

#[tokio::test]
async fn a_slow_server_times_out() {
    let server = HttpsServer::start();
    let id = server.url(PATH);
    server.set(
        PATH,
        Reply::json(&document(&id, "Slow")).delay(Duration::from_secs(5)),
    );
    let f = fetcher_with(CimdConfig {
        total_timeout: Duration::from_millis(500),
        ..config(&server)
    });
    let started = Instant::now();
    assert_eq!(
        f.fetch(&id).await.unwrap_err(),
        CimdError::Fetch(OutboundError::Timeout)
    );
    let took = started.elapsed();
    assert!(took >= Duration::from_millis(400), "{took:?}");
    assert!(took < Duration::from_secs(2), "{took:?}");
}

#[tokio::test]
async fn a_caller_that_gives_up_leaves_nothing_in_flight() {
    let server = HttpsServer::start();
    let id = server.url(PATH);
    server.set(
        PATH,
        Reply::json(&document(&id, "Slow")).delay(Duration::from_secs(2)),
    );
    let f = fetcher(&server);
    let gave_up = tokio::time::timeout(Duration::from_millis(200), f.fetch(&id)).await;
    assert!(gave_up.is_err(), "the caller timed out first");
    assert_eq!(f.in_flight_len(), 0);

    server.set(PATH, Reply::json(&document(&id, "Fast")));
    assert_eq!(f.fetch(&id).await.expect("document").client_name, "Fast");
    assert_eq!(f.in_flight_len(), 0);
}

#[tokio::test]
async fn special_use_addresses_are_refused_before_connecting() {
    let server = HttpsServer::start();
    let id = server.url(PATH);
    server.set(PATH, Reply::json(&document(&id, "Internal")));
    let f = fetcher_with(CimdConfig {
        allowed_hosts: Vec::new(),
        ..config(&server)
    });

    let err = f.fetch(&id).await.unwrap_err();
    assert_eq!(
        err,
        CimdError::Fetch(OutboundError::ForbiddenAddress {
            host: "127.0.0.1".into(),
            addr: IpAddr::V4(Ipv4Addr::LOCALHOST),
        })
    );
    // A name that resolves to loopback is refused too.
    let err = f.fetch(&server.localhost_url(PATH)).await.unwrap_err();
    assert!(
        matches!(err, CimdError::Fetch(OutboundError::ForbiddenAddress { ref host, .. }) if host == "localhost"),
        "{err:?}"
    );
    assert_eq!(server.connections(), 0, "nothing was connected to");

    // Allow-listing a different host does not help.
    let f = fetcher_with(CimdConfig {
        allowed_hosts: vec!["example.com".into()],
        ..config(&server)
    });
    assert!(matches!(
        f.fetch(&id).await,
        Err(CimdError::Fetch(OutboundError::ForbiddenAddress { .. }))
    ));
    assert_eq!(server.connections(), 0);
}

#[tokio::test]
async fn the_server_certificate_must_chain_to_a_trusted_root() {
    let server = HttpsServer::start();
    let id = server.url(PATH);
    server.set(PATH, Reply::json(&document(&id, "Untrusted")));
    let f = fetcher_with(CimdConfig {
        ca_file: None,
        ..config(&server)
    });
    let err = f.fetch(&id).await.unwrap_err();
    assert!(
        matches!(err, CimdError::Fetch(OutboundError::Tls { .. })),
        "{err:?}"
    );
    assert_eq!(server.hits(PATH), 0);
}

#[tokio::test]
async fn failures_are_never_cached() {
    let server = HttpsServer::start();
    let id = server.url(PATH);
    let f = fetcher(&server);

    server.set(PATH, Reply::status(503));
    assert_eq!(
        f.fetch(&id).await.unwrap_err(),
        CimdError::Fetch(OutboundError::Status(503))
    );
    server.set(PATH, Reply::json(&document(&server.url("/x"), "Wrong")));
    assert_eq!(f.fetch(&id).await.unwrap_err(), CimdError::ClientIdMismatch);
    assert_eq!(f.cached_len(), 0);

    server.set(PATH, Reply::json(&document(&id, "Fixed")));
    assert_eq!(f.fetch(&id).await.expect("fixed").client_name, "Fixed");
    assert_eq!(server.hits(PATH), 3, "every failure was fetched again");
}

#[tokio::test]
async fn a_changed_document_is_fetched_again_once_the_cache_expires() {
    let server = HttpsServer::start();
    let id = server.url(PATH);
    let f = fetcher(&server);

    server.set(
        PATH,
        Reply::json(&document(&id, "Version 1")).header("Cache-Control", "public, max-age=1"),
    );
    assert_eq!(f.fetch(&id).await.unwrap().client_name, "Version 1");
    server.set(
        PATH,
        Reply::json(&document(&id, "Version 2")).header("Cache-Control", "max-age=1"),
    );
    assert_eq!(
        f.fetch(&id).await.unwrap().client_name,
        "Version 1",
        "still cached"
    );
    assert_eq!(server.hits(PATH), 1);

    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert_eq!(f.fetch(&id).await.unwrap().client_name, "Version 2");
    assert_eq!(server.hits(PATH), 2);

    // no-store (within a zero minimum TTL) is not cached at all.
    server.set(
        PATH,
        Reply::json(&document(&id, "Version 3")).header("Cache-Control", "no-store"),
    );
    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert_eq!(f.fetch(&id).await.unwrap().client_name, "Version 3");
    assert_eq!(f.fetch(&id).await.unwrap().client_name, "Version 3");
    assert_eq!(server.hits(PATH), 4);
}

#[tokio::test]
async fn the_cache_holds_a_bounded_number_of_documents() {
    let server = HttpsServer::start();
    let f = fetcher_with(CimdConfig {
        cache_entries: 2,
        ..config(&server)
    });
    for i in 0..4 {
        let path = format!("/c{i}.json");
        let id = server.url(&path);
        server.set(&path, Reply::json(&document(&id, &format!("App {i}"))));
        f.fetch(&id).await.expect("document");
        assert!(f.cached_len() <= 2);
    }
    assert_eq!(f.cached_len(), 2);
}

#[tokio::test]
async fn concurrent_fetches_of_one_url_make_one_request() {
    let server = HttpsServer::start();
    let id = server.url(PATH);
    server.set(
        PATH,
        Reply::json(&document(&id, "Shared")).delay(Duration::from_millis(300)),
    );
    let f = fetcher(&server);

    let tasks: Vec<_> = (0..8)
        .map(|_| {
            let f = f.clone();
            let id = id.clone();
            tokio::spawn(async move { f.fetch(&id).await })
        })
        .collect();
    let mut docs = Vec::new();
    for t in tasks {
        docs.push(t.await.expect("task").expect("document"));
    }
    assert_eq!(server.hits(PATH), 1);
    assert_eq!(server.connections(), 1);
    assert!(docs.iter().all(|d| Arc::ptr_eq(d, &docs[0])));

    // Concurrent failures are shared too, and then not cached.
    let bad = server.url("/bad.json");
    server.set(
        "/bad.json",
        Reply::status(500).delay(Duration::from_millis(300)),
    );
    let (a, b) = tokio::join!(f.fetch(&bad), f.fetch(&bad));
    assert_eq!(a.unwrap_err(), CimdError::Fetch(OutboundError::Status(500)));
    assert_eq!(b.unwrap_err(), CimdError::Fetch(OutboundError::Status(500)));
    assert_eq!(server.hits("/bad.json"), 1);
    let _ = f.fetch(&bad).await;
    assert_eq!(server.hits("/bad.json"), 2);
}

#[tokio::test]
async fn a_client_id_that_is_not_a_metadata_url_is_not_fetched() {
    let server = HttpsServer::start();
    let f = fetcher(&server);
    for id in [
        format!("http://127.0.0.1:{}{PATH}", server.port()),
        server.url("/"),
        server.url("/a/../oauth/client.json"),
        format!("{}#x", server.url(PATH)),
        "0190f0c2-7e7d-7c7a-9c1b-2b1b5a1e0f00".to_string(),
    ] {
        assert!(
            matches!(f.fetch(&id).await, Err(CimdError::NotMetadataUrl(_))),
            "{id}"
        );
    }
    assert_eq!(server.connections(), 0);
}
