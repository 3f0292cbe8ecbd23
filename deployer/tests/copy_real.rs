//! `copy_tree` against real filesystems, as root: a source tree with every kind of entry
//! and attribute is copied onto an ext4 loop partition that has a second ext4 filesystem
//! mounted below it (at `usr/share/common`), and every attribute of every entry is compared
//! with the source: lstat fields, link targets, extended attributes, `getfacl` output,
//! sparse allocation, hard links. A second, overlapping tree copied on top checks the
//! overwrite report; a third, with a file where the destination has a directory, the error.
//!
//! Every test works in its own scratch directory and loop device; mounts and the loop
//! device are released by guards, also when a test fails. A missing tool fails the test
//! and names `scripts/setup`.

use std::collections::{BTreeMap, HashMap};
use std::ffi::OsStr;
use std::fs;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{lchown, symlink, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Command;

use deployer::apply::copy::sys::{lgetxattr, llistxattr, lsetxattr};
use deployer::apply::copy::{copy_tree, CopyReport};
use e2e::cmd;
use e2e::disk::{LoopDisk, Mount};
use e2e::tmp::TempDir;
use e2e::tools::require_tools;
use nix::sys::stat::{utimensat, UtimensatFlags};
use nix::sys::time::TimeSpec;

const TOOLS: &[&str] = &[
    "sfdisk",
    "mkfs.ext4",
    "losetup",
    "partx",
    "mount",
    "umount",
    "mknod",
    "setfacl",
    "getfacl",
];

/// Where the second filesystem is mounted inside the destination.
const COMMON: &str = "usr/share/common";
/// The entries that carry ACLs in the first tree.
const ACL_PATHS: &[&str] = &["etc/acl-file", "var/acl-dir", "usr/share/common/acl"];
/// A non-UTF-8 name, to show that names are bytes.
const ODD_NAME: &[u8] = b"odd name \xff\n";

/// A disk of two ext4 partitions: the first mounted at `root`, the second at
/// `root/usr/share/common`. Fields drop in order: inner mount, outer mount, loop device.
struct Destination {
    common: Mount,
    root: Mount,
    _disk: LoopDisk,
}

impl Destination {
    fn new(scratch: &TempDir) -> Self {
        let image = scratch.join("dest.img");
        let disk = LoopDisk::create(&image, 160 << 20);
        cmd::run_with_input(
            Command::new("sfdisk").arg("--quiet").arg(disk.device()),
            "label: gpt\n,64MiB,L\n,64MiB,L\n",
        );
        disk.reread_partitions();
        let (first, second) = (disk.partition(1), disk.partition(2));
        for part in [&first, &second] {
            cmd::run(Command::new("mkfs.ext4").args(["-q", "-F"]).arg(part));
        }
        let root = Mount::new(&first, &scratch.join("dest"), "");
        let common = Mount::new(&second, &root.path().join(COMMON), "");
        Destination {
            common,
            root,
            _disk: disk,
        }
    }

    fn path(&self) -> &Path {
        self.root.path()
    }
}

fn write(path: &Path, contents: &[u8], mode: u32) {
    if let Some(parent) = path.parent() {
        mkdir(parent);
    }
    fs::write(path, contents).unwrap_or_else(|e| panic!("writing {}: {e}", path.display()));
    chmod(path, mode);
}

fn mkdir(path: &Path) {
    fs::create_dir_all(path).unwrap_or_else(|e| panic!("creating {}: {e}", path.display()));
}

fn chmod(path: &Path, mode: u32) {
    fs::set_permissions(path, fs::Permissions::from_mode(mode))
        .unwrap_or_else(|e| panic!("chmod {}: {e}", path.display()));
}

fn link(target: &str, path: &Path) {
    symlink(target, path).unwrap_or_else(|e| panic!("symlink {}: {e}", path.display()));
}

fn hard_link(existing: &Path, path: &Path) {
    fs::hard_link(existing, path).unwrap_or_else(|e| panic!("linking {}: {e}", path.display()));
}

fn set_xattr(path: &Path, name: &str, value: &[u8]) {
    let c_name = std::ffi::CString::new(name).expect("no NUL in a name");
    lsetxattr(path, &c_name, value)
        .unwrap_or_else(|e| panic!("setting {name} on {}: {e}", path.display()));
}

/// Sets both times of `path` (not following a symlink), to the nanosecond.
fn set_times(path: &Path, atime: (i64, i64), mtime: (i64, i64)) {
    let spec = |(sec, nsec)| TimeSpec::new(sec, nsec);
    utimensat(
        None,
        path,
        &spec(atime),
        &spec(mtime),
        UtimensatFlags::NoFollowSymlink,
    )
    .unwrap_or_else(|e| panic!("setting the times of {}: {e}", path.display()));
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("a clock after 1970")
        .as_secs() as i64
}

/// A `security.capability` value (revision 2, effective) granting `cap_net_raw`.
fn net_raw_capability() -> Vec<u8> {
    [0x0200_0001u32, 1 << 13, 0, 0, 0]
        .iter()
        .flat_map(|w| w.to_le_bytes())
        .collect()
}

/// The first tree: every kind of entry and attribute the copy keeps.
fn populate(root: &Path) {
    let p = |rel: &str| root.join(rel);
    write(&p("etc/hostname"), b"node\n", 0o644);
    write(&p("etc/empty"), b"", 0o600);
    write(&p("etc/acl-file"), b"secret\n", 0o640);
    write(&p(&format!("{COMMON}/acl")), b"shared\n", 0o644);
    write(&p("usr/bin/su"), b"#!/bin/true\n", 0o4755);
    write(&p("usr/bin/wall"), b"#!/bin/true\n", 0o2755);
    write(&p("usr/bin/ping"), b"ping\n", 0o755);
    // Bits a umask would take away at creation.
    write(&p("var/world-writable"), b"anyone\n", 0o666);
    write(&p("usr/bin/a"), b"one inode, two names\n", 0o755);
    hard_link(&p("usr/bin/a"), &p("usr/bin/a-link"));
    write(
        &p(&format!("{COMMON}/h1")),
        b"linked on the common filesystem\n",
        0o644,
    );
    hard_link(&p(&format!("{COMMON}/h1")), &p(&format!("{COMMON}/h2")));
    // A hard link across the mount point below the destination: one copy per filesystem.
    write(&p("usr/lib/split"), b"split by a mount point\n", 0o644);
    hard_link(&p("usr/lib/split"), &p(&format!("{COMMON}/split-link")));
    write(
        &p("usr/lib/libx.so.1"),
        &[0x7f, b'E', b'L', b'F', 0, 1, 2, 3],
        0o644,
    );
    link("/usr/bin", &p("bin"));
    link("libx.so.1", &p("usr/lib/libx.so"));
    // A hard link to the symlink itself (linkat does not follow it).
    hard_link(&p("usr/lib/libx.so"), &p("usr/lib/libx.so.same"));
    link("nowhere/at/all", &p("usr/lib/dangling"));
    write(&p("home/user/notes"), b"owned by someone else\n", 0o600);
    lchown(p("home/user/notes"), Some(1234), Some(5678)).expect("chown notes");
    lchown(p("home/user"), Some(1234), Some(5678)).expect("chown home/user");
    link("notes", &p("home/user/notes-link"));
    lchown(p("home/user/notes-link"), Some(1234), Some(5678)).expect("chown a symlink");
    write(&root.join(OsStr::from_bytes(ODD_NAME)), b"odd\n", 0o644);

    mkdir(&p("dev"));
    mkdir(&p("run"));
    for args in [
        &["dev/null-like", "c", "1", "3"][..],
        &["dev/loop-like", "b", "7", "200"],
        &["run/initctl", "p"],
    ] {
        cmd::run(Command::new("mknod").arg(p(args[0])).args(&args[1..]));
    }
    chmod(&p("dev/null-like"), 0o666);
    chmod(&p("run/initctl"), 0o600);
    mkdir(&p("tmp"));
    chmod(&p("tmp"), 0o1777);
    mkdir(&p("var/acl-dir"));
    mkdir(&p("var/mail"));
    chmod(&p("var/mail"), 0o2775);

    // A sparse file: 64 MiB with two 4 KiB data blocks.
    let sparse = p("var/sparse.img");
    let file = fs::File::create(&sparse).expect("creating the sparse file");
    std::os::unix::fs::FileExt::write_all_at(&file, &[0x5a; 4096], 0).expect("writing");
    std::os::unix::fs::FileExt::write_all_at(&file, &[0xa5; 4096], 32 << 20).expect("writing");
    file.set_len(64 << 20).expect("sizing the sparse file");
    drop(file);

    set_xattr(&p("etc/hostname"), "user.origin", b"copy test");
    set_xattr(&p("var/acl-dir"), "user.empty", b"");
    set_xattr(
        &p("usr/bin/ping"),
        "security.capability",
        &net_raw_capability(),
    );
    cmd::run(
        Command::new("setfacl")
            .args(["-m", "u:1234:rw,g:5678:r"])
            .arg(p("etc/acl-file")),
    );
    cmd::run(
        Command::new("setfacl")
            .args(["-m", "u:1234:rwx"])
            .arg(p("var/acl-dir")),
    );
    cmd::run(
        Command::new("setfacl")
            .args(["-d", "-m", "g:5678:rx"])
            .arg(p("var/acl-dir")),
    );
    cmd::run(
        Command::new("setfacl")
            .args(["-m", "u:1234:r"])
            .arg(p(&format!("{COMMON}/acl"))),
    );

    // Times last, deepest first: creating entries moves a directory's mtime. Every other
    // entry gets an atime an hour ahead, one per entry, which reading it does not move
    // (relatime moves an atime older than the inode's change or a day).
    let ahead = now() + 3600;
    for (n, rel) in entries(root).iter().enumerate() {
        let path = root.join(rel);
        let meta = lstat(&path);
        if !meta.is_dir() {
            set_times(&path, (ahead, n as i64), (meta.mtime(), meta.mtime_nsec()));
        }
    }
    set_times(
        &p("etc/hostname"),
        (ahead, 987_654_321),
        (1_577_934_245, 123_456_789),
    );
    set_times(&p("bin"), (ahead, 1), (1_600_000_000, 5));
    set_times(&p(COMMON), (ahead, 2), (1_610_000_000, 6));
    set_times(&p("etc"), (ahead, 3), (1_620_000_000, 7));
    chmod(&p(COMMON), 0o775);
    chmod(root, 0o711);
    lchown(root, Some(1234), Some(5678)).expect("chown the source root");
}

/// Every entry below `root`, relative, in sorted order.
fn entries(root: &Path) -> Vec<PathBuf> {
    fn walk(root: &Path, dir: &Path, out: &mut Vec<PathBuf>) {
        for entry in fs::read_dir(dir).unwrap_or_else(|e| panic!("reading {}: {e}", dir.display()))
        {
            let path = entry.expect("a directory entry").path();
            out.push(path.strip_prefix(root).expect("below the root").to_owned());
            if path.symlink_metadata().expect("lstat").is_dir() {
                walk(root, &path, out);
            }
        }
    }
    let mut out = Vec::new();
    walk(root, root, &mut out);
    out.sort();
    out
}

fn lstat(path: &Path) -> fs::Metadata {
    path.symlink_metadata()
        .unwrap_or_else(|e| panic!("lstat {}: {e}", path.display()))
}

/// Every extended attribute of `path` (not following a symlink), ACLs included.
fn xattrs(path: &Path) -> BTreeMap<Vec<u8>, Vec<u8>> {
    let mut names = vec![0u8; 64 << 10];
    let len = llistxattr(path, &mut names[..])
        .unwrap_or_else(|e| panic!("listing the xattrs of {}: {e}", path.display()));
    names[..len]
        .split(|&b| b == 0)
        .filter(|name| !name.is_empty())
        .map(|name| {
            let mut value = vec![0u8; 64 << 10];
            let name_str = std::ffi::CString::new(name).expect("no NUL in a name");
            let len = lgetxattr(path, name_str.as_c_str(), &mut value[..])
                .unwrap_or_else(|e| panic!("reading an xattr of {}: {e}", path.display()));
            value.truncate(len);
            (name.to_vec(), value)
        })
        .collect()
}

/// `getfacl` of `rel` as seen from inside `root` (so the header names the same path).
fn getfacl(root: &Path, rel: &str) -> String {
    cmd::run(
        Command::new("getfacl")
            .args(["-P", "-n", rel])
            .current_dir(root),
    )
}

/// Asserts that the entry `rel` of `dest` matches `rel` of `source` in everything the copy
/// keeps, except the link count when `split_link` (a hard link split by a mount point).
fn assert_same_entry(source: &Path, dest: &Path, rel: &Path, split_link: bool) {
    let (from, to) = (source.join(rel), dest.join(rel));
    let (a, b) = (lstat(&from), lstat(&to));
    let shown = rel.display();
    assert_eq!(
        a.mode(),
        b.mode(),
        "{shown}: mode {:o} vs {:o}",
        a.mode(),
        b.mode()
    );
    assert_eq!((a.uid(), a.gid()), (b.uid(), b.gid()), "{shown}: owner");
    assert_eq!(
        (a.mtime(), a.mtime_nsec()),
        (b.mtime(), b.mtime_nsec()),
        "{shown}: mtime"
    );
    assert_eq!(xattrs(&from), xattrs(&to), "{shown}: extended attributes");
    let file_type = a.file_type();
    if file_type.is_dir() {
        return;
    }
    assert_eq!(a.len(), b.len(), "{shown}: size");
    assert_eq!(a.rdev(), b.rdev(), "{shown}: device number");
    if !split_link {
        assert_eq!(a.nlink(), b.nlink(), "{shown}: link count");
    }
    if file_type.is_symlink() {
        assert_eq!(
            fs::read_link(&from).expect("readlink"),
            fs::read_link(&to).expect("readlink"),
            "{shown}: link target"
        );
    } else if file_type.is_file() {
        assert_eq!(
            fs::read(&from).expect("reading the source"),
            fs::read(&to).expect("reading the copy"),
            "{shown}: contents"
        );
    }
}

/// What copying `source` should report: its non-directory entries, and the sizes of its
/// regular files with a hard-linked one counted once per destination filesystem.
fn expected_counts(source: &Path) -> (u64, u64) {
    let mut files = 0;
    let mut bytes = 0;
    let mut seen = HashMap::new();
    for rel in entries(source) {
        let meta = lstat(&source.join(&rel));
        if meta.is_dir() {
            continue;
        }
        files += 1;
        if meta.is_file()
            && seen
                .insert((meta.ino(), rel.starts_with(COMMON)), ())
                .is_none()
        {
            bytes += meta.len();
        }
    }
    (files, bytes)
}

#[test]
fn every_kind_of_entry_and_attribute_survives_the_copy_and_overwrites_are_reported() {
    require_tools(TOOLS);
    let scratch = TempDir::new("copy-real");
    let source = scratch.join("source");
    mkdir(&source);
    populate(&source);
    let dest = Destination::new(&scratch);
    let before: Vec<PathBuf> = entries(dest.path());
    assert_eq!(
        before,
        [
            PathBuf::from("lost+found"),
            "usr".into(),
            "usr/share".into(),
            "usr/share/common".into(),
            "usr/share/common/lost+found".into(),
        ]
    );

    let report = copy_tree(&source, dest.path()).expect("copying the first tree");
    let (files, bytes) = expected_counts(&source);
    assert_eq!(
        report,
        CopyReport {
            files,
            bytes,
            overwritten: Vec::new()
        }
    );

    // Access times, before anything reads the copy or the source again.
    let atimes = |root: &Path| -> Vec<(PathBuf, i64, i64)> {
        entries(&source)
            .into_iter()
            .map(|rel| (lstat(&root.join(&rel)), rel))
            .filter(|(meta, _)| !meta.is_dir())
            .map(|(meta, rel)| (rel, meta.atime(), meta.atime_nsec()))
            .collect()
    };
    assert_eq!(atimes(&source), atimes(dest.path()), "access times");

    let copied = entries(dest.path());
    let mut expected = entries(&source);
    expected.extend(["lost+found".into(), "usr/share/common/lost+found".into()]);
    expected.sort();
    assert_eq!(
        copied, expected,
        "the copy holds exactly the source's entries"
    );
    for rel in entries(&source) {
        let split =
            rel == Path::new("usr/lib/split") || rel == Path::new(COMMON).join("split-link");
        assert_same_entry(&source, dest.path(), &rel, split);
    }
    // The top directory and the mount point took their source directory's attributes.
    let root = lstat(dest.path());
    assert_eq!(
        (root.mode() & 0o7777, root.uid(), root.gid()),
        (0o711, 1234, 5678)
    );
    assert_eq!(lstat(&dest.path().join(COMMON)).mode() & 0o7777, 0o775);

    // Entries below the mount point are on the second filesystem.
    let common_dev = lstat(dest.common.path()).dev();
    assert_ne!(common_dev, root.dev());
    assert_eq!(
        lstat(&dest.path().join(COMMON).join("h1")).dev(),
        common_dev
    );
    // Hard links: one inode for each pair on one filesystem; the split pair copied twice.
    let ino = |rel: &str| lstat(&dest.path().join(rel)).ino();
    assert_eq!(ino("usr/bin/a"), ino("usr/bin/a-link"));
    assert_eq!(ino(&format!("{COMMON}/h1")), ino(&format!("{COMMON}/h2")));
    assert_eq!(ino("usr/lib/libx.so"), ino("usr/lib/libx.so.same"));
    assert!(lstat(&dest.path().join("usr/lib/libx.so.same")).is_symlink());
    assert_eq!(lstat(&dest.path().join("usr/lib/split")).nlink(), 1);
    assert_eq!(
        lstat(&dest.path().join(COMMON).join("split-link")).nlink(),
        1
    );
    // The sparse file kept its holes: 8 KiB of data in 64 MiB.
    let sparse = lstat(&dest.path().join("var/sparse.img"));
    assert_eq!(sparse.len(), 64 << 20);
    assert!(
        sparse.blocks() * 512 <= 64 << 10,
        "{} blocks allocated",
        sparse.blocks()
    );
    assert!(sparse.blocks() <= lstat(&source.join("var/sparse.img")).blocks() + 8);
    // ACLs as getfacl shows them, default ACL included.
    for rel in ACL_PATHS {
        let shown = getfacl(&source, rel);
        assert!(
            shown.contains("user:1234:"),
            "{rel} has no ACL in the source:\n{shown}"
        );
        assert_eq!(shown, getfacl(dest.path(), rel), "{rel}: getfacl");
    }
    assert!(getfacl(dest.path(), "var/acl-dir").contains("default:group:5678:r-x"));
    assert_eq!(
        xattrs(&dest.path().join("usr/bin/ping")).get(&b"security.capability"[..]),
        Some(&net_raw_capability())
    );

    // A second image's tree onto the same filesystems: files replaced and reported,
    // directories (the mount point among them) merged and not reported.
    let second = scratch.join("second");
    write(&second.join("etc/hostname"), b"second\n", 0o600);
    write(&second.join("etc/new.conf"), b"new\n", 0o644);
    link("hostname", &second.join("etc/empty"));
    write(
        &second.join("bin/tool"),
        b"a directory where a symlink was\n",
        0o755,
    );
    write(
        &second.join(COMMON).join("h1"),
        b"replaces one name of a pair\n",
        0o644,
    );
    write(&second.join("usr/bin/new"), b"a new pair\n", 0o755);
    hard_link(&second.join("usr/bin/new"), &second.join("usr/bin/a-link"));
    mkdir(&second.join("dev"));
    cmd::run(
        Command::new("mknod")
            .arg(second.join("dev/null-like"))
            .arg("p"),
    );
    write(
        &second.join("etc/newdir/file"),
        b"in a new directory\n",
        0o640,
    );
    cmd::run(
        Command::new("mknod")
            .arg(second.join("etc/newdir/fifo"))
            .arg("p"),
    );
    chmod(&second, 0o755);
    // Default ACLs in the destination, which new entries would inherit: the copy gives
    // every entry the source's ACLs, none here.
    for dir in ["etc", COMMON] {
        cmd::run(
            Command::new("setfacl")
                .args(["-d", "-m", "u:1234:rwx"])
                .arg(dest.path().join(dir)),
        );
    }
    let h2_before = fs::read(dest.path().join(COMMON).join("h2")).expect("reading h2");

    let report = copy_tree(&second, dest.path()).expect("copying the second tree");
    let overwritten: Vec<PathBuf> = [
        "bin",
        "dev/null-like",
        "etc/empty",
        "etc/hostname",
        "usr/bin/a-link",
        "usr/share/common/h1",
    ]
    .iter()
    .map(PathBuf::from)
    .collect();
    let (files, bytes) = expected_counts(&second);
    assert_eq!(
        report,
        CopyReport {
            files,
            bytes,
            overwritten
        }
    );
    for rel in entries(&second) {
        assert_same_entry(&second, dest.path(), &rel, false);
    }
    for rel in [
        "etc",
        "etc/new.conf",
        "etc/newdir",
        "etc/newdir/file",
        COMMON,
    ] {
        let shown = getfacl(dest.path(), rel);
        assert!(!shown.contains("1234"), "{rel} kept an ACL:\n{shown}");
    }
    // What the second tree does not name is the first tree's still.
    for rel in [
        "usr/bin/su",
        "usr/bin/a",
        "var/sparse.img",
        "home/user/notes",
    ] {
        assert_same_entry(&source, dest.path(), Path::new(rel), rel == "usr/bin/a");
    }
    assert_eq!(lstat(&dest.path().join("usr/bin/a")).nlink(), 1);
    assert_eq!(ino("usr/bin/new"), ino("usr/bin/a-link"));
    assert_eq!(
        fs::read(dest.path().join(COMMON).join("h2")).expect("reading h2"),
        h2_before
    );
    assert_eq!(lstat(&dest.path().join(COMMON).join("h2")).nlink(), 1);
    assert_eq!(lstat(dest.path()).mode() & 0o7777, 0o755);

    // A file where the destination has a directory: refused, naming the path.
    let third = scratch.join("third");
    write(&third.join("usr"), b"not a directory\n", 0o644);
    let err = copy_tree(&third, dest.path()).expect_err("a file over a directory");
    assert_eq!(
        format!("{err:#}"),
        format!(
            "{}: cannot replace a directory with the image's non-directory",
            dest.path().join("usr").display()
        )
    );
    drop(dest);
}

#[test]
fn a_source_or_destination_that_is_not_a_directory_is_refused_before_any_write() {
    let scratch = TempDir::new("copy-refused");
    let file = scratch.join("file");
    write(&file, b"x", 0o644);
    let dir = scratch.join("dir");
    mkdir(&dir);
    let missing = scratch.join("missing");

    let err = copy_tree(&file, &dir).expect_err("a file as the source");
    assert_eq!(
        err.to_string(),
        format!("image source {}: not a directory", file.display())
    );
    let err = copy_tree(&dir, &file).expect_err("a file as the destination");
    assert_eq!(
        err.to_string(),
        format!("copy destination {}: not a directory", file.display())
    );
    let err = copy_tree(&missing, &dir).expect_err("a missing source");
    assert!(
        format!("{err:#}").starts_with(&format!("image source {}: ", missing.display())),
        "{err:#}"
    );
    let err = copy_tree(&dir, &missing).expect_err("a missing destination");
    assert!(
        format!("{err:#}").starts_with(&format!("copy destination {}: ", missing.display())),
        "{err:#}"
    );
    assert_eq!(fs::read(&file).expect("reading the file"), b"x");
    assert!(entries(&dir).is_empty());
}
