//! The orders service's domain, free of I/O: seats and seat layouts.

pub mod seat;

pub use holdfast_common::when::now_millis;
