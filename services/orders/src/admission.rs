//! The admission queue of a hot on-sale, per event: its organizer turns it on (when it opens,
//! how many buyers a minute it lets in, how long an admitted buyer may shop, whether people may
//! wait before the opening, an optional proof of work per join), changes the rate or pauses
//! it during the sale, or turns it off. Buyers join with their account (one place each), see
//! their place and an estimate, leave, and once their place is in take a signed admission
//! (see [`crate::admission_pass`]) that holds, hold changes, best available and purchases on
//! that event require while the queue is on ([`Gate`]).
//!
//! The line and the pace live in [`crate::store::admission`], shared by every replica;
//! [`News`] turns them into one broadcast per event and second for every watching client.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use holdfast_common::auth::AuthUser;
use holdfast_common::kv::KvError;
use holdfast_common::sync::lock;
use tokio::sync::watch;

use crate::admission_pass::{AdmissionKeys, PassError};
use crate::domain::access::runs_event;
use crate::domain::admission::{
    MAX_PROOF_BITS, QueueSettings, default_rate_per_minute, proof_holds,
};
use crate::domain::ids::EventId;
use crate::domain::now_millis;
use crate::error::OrdersError;
use crate::layouts::Layouts;
use crate::store::admission::{
    AdmissionQueue, Admit, Configured, Joined, Overview, Standing, random_draw,
};

/// How long an admitted buyer may shop when the organizer does not say.
pub const DEFAULT_WINDOW: Duration = Duration::from_secs(15 * 60);
/// How long a replica trusts what it read of whether an event has a queue: turning a queue on
/// or off reaches every other replica within this time.
pub const QUEUE_SWITCH_FRESH: Duration = Duration::from_secs(1);
/// How often the broadcast of a watched queue is read again.
pub const NEWS_INTERVAL: Duration = Duration::from_secs(1);

/// What the queue's use-cases use.
#[derive(Clone)]
pub struct Ports {
    pub queue: Arc<dyn AdmissionQueue>,
    pub layouts: Arc<Layouts>,
    pub keys: Arc<AdmissionKeys>,
    pub gate: Gate,
    pub news: Arc<News>,
}

impl Ports {
    pub fn new(queue: Arc<dyn AdmissionQueue>, layouts: Arc<Layouts>, jwt_secret: &str) -> Self {
        let keys = Arc::new(AdmissionKeys::new(jwt_secret));
        Self {
            gate: Gate::new(queue.clone(), keys.clone()),
            news: Arc::new(News::new(queue.clone())),
            queue,
            layouts,
            keys,
        }
    }
}

/// An organizer's queue, as asked for (checked by [`configure`]).
#[derive(Debug, Clone)]
pub struct QueueRequest {
    pub opens_at_ms: i64,
    /// `None`: [`default_rate_per_minute`] of the event's size.
    pub rate_per_minute: Option<u32>,
    /// `None`: [`DEFAULT_WINDOW`].
    pub window: Option<Duration>,
    pub early_joining: bool,
    pub proof_bits: u8,
}

/// A signed admission and its expiry.
#[derive(Debug, Clone)]
pub struct Pass {
    pub token: String,
    pub expires_at_ms: i64,
}

/// 403 unless `caller` runs the event; the event's capacity (for the default rate).
async fn check_organizer(
    ports: &Ports,
    caller: &AuthUser,
    event_id: &EventId,
) -> Result<usize, OrdersError> {
    let layout = ports.layouts.existing(event_id).await?;
    if !runs_event(caller, Some(&layout)) {
        return Err(OrdersError::NotOrganizer);
    }
    Ok(layout.capacity())
}

/// Turns the event's queue on, or changes it before it opens (409 `QUEUE_OPEN` after).
pub async fn configure(
    ports: &Ports,
    caller: &AuthUser,
    event_id: &EventId,
    request: &QueueRequest,
) -> Result<Overview, OrdersError> {
    let capacity = check_organizer(ports, caller, event_id).await?;
    let settings = QueueSettings {
        opens_at_ms: request.opens_at_ms,
        rate_per_minute: request
            .rate_per_minute
            .unwrap_or_else(|| default_rate_per_minute(capacity)),
        window: request.window.unwrap_or(DEFAULT_WINDOW),
        early_joining: request.early_joining,
        proof_bits: request.proof_bits.min(MAX_PROOF_BITS),
    };
    if ports.queue.configure(event_id, &settings).await? == Configured::AlreadyOpen {
        return Err(OrdersError::QueueOpen);
    }
    ports.gate.learn(event_id, Some(settings));
    overview(ports, event_id, true).await
}

