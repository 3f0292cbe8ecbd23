//! Deploys that succeed, checked with the real tools and booted.

use super::*;

/// The two-image config: alpha and beta with their own `/` of 160 MiB, a shared
/// `/usr/share/common` of 32 MiB, beta boots by default.
fn config(alpha: &str, beta: &str, alpha_uuid: &str, beta_uuid: &str) -> String {
    named_config(["alpha", "beta"], [alpha, beta], [alpha_uuid, beta_uuid])
}

/// [`config`] with the images named `names` (provision names, as Bareon's are free).
fn named_config(names: [&str; 2], urls: [&str; 2], uuids: [&str; 2]) -> String {
    let [alpha, beta] = names;
    serde_json::json!({
        "images": [
            {"name": alpha, "image_name": "image-alpha-1.0", "image_uuid": uuids[0],
             "image_pull_url": urls[0], "target": "/"},
            {"name": beta, "boot": true, "image_name": "image-beta-1.0",
             "image_uuid": uuids[1], "image_pull_url": urls[1], "target": "/"}
        ],
        "partitions": [{
            "type": "disk", "id": {"type": "name", "value": "vda"}, "size": "600 MiB",
            "volumes": [
                {"type": "partition", "mount": "/", "size": "160", "images": [alpha],
                 "file_system": "ext4"},
                {"type": "partition", "mount": "/", "size": "160", "images": [beta],
                 "file_system": "ext4"},
                {"type": "partition", "mount": "/usr/share/common", "size": "32",
                 "images": [alpha, beta], "file_system": "ext4"}
            ]
        }],
        "partitions_policy": "clean",
        "deploy_data": {"kernel_params": KERNEL_PARAMS}
    })
    .to_string()
}

/// Plain alpha and beta trees in `scratch` and the two-image [`config`] that deploys them,
/// written to `scratch/provision.json`; returns that path.
fn write_plain_two_image_config(scratch: &TempDir) -> PathBuf {
    let alpha = FixtureImage::new("alpha");
    let beta = FixtureImage::new("beta");
    write_image_trees(scratch.path(), &[&alpha, &beta]);
    let config_path = scratch.join("provision.json");
    std::fs::write(
        &config_path,
        config(
            &scratch.join("alpha").display().to_string(),
            &scratch.join("beta").display().to_string(),
            &alpha.image_uuid,
            &beta.image_uuid,
        ),
    )
    .expect("writing provision.json");
    config_path
}

