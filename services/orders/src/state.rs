//! The handlers' state: the ports of each use-case, and the stores and caches that the
//! read-only routes answer from directly. Built once, in [`crate::build`], and shared behind
//! one `Arc`: axum clones the state for every request, and a clone of the whole set of ports
//! (dozens of `Arc`s and the settings) showed up in the profile of an on-sale.

use std::ops::Deref;
use std::sync::Arc;

use holdfast_common::auth::TokenKeys;
use holdfast_common::config::OrdersSettings;
use holdfast_common::service_auth::ServiceKeys;

use crate::layouts::Layouts;
use crate::live::Live;
use crate::seat_changes::SeatChanges;
use crate::store::Stores;
use crate::store::holds::Holds;
use crate::store::payments::Payments;
use crate::{
    admission, blocks, cancellation, checkin, checkout, holding, idempotency, sales, transfers,
    waitlist,
};

/// The handlers' state: one shared [`Handlers`], cheap to clone.
#[derive(Clone)]
pub struct AppState(Arc<Handlers>);

impl AppState {
    pub fn new(handlers: Handlers) -> Self {
        Self(Arc::new(handlers))
    }
}

impl Deref for AppState {
    type Target = Handlers;

    fn deref(&self) -> &Handlers {
        &self.0
    }
}

/// What the handlers use: the ports of each use-case, and the stores and caches that the
/// read-only routes (seat maps, holds, orders, payments) answer from directly.
pub struct Handlers {
    /// The orders section of the settings; the rest is read once, in [`build`].
    pub settings: OrdersSettings,
    pub stores: Stores,
    pub holds: Holds,
    pub payments: Payments,
    pub layouts: Arc<Layouts>,
    pub keys: Arc<TokenKeys>,
    /// Sign and verify ticket passes.
    pub ticket_keys: Arc<crate::ticket_keys::TicketKeys>,
    /// Verify the service tokens of `/internal/*` calls.
    pub service_keys: Arc<ServiceKeys>,
    /// Built seat maps and recent changes.
    pub live: Arc<Live>,
    /// What follows every seat change: the live map, the bus, the waitlist.
    pub changes: SeatChanges,
    pub holding: holding::Ports,
    pub checkout: checkout::Ports,
    pub idempotency: idempotency::Ports,
    pub cancellation: cancellation::Ports,
    pub waitlist: waitlist::Ports,
    pub sales: sales::Ports,
    pub blocks: blocks::Ports,
    pub checkin: checkin::Ports,
    pub transfers: transfers::Ports,
    pub admission: admission::Ports,
}

holdfast_common::token_keys_in!(AppState, keys);
