//! What an image file holds, told by its content, never by its name.
//!
//! [`sniff`] is pure: from the first bytes of a file it tells a qcow2 image (`QFI\xfb`,
//! with its virtual size), a compressed stream (gzip `1f 8b`, xz `fd 37 7a 58 5a 00`,
//! zstd `28 b5 2f fd`), a tar archive (`ustar` at byte 257 and a header checksum that
//! adds up) and a filesystem image (ext2/3/4 superblock magic `0xEF53`, xfs `XFSB`, with
//! the filesystem's size read from the superblock). [`detect`] finishes the job for a
//! compressed stream: it decompresses the start of it with the real tool (`gzip`, `xz`,
//! `zstd`) and checks that a tar header comes out. A compressed raw image is not a
//! format the deployer takes.
//!
//! [`qcow2_filesystem`] reads the start of a qcow2 image's virtual disk with
//! `qemu-img dd` into a scratch file and tells the filesystem in it, so that a qcow2
//! image is checked against its partition before anything is written.

use std::io::{Read, Write};
use std::path::Path;
use std::process::{Command, Stdio};

use anyhow::{bail, Context};
use shared::bytes::{be32, le32};

use crate::config::FileSystem;
use crate::exec::run;

/// How many bytes of a file [`sniff`] and [`detect`] look at: enough for every magic and
/// for the start of a compressed tar archive to decompress.
pub const HEAD_BYTES: usize = 1 << 20;

/// The size of a tar header block.
const TAR_BLOCK: usize = 512;

/// The compression of a tar archive.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    None,
    Gzip,
    Xz,
    Zstd,
}

impl Compression {
    /// The name used in messages (`gzip`, `xz`, `zstd`; `none`).
    pub fn name(self) -> &'static str {
        match self {
            Compression::None => "none",
            Compression::Gzip => "gzip",
            Compression::Xz => "xz",
            Compression::Zstd => "zstd",
        }
    }

    /// The tool that decompresses it to stdout, reading stdin.
    fn decompressor(self) -> Option<&'static [&'static str]> {
        match self {
            Compression::None => None,
            Compression::Gzip => Some(&["gzip", "-dc"]),
            Compression::Xz => Some(&["xz", "-dc"]),
            Compression::Zstd => Some(&["zstd", "-dcq"]),
        }
    }

    /// GNU tar's option that selects this decompressor (none for a plain archive).
    pub fn tar_option(self) -> Option<&'static str> {
        match self {
            Compression::None => None,
            Compression::Gzip => Some("--gzip"),
            Compression::Xz => Some("--xz"),
            Compression::Zstd => Some("--zstd"),
        }
    }
}

/// A filesystem image: its type and the size its superblock gives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FsImage {
    pub fs_type: FileSystem,
    /// Bytes the filesystem spans.
    pub size: u64,
}

/// What a qcow2 header says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Qcow2Header {
    /// The size of the virtual disk in bytes.
    pub virtual_size: u64,
    /// The image names a backing file (it would read another file of this host).
    pub has_backing_file: bool,
    /// The image keeps its data in an external data file.
    pub has_data_file: bool,
}

/// What the first bytes of a file say.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sniffed {
    Qcow2(Qcow2Header),
    /// A compressed stream; what it holds is told by decompressing it.
    Compressed(Compression),
    /// An uncompressed tar archive.
    Tar,
    Filesystem(FsImage),
    /// A filesystem the deployer cannot take as a raw image (`vfat`, `swap`).
    UnsupportedFilesystem(&'static str),
    Unknown,
}

/// The format of an image file, detected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileFormat {
    Tar(Compression),
    /// A raw filesystem image.
    Raw(FsImage),
    /// A qcow2 image of a filesystem; the filesystem is `None` until it has been read
    /// (see [`qcow2_filesystem`]).
    Qcow2 {
        header: Qcow2Header,
        filesystem: Option<FsImage>,
    },
}

