//! `deployer deploy` under faults, as root, on disk-image files with real loop devices,
//! mounts and tools. The deployer under test is built with the `fault-injection` feature
//! (once per test run, in `<workspace>/target/fault`): its points at every step of a
//! deploy (`fault::step` in deployer/src) can be told through `MULTIBOOT_FAULT` to fail,
//! to kill the process or to stop it (`shared::fault`).
//!
//! - Failed at every step: the disk attached, wipefs, sfdisk, each mkfs, the download,
//!   the filesystem-image write, the tree copy, the tar extraction, an fstab, GRUB for
//!   BIOS and for UEFI, grub.cfg, grubenv and every copy of boot-info.json.
//! - The real tool of each step failing (a stand-in first on PATH fails one call and runs
//!   the real tool otherwise): the failure line names the step and quotes the tool.
//! - A download cut mid-stream and a checksum mismatch, from an HTTP server on 127.0.0.1
//!   that misbehaves once.
//! - Killed (SIGKILL) at every step.
//! - Disks that must not be written: too small, missing, mounted on the host, used as
//!   swap, the host's own root device: refused before the first write, the disk-image
//!   file's SHA-256 unchanged.
//!
//! After a failure: exit status 1 and one `deployer: deploy failed: ...` line naming the
//! step. Mounts made by the deployer live in its private mount namespace, so the test
//! looks into that namespace: the deployer stops itself (SIGSTOP) at the point
//! `deploy:failed`, after it reported the failure and wiped the disk, and the test reads
//! `/proc/PID/mountinfo`: nothing of the disk and nothing below TMPDIR is mounted, and the
//! work directory is empty (the mount directories and downloads are gone). After it
//! exited: no loop device serves the disk, no process's mountinfo names TMPDIR, TMPDIR is
//! empty, no boot-info.json (nor a temporary file) was left at `--boot-info`, and a
//! partition table the deploy wrote has been wiped, or, when the failure came before the
//! first write, the disk's bytes are unchanged. After a kill: no loop device serves the
//! disk, nothing is mounted, and a UEFI boot file on the ESP always comes with a complete
//! multiboot partition (a half-deployed disk never gets that far).
//! Each time, the same deploy then runs again without a fault: it must succeed, and its
//! result is checked (partitions, filesystems, grub.cfg, grubenv, boot-info.json in every
//! place, each image's files); the last disk of each suite is booted in QEMU.
//!
//! A missing tool fails the test and names `scripts/setup`.

use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Mutex, MutexGuard, OnceLock};
use std::thread::sleep;
use std::time::{Duration, Instant};

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use serde_json::{json, Value};
use shared::fault::{FaultAction, FaultSpec, FAULT_ENV};

use e2e::bootctl::static_bootctl;
use e2e::cmd::describe_output;
use e2e::cmd::{self, ChildGuard};
use e2e::disk::{blkid, sha256, LoopDisk, Mount};
use e2e::fixture::{populate_image, FixtureImage};
use e2e::http::{HttpServer, Mischief};
use e2e::qemu::{boot, expect_boot, Firmware};
use e2e::tmp::TempDir;
use e2e::tools::{find_tool, require_deploy_tools, require_tools};

mod disks;
mod points;
mod steps;

const TOOLS: &[&str] = &[
    "losetup",
    "mdir",
    "grub-script-check",
    "tar",
    "gzip",
    "e2fsck",
    "tune2fs",
    "resize2fs",
    "sha256sum",
];

const KERNEL_PARAMS: &str = "console=ttyS0 quiet panic=-1";

const BOOT_TIMEOUT: Duration = Duration::from_secs(240);

/// How long one deployer run may take.
const RUN_TIMEOUT: Duration = Duration::from_secs(600);

/// How long the kernel may take to release a killed deployer's loop device.
const RELEASE_TIMEOUT: Duration = Duration::from_secs(20);

/// The point where the deployer has reported a failure and cleaned up, and stops itself
/// for the test to look into its mount namespace.
const FAILED_POINT: &str = "deploy:failed";

