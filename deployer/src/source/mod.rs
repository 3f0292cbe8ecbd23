//! Image sources: where each image comes from and what format it is in, checked before
//! the first write and made ready to deploy one image at a time.
//!
//! | source (`image_pull_url`) | what it gives |
//! |---|---|
//! | a local directory, `file://` directory | a tree, copied file by file |
//! | a local file, `file://` file | a file whose format is detected by its content |
//! | `http://`, `https://` | a file, deployed as it downloads (a tar archive, a raw image) or downloaded into the deploy's work directory first (a qcow2 image), its `sha256` verified as it streams |
//! | `rsync://HOST[:PORT]/MODULE/PATH`, `HOST::MODULE/PATH` | a tree on an rsync daemon, copied by rsync (with `image_deploy_flags.rsync_flags`) from the source as written: with a trailing `/` the directory's contents, without it the directory itself |
//!
//! A file is a tar archive (plain, gzip, xz or zstd), a raw ext2/3/4 or xfs filesystem
//! image, or a qcow2 image of one ([`format`](mod@format)). A filesystem image is written onto the
//! partition of the image's `target` mount point, so it must be of the type planned there,
//! fit it, and be the first image that partition receives.
//!
//! [`preflight`] checks every image before the first write and reports every problem at
//! once, one line each naming the image: a local path exists (and a file's format is
//! known, its checksum right when given); an HTTP source answers a ranged GET for the
//! start of the file, whose format is told from it, and has a `sha256` unless the operator
//! allows unverified downloads; an rsync source lists (`rsync --list-only`), and one that
//! would copy a directory itself onto an image's `/` is refused; a raw or
//! qcow2 image fits its partition. [`CheckedSource::fetch`] then gives the deploy each
//! image's [`Payload`], downloading it first when it comes over HTTP (and checking the
//! downloaded file again, since only its start was seen before).
//!
//! The decisions ([`target_fs`], [`check_fit`]) are pure functions; reading files, the
//! network and rsync is in the thin functions around them.

pub mod format;
pub mod http;
pub mod proxy;

use std::ffi::OsString;
use std::path::{Path, PathBuf};

use crate::config::{FileSystem, ImageSource};
use crate::exec::{run, StepError};
use crate::plan::{Device, ImagePlan, Plan};
use crate::size::MIB;
use format::{check_qcow2_header, detect, detect_file, Compression, FileFormat, FsImage};
pub use http::Client;
pub use http::Stream;
use http::{download, probe, sha256_file, Download};
pub use proxy::Proxies;

/// The filesystem an image's `target` mount point gets, as planned: where a raw or qcow2
/// image is written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TargetFs {
    /// The image's `target`, a mount point of the image.
    pub mount_point: String,
    pub device: Device,
    pub fs_type: FileSystem,
    /// The planned UUID and label, given to the written filesystem.
    pub uuid: String,
    pub label: Option<String>,
    /// The partition's size.
    pub size_bytes: u64,
    /// Images deployed before this one (config order) that also get this filesystem.
    pub earlier_images: Vec<String>,
    /// The filesystem keeps its data (`keep_data` under a policy that keeps it).
    pub keep_data: bool,
}

/// The planned filesystem at `image`'s mount point `target`. The error is a phrase.
pub fn target_fs(plan: &Plan, image: &ImagePlan, target: &str) -> Result<TargetFs, String> {
    let mount = plan
        .layout(image)
        .mounts
        .into_iter()
        .find(|m| m.mount_point == target)
        .ok_or_else(|| format!("no filesystem of the image is mounted at its target {target}"))?;
    let size_mib = plan
        .device_size_mib(&mount.device)
        .ok_or_else(|| format!("{} is not in the plan", mount.device))?;
    let filesystem = plan
        .filesystems
        .iter()
        .find(|fs| fs.device == mount.device)
        .ok_or_else(|| format!("no filesystem is planned on {}", mount.device))?;
    let position = |name: &str| plan.images.iter().position(|i| i.name == name);
    let this = position(&image.name);
    let earlier_images = filesystem
        .images
        .iter()
        .filter(|name| position(name) < this)
        .cloned()
        .collect();
    Ok(TargetFs {
        mount_point: target.to_owned(),
        device: mount.device.clone(),
        fs_type: mount.fs_type,
        uuid: mount.uuid.clone(),
        label: filesystem.label.clone(),
        size_bytes: size_mib * MIB,
        earlier_images,
        keep_data: filesystem.keep_data,
    })
}

