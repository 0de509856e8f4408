//! `holdfast`: the gateway and all four services in one process.
//!
//! With no environment set, every port uses its embedded adapter (SQLite under `./data`, the
//! in-process TTL store and bus), so `cargo run --release` is all it takes to try Holdfast.
//! The services share one [`Infra`](holdfast_common::infra::Infra): that is what carries bus
//! messages from one service to another inside the process.

use std::process::ExitCode;

holdfast_common::global_allocator!();

#[tokio::main]
async fn main() -> ExitCode {
    holdfast_common::launch::main(&holdfast_common::config::Service::ALL, holdfast::mount_all).await
}
