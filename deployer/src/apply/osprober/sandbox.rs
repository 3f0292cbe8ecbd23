//! The private run of grub-mkconfig: it must not touch the host's configuration and must
//! see only the deployed disks. It runs in a mount namespace of its own, nested in the
//! caller's, so every mount it makes vanishes when grub-mkconfig exits, even if the
//! deployer is killed.

use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::fs;
use std::os::unix::fs::{symlink, DirBuilderExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};

use anyhow::Context;

/// The host's grub.d scripts the run keeps: the header and os-prober's, nothing else.
pub const GRUB_D_SCRIPTS: [&str; 2] = ["00_header", "30_os-prober"];

/// `/etc/default/grub` inside the run, where the host's `/etc/default/grub.d` is hidden,
/// GRUB showing its menu for `timeout` seconds. The default is set afterwards, once the
/// menu is known.
pub fn default_grub(timeout: u32) -> String {
    format!(
        "GRUB_DEFAULT=0\n\
         GRUB_TIMEOUT={timeout}\n\
         GRUB_TIMEOUT_STYLE=menu\n\
         GRUB_DISTRIBUTOR=Multiboot\n\
         GRUB_TERMINAL=\"console serial\"\n\
         GRUB_SERIAL_COMMAND=\"serial --unit=0 --speed=115200\"\n\
         GRUB_DISABLE_OS_PROBER=false\n"
    )
}

/// Runs grub-mkconfig in the new namespace; `$1` is the staging directory. Bind mounts
/// first (the staging directory may be under `/tmp` or `/run`), then the tmpfs mounts:
/// `/var/lib/os-prober` (os-prober's label cache and mount point), `/run` (blkid's cache,
/// LVM's locks and hints, the syslog socket) and `/tmp` start empty and leave nothing. The
/// C locale gives titles as `Advanced options for ... (on /dev/...)`.
pub(super) const NAMESPACE_SCRIPT: &str = r#"stage=$1
mount --bind "$stage/grub.d" /etc/grub.d
mount --bind "$stage/default" /etc/default
mount --bind "$stage/sys-block" /sys/block
mount --bind "$stage/partitions" /proc/partitions
if command -v lvs >/dev/null; then mount --bind "$stage/lvm" /etc/lvm; fi
mount -t tmpfs -o mode=0755 tmpfs /var/lib/os-prober
mount -t tmpfs -o mode=0755 tmpfs /run
mount -t tmpfs -o mode=1777 tmpfs /tmp
unset LANGUAGE LVM_SYSTEM_DIR BLKID_FILE
export LC_ALL=C LANG=C OS_PROBER_DISABLE_DEBUG=1 PATH="$PATH:/usr/sbin:/sbin"
if command -v grub-mkconfig >/dev/null; then exec grub-mkconfig; fi
exec grub2-mkconfig
"#;

/// A deployed disk as the kernel names it.
#[derive(Debug)]
pub(super) struct HostDisk {
    /// Kernel name (`loop3`, `sda`).
    pub(super) name: String,
    /// Its directory under `/sys/devices`.
    sysfs: PathBuf,
    /// Kernel names of its partitions, sorted.
    pub(super) partitions: Vec<String>,
}

impl HostDisk {
    pub(super) fn resolve(disk: &Path) -> anyhow::Result<HostDisk> {
        let node = fs::canonicalize(disk)
            .with_context(|| format!("os-prober mode: disk {}", disk.display()))?;
        let name = node
            .strip_prefix("/dev")
            .ok()
            .and_then(|name| name.to_str())
            .filter(|name| !name.is_empty())
            .map(|name| name.replace('/', "!"))
            .with_context(|| {
                format!(
                    "os-prober mode: disk {} is not a device under /dev",
                    disk.display()
                )
            })?;
        let sysfs = fs::canonicalize(Path::new("/sys/block").join(&name)).with_context(|| {
            format!(
                "os-prober mode: disk {} is not a whole disk (no /sys/block/{name})",
                disk.display()
            )
        })?;
        let mut partitions = Vec::new();
        let entries =
            fs::read_dir(&sysfs).with_context(|| format!("reading {}", sysfs.display()))?;
        for entry in entries {
            let entry = entry.with_context(|| format!("reading {}", sysfs.display()))?;
            if entry.path().join("partition").is_file() {
                partitions.push(entry.file_name().to_string_lossy().into_owned());
            }
        }
        partitions.sort();
        Ok(HostDisk {
            name,
            sysfs,
            partitions,
        })
    }
}

