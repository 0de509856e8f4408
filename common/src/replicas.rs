//! The replicas of a service that another service calls: a `*_SERVICE_URL` may list several
//! base URLs, comma-separated; calls go to each in turn, and one that refuses the connection
//! (a stopped or killed replica) is followed by the next at once. (The gateway keeps a set of
//! its own, which also remembers who went away: `holdfast_gateway::upstream`.)

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

    /// Sends the request `build` makes from a base URL to the next replica, and to the ones
    /// after it while they refuse the connection (the request never left, so sending it
    /// elsewhere is safe whatever it does); answers the first answer or the last error.
    pub async fn send(
        &self,
        build: impl Fn(&str) -> reqwest::RequestBuilder,
    ) -> reqwest::Result<reqwest::Response> {
        let mut answer = build(self.next()).send().await;
        for _ in 1..self.urls.len() {
            match &answer {
                Err(error) if error.is_connect() => answer = build(self.next()).send().await,
                _ => break,
            }
        }
        answer
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

    /// A replica that refuses connections costs no call: the next one answers it.
    #[tokio::test]
    async fn a_call_goes_past_a_replica_that_refuses_connections() {
        let live = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let live_url = format!("http://{}", live.local_addr().unwrap());
        let app = axum::Router::new().route("/ping", axum::routing::get(|| async { "pong" }));
        tokio::spawn(async move { axum::serve(live, app).await });
        let dead = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let dead_url = format!("http://{}", dead.local_addr().unwrap());
        drop(dead);
        let urls = BaseUrls::new(&format!("{dead_url},{live_url}"));
        let client = reqwest::Client::new();
        for _ in 0..4 {
            let answer = urls
                .send(|base| client.get(format!("{base}/ping")))
                .await
                .expect("the live replica answers");
            assert_eq!(answer.text().await.unwrap(), "pong");
        }
        let only_dead = BaseUrls::new(&dead_url);
        let refused = only_dead
            .send(|base| client.get(format!("{base}/ping")))
            .await;
        assert!(refused.is_err_and(|e| e.is_connect()));
    }
}
