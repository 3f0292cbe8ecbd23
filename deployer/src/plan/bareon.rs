//! Bareon's placement of a disk's partitions, sector for sector, for `--layout bareon`.
//!
//! This is what Bareon's Ironic driver computes before it runs sgdisk
//! (`bareon/drivers/deploy/generic.py` `AbstractPartitionPolicy._disk_partition`, with
//! `bareon/utils/block_device.py` `Disk.allocate` and `SpaceClaim.__call__`), on a disk
//! whose GPT holds 128 entries:
//! - The space is the GPT's usable sectors; partitions start on 1 MiB boundaries.
//! - Claims are placed in order from the head. Those after the `remaining` one are placed
//!   from the tail, the last one first, each ending right before the one after it (the
//!   last at the last usable sector); `remaining` then takes the free space between.
//! - A percentage is of the usable space less the implicit (service) partitions, whatever
//!   the other claims take: `usable bytes // 100 * percent`, in sectors rounded up; only
//!   its whole percents count (`33.3%` is `33%`).
//! - A claim from the head ends on the next 1 MiB boundary, but never on the last sector
//!   of its free space: a claim that reaches it, `remaining` included, ends one sector
//!   before. A claim may be up to 1 MiB larger than its free space (Bareon's allocation
//!   accuracy); it then gets what is there.

use crate::size::{Size, MIB};
use crate::text::format_percent;
use crate::validate::JsonPath;

use super::allocate::Request;
use super::PlanError;

/// Bytes of a GPT's partition entries (128 of 128 bytes).
const GPT_ENTRIES_BYTES: u64 = 16384;

/// Where one partition lies, in sectors.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Span {
    pub(super) start: u64,
    pub(super) length: u64,
}

/// The disk's geometry as sgdisk sees it.
#[derive(Debug, Clone, Copy)]
pub(super) struct Geometry {
    /// Sectors per MiB (the alignment).
    align: u64,
    pub(super) first_usable: u64,
    last_usable: u64,
}

impl Geometry {
    /// A disk of `size_bytes` in sectors of `sector_size`, or `None` if it is too small
    /// for the two GPTs.
    pub(super) fn new(size_bytes: u64, sector_size: u32) -> Option<Geometry> {
        let sector = u64::from(sector_size);
        let entries = GPT_ENTRIES_BYTES / sector;
        let total = size_bytes / sector;
        Some(Geometry {
            align: MIB / sector,
            first_usable: 2 + entries,
            last_usable: total.checked_sub(2 + entries)?,
        })
    }

    fn sector_bytes(&self) -> u64 {
        MIB / self.align
    }
}

/// The free space between the head and the tail claims.
struct Free {
    geometry: Geometry,
    /// The first free sector (on a MiB boundary once anything is placed).
    low: u64,
    /// The last free sector.
    high: u64,
    /// Bareon's `usable_size`: the usable sectors less the service partitions.
    usable: u64,
}

impl Free {
    fn align_up(&self, sector: u64) -> u64 {
        sector.div_ceil(self.geometry.align) * self.geometry.align
    }

    /// The free sectors from the first MiB boundary on.
    fn size(&self) -> u64 {
        (self.high + 1).saturating_sub(self.align_up(self.low))
    }

    /// Bareon's `claim_min`: a claim fits a free space up to 1 MiB smaller.
    fn fits(&self, claim: u64) -> bool {
        let size = self.size();
        size > 0 && size >= claim.saturating_sub(self.geometry.align).max(1)
    }

    fn take_head(&mut self, claim: u64) -> Span {
        let start = self.align_up(self.low);
        let end = self.align_up(start + claim).min(self.high);
        self.low = end;
        Span {
            start,
            length: end - start,
        }
    }

    fn take_tail(&mut self, claim: u64) -> Span {
        let low = self.align_up(self.low);
        let start = ((self.high + 1).saturating_sub(claim) / self.geometry.align
            * self.geometry.align)
            .max(low);
        let span = Span {
            start,
            length: self.high + 1 - start,
        };
        self.high = start.saturating_sub(1);
        span
    }
}

