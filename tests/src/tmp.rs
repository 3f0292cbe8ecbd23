//! Scratch directories under `<workspace>/target/e2e/<pid>/`, unique per test.
//!
//! A directory is only removed when nothing is mounted below it, so a failed unmount
//! can never make `remove_dir_all` descend into a mounted filesystem. Directories left
//! by processes that no longer run are swept the first time a process needs one.

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::OnceLock;

/// `<workspace>/target/e2e/<pid>`: this process's scratch space, for per-process caches.
pub fn process_dir() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let base = crate::workspace_root().join("target").join("e2e");
        fs::create_dir_all(&base).unwrap_or_else(|e| panic!("creating {}: {e}", base.display()));
        sweep_stale(&base);
        let dir = base.join(std::process::id().to_string());
        fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("creating {}: {e}", dir.display()));
        dir
    })
}

/// Removes `<base>/<pid>` directories whose process is gone and that hold no mount.
fn sweep_stale(base: &Path) {
    let Ok(entries) = fs::read_dir(base) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(pid) = name.to_str().and_then(|n| n.parse::<u32>().ok()) else {
            continue;
        };
        let path = entry.path();
        if !Path::new("/proc").join(pid.to_string()).exists() && !has_mounts_below(&path) {
            let _ = fs::remove_dir_all(&path);
        }
    }
}

/// Whether any mount point lies at or below `dir` (per /proc/self/mountinfo).
pub fn has_mounts_below(dir: &Path) -> bool {
    let Ok(dir) = dir.canonicalize() else {
        return false;
    };
    let mountinfo = fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    mountinfo
        .lines()
        .filter_map(|line| line.split(' ').nth(4))
        .map(unescape_mountinfo)
        .any(|mount_point| Path::new(&mount_point).starts_with(&dir))
}

/// Decodes mountinfo's octal escapes (`\040` for a space).
fn unescape_mountinfo(field: &str) -> String {
    let bytes = field.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let octal = bytes.get(i + 1..i + 4).and_then(|digits| {
            std::str::from_utf8(digits)
                .ok()
                .and_then(|d| u8::from_str_radix(d, 8).ok())
        });
        match (bytes[i], octal) {
            (b'\\', Some(byte)) => {
                out.push(byte);
                i += 4;
            }
            (byte, _) => {
                out.push(byte);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// A unique scratch directory, removed on drop unless something is still mounted in it.
#[derive(Debug)]
pub struct TempDir {
    path: PathBuf,
}

impl TempDir {
    /// Creates `<process_dir>/<label>-<n>`.
    pub fn new(label: &str) -> Self {
        static COUNTER: AtomicUsize = AtomicUsize::new(0);
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let path = process_dir().join(format!("{label}-{n}"));
        fs::create_dir_all(&path).unwrap_or_else(|e| panic!("creating {}: {e}", path.display()));
        TempDir { path }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// `self.path().join(rel)`.
    pub fn join(&self, rel: impl AsRef<Path>) -> PathBuf {
        self.path.join(rel)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        if has_mounts_below(&self.path) {
            eprintln!(
                "leaving {}: a filesystem is still mounted below it",
                self.path.display()
            );
        } else if let Err(e) = fs::remove_dir_all(&self.path) {
            eprintln!("removing {}: {e}", self.path.display());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::unescape_mountinfo;

    #[test]
    fn mountinfo_escapes_are_decoded() {
        assert_eq!(unescape_mountinfo(r"/mnt/a\040b\011c"), "/mnt/a b\tc");
        assert_eq!(unescape_mountinfo(r"/plain\path"), r"/plain\path");
    }
}
