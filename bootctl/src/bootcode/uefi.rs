//! UEFI: the loader the deployer writes to the ESP's removable-media path,
//! `EFI/BOOT/BOOTX64.EFI`, is a `grub-mkimage` image whose embedded early config finds the
//! multiboot partition by its filesystem UUID. A distribution's `grub-install --removable`
//! or `--force-extra-removable` (or shim) puts another file there. Where the firmware's
//! variables can be read, a boot entry of the firmware (`efibootmgr`'s, such as Debian's
//! `\EFI\debian\shimx64.efi`) that comes before the removable path is found too.
//!
//! What is not judged: a first boot entry without a file (a whole disk, the network), which
//! may or may not be this disk; whether an entry's file exists (the firmware skips one that
//! does not); and NVRAM at all when the node runs without efivarfs (booted by BIOS).

use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::Path;

use shared::blockdev;
use shared::bytes::{le16, le32};
use shared::fat;

use super::{le64, Part, Verdict};

/// The ESP's GPT partition type, C12A7328-F81F-11D2-BA4B-00A0C93EC93B, as stored.
const ESP_TYPE: [u8; 16] = [
    0x28, 0x73, 0x2a, 0xc1, 0x1f, 0xf8, 0xd2, 0x11, 0xba, 0x4b, 0x00, 0xa0, 0xc9, 0x3e, 0xc9, 0x3b,
];
/// The most GPT entry bytes read (128 entries of 128 bytes are the usual 16 KiB).
const MAX_GPT_ENTRY_BYTES: u64 = 1 << 20;
/// The removable-media path, and the largest loader read from it.
const REMOVABLE: [&str; 3] = ["EFI", "BOOT", "BOOTX64.EFI"];
const MAX_LOADER_BYTES: u64 = 64 << 20;
/// The firmware's global variables in efivarfs: `NAME-<this GUID>`.
const GLOBAL_VARIABLE: &str = "8be4df61-93ca-11d2-aa0d-00e098032b8c";

/// Where an ESP lies on a disk, in bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Span {
    pub start: u64,
    pub len: u64,
}

/// The first ESP among the GPT `entries`, whose header is `header`, on a disk of `sector`
/// bytes per logical block.
pub fn esp_in_gpt(header: &[u8], entries: &[u8], sector: u64) -> Option<Span> {
    if header.get(..8) != Some(b"EFI PART") {
        return None;
    }
    let size = usize::try_from(le32(header, 84)?).ok()?;
    if size < 128 {
        return None;
    }
    entries.chunks_exact(size).find_map(|entry| {
        if entry[..16] != ESP_TYPE {
            return None;
        }
        let (first, last) = (le64(entry, 32)?, le64(entry, 40)?);
        let len = last
            .checked_sub(first)?
            .checked_add(1)?
            .checked_mul(sector)?;
        Some(Span {
            start: first.checked_mul(sector)?,
            len,
        })
    })
}

/// The config that the deployer builds into BOOTX64.EFI (`deployer/src/apply/boot.rs`,
/// `early_config`): grub-mkimage stores it uncompressed, as written.
fn early_config(multiboot_uuid: &str) -> String {
    format!(
        "search --no-floppy --fs-uuid --set=root {}\nset prefix=($root)/boot/grub\n",
        multiboot_uuid.to_ascii_lowercase()
    )
}

/// Whether `loader`, the ESP's BOOTX64.EFI, is the deployer's GRUB for the multiboot
/// partition `multiboot_uuid`.
pub fn removable_loader(loader: &[u8], multiboot_uuid: &str) -> Result<(), String> {
    let config = early_config(multiboot_uuid);
    if loader
        .windows(config.len())
        .any(|window| window == config.as_bytes())
    {
        Ok(())
    } else {
        Err(format!(
            "EFI/BOOT/BOOTX64.EFI holds no early config that finds the multiboot partition \
             {multiboot_uuid} (another loader: a distribution's shim or GRUB installed with \
             --removable or --force-extra-removable)"
        ))
    }
}

