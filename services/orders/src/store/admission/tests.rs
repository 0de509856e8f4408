//! The admission queue's rules on every adapter: the shuffle at the opening, first come first
//! served after it, admission by place at the pace (paused and changed), one admission per
//! person that expires and is not renewed, leaving — and, on Redis, two processes admitting
//! from one line.

use std::sync::Arc;
use std::time::Duration;

use holdfast_common::testing::{redis_store, unique_name};

use super::*;
use crate::domain::now_millis;

fn event() -> EventId {
    EventId::from(format!("{:024x}", fastrand::u64(..) >> 8).as_str())
}

fn settings(opens_in_ms: i64, rate_per_minute: u32, early_joining: bool) -> QueueSettings {
    QueueSettings {
        opens_at_ms: now_millis() + opens_in_ms,
        rate_per_minute,
        window: Duration::from_secs(600),
        early_joining,
        proof_bits: 5,
    }
}

async fn until_open(settings: &QueueSettings) {
    let wait = settings.opens_at_ms + 20 - now_millis();
    if wait > 0 {
        tokio::time::sleep(Duration::from_millis(wait.unsigned_abs())).await;
    }
}

async fn place(queue: &dyn AdmissionQueue, event: &EventId, user: &str) -> Option<u64> {
    queue.standing(event, user).await.unwrap().unwrap().place
}

/// Kendall's tau between two rankings of the same items (1: the same order, 0: unrelated).
fn kendall_tau(a: &[u64], b: &[u64]) -> f64 {
    let mut score = 0i64;
    for i in 0..a.len() {
        for j in i + 1..a.len() {
            let same = (a[i] < a[j]) == (b[i] < b[j]);
            score += if same { 1 } else { -1 };
        }
    }
    let pairs = (a.len() * (a.len() - 1) / 2) as f64;
    score as f64 / pairs
}

async fn early_joiners_are_shuffled_at_the_opening_and_late_ones_follow_in_order(
    queue: Arc<dyn AdmissionQueue>,
) {
    let event = event();
    let settings = settings(3_000, 600, true);
    assert_eq!(
        queue.configure(&event, &settings).await.unwrap(),
        Configured::Done
    );
    let early: Vec<String> = (0..200).map(|n| format!("early{n:03}")).collect();
    for user in &early {
        let draw = random_draw().unwrap();
        let joined = queue.join(&event, user, draw).await.unwrap();
        assert_eq!(joined, Joined::InLine { new: true });
    }
    // Before the opening nobody has a place yet, and joining again changes nothing.
    let standing = queue.standing(&event, &early[0]).await.unwrap().unwrap();
    assert_eq!(
        (standing.place, standing.in_line, standing.length),
        (None, true, 200)
    );
    let again = queue.join(&event, &early[0], 0).await.unwrap();
    assert_eq!(again, Joined::InLine { new: false });
    until_open(&settings).await;
    let late: Vec<String> = (0..40).map(|n| format!("late{n:02}")).collect();
    for user in &late {
        queue.join(&event, user, 0).await.unwrap();
    }
    let mut early_places = Vec::new();
    for user in &early {
        early_places.push(place(queue.as_ref(), &event, user).await.unwrap());
    }
    let mut sorted = early_places.clone();
    sorted.sort_unstable();
    assert_eq!(
        sorted,
        (1..=200).collect::<Vec<u64>>(),
        "the early joiners come first"
    );
    let arrival: Vec<u64> = (1..=200).collect();
    let tau = kendall_tau(&arrival, &early_places);
    // A uniform shuffle of 200 has tau ≈ 0 with a standard deviation of about 0.05.
    assert!(tau.abs() < 0.25, "early places follow arrival: tau {tau}");
    let mut late_places = Vec::new();
    for user in &late {
        late_places.push(place(queue.as_ref(), &event, user).await.unwrap());
    }
    assert_eq!(
        late_places,
        (201..=240).collect::<Vec<u64>>(),
        "first come first served"
    );
}

/// An event whose `count` early joiners `u00`, `u01`… are placed in that order, with
/// admission paused, once open.
async fn paused_line(queue: &dyn AdmissionQueue, count: u64) -> (EventId, QueueSettings) {
    let event = event();
    let settings = settings(300, 6_000, true);
    queue.configure(&event, &settings).await.unwrap();
    for n in 0..count {
        queue.join(&event, &format!("u{n:02}"), n).await.unwrap();
    }
    queue.change_rate(&event, 0).await.unwrap();
    until_open(&settings).await;
    (event, settings)
}

