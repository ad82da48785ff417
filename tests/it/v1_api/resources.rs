//! /v1 resources: lists and creates, pagination, bad bodies, duplicate names,
//! unknown paths and methods, large bodies.

use super::*;

fn lists_and_creates(b: Backend) {
    let f = Fixture::new(b);
    let key = f.api_key("read_write");
    let mut http = f.server.client();
    for path in ["/v1/tags", "/v1/forms"] {
        let empty = http.bearer_get(path, &key);
        assert_eq!(empty.status, 200);
        assert!(empty
            .header("content-type")
            .is_some_and(|c| c.starts_with("application/json")));
        assert_eq!(empty.json(), json!({"data": [], "has_more": false}));

        let before = chrono::Utc::now().timestamp();
        let mut created = Vec::new();
        for name in ["alpha", "Café ☕ 日本", "gamma"] {
            let r = http.bearer_post_json(path, &key, &json!({ "name": name }).to_string());
            assert_eq!(r.status, 201, "{}", r.body);
            assert!(r
                .header("content-type")
                .is_some_and(|c| c.starts_with("application/json")));
            let o = r.json();
            let obj = o.as_object().unwrap();
            let mut fields: Vec<&str> = obj.keys().map(String::as_str).collect();
            fields.sort();
            assert_eq!(fields, ["created_at", "id", "name"], "{o}");
            assert_eq!(o["name"], name);
            assert!(!s(&o, "id").is_empty());
            let at = chrono::DateTime::parse_from_rfc3339(&s(&o, "created_at"))
                .unwrap_or_else(|e| panic!("created_at {o}: {e}"));
            assert!((before - 1..=before + 30).contains(&at.timestamp()), "{o}");
            assert!(s(&o, "created_at").ends_with('Z'), "not UTC: {o}");
            created.push(o);
        }
        // Newest first; the objects as created.
        let l = list(&mut http, path, &key);
        let mut newest_first = created.clone();
        newest_first.reverse();
        assert_eq!(l, json!({"data": newest_first, "has_more": false}));
    }
    // Tags and forms are separate collections.
    let tags = list(&mut http, "/v1/tags", &key);
    let forms = list(&mut http, "/v1/forms", &key);
    assert_eq!(names(&tags), names(&forms));
    assert_ne!(tags["data"][0]["id"], forms["data"][0]["id"]);
    assert_eq!(f.db().count("tags"), 3);
    assert_eq!(f.db().count("forms"), 3);
}

fn pagination(b: Backend) {
    let f = Fixture::new(b);
    let key = f.api_key("read_write");
    let (token, _) = f.tokens(ALL_SCOPES);
    let mut http = f.server.client();
    for (path, cred) in [("/v1/tags", key.as_str()), ("/v1/forms", token.as_str())] {
        let mut ids = Vec::new();
        for i in 1..=5 {
            ids.push(s(
                &create(&mut http, path, cred, &format!("item-{i}")),
                "id",
            ));
        }
        ids.reverse(); // newest first
        let mut seen = Vec::new();
        let mut after: Option<String> = None;
        let mut pages = 0;
        loop {
            let url = match &after {
                None => format!("{path}?limit=2"),
                Some(a) => format!("{path}?limit=2&starting_after={a}"),
            };
            let page = list(&mut http, &url, cred);
            let data = page["data"].as_array().unwrap();
            assert!(data.len() <= 2, "{page}");
            seen.extend(data.iter().map(|o| s(o, "id")));
            pages += 1;
            let more = page["has_more"].as_bool().expect("has_more");
            if !more {
                break;
            }
            assert!(!data.is_empty());
            after = Some(s(data.last().unwrap(), "id"));
            assert!(pages < 10, "pagination does not end");
        }
        assert_eq!(pages, 3);
        assert_eq!(seen, ids, "every item exactly once, newest first");

        for (q, n, more) in [
            ("limit=5", 5, false),
            ("limit=4", 4, true),
            ("limit=100", 5, false),
            ("limit=1", 1, true),
            ("", 5, false),
        ] {
            let page = list(&mut http, &format!("{path}?{q}"), cred);
            assert_eq!(page["data"].as_array().unwrap().len(), n, "{q}");
            assert_eq!(page["has_more"], more, "{q}");
        }
        let last = list(
            &mut http,
            &format!("{path}?starting_after={}", ids[4]),
            cred,
        );
        assert_eq!(last, json!({"data": [], "has_more": false}));

        for bad in [
            "limit=0",
            "limit=101",
            "limit=x",
            "limit=-1",
            "limit=1.5",
            "limit=99999999999999999999",
            "starting_after=not-an-id",
        ] {
            let r = http.bearer_get(&format!("{path}?{bad}"), cred);
            let v = assert_envelope(&r, 400);
            assert_eq!(v["error"]["type"], "invalid_request_error", "{bad}");
        }
    }
}

