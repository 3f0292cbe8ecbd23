//! The packages `packaging/build` makes: the .deb and the .rpm of bootctl and of the
//! deployer, unpacked (`dpkg-deb -x`, `rpm2cpio | cpio`) and checked file by file (path, mode,
//! owner, content: the binaries packaging/build puts out, the committed man pages gzipped, the
//! committed completion scripts, kernel hooks and unit), with their declared dependencies
//! (`dpkg-deb -f`, `rpm -qpR`). The bootctl .deb is installed with `dpkg --root` into a
//! busybox root that has no C library and an empty package database, where the static
//! bootctl and the packaged kernel hook run under chroot; the packaged bash completion,
//! loaded as bash-completion loads it, completes `switch` with image names through the
//! packaged bootctl.
//!
//! The first test to need the packages runs `packaging/build` (a release build of the
//! deployer the first time, a few minutes); a missing tool fails the test, naming
//! scripts/setup.

use std::collections::BTreeSet;
use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use e2e::build::{once_per_run, without_cargo_env};
use e2e::cmd;
use e2e::completion::{bash_candidates, pointed_at, write_boot_dir, BOOTCTL_PATH};
use e2e::fixture::{populate_image, FixtureImage};
use e2e::tmp::TempDir;
use e2e::tools::require_tools;
use e2e::workspace_root;
use shared::layout::{KERNEL_POSTINST_HOOK, KERNEL_POSTRM_HOOK};

/// The packages' version: the workspace's, revision 1.
fn version() -> String {
    format!("{}-1", env!("CARGO_PKG_VERSION"))
}

