//! The contract every [`TtlStore`] adapter must meet, run once per adapter.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use super::*;
use crate::testing::{redis_store as redis_store_at, unique_name};

const MINUTE: Duration = Duration::from_secs(60);

fn keys(names: &[&str]) -> Vec<String> {
    names.iter().map(|n| format!("seat:{{t}}:{n}")).collect()
}

async fn set_get_delete(store: &dyn TtlStore) {
    assert_eq!(store.get("k").await.unwrap(), None);
    store.set("k", "v1", MINUTE).await.unwrap();
    assert_eq!(store.get("k").await.unwrap().as_deref(), Some("v1"));
    store.set("k", "v2", MINUTE).await.unwrap();
    assert_eq!(store.get("k").await.unwrap().as_deref(), Some("v2"));
    assert!(store.delete("k").await.unwrap());
    assert!(!store.delete("k").await.unwrap());
    assert_eq!(store.get("k").await.unwrap(), None);
}

async fn get_many_answers_in_order(store: &dyn TtlStore) {
    let ks = keys(&["a", "b", "c"]);
    store.set(&ks[0], "1", MINUTE).await.unwrap();
    store.set(&ks[2], "3", MINUTE).await.unwrap();
    let values = store.get_many(&ks).await.unwrap();
    assert_eq!(values, vec![Some("1".into()), None, Some("3".into())]);
    assert_eq!(
        store.get_many(&[]).await.unwrap(),
        Vec::<Option<String>>::new()
    );
    assert_eq!(store.get_many(&ks[1..2]).await.unwrap(), vec![None]);
}

/// Keys of different hash tags (a user's holds of several events) live on different nodes of
/// a cluster; one call still answers them all, in order.
async fn get_many_spans_hash_tags(store: &dyn TtlStore) {
    let ks: Vec<String> = (0..24).map(|n| format!("record:{{e{n}}}")).collect();
    for (n, key) in ks.iter().enumerate().filter(|(n, _)| n % 3 != 1) {
        store.set(key, &n.to_string(), MINUTE).await.unwrap();
    }
    let expected: Vec<Option<String>> = (0..24)
        .map(|n| (n % 3 != 1).then(|| n.to_string()))
        .collect();
    assert_eq!(store.get_many(&ks).await.unwrap(), expected);
}

async fn set_if_absent_sets_once(store: &dyn TtlStore) {
    assert!(store.set_if_absent("once", "first", MINUTE).await.unwrap());
    assert!(!store.set_if_absent("once", "second", MINUTE).await.unwrap());
    assert_eq!(store.get("once").await.unwrap().as_deref(), Some("first"));
}

async fn set_all_if_absent_is_all_or_nothing(store: &dyn TtlStore) {
    let first = keys(&["1", "2", "3"]);
    assert_eq!(
        store
            .set_all_if_absent(&first, "hold-a", MINUTE)
            .await
            .unwrap(),
        AllOrNothing::Taken
    );
    // Overlaps on 3 and 2: nothing of this request may be set, and both conflicts are named.
    let second = keys(&["4", "3", "5", "2"]);
    let outcome = store
        .set_all_if_absent(&second, "hold-b", MINUTE)
        .await
        .unwrap();
    assert_eq!(outcome, AllOrNothing::Conflicts(keys(&["3", "2"])));
    let after = store.get_many(&keys(&["2", "3", "4", "5"])).await.unwrap();
    assert_eq!(
        after,
        vec![Some("hold-a".into()), Some("hold-a".into()), None, None]
    );
}

async fn keys_expire_after_their_ttl(store: &dyn TtlStore) {
    store
        .set("short", "v", Duration::from_millis(300))
        .await
        .unwrap();
    let ttl = store.ttl("short").await.unwrap().expect("key exists");
    assert!(
        ttl <= Duration::from_millis(300) && ttl > Duration::ZERO,
        "{ttl:?}"
    );
    tokio::time::sleep(Duration::from_millis(700)).await;
    assert_eq!(store.get("short").await.unwrap(), None);
    assert_eq!(store.ttl("short").await.unwrap(), None);
    // An expired key no longer blocks an atomic take.
    assert!(store.set_if_absent("short", "again", MINUTE).await.unwrap());
}

