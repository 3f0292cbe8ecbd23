//! Slow and opt-in (`cargo nextest run -p deployer --test real_debian_stack --run-ignored
//! only`): the kernel command lines the deployer writes for a `/` on LVM or md RAID1 boot a
//! real Debian 12 with its own initramfs, both Debian's initramfs-tools and dracut.
//!
//! Two images made from the debootstrapped Debian 12 of `real_debian.rs`, with lvm2 and
//! mdadm: "itools" keeps initramfs-tools, "dracut" has dracut instead (its initramfs made
//! with `--no-hostonly`, with its lvm and mdraid modules). The deploy ramdisk deploys them
//! over HTTP onto two blank virtio disks: itools' `/` on a logical volume of a volume group
//! over both disks (`root=UUID=... rd.lvm.lv=os/itools`), dracut's on a RAID1 array over
//! both (`root=UUID=... rd.md.uuid=...`), `/srv` of both on another RAID1 array. The disks
//! then boot itools with its own systemd, which switches to dracut; dracut comes up from
//! its array.
//!
//! The trees are cached under `/var/tmp/multiboot-real` (built once, with apt in a chroot);
//! docs/figures.md records what a run showed.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant};

use e2e::chain::{boot_disks_expecting, mounted, shown, Expect, SHOW};
use e2e::debian::{
    apt_install, debian_tree, derived_tree, fixture_copy, in_chroot, tree_kernel, BOOT_TIMEOUT,
    KERNEL_PARAMS,
};
use e2e::disk::sha256;
use e2e::fixture::write;
use e2e::http::HttpServer;
use e2e::qemu::{self, DirectKernel, Firmware};
use e2e::ramdisk::{
    assert_deployed, blank_disks, build_ramdisk, deploy_append, guest_url, pack_tar_zst,
};
use e2e::tmp::TempDir;
use e2e::tools::require_tools;
use serde_json::{json, Value};

/// Each of the two blank disks (sparse).
const DISK_BYTES: u64 = 3 << 30;

/// The deploy of two images of about 800 MB (200 MB downloads) onto LVM and RAID1 under
/// TCG.
const DEPLOY_TIMEOUT: Duration = Duration::from_secs(1800);

/// Debian 12 with lvm2 and mdadm, its initramfs made again by initramfs-tools (its
/// default `MODULES=most` keeps it generic: virtio, dm and md are in it).
fn itools_tree() -> std::path::PathBuf {
    derived_tree("itools", |root| {
        let conf = std::fs::read_to_string(root.join("etc/initramfs-tools/initramfs.conf"))
            .expect("initramfs.conf");
        assert!(
            conf.lines().any(|l| l == "MODULES=most"),
            "initramfs-tools is not set to MODULES=most"
        );
        apt_install(root, &["lvm2", "mdadm"]);
        in_chroot(root, &["update-initramfs", "-u", "-k", "all"]);
    })
}

/// Debian 12 with dracut (which replaces initramfs-tools), lvm2 and mdadm; its initramfs
/// made by dracut for any machine, with the lvm and mdraid modules.
fn dracut_tree() -> std::path::PathBuf {
    derived_tree("dracut", |root| {
        let conf = root.join("etc/dracut.conf.d/90-multiboot-test.conf");
        std::fs::create_dir_all(conf.parent().expect("dracut.conf.d")).expect("dracut.conf.d");
        write(
            &conf,
            b"hostonly=\"no\"\nadd_dracutmodules+=\" lvm mdraid \"\n",
            0o644,
        );
        apt_install(root, &["dracut", "lvm2", "mdadm"]);
        let version = tree_kernel(root);
        let initrd = format!("/boot/initrd.img-{version}");
        in_chroot(
            root,
            &["dracut", "--force", "--no-hostonly", &initrd, &version],
        );
    })
}

