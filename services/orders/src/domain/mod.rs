//! The orders service's domain, free of I/O, HTTP and storage: seats and layouts, orders and
//! refunds, the waitlist.

pub mod ids;
pub mod order;
pub mod seat;
pub mod waitlist;

pub use holdfast_common::when::now_millis;
