//! Hostile input to the real deployer, as root:
//! - titles (os-release `PRETTY_NAME`), `image_name`s and kernel parameters full of GRUB
//!   and shell metacharacters are deployed; grub.cfg passes `grub-script-check`, the disk
//!   boots in QEMU, bootctl inside the guest shows every name literally and switches by
//!   the hostile name, GRUB's console shows the titles as written, and the kernel gets
//!   the parameter as written. (Kernel parameters with quotes or backslashes, which GRUB
//!   would hand on escaped, and names with control characters are refused by
//!   `deployer validate`: see tests/bad/51 and 55.)
//! - an `https://` image source whose certificate is self-signed is refused before the
//!   first write, with one line naming the certificate problem, also with
//!   `--allow-unverified-downloads`.
//! - every mount the deployer makes while it deploys is read back from the program's own
//!   mountinfo, and bootctl's detached mount, while it lists and switches, through statvfs
//!   of the descriptor it holds: nosuid, nodev, noexec (and noatime, read-only for list).
//!
//! A missing tool fails the test and names `scripts/setup`.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use e2e::bootctl::static_bootctl;
use e2e::chain::{boot_chain, shown, Expect, SHOW};
use e2e::cmd::describe_output;
use e2e::cmd::{self, ChildGuard};
use e2e::deploy::{one_image_config, write_images_config};
use e2e::disk::{sha256, LoopDisk, Mount, MountedPartition};
use e2e::fixture::{write_image_trees, FixtureImage};
use e2e::http::serve_tls;
use e2e::qemu::Firmware;
use e2e::tmp::TempDir;
use e2e::tools::{require_deploy_tools, require_tools};
use nix::sys::statvfs::{statvfs, FsFlags};
use serde_json::Value;
use shared::grubcfg::{self, ItemKind};

const KERNEL_PARAMS: &str = "console=ttyS0 quiet panic=-1";

/// One boot's limit: a fixture boot takes 20 to 60 s under TCG on a loaded machine.
const BOOT_TIMEOUT: Duration = Duration::from_secs(300);

/// The deployer's partition numbers: bios_grub, ESP, multiboot, then the volumes.
const MULTIBOOT_PARTITION: u32 = 3;

/// A menu title (os-release `PRETTY_NAME`) that would be GRUB script, shell and a second
/// menu entry if it were written unquoted.
const HOSTILE_TITLE: &str = r#"Alpha 'q' "dq" $HOME ${x} \back ; } { `id` $(reboot) # x"#;

/// The same for an `image_name` (boot-info.json and bootctl's TARGET).
const HOSTILE_IMAGE_NAME: &str = r#"img 'a' "b" $c \d ; {e} `f` $(g)"#;

/// The other image's title.
const BETA_TITLE: &str = r#"Beta ${beta} "x" ; menuentry y { reboot }"#;

/// A kernel parameter with GRUB and shell metacharacters but no quote or backslash (which
/// the deployer refuses): it must reach /proc/cmdline as written. The dot makes it a
/// module parameter, which the kernel does not pass on to init.
const HOSTILE_PARAM: &str = "multiboot.hostile=$x;{y}}$(z)`w`|&<>";

/// `PRETTY_NAME=` quoted as os-release(5) wants: double quotes, `\` before `"`, `\`, `$`
/// and `` ` ``.
fn os_release(pretty_name: &str) -> String {
    let mut escaped = String::new();
    for c in pretty_name.chars() {
        if matches!(c, '"' | '\\' | '$' | '`') {
            escaped.push('\\');
        }
        escaped.push(c);
    }
    format!("NAME=\"Fixture Linux\"\nID=fixture\nPRETTY_NAME=\"{escaped}\"\n")
}

/// `s` as one word of a POSIX shell.
fn sh_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

/// The image trees of `images` in `scratch` and a provision.json deploying each onto a
/// `/` of its own, `default` booting by default, with `kernel_params`; a
/// `/usr/share/common` partition that every image shares when `shared` is set. Returns the
/// config's path.
fn write_config(
    scratch: &TempDir,
    images: &[&FixtureImage],
    default: &str,
    kernel_params: &str,
    shared: bool,
) -> PathBuf {
    let names: Vec<&str> = images.iter().map(|i| i.name.as_str()).collect();
    let shared = if shared { names.as_slice() } else { &[] };
    write_images_config(scratch.path(), images, default, shared, kernel_params, 280)
}