/// Where a file in a package comes from.
#[derive(Clone, Debug)]
enum Source {
    /// A file of the dist directory, byte for byte.
    Dist(&'static str),
    /// A committed man page, gzipped.
    ManPage(String),
    /// A committed file, byte for byte.
    Repo(String),
    /// The Debian copyright file cargo-deb writes.
    Copyright,
}

/// One file a package installs: its path, its mode, where it comes from.
type Expected = (String, u32, Source);

fn file(path: impl Into<String>, mode: u32, source: Source) -> Expected {
    (path.into(), mode, source)
}

/// The committed man page `man/PAGE` (`bootctl.8`), gzipped into its section's directory.
fn man_page(page: &str) -> Expected {
    let section = page.rsplit('.').next().expect("a section");
    file(
        format!("/usr/share/man/man{section}/{page}.gz"),
        0o644,
        Source::ManPage(format!("man/{page}")),
    )
}

/// The committed completion scripts of one program: bash's `bash` installed into
/// `bash_dir`, zsh's `zsh` into the distribution's `zsh_dir`, fish's `fish` into fish's
/// vendor directory.
fn completions(bash_dir: &str, bash: &str, zsh_dir: &str, zsh: &str, fish: &str) -> [Expected; 3] {
    [
        ("bash", bash_dir, bash),
        ("zsh", zsh_dir, zsh),
        ("fish", "/usr/share/fish/vendor_completions.d", fish),
    ]
    .map(|(shell, dir, name)| {
        file(
            format!("{dir}/{name}"),
            0o644,
            Source::Repo(format!("packaging/completions/{shell}/{name}")),
        )
    })
}

/// `files`, and the Debian copyright file of `package` when the package has one (only the
/// .deb does).
fn with_copyright(mut files: Vec<Expected>, package: &str, copyright: bool) -> Vec<Expected> {
    if copyright {
        files.push(file(
            format!("/usr/share/doc/{package}/copyright"),
            0o644,
            Source::Copyright,
        ));
    }
    files
}

/// What the bootctl packages hold: zsh's directory is the distribution's, and only the .deb
/// has a copyright file.
fn bootctl_files(zsh_dir: &str, copyright: bool) -> Vec<Expected> {
    let mut files = vec![
        file("/usr/sbin/bootctl", 0o755, Source::Dist("bootctl")),
        man_page("bootctl.8"),
        man_page("boot-info.json.5"),
    ];
    files.extend(completions(
        "/etc/bash_completion.d",
        "multiboot-bootctl",
        zsh_dir,
        "_multiboot_bootctl",
        "bootctl.fish",
    ));
    let image_file = |path: &str, mode, name: &str| {
        file(path, mode, Source::Repo(format!("packaging/image/{name}")))
    };
    files.extend([
        image_file(KERNEL_POSTINST_HOOK, 0o755, "zz-multiboot"),
        image_file(KERNEL_POSTRM_HOOK, 0o755, "zz-multiboot"),
        image_file(
            "/usr/lib/kernel/install.d/90-multiboot.install",
            0o755,
            "90-multiboot.install",
        ),
        image_file(
            "/usr/lib/systemd/system/multiboot-health.service",
            0o644,
            "multiboot-health.service",
        ),
    ]);
    with_copyright(files, "multiboot-bootctl", copyright)
}

/// What the deployer packages hold, as [`bootctl_files`].
fn deployer_files(zsh_dir: &str, copyright: bool) -> Vec<Expected> {
    let mut files = vec![
        file("/usr/sbin/deployer", 0o755, Source::Dist("deployer")),
        man_page("deployer.8"),
    ];
    files.extend(completions(
        "/usr/share/bash-completion/completions",
        "deployer",
        zsh_dir,
        "_deployer",
        "deployer.fish",
    ));
    files.push(file(
        "/usr/share/doc/multiboot-deployer/examples/multi-image.json",
        0o644,
        Source::Repo("deployer/examples/multi-image.json".to_owned()),
    ));
    with_copyright(files, "multiboot-deployer", copyright)
}

/// The `dist` directory of this test run, `target/packaging/e2e-dist`, filled by
/// `packaging/build` once per run (`e2e::build::once_per_run`: the test processes of the
/// run wait for the first one's build, then read what it made).
fn dist() -> &'static Path {
    static DIST: OnceLock<PathBuf> = OnceLock::new();
    DIST.get_or_init(|| {
        require_tools(&["dpkg-deb", "dpkg-shlibdeps", "gzip"]);
        let workspace = workspace_root();
        // The cargo that runs the tests first on PATH: `cargo install` put cargo-deb and
        // cargo-generate-rpm next to it.
        let cargo = PathBuf::from(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()));
        let path = std::env::var_os("PATH").unwrap_or_default();
        let dirs: Vec<PathBuf> = cargo
            .parent()
            .map(Path::to_path_buf)
            .into_iter()
            .chain(std::env::split_paths(&path))
            .collect();
        for tool in ["cargo-deb", "cargo-generate-rpm"] {
            if !dirs.iter().any(|dir| dir.join(tool).is_file()) {
                panic!("{tool} not found: run scripts/setup (see README)");
            }
        }
        let packaging = workspace.join("target/packaging");
        let dist = packaging.join("e2e-dist");
        once_per_run(&packaging, "packaging/build e2e-dist", || {
            let mut build = Command::new(workspace.join("packaging/build"));
            // The outer cargo's settings must not leak into the builds.
            without_cargo_env(&mut build);
            cmd::run(
                build
                    .arg(&dist)
                    .current_dir(workspace)
                    .env("PATH", std::env::join_paths(&dirs).expect("PATH"))
                    .env_remove("RUSTFLAGS"),
            );
        });
        dist
    })
}

fn deb(name: &str) -> PathBuf {
    dist().join(format!("{name}_{}_amd64.deb", version()))
}

fn rpm(name: &str) -> PathBuf {
    dist().join(format!("{name}-{}.x86_64.rpm", version()))
}

/// Every regular file below `root`, as `/path` with its mode bits.
fn files_below(root: &Path) -> Vec<(String, u32)> {
    let mut files = Vec::new();
    let mut dirs = vec![root.to_path_buf()];
    while let Some(dir) = dirs.pop() {
        for entry in fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
            let path = entry.expect("directory entry").path();
            let meta = fs::symlink_metadata(&path).expect("metadata");
            if meta.is_dir() {
                dirs.push(path);
            } else {
                assert!(meta.is_file(), "{} is not a regular file", path.display());
                let relative = path.strip_prefix(root).expect("below the root");
                files.push((
                    format!("/{}", relative.display()),
                    meta.permissions().mode() & 0o7777,
                ));
            }
        }
    }
    files.sort();
    files
}

