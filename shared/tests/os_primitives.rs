//! OS primitives on real loop devices, filesystems and mounts. Run as root; the tools that make
//! the fixtures (sfdisk, mkfs.*, mkswap, blkid) come from `scripts/setup`.
//!
//! Tests run in parallel threads: each works in its own scratch directory with its own images,
//! UUIDs and labels, and every resource is held by a guard so that a failing test cleans up too.

use std::collections::HashMap;
use std::ffi::OsStr;
use std::fs::File;
use std::io::Write;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::thread::sleep;
use std::time::{Duration, Instant};

use shared::blockdev::{self, FsInfo};
use shared::loopdev::LoopDevice;
use shared::mount::{self, Mount, MountOptions};

const MIB: u64 = 1 << 20;

fn require_root() {
    assert!(
        nix::unistd::geteuid().is_root(),
        "these tests attach loop devices and mount filesystems: run them as root"
    );
}

/// The path of an external tool, or a failure that says how to install it.
fn tool(name: &str) -> PathBuf {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/sbin", "/sbin", "/usr/bin", "/bin"].map(PathBuf::from))
        .map(|dir| dir.join(name))
        .find(|p| p.is_file())
        .unwrap_or_else(|| panic!("{name} not found: run scripts/setup (see README)"))
}

/// Runs a tool with `stdin` as its input and returns its standard output.
fn run<S: AsRef<OsStr>>(name: &str, args: &[S], stdin: &str) -> String {
    let mut child = Command::new(tool(name))
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("starting {name}: {e}"));
    let mut input = child.stdin.take().expect("stdin is piped");
    input.write_all(stdin.as_bytes()).expect("writing stdin");
    drop(input);
    let out = child.wait_with_output().expect("waiting for the tool");
    let args: Vec<_> = args.iter().map(|a| a.as_ref().to_string_lossy()).collect();
    assert!(
        out.status.success(),
        "{name} {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A scratch directory of one test, removed on drop without ever recursing: a leaked mount
/// below it must not lose its files.
struct Scratch {
    dir: PathBuf,
}

impl Scratch {
    fn new(test: &str) -> Scratch {
        require_root();
        let dir = std::env::temp_dir().join(format!(
            "os-primitives-{test}-{}",
            uuid::Uuid::new_v4().simple()
        ));
        std::fs::create_dir(&dir).expect("creating the scratch directory");
        Scratch { dir }
    }

    /// A sparse file of `size` bytes.
    fn image(&self, name: &str, size: u64) -> PathBuf {
        let path = self.dir.join(name);
        File::create(&path)
            .and_then(|f| f.set_len(size))
            .expect("creating a sparse image");
        path
    }

    /// A sparse image with a partition table written by sfdisk from `script`.
    fn partitioned(&self, name: &str, size: u64, script: &str) -> PathBuf {
        let image = self.image(name, size);
        run(
            "sfdisk",
            &[OsStr::new("--quiet"), image.as_os_str()],
            script,
        );
        image
    }

    /// Where the tests' temporary mounts go.
    fn mounts(&self) -> PathBuf {
        self.dir.join("mnt")
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        if let Ok(entries) = std::fs::read_dir(&self.dir) {
            for entry in entries.flatten() {
                let path = entry.path();
                if entry.file_type().is_ok_and(|t| t.is_dir()) {
                    let _ = std::fs::remove_dir(&path);
                } else {
                    let _ = std::fs::remove_file(&path);
                }
            }
        }
        let _ = std::fs::remove_dir(&self.dir);
    }
}

fn new_uuid() -> String {
    uuid::Uuid::new_v4().hyphenated().to_string()
}

/// A label of at most 12 characters (xfs's limit) that no parallel test uses.
fn new_label() -> String {
    format!("t{}", &uuid::Uuid::new_v4().simple().to_string()[..11])
}

/// What `blkid -p -o export` says about a device or image.
fn blkid(dev: &Path) -> FsInfo {
    let out = run(
        "blkid",
        &[
            OsStr::new("-p"),
            OsStr::new("-o"),
            OsStr::new("export"),
            dev.as_os_str(),
        ],
        "",
    );
    let keys: HashMap<&str, &str> = out.lines().filter_map(|l| l.split_once('=')).collect();
    FsInfo {
        fstype: keys.get("TYPE").expect("blkid reports a TYPE").to_string(),
        uuid: keys.get("UUID").map(|s| s.to_string()),
        label: keys.get("LABEL").map(|s| s.to_string()),
    }
}

fn fs(fstype: &str, uuid: &str, label: &str) -> FsInfo {
    FsInfo {
        fstype: fstype.to_owned(),
        uuid: Some(uuid.to_owned()),
        label: Some(label.to_owned()),
    }
}

fn mkfs_ext4(dev: &Path, uuid: &str, label: &str) {
    run(
        "mkfs.ext4",
        &[
            OsStr::new("-q"),
            OsStr::new("-F"),
            OsStr::new("-U"),
            OsStr::new(uuid),
            OsStr::new("-L"),
            OsStr::new(label),
            dev.as_os_str(),
        ],
        "",
    );
}

/// The loop device's name (`loopN`).
fn name_of(dev: &Path) -> String {
    dev.file_name()
        .and_then(|n| n.to_str())
        .expect("a device name")
        .to_owned()
}

/// Waits until `loop_name` no longer serves `image` (it may already serve another test).
fn detached(loop_name: &str, image: &Path) -> bool {
    let image = std::fs::canonicalize(image).expect("canonical image path");
    let backing = Path::new("/sys/block")
        .join(loop_name)
        .join("loop/backing_file");
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        match std::fs::read_to_string(&backing) {
            Ok(file) if Path::new(file.trim()) == image => {}
            _ => return true,
        }
        if Instant::now() >= deadline {
            return false;
        }
        sleep(Duration::from_millis(20));
    }
}

