//! Canonical request paths, enforced at the edge before routing, limiting and proxying.
//!
//! Two parties that read one path differently are a way around whatever the first one decides:
//! a limit on `/api/auth/login` does not see `/api/auth/x/../login`, which an upstream (or an
//! HTTP client on the way) resolves to the same route. So the gateway only lets through paths
//! that every reader reads alike and refuses the rest with 400 `INVALID_PATH`:
//!
//! - dot segments (`.`, `..`) and empty segments (`//`);
//! - backslashes, which some servers take for slashes;
//! - percent-encoded characters that need no encoding (letters, digits, `-._~`) or that
//!   change the path's structure (`/`, `\`), and malformed percent-encodings.
//!
//! Nothing is rewritten: a well-behaved client never sends any of these, and a refusal is easier
//! to reason about than a second, normalising reading of the same path.

use axum::extract::Request;
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use holdfast_common::error::ApiError;

/// Whether `path` reads the same to every party (see the module docs).
pub fn is_canonical(path: &str) -> bool {
    if !path.starts_with('/') || path.contains('\\') {
        return false;
    }
    let mut segments = path[1..].split('/').peekable();
    while let Some(segment) = segments.next() {
        let last = segments.peek().is_none();
        // A trailing slash leaves one empty last segment; an empty segment elsewhere is `//`.
        if (segment.is_empty() && !last) || segment == "." || segment == ".." {
            return false;
        }
        if !percent_encodings_are_needed(segment) {
            return false;
        }
    }
    true
}

/// Every `%XX` in `segment` is well formed and encodes a byte that must be encoded.
fn percent_encodings_are_needed(segment: &str) -> bool {
    let bytes = segment.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let Some(byte) = bytes
                .get(i + 1..i + 3)
                .and_then(|hex| std::str::from_utf8(hex).ok())
                .and_then(|hex| u8::from_str_radix(hex, 16).ok())
            else {
                return false;
            };
            let unreserved = byte.is_ascii_alphanumeric() || b"-._~".contains(&byte);
            if unreserved || byte == b'/' || byte == b'\\' {
                return false;
            }
            i += 3;
        } else {
            i += 1;
        }
    }
    true
}

/// Refuses a request whose path is not canonical, before anything else looks at it.
pub async fn require_canonical(request: Request, next: Next) -> Response {
    if is_canonical(request.uri().path()) {
        return next.run(request).await;
    }
    tracing::warn!(path = %request.uri().path(), "non-canonical path refused");
    ApiError::new(
        StatusCode::BAD_REQUEST,
        "INVALID_PATH",
        "the path has dot segments, empty segments or needless percent-encoding",
    )
    .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_paths_are_canonical() {
        for path in [
            "/",
            "/api/auth/login",
            "/api/events/",
            "/api/events?category=music",
            "/api/events/507f1f77bcf86cd799439011",
            "/api/ml/recs%20x",
            "/api/auth/.well-known",
            "/api/auth/a..b",
        ] {
            let path = path.split('?').next().unwrap_or_default();
            assert!(is_canonical(path), "{path}");
        }
    }

    #[test]
    fn paths_that_readers_could_read_differently_are_not() {
        for path in [
            "/api/auth/x/../login",
            "/api/auth/./login",
            "/api/auth/..",
            "/api/auth/.",
            "/api/auth//login",
            "//api/auth/login",
            "/api/auth/%2e/login",
            "/api/auth/%2E%2E/auth/login",
            "/api/auth/.%2e/login",
            "/api/auth%2flogin",
            "/api/auth%2Flogin",
            "/api/auth/%6cogin",
            "/api/auth%5clogin",
            "/api/auth\\login",
            "/api/auth/login%",
            "/api/auth/login%2",
            "/api/auth/login%zz",
            "api/auth/login",
        ] {
            assert!(!is_canonical(path), "{path}");
        }
    }
}
