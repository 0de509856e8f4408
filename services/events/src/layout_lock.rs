//! The layout lock the orders service grants around a change of an event's seats or its
//! deletion. Orders is the only one who knows which seats are held or sold, and it grants the
//! lock atomically with that check and refuses every hold while the lock stands; releasing it
//! makes every layout orders read before stale. So no hold or sale straddles the change.

use std::sync::Arc;
use std::time::Duration;

use holdfast_common::replicas::BaseUrls;
use holdfast_common::service_auth::ServiceKeys;
use serde::Deserialize;

/// What asking for the lock led to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LayoutLock {
    /// Granted: release it with this token when the change is written (or abandoned).
    Granted(String),
    /// Refused: seats of the event are held or sold.
    HasOrders { held_seats: u64, sold_seats: u64 },
    /// Refused: another change of the event holds the lock.
    Busy,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct LockAnswer {
    token: Option<String>,
    #[serde(default)]
    busy: bool,
    #[serde(default)]
    held_seats: u64,
    #[serde(default)]
    sold_seats: u64,
}

#[derive(Debug, thiserror::Error)]
#[error("cannot reach the orders service: {0}")]
pub struct OrdersUnavailable(String);

#[derive(Clone)]
pub struct OrdersClient {
    client: reqwest::Client,
    orders: BaseUrls,
    /// Sign the service token every call to orders' `/internal` routes carries.
    service_keys: Arc<ServiceKeys>,
}

/// How often releasing a lock is tried: an unreleased lock blocks holds until it runs out.
const UNLOCK_ATTEMPTS: u32 = 3;

impl OrdersClient {
    pub fn new(
        orders_url: &str,
        timeout: Duration,
        service_keys: Arc<ServiceKeys>,
    ) -> anyhow::Result<Self> {
        Ok(Self {
            client: reqwest::Client::builder().timeout(timeout).build()?,
            orders: BaseUrls::new(orders_url),
            service_keys,
        })
    }

    /// `request` with this service's token.
    fn signed(&self, request: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
        match self.service_keys.header(crate::SERVICE) {
            Some(token) => request.header(reqwest::header::AUTHORIZATION, token),
            None => request,
        }
    }

    fn lock_path(event_id: &str) -> String {
        format!("/internal/events/{event_id}/layout-lock")
    }

    pub async fn lock_layout(&self, event_id: &str) -> Result<LayoutLock, OrdersUnavailable> {
        let url = Self::lock_path(event_id);
        let response = self
            .orders
            .send(|base| self.signed(self.client.post(format!("{base}{url}"))))
            .await
            .map_err(|e| OrdersUnavailable(e.to_string()))?;
        if !response.status().is_success() {
            return Err(OrdersUnavailable(format!(
                "POST {url} answered {}",
                response.status()
            )));
        }
        let answer: LockAnswer = response
            .json()
            .await
            .map_err(|e| OrdersUnavailable(e.to_string()))?;
        Ok(match answer.token {
            Some(token) => LayoutLock::Granted(token),
            None if answer.busy => LayoutLock::Busy,
            None => LayoutLock::HasOrders {
                held_seats: answer.held_seats,
                sold_seats: answer.sold_seats,
            },
        })
    }

    /// Releases the lock; failures are logged (the lock runs out by itself, and the bus message
    /// about the change drops the orders service's cached layouts).
    pub async fn unlock_layout(&self, event_id: &str, token: &str) {
        let url = format!("{}/{token}", Self::lock_path(event_id));
        for attempt in 1..=UNLOCK_ATTEMPTS {
            let sent = self
                .orders
                .send(|base| self.signed(self.client.delete(format!("{base}{url}"))));
            match sent.await {
                Ok(response) if response.status().is_success() => return,
                Ok(response) => {
                    tracing::warn!(status = %response.status(), attempt, %event_id, "layout lock not released")
                }
                Err(error) => {
                    tracing::warn!(%error, attempt, %event_id, "layout lock not released")
                }
            }
        }
    }
}
