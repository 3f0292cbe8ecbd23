//! Command-line definition and dispatch. One definition drives parsing and `--help`.

use std::ffi::OsStr;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use clap::{Parser, Subcommand};
use clap_complete::engine::ValueCompleter;
use clap_complete::{ArgValueCompleter, CompletionCandidate, PathCompleter};
use nix::unistd::Uid;
use serde::Serialize;

use crate::apply::boot::BootloaderConfig;
use crate::deploy::{deploy, DeployOptions};
use crate::disk_ids::read::{block_devnum, read_machine};
use crate::disk_ids::{kind_name, resolve_disks, GivenDisk};
use crate::disks::disk_input;
use crate::exec::quote_command;
use crate::exit::Exit;
use crate::output::{self, Verbosity};
use crate::plan::{disk_requests, plan_layout, DiskInput, Layout, Plan, PlanError, RandomIds};
use crate::render::{
    deploy_json, plan_json, plan_text, terminal_width, DeployOutcome, JSON_VERSION,
};
use crate::text::{plural, quote};
use crate::validate::{check, ConfigError, JsonPath, Outcome};
use crate::ProvisionConfig;
use shared::bootinfo::BootInfo;

/// Deploy several OS images from a Bareon provision.json onto one node's disks.
#[derive(Debug, Parser)]
#[command(name = "deployer", version, about, long_about = None, after_help = AFTER_HELP)]
pub struct Cli {
    /// Also show every external command deploy runs: its command line, how long it took,
    /// its exit status and, when it failed, the end of its stderr.
    #[arg(short, long, global = true, conflicts_with = "quiet")]
    pub verbose: bool,

    /// Show only errors: no step lines, no progress.
    #[arg(short, long, global = true)]
    pub quiet: bool,

    #[command(subcommand)]
    pub command: Command,
}

impl Cli {
    /// What `-v` and `-q` ask for.
    pub fn verbosity(&self) -> Verbosity {
        match (self.verbose, self.quiet) {
            (true, _) => Verbosity::Verbose,
            (_, true) => Verbosity::Quiet,
            _ => Verbosity::Normal,
        }
    }
}

/// The exit statuses, shown by `--help` and `validate --help`.
macro_rules! exit_status {
    () => {
        "Exit status: 0 valid, 1 the config file or a disk cannot be read (or the output \
         cannot be written), 2 usage error, 3 invalid config, or it does not fit the disks."
    };
}