/// alpha has its kernel on a /boot partition of its own, named the Red Hat way
/// (`vmlinuz-V`, `initramfs-V.img`); GRUB must load it from there, by that filesystem's
/// UUID, and the image must mount /boot through its fstab. alpha boots by default, then
/// beta after a switch on the disk.
#[test]
fn a_separate_boot_partition_and_red_hat_kernel_names_boot() {
    require_deploy_tools(TOOLS);
    let scratch = TempDir::new("deploy-boot-part");
    let alpha = FixtureImage::new("alpha");
    let beta = FixtureImage::new("beta");
    write_image_trees(scratch.path(), &[&alpha, &beta]);
    let boot_dir = scratch.join("alpha/boot");
    let initrd = std::fs::read_dir(&boot_dir)
        .expect("alpha's /boot")
        .flatten()
        .map(|entry| entry.file_name().to_string_lossy().into_owned())
        .find(|name| name.starts_with("initrd.img-"))
        .expect("an initrd in alpha's /boot");
    let version = initrd.trim_start_matches("initrd.img-").to_owned();
    std::fs::rename(
        boot_dir.join(&initrd),
        boot_dir.join(format!("initramfs-{version}.img")),
    )
    .expect("renaming the initrd");
    let config_path = scratch.join("provision.json");
    std::fs::write(
        &config_path,
        serde_json::json!({
            "images": [
                {"name": "alpha", "boot": true, "image_pull_url": scratch.join("alpha"),
                 "target": "/"},
                {"name": "beta", "image_pull_url": scratch.join("beta"), "target": "/"}
            ],
            "partitions": [{
                "type": "disk", "id": {"type": "name", "value": "vda"}, "size": "600 MiB",
                "volumes": [
                    {"type": "partition", "mount": "/", "file_system": "ext4", "size": "100", "images": ["alpha"]},
                    {"type": "partition", "mount": "/boot", "size": "100", "images": ["alpha"],
                     "file_system": "ext2"},
                    {"type": "partition", "mount": "/", "file_system": "ext4", "size": "160", "images": ["beta"]}
                ]
            }],
            "partitions_policy": "clean",
            "deploy_data": {"kernel_params": KERNEL_PARAMS}
        })
        .to_string(),
    )
    .expect("writing provision.json");
    let disk = scratch.join("node.img");
    deploy_vda(
        &config_path,
        &disk,
        Some(&scratch.join("boot-info.json")),
        "deploy",
    );
    {
        let loop_disk = LoopDisk::attach(&disk);
        let boot_part = blkid(&loop_disk.partition(5));
        let root = Mount::new(&loop_disk.partition(4), &scratch.join("alpha-root"), "ro");
        let fstab = read(&root.path().join("etc/fstab"));
        assert_eq!(
            Some(&fstab_uuid(&fstab, "/boot")),
            boot_part.get("UUID"),
            "{fstab}"
        );
        let boot = Mount::new(&loop_disk.partition(5), &scratch.join("alpha-boot"), "ro");
        assert!(boot
            .path()
            .join(format!("initramfs-{version}.img"))
            .is_file());
        let multiboot = Mount::new(&loop_disk.partition(3), &scratch.join("mb"), "ro");
        let cfg = read(&multiboot.path().join("boot/grub/grub.cfg"));
        e2e::grubcfg::script_check(&cfg);
        assert!(
            cfg.contains("\nset timeout=0\n"),
            "--grub-timeout 0:\n{cfg}"
        );
        let uuid = boot_part.get("UUID").expect("the /boot UUID");
        assert!(
            cfg.contains(&format!("--fs-uuid --set=root '{uuid}'"))
                && cfg.contains(&format!("initrd '/initramfs-{version}.img'")),
            "alpha's entry loads its kernel from its /boot partition:\n{cfg}"
        );
    }

    let first = boot(&disk, Firmware::Bios, BOOT_TIMEOUT, "deploy-boot-part-1");
    expect_boot(
        &first,
        "alpha",
        "alpha, its kernel on its own /boot partition",
    );
    let disk_arg = disk.display().to_string();
    bootctl(&["--disk", &disk_arg, "switch", "beta"]).expect_code(0);
    let second = boot(&disk, Firmware::Bios, BOOT_TIMEOUT, "deploy-boot-part-2");
    expect_boot(&second, "beta", "beta after bootctl switch beta");
}

