//! A raw or qcow2 filesystem image made into the planned filesystem of its partition.
//!
//! Before the image's filesystems are mounted, [`install`] writes the image onto the
//! partition of the image's `target`: a raw image with [`crate::apply::raw::write_raw`]
//! (zero blocks skipped), a qcow2 image with `qemu-img convert -n -f qcow2 -O raw` after
//! `qemu-img info` has confirmed its virtual size and that it reads no other file
//! ([`convert_qcow2`], showing the progress qemu-img reports). The
//! filesystem then gets the UUID and label of the plan, so that the fstab and grub.cfg
//! written from the plan name it correctly, and is grown to fill its partition:
//!
//! | type | commands |
//! |---|---|
//! | ext2/3/4 | `e2fsck -fy`, `tune2fs -U UUID -L LABEL`, `resize2fs` |
//! | xfs | `xfs_admin -U UUID -L LABEL` now; `xfs_growfs` once mounted ([`grow_mounted`]) |
//!
//! A planned filesystem without a label gets an empty one (`-L ""`, `xfs_admin -L --`).
//! The command lines are built by pure functions.

use std::ffi::OsString;
use std::path::Path;

use anyhow::{bail, Context};
use serde_json::Value;
use shared::fault;

use crate::apply::raw::{write_raw, write_raw_stream};
use crate::config::FileSystem;
use crate::exec::{run, run_reporting, StepError};
use crate::progress::{Meter, Total};
use crate::source::format::FsImage;
use crate::source::{Bytes, TargetFs};

fn argv(args: &[&str], device: &Path) -> Vec<OsString> {
    let mut argv: Vec<OsString> = args.iter().map(OsString::from).collect();
    argv.push(device.into());
    argv
}

/// The commands that give the filesystem on `device` the planned UUID and label and grow
/// it to its partition while unmounted, in order.
pub fn identity_commands(
    fs_type: FileSystem,
    uuid: &str,
    label: Option<&str>,
    device: &Path,
) -> Vec<Vec<OsString>> {
    match fs_type {
        FileSystem::Xfs => vec![argv(
            &["xfs_admin", "-U", uuid, "-L", label.unwrap_or("--")],
            device,
        )],
        _ => vec![
            argv(&["e2fsck", "-fy"], device),
            argv(&["tune2fs", "-U", uuid, "-L", label.unwrap_or("")], device),
            argv(&["resize2fs"], device),
        ],
    }
}

/// The command that grows the filesystem mounted at `mount_point` to its partition, for
/// the types that grow only while mounted (xfs).
pub fn grow_mounted(fs_type: FileSystem, mount_point: &Path) -> Option<Vec<OsString>> {
    (fs_type == FileSystem::Xfs).then(|| argv(&["xfs_growfs"], mount_point))
}

/// What `qemu-img info --output=json` says about an image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QemuImgInfo {
    pub format: String,
    pub virtual_size: u64,
    /// A backing file or an external data file: another file qemu-img would read.
    pub reads_other_files: bool,
}

/// Parses `qemu-img info --output=json`.
pub fn parse_qemu_img_info(json: &str) -> Result<QemuImgInfo, String> {
    let value: Value =
        serde_json::from_str(json).map_err(|err| format!("qemu-img info is not JSON: {err}"))?;
    let virtual_size = value["virtual-size"]
        .as_u64()
        .ok_or("qemu-img info has no virtual-size")?;
    let data_file = &value["format-specific"]["data"]["data-file"];
    Ok(QemuImgInfo {
        format: value["format"].as_str().unwrap_or_default().to_owned(),
        virtual_size,
        reads_other_files: !value["backing-filename"].is_null()
            || !value["full-backing-filename"].is_null()
            || !data_file.is_null(),
    })
}