fn mib(bytes: u64) -> String {
    let mib = bytes as f64 / MIB as f64;
    if mib.fract() == 0.0 {
        format!("{mib:.0} MiB")
    } else {
        format!("{mib:.1} MiB")
    }
}

/// Whether a file of `format` (`file_len` bytes, when known) can be deployed onto
/// `target` (the planned filesystem at the image's target, or why there is none). Tar
/// archives always can; a raw or qcow2 image must hold the planned filesystem type, fit
/// the partition, be the first image written there and not replace a filesystem that
/// keeps its data. The error is a phrase.
pub fn check_fit(
    format: &FileFormat,
    file_len: Option<u64>,
    target: &Result<TargetFs, String>,
) -> Result<(), String> {
    let (what, fs, image_bytes) = match format {
        FileFormat::Tar(_) => return Ok(()),
        FileFormat::Raw(fs) => ("raw image", Some(*fs), file_len.unwrap_or(fs.size)),
        FileFormat::Qcow2 { header, filesystem } => {
            check_qcow2_header(header)?;
            ("qcow2 image", *filesystem, header.virtual_size)
        }
    };
    let target = target
        .as_ref()
        .map_err(|err| format!("a {what}, but {err}"))?;
    let at = &target.mount_point;
    if target.keep_data {
        return Err(format!(
            "a {what} replaces the whole filesystem at {at}, whose data is kept \
             (keep_data); give that volume \"keep_data\": false"
        ));
    }
    if !target.earlier_images.is_empty() {
        return Err(format!(
            "a {what} replaces the whole filesystem at {at}, which image(s) {} deploy \
             onto earlier",
            target.earlier_images.join(", ")
        ));
    }
    if let Some(fs) = fs {
        if fs.fs_type != target.fs_type {
            return Err(format!(
                "a {what} of {}, but the filesystem planned at {at} is {}",
                fs.fs_type.as_str(),
                target.fs_type.as_str()
            ));
        }
    }
    let needed = fs.map_or(image_bytes, |fs| fs.size.max(image_bytes));
    if needed > target.size_bytes {
        return Err(format!(
            "the {what} is {}, larger than the partition at {at} ({})",
            mib(needed),
            mib(target.size_bytes)
        ));
    }
    Ok(())
}

/// Every image's source, checked by [`preflight`], and the client that downloads them.
pub struct Sources {
    /// In plan order.
    pub checked: Vec<CheckedSource>,
    pub client: Client,
}

impl Sources {
    /// Image `name`'s source.
    pub fn of(&self, name: &str) -> Option<&CheckedSource> {
        self.checked.iter().find(|source| source.image == name)
    }
}

/// An image's source, checked by [`preflight`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckedSource {
    /// The image's name.
    pub image: String,
    pub kind: SourceKind,
    /// The planned filesystem at the image's target (or why there is none).
    pub target: Result<TargetFs, String>,
}

/// What kind of source an image has, and what preflight learnt about it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SourceKind {
    /// A local directory.
    Tree(PathBuf),
    /// An rsync daemon source, as written.
    Rsync(String),
    /// A local file of a known format.
    File { path: PathBuf, format: FileFormat },
    /// An `http://` or `https://` URL, with the expected SHA-256, the format its start
    /// showed and the length the server told.
    Http {
        url: String,
        sha256: Option<String>,
        format: FileFormat,
        length: Option<u64>,
    },
}

impl CheckedSource {
    /// The source for messages.
    pub fn describe(&self) -> String {
        match &self.kind {
            SourceKind::Tree(path) => format!("directory {}", path.display()),
            SourceKind::Rsync(url) => url.clone(),
            SourceKind::File { path, format } => {
                format!("{} ({})", path.display(), format.describe())
            }
            SourceKind::Http { url, .. } => url.clone(),
        }
    }

