//! The deploy ramdisk (`packaging/ramdisk`), booted for real as a PXE node boots it: QEMU
//! (TCG) loads its vmlinuz and initrd.img with the kernel command line of the README's
//! "Deploy from a ramdisk (PXE)", one blank disk and a NIC on QEMU's user-mode
//! network. The ramdisk takes DHCP, fetches provision.json from an HTTP server on this
//! machine's 127.0.0.1 (the guest's 10.0.2.2, reached directly as `deployer.no_proxy=`
//! says) and two fixture images (tar.zst with their sha256) at `http://images.invalid/`
//! through the same server as the proxy of `deployer.proxy=`, deploys both onto
//! partitions of their own and powers off; the disk is then on a virtio-scsi controller and
//! the config names it by its SCSI address, which the deployer resolves itself (no
//! `deployer.disk=`, so `--resolve-disks`). Then the
//! disk boots alone, into alpha (the default). Before that, a boot that reads the same
//! config from a second disk (`deployer.config=file:LABEL=cfg:/provision.json`) and whose
//! `deployer.disk=` names a disk the config lacks shows the deployer's error and
//! `ramdisk: FAILED` on the console and powers off (`deployer.done=poweroff`), the disk
//! untouched.
//!
//! Opt-in, as it builds the ramdisk (about 10 s once the release deployer is built, a
//! few minutes before) and boots three times under TCG (about 45 s in all):
//!
//! ```text
//! cargo nextest run -p deployer --test ramdisk --run-ignored only
//! ```
//!
//! The consoles are kept in tests/artifacts/ramdisk-deploy.log and ramdisk-alpha.log. A
//! missing tool fails the test and names `scripts/setup`.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use e2e::cmd;
use e2e::deploy::{read_config, write_images_config};
use e2e::disk::sha256;
use e2e::fixture::FixtureImage;
use e2e::http::HttpServer;
use e2e::qemu::{self, expect_boot, DirectKernel, Firmware, ScsiDisk};
use e2e::ramdisk::{
    build_ramdisk, guest_url, last_lines, pack_tar_zst, DEPLOY_TIMEOUT, HOST_FROM_GUEST,
};
use e2e::tmp::TempDir;
use e2e::tools::require_tools;
use serde_json::Value;

/// One fixture boot of the deployed disk.
const BOOT_TIMEOUT: Duration = Duration::from_secs(300);

/// The disk-image file the ramdisk deploys onto, as `/dev/vda`.
const DISK_BYTES: u64 = 768 << 20;

/// Where the config says the images are: a host that resolves nowhere, reached through
/// the proxy.
const IMAGES_URL: &str = "http://images.invalid";

/// Whether the file at `path` holds only zero bytes.
fn all_zeros(path: &Path) -> bool {
    let mut file = std::fs::File::open(path).expect("opening the disk");
    let mut buffer = vec![0u8; 1 << 20];
    loop {
        let read = file.read(&mut buffer).expect("reading the disk");
        if read == 0 {
            return true;
        }
        if buffer[..read].iter().any(|byte| *byte != 0) {
            return false;
        }
    }
}

