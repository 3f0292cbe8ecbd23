//! The check before the first write: every planned disk is there, large enough, and not in
//! use (mounted, swap, held by device-mapper or md, or under the running root filesystem).
//!
//! As coreos-installer does, the deployer refuses a disk that is mounted, used as swap or
//! held; it reports every problem of every disk at once, each naming the disk.
//!
//! The system is read by thin functions ([`system_facts`], [`disk_facts`]) into plain
//! values, and the decisions are taken by the pure [`judge`]; [`check_disks`] joins them.
//! Devices are matched by device number (`major:minor`), never by name, except swap areas,
//! which `/proc/swaps` names by path. A disk-image file counts as in use when a loop device
//! backed by it (the same device and inode) is in use.

use std::io;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

use shared::blockdev::{parse_mountinfo, proc_partitions, MountInfo};

use crate::plan::Plan;
use crate::size::MIB;

/// A device number, `(major, minor)`.
pub type DevNum = (u64, u64);

/// One block device (a whole disk or a partition) as sysfs shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlockDev {
    /// `/dev/NAME`, NAME being the kernel's name.
    pub path: PathBuf,
    pub dev: DevNum,
    /// The kernel names in `/sys/class/block/NAME/holders` (`dm-0`, `md127`).
    pub holders: Vec<String>,
}

/// A whole block device with its partitions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlockFacts {
    pub whole: BlockDev,
    pub size_bytes: u64,
    pub partitions: Vec<BlockDev>,
}

/// What a planned disk's path is found to be.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DiskFacts {
    /// Nothing there: fine for an image file the deployer will create, an error under /dev.
    Missing,
    /// A disk-image file, with the loop devices it is attached to.
    File {
        loops: Vec<BlockFacts>,
    },
    BlockDevice(BlockFacts),
    /// A directory, a character device, ...
    NotADisk,
    /// Examining it failed; the message says why.
    Unreadable(String),
}

/// What the running system uses, independent of any one disk.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SystemFacts {
    /// `/proc/self/mountinfo`.
    pub mounts: Vec<MountInfo>,
    /// The swap areas of `/proc/swaps`, as canonical paths.
    pub swaps: Vec<PathBuf>,
    /// The device of the root filesystem and every device beneath it (the slaves of a
    /// device-mapper or md device, recursively).
    pub root_devices: Vec<DevNum>,
}

/// One reason a planned disk must not be written.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("disk {disk} ({}): {problem}", path.display())]
pub struct PreflightError {
    /// The disk's name in the config.
    pub disk: String,
    /// Its path in the plan.
    pub path: PathBuf,
    pub problem: String,
}

/// Checks every disk of `plan` against the running system; empty when all may be written.
pub fn check_disks(plan: &Plan) -> Vec<PreflightError> {
    let facts = match system_facts() {
        Ok(facts) => facts,
        Err(e) => {
            return plan
                .disks
                .iter()
                .map(|d| PreflightError {
                    disk: d.name.clone(),
                    path: d.path.clone(),
                    problem: format!("cannot examine the system: {e}"),
                })
                .collect()
        }
    };
    let disks: Vec<DiskFacts> = plan.disks.iter().map(|d| disk_facts(&d.path)).collect();
    judge(plan, &disks, &facts)
}

/// Decides, from facts alone, what keeps each disk of `plan` from being written.
/// `disks[i]` describes `plan.disks[i]`.
pub fn judge(plan: &Plan, disks: &[DiskFacts], facts: &SystemFacts) -> Vec<PreflightError> {
    assert_eq!(
        plan.disks.len(),
        disks.len(),
        "one DiskFacts per planned disk"
    );
    let mut errors = Vec::new();
    for (disk, found) in plan.disks.iter().zip(disks) {
        let mut problems = Vec::new();
        match found {
            DiskFacts::Missing if disk.path.starts_with("/dev") => {
                problems.push("does not exist".to_owned());
            }
            DiskFacts::Missing => {}
            DiskFacts::File { loops } => {
                for l in loops {
                    let whole = format!("its loop device {}", l.whole.path.display());
                    problems.extend(in_use(l, &whole, facts));
                }
            }
            DiskFacts::BlockDevice(block) => {
                if block.size_bytes < disk.size_bytes {
                    problems.push(format!(
                        "is smaller than the plan needs ({} MiB < {} MiB)",
                        block.size_bytes / MIB,
                        disk.size_bytes.div_ceil(MIB)
                    ));
                }
                problems.extend(in_use(
                    block,
                    &block.whole.path.display().to_string(),
                    facts,
                ));
            }
            DiskFacts::NotADisk => {
                problems.push("is neither a block device nor a regular file".to_owned());
            }
            DiskFacts::Unreadable(why) => problems.push(format!("cannot examine it: {why}")),
        }
        errors.extend(problems.into_iter().map(|problem| PreflightError {
            disk: disk.name.clone(),
            path: disk.path.clone(),
            problem,
        }));
    }
    errors
}

