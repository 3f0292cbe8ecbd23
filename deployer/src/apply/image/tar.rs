//! A tar image, extracted by GNU tar, which keeps owners by number, xattrs, ACLs and
//! device nodes; its listing read back to tell which members were there already.

use std::ffi::OsString;
use std::fs::File;
use std::path::{Component, Path, PathBuf};

use anyhow::Context;

use crate::pipeline::{run_pipeline, Input};
use crate::source::format::Compression;
use crate::source::Bytes;

use super::rootpath::exists_in;

/// GNU tar's options for extracting an image: owners by number, modes, hard links,
/// symlinks, device nodes, xattrs of every namespace and ACLs kept.
pub(super) const TAR_EXTRACT: [&str; 7] = [
    "-x",
    "--numeric-owner",
    "--same-owner",
    "-p",
    "--xattrs",
    "--xattrs-include=*",
    "--acls",
];

/// `tar OPTIONS -f ARCHIVE [--gzip|--xz|--zstd] [-C DIR]`.
pub fn tar_command(
    options: &[&str],
    archive: &Path,
    compression: Compression,
    into: Option<&Path>,
) -> Vec<OsString> {
    let mut argv: Vec<OsString> = vec!["tar".into()];
    argv.extend(options.iter().map(OsString::from));
    argv.push("-f".into());
    argv.push(archive.into());
    argv.extend(compression.tar_option().map(OsString::from));
    if let Some(dir) = into {
        argv.push("-C".into());
        argv.push(dir.into());
    }
    argv
}

/// Extracts the archive `bytes` (of image `name`), compressed with `compression`, onto
/// `root`: the decompressor (multi-threaded for xz) and tar work at the same time as the
/// download that feeds them, whose checksum is verified once it has all come.
pub(super) fn extract(
    name: &str,
    bytes: Bytes,
    compression: Compression,
    root: &Path,
) -> anyhow::Result<()> {
    let step = format!("extract the tar archive of image {name}");
    let mut stages: Vec<Vec<OsString>> = decompressor(compression).into_iter().collect();
    let mut tar: Vec<OsString> = vec!["tar".into()];
    tar.extend(TAR_EXTRACT.iter().map(OsString::from));
    tar.extend(["-f".into(), "-".into(), "-C".into(), root.into()]);
    stages.push(tar);
    match bytes {
        Bytes::File(path) => {
            let file = File::open(path)
                .with_context(|| format!("image {name}: opening {}", path.display()))?;
            run_pipeline(&step, &stages, Input::File(file))?;
        }
        Bytes::Http(remote) => {
            let mut stream = remote.open()?;
            let sha256 = remote.sha256.as_deref();
            match run_pipeline(&step, &stages, Input::Reader(&mut stream)) {
                Ok(_) => stream.finish(sha256)?,
                Err(err) => return Err(stream.explain(err, sha256)),
            }
        }
    }
    Ok(())
}

/// The command that decompresses `compression` from stdin to stdout: xz with a thread per
/// core (it decompresses the blocks of a multi-block file in parallel); zstd and gzip
/// streams decompress on one core.
pub fn decompressor(compression: Compression) -> Option<Vec<OsString>> {
    let argv: &[&str] = match compression {
        Compression::None => return None,
        Compression::Gzip => &["gzip", "-dc"],
        Compression::Xz => &["xz", "-dc", "-T0"],
        Compression::Zstd => &["zstd", "-dcq"],
    };
    Some(argv.iter().map(OsString::from).collect())
}

/// The members of a `tar -t --quoting-style=escape` listing, other than directories, that
/// exist under `root` already; paths absolute in the image.
pub(super) fn existing_members(listing: &str, root: &Path) -> Vec<String> {
    listing
        .lines()
        .filter(|line| !line.ends_with('/'))
        .filter_map(|line| member_path(&unescape_tar_name(line)))
        .filter(|rel| exists_in(root, rel))
        .map(|rel| format!("/{}", rel.display()))
        .collect()
}