async fn admission_follows_the_place_at_the_pace_paused_and_changed(
    queue: Arc<dyn AdmissionQueue>,
) {
    let (event, _) = paused_line(queue.as_ref(), 40).await;
    let admit = queue.admit(&event, "u00").await.unwrap();
    assert_eq!(
        admit,
        Admit::Waiting {
            place: Some(1),
            admitted_by: 0
        },
        "paused before the opening: nobody is in"
    );
    // 100 a second for a moment, then paused again.
    queue.change_rate(&event, 6_000).await.unwrap();
    tokio::time::sleep(Duration::from_millis(35)).await;
    let pace = queue.change_rate(&event, 0).await.unwrap().unwrap();
    let admitted = pace.base_admitted;
    assert!((1..40).contains(&admitted), "admitted {admitted}");
    tokio::time::sleep(Duration::from_millis(30)).await;
    let standing = queue.standing(&event, "u00").await.unwrap().unwrap();
    assert_eq!(standing.admitted_by, admitted, "nobody more while paused");
    for n in 0..40u64 {
        let answer = queue.admit(&event, &format!("u{n:02}")).await.unwrap();
        if n < admitted {
            assert!(
                matches!(answer, Admit::Admitted { .. }),
                "u{n:02}: {answer:?}"
            );
        } else {
            assert_eq!(
                answer,
                Admit::Waiting {
                    place: Some(n + 1),
                    admitted_by: admitted
                }
            );
        }
    }
    let overview = queue.overview(&event, true).await.unwrap().unwrap();
    assert_eq!(
        (overview.length, overview.admitted_by, overview.admissions),
        (40, admitted, admitted)
    );
    assert_eq!(
        overview.shopping,
        Some(admitted),
        "every admission is fresh"
    );
    assert_eq!(overview.pace.rate_per_minute, 0, "paused");
    assert_eq!(
        overview.settings.rate_per_minute, 6_000,
        "a pause keeps the rate to resume at"
    );
    // A faster rate lets the rest in, and is the rate from now on.
    queue.change_rate(&event, 600_000).await.unwrap();
    tokio::time::sleep(Duration::from_millis(20)).await;
    let last = queue.admit(&event, "u39").await.unwrap();
    assert!(matches!(last, Admit::Admitted { .. }), "{last:?}");
    let overview = queue.overview(&event, false).await.unwrap().unwrap();
    assert_eq!(overview.settings.rate_per_minute, 600_000);
    assert_eq!(overview.shopping, None, "not counted unless asked");
}

async fn an_admission_is_given_once_expires_and_is_not_renewed_by_joining_again(
    queue: Arc<dyn AdmissionQueue>,
) {
    let event = event();
    let mut settings = settings(100, 600_000, false);
    settings.window = Duration::from_millis(1_000);
    queue.configure(&event, &settings).await.unwrap();
    assert_eq!(
        queue.join(&event, "u", 0).await.unwrap(),
        Joined::NotOpenYet
    );
    until_open(&settings).await;
    queue.join(&event, "u", 0).await.unwrap();
    tokio::time::sleep(Duration::from_millis(10)).await;
    let Admit::Admitted { expires_at_ms } = queue.admit(&event, "u").await.unwrap() else {
        panic!("not admitted");
    };
    let again = queue.admit(&event, "u").await.unwrap();
    assert_eq!(
        again,
        Admit::Admitted { expires_at_ms },
        "the same admission"
    );
    assert!(
        !queue.leave(&event, "u").await.unwrap(),
        "an admitted buyer keeps the place"
    );
    tokio::time::sleep(Duration::from_millis(1_100)).await;
    let expired = Admit::Expired {
        expired_at_ms: expires_at_ms,
    };
    assert_eq!(queue.admit(&event, "u").await.unwrap(), expired);
    assert_eq!(
        queue.join(&event, "u", 0).await.unwrap(),
        Joined::InLine { new: false }
    );
    assert_eq!(queue.admit(&event, "u").await.unwrap(), expired);
}

async fn leaving_gives_the_place_up(queue: Arc<dyn AdmissionQueue>) {
    let (event, _) = paused_line(queue.as_ref(), 5).await;
    assert_eq!(place(queue.as_ref(), &event, "u03").await, Some(4));
    assert!(queue.leave(&event, "u01").await.unwrap());
    assert!(!queue.leave(&event, "u01").await.unwrap());
    assert_eq!(place(queue.as_ref(), &event, "u03").await, Some(3));
    let standing = queue.standing(&event, "u01").await.unwrap().unwrap();
    assert_eq!(
        (standing.in_line, standing.place, standing.length),
        (false, None, 4)
    );
    assert_eq!(queue.admit(&event, "u01").await.unwrap(), Admit::NotInLine);
}