impl FileFormat {
    /// How messages name it: `tar`, `tar (gzip)`, `raw ext4 image`, `qcow2 image`.
    pub fn describe(&self) -> String {
        match self {
            FileFormat::Tar(Compression::None) => "tar".to_owned(),
            FileFormat::Tar(c) => format!("tar ({})", c.name()),
            FileFormat::Raw(fs) => format!("raw {} image", fs.fs_type.as_str()),
            FileFormat::Qcow2 {
                filesystem: Some(fs),
                ..
            } => format!("qcow2 image of {}", fs.fs_type.as_str()),
            FileFormat::Qcow2 { .. } => "qcow2 image".to_owned(),
        }
    }
}

/// Tells what `head` (the first bytes of a file) is, by magic numbers alone.
pub fn sniff(head: &[u8]) -> Sniffed {
    if head.starts_with(b"QFI\xfb") {
        return qcow2_header(head).map_or(Sniffed::Unknown, Sniffed::Qcow2);
    }
    if head.starts_with(&[0x1f, 0x8b]) {
        return Sniffed::Compressed(Compression::Gzip);
    }
    if head.starts_with(&[0xfd, b'7', b'z', b'X', b'Z', 0x00]) {
        return Sniffed::Compressed(Compression::Xz);
    }
    if head.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
        return Sniffed::Compressed(Compression::Zstd);
    }
    if is_tar_header(head) {
        return Sniffed::Tar;
    }
    match shared::blockdev::probe_bytes(head) {
        Some(info) => match FileSystem::parse(&info.fstype) {
            Some(
                fs_type
                @ (FileSystem::Ext2 | FileSystem::Ext3 | FileSystem::Ext4 | FileSystem::Xfs),
            ) => filesystem_size(head, fs_type).map_or(Sniffed::Unknown, |size| {
                Sniffed::Filesystem(FsImage { fs_type, size })
            }),
            Some(FileSystem::Vfat) => Sniffed::UnsupportedFilesystem("vfat"),
            Some(FileSystem::Swap) => Sniffed::UnsupportedFilesystem("swap"),
            _ => Sniffed::Unknown,
        },
        None => Sniffed::Unknown,
    }
}

/// A ustar (POSIX or GNU) header block whose checksum adds up.
pub fn is_tar_header(block: &[u8]) -> bool {
    let Some(block) = block.get(..TAR_BLOCK) else {
        return false;
    };
    if &block[257..262] != b"ustar" {
        return false;
    }
    let field = &block[148..156];
    let digits: String = field
        .iter()
        .map(|&b| b as char)
        .filter(|c| !matches!(c, ' ' | '\0'))
        .collect();
    let Ok(stored) = u32::from_str_radix(&digits, 8) else {
        return false;
    };
    let sum: u32 = block
        .iter()
        .enumerate()
        .map(|(i, &b)| {
            if (148..156).contains(&i) {
                u32::from(b' ')
            } else {
                u32::from(b)
            }
        })
        .sum();
    sum == stored
}

fn qcow2_header(head: &[u8]) -> Option<Qcow2Header> {
    let version = be32(head, 4)?;
    let backing_offset = be64(head, 8)?;
    let virtual_size = be64(head, 24)?;
    // Version 3 headers carry incompatible feature bits; bit 2 is "external data file".
    let incompatible = if version >= 3 { be64(head, 72)? } else { 0 };
    Some(Qcow2Header {
        virtual_size,
        has_backing_file: backing_offset != 0,
        has_data_file: incompatible & 0x4 != 0,
    })
}

/// The bytes an ext2/3/4 or xfs filesystem spans, from its superblock.
fn filesystem_size(head: &[u8], fs_type: FileSystem) -> Option<u64> {
    match fs_type {
        FileSystem::Xfs => {
            let block_size = u64::from(be32(head, 4)?);
            be64(head, 8)?.checked_mul(block_size)
        }
        _ => {
            const SB: usize = 1024;
            const INCOMPAT_64BIT: u32 = 0x80;
            let low = u64::from(le32(head, SB + 4)?);
            let log_block = le32(head, SB + 24)?;
            if log_block > 6 {
                return None;
            }
            let high = if le32(head, SB + 96)? & INCOMPAT_64BIT != 0 {
                u64::from(le32(head, SB + 0x150)?)
            } else {
                0
            };
            ((high << 32) | low).checked_mul(1024 << log_block)
        }
    }
}

