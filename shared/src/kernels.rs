//! The kernel and initrd an image boots, chosen from the file names in its `/boot`. Pure:
//! no I/O.
//!
//! The rules follow grub-mkconfig's `10_linux`:
//! - kernels are `vmlinuz-VERSION`; Red Hat's rescue kernels (`vmlinuz-0-rescue-MACHINEID`)
//!   and what `grub_file_is_not_garbage` drops (`*.dpkg-*`, `*.rpmsave`, `*.rpmnew`,
//!   `*.sig`) are skipped;
//! - a kernel's initrd is the first of `initrd.img-VERSION` (Debian),
//!   `initramfs-VERSION.img` (Red Hat), `initrd-VERSION.img`, `initrd-VERSION.gz` and
//!   `initrd-VERSION` that exists. Red Hat's `initramfs-VERSIONkdump.img` is never one;
//! - the newest is the greatest version as `sort -V` orders them (GNU `filevercmp`: runs of
//!   digits compare as numbers, so `6.1.0-56` is newer than `6.1.0-9`), among the kernels
//!   that have an initrd; a kernel without one is chosen only when no kernel has one;
//! - the unversioned `vmlinuz`/`initrd.img` names (the symlinks Debian keeps) count only
//!   when there is no versioned kernel at all.

use std::cmp::Ordering;

/// A kernel and its initrd, as file names relative to `/boot`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KernelPair {
    /// The version in the kernel's name (`6.1.0-56-amd64`); empty for a plain `vmlinuz`.
    pub version: String,
    /// `vmlinuz-VERSION`, or `vmlinuz`.
    pub kernel: String,
    /// The matching initrd, if the image has one.
    pub initrd: Option<String>,
}

const KERNEL_PREFIX: &str = "vmlinuz-";
const PLAIN_KERNEL: &str = "vmlinuz";
const PLAIN_INITRD: &str = "initrd.img";

/// The newest kernel in `boot_files` (the names in an image's `/boot`) and its initrd; see
/// the module documentation for the rules. `None` when there is no kernel.
pub fn newest_kernel(boot_files: &[&str]) -> Option<KernelPair> {
    let has = |name: &str| boot_files.contains(&name);
    let mut kernels: Vec<KernelPair> = boot_files
        .iter()
        .filter(|name| is_kernel(name))
        .map(|name| {
            let version = &name[KERNEL_PREFIX.len()..];
            KernelPair {
                version: version.to_owned(),
                kernel: (*name).to_owned(),
                initrd: initrd_names(version).into_iter().find(|n| has(n)),
            }
        })
        .collect();
    if kernels.is_empty() {
        return has(PLAIN_KERNEL).then(|| KernelPair {
            version: String::new(),
            kernel: PLAIN_KERNEL.to_owned(),
            initrd: has(PLAIN_INITRD).then(|| PLAIN_INITRD.to_owned()),
        });
    }
    if kernels.iter().any(|k| k.initrd.is_some()) {
        kernels.retain(|k| k.initrd.is_some());
    }
    kernels
        .into_iter()
        .max_by(|a, b| version_cmp(&a.version, &b.version).then_with(|| a.version.cmp(&b.version)))
}

/// `vmlinuz-VERSION` that is neither a rescue kernel nor a leftover of a package manager.
fn is_kernel(name: &str) -> bool {
    let Some(version) = name.strip_prefix(KERNEL_PREFIX) else {
        return false;
    };
    !version.is_empty()
        && !version.contains('/')
        && !name.contains("-rescue-")
        && !name.contains(".dpkg-")
        && ![".rpmsave", ".rpmnew", ".sig"]
            .iter()
            .any(|suffix| name.ends_with(suffix))
}

/// The initrd names of a kernel version, most preferred first.
fn initrd_names(version: &str) -> [String; 5] {
    [
        format!("initrd.img-{version}"),
        format!("initramfs-{version}.img"),
        format!("initrd-{version}.img"),
        format!("initrd-{version}.gz"),
        format!("initrd-{version}"),
    ]
}

