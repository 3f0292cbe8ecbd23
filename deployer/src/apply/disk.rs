//! The planned disks made real: disk-image files created and attached to loop devices,
//! old signatures wiped, the planned GPT written and checked (or a kept one checked
//! again), every filesystem made but those that keep their data.
//! [`AttachedDisks`] keeps the loop devices (detached on drop) and finds each partition's
//! device node.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use shared::fault;
use shared::loopdev::LoopDevice;

use crate::apply::mkfs::mkfs_command;
use crate::apply::stack::{stack_node, Stack};
use crate::exec::{run, run_with_input};
use crate::plan::{check_kept_table, check_table, sfdisk_script};
use crate::plan::{Device, DiskPlan, FilesystemPlan, Plan, Purpose};

/// How long the partition nodes of a block device are awaited after re-reading its table.
const PARTITION_WAIT: Duration = Duration::from_secs(10);

/// One planned disk being deployed.
#[derive(Debug)]
struct AttachedDisk {
    /// The disk's name in the plan.
    name: String,
    /// The whole-disk device: the loop device of an image file, or the block device.
    device: PathBuf,
    /// The loop device guard of an image file.
    loop_device: Option<LoopDevice>,
    /// The partition table has been (or is being) written.
    written: bool,
}

/// The disks of a deploy, attached in plan order, and the md arrays and volume groups
/// made on them.
#[derive(Debug, Default)]
pub struct AttachedDisks {
    disks: Vec<AttachedDisk>,
    stack: Stack,
}

fn os(args: &[&str]) -> Vec<OsString> {
    args.iter().map(OsString::from).collect()
}

fn with_path(mut argv: Vec<OsString>, path: &Path) -> Vec<OsString> {
    argv.push(path.into());
    argv
}

