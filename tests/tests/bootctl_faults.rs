//! bootctl under faults, on node-disk images with real loop devices and mounts:
//! - killed (SIGKILL) at every named step of `switch` (taking the lock, each file's temp
//!   creation, write, fsync, rename, directory fsync), through the test-only fault points of
//!   a bootctl built with the `fault-injection` feature; the same for `switch --try`, whose
//!   write is the one `mark-good` and `mark-bad` make (they write through the same steps);
//!   and for `refresh`, which rewrites grub.cfg after a kernel update;
//! - killed at random instants during `switch` (`MULTIBOOT_KILL_RUNS` runs, 300 by
//!   default; the long variant in docs/figures.md runs 1,000);
//! - 50 `switch` runs at once to mixed targets;
//! - a read-only and a full multiboot filesystem.
//!
//! After every kill the multiboot partition is mounted read-only by the test and checked
//! with the shared parsers: grub.cfg, grubenv and boot-info.json parse, grubenv is 1024
//! bytes, and the default (for a refresh, the kernel of the refreshed entry) is the old
//! choice or the new one, never anything else; the killed bootctl left no mount directory
//! behind. The next switch must then succeed (the lock is
//! not stuck) and leave no temp file behind. A sample of the killed disks is booted in
//! QEMU: the default image comes up.

use std::io;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::thread::sleep;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use nix::errno::Errno;
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

use e2e::bootctl::{bootctl, static_bootctl};
use e2e::cmd::ChildGuard;
use e2e::disk::{LoopDisk, Mount as TestMount};
use e2e::fixture::FixtureImage;
use e2e::grubcfg::MenuStyle;
use e2e::node::{NodeDisk, BOOT_INFO_PATH, GRUBENV_PATH, GRUB_CFG_PATH, MULTIBOOT_PARTITION};
use e2e::qemu::{boot, expect_boot, Firmware, BOOT_TIMEOUT};
use e2e::tmp::{self, TempDir};
use e2e::tools::require_tools;
use shared::bootinfo::BootInfo;
use shared::fault::{FAULT_ENV, POINTS};
use shared::grubcfg;
use shared::grubenv::GrubEnv;
use shared::mount::{Mount, MountOptions};

const IMAGES: [&str; 3] = ["a", "b", "c"];
const TOOLS: &[&str] = &["sfdisk", "partx", "losetup", "mkfs.ext4", "grub-install"];

/// bootctl with the fault points compiled in: built once per test run (a debug build, with
/// the fault deployer) in its own target directory, `<workspace>/target/fault`.
fn fault_bootctl() -> &'static Path {
    static BINARY: OnceLock<PathBuf> = OnceLock::new();
    BINARY.get_or_init(|| e2e::build::with_fault_injection("bootctl"))
}

/// A node disk of three images with the given menu style, built once per style and copied
/// for each test, held attached to a loop device (bootctl reuses it).
struct Node {
    dir: TempDir,
    disk: NodeDisk,
    attached: LoopDisk,
}

/// What [`TRIAL_BLOCK`] follows in the grubenv style's header.
const GRUBENV_DEFAULT: &str = "   set default=\"${saved_entry}\"\nfi\n";

/// A trial countdown (two tries) added to a grub-mkconfig header, as an administrator
/// could add one; it lets `switch --try` run on the grubenv style.
const TRIAL_BLOCK: &str = r#"if [ -z "${boot_once}" -a "${mb_try}" ]; then
  if [ "${mb_try_left}" = 2 ]; then
    set mb_try_left=1
  elif [ "${mb_try_left}" = 1 ]; then
    set mb_try_left=0
  else
    set mb_try_failed="${mb_try}"
    set mb_try=
    set mb_try_left=
  fi
  if [ "${mb_try}" ]; then
    set default="${mb_try}"
  fi
  save_env mb_try mb_try_left mb_try_failed
fi
"#;

