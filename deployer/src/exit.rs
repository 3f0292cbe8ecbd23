//! The deployer's exit statuses, documented in `--help` and deployer(8).

use std::process::ExitCode;

/// The documented exit statuses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    /// Done: the config is valid, the plan printed, the deploy finished.
    Success = 0,
    /// The config file or a disk cannot be read, the output cannot be written, or a deploy
    /// step failed after the first write.
    Failure = 1,
    /// Usage error, or a deploy that cannot be confirmed.
    Usage = 2,
    /// The config has errors, does not fit the disks, or this host cannot deploy it.
    Invalid = 3,
    /// `deploy` was run by a user other than root.
    NotRoot = 4,
}

impl From<Exit> for ExitCode {
    fn from(exit: Exit) -> ExitCode {
        ExitCode::from(exit as u8)
    }
}
