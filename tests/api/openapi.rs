//! The OpenAPI document: the served file is the generated one, every route is in it, every
//! operation in it is routed, and the documentation page is served without the internet.

use std::collections::BTreeSet;
use std::path::Path;

use serde_json::Value;

const DOCUMENT_FILE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/gateway/openapi.json");

fn document() -> Value {
    serde_json::from_str(&holdfast::openapi::to_json().unwrap()).unwrap()
}

/// `(METHOD, path)` of every operation of the document.
fn operations(doc: &Value) -> BTreeSet<(String, String)> {
    let mut operations = BTreeSet::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for method in ["get", "put", "post", "delete", "patch"] {
            if item.get(method).is_some() {
                operations.insert((method.to_uppercase(), path.clone()));
            }
        }
    }
    operations
}

#[test]
fn the_served_document_is_the_generated_one() {
    let generated = holdfast::openapi::to_json().unwrap();
    if std::env::var_os("UPDATE_OPENAPI").is_some() {
        std::fs::write(DOCUMENT_FILE, &generated).unwrap();
    }
    let served = std::fs::read_to_string(DOCUMENT_FILE).unwrap();
    assert!(
        served == generated,
        "gateway/openapi.json is not what the code describes; regenerate it with \
         `UPDATE_OPENAPI=1 cargo test --test openapi`"
    );
    assert_eq!(
        served,
        holdfast_gateway::docs::OPENAPI_JSON,
        "rebuild the gateway"
    );
}

#[test]
fn the_document_is_openapi_3_1_with_both_security_schemes_and_error_codes() {
    let doc = document();
    assert_eq!(doc["openapi"], "3.1.0");
    let schemes = &doc["components"]["securitySchemes"];
    assert_eq!(schemes["bearer"]["scheme"], "bearer");
    assert_eq!(schemes["cookie"]["in"], "cookie");
    assert_eq!(schemes["cookie"]["name"], "access_token");
    for (method, path) in operations(&doc) {
        let operation = &doc["paths"][&path][method.to_lowercase()];
        let answers = operation["responses"].as_object().unwrap();
        assert!(
            answers
                .keys()
                .any(|status| status.starts_with('2') || status.starts_with('3')),
            "{method} {path} documents no success"
        );
        assert!(answers.contains_key("429"), "{method} {path}: no 429");
        for (status, answer) in answers {
            if status.starts_with('4') || status.starts_with('5') {
                let schema = &answer["content"]["application/json"]["schema"]["$ref"];
                let is_error_body = schema == "#/components/schemas/ErrorBody";
                // The upstream health answer is the service's own body, not an error.
                assert!(
                    is_error_body || path == "/{service}/health",
                    "{method} {path} {status}: not the error body"
                );
            }
        }
    }
    let purchase = &doc["paths"]["/api/orders/purchase"]["post"];
    assert!(
        purchase["responses"]["409"]["description"]
            .as_str()
            .unwrap()
            .contains("SEAT_ALREADY_RESERVED")
    );
    assert!(doc["components"]["schemas"]["Event"]["properties"]["timezone"].is_object());
}

/// The public path of a route registered in `source` (a file of a service crate, or of the
/// gateway or common, whose routes keep their paths).
fn public_path(source: &Path, route: &str) -> String {
    let service = ["auth", "events", "orders", "ml"]
        .into_iter()
        .find(|name| source.components().any(|c| c.as_os_str() == *name))
        .unwrap_or("gateway");
    holdfast::openapi::public_path(service, route)
}

fn rust_files(dir: &Path, found: &mut Vec<std::path::PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, found);
        } else if path.extension().is_some_and(|e| e == "rs") {
            found.push(path);
        }
    }
}

