//! Whether the disk's boot code still loads this multiboot GRUB, or something else, such as
//! an image's own GRUB package, has been installed over it (docs/grub-packages.md).
//!
//! BIOS: the firmware runs the disk's first sector, GRUB's boot.img, which loads the core
//! image from the sector it names; the core image holds the prefix, so it decides which
//! grub.cfg GRUB reads. grub-install keeps both images in the multiboot tree
//! (`boot/grub/i386-pc/boot.img` and `core.img`; `boot/grub2/...` from Bareon's
//! grub2-install) and patches some bytes of each as it writes them to the disk (GRUB's
//! `util/setup.c`); everything else must be equal. An image's
//! `grub-install` writes the same boot.img when its GRUB is the same version, so the core
//! image is what tells them apart: its prefix names the image's /boot, not the partition.
//! UEFI: see [`uefi`].
//!
//! The comparisons are pure functions of bytes; [`check`] reads the disk for them.

pub mod uefi;

use std::fs::File;
use std::io;
use std::ops::Range;
use std::os::unix::fs::FileExt;
use std::path::Path;

use shared::bytes::{le16, le32};

use crate::store;

/// A disk sector as GRUB's i386-pc code counts them, whatever the disk's own sector size.
const SECTOR: usize = 512;

/// Where grub-install keeps the images it wrote, relative to the grub directory
/// (`boot/grub`, or `boot/grub2` where Bareon's grub2-install made it).
const BOOT_IMG: &str = "i386-pc/boot.img";
const CORE_IMG: &str = "i386-pc/core.img";

/// The bytes of boot.img that grub-install sets as it writes the first sector (offsets
/// from GRUB's `include/grub/i386/pc/boot.h`, what `util/setup.c` writes into them):
const BOOT_PATCHED: [Range<usize>; 5] = [
    // The BIOS parameter block, copied from the sector that was there.
    0x03..0x5a,
    // KERNEL_SECTOR: the LBA of the core image's first sector (64 bits).
    0x5c..0x64,
    // BOOT_DRIVE, set to 0xff (use the drive the BIOS booted from).
    0x64..0x65,
    // DRIVE_CHECK: a jump that becomes two NOPs on a hard disk.
    0x66..0x68,
    // The Windows NT disk signature, two reserved bytes and the partition table.
    0x1b8..0x1fe,
];
/// Where boot.img keeps KERNEL_SECTOR.
const KERNEL_SECTOR: usize = 0x5c;

/// A blocklist entry of the core image's first sector (diskboot.img): a 64-bit start
/// sector, a 16-bit length in sectors and a 16-bit load segment. The first entry ends the
/// sector; further ones go towards its start; one of length 0 ends the list.
const BLOCKLIST_SIZE: usize = 12;
const FIRST_BLOCKLIST: usize = SECTOR - BLOCKLIST_SIZE;
/// The most entries read: the diskboot code before them needs room.
const MAX_BLOCKLISTS: usize = 20;
/// In the core image's second sector: REED_SOLOMON_REDUNDANCY, which grub-install sets to
/// the size of the error-correction bytes it appends after the image
/// (`include/grub/offsets.h`).
const CORE_PATCHED: Range<usize> = SECTOR + 0x10..SECTOR + 0x14;

/// What the disk's boot code loads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// This multiboot GRUB: its menu decides what boots, and bootctl's choices count.
    Loads,
    /// Something else: `what` differs from what the multiboot tree holds, `detail` says how.
    Replaced { what: Part, detail: String },
    /// Could not be told, and `why`.
    Unknown { why: String },
}

/// The piece of boot code a [`Verdict::Replaced`] names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Part {
    /// The disk's first sector, which a BIOS runs.
    BootSector,
    /// The core image that the first sector loads.
    CoreImage,
    /// `EFI/BOOT/BOOTX64.EFI` on the ESP, which a UEFI firmware starts from the disk.
    RemovableLoader,
    /// The firmware's boot entries (NVRAM), which start another loader first.
    BootOrder,
}

impl Part {
    /// The piece, for people.
    pub fn describe(self) -> &'static str {
        match self {
            Part::BootSector => "the disk's boot sector (MBR)",
            Part::CoreImage => "GRUB's core image",
            Part::RemovableLoader => "the ESP's EFI/BOOT/BOOTX64.EFI",
            Part::BootOrder => "the firmware's boot order",
        }
    }
}

