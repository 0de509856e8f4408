//! Request body extraction that always answers with the error body of [`crate::error`].
//!
//! [`ValidJson`] parses a JSON body and runs its `validator` rules: a body that is not JSON gets
//! 415, malformed JSON or wrong types 400 `INVALID_JSON`, rule violations 400
//! `VALIDATION_FAILED` with `details.fields` naming every offending field.

use std::collections::BTreeMap;

use axum::extract::rejection::JsonRejection;
use axum::extract::{FromRequest, Request};
use axum::http::StatusCode;
use serde::de::DeserializeOwned;
use serde_json::json;
use validator::{Validate, ValidationErrors, ValidationErrorsKind};

use crate::error::ApiError;

/// A JSON body of type `T` that passed `T`'s validation rules.
#[derive(Debug, Clone)]
pub struct ValidJson<T>(pub T);

impl<S, T> FromRequest<S> for ValidJson<T>
where
    T: DeserializeOwned + Validate,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Self, Self::Rejection> {
        let axum::Json(value) = axum::Json::<T>::from_request(request, state)
            .await
            .map_err(json_rejection)?;
        value.validate().map_err(validation_failed)?;
        Ok(Self(value))
    }
}

/// A JSON body of type `T` whose rules its handler checks itself (together with rules
/// `validator` cannot express, so that one answer names every offending field).
#[derive(Debug, Clone)]
pub struct JsonBody<T>(pub T);

impl<S, T> FromRequest<S> for JsonBody<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Self, Self::Rejection> {
        let axum::Json(value) = axum::Json::<T>::from_request(request, state)
            .await
            .map_err(json_rejection)?;
        Ok(Self(value))
    }
}

/// The error answer for a body axum could not turn into JSON of the expected shape.
pub fn json_rejection(rejection: JsonRejection) -> ApiError {
    match rejection {
        JsonRejection::MissingJsonContentType(_) => ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "UNSUPPORTED_MEDIA_TYPE",
            "expected a body with Content-Type: application/json",
        ),
        JsonRejection::JsonSyntaxError(e) => {
            ApiError::bad_request("INVALID_JSON", format!("malformed JSON: {}", e.body_text()))
        }
        JsonRejection::JsonDataError(e) => ApiError::bad_request("INVALID_JSON", e.body_text()),
        JsonRejection::BytesRejection(e) if e.status() == StatusCode::PAYLOAD_TOO_LARGE => {
            ApiError::from_status(StatusCode::PAYLOAD_TOO_LARGE)
        }
        other => ApiError::bad_request("INVALID_JSON", other.body_text()),
    }
}

/// 400 `VALIDATION_FAILED` with `details.fields: {field: [message…]}`.
pub fn validation_failed(errors: ValidationErrors) -> ApiError {
    fields_failed(field_messages(&errors))
}

/// The messages of `errors` per field, each named as the JSON names it (`rows[2].label`), so
/// that problems found outside `validator` can join them.
pub fn field_messages(errors: &ValidationErrors) -> BTreeMap<String, Vec<String>> {
    let mut fields = BTreeMap::new();
    collect_field_errors("", errors, &mut fields);
    fields
}

/// 400 `VALIDATION_FAILED` naming every field of `fields` with its messages.
pub fn fields_failed(fields: BTreeMap<String, Vec<String>>) -> ApiError {
    let names: Vec<&str> = fields.keys().map(String::as_str).collect();
    let message = format!("invalid input: {}", names.join(", "));
    ApiError::bad_request("VALIDATION_FAILED", message).with_details(json!({ "fields": fields }))
}

/// A `validator` rule's failure with `message` (code `invalid`), for custom rules.
pub fn invalid(message: &'static str) -> validator::ValidationError {
    validator::ValidationError::new("invalid").with_message(message.into())
}

/// A single-field validation error, for rules checked outside `validator`.
pub fn field_error(field: &str, message: &str) -> ApiError {
    ApiError::bad_request("VALIDATION_FAILED", format!("invalid input: {field}"))
        .with_details(json!({ "fields": { field: [message] } }))
}

/// `seats_per_row` → `seatsPerRow`: fields are named as the JSON names them (camelCase), while
/// `validator` reports the Rust field names.
pub fn camel_case(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    let mut upper = false;
    for c in name.chars() {
        if c == '_' {
            upper = true;
        } else if upper {
            out.extend(c.to_uppercase());
            upper = false;
        } else {
            out.push(c);
        }
    }
    out
}

fn collect_field_errors(
    prefix: &str,
    errors: &ValidationErrors,
    out: &mut BTreeMap<String, Vec<String>>,
) {
    for (field, kind) in errors.errors() {
        let field = camel_case(field);
        let name = if prefix.is_empty() {
            field
        } else {
            format!("{prefix}.{field}")
        };
        match kind {
            ValidationErrorsKind::Field(list) => {
                let messages = out.entry(name).or_default();
                for error in list {
                    messages.push(
                        error
                            .message
                            .as_ref()
                            .map_or_else(|| error.code.to_string(), |m| m.to_string()),
                    );
                }
            }
            ValidationErrorsKind::Struct(inner) => collect_field_errors(&name, inner, out),
            ValidationErrorsKind::List(items) => {
                for (index, inner) in items {
                    collect_field_errors(&format!("{name}[{index}]"), inner, out);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Deserialize, Validate)]
    struct Signup {
        #[validate(
            required(message = "required"),
            email(message = "must be an email address")
        )]
        email: Option<String>,
        #[validate(length(min = 8, max = 128, message = "must be 8 to 128 characters"))]
        password: String,
    }

    #[test]
    fn field_names_are_camel_cased() {
        assert_eq!(camel_case("seats_per_row"), "seatsPerRow");
        assert_eq!(camel_case("email"), "email");
    }

    #[test]
    fn every_offending_field_is_named_with_its_message() {
        let input = Signup {
            email: Some("nope".into()),
            password: "short".into(),
        };
        let error = validation_failed(input.validate().unwrap_err());
        assert_eq!(error.status, StatusCode::BAD_REQUEST);
        assert_eq!(error.body.code, "VALIDATION_FAILED");
        assert_eq!(
            error.body.details.unwrap()["fields"],
            json!({"email": ["must be an email address"], "password": ["must be 8 to 128 characters"]})
        );
        let missing = Signup {
            email: None,
            password: "long enough".into(),
        };
        let error = validation_failed(missing.validate().unwrap_err());
        assert_eq!(
            error.body.details.unwrap()["fields"],
            json!({"email": ["required"]})
        );
    }
}