/// Start and size in 512-byte sectors of a partition as the kernel shows it.
fn kernel_extent(part: &Path) -> (u64, u64) {
    let sys = Path::new("/sys/class/block").join(name_of(part));
    let read = |f: &str| {
        std::fs::read_to_string(sys.join(f))
            .expect("reading /sys")
            .trim()
            .parse::<u64>()
            .expect("a number in /sys")
    };
    (read("start"), read("size"))
}

/// Start and size in sectors of each partition, as `sfdisk -J` reads the table.
fn sfdisk_extents(dev: &Path) -> Vec<(u64, u64)> {
    let json: serde_json::Value =
        serde_json::from_str(&run("sfdisk", &[OsStr::new("-J"), dev.as_os_str()], ""))
            .expect("sfdisk -J gives JSON");
    json["partitiontable"]["partitions"]
        .as_array()
        .expect("a partition list")
        .iter()
        .map(|p| {
            (
                p["start"].as_u64().expect("start"),
                p["size"].as_u64().expect("size"),
            )
        })
        .collect()
}

#[test]
fn gpt_partitions_appear_and_drop_detaches() {
    let scratch = Scratch::new("gpt");
    let image = scratch.partitioned(
        "disk.img",
        64 * MIB,
        "label: gpt\nsize=24MiB, name=first\nname=second\n",
    );
    let disk = LoopDevice::attach(&image, false).expect("attaching");
    let name = name_of(disk.path());
    assert!(disk.path().starts_with("/dev"), "{}", disk.path().display());
    let parts = disk.partitions().expect("listing partitions");
    assert_eq!(
        parts,
        vec![
            PathBuf::from(format!("/dev/{name}p1")),
            PathBuf::from(format!("/dev/{name}p2")),
        ]
    );
    let extents: Vec<_> = parts.iter().map(|p| kernel_extent(p)).collect();
    assert_eq!(extents, sfdisk_extents(&image));
    let open = |path: &Path| File::open(path).expect("opening for the ioctls");
    assert_eq!(blockdev::size_bytes(open(disk.path())).unwrap(), 64 * MIB);
    assert_eq!(blockdev::size_bytes(open(&parts[0])).unwrap(), 24 * MIB);
    assert_eq!(
        blockdev::logical_sector_size(open(disk.path())).unwrap(),
        512
    );
    assert!(
        blockdev::size_bytes(open(&image)).is_err(),
        "a regular file"
    );
    for part in &parts {
        let sys_dev = std::fs::read_to_string(format!("/sys/class/block/{}/dev", name_of(part)))
            .expect("partition in /sys");
        let rdev = std::fs::metadata(part).expect("partition node").rdev();
        let (maj, min) = sys_dev.trim().split_once(':').expect("MAJOR:MINOR");
        assert_eq!(
            (nix::sys::stat::major(rdev), nix::sys::stat::minor(rdev)),
            (maj.parse().expect("major"), min.parse().expect("minor"))
        );
    }
    assert_eq!(disk.partitions().expect("listing again"), parts);
    assert_eq!(disk.partition(2).expect("partition 2"), parts[1]);
    let missing = disk.partition(3).unwrap_err().to_string();
    assert!(
        missing.contains(&disk.path().display().to_string()),
        "{missing}"
    );
    drop(disk);
    assert!(
        detached(&name, &image),
        "{name} still serves {}",
        image.display()
    );
}