/// Every step a fault is injected at, in deploy order, with the number of the arrival (a
/// point inside a loop is passed once per disk, filesystem, image or chunk). The config
/// has one disk, six filesystems (ESP, multiboot, three roots, one shared), and images
/// alpha (a directory tree), beta (a tar.gz over HTTP) and gamma (a raw ext4 image). GRUB's
/// BIOS files and the images are written at the same time: which image arrives first at a
/// point varies.
const STEPS: &[(&str, u64)] = &[
    ("disk:attached", 1),
    ("partition:wipefs", 1),
    ("partition:sfdisk", 1),
    ("mkfs", 1),
    ("mkfs", 2),
    ("mkfs", 3),
    ("mkfs", 4),
    ("mkfs", 5),
    ("mkfs", 6),
    ("grub:files", 1),
    ("image:copy", 1),
    ("image:fstab", 1),
    ("image:download", 1),
    ("image:tar", 1),
    ("image:fstab", 2),
    ("image:fsimage", 1),
    ("image:fstab", 3),
    ("grub:bios", 1),
    ("write:grub.cfg", 1),
    ("write:grubenv", 1),
    ("boot-info:multiboot", 1),
    ("grub:uefi", 1),
    ("boot-info:image", 1),
    ("boot-info:image", 3),
    ("boot-info:file", 1),
];

/// The steps before the deployer's first write to the disk.
const BEFORE_FIRST_WRITE: &[&str] = &["disk:attached"];

/// The heavy suites run one at a time: each deploys dozens of times and boots QEMU.
fn heavy() -> MutexGuard<'static, ()> {
    static HEAVY: Mutex<()> = Mutex::new(());
    HEAVY
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// The deployer with the fault points compiled in: built once per test run in its
/// own target directory, `<workspace>/target/fault`.
fn fault_deployer() -> &'static Path {
    static BINARY: OnceLock<PathBuf> = OnceLock::new();
    BINARY.get_or_init(|| e2e::build::with_fault_injection("deployer"))
}

/// The deployer as shipped: no fault points.
fn plain_deployer() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_deployer"))
}

fn spec(action: FaultAction, point: &str, nth: u64) -> String {
    FaultSpec {
        action,
        point: point.to_owned(),
        nth,
    }
    .to_string()
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()))
}

/// The loop devices backed by `file`.
fn loops_of(file: &Path) -> Vec<String> {
    cmd::run(Command::new("losetup").arg("-j").arg(file))
        .lines()
        .filter_map(|l| l.split(':').next())
        .map(str::to_owned)
        .collect()
}

/// Waits (bounded) until no loop device is backed by `file`: a killed deployer's loop
/// device goes once the kernel has torn down its mount namespace.
fn expect_released(file: &Path, what: &str) {
    let deadline = Instant::now() + RELEASE_TIMEOUT;
    loop {
        let loops = loops_of(file);
        if loops.is_empty() {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{what}: {loops:?} still serve {} after {RELEASE_TIMEOUT:?}",
            file.display()
        );
        sleep(Duration::from_millis(200));
    }
}

/// Every line of every process's mountinfo that contains `needle`.
fn mounts_anywhere(needle: &str) -> Vec<String> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").expect("/proc").flatten() {
        let is_pid = entry
            .file_name()
            .to_str()
            .is_some_and(|n| n.parse::<u32>().is_ok());
        if !is_pid {
            continue;
        }
        // A process may end while it is read.
        let Ok(text) = std::fs::read_to_string(entry.path().join("mountinfo")) else {
            continue;
        };
        found.extend(
            text.lines()
                .filter(|l| l.contains(needle))
                .map(|l| format!("{}: {l}", entry.path().display())),
        );
    }
    found
}

/// The names in a directory.
fn names(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("reading {}: {e}", dir.display()))
        .map(|e| {
            e.expect("a directory entry")
                .file_name()
                .to_string_lossy()
                .into_owned()
        })
        .collect();
    names.sort();
    names
}

// ---------------------------------------------------------------------------------------
// The node: three images, one disk-image file, and the deploys onto it.

