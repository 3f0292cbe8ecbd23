//! Every image put onto its filesystems: the boot entries of those not deployed again read
//! first, then the others deployed at the same time, as many as cores and memory allow.
//! An image waits for an earlier one only where they share a filesystem that cannot be
//! staged ([`Staging`]): a raw image's target, a vfat filesystem. The result is the same as
//! deploying them one after the other in config order.

use std::path::Path;
use std::sync::{Condvar, Mutex, PoisonError};

use crate::apply::disk::AttachedDisks;
use crate::apply::image::{
    deploy_image, read_kept_image, unstaged_shared_mount_points, DeployedImage, Staging,
};
use crate::config::{FileSystem, Mount};
use crate::plan::{Device, Plan};
use crate::source::format::FileFormat;
use crate::source::{SourceKind, Sources};
use crate::timing;

/// What one image deployed at the same time as others may need of memory: a decompressor's
/// window and threads, the pipes, the raw writer's buffers.
const MEMORY_PER_IMAGE: u64 = 512 << 20;

/// Deploys every image of `plan` and returns what each brings to its boot entry, in plan
/// order.
pub fn deploy_images(
    plan: &Plan,
    sources: &Sources,
    bootctl: &[u8],
    disks: &AttachedDisks,
    work: &Path,
) -> anyhow::Result<Vec<DeployedImage>> {
    let mut slots: Vec<Option<DeployedImage>> = vec![None; plan.images.len()];
    for (index, image) in plan.images.iter().enumerate() {
        if !plan.deploys(image) {
            crate::info!(
                "deployer: image {}: its / keeps its data: not deployed again, its boot entry \
                 read from it",
                image.name
            );
            slots[index] = Some(timing::step("read", Some(&image.name), || {
                read_kept_image(plan, image, disks, work)
            })?);
        }
    }
    let staged = staged_filesystems(plan, &raw_targets(sources));
    let staging = Staging::prepare(plan, &staged, disks, work)?;
    let waits = waits_for(plan, &staged);
    let todo: Vec<usize> = (0..plan.images.len())
        .filter(|&i| plan.deploys(&plan.images[i]))
        .collect();
    let workers = workers(
        std::thread::available_parallelism().map_or(1, usize::from),
        mem_available(),
        todo.len(),
    );
    if workers > 1 {
        crate::output::detail(format_args!(
            "deployer: deploying {} images, {workers} at a time",
            todo.len()
        ));
    }
    let deploy_one = |index: usize| {
        let image = &plan.images[index];
        let name = &image.name;
        let Some(source) = sources.of(name) else {
            anyhow::bail!("image {name}: its source was not checked");
        };
        crate::info!(
            "deployer: deploying image {name} from {}",
            source.describe()
        );
        let stream = unstaged_shared_mount_points(plan, image, &staging).is_empty();
        let fetched = source.fetch(&sources.client, work, stream)?;
        deploy_image(
            plan,
            image,
            &fetched.payload(source)?,
            bootctl,
            disks,
            work,
            &staging,
        )
    };
    let board = Board {
        state: Mutex::new(State {
            started: vec![false; plan.images.len()],
            finished: vec![false; plan.images.len()],
            failure: None,
        }),
        changed: Condvar::new(),
    };
    let results: Mutex<Vec<(usize, DeployedImage)>> = Mutex::new(Vec::new());
    std::thread::scope(|scope| {
        for _ in 0..workers {
            scope.spawn(|| {
                while let Some(index) = board.next(&todo, &waits) {
                    let result = deploy_one(index);
                    if let Ok(entry) = &result {
                        results
                            .lock()
                            .unwrap_or_else(PoisonError::into_inner)
                            .push((index, entry.clone()));
                    }
                    board.finish(index, result.err());
                }
            });
        }
    });
    let state = board
        .state
        .into_inner()
        .unwrap_or_else(PoisonError::into_inner);
    if let Some(err) = state.failure {
        return Err(err);
    }
    for (index, entry) in results.into_inner().unwrap_or_else(PoisonError::into_inner) {
        slots[index] = Some(entry);
    }
    timing::step("merge", None, || staging.merge())?;
    slots
        .into_iter()
        .zip(&plan.images)
        .map(|(slot, image)| {
            slot.ok_or_else(|| anyhow::anyhow!("image {} was not deployed", image.name))
        })
        .collect()
}

