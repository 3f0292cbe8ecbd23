//! The shipped static bootctl finding the multiboot partition on the host (by UUID on an
//! attached disk, reusing an existing mount; on kernels without fsmount or openat2, which
//! strace stands in for, through a private mount namespace), and its documented exit codes
//! for what goes wrong: partition not found (4), not root (5), unreadable boot files (6),
//! busy (7). In every failure nothing on the partition changes.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use e2e::bootctl::{bootctl, marked, static_bootctl, BootctlRun};
use e2e::cmd::{self, ChildGuard};
use e2e::disk::{snapshot_tree, LoopDisk, Mount};
use e2e::fixture::FixtureImage;
use e2e::grubcfg::MenuStyle;
use e2e::node::{NodeDisk, GRUB_CFG_PATH, MULTIBOOT_PARTITION};
use e2e::tmp::TempDir;
use e2e::tools::require_tools;

fn two_image_disk(dir: &TempDir) -> NodeDisk {
    NodeDisk::builder(vec![FixtureImage::new("a"), FixtureImage::new("b")])
        .menu(MenuStyle::Fixed {
            next_entry_block: true,
        })
        .build(&dir.join("node.img"))
}

/// Mount points of `device` in this (the host's) mount namespace.
fn mount_points(device: &Path) -> Vec<String> {
    let mounts = fs::read_to_string("/proc/self/mounts").expect("reading /proc/self/mounts");
    let device = device.to_str().expect("UTF-8 device path");
    mounts
        .lines()
        .filter(|line| line.split(' ').next() == Some(device))
        .map(|line| line.split(' ').nth(1).unwrap_or_default().to_owned())
        .collect()
}

#[test]
fn finds_the_partition_by_uuid_on_an_attached_disk_and_leaves_no_mount() {
    let dir = TempDir::new("host-uuid");
    let disk = two_image_disk(&dir);
    let uuid = disk.facts.multiboot_uuid.clone();
    let attached = LoopDisk::attach(&disk.path);
    let partition = attached.partition(MULTIBOOT_PARTITION);

    let status = bootctl(&["--multiboot", &uuid, "status", "--json"]).json();
    assert_eq!(status["multiboot"]["uuid"], uuid.as_str());
    assert_eq!(
        status["multiboot"]["device"],
        partition.to_str().unwrap(),
        "{status:#}"
    );
    bootctl(&["--multiboot", &uuid, "switch", "b"]).expect_code(0);
    let list = bootctl(&["--multiboot", &uuid, "list", "--json"]).json();
    assert_eq!(marked(&list, "default", "id"), ["fixture-b"]);
    assert!(
        mount_points(&partition).is_empty(),
        "bootctl mounted privately and unmounted: {:?}",
        mount_points(&partition)
    );
}

#[test]
fn reuses_an_existing_mount_and_leaves_it_mounted() {
    let dir = TempDir::new("host-reuse");
    let disk = two_image_disk(&dir);
    let uuid = disk.facts.multiboot_uuid.clone();
    let attached = LoopDisk::attach(&disk.path);
    let partition = attached.partition(MULTIBOOT_PARTITION);
    let mount = Mount::new(&partition, &dir.join("mnt"), "");

    let status = bootctl(&["--multiboot", &uuid, "status", "--json"]).json();
    let boot_dir = status["multiboot"]["boot_dir"].as_str().expect("boot_dir");
    assert!(
        boot_dir.starts_with(mount.path().to_str().unwrap()),
        "{status:#}"
    );
    bootctl(&["--multiboot", &uuid, "switch", "b"]).expect_code(0);
    let cfg = fs::read_to_string(mount.path().join(GRUB_CFG_PATH)).unwrap();
    assert!(cfg.contains("set default='fixture-b'"), "{cfg}");
    assert_eq!(mount_points(&partition), [mount.path().to_str().unwrap()]);
}

#[test]
fn a_partition_that_is_not_there_exits_4() {
    let missing = bootctl(&[
        "--multiboot",
        "6a1c8a2e-0000-4000-8000-00000000dead",
        "list",
    ]);
    missing.expect_code(4);
    assert!(
        missing
            .stderr
            .contains("6a1c8a2e-0000-4000-8000-00000000dead"),
        "{}",
        missing.stderr
    );

    let dir = TempDir::new("host-no-multiboot");
    let blank = dir.join("blank.img");
    let _disk = LoopDisk::create(&blank, 8 << 20);
    let no_label = bootctl(&["--disk", blank.to_str().unwrap(), "list"]);
    no_label.expect_code(4);
    assert!(
        no_label.stderr.contains("labelled multiboot"),
        "{}",
        no_label.stderr
    );

    let empty = TempDir::new("host-empty-dir");
    bootctl(&["--boot-dir", empty.path().to_str().unwrap(), "list"]).expect_code(4);
}