async fn expire_changes_the_ttl_of_existing_keys_only(store: &dyn TtlStore) {
    store
        .set("e", "v", Duration::from_millis(300))
        .await
        .unwrap();
    assert!(store.expire("e", MINUTE).await.unwrap());
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(store.get("e").await.unwrap().as_deref(), Some("v"));
    assert!(store.ttl("e").await.unwrap().unwrap() > Duration::from_secs(50));
    assert!(!store.expire("missing", MINUTE).await.unwrap());
}

async fn extend_all_needs_every_key_with_the_value(store: &dyn TtlStore) {
    let ours = keys(&["x1", "x2"]);
    store
        .set_all_if_absent(&ours, "h1", Duration::from_secs(5))
        .await
        .unwrap();
    assert!(
        store
            .extend_all_if_value(&ours, "h1", MINUTE)
            .await
            .unwrap()
    );
    for key in &ours {
        assert!(store.ttl(key).await.unwrap().unwrap() > Duration::from_secs(50));
    }
    // One key now belongs to someone else: nothing is extended.
    store
        .set(&ours[1], "h2", Duration::from_secs(5))
        .await
        .unwrap();
    assert!(
        !store
            .extend_all_if_value(&ours, "h1", Duration::from_secs(600))
            .await
            .unwrap()
    );
    assert!(store.ttl(&ours[0]).await.unwrap().unwrap() <= MINUTE);
    assert!(store.ttl(&ours[1]).await.unwrap().unwrap() <= Duration::from_secs(5));
    // A missing key also refuses the extension.
    let with_missing = keys(&["x1", "x-missing"]);
    assert!(
        !store
            .extend_all_if_value(&with_missing, "h1", MINUTE)
            .await
            .unwrap()
    );
}

async fn delete_if_value_spares_other_owners(store: &dyn TtlStore) {
    let ks = keys(&["d1", "d2", "d3"]);
    store.set(&ks[0], "mine", MINUTE).await.unwrap();
    store.set(&ks[1], "theirs", MINUTE).await.unwrap();
    assert_eq!(store.delete_if_value(&ks, "mine").await.unwrap(), 1);
    assert_eq!(store.get(&ks[0]).await.unwrap(), None);
    assert_eq!(store.get(&ks[1]).await.unwrap().as_deref(), Some("theirs"));
}

async fn increment_counts_and_keeps_the_first_ttl(store: &dyn TtlStore) {
    assert_eq!(
        store
            .increment("n", 1, Duration::from_secs(30))
            .await
            .unwrap(),
        1
    );
    assert_eq!(
        store
            .increment("n", 5, Duration::from_secs(300))
            .await
            .unwrap(),
        6
    );
    assert_eq!(store.increment("n", -2, MINUTE).await.unwrap(), 4);
    let ttl = store.ttl("n").await.unwrap().unwrap();
    assert!(
        ttl <= Duration::from_secs(30),
        "the later TTLs must not apply: {ttl:?}"
    );
    store.set("text", "abc", MINUTE).await.unwrap();
    assert!(store.increment("text", 1, MINUTE).await.is_err());
}

async fn compare_and_set_needs_the_expected_value(store: &dyn TtlStore) {
    assert!(store.compare_and_set("c", None, "a", MINUTE).await.unwrap());
    assert!(!store.compare_and_set("c", None, "b", MINUTE).await.unwrap());
    assert!(
        !store
            .compare_and_set("c", Some("x"), "b", MINUTE)
            .await
            .unwrap()
    );
    assert!(
        store
            .compare_and_set("c", Some("a"), "b", Duration::from_secs(5))
            .await
            .unwrap()
    );
    assert_eq!(store.get("c").await.unwrap().as_deref(), Some("b"));
    assert!(store.ttl("c").await.unwrap().unwrap() <= Duration::from_secs(5));
}

