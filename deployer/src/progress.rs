//! The progress of long work (a tree copy, a download, a raw image write): a bar with the
//! rate and the time left on a terminal (indicatif), a plain line every [`LINE_EVERY`]
//! elsewhere, nothing with `-q`; a summary line when the work is done.
//!
//! The work only adds to atomic counters ([`Meter::add`]): one relaxed atomic addition,
//! which the copy's workers can afford per file. A thread of the meter's own reads them
//! and draws the bar or writes the lines, so the work never waits for the terminal. The
//! log file (see [`crate::output`]) gets the plain lines and the summary whatever
//! stderr is.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::output;

/// How often a plain progress line is written when stderr is not a terminal.
pub const LINE_EVERY: Duration = Duration::from_secs(5);

/// How often the bar is given the counters.
const BAR_EVERY: Duration = Duration::from_millis(100);

/// How much work there is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Total {
    /// Known before the work starts.
    Known(u64),
    /// Found as the work goes on ([`Meter::more_to_do`]), known once [`Meter::all_found`].
    Found,
    /// Not known (a download whose server tells no length).
    Unknown,
}

/// The counters the work adds to and the meter's thread reads.
struct Counters {
    /// `"image alpha"`, `"tree /srv/alpha"`: what the lines are about.
    subject: String,
    /// `"copied"`, `"downloaded"`, `"written"`.
    verb: &'static str,
    done: AtomicU64,
    /// The bytes to do so far, 0 while unknown.
    total: AtomicU64,
    /// Whether `total` is the whole work (else it still grows, or is unknown).
    total_final: AtomicBool,
    started: Instant,
}

impl Counters {
    fn total(&self) -> Option<u64> {
        self.total_final
            .load(Ordering::Relaxed)
            .then(|| self.total.load(Ordering::Relaxed))
    }

    fn line(&self) -> String {
        format!(
            "deployer: {}: {}",
            self.subject,
            progress_line(
                self.verb,
                self.done.load(Ordering::Relaxed),
                self.total(),
                self.started.elapsed()
            )
        )
    }
}

/// The progress of one piece of work, shown while it lives.
pub struct Meter {
    counters: Arc<Counters>,
    /// Dropped to stop the thread.
    stop: Option<mpsc::Sender<()>>,
    thread: Option<JoinHandle<()>>,
    bar: Option<ProgressBar>,
}

impl Meter {
    /// Starts showing the progress of work on `subject` whose lines say `verb` (`"copied"`)
    /// and that does `total` bytes.
    pub fn start(subject: impl Into<String>, verb: &'static str, total: Total) -> Meter {
        let known = match total {
            Total::Known(bytes) => Some(bytes),
            Total::Found | Total::Unknown => None,
        };
        let counters = Arc::new(Counters {
            subject: subject.into(),
            verb,
            done: AtomicU64::new(0),
            total: AtomicU64::new(known.unwrap_or(0)),
            total_final: AtomicBool::new(known.is_some()),
            started: Instant::now(),
        });
        let bar =
            output::progress_bars().then(|| new_bar(&counters.subject, total != Total::Unknown));
        let lines = output::shows_progress() && bar.is_none();
        if !(bar.is_some() || lines || output::logs()) {
            return Meter {
                counters,
                stop: None,
                thread: None,
                bar: None,
            };
        }
        let (stop, stopped) = mpsc::channel::<()>();
        let thread = {
            let counters = Arc::clone(&counters);
            let bar = bar.clone();
            let emit = move |line: String| {
                if lines {
                    output::info(format_args!("{line}"));
                } else {
                    output::log(format_args!("{line}"));
                }
            };
            std::thread::spawn(move || show(&counters, bar.as_ref(), LINE_EVERY, &emit, &stopped))
        };
        Meter {
            counters,
            stop: Some(stop),
            thread: Some(thread),
            bar,
        }
    }

    /// `bytes` more done.
    pub fn add(&self, bytes: u64) {
        self.counters.done.fetch_add(bytes, Ordering::Relaxed);
    }

    /// `bytes` more to do, found as the work goes on (a copy finds its files as it walks).
    pub fn more_to_do(&self, bytes: u64) {
        self.counters.total.fetch_add(bytes, Ordering::Relaxed);
    }

    /// Everything to do has been found: the total is known from now on.
    pub fn all_found(&self) {
        self.counters.total_final.store(true, Ordering::Relaxed);
    }

