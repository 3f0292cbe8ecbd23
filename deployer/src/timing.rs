//! How long each step of a deploy took, for `deploy --json`'s `timings` and the `-v` lines:
//! the time per node is what operators of a fleet watch, and the benchmarks read where it
//! goes from here. Steps of images deployed at the same time overlap.

use std::sync::{Mutex, PoisonError};
use std::time::Instant;

use nix::sys::resource::{getrusage, UsageWho};

/// One timed step.
#[derive(Debug, Clone, PartialEq)]
pub struct Step {
    /// `partition`, `mkfs`, `write`, `grub`, ...
    pub step: &'static str,
    /// The image the step belongs to.
    pub image: Option<String>,
    /// Seconds from the start of the deploy.
    pub start: f64,
    pub seconds: f64,
}

/// The steps of one deploy, and its peak memory.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Timings {
    /// The whole deploy, once it ended.
    pub seconds: Option<f64>,
    /// The deployer's own peak resident set (`VmHWM`), in bytes.
    pub peak_rss_bytes: Option<u64>,
    /// The processor time of the deployer's own threads, and of the programs it ran
    /// (those that ended), user and system together.
    pub cpu_seconds: Option<f64>,
    pub programs_cpu_seconds: Option<f64>,
    pub steps: Vec<Step>,
}

struct Recorder {
    origin: Option<Instant>,
    steps: Vec<Step>,
}

static RECORDER: Mutex<Recorder> = Mutex::new(Recorder {
    origin: None,
    steps: Vec::new(),
});

fn recorder() -> std::sync::MutexGuard<'static, Recorder> {
    RECORDER.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Starts the clock of the deploy; steps before it count from their own start.
pub fn start() {
    recorder().origin = Some(Instant::now());
}

/// Runs `work` as the step `step` (of `image`), records how long it took and says so
/// with `-v`.
pub fn step<T>(step: &'static str, image: Option<&str>, work: impl FnOnce() -> T) -> T {
    let began = Instant::now();
    let out = work();
    record(step, image, began);
    out
}

/// Records the step `step` (of `image`) that began at `began` and ends now, and says so
/// with `-v`.
pub fn record(step: &'static str, image: Option<&str>, began: Instant) {
    let seconds = began.elapsed().as_secs_f64();
    let mut rec = recorder();
    let start = rec
        .origin
        .map_or(0.0, |origin| began.duration_since(origin).as_secs_f64());
    rec.steps.push(Step {
        step,
        image: image.map(str::to_owned),
        start,
        seconds,
    });
    drop(rec);
    match image {
        Some(image) => crate::output::detail(format_args!(
            "deployer: image {image}: {step} took {seconds:.2} s"
        )),
        None => crate::output::detail(format_args!("deployer: {step} took {seconds:.2} s")),
    }
}

/// What was recorded so far.
pub fn timings() -> Timings {
    let rec = recorder();
    Timings {
        seconds: rec.origin.map(|origin| origin.elapsed().as_secs_f64()),
        peak_rss_bytes: std::fs::read_to_string("/proc/self/status")
            .ok()
            .and_then(|status| peak_rss(&status)),
        cpu_seconds: cpu_seconds(UsageWho::RUSAGE_SELF),
        programs_cpu_seconds: cpu_seconds(UsageWho::RUSAGE_CHILDREN),
        steps: rec.steps.clone(),
    }
}

/// The user and system time of `who`.
fn cpu_seconds(who: UsageWho) -> Option<f64> {
    let usage = getrusage(who).ok()?;
    let seconds = |t: nix::sys::time::TimeVal| t.tv_sec() as f64 + t.tv_usec() as f64 / 1e6;
    Some(seconds(usage.user_time()) + seconds(usage.system_time()))
}

/// `VmHWM` of a `/proc/PID/status` text, in bytes.
pub fn peak_rss(status: &str) -> Option<u64> {
    kib_field(status, "VmHWM")
}

/// The field `key` of a `/proc` text of `Key:   N kB` lines (`status`, `meminfo`), in
/// bytes.
pub fn kib_field(text: &str, key: &str) -> Option<u64> {
    let rest = text
        .lines()
        .find_map(|line| line.strip_prefix(key)?.strip_prefix(':'))?;
    let kib: u64 = rest.trim().strip_suffix("kB")?.trim().parse().ok()?;
    Some(kib * 1024)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn peak_rss_is_read_from_vmhwm() {
        let status =
            "Name:\tdeployer\nVmPeak:\t  20000 kB\nVmHWM:\t    9876 kB\nVmRSS:\t 9000 kB\n";
        assert_eq!(peak_rss(status), Some(9876 * 1024));
        assert_eq!(peak_rss("Name:\tx\n"), None);
    }

    #[test]
    fn steps_are_recorded_with_their_image() {
        start();
        let got = step("probe-step", Some("alpha"), || 7);
        assert_eq!(got, 7);
        let recorded = timings();
        let mine = recorded
            .steps
            .iter()
            .find(|s| s.step == "probe-step")
            .expect("recorded");
        assert_eq!(mine.image.as_deref(), Some("alpha"));
        assert!(mine.seconds >= 0.0 && mine.start >= 0.0);
        assert!(recorded.peak_rss_bytes.is_some_and(|b| b > 0));
        assert!(recorded.cpu_seconds.is_some_and(|s| s > 0.0));
    }
}
