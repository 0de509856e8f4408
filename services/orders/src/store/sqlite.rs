//! The SQLite adapter of [`OrderRepository`]; a purchase runs in a `BEGIN IMMEDIATE`
//! transaction, so it holds the write lock from its first statement.

use std::collections::HashSet;

use async_trait::async_trait;
use holdfast_common::docstore::{SqliteDb, StoreError};
use rusqlite::{ErrorCode, OptionalExtension, Row, TransactionBehavior, params};

use super::{
    IdempotentResponse, NewPurchase, Order, OrderRepository, OrderStatus, OutboxMessage,
    PurchaseOutcome, RepoError,
};
use crate::domain::now_millis;

pub struct SqliteOrders {
    db: SqliteDb,
}

impl SqliteOrders {
    pub fn new(db: SqliteDb) -> Self {
        Self { db }
    }
}

fn is_constraint(error: &rusqlite::Error) -> bool {
    matches!(error, rusqlite::Error::SqliteFailure(e, _) if e.code == ErrorCode::ConstraintViolation)
}

const ORDER_COLUMNS: &str = "order_id, user_id, event_id, seat_ids, amount_minor, currency, payment_intent_id, status, created_at";

fn read_order(row: &Row<'_>) -> rusqlite::Result<(Order, String)> {
    Ok((
        Order {
            order_id: row.get(0)?,
            user_id: row.get(1)?,
            event_id: row.get(2)?,
            seat_ids: Vec::new(),
            amount_minor: row.get(4)?,
            currency: row.get(5)?,
            payment_intent_id: row.get(6)?,
            status: row.get::<_, String>(7).and_then(|s| {
                OrderStatus::parse(&s).ok_or_else(|| {
                    rusqlite::Error::FromSqlConversionFailure(
                        7,
                        rusqlite::types::Type::Text,
                        format!("unknown order status {s:?}").into(),
                    )
                })
            })?,
            created_at_ms: row.get(8)?,
        },
        row.get(3)?,
    ))
}

fn with_seats((mut order, seats): (Order, String)) -> Result<Order, RepoError> {
    order.seat_ids = serde_json::from_str(&seats)
        .map_err(|e| RepoError::Corrupt(format!("seats of {}: {e}", order.order_id)))?;
    Ok(order)
}

fn purchase_blocking(
    c: &mut rusqlite::Connection,
    p: &NewPurchase,
) -> Result<PurchaseOutcome, StoreError> {
    let tx = c.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let order = &p.order;
    let mut seat_taken = false;
    {
        let mut sold =
            tx.prepare("INSERT INTO sold_seats (event_id, seat_id, order_id) VALUES (?1, ?2, ?3)")?;
        for seat in &order.seat_ids {
            match sold.execute(params![order.event_id, seat, order.order_id]) {
                Ok(_) => {}
                Err(e) if is_constraint(&e) => {
                    seat_taken = true;
                    break;
                }
                Err(e) => return Err(e.into()),
            }
        }
    }
    if seat_taken {
        tx.rollback()?;
        // Outside the rolled-back transaction, only seats sold by others remain.
        let mut existing =
            c.prepare("SELECT 1 FROM sold_seats WHERE event_id = ?1 AND seat_id = ?2")?;
        let mut taken = Vec::new();
        for seat in &order.seat_ids {
            if existing.exists(params![order.event_id, seat])? {
                taken.push(seat.clone());
            }
        }
        return Ok(PurchaseOutcome::SeatsTaken(taken));
    }
    let seats = serde_json::to_string(&order.seat_ids).unwrap_or_else(|_| "[]".into());
    let inserted = tx.execute(
        &format!(
            "INSERT INTO orders ({ORDER_COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)"
        ),
        params![
            order.order_id,
            order.user_id,
            order.event_id,
            seats,
            order.amount_minor,
            order.currency,
            order.payment_intent_id,
            order.status.as_str(),
            order.created_at_ms,
        ],
    );
    match inserted {
        Ok(_) => {}
        Err(e) if is_constraint(&e) => return Ok(PurchaseOutcome::IntentUsed),
        Err(e) => return Err(e.into()),
    }
    if let Some(idem) = &p.idempotency {
        tx.execute(
            "DELETE FROM idempotency WHERE user_id = ?1 AND key = ?2 AND expires_at <= ?3",
            params![order.user_id, idem.key, now_millis()],
        )?;
        let recorded = tx.execute(
            "INSERT INTO idempotency (user_id, key, request_hash, status, body, order_id, created_at, expires_at) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
            params![
                order.user_id,
                idem.key,
                idem.request_hash,
                idem.status,
                idem.body,
                order.order_id,
                idem.created_at_ms,
                idem.expires_at_ms,
            ],
        );
        match recorded {
            Ok(_) => {}
            Err(e) if is_constraint(&e) => return Ok(PurchaseOutcome::KeyUsed),
            Err(e) => return Err(e.into()),
        }
    }
    tx.execute(
        "INSERT INTO outbox (id, routing_key, payload, created_at) VALUES (?1, ?2, ?3, ?4)",
        params![
            p.outbox.id,
            p.outbox.routing_key,
            p.outbox.payload,
            now_millis()
        ],
    )?;
    tx.commit()?;
    Ok(PurchaseOutcome::Committed)
}