/// Writes the filesystem image `path` of image `image` onto `node` (the partition of
/// `target`, not mounted) and gives it the planned UUID and label, grown to the partition
/// (xfs grows once mounted, see [`grow_mounted`]).
pub fn install(
    image: &str,
    bytes: Bytes,
    qcow2: bool,
    fs: &FsImage,
    target: &TargetFs,
    node: &Path,
) -> anyhow::Result<()> {
    let what = if qcow2 { "qcow2" } else { "raw" };
    crate::info!(
        "deployer: image {image}: writing the {what} {} image onto {} ({})",
        fs.fs_type.as_str(),
        target.mount_point,
        node.display()
    );
    if fs.fs_type != target.fs_type {
        bail!(
            "image {image}: a {what} image of {}, but the filesystem planned at {} is {}",
            fs.fs_type.as_str(),
            target.mount_point,
            target.fs_type.as_str()
        );
    }
    fault::step("image:fsimage")?;
    match (bytes, qcow2) {
        (Bytes::File(path), true) => write_qcow2(image, path, target, node)?,
        (Bytes::File(path), false) => {
            write_raw(path, node)
                .with_context(|| format!("image {image}: writing the raw image"))?;
        }
        (Bytes::Http(remote), false) => {
            let mut stream = remote.open()?;
            let sha256 = remote.sha256.as_deref();
            match write_raw_stream(&mut stream, remote.length, &format!("image {image}"), node) {
                Ok(_) => stream.finish(sha256)?,
                Err(err) => {
                    let err = err.context(format!("image {image}: writing the raw image"));
                    return Err(stream.explain(err, sha256));
                }
            }
        }
        (Bytes::Http(_), true) => bail!("image {image}: a qcow2 image is downloaded first"),
    }
    for command in identity_commands(fs.fs_type, &target.uuid, target.label.as_deref(), node) {
        let program = command[0].to_string_lossy().into_owned();
        let step = format!("{program} on the filesystem of image {image}");
        match run(&step, &command) {
            Ok(_) => {}
            // e2fsck: 1 and 2 mean errors were found and corrected.
            Err(StepError::Failed { status, .. })
                if program == "e2fsck" && matches!(status.code(), Some(1 | 2)) =>
            {
                crate::warn!("deployer: image {image}: e2fsck corrected errors in the image");
            }
            Err(err) => return Err(err.into()),
        }
    }
    Ok(())
}

/// Writes the qcow2 image `path` onto `node` after `qemu-img info` has confirmed its
/// virtual size fits and that it reads no other file.
fn write_qcow2(image: &str, path: &Path, target: &TargetFs, node: &Path) -> anyhow::Result<()> {
    let info_argv = argv(&["qemu-img", "info", "--output=json", "-f", "qcow2"], path);
    let json = run(
        &format!("inspect the qcow2 image of image {image}"),
        &info_argv,
    )?;
    let info = parse_qemu_img_info(&json).map_err(|err| anyhow::anyhow!("image {image}: {err}"))?;
    if info.reads_other_files {
        bail!("image {image}: the qcow2 image has a backing or data file (not supported)");
    }
    if info.virtual_size > target.size_bytes {
        bail!(
            "image {image}: the qcow2 image's virtual size ({} bytes) is larger than the \
             partition at {} ({} bytes)",
            info.virtual_size,
            target.mount_point,
            target.size_bytes
        );
    }
    convert_qcow2(
        &format!("write the qcow2 image of image {image}"),
        image,
        path,
        node,
        info.virtual_size,
    )?;
    Ok(())
}

/// Writes the qcow2 image `image` (of the deploy's image `name`) onto `dest` with
/// `qemu-img convert` as the step `step`, showing its progress (`qemu-img -p` reports
/// percentages on stdout) in bytes of the image's `virtual_size`.
pub fn convert_qcow2(
    step: &str,
    name: &str,
    image: &Path,
    dest: &Path,
    virtual_size: u64,
) -> Result<(), StepError> {
    let mut argv: Vec<OsString> = [
        "qemu-img", "convert", "-p", "-n", "-f", "qcow2", "-O", "raw",
    ]
    .into_iter()
    .map(OsString::from)
    .collect();
    argv.extend([image.as_os_str().to_owned(), dest.as_os_str().to_owned()]);
    let meter = Meter::start(
        format!("image {name}"),
        "converted",
        Total::Known(virtual_size),
    );
    let mut reached = 0;
    run_reporting(step, &argv, &mut |piece| {
        if let Some(percent) = qemu_img_percent(piece) {
            let at = (virtual_size as f64 * percent / 100.0) as u64;
            meter.add(at.saturating_sub(reached));
            reached = reached.max(at);
        }
    })?;
    meter.add(virtual_size.saturating_sub(reached));
    meter.finish("");
    Ok(())
}