    /// The work is done: the bar goes, and a summary line says what was done, how fast,
    /// with `note` (`"1204 files"`) if not empty.
    pub fn finish(mut self, note: &str) {
        self.stop_showing();
        let counters = &self.counters;
        let done = counters.done.load(Ordering::Relaxed);
        let elapsed = counters.started.elapsed();
        let note = if note.is_empty() {
            String::new()
        } else {
            format!(" ({note})")
        };
        crate::info!(
            "deployer: {}: {} {}{note} in {}, {}",
            counters.subject,
            counters.verb,
            bytes(done as f64),
            duration(elapsed),
            rate(done, elapsed)
        );
    }

    fn stop_showing(&mut self) {
        drop(self.stop.take());
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
        if let Some(bar) = self.bar.take() {
            bar.finish_and_clear();
        }
    }
}

impl Drop for Meter {
    /// Work that failed: the bar goes, without a summary.
    fn drop(&mut self) {
        self.stop_showing();
    }
}

/// The meter's thread: gives the bar the counters every [`BAR_EVERY`], and hands `emit` a
/// plain line every `every`, until `stop`.
fn show(
    counters: &Counters,
    bar: Option<&ProgressBar>,
    every: Duration,
    emit: &dyn Fn(String),
    stop: &mpsc::Receiver<()>,
) {
    let tick = if bar.is_some() { BAR_EVERY } else { every };
    let mut last_line = Instant::now();
    while let Err(RecvTimeoutError::Timeout) = stop.recv_timeout(tick) {
        if let Some(bar) = bar {
            let total = counters.total.load(Ordering::Relaxed);
            if total > 0 {
                bar.set_length(total);
            }
            bar.set_position(counters.done.load(Ordering::Relaxed));
        }
        if last_line.elapsed() >= every {
            last_line = Instant::now();
            emit(counters.line());
        }
    }
}

/// A bar on stderr, in colour where [`output::colours`] allows, drawn at once: with the
/// total, the rate and the time left when the total is known (or will be), else a spinner.
fn new_bar(subject: &str, total_known: bool) -> ProgressBar {
    let colour = output::colours();
    let template = match (total_known, colour) {
        (true, true) => {
            "deployer: {prefix} [{wide_bar:.cyan/blue}] {binary_bytes}/{binary_total_bytes} \
             {binary_bytes_per_sec} {eta} left"
        }
        (true, false) => {
            "deployer: {prefix} [{wide_bar}] {binary_bytes}/{binary_total_bytes} \
             {binary_bytes_per_sec} {eta} left"
        }
        (false, true) => "deployer: {prefix} {spinner:.cyan} {binary_bytes} {binary_bytes_per_sec}",
        (false, false) => "deployer: {prefix} {spinner} {binary_bytes} {binary_bytes_per_sec}",
    };
    let style = ProgressStyle::with_template(template)
        .expect("the templates are valid")
        .progress_chars("=> ")
        .tick_chars("|/-\\ ");
    let bar = output::add_bar(
        ProgressBar::with_draw_target(None, ProgressDrawTarget::hidden())
            .with_style(style)
            .with_prefix(subject.to_owned()),
    );
    bar.enable_steady_tick(BAR_EVERY);
    bar.tick();
    bar
}

/// A progress line: `copied 12.0 MiB of 48.0 MiB (25%), 6.0 MiB/s, 6 s left`, or without
/// a known total `downloaded 1.5 MiB, 3.0 MiB/s`.
pub fn progress_line(verb: &str, done: u64, total: Option<u64>, elapsed: Duration) -> String {
    let speed = rate(done, elapsed);
    match total {
        Some(total) if total > 0 => {
            let left = match done {
                0 => String::new(),
                _ if done >= total => ", 0 s left".to_owned(),
                _ => {
                    let seconds = elapsed.as_secs_f64() * (total - done) as f64 / done as f64;
                    format!(", {} left", duration(Duration::from_secs_f64(seconds)))
                }
            };
            format!(
                "{verb} {} of {} ({}%), {speed}{left}",
                bytes(done as f64),
                bytes(total as f64),
                done.saturating_mul(100) / total
            )
        }
        _ => format!("{verb} {}, {speed}", bytes(done as f64)),
    }
}

/// `6.0 MiB/s`; `-/s` before any time passed.
fn rate(done: u64, elapsed: Duration) -> String {
    let seconds = elapsed.as_secs_f64();
    if seconds > 0.0 {
        format!("{}/s", bytes(done as f64 / seconds))
    } else {
        "-/s".to_owned()
    }
}

/// `512 B`, `3.5 KiB`, `12.0 MiB`, `1.25 GiB`.
pub fn bytes(n: f64) -> String {
    const KIB: f64 = 1024.0;
    if n < KIB {
        format!("{n:.0} B")
    } else if n < KIB * KIB {
        format!("{:.1} KiB", n / KIB)
    } else if n < KIB * KIB * KIB {
        format!("{:.1} MiB", n / (KIB * KIB))
    } else {
        format!("{:.2} GiB", n / (KIB * KIB * KIB))
    }
}

