//! The public API's OpenAPI 3.1 document, as the gateway serves it at `/api/openapi.json`.
//!
//! Each service describes its own routes next to its handlers (its router is built from those
//! descriptions, so a route cannot go undocumented); this module puts them under the paths the
//! gateway serves them on (API.md: `/api/auth/*` → auth `/*`, `/api/events*` → events
//! `/events*`, `/api/orders/*`, `/api/public/*` and `/api/checkin/*` → orders, `/api/ml/*` → ml,
//! `/api/notifications/*` → notifications), adds the gateway's own routes, the security schemes, and the answers the gateway itself may give to
//! any route (rate limits, an unavailable or slow service, refused paths and bodies).
//!
//! The document is written to `gateway/openapi.json` (compiled into the gateway); the test
//! `tests/api/openapi.rs` fails when that file is not what this module generates, and rewrites
//! it when run with `UPDATE_OPENAPI=1`.

use holdfast_common::openapi::operations;
use utoipa::openapi::path::{HttpMethod, Operation};
use utoipa::openapi::response::{Response, ResponseBuilder};
use utoipa::openapi::schema::{ObjectBuilder, Type};
use utoipa::openapi::security::{
    ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityRequirement, SecurityScheme,
};
use utoipa::openapi::{ContentBuilder, Header, OpenApi, Ref, RefOr};
use utoipa::{Modify, OpenApi as _};

#[derive(utoipa::OpenApi)]
#[openapi(
    info(
        title = "Holdfast",
        description = "Seat-hold ticketing: accounts, events, seat maps, holds, payments and \
            purchases, and recommendations, behind one gateway.\n\n\
            **Authentication**: `Authorization: Bearer <access token>` (from \
            `POST /api/auth/token`), or from a browser the `access_token` cookie set by \
            `POST /api/auth/login`. Writes authenticated by cookie must come from an allowed \
            origin (403 `CSRF_ORIGIN`).\n\n\
            **Errors** always have the body `ErrorBody`: `{error, code, requestId, details?}`; \
            each route lists its codes.\n\n\
            **Rate limits** apply per route class, per user (else per client address): \
            `RateLimit-Policy` and `RateLimit` headers on every answer, 429 `RATE_LIMITED` with \
            `Retry-After` past the quota.\n\n\
            **Money** is a JSON number in major units with at most 2 decimals.",
        license(name = "MIT"),
    ),
    tags(
        (name = "auth", description = "Sign-up, login (cookies or tokens), refresh, logout"),
        (name = "users", description = "Administration of users"),
        (name = "events", description = "The event catalogue"),
        (name = "seats", description = "Seat maps and their live stream"),
        (name = "holds", description = "Seat holds: all seats of a request or none, for a limited time"),
        (name = "payments", description = "Simulated payment intents"),
        (name = "orders", description = "Purchases and orders"),
        (name = "waitlist", description = "Waiting for seats of a sold-out event"),
        (name = "queue", description = "The admission queue of a hot on-sale: a fair place for each buyer, admission at the organizer's rate, and the signed admission holds and purchases then need"),
        (name = "recommendations", description = "Events for a user, and events alike"),
        (name = "documentation", description = "This document and its page"),
        (name = "operations", description = "Health, readiness and metrics; for admins, the bus's dead letters and the mails given up on"),
    ),
    modifiers(&SecuritySchemes),
)]
struct Holdfast;

/// The two ways to authenticate: a bearer token, or the browser's `access_token` cookie.
struct SecuritySchemes;

impl Modify for SecuritySchemes {
    fn modify(&self, openapi: &mut OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT")
                    .description(Some("The `accessToken` of `POST /api/auth/token`"))
                    .build(),
            ),
        );
        components.add_security_scheme(
            "cookie",
            SecurityScheme::ApiKey(ApiKey::Cookie(ApiKeyValue::with_description(
                "access_token",
                "Set by `POST /api/auth/login` and `/signup`; HttpOnly",
            ))),
        );
    }
}