const AFTER_HELP: &str = concat!(
    "Examples:\n",
    "  deployer validate provision.json\n",
    "  deployer plan provision.json --disk vda=/dev/vda\n",
    "  deployer deploy provision.json --disk vda=/dev/vda\n",
    "  deployer -v deploy provision.json --disk vda=node.img --yes --log-file deploy.log\n\n",
    exit_status!(),
    "\nThose of deploy: deployer deploy --help."
);

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Check a provision.json and report every error with its JSON path
    ///
    /// Reads the config and touches nothing else. Every error is reported at once, one
    /// "PATH: message" line each on stderr, PATH being a JSON path such as
    /// `partitions[0].volumes[2].images[1]`; a valid config gets one summary line on stdout.
    #[command(after_help = VALIDATE_HELP)]
    Validate {
        /// The provision.json to check; "-" reads standard input.
        config: PathBuf,
        /// Print {"version": 1, "valid": BOOL, "errors": [{"path": PATH, "message": TEXT}],
        /// "warnings": [...]} on stdout instead.
        #[arg(long)]
        json: bool,
        /// Refuse keys that neither the deployer nor Bareon knows (by default each is a
        /// warning and ignored, as Bareon ignores them; a typo of a required key is always
        /// an error).
        #[arg(long)]
        strict: bool,
    },
    /// Show the partitions, filesystems, fstabs and boot layout a deploy would make
    ///
    /// Validates the config (errors as for validate), reads the size of every disk and,
    /// unless "partitions_policy" is "clean", what each disk holds (its partition table and
    /// filesystems, which the deploy may keep), and prints every disk's partition table
    /// (sizes in MiB; the UUIDs the deploy gives or keeps), each image's mounts and fstab,
    /// and the boot layout. Nothing is written and a missing disk-image file is not
    /// created: it is planned at the disk's "size" in the config. A disk the policy keeps
    /// but that is not as planned is a planning error, as deploy would refuse it.
    /// Planning errors are one "PATH: message" line each, PATH being the JSON path of the
    /// volume or disk, or "--disk NAME".
    #[command(after_help = PLAN_HELP)]
    Plan {
        /// The provision.json; "-" reads standard input.
        config: PathBuf,
        /// The disk the config calls NAME (its id value) is PATH: a block device or a
        /// disk-image file. Give every disk of the config once, or find the others with
        /// --resolve-disks.
        #[arg(long = "disk", value_name = "NAME=PATH", value_parser = parse_disk_arg)]
        #[arg(add = ArgValueCompleter::new(complete_disk_arg))]
        disks: Vec<(String, PathBuf)>,
        /// Find every disk of the config that no --disk gives on this machine, through its
        /// id as Bareon does: "name" sda is /dev/sda; "path" is the device's node or one of
        /// udev's links under /dev/disk ("disk/by-path/...", "/dev/disk/by-id/..."); "scsi"
        /// H:C:T:L is the disk at that SCSI address (/sys/class/scsi_device). Without udev
        /// (no /dev/disk, as in the deploy ramdisk) path ids match the links derived from
        /// sysfs as udev names them: by-path of PCI virtio, SCSI, ATA and NVMe disks, by-id
        /// virtio-SERIAL and nvme-WWID. An id that names no device, or several, a partition, a
        /// read-only or an empty device, or one --disk gives, is an error (status 3). Never
        /// implied: on a workstation "sda" is its own disk.
        #[arg(long)]
        resolve_disks: bool,
        /// Print the whole plan as JSON, with "version": 1; errors are printed as by
        /// validate --json, planning errors naming "path" or "disk".
        #[arg(long)]
        json: bool,
        /// Refuse keys that neither the deployer nor Bareon knows (by default each is a
        /// warning and ignored, as Bareon ignores them; a typo of a required key is always
        /// an error).
        #[arg(long)]
        strict: bool,
        /// The implicit partitions: "default" (on the first disk a 1 MiB bios_grub
        /// partition, a 64 MiB ESP and the 100 MiB multiboot partition; BIOS and UEFI) or
        /// "bareon", Bareon's (a 24 MiB bios_grub partition at the head of every disk, the
        /// multiboot partition on the first, no ESP: BIOS only; every partition where
        /// Bareon puts it), which needs two images or more. Unless given: the default,
        /// or under a policy that keeps the tables Bareon's when the first disk holds it
        /// and the config has two images or more.
        #[arg(long, value_enum, value_name = "LAYOUT")]
        layout: Option<Layout>,
    },
    /// Partition the disks, deploy every image and install one GRUB for all of them
    ///
    /// Validates and plans as plan does, then refuses (status 3, before any write) what
    /// this host cannot apply: LVM or RAID on a kernel without device-mapper or md (the
    /// deploy ramdisk has both), an image on LVM or RAID whose initramfs holds no lvm or
    /// mdadm, a missing or dynamically linked bootctl binary, an image source that is missing or does not answer, a file of unknown
    /// format (tar, tar.gz, tar.xz, tar.zst, raw ext2/3/4 or xfs image and qcow2 are
    /// known, by content), a raw or qcow2 image that does not fit its partition, a
    /// download without "sha256", disks that are in use. "partitions_policy": "verify"
    /// (the default, as in Bareon) keeps the disks' partition tables and the filesystems
    /// whose volume keeps its data ("keep_data", true by default), making the others
    /// anew: a disk whose table or kept filesystem is not as planned is refused with its
    /// first difference. A kept filesystem is never written: an image whose / keeps its
    /// data is not deployed again (its fstab stays as the user left it). "clean"
    /// partitions and formats the disks anew. On a terminal it
    /// shows the plan and asks before destroying anything, unless --yes. A disk-image
    /// file that does not exist is created at the disk's planned size. HTTP sources are
    /// downloaded into a private directory under $TMPDIR (else /tmp), one image at a
    /// time, and their checksum verified; they go through the proxy of http_proxy
    /// (http://) or https_proxy (https://), except to the hosts of no_proxy (with their
    /// subdomains; "*" for all), as curl does. A deploy that fails after the first write wipes
    /// the new partition tables (unless --preserve-on-error; a kept table is never
    /// wiped), names the failed step and exits with status 1.
    #[command(after_help = DEPLOY_HELP)]
    Deploy {
        /// The provision.json; "-" reads standard input.
        config: PathBuf,
        /// The disk the config calls NAME (its id value) is PATH: a block device or a
        /// disk-image file. Give every disk of the config once, or find the others with
        /// --resolve-disks.
        #[arg(long = "disk", value_name = "NAME=PATH", value_parser = parse_disk_arg)]
        #[arg(add = ArgValueCompleter::new(complete_disk_arg))]
        disks: Vec<(String, PathBuf)>,
        /// Find every disk of the config that no --disk gives on this machine, through its
        /// id as Bareon does: "name" sda is /dev/sda; "path" is the device's node or one of
        /// udev's links under /dev/disk ("disk/by-path/...", "/dev/disk/by-id/..."); "scsi"
        /// H:C:T:L is the disk at that SCSI address (/sys/class/scsi_device). Without udev
        /// (no /dev/disk, as in the deploy ramdisk) path ids match the links derived from
        /// sysfs as udev names them: by-path of PCI virtio, SCSI, ATA and NVMe disks, by-id
        /// virtio-SERIAL and nvme-WWID. An id that names no device, or several, a partition, a
        /// read-only or an empty device, or one --disk gives, is an error (status 3). Never
        /// implied: on a workstation "sda" is its own disk.
        #[arg(long)]
        resolve_disks: bool,
        /// Where to write boot-info.json besides the multiboot partition and the images;
        /// a copy goes beside it as boot_entries.json, the name Bareon's agent writes and
        /// bareon-ironic reads (/tmp/boot_entries.json by default).
        #[arg(long, value_name = "PATH", default_value = "/tmp/boot-info.json")]
        boot_info: PathBuf,
        /// The static bootctl installed into every image at /usr/sbin/bootctl (a
        /// dynamically linked one is refused); by default the file "bootctl" next to the
        /// deployer executable, else the static build packaging/build-static-bootctl
        /// makes in the same cargo target directory.
        #[arg(long, value_name = "PATH")]
        bootctl: Option<PathBuf>,
        /// Do not ask before destroying the disks' data (needed without a terminal).
        #[arg(long)]
        yes: bool,
        /// On failure, leave the disks as they are for debugging instead of wiping the
        /// new partition tables.
        #[arg(long)]
        preserve_on_error: bool,
        /// Where grub.cfg comes from: "generated" by the deployer (one entry per image,
        /// default in grubenv), or "os-prober": grub-mkconfig with os-prober, the
        /// specification's flow, limited to the deployed disks.
        #[arg(long, value_enum, value_name = "MODE", default_value_t)]
        bootloader_config: BootloaderConfig,
        /// The implicit partitions: "default" (on the first disk a 1 MiB bios_grub
        /// partition, a 64 MiB ESP and the 100 MiB multiboot partition; BIOS and UEFI) or
        /// "bareon", Bareon's (a 24 MiB bios_grub partition at the head of every disk, the
        /// multiboot partition on the first, no ESP: BIOS only; every partition where
        /// Bareon puts it), which needs two images or more. Unless given: the default,
        /// or under a policy that keeps the tables Bareon's when the first disk holds it
        /// and the config has two images or more.
        #[arg(long, value_enum, value_name = "LAYOUT")]
        layout: Option<Layout>,

        /// How long GRUB shows its menu before it boots the default, in seconds: 0 boots
        /// at once (headless fleets), more leaves time to pick an image at the console.
        #[arg(long, value_name = "SECONDS", default_value_t = 5,
              value_parser = clap::value_parser!(u32).range(0..=3600))]
        grub_timeout: u32,
        /// Download http:// and https:// images that have no "sha256" in the config
        /// (refused otherwise). TLS certificates are verified all the same.
        #[arg(long)]
        allow_unverified_downloads: bool,
        /// Also trust the CA certificates of FILE (PEM) for https:// images, besides the
        /// Mozilla roots built into the deployer: an image server behind a private CA.
        #[arg(long, value_name = "FILE")]
        cacert: Option<PathBuf>,
        /// Also write every step line, progress line and external command (as -v shows
        /// them, whatever -v or -q say) to PATH, each with the seconds since the start.
        #[arg(long, value_name = "PATH")]
        log_file: Option<PathBuf>,
        /// At the end, print a summary for scripts on stdout: {"version": 1, "exit": N,
        /// "deployed": BOOL, "disks": [...], "images": [...], "boot_info": PATH or null,
        /// "errors": [...], "failed_step": STEP or null, ...}; see deployer(8).
        #[arg(long)]
        json: bool,
        /// Refuse keys that neither the deployer nor Bareon knows (by default each is a
        /// warning and ignored, as Bareon ignores them; a typo of a required key is always
        /// an error).
        #[arg(long)]
        strict: bool,
    },
}