fn be64(b: &[u8], at: usize) -> Option<u64> {
    Some(u64::from_be_bytes(b.get(at..at + 8)?.try_into().ok()?))
}

/// The format of a file whose first bytes are `head`; `complete` when `head` is the whole
/// file. A compressed stream is decompressed with its tool to see whether a tar archive
/// comes out; when `head` is only the start of the stream and too little comes out to
/// tell, it is taken as a tar archive (extracting it is the final judge). The error is a
/// phrase such as "not a tar archive, raw filesystem image or qcow2 image".
pub fn detect(head: &[u8], complete: bool) -> Result<FileFormat, String> {
    match sniff(head) {
        Sniffed::Qcow2(header) => Ok(FileFormat::Qcow2 {
            header,
            filesystem: None,
        }),
        Sniffed::Tar => Ok(FileFormat::Tar(Compression::None)),
        Sniffed::Filesystem(fs) => Ok(FileFormat::Raw(fs)),
        Sniffed::UnsupportedFilesystem(fs) => Err(format!(
            "a raw {fs} filesystem image (raw images must be ext2, ext3, ext4 or xfs)"
        )),
        Sniffed::Unknown => {
            Err("not a tar archive, raw filesystem image or qcow2 image (content unknown)".into())
        }
        Sniffed::Compressed(compression) => {
            let out = decompress_head(compression, head)
                .map_err(|err| format!("{} data: {err:#}", compression.name()))?;
            // Too little output from only the start of the stream cannot tell.
            let undecided = out.len() < TAR_BLOCK && !complete;
            if is_tar_header(&out) || undecided {
                Ok(FileFormat::Tar(compression))
            } else {
                Err(format!(
                    "{}-compressed data that is not a tar archive (compressed raw images \
                     are not supported)",
                    compression.name()
                ))
            }
        }
    }
}

/// Up to the first tar block of what `input` (the start of a `compression` stream)
/// decompresses to. A decompressor that stops because the input ends early is expected.
fn decompress_head(compression: Compression, input: &[u8]) -> anyhow::Result<Vec<u8>> {
    let argv = compression
        .decompressor()
        .expect("a compressed stream has a decompressor");
    let mut child = Command::new(argv[0])
        .args(&argv[1..])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .with_context(|| format!("{} not found: run scripts/setup (see README)", argv[0]))?;
    let mut stdin = child.stdin.take().expect("piped stdin");
    let input = input.to_vec();
    // Fed from a thread: the decompressor may fill its stdout before reading all of it.
    let feeder = std::thread::spawn(move || {
        let _ = stdin.write_all(&input);
    });
    let mut out = Vec::with_capacity(TAR_BLOCK);
    let read = child
        .stdout
        .take()
        .expect("piped stdout")
        .take(TAR_BLOCK as u64)
        .read_to_end(&mut out);
    let _ = child.kill();
    let _ = child.wait();
    let _ = feeder.join();
    read.with_context(|| format!("reading the output of {}", argv[0]))?;
    Ok(out)
}

/// The first [`HEAD_BYTES`] of the file at `path` and whether that is all of it.
pub fn read_head(path: &Path) -> std::io::Result<(Vec<u8>, bool)> {
    let mut file = std::fs::File::open(path)?;
    let mut head = Vec::with_capacity(HEAD_BYTES);
    (&mut file).take(HEAD_BYTES as u64).read_to_end(&mut head)?;
    let complete = file.metadata()?.len() <= head.len() as u64;
    Ok((head, complete))
}