#[test]
fn two_images_and_a_shared_partition_deploy_and_boot() {
    require_deploy_tools(TOOLS);
    let scratch = TempDir::new("deploy-real");
    let alpha =
        FixtureImage::new("alpha").file("usr/share/common/alpha.txt", "from alpha\n", 0o644);
    let beta = FixtureImage::new("beta").file("usr/share/common/beta.txt", "from beta\n", 0o644);
    write_image_trees(scratch.path(), &[&alpha, &beta]);
    let alpha_url = format!("file://{}", scratch.join("alpha").display());
    let beta_dir = scratch.join("beta").display().to_string();
    let config_path = scratch.join("provision.json");
    std::fs::write(
        &config_path,
        config(&alpha_url, &beta_dir, &alpha.image_uuid, &beta.image_uuid),
    )
    .expect("writing provision.json");
    let disk = scratch.join("node.img");
    let boot_info_path = scratch.join("boot-info.json");

    let started = Instant::now();
    deploy_vda(&config_path, &disk, Some(&boot_info_path), "deploy");
    eprintln!("deploy took {:.1?}", started.elapsed());
    assert_eq!(
        std::fs::metadata(&disk).expect("the disk image").len(),
        600 << 20
    );

    // The partition table.
    let (table, sizes) = partition_table(&disk);
    assert_eq!(sizes, [1, 64, 100, 160, 160, 32], "{table}");
    assert_eq!(table["partitiontable"]["label"], "gpt");

    // boot-info.json, at --boot-info.
    let info = read_boot_info(&boot_info_path);
    let elements = info["elements"].as_array().expect("elements");
    assert_eq!(elements.len(), 2, "{info}");
    for (i, (element, image)) in elements.iter().zip([&alpha, &beta]).enumerate() {
        assert_eq!(element["grub_id"], i, "{info}");
        assert_eq!(element["name"], image.name.as_str());
        assert_eq!(element["image_name"], image.image_name.as_str());
        assert_eq!(element["image_uuid"], image.image_uuid.as_str());
        assert_eq!(element["os_id"], "fixture");
        assert_eq!(element["boot_name"], image.title.as_str());
    }
    assert_eq!(info["current_element"], 1, "beta is the default: {info}");
    let multiboot_uuid = multiboot_uuid(&info);

    // Filesystems, and what each image holds.
    let loop_disk = LoopDisk::attach(&disk);
    let fs: Vec<BTreeMap<String, String>> =
        (1..=6).map(|n| blkid(&loop_disk.partition(n))).collect();
    assert_eq!(fs[1].get("TYPE").map(String::as_str), Some("vfat"));
    assert_eq!(fs[2].get("TYPE").map(String::as_str), Some("ext4"));
    assert_eq!(fs[2].get("LABEL").map(String::as_str), Some("multiboot"));
    assert_eq!(fs[2].get("UUID"), Some(&multiboot_uuid));
    let mut common_uuid = None;
    for (element, number) in elements.iter().zip([4u32, 5]) {
        let name = element["name"].as_str().expect("name");
        let root_uuid = element["root_uuid"].as_str().expect("root_uuid");
        let found = &fs[number as usize - 1];
        assert_eq!(
            found.get("TYPE").map(String::as_str),
            Some("ext4"),
            "{name}"
        );
        assert_eq!(
            found.get("UUID").map(String::as_str),
            Some(root_uuid),
            "{name}"
        );
        let mount = Mount::new(
            &loop_disk.partition(number),
            &scratch.join(format!("check-{name}")),
            "ro",
        );
        let root = mount.path();
        let fstab = read(&root.join("etc/fstab"));
        assert_eq!(fstab_uuid(&fstab, "/"), root_uuid, "{name} fstab:\n{fstab}");
        let common = fstab_uuid(&fstab, "/usr/share/common");
        assert_eq!(common_uuid.get_or_insert(common.clone()), &common);
        assert!(
            !fstab.contains(&multiboot_uuid),
            "{name}: multiboot in fstab"
        );
        let bootctl = std::fs::metadata(root.join("usr/sbin/bootctl")).expect("bootctl");
        assert_eq!(bootctl.permissions().mode() & 0o777, 0o755);
        assert_eq!(
            bootctl.len(),
            std::fs::metadata(static_bootctl()).unwrap().len()
        );
        assert_eq!(
            serde_json::from_str::<Value>(&read(&root.join("etc/multiboot/boot-info.json")))
                .expect("the image's boot-info.json"),
            info,
            "{name}"
        );
    }
    assert_eq!(fs[5].get("UUID"), common_uuid.as_ref());
    {
        let common = Mount::new(&loop_disk.partition(6), &scratch.join("check-common"), "ro");
        assert_eq!(read(&common.path().join("alpha.txt")), "from alpha\n");
        assert_eq!(read(&common.path().join("beta.txt")), "from beta\n");
    }
    {
        let multiboot = Mount::new(&loop_disk.partition(3), &scratch.join("check-mb"), "ro");
        let grub = multiboot.path().join("boot/grub");
        let cfg = read(&grub.join("grub.cfg"));
        e2e::grubcfg::script_check(&cfg);
        assert!(cfg.contains("'multiboot-alpha'") && cfg.contains("'multiboot-beta'"));
        assert!(cfg.contains(KERNEL_PARAMS.split(' ').next().unwrap()));
        let env = std::fs::read(grub.join("grubenv")).expect("grubenv");
        assert_eq!(env.len(), 1024);
        assert!(String::from_utf8_lossy(&env).contains("saved_entry=multiboot-beta\n"));
        assert!(grub.join("i386-pc/core.img").is_file());
        assert!(grub.join("x86_64-efi/normal.mod").is_file());
        assert_eq!(
            serde_json::from_str::<Value>(&read(&multiboot.path().join("boot-info.json")))
                .expect("boot-info.json"),
            info
        );
    }
    let esp = loop_disk.partition(2).display().to_string();
    let efi_dir = Command::new("mdir")
        .args(["-i", &esp, "-b", "::/EFI/BOOT"])
        .output()
        .expect("running mdir");
    assert_eq!(
        String::from_utf8_lossy(&efi_dir.stdout).trim(),
        "::/EFI/BOOT/BOOTX64.EFI",
        "the ESP: {}",
        describe_output(&efi_dir)
    );
    drop(loop_disk);

    // The proof: beta comes up on BIOS and on UEFI; after a switch on the disk, alpha.
    let first = boot(&disk, Firmware::Bios, BOOT_TIMEOUT, "deploy-real-bios-1");
    expect_boot(&first, "beta", "first boot of the deployed disk (BIOS)");
    let uefi = boot(&disk, Firmware::Uefi, BOOT_TIMEOUT, "deploy-real-uefi-1");
    expect_boot(&uefi, "beta", "first boot of the deployed disk (UEFI)");
    let disk_arg = disk.display().to_string();
    bootctl(&["--disk", &disk_arg, "switch", "alpha"]).expect_code(0);
    let second = boot(&disk, Firmware::Bios, BOOT_TIMEOUT, "deploy-real-bios-2");
    expect_boot(&second, "alpha", "boot after bootctl switch alpha");
}

