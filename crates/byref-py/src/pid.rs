//! This process's id, read once and again in a child after `fork()`, not on every call.
//!
//! The runtime and the open stores are per process (a forked child has the parent's objects
//! but none of its threads), so every call into the extension asks which process it is in.
//! `getpid` is a system call: measured, two per resolve were a fifth of a small object's
//! resolve on this machine (a VM, where system calls cost more). Tested from Python: the
//! tests that fork and use byref in the child (`tests/test_processes.py`, ...) hang without
//! it.
#![allow(unsafe_code)]

use std::sync::Once;
use std::sync::atomic::{AtomicU32, Ordering};

/// The id, once read; set again by [`forked`] in every child.
static PID: AtomicU32 = AtomicU32::new(0);

/// Runs in the child of every `fork()` (libc's, and so Python's `os.fork` and
/// `multiprocessing`'s), before any other code of the child.
extern "C" fn forked() {
    PID.store(std::process::id(), Ordering::Release);
}

/// This process's id.
pub(crate) fn current() -> u32 {
    static WATCHING: Once = Once::new();
    WATCHING.call_once(|| {
        // SAFETY: `forked` is a plain function that stays loaded (the extension is never
        // unloaded) and only calls `getpid`, which is async-signal-safe.
        unsafe { libc::pthread_atfork(None, None, Some(forked)) };
        // Read after the handler is in place: a fork from here on updates it in the child.
        PID.store(std::process::id(), Ordering::Release);
    });
    PID.load(Ordering::Acquire)
}
