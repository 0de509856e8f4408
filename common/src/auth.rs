//! Access tokens and the extractors that read them, shared by every process.
//!
//! Access tokens are HS256 JWTs signed with `JWT_SECRET`, carrying `sub`/`userId`, `email`,
//! `role`, `sid` (the session), `iat` and `exp`. The gateway verifies them to bridge cookies;
//! each service verifies them again with the same [`TokenKeys`] (defence in depth).

use std::fmt;
use std::str::FromStr;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::extract::{FromRef, FromRequestParts};
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode, header};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};

use crate::error::ApiError;

/// What a user may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    User,
    Organizer,
    Admin,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::User => "user",
            Self::Organizer => "organizer",
            Self::Admin => "admin",
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Role {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "user" => Ok(Self::User),
            "organizer" => Ok(Self::Organizer),
            "admin" => Ok(Self::Admin),
            _ => Err("expected user, organizer or admin".into()),
        }
    }
}

/// The claims of an access token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    pub sub: String,
    #[serde(rename = "userId")]
    pub user_id: String,
    pub email: String,
    pub role: Role,
    /// The session the token was issued for; revoking it stops refreshes.
    pub sid: String,
    pub iat: u64,
    pub exp: u64,
    /// When it was issued, in Unix milliseconds (tokens made before it was added have none):
    /// `iat` counts whole seconds, too coarse to order a token against a role change.
    #[serde(rename = "iatMs", default, skip_serializing_if = "Option::is_none")]
    pub iat_ms: Option<u64>,
}

impl Claims {
    /// When the token was issued, in Unix milliseconds; for a token without `iatMs`, the end
    /// of its `iat` second is not known, so its start counts.
    pub fn issued_at_ms(&self) -> u64 {
        self.iat_ms.unwrap_or(self.iat.saturating_mul(1000))
    }
}

/// Why a token was not accepted.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum TokenError {
    #[error("the access token has expired")]
    Expired,
    #[error("the access token is invalid")]
    Invalid,
    #[error("cannot sign the access token: {0}")]
    Signing(String),
}

/// Signs and verifies access tokens.
pub struct TokenKeys {
    encoding: EncodingKey,
    decoding: DecodingKey,
    validation: Validation,
}

impl fmt::Debug for TokenKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("TokenKeys(<secret>)")
    }
}

impl TokenKeys {
    pub fn new(secret: &str) -> Self {
        let mut validation = Validation::new(Algorithm::HS256);
        validation.leeway = 5;
        validation.set_required_spec_claims(&["exp", "sub"]);
        Self {
            encoding: EncodingKey::from_secret(secret.as_bytes()),
            decoding: DecodingKey::from_secret(secret.as_bytes()),
            validation,
        }
    }

    /// Signs a token for `user` in session `sid`, valid for `ttl`.
    pub fn issue(
        &self,
        user_id: &str,
        email: &str,
        role: Role,
        sid: &str,
        ttl: Duration,
    ) -> Result<String, TokenError> {
        let iat_ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
        let iat = iat_ms / 1000;
        let claims = Claims {
            sub: user_id.to_string(),
            user_id: user_id.to_string(),
            email: email.to_string(),
            role,
            sid: sid.to_string(),
            iat,
            exp: iat + ttl.as_secs(),
            iat_ms: Some(iat_ms),
        };
        jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &self.encoding)
            .map_err(|e| TokenError::Signing(e.to_string()))
    }

    /// The claims of a token signed with our key, whether or not it has expired: proof that it
    /// was issued to its session (logging out with an expired token), never access.
    pub fn verify_allowing_expiry(&self, token: &str) -> Result<Claims, TokenError> {
        let mut validation = self.validation.clone();
        validation.validate_exp = false;
        jsonwebtoken::decode::<Claims>(token, &self.decoding, &validation)
            .map(|data| data.claims)
            .map_err(|_| TokenError::Invalid)
    }

    /// The claims of a valid, unexpired token signed with our key.
    pub fn verify(&self, token: &str) -> Result<Claims, TokenError> {
        match jsonwebtoken::decode::<Claims>(token, &self.decoding, &self.validation) {
            Ok(data) => Ok(data.claims),
            Err(e) if matches!(e.kind(), jsonwebtoken::errors::ErrorKind::ExpiredSignature) => {
                Err(TokenError::Expired)
            }
            Err(_) => Err(TokenError::Invalid),
        }
    }
}

/// The TTL-store key that marks session `sid` revoked, for as long as its access tokens live:
/// written by auth, read by the gateway.
pub fn revoked_session_key(sid: &str) -> String {
    format!("auth:revoked:{sid}")
}

/// The TTL-store key holding when `user_id`'s role last changed (Unix ms), for as long as
/// an access token issued before lives: written by auth, read by the gateway.
pub fn role_changed_key(user_id: &str) -> String {
    format!("auth:role-changed:{user_id}")
}

/// The TTL-store key counting every revocation auth writes (a revoked session, a role change),
/// bumped after the fact itself is written: a reader that sees the same count twice knows that
/// nothing was revoked in between, and may keep what it read of any session meanwhile.
pub const REVOCATIONS_GENERATION_KEY: &str = "auth:revocations:generation";