/// Routes come from documented handlers (`utoipa_axum::routes!`); a plain `.route("…")` outside
/// tests is only allowed for what the gateway never forwards (`/internal/…`) or when its path is
/// documented.
#[test]
fn every_route_of_every_router_is_in_the_document() {
    let doc = document();
    let documented: BTreeSet<String> = doc["paths"].as_object().unwrap().keys().cloned().collect();
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut files = Vec::new();
    for dir in ["services", "gateway/src", "common/src", "src"] {
        rust_files(&root.join(dir), &mut files);
    }
    let mut seen = 0;
    let mut missing = Vec::new();
    for file in files {
        let source = std::fs::read_to_string(&file).unwrap();
        let source = source.split("#[cfg(test)]").next().unwrap();
        for call in source.split(".route(").skip(1) {
            let call = call.trim_start();
            let Some(literal) = call.strip_prefix('"') else {
                continue;
            };
            let route = &literal[..literal.find('"').unwrap()];
            seen += 1;
            if route.starts_with("/internal/") {
                continue;
            }
            let public = public_path(file.strip_prefix(root).unwrap(), route);
            // `/docs/` and `/docs/{*file}` are the page's files, under the documented `/docs`;
            // `/api/{*path}` forwards to the services' routes, which this test checks above.
            let undocumented_by_design = public.starts_with("/docs/") || public == "/api/{*path}";
            if !documented.contains(&public) && !undocumented_by_design {
                missing.push(format!("{public} ({})", file.display()));
            }
        }
    }
    assert!(seen >= 8, "the scan found only {seen} routes");
    assert!(
        missing.is_empty(),
        "routes missing from the document: {missing:#?}"
    );
    // And the routes built from documented handlers are all there.
    for path in [
        "/api/auth/signup",
        "/api/auth/users/{user_id}/role",
        "/api/events/{id}",
        "/api/orders/seats/{event_id}/stream",
        "/api/orders/purchase",
        "/api/public/orders/{order_id}",
        "/api/ml/related",
        "/{service}/health",
        "/api/openapi.json",
        "/docs",
        "/metrics",
    ] {
        assert!(documented.contains(path), "{path} is not documented");
    }
}

/// Every documented operation reaches a handler through the gateway (a route that is documented
/// but not served would answer the router's own 404 or 405).
#[tokio::test]
async fn every_documented_operation_is_routed() {
    let stack = crate::support::spawn(&[]).await;
    let client = reqwest::Client::new();
    let doc = document();
    for (method, path) in operations(&doc) {
        let concrete = path
            .replace("{service}", "orders")
            .replace("{order_id}", "0b6c1a52-8a0e-4c55-9d1f-1f1b2c3d4e5f")
            .replace("{hold_id}", "3f2b8c1e-5d4a-4e8f-9b7a-1c2d3e4f5a6b")
            .replace(['{', '}'], "")
            .replace("user_id", "6650c0ffee0000000000abcd")
            .replace("event_id", "6650c0ffee0000000000abcd")
            .replace("/id", "/6650c0ffee0000000000abcd");
        let request = client.request(method.parse().unwrap(), format!("{}{concrete}", stack.url));
        let response = request.send().await.unwrap();
        let status = response.status().as_u16();
        let body: Value = response.json().await.unwrap_or(Value::Null);
        let router_miss = status == 404 && body["error"] == "no such resource";
        assert!(
            !router_miss && status != 405,
            "{method} {path} ({concrete}) is not routed: {status} {body}"
        );
    }
}

#[tokio::test]
async fn the_gateway_serves_the_document_and_an_offline_page() {
    let stack = crate::support::spawn(&[]).await;
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let served = crate::support::get_json(&stack, None, "/api/openapi.json").await;
    assert_eq!(served, document());

    let get = |path: &str| client.get(stack.at(path)).send();
    let redirect = get("/docs").await.unwrap();
    assert_eq!(redirect.status(), 303);
    assert_eq!(redirect.headers()["location"], "/docs/");

    let page = get("/docs/").await.unwrap();
    assert_eq!(page.status(), 200);
    let policy = page.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_string();
    assert!(policy.contains("script-src 'self'"), "{policy}");
    let html = page.text().await.unwrap();
    // Every script and style sheet the page loads is one of ours, relative to the page.
    for reference in html
        .split(['"', '\''])
        .filter(|r| r.ends_with(".js") || r.ends_with(".css"))
    {
        assert!(
            !reference.contains("//"),
            "the page loads {reference} from elsewhere"
        );
        let asset = get(&format!("/docs/{}", reference.trim_start_matches("./")))
            .await
            .unwrap();
        assert_eq!(asset.status(), 200, "{reference}");
    }
    let initializer = get("/docs/swagger-initializer.js").await.unwrap();
    let initializer = initializer.text().await.unwrap();
    assert!(initializer.contains("/api/openapi.json"), "{initializer}");

    // Elsewhere, the API's strict policy is unchanged.
    let api = get("/health").await.unwrap();
    assert!(
        api.headers()["content-security-policy"]
            .to_str()
            .unwrap()
            .starts_with("default-src 'none'")
    );
}

