//! The auth service's domain: users, their emails and passwords, and password hashing.

pub mod password;
pub mod user;