    /// Makes the image ready to deploy. An HTTP source of a tar archive or a raw image
    /// is streamed as it is deployed when `stream` allows; else (and always for a qcow2
    /// image, which is read out of order) it is downloaded into `work` (a private
    /// directory), its checksum verified, its format detected and checked against the
    /// target again.
    pub fn fetch(&self, client: &Client, work: &Path, stream: bool) -> anyhow::Result<Fetched> {
        let image = &self.image;
        Ok(match &self.kind {
            SourceKind::Tree(path) => Fetched::Tree(path.clone()),
            SourceKind::Rsync(url) => Fetched::Rsync(url.clone()),
            SourceKind::File { path, format } => Fetched::File {
                path: path.clone(),
                format: *format,
                download: None,
            },
            SourceKind::Http {
                url,
                sha256,
                format,
                length,
            } if stream && streams(format) => Fetched::Stream(Remote {
                client: client.clone(),
                image: image.clone(),
                url: url.clone(),
                sha256: sha256.clone(),
                format: *format,
                length: *length,
            }),
            SourceKind::Http { url, sha256, .. } => {
                crate::info!("deployer: image {image}: downloading {url}");
                let file = download(client, image, url, sha256.as_deref(), work)?;
                let len = std::fs::metadata(file.path()).map(|m| m.len()).ok();
                let format = detect_file(file.path(), work)
                    .and_then(|format| check_fit(&format, len, &self.target).map(|()| format))
                    .map_err(|err| anyhow::anyhow!("image {image}: {url}: {err}"))?;
                Fetched::File {
                    path: file.path().to_owned(),
                    format,
                    download: Some(file),
                }
            }
        })
    }
}

/// Whether a download of `format` can be deployed as it streams in: a tar archive or a
/// raw image, read from start to end.
fn streams(format: &FileFormat) -> bool {
    matches!(format, FileFormat::Tar(_) | FileFormat::Raw(_))
}

/// A download deployed as it streams in.
#[derive(Clone)]
pub struct Remote {
    pub client: Client,
    pub image: String,
    pub url: String,
    pub sha256: Option<String>,
    pub format: FileFormat,
    /// The length the server told before.
    pub length: Option<u64>,
}

impl std::fmt::Debug for Remote {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Remote")
            .field("image", &self.image)
            .field("url", &self.url)
            .field("format", &self.format)
            .finish_non_exhaustive()
    }
}

impl Remote {
    /// Starts the download.
    pub fn open(&self) -> anyhow::Result<Stream> {
        crate::info!("deployer: image {}: streaming {}", self.image, self.url);
        Stream::open(&self.client, &self.image, &self.url)
    }
}

/// An image ready to deploy; a downloaded file is deleted when this is dropped.
#[derive(Debug)]
pub enum Fetched {
    Tree(PathBuf),
    Rsync(String),
    Stream(Remote),
    File {
        path: PathBuf,
        format: FileFormat,
        /// The download guard when the file was downloaded.
        download: Option<Download>,
    },
}

/// How an image is put onto its filesystems.
#[derive(Debug, Clone, Copy)]
pub enum Payload<'a> {
    /// A local directory tree, copied onto the mounted filesystems.
    Tree(&'a Path),
    /// An rsync daemon source, copied by rsync onto the mounted filesystems.
    Rsync(&'a str),
    /// A tar archive, extracted onto the mounted filesystems.
    Tar {
        bytes: Bytes<'a>,
        compression: Compression,
    },
    /// A raw or qcow2 filesystem image, written onto the target partition before the
    /// image's filesystems are mounted.
    Filesystem {
        bytes: Bytes<'a>,
        qcow2: bool,
        fs: FsImage,
        target: &'a TargetFs,
    },
}

/// Where the bytes of an image file come from.
#[derive(Debug, Clone, Copy)]
pub enum Bytes<'a> {
    File(&'a Path),
    Http(&'a Remote),
}

impl Fetched {
    /// What the deploy does with it; `source` is the checked
    /// source this was fetched from.
    pub fn payload<'a>(&'a self, source: &'a CheckedSource) -> anyhow::Result<Payload<'a>> {
        Ok(match self {
            Fetched::Tree(path) => Payload::Tree(path),
            Fetched::Rsync(url) => Payload::Rsync(url),
            Fetched::File { path, format, .. } => file_payload(Bytes::File(path), format, source)?,
            Fetched::Stream(remote) => file_payload(Bytes::Http(remote), &remote.format, source)?,
        })
    }
}

/// What the deploy does with a file of `format` whose bytes are `bytes`.
fn file_payload<'a>(
    bytes: Bytes<'a>,
    format: &FileFormat,
    source: &'a CheckedSource,
) -> anyhow::Result<Payload<'a>> {
    Ok(match format {
        FileFormat::Tar(compression) => Payload::Tar {
            bytes,
            compression: *compression,
        },
        FileFormat::Raw(fs)
        | FileFormat::Qcow2 {
            filesystem: Some(fs),
            ..
        } => Payload::Filesystem {
            bytes,
            qcow2: matches!(format, FileFormat::Qcow2 { .. }),
            fs: *fs,
            target: source
                .target
                .as_ref()
                .map_err(|err| anyhow::anyhow!("image {}: {err}", source.image))?,
        },
        FileFormat::Qcow2 {
            filesystem: None, ..
        } => anyhow::bail!(
            "image {}: the filesystem in the qcow2 image was not read",
            source.image
        ),
    })
}

