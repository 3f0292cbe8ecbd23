use std::io;

use crate::blockdev;

/// A partition: its number in the table and its extent in bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct PartSpan {
    pub(super) number: u32,
    pub(super) start: u64,
    pub(super) size: u64,
}

impl PartSpan {
    pub(super) fn overlaps(&self, other: &PartSpan) -> bool {
        self.start < other.start.saturating_add(other.size)
            && other.start < self.start.saturating_add(self.size)
    }
}

const MBR_EXTENDED: [u8; 3] = [0x05, 0x0F, 0x85];
const MBR_PROTECTIVE: u8 = 0xEE;
/// Bounds on what is read, so that a corrupt table cannot make us allocate or loop much.
const GPT_MAX_ENTRY_BYTES: u64 = 4 << 20;
const MAX_LOGICAL_PARTITIONS: usize = 256;

/// One entry of an MBR or EBR.
struct MbrEntry {
    kind: u8,
    start: u64,
    sectors: u64,
}

fn mbr_entries(sector: &[u8]) -> Option<Vec<MbrEntry>> {
    if sector.get(510..512)? != [0x55, 0xAA] {
        return None;
    }
    (0..4)
        .map(|i| {
            let e = sector.get(446 + 16 * i..446 + 16 * (i + 1))?;
            // Anything but 0x00/0x80 as a boot flag means this is not a partition table.
            if e[0] != 0 && e[0] != 0x80 {
                return None;
            }
            Some(MbrEntry {
                kind: e[4],
                start: u64::from(u32::from_le_bytes(e[8..12].try_into().ok()?)),
                sectors: u64::from(u32::from_le_bytes(e[12..16].try_into().ok()?)),
            })
        })
        .collect()
}

/// Reads a GPT (behind its protective MBR) or an MBR with logical partitions, the way the
/// kernel would; `read_at` reads exactly `buf.len()` bytes at an offset, `sector` is the logical
/// block size and `disk_size` the size in bytes. No table, or an invalid one, gives no partitions.
pub(super) fn read_partition_table(
    read_at: &mut dyn FnMut(u64, &mut [u8]) -> io::Result<()>,
    sector: u64,
    disk_size: u64,
) -> io::Result<Vec<PartSpan>> {
    let sector_len = usize::try_from(sector).map_err(io::Error::other)?;
    let sectors = disk_size / sector;
    if sectors < 2 {
        return Ok(Vec::new());
    }
    let mut mbr = vec![0; sector_len];
    read_at(0, &mut mbr)?;
    // A filesystem on the whole disk (a FAT "superfloppy") also ends its first sector in 55 AA.
    if blockdev::probe_bytes(&mbr).is_some() {
        return Ok(Vec::new());
    }
    let Some(entries) = mbr_entries(&mbr) else {
        return Ok(Vec::new());
    };
    if entries.iter().any(|e| e.kind == MBR_PROTECTIVE) {
        for lba in [1, sectors - 1] {
            if let Some(parts) = read_gpt(read_at, sector, sectors, lba)? {
                return Ok(parts);
            }
        }
        return Ok(Vec::new());
    }
    let in_disk = |start: u64, len: u64| -> Option<(u64, u64)> {
        (start > 0 && len > 0 && start < sectors).then(|| (start, len.min(sectors - start)))
    };
    let mut parts = Vec::new();
    let mut next_logical = 5u32;
    for (number, e) in (1u32..).zip(&entries) {
        let Some((start, len)) = in_disk(e.start, e.sectors) else {
            continue;
        };
        if !MBR_EXTENDED.contains(&e.kind) {
            if e.kind != 0 {
                parts.push(PartSpan {
                    number,
                    start: start * sector,
                    size: len * sector,
                });
            }
            continue;
        }
        // Logical partitions, numbered from 5: a chain of EBRs, each locating its partition
        // relative to itself and the next EBR relative to the extended partition's start.
        let mut ebr_lba = start;
        let mut ebr = vec![0; sector_len];
        for _ in 0..MAX_LOGICAL_PARTITIONS {
            read_at(ebr_lba * sector, &mut ebr)?;
            let entries = mbr_entries(&ebr).unwrap_or_default();
            let [logical, link, ..] = entries.as_slice() else {
                break;
            };
            if logical.kind != 0 && !MBR_EXTENDED.contains(&logical.kind) {
                if let Some((s, l)) =
                    in_disk(ebr_lba.saturating_add(logical.start), logical.sectors)
                {
                    parts.push(PartSpan {
                        number: next_logical,
                        start: s * sector,
                        size: l * sector,
                    });
                    next_logical += 1;
                }
            }
            match in_disk(start.saturating_add(link.start), 1) {
                Some((lba, _)) if MBR_EXTENDED.contains(&link.kind) && lba != ebr_lba => {
                    ebr_lba = lba
                }
                _ => break,
            }
        }
    }
    parts.sort_by_key(|p| p.number);
    Ok(parts)
}

