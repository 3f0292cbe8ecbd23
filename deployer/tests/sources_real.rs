//! `deployer deploy` from every kind of image source, for real, as root: tarballs of each
//! compression (from a path, a `file://` URL and HTTP), a raw ext4 image, a qcow2 image of
//! xfs over HTTP, an `rsync://` daemon, deployed onto sparse disk-image files and checked
//! with the real tools (owners, modes, hard links, symlinks, device nodes, xattrs, ACLs,
//! the planned UUIDs and labels, fstab, the files of a shared partition and the report of
//! files brought twice). A checksum mismatch fails the deploy and leaves nothing behind;
//! what preflight can tell is refused before any write.
//!
//! The HTTP server is e2e's `HttpServer` on 127.0.0.1 and the rsync daemon a real
//! `rsync --daemon` on a loopback address of its own (e2e's `RsyncDaemon`), both started by the test and stopped by their guards.
//! A missing tool fails the test and names `scripts/setup`.

use std::collections::BTreeMap;
use std::ffi::CString;
use std::io::Read;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::Instant;

use e2e::bootctl::static_bootctl;
use e2e::cmd;
use e2e::cmd::describe_output;
use e2e::deploy::deploy_command;
use e2e::disk::{blkid, fingerprint, fstab_uuid, gpt_disk_file, sha256, LoopDisk, Mount};
use e2e::http::HttpServer;
use e2e::rsyncd::RsyncDaemon;
use e2e::tmp::{has_mounts_below, TempDir};
use e2e::tools::require_deploy_tools;
use serde_json::{json, Value};

const TOOLS: &[&str] = &[
    "mkfs.xfs",
    "rsync",
    "tar",
    "gzip",
    "xz",
    "zstd",
    "qemu-img",
    "setfacl",
    "getfacl",
    "mknod",
    "e2fsck",
    "tune2fs",
    "resize2fs",
    "xfs_admin",
    "xfs_growfs",
    "losetup",
];

/// The uid and gid the fixture files are owned by (no such user on the host).
const OWNER: (u32, u32) = (1234, 5678);
/// The user an ACL entry names.
const ACL_USER: u32 = 4321;

/// Runs `deployer deploy CONFIG --disk vda=DISK --bootctl STATIC --yes [extra]`, with
/// `TMPDIR` set to `tmpdir` (where the deploy's private work directory goes).
fn deploy(config: &Path, disk: &Path, tmpdir: &Path, extra: &[&str]) -> Output {
    std::fs::create_dir_all(tmpdir).expect("creating the deploy's TMPDIR");
    deploy_command(
        Path::new(env!("CARGO_BIN_EXE_deployer")),
        config,
        disk,
        &tmpdir.with_extension("boot-info.json"),
    )
    .args(extra)
    .env("TMPDIR", tmpdir)
    .output()
    .expect("running deployer")
}

fn run(cmd: &mut Command) -> String {
    cmd::run(cmd)
}

// ---------------------------------------------------------------------------------------
// Fixture trees and the files made from them.

fn set_xattr(path: &Path, name: &str, value: &[u8]) {
    let c_path = CString::new(path.as_os_str().as_bytes()).expect("a path without NUL");
    let c_name = CString::new(name).expect("a name without NUL");
    // SAFETY: valid NUL-terminated strings and a buffer of the given length.
    let rc = unsafe {
        nix::libc::lsetxattr(
            c_path.as_ptr(),
            c_name.as_ptr(),
            value.as_ptr().cast(),
            value.len(),
            0,
        )
    };
    assert_eq!(
        rc,
        0,
        "setxattr {name} on {}: {}",
        path.display(),
        std::io::Error::last_os_error()
    );
}

fn get_xattr(path: &Path, name: &str) -> Option<Vec<u8>> {
    let c_path = CString::new(path.as_os_str().as_bytes()).expect("a path without NUL");
    let c_name = CString::new(name).expect("a name without NUL");
    let mut buf = vec![0u8; 256];
    // SAFETY: valid NUL-terminated strings and a buffer of the given length.
    let len = unsafe {
        nix::libc::lgetxattr(
            c_path.as_ptr(),
            c_name.as_ptr(),
            buf.as_mut_ptr().cast(),
            buf.len(),
        )
    };
    let len = usize::try_from(len).ok()?;
    buf.truncate(len);
    Some(buf)
}

