//! Asks the orders service whether an event has sold or held seats, before its layout may
//! change or it may be deleted. Orders is the only one who knows; asking it (rather than
//! keeping counts from bus messages) means no window where a fresh hold is missed.

use std::time::Duration;

use serde::Deserialize;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Activity {
    pub sold_seats: u64,
    pub held_seats: u64,
}

impl Activity {
    pub fn any(&self) -> bool {
        self.sold_seats > 0 || self.held_seats > 0
    }
}

#[derive(Debug, thiserror::Error)]
#[error("cannot learn whether the event has orders: {0}")]
pub struct ActivityUnavailable(String);

#[derive(Clone)]
pub struct OrdersClient {
    client: reqwest::Client,
    orders_url: String,
}

impl OrdersClient {
    pub fn new(orders_url: &str, timeout: Duration) -> anyhow::Result<Self> {
        Ok(Self {
            client: reqwest::Client::builder().timeout(timeout).build()?,
            orders_url: orders_url.to_string(),
        })
    }

    pub async fn activity(&self, event_id: &str) -> Result<Activity, ActivityUnavailable> {
        let url = format!("{}/internal/events/{event_id}/activity", self.orders_url);
        let response = self
            .client
            .get(&url)
            .send()
            .await
            .map_err(|e| ActivityUnavailable(e.to_string()))?;
        if !response.status().is_success() {
            return Err(ActivityUnavailable(format!(
                "GET {url} answered {}",
                response.status()
            )));
        }
        response
            .json()
            .await
            .map_err(|e| ActivityUnavailable(e.to_string()))
    }
}