const DEPLOY_HELP: &str = concat!(
    "Examples:\n",
    "  deployer deploy provision.json --disk vda=/dev/vda\n",
    "  deployer deploy provision.json --disk vda=node.img --yes --boot-info node-boot-info.json\n",
    "  deployer -q deploy provision.json --disk vda=/dev/sda --yes --json --log-file deploy.log\n",
    "  deployer deploy provision.json --resolve-disks --yes    (on the node, as the ramdisk does)\n\n",
    "Exit status: 0 deployed, 1 a step failed (the disks' partition tables were wiped), \
     2 usage error or no confirmation possible, 3 invalid config, it does not fit the \
     disks, or this host cannot deploy it, 4 not run as root."
);

const PLAN_HELP: &str = concat!(
    "Examples:\n",
    "  deployer plan provision.json --disk vda=/dev/vda\n",
    "  deployer plan provision.json --disk vda=disk.img --json | jq .boot\n",
    "  deployer plan provision.json --resolve-disks    (the disks of this machine, by their ids)\n\n",
    exit_status!()
);

fn parse_disk_arg(arg: &str) -> Result<(String, PathBuf), String> {
    match arg.split_once('=') {
        Some((name, path)) if !name.is_empty() && !path.is_empty() => {
            Ok((name.to_string(), PathBuf::from(path)))
        }
        _ => Err(format!(
            "expected NAME=PATH, such as vda=/dev/vda, not {arg:?}"
        )),
    }
}