/// GNU `filevercmp`, the order of `sort -V` (gnulib lib/filevercmp.c): compare without the
/// file suffixes (`(\.[A-Za-z~][A-Za-z0-9~]*)*` at the end) first, then with them. Equal
/// results (`01` and `1`) are left to the caller's tie-break, as `sort` compares the bytes.
fn version_cmp(a: &str, b: &str) -> Ordering {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    match (a.is_empty(), b.is_empty()) {
        (true, true) => return Ordering::Equal,
        (true, false) => return Ordering::Less,
        (false, true) => return Ordering::Greater,
        (false, false) => {}
    }
    // Leading dots: "." first, then "..", then other hidden names, then the rest.
    let rank = |s: &[u8]| match s {
        b"." => 0,
        b".." => 1,
        [b'.', ..] => 2,
        _ => 3,
    };
    let (ra, rb) = (rank(a), rank(b));
    if ra != rb || ra < 2 {
        return ra.cmp(&rb);
    }
    let (pa, pb) = (prefix_len(a), prefix_len(b));
    verrevcmp(&a[..pa], &b[..pb]).then_with(|| {
        if pa == a.len() && pb == b.len() {
            Ordering::Equal
        } else {
            verrevcmp(a, b)
        }
    })
}

/// Length of `s` without its file suffix (gnulib `file_prefixlen`).
fn prefix_len(s: &[u8]) -> usize {
    let n = s.len();
    let mut prefix = 0;
    let mut i = 0;
    while i < n {
        i += 1;
        prefix = i;
        while i + 1 < n && s[i] == b'.' && (s[i + 1].is_ascii_alphabetic() || s[i + 1] == b'~') {
            i += 2;
            while i < n && (s[i].is_ascii_alphanumeric() || s[i] == b'~') {
                i += 1;
            }
        }
    }
    prefix
}

/// Sort weight of the byte at `pos` in a non-digit run (gnulib `order`): the end first,
/// except `~` which sorts before it; digits end the run; letters before other bytes.
fn order(s: &[u8], pos: usize) -> i32 {
    match s.get(pos) {
        None => -1,
        Some(c) if c.is_ascii_digit() => 0,
        Some(c) if c.is_ascii_alphabetic() => i32::from(*c),
        Some(b'~') => -2,
        Some(c) => i32::from(*c) + 256,
    }
}

/// Debian's version comparison as gnulib's `verrevcmp` does it: alternating non-digit runs,
/// compared byte by byte with [`order`], and digit runs, compared as numbers.
fn verrevcmp(a: &[u8], b: &[u8]) -> Ordering {
    let digit = |s: &[u8], i: usize| s.get(i).is_some_and(u8::is_ascii_digit);
    let (mut i, mut j) = (0, 0);
    while i < a.len() || j < b.len() {
        while (i < a.len() && !digit(a, i)) || (j < b.len() && !digit(b, j)) {
            let (x, y) = (order(a, i), order(b, j));
            if x != y {
                return x.cmp(&y);
            }
            i += 1;
            j += 1;
        }
        while a.get(i) == Some(&b'0') {
            i += 1;
        }
        while b.get(j) == Some(&b'0') {
            j += 1;
        }
        let mut first_diff = Ordering::Equal;
        while digit(a, i) && digit(b, j) {
            first_diff = first_diff.then(a[i].cmp(&b[j]));
            i += 1;
            j += 1;
        }
        if digit(a, i) {
            return Ordering::Greater;
        }
        if digit(b, j) {
            return Ordering::Less;
        }
        if first_diff != Ordering::Equal {
            return first_diff;
        }
    }
    Ordering::Equal
}

#[cfg(test)]
mod tests {
    use std::process::Command;

    use super::*;

    fn pair(version: &str, kernel: &str, initrd: Option<&str>) -> Option<KernelPair> {
        Some(KernelPair {
            version: version.to_owned(),
            kernel: kernel.to_owned(),
            initrd: initrd.map(str::to_owned),
        })
    }

    #[test]
    fn debian_newest_by_version_not_by_text() {
        let boot = [
            "config-6.1.0-9-amd64",
            "config-6.1.0-56-amd64",
            "grub",
            "initrd.img-6.1.0-9-amd64",
            "initrd.img-6.1.0-56-amd64",
            "System.map-6.1.0-56-amd64",
            "vmlinuz-6.1.0-9-amd64",
            "vmlinuz-6.1.0-56-amd64",
        ];
        let want = pair(
            "6.1.0-56-amd64",
            "vmlinuz-6.1.0-56-amd64",
            Some("initrd.img-6.1.0-56-amd64"),
        );
        assert_eq!(newest_kernel(&boot), want);
        let mut reversed = boot;
        reversed.reverse();
        assert_eq!(newest_kernel(&reversed), want, "order of the listing");
    }

