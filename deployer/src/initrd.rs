//! Which programs an initramfs holds: an image whose `/` is on LVM or RAID needs `lvm` or
//! `mdadm` in the initrd its boot entry loads.
//!
//! An initrd is read as the kernel unpacks it: cpio archives in the newc format (`070701`,
//! or `070702` with checksums), each ending with `TRAILER!!!`, zero padding between them,
//! then possibly a compressed part, told by its magic bytes as the kernel tells it (gzip,
//! bzip2, lzma, xz, lzo, legacy lz4, zstd), that decompresses to more such archives. Debian's
//! initramfs-tools and dracut put an uncompressed early cpio (CPU microcode) before the
//! compressed main one. As for `unmkinitramfs`, the compressed part runs to the end of the
//! file (the kernel would also take more parts after it; no tool writes them).
//!
//! [`read_archives`] and [`programs`] are pure; [`list`] and [`programs_in`] read the file
//! and run the decompressor. Both stream: file data is skipped, never held.

use std::collections::BTreeSet;
use std::fs::File;
use std::io::{self, BufRead, BufReader, Read, Seek, SeekFrom};
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::process::{Command, Stdio};

use anyhow::anyhow;

use crate::exec::{self, StepError, STDERR_TAIL_LINES};
use crate::output;

/// One member of an initramfs: its path as stored (`usr/sbin/lvm`) and its `st_mode`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub path: String,
    pub mode: u32,
}

/// What comes after the archives [`read_archives`] read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum After {
    /// The input ended.
    End,
    /// Something that is not a cpio archive starts at this byte (left unread).
    Other(u64),
}

/// A compression the kernel unpacks, with its magic bytes (lib/decompress.c) and the tool
/// that decompresses it from stdin to stdout.
#[derive(Debug, PartialEq, Eq)]
pub struct Compression {
    pub name: &'static str,
    magic: &'static [u8],
    decompressor: &'static [&'static str],
}

/// Every [`Compression`]; lzma through `xz`, as Fedora ships `lzma` apart.
const COMPRESSIONS: [Compression; 7] = [
    Compression::new("gzip", b"\x1f\x8b", &["gzip", "-dc"]),
    Compression::new("bzip2", b"BZh", &["bzip2", "-dc"]),
    Compression::new("lzma", b"\x5d\0\0", &["xz", "-dc", "--format=lzma"]),
    Compression::new("xz", b"\xfd7zXZ\0", &["xz", "-dc"]),
    Compression::new("lzo", b"\x89LZO", &["lzop", "-dc"]),
    Compression::new("lz4", b"\x02\x21\x4c\x18", &["lz4", "-dc"]),
    Compression::new("zstd", b"\x28\xb5\x2f\xfd", &["zstd", "-dcq"]),
];

impl Compression {
    const fn new(
        name: &'static str,
        magic: &'static [u8],
        decompressor: &'static [&'static str],
    ) -> Compression {
        Compression {
            name,
            magic,
            decompressor,
        }
    }

    /// The compression whose magic bytes `head` starts with.
    pub fn sniff(head: &[u8]) -> Option<&'static Compression> {
        COMPRESSIONS.iter().find(|c| head.starts_with(c.magic))
    }
}

const S_IFMT: u32 = 0o170_000;
const S_IFREG: u32 = 0o100_000;
const S_IFLNK: u32 = 0o120_000;

/// The kernel's bound on a member's name (`PATH_MAX`).
const MAX_NAME: u32 = 4096;

/// Reads the cpio archives at the start of `input`, with the zero padding around them,
/// appending their members (but `TRAILER!!!`) to `entries`. Byte offsets in errors, and
/// the 4-byte alignment of headers and data, count from the start of `input`.
pub fn read_archives(input: &mut impl BufRead, entries: &mut Vec<Entry>) -> Result<After, String> {
    let mut at = 0;
    loop {
        let buf = input.fill_buf().map_err(|e| io_error(&e, at))?;
        match buf.first() {
            None => return Ok(After::End),
            Some(0) => {
                let zeros = buf.iter().take_while(|&&b| b == 0).count();
                input.consume(zeros);
                at += zeros as u64;
            }
            // As the kernel does, a '0' starts a cpio archive, anything else a compressed part.
            Some(b'0') => read_archive(input, &mut at, entries)?,
            Some(_) if buf.starts_with(b"\xc7\x71") || buf.starts_with(b"\x71\xc7") => {
                return Err(format!(
                    "old binary cpio format at byte {at}: the kernel unpacks only newc"
                ))
            }
            Some(_) => return Ok(After::Other(at)),
        }
    }
}