/// Shell completion of `--disk NAME=PATH`: once `NAME=` is typed, PATH as a path.
fn complete_disk_arg(current: &OsStr) -> Vec<CompletionCandidate> {
    let Some((name, path)) = current.to_str().and_then(|arg| arg.split_once('=')) else {
        return Vec::new();
    };
    PathCompleter::any()
        .complete(OsStr::new(path))
        .into_iter()
        .map(|candidate| candidate.add_prefix(format!("{name}=")))
        .collect()
}

const VALIDATE_HELP: &str = concat!(
    "Examples:\n",
    "  deployer validate provision.json\n",
    "  deployer validate --json provision.json | jq -r '.errors[].path'\n\n",
    exit_status!()
);

/// Runs a parsed command line and returns the exit status. Usage errors (status 2) are
/// clap's, before this runs.
pub fn run(cli: &Cli) -> ExitCode {
    let log_file = match &cli.command {
        Command::Deploy { log_file, .. } => log_file.as_deref(),
        _ => None,
    };
    if let Err(err) = output::init(cli.verbosity(), log_file, &command_line()) {
        crate::error!("deployer: {err:#}");
        return Exit::Failure.into();
    }
    match &cli.command {
        Command::Validate {
            config,
            json,
            strict,
        } => validate_command(config, *json, *strict).into(),
        Command::Plan {
            config,
            disks,
            resolve_disks,
            json,
            strict,
            layout,
        } => plan_command(config, disks, *resolve_disks, *layout, *json, *strict).into(),
        Command::Deploy {
            config,
            disks,
            resolve_disks,
            boot_info,
            bootctl,
            yes,
            preserve_on_error,
            bootloader_config,
            layout,
            grub_timeout,
            allow_unverified_downloads,
            cacert,
            log_file: _,
            json,
            strict,
        } => {
            // With the disks --resolve-disks finds, for the summary.
            let mut disks = disks.clone();
            let exit = if !Uid::effective().is_root() {
                crate::error!(
                    "deployer: deploy must be run as root (it partitions disks and mounts \
                     filesystems); validate and plan need no privileges"
                );
                Exit::NotRoot
            } else {
                match load_plan(config, &mut disks, *resolve_disks, *layout, false, *strict) {
                    Ok(plan) => {
                        let options = DeployOptions {
                            boot_info: boot_info.clone(),
                            bootctl: bootctl.clone(),
                            yes: *yes,
                            preserve_on_error: *preserve_on_error,
                            bootloader_config: *bootloader_config,
                            grub_timeout: *grub_timeout,
                            allow_unverified_downloads: *allow_unverified_downloads,
                            cacert: cacert.clone(),
                        };
                        deploy(&plan, &options)
                    }
                    Err(exit) => exit,
                }
            };
            let exit = if *json {
                deploy_summary(exit, &disks, boot_info)
            } else {
                exit
            };
            output::log(format_args!("deployer: exit status {}", exit as u8));
            exit.into()
        }
    }
}