#[test]
fn a_failed_switch_unmounts_at_once_without_waiting_for_its_own_lock() {
    require_tools(&["strace"]);
    let dir = TempDir::new("host-failed-switch");
    let disk = two_image_disk(&dir);
    let trace = dir.join("mount.trace");
    // strace lists the detached mount bootctl makes (fsmount returns its descriptor), every
    // file it opens through it and every close. The kernel unmounts the partition when the
    // mount's descriptor is closed only if nothing in it is open any more: the lock that the
    // failed switch held on the partition's root must be closed first, and all of it before
    // the loop device is detached.
    let out = Command::new("strace")
        .args(["-f", "-qq", "-e", "trace=fsmount,openat,close,ioctl", "-o"])
        .arg(&trace)
        .arg(static_bootctl())
        .args([
            "--disk",
            disk.path.to_str().unwrap(),
            "switch",
            "no-such-image",
        ])
        .output()
        .expect("running bootctl under strace");
    assert_eq!(out.status.code(), Some(3), "{out:?}");
    let calls = fs::read_to_string(&trace).expect("reading the trace");
    let result = |line: &str| {
        line.rsplit("= ")
            .next()
            .and_then(|r| r.trim().parse::<i32>().ok())
    };
    let (mounted_at, mount) = calls
        .lines()
        .enumerate()
        .find(|(_, line)| line.contains("fsmount("))
        .and_then(|(n, line)| Some((n, result(line)?)))
        .unwrap_or_else(|| panic!("bootctl made no detached mount:\n{calls}"));
    let through_mount = format!("\"/proc/self/fd/{mount}");
    let mut open_in_mount = Vec::new();
    let mut closed_at = None;
    for (n, line) in calls.lines().enumerate().skip(mounted_at + 1) {
        if line.contains("openat(") && line.contains(&through_mount) {
            open_in_mount.extend(result(line).filter(|fd| *fd >= 0));
        } else if line.contains(&format!("close({mount})")) && closed_at.is_none() {
            assert_eq!(
                open_in_mount,
                Vec::<i32>::new(),
                "files still open in the mount when it was closed:\n{calls}"
            );
            closed_at = Some(n);
        } else if let Some(fd) = line
            .split_once("close(")
            .and_then(|(_, rest)| rest.split_once(')'))
            .and_then(|(fd, _)| fd.parse::<i32>().ok())
        {
            open_in_mount.retain(|open| *open != fd);
        }
    }
    let closed_at =
        closed_at.unwrap_or_else(|| panic!("the mount's descriptor was never closed:\n{calls}"));
    let detached_at = calls
        .lines()
        .position(|line| line.contains("LOOP_CLR_FD"))
        .unwrap_or_else(|| panic!("the loop device was not detached:\n{calls}"));
    assert!(
        closed_at < detached_at,
        "the loop device was detached before the mount was closed:\n{calls}"
    );
}

/// A multiboot tree in a plain directory, for --boot-dir.
fn boot_tree(label: &str, grub_cfg: &str) -> TempDir {
    let dir = TempDir::new(label);
    fs::create_dir_all(dir.join("boot/grub")).unwrap();
    fs::write(dir.join(GRUB_CFG_PATH), grub_cfg).unwrap();
    dir
}

const TWO_ENTRIES: &str = "set default=\"0\"\n\
menuentry 'A' --id a {\n\tlinux /boot/vmlinuz root=UUID=2abf123d-d52f-4f62-a351-7358221bc51f\n}\n\
menuentry 'B' --id b {\n\tlinux /boot/vmlinuz root=UUID=688c5f1e-dc46-4aca-a90e-be21ba8aa3e2\n}\n";

fn run_in(tree: &TempDir, args: &[&str]) -> BootctlRun {
    let mut full = vec!["--boot-dir", tree.path().to_str().unwrap()];
    full.extend_from_slice(args);
    bootctl(&full)
}

