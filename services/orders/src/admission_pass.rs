//! The signed admission an admitted buyer shows with holds and purchases on a queued event:
//! bound to the person, the event and an expiry, so that any orders replica checks it without
//! reading the queue.
//!
//! It is a JWT (HS256) whose key is derived from the access tokens' secret with a label of its
//! own, so an admission can never pass for an access token nor the reverse (their claims differ
//! too). The expiry is the admission's, recorded by the queue the first time it was given:
//! asking again gives the same expiry, and an expired admission is not renewed.

use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};

/// Appended to the access tokens' secret to make the admissions' key.
const KEY_LABEL: &[u8] = b"\0holdfast-admission";
/// The `typ` claim of every admission.
const KIND: &str = "admission";

#[derive(Debug, Serialize, Deserialize)]
struct AdmissionClaims {
    sub: String,
    evt: String,
    typ: String,
    /// Whole seconds, as JWT has it; `exp_ms` is what is checked.
    exp: u64,
    #[serde(rename = "expMs")]
    exp_ms: i64,
}

/// Why an admission was not accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum PassError {
    /// Not one of ours, or for another person or event.
    #[error("not a valid admission for this buyer and event")]
    Invalid,
    /// Ours and theirs, but its time was up at this time (ms since the epoch).
    #[error("the admission has expired")]
    Expired(i64),
    #[error("cannot sign the admission")]
    Signing,
}

/// Signs and checks admissions.
pub struct AdmissionKeys {
    encoding: EncodingKey,
    decoding: DecodingKey,
    validation: Validation,
}

impl AdmissionKeys {
    /// The keys for access tokens signed with `jwt_secret`.
    pub fn new(jwt_secret: &str) -> Self {
        let key = [jwt_secret.as_bytes(), KEY_LABEL].concat();
        let mut validation = Validation::new(Algorithm::HS256);
        validation.set_required_spec_claims(&["exp", "sub"]);
        // `exp_ms` is checked to the millisecond below, against the caller's clock.
        validation.validate_exp = false;
        Self {
            encoding: EncodingKey::from_secret(&key),
            decoding: DecodingKey::from_secret(&key),
            validation,
        }
    }

    /// The admission of `user_id` to `event_id` until `expires_at_ms`.
    pub fn sign(
        &self,
        user_id: &str,
        event_id: &str,
        expires_at_ms: i64,
    ) -> Result<String, PassError> {
        let claims = AdmissionClaims {
            sub: user_id.to_string(),
            evt: event_id.to_string(),
            typ: KIND.to_string(),
            exp: u64::try_from(expires_at_ms.div_euclid(1000)).unwrap_or(0),
            exp_ms: expires_at_ms,
        };
        jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &self.encoding)
            .map_err(|_| PassError::Signing)
    }

    /// Whether `token` admits `user_id` to `event_id` at `now_ms`; answers its expiry.
    pub fn check(
        &self,
        token: &str,
        user_id: &str,
        event_id: &str,
        now_ms: i64,
    ) -> Result<i64, PassError> {
        let claims =
            jsonwebtoken::decode::<AdmissionClaims>(token, &self.decoding, &self.validation)
                .map_err(|_| PassError::Invalid)?
                .claims;
        if claims.typ != KIND || claims.sub != user_id || claims.evt != event_id {
            return Err(PassError::Invalid);
        }
        if claims.exp_ms <= now_ms {
            return Err(PassError::Expired(claims.exp_ms));
        }
        Ok(claims.exp_ms)
    }
}

#[cfg(test)]
mod tests {
    use holdfast_common::auth::{Role, TokenKeys};

    use super::*;

    const SECRET: &str = "a-secret-long-enough-for-the-tests-of-admissions";
    const EVENT: &str = "0123456789abcdef01234567";

    #[test]
    fn an_admission_admits_its_buyer_to_its_event_until_it_expires() {
        let keys = AdmissionKeys::new(SECRET);
        let pass = keys.sign("u1", EVENT, 10_000).unwrap();
        assert_eq!(keys.check(&pass, "u1", EVENT, 9_999), Ok(10_000));
        assert_eq!(
            keys.check(&pass, "u1", EVENT, 10_000),
            Err(PassError::Expired(10_000))
        );
        assert_eq!(keys.check(&pass, "u2", EVENT, 0), Err(PassError::Invalid));
        let other_event = "0123456789abcdef0123ffff";
        assert_eq!(
            keys.check(&pass, "u1", other_event, 0),
            Err(PassError::Invalid)
        );
    }

    #[test]
    fn a_forged_or_altered_admission_is_refused() {
        let keys = AdmissionKeys::new(SECRET);
        let pass = AdmissionKeys::new("another-secret")
            .sign("u1", EVENT, i64::MAX)
            .unwrap();
        assert_eq!(keys.check(&pass, "u1", EVENT, 0), Err(PassError::Invalid));
        let mut altered = keys.sign("u1", EVENT, 10_000).unwrap();
        altered.push('x');
        assert_eq!(
            keys.check(&altered, "u1", EVENT, 0),
            Err(PassError::Invalid)
        );
        assert_eq!(keys.check("", "u1", EVENT, 0), Err(PassError::Invalid));
    }

    #[test]
    fn admissions_and_access_tokens_never_pass_for_each_other() {
        let access = TokenKeys::new(SECRET);
        let admissions = AdmissionKeys::new(SECRET);
        let token = access
            .issue(
                "u1",
                "u1@example.com",
                Role::User,
                "sid",
                std::time::Duration::from_secs(60),
            )
            .unwrap();
        assert_eq!(
            admissions.check(&token, "u1", EVENT, 0),
            Err(PassError::Invalid)
        );
        let pass = admissions.sign("u1", EVENT, i64::MAX).unwrap();
        assert!(access.verify(&pass).is_err());
    }
}