    #[test]
    fn red_hat_naming_skips_rescue_and_kdump() {
        let boot = [
            "efi",
            "loader",
            "vmlinuz-0-rescue-5c2b9c2e6e2d4f3aa5b1f0c3d2e1f0a9",
            "initramfs-0-rescue-5c2b9c2e6e2d4f3aa5b1f0c3d2e1f0a9.img",
            "vmlinuz-5.14.0-70.13.1.el9_0.x86_64",
            "initramfs-5.14.0-70.13.1.el9_0.x86_64.img",
            "initramfs-5.14.0-70.13.1.el9_0.x86_64kdump.img",
            "vmlinuz-5.14.0-362.8.1.el9_3.x86_64",
            "initramfs-5.14.0-362.8.1.el9_3.x86_64.img",
            "initramfs-5.14.0-362.8.1.el9_3.x86_64kdump.img",
            ".vmlinuz-5.14.0-362.8.1.el9_3.x86_64.hmac",
            "symvers-5.14.0-362.8.1.el9_3.x86_64.gz",
        ];
        assert_eq!(
            newest_kernel(&boot),
            pair(
                "5.14.0-362.8.1.el9_3.x86_64",
                "vmlinuz-5.14.0-362.8.1.el9_3.x86_64",
                Some("initramfs-5.14.0-362.8.1.el9_3.x86_64.img"),
            )
        );
    }

    #[test]
    fn kdump_initrd_is_not_the_kernels_initrd() {
        let boot = [
            "vmlinuz-5.14.0-362.el9.x86_64",
            "initramfs-5.14.0-362.el9.x86_64kdump.img",
        ];
        assert_eq!(
            newest_kernel(&boot),
            pair(
                "5.14.0-362.el9.x86_64",
                "vmlinuz-5.14.0-362.el9.x86_64",
                None
            )
        );
    }

    #[test]
    fn rescue_kernel_alone_is_no_kernel() {
        let boot = [
            "vmlinuz-0-rescue-5c2b9c2e6e2d4f3aa5b1f0c3d2e1f0a9",
            "initramfs-0-rescue-5c2b9c2e6e2d4f3aa5b1f0c3d2e1f0a9.img",
        ];
        assert_eq!(newest_kernel(&boot), None);
    }

    #[test]
    fn package_manager_leftovers_are_not_kernels() {
        let boot = [
            "vmlinuz-6.1.0-9-amd64",
            "initrd.img-6.1.0-9-amd64",
            "vmlinuz-6.1.0-56-amd64.dpkg-tmp",
            "vmlinuz-6.1.0-57-amd64.dpkg-bak",
            "vmlinuz-6.1.0-58-amd64.rpmnew",
            "vmlinuz-6.1.0-59-amd64.rpmsave",
            "vmlinuz-6.1.0-60-amd64.sig",
            "vmlinuz-",
        ];
        assert_eq!(
            newest_kernel(&boot),
            pair(
                "6.1.0-9-amd64",
                "vmlinuz-6.1.0-9-amd64",
                Some("initrd.img-6.1.0-9-amd64")
            )
        );
    }

    #[test]
    fn plain_symlink_names_only_without_versioned_kernels() {
        let boot = [
            "vmlinuz",
            "initrd.img",
            "vmlinuz.old",
            "initrd.img.old",
            "vmlinuz-6.1.0-56-amd64",
            "initrd.img-6.1.0-56-amd64",
        ];
        assert_eq!(
            newest_kernel(&boot),
            pair(
                "6.1.0-56-amd64",
                "vmlinuz-6.1.0-56-amd64",
                Some("initrd.img-6.1.0-56-amd64")
            )
        );
        assert_eq!(
            newest_kernel(&["vmlinuz", "initrd.img", "vmlinuz.old"]),
            pair("", "vmlinuz", Some("initrd.img"))
        );
        assert_eq!(newest_kernel(&["vmlinuz"]), pair("", "vmlinuz", None));
        // A versioned kernel without an initrd still wins over the plain names.
        assert_eq!(
            newest_kernel(&["vmlinuz", "initrd.img", "vmlinuz-6.1.0-56-amd64"]),
            pair("6.1.0-56-amd64", "vmlinuz-6.1.0-56-amd64", None)
        );
    }

