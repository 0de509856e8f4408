//! Rendered pages of the event list, so that a crowd reading the catalogue during an on-sale
//! costs one query and one rendering per page, not one per reader.
//!
//! A page is served from here while it is younger than [`MAX_AGE`] and no event has been
//! written through this process since it was rendered: a client sees its own change at once,
//! and another replica's change within [`MAX_AGE`]. At most [`MAX_PAGES`] distinct queries are
//! kept (past that the cache starts over), so clients varying their queries cannot grow it.

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use holdfast_common::sync::lock;

use crate::store::EventQuery;

/// How long a rendered page may be served.
pub const MAX_AGE: Duration = Duration::from_secs(1);
/// How many distinct queries are kept.
pub const MAX_PAGES: usize = 256;

/// A rendered page: the JSON array and the total the `X-Total-Count` header carries.
#[derive(Debug, Clone)]
pub struct Page {
    pub body: Bytes,
    pub total: u64,
}

#[derive(Debug)]
struct Entry {
    page: Page,
    version: u64,
    rendered_at: Instant,
}

/// The pages, and the version of the catalogue they were rendered from.
#[derive(Debug, Default)]
pub struct ListCache {
    version: AtomicU64,
    pages: Mutex<HashMap<EventQuery, Entry>>,
}

impl ListCache {
    /// The catalogue's version now; read it before querying, hand it to [`Self::put`].
    pub fn version(&self) -> u64 {
        self.version.load(Ordering::Acquire)
    }

    /// The page for `query`, if it is recent and no write came after it.
    pub fn get(&self, query: &EventQuery) -> Option<Page> {
        let pages = lock(&self.pages);
        let entry = pages.get(query)?;
        (entry.version == self.version() && entry.rendered_at.elapsed() < MAX_AGE)
            .then(|| entry.page.clone())
    }

    /// Keeps `page`, rendered from the catalogue at `version`; a page rendered before a write
    /// that has since happened is not kept.
    pub fn put(&self, query: EventQuery, version: u64, page: Page) {
        let mut pages = lock(&self.pages);
        if version != self.version() {
            return;
        }
        if pages.len() >= MAX_PAGES && !pages.contains_key(&query) {
            pages.clear();
        }
        pages.insert(
            query,
            Entry {
                page,
                version,
                rendered_at: Instant::now(),
            },
        );
    }

    /// Forgets every page: an event was created, changed or deleted.
    pub fn invalidate(&self) {
        let mut pages = lock(&self.pages);
        self.version.fetch_add(1, Ordering::AcqRel);
        pages.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn page(body: &'static str) -> Page {
        Page {
            body: Bytes::from_static(body.as_bytes()),
            total: 1,
        }
    }

    fn query(limit: u64) -> EventQuery {
        EventQuery {
            limit,
            ..EventQuery::default()
        }
    }

    #[test]
    fn a_page_is_served_until_a_write() {
        let cache = ListCache::default();
        assert!(cache.get(&query(100)).is_none());
        cache.put(query(100), cache.version(), page("[1]"));
        assert_eq!(&cache.get(&query(100)).unwrap().body[..], b"[1]");
        assert!(cache.get(&query(10)).is_none(), "another query");
        cache.invalidate();
        assert!(cache.get(&query(100)).is_none());
    }

    #[test]
    fn a_page_rendered_before_a_write_is_not_kept() {
        let cache = ListCache::default();
        let version = cache.version();
        cache.invalidate(); // a write lands while the page is being rendered
        cache.put(query(100), version, page("[stale]"));
        assert!(cache.get(&query(100)).is_none());
    }

    #[test]
    fn distinct_queries_cannot_grow_it_past_the_bound() {
        let cache = ListCache::default();
        for limit in 0..(MAX_PAGES as u64 * 3) {
            cache.put(query(limit), cache.version(), page("[]"));
        }
        let kept = cache.pages.lock().unwrap().len();
        assert!(kept <= MAX_PAGES, "{kept}");
    }
}