async fn an_index_lists_members_until_their_instant(store: &dyn TtlStore) {
    let now = 1_000_000;
    store
        .index_add("ix", "a", now + 10, now, MINUTE)
        .await
        .unwrap();
    store
        .index_add("ix", "b", now + 20, now, MINUTE)
        .await
        .unwrap();
    let mut members = store.index_members("ix", now).await.unwrap();
    members.sort();
    assert_eq!(members, ["a", "b"]);
    assert_eq!(store.index_members("ix", now + 15).await.unwrap(), ["b"]);
    // Adding again moves the instant; adding later forgets what ended before.
    store
        .index_add("ix", "a", now + 30, now + 25, MINUTE)
        .await
        .unwrap();
    assert_eq!(store.index_members("ix", now + 25).await.unwrap(), ["a"]);
    assert!(store.index_members("none", now).await.unwrap().is_empty());
    assert!(store.ttl("ix").await.unwrap().unwrap() <= MINUTE);
}

/// 30 writers append to one list at once through [`super::update`]: none is lost.
async fn concurrent_updates_lose_nothing(store: Arc<dyn TtlStore>) {
    let tasks = (0..30).map(|n| {
        let store = store.clone();
        tokio::spawn(async move {
            super::update(&*store, "list", |current| {
                let mut items: Vec<u32> = current
                    .and_then(|c| serde_json::from_str(c).ok())
                    .unwrap_or_default();
                items.push(n);
                (Some((serde_json::to_string(&items).unwrap(), MINUTE)), ())
            })
            .await
            .unwrap()
        })
    });
    futures_util::future::join_all(tasks).await;
    let mut items: Vec<u32> =
        serde_json::from_str(&store.get("list").await.unwrap().unwrap()).unwrap();
    items.sort_unstable();
    assert_eq!(items, (0..30).collect::<Vec<_>>());
}

/// 40 takers race for overlapping pairs of 12 keys: no key may end up promised to two takers.
async fn concurrent_takes_never_share_a_key(store: Arc<dyn TtlStore>) {
    let names: Vec<String> = (0..12).map(|i| i.to_string()).collect();
    let mut tasks = Vec::new();
    for taker in 0..40 {
        let store = store.clone();
        let wanted = keys(&[&names[taker % 12], &names[(taker * 7 + 1) % 12]]);
        tasks.push(tokio::spawn(async move {
            let owner = format!("taker-{taker}");
            let outcome = store
                .set_all_if_absent(&wanted, &owner, MINUTE)
                .await
                .unwrap();
            (owner, wanted, outcome)
        }));
    }
    let mut claimed = HashSet::new();
    for task in tasks {
        let (owner, wanted, outcome) = task.await.unwrap();
        if outcome == AllOrNothing::Taken {
            for key in wanted {
                assert_eq!(
                    store.get(&key).await.unwrap().as_deref(),
                    Some(owner.as_str())
                );
                assert!(claimed.insert(key.clone()), "{key} was taken twice");
            }
        }
    }
    assert!(!claimed.is_empty());
}

