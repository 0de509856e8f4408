//! The replicas of a service that another service calls: a `*_SERVICE_URL` may list several
//! base URLs, comma-separated, and calls go to each in turn. (The gateway, which also passes
//! over a replica that refuses connections, keeps its own set: `holdfast_gateway::upstream`.)

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

/// Base URLs (without a trailing `/`) taken in turn; cheap to clone, clones share the turn.
#[derive(Debug, Clone)]
pub struct BaseUrls {
    urls: Arc<[String]>,
    next: Arc<AtomicUsize>,
}

impl BaseUrls {
    /// The URLs of `list`, comma-separated (as the configuration checked them).
    pub fn new(list: &str) -> Self {
        let urls: Vec<String> = list
            .split(',')
            .map(|url| url.trim().trim_end_matches('/').to_string())
            .filter(|url| !url.is_empty())
            .collect();
        Self {
            urls: urls.into(),
            next: Arc::default(),
        }
    }

    /// The base URL for the next call.
    pub fn next(&self) -> &str {
        match self.urls.len() {
            0 => "",
            count => &self.urls[self.next.fetch_add(1, Ordering::Relaxed) % count],
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn calls_go_to_each_replica_in_turn() {
        let urls = BaseUrls::new("http://a:1/, http://b:2,,http://c:3");
        let shared = urls.clone();
        let taken: Vec<&str> = (0..3).map(|_| urls.next()).collect();
        assert_eq!(taken, ["http://a:1", "http://b:2", "http://c:3"]);
        assert_eq!(shared.next(), "http://a:1", "clones share the turn");
        assert_eq!(BaseUrls::new("http://only").next(), "http://only");
    }
}
