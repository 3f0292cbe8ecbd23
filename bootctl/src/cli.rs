//! Command-line definition. One definition drives parsing, `--help` and the man page.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};
use clap_complete::ArgValueCandidates;

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
lock), 130 interrupted.";

/// Where the multiboot partition is. Without any of these, bootctl reads the partition's
/// UUID from /etc/multiboot/boot-info.json, else looks for the filesystem labelled
/// `multiboot`.
#[derive(Debug, Default, Args)]
#[group(multiple = false)]
pub struct SourceArgs {
    /// Filesystem UUID of the multiboot partition.
    #[arg(long, value_name = "UUID", global = true)]
    pub multiboot: Option<String>,

    /// A disk-image file: attach it through a loop device and use its multiboot partition.
    #[arg(long, value_name = "IMAGE", global = true)]
    pub disk: Option<PathBuf>,

    /// A multiboot filesystem that is already mounted (its root, holding boot/grub/grub.cfg).
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
        after_help = "Examples:\n  bootctl switch ubuntu\n  bootctl switch --once 0\n  bootctl switch --dry-run --json centos"
    )]
    Switch {
        /// Image name, GRUB index, menu entry id or title.
        #[arg(add = ArgValueCandidates::new(crate::complete::image_names))]
        target: Option<String>,
        /// Boot TARGET at the next boot only; GRUB clears the choice as it boots.
        #[arg(long)]
        once: bool,
        /// Show what would change and change nothing.
        #[arg(long)]
        dry_run: bool,
        /// Machine-readable output (see bootctl(8) for the shape).
        #[arg(long)]
        json: bool,
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
