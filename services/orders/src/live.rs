//! Live availability: built seat maps shared by every reader, the recent changes streams resume
//! from, and the background work that keeps both current.
//!
//! A seat map is built once per event and version (single flight: concurrent readers of a stale
//! map wait for one build) and served from memory, each encoding compressed once. Changes made
//! anywhere arrive through the board's change feed and mark the event's map out of date; it is
//! rebuilt on the next read unless it is younger than `SEAT_MAP_MAX_STALENESS_MS` — so a change
//! after a quiet spell shows at once, and under heavy churn a hot map is rebuilt at most once
//! per that window. Without news a map is re-checked against the board's version once per
//! window. Holds stay the truth: a seat shown available a moment too long just gets a 409 with
//! `conflicts`.
//!
//! Expired holds leave the board when an operation sweeps them; a sweeper also sweeps the
//! events this process saw holds on, so expiries are announced and streamed promptly.

use std::collections::{HashMap, VecDeque};
use std::fmt::Write as _;
use std::io::Write;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::{Arc, Mutex, OnceLock, Weak};
use std::time::Duration;

use axum::body::Bytes;
use tokio::sync::broadcast::error::RecvError;

use crate::domain::ids::{EventId, SeatId};
use crate::domain::now_millis;
use crate::domain::seat::{Layout, Seat};
use crate::store::board::{SeatBoard, SeatDelta, SeatNews, Snapshot};
use crate::store::holds::{HoldError, Holds};
use crate::venue_views;
use holdfast_common::sync::lock;

/// How many recent changes per event a stream can resume from.
const RECENT_CHANGES: usize = 512;
/// How often the sweeper sweeps the events it watches.
const SWEEP_EVERY: Duration = Duration::from_millis(250);

/// An encoding a seat map is served in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encoding {
    Identity,
    Gzip,
    Brotli,
}

impl Encoding {
    /// The best encoding `accept_encoding` allows (brotli, then gzip).
    pub fn negotiate(accept_encoding: Option<&str>) -> Self {
        let accepts = |name: &str| {
            accept_encoding.is_some_and(|header| {
                header.split(',').any(|part| {
                    let mut pieces = part.split(';');
                    let coding = pieces.next().unwrap_or_default().trim();
                    let refused = pieces.any(|p| {
                        p.trim()
                            .strip_prefix("q=")
                            .and_then(|q| q.trim().parse::<f32>().ok())
                            .is_some_and(|q| q <= 0.0)
                    });
                    coding.eq_ignore_ascii_case(name) && !refused
                })
            })
        };
        if accepts("br") {
            Self::Brotli
        } else if accepts("gzip") {
            Self::Gzip
        } else {
            Self::Identity
        }
    }

    pub fn header_value(self) -> Option<&'static str> {
        match self {
            Self::Identity => None,
            Self::Gzip => Some("gzip"),
            Self::Brotli => Some("br"),
        }
    }
}

/// One body in every encoding, compressed on first use.
pub struct Encoded {
    identity: Bytes,
    gzip: OnceLock<Bytes>,
    brotli: OnceLock<Bytes>,
}

impl Encoded {
    fn new(identity: String) -> Self {
        Self {
            identity: Bytes::from(identity),
            gzip: OnceLock::new(),
            brotli: OnceLock::new(),
        }
    }

    pub fn get(&self, encoding: Encoding) -> Bytes {
        match encoding {
            Encoding::Identity => self.identity.clone(),
            Encoding::Gzip => self.gzip.get_or_init(|| gzip(&self.identity)).clone(),
            Encoding::Brotli => self.brotli.get_or_init(|| brotli(&self.identity)).clone(),
        }
    }
}

fn gzip(data: &[u8]) -> Bytes {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    // Writing to a Vec cannot fail.
    let _ = encoder.write_all(data);
    Bytes::from(encoder.finish().unwrap_or_default())
}

fn brotli(data: &[u8]) -> Bytes {
    let mut out = Vec::new();
    {
        let mut writer = brotli::CompressorWriter::new(&mut out, 4096, 4, 22);
        let _ = writer.write_all(data);
    }
    Bytes::from(out)
}

/// An event's seat map at one version; each view is built when first asked for.
pub struct SeatMap {
    pub version: u64,
    layout: Layout,
    snapshot: Snapshot,
    full: OnceLock<Encoded>,
    compact: OnceLock<Encoded>,
    available: OnceLock<serde_json::Value>,
}