fn write(path: &Path, contents: &str, mode: u32) {
    std::fs::create_dir_all(path.parent().expect("a parent")).expect("creating a directory");
    std::fs::write(path, contents).unwrap_or_else(|e| panic!("writing {}: {e}", path.display()));
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).expect("chmod");
}

/// A small image tree named `name`: a (fake) kernel and initrd, os-release, and files
/// that exercise what a copy must keep: owners, a setuid mode, a hard link pair, a
/// symlink, a character device, user and trusted xattrs, an ACL. Its `srv/common` holds
/// `NAME.txt` and `same.txt` (which every image brings).
fn build_tree(root: &Path, name: &str) {
    write(&root.join("boot/vmlinuz-6.1.0-test"), "kernel\n", 0o644);
    write(&root.join("boot/initrd.img-6.1.0-test"), "initrd\n", 0o644);
    write(
        &root.join("etc/os-release"),
        &format!("ID=fixture\nPRETTY_NAME=\"Fixture {name}\"\n"),
        0o644,
    );
    let data = root.join("data");
    write(&data.join("owned"), &format!("owned by {name}\n"), 0o640);
    std::os::unix::fs::chown(data.join("owned"), Some(OWNER.0), Some(OWNER.1)).expect("chown");
    write(&data.join("setuid"), "#!/bin/sh\n", 0o4755);
    write(&data.join("hard1"), &format!("linked {name}\n"), 0o644);
    std::fs::hard_link(data.join("hard1"), data.join("hard2")).expect("hard link");
    std::os::unix::fs::symlink("owned", data.join("link")).expect("symlink");
    run(Command::new("mknod")
        .arg(data.join("null"))
        .args(["c", "1", "3"]));
    write(&data.join("xattr"), "xattrs\n", 0o644);
    set_xattr(
        &data.join("xattr"),
        "user.multiboot",
        format!("u-{name}").as_bytes(),
    );
    set_xattr(
        &data.join("xattr"),
        "trusted.multiboot",
        format!("t-{name}").as_bytes(),
    );
    write(&data.join("acl"), "acl\n", 0o640);
    run(Command::new("setfacl")
        .args(["-m", &format!("u:{ACL_USER}:rwx")])
        .arg(data.join("acl")));
    write(
        &root.join(format!("srv/common/{name}.txt")),
        &format!("from {name}\n"),
        0o644,
    );
    write(
        &root.join("srv/common/same.txt"),
        &format!("same from {name}\n"),
        0o644,
    );
}

/// `tar` of `tree` (owners by number, xattrs, ACLs), compressed by `compressor` (`None`
/// for a plain archive), written to `out`.
fn tarball(tree: &Path, compressor: Option<&str>, out: &Path) {
    let plain = out.with_extension("plain-tar");
    run(Command::new("tar")
        .args([
            "--xattrs",
            "--xattrs-include=*",
            "--acls",
            "--numeric-owner",
            "-C",
        ])
        .arg(tree)
        .arg("-cf")
        .arg(&plain)
        .arg("."));
    match compressor {
        None => std::fs::rename(&plain, out).expect("renaming the archive"),
        Some(tool) => {
            let file = std::fs::File::create(out).expect("creating the compressed archive");
            let status = Command::new(tool)
                .args(["-c", "-q"])
                .arg(&plain)
                .stdout(file)
                .status()
                .expect("running the compressor");
            assert!(status.success(), "{tool} failed");
            std::fs::remove_file(&plain).expect("removing the plain archive");
        }
    }
}

/// An ext4 filesystem image of `size_mib` MiB holding `tree`, labelled `source-label`.
fn ext4_image(tree: &Path, size_mib: u64, out: &Path) {
    run(Command::new("mkfs.ext4")
        .args(["-q", "-F", "-L", "source-label", "-d"])
        .arg(tree)
        .arg(out)
        .arg(format!("{size_mib}M")));
}

