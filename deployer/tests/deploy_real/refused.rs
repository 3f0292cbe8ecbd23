//! Deploys refused before any write, and failures after it.

use super::*;

/// How a deploy of LVM is refused on this host, whose kernel has no device-mapper.
const NO_LVM: &str = "LVM: this host's kernel has no device-mapper (dm_mod); deploy from the \
                      deploy ramdisk (packaging/ramdisk; README \"Deploy from a ramdisk (PXE)\")";
/// How a deploy of RAID is refused on this host, whose kernel has no md.
const NO_RAID: &str = "RAID: this host's kernel has no md RAID1 (md_mod, raid1); deploy from the \
                       deploy ramdisk";

/// The example `examples/NAME.json` with `"partitions_policy": "clean"`, written to
/// `scratch`: the examples keep Bareon's default, verify, which would refuse the blank
/// test disks for their tables before the host is asked whether it can deploy LVM or RAID.
fn clean_example(scratch: &TempDir, name: &str) -> PathBuf {
    let example = Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("examples/{name}.json"));
    let mut config: Value =
        serde_json::from_str(&std::fs::read_to_string(&example).expect("reading the example"))
            .expect("the example is JSON");
    config["partitions_policy"] = Value::from("clean");
    let path = scratch.join(format!("{name}.json"));
    std::fs::write(&path, config.to_string()).expect("writing the config");
    path
}

#[test]
fn an_lvm_config_is_refused_and_the_disk_left_unchanged() {
    require_tools(&["sfdisk"]);
    let scratch = TempDir::new("deploy-lvm");
    let disk = scratch.join("node.img");
    gpt_disk_file(&disk, 8 << 30);
    let before = fingerprint(&disk);
    let out = deploy(
        &clean_example(&scratch, "lvm"),
        &[("disk/by-path/pci-0000:00:07.0-virtio-pci-virtio3", &disk)],
        static_bootctl(),
        None,
        &["--yes"],
    );
    assert_refused(&out, NO_LVM);
    assert_eq!(fingerprint(&disk), before, "the disk was written");
}

#[test]
fn a_raid_config_is_refused_and_both_disks_left_unchanged() {
    require_tools(&["sfdisk"]);
    let scratch = TempDir::new("deploy-raid");
    let (sda, scsi) = (scratch.join("sda.img"), scratch.join("scsi.img"));
    gpt_disk_file(&sda, 16 << 30);
    gpt_disk_file(&scsi, 24 << 30);
    let before = [fingerprint(&sda), fingerprint(&scsi)];
    let out = deploy(
        &clean_example(&scratch, "raid"),
        &[("sda", &sda), ("6:1:0:0", &scsi)],
        static_bootctl(),
        None,
        &["--yes"],
    );
    assert_refused(&out, NO_RAID);
    assert_eq!(
        [fingerprint(&sda), fingerprint(&scsi)],
        before,
        "a disk was written"
    );
}

#[test]
fn sources_that_cannot_be_deployed_are_refused_before_any_write() {
    require_tools(&["rsync"]);
    let scratch = TempDir::new("deploy-source");
    let unknown = scratch.join("image.tar");
    std::fs::write(&unknown, b"not a directory").expect("writing a file");
    let disk = scratch.join("node.img");
    for (url, expected) in [
        (
            "http://127.0.0.1:9/image.tar.gz".to_owned(),
            "image solo: http://127.0.0.1:9/image.tar.gz: a download needs its \"sha256\"",
        ),
        (
            "rsync://127.0.0.1:9/images/solo/".to_owned(),
            "image solo: rsync source rsync://127.0.0.1:9/images/solo/ cannot be listed: \
             failed to connect to 127.0.0.1",
        ),
        (
            unknown.display().to_string(),
            "not a tar archive, raw filesystem image or qcow2 image (content unknown)",
        ),
        (
            scratch.join("no-such-dir").display().to_string(),
            "does not exist",
        ),
    ] {
        let out = deploy_one(&scratch, &url, &disk, &["--yes"]);
        assert_eq!(
            out.status.code(),
            Some(3),
            "{url}: {}",
            describe_output(&out)
        );
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains(expected), "{url}: {stderr}");
        assert!(!disk.exists(), "{url}: the disk image was created");
    }
}

