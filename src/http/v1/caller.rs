//! The `/v1` extractor: gathers what the request presented (only
//! `Authorization: Bearer <credential>`) and the client address, and asks
//! `v1::check` with the scope the endpoint needs.

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
            let dpop = super::dpop::from_request(&req, &svc.config.issuer);
            let presented = match (&dpop, bearer_credential(&req)) {
                (Some(d), _) if token_shaped(d.presented().token) => Presented::Dpop(d.presented()),
                (_, Ok(Some(credential))) => Presented::Bearer(credential),
                (_, Ok(None)) => Presented::Nothing,
                (_, Err(())) => Presented::Malformed,
            };
            let client = super::super::client_ip(&svc, &req);
            let audience = svc.config.resource();
            match check::check(&svc, presented, client, Some(S::NAME), &audience).await {
                Ok(principal) => Ok(Caller {
                    principal,
                    scope: PhantomData,
                }),
                Err(e) => Err(ApiError::naming(e, super::resource_metadata(&svc))),
            }
        })
    }
}

/// A credential in the form a bearer credential must have.
pub(crate) fn token_shaped(credential: &str) -> bool {
    !credential.is_empty() && !credential.contains(' ') && credential.len() <= 4096
}

/// The credential, only from `Authorization: Bearer <credential>`.
pub(crate) fn bearer_credential(req: &HttpRequest) -> Result<Option<&str>, ()> {
    let Some(value) = req.headers().get(header::AUTHORIZATION) else {
        return Ok(None);
    };
    let value = value.to_str().map_err(|_| ())?;
    let (scheme, credential) = value.split_once(' ').ok_or(())?;
    let credential = credential.trim();
    if !scheme.eq_ignore_ascii_case("bearer")
        || credential.is_empty()
        || credential.contains(' ')
        || credential.len() > 4096
    {
        return Err(());
    }
    Ok(Some(credential))
}

#[cfg(test)]
mod tests {
    use super::bearer_credential;
    use actix_web::http::header::{HeaderValue, AUTHORIZATION};
    use proptest::prelude::*;

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
                let _ = bearer_credential(&req);
            }
        }
    }
}
