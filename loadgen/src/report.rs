//! Collecting latencies from workers and printing throughput and percentiles.

use std::time::Duration;

use tokio::task::JoinHandle;

/// Every latency one worker measured.
#[derive(Default)]
pub struct Latencies(Vec<Duration>);

impl Latencies {
    pub fn record(&mut self, latency: Duration) {
        self.0.push(latency);
    }

    pub fn extend(&mut self, other: Latencies) {
        self.0.extend(other.0);
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// The `p`-th percentile (0–100) by nearest rank; zero when empty.
    pub fn percentile(&self, p: f64) -> Duration {
        if self.0.is_empty() {
            return Duration::ZERO;
        }
        let mut sorted = self.0.clone();
        sorted.sort_unstable();
        let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
        sorted[rank.clamp(1, sorted.len()) - 1]
    }
}

/// Joins the workers and merges what they measured.
pub async fn gather(
    workers: Vec<JoinHandle<(Latencies, u64)>>,
) -> anyhow::Result<(Latencies, u64)> {
    let mut all = Latencies::default();
    let mut failures = 0;
    for worker in workers {
        let (latencies, failed) = worker.await?;
        all.0.extend(latencies.0);
        failures += failed;
    }
    Ok((all, failures))
}

/// Latency percentiles alone, for measures that are not a rate.
pub fn print_latency(label: &str, latencies: &Latencies, missing: u64) {
    println!(
        "{label:<28} {:>8} seen {:>5} missing   p50 {:>7.2} ms   p99 {:>7.2} ms   max {:>7.2} ms",
        latencies.len(),
        missing,
        latencies.percentile(50.0).as_secs_f64() * 1000.0,
        latencies.percentile(99.0).as_secs_f64() * 1000.0,
        latencies.percentile(100.0).as_secs_f64() * 1000.0,
    );
}

/// One line per request kind: answers that succeeded, requests that failed (an error answer or
/// none; refusals a scenario expects, such as a 409 for a seat someone else took, are counted
/// and printed by the scenario apart from these), the rate of successes and their latency.
pub fn print(label: &str, latencies: &Latencies, failures: u64, elapsed: Duration) {
    let rate = latencies.len() as f64 / elapsed.as_secs_f64();
    println!(
        "{label:<28} {:>8} ok {:>5} failed {:>9.1} ok/s   p50 {:>7.2} ms   p99 {:>7.2} ms",
        latencies.len(),
        failures,
        rate,
        latencies.percentile(50.0).as_secs_f64() * 1000.0,
        latencies.percentile(99.0).as_secs_f64() * 1000.0,
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_use_the_nearest_rank() {
        let mut l = Latencies::default();
        for ms in 1..=100 {
            l.record(Duration::from_millis(ms));
        }
        assert_eq!(l.percentile(50.0), Duration::from_millis(50));
        assert_eq!(l.percentile(99.0), Duration::from_millis(99));
        assert_eq!(l.percentile(100.0), Duration::from_millis(100));
        assert_eq!(Latencies::default().percentile(99.0), Duration::ZERO);
    }
}