impl Node {
    fn new(style: MenuStyle, label: &str) -> Node {
        require_tools(TOOLS);
        static GRUBENV: OnceLock<NodeDisk> = OnceLock::new();
        static FIXED: OnceLock<NodeDisk> = OnceLock::new();
        let (cell, name) = match style {
            MenuStyle::Grubenv => (&GRUBENV, "grubenv"),
            MenuStyle::Fixed { .. } => (&FIXED, "fixed"),
        };
        let base = cell.get_or_init(|| {
            let images = IMAGES.iter().map(|n| FixtureImage::new(n)).collect();
            NodeDisk::builder(images)
                .menu(style)
                .build(&tmp::process_dir().join(format!("faults-{name}.img")))
        });
        Node::copy_of(base, label)
    }

    /// A node of the grubenv style whose grub.cfg also counts trials down.
    fn with_trials(label: &str) -> Node {
        require_tools(TOOLS);
        let images = IMAGES.iter().map(|n| FixtureImage::new(n)).collect();
        let builder = NodeDisk::builder(images).menu(MenuStyle::Grubenv);
        let cfg = e2e::grubcfg::generate(MenuStyle::Grubenv, builder.facts()).replacen(
            GRUBENV_DEFAULT,
            &format!("{GRUBENV_DEFAULT}{TRIAL_BLOCK}"),
            1,
        );
        assert!(cfg.contains(TRIAL_BLOCK), "the header changed:\n{cfg}");
        e2e::grubcfg::script_check(&cfg);
        let scratch = TempDir::new(label);
        let base = builder.grub_cfg(cfg).build(&scratch.join("base.img"));
        Node::copy_of(&base, label)
    }

    fn copy_of(base: &NodeDisk, label: &str) -> Node {
        let dir = TempDir::new(label);
        let disk = base.copy_to(&dir.join("node.img"));
        let attached = LoopDisk::attach(&disk.path);
        Node {
            dir,
            disk,
            attached,
        }
    }

    fn switch_command(&self, binary: &Path, target: &str) -> Command {
        self.switch_with(binary, &[target])
    }

    /// `bootctl --disk DISK switch ARGS...`, its output discarded but for stderr.
    fn switch_with(&self, binary: &Path, args: &[&str]) -> Command {
        let mut command = Command::new(binary);
        command
            .args(["--disk", self.disk.path_str(), "switch"])
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        command
    }

    /// The multiboot partition checked as a crash may have left it: every file parses,
    /// grubenv has its size; returns the image the default resolves to and the names of
    /// temp files left in the grub directory.
    fn state(&self) -> State {
        let base = self.dir.join("check");
        std::fs::create_dir_all(&base).expect("creating the check directory");
        let device = self.attached.partition(MULTIBOOT_PARTITION);
        let mount = mount_read_only(&device, &base);
        let root = mount.path();
        let cfg_text = read_text(&root.join(GRUB_CFG_PATH));
        let menu = grubcfg::parse(&cfg_text)
            .unwrap_or_else(|e| panic!("grub.cfg no longer parses: {e}\n{cfg_text}"));
        let env_bytes = std::fs::read(root.join(GRUBENV_PATH)).ok();
        let env = env_bytes.as_ref().map(|bytes| {
            assert_eq!(bytes.len(), 1024, "grubenv is not 1024 bytes");
            GrubEnv::parse(bytes).unwrap_or_else(|e| panic!("grubenv no longer parses: {e}"))
        });
        let info_text = read_text(&root.join(BOOT_INFO_PATH));
        BootInfo::from_json(&info_text)
            .unwrap_or_else(|e| panic!("boot-info.json no longer parses: {e}\n{info_text}"));
        let value = if menu.reads_saved_entry {
            env.as_ref()
                .and_then(|env| env.get("saved_entry"))
                .expect("the config reads saved_entry and grubenv has one")
                .to_owned()
        } else {
            menu.defaults
                .iter()
                .rev()
                .find(|d| d.literal)
                .expect("a literal default")
                .value
                .clone()
        };
        let image_of = |value: &str| {
            let entry = menu
                .resolve(value)
                .unwrap_or_else(|| panic!("{value:?} names no entry:\n{cfg_text}"));
            let id = entry.item.id.clone().expect("fixture entries have ids");
            id.strip_prefix("fixture-")
                .unwrap_or_else(|| panic!("unexpected entry {id}"))
                .to_owned()
        };
        let image = image_of(&value);
        let trial = env
            .as_ref()
            .and_then(|env| env.get("mb_try"))
            .filter(|value| !value.is_empty())
            .map(image_of);
        let temp_files = std::fs::read_dir(root.join("boot/grub"))
            .expect("listing boot/grub")
            .chain(std::fs::read_dir(root).expect("listing the root"))
            .map(|e| {
                e.expect("a directory entry")
                    .file_name()
                    .to_string_lossy()
                    .into_owned()
            })
            .filter(|name| name.starts_with('.') && name.ends_with(".tmp"))
            .collect();
        let kernels = menu
            .entries()
            .iter()
            .map(|entry| entry.item.kernel().unwrap_or_default().to_owned())
            .collect();
        mount.unmount().expect("unmounting the check mount");
        State {
            default: image,
            trial,
            kernels,
            temp_files,
        }
    }
}

