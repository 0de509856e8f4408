//! The auth service's routes (public paths are under `/api/auth` at the gateway).

mod session;
mod users;

use axum::Router;
use axum::routing::{get, patch, post};
use holdfast_common::extract::invalid;
use validator::ValidationError;

use crate::AppState;
use crate::domain::password;
use crate::domain::user::Email;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/signup", post(session::signup))
        .route("/login", post(session::login))
        .route("/refresh", post(session::refresh))
        .route("/logout", post(session::logout))
        .route("/me", get(session::me))
        .route("/token", post(session::token))
        .route("/token/refresh", post(session::token_refresh))
        .route("/users", get(users::list))
        .route("/users/{user_id}/role", patch(users::set_role))
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
