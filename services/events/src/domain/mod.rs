//! The events service's domain: events and their fields' rules (dates are
//! [`holdfast_common::when`]'s).

pub mod event;
