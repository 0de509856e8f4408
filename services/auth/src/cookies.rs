//! The cookies a browser session rides on: `access_token` (Path=/),
//! `refresh_token` (Path=/api/auth/refresh, so it travels only to the refresh call) and
//! `session_id` (Path=/). All HttpOnly and SameSite=Lax; `Secure` with `COOKIE_SECURE=true`;
//! `Domain` with `COOKIE_DOMAIN`.

use std::time::Duration;

use axum_extra::extract::cookie::{Cookie, CookieJar, SameSite};
use holdfast_common::config::AuthSettings;

use crate::store::sessions::Grant;

pub const ACCESS_COOKIE: &str = "access_token";
pub const REFRESH_COOKIE: &str = "refresh_token";
pub const SESSION_COOKIE: &str = "session_id";
/// The public path of the refresh call, as the browser sees it through the gateway.
const REFRESH_PATH: &str = "/api/auth/refresh";

#[derive(Debug, Clone)]
pub struct CookiePolicy {
    secure: bool,
    domain: Option<String>,
    access_ttl: Duration,
    refresh_ttl: Duration,
    session_ttl: Duration,
}

impl CookiePolicy {
    pub fn new(auth: &AuthSettings) -> Self {
        Self {
            secure: auth.cookie_secure,
            domain: auth.cookie_domain.clone(),
            access_ttl: auth.access_token_ttl,
            refresh_ttl: auth.refresh_token_ttl,
            session_ttl: auth.session_ttl,
        }
    }

    fn cookie(
        &self,
        name: &'static str,
        value: String,
        path: &'static str,
        ttl: Duration,
    ) -> Cookie<'static> {
        let mut cookie = Cookie::build((name, value))
            .http_only(true)
            .same_site(SameSite::Lax)
            .secure(self.secure)
            .path(path)
            .max_age(cookie::time::Duration::seconds(
                i64::try_from(ttl.as_secs()).unwrap_or(i64::MAX),
            ))
            .build();
        if let Some(domain) = &self.domain {
            cookie.set_domain(domain.clone());
        }
        cookie
    }

    /// Adds the three session cookies.
    pub fn set_session(&self, jar: CookieJar, access_token: &str, grant: &Grant) -> CookieJar {
        jar.add(self.cookie(
            ACCESS_COOKIE,
            access_token.to_string(),
            "/",
            self.access_ttl,
        ))
        .add(self.cookie(
            REFRESH_COOKIE,
            grant.refresh_token.clone(),
            REFRESH_PATH,
            self.refresh_ttl,
        ))
        .add(self.cookie(SESSION_COOKIE, grant.sid.clone(), "/", self.session_ttl))
    }

    /// Expires the three session cookies (same name, path and domain, Max-Age=0).
    pub fn clear_session(&self, jar: CookieJar) -> CookieJar {
        jar.add(self.cookie(ACCESS_COOKIE, String::new(), "/", Duration::ZERO))
            .add(self.cookie(REFRESH_COOKIE, String::new(), REFRESH_PATH, Duration::ZERO))
            .add(self.cookie(SESSION_COOKIE, String::new(), "/", Duration::ZERO))
    }
}
