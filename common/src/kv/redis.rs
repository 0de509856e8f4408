//! The Redis adapter of [`TtlStore`], for the distributed profile: one server (`REDIS_URL`) or
//! a Redis Cluster (`REDIS_CLUSTER_URLS`).
//!
//! One multiplexed connection is shared by all callers: a `ConnectionManager` (which
//! reconnects by itself) to one server, or the driver's cluster connection, which keeps the
//! slot map, follows MOVED and ASK redirections and finds a promoted replica after a failover.
//! Multi-key operations run as Lua scripts so they are atomic on the server; on a cluster every
//! key of one call must share a hash tag (`{…}`), which callers' key names see to.
//! Services with atomic steps of their own (the orders service's seat board) run their scripts
//! through [`RedisStore::eval`] under the same key prefix, and listen to what those scripts
//! publish with [`RedisStore::listen`].

use std::sync::LazyLock;
use std::time::Duration;

use async_trait::async_trait;
use redis::aio::{ConnectionLike, ConnectionManager, ConnectionManagerConfig};
use redis::cluster::ClusterClientBuilder;
use redis::cluster_async::ClusterConnection;
use redis::{Cmd, FromRedisValue, Pipeline, RedisError, RedisFuture, Script, Value};

use super::{AllOrNothing, KvError, TtlStore, ttl_millis};

/// KEYS: the keys; ARGV[1]: value; ARGV[2]: TTL in ms.
/// Answers the 1-based positions of the keys that exist (and then sets nothing).
static SET_ALL_IF_ABSENT: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
        local conflicts = {}
        for i, key in ipairs(KEYS) do
            if redis.call('EXISTS', key) == 1 then conflicts[#conflicts + 1] = i end
        end
        if #conflicts > 0 then return conflicts end
        for _, key in ipairs(KEYS) do
            redis.call('SET', key, ARGV[1], 'PX', ARGV[2])
        end
        return conflicts
        ",
    )
});

/// KEYS: the keys; ARGV[1]: expected value; ARGV[2]: TTL in ms. Answers 1 when extended.
static EXTEND_ALL_IF_VALUE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
        for _, key in ipairs(KEYS) do
            if redis.call('GET', key) ~= ARGV[1] then return 0 end
        end
        for _, key in ipairs(KEYS) do
            redis.call('PEXPIRE', key, ARGV[2])
        end
        return 1
        ",
    )
});

/// KEYS: the keys; ARGV[1]: expected value. Answers how many were deleted.
static DELETE_IF_VALUE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
        local deleted = 0
        for _, key in ipairs(KEYS) do
            if redis.call('GET', key) == ARGV[1] then
                deleted = deleted + redis.call('DEL', key)
            end
        end
        return deleted
        ",
    )
});

/// KEYS[1]: the key; ARGV[1]: 1 when a current value is expected, ARGV[2] that value, ARGV[3]
/// the new value, ARGV[4] its TTL in ms. Answers 1 when set.
static COMPARE_AND_SET: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
        local current = redis.call('GET', KEYS[1])
        if ARGV[1] == '1' then
            if current ~= ARGV[2] then return 0 end
        elseif current then
            return 0
        end
        redis.call('SET', KEYS[1], ARGV[3], 'PX', ARGV[4])
        return 1
        ",
    )
});

/// KEYS[1]: the key; ARGV[1]: increment; ARGV[2]: TTL in ms for a key this call creates.
static INCREMENT_WITH_TTL: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
        local value = redis.call('INCRBY', KEYS[1], ARGV[1])
        if redis.call('PTTL', KEYS[1]) == -1 then
            redis.call('PEXPIRE', KEYS[1], ARGV[2])
        end
        return value
        ",
    )
});

/// How long opening a connection to a server may take.
const CONNECTION_TIMEOUT: Duration = Duration::from_secs(2);
/// How long an answer may take. The driver's default 500 ms is shorter than a 10,000-key MGET
/// takes behind a busy multiplexed connection during an on-sale.
const RESPONSE_TIMEOUT: Duration = Duration::from_secs(5);