/// Undoes GNU tar's `escape` quoting: `\\`, `\n`, `\t`, `\a`, `\b`, `\f`, `\r`, `\v`,
/// `\?` and three-digit octal escapes.
pub fn unescape_tar_name(name: &str) -> Vec<u8> {
    let bytes = name.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] != b'\\' || i + 1 == bytes.len() {
            out.push(bytes[i]);
            i += 1;
            continue;
        }
        let octal = bytes
            .get(i + 1..i + 4)
            .filter(|d| d.iter().all(|c| (b'0'..=b'7').contains(c)))
            .map(|d| d.iter().fold(0u32, |acc, c| acc * 8 + u32::from(c - b'0')));
        if let Some(value) = octal.and_then(|v| u8::try_from(v).ok()) {
            out.push(value);
            i += 4;
            continue;
        }
        out.push(match bytes[i + 1] {
            b'n' => b'\n',
            b't' => b'\t',
            b'a' => 0x07,
            b'b' => 0x08,
            b'f' => 0x0c,
            b'r' => b'\r',
            b'v' => 0x0b,
            other => other,
        });
        i += 2;
    }
    out
}

/// A member name as a path relative to the extraction root, as tar extracts it: leading
/// `/` and `.` components dropped; `None` for the root itself or a name with `..`
/// (which tar refuses to extract).
pub fn member_path(name: &[u8]) -> Option<PathBuf> {
    use std::os::unix::ffi::OsStrExt;
    let path = Path::new(std::ffi::OsStr::from_bytes(name));
    let mut rel = PathBuf::new();
    for component in path.components() {
        match component {
            Component::Normal(part) => rel.push(part),
            Component::ParentDir => return None,
            Component::RootDir | Component::CurDir | Component::Prefix(_) => {}
        }
    }
    (!rel.as_os_str().is_empty()).then_some(rel)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tar_names_are_unescaped_and_made_relative() {
        assert_eq!(unescape_tar_name("./etc/a b"), b"./etc/a b");
        assert_eq!(
            unescape_tar_name(r"./x\\y\nz\tq\303\251\?"),
            b"./x\\y\nz\tq\xc3\xa9?"
        );
        assert_eq!(unescape_tar_name(r"end\"), b"end\\");
        assert_eq!(
            member_path(b"./etc/fstab"),
            Some(PathBuf::from("etc/fstab"))
        );
        assert_eq!(member_path(b"/abs/./x"), Some(PathBuf::from("abs/x")));
        assert_eq!(member_path(b"./"), None);
        assert_eq!(member_path(b"a/../../etc/passwd"), None);
    }

    #[test]
    fn tar_command_lines() {
        let strings = |argv: Vec<OsString>| -> Vec<String> {
            argv.into_iter().map(|a| a.into_string().unwrap()).collect()
        };
        assert_eq!(
            strings(tar_command(
                &TAR_EXTRACT,
                Path::new("/w/i.tar.zst"),
                Compression::Zstd,
                Some(Path::new("/w/root"))
            )),
            [
                "tar",
                "-x",
                "--numeric-owner",
                "--same-owner",
                "-p",
                "--xattrs",
                "--xattrs-include=*",
                "--acls",
                "-f",
                "/w/i.tar.zst",
                "--zstd",
                "-C",
                "/w/root"
            ]
        );
        assert_eq!(
            strings(tar_command(
                &["-t"],
                Path::new("a.tar"),
                Compression::None,
                None
            )),
            ["tar", "-t", "-f", "a.tar"]
        );
    }

    #[test]
    fn decompressors() {
        let line = |c| decompressor(c).map(|argv| argv.join(std::ffi::OsStr::new(" ")));
        assert_eq!(line(Compression::None), None);
        assert_eq!(line(Compression::Xz), Some("xz -dc -T0".into()));
        assert_eq!(line(Compression::Zstd), Some("zstd -dcq".into()));
        assert_eq!(line(Compression::Gzip), Some("gzip -dc".into()));
    }

    #[test]
    fn members_that_exist_are_listed() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("etc")).unwrap();
        std::fs::write(dir.path().join("etc/a b"), b"").unwrap();
        let listing = "./\n./etc/\n./etc/a b\n./etc/new\n./etc/a\\040b\n";
        assert_eq!(
            existing_members(listing, dir.path()),
            ["/etc/a b", "/etc/a b"]
        );
    }
}
