//! Command-line definition. One definition drives parsing, `--help` and the man page.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};
use clap_complete::ArgValueCandidates;
use shared::grubcfg::MAX_TRIES;

/// List the images of a multi-image node and choose which one boots next.
#[derive(Debug, Parser)]
#[command(name = "bootctl", version, about, long_about = None, after_help = AFTER_HELP)]
pub struct Cli {
    #[command(flatten)]
    pub source: SourceArgs,

    /// Also say which multiboot partition was used: its UUID, device and mount point.
    #[arg(short, long, global = true, conflicts_with = "quiet")]
    pub verbose: bool,

    /// Print only errors and what was asked for: switch prints nothing unless --json, and
    /// leftovers of an interrupted bootctl are removed without a word.
    #[arg(short, long, global = true)]
    pub quiet: bool,

    #[command(subcommand)]
    pub command: Command,
}

const AFTER_HELP: &str = "\
Examples:
  bootctl list                    the boot entries and which one runs, boots by default, boots next
  bootctl switch centos           boot the image named centos from the next reboot on
  bootctl switch --once 2         boot GRUB entry 2 at the next reboot only
  bootctl --disk node.img list    inspect a disk-image file offline
  bootctl -q switch ubuntu && reboot

Exit status: 0 ok, 1 I/O or other error, 2 usage, 3 target not found or ambiguous,
4 multiboot partition not found, 5 permission denied (must be root), 6 grub.cfg, grubenv or
boot-info.json unreadable or unable to do what was asked, 7 busy (another bootctl holds the
lock), 8 a health check failed, 130 interrupted.";

/// Where the multiboot partition is. Without any of these, bootctl reads the partition's
/// UUID from /etc/multiboot/boot-info.json (where no device holds it: says so and goes
/// on), else looks for the filesystem labelled
/// `multiboot`, else (a node Bareon deployed) for the filesystem whose boot/grub or
/// boot/grub2 grub.cfg boots the running root.
#[derive(Debug, Default, Args)]
#[group(multiple = false)]
pub struct SourceArgs {
    /// Filesystem UUID of the multiboot partition.
    #[arg(long, value_name = "UUID", global = true)]
    pub multiboot: Option<String>,

    /// A disk-image file: attach it through a loop device and use its multiboot partition.
    #[arg(long, value_name = "IMAGE", global = true)]
    pub disk: Option<PathBuf>,

