//! The gateway in front of a stand-in upstream that echoes what it receives.

use std::collections::HashMap;
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::Request;
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use axum::routing::{any, get};
use holdfast_common::config::Settings;
use holdfast_common::infra::Infra;
use holdfast_common::server;
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

async fn echo(headers: HeaderMap, request: Request) -> impl IntoResponse {
    let (parts, body) = request.into_parts();
    let body = axum::body::to_bytes(body, usize::MAX)
        .await
        .unwrap_or_default();
    let headers: HashMap<String, String> = headers
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_str().unwrap_or_default().to_string()))
        .collect();
    (
        StatusCode::CREATED,
        [("set-cookie", "a=1; HttpOnly"), ("x-upstream", "echo")],
        axum::Json(json!({
            "method": parts.method.as_str(),
            "path": parts.uri.path(),
            "query": parts.uri.query(),
            "headers": headers,
            "body": String::from_utf8_lossy(&body),
        })),
    )
}

async fn serve(router: Router, token: &CancellationToken) -> String {
    let listener = server::bind([127, 0, 0, 1].into(), 0).await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(server::serve(
        listener,
        router,
        token.clone(),
        Duration::from_secs(1),
    ));
    url
}

/// A closed port: nothing listens there.
async fn dead_url() -> String {
    let listener = server::bind([127, 0, 0, 1].into(), 0).await.unwrap();
    format!("http://{}", listener.local_addr().unwrap())
}

struct Fixture {
    gateway: String,
    _token: CancellationToken,
}

async fn fixture() -> Fixture {
    let token = CancellationToken::new();
    let upstream = Router::new()
        .route(
            "/slow",
            get(|| async {
                tokio::time::sleep(Duration::from_secs(3)).await;
                "late"
            }),
        )
        .route(
            "/health",
            get(|| async { axum::Json(json!({"status": "ok", "service": "echo"})) }),
        )
        .fallback(any(echo));
    let upstream = serve(upstream, &token).await;
    let mut settings = Settings::from_map(&HashMap::new()).unwrap();
    settings.service_urls.auth = upstream.clone();
    settings.service_urls.events = upstream.clone();
    settings.service_urls.orders = upstream;
    settings.service_urls.ml = dead_url().await;
    settings.upstream_timeout = Duration::from_millis(500);
    let app = holdfast_gateway::build(settings.into(), Infra::embedded())
        .await
        .unwrap()
        .public;
    let gateway = serve(app, &token).await;
    Fixture {
        gateway,
        _token: token,
    }
}

