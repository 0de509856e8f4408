//! Signing up, logging in and out, refreshing, and the bearer-token flow for API clients.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum_extra::extract::cookie::CookieJar;
use holdfast_common::auth::{AuthUser, Role, bearer_token};
use holdfast_common::error::ErrorBody;
use holdfast_common::extract::{ValidJson, field_error};
use holdfast_common::messages::{self, UserSignedUp};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use validator::Validate;

use super::{valid_email, valid_new_password, valid_password};
use crate::AppState;
use crate::cookies::{ACCESS_COOKIE, REFRESH_COOKIE};
use crate::domain::user::{Email, User, UserView, new_user_id, now_millis};
use crate::error::AuthError;
use crate::store::Created;
use crate::store::sessions::{Grant, Rotation};

/// A new account. The email is trimmed and compared case-insensitively.
#[derive(Debug, Deserialize, Validate, ToSchema)]
pub struct SignupRequest {
    #[validate(required(message = "required"), custom(function = "valid_email"))]
    #[schema(required, value_type = String, format = Email, example = "ada@example.com")]
    email: Option<String>,
    /// 8 to 128 characters, not one of the commonest passwords.
    #[validate(
        required(message = "required"),
        custom(function = "valid_new_password")
    )]
    #[schema(required, value_type = String, min_length = 8, max_length = 128, example = "correct horse battery")]
    password: Option<String>,
    #[validate(length(max = 100, message = "must be at most 100 characters"))]
    #[schema(required = false, value_type = String, max_length = 100, example = "Ada Lovelace")]
    name: Option<String>,
}

/// An email and password.
#[derive(Debug, Deserialize, Validate, ToSchema)]
pub struct Credentials {
    #[validate(required(message = "required"), custom(function = "valid_email"))]
    #[schema(required, value_type = String, format = Email, example = "ada@example.com")]
    email: Option<String>,
    #[validate(required(message = "required"), custom(function = "valid_password"))]
    #[schema(required, value_type = String, min_length = 8, max_length = 128, example = "correct horse battery")]
    password: Option<String>,
}

/// A refresh token from an earlier `POST /api/auth/token`.
#[derive(Debug, Deserialize, Validate, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct RefreshRequest {
    #[validate(
        required(message = "required"),
        length(min = 1, max = 512, message = "invalid")
    )]
    #[schema(required, value_type = String, min_length = 1, max_length = 512)]
    refresh_token: Option<String>,
}

/// The body of `signup` and `login`.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(example = json!({"userId": "6650c0ffee0000000000abcd", "email": "ada@example.com", "role": "user"}))]
pub struct Identity {
    user_id: String,
    email: String,
    role: Role,
}

impl From<&User> for Identity {
    fn from(user: &User) -> Self {
        Self {
            user_id: user.id.clone(),
            email: user.email.as_str().to_string(),
            role: user.role,
        }
    }
}

/// The body of `token` and `token/refresh`.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(example = json!({
    "accessToken": "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiI…",
    "refreshToken": "q1Zt3fK…",
    "tokenType": "Bearer",
    "expiresIn": 900
}))]
pub struct TokenSet {
    access_token: String,
    refresh_token: String,
    #[schema(value_type = String, example = "Bearer")]
    token_type: &'static str,
    /// Seconds until the access token expires.
    expires_in: u64,
}

/// The body of a cookie refresh.
#[derive(Debug, Serialize, ToSchema)]
pub struct Refreshed {
    ok: bool,
}

/// Validated input is always present; this keeps handlers free of `unwrap`.
fn required(value: Option<String>) -> String {
    value.unwrap_or_default()
}

impl AppState {
    fn access_token(&self, user: &User, sid: &str) -> Result<String, AuthError> {
        Ok(self.keys.issue(
            &user.id,
            user.email.as_str(),
            user.role,
            sid,
            self.settings.access_token_ttl,
        )?)
    }

    /// The user whose email and password these are, with the same work done either way; an
    /// account with too many failures in a row waits first (see [`crate::throttle`]).
    async fn authenticate(&self, credentials: Credentials) -> Result<User, AuthError> {
        let email = Email::parse(&required(credentials.email))
            .map_err(|_| AuthError::InvalidCredentials)?;
        if let Some(wait) = self.login_throttle.wait(&email).await? {
            return Err(AuthError::LoginThrottled(wait));
        }
        let user = self.users.by_email(&email).await?;
        let matches = self
            .passwords
            .verify(
                &required(credentials.password),
                user.as_ref().map(|u| u.password_hash.as_str()),
            )
            .await?;
        match user {
            Some(user) if matches => {
                self.login_throttle.succeeded(&email).await?;
                Ok(user)
            }
            _ => {
                self.login_throttle.failed(&email).await?;
                Err(AuthError::InvalidCredentials)
            }
        }
    }

