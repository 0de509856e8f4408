//! Auth through the gateway, as browsers and API clients use it.

use crate::support::{
    Db, assert_error, browser, claims, cookie, cookie_value, set_cookies, spawn_in,
};
use serde_json::{Value, json};

crate::support::on_both_document_stores!(
    revocations_and_role_changes_reach_every_service_within_a_second,
    guessing_one_accounts_password_gets_slower_and_slower,
    a_browser_session_signs_up_refreshes_detects_reuse_and_logs_out,
    api_clients_use_bearer_tokens_with_the_same_rotation_rules,
    an_admins_role_change_shows_in_the_users_next_token,
    wrong_passwords_and_unknown_emails_get_the_same_answer,
    demo_accounts_exist_unless_turned_off,
    cookie_writes_from_foreign_origins_are_refused_but_bearer_writes_are_not,
    cors_preflight_allows_configured_origins_with_credentials,
    every_gateway_answer_carries_the_security_headers,
    no_answer_carries_a_header_twice,
    bad_input_gets_a_4xx_with_the_error_body_and_never_a_5xx,
    forty_wrong_passwords_in_a_row_get_rate_limited,
    logging_out_needs_the_sessions_own_credential,
    only_a_valid_bearer_token_exempts_a_write_from_the_csrf_check,
);

const ORIGIN: &str = "http://localhost:5173";

