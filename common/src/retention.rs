//! Pruning of records that are done with (outbox messages published long ago, mail deliveries
//! finished long ago, idempotency records past their expiry), so that tables a client can add
//! to stay flat instead of only growing.
//!
//! A pass deletes in small batches ([`BATCH`] records each, batch after batch until one comes
//! back short), so no pass holds the store's write lock for long; passes run every [`EVERY`].

use std::time::Duration;

use futures_util::future::BoxFuture;

use crate::docstore::StoreError;

/// The most records one delete takes.
pub const BATCH: usize = 500;
/// How often a pass runs.
pub const EVERY: Duration = Duration::from_secs(60);

/// Runs pruning passes in the background. `batch(now_ms, limit)` deletes at most `limit`
/// records done with by `now_ms` and answers how many went; it answers `None` once its store
/// is gone (the service stopped), which ends the task.
pub fn spawn<F>(what: &'static str, mut batch: F)
where
    F: FnMut(i64, usize) -> Option<BoxFuture<'static, Result<usize, StoreError>>> + Send + 'static,
{
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(EVERY);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            let mut pruned = 0;
            loop {
                let Some(deleting) = batch(crate::when::now_millis(), BATCH) else {
                    return;
                };
                match deleting.await {
                    Ok(deleted) => {
                        pruned += deleted;
                        if deleted < BATCH {
                            break;
                        }
                        // Let the store's other users in between two batches.
                        tokio::task::yield_now().await;
                    }
                    Err(error) => {
                        tracing::warn!(%error, what, "pruning stopped until the next pass");
                        break;
                    }
                }
            }
            if pruned > 0 {
                tracing::info!(what, pruned, "pruned records that are done with");
            }
        }
    });
}
