//! Administration of users: the list, and role changes.

use axum::Json;
use axum::extract::{Path, State};
use holdfast_common::auth::{AuthUser, Role};
use holdfast_common::error::ErrorBody;
use holdfast_common::extract::ValidJson;
use serde::Deserialize;
use utoipa::ToSchema;
use validator::{Validate, ValidationError};

use crate::AppState;
use crate::domain::user::{User, UserView};
use crate::error::AuthError;

fn valid_role(value: &str) -> Result<(), ValidationError> {
    value.parse::<Role>().map(|_| ()).map_err(|_| {
        ValidationError::new("invalid").with_message("must be user, organizer or admin".into())
    })
}

/// A user's new role.
#[derive(Debug, Deserialize, Validate, ToSchema)]
pub struct RoleChange {
    #[validate(required(message = "required"), custom(function = "valid_role"))]
    #[schema(required, value_type = Role)]
    role: Option<String>,
}

impl AppState {
    /// The caller as stored now: their session must be live and their account must exist.
    pub(crate) async fn current_user(&self, caller: &AuthUser) -> Result<User, AuthError> {
        if !self.sessions.is_live(&caller.0.sid).await? {
            return Err(AuthError::SessionEnded);
        }
        self.users
            .by_id(caller.id())
            .await?
            .ok_or(AuthError::SessionEnded)
    }

    /// The caller, if they are an admin right now (not merely when their token was issued).
    async fn current_admin(&self, caller: &AuthUser) -> Result<User, AuthError> {
        let user = self.current_user(caller).await?;
        if user.role != Role::Admin {
            return Err(AuthError::Forbidden("this needs the role admin"));
        }
        Ok(user)
    }
}

/// Every user (admin).
#[utoipa::path(get, path = "/users", tag = "users",
    responses(
        (status = 200, description = "All users", body = Vec<UserView>),
        (status = 401, description = "`UNAUTHENTICATED`, `SESSION_ENDED`", body = ErrorBody),
        (status = 403, description = "`FORBIDDEN`: not an admin", body = ErrorBody),
    ))]
pub async fn list(
    State(state): State<AppState>,
    caller: AuthUser,
) -> Result<Json<Vec<UserView>>, AuthError> {
    state.current_admin(&caller).await?;
    let users = state.users.list().await?;
    Ok(Json(users.iter().map(UserView::from).collect()))
}

/// Changes a user's role (admin). The new role shows in the user's next access token.
#[utoipa::path(patch, path = "/users/{user_id}/role", tag = "users",
    params(("user_id" = String, Path, description = "The user's id (24 hex digits)")),
    request_body = RoleChange,
    responses(
        (status = 200, description = "The updated user", body = UserView),
        (status = 400, description = "`INVALID_ID`, `INVALID_JSON`, `VALIDATION_FAILED`", body = ErrorBody),
        (status = 401, description = "`UNAUTHENTICATED`, `SESSION_ENDED`", body = ErrorBody),
        (status = 403, description = "`FORBIDDEN`: not an admin", body = ErrorBody),
        (status = 404, description = "`NOT_FOUND`: no such user", body = ErrorBody),
    ))]
pub async fn set_role(
    State(state): State<AppState>,
    caller: AuthUser,
    Path(user_id): Path<String>,
    ValidJson(change): ValidJson<RoleChange>,
) -> Result<Json<UserView>, AuthError> {
    state.current_admin(&caller).await?;
    let user_id = holdfast_common::ids::object_id(&user_id).ok_or(AuthError::InvalidId)?;
    let role = change
        .role
        .as_deref()
        .unwrap_or_default()
        .parse::<Role>()
        .map_err(|_| AuthError::InvalidId)?;
    let user = state
        .users
        .set_role(&user_id, role)
        .await?
        .ok_or(AuthError::UserNotFound)?;
    // Tokens issued before carry the old role: the gateway refuses them from now on (the
    // user refreshes or logs in again for one with the new role).
    let now_ms = holdfast_common::when::now_millis();
    state
        .infra
        .kv
        .set(
            &holdfast_common::auth::role_changed_key(&user.id),
            &now_ms.to_string(),
            state.settings.access_token_ttl,
        )
        .await?;
    holdfast_common::auth::count_revocation(&*state.infra.kv).await?;
    tracing::info!(admin = %caller.id(), user_id = %user.id, role = %role, "role changed");
    Ok(Json(UserView::from(&user)))
}
