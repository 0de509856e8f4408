//! Password hashing with argon2id at the OWASP minimum (m = 19456 KiB, t = 2, p = 1).
//!
//! Hashing is deliberately slow and memory-hungry, so it runs on the blocking pool, never on the
//! async workers, and a semaphore caps how many run at once (each takes 19 MiB). An unknown
//! email is checked against a dummy hash with the same parameters, so it costs the same work as
//! a wrong password and the answer time does not reveal which accounts exist.

use std::sync::{Arc, LazyLock};

use argon2::password_hash::SaltString;
use argon2::{Algorithm, Argon2, Params, PasswordHash, PasswordHasher, PasswordVerifier, Version};
use tokio::sync::Semaphore;

use crate::error::AuthError;

pub const MIN_LEN: usize = 8;
pub const MAX_LEN: usize = 128;

fn argon2() -> Argon2<'static> {
    // The parameters are constants within argon2's documented bounds.
    let params = Params::new(19_456, 2, 1, None).unwrap_or_default();
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
}

/// A hash of a password nobody has, verified when the email is unknown.
static DUMMY_HASH: LazyLock<String> =
    LazyLock::new(|| hash_blocking("holdfast-dummy-password").unwrap_or_default());

fn hash_blocking(password: &str) -> Result<String, AuthError> {
    let salt = SaltString::encode_b64(uuid::Uuid::new_v4().as_bytes())
        .map_err(|e| AuthError::Hashing(e.to_string()))?;
    argon2()
        .hash_password(password.as_bytes(), &salt)
        .map(|hash| hash.to_string())
        .map_err(|e| AuthError::Hashing(e.to_string()))
}

fn verify_blocking(password: &str, stored: &str) -> bool {
    PasswordHash::new(stored)
        .is_ok_and(|hash| argon2().verify_password(password.as_bytes(), &hash).is_ok())
}

/// Hashes and verifies passwords off the async workers, a bounded number at a time.
#[derive(Clone)]
pub struct PasswordHasherPool {
    permits: Arc<Semaphore>,
}

impl Default for PasswordHasherPool {
    fn default() -> Self {
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
        Self {
            permits: Arc::new(Semaphore::new(cores * 2)),
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
        tokio::task::spawn_blocking(work)
            .await
            .map_err(|e| AuthError::Hashing(e.to_string()))
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