struct State {
    /// The image the default entry belongs to.
    default: String,
    /// The image on trial (grubenv's `mb_try`), if any.
    trial: Option<String>,
    /// The kernel path of every entry, in menu order.
    kernels: Vec<String>,
    temp_files: Vec<String>,
}

fn read_text(path: &Path) -> String {
    String::from_utf8(
        std::fs::read(path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display())),
    )
    .unwrap_or_else(|_| panic!("{} is not UTF-8", path.display()))
}

/// Mounts `device` read-only under `base`. A killed bootctl's read-write mount of the same
/// filesystem goes away with its last descriptor (or its mount namespace), shortly after
/// the process: until then a read-only mount is refused with EBUSY, so that is retried for
/// a bounded time.
fn mount_read_only(device: &Path, base: &Path) -> Mount {
    let options = MountOptions {
        read_only: true,
        fstype: Some("ext4".to_owned()),
    };
    let started = Instant::now();
    loop {
        match Mount::new_temp(device, base, &options) {
            Ok(mount) => return mount,
            Err(e)
                if e.raw_os_error() == Some(Errno::EBUSY as i32)
                    && started.elapsed() < Duration::from_secs(10) =>
            {
                sleep(Duration::from_millis(5));
            }
            Err(e) => panic!("mounting {} read-only: {e}", device.display()),
        }
    }
}

/// The entries of /run/bootctl named after the process `pid` (where bootctl mounts the
/// partition in a private mount namespace when the kernel cannot give it a detached mount,
/// which leaves nothing behind even when bootctl is killed).
fn mount_dirs_of(pid: u32) -> Vec<String> {
    let Ok(entries) = std::fs::read_dir("/run/bootctl") else {
        return Vec::new();
    };
    entries
        .filter_map(|entry| entry.ok())
        .map(|entry| entry.file_name().to_string_lossy().into_owned())
        .filter(|name| name.contains(&format!("-{pid}-")))
        .collect()
}

/// Runs `command` (a fault-injection bootctl) killed at the fault point `spec`; whether it
/// was killed. It must die or succeed, and leave no mount directory behind.
fn run_with_fault(command: &mut Command, spec: &str) -> bool {
    let child = command
        .env(FAULT_ENV, spec)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("running bootctl");
    let pid = child.id();
    let out = child.wait_with_output().expect("waiting for bootctl");
    let killed = out.status.signal() == Some(9);
    assert_eq!(
        mount_dirs_of(pid),
        Vec::<String>::new(),
        "{spec}: bootctl left directories behind"
    );
    assert!(
        killed || out.status.success(),
        "{spec}: bootctl neither died nor succeeded: {} {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    killed
}

/// The next image after `image` in the cycle a, b, c.
fn next(image: &str) -> &'static str {
    let i = IMAGES
        .iter()
        .position(|n| *n == image)
        .expect("a known image");
    IMAGES[(i + 1) % IMAGES.len()]
}