#[test]
fn switch_as_non_root_exits_5_while_list_works() {
    require_tools(&["setpriv"]);
    let tree = boot_tree("host-non-root", TWO_ENTRIES);
    let before = snapshot_tree(tree.path());
    let as_nobody = |args: &[&str]| {
        let mut command = Command::new("setpriv");
        command
            .args(["--reuid=65534", "--regid=65534", "--clear-groups"])
            .arg(static_bootctl())
            .args(["--boot-dir", tree.path().to_str().unwrap()])
            .args(args);
        cmd::output_with_timeout(&mut command, Duration::from_secs(30))
    };
    let switch = as_nobody(&["switch", "b"]);
    assert_eq!(
        switch.status.and_then(|s| s.code()),
        Some(5),
        "{}",
        switch.stderr
    );
    assert!(
        switch.stderr.contains("must be run as root"),
        "{}",
        switch.stderr
    );
    let list = as_nobody(&["list", "--json"]);
    assert_eq!(
        list.status.and_then(|s| s.code()),
        Some(0),
        "{}",
        list.stderr
    );
    assert_eq!(snapshot_tree(tree.path()), before);
}

/// A multiboot tree whose grub directory, or one of whose boot files, is a symlink out of
/// the tree (to the running system's files once mounted): refused with exit 6 naming it,
/// for list and for switch, and nothing written on either side of the link.
#[test]
fn boot_files_that_lead_out_of_the_tree_are_refused() {
    let outside = TempDir::new("host-outside");
    fs::create_dir_all(outside.join("grub")).unwrap();
    fs::write(outside.join("grub/grub.cfg"), TWO_ENTRIES).unwrap();
    let info = serde_json::json!({
        "elements": [{"grub_id": 0, "image_name": "a", "os_id": "fixture", "image_uuid": "",
                      "boot_name": "A", "root_uuid": "2abf123d-d52f-4f62-a351-7358221bc51f"}],
        "current_element": 0,
        "multiboot_partition": "5d8a7b63-4c1e-4f8e-9a55-0c3a1b2d4e6f"
    });
    fs::write(outside.join("boot-info.json"), info.to_string()).unwrap();
    let links: [(&str, PathBuf); 3] = [
        ("boot/grub", outside.join("grub")),
        (GRUB_CFG_PATH, outside.join("grub/grub.cfg")),
        ("boot-info.json", outside.join("boot-info.json")),
    ];
    for (link, target) in links {
        let tree = boot_tree("host-link-out", TWO_ENTRIES);
        let at = tree.join(link);
        if at.is_dir() {
            fs::remove_dir_all(&at).unwrap();
        } else if at.exists() {
            fs::remove_file(&at).unwrap();
        }
        std::os::unix::fs::symlink(&target, &at).unwrap();
        let (tree_before, outside_before) =
            (snapshot_tree(tree.path()), snapshot_tree(outside.path()));
        for args in [&["list"][..], &["switch", "b"]] {
            let run = run_in(&tree, args);
            assert_eq!(run.code, 6, "{link} {args:?}: {}", run.stderr);
            assert!(
                run.stderr
                    .contains(&format!("{link}: a symlink that leads out of")),
                "{link} {args:?}: {}",
                run.stderr
            );
            assert_eq!(run.stderr.lines().count(), 1, "{}", run.stderr);
        }
        assert_eq!(snapshot_tree(tree.path()), tree_before, "{link}");
        assert_eq!(snapshot_tree(outside.path()), outside_before, "{link}");
    }
}

/// A multiboot tree with something broken: its grub.cfg, and optionally one more file.
struct Corrupt<'a> {
    what: &'a str,
    grub_cfg: &'a str,
    extra: Option<(&'a str, &'a [u8])>,
    /// What the one-line error must name.
    named: &'a str,
}