    fn token_set(&self, access_token: String, grant: Grant) -> TokenSet {
        TokenSet {
            access_token,
            refresh_token: grant.refresh_token,
            token_type: "Bearer",
            expires_in: self.settings.access_token_ttl.as_secs(),
        }
    }

    /// The current user behind a refreshed grant (their role may have changed since).
    async fn user_of(&self, grant: &Grant) -> Result<User, AuthError> {
        match self.users.by_id(&grant.user_id).await? {
            Some(user) => Ok(user),
            None => {
                self.sessions.revoke(&grant.sid).await?;
                Err(AuthError::SessionEnded)
            }
        }
    }
}

/// Creates an account and starts a session (cookies `access_token`, `refresh_token`,
/// `session_id`).
#[utoipa::path(post, path = "/signup", tag = "auth", request_body = SignupRequest,
    responses(
        (status = 201, description = "Signed up and logged in; session cookies set", body = Identity),
        (status = 400, description = "`INVALID_JSON`, `VALIDATION_FAILED` (email, password 8–128, name ≤ 100)", body = ErrorBody),
        (status = 409, description = "`USER_EXISTS`", body = ErrorBody),
    ))]
pub async fn signup(
    State(state): State<AppState>,
    jar: CookieJar,
    ValidJson(request): ValidJson<SignupRequest>,
) -> Result<Response, AuthError> {
    let email =
        Email::parse(&required(request.email)).map_err(|reason| field_error("email", reason))?;
    let user = User {
        id: new_user_id(),
        email,
        name: request
            .name
            .map(|n| n.trim().to_string())
            .filter(|n| !n.is_empty()),
        role: Role::User,
        password_hash: state.passwords.hash(&required(request.password)).await?,
        created_at: now_millis(),
    };
    if state.users.create(&user).await? == Created::EmailTaken {
        return Err(AuthError::UserExists);
    }
    publish_signed_up(&state, &user).await;
    let grant = state.sessions.start(&user.id).await?;
    let access = state.access_token(&user, &grant.sid)?;
    let jar = state.cookies.set_session(jar, &access, &grant);
    Ok((StatusCode::CREATED, jar, Json(Identity::from(&user))).into_response())
}

/// Tells other services about a new account; losing this message loses nothing essential
/// (recommendations warm up on the user's first order), so a failure is logged, not answered.
async fn publish_signed_up(state: &AppState, user: &User) {
    let view = UserView::from(user);
    let message = UserSignedUp {
        user_id: view.user_id,
        email: view.email,
        name: view.name,
        role: view.role,
    };
    let published = messages::publish(&*state.infra.bus, &message).await;
    if let Err(error) = published {
        tracing::warn!(%error, user_id = %user.id, "user.signed_up not published");
    }
}

/// Logs in with cookies (browsers).
#[utoipa::path(post, path = "/login", tag = "auth", request_body = Credentials,
    responses(
        (status = 200, description = "Logged in; session cookies set", body = Identity),
        (status = 400, description = "`INVALID_JSON`, `VALIDATION_FAILED`", body = ErrorBody),
        (status = 401, description = "`INVALID_CREDENTIALS`", body = ErrorBody),
        (status = 429, description = "`RATE_LIMITED` (this client), `LOGIN_THROTTLED` (too many failures in a row for this account): wait `Retry-After` seconds", body = ErrorBody,
            headers(("Retry-After" = u64, description = "Seconds to wait"))),
    ))]
pub async fn login(
    State(state): State<AppState>,
    jar: CookieJar,
    ValidJson(credentials): ValidJson<Credentials>,
) -> Result<Response, AuthError> {
    let user = state.authenticate(credentials).await?;
    let grant = state.sessions.start(&user.id).await?;
    let access = state.access_token(&user, &grant.sid)?;
    let jar = state.cookies.set_session(jar, &access, &grant);
    Ok((jar, Json(Identity::from(&user))).into_response())
}

/// Rotates the `refresh_token` cookie and issues a new `access_token` cookie. Reusing an
/// already rotated refresh token revokes the whole session.
#[utoipa::path(post, path = "/refresh", tag = "auth",
    params(("refresh_token" = Option<String>, Cookie, description = "The refresh token cookie")),
    responses(
        (status = 200, description = "Rotated; new cookies set", body = Refreshed, example = json!({"ok": true})),
        (status = 401, description = "`INVALID_REFRESH_TOKEN` (missing, expired, revoked), `REFRESH_REUSED` (session revoked), `SESSION_ENDED`; cookies cleared", body = ErrorBody),
    ))]