/// The command line, shell-quoted, for the log.
fn command_line() -> String {
    let argv: Vec<std::ffi::OsString> = std::env::args_os().collect();
    quote_command(&argv)
}

fn print_json(value: &impl Serialize) -> std::io::Result<()> {
    let mut out = std::io::stdout().lock();
    serde_json::to_writer_pretty(&mut out, value)?;
    writeln!(out)
}

/// Prints `deploy --json`'s summary of a deploy that ended with `exit`: after a deploy,
/// the images as the boot-info.json it wrote at `boot_info` says. Returns the exit status,
/// 1 when the summary cannot be made.
fn deploy_summary(exit: Exit, disks: &[(String, PathBuf)], boot_info: &Path) -> Exit {
    let written = if exit == Exit::Success {
        let read = std::fs::read_to_string(boot_info)
            .map_err(anyhow::Error::from)
            .and_then(|text| Ok(BootInfo::from_json(&text)?));
        match read {
            Ok(info) => Some(info),
            Err(err) => {
                crate::error!("deployer: reading back {}: {err:#}", boot_info.display());
                return Exit::Failure;
            }
        }
    } else {
        None
    };
    let errors = output::errors();
    let failed_step = output::failed_step();
    let summary = deploy_json(&DeployOutcome {
        exit: exit as u8,
        disks,
        boot_info: written.as_ref().map(|info| (boot_info, info)),
        errors: &errors,
        failed_step: failed_step.as_deref(),
        timings: &crate::timing::timings(),
    });
    match print_json(&summary) {
        Ok(()) => exit,
        Err(err) => {
            crate::error!("deployer: cannot write the summary: {err}");
            Exit::Failure
        }
    }
}

#[derive(Serialize)]
struct Report<'a> {
    version: u32,
    valid: bool,
    errors: &'a [ConfigError],
    warnings: &'a [ConfigError],
}

fn read_config(path: &Path) -> anyhow::Result<Vec<u8>> {
    if path == Path::new("-") {
        let mut bytes = Vec::new();
        std::io::stdin()
            .read_to_end(&mut bytes)
            .context("cannot read standard input")?;
        return Ok(bytes);
    }
    std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))
}