/// The config: `/srv` of both on md0 (a member on each disk); dracut's `/` on md1, likewise;
/// itools' `/` on the logical volume `os/itools`, over a physical volume on each disk and
/// larger than either.
fn config(urls: &BTreeMap<&str, (String, String)>) -> Value {
    let srv = json!({"type": "raid", "mount": "/srv", "size": "64", "name": "md0",
                     "file_system": "ext4", "images": ["itools", "dracut"]});
    let root = json!({"type": "raid", "mount": "/", "size": "1500", "name": "md1",
                      "file_system": "ext4", "images": ["dracut"]});
    let pv = json!({"type": "pv", "vg": "os", "size": "900"});
    let image = |name: &str| {
        let (url, sha) = &urls[name];
        json!({"name": name, "image_pull_url": url, "sha256": sha, "target": "/"})
    };
    let mut itools = image("itools");
    itools["boot"] = true.into();
    json!({
        "images": [itools, image("dracut")],
        "partitions": [
            {"type": "disk", "id": {"type": "name", "value": "vda"},
             "volumes": [pv, root, srv]},
            {"type": "disk", "id": {"type": "name", "value": "vdb"},
             "volumes": [pv, root, srv]},
            {"type": "vg", "id": "os", "volumes": [
                {"type": "lv", "name": "itools", "mount": "/", "size": "1500",
                 "file_system": "ext4", "images": ["itools"]}]}
        ],
        "partitions_policy": "clean",
        "deploy_data": {"kernel_params": KERNEL_PARAMS}
    })
}

/// What both images show: the mounts, the arrays, the kernel command line.
const SHOW_STATE: &str = "show mounts cat /proc/mounts\nshow mdstat cat /proc/mdstat\n\
     show cmdline cat /proc/cmdline\n";

/// The devices of `/` and `/srv`, and the kernel command line, as `image`'s run showed
/// them ([`SHOW_STATE`]).
fn state(image: &str, run_output: &str) -> (String, String, String) {
    let mounts = shown(run_output, "mounts").stdout;
    let device = |point: &str| {
        let (device, _) = mounted(&mounts, point)
            .unwrap_or_else(|| panic!("{image}: nothing mounted at {point}:\n{mounts}"));
        device.to_owned()
    };
    let cmdline = shown(run_output, "cmdline").stdout;
    assert!(cmdline.contains("root=UUID="), "{image}: {cmdline}");
    (device("/"), device("/srv"), cmdline)
}

