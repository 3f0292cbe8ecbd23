//! SIGINT, SIGTERM and SIGHUP become a flag that bootctl checks between steps, so it stops
//! at the next step boundary and still unmounts and detaches what it set up.

use std::sync::atomic::{AtomicBool, Ordering};

use nix::sys::signal::{sigaction, SaFlags, SigAction, SigHandler, SigSet, Signal};

use crate::exit::{fail, Code};

static INTERRUPTED: AtomicBool = AtomicBool::new(false);

extern "C" fn record(_: nix::libc::c_int) {
    INTERRUPTED.store(true, Ordering::SeqCst);
}

pub fn install() -> anyhow::Result<()> {
    let action = SigAction::new(
        SigHandler::Handler(record),
        SaFlags::empty(),
        SigSet::empty(),
    );
    for signal in [Signal::SIGINT, Signal::SIGTERM, Signal::SIGHUP] {
        // SAFETY: the handler only stores to an atomic, which is async-signal-safe.
        unsafe { sigaction(signal, &action) }?;
    }
    Ok(())
}

/// Err if a signal asked bootctl to stop.
pub fn check() -> anyhow::Result<()> {
    if INTERRUPTED.load(Ordering::SeqCst) {
        Err(fail(Code::Interrupted, "interrupted; nothing was changed"))
    } else {
        Ok(())
    }
}