/// The Redis adapter of [`TtlStore`].
#[derive(Clone)]
pub struct RedisStore {
    connection: Connection,
    /// Where [`Self::listen`] subscribes, tried in turn: the server, or the cluster's seed
    /// nodes (a cluster delivers a message published on any node to subscribers on every
    /// node, so one node is enough).
    subscribe_at: Vec<redis::Client>,
    /// Prepended to every key; tests use a random one to share a server safely.
    prefix: String,
}

/// Where commands go: one server, or a cluster routed by each command's keys.
#[derive(Clone)]
enum Connection {
    Single(ConnectionManager),
    Cluster(ClusterConnection),
}

impl ConnectionLike for Connection {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        match self {
            Self::Single(connection) => connection.req_packed_command(cmd),
            Self::Cluster(connection) => connection.req_packed_command(cmd),
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        match self {
            Self::Single(connection) => connection.req_packed_commands(pipeline, offset, count),
            Self::Cluster(connection) => connection.req_packed_commands(pipeline, offset, count),
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            Self::Single(connection) => connection.get_db(),
            Self::Cluster(connection) => connection.get_db(),
        }
    }
}

impl RedisStore {
    /// Connects to the server at `url`; every key is stored as `prefix` + key.
    pub async fn connect(url: &str, prefix: &str) -> Result<Self, KvError> {
        let client = redis::Client::open(url).map_err(map_error)?;
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(CONNECTION_TIMEOUT))
            .set_response_timeout(Some(RESPONSE_TIMEOUT));
        let connection = ConnectionManager::new_with_config(client.clone(), config)
            .await
            .map_err(map_error)?;
        Ok(Self {
            connection: Connection::Single(connection),
            subscribe_at: vec![client],
            prefix: prefix.to_string(),
        })
    }

    /// Connects to the Redis Cluster that the seed nodes `urls` belong to (one is enough; the
    /// others are tried when it is down; all share one password); every key is stored as
    /// `prefix` + key.
    pub async fn connect_cluster(urls: &[String], prefix: &str) -> Result<Self, KvError> {
        let client = ClusterClientBuilder::new(urls.iter().map(String::as_str))
            .connection_timeout(CONNECTION_TIMEOUT)
            .response_timeout(RESPONSE_TIMEOUT)
            .build()
            .map_err(map_error)?;
        let connection = client.get_async_connection().await.map_err(map_error)?;
        let subscribe_at = urls
            .iter()
            .map(|url| redis::Client::open(url.as_str()))
            .collect::<Result<_, _>>()
            .map_err(map_error)?;
        Ok(Self {
            connection: Connection::Cluster(connection),
            subscribe_at,
            prefix: prefix.to_string(),
        })
    }

    /// Whether this store talks to a Redis Cluster.
    pub fn is_cluster(&self) -> bool {
        matches!(self.connection, Connection::Cluster(_))
    }

    /// What every key of this store starts with.
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// `key` as stored: with this store's prefix.
    pub fn key(&self, key: &str) -> String {
        format!("{}{key}", self.prefix)
    }

    /// Runs a Lua `script` atomically on `keys` (prefixed here) with `args`.
    pub async fn eval<T: FromRedisValue>(
        &self,
        script: &Script,
        keys: &[String],
        args: &[String],
    ) -> Result<T, KvError> {
        let mut invocation = script.prepare_invoke();
        for key in keys {
            invocation.key(self.key(key));
        }
        for arg in args {
            invocation.arg(arg.as_str());
        }
        invocation
            .invoke_async(&mut self.connection.clone())
            .await
            .map_err(map_error)
    }

    /// Forwards every message published on `channel` (prefixed here) to `sink` until `sink`
    /// is closed, on a connection of its own that is re-opened whenever it breaks (on a
    /// cluster, at the next seed node). Pub/sub is at most once: messages published while the
    /// connection is down are lost, and `gap` is called on every reconnection so the listener
    /// can catch up another way.
    pub fn listen(
        &self,
        channel: &str,
        sink: tokio::sync::mpsc::Sender<Vec<u8>>,
        gap: impl Fn() + Send + 'static,
    ) {
        let (clients, channel) = (self.subscribe_at.clone(), self.key(channel));
        tokio::spawn(async move {
            let mut backoff = Duration::from_millis(100);
            let mut first = true;
            for client in clients.iter().cycle() {
                let subscribed = async {
                    let mut pubsub = client.get_async_pubsub().await?;
                    pubsub.subscribe(&channel).await?;
                    Ok::<_, RedisError>(pubsub)
                };
                match subscribed.await {
                    Ok(pubsub) => {
                        if !first {
                            tracing::info!(%channel, "Redis subscription re-opened");
                            gap();
                        }
                        first = false;
                        backoff = Duration::from_millis(100);
                        let mut messages = pubsub.into_on_message();
                        while let Some(message) = futures_util::StreamExt::next(&mut messages).await
                        {
                            if sink
                                .send(message.get_payload_bytes().to_vec())
                                .await
                                .is_err()
                            {
                                return;
                            }
                        }
                        tracing::warn!(%channel, "Redis subscription closed; re-opening");
                    }
                    Err(error) => {
                        tracing::warn!(%channel, %error, ?backoff, "cannot subscribe to Redis yet");
                        if sink.is_closed() {
                            return;
                        }
                        tokio::time::sleep(backoff).await;
                        backoff = (backoff * 2).min(Duration::from_secs(5));
                    }
                }
            }
        });
    }

    /// Runs `cmd` as it is (keys are not prefixed), routed by its keys on a cluster; commands
    /// about every key (`KEYS`, `DBSIZE`) go to every master. For tools and tests.
    pub async fn query<T: FromRedisValue>(&self, cmd: &Cmd) -> Result<T, KvError> {
        cmd.query_async(&mut self.connection.clone())
            .await
            .map_err(map_error)
    }

    async fn run_script<T: FromRedisValue>(
        &self,
        script: &Script,
        keys: &[String],
        args: &[&str],
    ) -> Result<T, KvError> {
        let mut invocation = script.prepare_invoke();
        for key in keys {
            invocation.key(self.key(key));
        }
        for arg in args {
            invocation.arg(*arg);
        }
        invocation
            .invoke_async(&mut self.connection.clone())
            .await
            .map_err(map_error)
    }
}

