//! `holdfast-ml`: the recommendation service alone in its process.

use std::process::ExitCode;

use holdfast_common::launch::{self, Mounted};

holdfast_common::global_allocator!();

#[tokio::main]
async fn main() -> ExitCode {
    launch::main(
        &[holdfast_common::config::Service::Ml],
        |settings, infra| async move {
            let router = holdfast_ml::build(settings.clone(), infra).await?;
            Ok(vec![Mounted {
                name: holdfast_ml::SERVICE,
                port: settings.ports.ml,
                router,
            }])
        },
    )
    .await
}