/// A qcow2 image of an xfs filesystem (300 MiB, the smallest mkfs.xfs makes) holding
/// `tree`.
fn xfs_qcow2(scratch: &TempDir, tree: &Path, out: &Path) {
    let raw = scratch.join("xfs-source.img");
    std::fs::File::create(&raw)
        .and_then(|f| f.set_len(300 << 20))
        .expect("creating the xfs image");
    run(Command::new("mkfs.xfs")
        .args(["-q", "-f", "-L", "xfs-source"])
        .arg(&raw));
    {
        let disk = LoopDisk::attach(&raw);
        let mount = Mount::new(disk.device(), &scratch.join("xfs-fill"), "");
        run(Command::new("cp")
            .arg("-a")
            .arg(tree.join("."))
            .arg(mount.path()));
    }
    run(Command::new("qemu-img")
        .args(["convert", "-f", "raw", "-O", "qcow2"])
        .arg(&raw)
        .arg(out));
    std::fs::remove_file(&raw).expect("removing the raw xfs image");
}

// ---------------------------------------------------------------------------------------
// Checks.

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()))
}

/// What [`build_tree`] made for image `name` is all there under `root`.
fn check_tree(root: &Path, name: &str, acls: bool) {
    let data = root.join("data");
    let meta = |rel: &str| {
        std::fs::symlink_metadata(data.join(rel))
            .unwrap_or_else(|e| panic!("{name}: /data/{rel}: {e}"))
    };
    assert_eq!(read(&data.join("owned")), format!("owned by {name}\n"));
    let owned = meta("owned");
    assert_eq!((owned.uid(), owned.gid()), OWNER, "{name}: owner");
    assert_eq!(owned.mode() & 0o7777, 0o640, "{name}: mode");
    assert_eq!(meta("setuid").mode() & 0o7777, 0o4755, "{name}: setuid");
    let (hard1, hard2) = (meta("hard1"), meta("hard2"));
    assert_eq!(hard1.ino(), hard2.ino(), "{name}: a hard link");
    assert_eq!(hard1.nlink(), 2, "{name}: a hard link");
    assert_eq!(
        std::fs::read_link(data.join("link")).expect("a symlink"),
        PathBuf::from("owned"),
        "{name}: symlink"
    );
    let null = meta("null");
    assert!(
        std::os::unix::fs::FileTypeExt::is_char_device(&null.file_type()),
        "{name}: a device node"
    );
    assert_eq!(
        (
            nix::sys::stat::major(null.rdev()),
            nix::sys::stat::minor(null.rdev())
        ),
        (1, 3),
        "{name}: device numbers"
    );
    let xattr = data.join("xattr");
    assert_eq!(
        get_xattr(&xattr, "user.multiboot").as_deref(),
        Some(format!("u-{name}").as_bytes()),
        "{name}: user xattr"
    );
    assert_eq!(
        get_xattr(&xattr, "trusted.multiboot").as_deref(),
        Some(format!("t-{name}").as_bytes()),
        "{name}: trusted xattr"
    );
    if acls {
        let acl = run(Command::new("getfacl")
            .args(["-n", "--absolute-names"])
            .arg(data.join("acl")));
        assert!(
            acl.contains(&format!("user:{ACL_USER}:rwx")),
            "{name}: ACL lost:\n{acl}"
        );
    }
    assert!(root.join("usr/sbin/bootctl").is_file(), "{name}: bootctl");
}

/// Whether the loop devices of the host have any backed by `file`.
fn attached_loops(file: &Path) -> String {
    run(Command::new("losetup").arg("-j").arg(file))
}

fn partition(mount: &str, size_mib: u32, images: &[&str], fs: &str, label: Option<&str>) -> Value {
    let mut volume = json!({
        "type": "partition", "mount": mount, "size": size_mib.to_string(),
        "images": images, "file_system": fs
    });
    if let Some(label) = label {
        volume["disk_label"] = json!(label);
    }
    volume
}

fn write_config(path: &Path, images: Value, volumes: Vec<Value>, extra: Value) {
    let mut config = json!({
        "images": images,
        "partitions": [{"type": "disk", "id": {"type": "name", "value": "vda"},
                        "volumes": volumes}],
        "partitions_policy": "clean"
    });
    if let (Some(config), Some(extra)) = (config.as_object_mut(), extra.as_object()) {
        config.extend(extra.clone());
    }
    std::fs::write(path, config.to_string()).expect("writing provision.json");
}

