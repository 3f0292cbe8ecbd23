//! Reading one file from a FAT12, FAT16 or FAT32 filesystem without mounting it: the ESP,
//! which kernels without vfat (and a bootctl that must not mount what it only reads) can
//! still inspect. Names are matched by their 8.3 short entries, which every FAT writer
//! keeps beside the long ones; a name that has no short form (`efi` is stored `EFI`, so is
//! found) is matched case-insensitively through it, as the firmware does.

use std::io;

use crate::bytes::{le16, le32};

/// Reads exactly `buf.len()` bytes at a byte offset of the filesystem.
pub type ReadAt<'a> = dyn FnMut(u64, &mut [u8]) -> io::Result<()> + 'a;

const DIR_ENTRY: usize = 32;
const ATTR_VOLUME: u8 = 0x08;
const ATTR_DIRECTORY: u8 = 0x10;
const ATTR_LONG_NAME: u8 = 0x0f;
const DELETED: u8 = 0xe5;

fn invalid(what: impl Into<String>) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, what.into())
}

/// What the boot sector says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Geometry {
    /// 12, 16 or 32.
    bits: u8,
    cluster_bytes: u64,
    fat_offset: u64,
    /// FAT12/16: the fixed root directory's offset and size.
    root_offset: u64,
    root_bytes: u64,
    /// FAT32: the root directory's first cluster.
    root_cluster: u32,
    data_offset: u64,
    clusters: u32,
}

fn geometry(boot: &[u8]) -> io::Result<Geometry> {
    let field16 = |at| le16(boot, at).map(u64::from);
    let field32 = |at| le32(boot, at).map(u64::from);
    if boot.get(510..512) != Some(&[0x55, 0xaa][..]) {
        return Err(invalid("no FAT boot sector (no 55 AA signature)"));
    }
    let (Some(sector), Some(per_cluster), Some(reserved), Some(&fats), Some(root_entries)) = (
        field16(11),
        boot.get(13).map(|&n| u64::from(n)),
        field16(14),
        boot.get(16),
        field16(17),
    ) else {
        return Err(invalid("the FAT boot sector is short"));
    };
    if !matches!(sector, 512 | 1024 | 2048 | 4096)
        || !per_cluster.is_power_of_two()
        || reserved == 0
        || fats == 0
    {
        return Err(invalid("not a FAT boot sector (bad BIOS parameter block)"));
    }
    let fat_sectors = match field16(22) {
        Some(0) => field32(36).unwrap_or(0),
        other => other.unwrap_or(0),
    };
    let total = match field16(19) {
        Some(0) => field32(32).unwrap_or(0),
        other => other.unwrap_or(0),
    };
    let root_sectors = (root_entries * DIR_ENTRY as u64).div_ceil(sector);
    let data_sector = reserved + u64::from(fats) * fat_sectors + root_sectors;
    if fat_sectors == 0 || total <= data_sector {
        return Err(invalid("not a FAT boot sector (no FAT or no data area)"));
    }
    let clusters = u32::try_from((total - data_sector) / per_cluster)
        .map_err(|_| invalid("too many FAT clusters"))?;
    // The FAT type follows from the cluster count alone (Microsoft's FAT specification).
    let bits = match clusters {
        0..4085 => 12,
        4085..65525 => 16,
        _ => 32,
    };
    Ok(Geometry {
        bits,
        cluster_bytes: per_cluster * sector,
        fat_offset: reserved * sector,
        root_offset: (reserved + u64::from(fats) * fat_sectors) * sector,
        root_bytes: root_sectors * sector,
        root_cluster: le32(boot, 44).unwrap_or(0),
        data_offset: data_sector * sector,
        clusters,
    })
}

impl Geometry {
    /// The cluster after `cluster` in its chain, `None` at the end of the chain.
    fn next(&self, read_at: &mut ReadAt, cluster: u32) -> io::Result<Option<u32>> {
        let n = u64::from(cluster);
        let mut buf = [0; 4];
        let (value, end) = match self.bits {
            12 => {
                read_at(self.fat_offset + n + n / 2, &mut buf[..2])?;
                let pair = u32::from(u16::from_le_bytes([buf[0], buf[1]]));
                let value = if n % 2 == 1 { pair >> 4 } else { pair & 0xfff };
                (value, 0xff8)
            }
            16 => {
                read_at(self.fat_offset + 2 * n, &mut buf[..2])?;
                (u32::from(u16::from_le_bytes([buf[0], buf[1]])), 0xfff8)
            }
            _ => {
                read_at(self.fat_offset + 4 * n, &mut buf)?;
                (u32::from_le_bytes(buf) & 0x0fff_ffff, 0x0fff_fff8)
            }
        };
        Ok((value < end).then_some(value))
    }