fn gunzip(path: &Path) -> Vec<u8> {
    let out = cmd::output(Command::new("gzip").arg("-dc").arg(path));
    assert!(out.status.success(), "{} is not gzip", path.display());
    out.stdout
}

/// Checks the unpacked package at `root` against `expected`: the same files, modes and
/// contents.
fn check_files(package: &Path, root: &Path, expected: &[Expected]) {
    let found = files_below(root);
    let mut wanted: Vec<(String, u32)> = expected
        .iter()
        .map(|(path, mode, _)| (path.clone(), *mode))
        .collect();
    wanted.sort();
    assert_eq!(found, wanted, "files and modes of {}", package.display());
    for (path, _, source) in expected {
        let installed = root.join(path.trim_start_matches('/'));
        let content = fs::read(&installed).expect("reading an unpacked file");
        let read_repo = |relative: &str| {
            fs::read(workspace_root().join(relative))
                .unwrap_or_else(|e| panic!("reading {relative}: {e}"))
        };
        let same = match source {
            Source::Dist(name) => content == fs::read(dist().join(name)).expect("dist file"),
            Source::ManPage(page) => gunzip(&installed) == read_repo(page),
            Source::Repo(relative) => content == read_repo(relative),
            Source::Copyright => String::from_utf8_lossy(&content).contains("Apache-2.0"),
        };
        assert!(same, "{path} in {} is not {source:?}", package.display());
    }
}

fn unpack_deb(deb: &Path, into: &Path) {
    cmd::run(Command::new("dpkg-deb").arg("-x").arg(deb).arg(into));
}

fn unpack_rpm(rpm: &Path, into: &Path) {
    let script = "rpm2cpio \"$1\" | cpio --quiet -idm --no-absolute-filenames";
    cmd::run(
        Command::new("sh")
            .args(["-c", script, "sh"])
            .arg(rpm)
            .current_dir(into),
    );
}

/// A control field of a .deb.
fn deb_field(deb: &Path, field: &str) -> String {
    cmd::run(Command::new("dpkg-deb").arg("-f").arg(deb).arg(field))
        .trim()
        .to_owned()
}

/// The package names of a Depends-style field, versions left out.
fn names(field: &str) -> BTreeSet<String> {
    field
        .split(',')
        .map(|item| {
            item.split_whitespace()
                .next()
                .unwrap_or_default()
                .to_owned()
        })
        .filter(|name| !name.is_empty())
        .collect()
}

/// `rpm -qp --QUERY` lines, without the capabilities rpm adds by itself (`rpmlib(...)`, the
/// package's own `config(...)`) and the shared libraries it found in the binaries.
fn rpm_query(rpm: &Path, query: &str) -> BTreeSet<String> {
    cmd::run(Command::new("rpm").args(["-qp", query]).arg(rpm))
        .lines()
        .filter(|line| {
            !(line.starts_with("rpmlib(")
                || line.starts_with("config(")
                || line.starts_with("rtld(")
                || line.contains(".so"))
        })
        .map(str::to_owned)
        .collect()
}

fn set(items: &[&str]) -> BTreeSet<String> {
    items.iter().map(|item| (*item).to_owned()).collect()
}

