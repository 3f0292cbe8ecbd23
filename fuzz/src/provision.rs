use std::collections::HashSet;

use deployer::config::{DiskVolume, FsVolume, ProvisionConfig, StorageEntry};
use shared::layout::MULTIBOOT_LABEL;

use crate::plans::check_plan;
use crate::{check_one_line, DISK_SIZES};

/// provision.json: `deployer::validate`, then for a valid config `deployer::plan` on
/// disks of each of [`DISK_SIZES`] with [`SequentialIds`], and the plan's JSON and text
/// (input lossily UTF-8).
pub fn provision(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let config = match deployer::validate(&text) {
        Ok(config) => config,
        Err(errors) => {
            assert!(!errors.is_empty(), "rejected without an error");
            for error in &errors {
                check_one_line("provision.json", &error.to_string());
            }
            if text.starts_with('\u{feff}') {
                assert!(
                    errors.len() == 1 && errors[0].to_string().contains("byte order mark"),
                    "a text starting with a byte order mark is refused with {errors:?}"
                );
            }
            return;
        }
    };
    assert!(
        !text.starts_with('\u{feff}'),
        "a text starting with a byte order mark is accepted"
    );
    check_config(&config);
    serde_json::to_string(&config).expect("a valid config serialises");
    for size_bytes in DISK_SIZES {
        check_plan(&config, size_bytes);
    }
}

/// The promises of `deployer::config` that the planner relies on.
fn check_config(config: &ProvisionConfig) {
    assert!(!config.images.is_empty(), "a config without images");
    assert!(config.disks().next().is_some(), "a config without a disk");
    let mut names = HashSet::new();
    for image in &config.images {
        let name = &image.name;
        assert!(names.insert(name.as_str()), "image {name:?} twice");
        assert!(
            !name.is_empty() && !name.chars().any(char::is_control),
            "image name {name:?} is empty or holds control characters"
        );
    }
    let ids = deployer::plan::grub_menu_ids(config.images.iter().map(|i| i.name.as_str()));
    let unique: HashSet<&String> = ids.iter().collect();
    assert_eq!(unique.len(), ids.len(), "GRUB ids {ids:?} clash");
    for id in &ids {
        assert!(
            id.starts_with("multiboot-")
                && id
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-')),
            "GRUB id {id:?} is not a plain word"
        );
    }
    let mut volumes: Vec<&FsVolume> = Vec::new();
    for entry in &config.partitions {
        match entry {
            StorageEntry::Disk(disk) => {
                assert_ordered_index(&disk.config_index, disk.volumes.len());
                volumes.extend(disk.volumes.iter().filter_map(|volume| match volume {
                    DiskVolume::Partition(p) => Some(&p.fs),
                    DiskVolume::Raid(r) => Some(&r.fs),
                    _ => None,
                }))
            }
            StorageEntry::VolumeGroup(vg) => {
                assert_ordered_index(&vg.config_index, vg.volumes.len());
                volumes.extend(vg.volumes.iter().map(|lv| &lv.fs))
            }
        }
    }
    for volume in volumes {
        assert!(!volume.images.is_empty(), "a volume of no image");
        for image in &volume.images {
            assert!(names.contains(image.as_str()), "unknown image {image:?}");
        }
        if let (Some(label), Some(fs)) = (&volume.label, volume.file_system) {
            assert!(
                label.len() <= fs.max_label_len(),
                "label {label:?} longer than {} takes",
                fs.as_str()
            );
        }
        assert!(
            volume.label.as_deref() != Some(MULTIBOOT_LABEL),
            "a volume labelled {MULTIBOOT_LABEL:?}, the multiboot partition's label"
        );
    }
    if let Some(params) = &config.kernel_params {
        assert!(
            !params.contains(['"', '\'', '\\']),
            "kernel_params {params:?} with a quote or backslash, which GRUB would escape"
        );
    }
}

/// Each kept volume's place in the config's `volumes`, in order (skipped ones left out).
fn assert_ordered_index(index: &[usize], volumes: usize) {
    assert_eq!(
        index.len(),
        volumes,
        "config_index {index:?} for {volumes} volumes"
    );
    assert!(
        index.windows(2).all(|pair| pair[0] < pair[1]),
        "config_index {index:?} out of order"
    );
}

/// Whether some volume of `config` keeps its data (`keep_data`).
pub(crate) fn some_volume_keeps_data(config: &ProvisionConfig) -> bool {
    config.partitions.iter().any(|entry| match entry {
        StorageEntry::Disk(disk) => disk.volumes.iter().any(|volume| match volume {
            DiskVolume::Partition(p) => p.fs.keep_data,
            DiskVolume::Raid(r) => r.fs.keep_data,
            _ => false,
        }),
        StorageEntry::VolumeGroup(vg) => vg.volumes.iter().any(|lv| lv.fs.keep_data),
    })
}