/// Checks every image's source before the first write (see the module docs), remote ones
/// through `client`; `scratch` is a private directory for reading the start of qcow2
/// images. Returns the checked sources, or every problem, one line each naming the image.
pub fn preflight(
    plan: &Plan,
    allow_unverified_downloads: bool,
    client: Client,
    scratch: &Path,
) -> Result<Sources, Vec<String>> {
    let mut checked = Vec::new();
    let mut problems = Vec::new();
    // An image that is not deployed again is not read: its source is not checked.
    for image in plan.images.iter().filter(|image| plan.deploys(image)) {
        let target = target_fs(plan, image, &image.target);
        let kind = check_source(
            &image.source,
            image.sha256.as_deref(),
            &target,
            allow_unverified_downloads,
            &client,
            scratch,
        );
        match kind {
            Ok(kind) => checked.push(CheckedSource {
                image: image.name.clone(),
                kind,
                target,
            }),
            Err(problem) => problems.push(format!("image {}: {problem}", image.name)),
        }
    }
    if problems.is_empty() {
        Ok(Sources { checked, client })
    } else {
        Err(problems)
    }
}

/// One image's source checked; the error is a phrase that names the source.
fn check_source(
    source: &ImageSource,
    sha256: Option<&str>,
    target: &Result<TargetFs, String>,
    allow_unverified_downloads: bool,
    client: &Client,
    scratch: &Path,
) -> Result<SourceKind, String> {
    match source {
        ImageSource::Path(path) => {
            let meta = std::fs::metadata(path).map_err(|err| match err.kind() {
                std::io::ErrorKind::NotFound => format!("source {path} does not exist"),
                _ => format!("source {path}: {err}"),
            })?;
            if meta.is_dir() {
                if sha256.is_some() {
                    return Err(format!(
                        "source {path} is a directory: its sha256 cannot be checked (remove \
                         it from the config)"
                    ));
                }
                return Ok(SourceKind::Tree(PathBuf::from(path)));
            }
            if !meta.is_file() {
                return Err(format!(
                    "source {path} is neither a directory nor a regular file"
                ));
            }
            let format = detect_file(Path::new(path), scratch)
                .and_then(|format| check_fit(&format, Some(meta.len()), target).map(|()| format))
                .map_err(|err| format!("source {path}: {err}"))?;
            if let Some(expected) = sha256 {
                let got = sha256_file(Path::new(path))
                    .map_err(|err| format!("source {path}: cannot read it: {err}"))?;
                if got != expected {
                    return Err(format!(
                        "checksum mismatch for {path}: expected sha256 {expected}, got {got}"
                    ));
                }
            }
            Ok(SourceKind::File {
                path: PathBuf::from(path),
                format,
            })
        }
        ImageSource::Http(url) | ImageSource::Https(url) => {
            if sha256.is_none() && !allow_unverified_downloads {
                return Err(format!(
                    "{url}: a download needs its \"sha256\" in the config (or \
                     --allow-unverified-downloads)"
                ));
            }
            let head =
                probe(client, url).map_err(|err| format!("source does not answer: {err:#}"))?;
            let complete =
                head.head.len() < format::HEAD_BYTES || head.length == Some(head.head.len() as u64);
            let format = detect(&head.head, complete)
                .and_then(|format| check_fit(&format, head.length, target).map(|()| format))
                .map_err(|err| format!("{url}: {err}"))?;
            Ok(SourceKind::Http {
                url: url.clone(),
                sha256: sha256.map(str::to_owned),
                format,
                length: head.length,
            })
        }
        ImageSource::Rsync(url) => {
            if sha256.is_some() {
                return Err(format!(
                    "{url}: an rsync source has no single file whose sha256 could be checked \
                     (remove it from the config)"
                ));
            }
            let argv: Vec<OsString> = [
                "rsync",
                "--list-only",
                "--contimeout=20",
                "--timeout=60",
                url.as_str(),
            ]
            .iter()
            .map(OsString::from)
            .collect();
            let listing = run("list the rsync source", &argv).map_err(|err| match &err {
                StepError::Failed { stderr_tail, .. } => format!(
                    "rsync source {url} cannot be listed: {}",
                    rsync_reason(stderr_tail)
                ),
                _ => format!("rsync source {url}: {err}"),
            })?;
            let mount_point = target.as_ref().map_or("/", |t| t.mount_point.as_str());
            check_rsync_listing(url, mount_point, &listing)?;
            Ok(SourceKind::Rsync(url.clone()))
        }
    }
}

