//! Credentials of service-to-service calls (the `/internal/*` routes, which the gateway never
//! forwards): a short-lived token signed with `SERVICE_TOKEN_SECRET`, a secret of its own, so
//! that neither reaching a service's port nor holding any user's access token is enough.
//!
//! The caller sends `Authorization: Service <token>` ([`ServiceKeys::header`]); the internal
//! routes are wrapped in [`require`], which answers 401 `SERVICE_TOKEN_REQUIRED` to anything
//! else.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};

use crate::error::ApiError;

/// The development signing key of service tokens; production refuses it.
pub const DEVELOPMENT_SERVICE_SECRET: &str =
    "holdfast-development-service-secret-never-use-in-production";
/// Who service tokens are for: never accepted as a user's access token, nor the reverse.
const AUDIENCE: &str = "holdfast-internal";
/// How long a token a caller makes lives (one per call).
const TOKEN_TTL: Duration = Duration::from_secs(60);

#[derive(Debug, Serialize, Deserialize)]
struct ServiceClaims {
    /// The calling service.
    sub: String,
    aud: String,
    iat: u64,
    exp: u64,
}

/// Signs and verifies service tokens.
pub struct ServiceKeys {
    encoding: EncodingKey,
    decoding: DecodingKey,
    validation: Validation,
}

impl std::fmt::Debug for ServiceKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ServiceKeys(<secret>)")
    }
}

impl ServiceKeys {
    pub fn new(secret: &str) -> Self {
        let mut validation = Validation::new(Algorithm::HS256);
        validation.leeway = 5;
        validation.set_audience(&[AUDIENCE]);
        validation.set_required_spec_claims(&["exp", "sub", "aud"]);
        Self {
            encoding: EncodingKey::from_secret(secret.as_bytes()),
            decoding: DecodingKey::from_secret(secret.as_bytes()),
            validation,
        }
    }

    /// `Service <token>` for a call made by `service` now.
    pub fn header(&self, service: &str) -> Option<HeaderValue> {
        let iat = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let claims = ServiceClaims {
            sub: service.to_string(),
            aud: AUDIENCE.to_string(),
            iat,
            exp: iat + TOKEN_TTL.as_secs(),
        };
        let token =
            jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &self.encoding).ok()?;
        HeaderValue::from_str(&format!("Service {token}")).ok()
    }

    /// The calling service, if `headers` carry a valid service token.
    pub fn caller(&self, headers: &HeaderMap) -> Option<String> {
        let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
        let (scheme, token) = value.split_once(' ')?;
        if !scheme.eq_ignore_ascii_case("service") {
            return None;
        }
        jsonwebtoken::decode::<ServiceClaims>(token.trim(), &self.decoding, &self.validation)
            .ok()
            .map(|data| data.claims.sub)
    }
}

/// Middleware for internal routes: 401 `SERVICE_TOKEN_REQUIRED` without a valid service token.
pub async fn require(
    State(keys): State<Arc<ServiceKeys>>,
    request: Request,
    next: Next,
) -> Response {
    if keys.caller(request.headers()).is_none() {
        return ApiError::new(
            StatusCode::UNAUTHORIZED,
            "SERVICE_TOKEN_REQUIRED",
            "internal routes are for Holdfast's services only",
        )
        .into_response();
    }
    next.run(request).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_tokens_signed_with_the_service_secret_pass() {
        let keys = ServiceKeys::new("a-service-secret-of-at-least-32-bytes");
        let mut headers = HeaderMap::new();
        headers.insert(header::AUTHORIZATION, keys.header("events").unwrap());
        assert_eq!(keys.caller(&headers).as_deref(), Some("events"));

        let other = ServiceKeys::new("another-secret-of-at-least-32-bytes!!");
        assert_eq!(other.caller(&headers), None);
        // A user's access token, signed with the user key, is no service token.
        let user_keys = crate::auth::TokenKeys::new("a-service-secret-of-at-least-32-bytes");
        let user = user_keys
            .issue("u1", "a@b.test", crate::auth::Role::Admin, "s1", TOKEN_TTL)
            .unwrap();
        for value in [
            format!("Service {user}"),
            format!("Bearer {user}"),
            "Service x".into(),
        ] {
            headers.insert(
                header::AUTHORIZATION,
                HeaderValue::from_str(&value).unwrap(),
            );
            assert_eq!(keys.caller(&headers), None, "{value}");
        }
        headers.remove(header::AUTHORIZATION);
        assert_eq!(keys.caller(&headers), None);
    }
}