    #[test]
    fn a_kernel_with_an_initrd_beats_a_newer_one_without() {
        let boot = [
            "vmlinuz-6.1.0-56-amd64",
            "vmlinuz-6.1.0-9-amd64",
            "initrd.img-6.1.0-9-amd64",
        ];
        assert_eq!(
            newest_kernel(&boot),
            pair(
                "6.1.0-9-amd64",
                "vmlinuz-6.1.0-9-amd64",
                Some("initrd.img-6.1.0-9-amd64")
            )
        );
    }

    #[test]
    fn without_any_initrd_the_newest_kernel_alone() {
        let boot = ["vmlinuz-6.1.0-9-amd64", "vmlinuz-6.1.0-56-amd64", "grub"];
        assert_eq!(
            newest_kernel(&boot),
            pair("6.1.0-56-amd64", "vmlinuz-6.1.0-56-amd64", None)
        );
    }

    #[test]
    fn no_kernel_at_all() {
        assert_eq!(newest_kernel(&[]), None);
        assert_eq!(
            newest_kernel(&["grub", "initrd.img-6.1.0-56-amd64", "config-6.1.0-56-amd64"]),
            None
        );
    }

    #[test]
    fn other_initrd_spellings_in_preference_order() {
        for initrd in [
            "initrd-6.6.1.img",
            "initrd-6.6.1.gz",
            "initrd-6.6.1",
            "initramfs-6.6.1.img",
        ] {
            assert_eq!(
                newest_kernel(&["vmlinuz-6.6.1", initrd]),
                pair("6.6.1", "vmlinuz-6.6.1", Some(initrd)),
            );
        }
        assert_eq!(
            newest_kernel(&[
                "initrd-6.6.1",
                "initramfs-6.6.1.img",
                "initrd.img-6.6.1",
                "vmlinuz-6.6.1"
            ]),
            pair("6.6.1", "vmlinuz-6.6.1", Some("initrd.img-6.6.1")),
        );
    }

    #[test]
    fn version_order_examples() {
        use Ordering::*;
        for (a, b, want) in [
            ("6.1.0-56-amd64", "6.1.0-9-amd64", Greater),
            ("6.1.0-9-amd64", "6.1.0-10-amd64", Less),
            ("5.10.0-28-amd64", "6.1.0-9-amd64", Less),
            ("6.1.0-56-amd64", "6.1.0-56-amd64", Equal),
            ("6.1", "6.1.0", Less),
            ("6.1~rc1", "6.1", Less),
            ("6.1-rc1", "6.1", Greater),
            ("1.01", "1.1", Equal),
            (
                "5.14.0-362.8.1.el9_3.x86_64",
                "5.14.0-70.13.1.el9_0.x86_64",
                Greater,
            ),
        ] {
            assert_eq!(version_cmp(a, b), want, "{a} vs {b}");
            assert_eq!(version_cmp(b, a), want.reverse(), "{b} vs {a}");
        }
    }

    /// The order agrees with the real `sort -V` on names that exercise every rule.
    #[test]
    fn version_order_matches_sort_v() {
        let names = [
            "6.1.0-56-amd64",
            "6.1.0-9-amd64",
            "6.1.0-10-amd64",
            "5.10.0-28-amd64",
            "6.1",
            "6.1.0",
            "6.1~rc1",
            "6.1-rc1",
            "6.1a",
            "6.1.a",
            "6.1_1",
            "6.01.2",
            "6.1.2",
            "5.14.0-362.el9.x86_64",
            "5.14.0-362.8.1.el9_3.x86_64",
            "5.14.0-70.13.1.el9_0.x86_64",
            "1.0.tar.gz",
            "1.0.1.tar.gz",
            "1.0~x.tar",
            "4.19.0-0.bpo.6-amd64",
            "4.19.0-6-amd64",
            "a",
            "~",
            "0",
            "00",
            "007",
            ".",
            "..",
            ".b10",
            ".b9",
        ];
        let mut ours: Vec<&str> = names.to_vec();
        ours.sort_by(|a, b| version_cmp(a, b).then_with(|| a.cmp(b)));
        let mut child = Command::new("sort")
            .arg("-V")
            .env("LC_ALL", "C")
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .expect("sort (coreutils) runs");
        {
            use std::io::Write;
            let mut stdin = child.stdin.take().unwrap();
            stdin
                .write_all((names.join("\n") + "\n").as_bytes())
                .unwrap();
        }
        let output = child.wait_with_output().unwrap();
        assert!(output.status.success());
        let theirs = String::from_utf8(output.stdout).unwrap();
        assert_eq!(ours, theirs.lines().collect::<Vec<_>>());
    }
}