/// Which images are under way, which are done, and the first failure.
struct State {
    started: Vec<bool>,
    finished: Vec<bool>,
    failure: Option<anyhow::Error>,
}

struct Board {
    state: Mutex<State>,
    changed: Condvar,
}

impl Board {
    /// The next image of `todo` whose waits (`waits`) are all finished, once there is one;
    /// `None` when none is left to start or one failed.
    fn next(&self, todo: &[usize], waits: &[Vec<usize>]) -> Option<usize> {
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        loop {
            if state.failure.is_some() {
                return None;
            }
            let left: Vec<usize> = todo
                .iter()
                .copied()
                .filter(|&i| !state.started[i])
                .collect();
            if left.is_empty() {
                return None;
            }
            if let Some(&index) = left
                .iter()
                .find(|&&i| waits[i].iter().all(|&j| state.finished[j]))
            {
                state.started[index] = true;
                return Some(index);
            }
            state = self
                .changed
                .wait(state)
                .unwrap_or_else(PoisonError::into_inner);
        }
    }

    fn finish(&self, index: usize, failure: Option<anyhow::Error>) {
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        state.finished[index] = true;
        if state.failure.is_none() {
            state.failure = failure;
        }
        drop(state);
        self.changed.notify_all();
    }
}

/// How many images are deployed at a time: one per core, as memory allows, at least one.
pub fn workers(cores: usize, mem_available: Option<u64>, images: usize) -> usize {
    let by_memory = mem_available.map_or(1, |bytes| (bytes / MEMORY_PER_IMAGE) as usize);
    cores.min(by_memory).min(images).max(1)
}

/// `MemAvailable` of `/proc/meminfo`, in bytes.
fn mem_available() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/meminfo").ok()?;
    parse_mem_available(&text)
}

/// `MemAvailable` of a `/proc/meminfo` text, in bytes.
pub fn parse_mem_available(meminfo: &str) -> Option<u64> {
    timing::kib_field(meminfo, "MemAvailable")
}

/// The devices a raw or qcow2 image is written onto.
fn raw_targets(sources: &Sources) -> Vec<Device> {
    sources
        .checked
        .iter()
        .filter(|source| match &source.kind {
            SourceKind::File { format, .. } | SourceKind::Http { format, .. } => {
                !matches!(format, FileFormat::Tar(_))
            }
            SourceKind::Tree(_) | SourceKind::Rsync(_) => false,
        })
        .filter_map(|source| source.target.as_ref().ok())
        .map(|target| target.device.clone())
        .collect()
}

/// The filesystems made anew that several deployed images mount and that can be staged:
/// not vfat, not an image's `/` (mounted first, holding the others' mount points), and not
/// the target a raw image is written onto (which exists only once it is written).
pub fn staged_filesystems(plan: &Plan, raw_targets: &[Device]) -> Vec<Device> {
    plan.filesystems
        .iter()
        .filter(|fs| {
            !fs.keep_data
                && fs.fs_type != FileSystem::Vfat
                && matches!(&fs.mount, Mount::Path(path) if path != "/")
                && !raw_targets.contains(&fs.device)
                && plan
                    .images
                    .iter()
                    .filter(|i| plan.deploys(i) && fs.images.contains(&i.name))
                    .count()
                    >= 2
        })
        .map(|fs| fs.device.clone())
        .collect()
}

