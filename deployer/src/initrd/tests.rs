use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;

use super::*;

const DIR: u32 = 0o040_755;
const EXE: u32 = 0o100_755;
const FILE: u32 = 0o100_644;
const LINK: u32 = 0o120_777;

/// Appends one newc member (`magic` 070701 or 070702) to `out`, padded as the kernel reads it.
fn member(out: &mut Vec<u8>, magic: &str, name: &str, mode: u32, data: &[u8]) {
    let name_len = name.len() as u32 + 1;
    out.extend(magic.as_bytes());
    for field in [
        0,
        mode,
        0,
        0,
        1,
        0,
        data.len() as u32,
        0,
        0,
        0,
        0,
        name_len,
        0,
    ] {
        out.extend(format!("{field:08X}").as_bytes());
    }
    out.extend(name.as_bytes());
    out.push(0);
    out.resize(out.len().next_multiple_of(4), 0);
    out.extend(data);
    out.resize(out.len().next_multiple_of(4), 0);
}

/// Appends an archive of `members` and its trailer to `out`.
fn archive(out: &mut Vec<u8>, members: &[(&str, u32, &[u8])]) {
    for &(name, mode, data) in members {
        member(out, "070701", name, mode, data);
    }
    member(out, "070701", "TRAILER!!!", 0, b"");
}

fn read(bytes: &[u8]) -> Result<(Vec<Entry>, After), String> {
    let mut entries = Vec::new();
    let after = read_archives(&mut &bytes[..], &mut entries)?;
    Ok((entries, after))
}

fn names(set: &BTreeSet<String>) -> Vec<&str> {
    set.iter().map(String::as_str).collect()
}

#[test]
fn programs_are_executables_and_symlinks_right_under_the_program_directories() {
    let mut bytes = Vec::new();
    archive(
        &mut bytes,
        &[
            (".", DIR, b""),
            ("usr/sbin", DIR, b""),
            ("usr/sbin/lvm", EXE, b"\x7fELF..."),
            ("sbin/mdadm", EXE, b"x"),
            ("bin/sh", LINK, b"busybox"),
            ("./usr/bin/kmod", EXE, b""),
            ("usr/sbin/lvm.conf", FILE, b"not a program"),
            ("usr/sbin/sub", DIR, b""),
            ("usr/sbin/sub/deep", EXE, b""),
            ("lib/udev/lvm", EXE, b""),
            ("lvm", EXE, b""),
        ],
    );
    let (entries, after) = read(&bytes).unwrap();
    assert_eq!(after, After::End);
    assert_eq!(entries.len(), 11);
    assert_eq!(
        entries[2],
        Entry {
            path: "usr/sbin/lvm".into(),
            mode: EXE
        }
    );
    assert_eq!(names(&programs(&entries)), ["kmod", "lvm", "mdadm", "sh"]);
}

#[test]
fn archives_follow_each_other_with_zero_padding_then_a_compressed_part() {
    let mut bytes = Vec::new();
    archive(
        &mut bytes,
        &[("kernel/x86/microcode/GenuineIntel.bin", FILE, b"ucode")],
    );
    bytes.resize(bytes.len() + 512, 0);
    member(&mut bytes, "070702", "sbin/mdadm", EXE, b"crc format");
    member(&mut bytes, "070702", "TRAILER!!!", 0, b"");
    bytes.resize(bytes.len() + 4, 0);
    let compressed_at = bytes.len() as u64;
    bytes.extend([0x28, 0xb5, 0x2f, 0xfd, 0, 0, 0, 0]);
    let (entries, after) = read(&bytes).unwrap();
    let paths: Vec<&str> = entries.iter().map(|e| e.path.as_str()).collect();
    assert_eq!(
        paths,
        ["kernel/x86/microcode/GenuineIntel.bin", "sbin/mdadm"]
    );
    assert_eq!(after, After::Other(compressed_at));
}

