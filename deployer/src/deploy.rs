//! `deployer deploy`: the plan applied to the disks.
//!
//! `prepare` checks, before the first write, everything that can be known without
//! writing, in order, each check needing what the one before found; then `apply` writes,
//! in an order chosen so that a disk killed at any instant never boots half-written: disks,
//! filesystems, images (several at a time: [`crate::apply::images`]), GRUB last. On a
//! failure the guards unmount and detach and the new partition tables are wiped; what a
//! killed deployer leaves, its work directory, the next one removes.

use std::fs::File;
use std::io::IsTerminal;
use std::path::{Path, PathBuf};

use anyhow::Context;
use nix::fcntl::{Flock, FlockArg};
use shared::blockdev::parse_mountinfo;
use shared::fault;

use crate::apply::boot::{
    boot_entries_path, install_bios_files, install_boot, BootInputs, BootloaderConfig,
};
use crate::apply::disk::AttachedDisks;
use crate::apply::image::{check_root_starter, image_kernel, kernel_mounts_vfat, vfat_nesting};
use crate::apply::images::deploy_images;
use crate::apply::{preflight, stack, tools};
use crate::exec::StepError;
use crate::exit::Exit;
use crate::plan::{Device, ImageLayout, Plan};
use crate::render::{plan_text, terminal_width};
use crate::source::{self, SourceKind, Sources};
use crate::timing;

/// The deploy options besides the config and the disks.
#[derive(Debug, Clone)]
pub struct DeployOptions {
    /// Where boot-info.json is written besides the multiboot partition and the images.
    pub boot_info: PathBuf,
    /// The bootctl installed into every image; `None`: `bootctl` next to the deployer.
    pub bootctl: Option<PathBuf>,
    /// Deploy without asking.
    pub yes: bool,
    /// Keep the disks as they are when a step fails.
    pub preserve_on_error: bool,
    /// Where grub.cfg comes from.
    pub bootloader_config: BootloaderConfig,
    /// How long GRUB shows its menu, in seconds.
    pub grub_timeout: u32,
    /// Download `http://` and `https://` sources that have no `sha256` in the config.
    pub allow_unverified_downloads: bool,
    /// A PEM file of CA certificates HTTPS servers are trusted by, besides the built-in ones.
    pub cacert: Option<PathBuf>,
}

/// Deploys `plan` and returns the exit status; every problem is reported through
/// [`crate::output`].
pub fn deploy(plan: &Plan, options: &DeployOptions) -> Exit {
    timing::start();
    let ready = match prepare(plan, options) {
        Ok(ready) => ready,
        Err(Stop { exit, lines }) => {
            for line in lines {
                crate::error!("deployer: {line}");
            }
            return exit;
        }
    };
    let Ready {
        bootctl,
        work,
        sources,
    } = ready;
    if let Err(err) = shared::mount::enter_private_namespace() {
        crate::error!("deployer: {err}");
        return Exit::Failure;
    }
    let mut disks = AttachedDisks::default();
    match apply(plan, &sources, options, &bootctl, &work, &mut disks) {
        Ok(()) => {
            fault::point("deploy:done");
            let written = match boot_entries_path(&options.boot_info) {
                Some(entries) => {
                    format!("{} and {}", options.boot_info.display(), entries.display())
                }
                None => options.boot_info.display().to_string(),
            };
            crate::info!(
                "deployer: deployed {} image(s); boot-info.json written to {written}",
                plan.images.len(),
            );
            match work.remove() {
                Ok(()) => Exit::Success,
                Err(err) => {
                    crate::error!("deployer: {err:#}");
                    Exit::Failure
                }
            }
        }
        Err(err) => {
            crate::output::set_failed_step(failed_step(&err));
            crate::error!("deployer: deploy failed: {err:#}");
            if options.preserve_on_error || plan.keeps_partition_tables() {
                // Nothing stays active on the disks, whatever is left on them.
                if let Err(err) = disks.stop_stack() {
                    crate::error!("deployer: {err:#}");
                }
            }
            if options.preserve_on_error {
                crate::warn!("deployer: --preserve-on-error: the disks are left as they are");
            } else if plan.keeps_partition_tables() {
                crate::warn!(
                    "deployer: the partition tables and the kept filesystems are left as \
                     they are (partitions_policy {}); the filesystems made anew may be \
                     incomplete",
                    plan.partitions_policy.as_str()
                );
            } else {
                for problem in disks.wipe() {
                    crate::error!("deployer: {problem}");
                }
            }
            fault::point("deploy:failed");
            Exit::Failure
        }
    }
}

