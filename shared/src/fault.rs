//! Test-only fault injection: named points on the write paths where a test can have the
//! process killed, stopped or failed, to prove that a crash or an error at that instant
//! loses nothing and leaves nothing behind.
//!
//! Built only with the `fault-injection` feature (the fault tests build a bootctl and a
//! deployer of their own with it); in every shipped build [`point`] and [`step`] are empty
//! functions and the environment is never read. With the feature, `MULTIBOOT_FAULT` holds
//! one or more comma-separated [`FaultSpec`]s, `[ACTION@]NAME[:N]`: the N-th time (the
//! first without `:N`) the process reaches the point NAME, ACTION happens:
//! - `kill` (the default): the process dies with SIGKILL;
//! - `stop`: it stops itself with SIGSTOP, for a test to look at it from outside (its
//!   mounts in `/proc/PID/mountinfo`) and then send SIGCONT;
//! - `fail`: [`step`] returns an error naming the point, as a failed step would (a
//!   [`point`] cannot fail and ignores it).

use std::fmt;

/// The environment variable naming the points and what happens there.
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

/// What happens at a point.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FaultAction {
    Kill,
    Stop,
    Fail,
}

/// One entry of `MULTIBOOT_FAULT`: `action` the `nth` time `point` is reached.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FaultSpec {
    pub action: FaultAction,
    pub point: String,
    /// 1 for the first time.
    pub nth: u64,
}

impl FaultSpec {
    /// Parses a comma-separated list of `[kill@|stop@|fail@]NAME[:N]`. Point names contain
    /// ':' themselves, so only a numeric last part is a count; `None` for an unknown action
    /// or an empty name.
    pub fn parse_list(text: &str) -> Option<Vec<FaultSpec>> {
        text.split(',').map(FaultSpec::parse).collect()
    }

    fn parse(text: &str) -> Option<FaultSpec> {
        let (action, rest) = match text.split_once('@') {
            Some(("kill", rest)) => (FaultAction::Kill, rest),
            Some(("stop", rest)) => (FaultAction::Stop, rest),
            Some(("fail", rest)) => (FaultAction::Fail, rest),
            Some(_) => return None,
            None => (FaultAction::Kill, text),
        };
        let (point, nth) = match rest.rsplit_once(':') {
            Some((point, n)) => match n.parse::<u64>() {
                Ok(n) => (point, n),
                Err(_) => (rest, 1),
            },
            None => (rest, 1),
        };
        (!point.is_empty()).then(|| FaultSpec {
            action,
            point: point.to_owned(),
            nth,
        })
    }
}

impl fmt::Display for FaultSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let action = match self.action {
            FaultAction::Kill => "kill",
            FaultAction::Stop => "stop",
            FaultAction::Fail => "fail",
        };
        write!(f, "{action}@{}:{}", self.point, self.nth)
    }
}

/// Kills or stops the process here if the environment says so (feature `fault-injection`
/// only).
#[inline(always)]
pub fn point(name: &str) {
    // A point that cannot fail ignores `fail`.
    let _ = step(name);
}

/// Kills or stops the process here, or fails this step, if the environment says so
/// (feature `fault-injection` only).
#[cfg(feature = "fault-injection")]
pub fn step(name: &str) -> std::io::Result<()> {
    use nix::sys::signal::{raise, Signal};
    let Some(spec) = armed::due(name) else {
        return Ok(());
    };
    match spec.action {
        FaultAction::Kill => {
            let _ = raise(Signal::SIGKILL);
        }
        FaultAction::Stop => {
            let _ = raise(Signal::SIGSTOP);
        }
        FaultAction::Fail => {
            return Err(std::io::Error::other(format!(
                "fault injected at {}:{} ({FAULT_ENV})",
                spec.point, spec.nth
            )))
        }
    }
    Ok(())
}

/// Kills or stops the process here, or fails this step, if the environment says so
/// (feature `fault-injection` only).
#[cfg(not(feature = "fault-injection"))]
#[inline(always)]
pub fn step(_name: &str) -> std::io::Result<()> {
    Ok(())
}

/// The specs of the environment with their hit counts.
#[cfg(feature = "fault-injection")]
mod armed {
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::sync::OnceLock;

    use super::{FaultSpec, FAULT_ENV};

    fn specs() -> &'static [(FaultSpec, AtomicU64)] {
        static SPECS: OnceLock<Vec<(FaultSpec, AtomicU64)>> = OnceLock::new();
        SPECS.get_or_init(|| {
            let Ok(text) = std::env::var(FAULT_ENV) else {
                return Vec::new();
            };
            let specs = FaultSpec::parse_list(&text)
                .unwrap_or_else(|| panic!("{FAULT_ENV}={text:?}: not [ACTION@]NAME[:N],..."));
            specs.into_iter().map(|s| (s, AtomicU64::new(0))).collect()
        })
    }

    /// Counts this arrival at `name` for every spec naming it; the first one whose count
    /// it reaches.
    pub fn due(name: &str) -> Option<&'static FaultSpec> {
        let mut due = None;
        for (spec, hits) in specs().iter().filter(|(spec, _)| spec.point == name) {
            if hits.fetch_add(1, Ordering::SeqCst) + 1 == spec.nth {
                due = due.or(Some(spec));
            }
        }
        due
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(action: FaultAction, point: &str, nth: u64) -> FaultSpec {
        FaultSpec {
            action,
            point: point.to_owned(),
            nth,
        }
    }

    #[test]
    fn specs_parse_with_and_without_action_and_count() {
        assert_eq!(
            FaultSpec::parse_list("replace:created:2"),
            Some(vec![spec(FaultAction::Kill, "replace:created", 2)])
        );
        assert_eq!(
            FaultSpec::parse_list("lock:acquired"),
            Some(vec![spec(FaultAction::Kill, "lock:acquired", 1)])
        );
        assert_eq!(
            FaultSpec::parse_list("fail@mkfs:3,stop@deploy:failed"),
            Some(vec![
                spec(FaultAction::Fail, "mkfs", 3),
                spec(FaultAction::Stop, "deploy:failed", 1)
            ])
        );
        assert_eq!(FaultSpec::parse_list("explode@mkfs"), None);
        assert_eq!(FaultSpec::parse_list("fail@"), None);
        assert_eq!(FaultSpec::parse_list("a,,b"), None);
    }

    #[test]
    fn specs_read_back_as_written() {
        for text in ["kill@a:1", "stop@image:copy:2", "fail@boot-info:image:3"] {
            let parsed = FaultSpec::parse_list(text).expect("a spec");
            assert_eq!(parsed.len(), 1);
            assert_eq!(parsed[0].to_string(), text);
        }
    }
}