/// How `block` and its partitions are in use; `whole` names the whole device.
fn in_use(block: &BlockFacts, whole: &str, facts: &SystemFacts) -> Vec<String> {
    let devices = std::iter::once((whole.to_owned(), &block.whole)).chain(
        block
            .partitions
            .iter()
            .map(|p| (format!("partition {}", p.path.display()), p)),
    );
    let mut problems = Vec::new();
    for (label, dev) in devices {
        if facts.root_devices.contains(&dev.dev) {
            // Mounted and possibly held too, but this is what matters.
            problems.push(format!(
                "{label} holds the running system's root filesystem"
            ));
            continue;
        }
        if let Some(m) = facts.mounts.iter().find(|m| (m.major, m.minor) == dev.dev) {
            problems.push(format!("{label} is mounted on {}", m.mount_point.display()));
        }
        if facts.swaps.contains(&dev.path) {
            problems.push(format!("{label} is used as swap"));
        }
        if !dev.holders.is_empty() {
            problems.push(format!("{label} is held by {}", dev.holders.join(", ")));
        }
    }
    problems
}

/// Reads the mounts, the swap areas and the devices under `/`.
pub fn system_facts() -> io::Result<SystemFacts> {
    let mountinfo = read("/proc/self/mountinfo")?;
    let mounts = parse_mountinfo(mountinfo.as_bytes());
    let swaps = parse_swaps(&read("/proc/swaps")?)
        .into_iter()
        .map(|p| std::fs::canonicalize(&p).unwrap_or(p))
        .collect();
    let mut root_devices = Vec::new();
    // The last mount on / is the one on top; major 0 is not a block device.
    if let Some(root) = mounts
        .iter()
        .rev()
        .find(|m| m.mount_point == Path::new("/"))
    {
        if root.major != 0 {
            add_with_slaves((root.major, root.minor), &mut root_devices);
        }
    }
    Ok(SystemFacts {
        mounts,
        swaps,
        root_devices,
    })
}

fn read(path: &str) -> io::Result<String> {
    std::fs::read_to_string(path).map_err(|e| io::Error::new(e.kind(), format!("{path}: {e}")))
}

fn add_with_slaves(dev: DevNum, out: &mut Vec<DevNum>) {
    if out.contains(&dev) {
        return;
    }
    out.push(dev);
    let slaves = PathBuf::from(format!("/sys/dev/block/{}:{}/slaves", dev.0, dev.1));
    for entry in std::fs::read_dir(slaves).into_iter().flatten().flatten() {
        if let Ok(slave) = read_devnum(&entry.path().join("dev")) {
            add_with_slaves(slave, out);
        }
    }
}

/// The paths of the swap areas in the text of `/proc/swaps` (`\040` escapes undone).
fn parse_swaps(text: &str) -> Vec<PathBuf> {
    text.lines()
        .skip(1)
        .filter_map(|line| line.split_whitespace().next())
        .map(|name| PathBuf::from(name.replace("\\040", " ").replace("\\011", "\t")))
        .collect()
}

/// Examines a planned disk's path; problems reading it become [`DiskFacts::Unreadable`].
pub fn disk_facts(path: &Path) -> DiskFacts {
    let meta = match std::fs::metadata(path) {
        Ok(meta) => meta,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return DiskFacts::Missing,
        Err(e) => return DiskFacts::Unreadable(e.to_string()),
    };
    let found = if meta.file_type().is_file() {
        loops_backed_by(meta.dev(), meta.ino()).map(|loops| DiskFacts::File { loops })
    } else if meta.file_type().is_block_device() {
        std::fs::canonicalize(path)
            .and_then(|dev| block_facts(&sys_name(&dev)))
            .map(DiskFacts::BlockDevice)
    } else {
        Ok(DiskFacts::NotADisk)
    };
    found.unwrap_or_else(|e| DiskFacts::Unreadable(e.to_string()))
}

/// The kernel's name of `/dev/...` (`cciss/c0d0` is `cciss!c0d0` in sysfs).
fn sys_name(dev: &Path) -> String {
    let rel = dev.strip_prefix("/dev").unwrap_or(dev);
    rel.to_string_lossy().replace('/', "!")
}