/// What stops a deploy before the first write: its exit status and one line per reason.
struct Stop {
    exit: Exit,
    lines: Vec<String>,
}

impl Stop {
    fn refused(lines: Vec<String>) -> Stop {
        Stop {
            exit: Exit::Invalid,
            lines,
        }
    }

    fn failed(err: &anyhow::Error) -> Stop {
        Stop {
            exit: Exit::Failure,
            lines: vec![format!("{err:#}")],
        }
    }
}

/// A deploy checked and confirmed, ready for its first write.
struct Ready {
    bootctl: PathBuf,
    work: WorkDir,
    sources: Sources,
}

/// Everything checked before the first write, in order (each check needs what the ones
/// before it found), then the confirmation.
fn prepare(plan: &Plan, options: &DeployOptions) -> Result<Ready, Stop> {
    let bootctl = options
        .bootctl
        .clone()
        .map_or_else(default_bootctl, Ok)
        .map_err(|err| Stop::refused(vec![err.to_string()]))?;
    let refusals = refusals(plan, &bootctl, options.bootloader_config);
    if !refusals.is_empty() {
        return Err(Stop::refused(refusals));
    }
    for empty in plan.left_empty() {
        crate::warn!(
            "deployer: image {}: its / keeps its data and it is not deployed again: {} ({}) is \
             made anew and left empty",
            empty.image,
            empty.mount_point,
            empty.device
        );
    }
    let work = WorkDir::create().map_err(|err| Stop::failed(&err))?;
    let client = source::Client::new(options.cacert.as_deref(), source::Proxies::from_env())
        .map_err(|err| Stop::refused(vec![format!("{err:#}")]))?;
    let sources = source::preflight(
        plan,
        options.allow_unverified_downloads,
        client,
        work.path(),
    )
    .map_err(Stop::refused)?;
    let path = std::env::var("PATH").unwrap_or_default();
    let missing = tools::missing(
        &tools::source_programs(&sources.checked, plan.rsync_flags.is_some()),
        &path,
    );
    if !missing.is_empty() {
        return Err(Stop::refused(missing));
    }
    let unstartable = initramfs_refusals(plan, &sources);
    if !unstartable.is_empty() {
        return Err(Stop::refused(unstartable));
    }
    let busy = preflight::check_disks(plan);
    if !busy.is_empty() {
        return Err(Stop::refused(
            busy.iter().map(ToString::to_string).collect(),
        ));
    }
    confirm(plan, options.yes)?;
    Ok(Ready {
        bootctl,
        work,
        sources,
    })
}

/// The images deployed from a local tree onto a logical volume or an array whose
/// initramfs cannot start their `/`, known before any write. The other sources are
/// checked once deployed, before GRUB is installed.
fn initramfs_refusals(plan: &Plan, sources: &Sources) -> Vec<String> {
    let mut out = Vec::new();
    for source in &sources.checked {
        let SourceKind::Tree(tree) = &source.kind else {
            continue;
        };
        let Some(image) = plan
            .images
            .iter()
            .find(|i| i.name == source.image && i.target == "/" && plan.deploys(i))
        else {
            continue;
        };
        let Some((program, device)) = plan.stack_boot(&plan.layout(image)).root_starter else {
            continue;
        };
        // A tree without a kernel is reported by the deploy, as for any image.
        if let Ok((boot_dir, Some(kernel))) = image_kernel(&image.name, tree) {
            if let Err(line) =
                check_root_starter(&image.name, &boot_dir, &kernel, (program, &device))
            {
                out.push(line);
            }
        }
    }
    out
}

/// What the deploy was doing when `err` stopped it: the command's step when a command
/// failed, else the outermost context of the error.
fn failed_step(err: &anyhow::Error) -> String {
    err.chain()
        .find_map(|cause| cause.downcast_ref::<StepError>())
        .map_or_else(|| err.to_string(), |step| step.step().to_owned())
}

/// The bootctl next to the running deployer, or the static build
/// ([`tools::default_bootctl`]).
fn default_bootctl() -> anyhow::Result<PathBuf> {
    let exe = std::env::current_exe().context("cannot find the deployer's own executable")?;
    Ok(tools::default_bootctl(&exe))
}

