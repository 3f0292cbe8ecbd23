//! The deployer's tree copy on the command line, for bench/deploy-copy.
//!
//! `copy_tree generate DIR` writes a tree shaped like a small Linux installation into the
//! (new or empty) directory DIR: about 31,000 regular files (1.3 GB), mostly small, some of
//! several megabytes, two sparse files, 4,700 directories up to ten levels deep, symlinks,
//! hard links, device nodes, a fifo, setuid programs, sticky directories, files of other
//! owners and `user.*` and `security.capability` extended attributes. The same tree every
//! time (a fixed pseudo-random sequence).
//!
//! `copy_tree copy SOURCE DEST` copies the contents of SOURCE into the directory DEST with
//! [`deployer::apply::copy::copy_tree`] and prints the report's counts.

use std::ffi::CStr;
use std::fs::{self, File};
use std::io::Write;
use std::os::unix::fs::{symlink, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{bail, Context};
use deployer::apply::copy::copy_tree;
use deployer::apply::copy::sys::lsetxattr;
use nix::fcntl::AtFlags;
use nix::sys::stat::{makedev, mknodat, Mode, SFlag};
use nix::unistd::{fchownat, Gid, Uid};

const KIB: u64 = 1 << 10;
const MIB: u64 = 1 << 20;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.iter().map(String::as_str).collect::<Vec<_>>()[..] {
        ["generate", dir] => generate(Path::new(dir)),
        ["copy", source, dest] => copy(Path::new(source), Path::new(dest)),
        _ => {
            eprintln!("usage: copy_tree generate DIR | copy_tree copy SOURCE DEST");
            return ExitCode::from(2);
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("copy_tree: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn copy(source: &Path, dest: &Path) -> anyhow::Result<()> {
    let report = copy_tree(source, dest)?;
    println!(
        "{} files, {} bytes, {} overwritten",
        report.files,
        report.bytes,
        report.overwritten.len()
    );
    Ok(())
}

/// splitmix64: a fixed sequence, so every run generates the same tree.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A number in `low..=high`.
    fn range(&mut self, low: u64, high: u64) -> u64 {
        low + self.next() % (high - low + 1)
    }

    /// A size between `low` and `high`, spread evenly over the orders of magnitude
    /// (small sizes much more often than large ones, as in a real installation).
    fn size(&mut self, low: u64, high: u64) -> u64 {
        let (a, b) = ((low.max(1) as f64).ln(), (high as f64).ln());
        let unit = (self.next() >> 11) as f64 / (1u64 << 53) as f64;
        (a + (b - a) * unit).exp() as u64
    }
}

/// Writes the files of a tree: contents are slices of one pseudo-random block.
struct Writer {
    root: PathBuf,
    rng: Rng,
    block: Vec<u8>,
    files: u64,
    bytes: u64,
}

impl Writer {
    fn dir(&self, rel: &str) -> anyhow::Result<PathBuf> {
        let path = self.root.join(rel);
        fs::create_dir_all(&path).with_context(|| format!("creating {}", path.display()))?;
        Ok(path)
    }

    fn file(&mut self, rel: &str, size: u64, mode: u32) -> anyhow::Result<PathBuf> {
        let path = self.root.join(rel);
        let mut file =
            File::create(&path).with_context(|| format!("creating {}", path.display()))?;
        let mut left = size;
        while left > 0 {
            let start = self.rng.range(0, self.block.len() as u64 / 2) as usize;
            let n = left.min((self.block.len() - start) as u64) as usize;
            file.write_all(&self.block[start..start + n])
                .with_context(|| format!("writing {}", path.display()))?;
            left -= n as u64;
        }
        fs::set_permissions(&path, fs::Permissions::from_mode(mode))
            .with_context(|| format!("chmod {}", path.display()))?;
        self.files += 1;
        self.bytes += size;
        Ok(path)
    }

    fn sized(&mut self, rel: &str, low: u64, high: u64, mode: u32) -> anyhow::Result<PathBuf> {
        let size = self.rng.size(low, high);
        self.file(rel, size, mode)
    }

    fn symlink(&self, target: &str, rel: &str) -> anyhow::Result<()> {
        let path = self.root.join(rel);
        symlink(target, &path).with_context(|| format!("symlink {}", path.display()))
    }

    fn hard_link(&self, existing: &str, rel: &str) -> anyhow::Result<()> {
        let path = self.root.join(rel);
        fs::hard_link(self.root.join(existing), &path)
            .with_context(|| format!("hard link {}", path.display()))
    }

    fn owner(&self, rel: &str, uid: u32, gid: u32) -> anyhow::Result<()> {
        let path = self.root.join(rel);
        fchownat(
            None,
            &path,
            Some(Uid::from_raw(uid)),
            Some(Gid::from_raw(gid)),
            AtFlags::AT_SYMLINK_NOFOLLOW,
        )
        .with_context(|| format!("chown {}", path.display()))
    }

    fn xattr(&self, rel: &str, name: &CStr, value: &[u8]) -> anyhow::Result<()> {
        let path = self.root.join(rel);
        lsetxattr(&path, name, value)
            .with_context(|| format!("setting {name:?} on {}", path.display()))
    }

    fn node(
        &self,
        rel: &str,
        kind: SFlag,
        mode: u32,
        major: u64,
        minor: u64,
    ) -> anyhow::Result<()> {
        let path = self.root.join(rel);
        mknodat(
            None,
            &path,
            kind,
            Mode::from_bits_truncate(mode),
            makedev(major, minor),
        )
        .with_context(|| format!("mknod {}", path.display()))
    }

    fn sparse(&mut self, rel: &str, size: u64, data_at: &[u64]) -> anyhow::Result<()> {
        use std::os::unix::fs::FileExt;
        let path = self.root.join(rel);
        let file = File::create(&path).with_context(|| format!("creating {}", path.display()))?;
        for &offset in data_at {
            file.write_all_at(&self.block[..64 * KIB as usize], offset)
                .with_context(|| format!("writing {}", path.display()))?;
        }
        file.set_len(size)
            .with_context(|| format!("sizing {}", path.display()))?;
        self.files += 1;
        self.bytes += size;
        Ok(())
    }
}

/// A `security.capability` value (revision 2, effective) granting `capability`.
fn file_capability(capability: u32) -> Vec<u8> {
    [0x0200_0001u32, 1 << capability, 0, 0, 0]
        .iter()
        .flat_map(|word| word.to_le_bytes())
        .collect()
}

fn generate(root: &Path) -> anyhow::Result<()> {
    if root.exists() && fs::read_dir(root)?.next().is_some() {
        bail!("{}: not empty", root.display());
    }
    fs::create_dir_all(root).with_context(|| format!("creating {}", root.display()))?;
    let mut rng = Rng(0x5eed);
    let block = (0..4 * MIB / 8)
        .flat_map(|_| rng.next().to_le_bytes())
        .collect();
    let mut w = Writer {
        root: root.to_owned(),
        rng,
        block,
        files: 0,
        bytes: 0,
    };

    for dir in [
        "proc", "sys", "run", "mnt", "media", "srv", "opt", "root", "home",
    ] {
        w.dir(dir)?;
    }
    for (dir, sticky) in [("tmp", 0o1777), ("var/tmp", 0o1777)] {
        let path = w.dir(dir)?;
        fs::set_permissions(&path, fs::Permissions::from_mode(sticky))?;
    }
    for link in ["bin", "sbin", "lib", "lib64"] {
        w.symlink(&format!("usr/{link}"), link)?;
    }

    // boot: a kernel, an initrd and their companions.
    w.dir("boot/grub")?;
    w.file("boot/vmlinuz-6.1.0-18-amd64", 8 * MIB, 0o644)?;
    w.file("boot/initrd.img-6.1.0-18-amd64", 36 * MIB, 0o644)?;
    w.file("boot/System.map-6.1.0-18-amd64", 4 * MIB + 123, 0o644)?;
    w.file("boot/config-6.1.0-18-amd64", 260 * KIB + 17, 0o644)?;
    w.symlink("boot/vmlinuz-6.1.0-18-amd64", "vmlinuz")?;
    w.symlink("boot/initrd.img-6.1.0-18-amd64", "initrd.img")?;

    // dev: the nodes a minimal image ships.
    w.dir("dev/pts")?;
    for (name, kind, mode, major, minor) in [
        ("null", SFlag::S_IFCHR, 0o666, 1, 3),
        ("zero", SFlag::S_IFCHR, 0o666, 1, 5),
        ("console", SFlag::S_IFCHR, 0o600, 5, 1),
        ("tty", SFlag::S_IFCHR, 0o666, 5, 0),
        ("loop0", SFlag::S_IFBLK, 0o660, 7, 0),
        ("sda", SFlag::S_IFBLK, 0o660, 8, 0),
    ] {
        w.node(&format!("dev/{name}"), kind, mode, major, minor)?;
    }
    w.dir("run/systemd")?;
    w.node("run/systemd/initctl", SFlag::S_IFIFO, 0o600, 0, 0)?;

    // usr/bin and usr/sbin: programs, a few setuid, aliases as symlinks and hard links.
    w.dir("usr/bin")?;
    w.dir("usr/sbin")?;
    for i in 0..900 {
        w.sized(&format!("usr/bin/tool{i}"), 6 * KIB, 900 * KIB, 0o755)?;
        if i % 15 == 0 {
            w.symlink(&format!("tool{i}"), &format!("usr/bin/tool{i}-alias"))?;
        }
        if i % 45 == 1 {
            w.hard_link(&format!("usr/bin/tool{i}"), &format!("usr/bin/tool{i}.1"))?;
        }
    }
    for name in ["su", "passwd", "mount", "umount", "newgrp", "chsh"] {
        w.sized(&format!("usr/bin/{name}"), 30 * KIB, 90 * KIB, 0o4755)?;
    }
    w.sized("usr/bin/ping", 80 * KIB, 90 * KIB, 0o755)?;
    w.xattr("usr/bin/ping", c"security.capability", &file_capability(13))?;
    for i in 0..220 {
        w.sized(&format!("usr/sbin/daemon{i}"), 10 * KIB, 2 * MIB, 0o755)?;
    }

    // usr/lib: shared libraries with their soname symlinks, firmware blobs.
    for i in 0..720 {
        let dir = if i % 6 == 0 {
            format!("usr/lib/x86_64-linux-gnu/plugins{}", i % 30)
        } else {
            "usr/lib/x86_64-linux-gnu".to_owned()
        };
        w.dir(&dir)?;
        w.sized(
            &format!("{dir}/lib{i}.so.1.2.{i}"),
            12 * KIB,
            2 * MIB,
            0o644,
        )?;
        w.symlink(&format!("lib{i}.so.1.2.{i}"), &format!("{dir}/lib{i}.so.1"))?;
    }
    w.dir("usr/lib/firmware")?;
    for i in 0..12 {
        w.sized(
            &format!("usr/lib/firmware/blob{i}.bin"),
            MIB,
            6 * MIB,
            0o644,
        )?;
    }

    // Python modules: deep package trees of small sources and their caches.
    for package in 0..420 {
        let mut dir = format!("usr/lib/python3/dist-packages/pkg{package}");
        let depth = w.rng.range(1, 6);
        for level in 0..depth {
            w.dir(&dir)?;
            let files = w.rng.range(2, 8);
            for f in 0..files {
                w.sized(&format!("{dir}/mod{f}.py"), 200, 60 * KIB, 0o644)?;
            }
            w.file(&format!("{dir}/__init__.py"), 0, 0o644)?;
            w.dir(&format!("{dir}/__pycache__"))?;
            for f in 0..files {
                w.sized(
                    &format!("{dir}/__pycache__/mod{f}.cpython-311.pyc"),
                    400,
                    80 * KIB,
                    0o644,
                )?;
            }
            dir = format!("{dir}/sub{level}");
        }
    }

    // Headers in nested directories.
    for i in 0..2000 {
        let dir = format!("usr/include/group{}/part{}", i % 40, i % 7);
        if i < 280 {
            w.dir(&dir)?;
        }
        w.sized(&format!("{dir}/header{i}.h"), 300, 40 * KIB, 0o644)?;
    }

    // usr/share: documentation, manual pages, translations, time zones.
    for package in 0..1200 {
        let dir = format!("usr/share/doc/package{package}");
        w.dir(&dir)?;
        w.sized(&format!("{dir}/copyright"), 500, 20 * KIB, 0o644)?;
        w.sized(&format!("{dir}/changelog.Debian.gz"), 300, 30 * KIB, 0o644)?;
    }
    for section in 1..=8 {
        w.dir(&format!("usr/share/man/man{section}"))?;
    }
    for i in 0..3000 {
        w.sized(
            &format!("usr/share/man/man{}/page{i}.{}.gz", i % 8 + 1, i % 8 + 1),
            400,
            16 * KIB,
            0o644,
        )?;
    }
    for lang in 0..80 {
        let dir = format!("usr/share/locale/lang{lang}/LC_MESSAGES");
        w.dir(&dir)?;
        for domain in 0..20 {
            w.sized(&format!("{dir}/domain{domain}.mo"), KIB, 120 * KIB, 0o644)?;
        }
    }
    for region in 0..12 {
        w.dir(&format!("usr/share/zoneinfo/Region{region}"))?;
        w.dir(&format!("usr/share/zoneinfo/posix/Region{region}"))?;
        for city in 0..50 {
            let rel = format!("Region{region}/City{city}");
            w.sized(&format!("usr/share/zoneinfo/{rel}"), KIB, 3 * KIB, 0o644)?;
            if city % 4 == 0 {
                w.hard_link(
                    &format!("usr/share/zoneinfo/{rel}"),
                    &format!("usr/share/zoneinfo/posix/{rel}"),
                )?;
            }
        }
    }
    w.dir("usr/share/fonts/truetype")?;
    for i in 0..40 {
        w.sized(
            &format!("usr/share/fonts/truetype/font{i}.ttf"),
            60 * KIB,
            3 * MIB,
            0o644,
        )?;
    }

    // etc: small configuration files, certificate symlinks, secrets of other groups.
    for i in 0..600 {
        let dir = format!("etc/conf{}.d", i % 60);
        if i < 60 {
            w.dir(&dir)?;
        }
        w.sized(&format!("{dir}/setting{i}.conf"), 20, 8 * KIB, 0o644)?;
    }
    w.dir("etc/ssl/certs")?;
    w.dir("usr/share/ca-certificates")?;
    for i in 0..150 {
        w.sized(
            &format!("usr/share/ca-certificates/ca{i}.crt"),
            KIB,
            3 * KIB,
            0o644,
        )?;
        w.symlink(
            &format!("/usr/share/ca-certificates/ca{i}.crt"),
            &format!("etc/ssl/certs/ca{i}.pem"),
        )?;
    }
    w.sized("etc/shadow", 900, 1200, 0o640)?;
    w.owner("etc/shadow", 0, 42)?;

    // var: the package database, logs of another group, a sparse lastlog, a user's home.
    w.dir("var/lib/dpkg/info")?;
    for i in 0..3000 {
        let size = if i % 10 == 0 {
            0
        } else {
            w.rng.size(60, 6 * KIB)
        };
        w.file(&format!("var/lib/dpkg/info/package{i}.list"), size, 0o644)?;
    }
    w.dir("var/log/apt")?;
    w.sized("var/log/apt/history.log", 20 * KIB, 40 * KIB, 0o640)?;
    w.owner("var/log/apt/history.log", 0, 4)?;
    w.dir("var/cache")?;
    w.sparse("var/log/lastlog", 292 * MIB, &[0, 40 * MIB, 200 * MIB])?;
    w.sparse("var/cache/swapfile.img", 64 * MIB, &[MIB])?;
    w.dir("home/user/.config")?;
    for i in 0..40 {
        let rel = format!("home/user/.config/file{i}");
        w.sized(&rel, 100, 10 * KIB, 0o600)?;
        w.owner(&rel, 1000, 1000)?;
        if i % 4 == 0 {
            w.xattr(&rel, c"user.origin", format!("generated {i}").as_bytes())?;
        }
    }
    w.owner("home/user/.config", 1000, 1000)?;
    w.owner("home/user", 1000, 1000)?;

    println!(
        "{}: {} regular files, {} bytes",
        root.display(),
        w.files,
        w.bytes
    );
    Ok(())
}
