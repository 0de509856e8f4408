//! Tickets: one per sold seat, what the door lets in.
//!
//! A ticket is made with its order (in the purchase's transaction) and revoked with its seat's
//! cancellation (in the cancellation's). Its pass — the QR payload, see
//! [`holdfast_common::ticket_pass`] — names its version and secret; only the current ones
//! enter, so renewing them (a transfer) revokes every copy of the old pass.

use holdfast_common::ticket_pass::{Pass, decode_hex, to_hex};
use serde::{Deserialize, Serialize};

use crate::domain::ids::{EventId, OrderId, SeatId};
use crate::domain::order::Order;

/// What a ticket is good for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum TicketStatus {
    /// It enters (once, or again after an exit where the event allows re-entry).
    Valid,
    /// Its seat was cancelled: the door refuses it.
    Cancelled,
}

impl TicketStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Valid => "valid",
            Self::Cancelled => "cancelled",
        }
    }

    pub fn parse(stored: &str) -> Option<Self> {
        match stored {
            "valid" => Some(Self::Valid),
            "cancelled" => Some(Self::Cancelled),
            _ => None,
        }
    }
}

/// A ticket as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ticket {
    /// A UUID.
    pub ticket_id: String,
    pub event_id: EventId,
    pub seat_id: SeatId,
    pub order_id: OrderId,
    /// Who holds it: the buyer, or whoever it was transferred to; `None` while a transfer
    /// waits for an account with `holder_email` to claim it.
    pub holder_id: Option<String>,
    /// The holder's address, lower-cased (`None` for orders stored before addresses were kept).
    pub holder_email: Option<String>,
    pub status: TicketStatus,
    /// Starts at 1; renewed with the secret.
    pub version: u32,
    /// 12 hexadecimal digits: the pass's 6 secret bytes.
    pub secret: String,
    /// How often it was transferred.
    pub transfers: u32,
    /// When it first entered (Unix ms) and at which gate.
    pub entered_at_ms: Option<i64>,
    pub entry_gate: Option<String>,
    /// Whether it is inside now (entered and not since scanned out).
    pub inside: bool,
    /// When any of the above last changed (Unix ms): what offline scanners sync by.
    pub changed_at_ms: i64,
}

impl Ticket {
    /// The tickets of a new order: one per seat, each with its own id and secret.
    pub fn issue(order: &Order) -> Vec<Self> {
        order
            .seat_ids
            .iter()
            .map(|seat| Self {
                ticket_id: uuid::Uuid::new_v4().to_string(),
                event_id: order.event_id.clone(),
                seat_id: seat.clone(),
                order_id: order.order_id.clone(),
                holder_id: Some(order.user_id.clone()),
                holder_email: order.email.as_deref().map(str::to_lowercase),
                status: TicketStatus::Valid,
                version: 1,
                secret: new_secret(),
                transfers: 0,
                entered_at_ms: None,
                entry_gate: None,
                inside: false,
                changed_at_ms: order.created_at_ms,
            })
            .collect()
    }

    /// What its pass says; `None` for a record whose id or secret does not read back (the
    /// store holds only ones this module made).
    pub fn pass(&self) -> Option<Pass> {
        Some(Pass {
            ticket_id: uuid::Uuid::parse_str(&self.ticket_id).ok()?,
            version: self.version,
            secret: decode_secret(&self.secret)?,
            event_id: self.event_id.to_string(),
            seat_id: self.seat_id.to_string(),
        })
    }

    /// How the ticket reads to someone who holds it or not: `valid`, `used` (it has entered),
    /// `cancelled`, or `transferred` (valid, but someone else's now).
    pub fn shown_status(&self, holds: bool) -> &'static str {
        match self.status {
            TicketStatus::Cancelled => "cancelled",
            TicketStatus::Valid if !holds => "transferred",
            TicketStatus::Valid if self.entered_at_ms.is_some() => "used",
            TicketStatus::Valid => "valid",
        }
    }

    /// Whether `pass` is this ticket's current pass (an older version's is revoked).
    pub fn is_current(&self, pass: &Pass) -> bool {
        self.version == pass.version && decode_secret(&self.secret) == Some(pass.secret)
    }
}