#[test]
fn debs_hold_the_programs_man_pages_and_completions_and_name_their_dependencies() {
    require_tools(&["dpkg-deb"]);
    let tmp = TempDir::new("debs");
    for (name, expected) in [
        (
            "multiboot-bootctl",
            bootctl_files("/usr/share/zsh/vendor-completions", true),
        ),
        (
            "multiboot-deployer",
            deployer_files("/usr/share/zsh/vendor-completions", true),
        ),
    ] {
        let deb = deb(name);
        let root = tmp.join(name);
        unpack_deb(&deb, &root);
        check_files(&deb, &root, &expected);
        assert_eq!(deb_field(&deb, "Package"), name);
        assert_eq!(deb_field(&deb, "Version"), version());
        assert_eq!(deb_field(&deb, "Architecture"), "amd64");
        let contents = cmd::run(Command::new("dpkg-deb").arg("--contents").arg(&deb));
        for line in contents.lines() {
            assert_eq!(
                line.split_whitespace().nth(1),
                Some("0/0"),
                "{name}: owned by root: {line}"
            );
        }
    }

    let bootctl = deb("multiboot-bootctl");
    assert_eq!(
        deb_field(&bootctl, "Depends"),
        "",
        "the static bootctl needs nothing"
    );
    assert_eq!(deb_field(&bootctl, "Pre-Depends"), "");
    assert_eq!(deb_field(&bootctl, "Recommends"), "");

    let deployer = deb("multiboot-deployer");
    let depends = deb_field(&deployer, "Depends");
    assert_eq!(
        names(&depends),
        set(&[
            "dosfstools",
            "e2fsprogs",
            "fdisk",
            "grub-common",
            "grub-efi-amd64-bin",
            "grub-pc-bin",
            "grub2-common",
            "libc6",
            "mount",
            "mtools",
            "multiboot-bootctl",
            "os-prober",
            "rsync",
            "util-linux",
            "xfsprogs",
        ]),
        "{depends}"
    );
    assert!(
        depends.contains(&format!("multiboot-bootctl (= {})", version())),
        "the deployer wants the bootctl of its own version: {depends}"
    );
    assert_eq!(
        names(&deb_field(&deployer, "Recommends")),
        set(&["qemu-utils", "xz-utils", "zstd"])
    );
}

#[test]
fn rpms_hold_the_programs_man_pages_and_completions_and_name_their_dependencies() {
    require_tools(&["rpm", "rpm2cpio", "cpio"]);
    let tmp = TempDir::new("rpms");
    for (name, expected) in [
        (
            "multiboot-bootctl",
            bootctl_files("/usr/share/zsh/site-functions", false),
        ),
        (
            "multiboot-deployer",
            deployer_files("/usr/share/zsh/site-functions", false),
        ),
    ] {
        let rpm = rpm(name);
        let root = tmp.join(name);
        fs::create_dir_all(&root).expect("creating the unpack directory");
        unpack_rpm(&rpm, &root);
        check_files(&rpm, &root, &expected);
        let owners = cmd::run(
            Command::new("rpm")
                .args([
                    "-qp",
                    "--qf",
                    "[%{FILEUSERNAME}:%{FILEGROUPNAME} %{FILENAMES}\n]",
                ])
                .arg(&rpm),
        );
        for line in owners.lines() {
            assert!(
                line.starts_with("root:root "),
                "{name}: owned by root: {line}"
            );
        }
        let identity = cmd::run(
            Command::new("rpm")
                .args(["-qp", "--qf", "%{NAME} %{VERSION}-%{RELEASE} %{ARCH}"])
                .arg(&rpm),
        );
        assert_eq!(identity, format!("{name} {} x86_64", version()));
    }

    let bootctl = rpm("multiboot-bootctl");
    assert_eq!(
        rpm_query(&bootctl, "--requires"),
        BTreeSet::new(),
        "the static bootctl needs nothing"
    );
    let deployer = rpm("multiboot-deployer");
    assert_eq!(
        rpm_query(&deployer, "--requires"),
        set(&[
            "/bin/sh",
            "dosfstools",
            "e2fsprogs",
            "grub2-efi-x64-modules",
            "grub2-pc-modules",
            "grub2-tools",
            "gzip",
            "mtools",
            &format!("multiboot-bootctl = {}", version()),
            "os-prober",
            "rsync",
            "tar",
            "util-linux",
            "xfsprogs",
        ])
    );
    assert_eq!(
        rpm_query(&deployer, "--recommends"),
        set(&["qemu-img", "xz", "zstd"])
    );
}

/// A busybox root with no C library, as the fixture images are, and an empty dpkg database.
fn busybox_root(tmp: &TempDir) -> PathBuf {
    let root = tmp.join("root");
    fs::create_dir_all(&root).expect("creating the root");
    populate_image(&root, &FixtureImage::new("packages"));
    for dir in ["var/lib/dpkg/info", "var/lib/dpkg/updates"] {
        fs::create_dir_all(root.join(dir)).expect("creating dpkg's directories");
    }
    fs::write(root.join("var/lib/dpkg/status"), "").expect("an empty dpkg status");
    root
}