#[test]
fn compressions_are_told_by_their_magic_bytes() {
    let cases: [(&[u8], Option<&str>); 9] = [
        (b"\x1f\x8b\x08\x00", Some("gzip")),
        (b"BZh91AY", Some("bzip2")),
        (b"\x5d\x00\x00\x80\x00", Some("lzma")),
        (b"\xfd7zXZ\x00\x00", Some("xz")),
        (b"\x89LZO\x00", Some("lzo")),
        (b"\x02\x21\x4c\x18", Some("lz4")),
        (b"\x28\xb5\x2f\xfd", Some("zstd")),
        // lz4's frame format, which the kernel does not unpack.
        (b"\x04\x22\x4d\x18", None),
        (b"\xfd7zX", None),
    ];
    for (head, expected) in cases {
        assert_eq!(
            Compression::sniff(head).map(|c| c.name),
            expected,
            "{head:02x?}"
        );
    }
}

#[test]
fn bad_archives_are_one_line_naming_the_byte() {
    let mut whole = Vec::new();
    archive(&mut whole, &[("usr/sbin/lvm", EXE, b"12345678")]);
    let inside = "truncated: it ends inside the cpio member at byte";
    let truncations = [
        (50, format!("{inside} 0")),
        (120, format!("{inside} 0")),
        (130, format!("{inside} 0")),
        (
            132,
            "truncated: its cpio archive ends at byte 132 without TRAILER!!!".into(),
        ),
        (140, format!("{inside} 132")),
    ];
    for (len, expected) in truncations {
        assert_eq!(read(&whole[..len]).unwrap_err(), expected, "{len} bytes");
    }
    let odc = "old portable cpio format at byte 0: the kernel unpacks only newc";
    let cases = [
        (
            [&[0u8, 0][..], &whole].concat(),
            "cpio header at unaligned byte 2",
        ),
        ([b"070707".as_slice(), &[b'0'; 200]].concat(), odc),
        (b"0x0701".repeat(30), "no cpio header at byte 0"),
        (
            [&whole[..], b"\xc7\x71\x00\x00"].concat(),
            "old binary cpio format at byte 256: the kernel unpacks only newc",
        ),
        (
            [b"070701".as_slice(), &[b'z'; 200]].concat(),
            "bad cpio header at byte 0",
        ),
    ];
    for (bytes, expected) in cases {
        assert_eq!(read(&bytes).unwrap_err(), expected);
    }
    let mut long_name = Vec::new();
    member(&mut long_name, "070701", &"a".repeat(5000), FILE, b"");
    assert_eq!(
        read(&long_name).unwrap_err(),
        "bad name length 5001 in the cpio header at byte 0"
    );
}

// The host's files, through the real tools.

/// Writes an initrd as Debian's and dracut's are: an uncompressed early cpio with
/// microcode, then the main cpio, compressed by `compress` (a shell command).
fn write_initrd(dir: &Path, compress: &str) -> std::path::PathBuf {
    let tree = |name: &str, files: &[(&str, u32)]| {
        let root = dir.join(name);
        for &(path, mode) in files {
            let file = root.join(path);
            std::fs::create_dir_all(file.parent().unwrap()).unwrap();
            std::fs::write(&file, path).unwrap();
            std::fs::set_permissions(&file, std::os::unix::fs::PermissionsExt::from_mode(mode))
                .unwrap();
        }
        root
    };
    let early = tree("early", &[("kernel/x86/microcode/AuthenticAMD.bin", 0o644)]);
    let main = tree(
        "main",
        &[
            ("usr/sbin/lvm", 0o755),
            ("sbin/mdadm", 0o755),
            ("init", 0o755),
            ("etc/lvm/lvm.conf", 0o644),
        ],
    );
    std::os::unix::fs::symlink("mdadm", main.join("sbin/mdmon")).unwrap();
    let initrd = dir.join("initrd.img");
    let script = format!(
        "set -e; (cd {early} && find . | LC_ALL=C sort | cpio -o -H newc --quiet) >{out}; \
         (cd {main} && find . | LC_ALL=C sort | cpio -o -H newc --quiet) | {compress} >>{out}",
        early = early.display(),
        main = main.display(),
        out = initrd.display(),
    );
    sh(&script);
    initrd
}

