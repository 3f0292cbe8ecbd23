//! The os-prober mode for real, as root: two fixture images on ext4 partitions of one
//! loop disk, while a foreign loop disk holding a third Linux tree is attached too. The real
//! grub-mkconfig and os-prober run (traced with strace); the menu must hold exactly the two
//! images with the right grub ids and titles, the foreign disk must never be opened, nothing
//! of the host's GRUB or os-prober state may change, and the disk must boot in QEMU: the
//! default image, then the other one through grubenv's `next_entry` and its grub id.
//!
//! A missing tool fails the test and names `scripts/setup`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use deployer::apply::osprober::{os_prober_menu, OsProberImage, OsProberMenu};
use deployer::config::ImageSource;
use deployer::plan::{ImageLayout, ImagePlan};
use deployer::JsonPath;
use e2e::disk::{snapshot_tree, LoopDisk, Mount};
use e2e::fixture::{populate_image, write, FixtureImage};
use e2e::qemu::{boot, expect_boot, Firmware};
use e2e::tmp::TempDir;
use e2e::tools::require_tools;
use e2e::{cmd, grubcfg};

const TOOLS: &[&str] = &[
    "sfdisk",
    "partx",
    "losetup",
    "mkfs.ext4",
    "mount",
    "umount",
    "unshare",
    "grub-mkconfig",
    "grub-probe",
    "grub-mount",
    "grub-script-check",
    "grub-install",
    "grub-editenv",
    "os-prober",
    "linux-boot-prober",
    "strace",
    "kill",
    "busybox",
];

const KERNEL_PARAMS: &str = "console=ttyS0 quiet panic=-1";
const BOOT_TIMEOUT: Duration = Duration::from_secs(240);
const MIB: u64 = 1024 * 1024;
const LINUX: &str = "0FC63DAF-8483-4772-8E79-3D69D8477DE4";
const BIOS_GRUB: &str = "21686148-6449-6E6F-744E-656564454649";

/// Partitions of the node disk: bios_grub, multiboot, alpha's and beta's roots.
const MULTIBOOT: u32 = 2;
const ALPHA: u32 = 3;
const BETA: u32 = 4;

/// Room for a fixture tree on ext4.
fn root_mib(image: &FixtureImage) -> u64 {
    (image.payload_bytes().div_ceil(MIB) * 5 / 4 + 24).max(96)
}

/// `mkfs.ext4 -U uuid`, then the fixture tree and an fstab naming `/` by UUID, as the
/// deployer writes it.
fn make_root(device: &Path, uuid: &str, image: &FixtureImage, scratch: &TempDir) {
    cmd::run(
        Command::new("mkfs.ext4")
            .args(["-q", "-F", "-U", uuid, "-L", &image.name])
            .arg(device),
    );
    let mount = Mount::new(device, &scratch.join(format!("fill-{}", image.name)), "");
    populate_image(mount.path(), image);
    write(
        &mount.path().join("etc/fstab"),
        format!("UUID={uuid} / ext4 defaults 0 1\n").as_bytes(),
        0o644,
    );
}

/// A loop disk with a GPT of `parts` (sfdisk lines), partition nodes waited for.
fn gpt_disk(path: &Path, parts: &[String]) -> LoopDisk {
    let total: u64 = parts
        .iter()
        .map(|p| {
            p.split("size=")
                .nth(1)
                .and_then(|s| s.split("MiB").next())
                .and_then(|s| s.parse::<u64>().ok())
                .expect("size=NMiB")
        })
        .sum();
    let disk = LoopDisk::create(path, (total + 2) * MIB);
    let script = format!("label: gpt\n{}\n", parts.join("\n"));
    cmd::run_with_input(
        Command::new("sfdisk").arg("--quiet").arg(disk.device()),
        &script,
    );
    disk.reread_partitions();
    for n in 1..=parts.len() as u32 {
        disk.partition(n);
    }
    disk
}

fn image_plan(name: &str) -> ImagePlan {
    ImagePlan {
        name: name.to_owned(),
        config_path: JsonPath::root().key("images").index(0),
        grub_menu_id: format!("multiboot-{name}"),
        kernel_params: Some(KERNEL_PARAMS.to_owned()),
        source: ImageSource::Path(format!("/srv/{name}")),
        target: "/".to_owned(),
        sha256: None,
        image_name: None,
        image_uuid: None,
    }
}