/// The disk is a block device (a loop device the test attached, as a real node's disk
/// would be), deployed twice in a row: the second deploy redoes everything over the first
/// one, and the disk boots.
#[test]
fn a_block_device_deploys_twice_and_boots() {
    require_deploy_tools(TOOLS);
    let scratch = TempDir::new("deploy-blockdev");
    let config_path = write_plain_two_image_config(&scratch);
    let image_file = scratch.join("node.img");
    let loop_disk = LoopDisk::create(&image_file, 600 << 20);
    let device = loop_disk.device().display().to_string();
    let mut multiboot_uuids = Vec::new();
    for attempt in ["first", "second"] {
        let boot_info = scratch.join(format!("boot-info-{attempt}.json"));
        deploy_vda(
            &config_path,
            Path::new(&device),
            Some(&boot_info),
            &format!("{attempt} deploy onto {device}"),
        );
        multiboot_uuids.push(multiboot_uuid(&read_boot_info(&boot_info)));
    }
    assert_ne!(
        multiboot_uuids[0], multiboot_uuids[1],
        "every deploy makes new filesystems"
    );
    loop_disk.reread_partitions();
    assert_eq!(
        blkid(&loop_disk.partition(3)).get("UUID"),
        Some(&multiboot_uuids[1]),
        "the multiboot partition is the second deploy's"
    );
    drop(loop_disk);
    let outcome = boot(
        &image_file,
        Firmware::Bios,
        BOOT_TIMEOUT,
        "deploy-blockdev-bios",
    );
    expect_boot(
        &outcome,
        "beta",
        "boot of a disk deployed twice as a block device",
    );
}

