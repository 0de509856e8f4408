//! The orders service's domain: seats and holds.

pub mod hold;
pub mod seat;

pub use holdfast_common::when::now_millis;
