//! What a partition holds beneath LVM or md RAID, read from its own bytes, without
//! device-mapper or md in the kernel: the volume group and logical volumes of an LVM
//! physical volume and where each volume's first extent lies ([`lvm`]), the array of an md
//! RAID member and where its data starts ([`md`]). A filesystem found there is probed
//! with `blkid -p --offset`.
//!
//! The parsers are pure; [`read_lvm_pv`] and [`read_md_member`] read what they need of
//! a device (or image file) and run them. Errors are one line naming the structure at
//! fault; the caller adds the device.

pub mod lvm;
pub mod md;

#[cfg(test)]
mod tests;

use std::io::{Read, Seek, SeekFrom};

use lvm::{PvLabel, VgMetadata};
use md::MdSuperblock;

pub(crate) use shared::bytes::{le16, le32};

/// The little-endian `u64` at byte `at` of `b`; None past its end.
pub(crate) fn le64(b: &[u8], at: usize) -> Option<u64> {
    let bytes = b.get(at..at.checked_add(8)?)?;
    Some(u64::from_le_bytes(bytes.try_into().ok()?))
}

/// The little-endian `u32` at byte `at` of a structure whose length was checked.
pub(crate) fn u32_at(b: &[u8], at: usize) -> u32 {
    le32(b, at).unwrap_or_default()
}

/// The little-endian `u64` at byte `at` of a structure whose length was checked.
pub(crate) fn u64_at(b: &[u8], at: usize) -> u64 {
    le64(b, at).unwrap_or_default()
}

/// Far more metadata text than LVM writes for any volume group (a few KiB a volume): the
/// bound on what a damaged header can make [`read_lvm_pv`] read.
const MAX_METADATA_TEXT: u64 = 16 << 20;

/// An LVM physical volume: its label and the newest metadata its areas hold.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LvmPv {
    pub label: PvLabel,
    /// None when no area of this PV holds metadata: a PV in no volume group, or one whose
    /// areas are ignored or absent (the group's other PVs then hold it).
    pub metadata: Option<VgMetadata>,
}

/// Reads the LVM label of `device` and the metadata text of each of its metadata areas,
/// each checked against its checksum; of several areas, the highest seqno wins.
/// `Ok(None)` when the device has no LVM label.
pub fn read_lvm_pv<D: Read + Seek>(device: &mut D) -> Result<Option<LvmPv>, String> {
    let first = read_padded(device, 0, lvm::LABEL_SCAN_BYTES as usize)?;
    let Some(label) = lvm::parse_label(&first)? else {
        return Ok(None);
    };
    let mut newest: Option<VgMetadata> = None;
    for &(offset, size) in &label.metadata_areas {
        let header = read_exact_at(device, offset, lvm::MDA_HEADER_BYTES)?;
        let ranges = lvm::metadata_text_ranges(&header, offset, size)?;
        let total: u64 = ranges.iter().map(|&(_, len)| len).sum();
        if total > MAX_METADATA_TEXT {
            return Err(format!(
                "LVM metadata area at byte {offset}: {total} bytes of metadata text, more than the {MAX_METADATA_TEXT} read"
            ));
        }
        let mut text = Vec::new();
        for (start, len) in ranges {
            text.extend(read_exact_at(device, start, len)?);
        }
        if text.is_empty() {
            continue;
        }
        lvm::check_metadata_text(&header, &text)?;
        let vg = lvm::parse_metadata(&String::from_utf8_lossy(&text))?;
        if !vg.pvs.iter().any(|pv| pv.id == label.pv_id) {
            return Err(format!(
                "LVM metadata area at byte {offset}: volume group {} does not list this PV, {}",
                vg.name, label.pv_id
            ));
        }
        if newest.as_ref().is_none_or(|n| vg.seqno > n.seqno) {
            newest = Some(vg);
        }
    }
    Ok(Some(LvmPv {
        label,
        metadata: newest,
    }))
}

/// Reads the md superblock of version 1.2 of `device`; `Ok(None)` when there is none.
pub fn read_md_member<D: Read + Seek>(device: &mut D) -> Result<Option<MdSuperblock>, String> {
    let bytes = read_padded(device, md::SUPERBLOCK_1_2_OFFSET, md::SUPERBLOCK_READ_BYTES)?;
    md::parse_superblock(&bytes)
}

/// `len` bytes at `offset`, zeros past the device's end (which holds no signature).
fn read_padded<D: Read + Seek>(device: &mut D, offset: u64, len: usize) -> Result<Vec<u8>, String> {
    let mut buf = Vec::with_capacity(len);
    device
        .seek(SeekFrom::Start(offset))
        .and_then(|_| device.by_ref().take(len as u64).read_to_end(&mut buf))
        .map_err(|e| format!("reading {len} bytes at byte {offset}: {e}"))?;
    buf.resize(len, 0);
    Ok(buf)
}

fn read_exact_at<D: Read + Seek>(device: &mut D, offset: u64, len: u64) -> Result<Vec<u8>, String> {
    let mut buf = vec![0; len as usize];
    device
        .seek(SeekFrom::Start(offset))
        .and_then(|_| device.read_exact(&mut buf))
        .map_err(|e| format!("reading {len} bytes at byte {offset}: {e}"))?;
    Ok(buf)
}