/// Writes a small image tree: a kernel and initrd by name only, os-release, a marker and a
/// file for the shared partition.
fn small_tree(root: &Path, name: &str) {
    for (path, contents) in [
        ("boot/vmlinuz-6.1.0-test".to_owned(), "kernel\n".to_owned()),
        (
            "boot/initrd.img-6.1.0-test".to_owned(),
            "initrd\n".to_owned(),
        ),
        (
            "etc/os-release".to_owned(),
            format!("ID=fixture\nPRETTY_NAME=\"Fixture {name}\"\n"),
        ),
        ("etc/marker".to_owned(), format!("{name}\n")),
        (format!("srv/common/{name}.txt"), format!("from {name}\n")),
    ] {
        let path = root.join(path);
        std::fs::create_dir_all(path.parent().expect("a parent")).expect("creating a directory");
        std::fs::write(&path, contents)
            .unwrap_or_else(|e| panic!("writing {}: {e}", path.display()));
    }
}

/// A scratch directory with the three image sources, the HTTP server, the config and the
/// disk-image file the deploys write.
struct Node {
    scratch: TempDir,
    server: HttpServer,
    config: PathBuf,
    disk: PathBuf,
    /// TMPDIR of every deployer run: its work directory goes there.
    tmpdir: PathBuf,
    /// Where `--boot-info` points: nothing else is ever in this directory.
    out: PathBuf,
    /// First on the deployer's PATH: where a test puts a failing stand-in for a tool.
    stubs: PathBuf,
}

impl Node {
    fn new(label: &str) -> Node {
        require_deploy_tools(TOOLS);
        let scratch = TempDir::new(label);
        let alpha = FixtureImage::new("alpha").file("srv/common/alpha.txt", "from alpha\n", 0o644);
        let alpha_tree = scratch.join("alpha");
        std::fs::create_dir(&alpha_tree).expect("creating alpha's tree");
        populate_image(&alpha_tree, &alpha);
        for name in ["beta", "gamma"] {
            small_tree(&scratch.join(name), name);
        }
        let beta_tar = scratch.join("beta.tar.gz");
        cmd::run(
            Command::new("tar")
                .args(["--numeric-owner", "-czf"])
                .arg(&beta_tar)
                .arg("-C")
                .arg(scratch.join("beta"))
                .arg("."),
        );
        let gamma_img = scratch.join("gamma.img");
        cmd::run(
            Command::new("mkfs.ext4")
                .args(["-q", "-F", "-d"])
                .arg(scratch.join("gamma"))
                .arg(&gamma_img)
                .arg("16M"),
        );
        let server = HttpServer::serve(BTreeMap::from([(
            "beta.tar.gz".to_owned(),
            std::fs::read(&beta_tar).expect("reading beta's archive"),
        )]));
        let config = scratch.join("provision.json");
        let volume = |mount: &str, size: &str, images: &[&str]| {
            json!({"type": "partition", "mount": mount, "size": size, "images": images,
                   "file_system": "ext4"})
        };
        let provision = json!({
            "images": [
                {"name": "alpha", "boot": true, "image_pull_url": alpha_tree, "target": "/"},
                {"name": "beta", "image_pull_url": server.url("beta.tar.gz"),
                 "sha256": sha256(&beta_tar), "target": "/"},
                {"name": "gamma", "image_pull_url": gamma_img, "target": "/"}
            ],
            "partitions": [{
                "type": "disk", "id": {"type": "name", "value": "vda"}, "size": "400 MiB",
                "volumes": [
                    volume("/", "100", &["alpha"]),
                    volume("/", "16", &["beta"]),
                    volume("/", "24", &["gamma"]),
                    volume("/srv/common", "16", &["alpha", "beta"])
                ]
            }],
            "partitions_policy": "clean",
            "deploy_data": {"kernel_params": KERNEL_PARAMS}
        });
        std::fs::write(&config, provision.to_string()).expect("writing provision.json");
        let node = Node {
            disk: scratch.join("node.img"),
            tmpdir: scratch.join("tmp"),
            out: scratch.join("out"),
            stubs: scratch.join("stubs"),
            scratch,
            server,
            config,
        };
        for dir in [&node.tmpdir, &node.out, &node.stubs] {
            std::fs::create_dir(dir).expect("creating a directory");
        }
        node
    }