/// Changes the rate (which also resumes a paused queue) or pauses admission; the people in
/// stay in.
pub async fn change_pace(
    ports: &Ports,
    caller: &AuthUser,
    event_id: &EventId,
    rate_per_minute: Option<u32>,
    paused: bool,
) -> Result<Overview, OrdersError> {
    check_organizer(ports, caller, event_id).await?;
    let (settings, _) = ports
        .queue
        .settings(event_id)
        .await?
        .ok_or(OrdersError::NoQueue)?;
    let rate = if paused {
        0
    } else {
        rate_per_minute.unwrap_or(settings.rate_per_minute)
    };
    ports
        .queue
        .change_rate(event_id, rate)
        .await?
        .ok_or(OrdersError::NoQueue)?;
    overview(ports, event_id, true).await
}

/// Turns the event's queue off: its line and admissions are forgotten, and holds no longer
/// need an admission.
pub async fn remove(
    ports: &Ports,
    caller: &AuthUser,
    event_id: &EventId,
) -> Result<(), OrdersError> {
    check_organizer(ports, caller, event_id).await?;
    ports.queue.remove(event_id).await?;
    ports.gate.learn(event_id, None);
    Ok(())
}

/// The event's queue as a whole (404 `NOT_FOUND` without one); `count_shopping` for the
/// organizer's figures.
pub async fn overview(
    ports: &Ports,
    event_id: &EventId,
    count_shopping: bool,
) -> Result<Overview, OrdersError> {
    ports
        .queue
        .overview(event_id, count_shopping)
        .await?
        .ok_or(OrdersError::NoQueue)
}

/// The organizer's figures of the event's queue, if it has one (for the sales view).
pub async fn figures(ports: &Ports, event_id: &EventId) -> Result<Option<Overview>, KvError> {
    ports.queue.overview(event_id, true).await
}

/// Puts `caller` in the event's line (joining again keeps the place); where they stand and
/// whether they are new. A queue that asks for a proof of work refuses a join without one
/// (403 `PROOF_REQUIRED`).
pub async fn join(
    ports: &Ports,
    caller: &AuthUser,
    event_id: &EventId,
    proof: Option<&str>,
) -> Result<(Standing, bool), OrdersError> {
    let settings = ports
        .gate
        .settings(event_id)
        .await?
        .ok_or(OrdersError::NoQueue)?;
    let proven =
        proof.is_some_and(|nonce| proof_holds(event_id, caller.id(), nonce, settings.proof_bits));
    if settings.proof_bits > 0 && !proven {
        return Err(OrdersError::ProofRequired(settings.proof_bits));
    }
    let draw = random_draw().map_err(|e| KvError::Backend(format!("no random draw: {e}")))?;
    let new = match ports.queue.join(event_id, caller.id(), draw).await? {
        Joined::InLine { new } => new,
        Joined::NotOpenYet => return Err(OrdersError::QueueNotOpen(settings.opens_at_ms)),
        Joined::NoQueue => return Err(OrdersError::NoQueue),
    };
    Ok((standing(ports, caller, event_id).await?, new))
}

/// Where `caller` stands in the event's line (404 when there is no queue or they are not in
/// it).
pub async fn standing(
    ports: &Ports,
    caller: &AuthUser,
    event_id: &EventId,
) -> Result<Standing, OrdersError> {
    let standing = ports
        .queue
        .standing(event_id, caller.id())
        .await?
        .ok_or(OrdersError::NoQueue)?;
    if !standing.in_line {
        return Err(OrdersError::NotInQueue);
    }
    Ok(standing)
}