/// The whole public API.
pub fn document() -> OpenApi {
    let services = [
        (holdfast_auth::SERVICE, holdfast_auth::http::openapi()),
        (holdfast_events::SERVICE, holdfast_events::http::openapi()),
        (holdfast_orders::SERVICE, holdfast_orders::http::openapi()),
        (holdfast_ml::SERVICE, holdfast_ml::http::openapi()),
        (
            holdfast_notifications::SERVICE,
            holdfast_notifications::http::openapi(),
        ),
    ];
    let mut doc = Holdfast::openapi();
    for (service, routes) in services {
        doc = doc.nest_with_path_composer("", routes, |_, path| public_path(service, path));
    }
    let mut doc = doc
        .merge_from(holdfast_gateway::openapi())
        .merge_from(holdfast_common::server::operations_openapi());
    add_gateway_answers(&mut doc);
    doc
}

/// The path the gateway serves `service`'s route `path` on (API.md); any other name (the
/// gateway's own routes) keeps its path.
pub fn public_path(service: &str, path: &str) -> String {
    match service {
        "auth" => format!("/api/auth{path}"),
        "events" => format!("/api{path}"),
        "orders" if path.starts_with("/public/") || path.starts_with("/checkin/") => {
            format!("/api{path}")
        }
        "orders" => format!("/api/orders{path}"),
        "ml" => format!("/api/ml{path}"),
        "notifications" => format!("/api/notifications{path}"),
        _ => path.to_string(),
    }
}

fn error_answer(description: &str) -> Response {
    ResponseBuilder::new()
        .description(description)
        .content(
            "application/json",
            ContentBuilder::new()
                .schema(Some(Ref::from_schema_name("ErrorBody")))
                .build(),
        )
        .build()
}

/// Adds `status` to `operation` unless it already documents it.
fn answer_if_missing(operation: &mut Operation, status: &str, answer: impl FnOnce() -> Response) {
    operation
        .responses
        .responses
        .entry(status.to_string())
        .or_insert_with(|| RefOr::T(answer()));
}

/// What the gateway may answer on any route, before or instead of the service.
fn add_gateway_answers(doc: &mut OpenApi) {
    for (path, item) in doc.paths.paths.iter_mut() {
        let proxied = path.starts_with("/api/") && path != "/api/openapi.json";
        let has_path_params = path.contains('{');
        for (method, operation) in operations(item) {
            // Anything but a read is CSRF-checked when it comes with cookies.
            let is_write = !matches!(
                method,
                HttpMethod::Get | HttpMethod::Head | HttpMethod::Options
            );
            if needs_authentication(operation) {
                answer_if_missing(operation, "401", || {
                    error_answer(
                        "`UNAUTHENTICATED`: no valid bearer token or `access_token` cookie",
                    )
                });
            }
            answer_if_missing(operation, "429", || {
                let mut answer = error_answer("`RATE_LIMITED`: wait `Retry-After` seconds");
                let seconds = ObjectBuilder::new().schema_type(Type::Integer).build();
                answer
                    .headers
                    .insert("Retry-After".into(), RefOr::T(Header::new(seconds)));
                answer
            });
            if has_path_params {
                answer_if_missing(operation, "400", || {
                    error_answer("`INVALID_PATH`: dot segments or encoded slashes in the path")
                });
            }
            if !proxied {
                continue;
            }
            if is_write {
                answer_if_missing(operation, "403", || {
                    error_answer("`CSRF_ORIGIN`: a cookie-authenticated write from another origin")
                });
            }
            if operation.request_body.is_some() {
                answer_if_missing(operation, "413", || {
                    error_answer("`PAYLOAD_TOO_LARGE`: bodies are limited to 1 MiB")
                });
                answer_if_missing(operation, "415", || {
                    error_answer("`UNSUPPORTED_MEDIA_TYPE`: send `Content-Type: application/json`")
                });
            }
            answer_if_missing(operation, "503", || {
                error_answer("`UPSTREAM_UNAVAILABLE`, `CIRCUIT_OPEN`, `UNAVAILABLE`: retry shortly")
            });
            answer_if_missing(operation, "504", || {
                error_answer("`UPSTREAM_TIMEOUT`: the service took too long")
            });
        }
    }
}

/// Whether `operation` refuses anonymous callers: it names security schemes, none of them
/// optional (an empty requirement).
fn needs_authentication(operation: &Operation) -> bool {
    let optional = SecurityRequirement::default();
    operation
        .security
        .as_ref()
        .is_some_and(|requirements| !requirements.is_empty() && !requirements.contains(&optional))
}

/// The document as the gateway serves it: pretty JSON with a final newline.
pub fn to_json() -> serde_json::Result<String> {
    let mut json = document().to_pretty_json()?;
    json.push('\n');
    Ok(json)
}