/// Counts one more revocation (see [`REVOCATIONS_GENERATION_KEY`]); call it after writing the
/// revoked session or the role change.
pub async fn count_revocation(kv: &dyn crate::kv::TtlStore) -> Result<(), crate::kv::KvError> {
    // Long past any access token: a count that expired reads as absent, which is a change too.
    const KEPT: Duration = Duration::from_secs(30 * 24 * 3600);
    kv.increment(REVOCATIONS_GENERATION_KEY, 1, KEPT)
        .await
        .map(|_| ())
}

/// The bearer token of a request's `headers`, if it has a well-formed `Authorization: Bearer …`.
pub fn bearer_token(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim())
        .filter(|t| !t.is_empty())
}

fn unauthenticated(message: &str) -> ApiError {
    ApiError::new(StatusCode::UNAUTHORIZED, "UNAUTHENTICATED", message)
}

/// The authenticated caller: a handler taking it answers 401 to anonymous requests.
#[derive(Debug, Clone)]
pub struct AuthUser(pub Claims);

impl AuthUser {
    pub fn id(&self) -> &str {
        &self.0.user_id
    }

    /// The address the caller signed in with, as the token states it.
    pub fn email(&self) -> &str {
        &self.0.email
    }

    pub fn role(&self) -> Role {
        self.0.role
    }

    pub fn is_admin(&self) -> bool {
        self.0.role == Role::Admin
    }

    /// 403 unless the caller has one of `roles`.
    pub fn require(&self, roles: &[Role]) -> Result<(), ApiError> {
        if roles.contains(&self.0.role) {
            Ok(())
        } else {
            Err(ApiError::new(
                StatusCode::FORBIDDEN,
                "FORBIDDEN",
                format!("this needs the role {}", join_roles(roles)),
            ))
        }
    }
}

fn join_roles(roles: &[Role]) -> String {
    roles
        .iter()
        .map(|r| r.as_str())
        .collect::<Vec<_>>()
        .join(" or ")
}

/// Lets the extractors of this module ([`AuthUser`], [`Organizer`], …) find the token keys in a
/// service's state: `holdfast_common::token_keys_in!(AppState, keys);` for a state whose field
/// `keys` is an `Arc<TokenKeys>`.
#[macro_export]
macro_rules! token_keys_in {
    ($state:ty, $field:ident) => {
        impl ::axum::extract::FromRef<$state> for ::std::sync::Arc<$crate::auth::TokenKeys> {
            fn from_ref(state: &$state) -> Self {
                state.$field.clone()
            }
        }
    };
}

impl<S> FromRequestParts<S> for AuthUser
where
    Arc<TokenKeys>: FromRef<S>,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let token = bearer_token(&parts.headers)
            .ok_or_else(|| unauthenticated("authentication required"))?;
        let keys = Arc::<TokenKeys>::from_ref(state);
        match keys.verify(token) {
            Ok(claims) => Ok(Self(claims)),
            Err(TokenError::Expired) => Err(unauthenticated("the access token has expired")),
            Err(_) => Err(unauthenticated("the access token is invalid")),
        }
    }
}

/// The caller, if authenticated (else 401) and holding one of `roles` (else 403).
async fn authorized<S>(parts: &mut Parts, state: &S, roles: &[Role]) -> Result<AuthUser, ApiError>
where
    Arc<TokenKeys>: FromRef<S>,
    S: Send + Sync,
{
    let user = AuthUser::from_request_parts(parts, state).await?;
    user.require(roles)?;
    Ok(user)
}

/// An authenticated organizer or admin: anonymous callers get 401, other roles 403.
#[derive(Debug, Clone)]
pub struct Organizer(pub AuthUser);

impl<S> FromRequestParts<S> for Organizer
where
    Arc<TokenKeys>: FromRef<S>,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        authorized(parts, state, &[Role::Organizer, Role::Admin])
            .await
            .map(Self)
    }
}

/// An authenticated admin: anonymous callers get 401, other roles 403.
#[derive(Debug, Clone)]
pub struct Admin(pub AuthUser);

impl<S> FromRequestParts<S> for Admin
where
    Arc<TokenKeys>: FromRef<S>,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        authorized(parts, state, &[Role::Admin]).await.map(Self)
    }
}

/// The caller if authenticated, `None` if anonymous; a bad token is still refused.
#[derive(Debug, Clone)]
pub struct MaybeAuthUser(pub Option<AuthUser>);