#[test]
#[ignore = "builds the ramdisk and boots three times (a minute, more on a first build): run with --run-ignored only"]
fn the_ramdisk_deploys_two_images_from_http_and_the_disk_boots_alpha() {
    require_tools(&["qemu-system-x86_64", "tar", "curl"]);
    let started = Instant::now();
    let scratch = TempDir::new("ramdisk");
    let (vmlinuz, initrd) = build_ramdisk(&scratch.join("dist"));

    let alpha = FixtureImage::new("alpha");
    let beta = FixtureImage::new("beta");
    let config_path = write_images_config(
        scratch.path(),
        &[&alpha, &beta],
        "alpha",
        &[],
        "console=ttyS0 quiet panic=-1",
        240,
    );
    let mut images = BTreeMap::new();
    for name in ["alpha", "beta"] {
        let tarball = scratch.join(format!("{name}.tar.zst"));
        pack_tar_zst(&scratch.join(name), &tarball);
        images.insert(format!("{name}.tar.zst"), tarball);
    }
    // The images' host resolves nowhere: they come through the proxy of
    // deployer.proxy=, the server that also serves provision.json, which curl fetches
    // directly (deployer.no_proxy= names its address). A proxy is asked for the whole
    // URL: the server serves each image under it.
    let mut config: Value = read_config(&config_path);
    let mut files = BTreeMap::new();
    for image in config["images"].as_array_mut().expect("images") {
        let file = format!("{}.tar.zst", image["name"].as_str().expect("a name"));
        let url = format!("{IMAGES_URL}/{file}");
        image["image_pull_url"] = url.clone().into();
        image["sha256"] = sha256(&images[&file]).into();
        files.insert(url, std::fs::read(&images[&file]).expect("a tarball"));
    }
    // The node's disk by its SCSI address: the deploy boot gives no deployer.disk=, and the
    // deployer finds the disk on QEMU's virtio-scsi controller (the guest's only SCSI
    // host) with --resolve-disks.
    config["partitions"][0]["id"] = serde_json::json!({"type": "scsi", "value": "0:0:1:0"});
    files.insert("provision.json".to_owned(), config.to_string().into_bytes());
    let server = HttpServer::serve(files);
    let server_url = guest_url(&server.url(""));
    let proxy = server_url.trim_end_matches('/');

    let disk = scratch.join("node.img");
    std::fs::File::create(&disk)
        .and_then(|file| file.set_len(DISK_BYTES))
        .expect("creating the blank disk");
    let ramdisk = |config: &str, disks: &str| DirectKernel {
        kernel: vmlinuz.clone(),
        initrd: initrd.clone(),
        append: format!(
            "console=ttyS0 panic=-1 deployer.config={config} {disks} deployer.done=poweroff"
        ),
    };

    // The same config from an ext4 filesystem labelled "cfg" on a second disk, with a
    // deploy the deployer refuses (a disk id the config does not have): the error on the
    // console, the machine off (as deployer.done=poweroff asks), the disk untouched.
    let cfg_tree = scratch.join("cfg");
    std::fs::create_dir_all(&cfg_tree).expect("creating the cfg tree");
    std::fs::write(cfg_tree.join("provision.json"), config.to_string()).expect("writing it");
    let cfg_disk = scratch.join("cfg.img");
    cmd::run(
        Command::new("mkfs.ext4")
            .args(["-q", "-L", "cfg", "-d"])
            .arg(&cfg_tree)
            .arg(&cfg_disk)
            .arg("8M"),
    );
    let refused = qemu::boot_networked(
        &[&disk, &cfg_disk],
        &ramdisk(
            "file:LABEL=cfg:/provision.json",
            "deployer.disk=vdb=/dev/vda",
        ),
        DEPLOY_TIMEOUT,
        "ramdisk-refused",
    );
    assert!(
        !refused.timed_out
            && refused
                .serial
                .contains("--disk vdb: no disk of the config has id \"vdb\"")
            && refused
                .serial
                .contains("ramdisk: FAILED: deployer deploy exited with 3")
            && !refused.serial.contains("ramdisk: deploy done"),
        "the refused deploy: console {}\n--- last lines ---\n{}",
        refused.log.display(),
        last_lines(&refused.serial)
    );
    assert!(all_zeros(&disk), "the refused deploy wrote to the disk");
    eprintln!(
        "ramdisk: the refused deploy's boot took {:.1?}",
        refused.elapsed
    );

    let deployed = qemu::boot_networked_scsi(
        &[],
        &[ScsiDisk {
            path: &disk,
            target: 1,
            lun: 0,
        }],
        &ramdisk(
            &format!("{server_url}provision.json"),
            &format!("deployer.proxy={proxy} deployer.no_proxy={HOST_FROM_GUEST}"),
        ),
        DEPLOY_TIMEOUT,
        "ramdisk-deploy",
    );
    assert!(
        !deployed.timed_out
            && deployed
                .serial
                .contains("ramdisk: no deployer.disk=: the deployer finds the config's disks")
            && deployed
                .serial
                .contains("deployer: disk \"0:0:1:0\" (scsi id) is /dev/sda")
            && deployed
                .serial
                .contains("deploying image alpha from http://images.invalid/alpha.tar.zst")
            && deployed.serial.contains("image beta: downloaded ")
            && deployed.serial.contains("deployer: deployed 2 image(s)")
            && deployed.serial.contains("ramdisk: deploy done"),
        "the ramdisk did not deploy (after {:.1?}); console: {}\n--- last lines ---\n{}",
        deployed.elapsed,
        deployed.log.display(),
        last_lines(&deployed.serial)
    );
    eprintln!("ramdisk: the deploy boot took {:.1?}", deployed.elapsed);

    let booted = qemu::boot(&disk, Firmware::Bios, BOOT_TIMEOUT, "ramdisk-alpha");
    expect_boot(&booted, "alpha", "the disk the ramdisk deployed");
    eprintln!("ramdisk: the whole test took {:.1?}", started.elapsed());
}
