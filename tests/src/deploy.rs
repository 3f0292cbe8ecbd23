//! What the deployer's tests give `deployer deploy`: a provision.json for fixture images,
//! and the command line that deploys one onto disk `vda`.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

use serde_json::Value;

use crate::bootctl::static_bootctl;
use crate::fixture::{write_image_trees, FixtureImage};
use crate::tmp::TempDir;

/// Where [`write_images_config`] mounts the partition that images share.
pub const SHARED_MOUNT: &str = "/usr/share/common";

/// Writes the tree of every image of `images` into `dir` and `dir/provision.json`, which
/// deploys each onto an ext4 `/` of 160 MiB of its own on disk `vda`, `default` booting
/// by default, the images named in `shared` (if any) sharing a 32 MiB ext4 partition at
/// [`SHARED_MOUNT`], with `kernel_params`; the disk is `spare_mib` MiB besides the roots.
/// Returns the config's path.
pub fn write_images_config(
    dir: &Path,
    images: &[&FixtureImage],
    default: &str,
    shared: &[&str],
    kernel_params: &str,
    spare_mib: usize,
) -> PathBuf {
    write_image_trees(dir, images);
    let entries: Vec<serde_json::Value> = images
        .iter()
        .map(|image| {
            serde_json::json!({
                "name": image.name, "image_name": image.image_name,
                "image_uuid": image.image_uuid, "image_pull_url": dir.join(&image.name),
                "target": "/", "boot": image.name == default
            })
        })
        .collect();
    let mut volumes: Vec<serde_json::Value> = images
        .iter()
        .map(|image| {
            serde_json::json!({
                "type": "partition", "mount": "/", "size": "160", "images": [image.name],
                "file_system": "ext4"
            })
        })
        .collect();
    if !shared.is_empty() {
        volumes.push(serde_json::json!({
            "type": "partition", "mount": SHARED_MOUNT, "size": "32", "images": shared,
            "file_system": "ext4"
        }));
    }
    let config = serde_json::json!({
        "images": entries,
        "partitions": [{
            "type": "disk", "id": {"type": "name", "value": "vda"},
            "size": format!("{} MiB", spare_mib + 160 * images.len()),
            "volumes": volumes
        }],
        "partitions_policy": "clean",
        "deploy_data": {"kernel_params": kernel_params}
    });
    let path = dir.join("provision.json");
    std::fs::write(&path, config.to_string())
        .unwrap_or_else(|e| panic!("writing {}: {e}", path.display()));
    path
}

/// The provision.json at `path` (one [`write_images_config`] wrote), to change before use.
pub fn read_config(path: &Path) -> Value {
    let text = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_slice(&text).unwrap_or_else(|e| panic!("{}: not JSON: {e}", path.display()))
}

/// `DEPLOYER deploy CONFIG --disk vda=DISK --bootctl STATIC --boot-info BOOT_INFO --yes
/// --grub-timeout 0` with stdin closed, the static bootctl ([`static_bootctl`]) going into
/// the images; a caller adds arguments or environment and runs it. No test presses a key
/// at GRUB's menu: it boots at once, which spares every QEMU boot five seconds.
pub fn deploy_command(deployer: &Path, config: &Path, disk: &Path, boot_info: &Path) -> Command {
    let mut deploy = Command::new(deployer);
    deploy
        .arg("deploy")
        .arg(config)
        .arg("--disk")
        .arg(format!("vda={}", disk.display()))
        .arg("--bootctl")
        .arg(static_bootctl())
        .arg("--boot-info")
        .arg(boot_info)
        .arg("--yes")
        .args(["--grub-timeout", "0"])
        .stdin(Stdio::null());
    deploy
}

/// A provision.json deploying the one image `image` (its entry in `images`) onto disk
/// `vda` of `disk_size` (as the config writes it: `"400 MiB"`) holding `volumes`, with
/// `partitions_policy` clean.
pub fn one_image_config(
    image: serde_json::Value,
    disk_size: &str,
    volumes: serde_json::Value,
) -> serde_json::Value {
    serde_json::json!({
        "images": [image],
        "partitions": [{
            "type": "disk", "id": {"type": "name", "value": "vda"}, "size": disk_size,
            "volumes": volumes
        }],
        "partitions_policy": "clean"
    })
}

/// A disk-image file made by `deployer deploy` from fixture images.
pub struct DeployedNode {
    /// Holds the image trees, the config and the disk; removed at the end.
    pub scratch: TempDir,
    pub disk: PathBuf,
    /// The multiboot partition's filesystem UUID, from the deployer's boot-info.json.
    pub multiboot_uuid: String,
    /// The boot-info.json the deployer wrote at `--boot-info`.
    pub boot_info: Value,
}

/// Writes the trees of `images` and their config ([`write_images_config`], 240 MiB spare)
/// into a new directory named after `label`, and runs `deployer` (the binary at that path)
/// on a new disk-image file with `extra_args`; panics with its output if it fails.
pub fn deploy_node(
    deployer: &Path,
    label: &str,
    images: &[&FixtureImage],
    default: &str,
    shared: &[&str],
    kernel_params: &str,
    extra_args: &[&str],
) -> DeployedNode {
    let scratch = TempDir::new(label);
    let config_path =
        write_images_config(scratch.path(), images, default, shared, kernel_params, 240);
    let disk = scratch.join("node.img");
    let boot_info = scratch.join("boot-info.json");
    let started = Instant::now();
    let mut deploy = deploy_command(deployer, &config_path, &disk, &boot_info);
    deploy.args(extra_args);
    let out = deploy.output().expect("running deployer");
    assert!(
        out.status.success(),
        "{label}: `{}` failed with {}\n--- stdout\n{}--- stderr\n{}",
        crate::cmd::describe(&deploy),
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    eprintln!("{label}: deploy took {:.1?}", started.elapsed());
    let info: Value = serde_json::from_slice(&std::fs::read(&boot_info).expect("boot-info.json"))
        .expect("boot-info.json is JSON");
    let multiboot_uuid = info["multiboot_partition"]
        .as_str()
        .unwrap_or_else(|| panic!("boot-info.json has no multiboot_partition: {info}"))
        .to_owned();
    DeployedNode {
        scratch,
        disk,
        multiboot_uuid,
        boot_info: info,
    }
}