/// A menu timeout out of range is a usage error naming the option; no disk is created.
#[test]
fn a_grub_timeout_out_of_range_is_refused() {
    let scratch = TempDir::new("deploy-timeout");
    let disk = scratch.join("node.img");
    for (bad, why) in [
        ("3601", "3601 is not in 0..=3600"),
        ("-1", "-1 is not in 0..=3600"),
        ("soon", "invalid digit"),
    ] {
        let out = Command::new(env!("CARGO_BIN_EXE_deployer"))
            .arg("deploy")
            .arg(e2e::workspace_root().join("deployer/examples/demo.json"))
            .arg("--yes")
            .arg("--disk")
            .arg(format!("vda={}", disk.display()))
            .arg(format!("--grub-timeout={bad}"))
            .stdin(Stdio::null())
            .output()
            .expect("running deployer");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(
            out.status.code(),
            Some(2),
            "{bad}: {}",
            describe_output(&out)
        );
        assert!(
            stderr.contains("--grub-timeout") && stderr.contains(why),
            "{bad}: {stderr}"
        );
        assert!(!disk.exists(), "{bad}: the disk image was created");
    }
}

#[test]
fn without_a_terminal_deploy_needs_yes() {
    let scratch = TempDir::new("deploy-noyes");
    let source = scratch.join("solo");
    std::fs::create_dir(&source).expect("creating a source directory");
    let disk = scratch.join("node.img");
    let out = deploy_one(&scratch, &source.display().to_string(), &disk, &[]);
    assert_eq!(out.status.code(), Some(2), "{}", describe_output(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("use --yes to deploy without a terminal"),
        "{}",
        describe_output(&out)
    );
    assert!(!disk.exists());
}

/// A user other than root: deploy exits 4 with one line saying so and creates nothing;
/// validate and plan of the same config work without privileges.
#[test]
fn deploy_as_non_root_exits_4_while_validate_and_plan_work() {
    require_tools(&["setpriv"]);
    let scratch = TempDir::new("deploy-non-root");
    let config = write_empty_solo_config(
        &scratch,
        "solo.json",
        "400 MiB",
        serde_json::json!([{"type": "partition", "mount": "/", "file_system": "ext4", "size": "100"}]),
    );
    let disk = scratch.join("node.img");
    let disk_arg = format!("vda={}", disk.display());
    let as_nobody = |args: &[&str]| {
        Command::new("setpriv")
            .args(["--reuid=65534", "--regid=65534", "--clear-groups"])
            .arg(env!("CARGO_BIN_EXE_deployer"))
            .args(args)
            .stdin(Stdio::null())
            .output()
            .expect("running setpriv")
    };
    let config_arg = config.to_str().expect("a UTF-8 path");
    let out = as_nobody(&[
        "deploy",
        config_arg,
        "--disk",
        &disk_arg,
        "--bootctl",
        config_arg,
        "--yes",
    ]);
    assert_eq!(out.status.code(), Some(4), "{}", describe_output(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        stderr,
        "deployer: deploy must be run as root (it partitions disks and mounts filesystems); \
         validate and plan need no privileges\n"
    );
    assert!(!disk.exists(), "the disk image was created");
    let validate = as_nobody(&["validate", config_arg]);
    assert_eq!(
        validate.status.code(),
        Some(0),
        "{}",
        describe_output(&validate)
    );
    let plan = as_nobody(&["plan", config_arg, "--disk", &disk_arg]);
    assert_eq!(plan.status.code(), Some(0), "{}", describe_output(&plan));
}

#[test]
fn a_failure_after_partitioning_wipes_the_table_and_leaves_nothing_behind() {
    require_tools(&[
        "wipefs",
        "sfdisk",
        "mkfs.ext4",
        "mkfs.vfat",
        "rsync",
        "blkid",
    ]);
    let scratch = TempDir::new("deploy-fail");
    let source = scratch.join("solo");
    std::fs::create_dir_all(source.join("boot")).expect("creating an image without a kernel");
    std::fs::write(source.join("hello"), b"hello\n").expect("writing a file");
    let disk = scratch.join("node.img");
    let stderr = deploy_without_kernel(&scratch, &source, &disk, &["--yes"]);
    assert!(
        stderr.contains("wiped the partition table of disk vda"),
        "{stderr}"
    );
    let probe = blkid(&disk);
    assert!(
        !probe.contains_key("PTTYPE"),
        "a partition table survived: {probe:?}"
    );
    // The deployer mounts in a private namespace that ends with it; its loop device
    // must be gone too.
    assert_not_attached(&disk);
}

#[test]
fn a_missing_program_is_refused_before_any_write() {
    let scratch = TempDir::new("deploy-path");
    let config = write_empty_solo_config(
        &scratch,
        "solo.json",
        "600 MiB",
        serde_json::json!([{"type": "partition", "mount": "/", "size": "300",
                            "file_system": "xfs"}]),
    );
    let disk = scratch.join("node.img");
    let out = Command::new(env!("CARGO_BIN_EXE_deployer"))
        .arg("deploy")
        .arg(&config)
        .arg("--disk")
        .arg(format!("vda={}", disk.display()))
        .arg("--bootctl")
        .arg(static_bootctl())
        .arg("--yes")
        .env("PATH", scratch.join("empty-path"))
        .stdin(Stdio::null())
        .output()
        .expect("running deployer");
    assert_eq!(out.status.code(), Some(3), "{}", describe_output(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    for program in ["grub-mkimage", "mkfs.xfs", "sfdisk"] {
        assert!(
            stderr.contains(&format!("deployer: {program}: program not found in PATH")),
            "{program}: {stderr}"
        );
    }
    assert!(!disk.exists(), "the disk image was created");
}

#[test]
fn a_mount_below_an_unmountable_vfat_is_refused_before_any_write() {
    let filesystems = std::fs::read_to_string("/proc/filesystems").expect("/proc/filesystems");
    assert!(
        !filesystems
            .lines()
            .any(|l| l.split_whitespace().last() == Some("vfat")),
        "this test expects a kernel that cannot mount vfat, as environment.md describes"
    );
    let scratch = TempDir::new("deploy-vfat-nested");
    let config = write_empty_solo_config(
        &scratch,
        "nested.json",
        "400 MiB",
        serde_json::json!([
            {"type": "partition", "mount": "/", "file_system": "ext4", "size": "100"},
            {"type": "partition", "mount": "/boot/efi", "size": "40",
             "file_system": "vfat"},
            {"type": "partition", "mount": "/boot/efi/extra", "file_system": "ext4", "size": "40"}
        ]),
    );
    let disk = scratch.join("node.img");
    let out = deploy(
        &config,
        &[("vda", &disk)],
        static_bootctl(),
        None,
        &["--yes"],
    );
    assert_eq!(out.status.code(), Some(3), "{}", describe_output(&out));
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        "deployer: image solo: /boot/efi/extra is mounted below the vfat filesystem at \
         /boot/efi, which this host's kernel cannot mount (its files go there through mtools)\n"
    );
    assert!(!disk.exists(), "the disk image was created");
}

/// A dynamically linked bootctl never goes into the images: given with `--bootctl`, or
/// found next to the deployer, it is refused before any write with one line naming it
/// and packaging/build-static-bootctl; by default the deployer takes the static build
/// from its own cargo target directory instead.
#[test]
fn a_dynamically_linked_bootctl_is_refused_and_the_static_build_found() {
    require_tools(&["readelf"]);
    let dynamic = Path::new("/bin/true");
    let headers = Command::new("readelf")
        .arg("-l")
        .arg(dynamic)
        .output()
        .expect("running readelf");
    assert!(
        String::from_utf8_lossy(&headers.stdout).contains("INTERP"),
        "{} is expected to be dynamically linked",
        dynamic.display()
    );
    let scratch = TempDir::new("deploy-bootctl");
    let disk = scratch.join("node.img");
    let missing_source = scratch.join("no-such-image").display().to_string();
    let refusal = |path: &Path| {
        format!(
            "deployer: bootctl binary {} is dynamically linked; the images need the static \
             build: run packaging/build-static-bootctl and give --bootctl the path it prints\n",
            path.display()
        )
    };

    // Writes solo.json, an image whose source is missing: every deploy below stops
    // before any write, at the bootctl or at the source.
    let out = deploy_one(&scratch, &missing_source, &disk, &["--yes"]);
    assert_eq!(out.status.code(), Some(3), "{}", describe_output(&out));
    let config = scratch.join("solo.json");
    let given = deploy(&config, &[("vda", &disk)], dynamic, None, &["--yes"]);
    assert_refused(&given, &refusal(dynamic));

    // A deployer in a cargo target directory of its own, without --bootctl.
    let target = scratch.join("target");
    let exe = target.join("debug/deployer");
    std::fs::create_dir_all(exe.parent().expect("a directory")).expect("creating target/debug");
    if std::fs::hard_link(env!("CARGO_BIN_EXE_deployer"), &exe).is_err() {
        std::fs::copy(env!("CARGO_BIN_EXE_deployer"), &exe).expect("copying the deployer");
    }
    let beside = target.join("debug/bootctl");
    std::fs::copy(dynamic, &beside).expect("copying a dynamic executable");
    let by_default = || {
        Command::new(&exe)
            .arg("deploy")
            .arg(&config)
            .arg("--disk")
            .arg(format!("vda={}", disk.display()))
            .arg("--yes")
            .stdin(Stdio::null())
            .output()
            .expect("running the linked deployer")
    };
    assert_refused(&by_default(), &refusal(&beside));
    let static_build = target.join("static/x86_64-unknown-linux-gnu/release/bootctl");
    std::fs::create_dir_all(static_build.parent().expect("a directory"))
        .expect("creating the static build's directory");
    std::fs::copy(static_bootctl(), &static_build).expect("copying the static bootctl");
    let out = by_default();
    assert_eq!(out.status.code(), Some(3), "{}", describe_output(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !stderr.contains("bootctl binary"),
        "the static build is taken: {stderr}"
    );
    assert!(
        stderr.contains("does not exist"),
        "the missing source: {stderr}"
    );
    assert!(!disk.exists(), "the disk image was created");
}

/// `--preserve-on-error`: a deploy that fails after partitioning leaves the new partition
/// table and filesystems for debugging, and still unmounts and detaches everything.
#[test]
fn preserve_on_error_keeps_the_table_of_a_failed_deploy() {
    require_tools(&["wipefs", "sfdisk", "mkfs.ext4", "mkfs.vfat", "blkid"]);
    let scratch = TempDir::new("deploy-preserve");
    let source = scratch.join("solo");
    std::fs::create_dir_all(source.join("boot")).expect("creating an image without a kernel");
    let disk = scratch.join("node.img");
    let stderr = deploy_without_kernel(&scratch, &source, &disk, &["--yes", "--preserve-on-error"]);
    assert!(
        stderr.contains("--preserve-on-error: the disks are left as they are"),
        "{stderr}"
    );
    assert!(!stderr.contains("wiped the partition table"), "{stderr}");
    let (table, sizes) = partition_table(&disk);
    assert_eq!(
        sizes,
        [1, 64, 100, 100],
        "the planned table survived: {table}"
    );
    let loop_disk = LoopDisk::attach(&disk);
    assert_eq!(
        blkid(&loop_disk.partition(4))
            .get("TYPE")
            .map(String::as_str),
        Some("ext4"),
        "the image's root filesystem is left too"
    );
    drop(loop_disk);
    assert_not_attached(&disk);
}

/// `text` as one POSIX shell word.
fn shell_quote(text: &str) -> String {
    format!("'{}'", text.replace('\'', "'\\''"))
}

/// Runs `deployer ARGS` on a terminal (a pty from util-linux `script`), answers the
/// confirmation prompt with `answer` once it is shown, and returns the exit status and
/// everything the terminal showed.
fn deploy_on_a_terminal(
    args: &[String],
    answer: &str,
    stdout_to: Option<&Path>,
) -> (Option<i32>, String) {
    use std::io::Write;
    use std::sync::{Arc, Mutex};
    const PROMPT: &str = "Destroy all data on vda (";
    const LIMIT: Duration = Duration::from_secs(300);
    let command = std::iter::once(env!("CARGO_BIN_EXE_deployer").to_owned())
        .chain(args.iter().cloned())
        .map(|arg| shell_quote(&arg))
        .collect::<Vec<_>>()
        .join(" ");
    let command = match stdout_to {
        Some(file) => format!("{command} > {}", shell_quote(&file.display().to_string())),
        None => command,
    };
    let mut script = e2e::cmd::ChildGuard::spawn(
        Command::new("script")
            .args(["-qec", &command, "/dev/null"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null()),
    );
    let shown = Arc::new(Mutex::new(String::new()));
    let mut stdout = script.child_mut().stdout.take().expect("script's stdout");
    let reader = {
        let shown = Arc::clone(&shown);
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while let Ok(n) = stdout.read(&mut buf) {
                if n == 0 {
                    break;
                }
                shown
                    .lock()
                    .expect("the terminal's text")
                    .push_str(&String::from_utf8_lossy(&buf[..n]));
            }
        })
    };
    let deadline = Instant::now() + LIMIT;
    while !shown.lock().expect("the terminal's text").contains(PROMPT) {
        assert!(
            Instant::now() < deadline,
            "no prompt within {LIMIT:?}: {}",
            shown.lock().expect("the terminal's text")
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let mut stdin = script.child_mut().stdin.take().expect("script's stdin");
    stdin.write_all(answer.as_bytes()).expect("answering");
    let status = script.wait_timeout(LIMIT);
    drop(stdin);
    reader.join().expect("the reader thread");
    let text = shown.lock().expect("the terminal's text").clone();
    assert!(status.is_some(), "no exit within {LIMIT:?}: {text}");
    (status.and_then(|s| s.code()), text)
}

/// On a terminal, without `--yes`, deploy shows the plan (on stderr, so that `--json`'s
/// stdout holds the summary alone) and asks: "n" writes nothing, "y" deploys.
#[test]
fn on_a_terminal_deploy_asks_first() {
    require_tools(&[
        "script",
        "wipefs",
        "sfdisk",
        "mkfs.ext4",
        "mkfs.vfat",
        "blkid",
    ]);
    let scratch = TempDir::new("deploy-tty");
    let image = FixtureImage::new("solo");
    let tree = scratch.join("solo");
    std::fs::create_dir(&tree).expect("creating an image tree");
    populate_image(&tree, &image);
    let disk = scratch.join("node.img");
    // Writes solo.json; the stand-in bootctl is not used below.
    let out = deploy_one(&scratch, &tree.display().to_string(), &disk, &[]);
    assert_eq!(out.status.code(), Some(2), "{}", describe_output(&out));
    let boot_info = scratch.join("boot-info.json");
    let args: Vec<String> = [
        "deploy".to_owned(),
        scratch.join("solo.json").display().to_string(),
        "--disk".to_owned(),
        format!("vda={}", disk.display()),
        "--bootctl".to_owned(),
        static_bootctl().display().to_string(),
        "--boot-info".to_owned(),
        boot_info.display().to_string(),
    ]
    .to_vec();

    let (status, shown) = deploy_on_a_terminal(&args, "n", None);
    assert_eq!(status, Some(2), "{shown}");
    assert!(
        shown.contains("Partitions policy clean"),
        "the plan: {shown}"
    );
    assert!(
        shown.contains("not confirmed; nothing was written"),
        "{shown}"
    );
    assert!(!disk.exists(), "the disk image was created: {shown}");

    // With --json, stdout holds the summary alone: the plan goes to the terminal on stderr.
    let summary_file = scratch.join("summary.json");
    let mut json_args = args.clone();
    json_args.push("--json".to_owned());
    let (status, shown) = deploy_on_a_terminal(&json_args, "n", Some(&summary_file));
    assert_eq!(status, Some(2), "{shown}");
    assert!(shown.contains("Partitions policy clean"), "{shown}");
    let summary: Value =
        serde_json::from_str(&std::fs::read_to_string(&summary_file).expect("reading the summary"))
            .unwrap_or_else(|e| panic!("stdout is not the summary alone: {e}"));
    assert_eq!(summary["exit"], 2);
    assert_eq!(
        summary["errors"],
        serde_json::json!(["not confirmed; nothing was written"])
    );
    assert!(!disk.exists(), "the disk image was created: {shown}");

    let (status, shown) = deploy_on_a_terminal(&args, "y", None);
    assert_eq!(status, Some(0), "{shown}");
    assert!(shown.contains("deployed 1 image(s)"), "{shown}");
    assert_eq!(read_boot_info(&boot_info)["elements"][0]["name"], "solo");
    assert_not_attached(&disk);
}
