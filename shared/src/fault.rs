//! Test-only fault injection: named points on the write paths where a test can have the
//! process killed, to prove that a crash at that instant loses nothing.
//!
//! Built only with the `fault-injection` feature (the fault tests build a bootctl of their
//! own with it); in every shipped build [`point`] is an empty function. With the feature,
//! `MULTIBOOT_FAULT=NAME` kills the process with SIGKILL the first time it reaches the
//! point NAME, and `MULTIBOOT_FAULT=NAME:N` the N-th time.

/// The environment variable naming the point to die at.
pub const FAULT_ENV: &str = "MULTIBOOT_FAULT";

/// Every point, in the order a file replacement passes them.
pub const POINTS: &[&str] = &[
    "lock:acquired",
    "replace:created",
    "replace:written",
    "replace:synced",
    "replace:renamed",
    "replace:done",
];

/// Dies here with SIGKILL if the environment says so (feature `fault-injection` only).
#[cfg(feature = "fault-injection")]
pub fn point(name: &str) {
    use std::sync::atomic::{AtomicU64, Ordering};
    // Hits of the one point the environment names: no other point is counted.
    static HITS: AtomicU64 = AtomicU64::new(0);
    let Ok(spec) = std::env::var(FAULT_ENV) else {
        return;
    };
    // Point names contain ':' themselves: only a numeric last part is a count.
    let (wanted, nth) = match spec.rsplit_once(':') {
        Some((wanted, n)) if n.parse::<u64>().is_ok() => (wanted, n.parse().unwrap_or(1)),
        _ => (spec.as_str(), 1),
    };
    if wanted == name && HITS.fetch_add(1, Ordering::SeqCst) + 1 == nth {
        let _ = nix::sys::signal::raise(nix::sys::signal::Signal::SIGKILL);
    }
}

/// Dies here with SIGKILL if the environment says so (feature `fault-injection` only).
#[cfg(not(feature = "fault-injection"))]
#[inline(always)]
pub fn point(_name: &str) {}