impl SeatMap {
    fn new(layout: &Layout, snapshot: Snapshot) -> Self {
        Self {
            version: snapshot.version,
            layout: layout.clone(),
            snapshot,
            full: OnceLock::new(),
            compact: OnceLock::new(),
            available: OnceLock::new(),
        }
    }

    /// On a venue, what is available per category and section (`null` on a grid).
    pub fn available(&self) -> &serde_json::Value {
        self.available.get_or_init(|| match &self.layout.venue {
            Some(plan) => venue_views::available(plan, &self.snapshot.held, &self.snapshot.sold),
            None => serde_json::Value::Null,
        })
    }

    /// Every seat with its state.
    pub fn full(&self) -> &Encoded {
        self.full
            .get_or_init(|| Encoded::new(full_json(&self.layout, &self.snapshot)))
    }

    /// Dimensions, version and the seats that are not available.
    pub fn compact(&self) -> &Encoded {
        self.compact.get_or_init(|| {
            Encoded::new(compact_json(
                &self.layout,
                self.snapshot.version,
                &self.snapshot.held,
                &self.snapshot.sold,
            ))
        })
    }
}

/// The cached map of one event: when it was built, when it was last known current, and
/// whether a change has been heard of since.
struct Cached {
    layout: Layout,
    map: Arc<SeatMap>,
    built_at_ms: i64,
    checked_at_ms: AtomicI64,
    changed: AtomicBool,
}

impl Cached {
    /// Whether this map may be served for `layout` now. A map nobody has heard changes to is
    /// served until `staleness` has passed since it was last checked; one known to be out of
    /// date only while it is younger than `staleness` (heavy churn), so a change after a quiet
    /// spell shows at once and a hot event is rebuilt at most once per `staleness`.
    fn servable(&self, layout: &Layout, staleness: i64) -> bool {
        let now = now_millis();
        let since = |at: i64| now.saturating_sub(at) < staleness;
        self.layout == *layout
            && if self.changed.load(Ordering::Acquire) {
                since(self.built_at_ms)
            } else {
                since(self.checked_at_ms.load(Ordering::Acquire))
            }
    }
}

#[derive(Default)]
struct EventState {
    cached: Option<Arc<Cached>>,
    /// Held while a map is being (re)built, so concurrent readers wait for one build.
    building: Arc<tokio::sync::Mutex<()>>,
    recent: VecDeque<Arc<SeatDelta>>,
    /// Until when the sweeper watches the event (ms).
    watch_until_ms: i64,
}

/// Shared by every handler of the service.
#[derive(Default)]
pub struct Live {
    events: Mutex<HashMap<EventId, EventState>>,
}

impl Live {
    /// The event's map, no older than `max_staleness` unless news says otherwise.
    pub async fn map(
        &self,
        holds: &Holds,
        layout: &Layout,
        max_staleness: Duration,
    ) -> Result<Arc<SeatMap>, HoldError> {
        let event_id = &layout.event_id;
        let staleness = i64::try_from(max_staleness.as_millis()).unwrap_or(i64::MAX);
        // A map is only reused for the layout it was built for (a relayout keeps the version).
        let fresh = |cached: &Option<Arc<Cached>>| {
            cached
                .as_ref()
                .and_then(|c| c.servable(layout, staleness).then(|| c.map.clone()))
        };
        let building = {
            let mut events = lock(&self.events);
            let entry = events.entry(event_id.clone()).or_default();
            if let Some(map) = fresh(&entry.cached) {
                return Ok(map);
            }
            entry.building.clone()
        };
        let _building = building.lock().await;
        let cached = lock(&self.events)
            .get(event_id)
            .and_then(|e| e.cached.clone());
        if let Some(map) = fresh(&cached) {
            return Ok(map);
        }
        let checked_at = now_millis();
        if let Some(cached) = &cached
            && cached.layout == *layout
            && holds.board().version(event_id).await? == cached.map.version
        {
            cached.checked_at_ms.store(checked_at, Ordering::Release);
            cached.changed.store(false, Ordering::Release);
            return Ok(cached.map.clone());
        }
        let snapshot = holds.snapshot(event_id).await?;
        let map = Arc::new(SeatMap::new(layout, snapshot));
        let entry = Arc::new(Cached {
            layout: layout.clone(),
            map: map.clone(),
            built_at_ms: checked_at,
            checked_at_ms: AtomicI64::new(checked_at),
            changed: AtomicBool::new(false),
        });
        lock(&self.events)
            .entry(event_id.clone())
            .or_default()
            .cached = Some(entry);
        Ok(map)
    }