fn bad_bodies(b: Backend) {
    let f = Fixture::new(b);
    let key = f.api_key("read_write");
    let mut http = f.server.client();
    let auth = format!("Bearer {key}");
    let long = "a".repeat(101);
    let long_multibyte = "é".repeat(101);
    let cases: Vec<(&str, Option<&str>, String)> = vec![
        ("not JSON", Some("application/json"), "{".into()),
        ("empty body", Some("application/json"), String::new()),
        (
            "form body as JSON",
            Some("application/json"),
            "name=x".into(),
        ),
        ("text/plain", Some("text/plain"), r#"{"name":"x"}"#.into()),
        (
            "form content type",
            Some("application/x-www-form-urlencoded"),
            "name=x".into(),
        ),
        ("no content type", None, r#"{"name":"x"}"#.into()),
        (
            "JSON array",
            Some("application/json"),
            r#"[{"name":"x"}]"#.into(),
        ),
        ("empty array", Some("application/json"), "[]".into()),
        ("JSON string", Some("application/json"), r#""x""#.into()),
        ("JSON number", Some("application/json"), "42".into()),
        ("JSON null", Some("application/json"), "null".into()),
        ("missing name", Some("application/json"), "{}".into()),
        (
            "other field",
            Some("application/json"),
            r#"{"nom":"x"}"#.into(),
        ),
        (
            "name number",
            Some("application/json"),
            r#"{"name":42}"#.into(),
        ),
        (
            "name null",
            Some("application/json"),
            r#"{"name":null}"#.into(),
        ),
        (
            "name bool",
            Some("application/json"),
            r#"{"name":true}"#.into(),
        ),
        (
            "name array",
            Some("application/json"),
            r#"{"name":["x"]}"#.into(),
        ),
        (
            "name object",
            Some("application/json"),
            r#"{"name":{"a":1}}"#.into(),
        ),
        (
            "empty name",
            Some("application/json"),
            r#"{"name":""}"#.into(),
        ),
        (
            "blank name",
            Some("application/json"),
            r#"{"name":"   "}"#.into(),
        ),
        (
            "whitespace name",
            Some("application/json"),
            r#"{"name":"\t\n "}"#.into(),
        ),
        (
            "101 chars",
            Some("application/json"),
            json!({ "name": long }).to_string(),
        ),
        (
            "101 multibyte chars",
            Some("application/json"),
            json!({ "name": long_multibyte }).to_string(),
        ),
        (
            "NUL in name",
            Some("application/json"),
            r#"{"name":"a\u0000b"}"#.into(),
        ),
        (
            "trailing garbage",
            Some("application/json"),
            r#"{"name":"x"} y"#.into(),
        ),
    ];
    for path in ["/v1/tags", "/v1/forms"] {
        for (label, ctype, body) in &cases {
            let mut headers = vec![("Authorization", auth.as_str())];
            if let Some(c) = ctype {
                headers.push(("Content-Type", c));
            }
            let r = http.send("POST", path, &headers, body);
            let v = assert_envelope(&r, 400);
            assert_eq!(v["error"]["type"], "invalid_request_error", "{label}");
        }
    }
    assert_eq!(f.db().count("tags") + f.db().count("forms"), 0);

    // The limits themselves are fine.
    let hundred = "a".repeat(100);
    let o = create(&mut http, "/v1/tags", &key, &hundred);
    assert_eq!(o["name"], hundred.as_str());
    let hundred_multibyte = "é".repeat(100);
    let o = create(&mut http, "/v1/forms", &key, &hundred_multibyte);
    assert_eq!(o["name"], hundred_multibyte.as_str());
    let r = http.send(
        "POST",
        "/v1/tags",
        &[
            ("Authorization", &auth),
            ("Content-Type", "application/json; charset=utf-8"),
        ],
        r#"{"name":"with charset","extra":[1,2,3]}"#,
    );
    assert_eq!(r.status, 201, "{}", r.body);
}

fn duplicate_names_conflict(b: Backend) {
    let f = Fixture::new(b);
    let key = f.api_key("read_write");
    let (token, _) = f.tokens(ALL_SCOPES);
    let mut http = f.server.client();
    for path in ["/v1/tags", "/v1/forms"] {
        create(&mut http, path, &key, "newsletter");
        for cred in [&key, &token] {
            let r = http.bearer_post_json(path, cred, r#"{"name":"newsletter"}"#);
            assert_envelope(&r, 409);
        }
        assert_eq!(names(&list(&mut http, path, &key)), ["newsletter"]);
    }
    // Racing creates of one name: one wins, the others conflict; never a 5xx.
    let base = f.server.base.clone();
    let handles: Vec<_> = (0..8)
        .map(|_| {
            let base = base.clone();
            let key = key.clone();
            std::thread::spawn(move || {
                let mut http = Http::new(&base);
                http.bearer_post_json("/v1/tags", &key, r#"{"name":"race"}"#)
            })
        })
        .collect();
    let results: Vec<Resp> = handles.into_iter().map(|h| h.join().unwrap()).collect();
    let won = results.iter().filter(|r| r.status == 201).count();
    for r in &results {
        if r.status != 201 {
            assert_envelope(r, 409);
        }
    }
    assert_eq!(won, 1, "{results:?}");
    assert_eq!(f.db().count("tags"), 2);
}

fn unknown_paths_methods_and_large_bodies(b: Backend) {
    let f = Fixture::new(b);
    let key = f.api_key("read_write");
    let mut http = f.server.client();
    let auth = format!("Bearer {key}");
    for path in ["/v1/nope", "/v1/tags/123", "/v1/workspace/x", "/v1/Tags"] {
        for headers in [vec![], vec![("Authorization", auth.as_str())]] {
            let r = http.get_with(path, &headers);
            assert_envelope(&r, 404);
        }
    }
    for (method, path) in [
        ("DELETE", "/v1/tags"),
        ("PUT", "/v1/tags"),
        ("PATCH", "/v1/forms"),
        ("DELETE", "/v1/forms"),
        ("POST", "/v1/workspace"),
        ("DELETE", "/v1/workspace"),
    ] {
        let r = http.send(
            method,
            path,
            &[
                ("Authorization", &auth),
                ("Content-Type", "application/json"),
            ],
            r#"{"name":"x"}"#,
        );
        assert_envelope(&r, 405);
    }
    // Bodies: up to 64 KiB is read; more is 413.
    let body_of = |len: usize| {
        let head = r#"{"name":"big","pad":""#;
        let tail = r#""}"#;
        format!("{head}{}{tail}", " ".repeat(len - head.len() - tail.len()))
    };
    let exact = body_of(64 * 1024);
    assert_eq!(exact.len(), 65536);
    let r = http.bearer_post_json("/v1/tags", &key, &exact);
    assert_eq!(r.status, 201, "a 64 KiB body: {}", r.body);
    for len in [64 * 1024 + 1, 70 * 1024] {
        let r = http.bearer_post_json("/v1/forms", &key, &body_of(len));
        let v = assert_envelope(&r, 413);
        assert_eq!(v["error"]["type"], "invalid_request_error");
    }
    assert_eq!(f.db().count("forms"), 0);
    assert_eq!(f.db().count("tags"), 1);
    // The server is still fine.
    assert_eq!(http.bearer_get("/v1/tags", &key).status, 200);
}

both_backends!(
    lists_and_creates,
    pagination,
    bad_bodies,
    duplicate_names_conflict,
    unknown_paths_methods_and_large_bodies,
);
