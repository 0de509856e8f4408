//! Password hashing with argon2id at the OWASP minimum (m = 19456 KiB, t = 2, p = 1).
//!
//! Hashing is deliberately slow and memory-hungry (19 MiB each), so it runs on a few threads of
//! its own, one per core, never on the async workers, and each thread hashes in one buffer it
//! allocates once and reuses. (Allocating 19 MiB per hash, glibc's allocator kept most of each
//! one: a run of logins grew the process by about 19 MiB per login, to hundreds of MiB.) A
//! semaphore caps how many wait in line. An unknown
//! email is checked against a dummy hash with the same parameters, so it costs the same work as
//! a wrong password and the answer time does not reveal which accounts exist.

use std::sync::mpsc;
use std::sync::{Arc, LazyLock, Mutex};

use std::cell::RefCell;

use argon2::password_hash::{Output, ParamsString, SaltString};
use argon2::{ARGON2ID_IDENT, Algorithm, Argon2, Block, Params, PasswordHash, Version};
use holdfast_common::sync::lock;
use tokio::sync::{Semaphore, oneshot};

use crate::error::AuthError;

pub const MIN_LEN: usize = 8;
pub const MAX_LEN: usize = 128;

/// The parameters of new hashes.
fn params() -> Params {
    // Constants within argon2's documented bounds.
    Params::new(19_456, 2, 1, Some(32)).unwrap_or_default()
}

thread_local! {
    /// This thread's argon2 memory, allocated at its first hash and reused by every later one.
    static MEMORY: RefCell<Vec<Block>> = const { RefCell::new(Vec::new()) };
}

/// Argon2id with `params` of `password` and `salt` into `out`, in this thread's memory.
fn argon2id_into(
    params: Params,
    password: &[u8],
    salt: &[u8],
    out: &mut [u8],
) -> Result<(), argon2::Error> {
    MEMORY.with_borrow_mut(|memory| {
        let needed = params.block_count();
        if memory.len() < needed {
            memory.resize(needed, Block::default());
        }
        Argon2::new(Algorithm::Argon2id, Version::V0x13, params).hash_password_into_with_memory(
            password,
            salt,
            out,
            &mut memory[..needed],
        )
    })
}

/// A hash of a password nobody has, verified when the email is unknown.
static DUMMY_HASH: LazyLock<String> =
    LazyLock::new(|| hash_blocking("holdfast-dummy-password").unwrap_or_default());

fn hashing_error(error: impl std::fmt::Display) -> AuthError {
    AuthError::Hashing(error.to_string())
}

fn hash_blocking(password: &str) -> Result<String, AuthError> {
    let salt = SaltString::encode_b64(uuid::Uuid::new_v4().as_bytes()).map_err(hashing_error)?;
    let mut salt_bytes = [0u8; 64];
    let salt_bytes = salt
        .as_salt()
        .decode_b64(&mut salt_bytes)
        .map_err(hashing_error)?;
    let params = params();
    let mut out = [0u8; 32];
    argon2id_into(params.clone(), password.as_bytes(), salt_bytes, &mut out)
        .map_err(hashing_error)?;
    let hash = PasswordHash {
        algorithm: ARGON2ID_IDENT,
        version: Some(Version::V0x13.into()),
        params: ParamsString::try_from(&params).map_err(hashing_error)?,
        salt: Some(salt.as_salt()),
        hash: Some(Output::new(&out).map_err(hashing_error)?),
    };
    Ok(hash.to_string())
}

