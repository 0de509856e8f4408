//! The API's own documentation: `GET /api/openapi.json` and the `GET /docs` page.
//!
//! The OpenAPI document is generated from the services' routes (each handler carries its
//! description; see `holdfast::openapi`) into `gateway/openapi.json`, which is compiled in here:
//! the gateway needs no service crate to serve it, and a test fails when the file and the code
//! disagree. The page is Swagger UI, whose files are compiled in too, so it works offline.

use std::sync::{Arc, LazyLock};

use axum::extract::Path;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use holdfast_common::error::ApiError;
use utoipa_swagger_ui::Config;

/// The public API's OpenAPI 3.1 document.
pub const OPENAPI_JSON: &str = include_str!("../openapi.json");

/// Where the page finds the document.
const OPENAPI_PATH: &str = "/api/openapi.json";

/// The page runs its own scripts and styles (Swagger UI sets some styles inline) and calls the
/// API of its own origin; nothing else.
const DOCS_CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; \
     style-src 'self' 'unsafe-inline'; img-src 'self' data:; connect-src 'self'; \
     frame-ancestors 'none'; base-uri 'none'; form-action 'none'";

static SWAGGER_CONFIG: LazyLock<Arc<Config<'static>>> = LazyLock::new(|| {
    Arc::new(
        Config::from(OPENAPI_PATH)
            .try_it_out_enabled(true)
            // Same origin: the browser sends the session cookies with "Try it out".
            .with_credentials(true),
    )
});

/// `GET /api/openapi.json`
#[utoipa::path(get, path = "/api/openapi.json", tag = "documentation",
    responses((status = 200, description = "This document", content_type = "application/json", body = Object)))]
pub async fn openapi_json() -> Response {
    (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )],
        OPENAPI_JSON,
    )
        .into_response()
}

/// `GET /docs`: to the page, whose relative links need the trailing slash.
#[utoipa::path(get, path = "/docs", tag = "documentation",
    responses((status = 303, description = "To `/docs/`, the documentation page")))]
pub async fn docs_root() -> Redirect {
    Redirect::to("/docs/")
}

/// `GET /docs/` and the page's files.
pub async fn docs_index() -> Response {
    docs_file_at("")
}

pub async fn docs_file(Path(file): Path<String>) -> Response {
    docs_file_at(&file)
}

fn docs_file_at(file: &str) -> Response {
    let found = utoipa_swagger_ui::serve(file, SWAGGER_CONFIG.clone());
    let Ok(Some(file)) = found else {
        return ApiError::from_status(StatusCode::NOT_FOUND).into_response();
    };
    let content_type = HeaderValue::from_str(&file.content_type)
        .unwrap_or(HeaderValue::from_static("application/octet-stream"));
    let mut response = (
        [
            (header::CONTENT_TYPE, content_type),
            (
                header::CONTENT_SECURITY_POLICY,
                HeaderValue::from_static(DOCS_CONTENT_SECURITY_POLICY),
            ),
            (
                header::CACHE_CONTROL,
                HeaderValue::from_static("public, max-age=3600"),
            ),
        ],
        file.bytes.into_owned(),
    )
        .into_response();
    if file.gzpipped {
        response
            .headers_mut()
            .insert(header::CONTENT_ENCODING, HeaderValue::from_static("gzip"));
    }
    response
}