    /// Changes of the event after `version`, if every one of them is still remembered.
    pub fn changes_since(&self, event_id: &EventId, version: u64) -> Option<Vec<Arc<SeatDelta>>> {
        let events = lock(&self.events);
        let recent = &events.get(event_id)?.recent;
        let newer: Vec<Arc<SeatDelta>> = recent
            .iter()
            .filter(|d| d.version > version)
            .cloned()
            .collect();
        let oldest_kept = recent.front().map_or(u64::MAX, |d| d.version);
        (oldest_kept <= version + 1 || newer.is_empty()).then_some(newer)
    }

    /// Asks the sweeper to watch the event for `how_long` (it has holds, or open streams).
    pub fn watch(&self, event_id: &EventId, how_long: Duration) {
        let until = now_millis() + i64::try_from(how_long.as_millis()).unwrap_or(i64::MAX);
        let mut events = lock(&self.events);
        let entry = events.entry(event_id.clone()).or_default();
        entry.watch_until_ms = entry.watch_until_ms.max(until);
    }

    /// Marks the event's map stale, so the next reader checks the board.
    pub fn invalidate(&self, event_id: &EventId) {
        if let Some(cached) = lock(&self.events)
            .get(event_id)
            .and_then(|e| e.cached.as_ref())
        {
            cached.changed.store(true, Ordering::Release);
        }
    }

    fn note(&self, news: &SeatNews) {
        let mut events = lock(&self.events);
        match news {
            SeatNews::Changed(delta) => {
                let entry = events.entry(delta.event_id.clone()).or_default();
                if let Some(cached) = &entry.cached {
                    cached.changed.store(true, Ordering::Release);
                }
                if entry
                    .recent
                    .back()
                    .is_some_and(|last| last.version + 1 != delta.version)
                {
                    // A gap: what is kept no longer chains up to the new change.
                    entry.recent.clear();
                }
                entry.recent.push_back(Arc::new(delta.clone()));
                if entry.recent.len() > RECENT_CHANGES {
                    entry.recent.pop_front();
                }
            }
            SeatNews::MayHaveMissed => {
                for entry in events.values_mut() {
                    entry.recent.clear();
                    if let Some(cached) = &entry.cached {
                        cached.changed.store(true, Ordering::Release);
                    }
                }
            }
        }
    }

    /// Events to sweep now; forgets those no longer watched.
    fn watched(&self) -> Vec<EventId> {
        let now = now_millis();
        let events = lock(&self.events);
        events
            .iter()
            .filter(|(_, e)| e.watch_until_ms > now)
            .map(|(id, _)| id.clone())
            .collect()
    }
}

/// Starts the background work of `maps` over `board`: following its changes, and sweeping
/// the watched events so that holds expire on time (the board then reports them, see
/// [`crate::seat_changes::SeatChanges::follow_expiries`]). Each task ends once `maps` is gone.
pub fn spawn(maps: &Arc<Live>, board: &Arc<dyn SeatBoard>) {
    let live: Weak<Live> = Arc::downgrade(maps);
    let mut changes = board.changes();
    tokio::spawn(async move {
        loop {
            let news = match changes.recv().await {
                Ok(news) => news,
                Err(RecvError::Lagged(_)) => Arc::new(SeatNews::MayHaveMissed),
                Err(RecvError::Closed) => return,
            };
            let Some(live) = live.upgrade() else { return };
            live.note(&news);
        }
    });

    let live = Arc::downgrade(maps);
    let board = board.clone();
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(SWEEP_EVERY);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            let Some(watched) = live.upgrade().map(|live| live.watched()) else {
                return;
            };
            for event_id in watched {
                if let Err(error) = board.sweep(&event_id).await {
                    tracing::warn!(%error, %event_id, "cannot sweep expired holds");
                }
            }
        }
    });
}

