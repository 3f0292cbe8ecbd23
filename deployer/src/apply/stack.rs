//! The layers between the partitions and the filesystems: md arrays created, physical
//! volumes, volume groups and logical volumes made, all as planned and as Bareon makes
//! them (`bareon/utils/md.py` `mdcreate`, `bareon/utils/lvm.py`), or those that keep data
//! assembled and activated as they are; at the end of a deploy,
//! either way, every volume group deactivated and every array stopped, so that nothing
//! holds the disks; after a failure, their signatures wiped too.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::bail;

use crate::exec::run;
use crate::plan::{mapper_name, Device, Plan, RaidArrayPlan, VolumeGroupPlan, LVM_EXTENT_MIB};

/// How long an array's or a logical volume's device node is awaited.
const NODE_WAIT: Duration = Duration::from_secs(10);

/// What a deploy has started of the planned LVM and md layers.
#[derive(Debug, Default)]
pub struct Stack {
    /// Partitions given an md superblock or an LVM label, to wipe after a failure.
    members: Vec<PathBuf>,
    /// Arrays started, by their name under /dev.
    arrays: Vec<String>,
    /// Volume groups created, and active.
    groups: Vec<String>,
}

/// The device node of a logical volume or an array (`None` for a partition).
pub fn stack_node(device: &Device) -> Option<PathBuf> {
    match device {
        Device::Partition { .. } => None,
        Device::LogicalVolume { vg, lv } => {
            Some(Path::new("/dev/mapper").join(mapper_name(vg, lv)))
        }
        Device::RaidArray { name } => Some(Path::new("/dev").join(name)),
    }
}

fn argv(words: &[&str]) -> Vec<OsString> {
    words.iter().map(OsString::from).collect()
}

