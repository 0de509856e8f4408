//! The auth service's routes (public paths are under `/api/auth` at the gateway).

mod session;
mod users;

use axum::Router;
use holdfast_common::extract::invalid;
use holdfast_common::openapi::{Caller, document_callers};
use utoipa::openapi::path::HttpMethod;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use validator::ValidationError;

use crate::AppState;
use crate::domain::password;
use crate::domain::user::Email;

/// Who the routes that are not open to anyone answer (see [`Caller`]).
const CALLERS: &[(HttpMethod, &str, Caller)] = &[
    (HttpMethod::Get, "/me", Caller::SignedIn),
    (HttpMethod::Post, "/logout", Caller::SignedInOrAnonymous),
    (HttpMethod::Get, "/users", Caller::SignedIn),
    (HttpMethod::Patch, "/users/{user_id}/role", Caller::SignedIn),
];

/// The public routes, each registered with its OpenAPI description, so that a route cannot
/// exist without being documented.
fn documented() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(session::signup))
        .routes(routes!(session::login))
        .routes(routes!(session::refresh))
        .routes(routes!(session::logout))
        .routes(routes!(session::me))
        .routes(routes!(session::token))
        .routes(routes!(session::token_refresh))
        .routes(routes!(users::list))
        .routes(routes!(users::set_role))
}

pub fn router() -> Router<AppState> {
    documented().into()
}

/// The OpenAPI description of [`router`], with the service's own paths (the gateway serves
/// them under `/api/auth`).
pub fn openapi() -> utoipa::openapi::OpenApi {
    let mut doc = documented().into_openapi();
    document_callers(&mut doc, CALLERS);
    doc
}

/// `validator` rule: an email address (after trimming).
fn valid_email(value: &str) -> Result<(), ValidationError> {
    Email::parse(value).map(|_| ()).map_err(invalid)
}

/// `validator` rule: 8 to 128 characters.
fn valid_password(value: &str) -> Result<(), ValidationError> {
    let length = value.chars().count();
    if (password::MIN_LEN..=password::MAX_LEN).contains(&length) {
        Ok(())
    } else {
        Err(invalid("must be 8 to 128 characters"))
    }
}

/// `validator` rule for a password being chosen: 8 to 128 characters and not one of the
/// commonest (which every guessing attack tries first). Logging in checks only the length, so
/// accounts made before keep working.
fn valid_new_password(value: &str) -> Result<(), ValidationError> {
    valid_password(value)?;
    if holdfast_common::passwords::is_common(value) {
        return Err(invalid(
            "is one of the most common passwords, which are guessed first; choose another",
        ));
    }
    Ok(())
}