    /// The stubs' directory, then this process's PATH.
    fn path(&self) -> std::ffi::OsString {
        let inherited = std::env::var_os("PATH").unwrap_or_default();
        std::env::join_paths(
            std::iter::once(self.stubs.clone()).chain(std::env::split_paths(&inherited)),
        )
        .expect("a PATH")
    }

    /// Puts a stand-in for `tool` first on the deployer's PATH that fails (exit 8, one
    /// line on stderr) the `nth` time it runs and runs the real tool otherwise.
    fn fail_tool(&self, tool: &str, nth: u32) {
        let real = find_tool(tool)
            .unwrap_or_else(|| panic!("{tool} not found: run scripts/setup (see README)"));
        let calls = self.stubs.join(format!("{tool}.calls"));
        // Counted under a lock: the deployer runs some tools side by side (mkfs).
        let script = format!(
            "#!/bin/sh\n\
             n=$(flock '{calls}.lock' sh -c 'n=$(( $(cat \"$1\" 2>/dev/null || echo 0) + 1 )); \
             echo \"$n\" > \"$1\"; echo \"$n\"' sh '{calls}')\n\
             if [ \"$n\" = {nth} ]; then echo '{tool}: injected failure' >&2; exit 8; fi\n\
             exec '{real}' \"$@\"\n",
            calls = calls.display(),
            real = real.display()
        );
        let stub = self.stubs.join(tool);
        std::fs::write(&stub, script).expect("writing a stub");
        std::fs::set_permissions(&stub, std::fs::Permissions::from_mode(0o755))
            .expect("making the stub executable");
    }

    /// Removes every stub.
    fn clear_stubs(&self) {
        for name in names(&self.stubs) {
            std::fs::remove_file(self.stubs.join(name)).expect("removing a stub");
        }
    }

    fn boot_info(&self) -> PathBuf {
        self.out.join("boot-info.json")
    }

    /// `BINARY deploy CONFIG --disk vda=DISK ... --yes --grub-timeout 0` (the disk boots
    /// without waiting at GRUB's menu), TMPDIR set, MULTIBOOT_FAULT as given (and removed
    /// otherwise).
    fn command(&self, binary: &Path, faults: Option<&str>) -> Command {
        let mut command = Command::new(binary);
        command
            .arg("deploy")
            .arg(&self.config)
            .arg("--disk")
            .arg(format!("vda={}", self.disk.display()))
            .arg("--boot-info")
            .arg(self.boot_info())
            .arg("--bootctl")
            .arg(static_bootctl())
            .arg("--yes")
            .args(["--grub-timeout", "0"])
            .env("TMPDIR", &self.tmpdir)
            .env("PATH", self.path())
            .env_remove(FAULT_ENV)
            .stdin(Stdio::null());
        if let Some(faults) = faults {
            command.env(FAULT_ENV, faults);
        }
        command
    }

    /// Deploys without faults with the shipped deployer and checks the result; returns
    /// the deployer's stderr.
    fn deploy_and_check(&self, what: &str) -> String {
        let out = cmd::output(&mut self.command(plain_deployer(), None));
        assert!(out.status.success(), "{what}: {}", describe_output(&out));
        self.check_deployed(what);
        assert_eq!(names(&self.tmpdir), Vec::<String>::new(), "{what}: TMPDIR");
        assert!(
            loops_of(&self.disk).is_empty(),
            "{what}: a loop device is left"
        );
        let entries = self.out.join("boot_entries.json");
        assert_eq!(
            read(&entries),
            read(&self.boot_info()),
            "{what}: boot_entries.json beside boot-info.json"
        );
        std::fs::remove_file(self.boot_info()).expect("removing boot-info.json");
        std::fs::remove_file(entries).expect("removing boot_entries.json");
        String::from_utf8_lossy(&out.stderr).into_owned()
    }