/// The verdicts for both firmwares: a node boots with one of them, and the deployer
/// installs GRUB for both.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BootCode {
    pub bios: Verdict,
    pub uefi: Verdict,
}

/// Where Linux shows the firmware's variables (absent when it booted by BIOS).
const EFIVARS: &str = "/sys/firmware/efi/efivars";

/// The firmware that booted the running system.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Firmware {
    Bios,
    Uefi,
}

/// The firmware the node runs on, when bootctl looks at the node it runs on (not at a
/// `--disk` image or a `--boot-dir` tree, whose firmware is unknown).
pub fn running_firmware(located: &crate::source::Located) -> Option<Firmware> {
    if located.offline() {
        return None;
    }
    Some(if Path::new("/sys/firmware/efi").is_dir() {
        Firmware::Uefi
    } else {
        Firmware::Bios
    })
}

/// Whether the boot code of `disk`, the disk that holds the multiboot partition, loads the
/// GRUB of that partition, mounted at `tree`, whose filesystem UUID is `multiboot_uuid`.
pub fn check(tree: &Path, disk: &Path, multiboot_uuid: &str) -> BootCode {
    BootCode {
        bios: check_bios(tree, disk),
        uefi: uefi::check(disk, multiboot_uuid, Path::new(EFIVARS)),
    }
}

/// A run of sectors the first sector of the core image lists: `count` sectors from `start`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Extent {
    pub start: u64,
    pub count: u16,
}

/// Whether `sector`, the disk's first sector, is `boot_img` as grub-install writes it;
/// if so, the LBA of the core image's first sector it loads.
pub fn boot_sector(boot_img: &[u8], sector: &[u8]) -> Result<u64, String> {
    if boot_img.len() != SECTOR {
        return Err(format!(
            "boot.img is {} bytes, not {SECTOR}",
            boot_img.len()
        ));
    }
    if let Some(at) = first_difference(boot_img, sector, &BOOT_PATCHED) {
        return Err(format!(
            "its boot code differs from this GRUB's boot.img at byte {at:#x}"
        ));
    }
    le64(sector, KERNEL_SECTOR).ok_or_else(|| "the sector is short".to_owned())
}

/// The blocklist of `first`, the core image's first sector: the sectors that follow it, in
/// load order. `Err` when no entry ends the list.
pub fn blocklists(first: &[u8]) -> Result<Vec<Extent>, String> {
    let mut extents = Vec::new();
    for i in 0..MAX_BLOCKLISTS {
        let at = FIRST_BLOCKLIST - i * BLOCKLIST_SIZE;
        let (Some(start), Some(count)) = (le64(first, at), le16(first, at + 8)) else {
            break;
        };
        if count == 0 {
            return Ok(extents);
        }
        extents.push(Extent { start, count });
    }
    Err("its first sector holds no blocklist that ends".to_owned())
}

/// Whether `loaded`, the bytes the boot sector loads (at least as long as `core_img`), are
/// `core_img` as grub-install embeds it: equal but for the blocklists of the first sector
/// and the Reed-Solomon redundancy field.
pub fn core_image(core_img: &[u8], loaded: &[u8]) -> Result<(), String> {
    if core_img.len() < 2 * SECTOR {
        return Err(format!("core.img is only {} bytes", core_img.len()));
    }
    if loaded.len() < core_img.len() {
        return Err(format!(
            "the boot sector loads {} bytes, core.img is {}",
            loaded.len(),
            core_img.len()
        ));
    }
    // Both lists (the file's from grub-mkimage, the disk's from grub-install) are skipped,
    // with their terminators.
    let lists = blocklist_start(core_img).min(blocklist_start(loaded));
    match first_difference(core_img, loaded, &[lists..SECTOR, CORE_PATCHED]) {
        Some(at) => Err(format!(
            "the core image the boot sector loads differs from this GRUB's core.img at byte {at:#x} \
             (another GRUB, whose prefix names another /boot)"
        )),
        None => Ok(()),
    }
}

/// The offset of the lowest blocklist entry of `first`, counting the terminator.
fn blocklist_start(first: &[u8]) -> usize {
    let used = (0..MAX_BLOCKLISTS)
        .take_while(|i| le16(first, FIRST_BLOCKLIST - i * BLOCKLIST_SIZE + 8).unwrap_or(0) != 0)
        .count();
    let entries = (used + 1).min(MAX_BLOCKLISTS);
    SECTOR - entries * BLOCKLIST_SIZE
}

