//! Disks that must not be written are refused before the first write.

use super::*;

/// Swap space on a device, switched off on drop.
struct Swap {
    device: PathBuf,
}

impl Swap {
    /// Switches on the swap area (made by mkswap) on `device`.
    fn on(device: &Path) -> Swap {
        require_tools(&["swapon", "swapoff"]);
        cmd::run(Command::new("swapon").arg(device));
        Swap {
            device: device.to_owned(),
        }
    }
}

impl Drop for Swap {
    fn drop(&mut self) {
        let out = cmd::output(Command::new("swapoff").arg(&self.device));
        if !out.status.success() {
            eprintln!(
                "swapoff {}: {}",
                self.device.display(),
                String::from_utf8_lossy(&out.stderr).trim()
            );
        }
    }
}

/// The source of the mount on `/` (the last one: the one on top).
fn root_device() -> PathBuf {
    let mountinfo = read(Path::new("/proc/self/mountinfo"));
    mountinfo
        .lines()
        .filter(|l| l.split(' ').nth(4) == Some("/"))
        .filter_map(|l| l.split(" - ").nth(1)?.split(' ').nth(1).map(PathBuf::from))
        .next_back()
        .expect("a mount on /")
}

#[test]
fn disks_that_must_not_be_written_are_refused_and_left_unchanged() {
    require_deploy_tools(TOOLS);
    let scratch = TempDir::new("faults-refused");
    let tree = scratch.join("solo");
    small_tree(&tree, "solo");
    let tmpdir = scratch.join("tmp");
    std::fs::create_dir(&tmpdir).expect("creating TMPDIR");
    let write_config = |name: &str, size: Option<&str>| {
        let mut disk = json!({
            "type": "disk", "id": {"type": "name", "value": "vda"},
            "volumes": [{"type": "partition", "mount": "/", "size": "100",
                         "file_system": "ext4"}]
        });
        if let Some(size) = size {
            disk["size"] = json!(size);
        }
        let path = scratch.join(name);
        let config = json!({"images": [{"name": "solo", "image_pull_url": tree, "target": "/"}],
                            "partitions": [disk], "partitions_policy": "clean"});
        std::fs::write(&path, config.to_string()).expect("writing a config");
        path
    };
    let sized = write_config("sized.json", Some("400 MiB"));
    let without_size = write_config("unsized.json", None);
    // `binary` deploys `config` onto `disk`; the outcome must be `code` with `expected` on
    // stderr and nothing else left.
    let refused = |binary: &Path,
                   faults: Option<&str>,
                   config: &Path,
                   disk: &Path,
                   code: i32,
                   expected: &str| {
        let mut command = Command::new(binary);
        command
            .arg("deploy")
            .arg(config)
            .arg("--disk")
            .arg(format!("vda={}", disk.display()))
            .arg("--boot-info")
            .arg(scratch.join("boot-info.json"))
            .arg("--bootctl")
            .arg(static_bootctl())
            .arg("--yes")
            .env("TMPDIR", &tmpdir)
            .env_remove(FAULT_ENV);
        if let Some(faults) = faults {
            command.env(FAULT_ENV, faults);
        }
        let out = cmd::output(&mut command);
        let what = format!("{} onto {}", config.display(), disk.display());
        assert_eq!(
            out.status.code(),
            Some(code),
            "{what}: {}",
            describe_output(&out)
        );
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            stderr.contains(expected),
            "{what}: expected {expected:?}:\n{stderr}"
        );
        assert!(!stderr.contains("partitioning"), "{what}: {stderr}");
        assert_eq!(names(&tmpdir), Vec::<String>::new(), "{what}: TMPDIR");
        assert!(
            !scratch.join("boot-info.json").exists(),
            "{what}: boot-info.json"
        );
    };

    // Too small, as a file and as a block device.
    let small = scratch.join("small.img");
    std::fs::File::create(&small)
        .and_then(|f| f.set_len(64 << 20))
        .expect("creating a small disk image");
    cmd::run_with_input(
        Command::new("sfdisk").arg("--quiet").arg(&small),
        "label: gpt\nsize=32MiB\n",
    );
    let small_sum = sha256(&small);
    let too_small = "is 64 MiB, too small";
    refused(plain_deployer(), None, &sized, &small, 3, too_small);
    {
        let attached = LoopDisk::attach(&small);
        refused(
            plain_deployer(),
            None,
            &sized,
            attached.device(),
            3,
            too_small,
        );
    }
    assert_eq!(sha256(&small), small_sum, "the small disk was written");

    // Missing: a device node, and an image file the config gives no size to create.
    let no_device = Path::new("/dev/multiboot-test-no-such-disk");
    refused(
        plain_deployer(),
        None,
        &sized,
        no_device,
        3,
        "does not exist",
    );
    assert!(!no_device.exists());
    let no_file = scratch.join("missing.img");
    refused(
        plain_deployer(),
        None,
        &without_size,
        &no_file,
        1,
        "no \"size\" to create it with",
    );
    assert!(!no_file.exists());

    // In use: a partition mounted on the host, another one used as swap.
    let busy = scratch.join("busy.img");
    std::fs::File::create(&busy)
        .and_then(|f| f.set_len(400 << 20))
        .expect("creating a disk image");
    cmd::run_with_input(
        Command::new("sfdisk").arg("--quiet").arg(&busy),
        "label: gpt\nsize=32MiB\nsize=16MiB\n",
    );
    {
        let attached = LoopDisk::attach(&busy);
        cmd::run(
            Command::new("mkfs.ext4")
                .arg("-q")
                .arg(attached.partition(1)),
        );
        require_tools(&["mkswap"]);
        cmd::run(Command::new("mkswap").arg(attached.partition(2)));
        let busy_sum = sha256(&busy);
        {
            let mount = Mount::new(&attached.partition(1), &scratch.join("mounted"), "ro");
            let mounted = format!("is mounted on {}", mount.path().display());
            refused(plain_deployer(), None, &sized, &busy, 3, &mounted);
            refused(
                plain_deployer(),
                None,
                &sized,
                attached.device(),
                3,
                &mounted,
            );
        }
        {
            let _swap = Swap::on(&attached.partition(2));
            let swapped = format!(
                "partition {} is used as swap",
                attached.partition(2).display()
            );
            refused(plain_deployer(), None, &sized, &busy, 3, &swapped);
            refused(
                plain_deployer(),
                None,
                &sized,
                attached.device(),
                3,
                &swapped,
            );
        }
        assert_eq!(sha256(&busy), busy_sum, "the disk in use was written");
    }

    // The host's own root device. Should the refusal ever break, the fault point before
    // the first write stops the deploy all the same (exit 1 instead of 3).
    let root = root_device();
    refused(
        fault_deployer(),
        Some(&spec(FaultAction::Fail, "disk:attached", 1)),
        &sized,
        &root,
        3,
        "holds the running system's root filesystem",
    );
}