impl AttachedDisks {
    /// Makes `disk` usable as a block device: a missing image file is created sparse at
    /// the planned size, an image file is attached to a loop device.
    pub fn attach(&mut self, disk: &DiskPlan) -> anyhow::Result<()> {
        let path = &disk.path;
        let meta = match std::fs::metadata(path) {
            Ok(meta) => meta,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                crate::info!(
                    "deployer: creating disk image {} ({} MiB)",
                    path.display(),
                    disk.size_bytes >> 20
                );
                std::fs::File::create_new(path)
                    .and_then(|f| f.set_len(disk.size_bytes))
                    .with_context(|| format!("creating disk image {}", path.display()))?;
                std::fs::metadata(path).with_context(|| format!("examining {}", path.display()))?
            }
            Err(e) => return Err(e).with_context(|| format!("examining {}", path.display())),
        };
        let (device, loop_device) = if meta.is_file() {
            let loop_device = LoopDevice::attach(path, false)
                .with_context(|| format!("attaching disk {} ({})", disk.name, path.display()))?;
            (loop_device.path().to_owned(), Some(loop_device))
        } else {
            (path.clone(), None)
        };
        self.disks.push(AttachedDisk {
            name: disk.name.clone(),
            device,
            loop_device,
            written: false,
        });
        Ok(())
    }

    fn get(&self, name: &str) -> anyhow::Result<&AttachedDisk> {
        self.disks
            .iter()
            .find(|d| d.name == name)
            .with_context(|| format!("disk {name} is not attached"))
    }

    /// The whole-disk device of the disk the plan calls `name`.
    pub fn device(&self, name: &str) -> anyhow::Result<&Path> {
        Ok(&self.get(name)?.device)
    }

    /// Wipes old signatures, writes the planned GPT, waits for the partitions and checks
    /// the table `sfdisk -J` reads back against the plan.
    pub fn partition(&mut self, disk: &DiskPlan) -> anyhow::Result<()> {
        let attached = self
            .disks
            .iter_mut()
            .find(|d| d.name == disk.name)
            .with_context(|| format!("disk {} is not attached", disk.name))?;
        let device = attached.device.clone();
        attached.written = true;
        crate::info!(
            "deployer: partitioning disk {} ({})",
            disk.name,
            device.display()
        );
        fault::step("partition:wipefs")?;
        run(
            &format!("wipe old signatures of disk {}", disk.name),
            &with_path(os(&["wipefs", "-a", "-q"]), &device),
        )?;
        fault::step("partition:sfdisk")?;
        run_with_input(
            &format!("write the partition table of disk {}", disk.name),
            &with_path(
                os(&["sfdisk", "--quiet", "--no-reread", "--wipe", "always"]),
                &device,
            ),
            sfdisk_script(disk).as_bytes(),
        )?;
        let json = self.show_partitions(disk)?;
        check_table(disk, &json).map_err(|errors| {
            anyhow::anyhow!(
                "check the partition table of disk {}: {}",
                disk.name,
                errors.join("; ")
            )
        })
    }

    /// Uses the partition table `disk` has, which the deploy keeps (`partitions_policy`
    /// verify): waits for the partitions and checks the table again against the plan, in
    /// case it changed since it was first read. Nothing is written.
    pub fn use_kept_table(&self, disk: &DiskPlan) -> anyhow::Result<()> {
        crate::info!(
            "deployer: keeping the partition table of disk {} ({})",
            disk.name,
            self.device(&disk.name)?.display()
        );
        let json = self.show_partitions(disk)?;
        check_kept_table(disk, &json).map(|_| ()).map_err(|errors| {
            anyhow::anyhow!(
                "check the kept partition table of disk {}: {}",
                disk.name,
                errors.join("; ")
            )
        })
    }

    /// Has the kernel read `disk`'s table, waits for every planned partition's device
    /// node and returns what `sfdisk -J` reads of the table.
    fn show_partitions(&self, disk: &DiskPlan) -> anyhow::Result<String> {
        let attached = self.get(&disk.name)?;
        let device = attached.device.clone();
        if attached.loop_device.is_none() {
            let step = format!("re-read the partition table of disk {}", disk.name);
            run(&step, &with_path(os(&["partx", "-u"]), &device))?;
            // -u updates the partitions the kernel knows; -a adds the others (and fails
            // for those that exist, which the wait below judges instead).
            let _ = run(&step, &with_path(os(&["partx", "-a"]), &device));
        }
        for partition in &disk.partitions {
            self.partition_node(&disk.name, partition.number)?;
        }
        Ok(run(
            &format!("read back the partition table of disk {}", disk.name),
            &with_path(os(&["sfdisk", "-J"]), &device),
        )?)
    }

    /// The device node of partition `number` of disk `name`.
    pub fn partition_node(&self, name: &str, number: u32) -> anyhow::Result<PathBuf> {
        let disk = self.get(name)?;
        if let Some(loop_device) = &disk.loop_device {
            return loop_device.partition(number).with_context(|| {
                format!("finding partition {number} of disk {name} (wait for the device node)")
            });
        }
        let text = disk.device.to_string_lossy();
        let node = if text.ends_with(|c: char| c.is_ascii_digit()) {
            PathBuf::from(format!("{text}p{number}"))
        } else {
            PathBuf::from(format!("{text}{number}"))
        };
        let deadline = Instant::now() + PARTITION_WAIT;
        while !node.exists() {
            if Instant::now() > deadline {
                bail!(
                    "wait for partition {number} of disk {name}: {} did not appear",
                    node.display()
                );
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        Ok(node)
    }

    /// The device node of a planned device.
    pub fn node(&self, device: &Device) -> anyhow::Result<PathBuf> {
        match device {
            Device::Partition { disk, number } => self.partition_node(disk, *number),
            other => stack_node(other).with_context(|| format!("{other} has no device node")),
        }
    }

    /// Creates the planned md arrays and volume groups on the partitioned disks.
    pub fn build_stack(&mut self, plan: &Plan) -> anyhow::Result<()> {
        let mut stack = std::mem::take(&mut self.stack);
        let built = stack.build(plan, |device| self.node(device));
        self.stack = stack;
        built
    }

    /// Deactivates the volume groups and stops the arrays, so that the disks can be let
    /// go of; the filesystems on them must be unmounted.
    pub fn stop_stack(&mut self) -> anyhow::Result<()> {
        let problems = self.stack.stop();
        if problems.is_empty() {
            Ok(())
        } else {
            bail!("{}", problems.join("; "))
        }
    }

    /// Makes every planned filesystem with its planned UUID and label, except those that
    /// keep their data.
    pub fn make_filesystems(&self, plan: &Plan) -> anyhow::Result<()> {
        let mut todo = Vec::new();
        for fs in &plan.filesystems {
            let node = self.node(&fs.device)?;
            if fs.keep_data {
                crate::info!(
                    "deployer: keeping {} {} on {} ({})",
                    fs.fs_type.as_str(),
                    fs.uuid,
                    fs.device,
                    node.display()
                );
                continue;
            }
            crate::info!(
                "deployer: making {} on {} ({})",
                fs.fs_type.as_str(),
                fs.device,
                node.display()
            );
            todo.push((fs, node));
        }
        // The ESP first, alone: until it is made anew, the boot file of an earlier deploy
        // on it could start a firmware into a multiboot partition already made empty, were
        // the deploy killed between the two.
        let (esp, rest): (Vec<_>, Vec<_>) = todo
            .into_iter()
            .partition(|(fs, _)| fs.purpose == Purpose::Esp);
        // Each mkfs writes its own device and waits on it: they run side by side, a few
        // per core.
        let at_once = 2 * std::thread::available_parallelism().map_or(1, usize::from);
        for batch in esp.chunks(1).chain(rest.chunks(at_once)) {
            std::thread::scope(|scope| {
                let runs: Vec<_> = batch
                    .iter()
                    .map(|(fs, node)| scope.spawn(move || make_filesystem(fs, node)))
                    .collect();
                runs.into_iter()
                    .map(|run| {
                        run.join()
                            .unwrap_or_else(|_| anyhow::bail!("mkfs panicked"))
                    })
                    .collect::<anyhow::Result<Vec<()>>>()
            })?;
        }
        Ok(())
    }

    /// After a failure: stops the volume groups and arrays and wipes their members, then
    /// wipes the signatures (the new partition table first) of every disk whose table was
    /// written, so that it never boots half-written. Returns the problems.
    pub fn wipe(&mut self) -> Vec<String> {
        let mut problems = self.stack.wipe();
        for disk in self.disks.iter().filter(|d| d.written) {
            let step = format!("wipe the partition table of disk {}", disk.name);
            match run(&step, &with_path(os(&["wipefs", "-a", "-q"]), &disk.device)) {
                Ok(_) => crate::info!(
                    "deployer: wiped the partition table of disk {} ({})",
                    disk.name,
                    disk.device.display()
                ),
                Err(err) => problems.push(err.to_string()),
            }
        }
        problems
    }
}

/// Makes the planned filesystem `fs` on `node`.
fn make_filesystem(fs: &FilesystemPlan, node: &Path) -> anyhow::Result<()> {
    fault::step("mkfs")?;
    run(
        &format!(
            "make the {} filesystem of {}",
            fs.fs_type.as_str(),
            fs.device
        ),
        &mkfs_command(fs, node),
    )?;
    Ok(())
}