/// The loop devices whose backing file is the file with this device and inode number.
fn loops_backed_by(dev: u64, ino: u64) -> io::Result<Vec<BlockFacts>> {
    let mut loops = Vec::new();
    let mut names: Vec<String> = std::fs::read_dir("/sys/block")?
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("loop"))
        .collect();
    names.sort();
    for name in names {
        // Only an attached loop device has a backing file.
        let Ok(backing) = std::fs::read_to_string(format!("/sys/block/{name}/loop/backing_file"))
        else {
            continue;
        };
        let same = std::fs::metadata(backing.trim_end_matches('\n'))
            .is_ok_and(|m| m.dev() == dev && m.ino() == ino);
        if same {
            loops.push(block_facts(&name)?);
        }
    }
    Ok(loops)
}

/// The sysfs view of the whole block device `name`: size, number, holders, partitions
/// (those of `/proc/partitions` that sysfs lists under it).
fn block_facts(name: &str) -> io::Result<BlockFacts> {
    let sys = Path::new("/sys/class/block").join(name);
    let sectors: u64 = read_sys(&sys.join("size"))?
        .parse()
        .map_err(|_| io::Error::other(format!("{}: not a number", sys.join("size").display())))?;
    let mut partitions = Vec::new();
    for dev in proc_partitions()? {
        let part = sys.join(sys_name(&dev));
        if part.join("partition").exists() {
            partitions.push(block_dev(&part, dev)?);
        }
    }
    Ok(BlockFacts {
        whole: block_dev(&sys, Path::new("/dev").join(name.replace('!', "/")))?,
        // sysfs counts 512-byte units whatever the sector size.
        size_bytes: sectors.saturating_mul(512),
        partitions,
    })
}

fn block_dev(sys: &Path, path: PathBuf) -> io::Result<BlockDev> {
    let mut holders: Vec<String> = std::fs::read_dir(sys.join("holders"))
        .map_err(|e| with_path(e, &sys.join("holders")))?
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    holders.sort();
    Ok(BlockDev {
        path,
        dev: read_devnum(&sys.join("dev"))?,
        holders,
    })
}

fn read_sys(path: &Path) -> io::Result<String> {
    std::fs::read_to_string(path)
        .map(|t| t.trim().to_owned())
        .map_err(|e| with_path(e, path))
}

fn with_path(e: io::Error, path: &Path) -> io::Error {
    io::Error::new(e.kind(), format!("{}: {e}", path.display()))
}