/// The percentage in a progress report of `qemu-img -p`: `    (12.34/100%)`.
pub fn qemu_img_percent(piece: &str) -> Option<f64> {
    piece
        .trim()
        .strip_prefix('(')?
        .strip_suffix("/100%)")?
        .parse()
        .ok()
        .filter(|percent: &f64| (0.0..=100.0).contains(percent))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn qemu_img_progress() {
        assert_eq!(qemu_img_percent("    (12.34/100%)"), Some(12.34));
        assert_eq!(qemu_img_percent("(100.00/100%)"), Some(100.0));
        assert_eq!(qemu_img_percent(""), None);
        assert_eq!(qemu_img_percent("(250.00/100%)"), None);
        assert_eq!(qemu_img_percent("qemu-img: warning"), None);
    }

    fn strings(argv: &[OsString]) -> Vec<&str> {
        argv.iter().map(|a| a.to_str().unwrap()).collect()
    }

    #[test]
    fn ext_gets_checked_renamed_and_grown() {
        let commands = identity_commands(
            FileSystem::Ext4,
            "0f0f0f0f-0000-4000-a000-000000000001",
            Some("root"),
            Path::new("/dev/loop0p4"),
        );
        let commands: Vec<Vec<&str>> = commands.iter().map(|c| strings(c)).collect();
        assert_eq!(
            commands,
            [
                vec!["e2fsck", "-fy", "/dev/loop0p4"],
                vec![
                    "tune2fs",
                    "-U",
                    "0f0f0f0f-0000-4000-a000-000000000001",
                    "-L",
                    "root",
                    "/dev/loop0p4"
                ],
                vec!["resize2fs", "/dev/loop0p4"],
            ]
        );
        let unlabelled = identity_commands(FileSystem::Ext2, "u", None, Path::new("/dev/x"));
        assert_eq!(
            strings(&unlabelled[1]),
            ["tune2fs", "-U", "u", "-L", "", "/dev/x"]
        );
        assert_eq!(grow_mounted(FileSystem::Ext4, Path::new("/mnt")), None);
    }

    #[test]
    fn xfs_gets_renamed_and_grows_once_mounted() {
        let commands = identity_commands(FileSystem::Xfs, "u", Some("data"), Path::new("/dev/x"));
        assert_eq!(commands.len(), 1);
        assert_eq!(
            strings(&commands[0]),
            ["xfs_admin", "-U", "u", "-L", "data", "/dev/x"]
        );
        let unlabelled = identity_commands(FileSystem::Xfs, "u", None, Path::new("/dev/x"));
        assert_eq!(
            strings(&unlabelled[0]),
            ["xfs_admin", "-U", "u", "-L", "--", "/dev/x"]
        );
        let grow = grow_mounted(FileSystem::Xfs, Path::new("/tmp/d/srv")).unwrap();
        assert_eq!(strings(&grow), ["xfs_growfs", "/tmp/d/srv"]);
    }

    #[test]
    fn qemu_img_info() {
        let plain = r#"{"virtual-size": 67108864, "filename": "fs.qcow2",
            "cluster-size": 65536, "format": "qcow2", "actual-size": 991232,
            "format-specific": {"type": "qcow2", "data": {"compat": "1.1"}},
            "dirty-flag": false}"#;
        assert_eq!(
            parse_qemu_img_info(plain),
            Ok(QemuImgInfo {
                format: "qcow2".to_owned(),
                virtual_size: 64 << 20,
                reads_other_files: false,
            })
        );
        let backed = r#"{"virtual-size": 1, "format": "qcow2",
            "backing-filename": "/etc/shadow"}"#;
        assert!(parse_qemu_img_info(backed).unwrap().reads_other_files);
        let data_file = r#"{"virtual-size": 1, "format": "qcow2",
            "format-specific": {"type": "qcow2", "data": {"data-file": "/dev/sda"}}}"#;
        assert!(parse_qemu_img_info(data_file).unwrap().reads_other_files);
        assert!(parse_qemu_img_info("{}").is_err());
        assert!(parse_qemu_img_info("nope").is_err());
    }
}