/// `mtools PROGRAM -i DEV ARGS...` (mdir, mtype) on a vfat partition; its stdout.
fn mtools(program: &str, dev: &Path, args: &[&str]) -> String {
    let out = Command::new(program)
        .arg("-i")
        .arg(dev)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("running {program}: {e}"));
    assert!(out.status.success(), "{program}: {}", describe_output(&out));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The fstab line of `mount_point` (`none` for swap), split into its fields.
fn fstab_fields(fstab: &str, mount_point: &str) -> Vec<String> {
    fstab
        .lines()
        .map(|l| l.split_whitespace().map(str::to_owned).collect::<Vec<_>>())
        .find(|fields| fields.get(1).map(String::as_str) == Some(mount_point))
        .unwrap_or_else(|| panic!("no {mount_point} line in fstab:\n{fstab}"))
}

/// Swap and vfat data volumes in a real deploy: the swap area gets its planned UUID and
/// an fstab line in both images; alpha's `/boot/efi` and a vfat partition shared by both
/// images get their planned volume ids and labels, fstab lines, and the images' files
/// under their mount points (through mtools on this host, whose kernel cannot mount
/// vfat), beta's copy of a file alpha brought too being reported.
#[test]
fn swap_and_vfat_volumes_get_their_ids_fstab_lines_and_files() {
    require_deploy_tools(&["mkswap", "mdir", "mtype"]);
    let scratch = TempDir::new("deploy-vfat");
    let alpha = FixtureImage::new("alpha")
        .file("boot/efi/EFI/alpha/grubx64.efi", "alpha loader\n", 0o644)
        .file("usr/share/fat/common.txt", "from alpha\n", 0o644);
    let beta = FixtureImage::new("beta")
        .file("usr/share/fat/common.txt", "from beta\n", 0o644)
        .file("usr/share/fat/beta/b.txt", "b\n", 0o644);
    write_image_trees(scratch.path(), &[&alpha, &beta]);
    let config_path = scratch.join("provision.json");
    let config = serde_json::json!({
        "images": [
            {"name": "alpha", "image_pull_url": scratch.join("alpha"), "target": "/"},
            {"name": "beta", "image_pull_url": scratch.join("beta"), "target": "/"}
        ],
        "partitions": [{
            "type": "disk", "id": {"type": "name", "value": "vda"}, "size": "700 MiB",
            "volumes": [
                {"type": "partition", "mount": "/", "file_system": "ext4", "size": "160", "images": ["alpha"]},
                {"type": "partition", "mount": "/", "file_system": "ext4", "size": "160", "images": ["beta"]},
                {"type": "partition", "mount": "/boot/efi", "size": "40", "images": ["alpha"],
                 "file_system": "vfat", "disk_label": "ALPHAEFI"},
                {"type": "partition", "mount": "/usr/share/fat", "size": "40",
                 "images": ["alpha", "beta"], "file_system": "vfat"},
                {"type": "partition", "mount": "swap", "size": "16",
                 "images": ["alpha", "beta"], "disk_label": "swap0"}
            ]
        }],
        "partitions_policy": "clean"
    });
    std::fs::write(&config_path, config.to_string()).expect("writing provision.json");
    let disk = scratch.join("node.img");
    let out = deploy_vda(
        &config_path,
        &disk,
        Some(&scratch.join("boot-info.json")),
        "deploy",
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(
            "image beta: /usr/share/fat/common.txt already brought by an earlier image, \
             overwritten"
        ),
        "{stderr}"
    );
    assert_eq!(stderr.matches("already brought").count(), 1, "{stderr}");

    let loop_disk = LoopDisk::attach(&disk);
    let (efi, fat, swap) = (
        loop_disk.partition(6),
        loop_disk.partition(7),
        loop_disk.partition(8),
    );
    let fstabs: Vec<String> = [4, 5]
        .iter()
        .map(|&number| {
            let mount = Mount::new(
                &loop_disk.partition(number),
                &scratch.join(format!("check-{number}")),
                "ro",
            );
            for mount_point in ["boot/efi", "usr/share/fat"] {
                let dir = mount.path().join(mount_point);
                if dir.exists() {
                    assert_eq!(
                        std::fs::read_dir(&dir).expect("a mount point").count(),
                        0,
                        "{} is left empty for the vfat mount",
                        dir.display()
                    );
                }
            }
            read(&mount.path().join("etc/fstab"))
        })
        .collect();

    let efi_id = blkid(&efi);
    assert_eq!(efi_id.get("TYPE").map(String::as_str), Some("vfat"));
    assert_eq!(efi_id.get("LABEL").map(String::as_str), Some("ALPHAEFI"));
    let efi_line = fstab_fields(&fstabs[0], "/boot/efi");
    assert_eq!(efi_line[0], format!("UUID={}", efi_id["UUID"]));
    assert_eq!(efi_line[2], "vfat");
    assert!(!fstabs[1].contains("/boot/efi"), "beta has no /boot/efi");
    assert_eq!(
        mtools("mtype", &efi, &["::/EFI/alpha/grubx64.efi"]),
        "alpha loader\n"
    );

    let fat_id = blkid(&fat);
    assert_eq!(fat_id.get("TYPE").map(String::as_str), Some("vfat"));
    for fstab in &fstabs {
        assert_eq!(
            fstab_fields(fstab, "/usr/share/fat")[0],
            format!("UUID={}", fat_id["UUID"])
        );
    }
    let listing = mtools("mdir", &fat, &["-/", "-b", "::/"]);
    for path in ["::/common.txt", "::/beta/b.txt"] {
        assert!(listing.lines().any(|l| l == path), "{path}: {listing}");
    }
    assert_eq!(mtools("mtype", &fat, &["::/common.txt"]), "from beta\n");

    let swap_id = blkid(&swap);
    assert_eq!(swap_id.get("TYPE").map(String::as_str), Some("swap"));
    assert_eq!(swap_id.get("LABEL").map(String::as_str), Some("swap0"));
    for fstab in &fstabs {
        assert_eq!(
            fstab_fields(fstab, "none"),
            [
                format!("UUID={}", swap_id["UUID"]),
                "none".into(),
                "swap".into(),
                "sw".into(),
                "0".into(),
                "0".into()
            ]
        );
    }
}