/// The first offset of `expected` (within its length) where `actual` differs, outside `skip`.
fn first_difference(expected: &[u8], actual: &[u8], skip: &[Range<usize>]) -> Option<usize> {
    (0..expected.len()).find(|&at| {
        !skip.iter().any(|range| range.contains(&at)) && actual.get(at) != expected.get(at)
    })
}

fn le64(b: &[u8], at: usize) -> Option<u64> {
    let low = le32(b, at)?;
    let high = le32(b, at.checked_add(4)?)?;
    Some(u64::from(high) << 32 | u64::from(low))
}

/// Whether `disk`'s BIOS boot code loads the GRUB of the multiboot tree mounted at `tree`.
/// Reads the disk's first sector, the core image it points to and the images in the tree.
pub fn check_bios(tree: &Path, disk: &Path) -> Verdict {
    let unknown = |why: String| Verdict::Unknown { why };
    let grub_dir = store::find_grub_dir(tree).unwrap_or_else(|| tree.join("boot/grub"));
    let grub_rel = grub_dir.strip_prefix(tree).unwrap_or(&grub_dir).to_owned();
    let read_tree = |name: &str| {
        let path = grub_dir.join(name);
        let rel = grub_rel.join(name).display().to_string();
        match store::read_boot_file(&path, &rel) {
            Ok(Some(bytes)) => Ok(bytes),
            Ok(None) => Err(unknown(format!(
                "the multiboot partition has no {rel} (GRUB was not installed for BIOS from it)"
            ))),
            Err(err) => Err(unknown(format!("{err:#}"))),
        }
    };
    let (boot_img, core_img) = match (read_tree(BOOT_IMG), read_tree(CORE_IMG)) {
        (Ok(boot), Ok(core)) => (boot, core),
        (Err(verdict), _) | (_, Err(verdict)) => return verdict,
    };
    let shown = disk.display();
    let disk = match File::open(disk) {
        Ok(file) => file,
        Err(err) => return unknown(format!("opening {shown}: {err}")),
    };
    let read = |lba: u64, sectors: usize| -> io::Result<Vec<u8>> {
        let mut buf = vec![0; sectors * SECTOR];
        let offset = lba
            .checked_mul(SECTOR as u64)
            .ok_or_else(|| io::Error::other("sector number out of range"))?;
        disk.read_exact_at(&mut buf, offset)?;
        Ok(buf)
    };
    let replaced = |what: Part, detail: String| Verdict::Replaced { what, detail };
    let first = match read(0, 1) {
        Ok(sector) => sector,
        Err(err) => return unknown(format!("reading the first sector of {shown}: {err}")),
    };
    let kernel_sector = match boot_sector(&boot_img, &first) {
        Ok(lba) => lba,
        Err(detail) => return replaced(Part::BootSector, detail),
    };
    let mut loaded = match read(kernel_sector, 1) {
        Ok(sector) => sector,
        Err(err) => {
            return replaced(
                Part::CoreImage,
                format!(
                    "the boot sector points to sector {kernel_sector}, which cannot be read: {err}"
                ),
            )
        }
    };
    let extents = match blocklists(&loaded) {
        Ok(extents) => extents,
        Err(detail) => return replaced(Part::CoreImage, detail),
    };
    // Only as much as core.img: the sectors after it hold the error-correction bytes.
    for extent in extents {
        let wanted = core_img.len().saturating_sub(loaded.len()).div_ceil(SECTOR);
        if wanted == 0 {
            break;
        }
        match read(extent.start, usize::from(extent.count).min(wanted)) {
            Ok(bytes) => loaded.extend(bytes),
            Err(err) => {
                return replaced(
                    Part::CoreImage,
                    format!(
                        "its blocklist names sector {}, which cannot be read: {err}",
                        extent.start
                    ),
                )
            }
        }
    }
    match core_image(&core_img, &loaded) {
        Ok(()) => Verdict::Loads,
        Err(detail) => replaced(Part::CoreImage, detail),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A boot.img stand-in: every byte its offset's low bits, the 55 AA signature at the end.
    fn boot_img() -> Vec<u8> {
        let mut img: Vec<u8> = (0..SECTOR).map(|i| (i % 251) as u8).collect();
        img[0x1fe..].copy_from_slice(&[0x55, 0xaa]);
        img
    }

    /// `img` as grub-install writes it, pointing at `kernel_sector`.
    fn installed(img: &[u8], kernel_sector: u64) -> Vec<u8> {
        let mut sector = img.to_vec();
        sector[0x03..0x5a].fill(0xbb);
        sector[0x5c..0x64].copy_from_slice(&kernel_sector.to_le_bytes());
        sector[0x64] = 0xff;
        sector[0x66..0x68].copy_from_slice(&[0x90, 0x90]);
        sector[0x1b8..0x1fe].fill(0xee);
        sector
    }

    #[test]
    fn the_boot_sector_matches_but_for_what_grub_install_patches() {
        let img = boot_img();
        assert_eq!(boot_sector(&img, &installed(&img, 2048)), Ok(2048));
        for at in [0x00, 0x02, 0x5a, 0x5b, 0x65, 0x68, 0x1b7, 0x1fe, 0x1ff] {
            let mut other = installed(&img, 2048);
            other[at] ^= 1;
            assert_eq!(
                boot_sector(&img, &other),
                Err(format!(
                    "its boot code differs from this GRUB's boot.img at byte {at:#x}"
                )),
                "byte {at:#x}"
            );
        }
        assert!(boot_sector(&img[..100], &img).is_err());
        assert!(boot_sector(&img, &img[..100]).is_err());
    }

    /// A core image stand-in of `sectors` sectors, with a one-entry blocklist in the zeros
    /// that end diskboot.img.
    fn core_img(sectors: usize) -> Vec<u8> {
        let mut img: Vec<u8> = (0..sectors * SECTOR).map(|i| (i % 241) as u8).collect();
        img[SECTOR - 8 * BLOCKLIST_SIZE..SECTOR].fill(0);
        img[FIRST_BLOCKLIST..FIRST_BLOCKLIST + 8].copy_from_slice(&2u64.to_le_bytes());
        img[FIRST_BLOCKLIST + 8..FIRST_BLOCKLIST + 10]
            .copy_from_slice(&(sectors as u16 - 1).to_le_bytes());
        img
    }

    fn set_blocklist(img: &mut [u8], index: usize, start: u64, count: u16) {
        let at = FIRST_BLOCKLIST - index * BLOCKLIST_SIZE;
        img[at..at + 8].copy_from_slice(&start.to_le_bytes());
        img[at + 8..at + 10].copy_from_slice(&count.to_le_bytes());
        img[at + 10..at + 12].copy_from_slice(&0x820u16.to_le_bytes());
    }

    #[test]
    fn blocklists_are_read_until_the_terminator() {
        let mut img = core_img(4);
        set_blocklist(&mut img, 0, 35, 2);
        set_blocklist(&mut img, 1, 90, 1);
        assert_eq!(
            blocklists(&img),
            Ok(vec![
                Extent {
                    start: 35,
                    count: 2
                },
                Extent {
                    start: 90,
                    count: 1
                }
            ])
        );
        img[..SECTOR].fill(0xff);
        assert!(blocklists(&img).is_err());
    }

    #[test]
    fn the_embedded_core_matches_but_for_its_blocklists_and_redundancy_size() {
        let img = core_img(4);
        let mut embedded = img.clone();
        set_blocklist(&mut embedded, 0, 2049, 7);
        set_blocklist(&mut embedded, 1, 4000, 1);
        embedded[CORE_PATCHED].copy_from_slice(&1536u32.to_le_bytes());
        // The error-correction bytes after the image are not compared.
        embedded.extend([0x5a; 3 * SECTOR]);
        assert_eq!(core_image(&img, &embedded), Ok(()));

        // The prefix (in the compressed part) of another GRUB.
        let mut other = embedded.clone();
        other[3 * SECTOR + 7] ^= 1;
        assert!(core_image(&img, &other)
            .unwrap_err()
            .contains(&format!("at byte {:#x}", 3 * SECTOR + 7)));
        // diskboot's code before the blocklists.
        let mut other = embedded.clone();
        other[0x10] ^= 1;
        assert!(core_image(&img, &other)
            .unwrap_err()
            .contains("at byte 0x10"));
        // A byte of the kernel's header beside the redundancy field.
        let mut other = embedded.clone();
        other[CORE_PATCHED.end] ^= 1;
        assert!(core_image(&img, &other).is_err());
        assert!(core_image(&img, &embedded[..3 * SECTOR]).is_err());
        assert!(core_image(&img[..SECTOR], &embedded).is_err());
    }
}