fn sh(script: &str) -> String {
    let out = Command::new("sh").args(["-c", script]).output().unwrap();
    assert!(
        out.status.success(),
        "{script}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// The paths `lsinitramfs` lists for `initrd`, and the ones [`list`] reads.
fn both_listings(initrd: &Path) -> (BTreeSet<String>, BTreeSet<String>) {
    let theirs = sh(&format!("lsinitramfs '{}'", initrd.display()));
    let ours = list(initrd).unwrap().into_iter().map(|e| e.path).collect();
    (theirs.lines().map(str::to_owned).collect(), ours)
}

#[test]
fn the_hosts_debian_initrd_lists_as_lsinitramfs_lists_it_with_lvm_and_mdadm() {
    let kernel = e2e::fixture::host_kernel();
    let initrd = Path::new("/boot").join(format!("initrd.img-{}", kernel.version));
    let (theirs, ours) = both_listings(&initrd);
    assert!(theirs.len() > 100, "{} paths", theirs.len());
    assert_eq!(ours, theirs);
    let programs = programs_in(&initrd).unwrap();
    assert!(
        programs.contains("lvm") && programs.contains("mdadm"),
        "{programs:?}"
    );
}

#[test]
fn a_compressed_main_cpio_after_an_early_one_is_read_whatever_its_compression() {
    for compress in [
        "gzip -9",
        "xz --check=crc32",
        "zstd -q -19",
        "xz --format=lzma",
    ] {
        let dir = tempfile::tempdir().unwrap();
        let initrd = write_initrd(dir.path(), compress);
        let (theirs, ours) = both_listings(&initrd);
        assert!(
            ours.contains("kernel/x86/microcode/AuthenticAMD.bin"),
            "{compress}: {ours:?}"
        );
        assert_eq!(ours, theirs, "{compress}");
        let programs = programs_in(&initrd).unwrap();
        assert_eq!(names(&programs), ["lvm", "mdadm", "mdmon"], "{compress}");
    }
}

#[test]
fn truncated_garbage_and_oversized_initrds_are_one_line_errors() {
    let dir = tempfile::tempdir().unwrap();
    let initrd = write_initrd(dir.path(), "gzip");
    let bytes = std::fs::read(&initrd).unwrap();
    let early_len = bytes.windows(2).position(|w| w == [0x1f, 0x8b]).unwrap();
    let shown = initrd.display();
    let error = |bytes: &[u8]| {
        std::fs::write(&initrd, bytes).unwrap();
        format!("{:#}", list(&initrd).unwrap_err())
    };
    assert_eq!(
        error(&bytes[..bytes.len() - 30]),
        format!("initrd {shown}: `gzip -dc` failed (exit 1): gzip: stdin: unexpected end of file")
    );
    assert_eq!(
        error(&bytes[..200]),
        format!("initrd {shown}: truncated: it ends inside the cpio member at byte 112")
    );
    assert_eq!(
        error(&[&bytes[..early_len], b"garbage!"].concat()),
        format!(
            "initrd {shown}: neither a cpio archive nor compressed data at byte {early_len} \
             (bytes 67 61 72 62 61 67 65 21)"
        )
    );
    assert_eq!(error(b""), format!("initrd {shown}: no cpio archive in it"));
    std::fs::write(&initrd, &bytes).unwrap();
    assert_eq!(
        format!("{:#}", list_bounded(&initrd, 100).unwrap_err()),
        format!("initrd {shown}: `gzip -dc` decompresses it to more than 100 bytes")
    );
    let missing = dir.path().join("missing");
    assert!(format!("{:#}", list(&missing).unwrap_err())
        .starts_with(&format!("initrd {}: cannot read it: ", missing.display())));
}

#[test]
fn a_compressed_part_that_is_not_cpio_names_what_came_out() {
    let dir = tempfile::tempdir().unwrap();
    let initrd = dir.path().join("initrd.img");
    sh(&format!(
        "printf 'not a cpio archive' | gzip >'{}'",
        initrd.display()
    ));
    assert_eq!(
        format!("{:#}", list(&initrd).unwrap_err()),
        format!(
            "initrd {}: no cpio header at byte 0 in what `gzip -dc` decompresses",
            initrd.display()
        )
    );
}