/// For each image (by plan index), the earlier images it must wait for: those it shares a
/// written filesystem with that is not staged.
pub fn waits_for(plan: &Plan, staged: &[Device]) -> Vec<Vec<usize>> {
    let deployed = |i: usize| plan.deploys(&plan.images[i]);
    (0..plan.images.len())
        .map(|i| {
            (0..i)
                .filter(|&j| deployed(i) && deployed(j))
                .filter(|&j| {
                    plan.filesystems.iter().any(|fs| {
                        !fs.keep_data
                            && !staged.contains(&fs.device)
                            && fs.images.contains(&plan.images[i].name)
                            && fs.images.contains(&plan.images[j].name)
                    })
                })
                .collect()
        })
        .collect()
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::plan::{plan, DiskInput, SequentialIds};

    /// A plan of images a, b and c, each with its own ext4 `/`, plus `volumes` (JSON
    /// objects, each after a comma) on a 1 GiB disk vda, under the `clean` policy.
    pub(crate) fn plan_of(volumes: &str) -> Plan {
        let config = crate::validate::validate(&format!(
            r#"{{"images": [
                {{"name": "a", "image_pull_url": "/a", "target": "/"}},
                {{"name": "b", "image_pull_url": "/b", "target": "/"}},
                {{"name": "c", "image_pull_url": "/c", "target": "/"}}],
              "partitions": [{{"type": "disk", "id": {{"type": "name", "value": "vda"}},
                "volumes": [
                  {{"type": "partition", "mount": "/", "file_system": "ext4", "size": "50", "images": ["a"]}},
                  {{"type": "partition", "mount": "/", "file_system": "ext4", "size": "50", "images": ["b"]}},
                  {{"type": "partition", "mount": "/", "file_system": "ext4", "size": "50", "images": ["c"]}}
                  {volumes}]}}],
              "partitions_policy": "clean"}}"#
        ))
        .unwrap_or_else(|e| panic!("{e:?}"));
        let disk = DiskInput {
            name: "vda".to_owned(),
            path: "/dev/vda".into(),
            size_bytes: 1 << 30,
            sector_size: 512,
            existing: None,
        };
        plan(&config, &[disk], &mut SequentialIds::default()).unwrap()
    }

    #[test]
    fn images_on_their_own_filesystems_never_wait() {
        let plan = plan_of("");
        assert!(staged_filesystems(&plan, &[]).is_empty());
        assert_eq!(waits_for(&plan, &[]), [Vec::<usize>::new(), vec![], vec![]]);
    }

    #[test]
    fn a_shared_filesystem_is_staged_unless_a_raw_image_or_vfat_goes_there() {
        let plan = plan_of(
            r#", {"type": "partition", "mount": "/srv", "file_system": "xfs", "size": "300", "images": ["c", "a"]}
                , {"type": "partition", "mount": "/data", "file_system": "vfat", "size": "40", "images": ["b", "c"]}"#,
        );
        let srv = plan
            .filesystems
            .iter()
            .find(|fs| fs.mount == Mount::Path("/srv".to_owned()))
            .unwrap()
            .device
            .clone();
        let staged = staged_filesystems(&plan, &[]);
        assert_eq!(staged, std::slice::from_ref(&srv));
        assert_eq!(
            waits_for(&plan, &staged),
            [vec![], vec![], vec![1usize]],
            "vfat: c after b"
        );
        assert!(staged_filesystems(&plan, std::slice::from_ref(&srv)).is_empty());
        assert_eq!(waits_for(&plan, &[]), [vec![], vec![], vec![0usize, 1]]);
    }

    #[test]
    fn workers_follow_cores_memory_and_images() {
        assert_eq!(workers(2, Some(8 << 30), 2), 2);
        assert_eq!(workers(8, Some(8 << 30), 3), 3);
        assert_eq!(workers(4, Some(700 << 20), 4), 1, "a small ramdisk");
        assert_eq!(workers(4, None, 4), 1);
        assert_eq!(workers(2, Some(8 << 30), 0), 1);
        assert_eq!(
            parse_mem_available("MemTotal: 100 kB\nMemAvailable:   2048 kB\n"),
            Some(2 << 20)
        );
    }
}