/// Reads one archive, up to and with its trailer, from `input` at byte `at`.
fn read_archive(
    input: &mut impl BufRead,
    at: &mut u64,
    entries: &mut Vec<Entry>,
) -> Result<(), String> {
    loop {
        let start = *at;
        if input
            .fill_buf()
            .map_err(|e| io_error(&e, start))?
            .is_empty()
        {
            return Err(format!(
                "truncated: its cpio archive ends at byte {start} without TRAILER!!!"
            ));
        }
        let cut = |e: io::Error| match e.kind() {
            io::ErrorKind::UnexpectedEof => {
                format!("truncated: it ends inside the cpio member at byte {start}")
            }
            _ => io_error(&e, start),
        };
        let mut header = [0u8; 110];
        read_exact(input, &mut header, at).map_err(cut)?;
        match &header[..6] {
            b"070701" | b"070702" if start.is_multiple_of(4) => {}
            b"070701" | b"070702" => return Err(format!("cpio header at unaligned byte {start}")),
            b"070707" => {
                return Err(format!(
                    "old portable cpio format at byte {start}: the kernel unpacks only newc"
                ))
            }
            _ => return Err(format!("no cpio header at byte {start}")),
        }
        // Fields of 8 hex digits after the magic: ino, mode, uid, gid, nlink, mtime,
        // filesize, devmajor, devminor, rdevmajor, rdevminor, namesize, check.
        let field = |i: usize| {
            std::str::from_utf8(&header[6 + 8 * i..14 + 8 * i])
                .ok()
                .and_then(|hex| u32::from_str_radix(hex, 16).ok())
                .ok_or_else(|| format!("bad cpio header at byte {start}"))
        };
        let (mode, size, name_len) = (field(1)?, field(6)?, field(11)?);
        if name_len == 0 || name_len > MAX_NAME {
            return Err(format!(
                "bad name length {name_len} in the cpio header at byte {start}"
            ));
        }
        let mut name = vec![0; name_len as usize];
        read_exact(input, &mut name, at).map_err(cut)?;
        skip(input, pad4(*at), at).map_err(cut)?;
        skip(input, u64::from(size), at).map_err(cut)?;
        skip(input, pad4(*at), at).map_err(cut)?;
        let name = name.strip_suffix(b"\0").unwrap_or(&name);
        if name == b"TRAILER!!!" {
            return Ok(());
        }
        entries.push(Entry {
            path: String::from_utf8_lossy(name).into_owned(),
            mode,
        });
    }
}

fn pad4(at: u64) -> u64 {
    at.wrapping_neg() % 4
}

fn read_exact(input: &mut impl BufRead, buf: &mut [u8], at: &mut u64) -> io::Result<()> {
    input.read_exact(buf)?;
    *at += buf.len() as u64;
    Ok(())
}

