//! The end-to-end suite: the whole stack through its HTTP API, one module per area, all in one
//! test binary so that the shared `support` code is compiled once.
//!
//! Run one area with `cargo test --test api <module>::` (for example `orders::`).

mod after_sale;
mod auth;
mod door;
mod edge;
mod events;
mod launcher;
mod messages;
mod ml;
mod notifications;
mod openapi;
mod orders;
mod queue;
mod seats;
mod stack;
mod support;
mod venues;