/// A switch without faults to `target` must succeed promptly (the lock is free again) and
/// leave the default there with no temp file behind.
fn recover(node: &Node, target: &str, context: &str) {
    let run = bootctl(&["--disk", node.disk.path_str(), "switch", target]);
    assert_eq!(
        run.code, 0,
        "{context}: the next switch failed: {}",
        run.stderr
    );
    let state = node.state();
    assert_eq!(state.default, target, "{context}: after the next switch");
    assert!(
        state.temp_files.is_empty(),
        "{context}: temp files left: {:?}",
        state.temp_files
    );
}

/// Kills a switch at every fault point, for the n-th time it is reached (1 and 2: a
/// switch replaces two files), and checks the disk after each.
fn kill_at_every_point(style: MenuStyle, label: &str) -> usize {
    let node = Node::new(style, label);
    let binary = fault_bootctl();
    let mut current = node.state().default;
    let mut kills = 0;
    for point in POINTS {
        for nth in [1, 2] {
            let target = next(&current);
            let spec = format!("{point}:{nth}");
            let killed = run_with_fault(&mut node.switch_command(binary, target), &spec);
            kills += usize::from(killed);
            let state = node.state();
            assert!(
                state.default == current || state.default == target,
                "{spec}: the default is {}, neither the old {current} nor the new {target}",
                state.default
            );
            if !killed {
                assert_eq!(state.default, target, "{spec}: a finished switch");
            }
            let after = next(target);
            recover(&node, after, &spec);
            current = after.to_owned();
        }
    }
    let expected = node.state().default;
    drop(node.attached);
    let outcome = boot(
        &node.disk.path,
        Firmware::Bios,
        BOOT_TIMEOUT,
        &format!("{label}-boot"),
    );
    expect_boot(&outcome, &expected, "boot after the fault-point kills");
    kills
}

#[test]
fn killed_at_every_step_of_a_grubenv_switch_the_disk_stays_bootable() {
    let kills = kill_at_every_point(MenuStyle::Grubenv, "faults-points-grubenv");
    assert!(kills >= POINTS.len(), "only {kills} runs were killed");
}

#[test]
fn killed_at_every_step_of_a_fixed_default_switch_the_disk_stays_bootable() {
    let kills = kill_at_every_point(
        MenuStyle::Fixed {
            next_entry_block: true,
        },
        "faults-points-fixed",
    );
    assert!(kills >= POINTS.len(), "only {kills} runs were killed");
}

/// `switch --try=2` killed at every fault point, for the first and the second time it is
/// reached: grubenv parses after each kill, the default never moves, and the trial is the
/// old one (none) or the new one. A trial left in place boots: GRUB counts it down.
#[test]
fn killed_at_every_step_of_a_trial_switch_the_default_stays() {
    let node = Node::with_trials("faults-points-trial");
    let binary = fault_bootctl();
    let default = node.state().default;
    let mut kills = 0;
    for point in POINTS {
        for (nth, target) in [(1, "b"), (2, "c")] {
            let spec = format!("{point}:{nth}");
            let killed = run_with_fault(&mut node.switch_with(binary, &["--try=2", target]), &spec);
            kills += usize::from(killed);
            let state = node.state();
            assert_eq!(state.default, default, "{spec}: a trial moved the default");
            match state.trial.as_deref() {
                None if killed => {}
                Some(trial) if trial == target => {}
                other => panic!("{spec}: the trial is {other:?}, neither none nor {target}"),
            }
            // A persistent switch to the default ends the trial.
            recover(&node, &default, &spec);
            assert_eq!(node.state().trial, None, "{spec}: the trial did not end");
        }
    }
    assert!(kills >= POINTS.len(), "only {kills} runs were killed");
    let status = node
        .switch_with(static_bootctl(), &["--try=2", "b"])
        .status()
        .expect("running bootctl");
    assert!(status.success(), "the last trial switch failed: {status}");
    drop(node.attached);
    let outcome = boot(
        &node.disk.path,
        Firmware::Bios,
        BOOT_TIMEOUT,
        "faults-points-trial-boot",
    );
    expect_boot(
        &outcome,
        "b",
        "boot of the trial after the fault-point kills",
    );
}