async fn without_a_queue_or_once_open(queue: Arc<dyn AdmissionQueue>) {
    let event = event();
    assert_eq!(queue.join(&event, "u", 0).await.unwrap(), Joined::NoQueue);
    assert_eq!(queue.admit(&event, "u").await.unwrap(), Admit::NoQueue);
    assert_eq!(queue.standing(&event, "u").await.unwrap(), None);
    let settings = settings(-1_000, 600, true);
    assert_eq!(
        queue.configure(&event, &settings).await.unwrap(),
        Configured::Done
    );
    let (stored, pace) = queue.settings(&event).await.unwrap().unwrap();
    assert_eq!((stored, pace), (settings.clone(), Pace::opening(&settings)));
    assert_eq!(
        queue.configure(&event, &settings).await.unwrap(),
        Configured::AlreadyOpen
    );
    queue.remove(&event).await.unwrap();
    assert_eq!(queue.settings(&event).await.unwrap(), None);
}

/// Two orders processes on one Redis admit from one line: each place is in on both or on
/// neither, and a buyer asking both gets one admission.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_processes_admit_from_one_line_in_its_order() {
    let prefix = format!("{}:", unique_name("admission"));
    let (Some(one), Some(other)) = (
        redis_store("REDIS_URL", &prefix).await,
        redis_store("REDIS_URL", &prefix).await,
    ) else {
        return;
    };
    let (one, other) = (
        Arc::new(RedisAdmission::new(one)),
        Arc::new(RedisAdmission::new(other)),
    );
    let (event, _) = paused_line(one.as_ref(), 40).await;
    one.change_rate(&event, 6_000).await.unwrap();
    tokio::time::sleep(Duration::from_millis(35)).await;
    let admitted = other
        .change_rate(&event, 0)
        .await
        .unwrap()
        .unwrap()
        .base_admitted;
    let asks: Vec<_> = (0..80u64)
        .map(|n| {
            let queue = if n % 2 == 0 {
                one.clone()
            } else {
                other.clone()
            };
            let event = event.clone();
            tokio::spawn(async move {
                let user = format!("u{:02}", n / 2);
                (n / 2, queue.admit(&event, &user).await.unwrap())
            })
        })
        .collect();
    let mut answers: std::collections::HashMap<u64, Vec<Admit>> = Default::default();
    for ask in asks {
        let (n, answer) = ask.await.unwrap();
        answers.entry(n).or_default().push(answer);
    }
    for (n, both) in answers {
        assert_eq!(both[0], both[1], "u{n:02} answered differently");
        assert_eq!(
            matches!(both[0], Admit::Admitted { .. }),
            n < admitted,
            "u{n:02} with {admitted} in"
        );
    }
}

async fn memory() -> Option<Arc<dyn AdmissionQueue>> {
    Some(Arc::new(MemoryAdmission::new()))
}

async fn redis_at(var: &str) -> Option<Arc<dyn AdmissionQueue>> {
    let prefix = format!("{}:", unique_name("admission"));
    let store = redis_store(var, &prefix).await?;
    Some(Arc::new(RedisAdmission::new(store)))
}

macro_rules! admission_suite {
    ($adapter:ident, $make:expr) => {
        mod $adapter {
            use super::*;

            #[tokio::test]
            async fn early_joiners_are_shuffled_at_the_opening_and_late_ones_follow_in_order() {
                if let Some(queue) = $make.await {
                    super::early_joiners_are_shuffled_at_the_opening_and_late_ones_follow_in_order(
                        queue,
                    )
                    .await
                }
            }
            #[tokio::test]
            async fn admission_follows_the_place_at_the_pace_paused_and_changed() {
                if let Some(queue) = $make.await {
                    super::admission_follows_the_place_at_the_pace_paused_and_changed(queue).await
                }
            }
            #[tokio::test]
            async fn an_admission_is_given_once_expires_and_is_not_renewed_by_joining_again() {
                if let Some(queue) = $make.await {
                    super::an_admission_is_given_once_expires_and_is_not_renewed_by_joining_again(
                        queue,
                    )
                    .await
                }
            }
            #[tokio::test]
            async fn leaving_gives_the_place_up() {
                if let Some(queue) = $make.await {
                    super::leaving_gives_the_place_up(queue).await
                }
            }
            #[tokio::test]
            async fn without_a_queue_or_once_open() {
                if let Some(queue) = $make.await {
                    super::without_a_queue_or_once_open(queue).await
                }
            }
        }
    };
}

admission_suite!(memory_adapter, memory());
admission_suite!(redis_adapter, redis_at("REDIS_URL"));
admission_suite!(redis_cluster_adapter, redis_at("REDIS_CLUSTER_URLS"));