/// The layout of an image whose `/` (and so its `/boot`) is filesystem `uuid`.
fn root_layout(uuid: &str) -> ImageLayout {
    ImageLayout {
        mounts: Vec::new(),
        root_uuid: Some(uuid.to_owned()),
        separate_boot: false,
        boot_uuid: Some(uuid.to_owned()),
        fstab: format!("UUID={uuid} / ext4 defaults 0 1\n"),
    }
}

/// What the host keeps of GRUB and os-prober: its grub.d, defaults, /boot/grub and
/// os-prober's state, file by file (`None` for a directory that does not exist).
fn host_state() -> BTreeMap<&'static str, Option<BTreeMap<String, Vec<u8>>>> {
    [
        "/etc/grub.d",
        "/etc/default",
        "/boot/grub",
        "/var/lib/os-prober",
    ]
    .into_iter()
    .map(|dir| {
        (
            dir,
            Path::new(dir)
                .is_dir()
                .then(|| snapshot_tree(Path::new(dir))),
        )
    })
    .collect()
}

/// strace following this thread and every process it starts, stopped (SIGINT: it
/// detaches) when dropped.
struct Trace {
    child: Child,
    log: PathBuf,
}

impl Trace {
    fn start(log: PathBuf) -> Trace {
        let tid = std::fs::read_link("/proc/thread-self")
            .expect("reading /proc/thread-self")
            .file_name()
            .expect("a thread id")
            .to_string_lossy()
            .into_owned();
        let child = Command::new("strace")
            .args(["-f", "-qq", "-s", "256", "-o"])
            .arg(&log)
            .args([
                "-e",
                "trace=execve,open,openat,creat,mkdir,mkdirat,unlink,unlinkat,rename,renameat,\
                 renameat2,rmdir,symlink,symlinkat,link,linkat,truncate,mount",
                "-p",
                &tid,
            ])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .spawn()
            .expect("starting strace");
        let trace = Trace { child, log };
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let status = std::fs::read_to_string("/proc/thread-self/status").expect("status");
            let traced = status
                .lines()
                .find_map(|l| l.strip_prefix("TracerPid:"))
                .is_some_and(|pid| pid.trim() != "0");
            if traced {
                return trace;
            }
            assert!(Instant::now() < deadline, "strace did not attach");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Stops tracing and returns the log.
    fn finish(mut self) -> String {
        self.stop();
        std::fs::read_to_string(&self.log).expect("reading the strace log")
    }

    fn stop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let pid = self.child.id().to_string();
            let _ = Command::new("kill").args(["-INT", &pid]).status();
            let deadline = Instant::now() + Duration::from_secs(20);
            while matches!(self.child.try_wait(), Ok(None)) && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = self.child.kill();
        }
        let _ = self.child.wait();
    }
}