#[async_trait]
impl OrderRepository for SqliteOrders {
    async fn sold_seats(&self, event_id: &str) -> Result<HashSet<String>, RepoError> {
        let event_id = event_id.to_string();
        Ok(self
            .db
            .call(move |c| {
                let mut statement =
                    c.prepare_cached("SELECT seat_id FROM sold_seats WHERE event_id = ?1")?;
                let seats = statement
                    .query_map([event_id], |r| r.get::<_, String>(0))?
                    .collect::<rusqlite::Result<HashSet<_>>>()?;
                Ok(seats)
            })
            .await?)
    }

    async fn purchase(&self, purchase: &NewPurchase) -> Result<PurchaseOutcome, RepoError> {
        let purchase = purchase.clone();
        Ok(self
            .db
            .call(move |c| purchase_blocking(c, &purchase))
            .await?)
    }

    async fn idempotent_response(
        &self,
        user_id: &str,
        key: &str,
        now_ms: i64,
    ) -> Result<Option<IdempotentResponse>, RepoError> {
        let (user_id, key) = (user_id.to_string(), key.to_string());
        Ok(self
            .db
            .call(move |c| {
                Ok(c.query_row(
                    "SELECT key, request_hash, status, body, created_at, expires_at FROM idempotency \
                     WHERE user_id = ?1 AND key = ?2 AND expires_at > ?3",
                    params![user_id, key, now_ms],
                    |r| {
                        Ok(IdempotentResponse {
                            key: r.get(0)?,
                            request_hash: r.get(1)?,
                            status: r.get(2)?,
                            body: r.get(3)?,
                            created_at_ms: r.get(4)?,
                            expires_at_ms: r.get(5)?,
                        })
                    },
                )
                .optional()?)
            })
            .await?)
    }

    async fn orders_of(&self, user_id: &str) -> Result<Vec<Order>, RepoError> {
        let user_id = user_id.to_string();
        let rows = self
            .db
            .call(move |c| {
                let mut statement = c.prepare(&format!(
                    "SELECT {ORDER_COLUMNS} FROM orders WHERE user_id = ?1 ORDER BY created_at DESC, order_id DESC"
                ))?;
                let rows = statement.query_map([user_id], read_order)?.collect::<rusqlite::Result<Vec<_>>>()?;
                Ok(rows)
            })
            .await?;
        rows.into_iter().map(with_seats).collect()
    }

    async fn order(&self, order_id: &str) -> Result<Option<Order>, RepoError> {
        let order_id = order_id.to_string();
        let row = self
            .db
            .call(move |c| {
                Ok(c.query_row(
                    &format!("SELECT {ORDER_COLUMNS} FROM orders WHERE order_id = ?1"),
                    [order_id],
                    read_order,
                )
                .optional()?)
            })
            .await?;
        row.map(with_seats).transpose()
    }

    async fn pending_outbox(&self, limit: u32) -> Result<Vec<OutboxMessage>, RepoError> {
        Ok(self
            .db
            .call(move |c| {
                let mut statement = c.prepare_cached(
                    "SELECT id, routing_key, payload FROM outbox WHERE sent_at IS NULL ORDER BY created_at LIMIT ?1",
                )?;
                let rows = statement
                    .query_map([limit], |r| {
                        Ok(OutboxMessage {
                            id: r.get(0)?,
                            routing_key: r.get(1)?,
                            payload: r.get(2)?,
                        })
                    })?
                    .collect::<rusqlite::Result<Vec<_>>>()?;
                Ok(rows)
            })
            .await?)
    }

    async fn mark_sent(&self, id: &str) -> Result<(), RepoError> {
        let id = id.to_string();
        self.db
            .call(move |c| {
                c.execute(
                    "UPDATE outbox SET sent_at = ?2 WHERE id = ?1",
                    params![id, now_millis()],
                )?;
                Ok(())
            })
            .await?;
        Ok(())
    }
}