#[test]
fn repartitioning_an_attached_disk_is_followed() {
    let scratch = Scratch::new("repart");
    let image = scratch.image("disk.img", 64 * MIB);
    let disk = LoopDevice::attach(&image, false).expect("attaching");
    assert_eq!(disk.partitions().expect("no table"), Vec::<PathBuf>::new());
    let sfdisk = |script: &str| {
        run(
            "sfdisk",
            &[
                OsStr::new("--quiet"),
                OsStr::new("--no-reread"),
                OsStr::new("--no-tell-kernel"),
                disk.path().as_os_str(),
            ],
            script,
        )
    };
    sfdisk("label: gpt\nsize=10MiB\nsize=10MiB\n");
    let two = disk.partitions().expect("two partitions");
    assert_eq!(two.len(), 2);
    assert_eq!(
        two.iter().map(|p| kernel_extent(p)).collect::<Vec<_>>(),
        sfdisk_extents(disk.path())
    );
    // A new table: partition 1 shrinks, 2 moves, 3 appears; a DOS label with a logical one.
    sfdisk("label: dos\nsize=4MiB\nsize=8MiB\ntype=5\nsize=6MiB\n");
    let name = name_of(disk.path());
    let parts = disk.partitions().expect("new partitions");
    assert_eq!(
        parts,
        [1, 2, 5].map(|n| PathBuf::from(format!("/dev/{name}p{n}"))),
        "the extended partition's container is not listed"
    );
    let logical = sfdisk_extents(disk.path())
        .into_iter()
        .filter(|(_, size)| *size == 12288)
        .collect::<Vec<_>>();
    assert_eq!(vec![kernel_extent(&parts[2])], logical);
    assert_eq!(kernel_extent(&parts[0]).1, 8192);
}

#[test]
fn ext4_is_probed_found_and_mounted_read_only() {
    let scratch = Scratch::new("ext4");
    let image = scratch.partitioned("disk.img", 64 * MIB, "label: gpt\nsize=32MiB\nsize=8MiB\n");
    let disk = LoopDevice::attach(&image, false).expect("attaching");
    let part = disk.partition(1).expect("partition 1");
    let (uuid, label) = (new_uuid(), new_label());
    mkfs_ext4(&part, &uuid, &label);

    let probed = blockdev::probe(&part)
        .expect("probing")
        .expect("a filesystem");
    assert_eq!(probed, fs("ext4", &uuid, &label));
    assert_eq!(probed, blkid(&part));
    assert_eq!(
        blockdev::probe(disk.path()).expect("probing the disk"),
        None
    );

    assert_eq!(
        blockdev::find_by_uuid(&uuid.to_uppercase())
            .expect("by uuid")
            .map(|(dev, _)| dev),
        Some(part.clone())
    );
    assert_eq!(
        blockdev::find_by_label(&label)
            .expect("by label")
            .map(|(dev, _)| dev),
        Some(part.clone())
    );
    assert_eq!(
        blockdev::find_by_uuid(&new_uuid())
            .expect("unknown uuid")
            .map(|(dev, _)| dev),
        None
    );
    assert_eq!(
        blockdev::find_by_label(&new_label())
            .expect("unknown label")
            .map(|(dev, _)| dev),
        None
    );

    let opts = MountOptions {
        read_only: true,
        fstype: None,
    };
    let mounted = Mount::new_temp(&part, &scratch.mounts(), &opts).expect("mounting");
    let dir = mounted.path().to_owned();
    assert_eq!(dir.parent(), Some(scratch.mounts().as_path()));
    let mode = std::fs::metadata(&dir)
        .expect("mount point")
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o755, "the mounted root keeps its own mode");
    let err = File::create(dir.join("file")).expect_err("a read-only mount refuses writes");
    assert_eq!(err.raw_os_error(), Some(nix::libc::EROFS), "{err}");
    assert_eq!(
        blockdev::mount_point_of(&part).expect("mountinfo"),
        Some((dir.clone(), true))
    );
    assert_eq!(
        blockdev::mount_point_of(disk.path()).expect("mountinfo"),
        None
    );
    assert_eq!(
        blockdev::device_mounted_at(&dir).expect("mountinfo"),
        Some(part.clone())
    );
    assert_eq!(
        blockdev::device_mounted_at(&scratch.mounts()).expect("mountinfo"),
        None,
        "not a mount point"
    );
    drop(mounted);
    assert!(!dir.exists(), "{} survives the unmount", dir.display());
    assert_eq!(blockdev::mount_point_of(&part).expect("mountinfo"), None);
}