#[test]
fn unreadable_boot_files_exit_6_naming_the_file_and_change_nothing() {
    let broken_cfg = TWO_ENTRIES.replace("\n}\nmenuentry 'B'", "\nmenuentry 'B'");
    let cases = [
        Corrupt {
            what: "unbalanced braces",
            grub_cfg: &broken_cfg,
            extra: None,
            named: "grub.cfg: line",
        },
        Corrupt {
            what: "binary junk",
            grub_cfg: "\u{0}\u{1}\u{2}menuentry {",
            extra: None,
            named: "grub.cfg",
        },
        Corrupt {
            what: "grubenv of the wrong size",
            grub_cfg: TWO_ENTRIES,
            extra: Some(("boot/grub/grubenv", b"# GRUB Environment Block\nsaved_entry=b\n")),
            named: "grubenv",
        },
        Corrupt {
            what: "boot-info.json without root_uuid",
            grub_cfg: TWO_ENTRIES,
            extra: Some((
                "boot-info.json",
                br#"{"elements": [{"grub_id": 0, "image_name": "a", "os_id": "x", "image_uuid": "u", "boot_name": "A"}], "current_element": 0, "multiboot_partition": "m"}"#,
            )),
            named: "elements[0].root_uuid",
        },
    ];
    for Corrupt {
        what,
        grub_cfg,
        extra,
        named,
    } in cases
    {
        let tree = boot_tree("host-corrupt", grub_cfg);
        if let Some((path, bytes)) = extra {
            fs::write(tree.join(path), bytes).unwrap();
        }
        let before = snapshot_tree(tree.path());
        for args in [&["list"][..], &["switch", "b"][..]] {
            let run = run_in(&tree, args);
            assert_eq!(run.code, 6, "{what}: `{}`: {}", run.command, run.stderr);
            assert!(
                run.stderr.contains(named),
                "{what}: expected {named:?} in: {}",
                run.stderr
            );
            assert_eq!(
                run.stderr.trim_end().lines().count(),
                1,
                "{what}: one line: {}",
                run.stderr
            );
        }
        assert_eq!(
            snapshot_tree(tree.path()),
            before,
            "{what}: nothing changed"
        );
    }
}

#[test]
fn a_switch_waits_for_the_lock_then_exits_7_busy() {
    require_tools(&["flock"]);
    let tree = boot_tree("host-busy", TWO_ENTRIES);
    let before = snapshot_tree(tree.path());
    let _holder = ChildGuard::spawn(Command::new("flock").arg(tree.path()).args(["sleep", "60"]));
    std::thread::sleep(Duration::from_millis(300));
    let started = Instant::now();
    let run = run_in(&tree, &["switch", "b"]);
    run.expect_code(7);
    assert!(run.stderr.contains("busy"), "{}", run.stderr);
    assert!(
        started.elapsed() >= Duration::from_secs(10),
        "waited {:?}",
        started.elapsed()
    );
    assert_eq!(snapshot_tree(tree.path()), before);
    run_in(&tree, &["list"]).expect_code(0);
}

#[test]
fn a_disk_image_attached_and_mounted_elsewhere_is_used_through_that_mount() {
    let dir = TempDir::new("host-disk-in-use");
    let disk = two_image_disk(&dir);
    let attached = LoopDisk::attach(&disk.path);
    let partition = attached.partition(MULTIBOOT_PARTITION);
    let mount = Mount::new(&partition, &dir.join("mnt"), "");

    let status = bootctl(&["--disk", disk.path_str(), "status", "--json"]).json();
    assert_eq!(
        status["multiboot"]["device"],
        partition.to_str().unwrap(),
        "{status:#}"
    );
    bootctl(&["--disk", disk.path_str(), "switch", "b"]).expect_code(0);
    let cfg = fs::read_to_string(mount.path().join(GRUB_CFG_PATH)).unwrap();
    assert!(
        cfg.contains("set default='fixture-b'"),
        "seen through the existing mount: {cfg}"
    );
    assert_eq!(mount_points(&partition), [mount.path().to_str().unwrap()]);
}

#[test]
fn ctrl_c_during_the_lock_wait_exits_130_at_once() {
    require_tools(&["flock"]);
    let tree = boot_tree("host-interrupt", TWO_ENTRIES);
    let _holder = ChildGuard::spawn(Command::new("flock").arg(tree.path()).args(["sleep", "60"]));
    std::thread::sleep(Duration::from_millis(300));
    let mut switch = Command::new(static_bootctl());
    switch.args(["--boot-dir", tree.path().to_str().unwrap(), "switch", "b"]);
    let started = Instant::now();
    let waiting = switch
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("starting bootctl");
    let pid = waiting.id().to_string();
    std::thread::sleep(Duration::from_secs(1));
    cmd::run(Command::new("kill").args(["-INT", &pid]));
    let out = waiting.wait_with_output().expect("waiting for bootctl");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(130), "{stderr}");
    assert!(stderr.contains("interrupted"), "{stderr}");
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "stopped at once: {:?}",
        started.elapsed()
    );
}

