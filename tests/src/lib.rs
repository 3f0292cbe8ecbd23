//! End-to-end test kit for the multi-image product.
//!
//! Everything here drives the real tools the product relies on, as root, on a machine
//! without udev: [`disk`] attaches disk images to loop devices and mounts them, [`node`]
//! builds a node's disk image with one shared GRUB on a `multiboot` partition and one
//! tiny busybox Linux per image ([`fixture`], booting with the small [`initramfs`]),
//! [`grubcfg`] writes the menus that the tests boot from, [`qemu`] boots a disk under
//! software emulation and reports which image came up, [`chain`] boots one disk several
//! times in a row and says which boot of the chain went wrong, and [`bootctl`] runs the
//! statically linked `bootctl` binary, the artifact that ships inside the images.
//! [`bareon`] builds a node disk the way Bareon makes one, for bootctl to manage.
//! [`manpage`] generates the man pages in `man/` and checks them, [`completion`] the shell
//! completion scripts in `packaging/completions/`, [`schema`] checks `--json` output against
//! the JSON Schemas in `docs/schema/`. [`http`] serves download sources on 127.0.0.1
//! (plain HTTP that can misbehave once, and HTTPS), on ports from [`net`]; [`rsyncd`] is
//! an rsync daemon; [`ipa`] speaks ironic-python-agent's REST API as Ironic does. [`deploy`]
//! writes provision.json configs of fixture images and the deployer's command line;
//! [`build`] makes the static and fault-injection builds the tests run; [`debian`] makes
//! real Debian 12 trees into images for the slow, opt-in tests.
//!
//! Helpers panic with a message that names the failing step: they are meant for tests.
//! Every resource they acquire (loop devices, mounts, QEMU processes, temporary
//! directories) is released by a guard's `Drop`, also when a test panics.

pub mod bareon;
pub mod bootctl;
pub mod build;
pub mod chain;
pub mod cmd;
pub mod completion;
pub mod debian;
pub mod deploy;
pub mod disk;
pub mod fixture;
pub mod grubcfg;
pub mod help;
pub mod http;
pub mod initramfs;
pub mod ipa;
pub mod manpage;
pub mod net;
pub mod node;
pub mod qemu;
pub mod ramdisk;
pub mod rsyncd;
pub mod schema;
pub mod tmp;
pub mod tools;

use std::path::{Path, PathBuf};

/// The workspace's root directory (the parent of this crate).
pub fn workspace_root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the tests crate lives inside the workspace")
}

/// `<workspace>/tests/artifacts`: logs kept after a run (git-ignored).
pub fn artifacts_dir() -> PathBuf {
    workspace_root().join("tests").join("artifacts")
}