/// Waits for `node`, made by the kernel (an array), by LVM itself or by udev.
fn wait_for(node: &Path, what: &str) -> anyhow::Result<()> {
    let deadline = Instant::now() + NODE_WAIT;
    while !node.exists() {
        if Instant::now() > deadline {
            bail!("wait for {what}: {} did not appear", node.display());
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    Ok(())
}

/// What the running kernel lacks for `plan`'s layers, one line each. A missing driver is
/// asked for with modprobe first, as lvm and mdadm would.
pub fn kernel_refusals(plan: &Plan) -> Vec<String> {
    const RAMDISK: &str =
        "deploy from the deploy ramdisk (packaging/ramdisk; README \"Deploy from a ramdisk (PXE)\")";
    let mut out = Vec::new();
    let device_mapper = || {
        read_proc("misc")
            .lines()
            .any(|l| l.ends_with(" device-mapper"))
    };
    if plan.needs_device_mapper && !(device_mapper() || modprobe("dm_mod") && device_mapper()) {
        out.push(format!(
            "LVM: this host's kernel has no device-mapper (dm_mod); {RAMDISK}"
        ));
    }
    let raid1 = || {
        read_proc("mdstat")
            .lines()
            .next()
            .is_some_and(|l| l.starts_with("Personalities") && l.contains("[raid1]"))
    };
    if plan.needs_md && !(raid1() || modprobe("raid1") && raid1()) {
        out.push(format!(
            "RAID: this host's kernel has no md RAID1 (md_mod, raid1); {RAMDISK}"
        ));
    }
    out
}

fn read_proc(name: &str) -> String {
    std::fs::read_to_string(Path::new("/proc").join(name)).unwrap_or_default()
}

/// Loads `module`; false when modprobe is missing or fails.
fn modprobe(module: &str) -> bool {
    run(
        &format!("load kernel module {module}"),
        &argv(&["modprobe", "-q", module]),
    )
    .is_ok()
}

impl Stack {
    /// Creates every planned array, then every volume group with its logical volumes;
    /// `node` gives the device node of a member or physical volume.
    pub fn build(
        &mut self,
        plan: &Plan,
        node: impl Fn(&Device) -> anyhow::Result<PathBuf>,
    ) -> anyhow::Result<()> {
        for array in &plan.raid_arrays {
            let members = array
                .members
                .iter()
                .map(&node)
                .collect::<anyhow::Result<Vec<_>>>()?;
            if array.keep {
                self.assemble_array(array, &members)?;
            } else {
                self.create_array(array, &members)?;
            }
        }
        for vg in &plan.volume_groups {
            let pvs = vg
                .physical_volumes
                .iter()
                .map(|pv| node(&pv.device))
                .collect::<anyhow::Result<Vec<_>>>()?;
            if vg.keep {
                self.activate_group(vg)?;
            } else {
                self.create_group(vg, &pvs)?;
            }
        }
        Ok(())
    }

    /// Old signatures go first: a stale md superblock or LVM label inside a new partition
    /// would make mdadm ask, or udev start an old array or VG (Bareon zeroes md
    /// superblocks for the first reason).
    fn clear(&mut self, member: &Path) -> anyhow::Result<()> {
        self.members.push(member.to_owned());
        let mut words = argv(&["wipefs", "-a", "-q"]);
        words.push(member.into());
        run(
            &format!("wipe old signatures of {}", member.display()),
            &words,
        )?;
        Ok(())
    }

    fn create_array(&mut self, array: &RaidArrayPlan, members: &[PathBuf]) -> anyhow::Result<()> {
        crate::info!(
            "deployer: creating md array {} ({} of {} members)",
            array.name,
            array.level,
            members.len()
        );
        for member in members {
            self.clear(member)?;
        }
        let node = Path::new("/dev").join(&array.name);
        let mut words = argv(&["mdadm", "--create"]);
        words.push(node.clone().into());
        words.extend(argv(&[
            "--run",
            "--metadata=1.2",
            &format!("--level={}", array.level),
            &format!("--raid-devices={}", members.len()),
            &format!("--uuid={}", array.uuid),
        ]));
        words.extend(members.iter().map(OsString::from));
        // Recorded before the command: a create that fails half-way may have started it.
        self.arrays.push(array.name.clone());
        run(&format!("create md array {}", array.name), &words)?;
        wait_for(&node, &format!("md array {}", array.name))
    }

    /// Starts the array the members hold, which keeps data (checked when planning).
    fn assemble_array(&mut self, array: &RaidArrayPlan, members: &[PathBuf]) -> anyhow::Result<()> {
        crate::info!(
            "deployer: assembling md array {} (it keeps data)",
            array.name
        );
        let node = Path::new("/dev").join(&array.name);
        let mut words = argv(&["mdadm", "--assemble"]);
        words.push(node.clone().into());
        words.extend(argv(&["--run", &format!("--uuid={}", array.uuid)]));
        words.extend(members.iter().map(OsString::from));
        self.arrays.push(array.name.clone());
        run(&format!("assemble md array {}", array.name), &words)?;
        wait_for(&node, &format!("md array {}", array.name))
    }

    /// Activates the volume group the physical volumes hold, one of whose logical volumes
    /// keeps data (checked when planning).
    fn activate_group(&mut self, vg: &VolumeGroupPlan) -> anyhow::Result<()> {
        crate::info!(
            "deployer: activating volume group {} (it keeps data)",
            vg.name
        );
        self.groups.push(vg.name.clone());
        run(
            &format!("activate volume group {}", vg.name),
            &argv(&["lvm", "vgchange", "--activate=y", &vg.name]),
        )?;
        self.wait_for_volumes(vg)
    }

    fn wait_for_volumes(&self, vg: &VolumeGroupPlan) -> anyhow::Result<()> {
        for lv in &vg.logical_volumes {
            let device = Device::LogicalVolume {
                vg: vg.name.clone(),
                lv: lv.name.clone(),
            };
            if let Some(node) = stack_node(&device) {
                wait_for(&node, &format!("logical volume {device}"))?;
            }
        }
        Ok(())
    }

    fn create_group(&mut self, vg: &VolumeGroupPlan, pvs: &[PathBuf]) -> anyhow::Result<()> {
        crate::info!(
            "deployer: creating volume group {} on {} physical volume(s)",
            vg.name,
            pvs.len()
        );
        for (pv, plan) in pvs.iter().zip(&vg.physical_volumes) {
            self.clear(pv)?;
            let mut words = argv(&["lvm", "pvcreate", "--yes"]);
            if let Some(mib) = plan.metadata_mib {
                words.push(format!("--metadatasize={mib}m").into());
            }
            words.push(pv.into());
            run(
                &format!("make {} a physical volume of {}", plan.device, vg.name),
                &words,
            )?;
        }
        let mut words = argv(&[
            "lvm",
            "vgcreate",
            "--yes",
            &format!("--physicalextentsize={LVM_EXTENT_MIB}m"),
            &vg.name,
        ]);
        words.extend(pvs.iter().map(OsString::from));
        self.groups.push(vg.name.clone());
        run(&format!("create volume group {}", vg.name), &words)?;
        for lv in &vg.logical_volumes {
            run(
                &format!("create logical volume {}/{}", vg.name, lv.name),
                &argv(&[
                    "lvm",
                    "lvcreate",
                    "--yes",
                    "--wipesignatures=y",
                    "--zero=y",
                    &format!("--name={}", lv.name),
                    &format!("--size={}m", lv.size_mib),
                    &vg.name,
                ]),
            )?;
        }
        self.wait_for_volumes(vg)
    }

    /// Deactivates every volume group and stops every array, the reverse of their
    /// creation; the filesystems on them must be unmounted. Returns the problems.
    pub fn stop(&mut self) -> Vec<String> {
        let mut problems = Vec::new();
        while let Some(vg) = self.groups.pop() {
            let step = format!("deactivate volume group {vg}");
            match run(&step, &argv(&["lvm", "vgchange", "--activate=n", &vg])) {
                Ok(_) => crate::info!("deployer: deactivated volume group {vg}"),
                Err(err) => problems.push(err.to_string()),
            }
        }
        while let Some(name) = self.arrays.pop() {
            let node = Path::new("/dev").join(&name);
            if !node.exists() {
                continue;
            }
            let mut words = argv(&["mdadm", "--stop"]);
            words.push(node.into());
            match run(&format!("stop md array {name}"), &words) {
                Ok(_) => crate::info!("deployer: stopped md array {name}"),
                Err(err) => problems.push(err.to_string()),
            }
        }
        problems
    }

    /// After a failure: stops everything, then wipes the md superblocks and LVM labels
    /// of every member, so that nothing of the half-made layers starts again. Returns
    /// the problems.
    pub fn wipe(&mut self) -> Vec<String> {
        let mut problems = self.stop();
        for member in std::mem::take(&mut self.members) {
            let mut words = argv(&["wipefs", "-a", "-q"]);
            words.push(member.clone().into());
            if let Err(err) = run(&format!("wipe {}", member.display()), &words) {
                problems.push(err.to_string());
            }
        }
        problems
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn logical_volumes_are_found_under_their_device_mapper_name() {
        let lv = |vg: &str, lv: &str| Device::LogicalVolume {
            vg: vg.to_owned(),
            lv: lv.to_owned(),
        };
        assert_eq!(
            stack_node(&lv("os", "root")),
            Some(PathBuf::from("/dev/mapper/os-root"))
        );
        assert_eq!(
            stack_node(&lv("image-vg", "var-log")),
            Some(PathBuf::from("/dev/mapper/image--vg-var--log"))
        );
        assert_eq!(
            stack_node(&Device::RaidArray {
                name: "md/data".to_owned()
            }),
            Some(PathBuf::from("/dev/md/data"))
        );
        assert_eq!(
            stack_node(&Device::Partition {
                disk: "vda".to_owned(),
                number: 1
            }),
            None
        );
    }
}