/// `/dev/<kernel name>`, with os-prober's `!` to `/` (`cciss!c0d0p1`).
pub(super) fn dev_path(kernel_name: &str) -> String {
    format!("/dev/{}", kernel_name.replace('!', "/"))
}

/// The files the namespace script mounts, in a private directory under `work`.
pub(super) struct Stage {
    path: PathBuf,
    removed: bool,
}

impl Stage {
    pub(super) fn create(work: &Path) -> anyhow::Result<Stage> {
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let path = work.join(format!("os-prober-{}-{n}", std::process::id()));
        fs::DirBuilder::new()
            .recursive(false)
            .mode(0o700)
            .create(&path)
            .with_context(|| format!("creating {}", path.display()))?;
        Ok(Stage {
            path,
            removed: false,
        })
    }

    pub(super) fn path(&self) -> &Path {
        &self.path
    }

    /// grub.d, default/grub (GRUB's menu shown for `timeout` seconds), sys-block,
    /// partitions and lvm/lvm.conf for `disks`.
    pub(super) fn populate(&self, disks: &[HostDisk], timeout: u32) -> anyhow::Result<()> {
        let dir = |name: &str| -> anyhow::Result<PathBuf> {
            let path = self.path.join(name);
            fs::create_dir(&path).with_context(|| format!("creating {}", path.display()))?;
            Ok(path)
        };
        let write = |path: PathBuf, text: &str, mode: u32| -> anyhow::Result<()> {
            fs::write(&path, text)
                .and_then(|()| fs::set_permissions(&path, fs::Permissions::from_mode(mode)))
                .with_context(|| format!("writing {}", path.display()))
        };
        let grub_d = dir("grub.d")?;
        for script in GRUB_D_SCRIPTS {
            let from = Path::new("/etc/grub.d").join(script);
            let text =
                fs::read_to_string(&from).with_context(|| format!("reading {}", from.display()))?;
            write(grub_d.join(script), &text, 0o755)?;
        }
        write(dir("default")?.join("grub"), &default_grub(timeout), 0o644)?;
        let sys_block = dir("sys-block")?;
        for disk in disks {
            let link = sys_block.join(&disk.name);
            symlink(&disk.sysfs, &link).with_context(|| format!("creating {}", link.display()))?;
        }
        let names: BTreeSet<String> = disks
            .iter()
            .flat_map(|disk| std::iter::once(&disk.name).chain(&disk.partitions))
            .cloned()
            .collect();
        let partitions =
            fs::read_to_string("/proc/partitions").context("reading /proc/partitions")?;
        write(
            self.path.join("partitions"),
            &filter_partitions(&partitions, &names),
            0o444,
        )?;
        let devices: Vec<String> = names.iter().map(|name| dev_path(name)).collect();
        write(dir("lvm")?.join("lvm.conf"), &lvm_conf(&devices), 0o644)
    }

    pub(super) fn remove(mut self) -> anyhow::Result<()> {
        self.removed = true;
        fs::remove_dir_all(&self.path).with_context(|| format!("removing {}", self.path.display()))
    }
}

impl Drop for Stage {
    fn drop(&mut self) {
        // Nothing is ever mounted below it in this namespace: the mounts of the run are
        // made in the run's own namespace.
        if !self.removed {
            let _ = fs::remove_dir_all(&self.path);
        }
    }
}