/// 6 random bytes as 12 hexadecimal digits.
pub fn new_secret() -> String {
    to_hex(&uuid::Uuid::new_v4().as_bytes()[..6])
}

fn decode_secret(hex: &str) -> Option<[u8; 6]> {
    decode_hex::<6>(hex)
}

/// How an event's tickets may be used and passed on; set by its organizer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TicketPolicy {
    /// Whether a ticket scanned out may enter again (default: no).
    #[serde(default)]
    pub reentry: bool,
    /// Whether holders may transfer their tickets (default: yes).
    #[serde(default = "yes")]
    pub transfers_enabled: bool,
    /// Transfers close this many hours before the event starts (0, the default: when it
    /// starts).
    #[serde(default)]
    #[schema(maximum = 8760)]
    pub transfer_cutoff_hours: u32,
    /// How often one ticket may be transferred, 0 to 10 (default 2).
    #[serde(default = "two")]
    #[schema(maximum = 10)]
    pub max_transfers: u32,
}

fn yes() -> bool {
    true
}

fn two() -> u32 {
    2
}

impl Default for TicketPolicy {
    fn default() -> Self {
        Self {
            reentry: false,
            transfers_enabled: true,
            transfer_cutoff_hours: 0,
            max_transfers: 2,
        }
    }
}

/// The most transfers a policy may allow per ticket, and its latest cutoff (a year).
pub const MAX_TRANSFERS: u32 = 10;
pub const MAX_CUTOFF_HOURS: u32 = 8760;

/// Why a ticket cannot be transferred now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TransferRefusal {
    /// Cancelled.
    Revoked,
    /// It has entered.
    Used,
    /// The organizer turned transfers off.
    Disabled,
    /// Past the cutoff, or the event's start cannot be read (refused rather than let open).
    Closed,
    /// Transferred as often as the policy allows.
    Limit(u32),
}

impl Ticket {
    /// Whether the ticket may be transferred at `now_ms` under `policy`, the event starting
    /// at `starts_at_ms`.
    pub fn check_transfer(
        &self,
        policy: &TicketPolicy,
        starts_at_ms: Option<i64>,
        now_ms: i64,
    ) -> Result<(), TransferRefusal> {
        if self.status != TicketStatus::Valid {
            return Err(TransferRefusal::Revoked);
        }
        if self.entered_at_ms.is_some() {
            return Err(TransferRefusal::Used);
        }
        if !policy.transfers_enabled {
            return Err(TransferRefusal::Disabled);
        }
        let cutoff_ms = i64::from(policy.transfer_cutoff_hours) * 3_600_000;
        match starts_at_ms {
            Some(starts) if now_ms < starts.saturating_sub(cutoff_ms) => {}
            _ => return Err(TransferRefusal::Closed),
        }
        if self.transfers >= policy.max_transfers {
            return Err(TransferRefusal::Limit(policy.max_transfers));
        }
        Ok(())
    }
}

/// Everything one transfer writes: the ticket reissued to `to_email` (new version and secret),
/// if it is still at `from_version`, and the `ticket.transferred` message.
#[derive(Debug, Clone)]
pub struct TicketTransfer {
    pub transfer_id: String,
    pub ticket_id: String,
    pub event_id: EventId,
    pub from_version: u32,
    pub new_secret: String,
    pub from_user: String,
    pub from_email: Option<String>,
    /// Lower-cased.
    pub to_email: String,
    /// SHA-256 (hex) of the code mailed to `to_email`, which its account claims the ticket with.
    pub claim_hash: String,
    pub max_transfers: u32,
    pub at_ms: i64,
}

/// A code that proves its holder read the mail sent to a transfer's address: 32 hexadecimal
/// digits (128 random bits), kept only as its hash.
pub fn new_claim_code() -> (String, String) {
    let code = uuid::Uuid::new_v4().simple().to_string();
    let hash = claim_hash(&code);
    (code, hash)
}

