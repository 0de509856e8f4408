//! Check-in at the door: scans and what they answer, and scanner devices and their tokens.
//!
//! A scan's pass is verified first (signature, then event); only then is the ticket looked up,
//! so a forged pass learns nothing about which tickets exist. Entering is one conditional
//! write of the ticket's record — "not inside, and never entered unless re-entry is allowed" —
//! so of two gates scanning one ticket at the same moment exactly one sees `entered`.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::domain::ids::EventId;
use crate::domain::ticket::{Ticket, TicketStatus};

/// Which way a scan goes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Direction {
    #[default]
    In,
    Out,
}

/// What the door answers to a scan.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ScanResult {
    /// Let them in (the first time, or again after an exit where re-entry is allowed).
    Entered,
    /// Already inside, or already entered and the event allows no re-entry: when and where.
    AlreadyEntered,
    /// Scanned out.
    Exited,
    /// An exit scan of a ticket that is not inside.
    NotInside,
    /// Its seat was cancelled, or the ticket was reissued (transferred) since this pass.
    Revoked,
    /// A genuine pass for another event.
    WrongEvent,
    /// Not a pass of ours (forged, altered, unreadable).
    Invalid,
}

/// One attempt to go through the door with a verified, current-looking pass.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Passage {
    pub ticket_id: String,
    pub event_id: EventId,
    /// The pass's version and secret (hex): only the ticket's current ones go through.
    pub version: u32,
    pub secret: String,
    pub gate: String,
    pub direction: Direction,
    /// When it was scanned (Unix ms): now for an online scan, the device's time offline.
    pub at_ms: i64,
    /// Whether the event lets a ticket enter again after an exit.
    pub reentry: bool,
    /// Offline batches: an earlier entry replaces a later one recorded first (the earliest
    /// scan wins a conflict), and the entry is not answered `entered` again.
    pub earliest_wins: bool,
}

/// What the store made of a [`Passage`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PassageOutcome {
    pub result: ScanResult,
    /// When the ticket first entered, and where (for `already_entered` and `entered`).
    pub entered_at_ms: Option<i64>,
    pub entry_gate: Option<String>,
}

impl PassageOutcome {
    pub fn only(result: ScanResult) -> Self {
        Self {
            result,
            entered_at_ms: None,
            entry_gate: None,
        }
    }

    /// What a passage's conditional write means, given whether it `changed` the ticket and the
    /// ticket as read after it (`None`, or another event's: the pass names no ticket of ours).
    pub fn after(passage: &Passage, changed: bool, ticket: Option<&Ticket>) -> Self {
        let Some(ticket) = ticket.filter(|t| t.event_id == passage.event_id) else {
            return Self::only(ScanResult::Invalid);
        };
        let entered = |result| Self {
            result,
            entered_at_ms: ticket.entered_at_ms,
            entry_gate: ticket.entry_gate.clone(),
        };
        let current = ticket.status == TicketStatus::Valid
            && ticket.version == passage.version
            && ticket.secret == passage.secret;
        match (changed, passage.direction) {
            (true, Direction::In) => entered(ScanResult::Entered),
            (true, Direction::Out) => entered(ScanResult::Exited),
            _ if !current => Self::only(ScanResult::Revoked),
            (false, Direction::In) => entered(ScanResult::AlreadyEntered),
            (false, Direction::Out) => entered(ScanResult::NotInside),
        }
    }
}

/// A scanner device: a token limited to one event and to check-in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Device {
    /// A UUID without dashes.
    pub device_id: String,
    pub event_id: EventId,
    pub name: String,
    /// SHA-256 (hex) of the token's secret: the token itself is shown once, never stored.
    pub secret_hash: String,
    pub created_by: String,
    pub created_at_ms: i64,
    pub revoked: bool,
}

/// The prefix of every device token.
const TOKEN_PREFIX: &str = "hfd_";

impl Device {
    /// A new device of `event_id` and its token (shown once).
    pub fn new(event_id: EventId, name: String, created_by: String, now_ms: i64) -> (Self, String) {
        let device_id = uuid::Uuid::new_v4().simple().to_string();
        let secret = format!(
            "{}{}",
            uuid::Uuid::new_v4().simple(),
            uuid::Uuid::new_v4().simple()
        );
        let token = format!("{TOKEN_PREFIX}{device_id}_{secret}");
        let device = Self {
            device_id,
            event_id,
            name,
            secret_hash: hash(&secret),
            created_by,
            created_at_ms: now_ms,
            revoked: false,
        };
        (device, token)
    }

    /// Whether `token` is this device's.
    pub fn admits(&self, token: &DeviceToken) -> bool {
        !self.revoked
            && token.device_id == self.device_id
            && constant_time_eq(hash(&token.secret).as_bytes(), self.secret_hash.as_bytes())
    }
}

/// A device token as presented: `hfd_<deviceId>_<secret>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceToken {
    pub device_id: String,
    secret: String,
}

impl DeviceToken {
    /// The token `bearer` is, if it looks like one.
    pub fn parse(bearer: &str) -> Option<Self> {
        let rest = bearer.strip_prefix(TOKEN_PREFIX)?;
        let (device_id, secret) = rest.split_once('_')?;
        let hex = |s: &str, len| s.len() == len && s.bytes().all(|b| b.is_ascii_hexdigit());
        (hex(device_id, 32) && hex(secret, 64)).then(|| Self {
            device_id: device_id.to_string(),
            secret: secret.to_string(),
        })
    }

    /// Whether `bearer` is meant as a device token (rather than an access token).
    pub fn is_device_token(bearer: &str) -> bool {
        bearer.starts_with(TOKEN_PREFIX)
    }
}

fn hash(secret: &str) -> String {
    holdfast_common::ticket_pass::to_hex(&Sha256::digest(secret.as_bytes()))
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_device_admits_its_own_token_only_until_revoked() {
        let event = EventId::from("6650c0ffee0000000000abcd");
        let (mut device, token) = Device::new(event.clone(), "Gate A".into(), "u1".into(), 1);
        let parsed = DeviceToken::parse(&token).unwrap();
        assert!(device.admits(&parsed));
        assert!(!token.contains(&device.secret_hash));
        let (_, other) = Device::new(event, "Gate B".into(), "u1".into(), 1);
        assert!(!device.admits(&DeviceToken::parse(&other).unwrap()));
        // Same device id, another secret.
        let forged = format!(
            "{}{}",
            &token[..token.len() - 1],
            if token.ends_with('0') { '1' } else { '0' }
        );
        assert!(!device.admits(&DeviceToken::parse(&forged).unwrap()));
        device.revoked = true;
        assert!(!device.admits(&parsed));
    }

    #[test]
    fn only_well_formed_tokens_parse() {
        for bad in [
            "",
            "hfd_",
            "hfd_abc_def",
            "Bearer x",
            &format!("hfd_{}_{}", "g".repeat(32), "0".repeat(64)),
        ] {
            assert_eq!(DeviceToken::parse(bad), None, "{bad}");
        }
        assert!(DeviceToken::is_device_token("hfd_x"));
        assert!(!DeviceToken::is_device_token("eyJhbGciOi"));
    }

    #[test]
    fn scan_results_travel_in_snake_case() {
        assert_eq!(
            serde_json::to_string(&ScanResult::AlreadyEntered).unwrap(),
            "\"already_entered\""
        );
        assert_eq!(
            serde_json::to_string(&ScanResult::WrongEvent).unwrap(),
            "\"wrong_event\""
        );
    }
}