#[test]
fn bootctl_deb_installs_into_a_busybox_root_and_runs_there() {
    require_tools(&["dpkg", "chroot", "busybox"]);
    let deb = deb("multiboot-bootctl");
    let tmp = TempDir::new("deb-install");
    let root = busybox_root(&tmp);
    assert!(
        !root.join("lib/x86_64-linux-gnu/libc.so.6").exists()
            && !root.join("usr/lib/x86_64-linux-gnu/libc.so.6").exists(),
        "the root has no C library"
    );
    cmd::run(
        Command::new("dpkg")
            .arg(format!("--root={}", root.display()))
            .arg("--install")
            .arg(&deb),
    );
    let status = cmd::run(
        Command::new("dpkg-query")
            .arg(format!(
                "--admindir={}",
                root.join("var/lib/dpkg").display()
            ))
            .args(["-W", "-f", "${Status} ${Version}", "multiboot-bootctl"]),
    );
    assert_eq!(status, format!("install ok installed {}", version()));
    let installed = root.join("usr/sbin/bootctl");
    let meta = fs::metadata(&installed).expect("bootctl installed");
    assert_eq!(
        (meta.mode() & 0o7777, meta.uid(), meta.gid()),
        (0o755, 0, 0)
    );

    let version_line = cmd::run(
        Command::new("chroot")
            .arg(&root)
            .args(["/usr/sbin/bootctl", "--version"]),
    );
    assert_eq!(
        version_line.trim(),
        format!("bootctl {}", env!("CARGO_PKG_VERSION"))
    );
    write_boot_dir(&root.join("srv/multiboot"));
    let list = cmd::run(Command::new("chroot").arg(&root).args([
        "/usr/sbin/bootctl",
        "--boot-dir",
        "/srv/multiboot",
        "list",
        "--json",
    ]));
    let list: serde_json::Value = serde_json::from_str(&list).expect("list --json is JSON");
    let images: Vec<&str> = list["entries"]
        .as_array()
        .expect("entries")
        .iter()
        .filter_map(|entry| entry["image_name"].as_str())
        .collect();
    assert_eq!(images, ["centos-7.1.1503", "ubuntu"]);

    // The packaged kernel hook runs there, and where refresh cannot work (no /proc under
    // chroot) it still exits 0, saying in one line what to run.
    let hook = cmd::output(Command::new("chroot").arg(&root).args([
        KERNEL_POSTINST_HOOK,
        "9.9.9",
        "/boot/vmlinuz-9.9.9",
    ]));
    assert_eq!(hook.status.code(), Some(0), "{hook:?}");
    let stderr = String::from_utf8_lossy(&hook.stderr);
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(stderr.contains("run 'bootctl refresh'"), "{stderr}");
}

#[test]
fn packaged_bash_completion_completes_image_names_with_the_packaged_bootctl() {
    require_tools(&["dpkg-deb", "bash"]);
    let deb = deb("multiboot-bootctl");
    let tmp = TempDir::new("deb-completion");
    let root = tmp.join("root");
    unpack_deb(&deb, &root);
    write_boot_dir(&tmp.join("tree"));
    let packaged_bootctl = root.join("usr/sbin/bootctl");
    let script = fs::read_to_string(root.join("etc/bash_completion.d/multiboot-bootctl"))
        .expect("the packaged bash completion");
    let pointed = tmp.join("multiboot-bootctl");
    fs::write(
        &pointed,
        pointed_at(&script, BOOTCTL_PATH, &packaged_bootctl),
    )
    .expect("writing the script");
    let tree = tmp.join("tree").display().to_string();
    let bootctl = packaged_bootctl.display().to_string();
    assert_eq!(
        bash_candidates(
            &pointed,
            &[&bootctl, "--boot-dir", &tree, "switch", "c"],
            "/usr/bin:/bin"
        ),
        Some(vec!["centos-7.1.1503".to_owned(), "centos".to_owned()])
    );
}
