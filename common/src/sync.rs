//! Locking shared in-process state.

use std::sync::{Mutex, MutexGuard};

/// Locks `mutex`, recovering it if a panicking holder poisoned it: the state behind each of
/// Holdfast's mutexes stays consistent between statements, so a panic elsewhere is no reason
/// to stop serving.
pub fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}