fn map_error(error: RedisError) -> KvError {
    if error.is_io_error() || error.is_connection_dropped() || error.is_timeout() {
        KvError::Unavailable(error.to_string())
    } else {
        KvError::Backend(error.to_string())
    }
}

#[async_trait]
impl TtlStore for RedisStore {
    async fn get(&self, key: &str) -> Result<Option<String>, KvError> {
        self.query(redis::cmd("GET").arg(self.key(key))).await
    }

    async fn get_many(&self, keys: &[String]) -> Result<Vec<Option<String>>, KvError> {
        if keys.is_empty() {
            return Ok(Vec::new());
        }
        let keys: Vec<String> = keys.iter().map(|k| self.key(k)).collect();
        self.query(redis::cmd("MGET").arg(&keys)).await
    }

    async fn set(&self, key: &str, value: &str, ttl: Duration) -> Result<(), KvError> {
        self.query(
            redis::cmd("SET")
                .arg(self.key(key))
                .arg(value)
                .arg("PX")
                .arg(ttl_millis(ttl)),
        )
        .await
    }

    async fn set_if_absent(&self, key: &str, value: &str, ttl: Duration) -> Result<bool, KvError> {
        let reply: Option<String> = self
            .query(
                redis::cmd("SET")
                    .arg(self.key(key))
                    .arg(value)
                    .arg("PX")
                    .arg(ttl_millis(ttl))
                    .arg("NX"),
            )
            .await?;
        Ok(reply.is_some())
    }

    async fn set_all_if_absent(
        &self,
        keys: &[String],
        value: &str,
        ttl: Duration,
    ) -> Result<AllOrNothing, KvError> {
        if keys.is_empty() {
            return Ok(AllOrNothing::Taken);
        }
        let ttl = ttl_millis(ttl).to_string();
        let positions: Vec<usize> = self
            .run_script(&SET_ALL_IF_ABSENT, keys, &[value, &ttl])
            .await?;
        if positions.is_empty() {
            return Ok(AllOrNothing::Taken);
        }
        Ok(AllOrNothing::Conflicts(
            positions
                .into_iter()
                .filter_map(|i| keys.get(i.wrapping_sub(1)).cloned())
                .collect(),
        ))
    }