#[test]
#[ignore = "slow (Debian boots under TCG) and needs the Debian archive: run with --run-ignored"]
fn real_debian_initramfs_tools_and_dracut_boot_their_root_on_lvm_and_raid1() {
    require_tools(&["qemu-system-x86_64", "tar"]);
    let started = Instant::now();
    let trees = [("itools", itools_tree()), ("dracut", dracut_tree())];
    eprintln!("real-stack: the trees took {:.1?}", started.elapsed());

    let scratch = TempDir::new("real-stack");
    let (vmlinuz, initrd) = build_ramdisk(&scratch.join("dist"));
    let runs = [
        (
            "itools",
            format!("{SHOW}{SHOW_STATE}show switch bootctl switch dracut\n"),
        ),
        ("dracut", format!("{SHOW}{SHOW_STATE}")),
    ];
    let packing = Instant::now();
    let mut files = BTreeMap::new();
    let mut sums = BTreeMap::new();
    for ((name, tree), (_, run)) in trees.iter().zip(&runs) {
        let root = scratch.join(name);
        fixture_copy(tree, &root, name, &format!("#!/bin/sh\n{run}"));
        let tarball = scratch.join(format!("{name}.tar.zst"));
        pack_tar_zst(&root, &tarball);
        std::fs::remove_dir_all(&root).expect("removing the copy");
        sums.insert(*name, sha256(&tarball));
        let bytes = std::fs::read(&tarball).expect("a tarball");
        eprintln!("real-stack: {name}.tar.zst is {} MiB", bytes.len() >> 20);
        files.insert(format!("{name}.tar.zst"), bytes);
    }
    eprintln!("real-stack: packing took {:.1?}", packing.elapsed());
    let images = HttpServer::serve(files);
    let urls: BTreeMap<&str, (String, String)> = ["itools", "dracut"]
        .into_iter()
        .map(|name| {
            let url = guest_url(&images.url(&format!("{name}.tar.zst")));
            (name, (url, sums[name].clone()))
        })
        .collect();
    let server = HttpServer::serve(BTreeMap::from([(
        "provision.json".to_owned(),
        config(&urls).to_string().into_bytes(),
    )]));
    let disks = blank_disks(scratch.path(), &["vda", "vdb"], DISK_BYTES);
    let disk_refs: Vec<&Path> = disks.iter().map(|d| d.as_path()).collect();

    let deployed = qemu::boot_networked(
        &disk_refs,
        &DirectKernel {
            kernel: vmlinuz,
            initrd,
            append: deploy_append(&server.url("provision.json"), &["vda", "vdb"]),
        },
        DEPLOY_TIMEOUT,
        "real-stack-deploy",
    );
    assert_deployed(&deployed, 2);
    // The initramfs preflight read both initrds (it lets one it cannot read through with
    // a warning).
    assert!(
        !deployed.serial.contains("cannot tell whether"),
        "the deploy could not read an initramfs: console {}",
        deployed.log.display()
    );
    eprintln!("real-stack: the deploy took {:.1?}", deployed.elapsed);

    let boot = |expect: &Expect, name: &str| {
        boot_disks_expecting(&disk_refs, Firmware::Bios, BOOT_TIMEOUT, name, expect)
    };
    let first = boot(&Expect::first("itools"), "real-stack-itools");
    let (root, srv, cmdline) = state("itools", &first.run_output);
    assert!(
        root == "/dev/mapper/os-itools" || root.starts_with("/dev/dm-"),
        "itools' / is not its logical volume: {root}"
    );
    assert!(srv.starts_with("/dev/md"), "itools' /srv: {srv}");
    assert!(cmdline.contains("rd.lvm.lv=os/itools"), "{cmdline}");
    assert!(
        first.serial.contains("Loading, please wait..."),
        "itools did not boot through initramfs-tools: {}",
        first.log.display()
    );
    assert_eq!(
        shown(&first.run_output, "switch").rc,
        Some(0),
        "{}",
        first.run_output
    );

    let second = boot(
        &Expect::after("dracut", "itools ran `bootctl switch dracut`"),
        "real-stack-dracut",
    );
    let (root, srv, cmdline) = state("dracut", &second.run_output);
    assert!(
        root.starts_with("/dev/md"),
        "dracut's / is not on its array: {root}"
    );
    assert!(
        srv.starts_with("/dev/md") && srv != root,
        "dracut's /srv: {srv}"
    );
    assert!(cmdline.contains("rd.md.uuid="), "{cmdline}");
    assert!(
        second
            .serial
            .lines()
            .any(|l| l.contains("Welcome to") && l.contains("dracut") && l.contains("(Initramfs)")),
        "dracut did not boot through dracut's initramfs: {}",
        second.log.display()
    );
    eprintln!(
        "real-stack: boots took {:.1?} (itools), {:.1?} (dracut); the whole test {:.1?}",
        first.elapsed,
        second.elapsed,
        started.elapsed()
    );
}

/// The deployer's initramfs preflight reads both real initrds (an early microcode cpio,
/// then the main one compressed) and finds what starts a `/` on LVM and on RAID; in
/// Debian 12 without lvm2 and mdadm it finds neither, so such an image is refused.
#[test]
#[ignore = "needs the Debian 12 trees (slow the first time): run with --run-ignored"]
fn the_initramfs_preflight_reads_initramfs_tools_and_dracut_initrds() {
    require_tools(&["zstd", "gzip"]);
    let cases = [
        (debian_tree(), false),
        (itools_tree(), true),
        (dracut_tree(), true),
    ];
    for (tree, starts_stacks) in cases {
        let initrd = tree.join(format!("boot/initrd.img-{}", tree_kernel(&tree)));
        let programs = deployer::initrd::programs_in(&initrd)
            .unwrap_or_else(|e| panic!("{}: {e:#}", initrd.display()));
        for program in ["lvm", "mdadm"] {
            assert_eq!(
                programs.contains(program),
                starts_stacks,
                "{program} in {}",
                initrd.display()
            );
        }
        assert!(programs.contains("modprobe"), "{}", initrd.display());
    }
}