#[test]
fn xfs_is_probed_and_mounted_read_write() {
    let scratch = Scratch::new("xfs");
    // mkfs.xfs refuses filesystems under 300 MiB; the image is sparse.
    let image = scratch.partitioned(
        "disk.img",
        400 * MIB,
        "label: gpt\nsize=8MiB\nsize=320MiB\n",
    );
    let disk = LoopDevice::attach(&image, false).expect("attaching");
    let part = disk.partition(2).expect("partition 2");
    let (uuid, label) = (new_uuid(), new_label());
    run(
        "mkfs.xfs",
        &[
            OsStr::new("-q"),
            OsStr::new("-f"),
            OsStr::new("-m"),
            OsStr::new(&format!("uuid={uuid}")),
            OsStr::new("-L"),
            OsStr::new(&label),
            part.as_os_str(),
        ],
        "",
    );
    let probed = blockdev::probe(&part)
        .expect("probing")
        .expect("a filesystem");
    assert_eq!(probed, fs("xfs", &uuid, &label));
    assert_eq!(probed, blkid(&part));
    assert_eq!(
        blockdev::find_by_uuid(&uuid)
            .expect("by uuid")
            .map(|(dev, _)| dev),
        Some(part.clone())
    );
    assert_eq!(
        blockdev::find_by_label(&label)
            .expect("by label")
            .map(|(dev, _)| dev),
        Some(part.clone())
    );

    let opts = MountOptions {
        read_only: false,
        fstype: Some("xfs".to_owned()),
    };
    let mounted = Mount::new_temp(&part, &scratch.mounts(), &opts).expect("mounting");
    let dir = mounted.path().to_owned();
    std::fs::write(dir.join("hello"), b"world").expect("writing to a read-write mount");
    assert_eq!(
        blockdev::mount_point_of(&part).expect("mountinfo"),
        Some((dir.clone(), false))
    );
    mounted.unmount().expect("unmounting");
    assert!(!dir.exists());
    assert_eq!(blockdev::mount_point_of(&part).expect("mountinfo"), None);

    let again = Mount::new_temp(&part, &scratch.mounts(), &MountOptions::default())
        .expect("mounting again");
    assert_eq!(
        std::fs::read(again.path().join("hello")).expect("the file persisted"),
        b"world"
    );
}

