//! This process's id, read once and again in a child after `fork()`, not on every call.
//!
//! The runtime and the open stores are per process (a forked child has the parent's objects
//! but none of its threads), so every call into the extension asks which process it is in.
//! `getpid` is a system call: measured, two per resolve were a fifth of a small object's
//! resolve on this machine (a VM, where system calls cost more). Tested from Python: the
//! tests that fork and use byref in the child (`tests/test_processes.py`, ...) hang without
//! it.
#![allow(unsafe_code)]

use std::sync::OnceLock;
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
    // Whether the fork handler is in place: only then is the cached id kept up to date.
    static WATCHING: OnceLock<bool> = OnceLock::new();
    let watching = *WATCHING.get_or_init(|| {
        // SAFETY: `forked` is a plain function that stays loaded (the extension is never
        // unloaded) and only calls `getpid`, which is async-signal-safe.
        let registered = unsafe { libc::pthread_atfork(None, None, Some(forked)) } == 0;
        // Read after the handler is in place: a fork from here on updates it in the child.
        PID.store(std::process::id(), Ordering::Release);
        registered
    });
    if watching {
        PID.load(Ordering::Acquire)
    } else {
        // No handler (pthread_atfork failed: out of memory): a child would keep the parent's
        // id, so ask the kernel every time.
        std::process::id()
    }
}