/// A boot entry of the firmware (an `EFI_LOAD_OPTION`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoadOption {
    /// LOAD_OPTION_ACTIVE set, in the boot category (the firmware boots it by itself).
    pub bootable: bool,
    pub description: String,
    /// The file its device path names, if any (`\EFI\debian\shimx64.efi`).
    pub file: Option<String>,
}

/// The `Boot####` variable `data` (efivarfs: 4 bytes of attributes, then the load option).
pub fn load_option(data: &[u8]) -> Option<LoadOption> {
    let option = data.get(4..)?;
    let attributes = le32(option, 0)?;
    let paths_len = usize::from(le16(option, 4)?);
    let units: Vec<u16> = option
        .get(6..)?
        .chunks_exact(2)
        .map(|pair| u16::from_le_bytes([pair[0], pair[1]]))
        .take_while(|&unit| unit != 0)
        .collect();
    let paths_at = 6 + 2 * (units.len() + 1);
    let paths = option.get(paths_at..paths_at.checked_add(paths_len)?)?;
    // ACTIVE is bit 0; the category (bits 8 to 12) is 0 for boot, 1 for applications.
    let bootable = attributes & 1 != 0 && attributes & 0x1f00 == 0;
    Some(LoadOption {
        bootable,
        description: String::from_utf16_lossy(&units),
        file: file_path(paths),
    })
}

/// The first media file path node of the device path `paths` (type 4, subtype 4: a UCS-2
/// path), before its end node.
fn file_path(mut paths: &[u8]) -> Option<String> {
    while let (Some(&kind), Some(&subtype), Some(len)) =
        (paths.first(), paths.get(1), le16(paths, 2))
    {
        let len = usize::from(len);
        if kind == 0x7f || len < 4 {
            return None;
        }
        let node = paths.get(..len)?;
        if (kind, subtype) == (4, 4) {
            let units: Vec<u16> = node[4..]
                .chunks_exact(2)
                .map(|pair| u16::from_le_bytes([pair[0], pair[1]]))
                .take_while(|&unit| unit != 0)
                .collect();
            return Some(String::from_utf16_lossy(&units));
        }
        paths = &paths[len..];
    }
    None
}

/// The `u16` list of the BootOrder (or BootNext) variable `data`, past its attributes.
pub fn boot_numbers(data: &[u8]) -> Vec<u16> {
    data.get(4..)
        .unwrap_or_default()
        .chunks_exact(2)
        .map(|pair| u16::from_le_bytes([pair[0], pair[1]]))
        .collect()
}

/// Whether the first bootable entry of `entries` (number and option, in the order the
/// firmware tries them) starts a file other than the removable path.
pub fn boot_order(entries: &[(u16, LoadOption)]) -> Result<(), String> {
    let Some((number, option)) = entries.iter().find(|(_, option)| option.bootable) else {
        return Ok(());
    };
    match &option.file {
        Some(file) if !is_removable_path(file) => Err(format!(
            "the firmware boots Boot{number:04X} \"{}\" ({file}) before the removable path \
             EFI\\BOOT\\BOOTX64.EFI",
            option.description
        )),
        _ => Ok(()),
    }
}

fn is_removable_path(file: &str) -> bool {
    file.trim_start_matches(['\\', '/'])
        .replace('/', "\\")
        .eq_ignore_ascii_case("EFI\\BOOT\\BOOTX64.EFI")
}