#[test]
fn probe_agrees_with_blkid_on_every_type() {
    let scratch = Scratch::new("probe");
    let (uuid, label) = (new_uuid(), new_label());
    for mkfs in ["mkfs.ext2", "mkfs.ext3", "mkfs.ext4"] {
        let image = scratch.image(&format!("{mkfs}.img"), 16 * MIB);
        run(
            mkfs,
            &[
                OsStr::new("-q"),
                OsStr::new("-F"),
                OsStr::new("-U"),
                OsStr::new(&uuid),
                OsStr::new("-L"),
                OsStr::new(&label),
                image.as_os_str(),
            ],
            "",
        );
        let want = fs(mkfs.trim_start_matches("mkfs."), &uuid, &label);
        assert_eq!(blkid(&image), want, "blkid on {mkfs}");
        assert_eq!(
            blockdev::probe(&image).expect("probing"),
            Some(want),
            "{mkfs}"
        );
    }

    let xfs = scratch.image("xfs.img", 320 * MIB);
    run(
        "mkfs.xfs",
        &[
            OsStr::new("-q"),
            OsStr::new("-m"),
            OsStr::new(&format!("uuid={uuid}")),
            OsStr::new("-L"),
            OsStr::new(&label),
            xfs.as_os_str(),
        ],
        "",
    );
    assert_eq!(blockdev::probe(&xfs).expect("probing"), Some(blkid(&xfs)));

    for bits in ["16", "32"] {
        let vfat = scratch.image(&format!("fat{bits}.img"), 64 * MIB);
        let per_cluster = if bits == "16" { "4" } else { "1" };
        run(
            "mkfs.vfat",
            &[
                OsStr::new("-F"),
                OsStr::new(bits),
                OsStr::new("-s"),
                OsStr::new(per_cluster),
                OsStr::new("-i"),
                OsStr::new("1A2B3C4D"),
                OsStr::new("-n"),
                OsStr::new("EFI"),
                vfat.as_os_str(),
            ],
            "",
        );
        let want = fs("vfat", "1A2B-3C4D", "EFI");
        assert_eq!(blkid(&vfat), want, "blkid on FAT{bits}");
        assert_eq!(
            blockdev::probe(&vfat).expect("probing"),
            Some(want),
            "FAT{bits}"
        );
    }

    // 4 KiB pages, and 64 KiB pages as some machines have: that signature lies past the
    // first 4 KiB, which is all the probe reads of other devices.
    for page_size in ["4096", "65536"] {
        let swap = scratch.image(&format!("swap-{page_size}.img"), 16 * MIB);
        run(
            "mkswap",
            &[
                OsStr::new("--pagesize"),
                OsStr::new(page_size),
                OsStr::new("-U"),
                OsStr::new(&uuid),
                OsStr::new("-L"),
                OsStr::new(&label),
                swap.as_os_str(),
            ],
            "",
        );
        let want = fs("swap", &uuid, &label);
        assert_eq!(blkid(&swap), want, "pages of {page_size} bytes");
        assert_eq!(
            blockdev::probe(&swap).expect("probing"),
            Some(want),
            "pages of {page_size} bytes"
        );
    }

    let empty = scratch.image("empty.img", MIB);
    assert_eq!(blockdev::probe(&empty).expect("probing"), None);
    let err = blockdev::probe(&scratch.dir.join("missing.img")).unwrap_err();
    assert!(err.to_string().contains("missing.img"), "{err}");
}

#[test]
fn a_label_on_two_devices_is_an_error_naming_both() {
    let scratch = Scratch::new("duplabel");
    let label = new_label();
    let attach = |name: &str| {
        let image = scratch.image(name, 16 * MIB);
        mkfs_ext4(&image, &new_uuid(), &label);
        LoopDevice::attach(&image, true).expect("attaching")
    };
    let (first, second) = (attach("a.img"), attach("b.img"));
    let err = blockdev::find_by_label(&label).expect_err("two devices carry the label");
    let message = err.to_string();
    for dev in [first.path(), second.path()] {
        assert!(message.contains(&dev.display().to_string()), "{message}");
    }
    assert!(first.partitions().expect("no table").is_empty());
}

#[test]
fn read_only_attach_refuses_writes() {
    let scratch = Scratch::new("ro");
    let image = scratch.partitioned("disk.img", 16 * MIB, "label: gpt\nsize=4MiB\n");
    let disk = LoopDevice::attach(&image, true).expect("attaching read-only");
    let ro = std::fs::read_to_string(format!("/sys/block/{}/ro", name_of(disk.path())))
        .expect("reading /sys");
    assert_eq!(ro.trim(), "1");
    let part = disk.partition(1).expect("partitions of a read-only disk");
    // Linux opens a read-only block device for writing; the writes fail.
    for dev in [part.as_path(), disk.path()] {
        let written = std::fs::OpenOptions::new()
            .write(true)
            .open(dev)
            .and_then(|f| std::os::unix::fs::FileExt::write_all_at(&f, &[0xA5; 512], 0));
        assert!(written.is_err(), "{} took a write", dev.display());
    }
}