/// The format of the file at `path`; for a qcow2 image, with the filesystem it holds
/// (read through `scratch`, a private directory). The error is a phrase.
pub fn detect_file(path: &Path, scratch: &Path) -> Result<FileFormat, String> {
    let (head, complete) = read_head(path).map_err(|err| format!("cannot read it: {err}"))?;
    match detect(&head, complete)? {
        FileFormat::Qcow2 { header, .. } => {
            check_qcow2_header(&header)?;
            let filesystem = qcow2_filesystem(path, scratch).map_err(|err| format!("{err:#}"))?;
            Ok(FileFormat::Qcow2 {
                header,
                filesystem: Some(filesystem),
            })
        }
        format => Ok(format),
    }
}

/// Refuses a qcow2 image that would make qemu-img read other files of this host.
pub fn check_qcow2_header(header: &Qcow2Header) -> Result<(), String> {
    if header.has_backing_file {
        return Err("a qcow2 image with a backing file (not supported)".to_owned());
    }
    if header.has_data_file {
        return Err("a qcow2 image with an external data file (not supported)".to_owned());
    }
    Ok(())
}

/// The filesystem at the start of the qcow2 image `path`: its first 64 KiB are read with
/// `qemu-img dd` into a file in `scratch` (removed again) and probed.
pub fn qcow2_filesystem(path: &Path, scratch: &Path) -> anyhow::Result<FsImage> {
    let head_path = scratch.join(format!("qcow2-head-{}", std::process::id()));
    let _ = std::fs::remove_file(&head_path);
    let mut if_arg = std::ffi::OsString::from("if=");
    if_arg.push(path);
    let mut of_arg = std::ffi::OsString::from("of=");
    of_arg.push(&head_path);
    let argv: Vec<std::ffi::OsString> = vec![
        "qemu-img".into(),
        "dd".into(),
        "-f".into(),
        "qcow2".into(),
        "-O".into(),
        "raw".into(),
        "bs=65536".into(),
        "count=1".into(),
        if_arg,
        of_arg,
    ];
    let result = run("read the start of the qcow2 image", &argv)
        .map_err(anyhow::Error::from)
        .and_then(|_| {
            std::fs::read(&head_path).with_context(|| format!("reading {}", head_path.display()))
        });
    let _ = std::fs::remove_file(&head_path);
    match sniff(&result?) {
        Sniffed::Filesystem(fs) => Ok(fs),
        Sniffed::UnsupportedFilesystem(fs) => {
            bail!("a qcow2 image of a {fs} filesystem (it must hold ext2, ext3, ext4 or xfs)")
        }
        _ => bail!(
            "a qcow2 image that does not start with an ext2/3/4 or xfs filesystem (a whole \
             disk with a partition table is not supported)"
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A tar header block for `name` with a correct checksum.
    fn tar_block(name: &str, gnu: bool) -> Vec<u8> {
        let mut block = vec![0u8; 512];
        block[..name.len()].copy_from_slice(name.as_bytes());
        block[100..108].copy_from_slice(b"0000644\0");
        block[124..136].copy_from_slice(b"00000000000\0");
        block[156] = b'0';
        if gnu {
            block[257..265].copy_from_slice(b"ustar  \0");
        } else {
            block[257..263].copy_from_slice(b"ustar\0");
            block[263..265].copy_from_slice(b"00");
        }
        block[148..156].copy_from_slice(b"        ");
        let sum: u32 = block.iter().map(|&b| u32::from(b)).sum();
        block[148..156].copy_from_slice(format!("{sum:06o}\0 ").as_bytes());
        block
    }

    fn ext_superblock(blocks: u32, log_block: u32, incompat: u32, high: u32) -> Vec<u8> {
        let mut head = vec![0u8; 4096];
        let sb = 1024;
        head[sb + 4..sb + 8].copy_from_slice(&blocks.to_le_bytes());
        head[sb + 24..sb + 28].copy_from_slice(&log_block.to_le_bytes());
        head[sb + 56..sb + 58].copy_from_slice(&0xEF53u16.to_le_bytes());
        // extents: not an ext3 feature, so the probe says ext4.
        head[sb + 96..sb + 100].copy_from_slice(&(incompat | 0x40).to_le_bytes());
        head[sb + 0x150..sb + 0x154].copy_from_slice(&high.to_le_bytes());
        head
    }

    #[test]
    fn tar_headers_need_the_magic_and_a_correct_checksum() {
        assert!(is_tar_header(&tar_block("./etc/hostname", false)));
        assert!(is_tar_header(&tar_block("./", true)));
        let mut bad = tar_block("./etc/hostname", false);
        bad[0] = b'X';
        assert!(!is_tar_header(&bad), "checksum no longer adds up");
        let mut no_magic = tar_block("a", false);
        no_magic[257..262].copy_from_slice(b"xxxxx");
        assert!(!is_tar_header(&no_magic));
        assert!(!is_tar_header(&[0u8; 100]));
        assert!(
            !is_tar_header(&[0u8; 512]),
            "a zero block is the end of an archive"
        );
        assert_eq!(sniff(&tar_block("a", false)), Sniffed::Tar);
    }

    #[test]
    fn compression_magics() {
        assert_eq!(
            sniff(&[0x1f, 0x8b, 8, 0, 0]),
            Sniffed::Compressed(Compression::Gzip)
        );
        assert_eq!(
            sniff(b"\xfd7zXZ\x00\x00\x04"),
            Sniffed::Compressed(Compression::Xz)
        );
        assert_eq!(
            sniff(&[0x28, 0xb5, 0x2f, 0xfd, 0x24]),
            Sniffed::Compressed(Compression::Zstd)
        );
        assert_eq!(sniff(b"\xfd7zXY\x00"), Sniffed::Unknown);
    }

    #[test]
    fn qcow2_header_fields() {
        let mut head = vec![0u8; 104];
        head[..4].copy_from_slice(b"QFI\xfb");
        head[4..8].copy_from_slice(&3u32.to_be_bytes());
        head[24..32].copy_from_slice(&(64u64 << 20).to_be_bytes());
        let plain = Qcow2Header {
            virtual_size: 64 << 20,
            has_backing_file: false,
            has_data_file: false,
        };
        assert_eq!(sniff(&head), Sniffed::Qcow2(plain));
        assert_eq!(check_qcow2_header(&plain), Ok(()));
        head[8..16].copy_from_slice(&104u64.to_be_bytes());
        head[72..80].copy_from_slice(&4u64.to_be_bytes());
        let Sniffed::Qcow2(header) = sniff(&head) else {
            panic!("not qcow2");
        };
        assert!(header.has_backing_file && header.has_data_file);
        assert!(check_qcow2_header(&header)
            .unwrap_err()
            .contains("backing file"));
        assert_eq!(
            sniff(b"QFI\xfb\0\0"),
            Sniffed::Unknown,
            "a truncated header"
        );
    }

    #[test]
    fn ext_sizes_come_from_the_superblock() {
        assert_eq!(
            sniff(&ext_superblock(65536, 0, 0, 0)),
            Sniffed::Filesystem(FsImage {
                fs_type: FileSystem::Ext4,
                size: 64 << 20
            })
        );
        assert_eq!(
            sniff(&ext_superblock(1, 2, 0x80, 1)),
            Sniffed::Filesystem(FsImage {
                fs_type: FileSystem::Ext4,
                size: ((1u64 << 32) + 1) * 4096
            }),
            "64bit: the high word counts"
        );
        assert_eq!(
            sniff(&ext_superblock(1, 2, 0, 1)),
            Sniffed::Filesystem(FsImage {
                fs_type: FileSystem::Ext4,
                size: 4096
            }),
            "without 64bit the high word is not read"
        );
        assert_eq!(sniff(&ext_superblock(1, 40, 0, 0)), Sniffed::Unknown);
    }

    #[test]
    fn xfs_size_and_unsupported_filesystems() {
        let mut head = vec![0u8; 4096];
        head[..4].copy_from_slice(b"XFSB");
        head[4..8].copy_from_slice(&4096u32.to_be_bytes());
        head[8..16].copy_from_slice(&76800u64.to_be_bytes());
        head[102..104].copy_from_slice(&512u16.to_be_bytes());
        assert_eq!(
            sniff(&head),
            Sniffed::Filesystem(FsImage {
                fs_type: FileSystem::Xfs,
                size: 300 << 20
            })
        );
        let mut swap = vec![0u8; 4096];
        swap[4086..4096].copy_from_slice(b"SWAPSPACE2");
        swap[1024..1028].copy_from_slice(&1u32.to_le_bytes());
        assert_eq!(sniff(&swap), Sniffed::UnsupportedFilesystem("swap"));
        assert!(detect(&swap, true).unwrap_err().contains("raw swap"));
    }

    #[test]
    fn unknown_content_is_an_error() {
        assert_eq!(sniff(b"hello world"), Sniffed::Unknown);
        let err = detect(b"not a directory", true).unwrap_err();
        assert!(err.contains("content unknown"), "{err}");
        assert_eq!(detect(&[], true).unwrap_err(), err);
    }

    #[test]
    fn descriptions() {
        let fs = FsImage {
            fs_type: FileSystem::Xfs,
            size: 1,
        };
        let header = Qcow2Header {
            virtual_size: 1,
            has_backing_file: false,
            has_data_file: false,
        };
        assert_eq!(FileFormat::Tar(Compression::None).describe(), "tar");
        assert_eq!(FileFormat::Tar(Compression::Zstd).describe(), "tar (zstd)");
        assert_eq!(FileFormat::Raw(fs).describe(), "raw xfs image");
        assert_eq!(
            FileFormat::Qcow2 {
                header,
                filesystem: None
            }
            .describe(),
            "qcow2 image"
        );
        assert_eq!(
            FileFormat::Qcow2 {
                header,
                filesystem: Some(fs)
            }
            .describe(),
            "qcow2 image of xfs"
        );
    }

    /// Compresses `data` with the real tool.
    fn compress(tool: &str, data: &[u8]) -> Vec<u8> {
        let mut child = Command::new(tool)
            .arg("-c")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("{tool} not found ({e}): run scripts/setup (see README)"));
        let mut stdin = child.stdin.take().unwrap();
        let data = data.to_vec();
        let feeder = std::thread::spawn(move || stdin.write_all(&data).unwrap());
        let out = child.wait_with_output().unwrap();
        feeder.join().unwrap();
        assert!(out.status.success(), "{tool} failed");
        out.stdout
    }

    #[test]
    fn compressed_tar_archives_are_told_by_decompressing_their_start() {
        let mut archive = tar_block("./etc/hostname", false);
        archive.extend(vec![0u8; 1024 * 20]);
        let text = b"just some text, long enough to decompress to more than a block. ".repeat(20);
        for (tool, compression) in [
            ("gzip", Compression::Gzip),
            ("xz", Compression::Xz),
            ("zstd", Compression::Zstd),
        ] {
            let compressed = compress(tool, &archive);
            assert_eq!(sniff(&compressed), Sniffed::Compressed(compression));
            assert_eq!(
                detect(&compressed, true),
                Ok(FileFormat::Tar(compression)),
                "{tool}"
            );
            // Only the start of a long stream: still told.
            let long = compress(tool, &[archive.clone(), text.repeat(50)].concat());
            let start = &long[..long.len().min(600)];
            assert_eq!(
                detect(start, false),
                Ok(FileFormat::Tar(compression)),
                "{tool}"
            );
            let err = detect(&compress(tool, &text), true).unwrap_err();
            assert!(err.contains("not a tar archive"), "{tool}: {err}");
            assert!(err.starts_with(compression.name()), "{tool}: {err}");
            // Too short to be an archive, and nothing more to come.
            assert!(detect(&compress(tool, b"tiny"), true).is_err(), "{tool}");
        }
    }

    #[test]
    fn tar_options() {
        assert_eq!(Compression::None.tar_option(), None);
        assert_eq!(Compression::Gzip.tar_option(), Some("--gzip"));
        assert_eq!(Compression::Xz.tar_option(), Some("--xz"));
        assert_eq!(Compression::Zstd.tar_option(), Some("--zstd"));
    }
}
