//! Parsing a `/v1` request: the list query and the JSON body, with the
//! contract's error for every way each can be wrong.

use super::super::{media_type, read_body, BodyError};
use crate::v1::wire::ListQuery;
use crate::v1::V1Error;
use actix_web::{web, HttpRequest};

/// `?limit=…&starting_after=…` (their bounds are the area's).
pub fn list_query(req: &HttpRequest) -> Result<ListQuery, V1Error> {
    web::Query::<ListQuery>::from_query(req.query_string())
        .map(web::Query::into_inner)
        .map_err(|_| V1Error::ParameterInvalid("The query string could not be read.".into()))
}

/// Reads `{"<field>": "…"}`.
pub async fn field(
    req: &HttpRequest,
    payload: web::Payload,
    field: &str,
) -> Result<String, V1Error> {
    let object = object(req, payload).await?;
    match object.get(field) {
        None | Some(serde_json::Value::Null) => {
            Err(V1Error::ParameterMissing(format!("{field} is required.")))
        }
        Some(serde_json::Value::String(s)) => Ok(s.clone()),
        Some(_) => Err(V1Error::ParameterInvalid(format!(
            "{field} must be a string."
        ))),
    }
}

/// Reads a JSON object body.
async fn object(
    req: &HttpRequest,
    payload: web::Payload,
) -> Result<serde_json::Map<String, serde_json::Value>, V1Error> {
    if media_type(req).as_deref() != Some("application/json") {
        return Err(V1Error::InvalidContentType);
    }
    let body = read_body(payload).await.map_err(|e| match e {
        BodyError::TooLarge => V1Error::PayloadTooLarge,
        BodyError::Broken => V1Error::InvalidJson("The request body could not be read."),
    })?;
    match serde_json::from_slice(&body) {
        Ok(serde_json::Value::Object(object)) => Ok(object),
        Ok(_) => Err(V1Error::InvalidBody),
        Err(_) => Err(V1Error::InvalidJson("The request body is not valid JSON.")),
    }
}