/// Places the implicit partitions (`service_mib`, in order at the head) and then
/// `requests` on a disk of `geometry`; `container` names the disk in messages. Returns
/// the implicit partitions' spans and the requests' spans, or why they do not fit.
pub(super) fn place(
    geometry: Geometry,
    service_mib: &[u64],
    requests: &[Request<'_>],
    disk_path: &JsonPath,
    container: &str,
) -> Result<(Vec<Span>, Vec<Span>), Vec<PlanError>> {
    let mut free = Free {
        geometry,
        low: geometry.first_usable,
        high: geometry.last_usable,
        usable: geometry.last_usable + 1 - geometry.first_usable,
    };
    let mut service = Vec::new();
    for mib in service_mib {
        let claim = mib * geometry.align;
        if !free.fits(claim) {
            return Err(vec![PlanError::at(
                disk_path,
                format!(
                    "{container} is too small for Bareon's implicit partitions \
                     ({} MiB and the GPTs)",
                    service_mib.iter().sum::<u64>()
                ),
            )]);
        }
        let span = free.take_head(claim);
        free.usable = free.usable.saturating_sub(span.length);
        service.push(span);
    }
    let claims: Vec<Option<u64>> = requests
        .iter()
        .map(|request| claim_sectors(&free, request.size))
        .collect();
    let empty: Vec<PlanError> = requests
        .iter()
        .zip(&claims)
        .filter(|(_, claim)| **claim == Some(0))
        .map(|(request, _)| {
            PlanError::at(
                &request.path.key("size"),
                match request.size {
                    Size::Percent(hundredths) => format!(
                        "{} is 0% in Bareon's layout, which takes whole percents",
                        format_percent(hundredths)
                    ),
                    _ => "an empty partition has no place in Bareon's layout".to_owned(),
                },
            )
        })
        .collect();
    if !empty.is_empty() {
        return Err(empty);
    }
    let mut spans = vec![None; requests.len()];
    let remaining = requests.iter().position(|r| r.size == Size::Remaining);
    let head_end = remaining.unwrap_or(requests.len());
    let mut order: Vec<(usize, bool)> = (0..head_end).map(|i| (i, false)).collect();
    order.extend((head_end + 1..requests.len()).rev().map(|i| (i, true)));
    for (i, tail) in order {
        let claim = claims[i].expect("only remaining has no claim");
        if !free.fits(claim) {
            return Err(vec![shortfall(&free, &requests[i], claim, container)]);
        }
        let span = if tail {
            free.take_tail(claim)
        } else {
            free.take_head(claim)
        };
        // Bareon would make nothing of a claim left with its free space's last sector.
        if span.length == 0 {
            return Err(vec![shortfall(&free, &requests[i], claim, container)]);
        }
        spans[i] = Some(span);
    }
    if let Some(i) = remaining {
        let claim = free.size();
        if claim <= geometry.align || !free.fits(claim) {
            return Err(vec![PlanError::at(
                requests[i].path,
                format!(
                    "does not fit on {container}: \"remaining\" has less than 1 MiB left \
                     in Bareon's layout"
                ),
            )]);
        }
        spans[i] = Some(free.take_head(claim));
    }
    Ok((
        service,
        spans
            .into_iter()
            .map(|s| s.expect("every claim placed"))
            .collect(),
    ))
}

/// A claim in sectors, as Bareon's `SpaceClaim` computes it; `None` for `remaining`.
fn claim_sectors(free: &Free, size: Size) -> Option<u64> {
    let sector = free.geometry.sector_bytes();
    let bytes = match size {
        Size::Bytes(bytes) => bytes,
        // Bareon takes the whole percents (`SizeUnit.value_int`).
        Size::Percent(hundredths) => free.usable * sector / 100 * u64::from(hundredths / 100),
        Size::Remaining => return None,
    };
    Some(bytes.div_ceil(sector))
}

fn shortfall(free: &Free, request: &Request<'_>, claim: u64, container: &str) -> PlanError {
    let sector = free.geometry.sector_bytes();
    let free_mib = free.size() * sector / MIB;
    let need_mib = (claim * sector).div_ceil(MIB);
    let what = match request.size {
        Size::Percent(hundredths) => format!(
            "{} ({need_mib} MiB of {} MiB usable)",
            format_percent(hundredths),
            free.usable * sector / MIB
        ),
        _ => format!("{need_mib} MiB"),
    };
    PlanError::at(
        request.path,
        format!(
            "does not fit on {container} by {} MiB in Bareon's layout: it needs {what}, \
             {free_mib} MiB are free there",
            need_mib.saturating_sub(free_mib)
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The spans of a blank 200 MiB disk of 512-byte sectors, each test giving what
    /// Bareon's own allocator makes of it (`scripts/bareon-oracle.py`).
    fn bareon(service: &[u64], sizes: &[Size]) -> Vec<(u64, u64)> {
        let path = JsonPath::root();
        let requests: Vec<Request<'_>> = sizes
            .iter()
            .map(|size| Request {
                path: &path,
                size: *size,
            })
            .collect();
        let geometry = Geometry::new(200 * MIB, 512).unwrap();
        let (service, spans) = place(geometry, service, &requests, &path, "disk").unwrap();
        service
            .iter()
            .chain(&spans)
            .map(|s| (s.start, s.length))
            .collect()
    }

    #[test]
    fn percentages_are_of_the_space_left_by_the_implicit_partitions() {
        // scripts/bareon-oracle.py 409600 1 50% 50%
        assert_eq!(
            bareon(&[24, 100], &[Size::Percent(5000), Size::Percent(5000)]),
            [
                (2048, 49152),
                (51200, 204800),
                (256000, 77824),
                (333824, 75742)
            ]
        );
        // scripts/bareon-oracle.py 409600 0 100%
        assert_eq!(
            bareon(&[24], &[Size::Percent(10000)]),
            [(2048, 49152), (51200, 358366)]
        );
    }

    #[test]
    fn claims_after_remaining_go_to_the_tail() {
        // scripts/bareon-oracle.py 409600 1 20 remaining 30 10
        assert_eq!(
            bareon(
                &[24, 100],
                &[
                    Size::Bytes(20 * MIB),
                    Size::Remaining,
                    Size::Bytes(30 * MIB),
                    Size::Bytes(10 * MIB)
                ]
            ),
            [
                (2048, 49152),
                (51200, 204800),
                (256000, 40960),
                (296960, 28671),
                (325632, 61440),
                (387072, 22495)
            ]
        );
        // scripts/bareon-oracle.py 409600 0 remaining
        assert_eq!(
            bareon(&[24], &[Size::Remaining]),
            [(2048, 49152), (51200, 358366)]
        );
    }

    #[test]
    fn a_claim_more_than_1_mib_over_the_free_space_does_not_fit() {
        let path = JsonPath::root().key("v");
        let geometry = Geometry::new(200 * MIB, 512).unwrap();
        let requests = [Request {
            path: &path,
            size: Size::Bytes(177 * MIB),
        }];
        let errors = place(geometry, &[24], &requests, &path, "disk \"vda\"").unwrap_err();
        assert_eq!(
            errors[0].to_string(),
            "v: does not fit on disk \"vda\" by 3 MiB in Bareon's layout: it needs 177 MiB, \
             174 MiB are free there"
        );
        // scripts/bareon-oracle.py 409600 0 176 fails, 175 fits.
        let fits = |mib| {
            let requests = [Request {
                path: &path,
                size: Size::Bytes(mib * MIB),
            }];
            place(geometry, &[24], &requests, &path, "disk").is_ok()
        };
        assert!(!fits(176));
        assert!(fits(175));
    }
}