/// Takes `caller` out of the line (409 `ALREADY_ADMITTED` once admitted: the admission is
/// theirs until it expires).
pub async fn leave(
    ports: &Ports,
    caller: &AuthUser,
    event_id: &EventId,
) -> Result<(), OrdersError> {
    if ports.queue.leave(event_id, caller.id()).await? {
        return Ok(());
    }
    let standing = standing(ports, caller, event_id).await?;
    match standing.admission_expires_at_ms {
        Some(_) => Err(OrdersError::AlreadyAdmitted),
        // Gone between the two reads.
        None => Err(OrdersError::NotInQueue),
    }
}

/// `caller`'s signed admission to the event, once their place is in: the same expiry every
/// time it is asked for, never renewed.
pub async fn admit(
    ports: &Ports,
    caller: &AuthUser,
    event_id: &EventId,
) -> Result<Pass, OrdersError> {
    match ports.queue.admit(event_id, caller.id()).await? {
        Admit::Admitted { expires_at_ms } => {
            let token = ports
                .keys
                .sign(caller.id(), event_id, expires_at_ms)
                .map_err(|e| KvError::Backend(e.to_string()))?;
            Ok(Pass {
                token,
                expires_at_ms,
            })
        }
        Admit::Expired { expired_at_ms } => Err(OrdersError::AdmissionExpired(expired_at_ms)),
        Admit::Waiting { place, .. } => {
            let estimate = match place {
                Some(place) => {
                    let (_, pace) = ports
                        .queue
                        .settings(event_id)
                        .await?
                        .ok_or(OrdersError::NoQueue)?;
                    pace.admitted_at(place)
                }
                None => None,
            };
            Err(OrdersError::NotAdmittedYet { place, estimate })
        }
        Admit::NotInLine => Err(OrdersError::NotInQueue),
        Admit::NoQueue => Err(OrdersError::NoQueue),
    }
}

/// Keeps buyers without a valid admission off the holds and purchases of a queued event.
///
/// Whether an event has a queue is read from the store at most once per
/// [`QUEUE_SWITCH_FRESH`] per replica (an on-sale asks it for every hold); the admission itself
/// is checked by its signature alone.
#[derive(Clone)]
pub struct Gate {
    queue: Arc<dyn AdmissionQueue>,
    keys: Arc<AdmissionKeys>,
    known: Arc<Mutex<HashMap<EventId, Known>>>,
}

#[derive(Clone)]
struct Known {
    settings: Option<QueueSettings>,
    read_at: Instant,
}

/// Past this many events, what is no longer fresh is forgotten.
const MAX_KNOWN: usize = 10_000;

impl Gate {
    pub fn new(queue: Arc<dyn AdmissionQueue>, keys: Arc<AdmissionKeys>) -> Self {
        Self {
            queue,
            keys,
            known: Arc::default(),
        }
    }

    /// The event's queue settings (`None`: no queue), as read within [`QUEUE_SWITCH_FRESH`].
    pub async fn settings(&self, event_id: &EventId) -> Result<Option<QueueSettings>, KvError> {
        if let Some(known) = lock(&self.known).get(event_id)
            && known.read_at.elapsed() < QUEUE_SWITCH_FRESH
        {
            return Ok(known.settings.clone());
        }
        let settings = self
            .queue
            .settings(event_id)
            .await?
            .map(|(settings, _)| settings);
        self.learn(event_id, settings.clone());
        Ok(settings)
    }

    /// Remembers what this replica just wrote.
    pub fn learn(&self, event_id: &EventId, settings: Option<QueueSettings>) {
        let mut known = lock(&self.known);
        if known.len() >= MAX_KNOWN {
            known.retain(|_, k| k.read_at.elapsed() < QUEUE_SWITCH_FRESH);
        }
        known.insert(
            event_id.clone(),
            Known {
                settings,
                read_at: Instant::now(),
            },
        );
    }

    /// Lets `user_id` go on with `hold` (keep it longer, buy it): as [`Gate::check`] on its
    /// event, except for a waitlist offer, whose buyer the waitlist chose.
    pub async fn check_hold(
        &self,
        user_id: &str,
        hold: &crate::domain::hold::Hold,
        pass: Option<&str>,
    ) -> Result<(), OrdersError> {
        if hold.offer {
            return Ok(());
        }
        self.check(user_id, &hold.event_id, pass).await
    }