/// What keeps this host from deploying `plan` at all, one line each; empty when nothing
/// does. The image sources are checked by [`source::preflight`].
pub fn refusals(plan: &Plan, bootctl: &Path, mode: BootloaderConfig) -> Vec<String> {
    let mut out = Vec::new();
    out.extend(stack::kernel_refusals(plan));
    let layouts: Vec<(&str, ImageLayout)> = plan
        .images
        .iter()
        .map(|image| (image.name.as_str(), plan.layout(image)))
        .collect();
    out.extend(plan.kept_refusals());
    for (name, layout) in &layouts {
        if layout.root_uuid.is_none() {
            out.push(format!(
                "image {name}: images without a / filesystem are not supported so far"
            ));
        }
    }
    if !kernel_mounts_vfat() {
        for (name, layout) in &layouts {
            if let Some((below, vfat)) = vfat_nesting(&layout.mounts) {
                out.push(format!(
                    "image {name}: {below} is mounted below the vfat filesystem at {vfat}, \
                     which this host's kernel cannot mount (its files go there through mtools)"
                ));
            }
        }
    }
    if mode == BootloaderConfig::OsProber {
        for (name, layout) in &layouts {
            if layout
                .mounts
                .iter()
                .any(|m| !matches!(m.device, Device::Partition { .. }))
            {
                out.push(format!(
                    "image {name}: images on LVM or RAID are not supported in os-prober mode; \
                     use the generated grub.cfg"
                ));
            }
        }
        for (name, _) in layouts.iter().filter(|(_, layout)| layout.separate_boot) {
            out.push(format!(
                "image {name}: a separate /boot is not supported in os-prober mode (os-prober \
                 skips such images); use the generated grub.cfg"
            ));
        }
    }
    let path = std::env::var("PATH").unwrap_or_default();
    out.extend(tools::missing(&tools::required_programs(plan, mode), &path));
    out.extend(tools::missing_grub_platforms());
    out.extend(tools::bootctl_problem(bootctl));
    out
}

/// Goes on with `--yes`; without, on a terminal the plan is shown on stderr (stdout is
/// `--json`'s) and the question asked; elsewhere the deploy is refused with status 2.
fn confirm(plan: &Plan, yes: bool) -> Result<(), Stop> {
    let usage = |line: &str| Stop {
        exit: Exit::Usage,
        lines: vec![line.to_owned()],
    };
    if yes {
        return Ok(());
    }
    if !(std::io::stdin().is_terminal() && std::io::stderr().is_terminal()) {
        return Err(usage("use --yes to deploy without a terminal"));
    }
    crate::output::show(&plan_text(plan, terminal_width()));
    let disks: Vec<String> = plan
        .disks
        .iter()
        .map(|d| format!("{} ({})", d.name, d.path.display()))
        .collect();
    let kept: Vec<String> = plan
        .filesystems
        .iter()
        .filter(|fs| fs.keep_data)
        .map(|fs| fs.device.to_string())
        .collect();
    let prompt = if !plan.keeps_partition_tables() {
        format!("Destroy all data on {}?", disks.join(", "))
    } else if kept.is_empty() {
        format!(
            "Make every filesystem anew on {} (keeping the partition tables)?",
            disks.join(", ")
        )
    } else {
        format!(
            "Make the filesystems anew on {}, keeping the data of {}?",
            disks.join(", "),
            kept.join(", ")
        )
    };
    match dialoguer::Confirm::new()
        .with_prompt(prompt)
        .default(false)
        .interact()
    {
        Ok(true) => Ok(()),
        Ok(false) => Err(usage("not confirmed; nothing was written")),
        Err(err) => Err(usage(&format!("cannot ask for confirmation: {err}"))),
    }
}