/// The full view: every seat of `layout` with its state at `snapshot`.
fn full_json(layout: &Layout, snapshot: &Snapshot) -> String {
    if let Some(plan) = &layout.venue {
        return venue_views::full_json(&layout.event_id, plan, &snapshot.held, &snapshot.sold);
    }
    let mut states: HashMap<&str, &'static str> =
        HashMap::with_capacity(snapshot.held.len() + snapshot.sold.len());
    for seat in &snapshot.held {
        states.insert(seat, "held");
    }
    // Sold wins over held: a sale is final.
    for seat in &snapshot.sold {
        states.insert(seat, "reserved");
    }
    let mut full = String::with_capacity(64 + layout.capacity() * 64);
    full.push_str("{\"eventId\":\"");
    full.push_str(&layout.event_id);
    full.push_str("\",\"seats\":[");
    let mut seat_id = String::with_capacity(16);
    for (i, seat) in layout.grid_seats().enumerate() {
        seat_id.clear();
        let _ = std::fmt::Write::write_fmt(
            &mut seat_id,
            format_args!("R{}-S{}", seat.row, seat.number),
        );
        let state = states.get(seat_id.as_str()).copied().unwrap_or("available");
        if i > 0 {
            full.push(',');
        }
        let _ = std::fmt::Write::write_fmt(
            &mut full,
            format_args!(
                "{{\"seatId\":\"{seat_id}\",\"row\":{},\"number\":{},\"state\":\"{state}\"}}",
                seat.row, seat.number
            ),
        );
    }
    full.push_str("]}");
    full
}

/// The compact view: dimensions, version, and the seats that are not available, per row as
/// runs of seat numbers (`"3": "1-4,9"` = row 3, seats 1 to 4 and 9). Written directly: it is
/// rebuilt on every change of a hot event.
pub fn compact_json(layout: &Layout, version: u64, held: &[SeatId], sold: &[SeatId]) -> String {
    if let Some(plan) = &layout.venue {
        return venue_views::compact_json(&layout.event_id, plan, version, held, sold);
    }
    let places = |ids: &[SeatId]| {
        let mut seats: Vec<Seat> = ids.iter().filter_map(|s| Seat::parse(s)).collect();
        seats.sort_unstable();
        seats.dedup();
        seats
    };
    let sold = places(sold);
    let mut held = places(held);
    // Sold wins over held: a sale is final.
    held.retain(|seat| sold.binary_search(seat).is_err());
    let mut out = String::with_capacity(128 + 4 * (held.len() + sold.len()));
    let _ = write!(
        out,
        "{{\"eventId\":\"{}\",\"version\":{version},\"rows\":{},\"seatsPerRow\":{},\"held\":",
        layout.event_id, layout.rows, layout.seats_per_row
    );
    write_runs(&mut out, &held);
    out.push_str(",\"reserved\":");
    write_runs(&mut out, &sold);
    out.push('}');
    out
}

/// Sorted seats as a JSON object of rows (as string keys) to runs of consecutive numbers.
fn write_runs(out: &mut String, seats: &[Seat]) {
    out.push('{');
    let mut i = 0;
    while i < seats.len() {
        let row = seats[i].row;
        if i > 0 {
            out.push(',');
        }
        let _ = write!(out, "\"{row}\":\"");
        let mut first = true;
        while i < seats.len() && seats[i].row == row {
            let start = seats[i].number;
            let mut end = start;
            while i + 1 < seats.len() && seats[i + 1].row == row && seats[i + 1].number == end + 1 {
                i += 1;
                end += 1;
            }
            if !first {
                out.push(',');
            }
            first = false;
            if start == end {
                let _ = write!(out, "{start}");
            } else {
                let _ = write!(out, "{start}-{end}");
            }
            i += 1;
        }
        out.push('"');
    }
    out.push('}');
}

#[cfg(test)]
mod tests {
    use super::*;

    fn layout() -> Layout {
        Layout {
            event_id: "0123456789abcdef01234567".into(),
            rows: 3,
            seats_per_row: 10,
            price_minor: 100,
            currency: "INR".into(),
            version: 0,
            organizer_id: None,
            starts_at_ms: None,
            venue: None,
            about: crate::domain::seat::EventFacts::default(),
        }
    }

    fn ids(seats: &[&str]) -> Vec<SeatId> {
        seats.iter().map(|s| SeatId::from(*s)).collect()
    }

    use std::sync::atomic::AtomicUsize;