/// Why rsync failed, from its stderr: its first own line (`rsync: ...`, `@ERROR: ...`)
/// without the role in brackets, else the last line.
fn rsync_reason(stderr: &str) -> String {
    let lines = || stderr.lines().map(str::trim).filter(|l| !l.is_empty());
    let own = lines().find_map(|line| {
        line.strip_prefix("@ERROR: ").or_else(|| {
            line.strip_prefix("rsync: ").map(|rest| {
                rest.strip_prefix('[')
                    .and_then(|r| r.split_once("] "))
                    .map_or(rest, |(_, after)| after)
            })
        })
    });
    own.or_else(|| lines().next_back())
        .unwrap_or("no message")
        .to_owned()
}

/// An rsync source that would copy a directory itself rather than its contents onto an
/// image's `/` (rsync's meaning of a source without a trailing `/`, which Bareon keeps):
/// the deploy would end with no kernel in /boot, so it is refused with the way out.
/// `listing` is `rsync --list-only`'s output for `url`.
fn check_rsync_listing(url: &str, mount_point: &str, listing: &str) -> Result<(), String> {
    if url.ends_with('/') || mount_point != "/" {
        return Ok(());
    }
    let name = url.rsplit(['/', ':']).next().unwrap_or_default();
    let mut entries = listing.lines().filter(|line| !line.trim().is_empty());
    let only_dir = match (entries.next(), entries.next()) {
        (Some(entry), None) => entry.starts_with('d') && entry.ends_with(&format!(" {name}")),
        _ => false,
    };
    if only_dir {
        return Err(format!(
            "rsync source {url} names the directory {name} itself, which rsync would copy \
             to /{name} of the image; write {url}/ to copy its contents"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::{plan, DiskInput, SequentialIds};
    use crate::validate::validate;
    use format::Qcow2Header;

    /// alpha: `/` (100 MiB, ext4, label root-a) and a shared `/srv` (xfs, 320 MiB);
    /// beta: `/` (300 MiB, xfs) and the shared `/srv`.
    fn two_images() -> Plan {
        let config = validate(
            r#"{"images": [
                {"name": "alpha", "image_pull_url": "/a", "target": "/"},
                {"name": "beta", "image_pull_url": "/b", "target": "/"}],
              "partitions": [{"type": "disk", "id": {"type": "name", "value": "vda"},
                "volumes": [
                  {"type": "partition", "mount": "/", "size": "100", "images": ["alpha"],
                   "file_system": "ext4", "disk_label": "root-a"},
                  {"type": "partition", "mount": "/", "size": "300", "images": ["beta"],
                   "file_system": "xfs"},
                  {"type": "partition", "mount": "/srv", "size": "320",
                   "images": ["alpha", "beta"], "file_system": "xfs"}]}],
              "partitions_policy": "clean"}"#,
        )
        .unwrap_or_else(|e| panic!("invalid config: {e:?}"));
        let disk = DiskInput {
            name: "vda".to_owned(),
            path: "/dev/vda".into(),
            size_bytes: 2 << 30,
            sector_size: 512,
            existing: None,
        };
        plan(&config, &[disk], &mut SequentialIds::default())
            .unwrap_or_else(|e| panic!("planning failed: {e:?}"))
    }

    fn image<'a>(plan: &'a Plan, name: &str) -> &'a ImagePlan {
        plan.images.iter().find(|i| i.name == name).unwrap()
    }

    #[test]
    fn the_target_filesystem_comes_from_the_plan() {
        let plan = two_images();
        let alpha = target_fs(&plan, image(&plan, "alpha"), "/").unwrap();
        assert_eq!(alpha.mount_point, "/");
        assert_eq!(alpha.fs_type, FileSystem::Ext4);
        assert_eq!(alpha.label.as_deref(), Some("root-a"));
        assert_eq!(alpha.size_bytes, 100 * MIB);
        assert!(alpha.earlier_images.is_empty());
        let root_mount = &plan.layout(image(&plan, "alpha")).mounts[0];
        assert_eq!(alpha.uuid, root_mount.uuid);
        assert_eq!(alpha.device, root_mount.device);

        let srv_alpha = target_fs(&plan, image(&plan, "alpha"), "/srv").unwrap();
        assert!(srv_alpha.earlier_images.is_empty());
        let srv_beta = target_fs(&plan, image(&plan, "beta"), "/srv").unwrap();
        assert_eq!(srv_beta.earlier_images, ["alpha"]);
        assert_eq!(srv_beta.size_bytes, 320 * MIB);
        assert_eq!(srv_beta.label, None);

        let err = target_fs(&plan, image(&plan, "beta"), "/opt").unwrap_err();
        assert!(
            err.contains("no filesystem of the image is mounted at"),
            "{err}"
        );
    }

    fn raw(fs_type: FileSystem, size: u64) -> FileFormat {
        FileFormat::Raw(FsImage { fs_type, size })
    }

    #[test]
    fn a_raw_image_never_replaces_a_filesystem_that_keeps_its_data() {
        let plan = two_images();
        let mut root = target_fs(&plan, image(&plan, "alpha"), "/").unwrap();
        assert!(!root.keep_data);
        root.keep_data = true;
        assert_eq!(
            check_fit(&raw(FileSystem::Ext4, 64 * MIB), None, &Ok(root)),
            Err(
                "a raw image replaces the whole filesystem at /, whose data is kept \
                 (keep_data); give that volume \"keep_data\": false"
                    .to_owned()
            )
        );
    }

    #[test]
    fn raw_images_must_match_fit_and_come_first() {
        let plan = two_images();
        let root = Ok(target_fs(&plan, image(&plan, "alpha"), "/").unwrap());
        assert_eq!(
            check_fit(&raw(FileSystem::Ext4, 64 * MIB), Some(64 * MIB), &root),
            Ok(())
        );
        assert_eq!(
            check_fit(&raw(FileSystem::Ext4, 100 * MIB), None, &root),
            Ok(()),
            "exactly the partition's size"
        );
        let err = check_fit(&raw(FileSystem::Ext4, 101 * MIB), None, &root).unwrap_err();
        assert_eq!(
            err,
            "the raw image is 101 MiB, larger than the partition at / (100 MiB)"
        );
        let err = check_fit(&raw(FileSystem::Ext4, 64 * MIB), Some(200 * MIB), &root);
        assert!(err.unwrap_err().contains("200 MiB"), "the file is longer");
        let err = check_fit(&raw(FileSystem::Xfs, 64 * MIB), None, &root).unwrap_err();
        assert_eq!(
            err,
            "a raw image of xfs, but the filesystem planned at / is ext4"
        );
        let shared = Ok(target_fs(&plan, image(&plan, "beta"), "/srv").unwrap());
        let err = check_fit(&raw(FileSystem::Xfs, 300 * MIB), None, &shared).unwrap_err();
        assert!(
            err.contains("/srv, which image(s) alpha deploy onto earlier"),
            "{err}"
        );
        let first = Ok(target_fs(&plan, image(&plan, "alpha"), "/srv").unwrap());
        assert_eq!(
            check_fit(&raw(FileSystem::Xfs, 300 * MIB), None, &first),
            Ok(())
        );
        let none = Err("no filesystem of the image is mounted at its target /x".to_owned());
        let err = check_fit(&raw(FileSystem::Ext4, 1), None, &none).unwrap_err();
        assert!(err.starts_with("a raw image, but no filesystem"), "{err}");
        assert_eq!(
            check_fit(&FileFormat::Tar(Compression::Xz), None, &none),
            Ok(())
        );
    }

    #[test]
    fn qcow2_images_fit_by_virtual_size() {
        let plan = two_images();
        let root = Ok(target_fs(&plan, image(&plan, "alpha"), "/").unwrap());
        let header = |virtual_size| Qcow2Header {
            virtual_size,
            has_backing_file: false,
            has_data_file: false,
        };
        let qcow2 = |virtual_size, filesystem| FileFormat::Qcow2 {
            header: header(virtual_size),
            filesystem,
        };
        assert_eq!(check_fit(&qcow2(64 * MIB, None), Some(1), &root), Ok(()));
        let err = check_fit(&qcow2(128 * MIB, None), Some(1), &root).unwrap_err();
        assert_eq!(
            err,
            "the qcow2 image is 128 MiB, larger than the partition at / (100 MiB)"
        );
        let xfs = FsImage {
            fs_type: FileSystem::Xfs,
            size: 64 * MIB,
        };
        let err = check_fit(&qcow2(64 * MIB, Some(xfs)), None, &root).unwrap_err();
        assert!(err.contains("qcow2 image of xfs"), "{err}");
        let backed = FileFormat::Qcow2 {
            header: Qcow2Header {
                has_backing_file: true,
                ..header(MIB)
            },
            filesystem: None,
        };
        assert!(check_fit(&backed, None, &root)
            .unwrap_err()
            .contains("backing file"));
    }

    #[test]
    fn rsync_failures_name_rsyncs_own_reason() {
        let refused = "rsync: [Receiver] failed to connect to 127.0.0.1 (127.0.0.1): \
            Connection refused (111)\nrsync error: error in socket IO (code 10) at \
            clientserver.c(139) [Receiver=3.2.7]\n";
        assert_eq!(
            rsync_reason(refused),
            "failed to connect to 127.0.0.1 (127.0.0.1): Connection refused (111)"
        );
        let module = "@ERROR: Unknown module 'nope'\nrsync error: error starting client-server \
            protocol (code 5) at main.c(1863) [Receiver=3.2.7]\n";
        assert_eq!(rsync_reason(module), "Unknown module 'nope'");
        assert_eq!(rsync_reason("\nsomething else\n"), "something else");
    }

    #[test]
    fn an_rsync_directory_without_its_slash_is_refused_onto_a_root() {
        let dir = "drwxr-xr-x          4,096 2026/12/07 04:00:00 alpha\n";
        let err = check_rsync_listing("h::m/alpha", "/", dir).unwrap_err();
        assert_eq!(
            err,
            "rsync source h::m/alpha names the directory alpha itself, which rsync would \
             copy to /alpha of the image; write h::m/alpha/ to copy its contents"
        );
        assert!(check_rsync_listing("rsync://h:873/m/alpha", "/", dir).is_err());
        assert_eq!(check_rsync_listing("h::m/alpha/", "/", dir), Ok(()));
        assert_eq!(check_rsync_listing("h::m/alpha", "/opt", dir), Ok(()));
        let contents = "drwxr-xr-x  4,096 2026/12/07 04:00:00 .\n\
            drwxr-xr-x  4,096 2026/12/07 04:00:00 boot\n";
        assert_eq!(check_rsync_listing("h::m/alpha/", "/", contents), Ok(()));
        let file = "-rw-r--r--  10 2026/12/07 04:00:00 alpha\n";
        assert_eq!(check_rsync_listing("h::m/alpha", "/", file), Ok(()));
    }

    #[test]
    fn sizes_in_messages() {
        assert_eq!(mib(100 * MIB), "100 MiB");
        assert_eq!(mib(MIB + MIB / 2), "1.5 MiB");
    }
}