/// The properties the document marks required in the JSON body of `method path` (none when the
/// body itself is optional).
fn required_body(doc: &Value, method: &str, path: &str) -> Vec<String> {
    let body = &doc["paths"][path][method]["requestBody"];
    if body["required"] != true {
        return Vec::new();
    }
    let schema = &body["content"]["application/json"]["schema"];
    let schema = match schema["$ref"].as_str() {
        Some(reference) => &doc["components"]["schemas"][reference.rsplit('/').next().unwrap()],
        None => schema,
    };
    schema["required"]
        .as_array()
        .map(|names| {
            names
                .iter()
                .map(|n| n.as_str().unwrap().to_string())
                .collect()
        })
        .unwrap_or_default()
}

/// Every operation with a body, sent the body the document makes minimal (its required
/// properties only, each given a valid value), gets its documented success: a generated client
/// that sends what the schema requires and nothing more works.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_minimal_documented_body_of_every_operation_succeeds() {
    use crate::support::{access_token, api, get_json, post, token_for};
    use serde_json::json;

    let doc = document();
    let s = crate::support::spawn(&[]).await;
    let admin = access_token(&s, "admin@holdfast.test", "holdfast-demo").await;
    let organizer = access_token(&s, "organizer@holdfast.test", "holdfast-demo").await;
    let buyer = token_for("minimal-buyer");
    let tokens = crate::support::tokens(&s, "user@holdfast.test", "holdfast-demo").await;

    // Values for every property a request schema may require.
    let mut values = serde_json::Map::new();
    let mut value = |name: &str, v: Value| {
        values.insert(name.to_string(), v);
    };
    value("email", json!("minimal@example.com"));
    value("password", json!("minimal-password"));
    value("name", json!("Minimal"));
    value("refreshToken", tokens["refreshToken"].clone());
    value("role", json!("user"));
    value("title", json!("Minimal event"));
    value("date", json!("2031-05-01"));
    value("timezone", json!("UTC"));
    value("tags", json!([]));
    value("rows", json!(1));
    value("seatsPerRow", json!(4));
    value("price", json!(0));
    value("currency", json!("INR"));
    value("seats", json!(1));
    value("amount", json!(10));
    value("simulate", json!("succeed"));
    let minimal = |values: &serde_json::Map<String, Value>, method: &str, path: &str| {
        let mut body = serde_json::Map::new();
        for name in required_body(&doc, method, path) {
            let v = values
                .get(&name)
                .unwrap_or_else(|| panic!("{method} {path}: no value for required {name}"));
            body.insert(name, v.clone());
        }
        Value::Object(body)
    };

    // Auth, anonymously.
    let anonymous = |path: &'static str, body: Value| api().post(s.at(path)).json(&body).send();
    let signup = minimal(&values, "post", "/api/auth/signup");
    assert_eq!(
        anonymous("/api/auth/signup", signup)
            .await
            .unwrap()
            .status(),
        201
    );
    for path in [
        "/api/auth/login",
        "/api/auth/token",
        "/api/auth/token/refresh",
    ] {
        let body = minimal(&values, "post", path);
        assert_eq!(anonymous(path, body).await.unwrap().status(), 200, "{path}");
    }
    let users = get_json(&s, Some(&admin), "/api/auth/users").await;
    let someone = users
        .as_array()
        .unwrap()
        .iter()
        .find(|u| u["email"] == "minimal@example.com")
        .unwrap()["userId"]
        .clone();
    let role = api()
        .patch(s.at(&format!(
            "/api/auth/users/{}/role",
            someone.as_str().unwrap()
        )))
        .bearer_auth(&admin)
        .json(&minimal(&values, "patch", "/api/auth/users/{user_id}/role"))
        .send()
        .await
        .unwrap();
    assert_eq!(role.status(), 200);

    // Events: a free one (so a purchase needs no intent) and a paid one.
    let created = post(
        &s,
        &organizer,
        "/api/events",
        minimal(&values, "post", "/api/events"),
    )
    .await;
    assert_eq!(created.status(), 201);
    let created: Value = created.json().await.unwrap();
    let event_id = created["_id"].as_str().unwrap().to_string();
    let free = api()
        .put(s.at(&format!("/api/events/{event_id}")))
        .bearer_auth(&organizer)
        .json(&json!({"price": 0, "rows": 1, "seatsPerRow": 4}))
        .send()
        .await
        .unwrap();
    assert_eq!(free.status(), 200);
    let updated = api()
        .put(s.at(&format!("/api/events/{event_id}")))
        .bearer_auth(&organizer)
        .json(&minimal(&values, "put", "/api/events/{id}"))
        .send()
        .await
        .unwrap();
    assert_eq!(updated.status(), 200);

    // Orders: hold, intent and confirm, purchase of free seats, waitlist.
    values.insert("eventId".into(), json!(event_id));
    values.insert("seatIds".into(), json!(["R1-S1"]));
    let held = post(
        &s,
        &buyer,
        "/api/orders/holds",
        minimal(&values, "post", "/api/orders/holds"),
    )
    .await;
    assert_eq!(held.status(), 201);
    let held: Value = held.json().await.unwrap();
    values.insert("holdId".into(), held["holdId"].clone());
    let intent = post(
        &s,
        &buyer,
        "/api/orders/payments/intent",
        minimal(&values, "post", "/api/orders/payments/intent"),
    )
    .await;
    assert_eq!(intent.status(), 201);
    let intent: Value = intent.json().await.unwrap();
    values.insert("paymentIntentId".into(), intent["paymentIntentId"].clone());
    values.insert("clientSecret".into(), intent["clientSecret"].clone());
    let confirm = minimal(&values, "post", "/api/orders/payments/confirm");
    assert_eq!(
        post(&s, &buyer, "/api/orders/payments/confirm", confirm)
            .await
            .status(),
        200
    );
    let purchase = minimal(&values, "post", "/api/orders/purchase");
    let bought = post(&s, &buyer, "/api/orders/purchase", purchase).await;
    assert_eq!(bought.status(), 201, "{:?}", bought.text().await);
    // The other seats held, so the waitlist is open to join.
    let rest = json!({"eventId": event_id, "seatIds": ["R1-S2", "R1-S3", "R1-S4"]});
    assert_eq!(
        post(&s, &token_for("holds-the-rest"), "/api/orders/holds", rest)
            .await
            .status(),
        201
    );
    let join = minimal(&values, "post", "/api/orders/events/{event_id}/waitlist");
    let path = format!("/api/orders/events/{event_id}/waitlist");
    assert_eq!(
        post(&s, &token_for("minimal-waiter"), &path, join)
            .await
            .status(),
        201
    );
    // An admission queue, on an event of its own.
    let queued: Value = post(
        &s,
        &organizer,
        "/api/events",
        minimal(&values, "post", "/api/events"),
    )
    .await
    .json()
    .await
    .unwrap();
    values.insert("opensAt".into(), json!("2031-04-01T10:00:00Z"));
    let settings = minimal(&values, "put", "/api/orders/events/{event_id}/queue");
    let path = format!(
        "/api/orders/events/{}/queue",
        queued["_id"].as_str().unwrap()
    );
    let configured = api()
        .put(s.at(&path))
        .bearer_auth(&organizer)
        .json(&settings)
        .send()
        .await
        .unwrap();
    assert_eq!(configured.status(), 200);
    // Bodies documented as optional really are.
    for path in [
        "/api/orders/holds/{hold_id}/refresh",
        "/api/orders/orders/{order_id}/cancel",
        "/api/orders/events/{event_id}/queue/me",
    ] {
        assert!(required_body(&doc, "post", path).is_empty(), "{path}");
    }
}