    use crate::store::board::{
        BestTake, Changed, Claim, ExpiredHold, Granted, HoldKeys, LayoutLock, MemoryBoard,
        SeatBoard, TakeRequest, Taken,
    };
    use holdfast_common::kv::KvError;

    use crate::domain::ids::OrderId;
    use crate::store::SoldSeats;

    /// A board that counts (and slows down) snapshots, so concurrent builds would show.
    struct CountingBoard {
        inner: MemoryBoard,
        snapshots: AtomicUsize,
    }

    #[async_trait::async_trait]
    impl SeatBoard for CountingBoard {
        async fn take(&self, r: &TakeRequest) -> Result<Taken, KvError> {
            self.inner.take(r).await
        }
        async fn take_best(&self, r: &TakeRequest, b: &BestTake) -> Result<Granted, KvError> {
            self.inner.take_best(r, b).await
        }
        async fn change(
            &self,
            h: &HoldKeys,
            add: &[SeatId],
            remove: &[SeatId],
        ) -> Result<Changed, KvError> {
            self.inner.change(h, add, remove).await
        }
        async fn is_intact(&self, h: &HoldKeys) -> Result<bool, KvError> {
            self.inner.is_intact(h).await
        }
        async fn extend(&self, h: &HoldKeys, ttl: Duration) -> Result<Option<i64>, KvError> {
            self.inner.extend(h, ttl).await
        }
        async fn claim(&self, h: &HoldKeys, v: u64, at_least: Duration) -> Result<Claim, KvError> {
            self.inner.claim(h, v, at_least).await
        }
        async fn layout_version(&self, e: &EventId) -> Result<u64, KvError> {
            self.inner.layout_version(e).await
        }
        async fn lock_layout(
            &self,
            e: &EventId,
            t: &str,
            ttl: Duration,
        ) -> Result<LayoutLock, KvError> {
            self.inner.lock_layout(e, t, ttl).await
        }
        async fn unlock_layout(&self, e: &EventId, t: &str) -> Result<(), KvError> {
            self.inner.unlock_layout(e, t).await
        }
        async fn release(&self, h: &HoldKeys) -> Result<(), KvError> {
            self.inner.release(h).await
        }
        async fn sell(&self, h: &HoldKeys, o: &OrderId) -> Result<(), KvError> {
            self.inner.sell(h, o).await
        }
        async fn mark_sold(&self, e: &EventId, sold: &SoldSeats) -> Result<(), KvError> {
            self.inner.mark_sold(e, sold).await
        }
        async fn unsell(&self, e: &EventId, o: &OrderId, seats: &[SeatId]) -> Result<(), KvError> {
            self.inner.unsell(e, o, seats).await
        }
        async fn load_sold(&self, e: &EventId, sold: &SoldSeats) -> Result<(), KvError> {
            self.inner.load_sold(e, sold).await
        }
        async fn snapshot(&self, e: &EventId) -> Result<Option<Snapshot>, KvError> {
            self.snapshots.fetch_add(1, Ordering::SeqCst);
            tokio::time::sleep(Duration::from_millis(50)).await;
            self.inner.snapshot(e).await
        }
        async fn version(&self, e: &EventId) -> Result<u64, KvError> {
            self.inner.version(e).await
        }
        async fn sweep(&self, e: &EventId) -> Result<(), KvError> {
            self.inner.sweep(e).await
        }
        fn changes(&self) -> tokio::sync::broadcast::Receiver<Arc<SeatNews>> {
            self.inner.changes()
        }
        fn expirations(&self) -> tokio::sync::broadcast::Receiver<ExpiredHold> {
            self.inner.expirations()
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_readers_of_one_version_share_one_build() {
        let board = Arc::new(CountingBoard {
            inner: MemoryBoard::new(),
            snapshots: AtomicUsize::new(0),
        });
        board
            .load_sold(&layout().event_id, &SoldSeats::new())
            .await
            .unwrap();
        let test = holdfast_common::testing::TestStore::sqlite(&crate::store::SCHEMA).await;
        let settings = holdfast_common::config::Settings::from_map(&Default::default()).unwrap();
        let holds = Holds::new(
            Arc::new(holdfast_common::kv::MemoryStore::new()),
            board.clone(),
            crate::store::Stores::open(&test.store).orders,
            settings.orders,
        );
        let live = Arc::new(Live::default());
        let readers = (0..32).map(|_| {
            let (live, holds) = (live.clone(), holds.clone());
            tokio::spawn(async move {
                live.map(&holds, &layout(), Duration::from_secs(60))
                    .await
                    .unwrap()
                    .version
            })
        });
        let versions: std::collections::HashSet<u64> = futures_util::future::join_all(readers)
            .await
            .into_iter()
            .map(Result::unwrap)
            .collect();
        assert_eq!(versions.len(), 1);
        assert_eq!(
            board.snapshots.load(Ordering::SeqCst),
            1,
            "one build for all"
        );
    }

    #[test]
    fn the_compact_view_lists_runs_per_row() {
        let held = ids(&["R1-S1", "R1-S2", "R1-S3", "R1-S7", "R3-S10", "R2-S5"]);
        let sold = ids(&["R2-S5", "R2-S6"]);
        let json: serde_json::Value =
            serde_json::from_str(&compact_json(&layout(), 42, &held, &sold)).unwrap();
        assert_eq!(
            json,
            serde_json::json!({
                "eventId": "0123456789abcdef01234567", "version": 42, "rows": 3, "seatsPerRow": 10,
                "held": {"1": "1-3,7", "3": "10"},
                "reserved": {"2": "5-6"},
            })
        );
    }

    #[test]
    fn the_full_view_marks_every_seat() {
        let snapshot = Snapshot {
            version: 7,
            held: ids(&["R1-S2", "R2-S1"]),
            sold: ids(&["R2-S1"]),
        };
        let map = SeatMap::new(&layout(), snapshot);
        let json: serde_json::Value =
            serde_json::from_slice(&map.full().get(Encoding::Identity)).unwrap();
        let seats = json["seats"].as_array().unwrap();
        assert_eq!(seats.len(), 30);
        assert_eq!(
            seats[1],
            serde_json::json!({"seatId": "R1-S2", "row": 1, "number": 2, "state": "held"})
        );
        assert_eq!(seats[10]["state"], "reserved", "sold wins over held");
        assert_eq!(seats[0]["state"], "available");
    }

    #[test]
    fn compressed_bodies_decompress_to_the_same_json() {
        use std::io::Read;
        let map = SeatMap::new(
            &layout(),
            Snapshot {
                version: 1,
                held: vec![],
                sold: vec![],
            },
        );
        let plain = map.full().get(Encoding::Identity);
        let mut unzipped = Vec::new();
        flate2::read::GzDecoder::new(&map.full().get(Encoding::Gzip)[..])
            .read_to_end(&mut unzipped)
            .unwrap();
        assert_eq!(unzipped, plain);
        let mut unbrotlied = Vec::new();
        brotli::Decompressor::new(&map.full().get(Encoding::Brotli)[..], 4096)
            .read_to_end(&mut unbrotlied)
            .unwrap();
        assert_eq!(unbrotlied, plain);
    }

    #[test]
    fn encodings_are_negotiated_from_accept_encoding() {
        assert_eq!(Encoding::negotiate(None), Encoding::Identity);
        assert_eq!(Encoding::negotiate(Some("gzip, deflate")), Encoding::Gzip);
        assert_eq!(
            Encoding::negotiate(Some("gzip, deflate, br, zstd")),
            Encoding::Brotli
        );
        assert_eq!(Encoding::negotiate(Some("br;q=0, gzip")), Encoding::Gzip);
        assert_eq!(Encoding::negotiate(Some("identity")), Encoding::Identity);
    }

    #[test]
    fn streams_resume_only_from_changes_still_remembered() {
        let live = Live::default();
        let event = "e";
        let delta = |version| {
            SeatNews::Changed(SeatDelta {
                event_id: event.into(),
                version,
                changes: vec![],
            })
        };
        for v in 10..=12 {
            live.note(&delta(v));
        }
        let versions = |since| {
            live.changes_since(&event.into(), since)
                .map(|d| d.iter().map(|d| d.version).collect::<Vec<_>>())
        };
        assert_eq!(versions(10), Some(vec![11, 12]));
        assert_eq!(versions(9), Some(vec![10, 11, 12]));
        assert_eq!(versions(12), Some(vec![]));
        assert_eq!(versions(5), None, "too far behind");
        live.note(&delta(20));
        assert_eq!(versions(12), None, "a gap forgets the older changes");
        assert_eq!(versions(19), Some(vec![20]));
    }
}