/// The hash a claim code is kept as.
pub fn claim_hash(code: &str) -> String {
    use sha2::{Digest, Sha256};
    to_hex(&Sha256::digest(code.trim().to_ascii_lowercase().as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::order::OrderStatus;

    fn order() -> Order {
        Order {
            order_id: OrderId::from("o1"),
            user_id: "u1".into(),
            event_id: EventId::from("6650c0ffee0000000000abcd"),
            seat_ids: vec![SeatId::from("R1-S1"), SeatId::from("R1-S2")],
            amount_minor: 2000,
            currency: "EUR".into(),
            payment_intent_id: "pi".into(),
            status: OrderStatus::Bought,
            created_at_ms: 5,
            cancelled_seat_ids: vec![],
            cancelled_at_ms: vec![],
            refunded_minor: 0,
            revision: 0,
            email: Some("Buyer@Example.com".into()),
        }
    }

    #[test]
    fn an_order_issues_one_ticket_per_seat_each_with_its_own_id_and_secret() {
        let tickets = Ticket::issue(&order());
        assert_eq!(tickets.len(), 2);
        assert_ne!(tickets[0].ticket_id, tickets[1].ticket_id);
        assert_ne!(tickets[0].secret, tickets[1].secret);
        assert_eq!(tickets[1].seat_id, "R1-S2");
        let pass = tickets[0].pass().unwrap();
        assert_eq!((pass.version, pass.seat_id.as_str()), (1, "R1-S1"));
        assert!(tickets[0].is_current(&pass));
        assert!(!tickets[1].is_current(&pass));
    }

    #[test]
    fn transfers_follow_the_policy_and_the_ticket() {
        let ticket = Ticket::issue(&order()).remove(0);
        assert_eq!(ticket.holder_email.as_deref(), Some("buyer@example.com"));
        let policy = TicketPolicy {
            transfer_cutoff_hours: 2,
            ..TicketPolicy::default()
        };
        let starts = 10 * 3_600_000;
        let before_cutoff = starts - 2 * 3_600_000 - 1;
        assert_eq!(
            ticket.check_transfer(&policy, Some(starts), before_cutoff),
            Ok(())
        );
        assert_eq!(
            ticket.check_transfer(&policy, Some(starts), before_cutoff + 1),
            Err(TransferRefusal::Closed)
        );
        assert_eq!(
            ticket.check_transfer(&policy, None, 0),
            Err(TransferRefusal::Closed)
        );
        let off = TicketPolicy {
            transfers_enabled: false,
            ..policy
        };
        assert_eq!(
            ticket.check_transfer(&off, Some(starts), 0),
            Err(TransferRefusal::Disabled)
        );
        let mut used = ticket.clone();
        used.entered_at_ms = Some(1);
        assert_eq!(
            used.check_transfer(&policy, Some(starts), 0),
            Err(TransferRefusal::Used)
        );
        let mut twice = ticket.clone();
        twice.transfers = 2;
        assert_eq!(
            twice.check_transfer(&policy, Some(starts), 0),
            Err(TransferRefusal::Limit(2))
        );
        let mut cancelled = ticket;
        cancelled.status = TicketStatus::Cancelled;
        assert_eq!(
            cancelled.check_transfer(&policy, Some(starts), 0),
            Err(TransferRefusal::Revoked)
        );
    }

    #[test]
    fn a_policy_left_out_reads_as_the_defaults() {
        let policy: TicketPolicy = serde_json::from_str("{}").unwrap();
        assert_eq!(policy, TicketPolicy::default());
        assert!(serde_json::from_str::<TicketPolicy>(r#"{"reentry": true, "other": 1}"#).is_err());
    }

    #[test]
    fn a_renewed_ticket_refuses_its_old_pass() {
        let mut ticket = Ticket::issue(&order()).remove(0);
        let old = ticket.pass().unwrap();
        ticket.version += 1;
        assert!(!ticket.is_current(&old));
        ticket.version -= 1;
        ticket.secret = new_secret();
        assert!(!ticket.is_current(&old));
    }
}