/// The same deploy twice onto one disk-image file: the second redoes everything over the
/// first. The second writes boot-info.json to the default `--boot-info`,
/// `/tmp/boot-info.json`, and its copy under Bareon's name to `/tmp/boot_entries.json` (no
/// other test uses those paths); the first, to `--boot-info` and beside it. The second
/// names the images as Bareon may (quotes, spaces, `$`, unicode, a URL): boot-info.json and
/// the fstabs keep the names as written, grub.cfg gets the derived ids and parses, and
/// `bootctl switch` takes a name as written.
#[test]
fn an_image_file_deploys_twice_and_boot_info_goes_to_tmp_by_default() {
    require_deploy_tools(TOOLS);
    let scratch = TempDir::new("deploy-twice");
    let config_path = write_plain_two_image_config(&scratch);
    let odd_names = [
        "centos 7.1 \"$HOME\" it's ${x}",
        "http://10.0.0.1:8080/images/ubuntu 14.04.img?é=1",
    ];
    let odd_config = scratch.join("odd-names.json");
    let image_uuid = |tree: &str| {
        read_boot_info(&scratch.join("boot-info-first.json"))["elements"]
            .as_array()
            .expect("elements")
            .iter()
            .find(|element| element["name"] == tree)
            .map(|element| element["image_uuid"].as_str().unwrap().to_owned())
            .unwrap()
    };
    let disk = scratch.join("node.img");
    let first_info = scratch.join("boot-info-first.json");
    let default_info = Path::new("/tmp/boot-info.json");
    let mut multiboot_uuids = Vec::new();
    for boot_info in [Some(first_info.as_path()), None] {
        let config = if boot_info.is_some() {
            config_path.clone()
        } else {
            let urls = ["alpha", "beta"].map(|tree| scratch.join(tree).display().to_string());
            let uuids = ["alpha", "beta"].map(image_uuid);
            let text = named_config(odd_names, [&urls[0], &urls[1]], [&uuids[0], &uuids[1]]);
            std::fs::write(&odd_config, text).expect("writing the config");
            odd_config.clone()
        };
        let out = deploy_vda(&config, &disk, boot_info, "deploy");
        let written = boot_info.unwrap_or(default_info);
        let stderr = String::from_utf8_lossy(&out.stderr);
        let entries = written.with_file_name("boot_entries.json");
        assert!(
            stderr.contains(&format!(
                "boot-info.json written to {} and {}",
                written.display(),
                entries.display()
            )),
            "{stderr}"
        );
        // Bareon's name for it, beside it: what bareon-ironic reads.
        assert_eq!(
            std::fs::read(&entries).expect("boot_entries.json"),
            std::fs::read(written).expect("boot-info.json"),
            "{} is not a copy of {}",
            entries.display(),
            written.display()
        );
        multiboot_uuids.push(multiboot_uuid(&read_boot_info(written)));
    }
    assert_ne!(multiboot_uuids[0], multiboot_uuids[1]);
    assert_eq!(std::fs::metadata(&disk).expect("the disk").len(), 600 << 20);
    let info = read_boot_info(default_info);
    let names: Vec<&str> = info["elements"]
        .as_array()
        .expect("elements")
        .iter()
        .map(|element| element["name"].as_str().expect("a name"))
        .collect();
    assert_eq!(
        names, odd_names,
        "boot-info.json names the images as written"
    );
    let ids = deployer::plan::grub_menu_ids(odd_names);
    {
        let loop_disk = LoopDisk::attach(&disk);
        assert_eq!(
            blkid(&loop_disk.partition(3)).get("UUID"),
            Some(&multiboot_uuids[1]),
            "the multiboot partition is the second deploy's, as /tmp/boot-info.json says"
        );
        let multiboot = Mount::new(&loop_disk.partition(3), &scratch.join("check-mb"), "ro");
        let cfg = read(&multiboot.path().join("boot/grub/grub.cfg"));
        e2e::grubcfg::script_check(&cfg);
        let menu = shared::grubcfg::parse(&cfg).expect("grub.cfg parses");
        let menu_ids: Vec<Option<&str>> =
            menu.items.iter().map(|item| item.id.as_deref()).collect();
        assert_eq!(
            menu_ids,
            ids.iter().map(|id| Some(id.as_str())).collect::<Vec<_>>()
        );
        let root = Mount::new(&loop_disk.partition(4), &scratch.join("check-root"), "ro");
        let fstab = read(&root.path().join("etc/fstab"));
        assert!(
            fstab.starts_with(&format!("# /etc/fstab of image {},", odd_names[0])),
            "{fstab}"
        );
    }
    let disk_arg = disk.display().to_string();
    bootctl(&["--disk", &disk_arg, "switch", odd_names[0]]).expect_code(0);
    let loop_disk = LoopDisk::attach(&disk);
    let multiboot = Mount::new(&loop_disk.partition(3), &scratch.join("check-env"), "ro");
    let env = std::fs::read(multiboot.path().join("boot/grub/grubenv")).expect("grubenv");
    assert!(
        String::from_utf8_lossy(&env).contains(&format!("saved_entry={}\n", ids[0])),
        "bootctl switch by the name as written"
    );
}