/// `0.04 s`, `4.2 s`, `42 s`, `3 min 5 s`, `1 h 2 min`.
fn duration(elapsed: Duration) -> String {
    let seconds = elapsed.as_secs();
    match seconds {
        0 => format!("{:.2} s", elapsed.as_secs_f64()),
        1..=9 => format!("{:.1} s", elapsed.as_secs_f64()),
        10..=59 => format!("{seconds} s"),
        60..=3599 => format!("{} min {} s", seconds / 60, seconds % 60),
        _ => format!("{} h {} min", seconds / 3600, seconds % 3600 / 60),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn progress_lines() {
        assert_eq!(
            progress_line(
                "downloaded",
                12 << 20,
                Some(48 << 20),
                Duration::from_secs(2)
            ),
            "downloaded 12.0 MiB of 48.0 MiB (25%), 6.0 MiB/s, 6.0 s left"
        );
        assert_eq!(
            progress_line("downloaded", 3 << 19, None, Duration::from_millis(500)),
            "downloaded 1.5 MiB, 3.0 MiB/s"
        );
        assert_eq!(
            progress_line("copied", 0, Some(0), Duration::ZERO),
            "copied 0 B, -/s"
        );
        assert_eq!(
            progress_line("copied", 0, Some(100), Duration::from_secs(5)),
            "copied 0 B of 100 B (0%), 0 B/s"
        );
        assert_eq!(
            progress_line("written", 3 << 29, Some(1 << 31), Duration::from_secs(100)),
            "written 1.50 GiB of 2.00 GiB (75%), 15.4 MiB/s, 33 s left"
        );
        assert_eq!(
            progress_line("written", 1 << 20, Some(1 << 30), Duration::from_secs(10)),
            "written 1.0 MiB of 1.00 GiB (0%), 102.4 KiB/s, 2 h 50 min left"
        );
        assert_eq!(
            progress_line("copied", 3584, None, Duration::from_secs(1)),
            "copied 3.5 KiB, 3.5 KiB/s"
        );
    }

    #[test]
    fn the_thread_writes_a_line_every_interval_until_stopped() {
        let counters = Arc::new(Counters {
            subject: "image a".to_owned(),
            verb: "downloaded",
            done: AtomicU64::new(0),
            total: AtomicU64::new(4096),
            total_final: AtomicBool::new(true),
            started: Instant::now(),
        });
        let (stop, stopped) = mpsc::channel::<()>();
        let (lines, emitted) = mpsc::channel::<String>();
        let thread = {
            let counters = Arc::clone(&counters);
            std::thread::spawn(move || {
                let emit = |line: String| lines.send(line).expect("the test listens");
                show(&counters, None, Duration::from_millis(10), &emit, &stopped);
            })
        };
        counters.done.store(1024, Ordering::Relaxed);
        let first = emitted.recv().expect("a line");
        assert!(
            first.starts_with("deployer: image a: downloaded 1.0 KiB of 4.0 KiB (25%), "),
            "{first}"
        );
        counters.done.store(2048, Ordering::Relaxed);
        let later = emitted
            .iter()
            .find(|line| line.contains("(50%)"))
            .expect("a later line");
        assert!(later.contains("2.0 KiB of 4.0 KiB"), "{later}");
        drop(stop);
        thread.join().expect("the thread ends once stopped");
    }

    #[test]
    fn durations() {
        assert_eq!(duration(Duration::from_millis(42)), "0.04 s");
        assert_eq!(duration(Duration::from_millis(4200)), "4.2 s");
        assert_eq!(duration(Duration::from_secs(42)), "42 s");
        assert_eq!(duration(Duration::from_secs(185)), "3 min 5 s");
        assert_eq!(duration(Duration::from_secs(3720)), "1 h 2 min");
    }

    #[test]
    fn a_meter_counts_what_it_is_given() {
        let meter = Meter::start("tree /srv/a", "copied", Total::Found);
        meter.more_to_do(300);
        meter.add(100);
        meter.add(200);
        assert_eq!(meter.counters.total(), None, "not all found yet");
        meter.all_found();
        assert_eq!(meter.counters.total(), Some(300));
        assert!(
            meter
                .counters
                .line()
                .starts_with("deployer: tree /srv/a: copied 300 B of 300 B (100%), "),
            "{}",
            meter.counters.line()
        );
        meter.finish("2 files");
    }
}
