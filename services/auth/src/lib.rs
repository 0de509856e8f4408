//! Auth service: users, argon2id passwords, JWT access tokens, and sessions with rotating
//! refresh tokens kept in the TTL store. Browsers get HttpOnly cookies; API clients get tokens
//! in the body (`/token`).
//!
//! The crate exposes [`build`] (open the store, seed accounts, add the common layers) and
//! [`router`]; `main.rs` only launches it.

pub mod cookies;
pub mod domain;
pub mod error;
pub mod http;
pub mod seed;
pub mod store;
pub mod throttle;

use std::sync::Arc;

use axum::Router;
use holdfast_common::auth::TokenKeys;
use holdfast_common::config::{AuthSettings, Settings};
use holdfast_common::docstore::Database;
use holdfast_common::infra::Infra;
use holdfast_common::metrics::Metrics;
use holdfast_common::server;

use crate::cookies::CookiePolicy;
use crate::domain::password::PasswordHasherPool;
use crate::store::UserRepository;
use crate::store::sessions::{SessionPolicy, Sessions};

/// The service's name in logs, metrics, health answers and storage names.
pub const SERVICE: &str = "auth";

/// Everything a handler may need.
#[derive(Clone)]
pub struct AppState {
    /// The auth section of the settings; the rest is read once, in [`build`].
    pub settings: AuthSettings,
    /// Whether the demo accounts are seeded (see [`Settings::seeds_demo_data`]).
    pub seeds_demo_data: bool,
    pub infra: Infra,
    pub users: Arc<dyn UserRepository>,
    pub sessions: Sessions,
    pub keys: Arc<TokenKeys>,
    pub passwords: PasswordHasherPool,
    pub cookies: CookiePolicy,
    pub login_throttle: throttle::LoginThrottle,
}

holdfast_common::token_keys_in!(AppState, keys);

impl AppState {
    pub fn new(settings: Arc<Settings>, infra: Infra, users: Arc<dyn UserRepository>) -> Self {
        let auth = &settings.auth;
        Self {
            sessions: Sessions::new(
                infra.kv.clone(),
                SessionPolicy {
                    session_ttl: auth.session_ttl,
                    refresh_ttl: auth.refresh_token_ttl,
                    max_per_user: auth.max_sessions_per_user,
                    access_ttl: auth.access_token_ttl,
                },
            ),
            keys: Arc::new(TokenKeys::new(&auth.jwt_secret)),
            passwords: PasswordHasherPool::default(),
            login_throttle: throttle::LoginThrottle::new(infra.kv.clone()),
            cookies: CookiePolicy::new(auth),
            seeds_demo_data: settings.seeds_demo_data(),
            settings: auth.clone(),
            infra,
            users,
        }
    }
}

/// The service's own routes.
pub fn router(state: AppState) -> Router {
    http::router().with_state(state)
}

/// Opens the user store, creates the start-up accounts and returns the complete application.
pub async fn build(settings: Arc<Settings>, infra: Infra) -> anyhow::Result<Router> {
    let store = Database::open(&settings, SERVICE, &store::SCHEMA).await?;
    tracing::info!(service = SERVICE, store = store.kind(), "store opened");
    let readiness = infra.readiness(Some(&store));
    let state = AppState::new(settings, infra, store::users(&store));
    seed::bootstrap(&state).await?;
    Ok(server::finish(
        router(state),
        SERVICE,
        Metrics::new(SERVICE),
        readiness,
    ))
}