/// Kills a refresh of image a at every fault point (it replaces one file, grub.cfg), with
/// a's root mounted from the node disk and a newer kernel in its /boot before each run (a
/// hard link to the one it boots), and checks the disk after each: a's entry names the
/// kernel before or the new one. The disk then boots a on the last of them.
#[test]
fn killed_at_every_step_of_a_refresh_the_disk_stays_bootable() {
    let node = Node::new(MenuStyle::Grubenv, "faults-points-refresh");
    let binary = fault_bootctl();
    let facts = node.disk.facts.image("a");
    let root = TestMount::new(
        &node.attached.partition(facts.partition),
        &node.dir.join("root-a"),
        "",
    );
    let root_arg = root.path().to_str().expect("UTF-8 path").to_owned();
    let boot_dir = root.path().join("boot");
    let host = e2e::fixture::host_kernel();
    let refresh = |binary: &Path| {
        let mut command = Command::new(binary);
        command
            .args([
                "--disk",
                node.disk.path_str(),
                "refresh",
                "--root",
                &root_arg,
            ])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        command
    };
    let a_kernel = |state: &State| state.kernels[0].clone();
    let mut current = a_kernel(&node.state());
    assert_eq!(current, host.image_vmlinuz());
    let mut kills = 0;
    for (n, point) in POINTS.iter().enumerate() {
        let version = format!("9.9.{n}-multiboot");
        for (from, to) in [
            (
                format!("vmlinuz-{}", host.version),
                format!("vmlinuz-{version}"),
            ),
            (
                format!("initrd.img-{}", host.version),
                format!("initrd.img-{version}"),
            ),
        ] {
            std::fs::hard_link(boot_dir.join(from), boot_dir.join(to)).expect("linking a kernel");
        }
        let new = format!("/boot/vmlinuz-{version}");
        let spec = format!("{point}:1");
        let killed = run_with_fault(&mut refresh(binary), &spec);
        kills += usize::from(killed);
        let state = node.state();
        let kernel = a_kernel(&state);
        assert!(
            kernel == current || kernel == new,
            "{spec}: a's entry names {kernel}, neither the old {current} nor the new {new}"
        );
        if !killed {
            assert_eq!(kernel, new, "{spec}: a finished refresh");
        }
        assert_eq!(state.kernels[1], host.image_vmlinuz(), "{spec}: recovery");
        let run = refresh(static_bootctl()).output().expect("running bootctl");
        assert!(
            run.status.success(),
            "{spec}: the next refresh failed: {}",
            String::from_utf8_lossy(&run.stderr)
        );
        let state = node.state();
        assert_eq!(a_kernel(&state), new, "{spec}: after the next refresh");
        assert!(
            state.temp_files.is_empty(),
            "{spec}: temp files left: {:?}",
            state.temp_files
        );
        current = new;
    }
    assert!(kills >= POINTS.len(), "only {kills} runs were killed");
    // What GRUB booted, as the kernel sees it.
    e2e::fixture::write(
        &root.path().join(e2e::fixture::RUN_SCRIPT),
        b"#!/bin/sh\ncat /proc/cmdline\n",
        0o755,
    );
    drop(root);
    drop(node.attached);
    let outcome = boot(
        &node.disk.path,
        Firmware::Bios,
        BOOT_TIMEOUT,
        "faults-points-refresh-boot",
    );
    expect_boot(&outcome, "a", "boot after the refresh kills");
    assert!(
        outcome
            .run_output
            .contains(&format!("BOOT_IMAGE={current} ")),
        "GRUB booted {current}: {}; log: {}",
        outcome.run_output,
        outcome.log.display()
    );
}

