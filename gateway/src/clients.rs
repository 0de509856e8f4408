//! Who a request comes from: the client's IP address, read from `X-Forwarded-For` only when the
//! connection comes from a proxy in `TRUSTED_PROXIES`.
//!
//! Any client can send `X-Forwarded-*` headers, so believing them from anyone would let a client
//! pick its own rate-limit key or claim to be our own origin. Behind trusted proxies the client
//! is the right-most address in `X-Forwarded-For` that is not itself a trusted proxy: each proxy
//! appends the address it received the request from, and entries left of the first untrusted
//! one were written by whoever sent it and prove nothing.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use axum::extract::ConnectInfo;
use axum::http::{HeaderMap, Request};
use ipnet::IpNet;

/// The proxies whose forwarding headers are believed.
#[derive(Debug, Clone, Default)]
pub struct TrustedProxies {
    networks: Arc<[IpNet]>,
}

impl TrustedProxies {
    pub fn new(networks: &[IpNet]) -> Self {
        Self {
            networks: networks.into(),
        }
    }

    /// Whether `address` belongs to a trusted proxy.
    pub fn trusts(&self, address: IpAddr) -> bool {
        let address = address.to_canonical();
        self.networks.iter().any(|net| net.contains(&address))
    }

    /// Whether the connection carrying `request` comes from a trusted proxy (false when the
    /// peer is unknown, as for a request handed over in process).
    pub fn forwarded_by_trusted<B>(&self, request: &Request<B>) -> bool {
        peer(request).is_some_and(|peer| self.trusts(peer))
    }

    /// The address of the client that sent `request`: its peer, or behind trusted proxies
    /// the address they forwarded. `None` only when the peer is unknown.
    pub fn client_ip<B>(&self, request: &Request<B>) -> Option<IpAddr> {
        let peer = peer(request)?.to_canonical();
        if !self.trusts(peer) {
            return Some(peer);
        }
        Some(self.forwarded_client(request.headers()).unwrap_or(peer))
    }

    /// The right-most `X-Forwarded-For` entry that is not a trusted proxy, walking from the
    /// right; the left-most trusted entry when all are. Only what stands right of the client
    /// matters: entries left of it (whatever the client wrote, junk included) are never read.
    /// An entry that does not parse before an untrusted one is found ends the walk at the
    /// trusted hop right of it (a proxy we trust would not write one); `None` when that leaves
    /// nothing.
    fn forwarded_client(&self, headers: &HeaderMap) -> Option<IpAddr> {
        let lines: Vec<&str> = headers
            .get_all("x-forwarded-for")
            .iter()
            .map(|value| value.to_str().unwrap_or(""))
            .collect();
        let mut nearest_trusted = None;
        for entry in lines.iter().rev().flat_map(|line| line.rsplit(',')) {
            let Ok(address) = entry.trim().parse::<IpAddr>() else {
                break;
            };
            let address = address.to_canonical();
            if !self.trusts(address) {
                return Some(address);
            }
            nearest_trusted = Some(address);
        }
        nearest_trusted
    }
}

fn peer<B>(request: &Request<B>) -> Option<IpAddr> {
    request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|ConnectInfo(address)| address.ip())
}

#[cfg(test)]
mod tests {
    use super::*;

    use axum::body::Body;

    fn request_from(peer: &str, forwarded_for: &[&str]) -> Request<Body> {
        let mut request = Request::new(Body::empty());
        let peer: SocketAddr = format!("{peer}:40000").parse().unwrap();
        request.extensions_mut().insert(ConnectInfo(peer));
        for value in forwarded_for {
            request
                .headers_mut()
                .append("x-forwarded-for", value.parse().unwrap());
        }
        request
    }

    fn proxies() -> TrustedProxies {
        TrustedProxies::new(&["10.0.0.0/8".parse().unwrap(), "::1/128".parse().unwrap()])
    }

    fn ip(s: &str) -> Option<IpAddr> {
        Some(s.parse().unwrap())
    }

    #[test]
    fn an_untrusted_peer_is_the_client_whatever_it_claims() {
        let p = proxies();
        let request = request_from("203.0.113.9", &["198.51.100.1"]);
        assert_eq!(p.client_ip(&request), ip("203.0.113.9"));
        assert!(!p.forwarded_by_trusted(&request));
        let nobody_trusted = TrustedProxies::default();
        assert_eq!(
            nobody_trusted.client_ip(&request_from("10.0.0.2", &["198.51.100.1"])),
            ip("10.0.0.2")
        );
    }

    #[test]
    fn behind_trusted_proxies_the_right_most_untrusted_entry_is_the_client() {
        let p = proxies();
        // The client forged the first entry; the proxy appended the real one.
        let request = request_from("10.0.0.2", &["1.2.3.4, 198.51.100.7"]);
        assert_eq!(p.client_ip(&request), ip("198.51.100.7"));
        assert!(p.forwarded_by_trusted(&request));
        // Two proxies, each appending, across two header lines.
        let request = request_from("10.0.0.2", &["198.51.100.7", "10.0.0.3"]);
        assert_eq!(p.client_ip(&request), ip("198.51.100.7"));
        // Only proxies in the chain: the left-most is as close to the client as we get.
        let request = request_from("10.0.0.2", &["10.0.0.4, 10.0.0.3"]);
        assert_eq!(p.client_ip(&request), ip("10.0.0.4"));
        // No header, or one that does not parse: the proxy itself.
        assert_eq!(p.client_ip(&request_from("10.0.0.2", &[])), ip("10.0.0.2"));
        let request = request_from("10.0.0.2", &["not-an-ip"]);
        assert_eq!(p.client_ip(&request), ip("10.0.0.2"));
        // IPv4-mapped IPv6 peers count as their IPv4 address.
        let request = request_from("[::ffff:10.0.0.2]", &["198.51.100.7"]);
        assert_eq!(p.client_ip(&request), ip("198.51.100.7"));
    }

    /// Junk anywhere left of the client never moves a request into the proxy's bucket: the
    /// walk stops at the first untrusted entry from the right.
    #[test]
    fn junk_left_of_the_client_is_never_read() {
        let p = proxies();
        let cases: [(&[&str], &str); 7] = [
            (&["junk, 203.0.113.5"], "203.0.113.5"),
            (&["junk, 198.51.100.9"], "198.51.100.9"),
            (&["1.2.3.4, junk, 203.0.113.5"], "203.0.113.5"),
            (&["junk, 203.0.113.5, 10.0.0.3"], "203.0.113.5"),
            (&["junk", "203.0.113.5"], "203.0.113.5"),
            (
                &["junk, , 999.1.1.1", "203.0.113.5, 10.0.0.3"],
                "203.0.113.5",
            ),
            (&["203.0.113.5, ::1"], "203.0.113.5"),
        ];
        for (chain, client) in cases {
            let request = request_from("10.0.0.2", chain);
            assert_eq!(p.client_ip(&request), ip(client), "{chain:?}");
        }
        // Junk written by a trusted hop right of any client: the nearest trusted hop answers.
        let request = request_from("10.0.0.2", &["203.0.113.5, junk, 10.0.0.3"]);
        assert_eq!(p.client_ip(&request), ip("10.0.0.3"));
    }

    #[test]
    fn a_request_without_a_peer_has_no_client_ip_and_is_not_trusted() {
        let request = Request::new(Body::empty());
        assert_eq!(proxies().client_ip(&request), None);
        assert!(!proxies().forwarded_by_trusted(&request));
    }
}