/// The partitions of the GPT whose header is at `lba`, or `None` if that header or its entry
/// array is not valid.
fn read_gpt(
    read_at: &mut dyn FnMut(u64, &mut [u8]) -> io::Result<()>,
    sector: u64,
    sectors: u64,
    lba: u64,
) -> io::Result<Option<Vec<PartSpan>>> {
    let mut header = vec![0; usize::try_from(sector).map_err(io::Error::other)?];
    read_at(lba * sector, &mut header)?;
    let le32 = |b: &[u8], at: usize| -> u32 {
        b.get(at..at + 4)
            .and_then(|s| s.try_into().ok())
            .map_or(0, u32::from_le_bytes)
    };
    let le64 = |b: &[u8], at: usize| -> u64 {
        b.get(at..at + 8)
            .and_then(|s| s.try_into().ok())
            .map_or(0, u64::from_le_bytes)
    };
    let header_size = usize::try_from(le32(&header, 12)).unwrap_or(usize::MAX);
    if header.get(..8) != Some(b"EFI PART") || header_size < 92 || header_size > header.len() {
        return Ok(None);
    }
    let mut zeroed = header[..header_size].to_vec();
    zeroed[16..20].fill(0);
    if crc32(&zeroed) != le32(&header, 16) || le64(&header, 24) != lba {
        return Ok(None);
    }
    let entries_lba = le64(&header, 72);
    let count = u64::from(le32(&header, 80));
    let entry_size = u64::from(le32(&header, 84));
    let total = count.saturating_mul(entry_size);
    if entry_size < 128
        || entry_size % 8 != 0
        || total > GPT_MAX_ENTRY_BYTES
        || entries_lba >= sectors
        || entries_lba.saturating_add(total.div_ceil(sector)) > sectors
    {
        return Ok(None);
    }
    let mut entries = vec![0; usize::try_from(total).map_err(io::Error::other)?];
    read_at(entries_lba * sector, &mut entries)?;
    if crc32(&entries) != le32(&header, 88) {
        return Ok(None);
    }
    let entry_size = usize::try_from(entry_size).map_err(io::Error::other)?;
    Ok(Some(
        (1u32..)
            .zip(entries.chunks_exact(entry_size))
            .filter(|(_, e)| e[..16] != [0; 16])
            .filter_map(|(number, e)| {
                let (first, last) = (le64(e, 32), le64(e, 40));
                (first > 0 && first <= last && last < sectors).then(|| PartSpan {
                    number,
                    start: first * sector,
                    size: (last - first + 1) * sector,
                })
            })
            .collect(),
    ))
}