/// Skips `n` bytes of `input` without copying them.
fn skip(input: &mut impl BufRead, mut n: u64, at: &mut u64) -> io::Result<()> {
    while n > 0 {
        let available = input.fill_buf()?.len();
        if available == 0 {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        let step = n.min(available as u64);
        input.consume(step as usize);
        n -= step;
        *at += step;
    }
    Ok(())
}

fn io_error(e: &io::Error, at: u64) -> String {
    format!("cannot read it at byte {at}: {e}")
}

/// The directories whose programs [`programs`] names.
pub const PROGRAM_DIRS: [&str; 4] = ["bin", "sbin", "usr/bin", "usr/sbin"];

/// The names of the programs in `entries`: executable regular files and symlinks right
/// under one of [`PROGRAM_DIRS`] (`usr/sbin/lvm` gives `lvm`). A symlink counts whatever
/// it points to, as a busybox applet's link does.
pub fn programs(entries: &[Entry]) -> BTreeSet<String> {
    entries
        .iter()
        .filter(|e| match e.mode & S_IFMT {
            S_IFREG => e.mode & 0o111 != 0,
            S_IFLNK => true,
            _ => false,
        })
        .filter_map(|e| {
            let path = e.path.trim_start_matches("./").trim_start_matches('/');
            let (dir, name) = path.rsplit_once('/')?;
            PROGRAM_DIRS.contains(&dir).then(|| name.to_owned())
        })
        .collect()
}

/// The programs the initrd at `path` holds ([`programs`] of its [`list`]).
pub fn programs_in(path: &Path) -> anyhow::Result<BTreeSet<String>> {
    Ok(programs(&list(path)?))
}

/// The most bytes a compressed part may decompress to: a bound on a stream that would not
/// end (initrds unpack to hundreds of MB at most; nothing is held while reading).
const MAX_UNPACKED: u64 = 4 << 30;

/// The members of the initrd at `path`, in the order the kernel unpacks them. The error is
/// one line naming the file.
pub fn list(path: &Path) -> anyhow::Result<Vec<Entry>> {
    list_bounded(path, MAX_UNPACKED)
}

fn list_bounded(path: &Path, max_unpacked: u64) -> anyhow::Result<Vec<Entry>> {
    let fail = |what: String| anyhow!("initrd {}: {what}", path.display());
    let mut file = File::open(path).map_err(|e| fail(format!("cannot read it: {e}")))?;
    let mut entries = Vec::new();
    let after = read_archives(&mut BufReader::new(&file), &mut entries).map_err(fail)?;
    let After::Other(at) = after else {
        if entries.is_empty() {
            return Err(fail("no cpio archive in it".into()));
        }
        return Ok(entries);
    };
    let mut head = [0u8; 8];
    let n = file
        .read_at(&mut head, at)
        .map_err(|e| fail(io_error(&e, at)))?;
    let Some(compression) = Compression::sniff(&head[..n]) else {
        let hex: Vec<String> = head[..n].iter().map(|b| format!("{b:02x}")).collect();
        return Err(fail(format!(
            "neither a cpio archive nor compressed data at byte {at} (bytes {})",
            hex.join(" ")
        )));
    };
    file.seek(SeekFrom::Start(at))
        .map_err(|e| fail(io_error(&e, at)))?;
    unpack(path, compression, file, max_unpacked, &mut entries)?;
    Ok(entries)
}

/// Reads the archives that `compressed` (a file at the start of its compressed part)
/// decompresses to, appending their members to `entries`. The decompressor runs as
/// [`exec::run`] runs a program, logged and failing as a [`StepError`]; its own run is
/// here because it reads a stream of bytes and may stop early.
fn unpack(
    path: &Path,
    compression: &Compression,
    compressed: File,
    max_unpacked: u64,
    entries: &mut Vec<Entry>,
) -> anyhow::Result<()> {
    let argv = compression.decompressor;
    let step = format!("initrd {}", path.display());
    let command = exec::quote_command(&argv.iter().map(Into::into).collect::<Vec<_>>());
    output::detail(format_args!("deployer: {step}: running {command}"));
    let mut child = Command::new(argv[0])
        .args(&argv[1..])
        .stdin(compressed)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|source| match source.kind() {
            io::ErrorKind::NotFound => StepError::NotFound {
                step: step.clone(),
                program: argv[0].into(),
            },
            _ => StepError::Spawn {
                step: step.clone(),
                command: command.clone(),
                source,
            },
        })?;
    let mut stderr = child.stderr.take().expect("piped stderr");
    let stderr = std::thread::spawn(move || {
        let mut text = String::new();
        let _ = stderr.read_to_string(&mut text);
        text
    });
    let stdout = child.stdout.take().expect("piped stdout");
    let mut unpacked = BufReader::new(stdout.take(max_unpacked));
    let read = read_archives(&mut unpacked, entries);
    let too_big = unpacked.get_ref().limit() == 0;
    // Closed before waiting: a decompressor that still writes stops on SIGPIPE.
    drop(unpacked);
    let status = child
        .wait()
        .map_err(|e| anyhow!("{step}: waiting for `{command}`: {e}"))?;
    let stderr = stderr.join().unwrap_or_default();
    output::detail(format_args!("deployer: {step}: {command}: {status}"));
    let read_all = matches!(read, Ok(After::End)) && !too_big;
    // The decompressor's own failure explains a bad stream better than what came out.
    if status.code().is_some_and(|code| code != 0) || (read_all && !status.success()) {
        let lines: Vec<&str> = stderr.lines().collect();
        return Err(StepError::Failed {
            step,
            command,
            status,
            stderr_tail: lines[lines.len().saturating_sub(STDERR_TAIL_LINES)..].join("\n"),
        }
        .into());
    }
    if too_big {
        return Err(anyhow!(
            "{step}: `{command}` decompresses it to more than {max_unpacked} bytes"
        ));
    }
    let what = match read {
        Ok(After::End) => return Ok(()),
        Ok(After::Other(at)) => format!("no cpio header at byte {at}"),
        Err(e) => e,
    };
    Err(anyhow!("{step}: {what} in what `{command}` decompresses"))
}

#[cfg(test)]
mod tests;
