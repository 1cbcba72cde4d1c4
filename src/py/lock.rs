//! The one place that takes the locks of BloomIndex and TagSet objects.
//!
//! Two rules, after tokenizers' detached lock: (1) never wait for a lock while holding the
//! GIL — a thread that holds a lock may need the GIL to finish, so waiting with the GIL held
//! can deadlock; (2) when several objects' locks are needed, take them in one global order (by
//! address), each object once — `a |= b` beside `b |= a` and `b | b` beside an `add` then
//! cannot wait on each other, and a read lock is never taken twice by one thread (a queued
//! writer would make the second wait forever).

use std::sync::{PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard, TryLockError};

use pyo3::Python;

/// A read lock taken by a thread that holds no GIL (inside `py.detach`).
pub fn read_nogil<T>(l: &RwLock<T>) -> RwLockReadGuard<'_, T> {
    l.read().unwrap_or_else(PoisonError::into_inner)
}

/// A write lock taken by a thread that holds no GIL (inside `py.detach`).
pub fn write_nogil<T>(l: &RwLock<T>) -> RwLockWriteGuard<'_, T> {
    l.write().unwrap_or_else(PoisonError::into_inner)
}

/// A read lock for a thread holding the GIL: taken at once when free; otherwise the GIL is
/// released while waiting. (A guard cannot leave `detach`, so the wait is done there and the
/// lock taken again here; the loop covers a writer that slips in between.)
pub fn read<'a, T: Send + Sync>(py: Python<'_>, l: &'a RwLock<T>) -> RwLockReadGuard<'a, T> {
    loop {
        match l.try_read() {
            Ok(g) => return g,
            Err(TryLockError::Poisoned(p)) => return p.into_inner(),
            Err(TryLockError::WouldBlock) => py.detach(|| drop(read_nogil(l))),
        }
    }
}

/// Read locks on several objects' state without the GIL, in address order, each lock once.
/// `get(i)` is the state of the i-th object as passed.
pub struct ReadMany<'a, T> {
    guards: Vec<RwLockReadGuard<'a, T>>,
    slot: Vec<usize>,
}

impl<'a, T> ReadMany<'a, T> {
    pub fn take(locks: &[&'a RwLock<T>]) -> ReadMany<'a, T> {
        let mut order: Vec<usize> = (0..locks.len()).collect();
        order.sort_by_key(|&i| std::ptr::from_ref(locks[i]) as usize);
        let mut slot = vec![0; locks.len()];
        let mut guards: Vec<RwLockReadGuard<'a, T>> = Vec::new();
        let mut last: Option<*const RwLock<T>> = None;
        for i in order {
            let p = std::ptr::from_ref(locks[i]);
            if last != Some(p) {
                guards.push(read_nogil(locks[i]));
                last = Some(p);
            }
            slot[i] = guards.len() - 1;
        }
        ReadMany { guards, slot }
    }

    pub fn get(&self, i: usize) -> &T {
        &self.guards[self.slot[i]]
    }

    pub fn all(&self) -> Vec<&T> {
        (0..self.slot.len()).map(|i| self.get(i)).collect()
    }
}

/// A write lock on `w` and a read lock on another object `r` (never the same one), taken in
/// address order without the GIL.
pub fn write_and_read<'a, T>(
    w: &'a RwLock<T>,
    r: &'a RwLock<T>,
) -> (RwLockWriteGuard<'a, T>, RwLockReadGuard<'a, T>) {
    debug_assert!(!std::ptr::eq(w, r));
    if (std::ptr::from_ref(w) as usize) < (std::ptr::from_ref(r) as usize) {
        let wg = write_nogil(w);
        (wg, read_nogil(r))
    } else {
        let rg = read_nogil(r);
        (write_nogil(w), rg)
    }
}

/// A write lock for a thread holding the GIL (as `read`).
pub fn write<'a, T: Send + Sync>(py: Python<'_>, l: &'a RwLock<T>) -> RwLockWriteGuard<'a, T> {
    loop {
        match l.try_write() {
            Ok(g) => return g,
            Err(TryLockError::Poisoned(p)) => return p.into_inner(),
            Err(TryLockError::WouldBlock) => py.detach(|| drop(write_nogil(l))),
        }
    }
}

/// Below this many items the work is cheaper than releasing and re-taking the GIL.
pub const DETACH_MIN: usize = 2048;

/// Run `f` with the GIL released when the job is big enough to be worth it.
pub fn maybe_detach<T: Send>(py: Python<'_>, n: usize, f: impl FnOnce() -> T + Send) -> T {
    if n >= DETACH_MIN {
        py.detach(f)
    } else {
        f()
    }
}

/// `f` on the state under its read lock: for `n` items or more with the GIL released, else
/// with the GIL held but without waiting for the lock with it.
pub fn with_read<T: Send + Sync, R: Send>(
    py: Python<'_>,
    n: usize,
    l: &RwLock<T>,
    f: impl FnOnce(&T) -> R + Send,
) -> R {
    if n >= DETACH_MIN {
        py.detach(|| f(&read_nogil(l)))
    } else {
        f(&read(py, l))
    }
}

/// As `with_read`, under the write lock.
pub fn with_write<T: Send + Sync, R: Send>(
    py: Python<'_>,
    n: usize,
    l: &RwLock<T>,
    f: impl FnOnce(&mut T) -> R + Send,
) -> R {
    if n >= DETACH_MIN {
        py.detach(|| f(&mut write_nogil(l)))
    } else {
        f(&mut write(py, l))
    }
}