/// A sysfs `dev` file: `MAJOR:MINOR`.
fn read_devnum(path: &Path) -> io::Result<DevNum> {
    let text = read_sys(path)?;
    text.split_once(':')
        .and_then(|(maj, min)| Some((maj.parse().ok()?, min.parse().ok()?)))
        .ok_or_else(|| io::Error::other(format!("{}: not MAJOR:MINOR: {text:?}", path.display())))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::{plan, DiskInput, SequentialIds};
    use crate::validate::validate;

    const CONFIG: &str = r#"{
        "images": [{"name": "centos", "image_pull_url": "http://h/c.tar", "target": "/"}],
        "partitions": [{"type": "disk", "id": {"type": "name", "value": "vda"}, "volumes": [
            {"type": "partition", "mount": "/", "file_system": "ext4", "size": "100", "images": ["centos"]}]}]}"#;

    fn plan_for(path: &Path, size_bytes: u64) -> Plan {
        let config = validate(CONFIG).unwrap_or_else(|e| panic!("invalid config: {e:?}"));
        let disk = DiskInput {
            name: "vda".to_owned(),
            path: path.to_path_buf(),
            size_bytes,
            sector_size: 512,
            existing: None,
        };
        plan(&config, &[disk], &mut SequentialIds::default())
            .unwrap_or_else(|e| panic!("planning failed: {e:?}"))
    }

    fn dev(path: &str, dev: DevNum, holders: &[&str]) -> BlockDev {
        BlockDev {
            path: PathBuf::from(path),
            dev,
            holders: holders.iter().map(|h| h.to_string()).collect(),
        }
    }

    /// /dev/vda (254:0) of 1 GiB with vda1..vda3 (254:1..3), nothing held.
    fn vda() -> BlockFacts {
        BlockFacts {
            whole: dev("/dev/vda", (254, 0), &[]),
            size_bytes: 1 << 30,
            partitions: (1..=3)
                .map(|n| dev(&format!("/dev/vda{n}"), (254, n), &[]))
                .collect(),
        }
    }

    fn mount(dev: DevNum, at: &str) -> MountInfo {
        MountInfo {
            major: dev.0,
            minor: dev.1,
            root: PathBuf::from("/"),
            mount_point: PathBuf::from(at),
            read_only: false,
            fstype: "ext4".to_owned(),
            source: String::new(),
        }
    }

    /// The running system: / on sda1 (8:1), /proc on 0:22.
    fn system() -> SystemFacts {
        SystemFacts {
            mounts: vec![mount((8, 1), "/"), mount((0, 22), "/proc")],
            swaps: vec![PathBuf::from("/dev/sda2")],
            root_devices: vec![(8, 1)],
        }
    }

    fn problems(path: &str, found: DiskFacts, facts: &SystemFacts) -> Vec<String> {
        let plan = plan_for(Path::new(path), 1 << 30);
        judge(&plan, &[found], facts)
            .iter()
            .map(ToString::to_string)
            .collect()
    }

    #[test]
    fn an_unused_disk_large_enough_is_fine() {
        assert_eq!(
            problems("/dev/vda", DiskFacts::BlockDevice(vda()), &system()),
            Vec::<String>::new()
        );
    }

    #[test]
    fn a_mounted_partition_is_named_with_its_mount_point() {
        let mut facts = system();
        facts.mounts.push(mount((254, 2), "/boot"));
        facts.mounts.push(mount((254, 2), "/boot-again"));
        assert_eq!(
            problems("/dev/vda", DiskFacts::BlockDevice(vda()), &facts),
            ["disk vda (/dev/vda): partition /dev/vda2 is mounted on /boot"]
        );
    }

    #[test]
    fn a_mounted_whole_disk_is_named() {
        let mut facts = system();
        facts.mounts.push(mount((254, 0), "/mnt"));
        assert_eq!(
            problems("/dev/vda", DiskFacts::BlockDevice(vda()), &facts),
            ["disk vda (/dev/vda): /dev/vda is mounted on /mnt"]
        );
    }

    #[test]
    fn swap_holders_and_size_are_all_reported_at_once() {
        let mut facts = system();
        facts.swaps.push(PathBuf::from("/dev/vda3"));
        let mut block = vda();
        block.size_bytes = 200 << 20;
        block.partitions[0].holders = vec!["dm-0".to_owned()];
        block.whole.holders = vec!["md127".to_owned(), "md0".to_owned()];
        assert_eq!(
            problems("/dev/vda", DiskFacts::BlockDevice(block), &facts),
            [
                "disk vda (/dev/vda): is smaller than the plan needs (200 MiB < 1024 MiB)",
                "disk vda (/dev/vda): /dev/vda is held by md127, md0",
                "disk vda (/dev/vda): partition /dev/vda1 is held by dm-0",
                "disk vda (/dev/vda): partition /dev/vda3 is used as swap",
            ]
        );
    }

    #[test]
    fn the_running_root_is_named_once_whatever_else_it_is() {
        let mut facts = system();
        facts.mounts.push(mount((254, 1), "/"));
        facts.root_devices = vec![(253, 0), (254, 1)];
        let mut block = vda();
        block.partitions[0].holders = vec!["dm-0".to_owned()];
        assert_eq!(
            problems("/dev/vda", DiskFacts::BlockDevice(block), &facts),
            ["disk vda (/dev/vda): partition /dev/vda1 holds the running system's root filesystem"]
        );
    }

    #[test]
    fn missing_device_is_an_error_missing_image_is_not() {
        assert_eq!(
            problems("/dev/vdz", DiskFacts::Missing, &system()),
            ["disk vda (/dev/vdz): does not exist"]
        );
        assert!(problems("/srv/node.img", DiskFacts::Missing, &system()).is_empty());
    }

    #[test]
    fn an_image_file_is_fine_unless_its_loop_device_is_in_use() {
        let file = || DiskFacts::File { loops: vec![] };
        assert!(problems("/srv/node.img", file(), &system()).is_empty());

        let loop0 = BlockFacts {
            whole: dev("/dev/loop0", (7, 0), &[]),
            // A loop device's size is the file's: never judged against the plan.
            size_bytes: 1 << 20,
            partitions: vec![dev("/dev/loop0p1", (259, 0), &[])],
        };
        let attached = DiskFacts::File { loops: vec![loop0] };
        assert!(problems("/srv/node.img", attached.clone(), &system()).is_empty());
        let mut facts = system();
        facts.mounts.push(mount((259, 0), "/mnt/x"));
        assert_eq!(
            problems("/srv/node.img", attached, &facts),
            ["disk vda (/srv/node.img): partition /dev/loop0p1 is mounted on /mnt/x"]
        );
    }

    #[test]
    fn not_a_disk_and_unreadable() {
        assert_eq!(
            problems("/srv", DiskFacts::NotADisk, &system()),
            ["disk vda (/srv): is neither a block device nor a regular file"]
        );
        assert_eq!(
            problems(
                "/dev/vda",
                DiskFacts::Unreadable("permission denied".into()),
                &system()
            ),
            ["disk vda (/dev/vda): cannot examine it: permission denied"]
        );
    }

    #[test]
    fn swaps_lines() {
        let text = "Filename\t\t\t\tType\t\tSize\t\tUsed\t\tPriority\n\
            /dev/vda3                               partition\t1048572\t\t0\t\t-2\n\
            /var/my\\040swap                          file\t\t1024\t\t0\t\t-3\n";
        assert_eq!(
            parse_swaps(text),
            [PathBuf::from("/dev/vda3"), PathBuf::from("/var/my swap")]
        );
        assert!(parse_swaps("Filename Type Size Used Priority\n").is_empty());
    }

    #[test]
    fn sysfs_names_of_device_paths() {
        assert_eq!(sys_name(Path::new("/dev/vda")), "vda");
        assert_eq!(sys_name(Path::new("/dev/cciss/c0d0")), "cciss!c0d0");
    }

    #[test]
    fn facts_of_this_system_and_of_paths() {
        let facts = system_facts().unwrap();
        assert!(facts.mounts.iter().any(|m| m.mount_point == Path::new("/")));
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(disk_facts(&dir.path().join("new.img")), DiskFacts::Missing);
        assert_eq!(disk_facts(dir.path()), DiskFacts::NotADisk);
        let image = dir.path().join("node.img");
        std::fs::write(&image, b"").unwrap();
        assert_eq!(disk_facts(&image), DiskFacts::File { loops: vec![] });
    }

    /// A sparse GPT image with one partition, attached and its partition mounted: as the
    /// loop device and as the image file, the disk is reported mounted; unmounted, it is
    /// fine. Runs as root with the real tools.
    #[test]
    fn mounted_loop_partition_is_found_through_device_and_image() {
        use e2e::disk::{LoopDisk, Mount};
        use e2e::tools::{find_tool, require_root};
        use std::process::Command;

        require_root();
        for tool in ["sfdisk", "losetup", "partx", "mkfs.ext4", "mount", "umount"] {
            if find_tool(tool).is_none() {
                panic!("{tool} not found: run scripts/setup (see README)");
            }
        }
        let dir = tempfile::tempdir().unwrap();
        let image = dir.path().join("node.img");
        let size = 512 << 20;
        std::fs::File::create(&image)
            .unwrap()
            .set_len(size)
            .unwrap();
        let sfdisk = Command::new(find_tool("sfdisk").unwrap())
            .args(["-q", "--label", "gpt"])
            .arg(&image)
            .stdin(std::process::Stdio::piped())
            .spawn()
            .and_then(|mut child| {
                use std::io::Write;
                child
                    .stdin
                    .take()
                    .unwrap()
                    .write_all(b"start=2048, size=204800\n")?;
                child.wait()
            })
            .unwrap();
        assert!(sfdisk.success(), "sfdisk on {}", image.display());

        let disk = LoopDisk::attach(&image);
        let part = disk.partition(1);
        let mkfs = crate::exec::run(
            "make test filesystem",
            &[
                "mkfs.ext4".into(),
                "-q".into(),
                "-F".into(),
                part.clone().into(),
            ],
        );
        mkfs.unwrap();
        let device_plan = plan_for(disk.device(), size);
        let image_plan = plan_for(&image, size);
        {
            let mounted = Mount::new(&part, &dir.path().join("mnt"), "");
            let shown = format!(
                "partition {} is mounted on {}",
                part.display(),
                mounted.path().display()
            );
            for plan in [&device_plan, &image_plan] {
                let errors = check_disks(plan);
                assert_eq!(errors.len(), 1, "{errors:?}");
                assert_eq!(errors[0].problem, shown);
                assert_eq!(errors[0].path, plan.disks[0].path);
            }
        }
        assert_eq!(check_disks(&device_plan), []);
        assert_eq!(check_disks(&image_plan), []);
    }
}