/// Whether the UEFI boot code of `disk` (its ESP, and the firmware's variables in
/// `efivars` when they can be read) loads the multiboot GRUB of `multiboot_uuid`.
pub fn check(disk: &Path, multiboot_uuid: &str, efivars: &Path) -> Verdict {
    let unknown = |why: String| Verdict::Unknown { why };
    let shown = disk.display();
    let file = match File::open(disk) {
        Ok(file) => file,
        Err(err) => return unknown(format!("opening {shown}: {err}")),
    };
    // A disk-image file has no logical block size: GPT's default, 512.
    let sector = blockdev::logical_sector_size(&file).map_or(512, u64::from);
    let read = |at: u64, len: u64| -> Result<Vec<u8>, String> {
        let mut buf = vec![0; usize::try_from(len).map_err(|err| err.to_string())?];
        file.read_exact_at(&mut buf, at)
            .map_err(|err| format!("reading {shown} at byte {at}: {err}"))?;
        Ok(buf)
    };
    let esp = (|| {
        let header = read(sector, sector)?;
        let (Some(lba), Some(count), Some(size)) =
            (le64(&header, 72), le32(&header, 80), le32(&header, 84))
        else {
            return Err(format!("{shown}: no GPT"));
        };
        let bytes = u64::from(count) * u64::from(size);
        if bytes > MAX_GPT_ENTRY_BYTES {
            return Err(format!("{shown}: a GPT of {bytes} bytes of entries"));
        }
        let entries = read(lba.saturating_mul(sector), bytes)?;
        esp_in_gpt(&header, &entries, sector).ok_or_else(|| format!("{shown} has no ESP"))
    })();
    let esp = match esp {
        Ok(esp) => esp,
        Err(why) => return unknown(why),
    };
    let loader = fat::read_file(
        &mut |at, buf| {
            if at.saturating_add(buf.len() as u64) > esp.len {
                return Err(std::io::Error::other("past the end of the ESP"));
            }
            file.read_exact_at(buf, esp.start + at)
        },
        &REMOVABLE,
        MAX_LOADER_BYTES,
    );
    let replaced = |what: Part, detail: String| Verdict::Replaced { what, detail };
    match loader {
        Ok(Some(loader)) => {
            if let Err(detail) = removable_loader(&loader, multiboot_uuid) {
                return replaced(Part::RemovableLoader, detail);
            }
        }
        Ok(None) => {
            return replaced(
                Part::RemovableLoader,
                "the ESP has no EFI/BOOT/BOOTX64.EFI".to_owned(),
            )
        }
        Err(err) => return unknown(format!("reading the ESP of {shown}: {err}")),
    }
    match boot_order(&firmware_entries(efivars)) {
        Ok(()) => Verdict::Loads,
        Err(detail) => replaced(Part::BootOrder, detail),
    }
}