    /// Checks what a deploy made: the partitions, every filesystem's UUID, grub.cfg,
    /// grubenv, GRUB for BIOS and UEFI, boot-info.json everywhere, each image's files.
    fn check_deployed(&self, what: &str) {
        let info: Value = serde_json::from_str(&read(&self.boot_info())).expect("boot-info.json");
        let elements = info["elements"].as_array().expect("elements");
        let names: Vec<&str> = elements
            .iter()
            .map(|e| e["name"].as_str().unwrap_or(""))
            .collect();
        assert_eq!(names, ["alpha", "beta", "gamma"], "{what}: {info}");
        assert_eq!(info["current_element"], 0, "{what}: {info}");
        let table: Value =
            serde_json::from_str(&cmd::run(Command::new("sfdisk").arg("-J").arg(&self.disk)))
                .expect("sfdisk -J is JSON");
        let sizes: Vec<u64> = table["partitiontable"]["partitions"]
            .as_array()
            .expect("partitions")
            .iter()
            .map(|p| p["size"].as_u64().expect("a size") / 2048)
            .collect();
        assert_eq!(sizes, [1, 64, 100, 100, 16, 24, 16], "{what}: {table}");

        let disk = LoopDisk::attach_read_only(&self.disk);
        let multiboot_uuid = info["multiboot_partition"]
            .as_str()
            .expect("the multiboot UUID");
        assert_eq!(
            blkid(&disk.partition(3)).get("UUID").map(String::as_str),
            Some(multiboot_uuid),
            "{what}"
        );
        {
            let multiboot = Mount::new(&disk.partition(3), &self.scratch.join("check-mb"), "ro");
            let grub = multiboot.path().join("boot/grub");
            let cfg = read(&grub.join("grub.cfg"));
            e2e::grubcfg::script_check(&cfg);
            for name in ["alpha", "beta", "gamma"] {
                assert!(
                    cfg.contains(&format!("'multiboot-{name}'")),
                    "{what}: {cfg}"
                );
            }
            let env = std::fs::read(grub.join("grubenv")).expect("grubenv");
            assert_eq!(env.len(), 1024, "{what}: grubenv");
            assert!(
                String::from_utf8_lossy(&env).contains("saved_entry=multiboot-alpha\n"),
                "{what}: grubenv"
            );
            assert!(grub.join("i386-pc/core.img").is_file(), "{what}: core.img");
            assert!(
                grub.join("x86_64-efi/normal.mod").is_file(),
                "{what}: EFI modules"
            );
            let on_partition: Value =
                serde_json::from_str(&read(&multiboot.path().join("boot-info.json")))
                    .expect("boot-info.json on the multiboot partition");
            assert_eq!(
                on_partition, info,
                "{what}: boot-info.json on the multiboot partition"
            );
        }
        assert!(
            esp_has_boot_file(&disk.partition(2)),
            "{what}: no BOOTX64.EFI"
        );
        for (element, number) in elements.iter().zip([4u32, 5, 6]) {
            let name = element["name"].as_str().expect("a name");
            let node = disk.partition(number);
            assert_eq!(
                blkid(&node).get("UUID").map(String::as_str),
                element["root_uuid"].as_str(),
                "{what}: {name}'s root"
            );
            let root = Mount::new(&node, &self.scratch.join(format!("check-{name}")), "ro");
            let copy: Value =
                serde_json::from_str(&read(&root.path().join("etc/multiboot/boot-info.json")))
                    .expect("the image's boot-info.json");
            assert_eq!(copy, info, "{what}: {name}'s boot-info.json");
            assert!(read(&root.path().join("etc/fstab"))
                .contains(element["root_uuid"].as_str().unwrap_or("?")));
            assert!(
                root.path().join("usr/sbin/bootctl").is_file(),
                "{what}: {name}'s bootctl"
            );
            let os_release = read(&root.path().join("etc/os-release"));
            assert!(
                os_release
                    .to_lowercase()
                    .contains(&format!("fixture {name}")),
                "{what}: {name}: {os_release}"
            );
        }
        let common = Mount::new(&disk.partition(7), &self.scratch.join("check-common"), "ro");
        for name in ["alpha", "beta"] {
            assert_eq!(
                read(&common.path().join(format!("{name}.txt"))),
                format!("from {name}\n"),
                "{what}"
            );
        }
    }