impl Drop for Trace {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Whether `log` names the disk `device` or one of its partitions anywhere.
fn mentions(log: &str, device: &Path) -> Vec<String> {
    let dev = device.display().to_string();
    let name = dev.trim_start_matches("/dev/").to_owned();
    let needles = [
        format!("\"{dev}\""),
        format!("\"{dev}p"),
        format!("/block/{name}/"),
        format!("/block/{name}\""),
    ];
    log.lines()
        .filter(|line| needles.iter().any(|needle| line.contains(needle)))
        .map(str::to_owned)
        .collect()
}

/// Paths the traced processes created, wrote, renamed or removed.
fn written_paths(log: &str) -> Vec<String> {
    let mut paths = Vec::new();
    for line in log.lines() {
        if line.contains("= -1 ") || line.contains("<unfinished") {
            continue;
        }
        let call = line.split_whitespace().nth(1).unwrap_or("");
        let writes = if call.starts_with("open") {
            line.contains("O_WRONLY") || line.contains("O_RDWR") || line.contains("O_CREAT")
        } else {
            !call.starts_with("execve") && !call.starts_with("mount") && !call.starts_with("---")
        };
        if writes {
            let quoted = line.split('"').skip(1).step_by(2);
            let mut named: Vec<String> = quoted
                .filter(|p| p.starts_with('/'))
                .map(str::to_owned)
                .collect();
            if call.starts_with("symlink") {
                // symlink(TARGET, LINKPATH): only the link is written.
                named.drain(..named.len().saturating_sub(1));
            }
            paths.extend(named);
        }
    }
    paths
}

#[test]
fn os_prober_finds_the_deployed_images_and_only_them() {
    require_tools(TOOLS);
    let scratch = TempDir::new("osprober-real");
    let alpha = FixtureImage::new("alpha");
    let beta = FixtureImage::new("beta");
    let foreign = FixtureImage::new("foreign");
    let alpha_uuid = uuid::Uuid::new_v4().to_string();
    let beta_uuid = uuid::Uuid::new_v4().to_string();
    let multiboot_uuid = uuid::Uuid::new_v4().to_string();

    let disk_path = scratch.join("node.img");
    let disk = gpt_disk(
        &disk_path,
        &[
            format!("size=1MiB, type={BIOS_GRUB}"),
            format!("size=100MiB, type={LINUX}"),
            format!("size={}MiB, type={LINUX}", root_mib(&alpha)),
            format!("size={}MiB, type={LINUX}", root_mib(&beta)),
        ],
    );
    cmd::run(
        Command::new("mkfs.ext4")
            .args(["-q", "-F", "-U", &multiboot_uuid, "-L", "multiboot"])
            .arg(disk.partition(MULTIBOOT)),
    );
    make_root(&disk.partition(ALPHA), &alpha_uuid, &alpha, &scratch);
    make_root(&disk.partition(BETA), &beta_uuid, &beta, &scratch);
    let foreign_disk = gpt_disk(
        &scratch.join("foreign.img"),
        &[format!("size={}MiB, type={LINUX}", root_mib(&foreign))],
    );
    make_root(
        &foreign_disk.partition(1),
        &uuid::Uuid::new_v4().to_string(),
        &foreign,
        &scratch,
    );

    let plans = [image_plan("alpha"), image_plan("beta")];
    let layouts = [root_layout(&alpha_uuid), root_layout(&beta_uuid)];
    let images = [
        OsProberImage {
            plan: &plans[0],
            layout: &layouts[0],
            root_device: disk.partition(ALPHA),
        },
        OsProberImage {
            plan: &plans[1],
            layout: &layouts[1],
            root_device: disk.partition(BETA),
        },
    ];
    let work = scratch.join("work");
    std::fs::create_dir(&work).expect("creating the work directory");
    let before = host_state();
    let trace = Trace::start(scratch.join("strace.log"));
    let started = Instant::now();
    let result = os_prober_menu(&images, &[disk.device().to_owned()], "beta", 5, &work);
    let elapsed = started.elapsed();
    let log = trace.finish();
    let menu: OsProberMenu = result.unwrap_or_else(|err| panic!("os_prober_menu: {err:#}"));
    eprintln!("os_prober_menu took {elapsed:.1?}");

    // The menu: both images, by grub id (a submenu counts once) and title.
    let got: Vec<(&str, u32, &str)> = menu
        .entries
        .iter()
        .map(|e| (e.image.as_str(), e.grub_id, e.title.as_str()))
        .collect();
    assert_eq!(
        got,
        [("alpha", 0, "Fixture ALPHA"), ("beta", 2, "Fixture BETA")],
        "{}",
        menu.grub_cfg
    );
    assert_eq!(
        menu.entries[1].menu_id,
        Some(format!("osprober-gnulinux-simple-{beta_uuid}"))
    );
    assert!(menu.dropped.is_empty(), "{:?}", menu.dropped);
    let cfg = &menu.grub_cfg;
    grubcfg::script_check(cfg);
    assert!(!cfg.contains("/dev/loop"), "{cfg}");
    assert!(!cfg.contains("FOREIGN"), "{cfg}");
    let parsed = shared::grubcfg::parse(cfg).expect("grub.cfg parses");
    assert_eq!(parsed.items.len(), 4, "{cfg}");
    for entry in parsed.entries() {
        let want = if entry.path[0] < 2 {
            &alpha_uuid
        } else {
            &beta_uuid
        };
        assert_eq!(
            entry.item.root_uuid(),
            Some(want.as_str()),
            "{}",
            entry.item.title
        );
    }
    assert_eq!(
        cfg.lines()
            .filter(|l| l.trim_start().starts_with("linux "))
            .filter(|l| !l.ends_with(KERNEL_PARAMS))
            .collect::<Vec<_>>(),
        Vec::<&str>::new(),
        "every kernel gets the image's parameters"
    );

    // The host kept its GRUB and os-prober state.
    assert_eq!(
        host_state(),
        before,
        "the host's GRUB or os-prober files changed"
    );

    // Only the deployed disk was probed: the foreign one was never opened, and os-prober
    // mounted (grub-mount) both images' roots and nothing off the deployed disk.
    let artifacts = e2e::artifacts_dir();
    std::fs::create_dir_all(&artifacts).expect("creating the artifacts directory");
    std::fs::copy(
        scratch.join("strace.log"),
        artifacts.join("osprober-real-strace.log"),
    )
    .expect("keeping the strace log");
    let foreign_lines = mentions(&log, foreign_disk.device());
    assert!(
        foreign_lines.is_empty(),
        "the foreign disk was touched:\n{}",
        foreign_lines.join("\n")
    );
    let grub_mounts: Vec<&str> = log
        .lines()
        .filter(|line| line.contains("execve(\"/usr/bin/grub-mount\""))
        .collect();
    let disk_dev = disk.device().display().to_string();
    for root in [ALPHA, BETA] {
        let dev = disk.partition(root).display().to_string();
        assert!(
            grub_mounts
                .iter()
                .any(|l| l.contains(&format!("\"{dev}\""))),
            "os-prober did not mount {dev}:\n{}",
            grub_mounts.join("\n")
        );
    }
    for line in &grub_mounts {
        assert!(line.contains(&format!("\"{disk_dev}p")), "{line}");
    }
    // Everything written went to the work directory or the run's private tmpfs mounts.
    let allowed = [
        format!("{}/", work.display()),
        "/tmp/".to_owned(),
        "/run/".to_owned(),
        "/var/lib/os-prober/".to_owned(),
        "/dev/null".to_owned(),
        "/dev/fuse".to_owned(),
        "/dev/mapper/control".to_owned(),
    ];
    let stray: Vec<String> = written_paths(&log)
        .into_iter()
        .filter(|path| !allowed.iter().any(|ok| path.starts_with(ok.as_str())))
        .collect();
    assert!(stray.is_empty(), "written outside the sandbox: {stray:?}");
    assert!(
        std::fs::read_dir(&work).expect("work").next().is_none(),
        "the staging directory was left behind"
    );

    // The disk boots: GRUB on its bios_grub, this grub.cfg and an empty grubenv on the
    // multiboot partition. beta by default; alpha once through next_entry = its grub id.
    {
        let multiboot = Mount::new(&disk.partition(MULTIBOOT), &scratch.join("mb"), "");
        let boot_dir = multiboot.path().join("boot");
        cmd::run(
            Command::new("grub-install")
                .arg("--target=i386-pc")
                .arg(format!("--boot-directory={}", boot_dir.display()))
                .arg("--modules=part_gpt ext2")
                .arg(disk.device()),
        );
        write(&boot_dir.join("grub/grub.cfg"), cfg.as_bytes(), 0o644);
        cmd::run(
            Command::new("grub-editenv")
                .arg(boot_dir.join("grub/grubenv"))
                .arg("create"),
        );
    }
    drop(foreign_disk);
    drop(disk);
    let first = boot(&disk_path, Firmware::Bios, BOOT_TIMEOUT, "osprober-real-1");
    expect_boot(
        &first,
        "beta",
        "the default entry of the os-prober grub.cfg",
    );
    {
        let disk = LoopDisk::attach(&disk_path);
        let multiboot = Mount::new(&disk.partition(MULTIBOOT), &scratch.join("mb2"), "");
        cmd::run(
            Command::new("grub-editenv")
                .arg(multiboot.path().join("boot/grub/grubenv"))
                .arg("set")
                .arg(format!("next_entry={}", menu.entries[0].grub_id)),
        );
    }
    let second = boot(&disk_path, Firmware::Bios, BOOT_TIMEOUT, "osprober-real-2");
    expect_boot(&second, "alpha", "next_entry set to alpha's grub id");
}
