//! The `holdfast` binary as a user runs it: starts healthy, stops cleanly, refuses bad settings.

use std::net::TcpListener;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// The variables that route every process to ports of its own, so tests do not collide.
fn isolated_env(data_dir: &std::path::Path) -> Vec<(&'static str, String)> {
    vec![
        ("GATEWAY_PORT", free_port().to_string()),
        ("AUTH_PORT", free_port().to_string()),
        ("EVENTS_PORT", free_port().to_string()),
        ("ORDERS_PORT", free_port().to_string()),
        ("ML_PORT", free_port().to_string()),
        ("NOTIFICATIONS_PORT", free_port().to_string()),
        ("DATA_DIR", data_dir.display().to_string()),
    ]
}

fn launcher(env: &[(&'static str, String)]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_holdfast"));
    for var in [
        "REDIS_URL",
        "REDIS_CLUSTER_URLS",
        "AMQP_URL",
        "MONGODB_URI",
        "APP_ENV",
        "SMTP_URL",
    ] {
        command.env_remove(var);
    }
    command.envs(env.iter().map(|(k, v)| (*k, v.as_str())));
    command
}

#[tokio::test]
async fn the_launcher_serves_every_health_route_then_stops_cleanly_on_sigterm() {
    let data = tempfile::tempdir().unwrap();
    let env = isolated_env(data.path());
    let gateway = format!("http://127.0.0.1:{}", env[0].1);
    let mut child = launcher(&env)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("the launcher starts");

    let started = Instant::now();
    let client = reqwest::Client::new();
    let mut healthy = false;
    while started.elapsed() < Duration::from_secs(5) {
        if let Ok(res) = client.get(format!("{gateway}/health")).send().await {
            healthy = res.status().is_success();
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(healthy, "the gateway did not answer /health within 5 s");
    for service in ["auth", "events", "orders", "ml"] {
        let res = client
            .get(format!("{gateway}/{service}/health"))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 200, "{service}");
        let body: serde_json::Value = res.json().await.unwrap();
        assert_eq!(
            body,
            serde_json::json!({"status": "ok", "service": service})
        );
    }
    // The notifications worker is not behind the gateway: its own port answers.
    let notifications: serde_json::Value = client
        .get(format!("http://127.0.0.1:{}/health", env[5].1))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(notifications["service"], "notifications");
    assert!(
        data.path().join("orders.sqlite3").exists(),
        "the embedded store lives in DATA_DIR"
    );

    let killed = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(0), "a SIGTERM stop exits 0");
}

#[test]
fn a_bad_variable_stops_the_launcher_with_its_name() {
    let data = tempfile::tempdir().unwrap();
    let mut env = isolated_env(data.path());
    env.push(("ORDERS_PORT", "not-a-port".into()));
    let output = launcher(&env).output().unwrap();
    assert_eq!(output.status.code(), Some(78));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("ORDERS_PORT"), "{stderr}");
}

#[test]
fn production_refuses_development_settings() {
    let data = tempfile::tempdir().unwrap();
    let mut env = isolated_env(data.path());
    env.push(("APP_ENV", "production".into()));
    let output = launcher(&env).output().unwrap();
    assert_eq!(output.status.code(), Some(78));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("JWT_SECRET") && stderr.contains("production"),
        "{stderr}"
    );
}

/// A busy port ends the start-up with an error naming it, and no address was announced.
#[test]
fn a_busy_port_stops_the_launcher_before_any_address_is_announced() {
    let data = tempfile::tempdir().unwrap();
    let busy = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = busy.local_addr().unwrap().port();
    let mut env = isolated_env(data.path());
    env.push(("ML_PORT", port.to_string()));
    let output = launcher(&env).output().unwrap();
    assert_eq!(output.status.code(), Some(1));
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        !stdout.contains("listening") && !stdout.contains("http://"),
        "announced before binding: {stdout}"
    );
    assert!(stderr.contains(&format!(":{port}")), "{stderr}");
}

/// A clean start logs no warning (services that start together wait for each other quietly),
/// and announces every address once all are bound.
#[tokio::test]
async fn a_clean_start_warns_of_nothing() {
    let data = tempfile::tempdir().unwrap();
    let env = isolated_env(data.path());
    let gateway = format!("http://127.0.0.1:{}", env[0].1);
    let log = data.path().join("launcher.log");
    let mut child = launcher(&env)
        .env("RUST_LOG", "info")
        .env("LOG_FORMAT", "json")
        .stdout(std::fs::File::create(&log).unwrap())
        .stderr(Stdio::null())
        .spawn()
        .expect("the launcher starts");
    let client = reqwest::Client::new();
    let started = Instant::now();
    let mut loaded = false;
    // Until the recommendations model has its catalog (what warned before).
    while started.elapsed() < Duration::from_secs(15) {
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        if text.contains("event catalog loaded") {
            loaded = true;
            break;
        }
        let _ = client.get(format!("{gateway}/health")).send().await;
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let _ = child.wait();
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(loaded, "the catalog was not loaded: {text}");
    let warnings: Vec<&str> = text
        .lines()
        .filter(|line| line.contains("\"level\":\"WARN\"") || line.contains("\"level\":\"ERROR\""))
        .collect();
    assert!(warnings.is_empty(), "{warnings:#?}");
    assert!(text.contains("Holdfast is listening on:"), "{text}");
}
