//! `holdfast-auth`: the auth service alone in its process.

use std::process::ExitCode;

use holdfast_common::launch::{self, Mounted};

holdfast_common::global_allocator!();

#[tokio::main]
async fn main() -> ExitCode {
    launch::main(
        &[holdfast_common::config::Service::Auth],
        |settings, infra| async move {
            let router = holdfast_auth::build(settings.clone(), infra).await?;
            Ok(vec![Mounted {
                name: holdfast_auth::SERVICE,
                port: settings.ports.auth,
                router,
            }])
        },
    )
    .await
}