pub async fn refresh(State(state): State<AppState>, jar: CookieJar) -> Result<Response, AuthError> {
    let Some(token) = jar.get(REFRESH_COOKIE).map(|c| c.value().to_string()) else {
        return Ok((state.cookies.clear_session(jar), AuthError::InvalidRefresh).into_response());
    };
    let grant = match state.sessions.rotate(&token).await? {
        Rotation::Rotated(grant) => grant,
        Rotation::Reused => {
            return Ok((state.cookies.clear_session(jar), AuthError::RefreshReused).into_response());
        }
        Rotation::Invalid => {
            return Ok(
                (state.cookies.clear_session(jar), AuthError::InvalidRefresh).into_response(),
            );
        }
    };
    let user = state.user_of(&grant).await?;
    let access = state.access_token(&user, &grant.sid)?;
    let jar = state.cookies.set_session(jar, &access, &grant);
    Ok((jar, Json(Refreshed { ok: true })).into_response())
}

/// Ends the session whose own credential comes with the request (its access token, as the
/// bearer or the `access_token` cookie, even expired; or its refresh cookie) and clears the
/// cookies. The `session_id` cookie alone proves nothing (the id is in every access token), so
/// it ends nothing. Answers 204 even when nothing was left to end.
#[utoipa::path(post, path = "/logout", tag = "auth",
    responses((status = 204, description = "Logged out; cookies cleared")))]
pub async fn logout(
    State(state): State<AppState>,
    jar: CookieJar,
    request: axum::extract::Request,
) -> Result<Response, AuthError> {
    let (parts, _) = request.into_parts();
    let mut sessions: Vec<String> = Vec::new();
    let access_tokens = bearer_token(&parts.headers)
        .into_iter()
        .chain(jar.get(ACCESS_COOKIE).map(|c| c.value()));
    for token in access_tokens {
        // Signed by us, expired or not: it was issued to this session.
        if let Ok(claims) = state.keys.verify_allowing_expiry(token) {
            sessions.push(claims.sid);
        }
    }
    if let Some(refresh) = jar.get(REFRESH_COOKIE)
        && let Some(sid) = state.sessions.session_of(refresh.value()).await?
    {
        sessions.push(sid);
    }
    for sid in sessions {
        state.sessions.revoke(&sid).await?;
    }
    Ok((StatusCode::NO_CONTENT, state.cookies.clear_session(jar)).into_response())
}

/// The caller's account.
#[utoipa::path(get, path = "/me", tag = "auth",
    responses(
        (status = 200, description = "The caller", body = UserView),
        (status = 401, description = "`UNAUTHENTICATED`, `SESSION_ENDED`", body = ErrorBody),
    ))]
pub async fn me(
    State(state): State<AppState>,
    caller: AuthUser,
) -> Result<Json<UserView>, AuthError> {
    let user = state.current_user(&caller).await?;
    Ok(Json(UserView::from(&user)))
}

/// The login of API clients: tokens in the body instead of cookies.
#[utoipa::path(post, path = "/token", tag = "auth", request_body = Credentials,
    responses(
        (status = 200, description = "Logged in", body = TokenSet),
        (status = 400, description = "`INVALID_JSON`, `VALIDATION_FAILED`", body = ErrorBody),
        (status = 401, description = "`INVALID_CREDENTIALS`", body = ErrorBody),
        (status = 429, description = "`RATE_LIMITED` (this client), `LOGIN_THROTTLED` (too many failures in a row for this account): wait `Retry-After` seconds", body = ErrorBody,
            headers(("Retry-After" = u64, description = "Seconds to wait"))),
    ))]
pub async fn token(
    State(state): State<AppState>,
    ValidJson(credentials): ValidJson<Credentials>,
) -> Result<Response, AuthError> {
    let user = state.authenticate(credentials).await?;
    let grant = state.sessions.start(&user.id).await?;
    let access = state.access_token(&user, &grant.sid)?;
    Ok(Json(state.token_set(access, grant)).into_response())
}

/// Rotates an API client's refresh token. Reusing a rotated one revokes the session.
#[utoipa::path(post, path = "/token/refresh", tag = "auth", request_body = RefreshRequest,
    responses(
        (status = 200, description = "Rotated", body = TokenSet),
        (status = 400, description = "`INVALID_JSON`, `VALIDATION_FAILED`", body = ErrorBody),
        (status = 401, description = "`INVALID_REFRESH_TOKEN`, `REFRESH_REUSED` (session revoked), `SESSION_ENDED`", body = ErrorBody),
    ))]
pub async fn token_refresh(
    State(state): State<AppState>,
    ValidJson(request): ValidJson<RefreshRequest>,
) -> Result<Response, AuthError> {
    let grant = match state
        .sessions
        .rotate(&required(request.refresh_token))
        .await?
    {
        Rotation::Rotated(grant) => grant,
        Rotation::Reused => return Err(AuthError::RefreshReused),
        Rotation::Invalid => return Err(AuthError::InvalidRefresh),
    };
    let user = state.user_of(&grant).await?;
    let access = state.access_token(&user, &grant.sid)?;
    Ok(Json(state.token_set(access, grant)).into_response())
}