/// A small xorshift generator: the seed is printed, so a failing run can be replayed with
/// `MULTIBOOT_KILL_SEED`.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

fn env_number(name: &str, default: u64) -> u64 {
    match std::env::var(name) {
        Ok(value) => value
            .parse()
            .unwrap_or_else(|_| panic!("{name}={value}: not a number")),
        Err(_) => default,
    }
}

#[test]
fn killed_at_random_instants_the_default_is_old_or_new() {
    let node = Node::new(MenuStyle::Grubenv, "faults-random");
    let binary = static_bootctl();
    let runs = env_number("MULTIBOOT_KILL_RUNS", 300);
    let clock = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock")
        .as_nanos();
    let seed = env_number("MULTIBOOT_KILL_SEED", (clock as u64) | 1);
    eprintln!("random kills: {runs} runs, MULTIBOOT_KILL_SEED={seed}");
    let mut rng = Rng(seed);
    // How long an undisturbed switch takes here, from spawn to exit (median of five): the
    // kills are spread over that window.
    let mut current = node.state().default;
    let mut timings = Vec::new();
    for _ in 0..5 {
        let target = next(&current);
        let started = Instant::now();
        let status = node
            .switch_command(binary, target)
            .status()
            .expect("running bootctl");
        timings.push(started.elapsed());
        assert!(status.success(), "the timing run failed: {status}");
        current = target.to_owned();
    }
    timings.sort();
    let window_us = u64::try_from(timings[2].as_micros())
        .expect("a short run")
        .max(1_000);
    eprintln!("random kills: an undisturbed switch takes {window_us} us");
    let (mut killed, mut finished) = (0, 0);
    for run in 0..runs {
        let target = next(&current);
        let delay = Duration::from_micros(rng.next() % window_us);
        let mut child = ChildGuard::spawn(&mut node.switch_command(binary, target));
        sleep(delay);
        let pid = i32::try_from(child.child_mut().id()).expect("a pid");
        let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
        let status = child
            .wait_timeout(Duration::from_secs(30))
            .expect("bootctl exits");
        if status.signal() == Some(9) {
            killed += 1;
        } else {
            assert!(status.success(), "run {run}: bootctl failed: {status}");
            finished += 1;
        }
        let state = node.state();
        assert!(
            state.default == current || state.default == target,
            "run {run} (seed {seed}, kill after {delay:?}): the default is {}, neither {current} nor {target}",
            state.default
        );
        current = state.default;
    }
    eprintln!("random kills: {killed} killed, {finished} finished first");
    recover(&node, next(&current), "after the random kills");
    let expected = node.state().default;
    drop(node.attached);
    let outcome = boot(
        &node.disk.path,
        Firmware::Bios,
        BOOT_TIMEOUT,
        "faults-random-boot",
    );
    expect_boot(&outcome, &expected, "boot after the random kills");
}

