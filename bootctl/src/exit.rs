//! Exit codes and the error that carries one.

use std::fmt;

/// The documented exit statuses of bootctl (bootctl(8), EXIT STATUS).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Code {
    /// I/O or any other failure.
    Failure = 1,
    /// Bad command line (clap's own status).
    Usage = 2,
    /// TARGET names no entry, or more than one.
    Target = 3,
    /// The multiboot partition could not be found.
    NotFound = 4,
    /// Not allowed: switching needs root.
    Permission = 5,
    /// grub.cfg, grubenv or boot-info.json cannot be read, or cannot do what was asked.
    Config = 6,
    /// Another bootctl holds the lock.
    Busy = 7,
    /// A health check failed (`health`).
    Unhealthy = 8,
    /// Stopped by SIGINT, SIGTERM or SIGHUP.
    Interrupted = 130,
}

/// An error that decides the exit status. Context added on top keeps the status.
#[derive(Debug)]
pub struct Coded {
    pub code: Code,
    pub message: String,
}

impl fmt::Display for Coded {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Coded {}

/// An error with exit status `code`.
pub fn fail(code: Code, message: impl Into<String>) -> anyhow::Error {
    anyhow::Error::new(Coded {
        code,
        message: message.into(),
    })
}

/// The exit status an error stands for: the first coded error in its chain, else 1.
pub fn code_of(err: &anyhow::Error) -> Code {
    err.chain()
        .find_map(|cause| cause.downcast_ref::<Coded>().map(|coded| coded.code))
        .unwrap_or(Code::Failure)
}