#[test]
fn a_busy_unmount_is_reported_then_detached_lazily() {
    let scratch = Scratch::new("busy");
    let image = scratch.image("fs.img", 16 * MIB);
    mkfs_ext4(&image, &new_uuid(), &new_label());
    let disk = LoopDevice::attach(&image, false).expect("attaching");
    let name = name_of(disk.path());
    let mounted = Mount::new_temp(disk.path(), &scratch.mounts(), &MountOptions::default())
        .expect("mounting");
    let dir = mounted.path().to_owned();
    let open_file = File::create(dir.join("busy")).expect("creating a file");

    let err = mounted.unmount().expect_err("the mount is busy");
    assert!(
        err.to_string().contains(&dir.display().to_string()),
        "{err}"
    );
    assert!(err.to_string().contains("busy"), "{err}");
    // The guard's drop detached the mount and removed its directory.
    assert_eq!(
        blockdev::mount_point_of(disk.path()).expect("mountinfo"),
        None
    );
    assert!(!dir.exists());

    // The detached filesystem still holds the loop device: autoclear waits for it.
    drop(disk);
    let backing = format!("/sys/block/{name}/loop/backing_file");
    assert!(
        Path::new(&backing).exists(),
        "detached while a file was open"
    );
    drop(open_file);
    assert!(
        detached(&name, &image),
        "{name} still serves {}",
        image.display()
    );
}

#[test]
fn mount_errors_name_the_device_and_leave_no_directory() {
    let scratch = Scratch::new("mounterr");
    let image = scratch.image("blank.img", 16 * MIB);
    let disk = LoopDevice::attach(&image, false).expect("attaching");
    let dev = disk.path().display().to_string();

    let err = Mount::new_temp(disk.path(), &scratch.mounts(), &MountOptions::default())
        .expect_err("nothing to mount");
    assert!(err.to_string().contains(&dev), "{err}");

    let opts = MountOptions {
        read_only: true,
        fstype: Some("ext4".to_owned()),
    };
    let err = Mount::new_temp(disk.path(), &scratch.mounts(), &opts).expect_err("not ext4");
    let message = err.to_string();
    assert!(
        message.contains(&format!("mounting {dev} (ext4) on ")),
        "{message}"
    );
    assert!(
        message.contains(&scratch.mounts().display().to_string()),
        "{message}"
    );
    let left: Vec<_> = std::fs::read_dir(scratch.mounts())
        .expect("the base directory was created")
        .collect();
    assert!(left.is_empty(), "left behind: {left:?}");

    let err = blockdev::mount_point_of(&image).expect_err("not a block device");
    assert!(err.to_string().contains("blank.img"), "{err}");
}

#[test]
fn root_device_holds_the_root_filesystem() {
    require_root();
    let root = std::fs::metadata("/").expect("stat /").dev();
    match blockdev::root_device().expect("root device") {
        Some(dev) => assert_eq!(
            std::fs::metadata(&dev).expect("stat root device").rdev(),
            root
        ),
        None => assert_eq!(nix::sys::stat::major(root), 0, "/ is on a block device"),
    }
}

/// Set (to a directory to mount on) when the test binary runs itself inside a private namespace.
const NAMESPACE_CHILD: &str = "OS_PRIMITIVES_NAMESPACE_CHILD";