/// The config of the HTTPS tests: the downloaded `image` (its config entry) onto a `/` of
/// 160 MiB on a 600 MiB disk.
fn remote_config(image: Value) -> Value {
    one_image_config(
        image,
        "600 MiB",
        serde_json::json!([{"type": "partition", "mount": "/", "size": "160",
                            "file_system": "ext4"}]),
    )
}

/// The arguments of `deployer deploy CONFIG` onto `scratch/node.img`, with boot-info.json
/// at `scratch/boot-info.json` and the static bootctl.
fn deploy_args(config: &Path, scratch: &TempDir) -> Vec<OsString> {
    let mut args: Vec<OsString> = vec!["deploy".into(), config.into(), "--disk".into()];
    args.push(format!("vda={}", scratch.join("node.img").display()).into());
    args.push("--boot-info".into());
    args.push(scratch.join("boot-info.json").into());
    args.push("--bootctl".into());
    args.push(static_bootctl().into());
    args.push("--yes".into());
    args
}

fn read_json(path: &Path) -> Value {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
    serde_json::from_slice(&bytes).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// `(title, image_name)` of every entry of `bootctl list --json` output.
fn listed(list: &Value) -> Vec<(String, String)> {
    list["entries"]
        .as_array()
        .expect("list --json has entries")
        .iter()
        .map(|entry| {
            (
                entry["title"].as_str().unwrap_or("(none)").to_owned(),
                entry["image_name"].as_str().unwrap_or("(none)").to_owned(),
            )
        })
        .collect()
}

#[test]
fn hostile_titles_names_and_kernel_parameters_stay_literal_through_grub_into_the_guest() {
    require_deploy_tools(&[]);
    require_tools(&["grub-script-check", "qemu-system-x86_64"]);
    let scratch = TempDir::new("security-hostile");
    let show = "show list bootctl list --json\nshow cmdline cat /proc/cmdline\n";
    let alpha = FixtureImage::new("alpha")
        .file("etc/os-release", os_release(HOSTILE_TITLE), 0o644)
        .run_script(&format!(
            "set -e\n{SHOW}{show}show switch bootctl switch {}\n",
            sh_quote(HOSTILE_IMAGE_NAME)
        ));
    let mut beta = FixtureImage::new("beta")
        .file("etc/os-release", os_release(BETA_TITLE), 0o644)
        .run_script(&format!("set -e\n{SHOW}{show}"));
    beta.image_name = HOSTILE_IMAGE_NAME.to_owned();
    let params = format!("{KERNEL_PARAMS} {HOSTILE_PARAM}");
    let config = write_config(&scratch, &[&alpha, &beta], "alpha", &params, false);
    let out = Command::new(env!("CARGO_BIN_EXE_deployer"))
        .args(deploy_args(&config, &scratch))
        .stdin(Stdio::null())
        .output()
        .expect("running deployer");
    assert!(out.status.success(), "deploy: {}", describe_output(&out));
    let disk = scratch.join("node.img");

    let expected = [
        (HOSTILE_TITLE.to_owned(), alpha.image_name.clone()),
        (BETA_TITLE.to_owned(), HOSTILE_IMAGE_NAME.to_owned()),
    ];
    let info = read_json(&scratch.join("boot-info.json"));
    let recorded: Vec<(String, String)> = info["elements"]
        .as_array()
        .expect("elements")
        .iter()
        .map(|e| {
            (
                e["boot_name"].as_str().unwrap().to_owned(),
                e["image_name"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert_eq!(recorded, expected, "boot-info.json: {info:#}");
    {
        let attached = LoopDisk::attach(&disk);
        let multiboot = Mount::new(
            &attached.partition(MULTIBOOT_PARTITION),
            &scratch.join("multiboot"),
            "ro",
        );
        let cfg = std::fs::read_to_string(multiboot.path().join("boot/grub/grub.cfg"))
            .expect("reading grub.cfg");
        e2e::grubcfg::script_check(&cfg);
        let menu = grubcfg::parse(&cfg).unwrap_or_else(|e| panic!("{e}\n{cfg}"));
        let titles: Vec<&str> = menu.items.iter().map(|i| i.title.as_str()).collect();
        assert_eq!(titles, [HOSTILE_TITLE, BETA_TITLE], "{cfg}");
        for item in &menu.items {
            let ItemKind::Entry { body, .. } = &item.kind else {
                panic!("{} is a submenu: {cfg}", item.title);
            };
            assert!(
                body.contains(&format!(" {}\n", grubcfg::quote(HOSTILE_PARAM))),
                "{}: the parameter is not one quoted word: {body}",
                item.title
            );
        }
    }

    let boots = boot_chain(
        &disk,
        Firmware::Bios,
        BOOT_TIMEOUT,
        "security-hostile",
        &[
            Expect::first("alpha"),
            Expect::after(
                "beta",
                "alpha ran `bootctl switch` with beta's hostile image_name",
            ),
        ],
    );
    for (boot, (which, title)) in boots
        .iter()
        .zip([("alpha", HOSTILE_TITLE), ("beta", BETA_TITLE)])
    {
        // GRUB's own console line for the entry it boots shows the title as written.
        assert!(
            boot.serial.contains(&format!("Booting `{title}'")),
            "{which}: GRUB does not show its title literally; log: {}",
            boot.log.display()
        );
        let list = shown(&boot.run_output, "list").json();
        assert_eq!(
            listed(&list),
            expected,
            "{which}: bootctl list --json in the guest; log: {}",
            boot.log.display()
        );
        let cmdline = shown(&boot.run_output, "cmdline").stdout;
        assert!(
            cmdline.split_whitespace().any(|word| word == HOSTILE_PARAM),
            "{which}: /proc/cmdline lacks {HOSTILE_PARAM:?}: {cmdline:?}"
        );
    }
    let switched = shown(&boots[0].run_output, "switch");
    // bootctl's text output quotes a title as a Rust string literal (quotes escaped).
    assert!(
        switched.stdout.contains(&format!("{BETA_TITLE:?}")),
        "bootctl switch in alpha: {}",
        switched.stdout
    );
}

/// The first and last MiB of a disk-image file: where a partition table would be written.
fn ends(path: &Path) -> Vec<u8> {
    use std::io::{Seek, SeekFrom};
    let mut file = std::fs::File::open(path).unwrap();
    let mut bytes = vec![0; 2 << 20];
    file.read_exact(&mut bytes[..1 << 20]).unwrap();
    file.seek(SeekFrom::End(-(1 << 20))).unwrap();
    file.read_exact(&mut bytes[1 << 20..]).unwrap();
    bytes
}

/// `openssl s_server -WWW` serving `www` over TLS on 127.0.0.1 with a new self-signed
/// certificate: a CA certificate (what a plain `openssl req -x509` makes) or, with
/// `leaf`, a server certificate. Returns the server (killed on drop) and its port.
fn self_signed_server(scratch: &TempDir, www: &Path, leaf: bool) -> (ChildGuard, u16) {
    let (key, cert) = (scratch.join("key.pem"), scratch.join("cert.pem"));
    let mut req = Command::new("openssl");
    req.args([
        "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
    ])
    .args(["-subj", "/CN=127.0.0.1"])
    .args(["-addext", "subjectAltName=IP:127.0.0.1"]);
    if leaf {
        req.args(["-addext", "basicConstraints=critical,CA:FALSE"])
            .args(["-addext", "extendedKeyUsage=serverAuth"]);
    }
    cmd::run(req.arg("-keyout").arg(&key).arg("-out").arg(&cert));
    serve_tls(www, &cert, &key)
}

#[test]
fn an_https_source_with_a_self_signed_certificate_is_refused_before_the_first_write() {
    require_tools(&["openssl", "sha256sum"]);
    // What rustls reports: a CA certificate presented as the server's own, and a server
    // certificate that no root the deployer trusts has signed.
    for (leaf, problem) in [(false, "CaUsedAsEndEntity"), (true, "UnknownIssuer")] {
        let scratch = TempDir::new("security-tls");
        let www = scratch.join("www");
        std::fs::create_dir(&www).unwrap();
        let image = b"not reached: the TLS handshake fails first".repeat(100);
        std::fs::write(www.join("image.tar"), &image).unwrap();
        let (_server, port) = self_signed_server(&scratch, &www, leaf);
        refused_before_writing(
            &scratch,
            &format!("https://127.0.0.1:{port}/image.tar"),
            problem,
        );
    }
}

/// `openssl s_server -WWW` serving `www` over TLS on 127.0.0.1 with a server certificate
/// signed by a new private CA. Returns the server (killed on drop), its port and the CA
/// certificate's PEM file.
fn private_ca_server(scratch: &TempDir, www: &Path) -> (ChildGuard, u16, PathBuf) {
    let file = |name: &str| scratch.join(name);
    cmd::run(
        Command::new("openssl")
            .args([
                "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
            ])
            .args(["-subj", "/CN=multiboot test CA"])
            .arg("-keyout")
            .arg(file("ca.key"))
            .arg("-out")
            .arg(file("ca.pem")),
    );
    cmd::run(
        Command::new("openssl")
            .args(["req", "-new", "-newkey", "rsa:2048", "-nodes"])
            .args(["-subj", "/CN=127.0.0.1"])
            .arg("-keyout")
            .arg(file("server.key"))
            .arg("-out")
            .arg(file("server.csr")),
    );
    std::fs::write(
        file("server.ext"),
        "subjectAltName=IP:127.0.0.1\nbasicConstraints=critical,CA:FALSE\n\
         extendedKeyUsage=serverAuth\n",
    )
    .unwrap();
    cmd::run(
        Command::new("openssl")
            .args(["x509", "-req", "-days", "2", "-in"])
            .arg(file("server.csr"))
            .arg("-CA")
            .arg(file("ca.pem"))
            .arg("-CAkey")
            .arg(file("ca.key"))
            .arg("-CAcreateserial")
            .arg("-extfile")
            .arg(file("server.ext"))
            .arg("-out")
            .arg(file("server.pem")),
    );
    let (server, port) = serve_tls(www, &file("server.pem"), &file("server.key"));
    (server, port, file("ca.pem"))
}

#[test]
fn an_https_source_behind_a_private_ca_deploys_with_cacert_and_only_with_it() {
    require_tools(&["openssl", "sha256sum", "tar"]);
    let scratch = TempDir::new("security-cacert");
    let www = scratch.join("www");
    let tree = scratch.join("tree");
    std::fs::create_dir_all(tree.join("etc")).unwrap();
    std::fs::create_dir_all(tree.join("boot")).unwrap();
    std::fs::create_dir(&www).unwrap();
    std::fs::write(tree.join("etc/marker"), "served over TLS by a private CA\n").unwrap();
    // What the deployer's grub.cfg needs to find (this image is not booted).
    std::fs::write(tree.join("boot/vmlinuz-6.1.0-test"), "kernel").unwrap();
    std::fs::write(tree.join("boot/initrd.img-6.1.0-test"), "initrd").unwrap();
    cmd::run(
        Command::new("tar")
            .arg("-cf")
            .arg(www.join("image.tar"))
            .arg("-C")
            .arg(&tree)
            .arg("."),
    );
    let (_server, port, ca) = private_ca_server(&scratch, &www);
    let sha256 = sha256(&www.join("image.tar"));
    let config = scratch.join("provision.json");
    std::fs::write(
        &config,
        remote_config(serde_json::json!({
            "name": "remote", "target": "/",
            "image_pull_url": format!("https://127.0.0.1:{port}/image.tar"), "sha256": sha256
        }))
        .to_string(),
    )
    .unwrap();
    let disk = scratch.join("node.img");
    let deploy = |extra: &[&OsString]| {
        let mut args = deploy_args(&config, &scratch);
        args.extend(extra.iter().map(|arg| (*arg).clone()));
        Command::new(env!("CARGO_BIN_EXE_deployer"))
            .args(&args)
            .stdin(Stdio::null())
            .output()
            .expect("running deployer")
    };

    // Without --cacert the private CA is unknown; with a file that holds no certificate,
    // the option itself is refused. Both before the first write.
    let unknown = deploy(&[]);
    assert_eq!(
        unknown.status.code(),
        Some(3),
        "{}",
        describe_output(&unknown)
    );
    assert!(
        String::from_utf8_lossy(&unknown.stderr).contains("UnknownIssuer"),
        "{}",
        describe_output(&unknown)
    );
    let empty = scratch.join("empty.pem");
    std::fs::write(&empty, "no certificate here\n").unwrap();
    let refused = deploy(&[&"--cacert".into(), &empty.clone().into_os_string()]);
    assert_eq!(
        refused.status.code(),
        Some(3),
        "{}",
        describe_output(&refused)
    );
    assert_eq!(
        String::from_utf8_lossy(&refused.stderr).trim(),
        format!(
            "deployer: --cacert {}: no PEM certificate in the file",
            empty.display()
        )
    );
    assert!(
        !disk.exists(),
        "a refused deploy created the disk-image file"
    );

    let deployed = deploy(&[&"--cacert".into(), &ca.clone().into_os_string()]);
    assert_eq!(
        deployed.status.code(),
        Some(0),
        "{}",
        describe_output(&deployed)
    );
    assert!(
        String::from_utf8_lossy(&deployed.stderr).contains("sha256 verified"),
        "{}",
        describe_output(&deployed)
    );
    let attached = LoopDisk::attach(&disk);
    let root = Mount::new(&attached.partition(4), &scratch.join("root"), "ro");
    assert_eq!(
        std::fs::read_to_string(root.path().join("etc/marker")).unwrap(),
        "served over TLS by a private CA\n"
    );
}

/// Deploys the image at `url` (served from `scratch/www/image.tar`) onto a new and onto an
/// existing disk-image file, with and without its sha256 and --allow-unverified-downloads:
/// each time one line naming the image, the URL and the certificate `problem`, exit 3,
/// no disk-image file created and the existing one untouched.
fn refused_before_writing(scratch: &TempDir, url: &str, problem: &str) {
    let sha256 = sha256(&scratch.join("www/image.tar"));
    let config = |with_sha: bool| {
        let mut image = serde_json::json!({
            "name": "remote", "image_pull_url": url, "target": "/"
        });
        if with_sha {
            image["sha256"] = sha256.clone().into();
        }
        let path = scratch.join(format!("provision-{with_sha}.json"));
        std::fs::write(&path, remote_config(image).to_string()).unwrap();
        path
    };
    let existing = scratch.join("existing.img");
    std::fs::File::create(&existing)
        .unwrap()
        .set_len(1 << 30)
        .unwrap();
    let before = std::fs::metadata(&existing).unwrap().modified().unwrap();
    let fresh = scratch.join("fresh.img");
    let attempts: [(bool, &[&str], &Path); 4] = [
        (true, &[], &fresh),
        (true, &[], &existing),
        (true, &["--allow-unverified-downloads"], &existing),
        (false, &["--allow-unverified-downloads"], &fresh),
    ];
    for (with_sha, flags, disk) in attempts {
        let out = Command::new(env!("CARGO_BIN_EXE_deployer"))
            .arg("deploy")
            .arg(config(with_sha))
            .arg("--disk")
            .arg(format!("vda={}", disk.display()))
            .arg("--bootctl")
            .arg(static_bootctl())
            .arg("--yes")
            .args(flags)
            .stdin(Stdio::null())
            .output()
            .expect("running deployer");
        let what = format!(
            "{problem}, sha256 {with_sha}, {flags:?}, {}",
            disk.display()
        );
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(
            out.status.code(),
            Some(3),
            "{what}: {}",
            describe_output(&out)
        );
        assert_eq!(stderr.lines().count(), 1, "{what}: one line: {stderr}");
        let want = format!(
            "deployer: image remote: source does not answer: {url}: Connection Failed: \
             tls connection init failed: invalid peer certificate: "
        );
        assert!(
            stderr.starts_with(&want) && stderr.contains(problem),
            "{what}: the line names the image, the URL and the certificate problem: {stderr}"
        );
        assert!(!fresh.exists(), "{what}: a disk-image file was created");
        let after = std::fs::metadata(&existing).unwrap();
        assert!(
            after.len() == 1 << 30
                && after.modified().unwrap() == before
                && ends(&existing).iter().all(|&b| b == 0),
            "{what}: the existing disk was written"
        );
    }
}

/// Runs `program args` under strace with `strace_args` (which hold some system call for a
/// moment) and calls `look` with the program's pid every 20 ms while it runs. Returns the
/// program's output.
fn watch_while_running(
    program: &Path,
    args: &[OsString],
    envs: &[(&str, &Path)],
    strace_args: &[&str],
    mut look: impl FnMut(&str),
) -> Output {
    let mut command = Command::new("strace");
    command
        .args(["-f", "-qq", "--seccomp-bpf", "-o", "/dev/null"])
        .args(strace_args)
        .arg(program)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (key, value) in envs {
        command.env(key, value);
    }
    let mut guard = ChildGuard::spawn(&mut command);
    let strace = guard.child_mut().id();
    let drain = |pipe: Option<Box<dyn Read + Send>>| {
        std::thread::spawn(move || {
            let mut bytes = Vec::new();
            if let Some(mut pipe) = pipe {
                let _ = pipe.read_to_end(&mut bytes);
            }
            bytes
        })
    };
    let stdout = drain(guard.child_mut().stdout.take().map(|p| Box::new(p) as _));
    let stderr = drain(guard.child_mut().stderr.take().map(|p| Box::new(p) as _));
    let deadline = Instant::now() + Duration::from_secs(600);
    let status = loop {
        if let Some(status) = guard.child_mut().try_wait().expect("waiting for strace") {
            break status;
        }
        assert!(
            Instant::now() < deadline,
            "{} ran for 10 minutes",
            program.display()
        );
        let children = std::fs::read_to_string(format!("/proc/{strace}/task/{strace}/children"))
            .unwrap_or_default();
        if let Some(pid) = children.split_whitespace().next() {
            look(pid);
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    Output {
        status,
        stdout: stdout.join().expect("stdout reader"),
        stderr: stderr.join().expect("stderr reader"),
    }
}

/// Runs `program args` under strace, which holds every `umount2` call for a moment, and
/// reads the program's own mountinfo (its mount namespace) while it runs. Returns the
/// per-mount options of every mount seen below `under`, by mount point, and the output.
fn mounts_while_running(
    program: &Path,
    args: &[OsString],
    envs: &[(&str, &Path)],
    under: &Path,
) -> (BTreeMap<String, Vec<String>>, Output) {
    let under = under.to_str().expect("UTF-8 path").to_owned();
    let mut seen = BTreeMap::new();
    let strace_args = [
        "-e",
        "trace=umount2",
        "-e",
        "inject=umount2:delay_enter=500000",
    ];
    let output = watch_while_running(program, args, envs, &strace_args, |pid| {
        let mountinfo =
            std::fs::read_to_string(format!("/proc/{pid}/mountinfo")).unwrap_or_default();
        for fields in mountinfo.lines().map(|l| l.split(' ').collect::<Vec<_>>()) {
            if let (Some(point), Some(options)) = (fields.get(4), fields.get(5)) {
                if point.starts_with(&under) {
                    let options = options.split(',').map(str::to_owned).collect();
                    seen.insert((*point).to_owned(), options);
                }
            }
        }
    });
    (seen, output)
}

/// Runs `program args` under strace, which holds every `fsmount` call for a moment after it
/// returned, and reads the mount flags (statvfs) of every directory the program holds open
/// meanwhile on a detached mount, one that no mountinfo lists: the mounts it made. Returns
/// the flags by pid and mount id (`/proc/PID/fdinfo/FD`), and the output. By mount, not by
/// descriptor: the program may hold one mount under two descriptors one after the other,
/// and it also opens directories of /sys for a moment (to find its loop device), which are
/// on a mount that its mountinfo lists; under load the polling caught both.
fn detached_mounts_while_running(
    program: &Path,
    args: &[OsString],
) -> (BTreeMap<String, FsFlags>, Output) {
    let mut seen = BTreeMap::new();
    let strace_args = [
        "-e",
        "trace=fsmount",
        "-e",
        "inject=fsmount:delay_exit=500000",
    ];
    let output = watch_while_running(program, args, &[], &strace_args, |pid| {
        let fds = std::fs::read_dir(format!("/proc/{pid}/fd"))
            .map(|dir| dir.filter_map(|entry| entry.ok()).collect::<Vec<_>>())
            .unwrap_or_default();
        let Ok(mountinfo) = std::fs::read_to_string(format!("/proc/{pid}/mountinfo")) else {
            return;
        };
        let listed: Vec<&str> = mountinfo
            .lines()
            .filter_map(|line| line.split(' ').next())
            .collect();
        for fd in fds {
            let path = fd.path();
            let fdinfo = std::fs::read_to_string(format!(
                "/proc/{pid}/fdinfo/{}",
                fd.file_name().to_string_lossy()
            ))
            .unwrap_or_default();
            let Some(mount_id) = fdinfo
                .lines()
                .find_map(|line| line.strip_prefix("mnt_id:"))
                .map(str::trim)
            else {
                continue;
            };
            if listed.contains(&mount_id) {
                continue;
            }
            if std::fs::metadata(&path).is_ok_and(|meta| meta.is_dir()) {
                if let Ok(stat) = statvfs(&path) {
                    seen.insert(format!("pid {pid}, mount {mount_id}"), stat.flags());
                }
            }
        }
    });
    (seen, output)
}

/// The mounts of `seen` that lack nosuid, nodev or noexec, with what they lack.
fn missing_flags(seen: &BTreeMap<String, Vec<String>>) -> Vec<String> {
    seen.iter()
        .filter_map(|(point, options)| {
            let missing: Vec<&str> = ["nosuid", "nodev", "noexec"]
                .into_iter()
                .filter(|flag| !options.iter().any(|o| o == flag))
                .collect();
            (!missing.is_empty()).then(|| format!("{point} lacks {missing:?}: {options:?}"))
        })
        .collect()
}

/// Deploys the one image alpha from `source` onto `volumes` of a 400 MiB disk
/// `scratch/node.img` (as [`deploy_args`] says).
fn deploy_alpha(scratch: &TempDir, source: &Path, volumes: Value) -> Output {
    let config = scratch.join("provision.json");
    let text = one_image_config(
        serde_json::json!({"name": "alpha", "image_pull_url": source, "target": "/"}),
        "400 MiB",
        volumes,
    );
    std::fs::write(&config, text.to_string()).expect("writing provision.json");
    Command::new(env!("CARGO_BIN_EXE_deployer"))
        .args(deploy_args(&config, scratch))
        .stdin(Stdio::null())
        .output()
        .expect("running deployer")
}

/// Links in an image's tree lead inside the image, never to the host. The image's
/// /usr/sbin is an absolute link to /usr/bin (the /usr/sbin merge) where another program's
/// bootctl lives, and its /etc/multiboot an absolute link to /var/lib/multiboot: the
/// deployer's bootctl and boot-info.json land in the image's /usr/bin and
/// /var/lib/multiboot, one line says what bootctl replaced, and the host's /usr/bin/bootctl
/// and /var/lib/multiboot are as they were.
#[test]
fn links_in_an_image_lead_inside_it_never_to_the_host() {
    use std::os::unix::fs::symlink;
    require_deploy_tools(&[]);
    let scratch = TempDir::new("security-links");
    let alpha = FixtureImage::new("alpha")
        .file("usr/bin/bootctl", "#!/bin/sh\necho systemd-boot\n", 0o755)
        .file("var/lib/multiboot/README", "kept by the image\n", 0o644);
    write_image_trees(scratch.path(), &[&alpha]);
    let tree = scratch.join("alpha");
    std::fs::remove_dir_all(tree.join("usr/sbin")).expect("removing the image's /usr/sbin");
    symlink("/usr/bin", tree.join("usr/sbin")).expect("linking /usr/sbin");
    symlink("/var/lib/multiboot", tree.join("etc/multiboot")).expect("linking /etc/multiboot");
    let host_bootctl = || std::fs::read("/usr/bin/bootctl").ok();
    let host_var = || std::fs::symlink_metadata("/var/lib/multiboot").is_ok();
    let (bootctl_before, var_before) = (host_bootctl(), host_var());
    let out = deploy_alpha(
        &scratch,
        &tree,
        serde_json::json!([{"type": "partition", "mount": "/", "size": "160",
                            "file_system": "ext4"}]),
    );
    assert!(out.status.success(), "deploy: {}", describe_output(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains(
            "deployer: image alpha: /usr/sbin/bootctl (/usr/bin/bootctl there) is another \
             program, such as systemd's bootctl where /usr/sbin is /usr/bin; replaced by \
             multiboot's bootctl"
        ),
        "{}",
        describe_output(&out)
    );
    assert_eq!(
        host_bootctl(),
        bootctl_before,
        "the host's /usr/bin/bootctl"
    );
    assert_eq!(host_var(), var_before, "the host's /var/lib/multiboot");

    let root = MountedPartition::new(
        &scratch.join("node.img"),
        MULTIBOOT_PARTITION + 1,
        &scratch.join("root"),
        true,
    );
    let image = root.path();
    assert_eq!(
        std::fs::read(image.join("usr/bin/bootctl")).expect("the image's /usr/bin/bootctl"),
        std::fs::read(static_bootctl()).expect("the static bootctl"),
    );
    assert_eq!(
        std::fs::read_link(image.join("usr/sbin")).expect("/usr/sbin is still a link"),
        Path::new("/usr/bin")
    );
    assert_eq!(
        std::fs::read_link(image.join("etc/multiboot")).expect("/etc/multiboot is still a link"),
        Path::new("/var/lib/multiboot")
    );
    let info = read_json(&image.join("var/lib/multiboot/boot-info.json"));
    assert_eq!(info["elements"][0]["name"], "alpha");
    assert_eq!(
        std::fs::read_to_string(image.join("var/lib/multiboot/README")).expect("README"),
        "kept by the image\n"
    );
}

/// An image (a tar archive) that has a symlink to a host directory where its vfat
/// filesystem goes (vfat is filled through mtools here, from what the extraction left at
/// the mount point): the deploy fails naming the mount point, and the host directory keeps
/// its files.
#[test]
fn a_symlink_at_a_vfat_mount_point_never_empties_the_host_directory_it_names() {
    use std::os::unix::fs::symlink;
    require_deploy_tools(&["mdir"]);
    let scratch = TempDir::new("security-vfat-link");
    let host_dir = scratch.join("host-dir");
    std::fs::create_dir(&host_dir).expect("creating the host directory");
    std::fs::write(host_dir.join("precious.txt"), "the host's\n").expect("writing a host file");
    let alpha = FixtureImage::new("alpha");
    write_image_trees(scratch.path(), &[&alpha]);
    let tree = scratch.join("alpha");
    std::fs::create_dir_all(tree.join("usr/share")).expect("creating /usr/share");
    symlink(&host_dir, tree.join("usr/share/fat")).expect("linking /usr/share/fat");
    // A tar archive: the directory copy refuses a symlink over a directory by itself.
    let tarball = scratch.join("alpha.tar");
    cmd::run(
        Command::new("tar")
            .arg("-C")
            .arg(&tree)
            .arg("-cf")
            .arg(&tarball)
            .arg("."),
    );
    let out = deploy_alpha(
        &scratch,
        &tarball,
        serde_json::json!([
            {"type": "partition", "mount": "/", "size": "160", "file_system": "ext4"},
            {"type": "partition", "mount": "/usr/share/fat", "size": "40",
             "file_system": "vfat"}
        ]),
    );
    assert_eq!(out.status.code(), Some(1), "{}", describe_output(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains(
            "image alpha: /usr/share/fat, where its vfat filesystem goes, is not a directory \
             in the image (a symlink?)"
        ),
        "{}",
        describe_output(&out)
    );
    assert_eq!(
        std::fs::read_to_string(host_dir.join("precious.txt")).expect("the host file"),
        "the host's\n"
    );
    assert_eq!(
        std::fs::read_dir(&host_dir)
            .expect("the host directory")
            .count(),
        1
    );
}

#[test]
fn every_mount_of_a_deploy_and_of_bootctl_is_nosuid_nodev_noexec() {
    require_deploy_tools(&[]);
    require_tools(&["strace"]);
    let scratch = TempDir::new("security-mounts");
    let alpha = FixtureImage::new("alpha");
    let config = write_config(&scratch, &[&alpha], "alpha", KERNEL_PARAMS, true);
    let tmp = scratch.join("tmp");
    std::fs::create_dir(&tmp).unwrap();
    let (seen, out) = mounts_while_running(
        Path::new(env!("CARGO_BIN_EXE_deployer")),
        &deploy_args(&config, &scratch),
        &[("TMPDIR", &tmp)],
        &tmp,
    );
    assert!(
        out.status.success(),
        "deploy under strace: {}",
        describe_output(&out)
    );
    // alpha's / and its /usr/share/common for the copy, the multiboot partition, alpha's /
    // again for its copy of boot-info.json.
    assert_eq!(seen.len(), 4, "the deployer's mounts seen: {seen:#?}");
    assert_eq!(missing_flags(&seen), Vec::<String>::new());

    let disk = scratch.join("node.img");
    for (args, read_only) in [(&["list"][..], true), (&["switch", "alpha"], false)] {
        let mut full: Vec<OsString> = vec!["--disk".into(), disk.clone().into()];
        full.extend(args.iter().map(OsString::from));
        let (seen, out) = detached_mounts_while_running(static_bootctl(), &full);
        assert!(
            out.status.success(),
            "bootctl {args:?} under strace: {}",
            describe_output(&out)
        );
        assert_eq!(
            seen.len(),
            1,
            "bootctl {args:?}: its mounts seen: {seen:#?}"
        );
        let required =
            FsFlags::ST_NOSUID | FsFlags::ST_NODEV | FsFlags::ST_NOEXEC | FsFlags::ST_NOATIME;
        for flags in seen.values() {
            assert!(flags.contains(required), "bootctl {args:?}: {flags:?}");
            assert_eq!(
                flags.contains(FsFlags::ST_RDONLY),
                read_only,
                "bootctl {args:?}: {flags:?}"
            );
        }
    }
}