macro_rules! contract_suite {
    ($adapter:ident, $make:expr) => {
        mod $adapter {
            use super::*;

            async fn store() -> Option<Arc<dyn TtlStore>> {
                $make.await
            }

            #[tokio::test]
            async fn set_get_delete() {
                if let Some(s) = store().await {
                    super::set_get_delete(&*s).await
                }
            }
            #[tokio::test]
            async fn get_many_answers_in_order() {
                if let Some(s) = store().await {
                    super::get_many_answers_in_order(&*s).await
                }
            }
            #[tokio::test]
            async fn get_many_spans_hash_tags() {
                if let Some(s) = store().await {
                    super::get_many_spans_hash_tags(&*s).await
                }
            }

            #[tokio::test]
            async fn set_if_absent_sets_once() {
                if let Some(s) = store().await {
                    super::set_if_absent_sets_once(&*s).await
                }
            }
            #[tokio::test]
            async fn set_all_if_absent_is_all_or_nothing() {
                if let Some(s) = store().await {
                    super::set_all_if_absent_is_all_or_nothing(&*s).await
                }
            }
            #[tokio::test]
            async fn keys_expire_after_their_ttl() {
                if let Some(s) = store().await {
                    super::keys_expire_after_their_ttl(&*s).await
                }
            }
            #[tokio::test]
            async fn expire_changes_the_ttl_of_existing_keys_only() {
                if let Some(s) = store().await {
                    super::expire_changes_the_ttl_of_existing_keys_only(&*s).await
                }
            }
            #[tokio::test]
            async fn extend_all_needs_every_key_with_the_value() {
                if let Some(s) = store().await {
                    super::extend_all_needs_every_key_with_the_value(&*s).await
                }
            }
            #[tokio::test]
            async fn delete_if_value_spares_other_owners() {
                if let Some(s) = store().await {
                    super::delete_if_value_spares_other_owners(&*s).await
                }
            }
            #[tokio::test]
            async fn increment_counts_and_keeps_the_first_ttl() {
                if let Some(s) = store().await {
                    super::increment_counts_and_keeps_the_first_ttl(&*s).await
                }
            }
            #[tokio::test]
            async fn compare_and_set_needs_the_expected_value() {
                if let Some(s) = store().await {
                    super::compare_and_set_needs_the_expected_value(&*s).await
                }
            }
            #[tokio::test]
            async fn an_index_lists_members_until_their_instant() {
                if let Some(s) = store().await {
                    super::an_index_lists_members_until_their_instant(&*s).await
                }
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn concurrent_updates_lose_nothing() {
                if let Some(s) = store().await {
                    super::concurrent_updates_lose_nothing(s).await
                }
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn concurrent_takes_never_share_a_key() {
                if let Some(s) = store().await {
                    super::concurrent_takes_never_share_a_key(s).await
                }
            }
        }
    };
}

async fn memory_store() -> Option<Arc<dyn TtlStore>> {
    Some(Arc::new(MemoryStore::new()))
}

/// A Redis store whose keys carry a prefix of their own; every key the suite writes has a TTL
/// of at most a minute, so nothing stays behind on the shared server.
async fn redis_store(var: &str) -> Option<Arc<dyn TtlStore>> {
    let prefix = format!("{}:", unique_name("test"));
    let store = redis_store_at(var, &prefix).await?;
    Some(Arc::new(store))
}

contract_suite!(memory, memory_store());
contract_suite!(redis, redis_store("REDIS_URL"));
contract_suite!(redis_cluster, redis_store("REDIS_CLUSTER_URLS"));

/// A node of a Redis Cluster as `CLUSTER NODES` describes it.
struct ClusterNode {
    id: String,
    address: String,
    master: bool,
    /// For a replica, its master's id.
    replica_of: Option<String>,
    slots: Vec<(u16, u16)>,
}

async fn cluster_nodes(store: &RedisStore) -> Vec<ClusterNode> {
    let listing: String = store
        .query(::redis::cmd("CLUSTER").arg("NODES"))
        .await
        .unwrap();
    listing
        .lines()
        .filter_map(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            let flags = fields.get(2)?;
            let slots = fields[8.min(fields.len())..]
                .iter()
                .filter(|range| !range.starts_with('['))
                .filter_map(|range| match range.split_once('-') {
                    Some((from, to)) => Some((from.parse().ok()?, to.parse().ok()?)),
                    None => range.parse().ok().map(|slot| (slot, slot)),
                })
                .collect();
            Some(ClusterNode {
                id: fields[0].to_string(),
                address: fields[1].split('@').next()?.to_string(),
                master: flags.contains("master") && !flags.contains("fail"),
                replica_of: flags.contains("slave").then(|| fields[3].to_string()),
                slots,
            })
        })
        .collect()
}

async fn on_node<T: ::redis::FromRedisValue>(address: &str, command: &::redis::Cmd) -> T {
    let client = ::redis::Client::open(format!("redis://{address}")).unwrap();
    let mut connection = client.get_multiplexed_async_connection().await.unwrap();
    command.query_async(&mut connection).await.unwrap()
}

/// On a cluster only: the store keeps answering while its keys' slot moves to another master
/// (ASK while the slot is migrating, MOVED after) and while that master's replica takes over
/// (a manual failover), with every script still atomic on the slot's keys.
#[tokio::test]
async fn on_a_redis_cluster_the_store_follows_a_moving_slot_and_a_failover() {
    let prefix = format!("{}:", unique_name("moving"));
    let Some(store) = redis_store_at("REDIS_CLUSTER_URLS", &prefix).await else {
        return;
    };
    let tag = unique_name("slot");
    let ks: Vec<String> = (0..4).map(|n| format!("seat:{{{tag}}}:{n}")).collect();
    let taken = store.set_all_if_absent(&ks[..2], "before", MINUTE).await;
    assert_eq!(taken.unwrap(), AllOrNothing::Taken);
    let stored: Vec<String> = ks.iter().map(|k| store.key(k)).collect();
    let slot: u16 = store
        .query(::redis::cmd("CLUSTER").arg("KEYSLOT").arg(&stored[0]))
        .await
        .unwrap();
    let nodes = cluster_nodes(&store).await;
    let owner = nodes
        .iter()
        .find(|n| n.master && n.slots.iter().any(|(a, b)| (*a..=*b).contains(&slot)))
        .expect("the slot's master");
    let target = nodes
        .iter()
        .find(|n| n.master && n.id != owner.id)
        .expect("another master");

    // Move the slot: the first key now, the rest later.
    let setslot = |how: &str, id: &str| {
        let mut command = ::redis::cmd("CLUSTER");
        command.arg("SETSLOT").arg(slot).arg(how).arg(id);
        command
    };
    let _: () = on_node(&target.address, &setslot("IMPORTING", &owner.id)).await;
    let _: () = on_node(&owner.address, &setslot("MIGRATING", &target.id)).await;
    let (host, port) = target.address.rsplit_once(':').unwrap();
    let migrate = |keys: &[String]| {
        let mut command = ::redis::cmd("MIGRATE");
        command
            .arg(host)
            .arg(port)
            .arg("")
            .arg(0)
            .arg(5000)
            .arg("KEYS")
            .arg(keys);
        command
    };
    let _: () = on_node(&owner.address, &migrate(&stored[..1])).await;
    // The owner no longer has the first key: it answers ASK, and the store follows it.
    assert_eq!(store.get(&ks[0]).await.unwrap().as_deref(), Some("before"));
    assert_eq!(store.get(&ks[1]).await.unwrap().as_deref(), Some("before"));
    let _: () = on_node(&owner.address, &migrate(&stored[1..2])).await;
    for node in [target, owner] {
        let _: () = on_node(&node.address, &setslot("NODE", &target.id)).await;
    }
    // The slot is the target's: the store's map is stale, MOVED puts it right.
    assert_eq!(
        store.get_many(&ks[..2]).await.unwrap(),
        [Some("before".to_string()), Some("before".to_string())]
    );
    let conflicts = store.set_all_if_absent(&ks[1..], "after", MINUTE).await;
    assert_eq!(
        conflicts.unwrap(),
        AllOrNothing::Conflicts(vec![ks[1].clone()])
    );

    // The target's replica takes over, as it would when the target fails.
    let replica = cluster_nodes(&store)
        .await
        .into_iter()
        .find(|n| n.replica_of.as_deref() == Some(target.id.as_str()))
        .expect("the target has a replica");
    let _: () = on_node(&replica.address, ::redis::cmd("CLUSTER").arg("FAILOVER")).await;
    for _ in 0..100 {
        let role: Vec<::redis::Value> = on_node(&replica.address, &::redis::cmd("ROLE")).await;
        if matches!(role.first(), Some(::redis::Value::BulkString(r)) if r == b"master") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(store.get(&ks[0]).await.unwrap().as_deref(), Some("before"));
    assert!(
        store
            .extend_all_if_value(&ks[..2], "before", MINUTE)
            .await
            .unwrap()
    );
    assert_eq!(store.delete_if_value(&ks[2..], "nobody").await.unwrap(), 0);
    let after = store.set_all_if_absent(&ks[2..], "after", MINUTE).await;
    assert_eq!(after.unwrap(), AllOrNothing::Taken);
}