fn sparse_file(path: &Path, size: u64) {
    std::fs::File::create(path)
        .and_then(|f| f.set_len(size))
        .expect("creating a disk image");
}

// ---------------------------------------------------------------------------------------

#[test]
fn tarballs_of_every_compression_from_a_path_a_file_url_and_http() {
    require_deploy_tools(TOOLS);
    let scratch = TempDir::new("sources-tar");
    let names = ["t-plain", "t-gz", "t-xz", "t-zst"];
    for name in names {
        build_tree(&scratch.join(format!("tree-{name}")), name);
    }
    let plain = scratch.join("t-plain.tar");
    tarball(&scratch.join("tree-t-plain"), None, &plain);
    let gz = scratch.join("t-gz.tar.gz");
    tarball(&scratch.join("tree-t-gz"), Some("gzip"), &gz);
    let xz = scratch.join("t-xz.tar.xz");
    tarball(&scratch.join("tree-t-xz"), Some("xz"), &xz);
    // Named like a gzip tarball, holding zstd: the format comes from the content.
    let zst = scratch.join("t-zst.tar.gz");
    tarball(&scratch.join("tree-t-zst"), Some("zstd"), &zst);
    let server = HttpServer::serve(BTreeMap::from([(
        "t-xz.bin".to_owned(),
        std::fs::read(&xz).expect("reading the xz tarball"),
    )]));

    let config = scratch.join("provision.json");
    write_config(
        &config,
        json!([
            {"name": "t-plain", "image_pull_url": plain.display().to_string(), "target": "/"},
            {"name": "t-gz", "image_pull_url": format!("file://{}", gz.display()),
             "target": "/"},
            {"name": "t-xz", "boot": true, "image_pull_url": server.url("t-xz.bin"),
             "sha256": sha256(&xz), "target": "/"},
            {"name": "t-zst", "image_pull_url": zst.display().to_string(), "target": "/"}
        ]),
        vec![
            partition("/", 24, &["t-plain"], "ext4", Some("root-plain")),
            partition("/", 24, &["t-gz"], "ext4", None),
            partition("/", 24, &["t-xz"], "ext4", None),
            partition("/", 24, &["t-zst"], "ext4", None),
            partition("/srv/common", 16, &names, "ext4", Some("common")),
        ],
        json!({}),
    );
    let disk = scratch.join("node.img");
    sparse_file(&disk, 320 << 20);
    let tmpdir = scratch.join("tmp");
    let started = Instant::now();
    let out = deploy(&config, &disk, &tmpdir, &["--json"]);
    assert!(
        out.status.success(),
        "deploy failed: {}",
        describe_output(&out)
    );
    eprintln!("deploy took {:.1?}", started.elapsed());
    let stderr = String::from_utf8_lossy(&out.stderr);
    eprintln!("{stderr}");
    assert!(
        stderr.contains("deployer: image t-xz: streaming http://")
            && stderr.contains("deployer: image t-xz: downloaded")
            && stderr.contains("sha256 verified"),
        "{stderr}"
    );
    let summary: Value = serde_json::from_slice(&out.stdout).expect("the summary");
    let writes: Vec<(f64, f64)> = summary["timings"]["steps"]
        .as_array()
        .expect("timings")
        .iter()
        .filter(|step| step["step"] == "write")
        .map(|step| {
            let start = step["start"].as_f64().expect("start");
            (start, start + step["seconds"].as_f64().expect("seconds"))
        })
        .collect();
    assert_eq!(writes.len(), names.len(), "{summary}");
    if std::thread::available_parallelism().map_or(1, usize::from) > 1 {
        assert!(
            writes
                .iter()
                .any(|a| writes.iter().any(|b| a != b && a.0 < b.1 && b.0 < a.1)),
            "images are written at the same time, the shared /srv/common staged: {writes:?}"
        );
    }
    assert!(stderr.contains("(tar (zstd))"), "{stderr}");
    for (i, name) in names.iter().enumerate() {
        let reported = format!(
            "deployer: image {name}: /srv/common/same.txt already brought by an earlier \
             image, overwritten"
        );
        assert_eq!(stderr.contains(&reported), i > 0, "{name}:\n{stderr}");
        assert!(
            !stderr.contains(&format!("image {name}: /srv/common/{name}.txt")),
            "{stderr}"
        );
    }
    assert_eq!(
        std::fs::read_dir(&tmpdir).expect("TMPDIR").count(),
        0,
        "the work directory is gone"
    );

    let loop_disk = LoopDisk::attach(&disk);
    let common_node = loop_disk.partition(8);
    let common = blkid(&common_node);
    assert_eq!(common.get("LABEL").map(String::as_str), Some("common"));
    for (i, name) in names.iter().enumerate() {
        let node = loop_disk.partition(4 + i as u32);
        let id = blkid(&node);
        assert_eq!(id.get("TYPE").map(String::as_str), Some("ext4"), "{name}");
        if i == 0 {
            assert_eq!(id.get("LABEL").map(String::as_str), Some("root-plain"));
        }
        let mount = Mount::new(&node, &scratch.join(format!("check-{name}")), "ro");
        check_tree(mount.path(), name, true);
        let fstab = read(&mount.path().join("etc/fstab"));
        assert_eq!(Some(&fstab_uuid(&fstab, "/")), id.get("UUID"), "{name}");
        assert_eq!(
            Some(&fstab_uuid(&fstab, "/srv/common")),
            common.get("UUID"),
            "{name}"
        );
        assert!(
            !mount.path().join("srv/common/same.txt").exists(),
            "{name}: the shared files went onto the root partition"
        );
    }
    let shared = Mount::new(&common_node, &scratch.join("check-common"), "ro");
    for name in names {
        assert_eq!(
            read(&shared.path().join(format!("{name}.txt"))),
            format!("from {name}\n")
        );
    }
    assert_eq!(
        read(&shared.path().join("same.txt")),
        "same from t-zst\n",
        "the last image's copy wins"
    );
    assert!(
        !shared.path().join(".multiboot-staging").exists(),
        "the staging directory is gone"
    );
}