/// `/proc/partitions` with only the header and the lines of `names`. os-prober (1.81)
/// globs `/sys/block/*/*[0-9]`, and libblkid and LVM enumerate `/sys/block` too (staged to
/// list only the deployed disks); strace shows no tool of the run reading this file, which
/// is filtered all the same for tool versions that do.
fn filter_partitions(text: &str, names: &BTreeSet<String>) -> String {
    text.lines()
        .filter(
            |line| match line.split_whitespace().collect::<Vec<_>>()[..] {
                [] | ["major", ..] => true,
                [_, _, _, name] => names.contains(name),
                _ => false,
            },
        )
        .map(|line| format!("{line}\n"))
        .collect()
}

/// An lvm.conf whose device filter accepts exactly `devices` (no devices file, no hints):
/// `lvs`, whose logical volumes os-prober would probe, sees none of the host's.
fn lvm_conf(devices: &[String]) -> String {
    let mut filter = String::from("[");
    for device in devices {
        let escaped: String = device
            .chars()
            .flat_map(|c| {
                let special = ".[]()*+?{}^$\\|".contains(c);
                special.then_some('\\').into_iter().chain([c])
            })
            .collect();
        let _ = write!(filter, " \"a|^{escaped}$|\",");
    }
    filter.push_str(" \"r|.*|\" ]");
    format!(
        "# Written by the deployer: LVM sees only the deployed disks.\n\
         devices {{\n\
         \tfilter = {filter}\n\
         \tglobal_filter = {filter}\n\
         \tuse_devicesfile = 0\n\
         \thints = \"none\"\n\
         }}\n"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proc_partitions_keeps_the_header_and_the_deployed_disks() {
        let text = "major minor  #blocks  name\n\n   7        0     262144 loop0\n 259        0       1024 loop0p1\n   7        1     409600 loop1\n 259        2       1024 loop1p1\n 259        3     153600 loop1p10\n 254        0  268435456 vda\n";
        let names: BTreeSet<String> = ["loop1", "loop1p1", "loop1p10"]
            .map(str::to_owned)
            .into_iter()
            .collect();
        assert_eq!(
            filter_partitions(text, &names),
            "major minor  #blocks  name\n\n   7        1     409600 loop1\n 259        2       1024 loop1p1\n 259        3     153600 loop1p10\n"
        );
    }

    #[test]
    fn lvm_sees_exactly_the_deployed_devices() {
        let conf = lvm_conf(&[
            "/dev/loop1".to_owned(),
            "/dev/cciss/c0d0p1".to_owned(),
            "/dev/x.y".to_owned(),
        ]);
        let filter =
            r#"[ "a|^/dev/loop1$|", "a|^/dev/cciss/c0d0p1$|", "a|^/dev/x\.y$|", "r|.*|" ]"#;
        assert!(conf.contains(&format!("\tfilter = {filter}\n")), "{conf}");
        assert!(
            conf.contains(&format!("\tglobal_filter = {filter}\n")),
            "{conf}"
        );
        assert!(conf.contains("\tuse_devicesfile = 0\n\thints = \"none\"\n"));
        assert_eq!(dev_path("cciss!c0d0p1"), "/dev/cciss/c0d0p1");
    }

    #[test]
    fn the_private_defaults_enable_os_prober_and_the_serial_console() {
        for line in [
            "GRUB_DISABLE_OS_PROBER=false",
            "GRUB_TERMINAL=\"console serial\"",
            "GRUB_SERIAL_COMMAND=\"serial --unit=0 --speed=115200\"",
            "GRUB_TIMEOUT=7",
            "GRUB_DEFAULT=0",
        ] {
            assert!(default_grub(7).lines().any(|l| l == line), "{line}");
        }
        assert!(
            !default_grub(7).contains("saved"),
            "GRUB_DEFAULT=saved reads the host's grubenv"
        );
    }
}