    /// Lets `user_id` hold or buy on the event: always without a queue; with one, only with
    /// `pass`, their unexpired admission to it (403 `ADMISSION_REQUIRED` or
    /// `ADMISSION_EXPIRED`).
    pub async fn check(
        &self,
        user_id: &str,
        event_id: &EventId,
        pass: Option<&str>,
    ) -> Result<(), OrdersError> {
        if self.settings(event_id).await?.is_none() {
            return Ok(());
        }
        let Some(pass) = pass else {
            return Err(OrdersError::AdmissionRequired(
                "this event sells through a queue: join it, and send the admission you are given in the Admission-Pass header",
            ));
        };
        match self.keys.check(pass, user_id, event_id, now_millis()) {
            Ok(_) => Ok(()),
            Err(PassError::Expired(expired_at)) => Err(OrdersError::AdmissionExpired(expired_at)),
            Err(PassError::Invalid | PassError::Signing) => Err(OrdersError::AdmissionRequired(
                "the Admission-Pass is not a valid admission to this event for you",
            )),
        }
    }
}

/// What every watcher of a queue is told: the places in, the length and the pace.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueueNews {
    pub admitted_up_to: u64,
    pub length: u64,
    pub rate_per_minute: u32,
    pub paused: bool,
    pub opens_at_ms: i64,
    pub now_ms: i64,
}

impl QueueNews {
    pub fn of(overview: &Overview) -> Self {
        Self {
            admitted_up_to: overview.admitted_by,
            length: overview.length,
            rate_per_minute: overview.settings.rate_per_minute,
            paused: overview.pace.rate_per_minute == 0,
            opens_at_ms: overview.settings.opens_at_ms,
            now_ms: overview.now_ms,
        }
    }

    /// What watchers are told of (the time aside).
    pub fn shown(&self) -> (u64, u64, u32, bool, i64) {
        (
            self.admitted_up_to,
            self.length,
            self.rate_per_minute,
            self.paused,
            self.opens_at_ms,
        )
    }
}

/// One broadcast per watched queue: a task per event reads its overview every
/// [`NEWS_INTERVAL`] and sends it to every watcher at once, so a queue costs one read a
/// second per replica however many people watch it; each client turns "admitted up to N"
/// into its own position. The task ends with its last watcher.
pub struct News {
    queue: Arc<dyn AdmissionQueue>,
    channels: Mutex<HashMap<EventId, watch::Sender<Option<QueueNews>>>>,
}

impl News {
    pub fn new(queue: Arc<dyn AdmissionQueue>) -> Self {
        Self {
            queue,
            channels: Mutex::default(),
        }
    }

    /// Watches the event's queue; the first value arrives within one read.
    pub fn watch(self: &Arc<Self>, event_id: &EventId) -> watch::Receiver<Option<QueueNews>> {
        let mut channels = lock(&self.channels);
        if let Some(sender) = channels.get(event_id) {
            return sender.subscribe();
        }
        let (sender, receiver) = watch::channel(None);
        channels.insert(event_id.clone(), sender.clone());
        let news = self.clone();
        let event_id = event_id.clone();
        tokio::spawn(async move { news.follow(event_id, sender).await });
        receiver
    }

    async fn follow(&self, event_id: EventId, sender: watch::Sender<Option<QueueNews>>) {
        let mut tick = tokio::time::interval(NEWS_INTERVAL);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            {
                let mut channels = lock(&self.channels);
                if sender.receiver_count() == 0 {
                    channels.remove(&event_id);
                    return;
                }
            }
            match self.queue.overview(&event_id, false).await {
                Ok(overview) => {
                    let news = overview.as_ref().map(QueueNews::of);
                    // Watchers hear only of changes (the stream's heartbeat covers the rest).
                    sender.send_if_modified(|old| {
                        let changed = old.as_ref().map(QueueNews::shown)
                            != news.as_ref().map(QueueNews::shown);
                        *old = news;
                        changed
                    });
                }
                Err(error) => tracing::warn!(%error, %event_id, "queue news not read"),
            }
        }
    }
}