    async fn delete(&self, key: &str) -> Result<bool, KvError> {
        let deleted: u64 = self.query(redis::cmd("DEL").arg(self.key(key))).await?;
        Ok(deleted > 0)
    }

    async fn delete_if_value(&self, keys: &[String], value: &str) -> Result<usize, KvError> {
        if keys.is_empty() {
            return Ok(0);
        }
        self.run_script(&DELETE_IF_VALUE, keys, &[value]).await
    }

    async fn ttl(&self, key: &str) -> Result<Option<Duration>, KvError> {
        let millis: i64 = self.query(redis::cmd("PTTL").arg(self.key(key))).await?;
        Ok(match millis {
            -2 => None,
            // Every write of this adapter sets a TTL; a key without one was written by hand.
            -1 => Some(Duration::MAX),
            ms => Some(Duration::from_millis(ms.max(0).unsigned_abs())),
        })
    }

    async fn expire(&self, key: &str, ttl: Duration) -> Result<bool, KvError> {
        let set: u64 = self
            .query(
                redis::cmd("PEXPIRE")
                    .arg(self.key(key))
                    .arg(ttl_millis(ttl)),
            )
            .await?;
        Ok(set == 1)
    }

    async fn extend_all_if_value(
        &self,
        keys: &[String],
        value: &str,
        ttl: Duration,
    ) -> Result<bool, KvError> {
        if keys.is_empty() {
            return Ok(true);
        }
        let ttl = ttl_millis(ttl).to_string();
        let extended: u64 = self
            .run_script(&EXTEND_ALL_IF_VALUE, keys, &[value, &ttl])
            .await?;
        Ok(extended == 1)
    }

    async fn compare_and_set(
        &self,
        key: &str,
        expected: Option<&str>,
        value: &str,
        ttl: Duration,
    ) -> Result<bool, KvError> {
        let ttl = ttl_millis(ttl).to_string();
        let (has_expected, expected) = match expected {
            Some(expected) => ("1", expected),
            None => ("0", ""),
        };
        let set: u64 = self
            .run_script(
                &COMPARE_AND_SET,
                &[key.to_string()],
                &[has_expected, expected, value, &ttl],
            )
            .await?;
        Ok(set == 1)
    }

    async fn increment(&self, key: &str, by: i64, ttl: Duration) -> Result<i64, KvError> {
        let by = by.to_string();
        let ttl = ttl_millis(ttl).to_string();
        self.run_script(&INCREMENT_WITH_TTL, &[key.to_string()], &[&by, &ttl])
            .await
    }

    async fn index_add(
        &self,
        key: &str,
        member: &str,
        until_ms: i64,
        now_ms: i64,
        ttl: Duration,
    ) -> Result<(), KvError> {
        // A sorted set scored by the member's instant; MULTI makes the three one step.
        let key = self.key(key);
        let _: () = redis::pipe()
            .atomic()
            .cmd("ZADD")
            .arg(&key)
            .arg(until_ms)
            .arg(member)
            .ignore()
            .cmd("ZREMRANGEBYSCORE")
            .arg(&key)
            .arg("-inf")
            .arg(format!("({now_ms}"))
            .ignore()
            .cmd("PEXPIRE")
            .arg(&key)
            .arg(ttl_millis(ttl))
            .ignore()
            .query_async(&mut self.connection.clone())
            .await
            .map_err(map_error)?;
        Ok(())
    }

    async fn index_members(&self, key: &str, now_ms: i64) -> Result<Vec<String>, KvError> {
        self.query(
            redis::cmd("ZRANGEBYSCORE")
                .arg(self.key(key))
                .arg(format!("({now_ms}"))
                .arg("+inf"),
        )
        .await
    }

    async fn ping(&self) -> Result<(), KvError> {
        let _: String = self.query(&redis::cmd("PING")).await?;
        Ok(())
    }
}