impl<S> FromRequestParts<S> for MaybeAuthUser
where
    Arc<TokenKeys>: FromRef<S>,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        if parts.headers.contains_key(header::AUTHORIZATION) {
            AuthUser::from_request_parts(parts, state)
                .await
                .map(|u| Self(Some(u)))
        } else {
            Ok(Self(None))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &str = "a-test-secret-of-at-least-32-bytes!!";

    /// An expired token still proves its session for logging out; a forged one proves nothing.
    #[test]
    fn expired_tokens_prove_their_session_but_grant_nothing() {
        let keys = TokenKeys::new(SECRET);
        let expired = Claims {
            sub: "u1".into(),
            user_id: "u1".into(),
            email: "a@b.test".into(),
            role: Role::User,
            sid: "s1".into(),
            iat: 1_000,
            exp: 2_000,
            iat_ms: None,
        };
        let sign = |secret: &str| {
            jsonwebtoken::encode(
                &Header::new(Algorithm::HS256),
                &expired,
                &EncodingKey::from_secret(secret.as_bytes()),
            )
            .unwrap()
        };
        let token = sign(SECRET);
        assert!(matches!(keys.verify(&token), Err(TokenError::Expired)));
        assert_eq!(keys.verify_allowing_expiry(&token).unwrap().sid, "s1");
        let forged = sign("another-secret-of-at-least-32-bytes!!");
        assert!(keys.verify_allowing_expiry(&forged).is_err());
        assert!(keys.verify_allowing_expiry("not.a.token").is_err());
    }

    #[test]
    fn issued_tokens_verify_with_their_claims() {
        let keys = TokenKeys::new(SECRET);
        let token = keys
            .issue(
                "u1",
                "a@b.test",
                Role::Organizer,
                "s1",
                Duration::from_secs(60),
            )
            .unwrap();
        let claims = keys.verify(&token).unwrap();
        assert_eq!((claims.sub.as_str(), claims.user_id.as_str()), ("u1", "u1"));
        assert_eq!(claims.role, Role::Organizer);
        assert_eq!(claims.sid, "s1");
        assert_eq!(claims.exp - claims.iat, 60);
    }

    #[test]
    fn foreign_tampered_and_expired_tokens_are_refused() {
        let keys = TokenKeys::new(SECRET);
        let other = TokenKeys::new("another-secret-of-at-least-32-bytes");
        let token = other
            .issue("u1", "a@b.test", Role::Admin, "s1", Duration::from_secs(60))
            .unwrap();
        assert_eq!(keys.verify(&token), Err(TokenError::Invalid));
        assert_eq!(keys.verify("not.a.jwt"), Err(TokenError::Invalid));

        let mut claims = keys
            .verify(
                &keys
                    .issue("u1", "a@b.test", Role::User, "s1", Duration::from_secs(60))
                    .unwrap(),
            )
            .unwrap();
        claims.exp = claims.iat - 60;
        let expired =
            jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &keys.encoding).unwrap();
        assert_eq!(keys.verify(&expired), Err(TokenError::Expired));

        // Same claims, algorithm switched to "none": refused.
        let parts: Vec<&str> = token.split('.').collect();
        let unsigned = format!("eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0.{}.", parts[1]);
        assert_eq!(keys.verify(&unsigned), Err(TokenError::Invalid));
    }

    async fn extract<T>(keys: &Arc<TokenKeys>, token: Option<&str>) -> Result<T, ApiError>
    where
        T: FromRequestParts<Arc<TokenKeys>, Rejection = ApiError>,
    {
        let mut request = axum::http::Request::builder();
        if let Some(token) = token {
            request = request.header("authorization", format!("Bearer {token}"));
        }
        let (mut parts, ()) = request.body(()).unwrap().into_parts();
        T::from_request_parts(&mut parts, keys).await
    }

    #[tokio::test]
    async fn role_extractors_answer_401_then_403() {
        let keys = Arc::new(TokenKeys::new(SECRET));
        let token = |role| {
            keys.issue("u", "u@x.test", role, "s", Duration::from_secs(60))
                .unwrap()
        };
        let status = |r: Result<(), ApiError>| r.err().map(|e| e.status.as_u16());
        let organizer = |t: Option<String>| {
            let keys = keys.clone();
            async move { status(extract::<Organizer>(&keys, t.as_deref()).await.map(|_| ())) }
        };
        let admin = |t: Option<String>| {
            let keys = keys.clone();
            async move { status(extract::<Admin>(&keys, t.as_deref()).await.map(|_| ())) }
        };
        assert_eq!(organizer(None).await, Some(401));
        assert_eq!(organizer(Some(token(Role::User))).await, Some(403));
        assert_eq!(organizer(Some(token(Role::Organizer))).await, None);
        assert_eq!(organizer(Some(token(Role::Admin))).await, None);
        assert_eq!(admin(Some(token(Role::Organizer))).await, Some(403));
        assert_eq!(admin(Some(token(Role::Admin))).await, None);
        let garbage = extract::<AuthUser>(&keys, Some("garbage"))
            .await
            .map(|_| ());
        assert_eq!(status(garbage), Some(401));
    }

    #[test]
    fn roles_parse_and_print_in_lowercase() {
        for role in [Role::User, Role::Organizer, Role::Admin] {
            assert_eq!(role.to_string().parse::<Role>(), Ok(role));
        }
        assert!("root".parse::<Role>().is_err());
        assert_eq!(
            serde_json::to_string(&Role::Organizer).unwrap(),
            "\"organizer\""
        );
    }
}