#[test]
fn raw_ext4_qcow2_over_http_and_rsync_get_the_planned_filesystems() {
    require_deploy_tools(TOOLS);
    let scratch = TempDir::new("sources-fs");
    for name in ["r-raw", "q-qcow2", "t-tar", "s-rsync"] {
        build_tree(&scratch.join(format!("tree-{name}")), name);
    }
    // Excluded by the config's rsync_flags.
    write(
        &scratch.join("tree-s-rsync/data/excluded"),
        "never copied\n",
        0o644,
    );
    let raw = scratch.join("r-raw.img");
    ext4_image(&scratch.join("tree-r-raw"), 32, &raw);
    let qcow2 = scratch.join("q-qcow2.qcow2");
    xfs_qcow2(&scratch, &scratch.join("tree-q-qcow2"), &qcow2);
    let tar = scratch.join("t-tar.tar");
    tarball(&scratch.join("tree-t-tar"), None, &tar);
    let server = HttpServer::serve(BTreeMap::from([(
        "q.qcow2".to_owned(),
        std::fs::read(&qcow2).expect("reading the qcow2 image"),
    )]));
    let daemon = RsyncDaemon::start(&scratch, scratch.path(), 1);

    let config = scratch.join("provision.json");
    write_config(
        &config,
        json!([
            {"name": "r-raw", "image_pull_url": raw.display().to_string(), "target": "/",
             "sha256": sha256(&raw)},
            {"name": "q-qcow2", "image_pull_url": server.url("q.qcow2"),
             "sha256": sha256(&qcow2), "target": "/"},
            {"name": "t-tar", "image_pull_url": tar.display().to_string(), "target": "/"},
            {"name": "s-rsync", "image_pull_url": daemon.url("tree-s-rsync/"), "target": "/"}
        ]),
        vec![
            partition("/", 64, &["r-raw"], "ext4", Some("raw-root")),
            partition("/", 320, &["q-qcow2"], "xfs", None),
            partition("/", 24, &["t-tar"], "ext4", None),
            partition("/", 24, &["s-rsync"], "ext4", None),
            partition("/srv/common", 16, &["t-tar", "s-rsync"], "ext4", None),
        ],
        json!({"image_deploy_flags": {"rsync_flags": "--exclude=/data/excluded"}}),
    );
    let disk = scratch.join("node.img");
    sparse_file(&disk, 640 << 20);
    let tmpdir = scratch.join("tmp");
    let started = Instant::now();
    let out = deploy(&config, &disk, &tmpdir, &[]);
    assert!(
        out.status.success(),
        "deploy failed: {}",
        describe_output(&out)
    );
    eprintln!("deploy took {:.1?}", started.elapsed());
    let stderr = String::from_utf8_lossy(&out.stderr);
    eprintln!("{stderr}");
    assert!(
        stderr.contains(
            "deployer: image s-rsync: /srv/common/same.txt already brought by an earlier \
             image, overwritten"
        ),
        "{stderr}"
    );
    assert!(
        !stderr.contains("image t-tar: /srv/common/same.txt already"),
        "{stderr}"
    );
    drop(server);
    drop(daemon);

    let info: Value = serde_json::from_str(&read(&tmpdir.with_extension("boot-info.json")))
        .expect("boot-info.json");
    let root_uuid = |i: usize| {
        info["elements"][i]["root_uuid"]
            .as_str()
            .expect("uuid")
            .to_owned()
    };

    let loop_disk = LoopDisk::attach(&disk);
    // The raw ext4 image: the planned UUID and label, grown to its 64 MiB partition.
    let raw_node = loop_disk.partition(4);
    let id = blkid(&raw_node);
    assert_eq!(id.get("TYPE").map(String::as_str), Some("ext4"), "{id:?}");
    assert_eq!(id.get("UUID"), Some(&root_uuid(0)), "{id:?}");
    assert_eq!(
        id.get("LABEL").map(String::as_str),
        Some("raw-root"),
        "{id:?}"
    );
    let superblock = run(Command::new("tune2fs").arg("-l").arg(&raw_node));
    let field = |key: &str| -> u64 {
        superblock
            .lines()
            .find_map(|l| l.strip_prefix(key))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or_else(|| panic!("no {key} in tune2fs -l:\n{superblock}"))
    };
    assert_eq!(
        field("Block count:") * field("Block size:"),
        64 << 20,
        "grown to the partition"
    );
    {
        let mount = Mount::new(&raw_node, &scratch.join("check-raw"), "ro");
        check_tree(mount.path(), "r-raw", false);
        let fstab = read(&mount.path().join("etc/fstab"));
        assert_eq!(fstab_uuid(&fstab, "/"), root_uuid(0));
    }
    // The qcow2 image of xfs: the planned UUID, no label, grown to 320 MiB.
    let xfs_node = loop_disk.partition(5);
    let id = blkid(&xfs_node);
    assert_eq!(id.get("TYPE").map(String::as_str), Some("xfs"), "{id:?}");
    assert_eq!(id.get("UUID"), Some(&root_uuid(1)), "{id:?}");
    assert_eq!(
        id.get("LABEL"),
        None,
        "the source's label is cleared: {id:?}"
    );
    {
        let mount = Mount::new(&xfs_node, &scratch.join("check-xfs"), "ro");
        check_tree(mount.path(), "q-qcow2", true);
        // The superblock: block size (be32 at 4) times data blocks (be64 at 8).
        let mut head = [0u8; 16];
        std::fs::File::open(&xfs_node)
            .and_then(|mut f| f.read_exact(&mut head))
            .expect("reading the xfs superblock");
        let block_size = u64::from(u32::from_be_bytes(head[4..8].try_into().unwrap()));
        let blocks = u64::from_be_bytes(head[8..16].try_into().unwrap());
        assert_eq!(block_size * blocks, 320 << 20, "grown to the partition");
        let fstab = read(&mount.path().join("etc/fstab"));
        assert_eq!(fstab_uuid(&fstab, "/"), root_uuid(1));
    }
    // The tar and rsync images, and the partition they share.
    for (number, name, index) in [(6u32, "t-tar", 2usize), (7, "s-rsync", 3)] {
        let node = loop_disk.partition(number);
        assert_eq!(blkid(&node).get("UUID"), Some(&root_uuid(index)), "{name}");
        let mount = Mount::new(&node, &scratch.join(format!("check-{name}")), "ro");
        check_tree(mount.path(), name, true);
        assert!(
            !mount.path().join("data/excluded").exists(),
            "{name}: rsync_flags were not applied"
        );
    }
    let shared = Mount::new(&loop_disk.partition(8), &scratch.join("check-common"), "ro");
    assert_eq!(read(&shared.path().join("t-tar.txt")), "from t-tar\n");
    assert_eq!(read(&shared.path().join("s-rsync.txt")), "from s-rsync\n");
    assert_eq!(read(&shared.path().join("same.txt")), "same from s-rsync\n");
}

