//! Property tests of the parsers on the attack surface: they never panic, and
//! accept only what they should. `PROPTEST_CASES` sets how many cases run
//! (`.ci/fuzz-long` runs many more than the test suite).

#[cfg(test)]
mod tests {
    use crate::credentials::key_format::API_KEY;
    use crate::credentials::scopes;
    use crate::credentials::signing_keys::{AccessClaims, KeyRing};
    use crate::oauth::client_auth::basic_credentials;
    use crate::oauth::{engine, Params};
    use proptest::prelude::*;

    const ISSUER: &str = "https://id.example.test";

    fn claims(exp_offset: i64) -> AccessClaims {
        let now = crate::db::now();
        AccessClaims {
            iss: ISSUER.into(),
            sub: "user".into(),
            aud: format!("{ISSUER}/v1"),
            client_id: "client".into(),
            scope: "workspace:read".into(),
            jti: "jti".into(),
            iat: now,
            exp: now + exp_offset,
            workspace_id: "ws".into(),
            cnf: None,
        }
    }

    fn ring() -> &'static KeyRing {
        static RING: std::sync::OnceLock<KeyRing> = std::sync::OnceLock::new();
        RING.get_or_init(|| KeyRing::ephemeral(ISSUER).expect("key ring"))
    }

    /// What the form parser alone makes of `body`.
    fn by_the_form_parser(body: &[u8]) -> Vec<(String, String)> {
        url::form_urlencoded::parse(body).into_owned().collect()
    }

    #[test]
    fn a_body_that_escapes_nothing_reads_as_the_form_parser_reads_it() {
        for body in [
            &b""[..],
            b"&",
            b"&&a=1&&",
            b"a",
            b"a=",
            b"=b",
            b"a=b=c&d",
            b"grant_type=refresh_token&refresh_token=abc.def-ghi_jkl",
            "n\u{e9}=\u{2603}".as_bytes(),
            b"a=%41&b=+",
            b"bad=\xff\xfe",
        ] {
            let params = Params::parse(body);
            assert_eq!(params.pairs(), by_the_form_parser(body), "{body:?}");
        }
    }

    proptest! {
        #[test]
        fn params_read_as_the_form_parser_reads_them(body in proptest::collection::vec(
            prop_oneof![Just(b'&'), Just(b'='), Just(b'%'), Just(b'+'), Just(b'a'), Just(b'4'), Just(0xc3u8), Just(0xa9u8), any::<u8>()],
            0..40,
        )) {
            let params = Params::parse(&body);
            prop_assert_eq!(params.pairs(), by_the_form_parser(&body));
        }

        // The authorize query and the token request: any bytes parse, and every
        // lookup answers without panicking.
        #[test]
        fn params_never_panic(body in proptest::collection::vec(any::<u8>(), 0..512), name in "[a-z_]{1,20}") {
            let p = Params::parse(&body);
            let _ = p.get(&name);
            let _ = p.all(&name);
            let _ = p.first_of_any_repeated(&["resource"]);
            let _ = scopes::parse(p.get("scope").ok().flatten());
            let _ = engine::challenge(p.get("code_challenge_method").ok().flatten(), p.get("code_challenge").ok().flatten());
        }

        #[test]
        fn repeated_parameters_are_refused(name in "[a-z_]{1,12}", a in "[a-z0-9]{1,8}", b in "[a-z0-9]{1,8}") {
            let body = format!("{name}={a}&{name}={b}");
            prop_assert!(Params::parse(body.as_bytes()).get(&name).is_err());
        }

        #[test]
        fn pkce_verifier_matches_only_itself(v in "[A-Za-z0-9._~-]{43,128}", other in "[A-Za-z0-9._~-]{43,128}") {
            use base64::Engine;
            use sha2::Digest;
            let challenge = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(sha2::Sha256::digest(v.as_bytes()));
            let stored = engine::challenge(Some("S256"), Some(&challenge)).unwrap();
            prop_assert!(engine::verify(&stored, &v));
            prop_assert_eq!(engine::verify(&stored, &other), v == other);
        }

        // Client credentials from an Authorization header.
        #[test]
        fn basic_header_never_panics(header in ".{0,300}") {
            let _ = basic_credentials(&header);
        }

        // The bearer credential: an API key only parses when well formed with its checksum.
        #[test]
        fn api_key_parse_never_panics(s in ".{0,80}") {
            if let Some(id) = API_KEY.parse(&s) {
                prop_assert!(s.starts_with("kgk_") && s.len() == API_KEY.len());
                prop_assert!(s[4..].starts_with(id));
            }
        }

        // Keys of the right byte length with multi-byte characters anywhere:
        // the parser works on bytes and must never split a character.
        #[test]
        fn api_key_of_right_length_with_unicode_never_panics(
            parts in proptest::collection::vec(prop_oneof![Just("a"), Just("\u{e9}"), Just("\u{20ac}"), Just("\u{1f600}"), Just("_")], 0..60)
        ) {
            let mut s = String::from("kgk_");
            for p in parts {
                if s.len() + p.len() > API_KEY.len() { break; }
                s.push_str(p);
            }
            while s.len() < API_KEY.len() { s.push('a'); }
            let _ = API_KEY.parse(&s);
            let _ = crate::credentials::access_token::looks_like_jwt(&s);
        }

        #[test]
        fn api_key_mutations_fail_the_checksum(pos in 14usize..API_KEY.len(), c in "[A-Za-z0-9]") {
            let key = API_KEY.compose("AbCdEfGhIj", "0123456789abcdefghijABCDEFGHIJ01");
            prop_assert!(API_KEY.parse(&key).is_some());
            let mut bytes = key.clone().into_bytes();
            let c = c.as_bytes()[0];
            prop_assume!(bytes[pos] != c && bytes[pos] != b'_');
            bytes[pos] = c;
            let mutated = String::from_utf8(bytes).unwrap();
            prop_assert!(API_KEY.parse(&mutated).is_none() || mutated[..14] != key[..14]);
        }

        // JWT validation: garbage, and any change to a valid token, is refused.
        #[test]
        fn jwt_garbage_is_refused(s in ".{0,400}") {
            prop_assert!(ring().verify(&s).is_err());
        }

        #[test]
        fn jwt_any_byte_change_is_refused(pos in 0usize..2000, c in "[A-Za-z0-9_-]") {
            let token = ring().sign(&claims(3600)).unwrap();
            prop_assert!(ring().verify(&token).is_ok());
            let pos = pos % token.len();
            let mut bytes = token.clone().into_bytes();
            let c = c.as_bytes()[0];
            prop_assume!(bytes[pos] != c && bytes[pos] != b'.');
            bytes[pos] = c;
            let mutated = String::from_utf8(bytes).unwrap();
            // base64url's last character may carry unused bits: only a change
            // that alters the decoded bytes must fail.
            let decoded_same = {
                use base64::Engine;
                let d = |t: &str| -> Vec<Vec<u8>> {
                    t.split('.').map(|p| base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(p).unwrap_or_default()).collect()
                };
                d(&token) == d(&mutated)
            };
            prop_assert!(decoded_same || ring().verify(&mutated).is_err());
        }
    }

    // Arbitrary Unicode (any scalar value, multi-byte, combining, RTL,
    // surrogate-free by construction) for every parser on the attack
    // surface: none may slice a string inside a character or unwrap.
    proptest! {
        #[test]
        fn params_never_panic_on_unicode(body in any::<String>(), name in "\\PC{0,20}") {
            let p = Params::parse(body.as_bytes());
            let _ = p.get(&name);
            let _ = p.all(&name);
            let _ = p.first_of_any_repeated(&[name.as_str()]);
            let _ = scopes::parse(Some(&body));
            let _ = engine::challenge(Some(&name), Some(&body));
            let _ = engine::challenge(Some("S256"), Some(&body));
            let _ = crate::oauth::named_resource(&p, &name);
        }

        #[test]
        fn pkce_verify_never_panics_on_unicode(stored in any::<String>(), verifier in any::<String>()) {
            let _ = engine::verify(&stored, &verifier);
        }

        #[test]
        fn basic_header_never_panics_on_unicode(header in "\\PC*", raw in any::<String>(), bytes in proptest::collection::vec(any::<u8>(), 0..64)) {
            use base64::Engine;
            let b64 = base64::engine::general_purpose::STANDARD;
            let _ = basic_credentials(&header);
            let _ = basic_credentials(&format!("Basic {header}"));
            // Valid base64 of anything: Unicode, invalid UTF-8, stray `%`.
            let _ = basic_credentials(&format!("Basic {}", b64.encode(raw.as_bytes())));
            let _ = basic_credentials(&format!("Basic {}", b64.encode(&bytes)));
            let _ = basic_credentials(&format!("basic {}", b64.encode(format!("{raw}:%{raw}%"))));
        }

        #[test]
        fn client_auth_never_panics_on_unicode(id in any::<String>(), secret in any::<String>(), header in proptest::option::of("\\PC*")) {
            use crate::oauth::client_auth::{authenticate_with, Allow};
            let body = url::form_urlencoded::Serializer::new(String::new())
                .append_pair("client_id", &id)
                .append_pair("client_secret", &secret)
                .finish();
            let params = Params::parse(body.as_bytes());
            for allow in [Allow::PublicToo, Allow::ConfidentialOnly] {
                let _ = authenticate_with(|_| Ok(None), header.as_deref(), &params, allow);
            }
        }

        #[test]
        fn api_key_parse_never_panics_on_unicode(s in any::<String>(), t in "kgk_\\PC{0,60}") {
            prop_assert!(API_KEY.parse(&s).is_none() || s.is_ascii());
            let _ = API_KEY.parse(&t);
            let _ = crate::credentials::access_token::looks_like_jwt(&s);
        }

        #[test]
        fn jwt_unicode_is_refused(a in "\\PC{0,80}", b in "\\PC{0,80}", c in "\\PC{0,80}", s in any::<String>()) {
            prop_assert!(ring().verify(&s).is_err());
            let three = format!("{a}.{b}.{c}");
            prop_assert!(ring().verify(&three).is_err());
            // A real header with Unicode after it.
            let token = ring().sign(&claims(60)).unwrap();
            let header = token.split('.').next().unwrap_or_default();
            let forged = format!("{header}.{b}.{c}");
            prop_assert!(ring().verify(&forged).is_err());
        }

        #[test]
        fn redirect_uris_never_panic_on_unicode(registered in "\\PC{0,60}", given in "\\PC{0,60}", tail in "\\PC{0,20}") {
            use crate::oauth::clients::{redirect_matches, validate_redirect_uri};
            let _ = validate_redirect_uri(&registered);
            let _ = redirect_matches(&registered, &given);
            // Loopback URIs, whose port is parsed by hand.
            for prefix in ["http://127.0.0.1:", "http://[::1]:", "http://127.0.0.1"] {
                let uri = format!("{prefix}{tail}");
                let _ = validate_redirect_uri(&uri);
                let _ = redirect_matches("http://127.0.0.1/cb", &uri);
                let _ = redirect_matches(&uri, &given);
                let _ = crate::oauth::registration::metadata::classify_redirect_uri(&uri);
                let _ = crate::oauth::registration::metadata::redirect_uri_matches(&uri, &given);
            }
            let _ = crate::oauth::registration::cimd::parse_metadata_url(&format!("https://{tail}"));
            let _ = crate::oauth::registration::cimd::parse_metadata_url(&given);
        }
    }

    #[test]
    fn expired_and_foreign_tokens_are_refused() {
        assert!(ring().verify(&ring().sign(&claims(-5)).unwrap()).is_err());
        let other = KeyRing::ephemeral(ISSUER).unwrap();
        assert!(ring().verify(&other.sign(&claims(60)).unwrap()).is_err());
        let mut wrong_iss = claims(60);
        wrong_iss.iss = "https://elsewhere.example".into();
        assert!(ring().verify(&ring().sign(&wrong_iss).unwrap()).is_err());
        // Another audience verifies, and says so: which audience is
        // accepted is the bearer check's to decide (`Principal::serves`).
        let mut other_aud = claims(60);
        other_aud.aud = "https://api.example.com/mcp".into();
        let verified = ring().verify(&ring().sign(&other_aud).unwrap()).unwrap();
        assert_eq!(verified.aud, "https://api.example.com/mcp");
    }
}
