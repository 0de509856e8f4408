//! Giving a ticket to someone else, by e-mail address.
//!
//! A transfer reissues the ticket: a new version and secret (so the giver's pass, and every
//! copy of it, is `revoked` at the door), and the receiver's address as its holder. Both are
//! mailed (the `ticket.transferred` message, written in the transfer's transaction); the
//! receiver's mail carries a claim code. An account signed in with that address claims the
//! ticket with the code (so a receiver without an account gets it once they sign up, and the
//! ticket waits for them). Both are needed: accounts are not proof of owning their address,
//! reading the mail sent there is. Refused once the ticket has entered, after the event's
//! transfer cutoff, past its most transfers, or when the organizer turned transfers off (the
//! event's [`crate::domain::ticket::TicketPolicy`]).

use std::sync::Arc;

use holdfast_common::auth::AuthUser;
use holdfast_common::messages::TicketTransferred;
use holdfast_common::when::format_millis;
use tokio::sync::Notify;
use validator::ValidateEmail;

use crate::domain::now_millis;
use crate::domain::ticket::{Ticket, TicketTransfer, claim_hash, new_claim_code, new_secret};
use crate::error::OrdersError;
use crate::layouts::Layouts;
use crate::store::TicketStore;

/// What transfers use.
#[derive(Clone)]
pub struct Ports {
    pub tickets: Arc<dyn TicketStore>,
    pub layouts: Arc<Layouts>,
    pub outbox_wake: Arc<Notify>,
}

/// The longest address accepted (RFC 5321's path limit).
const MAX_EMAIL_LEN: usize = 254;

/// A transfer made: the ticket as it now is, and the code its receiver claims it with.
pub struct Transferred {
    pub ticket: Ticket,
    pub claim_code: String,
}

/// Gives the caller's ticket `ticket_id` to `to_email`.
pub async fn transfer(
    ports: &Ports,
    caller: &AuthUser,
    ticket_id: &str,
    to_email: &str,
) -> Result<Transferred, OrdersError> {
    let to_email = to_email.trim().to_lowercase();
    if to_email.len() > MAX_EMAIL_LEN || !to_email.validate_email() {
        return Err(
            holdfast_common::extract::field_error("email", "must be an e-mail address").into(),
        );
    }
    // Only a holder gives, admins included.
    let ticket = held_by(ports, caller, ticket_id, false).await?;
    if ticket.holder_email.as_deref() == Some(to_email.as_str())
        || caller.email().eq_ignore_ascii_case(&to_email)
    {
        return Err(holdfast_common::extract::field_error(
            "email",
            "is the ticket's holder already",
        )
        .into());
    }
    let layout = ports.layouts.existing(&ticket.event_id).await?;
    let policy = ports.tickets.ticket_policy(&ticket.event_id).await?;
    let now = now_millis();
    ticket
        .check_transfer(&policy, layout.starts_at_ms, now)
        .map_err(OrdersError::TransferRefused)?;
    let (claim_code, claim_hash) = new_claim_code();
    let transfer = TicketTransfer {
        transfer_id: uuid::Uuid::new_v4().to_string(),
        ticket_id: ticket.ticket_id.clone(),
        event_id: ticket.event_id.clone(),
        from_version: ticket.version,
        new_secret: new_secret(),
        from_user: caller.id().to_string(),
        from_email: Some(caller.email().to_lowercase()).filter(|e| !e.is_empty()),
        to_email,
        claim_hash,
        max_transfers: policy.max_transfers,
        at_ms: now,
    };
    let announce = crate::outbox::message(&TicketTransferred {
        transfer_id: transfer.transfer_id.clone(),
        ticket_id: ticket.ticket_id.clone(),
        event_id: ticket.event_id.to_string(),
        seat_id: ticket.seat_id.to_string(),
        order_id: ticket.order_id.to_string(),
        from_user_id: transfer.from_user.clone(),
        from_email: transfer.from_email.clone(),
        to_email: transfer.to_email.clone(),
        transferred_at: format_millis(now),
        event: Some(layout.summary()),
        seat: layout
            .seat_labels(std::slice::from_ref(&ticket.seat_id))
            .pop(),
        claim_code: Some(claim_code.clone()),
    })?;
    if !ports.tickets.transfer(&transfer, &announce).await? {
        // Another request changed the ticket between the read and the write (a scan, a
        // cancellation, another transfer): nothing was written.
        return Err(OrdersError::TicketChanged);
    }
    ports.outbox_wake.notify_one();
    let ticket = ports
        .tickets
        .ticket(&ticket.ticket_id)
        .await?
        .ok_or(OrdersError::NoSuchTicket)?;
    Ok(Transferred { ticket, claim_code })
}

/// The caller's ticket; with `admins_too`, any ticket for an admin (404 otherwise: a
/// ticket of someone else's does not exist for the caller).
pub async fn held_by(
    ports: &Ports,
    caller: &AuthUser,
    ticket_id: &str,
    admins_too: bool,
) -> Result<Ticket, OrdersError> {
    if uuid::Uuid::parse_str(ticket_id).is_err() {
        return Err(OrdersError::NoSuchTicket);
    }
    ports
        .tickets
        .ticket(ticket_id)
        .await?
        .filter(|t| {
            t.holder_id.as_deref() == Some(caller.id()) || (admins_too && caller.is_admin())
        })
        .ok_or(OrdersError::NoSuchTicket)
}

/// Gives the caller the ticket transferred to their address with `code`; 404 unless one waits
/// for them with it.
pub async fn claim(ports: &Ports, caller: &AuthUser, code: &str) -> Result<Ticket, OrdersError> {
    let email = caller.email();
    if email.is_empty() || code.trim().is_empty() || code.len() > 64 {
        return Err(OrdersError::NoSuchTicket);
    }
    let claimed = ports
        .tickets
        .claim_ticket(&claim_hash(code), email, caller.id())
        .await?
        .ok_or(OrdersError::NoSuchTicket)?;
    ports
        .tickets
        .ticket(&claimed)
        .await?
        .ok_or(OrdersError::NoSuchTicket)
}