#[test]
fn temp_files_of_an_interrupted_switch_are_swept_by_the_next() {
    let tree = boot_tree("host-sweep", TWO_ENTRIES);
    let stale = [
        "boot/grub/.grub.cfg.4242.0.tmp",
        ".boot-info.json.4242.1.tmp",
    ];
    for path in stale {
        fs::write(tree.join(path), "half written").unwrap();
    }
    fs::write(tree.join("boot/grub/.grub.cfg.notes"), "not ours").unwrap();
    let run = run_in(&tree, &["switch", "b"]);
    run.expect_code(0);
    for path in stale {
        assert!(!tree.join(path).exists(), "{path} was swept");
        assert!(run.stderr.contains(path), "{path} reported: {}", run.stderr);
    }
    assert!(
        tree.join("boot/grub/.grub.cfg.notes").exists(),
        "only temp files go"
    );
}

/// bootctl run under strace, which answers `syscall` with ENOSYS as a kernel without it
/// would and writes the calls `traced` make to a trace file. Returns the exit code, the
/// standard error and the trace.
fn without_syscall(
    syscall: &str,
    traced: &str,
    args: &[&str],
    dir: &TempDir,
) -> (i32, String, String) {
    let trace = dir.join(format!("without-{syscall}.trace"));
    let out = Command::new("strace")
        .args(["-f", "-qq", "-o"])
        .arg(&trace)
        .args(["-e", &format!("trace={syscall},{traced}")])
        .args(["-e", &format!("inject={syscall}:error=ENOSYS")])
        .arg(static_bootctl())
        .args(args)
        .output()
        .expect("running bootctl under strace");
    let calls = fs::read_to_string(&trace).expect("reading the trace");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stderr).into_owned(),
        calls,
    )
}

/// On a kernel without fsmount (before 5.2) or without openat2 (before 5.6) bootctl mounts
/// the partition in a private mount namespace on a directory of its own under /run/bootctl,
/// unmounts it and removes the directory, and checks links by their canonical paths.
#[test]
fn without_fsmount_or_openat2_bootctl_mounts_in_a_namespace_and_still_checks_links() {
    require_tools(&["strace"]);
    let dir = TempDir::new("host-old-kernel");
    let disk = two_image_disk(&dir);
    let image = disk.path.to_str().unwrap();
    for (syscall, target) in [("fsopen", "b"), ("openat2", "a")] {
        let (code, stderr, calls) = without_syscall(
            syscall,
            "mount,umount2,rmdir",
            &["--disk", image, "switch", target],
            &dir,
        );
        assert_eq!(code, 0, "without {syscall}: {stderr}");
        let mounted: Vec<&str> = calls
            .lines()
            .filter(|line| line.contains("mount(\"/dev/") && line.contains("\"/run/bootctl/"))
            .collect();
        assert_eq!(mounted.len(), 1, "without {syscall}: {calls}");
        assert!(
            mounted[0].contains("MS_NOSUID|MS_NODEV|MS_NOEXEC"),
            "{calls}"
        );
        for call in ["umount2(\"/run/bootctl/", "rmdir(\"/run/bootctl/"] {
            assert!(
                calls
                    .lines()
                    .any(|line| line.contains(call) && line.ends_with("= 0")),
                "without {syscall}: no {call}: {calls}"
            );
        }
        let list = bootctl(&["--disk", image, "list", "--json"]).json();
        assert_eq!(
            marked(&list, "default", "id"),
            [format!("fixture-{target}")]
        );
    }

    let outside = TempDir::new("host-old-kernel-outside");
    fs::write(outside.join("grub.cfg"), TWO_ENTRIES).unwrap();
    let tree = boot_tree("host-old-kernel-link", TWO_ENTRIES);
    fs::remove_file(tree.join(GRUB_CFG_PATH)).unwrap();
    std::os::unix::fs::symlink(outside.join("grub.cfg"), tree.join(GRUB_CFG_PATH)).unwrap();
    let boot_dir = tree.path().to_str().unwrap();
    let (code, stderr, _) = without_syscall(
        "openat2",
        "openat",
        &["--boot-dir", boot_dir, "switch", "b"],
        &dir,
    );
    assert_eq!(code, 6, "{stderr}");
    assert!(
        stderr.contains("grub.cfg: a symlink that leads out of") && stderr.contains("(to "),
        "{stderr}"
    );
    assert_eq!(
        fs::read_to_string(outside.join("grub.cfg")).unwrap(),
        TWO_ENTRIES
    );
}