/// Every write of the deploy, in order; `disks` keeps the attached disks for the caller to
/// wipe on failure.
fn apply(
    plan: &Plan,
    sources: &Sources,
    options: &DeployOptions,
    bootctl: &Path,
    work: &WorkDir,
    disks: &mut AttachedDisks,
) -> anyhow::Result<()> {
    let bootctl_bytes =
        std::fs::read(bootctl).with_context(|| format!("reading {}", bootctl.display()))?;
    timing::step("partition", None, || -> anyhow::Result<()> {
        for disk in &plan.disks {
            disks.attach(disk)?;
            fault::step("disk:attached")?;
        }
        for disk in &plan.disks {
            if plan.keeps_partition_tables() {
                disks.use_kept_table(disk)?;
            } else {
                disks.partition(disk)?;
            }
        }
        Ok(())
    })?;
    timing::step("stack", None, || disks.build_stack(plan))?;
    timing::step("mkfs", None, || disks.make_filesystems(plan))?;
    let disks_now: &AttachedDisks = disks;
    let bios_files = || {
        timing::step("grub-files", None, || {
            install_bios_files(plan, disks_now, work.path())
        })
    };
    // GRUB's files go onto the multiboot partition while the images are written, unless
    // the partition may be kept after a failure: there, new modules beside an old core
    // image would not boot, so both are written at the end, together.
    let early = !plan.keeps_partition_tables();
    let (deployed, early_files) = std::thread::scope(|scope| {
        let files = early.then(|| scope.spawn(bios_files));
        let deployed = deploy_images(plan, sources, &bootctl_bytes, disks_now, work.path());
        (deployed, files.map(|files| files.join()))
    });
    let deployed = deployed?;
    let multiboot = match early_files {
        Some(joined) => {
            joined.map_err(|_| anyhow::anyhow!("installing GRUB's BIOS files panicked"))??
        }
        None => bios_files()?,
    };
    crate::info!("deployer: installing GRUB on the multiboot partition");
    timing::step("grub", None, || {
        install_boot(
            &BootInputs {
                plan,
                deployed: &deployed,
                disks,
                work: work.path(),
                boot_info: &options.boot_info,
                mode: options.bootloader_config,
                grub_timeout: options.grub_timeout,
            },
            multiboot,
        )
    })?;
    timing::step("stop", None, || disks.stop_stack())
}

/// The private directory under which filesystems are mounted and downloads kept while
/// deploying, `deployer-PID` under `$TMPDIR` (else `/tmp`). It is flocked while the deploy
/// runs: a deployer that was killed leaves its directory (empty mount points, a partial
/// download) unlocked, and the next deploy removes it.
struct WorkDir {
    path: PathBuf,
    _lock: Flock<File>,
}

impl WorkDir {
    fn create() -> anyhow::Result<WorkDir> {
        use std::os::unix::fs::DirBuilderExt;
        let base = std::env::temp_dir();
        remove_stale_work_dirs(&base);
        let path = base.join(format!("deployer-{}", std::process::id()));
        std::fs::DirBuilder::new()
            .mode(0o700)
            .create(&path)
            .with_context(|| format!("creating {}", path.display()))?;
        let locked = File::open(&path).and_then(|dir| {
            Flock::lock(dir, FlockArg::LockExclusiveNonblock)
                .map_err(|(_, errno)| std::io::Error::from(errno))
        });
        match locked {
            Ok(lock) => Ok(WorkDir { path, _lock: lock }),
            Err(err) => {
                let _ = std::fs::remove_dir(&path);
                Err(err).with_context(|| format!("locking {}", path.display()))
            }
        }
    }

    fn path(&self) -> &Path {
        &self.path
    }

    /// Removes the (by now empty) directory.
    fn remove(self) -> anyhow::Result<()> {
        std::fs::remove_dir(&self.path).with_context(|| format!("removing {}", self.path.display()))
    }
}

impl Drop for WorkDir {
    fn drop(&mut self) {
        // Never recursive: a mount left below it must not lose its files.
        let _ = std::fs::remove_dir(&self.path);
    }
}

/// Removes the work directories under `base` that deployers killed before they could
/// clean up left behind: `deployer-PID` directories whose process is gone, that no
/// deployer holds locked and below which nothing is mounted. Each one is reported.
fn remove_stale_work_dirs(base: &Path) {
    let Ok(entries) = std::fs::read_dir(base) else {
        return;
    };
    let mounts = std::fs::read("/proc/self/mountinfo")
        .map(|text| parse_mountinfo(&text))
        .unwrap_or_default();
    for entry in entries.flatten() {
        let is_dir = entry.file_type().is_ok_and(|t| t.is_dir());
        let name = entry.file_name();
        let Some(pid) = name.to_str().and_then(|n| n.strip_prefix("deployer-")) else {
            continue;
        };
        let path = entry.path();
        if !is_dir
            || pid.parse::<u32>().is_err()
            || Path::new("/proc").join(pid).exists()
            || mounts.iter().any(|m| m.mount_point.starts_with(&path))
        {
            continue;
        }
        let Ok(dir) = File::open(&path) else {
            continue;
        };
        if let Ok(_unlocked) = Flock::lock(dir, FlockArg::LockExclusiveNonblock) {
            match std::fs::remove_dir_all(&path) {
                Ok(()) => crate::warn!(
                    "deployer: removed {}, left by a deployer that was killed",
                    path.display()
                ),
                Err(err) => crate::warn!("deployer: removing {}: {err}", path.display()),
            }
        }
    }
}