/// The firmware's boot entries in the order of its next boot (BootNext, then BootOrder);
/// none where `efivars` cannot be read.
fn firmware_entries(efivars: &Path) -> Vec<(u16, LoadOption)> {
    let variable = |name: &str| std::fs::read(efivars.join(format!("{name}-{GLOBAL_VARIABLE}")));
    let mut numbers = variable("BootNext").map_or_else(|_| Vec::new(), |d| boot_numbers(&d));
    numbers.extend(variable("BootOrder").map_or_else(|_| Vec::new(), |d| boot_numbers(&d)));
    numbers
        .into_iter()
        .filter_map(|number| {
            let data = variable(&format!("Boot{number:04X}")).ok()?;
            Some((number, load_option(&data)?))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn utf16(text: &str) -> Vec<u8> {
        text.encode_utf16()
            .chain([0])
            .flat_map(u16::to_le_bytes)
            .collect()
    }

    /// A `Boot####` variable as efivarfs shows it: attributes, then an EFI_LOAD_OPTION with
    /// a hard-drive node, a file node (if `file`) and the end node.
    fn variable(attributes: u32, description: &str, file: Option<&str>) -> Vec<u8> {
        let mut paths = vec![4, 1, 42, 0];
        paths.extend([0; 38]);
        if let Some(file) = file {
            let name = utf16(file);
            paths.extend([4, 4]);
            paths.extend(((4 + name.len()) as u16).to_le_bytes());
            paths.extend(name);
        }
        paths.extend([0x7f, 0xff, 4, 0]);
        let mut data = 7u32.to_le_bytes().to_vec();
        data.extend(attributes.to_le_bytes());
        data.extend((paths.len() as u16).to_le_bytes());
        data.extend(utf16(description));
        data.extend(paths);
        data
    }

    #[test]
    fn load_options_give_their_file() {
        let debian = load_option(&variable(1, "debian", Some("\\EFI\\debian\\shimx64.efi")));
        assert_eq!(
            debian,
            Some(LoadOption {
                bootable: true,
                description: "debian".to_owned(),
                file: Some("\\EFI\\debian\\shimx64.efi".to_owned()),
            })
        );
        let disk = load_option(&variable(1, "UEFI QEMU HARDDISK", None)).unwrap();
        assert_eq!(disk.file, None);
        assert!(!load_option(&variable(0, "off", None)).unwrap().bootable);
        assert!(
            !load_option(&variable(0x101, "UiApp", None))
                .unwrap()
                .bootable
        );
        assert_eq!(load_option(&[7, 0, 0, 0, 1]), None);
        assert_eq!(boot_numbers(&[7, 0, 0, 0, 3, 0, 1, 0]), [3, 1]);
    }

    #[test]
    fn another_file_first_in_the_boot_order_is_reported() {
        let entry = |bootable, file: Option<&str>| LoadOption {
            bootable,
            description: "x".to_owned(),
            file: file.map(str::to_owned),
        };
        let shim = entry(true, Some("\\EFI\\debian\\shimx64.efi"));
        let removable = entry(true, Some("\\EFI\\BOOT\\BOOTX64.EFI"));
        assert_eq!(boot_order(&[]), Ok(()));
        assert_eq!(
            boot_order(&[(1, entry(true, None)), (3, shim.clone())]),
            Ok(())
        );
        assert_eq!(boot_order(&[(2, removable), (3, shim.clone())]), Ok(()));
        assert_eq!(
            boot_order(&[(0, entry(false, Some("\\x.efi"))), (3, shim)]),
            Err(
                "the firmware boots Boot0003 \"x\" (\\EFI\\debian\\shimx64.efi) before the \
                 removable path EFI\\BOOT\\BOOTX64.EFI"
                    .to_owned()
            )
        );
        assert!(is_removable_path("/efi/boot/bootx64.efi"));
    }

    #[test]
    fn the_loader_must_embed_the_early_config_for_this_partition() {
        let uuid = "0b3c7f52-54ad-4d5e-9a43-7a1f3f1f2b65";
        let mut loader = b"MZ....".to_vec();
        loader.extend(early_config(uuid).as_bytes());
        loader.extend(b"....");
        assert_eq!(removable_loader(&loader, uuid), Ok(()));
        assert_eq!(removable_loader(&loader, &uuid.to_uppercase()), Ok(()));
        let other = "11111111-54ad-4d5e-9a43-7a1f3f1f2b65";
        assert!(removable_loader(&loader, other).is_err());
        assert!(removable_loader(b"MZ shim", uuid).is_err());
    }

    #[test]
    fn the_esp_is_found_by_its_type() {
        let mut header = b"EFI PART".to_vec();
        header.resize(92, 0);
        header[84..88].copy_from_slice(&128u32.to_le_bytes());
        let mut entries = vec![0; 3 * 128];
        entries[0] = 0x48; // a BIOS boot partition's type begins so
        entries[128..144].copy_from_slice(&ESP_TYPE);
        entries[128 + 32..128 + 40].copy_from_slice(&4096u64.to_le_bytes());
        entries[128 + 40..128 + 48].copy_from_slice(&69631u64.to_le_bytes());
        assert_eq!(
            esp_in_gpt(&header, &entries, 512),
            Some(Span {
                start: 4096 * 512,
                len: 65536 * 512
            })
        );
        assert_eq!(esp_in_gpt(&header, &entries[..128], 512), None);
        assert_eq!(esp_in_gpt(b"not a GPT", &entries, 512), None);
    }
}