/// Whether `password` is the one `stored` (an argon2id PHC string) was made from.
fn verify_blocking(password: &str, stored: &str) -> bool {
    let Ok(hash) = PasswordHash::new(stored) else {
        return false;
    };
    let (Some(expected), Some(salt)) = (hash.hash, hash.salt) else {
        return false;
    };
    if hash.algorithm != ARGON2ID_IDENT || hash.version.is_some_and(|v| v != 0x13) {
        return false;
    }
    let Ok(params) = Params::try_from(&hash) else {
        return false;
    };
    let mut salt_bytes = [0u8; 64];
    let Ok(salt_bytes) = salt.decode_b64(&mut salt_bytes) else {
        return false;
    };
    let mut out = vec![0u8; expected.len()];
    argon2id_into(params, password.as_bytes(), salt_bytes, &mut out).is_ok()
        // Output compares in constant time.
        && Output::new(&out).is_ok_and(|computed| computed == expected)
}

type Job = Box<dyn FnOnce() + Send>;

/// Hashes and verifies passwords on threads of its own (one per core), a bounded number queued.
#[derive(Clone)]
pub struct PasswordHasherPool {
    permits: Arc<Semaphore>,
    jobs: mpsc::Sender<Job>,
}

impl Default for PasswordHasherPool {
    fn default() -> Self {
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
        let (jobs, queue) = mpsc::channel::<Job>();
        let queue = Arc::new(Mutex::new(queue));
        for n in 0..cores {
            let queue = queue.clone();
            // The threads end when the last handle of the pool is dropped.
            let spawned = std::thread::Builder::new()
                .name(format!("password-{n}"))
                .spawn(move || {
                    loop {
                        let job = lock(&queue).recv();
                        match job {
                            Ok(job) => job(),
                            Err(_) => break,
                        }
                    }
                });
            if let Err(error) = spawned {
                tracing::error!(%error, "cannot start a password hashing thread");
            }
        }
        Self {
            permits: Arc::new(Semaphore::new(cores * 2)),
            jobs,
        }
    }
}

impl PasswordHasherPool {
    async fn run<R: Send + 'static>(
        &self,
        work: impl FnOnce() -> R + Send + 'static,
    ) -> Result<R, AuthError> {
        let _permit = self
            .permits
            .acquire()
            .await
            .map_err(|e| AuthError::Hashing(e.to_string()))?;
        let (answer, answered) = oneshot::channel();
        self.jobs
            .send(Box::new(move || {
                let _ = answer.send(work());
            }))
            .map_err(|_| AuthError::Hashing("no password hashing thread".into()))?;
        answered
            .await
            .map_err(|_| AuthError::Hashing("the password hashing thread stopped".into()))
    }

    /// The PHC string of a new argon2id hash of `password`.
    pub async fn hash(&self, password: &str) -> Result<String, AuthError> {
        let password = password.to_string();
        self.run(move || hash_blocking(&password)).await?
    }

    /// Whether `password` matches `stored`; with no stored hash, the same work is done against
    /// a dummy hash and the answer is false.
    pub async fn verify(&self, password: &str, stored: Option<&str>) -> Result<bool, AuthError> {
        let password = password.to_string();
        let stored = stored.map(str::to_string);
        self.run(move || match stored {
            Some(hash) => verify_blocking(&password, &hash),
            None => {
                verify_blocking(&password, &DUMMY_HASH);
                false
            }
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn hashes_use_argon2id_with_the_owasp_parameters() {
        let pool = PasswordHasherPool::default();
        let hash = pool.hash("correct horse").await.unwrap();
        assert!(
            hash.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"),
            "{hash}"
        );
        assert!(pool.verify("correct horse", Some(&hash)).await.unwrap());
        assert!(!pool.verify("wrong horse", Some(&hash)).await.unwrap());
        assert_ne!(
            hash,
            pool.hash("correct horse").await.unwrap(),
            "salts differ"
        );
    }

    #[tokio::test]
    async fn an_unknown_user_is_checked_against_a_real_dummy_hash() {
        assert!(DUMMY_HASH.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"));
        let pool = PasswordHasherPool::default();
        assert!(!pool.verify("holdfast-dummy-password", None).await.unwrap());
        assert!(
            !pool
                .verify("whatever", Some("not a phc string"))
                .await
                .unwrap()
        );
    }
}