    /// Runs the fault deployer with `faults` (specs), which must make it fail; `what`
    /// names the run in messages. While it is stopped at [`FAILED_POINT`], its mount
    /// namespace and work directory are checked; after it exited, everything else.
    /// Returns its stderr.
    fn fail(&self, what: &str, faults: &[String]) -> String {
        let log = self.scratch.join("deployer.stderr");
        let stderr = std::fs::File::create(&log).expect("creating the stderr log");
        let mut all = faults.to_vec();
        all.push(spec(FaultAction::Stop, FAILED_POINT, 1));
        let all = all.join(",");
        let mut child = ChildGuard::spawn(
            self.command(fault_deployer(), Some(&all))
                .stdout(Stdio::null())
                .stderr(stderr),
        );
        let pid = child.child_mut().id();
        let deadline = Instant::now() + RUN_TIMEOUT;
        loop {
            if let Some(status) = child
                .child_mut()
                .try_wait()
                .expect("waiting for the deployer")
            {
                panic!(
                    "{what}: the deployer exited ({status}) without failing:\n{}",
                    read(&log)
                );
            }
            if process_state(pid) == Some('T') {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "{what}: the deployer still runs after {RUN_TIMEOUT:?}"
            );
            sleep(Duration::from_millis(50));
        }
        self.check_stopped(pid, what);
        kill(Pid::from_raw(pid as i32), Signal::SIGCONT).expect("SIGCONT");
        let status = child.wait_timeout(RUN_TIMEOUT).expect("the deployer ends");
        let stderr = read(&log);
        assert_eq!(status.code(), Some(1), "{what}: {status}\n{stderr}");
        let failed: Vec<&str> = stderr
            .lines()
            .filter(|l| l.starts_with("deployer: deploy failed: "))
            .collect();
        assert_eq!(
            failed.len(),
            1,
            "{what}: one line names the failure:\n{stderr}"
        );
        eprintln!("{what}: {}", failed[0]);
        self.check_left_nothing(what);
        stderr
    }

    /// The deployer `pid` stopped after reporting a failure: nothing below TMPDIR nor any
    /// partition of its disk is mounted in its namespace, and its work directory is empty.
    fn check_stopped(&self, pid: u32, what: &str) {
        let mountinfo = read(&PathBuf::from(format!("/proc/{pid}/mountinfo")));
        let tmpdir = self.tmpdir.display().to_string();
        let loops = loops_of(&self.disk);
        assert_eq!(
            loops.len(),
            1,
            "{what}: the deployer's loop device: {loops:?}"
        );
        let device = &loops[0];
        for line in mountinfo.lines() {
            let source = line
                .split(" - ")
                .nth(1)
                .and_then(|rest| rest.split(' ').nth(1));
            assert!(
                !line.contains(&tmpdir) && !source.is_some_and(|s| s.starts_with(device.as_str())),
                "{what}: still mounted in the deployer's namespace: {line}"
            );
        }
        let work = self.tmpdir.join(format!("deployer-{pid}"));
        assert_eq!(
            names(&work),
            Vec::<String>::new(),
            "{what}: the work directory"
        );
    }

    /// After a failed deploy exited: no loop device, no mount anywhere, an empty TMPDIR and
    /// `--boot-info` directory.
    fn check_left_nothing(&self, what: &str) {
        expect_released(&self.disk, what);
        let tmpdir = self.tmpdir.display().to_string();
        assert_eq!(
            mounts_anywhere(&tmpdir),
            Vec::<String>::new(),
            "{what}: mounts"
        );
        assert_eq!(names(&self.tmpdir), Vec::<String>::new(), "{what}: TMPDIR");
        assert_eq!(
            names(&self.out),
            Vec::<String>::new(),
            "{what}: the --boot-info directory"
        );
    }
}

/// The state letter of `/proc/PID/stat` (`T` stopped), `None` once the process is gone.
fn process_state(pid: u32) -> Option<char> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    stat.rsplit_once(") ")?.1.chars().next()
}

/// Whether the ESP `node` holds `EFI/BOOT/BOOTX64.EFI`.
fn esp_has_boot_file(node: &Path) -> bool {
    let out = cmd::output(
        Command::new("mdir")
            .arg("-i")
            .arg(node)
            .args(["-b", "::/EFI/BOOT"]),
    );
    String::from_utf8_lossy(&out.stdout).contains("BOOTX64.EFI")
}