#[test]
fn a_checksum_mismatch_over_http_fails_and_leaves_nothing_behind() {
    require_deploy_tools(TOOLS);
    let scratch = TempDir::new("sources-mismatch");
    for name in ["first", "bad"] {
        build_tree(&scratch.join(format!("tree-{name}")), name);
    }
    let first = scratch.join("first.tar");
    tarball(&scratch.join("tree-first"), None, &first);
    let bad = scratch.join("bad.tar.gz");
    tarball(&scratch.join("tree-bad"), Some("gzip"), &bad);
    let server = HttpServer::serve(BTreeMap::from([(
        "bad.tar.gz".to_owned(),
        std::fs::read(&bad).expect("reading the tarball"),
    )]));
    let wrong = sha256(&first);
    let config = scratch.join("provision.json");
    write_config(
        &config,
        json!([
            {"name": "first", "image_pull_url": first.display().to_string(), "target": "/"},
            {"name": "bad", "image_pull_url": server.url("bad.tar.gz"), "sha256": wrong,
             "target": "/"}
        ]),
        vec![
            partition("/", 24, &["first"], "ext4", None),
            partition("/", 24, &["bad"], "ext4", None),
        ],
        json!({}),
    );
    let disk = scratch.join("node.img");
    sparse_file(&disk, 320 << 20);
    let tmpdir = scratch.join("tmp");
    let out = deploy(&config, &disk, &tmpdir, &[]);
    assert_eq!(out.status.code(), Some(1), "{}", describe_output(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    eprintln!("{stderr}");
    let expected = format!(
        "image bad: checksum mismatch for {}: expected sha256 {wrong}, got {}",
        server.url("bad.tar.gz"),
        sha256(&bad)
    );
    assert!(stderr.contains(&expected), "{stderr}");
    assert!(
        stderr.contains("wiped the partition table of disk vda"),
        "{stderr}"
    );
    assert!(
        !has_mounts_below(scratch.path()),
        "something is still mounted"
    );
    let mountinfo = read(Path::new("/proc/self/mountinfo"));
    assert!(
        !mountinfo.contains(&tmpdir.display().to_string()),
        "{mountinfo}"
    );
    assert_eq!(attached_loops(&disk).trim(), "", "a loop device is left");
    assert_eq!(
        std::fs::read_dir(&tmpdir).expect("TMPDIR").count(),
        0,
        "the work directory or the download is left"
    );
}

#[test]
fn what_preflight_can_tell_is_refused_before_any_write() {
    require_deploy_tools(TOOLS);
    let scratch = TempDir::new("sources-refused");
    let tree = scratch.join("tree");
    build_tree(&tree, "small");
    let big = scratch.join("big.img");
    ext4_image(&tree, 48, &big);
    let small = scratch.join("small.img");
    ext4_image(&tree, 16, &small);
    let server = HttpServer::serve(BTreeMap::from([(
        "small.img".to_owned(),
        std::fs::read(&small).expect("reading the image"),
    )]));
    let daemon = RsyncDaemon::start(&scratch, scratch.path(), 2);
    let config = scratch.join("provision.json");
    write_config(
        &config,
        json!([
            {"name": "no-sum", "image_pull_url": server.url("small.img"), "target": "/"},
            {"name": "too-big", "image_pull_url": big.display().to_string(), "target": "/"},
            {"name": "wrong-type", "image_pull_url": small.display().to_string(),
             "target": "/"},
            {"name": "bad-sum", "image_pull_url": small.display().to_string(), "target": "/",
             "sha256": "0".repeat(64)},
            {"name": "gone", "image_pull_url": server.url("missing.tar"), "target": "/",
             "sha256": "1".repeat(64)},
            {"name": "no-daemon", "image_pull_url": "rsync://127.0.0.1:9/images/x/",
             "target": "/"},
            {"name": "no-path", "image_pull_url": daemon.daemon_path("missing/"),
             "target": "/"},
            {"name": "no-slash", "image_pull_url": daemon.daemon_path("tree"), "target": "/"}
        ]),
        vec![
            partition("/", 32, &["no-sum"], "ext4", None),
            partition("/", 32, &["too-big"], "ext4", None),
            partition("/", 320, &["wrong-type"], "xfs", None),
            partition("/", 32, &["bad-sum"], "ext4", None),
            partition("/", 32, &["gone"], "ext4", None),
            partition("/", 32, &["no-daemon"], "ext4", None),
            partition("/", 32, &["no-path"], "ext4", None),
            partition("/", 32, &["no-slash"], "ext4", None),
        ],
        json!({}),
    );
    let disk = scratch.join("node.img");
    gpt_disk_file(&disk, 1 << 30);
    let before = fingerprint(&disk);
    let tmpdir = scratch.join("tmp");
    let out = deploy(&config, &disk, &tmpdir, &[]);
    assert_eq!(out.status.code(), Some(3), "{}", describe_output(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    eprintln!("{stderr}");
    for expected in [
        format!(
            "deployer: image no-sum: {}: a download needs its \"sha256\" in the config",
            server.url("small.img")
        ),
        format!(
            "deployer: image too-big: source {}: the raw image is 48 MiB, larger than the \
             partition at / (32 MiB)",
            big.display()
        ),
        format!(
            "deployer: image wrong-type: source {}: a raw image of ext4, but the filesystem \
             planned at / is xfs",
            small.display()
        ),
        format!(
            "deployer: image bad-sum: checksum mismatch for {}: expected sha256 {}",
            small.display(),
            "0".repeat(64)
        ),
        format!(
            "deployer: image gone: source does not answer: {}: HTTP 404",
            server.url("missing.tar")
        ),
        "deployer: image no-daemon: rsync source rsync://127.0.0.1:9/images/x/ cannot be \
         listed: failed to connect to 127.0.0.1 (127.0.0.1): Connection refused (111)"
            .to_owned(),
        format!(
            "deployer: image no-path: rsync source {} cannot be listed: change_dir \
             \"missing\" (in images) failed: No such file or directory (2)",
            daemon.daemon_path("missing/")
        ),
        format!(
            "deployer: image no-slash: rsync source {0} names the directory tree itself, \
             which rsync would copy to /tree of the image; write {0}/ to copy its contents",
            daemon.daemon_path("tree")
        ),
    ] {
        assert!(
            stderr.contains(&expected),
            "missing {expected:?}:\n{stderr}"
        );
    }
    assert_eq!(fingerprint(&disk), before, "the disk was written");
    assert_eq!(attached_loops(&disk).trim(), "");
    assert_eq!(std::fs::read_dir(&tmpdir).expect("TMPDIR").count(), 0);

    // Allowed explicitly, the download without a checksum passes preflight.
    write_config(
        &config,
        json!([{"name": "no-sum", "image_pull_url": server.url("small.img"), "target": "/"}]),
        vec![partition("/", 32, &["no-sum"], "ext4", None)],
        json!({}),
    );
    let out = Command::new(env!("CARGO_BIN_EXE_deployer"))
        .arg("deploy")
        .arg(&config)
        .arg("--disk")
        .arg(format!("vda={}", disk.display()))
        .arg("--bootctl")
        .arg(static_bootctl())
        .arg("--allow-unverified-downloads")
        .env("TMPDIR", &tmpdir)
        .stdin(Stdio::null())
        .output()
        .expect("running deployer");
    assert_eq!(
        out.status.code(),
        Some(2),
        "it gets as far as asking: {}",
        describe_output(&out)
    );
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("use --yes"),
        "{}",
        describe_output(&out)
    );
    assert_eq!(fingerprint(&disk), before, "the disk was written");
}
