//! `holdfast-notifications`: the mail worker alone in its process.

use std::process::ExitCode;

use holdfast_common::launch::{self, Mounted};

holdfast_common::global_allocator!();

#[tokio::main]
async fn main() -> ExitCode {
    launch::main(
        &[holdfast_common::config::Service::Notifications],
        |settings, infra| async move {
            let router = holdfast_notifications::build(settings.clone(), infra).await?;
            Ok(vec![Mounted {
                name: holdfast_notifications::SERVICE,
                port: settings.ports.notifications,
                router,
            }])
        },
    )
    .await
}