/// CRC-32 (IEEE 802.3, reflected), as GPT uses it.
fn crc32(data: &[u8]) -> u32 {
    !data.iter().fold(!0u32, |crc, &byte| {
        (0..8).fold(crc ^ u32::from(byte), |c, _| {
            if c & 1 != 0 {
                (c >> 1) ^ 0xEDB8_8320
            } else {
                c >> 1
            }
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: usize = 512;

    fn put(buf: &mut [u8], at: usize, bytes: &[u8]) {
        buf[at..at + bytes.len()].copy_from_slice(bytes);
    }

    fn mbr_entry(disk: &mut [u8], sector_at: usize, slot: usize, kind: u8, start: u32, len: u32) {
        let at = sector_at * S + 446 + 16 * slot;
        disk[at + 4] = kind;
        put(disk, at + 8, &start.to_le_bytes());
        put(disk, at + 12, &len.to_le_bytes());
        put(disk, sector_at * S + 510, &[0x55, 0xAA]);
    }

    /// A GPT disk of `sectors` sectors with the given (first, last) LBAs, entries at LBA 2 and
    /// the backup header at the last LBA pointing at entries at LBA sectors-33.
    fn gpt_disk(sectors: usize, parts: &[(u64, u64)]) -> Vec<u8> {
        let mut disk = vec![0u8; sectors * S];
        mbr_entry(&mut disk, 0, 0, MBR_PROTECTIVE, 1, (sectors - 1) as u32);
        let mut entries = vec![0u8; 128 * 128];
        for (i, (first, last)) in parts.iter().enumerate() {
            let e = &mut entries[i * 128..(i + 1) * 128];
            put(e, 0, &[0xAF; 16]);
            put(e, 16, &[i as u8 + 1; 16]);
            put(e, 32, &first.to_le_bytes());
            put(e, 40, &last.to_le_bytes());
        }
        let last_lba = sectors as u64 - 1;
        for (my_lba, alt_lba, entries_lba) in [(1, last_lba, 2), (last_lba, 1, last_lba - 32)] {
            put(&mut disk, entries_lba as usize * S, &entries);
            let mut h = vec![0u8; 92];
            put(&mut h, 0, b"EFI PART");
            put(&mut h, 8, &0x0001_0000u32.to_le_bytes());
            put(&mut h, 12, &92u32.to_le_bytes());
            put(&mut h, 24, &my_lba.to_le_bytes());
            put(&mut h, 32, &alt_lba.to_le_bytes());
            put(&mut h, 72, &entries_lba.to_le_bytes());
            put(&mut h, 80, &128u32.to_le_bytes());
            put(&mut h, 84, &128u32.to_le_bytes());
            put(&mut h, 88, &crc32(&entries).to_le_bytes());
            let crc = crc32(&h);
            put(&mut h, 16, &crc.to_le_bytes());
            put(&mut disk, my_lba as usize * S, &h);
        }
        disk
    }

    fn table(disk: &[u8]) -> io::Result<Vec<PartSpan>> {
        let mut read_at = |offset: u64, buf: &mut [u8]| {
            let start = usize::try_from(offset).map_err(io::Error::other)?;
            let src = disk
                .get(start..start + buf.len())
                .ok_or_else(|| io::Error::from(io::ErrorKind::UnexpectedEof))?;
            buf.copy_from_slice(src);
            Ok(())
        };
        read_partition_table(&mut read_at, S as u64, disk.len() as u64)
    }

    fn span(number: u32, first: u64, sectors: u64) -> PartSpan {
        PartSpan {
            number,
            start: first * S as u64,
            size: sectors * S as u64,
        }
    }

    #[test]
    fn crc32_check_value() {
        assert_eq!(crc32(b"123456789"), 0xCBF4_3926);
    }

    #[test]
    fn gpt_primary_table() {
        let disk = gpt_disk(4096, &[(2048, 3071), (3072, 4062)]);
        assert_eq!(
            table(&disk).unwrap(),
            vec![span(1, 2048, 1024), span(2, 3072, 991)]
        );
    }

    #[test]
    fn gpt_backup_serves_when_primary_is_corrupt_and_gaps_keep_numbers() {
        let mut disk = gpt_disk(4096, &[(0, 0), (100, 199)]);
        // Entry 1 has type zero: unused. Corrupt the primary header's CRC.
        put(&mut disk, 128 * 2 * 4, &[0; 16]);
        put(&mut disk, S + 16, &[1, 2, 3, 4]);
        assert_eq!(table(&disk).unwrap(), vec![span(2, 100, 100)]);
        put(&mut disk, 4095 * S + 16, &[1, 2, 3, 4]);
        assert_eq!(table(&disk).unwrap(), vec![]);
    }

    #[test]
    fn gpt_entries_outside_the_disk_are_dropped() {
        let disk = gpt_disk(4096, &[(100, 5000), (300, 200), (10, 20)]);
        assert_eq!(table(&disk).unwrap(), vec![span(3, 10, 11)]);
    }

    #[test]
    fn mbr_with_logical_partitions() {
        let mut disk = vec![0u8; 1000 * S];
        mbr_entry(&mut disk, 0, 0, 0x83, 10, 90);
        mbr_entry(&mut disk, 0, 1, 0x05, 100, 800);
        mbr_entry(&mut disk, 0, 3, 0x82, 950, 100);
        // EBR at 100: logical at 100+2, next EBR at 100+400; EBR at 500: logical, end of chain.
        mbr_entry(&mut disk, 100, 0, 0x83, 2, 300);
        mbr_entry(&mut disk, 100, 1, 0x05, 400, 300);
        mbr_entry(&mut disk, 500, 0, 0x83, 2, 100);
        assert_eq!(
            table(&disk).unwrap(),
            vec![
                span(1, 10, 90),
                span(4, 950, 50),
                span(5, 102, 300),
                span(6, 502, 100),
            ]
        );
    }

    #[test]
    fn ebr_chain_pointing_at_itself_ends() {
        let mut disk = vec![0u8; 1000 * S];
        mbr_entry(&mut disk, 0, 0, 0x0F, 100, 800);
        mbr_entry(&mut disk, 100, 0, 0x83, 2, 10);
        mbr_entry(&mut disk, 100, 1, 0x05, 0, 10);
        assert_eq!(table(&disk).unwrap(), vec![span(5, 102, 10)]);
    }

    #[test]
    fn no_table_superfloppy_and_bad_boot_flags() {
        assert_eq!(table(&vec![0u8; 64 * S]).unwrap(), vec![]);
        assert_eq!(table(&[0u8; 100]).unwrap(), vec![]);
        let mut flags = vec![0u8; 64 * S];
        mbr_entry(&mut flags, 0, 0, 0x83, 1, 10);
        flags[446] = 0x12;
        assert_eq!(table(&flags).unwrap(), vec![]);
        let mut fat = vec![0u8; 64 * S];
        put(&mut fat, 0, &[0xEB, 0x3C, 0x90]);
        put(&mut fat, 11, &512u16.to_le_bytes());
        fat[13] = 1;
        put(&mut fat, 14, &1u16.to_le_bytes());
        fat[16] = 2;
        fat[21] = 0xF8;
        put(&mut fat, 22, &1u16.to_le_bytes());
        put(&mut fat, 54, b"FAT12   ");
        put(&mut fat, 510, &[0x55, 0xAA]);
        assert_eq!(table(&fat).unwrap(), vec![]);
    }

    #[test]
    fn spans_overlap() {
        assert!(span(1, 10, 10).overlaps(&span(2, 19, 5)));
        assert!(!span(1, 10, 10).overlaps(&span(2, 20, 5)));
    }
}
