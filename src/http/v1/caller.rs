//! The `/v1` extractor: gathers what the request presented
//! (`Authorization: Bearer <credential>`, or `DPoP <token>` with its proof)
//! and the client address, and asks `v1::check` with the scope the endpoint
//! needs.

use super::error::ApiError;
use crate::credentials::bearer::Principal;
use crate::v1::check::{self, Presented};
use crate::v1::V1Error;
use actix_web::dev::Payload;
use actix_web::http::header;
use actix_web::{FromRequest, HttpRequest};
use std::future::Future;
use std::marker::PhantomData;
use std::pin::Pin;

/// The scope an endpoint needs, as a type: `Caller<TagsRead>`.
pub trait Scope: 'static {
    const NAME: &'static str;
}

macro_rules! scopes {
    ($($marker:ident => $name:literal;)*) => {
        $(pub struct $marker;
        impl Scope for $marker {
            const NAME: &'static str = $name;
        })*
    };
}

scopes! {
    WorkspaceRead => "workspace:read";
    TagsRead => "tags:read";
    TagsWrite => "tags:write";
    FormsRead => "forms:read";
    FormsWrite => "forms:write";
    MailboxesRead => "mailboxes:read";
    MailboxesWrite => "mailboxes:write";
}

/// A caller whose credential passed the check for scope `S`.
pub struct Caller<S: Scope> {
    pub principal: Principal,
    scope: PhantomData<S>,
}

impl<S: Scope> FromRequest for Caller<S> {
    type Error = ApiError;
    type Future = Pin<Box<dyn Future<Output = Result<Caller<S>, ApiError>>>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let req = req.clone();
        Box::pin(async move {
            let svc = req
                .app_data::<super::Svc>()
                .cloned()
                .ok_or(V1Error::InternalError)?;
            let dpop;
            let presented = match authorization(&req) {
                Authorization::Bearer(credential) => Presented::Bearer(credential),
                Authorization::Dpop(token) => {
                    dpop = super::dpop::from_request(&req, token, &svc.config.issuer);
                    Presented::Dpop(dpop.presented())
                }
                Authorization::Nothing => Presented::Nothing,
                Authorization::Malformed => Presented::Malformed,
            };
            let client = super::super::client_ip(&svc, &req);
            let audience = &svc.v1_resource;
            match check::check(&svc, presented, client, Some(S::NAME), audience).await {
                Ok(principal) => Ok(Caller {
                    principal,
                    scope: PhantomData,
                }),
                Err(e) => Err(ApiError::naming(e, super::resource_metadata(&svc))),
            }
        })
    }
}

/// What a request's `Authorization` header presents, read in one pass.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Authorization<'a> {
    /// No `Authorization` header.
    Nothing,
    /// `Bearer <credential>`.
    Bearer(&'a str),
    /// `DPoP <token>` (RFC 9449 §7.1).
    Dpop(&'a str),
    /// Anything else: another scheme, no credential, a space inside it,
    /// bytes that are not visible ASCII, or longer than 4096 bytes.
    Malformed,
}

/// The longest credential `/v1` reads.
const MAX_CREDENTIAL: usize = 4096;

/// The request's `Authorization` header, checked once: a scheme, one space,
/// and a credential of visible ASCII (spaces around it are ignored).
pub(crate) fn authorization(req: &HttpRequest) -> Authorization<'_> {
    let Some(value) = req.headers().get(header::AUTHORIZATION) else {
        return Authorization::Nothing;
    };
    let bytes = value.as_bytes();
    let Some(space) = bytes.iter().position(|b| *b == b' ') else {
        return Authorization::Malformed;
    };
    let (scheme, rest) = (&bytes[..space], &bytes[space + 1..]);
    let credential = rest.trim_ascii();
    // Every byte visible ASCII (0x21..=0x7e), checked without a branch per
    // byte so that the loop runs on whole vectors.
    let visible = credential
        .iter()
        .fold(true, |ok, b| ok & (b.wrapping_sub(0x21) < 0x5e));
    let shaped = !credential.is_empty() && credential.len() <= MAX_CREDENTIAL && visible;
    // Visible ASCII throughout, so the bytes are a `str`.
    let Ok(credential) = std::str::from_utf8(credential) else {
        return Authorization::Malformed;
    };
    match shaped {
        true if scheme.eq_ignore_ascii_case(b"bearer") => Authorization::Bearer(credential),
        true if scheme.eq_ignore_ascii_case(b"dpop") => Authorization::Dpop(credential),
        _ => Authorization::Malformed,
    }
}

#[cfg(test)]
mod tests {
    use super::{authorization, Authorization};
    use actix_web::http::header::{HeaderValue, AUTHORIZATION};
    use proptest::prelude::*;

    fn read(value: &[u8]) -> Authorization<'static> {
        let req = actix_web::test::TestRequest::default()
            .insert_header((AUTHORIZATION, HeaderValue::from_bytes(value).unwrap()))
            .to_http_request();
        match authorization(&req) {
            Authorization::Bearer(c) => Authorization::Bearer(c.to_string().leak()),
            Authorization::Dpop(c) => Authorization::Dpop(c.to_string().leak()),
            Authorization::Nothing => Authorization::Nothing,
            Authorization::Malformed => Authorization::Malformed,
        }
    }

    #[test]
    fn the_header_is_read_once_and_strictly() {
        let none = actix_web::test::TestRequest::default().to_http_request();
        assert_eq!(authorization(&none), Authorization::Nothing);
        assert_eq!(read(b"Bearer abc.def"), Authorization::Bearer("abc.def"));
        assert_eq!(read(b"bearer  abc "), Authorization::Bearer("abc"));
        assert_eq!(read(b"DPoP tok"), Authorization::Dpop("tok"));
        assert_eq!(read(b"dpop tok"), Authorization::Dpop("tok"));
        for bad in [
            &b"Bearer"[..],
            b"Bearer ",
            b"Bearer a b",
            b"Basic YTpi",
            b"Bearer caf\xc3\xa9",
            b"Bearer a\tb",
            b"Token abc",
        ] {
            assert_eq!(read(bad), Authorization::Malformed, "{bad:?}");
        }
        let long = format!("Bearer {}", "a".repeat(4097));
        assert_eq!(read(long.as_bytes()), Authorization::Malformed);
        let longest = format!("Bearer {}", "a".repeat(4096));
        assert!(matches!(read(longest.as_bytes()), Authorization::Bearer(_)));
    }

    proptest! {
        // The Authorization header of /v1, as any bytes a client can send.
        #[test]
        fn bearer_header_never_panics(value in proptest::collection::vec(any::<u8>(), 0..200), text in "\\PC*") {
            let mut candidates = vec![value];
            candidates.push(text.clone().into_bytes());
            candidates.push(format!("Bearer {text}").into_bytes());
            for bytes in candidates {
                let Ok(v) = HeaderValue::from_bytes(&bytes) else { continue };
                let req = actix_web::test::TestRequest::default()
                    .insert_header((AUTHORIZATION, v))
                    .to_http_request();
                let read = authorization(&req);
                if let Authorization::Bearer(c) | Authorization::Dpop(c) = read {
                    prop_assert!(!c.is_empty() && c.len() <= 4096 && !c.contains(' '));
                }
            }
        }
    }
}