#[test]
fn fifty_switches_at_once_serialise_and_end_on_a_requested_target() {
    let node = Node::new(MenuStyle::Grubenv, "faults-concurrent");
    let binary = static_bootctl();
    let mut children: Vec<(String, ChildGuard)> = (0..50)
        .map(|i| {
            let target = IMAGES[i % IMAGES.len()].to_owned();
            let child = ChildGuard::spawn(&mut node.switch_command(binary, &target));
            (target, child)
        })
        .collect();
    let (mut succeeded, mut busy) = (0, 0);
    for (target, child) in &mut children {
        let status = child
            .wait_timeout(Duration::from_secs(60))
            .expect("bootctl exits");
        let mut stderr = String::new();
        if let Some(mut pipe) = child.child_mut().stderr.take() {
            io::Read::read_to_string(&mut pipe, &mut stderr).expect("reading stderr");
        }
        match status.code() {
            Some(0) => succeeded += 1,
            Some(7) if stderr.contains("busy") => busy += 1,
            _ => panic!("switch {target}: {status}: {stderr}"),
        }
    }
    eprintln!("50 concurrent switches: {succeeded} succeeded, {busy} busy");
    assert!(succeeded > 0);
    let state = node.state();
    assert!(
        IMAGES.contains(&state.default.as_str()),
        "ended on {}",
        state.default
    );
    assert!(
        state.temp_files.is_empty(),
        "temp files left: {:?}",
        state.temp_files
    );
    let info = bootctl(&["--disk", node.disk.path_str(), "status", "--json"]).json();
    assert_eq!(
        info["default"]["id"],
        format!("fixture-{}", state.default),
        "status agrees with the files: {info}"
    );
}

#[test]
fn a_full_multiboot_filesystem_fails_cleanly_and_changes_nothing() {
    let node = Node::new(MenuStyle::Grubenv, "faults-full");
    let before = node.state().default;
    let fill_dir = node.dir.join("fill");
    std::fs::create_dir_all(&fill_dir).expect("creating the fill directory");
    {
        let device = node.attached.partition(MULTIBOOT_PARTITION);
        let options = MountOptions {
            read_only: false,
            fstype: Some("ext4".to_owned()),
        };
        let mount = Mount::new_temp(&device, &fill_dir, &options).expect("mounting rw");
        // As root, the reserved blocks fill too: the filesystem ends truly full.
        let out = Command::new("dd")
            .args(["if=/dev/zero", "bs=1M"])
            .arg(format!("of={}", mount.path().join("fill").display()))
            .output()
            .expect("running dd");
        assert!(
            String::from_utf8_lossy(&out.stderr).contains("No space left"),
            "dd did not fill the filesystem: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        // ext4 keeps a few blocks back that small files still get, so the inodes are used
        // up too: then no new file at all can be made, whatever its size.
        let inodes = mount.path().join("inodes");
        std::fs::create_dir(&inodes).expect("creating the inode directory");
        for n in 0.. {
            if std::fs::File::create(inodes.join(n.to_string())).is_err() {
                break;
            }
        }
        mount.unmount().expect("unmounting");
    }
    let target = next(&before);
    let run = bootctl(&["--disk", node.disk.path_str(), "switch", target]);
    assert_ne!(run.code, 0, "a switch on a full filesystem succeeded");
    assert!(
        run.stderr.contains("No space left on device") && run.stderr.lines().count() == 1,
        "one clear line: {}",
        run.stderr
    );
    let state = node.state();
    assert_eq!(state.default, before, "the default changed");
    assert!(
        state.temp_files.is_empty(),
        "temp files left: {:?}",
        state.temp_files
    );
}

#[test]
fn a_read_only_disk_fails_cleanly_and_changes_nothing() {
    let node = Node::new(MenuStyle::Grubenv, "faults-read-only");
    let before = node.state().default;
    let snapshot = node.disk.multiboot_snapshot();
    drop(node.attached);
    let read_only = LoopDisk::attach_read_only(&node.disk.path);
    let run = bootctl(&["--disk", node.disk.path_str(), "switch", next(&before)]);
    assert_ne!(run.code, 0, "a switch on a read-only disk succeeded");
    assert_eq!(
        run.stderr.lines().count(),
        1,
        "one clear line: {}",
        run.stderr
    );
    assert!(
        run.stderr.contains("read-only"),
        "names the cause: {}",
        run.stderr
    );
    drop(read_only);
    assert_eq!(
        node.disk.multiboot_snapshot(),
        snapshot,
        "the multiboot partition changed"
    );
}
