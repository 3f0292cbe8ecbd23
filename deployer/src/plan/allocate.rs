use crate::size::{Size, MIB};
use crate::text::format_percent;
use crate::validate::JsonPath;

use super::PlanError;

/// A space request of a disk or volume group.
pub(super) struct Request<'a> {
    pub(super) path: &'a JsonPath,
    pub(super) size: Size,
}

/// Sizes in MiB for `requests` within `free_mib`, percentages taken of `whole_bytes`.
/// `container` names the disk or volume group in messages.
pub(super) fn allocate(
    requests: &[Request<'_>],
    whole_bytes: u64,
    free_mib: u64,
    container: &str,
) -> Result<Vec<u64>, Vec<PlanError>> {
    let mut errors = Vec::new();
    let mut sizes: Vec<u64> = requests
        .iter()
        .map(|request| match request.size {
            Size::Bytes(bytes) => bytes.div_ceil(MIB),
            Size::Percent(hundredths) => {
                let bytes = u128::from(whole_bytes) * u128::from(hundredths) / 10_000;
                let mib = u64::try_from(bytes / u128::from(MIB)).unwrap_or(u64::MAX);
                if mib == 0 {
                    errors.push(PlanError::at(
                        &request.path.key("size"),
                        format!(
                            "{} of {container} is less than 1 MiB",
                            format_percent(hundredths)
                        ),
                    ));
                }
                mib
            }
            // At least 1 MiB, for the fit check; the real size is set below.
            Size::Remaining => 1,
        })
        .collect();
    if !errors.is_empty() {
        return Err(errors);
    }
    let need = sizes.iter().fold(0u64, |sum, s| sum.saturating_add(*s));
    if need > free_mib {
        let mut end = 0u64;
        let first_over = requests
            .iter()
            .zip(&sizes)
            .find(|(_, size)| {
                end = end.saturating_add(**size);
                end > free_mib
            })
            .map(|(request, _)| request.path)
            .expect("the sizes add up to more than free_mib");
        let what = if requests.iter().any(|r| r.size == Size::Remaining) {
            "its volumes (with at least 1 MiB for \"remaining\")"
        } else {
            "its volumes"
        };
        return Err(vec![PlanError::at(
            first_over,
            format!(
                "does not fit on {container} by {} MiB: {what} need {need} MiB, \
                 {free_mib} MiB are free",
                need - free_mib
            ),
        )]);
    }
    if let Some(remaining) = requests.iter().position(|r| r.size == Size::Remaining) {
        sizes[remaining] += free_mib - need;
    }
    Ok(sizes)
}