    /// The bytes of the chain from `first`, at most `limit` of them.
    fn chain(&self, read_at: &mut ReadAt, first: u32, limit: u64) -> io::Result<Vec<u8>> {
        let mut bytes = Vec::new();
        let mut cluster = Some(first);
        // A chain longer than the filesystem has clusters loops.
        for _ in 0..=self.clusters {
            let Some(current) = cluster else {
                return Ok(bytes);
            };
            if current < 2 || current - 2 >= self.clusters {
                return Err(invalid(format!("FAT chain names cluster {current}")));
            }
            if bytes.len() as u64 >= limit {
                return Ok(bytes);
            }
            let offset = self.data_offset + u64::from(current - 2) * self.cluster_bytes;
            let start = bytes.len();
            bytes.resize(start + self.cluster_bytes as usize, 0);
            read_at(offset, &mut bytes[start..])?;
            cluster = self.next(read_at, current)?;
        }
        Err(invalid("a FAT chain loops"))
    }
}

/// `name` as an 8.3 directory entry name (upper case, space-padded), if it has that form.
fn short_name(name: &str) -> Option<[u8; 11]> {
    let (base, ext) = name.split_once('.').unwrap_or((name, ""));
    if base.is_empty() || base.len() > 8 || ext.len() > 3 || !name.is_ascii() {
        return None;
    }
    let mut out = [b' '; 11];
    out[..base.len()].copy_from_slice(base.to_ascii_uppercase().as_bytes());
    out[8..8 + ext.len()].copy_from_slice(ext.to_ascii_uppercase().as_bytes());
    Some(out)
}

/// The entry named `name` in the directory `dir`: its attributes, first cluster and size.
fn find(dir: &[u8], name: &[u8; 11]) -> Option<(u8, u32, u32)> {
    for entry in dir.chunks_exact(DIR_ENTRY) {
        let attr = entry[11];
        match entry[0] {
            0 => return None,
            DELETED => continue,
            _ if attr == ATTR_LONG_NAME || attr & ATTR_VOLUME != 0 => continue,
            _ if entry[..11].eq_ignore_ascii_case(name) => {
                let high = u32::from(le16(entry, 20)?);
                let low = u32::from(le16(entry, 26)?);
                return Some((attr, high << 16 | low, le32(entry, 28)?));
            }
            _ => {}
        }
    }
    None
}

