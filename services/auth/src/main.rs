//! `holdfast-auth`: the auth service alone in its process.

use std::process::ExitCode;

use holdfast_common::launch::{self, Mounted};

/// Every Holdfast process allocates through mimalloc: a request allocates and frees dozens of
/// small buffers across worker threads, where glibc's allocator spent about a quarter of the
/// gateway's instructions (BENCHMARKS.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> ExitCode {
    launch::main(|settings, infra| async move {
        let router = holdfast_auth::build(settings.clone(), infra).await?;
        Ok(vec![Mounted {
            name: holdfast_auth::SERVICE,
            port: settings.ports.auth,
            router,
        }])
    })
    .await
}