/// Reads and validates the config; `None` when it cannot be read (already reported).
fn load_config(path: &Path, strict: bool) -> Option<Outcome> {
    let bytes = match read_config(path) {
        Ok(bytes) => bytes,
        Err(err) => {
            crate::error!("deployer: {err:#}");
            return None;
        }
    };
    Some(match String::from_utf8(bytes) {
        Ok(text) => check(&text, strict),
        Err(err) => Outcome {
            result: Err(vec![ConfigError {
                path: JsonPath::root(),
                message: format!(
                    "the file is not UTF-8 text (invalid byte at offset {})",
                    err.utf8_error().valid_up_to()
                ),
            }]),
            warnings: Vec::new(),
        },
    })
}

/// The config's warnings, one `warning: PATH: message` line each.
fn show_warnings(warnings: &[ConfigError]) {
    for warning in warnings {
        crate::warn!("warning: {warning}");
    }
}

fn validate_command(path: &Path, json: bool, strict: bool) -> Exit {
    let Some(outcome) = load_config(path, strict) else {
        return Exit::Failure;
    };
    if !json {
        show_warnings(&outcome.warnings);
    }
    if let Err(err) = report(path, &outcome, json) {
        crate::error!("deployer: cannot write the report: {err}");
        return Exit::Failure;
    }
    if outcome.result.is_ok() {
        Exit::Success
    } else {
        Exit::Invalid
    }
}

/// Reads, validates and plans (`disk_args` gets the disks `resolve` finds); errors are
/// reported (as JSON with `json`) and become the exit status.
fn load_plan(
    path: &Path,
    disk_args: &mut Vec<(String, PathBuf)>,
    resolve: bool,
    layout: Option<Layout>,
    json: bool,
    strict: bool,
) -> Result<Plan, Exit> {
    let Some(outcome) = load_config(path, strict) else {
        return Err(Exit::Failure);
    };
    show_warnings(&outcome.warnings);
    let config = match outcome.result {
        Ok(config) => config,
        Err(errors) => {
            let outcome = Outcome {
                result: Err(errors),
                warnings: Vec::new(),
            };
            return Err(match report(path, &outcome, json) {
                Ok(()) => Exit::Invalid,
                Err(err) => {
                    crate::error!("deployer: cannot write the report: {err}");
                    Exit::Failure
                }
            });
        }
    };
    if resolve {
        resolve_disk_args(&config, disk_args, json)?;
    }
    let requests =
        disk_requests(&config, disk_args).map_err(|errors| plan_errors(&errors, json))?;
    let mut disks: Vec<DiskInput> = Vec::new();
    for request in &requests {
        match disk_input(request) {
            Ok(disk) => disks.push(disk),
            Err(err) => {
                crate::error!("deployer: --disk {}: {err}", request.name);
                return Err(Exit::Failure);
            }
        }
    }
    plan_layout(&config, &disks, layout, &mut RandomIds)
        .map_err(|errors| plan_errors(&errors, json))
}

/// `--resolve-disks`: appends to `disk_args` every disk of the config that they do not
/// give, found on this machine through its id.
fn resolve_disk_args(
    config: &ProvisionConfig,
    disk_args: &mut Vec<(String, PathBuf)>,
    json: bool,
) -> Result<(), Exit> {
    let machine = read_machine(Path::new("/sys"), Path::new("/dev")).map_err(|err| {
        crate::error!("deployer: --resolve-disks: cannot read the block devices: {err}");
        Exit::Failure
    })?;
    let given: Vec<GivenDisk> = disk_args
        .iter()
        .map(|(name, path)| GivenDisk {
            name: name.clone(),
            devnum: block_devnum(path),
        })
        .collect();
    let found =
        resolve_disks(config, &given, &machine).map_err(|errors| plan_errors(&errors, json))?;
    for disk in found {
        crate::info!(
            "deployer: disk {} ({} id) is {}",
            quote(&disk.name),
            kind_name(disk.kind),
            disk.path.display()
        );
        disk_args.push((disk.name, disk.path));
    }
    Ok(())
}

