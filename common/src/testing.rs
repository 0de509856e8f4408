//! Helpers for tests that need a real server (Redis, RabbitMQ, MongoDB).
//!
//! A suite whose server variable is unset is skipped with a visible message, except under
//! `CI=true`, where skipping would hide a broken set-up and therefore fails. MongoDB is the
//! exception: no CI machine has one, so its suites skip whenever `MONGODB_URI` is unset.

use std::io::Write;

/// The server URL in `var`, or `None` (after saying so) when the suite must be skipped.
///
/// # Panics
/// When `var` is unset and `CI=true`, unless `var` is `MONGODB_URI`.
pub fn server_url(var: &str) -> Option<String> {
    if let Some(url) = std::env::var(var).ok().filter(|v| !v.trim().is_empty()) {
        return Some(url);
    }
    let in_ci = std::env::var("CI").is_ok_and(|v| v == "true");
    if in_ci && var != "MONGODB_URI" {
        panic!("{var} is not set, but CI=true requires the {var} adapter suite to run");
    }
    // Written to the stderr handle directly: the test harness captures `eprintln!`, and a
    // skipped suite must be seen.
    let _ = writeln!(
        std::io::stderr().lock(),
        "SKIPPED: {var} is not set, so this {var} adapter test did not run"
    );
    None
}

/// A name no other test run uses, for keys, queues and exchanges on shared servers.
pub fn unique_name(prefix: &str) -> String {
    format!("{prefix}-{}", uuid::Uuid::new_v4().simple())
}
