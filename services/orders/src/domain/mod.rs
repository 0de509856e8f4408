//! The orders service's domain, free of I/O, HTTP and storage: identifiers, seats and layouts,
//! holds and the rules of a request for seats, payment intents, orders and refunds, tickets,
//! the waitlist, the admission queue's pace, and who may manage an event.

pub mod access;
pub mod admission;
pub mod checkin;
pub mod hold;
pub mod ids;
pub mod intent;
pub mod order;
pub mod seat;
pub mod ticket;
pub mod waitlist;

pub use holdfast_common::when::now_millis;