#[test]
fn private_namespace_hides_mounts_from_the_parent() {
    let scratch = Scratch::new("ns");
    let target = scratch.dir.join("tmpfs");
    std::fs::create_dir(&target).expect("creating the mount point");
    let exe = std::env::current_exe().expect("the test binary");
    let mut child = Command::new(exe);
    child
        .args([
            "--exact",
            "namespace_child",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(NAMESPACE_CHILD, &target);
    // SAFETY: after fork the child is single-threaded, as enter_private_namespace requires.
    unsafe {
        child.pre_exec(mount::enter_private_namespace);
    }
    let out = child.output().expect("running the child");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.contains("1 passed"),
        "child failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let here = std::fs::read("/proc/self/mountinfo").expect("mountinfo");
    assert!(blockdev::parse_mountinfo(&here)
        .iter()
        .all(|m| m.mount_point != target));
}

/// The child half of `private_namespace_hides_mounts_from_the_parent`; passes trivially otherwise.
#[test]
fn namespace_child() {
    let Some(target) = std::env::var_os(NAMESPACE_CHILD).map(PathBuf::from) else {
        return;
    };
    nix::mount::mount(
        Some("tmpfs"),
        &target,
        Some("tmpfs"),
        nix::mount::MsFlags::empty(),
        None::<&str>,
    )
    .expect("mounting tmpfs");
    let mounted_in = |pid: &str| {
        let text = std::fs::read(format!("/proc/{pid}/mountinfo")).expect("mountinfo");
        blockdev::parse_mountinfo(&text)
            .iter()
            .any(|m| m.mount_point == target)
    };
    let parent = nix::unistd::getppid().to_string();
    assert!(mounted_in("self"), "the mount is visible here");
    assert!(!mounted_in(&parent), "the mount leaked to the parent");
    let ns = |pid: &str| std::fs::read_link(format!("/proc/{pid}/ns/mnt")).expect("ns link");
    assert_ne!(ns("self"), ns(&parent));
}

#[test]
fn an_image_already_attached_is_used_not_attached_twice() {
    let scratch = Scratch::new("twice");
    let image = scratch.partitioned("disk.img", 32 * MIB, "label: gpt\nname=only\n");
    let first = LoopDevice::attach(&image, false).expect("attaching");
    let second = LoopDevice::attach(&image, true).expect("attaching again");
    assert_eq!(
        second.path(),
        first.path(),
        "one loop device per image file"
    );
    drop(second);
    let name = name_of(first.path());
    assert!(
        !detached(&name, &image),
        "the borrowed device stays attached"
    );
    drop(first);
    assert!(detached(&name, &image));

    let image_arg = image.to_str().expect("UTF-8 path");
    let by_losetup = run("losetup", &["-f", "--show", image_arg], "");
    let by_losetup = by_losetup.trim();
    let ours = LoopDevice::attach(&image, false).map(|disk| disk.path().to_owned());
    let still_attached = !detached(by_losetup.trim_start_matches("/dev/"), &image);
    run("losetup", &["-d", by_losetup], "");
    assert_eq!(ours.expect("attaching").as_path(), Path::new(by_losetup));
    assert!(
        still_attached,
        "a device attached by losetup is not ours to detach"
    );
}

#[test]
fn a_mount_at_an_existing_directory_leaves_the_directory() {
    let scratch = Scratch::new("mountat");
    let image = scratch.image("fs.img", 16 * MIB);
    mkfs_ext4(&image, &new_uuid(), &new_label());
    let disk = LoopDevice::attach(&image, false).expect("attaching");
    let dir = scratch.mounts();
    std::fs::create_dir(&dir).expect("creating the mount point");

    let mounted = Mount::at(disk.path(), &dir, &MountOptions::default()).expect("mounting");
    assert_eq!(mounted.path(), dir.as_path());
    std::fs::write(dir.join("hello"), b"world").expect("writing to the mount");
    assert_eq!(
        blockdev::mount_point_of(disk.path()).expect("mountinfo"),
        Some((dir.clone(), false))
    );
    drop(mounted);
    assert_eq!(
        blockdev::mount_point_of(disk.path()).expect("mountinfo"),
        None
    );
    assert!(dir.is_dir(), "{} was removed", dir.display());
    assert!(!dir.join("hello").exists(), "the file is on the filesystem");

    let again = Mount::at(disk.path(), &dir, &MountOptions::default()).expect("mounting again");
    assert_eq!(std::fs::read(dir.join("hello")).expect("reading"), b"world");
    again.unmount().expect("unmounting");
    assert!(dir.is_dir(), "{} was removed", dir.display());
}
