//! Simulated payment intents: what a buyer pays with, and where each one stands.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum IntentStatus {
    RequiresConfirmation,
    Succeeded,
    Failed,
    Consumed,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Intent {
    pub id: String,
    pub user_id: String,
    pub amount_minor: i64,
    pub currency: String,
    pub client_secret: String,
    pub status: IntentStatus,
    /// Set when created with `simulate: "decline"`.
    pub decline: bool,
    #[serde(default)]
    pub expires_at_ms: i64,
}