/// The contents of the file at `path` (components from the root, such as `["EFI", "BOOT",
/// "BOOTX64.EFI"]`), `None` if it does not exist; larger than `max` bytes is an error.
pub fn read_file(read_at: &mut ReadAt, path: &[&str], max: u64) -> io::Result<Option<Vec<u8>>> {
    let mut boot = [0; 512];
    read_at(0, &mut boot)?;
    let geo = geometry(&boot)?;
    let mut dir = if geo.bits == 32 {
        geo.chain(read_at, geo.root_cluster, u64::MAX)?
    } else {
        let mut root = vec![0; geo.root_bytes as usize];
        read_at(geo.root_offset, &mut root)?;
        root
    };
    let Some((last, parents)) = path.split_last() else {
        return Ok(None);
    };
    for component in parents {
        let Some(found) = short_name(component).and_then(|name| find(&dir, &name)) else {
            return Ok(None);
        };
        match found {
            (attr, cluster, _) if attr & ATTR_DIRECTORY != 0 => {
                dir = geo.chain(read_at, cluster, u64::MAX)?;
            }
            _ => return Ok(None),
        }
    }
    let Some((attr, cluster, size)) = short_name(last).and_then(|name| find(&dir, &name)) else {
        return Ok(None);
    };
    if attr & ATTR_DIRECTORY != 0 {
        return Ok(None);
    }
    let size = u64::from(size);
    if size > max {
        return Err(invalid(format!(
            "{} is {size} bytes, more than the {max} read",
            path.join("/")
        )));
    }
    if size == 0 {
        return Ok(Some(Vec::new()));
    }
    let mut bytes = geo.chain(read_at, cluster, size)?;
    if (bytes.len() as u64) < size {
        return Err(invalid(format!(
            "{}: its FAT chain is shorter than its size",
            path.join("/")
        )));
    }
    bytes.truncate(size as usize);
    Ok(Some(bytes))
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::FileExt;
    use std::process::Command;

    use super::*;

    #[test]
    fn short_names_are_upper_case_and_padded() {
        assert_eq!(short_name("bootx64.efi"), Some(*b"BOOTX64 EFI"));
        assert_eq!(short_name("EFI"), Some(*b"EFI        "));
        assert_eq!(short_name("grubx64-long.efi"), None);
        assert_eq!(short_name(".efi"), None);
    }

    #[test]
    fn a_boot_sector_without_its_signature_or_geometry_is_refused() {
        assert!(geometry(&[0; 512]).is_err());
        let mut sector = [0; 512];
        sector[510..].copy_from_slice(&[0x55, 0xaa]);
        assert!(geometry(&sector).is_err());
    }

    /// A FAT filesystem made by mkfs.vfat with `-F bits`, holding `files` (written by
    /// mcopy, directories by mmd).
    fn image(dir: &std::path::Path, bits: u8, mib: u64, files: &[(&str, &[u8])]) -> std::fs::File {
        e2e::tools::require_tools(&["mkfs.vfat", "mmd", "mcopy"]);
        let path = dir.join(format!("fat{bits}.img"));
        let file = std::fs::File::create(&path).expect("creating the image");
        file.set_len(mib << 20).expect("sizing the image");
        e2e::cmd::run(
            Command::new("mkfs.vfat")
                .args(["-F", &bits.to_string(), "-n", "ESP"])
                .arg(&path),
        );
        let image = path.display().to_string();
        for (name, contents) in files {
            let mut at = String::from("::");
            let parts: Vec<&str> = name.split('/').collect();
            for part in &parts[..parts.len() - 1] {
                at = format!("{at}/{part}");
                let _ = Command::new("mmd")
                    .args(["-D", "s", "-i", &image, &at])
                    .output();
            }
            let source = dir.join("source");
            std::fs::write(&source, contents).expect("writing the source file");
            e2e::cmd::run(
                Command::new("mcopy")
                    .args(["-o", "-i", &image])
                    .arg(&source)
                    .arg(format!("::/{name}")),
            );
        }
        std::fs::File::open(&path).expect("opening the image")
    }

    fn read(file: &std::fs::File, path: &[&str], max: u64) -> io::Result<Option<Vec<u8>>> {
        read_file(&mut |at, buf| file.read_exact_at(buf, at), path, max)
    }

    #[test]
    fn files_are_read_from_fat12_fat16_and_fat32() {
        let dir = tempfile::tempdir().expect("a temporary directory");
        // Larger than a cluster and not a multiple of one: the chain and the last cluster.
        let loader: Vec<u8> = (0..150_000u32).map(|i| (i % 253) as u8).collect();
        for (bits, mib) in [(12, 4), (16, 32), (32, 64)] {
            let file = image(
                dir.path(),
                bits,
                mib,
                &[
                    ("EFI/BOOT/BOOTX64.EFI", &loader),
                    ("EFI/debian/grubx64.efi", b"debian"),
                    ("EFI/BOOT/empty.txt", b""),
                ],
            );
            let got = read(&file, &["EFI", "BOOT", "BOOTX64.EFI"], 1 << 20).expect("reading");
            assert_eq!(got.as_deref(), Some(&loader[..]), "FAT{bits}");
            let other = read(&file, &["efi", "Debian", "GRUBX64.EFI"], 1 << 20).expect("reading");
            assert_eq!(other.as_deref(), Some(&b"debian"[..]), "FAT{bits}");
            let empty = read(&file, &["EFI", "BOOT", "EMPTY.TXT"], 10).expect("reading");
            assert_eq!(empty, Some(Vec::new()), "FAT{bits}");
            for missing in [
                &["EFI", "BOOT", "BOOTIA32.EFI"][..],
                &["EFI", "ubuntu", "shimx64.efi"],
                &["EFI", "BOOT"],
                &["EFI", "BOOT", "BOOTX64.EFI", "X"],
                &[],
            ] {
                assert_eq!(
                    read(&file, missing, 1 << 20).expect("reading"),
                    None,
                    "{missing:?}"
                );
            }
            assert!(read(&file, &["EFI", "BOOT", "BOOTX64.EFI"], 1000).is_err());
        }
    }
}