    /// A multiboot filesystem that is already mounted (its root, holding boot/grub/grub.cfg
    /// or boot/grub2/grub.cfg).
    #[arg(long, value_name = "DIR", global = true)]
    pub boot_dir: Option<PathBuf>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Show the boot entries: which entry runs now, boots by default and boots next, GRUB
    /// index, image, OS, the start of the root UUID and title, in a table that fits the
    /// terminal (80 columns when it is not one); --json adds the ids and whole UUIDs.
    #[command(
        after_help = "Example:\n  bootctl list --json | jq -r '.entries[] | select(.default) | .image_name'"
    )]
    List {
        /// Machine-readable output (see bootctl(8) for the shape).
        #[arg(long)]
        json: bool,
    },
    /// Show the running image, the default, the next boot, how this grub.cfg chooses the
    /// default, and the multiboot partition.
    #[command(after_help = "Example:\n  bootctl status --json")]
    Status {
        /// Machine-readable output (see bootctl(8) for the shape).
        #[arg(long)]
        json: bool,
    },
    /// Choose the entry GRUB boots: an image name, a GRUB index ("2", "1>0"), a menu entry id
    /// or a title. Without TARGET on a terminal, pick from a list.
    #[command(
        after_help = "Examples:\n  bootctl switch ubuntu\n  bootctl switch --once 0\n  bootctl switch --try=2 centos\n  bootctl switch --dry-run --json centos"
    )]
    Switch {
        #[command(flatten)]
        choice: Choice,
        /// Show what would change and change nothing.
        #[arg(long)]
        dry_run: bool,
        /// Machine-readable output (see bootctl(8) for the shape).
        #[arg(long)]
        json: bool,
    },
    /// Confirm a trial boot of the running image: it becomes the default and the trial ends.
    /// Without a trial of the running image, nothing changes.
    #[command(after_help = "Example:\n  bootctl mark-good --json")]
    MarkGood {
        /// Machine-readable output (see bootctl(8) for the shape).
        #[arg(long)]
        json: bool,
    },
    /// End the trial of the running image now: the next boot is the default again.
    #[command(after_help = "Example:\n  bootctl mark-bad && bootctl reboot")]
    MarkBad {
        /// Machine-readable output (see bootctl(8) for the shape).
        #[arg(long)]
        json: bool,
    },
    /// Run the checks in /etc/multiboot/health.d/; if all pass, mark-good. If one fails while
    /// the running image is on trial, mark-bad and reboot into the default.
    #[command(
        after_help = "Example:\n  bootctl health --no-reboot\n\nExit status 8: a check failed. \
                      Images with systemd run this from multiboot-health.service; others call \
                      `bootctl health` once the system is up."
    )]
    Health {
        /// After a failed check of a trial, do not reboot (the next boot falls back anyway).
        #[arg(long)]
        no_reboot: bool,
        /// How long one check may run, in seconds, before it counts as failed.
        #[arg(long, value_name = "SECONDS", default_value_t = 300)]
        timeout: u64,
    },
    /// Switch (when TARGET is given), then reboot: `systemctl reboot` where systemd runs,
    /// else sync and reboot(2). No reboot when the switch fails.
    #[command(
        after_help = "Examples:\n  bootctl reboot --once centos\n  bootctl reboot --try ubuntu\n  bootctl reboot"
    )]
    Reboot {
        #[command(flatten)]
        choice: Choice,
        /// Show what would change and neither change nor reboot.
        #[arg(long)]
        dry_run: bool,
    },
    /// Point the running image's entries at its newest kernel in /boot, after its package
    /// manager installed or removed a kernel (the kernel hooks run this). Only that image's
    /// entries change: its own entry boots the newest kernel, its other entries keep theirs
    /// while that file is in /boot.
    #[command(
        after_help = "Examples:\n  bootctl refresh\n  bootctl refresh --dry-run\n  bootctl --disk node.img refresh --root /mnt/image"
    )]
    Refresh {
        /// Refresh the image whose root is mounted at DIR instead of the running one: its
        /// kernels are in DIR/boot, its entries those of the filesystem mounted at DIR (else
        /// of the / line of DIR/etc/fstab). Offline, with --disk or --boot-dir.
        #[arg(long, value_name = "DIR")]
        root: Option<PathBuf>,
        /// Show what would change and change nothing.
        #[arg(long)]
        dry_run: bool,
        /// Machine-readable output (see bootctl(8) for the shape).
        #[arg(long)]
        json: bool,
    },
}

/// What to boot, and how: the arguments `switch` and `reboot` share.
#[derive(Debug, Args)]
pub struct Choice {
    /// Image name, GRUB index, menu entry id or title.
    #[arg(add = ArgValueCandidates::new(crate::complete::image_names))]
    pub target: Option<String>,
    /// Boot TARGET at the next boot only; GRUB clears the choice as it boots.
    #[arg(long, conflicts_with = "tries")]
    pub once: bool,
    /// Try TARGET for the next N boots (1 when N is not given) while the default stays; the
    /// image confirms with `bootctl mark-good` (or the health unit), else GRUB goes back to
    /// the default by itself.
    #[arg(
        long = "try",
        id = "tries",
        value_name = "N",
        num_args = 0..=1,
        require_equals = true,
        default_missing_value = "1",
        value_parser = clap::value_parser!(u32).range(1..=i64::from(MAX_TRIES))
    )]
    pub tries: Option<u32>,
    /// Do --once or --try even though GRUB did not record this boot in grubenv.
    #[arg(long)]
    pub force: bool,
}