fn plan_command(
    path: &Path,
    disk_args: &[(String, PathBuf)],
    resolve: bool,
    layout: Option<Layout>,
    json: bool,
    strict: bool,
) -> Exit {
    let mut disk_args = disk_args.to_vec();
    let plan = match load_plan(path, &mut disk_args, resolve, layout, json, strict) {
        Ok(plan) => plan,
        Err(exit) => return exit,
    };
    let written = if json {
        let mut out = std::io::stdout().lock();
        serde_json::to_writer_pretty(&mut out, &plan_json(&plan))
            .map_err(std::io::Error::from)
            .and_then(|()| writeln!(out))
    } else {
        write!(std::io::stdout(), "{}", plan_text(&plan, terminal_width()))
    };
    match written {
        Ok(()) => Exit::Success,
        Err(err) => {
            crate::error!("deployer: cannot write the plan: {err}");
            Exit::Failure
        }
    }
}

#[derive(Serialize)]
struct PlanErrorReport<'a> {
    version: u32,
    errors: &'a [PlanError],
}

fn plan_errors(errors: &[PlanError], json: bool) -> Exit {
    let written = if json {
        let mut out = std::io::stdout().lock();
        let report = PlanErrorReport {
            version: JSON_VERSION,
            errors,
        };
        serde_json::to_writer_pretty(&mut out, &report)
            .map_err(std::io::Error::from)
            .and_then(|()| writeln!(out))
    } else {
        errors.iter().for_each(|error| crate::error!("{error}"));
        Ok(())
    };
    match written {
        Ok(()) => Exit::Invalid,
        Err(err) => {
            crate::error!("deployer: cannot write the report: {err}");
            Exit::Failure
        }
    }
}

fn report(path: &Path, outcome: &Outcome, json: bool) -> std::io::Result<()> {
    let result = &outcome.result;
    if json {
        let report = Report {
            version: 1,
            valid: result.is_ok(),
            errors: result.as_ref().err().map_or(&[][..], Vec::as_slice),
            warnings: &outcome.warnings,
        };
        let mut out = std::io::stdout().lock();
        serde_json::to_writer_pretty(&mut out, &report)?;
        return writeln!(out);
    }
    match result {
        Ok(config) => writeln!(
            std::io::stdout(),
            "{}: valid: {}, {}, {}",
            path.display(),
            plural(config.images.len(), "image"),
            plural(config.disks().count(), "disk"),
            plural(config.volume_count(), "volume"),
        ),
        Err(errors) => {
            errors.iter().for_each(|error| crate::error!("{error}"));
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn the_command_line_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn usage_errors_are_clap_status_2() {
        let err = Cli::try_parse_from(["deployer", "validate"]).unwrap_err();
        assert_eq!(err.exit_code(), 2);
        let cli = Cli::try_parse_from(["deployer", "validate", "--json", "x.json"]).unwrap();
        let Command::Validate { config, json, .. } = cli.command else {
            panic!("not validate")
        };
        assert_eq!(config, PathBuf::from("x.json"));
        assert!(json);
    }

    #[test]
    fn disks_are_name_equals_path() {
        let cli = Cli::try_parse_from([
            "deployer",
            "plan",
            "p.json",
            "--disk",
            "vda=/tmp/a=b.img",
            "--disk=sdb=/dev/sdb",
        ])
        .unwrap();
        let Command::Plan { disks, json, .. } = cli.command else {
            panic!("not plan")
        };
        assert!(!json);
        assert_eq!(
            disks,
            [
                ("vda".to_string(), PathBuf::from("/tmp/a=b.img")),
                ("sdb".to_string(), PathBuf::from("/dev/sdb"))
            ]
        );
        for bad in ["vda", "=x", "vda="] {
            let err = Cli::try_parse_from(["deployer", "plan", "p.json", "--disk", bad]);
            assert_eq!(err.unwrap_err().exit_code(), 2, "{bad}");
        }
    }
}