async fn a_browser_session_signs_up_refreshes_detects_reuse_and_logs_out(db: Db) {
    let s = spawn_in(db, &[]).await;
    let web = browser();

    let signup = web
        .post(s.at("/api/auth/signup"))
        .json(&json!({"email": "  Ada@Example.com ", "password": "correct horse", "name": "Ada"}))
        .send()
        .await
        .unwrap();
    assert_eq!(signup.status(), 201);
    let cookies = set_cookies(&signup);
    for name in ["access_token", "refresh_token", "session_id"] {
        let c = cookie(&cookies, name);
        assert!(c.contains("HttpOnly") && c.contains("SameSite=Lax"), "{c}");
        assert!(!c.contains("Secure"), "COOKIE_SECURE is off: {c}");
    }
    assert!(cookie(&cookies, "refresh_token").contains("Path=/api/auth/refresh"));
    assert!(cookie(&cookies, "access_token").contains("Max-Age=900"));
    let first_refresh = cookie_value(&cookies, "refresh_token");
    let body: Value = signup.json().await.unwrap();
    assert_eq!(body["email"], "ada@example.com");
    assert_eq!(body["role"], "user");
    let user_id = body["userId"].as_str().unwrap().to_string();

    let me: Value = web
        .get(s.at("/api/auth/me"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        me,
        json!({"userId": user_id, "email": "ada@example.com", "name": "Ada", "role": "user"})
    );

    let refreshed = web.post(s.at("/api/auth/refresh")).send().await.unwrap();
    assert_eq!(refreshed.status(), 200);
    let rotated = set_cookies(&refreshed);
    assert_ne!(cookie_value(&rotated, "refresh_token"), first_refresh);
    assert_eq!(
        refreshed.json::<Value>().await.unwrap(),
        json!({"ok": true})
    );
    assert_eq!(
        web.get(s.at("/api/auth/me")).send().await.unwrap().status(),
        200
    );

    // The first refresh token, presented again (a stolen copy), revokes the whole session.
    let replay = reqwest::Client::new()
        .post(s.at("/api/auth/refresh"))
        .header("cookie", format!("refresh_token={first_refresh}"))
        .send()
        .await
        .unwrap();
    assert_error(replay, 401, "REFRESH_REUSED").await;
    assert_error(
        web.get(s.at("/api/auth/me")).send().await.unwrap(),
        401,
        "SESSION_ENDED",
    )
    .await;
    assert_eq!(
        web.post(s.at("/api/auth/refresh"))
            .send()
            .await
            .unwrap()
            .status(),
        401
    );

    let login = web
        .post(s.at("/api/auth/login"))
        .json(&json!({"email": "ada@example.com", "password": "correct horse"}))
        .send()
        .await
        .unwrap();
    assert_eq!(login.status(), 200);
    assert_eq!(
        login.json::<Value>().await.unwrap()["userId"],
        user_id.as_str()
    );
    assert_eq!(
        web.get(s.at("/api/auth/me")).send().await.unwrap().status(),
        200
    );

    let logout = web.post(s.at("/api/auth/logout")).send().await.unwrap();
    assert_eq!(logout.status(), 204);
    let cleared = set_cookies(&logout);
    assert!(
        cookie(&cleared, "access_token").contains("Max-Age=0"),
        "{cleared:?}"
    );
    assert_error(
        web.get(s.at("/api/auth/me")).send().await.unwrap(),
        401,
        "UNAUTHENTICATED",
    )
    .await;
}

async fn api_clients_use_bearer_tokens_with_the_same_rotation_rules(db: Db) {
    let s = spawn_in(db, &[]).await;
    let api = reqwest::Client::new();
    api.post(s.at("/api/auth/signup"))
        .json(&json!({"email": "bob@example.com", "password": "bob-password"}))
        .send()
        .await
        .unwrap();
    let tokens: Value = api
        .post(s.at("/api/auth/token"))
        .json(&json!({"email": "bob@example.com", "password": "bob-password"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(tokens["tokenType"], "Bearer");
    assert_eq!(tokens["expiresIn"], 900);
    let access = tokens["accessToken"].as_str().unwrap();
    let c = claims(access);
    assert_eq!(c["email"], "bob@example.com");
    assert_eq!(c["sub"], c["userId"]);
    assert!(c["sid"].is_string() && c["iat"].is_u64() && c["exp"].is_u64());

    let me = api
        .get(s.at("/api/auth/me"))
        .bearer_auth(access)
        .send()
        .await
        .unwrap();
    assert_eq!(me.status(), 200);
    assert!(me.headers().get("set-cookie").is_none());

    let first = tokens["refreshToken"].as_str().unwrap();
    let next: Value = api
        .post(s.at("/api/auth/token/refresh"))
        .json(&json!({"refreshToken": first}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let second = next["refreshToken"].as_str().unwrap();
    assert_ne!(first, second);
    let reuse = api
        .post(s.at("/api/auth/token/refresh"))
        .json(&json!({"refreshToken": first}))
        .send()
        .await
        .unwrap();
    assert_error(reuse, 401, "REFRESH_REUSED").await;
    let after = api
        .post(s.at("/api/auth/token/refresh"))
        .json(&json!({"refreshToken": second}))
        .send()
        .await
        .unwrap();
    assert_error(after, 401, "INVALID_REFRESH_TOKEN").await;
    let bogus = api
        .get(s.at("/api/auth/me"))
        .bearer_auth("not-a-token")
        .send()
        .await
        .unwrap();
    let bogus_headers = bogus.headers().clone();
    // An invalid access_token cookie is ignored by the bridge: the call is simply anonymous.
    let bad_cookie = api
        .get(s.at("/api/auth/me"))
        .header("cookie", "access_token=forged.token.value")
        .send()
        .await
        .unwrap();
    assert_error(bad_cookie, 401, "UNAUTHENTICATED").await;
    assert_error(bogus, 401, "UNAUTHENTICATED").await;
    assert_eq!(bogus_headers["www-authenticate"], "Bearer");
}

async fn token_for(s: &crate::support::TestStack, email: &str, password: &str) -> Value {
    reqwest::Client::new()
        .post(s.at("/api/auth/token"))
        .json(&json!({"email": email, "password": password}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

async fn an_admins_role_change_shows_in_the_users_next_token(db: Db) {
    let s = spawn_in(
        db,
        &[
            ("ADMIN_EMAIL", "root@example.com"),
            ("ADMIN_PASSWORD", "root-password"),
        ],
    )
    .await;
    let api = reqwest::Client::new();
    let signup: Value = api
        .post(s.at("/api/auth/signup"))
        .json(&json!({"email": "olga@example.com", "password": "olga-password"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let olga_id = signup["userId"].as_str().unwrap();
    let olga = token_for(&s, "olga@example.com", "olga-password").await;
    let admin = token_for(&s, "root@example.com", "root-password").await;
    let admin_access = admin["accessToken"].as_str().unwrap();
    assert_eq!(claims(admin_access)["role"], "admin");

    let forbidden = api
        .get(s.at("/api/auth/users"))
        .bearer_auth(olga["accessToken"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    assert_error(forbidden, 403, "FORBIDDEN").await;

    let changed = api
        .patch(s.at(&format!("/api/auth/users/{olga_id}/role")))
        .bearer_auth(admin_access)
        .json(&json!({"role": "organizer"}))
        .send()
        .await
        .unwrap();
    assert_eq!(changed.status(), 200);
    assert_eq!(changed.json::<Value>().await.unwrap()["role"], "organizer");

    let refreshed = api
        .post(s.at("/api/auth/token/refresh"))
        .json(&json!({"refreshToken": olga["refreshToken"]}))
        .send()
        .await
        .unwrap()
        .json::<Value>()
        .await
        .unwrap();
    assert_eq!(
        claims(refreshed["accessToken"].as_str().unwrap())["role"],
        "organizer"
    );

    let users: Value = api
        .get(s.at("/api/auth/users"))
        .bearer_auth(admin_access)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let emails: Vec<&str> = users
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["email"].as_str().unwrap())
        .collect();
    assert!(
        emails.contains(&"olga@example.com") && emails.contains(&"root@example.com"),
        "{emails:?}"
    );
    assert!(users[0].get("passwordHash").is_none() && users[0].get("password_hash").is_none());

    for (path, body, status, code) in [
        (
            "/api/auth/users/000000000000000000000000/role",
            json!({"role": "admin"}),
            404,
            "NOT_FOUND",
        ),
        (
            "/api/auth/users/nope/role",
            json!({"role": "admin"}),
            400,
            "INVALID_ID",
        ),
        (
            &*format!("/api/auth/users/{olga_id}/role"),
            json!({"role": "root"}),
            400,
            "VALIDATION_FAILED",
        ),
    ] {
        let res = api
            .patch(s.at(path))
            .bearer_auth(admin_access)
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_error(res, status, code).await;
    }
}

async fn wrong_passwords_and_unknown_emails_get_the_same_answer(db: Db) {
    let s = spawn_in(db, &[]).await;
    let api = reqwest::Client::new();
    api.post(s.at("/api/auth/signup"))
        .json(&json!({"email": "eve@example.com", "password": "eve-password"}))
        .send()
        .await
        .unwrap();
    let duplicate = api
        .post(s.at("/api/auth/signup"))
        .json(&json!({"email": "EVE@example.com", "password": "other-password"}))
        .send()
        .await
        .unwrap();
    assert_error(duplicate, 409, "USER_EXISTS").await;
    let wrong = api
        .post(s.at("/api/auth/login"))
        .json(&json!({"email": "eve@example.com", "password": "not-her-password"}))
        .send()
        .await
        .unwrap();
    let wrong = assert_error(wrong, 401, "INVALID_CREDENTIALS").await;
    let unknown = api
        .post(s.at("/api/auth/login"))
        .json(&json!({"email": "nobody@example.com", "password": "not-her-password"}))
        .send()
        .await
        .unwrap();
    let unknown = assert_error(unknown, 401, "INVALID_CREDENTIALS").await;
    assert_eq!(wrong["error"], unknown["error"]);
}

async fn demo_accounts_exist_unless_turned_off(db: Db) {
    let s = spawn_in(db, &[]).await;
    let organizer = token_for(&s, "organizer@holdfast.test", "holdfast-demo").await;
    assert_eq!(
        claims(organizer["accessToken"].as_str().unwrap())["role"],
        "organizer"
    );
    let without = spawn_in(db, &[("DEMO_SEED", "false")]).await;
    let res = reqwest::Client::new()
        .post(without.at("/api/auth/token"))
        .json(&json!({"email": "organizer@holdfast.test", "password": "holdfast-demo"}))
        .send()
        .await
        .unwrap();
    assert_error(res, 401, "INVALID_CREDENTIALS").await;
}

async fn cookie_writes_from_foreign_origins_are_refused_but_bearer_writes_are_not(db: Db) {
    let s = spawn_in(db, &[]).await;
    let web = browser();
    web.post(s.at("/api/auth/signup"))
        .json(&json!({"email": "carl@example.com", "password": "carl-password"}))
        .send()
        .await
        .unwrap();
    let foreign = web
        .post(s.at("/api/auth/logout"))
        .header("origin", "https://evil.example")
        .send()
        .await
        .unwrap();
    assert_error(foreign, 403, "CSRF_ORIGIN").await;
    let cross_site = web
        .post(s.at("/api/auth/logout"))
        .header("sec-fetch-site", "cross-site")
        .send()
        .await
        .unwrap();
    assert_error(cross_site, 403, "CSRF_ORIGIN").await;
    let foreign_referer = web
        .post(s.at("/api/auth/logout"))
        .header("referer", "https://evil.example/page")
        .send()
        .await
        .unwrap();
    assert_error(foreign_referer, 403, "CSRF_ORIGIN").await;
    // Still logged in: nothing above got through.
    assert_eq!(
        web.get(s.at("/api/auth/me")).send().await.unwrap().status(),
        200
    );

    let allowed = web
        .post(s.at("/api/auth/logout"))
        .header("origin", ORIGIN)
        .send()
        .await
        .unwrap();
    assert_eq!(allowed.status(), 204);

    let tokens = token_for(&s, "carl@example.com", "carl-password").await;
    let bearer = reqwest::Client::new()
        .post(s.at("/api/auth/logout"))
        .header("origin", "https://evil.example")
        .bearer_auth(tokens["accessToken"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(bearer.status(), 204);
}

/// The session id is in every access token: presented alone, it ends nobody's session. The
/// session's own access token (bearer or cookie) does.
async fn logging_out_needs_the_sessions_own_credential(db: Db) {
    let s = spawn_in(db, &[]).await;
    let victim = token_for(&s, "user@holdfast.test", "holdfast-demo").await;
    let access = victim["accessToken"].as_str().unwrap();
    let sid = claims(access)["sid"].as_str().unwrap().to_string();
    let me = |token: String| {
        let url = s.at("/api/auth/me");
        async move {
            reqwest::Client::new()
                .get(url)
                .bearer_auth(token)
                .send()
                .await
                .unwrap()
                .status()
        }
    };
    let stranger = reqwest::Client::new()
        .post(s.at("/api/auth/logout"))
        .header("cookie", format!("session_id={sid}"))
        .header("origin", ORIGIN)
        .send()
        .await
        .unwrap();
    assert_eq!(stranger.status(), 204);
    assert_eq!(
        me(access.to_string()).await,
        200,
        "the session still stands"
    );

    // The session's own access token, as a browser sends it (the cookie).
    let own = reqwest::Client::new()
        .post(s.at("/api/auth/logout"))
        .header("cookie", format!("access_token={access}; session_id={sid}"))
        .header("origin", ORIGIN)
        .send()
        .await
        .unwrap();
    assert_eq!(own.status(), 204);
    let ended = reqwest::Client::new()
        .get(s.at("/api/auth/me"))
        .bearer_auth(access)
        .send()
        .await
        .unwrap();
    assert_error(ended, 401, "SESSION_ENDED").await;
}

/// A `Basic` header (which a browser may attach by itself) or a bearer token that does not
/// verify does not turn the CSRF check off for a request that carries the session cookies.
async fn only_a_valid_bearer_token_exempts_a_write_from_the_csrf_check(db: Db) {
    let s = spawn_in(db, &[]).await;
    let web = browser();
    web.post(s.at("/api/auth/signup"))
        .json(&json!({"email": "dora@example.com", "password": "dora-password"}))
        .send()
        .await
        .unwrap();
    for authorization in ["Basic ZG9yYTpkb3JhLXBhc3N3b3Jk", "Bearer not-a-token"] {
        let foreign = web
            .post(s.at("/api/auth/logout"))
            .header("origin", "https://evil.example")
            .header("authorization", authorization)
            .send()
            .await
            .unwrap();
        assert_error(foreign, 403, "CSRF_ORIGIN").await;
    }
    assert_eq!(
        web.get(s.at("/api/auth/me")).send().await.unwrap().status(),
        200,
        "still logged in"
    );
}

async fn cors_preflight_allows_configured_origins_with_credentials(db: Db) {
    let s = spawn_in(db, &[]).await;
    let api = reqwest::Client::new();
    let preflight = api
        .request(reqwest::Method::OPTIONS, s.at("/api/auth/login"))
        .header("origin", ORIGIN)
        .header("access-control-request-method", "POST")
        .header(
            "access-control-request-headers",
            "content-type,idempotency-key",
        )
        .send()
        .await
        .unwrap();
    assert!(preflight.status().is_success(), "{}", preflight.status());
    let h = preflight.headers();
    assert_eq!(h["access-control-allow-origin"], ORIGIN);
    assert_eq!(h["access-control-allow-credentials"], "true");
    let methods = h["access-control-allow-methods"]
        .to_str()
        .unwrap()
        .to_string();
    for method in ["GET", "POST", "PUT", "PATCH", "DELETE"] {
        assert!(methods.contains(method), "{methods}");
    }
    let allowed_headers = h["access-control-allow-headers"]
        .to_str()
        .unwrap()
        .to_ascii_lowercase();
    assert!(
        allowed_headers.contains("idempotency-key") && allowed_headers.contains("authorization")
    );

    let foreign = api
        .request(reqwest::Method::OPTIONS, s.at("/api/auth/login"))
        .header("origin", "https://evil.example")
        .header("access-control-request-method", "POST")
        .send()
        .await
        .unwrap();
    assert!(
        foreign
            .headers()
            .get("access-control-allow-origin")
            .is_none()
    );

    let simple = api
        .get(s.at("/health"))
        .header("origin", ORIGIN)
        .send()
        .await
        .unwrap();
    let exposed = simple.headers()["access-control-expose-headers"]
        .to_str()
        .unwrap()
        .to_ascii_lowercase();
    assert!(
        exposed.contains("x-request-id") && exposed.contains("idempotent-replayed"),
        "{exposed}"
    );
}

/// Fails when a header line, or a `Vary` token, appears twice in `response`.
fn assert_no_duplicate_headers(what: &str, response: &reqwest::Response) {
    let mut lines = std::collections::HashSet::new();
    let mut vary = std::collections::HashSet::new();
    for (name, value) in response.headers() {
        let value = value.to_str().unwrap_or_default().to_ascii_lowercase();
        assert!(
            lines.insert((name.as_str().to_string(), value.clone())),
            "{what}: {name}: {value} twice"
        );
        if name == "vary" {
            for token in value.split(',').map(str::trim) {
                assert!(vary.insert(token.to_string()), "{what}: vary {token} twice");
            }
        }
    }
}

/// CORS and the security headers are applied once, whatever answers.
async fn no_answer_carries_a_header_twice(db: Db) {
    let s = spawn_in(db, &[]).await;
    let client = reqwest::Client::new();
    let event = crate::support::event(&s, 1, 2, 10.0).await;
    for path in [
        "/health",
        "/ready",
        "/orders/health",
        "/api/events",
        "/api/nowhere",
        "/api/auth/me",
        &format!("/api/orders/seats/{event}"),
    ] {
        let plain = client
            .get(s.at(path))
            .header("origin", ORIGIN)
            .send()
            .await
            .unwrap();
        assert_no_duplicate_headers(path, &plain);
        let gzip = client
            .get(s.at(path))
            .header("origin", ORIGIN)
            .header("accept-encoding", "gzip")
            .send()
            .await
            .unwrap();
        assert_no_duplicate_headers(path, &gzip);
        let preflight = client
            .request(reqwest::Method::OPTIONS, s.at(path))
            .header("origin", ORIGIN)
            .header("access-control-request-method", "POST")
            .send()
            .await
            .unwrap();
        assert_no_duplicate_headers(path, &preflight);
    }
}

async fn every_gateway_answer_carries_the_security_headers(db: Db) {
    let s = spawn_in(db, &[]).await;
    for path in ["/health", "/api/auth/me", "/api/nowhere"] {
        let res = reqwest::get(s.at(path)).await.unwrap();
        let h = res.headers();
        assert_eq!(h["x-content-type-options"], "nosniff", "{path}");
        assert_eq!(h["x-frame-options"], "DENY");
        assert_eq!(h["referrer-policy"], "no-referrer");
        assert!(
            h["content-security-policy"]
                .to_str()
                .unwrap()
                .contains("default-src 'none'")
        );
        assert!(
            h.get("strict-transport-security").is_none(),
            "no HSTS without COOKIE_SECURE"
        );
    }
    let secure = spawn_in(db, &[("COOKIE_SECURE", "true")]).await;
    let res = reqwest::get(secure.at("/health")).await.unwrap();
    assert!(
        res.headers()["strict-transport-security"]
            .to_str()
            .unwrap()
            .starts_with("max-age=")
    );
    let signup = reqwest::Client::new()
        .post(secure.at("/api/auth/signup"))
        .json(&json!({"email": "sec@example.com", "password": "sec-password"}))
        .send()
        .await
        .unwrap();
    let cookies = set_cookies(&signup);
    assert!(cookie(&cookies, "access_token").contains("Secure"));
}

async fn bad_input_gets_a_4xx_with_the_error_body_and_never_a_5xx(db: Db) {
    let s = spawn_in(db, &[]).await;
    let api = reqwest::Client::new();
    let long_password = "p".repeat(200);
    let json_cases: Vec<(Value, &str)> = vec![
        (json!({}), "email"),
        (json!({"email": "a@example.com"}), "password"),
        (json!({"password": "long-enough"}), "email"),
        (
            json!({"email": "not-an-email", "password": "long-enough"}),
            "email",
        ),
        (
            json!({"email": "a@example.com", "password": "short"}),
            "password",
        ),
        (
            json!({"email": "a@example.com", "password": long_password}),
            "password",
        ),
        (
            json!({"email": "a@example.com", "password": "long-enough", "name": "n".repeat(101)}),
            "name",
        ),
        // Long enough, but among the commonest passwords.
        (
            json!({"email": "a@example.com", "password": "password123"}),
            "password",
        ),
        (
            json!({"email": "a@example.com", "password": "12345678"}),
            "password",
        ),
    ];
    for (body, field) in &json_cases {
        let res = api
            .post(s.at("/api/auth/signup"))
            .json(body)
            .send()
            .await
            .unwrap();
        let error = assert_error(res, 400, "VALIDATION_FAILED").await;
        assert!(
            error["details"]["fields"][field].is_array(),
            "{field}: {error}"
        );
    }
    let wrong_types = api
        .post(s.at("/api/auth/login"))
        .json(&json!({"email": 42, "password": ["x"]}))
        .send()
        .await
        .unwrap();
    assert_error(wrong_types, 400, "INVALID_JSON").await;
    let malformed = api
        .post(s.at("/api/auth/login"))
        .header("content-type", "application/json")
        .body("{\"email\": ")
        .send()
        .await
        .unwrap();
    assert_error(malformed, 400, "INVALID_JSON").await;
    let form = api
        .post(s.at("/api/auth/signup"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body("email=a%40example.com&password=long-enough")
        .send()
        .await
        .unwrap();
    assert_error(form, 415, "UNSUPPORTED_MEDIA_TYPE").await;
    let huge = api
        .post(s.at("/api/auth/signup"))
        .header("content-type", "application/json")
        .body(vec![b' '; 2 * 1024 * 1024])
        .send()
        .await
        .unwrap();
    assert_error(huge, 413, "PAYLOAD_TOO_LARGE").await;
    let missing_refresh = api
        .post(s.at("/api/auth/token/refresh"))
        .json(&json!({"refreshToken": 7}))
        .send()
        .await
        .unwrap();
    assert_error(missing_refresh, 400, "INVALID_JSON").await;
    let no_cookie = api.post(s.at("/api/auth/refresh")).send().await.unwrap();
    assert_error(no_cookie, 401, "INVALID_REFRESH_TOKEN").await;
}

async fn forty_wrong_passwords_in_a_row_get_rate_limited(db: Db) {
    let s = spawn_in(db, &[("RATE_LIMIT_DISABLED", "false")]).await;
    let api = reqwest::Client::new();
    let mut statuses = Vec::new();
    let mut limited = None;
    // A different account each time (password spraying): the per-address limit stops it.
    for n in 0..40 {
        let res = api
            .post(s.at("/api/auth/login"))
            .json(&json!({"email": format!("victim{n}@example.com"), "password": "guess-guess"}))
            .send()
            .await
            .unwrap();
        statuses.push(res.status().as_u16());
        if res.status() == 429 && limited.is_none() {
            limited = Some(res);
        }
    }
    assert!(
        statuses.iter().all(|s| *s == 401 || *s == 429),
        "{statuses:?}"
    );
    let limited = limited.expect("some attempts must be refused with 429");
    let retry_after: u64 = limited.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(retry_after >= 1);
    assert_error(limited, 429, "RATE_LIMITED").await;
    let metrics = crate::support::metrics(&s.url).await;
    let rejections = crate::support::counter(&metrics, "holdfast_rate_limit_rejections_total");
    assert!(rejections.unwrap_or(0.0) > 0.0, "{metrics}");
}

/// After logout, refresh-token reuse, the session cap and a demotion, the old access token
/// is refused everywhere (orders, events), not only by auth, within a second.
async fn revocations_and_role_changes_reach_every_service_within_a_second(db: Db) {
    let s = spawn_in(db, &[("MAX_SESSIONS_PER_USER", "1")]).await;
    let status = |path: &'static str, token: String| {
        let url = s.at(path);
        async move {
            reqwest::Client::new()
                .get(url)
                .bearer_auth(token)
                .send()
                .await
                .unwrap()
                .status()
                .as_u16()
        }
    };
    let settle = || tokio::time::sleep(std::time::Duration::from_millis(1_100));
    let access = |tokens: &Value| tokens["accessToken"].as_str().unwrap().to_string();

    // Logout.
    let user = token_for(&s, "user@holdfast.test", "holdfast-demo").await;
    assert_eq!(status("/api/orders/orders", access(&user)).await, 200);
    let logout = reqwest::Client::new()
        .post(s.at("/api/auth/logout"))
        .bearer_auth(access(&user))
        .send()
        .await
        .unwrap();
    assert_eq!(logout.status(), 204);
    settle().await;
    let after = reqwest::Client::new()
        .get(s.at("/api/orders/orders"))
        .bearer_auth(access(&user))
        .send()
        .await
        .unwrap();
    assert_error(after, 401, "SESSION_ENDED").await;

    // The session cap (1 here): a new login ends the first session.
    let first = token_for(&s, "user@holdfast.test", "holdfast-demo").await;
    let second = token_for(&s, "user@holdfast.test", "holdfast-demo").await;
    settle().await;
    assert_eq!(status("/api/orders/orders", access(&first)).await, 401);
    assert_eq!(status("/api/orders/orders", access(&second)).await, 200);

    // Refresh-token reuse revokes the session, and its access token with it.
    let rotate = |refresh: Value| {
        reqwest::Client::new()
            .post(s.at("/api/auth/token/refresh"))
            .json(&json!({"refreshToken": refresh}))
            .send()
    };
    let rotated: Value = rotate(second["refreshToken"].clone())
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        rotate(second["refreshToken"].clone())
            .await
            .unwrap()
            .status(),
        401
    );
    settle().await;
    assert_eq!(status("/api/orders/orders", access(&rotated)).await, 401);

    // A demoted organizer's token no longer creates events; a fresh one works as a user.
    let organizer = token_for(&s, "organizer@holdfast.test", "holdfast-demo").await;
    let create = |token: String| {
        let url = s.at("/api/events");
        async move {
            reqwest::Client::new()
                .post(url)
                .bearer_auth(token)
                .json(&json!({"title": "Revoked?", "date": "2031-01-01"}))
                .send()
                .await
                .unwrap()
                .status()
                .as_u16()
        }
    };
    assert_eq!(create(access(&organizer)).await, 201);
    let admin = token_for(&s, "admin@holdfast.test", "holdfast-demo").await;
    let me: Value = reqwest::Client::new()
        .get(s.at("/api/auth/me"))
        .bearer_auth(access(&organizer))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let demoted = reqwest::Client::new()
        .patch(s.at(&format!(
            "/api/auth/users/{}/role",
            me["userId"].as_str().unwrap()
        )))
        .bearer_auth(access(&admin))
        .json(&json!({"role": "user"}))
        .send()
        .await
        .unwrap();
    assert_eq!(demoted.status(), 200);
    settle().await;
    assert_eq!(create(access(&organizer)).await, 401);
    // A token issued after the change stands (with the new role).
    let again = token_for(&s, "organizer@holdfast.test", "holdfast-demo").await;
    assert_eq!(create(access(&again)).await, 403);
}

/// Guessing one account's password (from any number of addresses: the per-address limit is off
/// here) is refused after five failures in a row until a wait that doubles each time, the right
/// password included; the owner's login after the wait works and clears the count. Unknown
/// addresses are throttled alike, so the throttle tells nothing about which accounts exist.
async fn guessing_one_accounts_password_gets_slower_and_slower(db: Db) {
    let s = spawn_in(db, &[]).await;
    let login = |email: &'static str, password: &'static str| {
        reqwest::Client::new()
            .post(s.at("/api/auth/token"))
            .json(&json!({"email": email, "password": password}))
            .send()
    };
    for email in ["user@holdfast.test", "nobody-here@example.com"] {
        for _ in 0..5 {
            assert_eq!(login(email, "guess-guess").await.unwrap().status(), 401);
        }
        let throttled = login(email, "holdfast-demo").await.unwrap();
        assert_eq!(throttled.headers()["retry-after"], "1", "{email}");
        assert_error(throttled, 429, "LOGIN_THROTTLED").await;
    }
    // Another account is not held up.
    assert_eq!(
        login("organizer@holdfast.test", "holdfast-demo")
            .await
            .unwrap()
            .status(),
        200
    );
    // After the wait the owner logs in, which clears the count.
    tokio::time::sleep(std::time::Duration::from_millis(1_100)).await;
    assert_eq!(
        login("user@holdfast.test", "holdfast-demo")
            .await
            .unwrap()
            .status(),
        200
    );
    for _ in 0..5 {
        assert_eq!(
            login("user@holdfast.test", "guess-guess")
                .await
                .unwrap()
                .status(),
            401
        );
    }
}

/// Someone who signs up first with the address the operator will give as `ADMIN_EMAIL` does
/// not become admin at the next start: the start is refused, and the account stays a user. The
/// operator's own admin starts again and again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_account_signed_up_with_the_admin_address_is_never_made_admin() {
    use crate::support::{Storage, TestStack, spawn_on, try_spawn_on_with};
    use holdfast_common::infra::Infra;

    let storage = Storage::new(Db::Sqlite);
    let first = TestStack::wrap(spawn_on(&storage, Infra::embedded()).await);
    let signed_up = reqwest::Client::new()
        .post(first.at("/api/auth/signup"))
        .json(&json!({"email": "root@example.com", "password": "attacker-password"}))
        .send()
        .await
        .unwrap();
    assert_eq!(signed_up.status(), 201);
    drop(first);

    let admin = [
        ("ADMIN_EMAIL", "root@example.com"),
        ("ADMIN_PASSWORD", "operator-password"),
    ];
    let refused = try_spawn_on_with(&storage, &admin, Infra::embedded()).await;
    let error = format!("{:#}", refused.err().expect("the start is refused"));
    assert!(
        error.contains("ADMIN_EMAIL") && error.contains("root@example.com"),
        "{error}"
    );

    let after = TestStack::wrap(spawn_on(&storage, Infra::embedded()).await);
    let attacker = token_for(&after, "root@example.com", "attacker-password").await;
    let access = attacker["accessToken"]
        .as_str()
        .expect("the account still logs in");
    assert_eq!(claims(access)["role"], "user");
    drop(after);

    // A fresh address: the operator's admin is made, and accepted at every later start.
    let operator = [
        ("ADMIN_EMAIL", "operator@example.com"),
        ("ADMIN_PASSWORD", "operator-password"),
    ];
    for _ in 0..2 {
        let s = TestStack::wrap(
            try_spawn_on_with(&storage, &operator, Infra::embedded())
                .await
                .unwrap(),
        );
        let admin = token_for(&s, "operator@example.com", "operator-password").await;
        assert_eq!(
            claims(admin["accessToken"].as_str().unwrap())["role"],
            "admin"
        );
    }
}
