use crate::size::{Size, MIB};
use crate::text::format_percent;
use crate::validate::JsonPath;

use super::PlanError;

/// A space request of a disk or volume group.
pub(super) struct Request<'a> {
    pub(super) path: &'a JsonPath,
    pub(super) size: Size,
}

/// The config paths of a disk's or volume group's volumes: `config_index` says where each
/// is among the container's `volumes` (skipped ones left out).
pub(super) fn volume_paths(container: &JsonPath, config_index: &[usize]) -> Vec<JsonPath> {
    config_index
        .iter()
        .map(|&j| container.key("volumes").index(j))
        .collect()
}

/// One request per volume, named by its path in `paths` (from [`volume_paths`]).
pub(super) fn requests<'a, T>(
    paths: &'a [JsonPath],
    volumes: &[T],
    size: impl Fn(&T) -> Size,
) -> Vec<Request<'a>> {
    volumes
        .iter()
        .zip(paths)
        .map(|(volume, path)| Request {
            path,
            size: size(volume),
        })
        .collect()
}

/// Sizes in MiB for `requests` within `free_mib`, in multiples of `unit_mib` (1, or a
/// volume group's extent): exact sizes rounded up, percentages of `free_mib` (the space
/// usable once the implicit partitions and the GPTs are taken) rounded down, `remaining`
/// the rest. `container` names the disk or volume group in messages.
pub(super) fn allocate(
    requests: &[Request<'_>],
    free_mib: u64,
    unit_mib: u64,
    container: &str,
) -> Result<Vec<u64>, Vec<PlanError>> {
    let mut errors = Vec::new();
    let mut sizes: Vec<u64> = requests
        .iter()
        .map(|request| match request.size {
            Size::Bytes(bytes) => bytes.div_ceil(MIB * unit_mib) * unit_mib,
            Size::Percent(hundredths) => {
                let mib = u128::from(free_mib) * u128::from(hundredths) / 10_000;
                let mib = u64::try_from(mib).unwrap_or(u64::MAX) / unit_mib * unit_mib;
                if mib == 0 {
                    errors.push(PlanError::at(
                        &request.path.key("size"),
                        format!(
                            "{} of {container} is less than {}",
                            format_percent(hundredths),
                            if unit_mib == 1 {
                                "1 MiB".to_owned()
                            } else {
                                format!("one {unit_mib} MiB extent")
                            }
                        ),
                    ));
                }
                mib
            }
            // At least one unit, for the fit check; the real size is set below.
            Size::Remaining => unit_mib,
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
        sizes[remaining] += (free_mib - need) / unit_mib * unit_mib;
    }
    Ok(sizes)
}
