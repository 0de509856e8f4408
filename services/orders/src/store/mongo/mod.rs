//! The MongoDB adapter of the order store, a file per capability.
//!
//! A purchase runs in a multi-document transaction (a replica set is required), retried as the
//! driver documents: the whole transaction on `TransientTransactionError`, the commit alone on
//! `UnknownTransactionCommitResult` — each a bounded number of times, then the error is
//! answered. Seats sold are documents keyed by `<eventId>/<seatId>`, so the unique `_id` is what
//! refuses a second sale. Idempotency records carry `expiresAt` (a date) under a TTL index; the
//! purchase also deletes an expired record of its key itself, since the TTL monitor runs only
//! once a minute.

use holdfast_common::docstore::MongoDb;
use mongodb::bson::{Bson, Document, doc};
use mongodb::error::UNKNOWN_TRANSACTION_COMMIT_RESULT;
use mongodb::{Client, ClientSession, Collection};

use self::records::{OrderDocument, RefundDocument, TicketDocument, WaitlistDocument};
use super::OutboxMessage;
use crate::domain::now_millis;

/// Runs `$body` — an expression using the session `$session` that answers
/// `Result<T, mongodb::error::Error>` — in a transaction, retried as the module's doc says;
/// answers `Result<T, RepoError>`.
macro_rules! in_transaction {
    ($self:ident, |$session:ident| $body:expr) => {{
        let mut $session = $self.client.start_session().await?;
        let mut attempt = 0;
        loop {
            attempt += 1;
            let retry = |e: &mongodb::error::Error| {
                e.contains_label(TRANSIENT_TRANSACTION_ERROR) && attempt < TRANSACTION_ATTEMPTS
            };
            $session.start_transaction().await?;
            match $body {
                Ok(value) => match Self::commit(&mut $session).await {
                    Ok(()) => break Ok(value),
                    Err(e) if retry(&e) => $crate::store::mongo::back_off(attempt).await,
                    Err(e) => break Err(RepoError::from(e)),
                },
                Err(e) => {
                    let _ = $session.abort_transaction().await;
                    if retry(&e) {
                        $crate::store::mongo::back_off(attempt).await;
                        continue;
                    }
                    break Err(RepoError::from(e));
                }
            }
        }
    }};
}
/// How often a purchase transaction is run again after a transient error (write conflicts
/// between concurrent buyers of one seat end here), and a commit retried after an unknown
/// result, before the error is answered.
const TRANSACTION_ATTEMPTS: u32 = 10;
const COMMIT_ATTEMPTS: u32 = 5;

/// Waits before a transaction runs again after a transient error: up to 2, 4, … 64 ms,
/// drawn at random, so that transactions that conflicted over one document (buyers of one
/// event) do not meet again at once and conflict every time.
pub(crate) async fn back_off(attempt: u32) {
    let ceiling = 2_u64 << attempt.clamp(1, 6).saturating_sub(1);
    let mut random = [0_u8; 8];
    let jitter = match getrandom::fill(&mut random) {
        Ok(()) => u64::from_le_bytes(random) % (ceiling * 1000),
        Err(_) => ceiling * 500,
    };
    tokio::time::sleep(std::time::Duration::from_micros(jitter)).await;
}

mod checkin;
mod idempotency;
mod orders;
mod outbox;
mod records;
mod tickets;
mod waitlist;

pub struct MongoOrders {
    client: Client,
    orders: Collection<OrderDocument>,
    idempotency: Collection<Document>,
    sold_seats: Collection<Document>,
    outbox: Collection<Document>,
    refunds: Collection<RefundDocument>,
    tickets: Collection<TicketDocument>,
    devices: Collection<checkin::DeviceDocument>,
    ticket_policies: Collection<Document>,
    scan_nonces: Collection<Document>,
    transfers: Collection<Document>,
    /// Markers of one-off data passes done (`tickets-backfilled`).
    meta: Collection<Document>,
    waitlist: Collection<WaitlistDocument>,
    /// Per event: the next sequence number, the entries and the seats wanted.
    waitlist_lines: Collection<Document>,
    /// How many entries each block of sequence numbers holds (see `store::line`).
    waitlist_blocks: Collection<Document>,
}

impl MongoOrders {
    pub fn new(db: &MongoDb) -> Self {
        let database = db.database();
        Self {
            client: db.client().clone(),
            orders: database.collection("orders"),
            idempotency: database.collection("idempotency"),
            sold_seats: database.collection("sold_seats"),
            outbox: database.collection("outbox"),
            refunds: database.collection("refunds"),
            tickets: database.collection("tickets"),
            devices: database.collection("devices"),
            ticket_policies: database.collection("ticket_policies"),
            scan_nonces: database.collection("scan_nonces"),
            transfers: database.collection("transfers"),
            meta: database.collection("meta"),
            waitlist: database.collection("waitlist"),
            waitlist_lines: database.collection("waitlist_lines"),
            waitlist_blocks: database.collection("waitlist_blocks"),
        }
    }
}

impl MongoOrders {
    async fn write_outbox(
        &self,
        session: &mut ClientSession,
        message: &OutboxMessage,
    ) -> Result<(), mongodb::error::Error> {
        let message = doc! {
            "_id": &message.id,
            "routingKey": &message.routing_key,
            "payload": &message.payload,
            "createdAt": now_millis(),
            "sentAt": Bson::Null,
        };
        self.outbox
            .insert_one(message)
            .session(&mut *session)
            .await?;
        Ok(())
    }

    async fn commit(session: &mut ClientSession) -> Result<(), mongodb::error::Error> {
        let mut attempt = 1;
        loop {
            match session.commit_transaction().await {
                Err(e)
                    if e.contains_label(UNKNOWN_TRANSACTION_COMMIT_RESULT)
                        && attempt < COMMIT_ATTEMPTS =>
                {
                    attempt += 1;
                }
                other => return other,
            }
        }
    }
}

/// A count or sequence number as MongoDB stores it.
fn as_i64(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}