#[tokio::test]
async fn requests_reach_the_upstream_path_with_query_headers_and_body() {
    let f = fixture().await;
    let res = reqwest::Client::new()
        .post(format!(
            "{}/api/orders/holds/h1/refresh?x=1&y=two",
            f.gateway
        ))
        .header("content-type", "application/json")
        .header("authorization", "Bearer t0k3n")
        .header("x-request-id", "rid-1")
        .header("connection", "keep-alive")
        .body(r#"{"extendSeconds":60}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201);
    assert_eq!(res.headers()["set-cookie"], "a=1; HttpOnly");
    assert_eq!(res.headers()["x-upstream"], "echo");
    assert_eq!(res.headers()["x-request-id"], "rid-1");
    let seen: Value = res.json().await.unwrap();
    assert_eq!(seen["method"], "POST");
    assert_eq!(seen["path"], "/holds/h1/refresh");
    assert_eq!(seen["query"], "x=1&y=two");
    assert_eq!(seen["body"], r#"{"extendSeconds":60}"#);
    assert_eq!(seen["headers"]["authorization"], "Bearer t0k3n");
    assert_eq!(seen["headers"]["x-request-id"], "rid-1");
    assert_eq!(seen["headers"]["content-type"], "application/json");
}

#[tokio::test]
async fn each_public_prefix_reaches_its_upstream_path() {
    let f = fixture().await;
    let client = reqwest::Client::new();
    for (public, upstream) in [
        ("/api/auth/login", "/login"),
        ("/api/events", "/events"),
        ("/api/events/65f0c0ffee", "/events/65f0c0ffee"),
        ("/api/public/orders/o-1", "/public/orders/o-1"),
    ] {
        let seen: Value = client
            .get(format!("{}{public}", f.gateway))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(seen["path"], upstream, "{public}");
    }
}

#[tokio::test]
async fn a_body_over_one_mebibyte_is_refused_with_413() {
    let f = fixture().await;
    let res = reqwest::Client::new()
        .post(format!("{}/api/auth/signup", f.gateway))
        .header("content-type", "application/json")
        .body(Bytes::from(vec![b'x'; 2 * 1024 * 1024]))
        .send()
        .await
        .unwrap();
    assert_payload_too_large(res).await;
}

/// A client that writes its whole body before reading (as simple clients do) still gets the
/// 413: had the gateway answered and closed with the body unread, the client's writes would fail
/// with a reset once the socket buffers filled, and the answer would never be read.
#[tokio::test]
async fn a_client_that_writes_its_whole_oversized_body_first_reads_the_413() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let f = fixture().await;
    let body_len = 8 * 1024 * 1024;
    let mut stream = tokio::net::TcpStream::connect(f.gateway.trim_start_matches("http://"))
        .await
        .unwrap();
    let head = format!(
        "POST /api/events/events HTTP/1.1\r\nhost: gateway\r\ncontent-type: application/json\r\n\
         content-length: {body_len}\r\n\r\n"
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    let chunk = vec![b'x'; 64 * 1024];
    for _ in 0..body_len / chunk.len() {
        stream
            .write_all(&chunk)
            .await
            .expect("the gateway reads the body it refuses");
    }
    let mut answer = vec![0; 1024];
    let read = stream.read(&mut answer).await.unwrap();
    let answer = String::from_utf8_lossy(&answer[..read]);
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
    assert!(answer.contains("PAYLOAD_TOO_LARGE"), "{answer}");
}

async fn assert_payload_too_large(res: reqwest::Response) {
    assert_eq!(res.status(), 413);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["code"], "PAYLOAD_TOO_LARGE");
    assert!(body["requestId"].is_string());
}

/// A body sent without a length is cut at the limit while it streams; the client's excess is
/// its own fault, so the upstream's circuit does not count it.
#[tokio::test]
async fn a_streamed_body_past_one_mebibyte_is_refused_with_413() {
    let f = fixture().await;
    let client = reqwest::Client::new();
    for _ in 0..6 {
        let chunks = (0..40).map(|_| Ok::<_, std::io::Error>(Bytes::from(vec![b'x'; 64 * 1024])));
        let res = client
            .post(format!("{}/api/auth/signup", f.gateway))
            .header("content-type", "application/json")
            .body(reqwest::Body::wrap_stream(futures_util::stream::iter(
                chunks,
            )))
            .send()
            .await
            .unwrap();
        assert_payload_too_large(res).await;
    }
    let after = client
        .post(format!("{}/api/auth/signup", f.gateway))
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(after.status(), 201, "the circuit stays closed");
}

/// An answer streams through as the upstream writes it: the client reads the first event
/// while the upstream still holds the rest back.
#[tokio::test]
async fn a_streamed_answer_passes_through_unbuffered() {
    let token = CancellationToken::new();
    let (release, released) = tokio::sync::oneshot::channel::<()>();
    let released = std::sync::Arc::new(std::sync::Mutex::new(Some(released)));
    let events = move || {
        let released = released.lock().unwrap().take();
        async move {
            let first = futures_util::stream::once(async {
                Ok::<_, std::io::Error>(Bytes::from_static(b"data: first\n\n"))
            });
            let rest = futures_util::stream::once(async move {
                if let Some(released) = released {
                    let _ = released.await;
                }
                Ok(Bytes::from_static(b"data: last\n\n"))
            });
            (
                [("content-type", "text/event-stream")],
                axum::body::Body::from_stream(futures_util::StreamExt::chain(first, rest)),
            )
        }
    };
    let upstream = serve(Router::new().route("/events/stream", get(events)), &token).await;
    let mut settings = Settings::from_map(&HashMap::new()).unwrap();
    settings.service_urls.events = upstream;
    settings.upstream_timeout = Duration::from_millis(500);
    let app = holdfast_gateway::build(settings.into(), Infra::embedded())
        .await
        .unwrap()
        .public;
    let gateway = serve(app, &token).await;

    let mut res = reqwest::get(format!("{gateway}/api/events/stream"))
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(res.headers()["content-type"], "text/event-stream");
    let first = res.chunk().await.unwrap().unwrap();
    assert_eq!(&first[..], b"data: first\n\n");
    release.send(()).unwrap();
    let last = res.chunk().await.unwrap().unwrap();
    assert_eq!(&last[..], b"data: last\n\n");
    assert!(res.chunk().await.unwrap().is_none());
    token.cancel();
}

#[tokio::test]
async fn a_down_upstream_answers_503_and_a_slow_one_504() {
    let f = fixture().await;
    let client = reqwest::Client::new();
    let health = client
        .get(format!("{}/ml/health", f.gateway))
        .send()
        .await
        .unwrap();
    assert_eq!(health.status(), 503);
    assert_eq!(
        health.json::<Value>().await.unwrap(),
        json!({"status": "down", "service": "ml"})
    );

    let api = client
        .get(format!("{}/api/ml/recs", f.gateway))
        .send()
        .await
        .unwrap();
    assert_eq!(api.status(), 503);
    assert_eq!(
        api.json::<Value>().await.unwrap()["code"],
        "UPSTREAM_UNAVAILABLE"
    );

    let slow = client
        .get(format!("{}/api/auth/slow", f.gateway))
        .send()
        .await
        .unwrap();
    assert_eq!(slow.status(), 504);
    assert_eq!(
        slow.json::<Value>().await.unwrap()["code"],
        "UPSTREAM_TIMEOUT"
    );

    let ready = client
        .get(format!("{}/ready", f.gateway))
        .send()
        .await
        .unwrap();
    assert_eq!(ready.status(), 503);
    let body: Value = ready.json().await.unwrap();
    assert_eq!(body["details"]["checks"]["auth"], "ok");
    assert_eq!(body["details"]["checks"]["ml"], "failing");
    assert!(
        !body.to_string().contains("127.0.0.1"),
        "no internal addresses: {body}"
    );
}

#[tokio::test]
async fn healthy_upstreams_answer_through_their_health_route() {
    let f = fixture().await;
    let res = reqwest::get(format!("{}/auth/health", f.gateway))
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(res.json::<Value>().await.unwrap()["status"], "ok");
    let unknown = reqwest::get(format!("{}/api/nowhere", f.gateway))
        .await
        .unwrap();
    assert_eq!(unknown.status(), 404);
    assert_eq!(unknown.json::<Value>().await.unwrap()["code"], "NOT_FOUND");
}

/// An upstream whose health the test switches, counting the calls that reach it.
#[derive(Clone, Default)]
struct Switchable {
    failing: std::sync::Arc<std::sync::atomic::AtomicBool>,
    calls: std::sync::Arc<std::sync::atomic::AtomicUsize>,
}

impl Switchable {
    /// A route answering 503 while failing, else `{"items": []}`, counting every call.
    fn route(&self) -> Router {
        use std::sync::atomic::Ordering;
        let upstream = self.clone();
        Router::new().route(
            "/recs",
            get(move || {
                let upstream = upstream.clone();
                async move {
                    upstream.calls.fetch_add(1, Ordering::SeqCst);
                    if upstream.failing.load(Ordering::SeqCst) {
                        (StatusCode::SERVICE_UNAVAILABLE, "overloaded").into_response()
                    } else {
                        axum::Json(json!({"items": []})).into_response()
                    }
                }
            }),
        )
    }
}

#[tokio::test]
async fn a_failing_upstream_opens_its_circuit_and_a_recovered_one_closes_it() {
    use std::sync::atomic::Ordering;

    let token = CancellationToken::new();
    let upstream = Switchable::default();
    let ml = serve(upstream.route(), &token).await;
    let mut settings = Settings::from_map(&HashMap::from([
        ("CIRCUIT_FAILURE_THRESHOLD", "3"),
        ("CIRCUIT_OPEN_MS", "500"),
    ]))
    .unwrap();
    settings.service_urls.ml = ml;
    let app = holdfast_gateway::build(settings.into(), Infra::embedded())
        .await
        .unwrap()
        .public;
    let gateway = serve(app, &token).await;
    let client = reqwest::Client::new();
    let recs = || client.get(format!("{gateway}/api/ml/recs")).send();
    let metric = |text: &str, name: &str| -> Option<String> {
        text.lines()
            .find(|l| l.starts_with(name) && l.contains(r#"upstream="ml""#))
            .and_then(|l| l.rsplit(' ').next().map(str::to_string))
    };

    upstream.failing.store(true, Ordering::SeqCst);
    for _ in 0..3 {
        assert_eq!(recs().await.unwrap().status(), 503);
    }
    let refused = recs().await.unwrap();
    assert_eq!(refused.status(), 503);
    assert!(
        refused.headers()["retry-after"]
            .to_str()
            .unwrap()
            .parse::<u64>()
            .unwrap()
            >= 1
    );
    assert_eq!(
        refused.json::<Value>().await.unwrap()["code"],
        "CIRCUIT_OPEN"
    );
    assert_eq!(
        upstream.calls.load(Ordering::SeqCst),
        3,
        "an open circuit does not call the upstream"
    );
    let text = client
        .get(format!("{gateway}/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_eq!(
        metric(&text, "holdfast_circuit_state").as_deref(),
        Some("1"),
        "{text}"
    );
    assert_eq!(
        metric(&text, "holdfast_circuit_rejections_total").as_deref(),
        Some("1"),
        "{text}"
    );

    upstream.failing.store(false, Ordering::SeqCst);
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert_eq!(
        recs().await.unwrap().status(),
        200,
        "the trial call goes through"
    );
    assert_eq!(recs().await.unwrap().status(), 200);
    let text = client
        .get(format!("{gateway}/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_eq!(
        metric(&text, "holdfast_circuit_state").as_deref(),
        Some("0"),
        "{text}"
    );
    token.cancel();
}

/// The all-in-one profile: the gateway calls the services' routers in process, with the same
/// request, timeout and circuit breaker as over HTTP.
#[tokio::test]
async fn in_process_upstreams_get_the_same_requests_timeouts_and_circuits() {
    use std::sync::atomic::Ordering;

    let token = CancellationToken::new();
    let upstream = Switchable::default();
    upstream.failing.store(true, Ordering::SeqCst);
    let echoing = Router::new()
        .route(
            "/slow",
            get(|| async {
                tokio::time::sleep(Duration::from_secs(3)).await;
                "late"
            }),
        )
        .fallback(any(echo));
    let mut settings = Settings::from_map(&HashMap::from([
        ("CIRCUIT_FAILURE_THRESHOLD", "3"),
        ("CIRCUIT_OPEN_MS", "60000"),
    ]))
    .unwrap();
    settings.upstream_timeout = Duration::from_millis(300);
    // Over HTTP these would be refused: nothing listens there.
    settings.service_urls.auth = dead_url().await;
    settings.service_urls.ml = dead_url().await;
    let local = holdfast_gateway::upstream::LocalServices::from([
        ("auth", echoing),
        ("ml", upstream.route()),
    ]);
    let app = holdfast_gateway::build_with(settings.into(), Infra::embedded(), local)
        .await
        .unwrap()
        .public;
    let gateway = serve(app, &token).await;
    let client = reqwest::Client::new();

    let res = client
        .post(format!("{gateway}/api/auth/x/y?z=1"))
        .header("content-type", "application/json")
        .header("x-request-id", "rid-local")
        .header("connection", "keep-alive")
        .body(r#"{"a":1}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201);
    assert_eq!(res.headers()["x-upstream"], "echo");
    assert_eq!(res.headers()["x-request-id"], "rid-local");
    let seen: Value = res.json().await.unwrap();
    assert_eq!(
        (
            &seen["method"],
            &seen["path"],
            &seen["query"],
            &seen["body"]
        ),
        (
            &json!("POST"),
            &json!("/x/y"),
            &json!("z=1"),
            &json!(r#"{"a":1}"#)
        )
    );
    assert_eq!(seen["headers"]["x-request-id"], "rid-local");
    assert!(
        seen["headers"].get("connection").is_none(),
        "hop-by-hop dropped"
    );

    let slow = client
        .get(format!("{gateway}/api/auth/slow"))
        .send()
        .await
        .unwrap();
    assert_eq!(slow.status(), 504);
    assert_eq!(
        slow.json::<Value>().await.unwrap()["code"],
        "UPSTREAM_TIMEOUT"
    );

    for _ in 0..3 {
        let res = client
            .get(format!("{gateway}/api/ml/recs"))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 503);
    }
    let refused = client
        .get(format!("{gateway}/api/ml/recs"))
        .send()
        .await
        .unwrap();
    assert_eq!(
        refused.json::<Value>().await.unwrap()["code"],
        "CIRCUIT_OPEN"
    );
    assert_eq!(upstream.calls.load(Ordering::SeqCst), 3);
    token.cancel();
}

/// A service given as several replicas: calls go to each in turn, and a replica that refuses
/// connections (stopped, killed) costs one failed call, then is passed over.
#[tokio::test]
async fn calls_go_to_each_replica_in_turn_and_pass_over_one_that_is_down() {
    let token = CancellationToken::new();
    let replica = |name: &'static str| Router::new().fallback(any(move || async move { name }));
    let (first, second) = (
        serve(replica("first"), &token).await,
        serve(replica("second"), &token).await,
    );
    let dead = dead_url().await;
    let mut settings = Settings::from_map(&HashMap::new()).unwrap();
    settings.service_urls.orders = format!("{first},{dead},{second}");
    settings.service_urls.ml = dead_url().await;
    // A dead replica's failures are not the service's: one failure would open its circuit.
    settings.gateway.circuit_failure_threshold = 1;
    let app = holdfast_gateway::build(settings.into(), Infra::embedded())
        .await
        .unwrap()
        .public;
    let gateway = serve(app, &token).await;
    let client = reqwest::Client::new();
    let mut answers = HashMap::<String, usize>::new();
    for _ in 0..30 {
        let res = client
            .get(format!("{gateway}/api/orders/anything"))
            .send()
            .await
            .unwrap();
        let key = match res.status().as_u16() {
            200 => res.text().await.unwrap(),
            status => status.to_string(),
        };
        *answers.entry(key).or_default() += 1;
    }
    assert_eq!(
        answers.get("503"),
        Some(&1),
        "one call met the dead replica: {answers:?}"
    );
    assert_eq!(answers["first"] + answers["second"], 29, "{answers:?}");
    assert!(
        answers["first"] >= 14 && answers["second"] >= 14,
        "{answers:?}"
    );
}
