//! The bad input corpus of the boot files: `tests/bad/grubcfg/*.cfg`,
//! `tests/bad/grubenv/*.grubenv` and `tests/bad/bootinfo/*.json`, each next to a
//! `.expected` file holding the one-line error it must produce. Inputs too large to keep
//! in the repository (a file over bootctl's read limit, a million open braces) and files
//! that are not regular files are made here.
//!
//! Every case is checked twice: by the shared parser, whose error must be exactly the
//! expected line (a file that is not UTF-8 never reaches the text parsers: the expected
//! line is then what bootctl says of it), and by the shipped static bootctl on a
//! `--boot-dir` tree whose other two files are sound: `list`, `status` and `switch` each
//! exit 6 with the single line `bootctl: PATH: EXPECTED`, print nothing on stdout, and
//! leave every byte of the tree as it was.
//!
//! Last, the image's own boot-info.json naming a multiboot partition that is gone: bootctl
//! run as inside an image, with no flags, once with the disk there and once after it went.

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::FileTypeExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use e2e::bootctl::{bootctl, static_bootctl, BootctlRun, RUN_TIMEOUT};
use e2e::cmd::{output_with_timeout, TimedOutput};
use e2e::disk::{snapshot_tree, LoopDisk};
use e2e::fixture::FixtureImage;
use e2e::grubcfg::MenuStyle;
use e2e::node::{NodeDisk, MULTIBOOT_PARTITION};
use e2e::tmp::TempDir;
use e2e::tools::{require_root, require_tools};
use shared::bootinfo::BootInfo;
use shared::grubcfg;
use shared::grubenv::GrubEnv;

/// bootctl's limit on the size of a boot file (bootctl/src/store.rs, MAX_BOOT_FILE_BYTES).
const MAX_BOOT_FILE_BYTES: usize = 16 << 20;

const ROOT_A: &str = "2abf123d-d52f-4f62-a351-7358221bc51f";
const ROOT_B: &str = "688c5f1e-dc46-4aca-a90e-be21ba8aa3e2";

/// The sound grub.cfg of a test tree: two entries, `a` and `b`, a fixed default.
fn sound_grub_cfg() -> String {
    format!(
        "set default=\"0\"\n\
         menuentry 'A' --id a {{\n\tlinux /boot/vmlinuz root=UUID={ROOT_A}\n}}\n\
         menuentry 'B' --id b {{\n\tlinux /boot/vmlinuz root=UUID={ROOT_B}\n}}\n"
    )
}

/// The sound boot-info.json of a test tree, naming both entries.
fn sound_boot_info() -> String {
    let element = |grub_id: u32, name: &str, root: &str| {
        serde_json::json!({
            "grub_id": grub_id, "image_name": name, "os_id": "fixture",
            "image_uuid": format!("u-{name}"), "boot_name": name.to_uppercase(),
            "root_uuid": root
        })
    };
    let doc = serde_json::json!({
        "elements": [element(0, "a", ROOT_A), element(1, "b", ROOT_B)],
        "current_element": 0,
        "multiboot_partition": "3b360901-7896-48d4-a14d-fc35e1582c74"
    });
    format!("{doc:#}\n")
}

/// One of the three boot files.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Format {
    GrubCfg,
    GrubEnv,
    BootInfo,
}

impl Format {
    const ALL: [Format; 3] = [Format::GrubCfg, Format::GrubEnv, Format::BootInfo];

    /// The corpus directory under `tests/bad/` and the extension of its inputs.
    fn corpus(self) -> (&'static str, &'static str) {
        match self {
            Format::GrubCfg => ("grubcfg", "cfg"),
            Format::GrubEnv => ("grubenv", "grubenv"),
            Format::BootInfo => ("bootinfo", "json"),
        }
    }

    /// Where the file is in a multiboot tree.
    fn tree_path(self) -> &'static str {
        match self {
            Format::GrubCfg => "boot/grub/grub.cfg",
            Format::GrubEnv => "boot/grub/grubenv",
            Format::BootInfo => "boot-info.json",
        }
    }

    /// The shared parser's verdict on `bytes`: its error message, or `Ok`. The text
    /// formats take `&str`: bytes that are not UTF-8 are refused before them, as bootctl
    /// words it.
    fn parse(self, bytes: &[u8]) -> Result<(), String> {
        match self {
            Format::GrubEnv => GrubEnv::parse(bytes).map(drop).map_err(|e| e.to_string()),
            Format::GrubCfg => grubcfg::parse(utf8(bytes)?)
                .map(drop)
                .map_err(|e| e.to_string()),
            Format::BootInfo => BootInfo::from_json(utf8(bytes)?)
                .map(drop)
                .map_err(|e| e.to_string()),
        }
    }
}

/// `bytes` as text, or bootctl's error for a boot file that is not UTF-8.
fn utf8(bytes: &[u8]) -> Result<&str, String> {
    std::str::from_utf8(bytes).map_err(|err| {
        let offset = err.valid_up_to();
        let line = 1 + bytes[..offset].iter().filter(|&&b| b == b'\n').count();
        format!("not UTF-8 text (invalid byte at offset {offset}, line {line})")
    })
}

/// One malformed input and the error line it must produce.
struct Case {
    format: Format,
    /// The corpus file, or a description of a generated input.
    name: String,
    bytes: Vec<u8>,
    expected: String,
}

fn corpus(format: Format) -> Vec<Case> {
    let (dir, ext) = format.corpus();
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/bad")
        .join(dir);
    let mut inputs: Vec<PathBuf> = fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("reading {}: {e}", dir.display()))
        .map(|entry| entry.expect("a directory entry").path())
        .filter(|path| path.extension().is_some_and(|e| e == ext))
        .collect();
    inputs.sort();
    inputs
        .into_iter()
        .map(|path| {
            let expected_path = path.with_extension("expected");
            let expected = fs::read_to_string(&expected_path)
                .unwrap_or_else(|e| panic!("{}: {e}", expected_path.display()));
            assert!(
                expected.ends_with('\n') && expected.lines().count() == 1,
                "{}: one line, ending in a newline",
                expected_path.display()
            );
            Case {
                format,
                name: path.display().to_string(),
                bytes: fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display())),
                expected: expected.trim_end().to_owned(),
            }
        })
        .collect()
}

/// A multiboot tree whose three files are sound, for `--boot-dir`.
fn sound_tree(label: &str) -> TempDir {
    let tree = TempDir::new(label);
    fs::create_dir_all(tree.join("boot/grub")).unwrap();
    fs::write(tree.join(Format::GrubCfg.tree_path()), sound_grub_cfg()).unwrap();
    let env = GrubEnv::new().to_bytes().unwrap();
    fs::write(tree.join(Format::GrubEnv.tree_path()), env).unwrap();
    fs::write(tree.join(Format::BootInfo.tree_path()), sound_boot_info()).unwrap();
    tree
}

/// What is wrong with bootctl's answer to `args` on `tree` when it must exit 6 with
/// exactly `bootctl: PATH: EXPECTED`; `None` if nothing.
fn wrong_answer(tree: &TempDir, format: Format, expected: &str, args: &[&str]) -> Option<String> {
    let mut full = vec!["--boot-dir", tree.path().to_str().unwrap()];
    full.extend_from_slice(args);
    let run: BootctlRun = bootctl(&full);
    let want = format!(
        "bootctl: {}: {expected}\n",
        tree.join(format.tree_path()).display()
    );
    (run.code != 6 || run.stderr != want || !run.stdout.is_empty()).then(|| {
        format!(
            "`{}`: exit {} (expected 6)\n  stderr {:?}\n  wanted {want:?}\n  stdout {:?}",
            run.command, run.code, run.stderr, run.stdout
        )
    })
}

const COMMANDS: [&[&str]; 3] = [&["list"], &["status", "--json"], &["switch", "b"]];

/// Checks `case` with the shared parser and through bootctl; returns what went wrong.
fn check(case: &Case) -> Vec<String> {
    let mut problems = Vec::new();
    match case.format.parse(&case.bytes) {
        Err(message) if message == case.expected => {}
        other => problems.push(format!(
            "the parser says {other:?}, expected Err({:?})",
            case.expected
        )),
    }
    problems.extend(through_bootctl(case.format, &case.bytes, &case.expected));
    problems
}

/// `bytes` as the `format` file of a sound tree, through bootctl.
fn through_bootctl(format: Format, bytes: &[u8], expected: &str) -> Vec<String> {
    let tree = sound_tree("bad-input");
    fs::write(tree.join(format.tree_path()), bytes).unwrap();
    let before = snapshot_tree(tree.path());
    let mut problems: Vec<String> = COMMANDS
        .iter()
        .filter_map(|args| wrong_answer(&tree, format, expected, args))
        .collect();
    if snapshot_tree(tree.path()) != before {
        problems.push("the tree changed".to_owned());
    }
    problems
}

#[test]
fn every_corpus_file_gives_its_error_from_the_parser_and_from_bootctl() {
    require_root();
    let mut counts = BTreeMap::new();
    let mut failures = Vec::new();
    for format in Format::ALL {
        let cases = corpus(format);
        counts.insert(format.corpus().0, cases.len());
        for case in &cases {
            for problem in check(case) {
                failures.push(format!("{}: {problem}", case.name));
            }
        }
    }
    eprintln!("bad input corpus: {counts:?}");
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    assert!(
        counts.values().all(|&n| n >= 15),
        "at least 15 cases per format: {counts:?}"
    );
}

/// Inputs made here: over bootctl's read limit, and nested a million levels deep.
fn generated() -> Vec<Case> {
    let over = MAX_BOOT_FILE_BYTES + 1;
    let too_large = format!(
        "larger than {} MiB, the most bootctl reads of a boot file",
        MAX_BOOT_FILE_BYTES >> 20
    );
    let mut huge_cfg = "# padding\n".repeat(over / 10 + 1);
    huge_cfg.push_str(&sound_grub_cfg());
    let mut huge_info: serde_json::Value = serde_json::from_str(&sound_boot_info()).unwrap();
    huge_info["padding"] = "x".repeat(over).into();
    vec![
        Case {
            format: Format::GrubCfg,
            name: "a grub.cfg of 16 MiB of comments, then a sound menu".to_owned(),
            bytes: huge_cfg.into_bytes(),
            expected: too_large.clone(),
        },
        Case {
            format: Format::BootInfo,
            name: "a boot-info.json with a 16 MiB string".to_owned(),
            bytes: huge_info.to_string().into_bytes(),
            expected: too_large.clone(),
        },
        Case {
            format: Format::GrubEnv,
            name: "a grubenv of 16 MiB".to_owned(),
            bytes: vec![b'#'; over],
            expected: too_large,
        },
        Case {
            format: Format::GrubCfg,
            name: "a million `{`".to_owned(),
            bytes: "{".repeat(1_000_000).into_bytes(),
            expected: format!("line 1: nesting deeper than {} levels", grubcfg::MAX_DEPTH),
        },
        Case {
            format: Format::GrubCfg,
            name: "a million lines of `if true; then`".to_owned(),
            bytes: "if true; then\n".repeat(1_000_000).into_bytes(),
            expected: format!(
                "line {}: nesting deeper than {} levels",
                grubcfg::MAX_DEPTH + 1,
                grubcfg::MAX_DEPTH
            ),
        },
    ]
}

#[test]
fn huge_and_deep_inputs_are_refused_without_reading_them_whole() {
    require_root();
    let mut failures = Vec::new();
    for case in generated() {
        let parsed = case.format.parse(&case.bytes);
        // Files over the limit are sound for the parsers (the huge grubenv is not 1024
        // bytes): the limit is bootctl's own.
        let parser_ok = if case.expected.starts_with("larger than") {
            match case.format {
                Format::GrubEnv => {
                    parsed
                        == Err(format!(
                            "environment block is {} bytes long, expected exactly 1024",
                            case.bytes.len()
                        ))
                }
                Format::GrubCfg | Format::BootInfo => parsed.is_ok(),
            }
        } else {
            parsed.as_ref() == Err(&case.expected)
        };
        if !parser_ok {
            failures.push(format!("{}: the parser says {parsed:?}", case.name));
        }
        for problem in through_bootctl(case.format, &case.bytes, &case.expected) {
            failures.push(format!("{}: {problem}", case.name));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// A boot file that is a FIFO, a device or a directory is refused at once: bootctl
/// neither blocks on the FIFO nor reads the device forever.
#[test]
fn boot_files_that_are_not_regular_files_are_refused() {
    require_root();
    for format in Format::ALL {
        for kind in ["fifo", "character device", "directory"] {
            let tree = sound_tree("bad-input-kind");
            let path = tree.join(format.tree_path());
            fs::remove_file(&path).unwrap();
            match kind {
                "fifo" => {
                    nix::unistd::mkfifo(&path, nix::sys::stat::Mode::from_bits_truncate(0o644))
                        .unwrap_or_else(|e| panic!("mkfifo {}: {e}", path.display()))
                }
                "directory" => fs::create_dir(&path).unwrap(),
                // /dev/zero's own node (char 1:5), made in the tree: a symlink to it would
                // lead out of the tree, which bootctl refuses for that reason.
                _ => nix::sys::stat::mknod(
                    &path,
                    nix::sys::stat::SFlag::S_IFCHR,
                    nix::sys::stat::Mode::from_bits_truncate(0o644),
                    nix::sys::stat::makedev(1, 5),
                )
                .unwrap_or_else(|e| panic!("mknod {}: {e}", path.display())),
            }
            for args in COMMANDS {
                if let Some(problem) = wrong_answer(&tree, format, "not a regular file", args) {
                    panic!("{} as a {kind}: {problem}", format.tree_path());
                }
            }
            let after = fs::symlink_metadata(&path).unwrap().file_type();
            let unchanged = match kind {
                "fifo" => after.is_fifo(),
                "directory" => after.is_dir(),
                _ => after.is_char_device(),
            };
            assert!(unchanged, "{} as a {kind} was replaced", format.tree_path());
            for other in Format::ALL.into_iter().filter(|&f| f != format) {
                let sound = match other {
                    Format::GrubCfg => sound_grub_cfg().into_bytes(),
                    Format::GrubEnv => GrubEnv::new().to_bytes().unwrap(),
                    Format::BootInfo => sound_boot_info().into_bytes(),
                };
                assert_eq!(
                    fs::read(tree.join(other.tree_path())).unwrap(),
                    sound,
                    "{} changed",
                    other.tree_path()
                );
            }
        }
    }
}

/// bootctl with `args` as it runs inside an image: no `--multiboot`, `--disk` or
/// `--boot-dir`, so it reads `/etc/multiboot/boot-info.json`. `etc` stands in for the
/// image's /etc, bind-mounted over /etc in a mount namespace of the run's own.
fn bootctl_in_image(etc: &Path, args: &[&str]) -> TimedOutput {
    let mut command = Command::new("unshare");
    command
        .args(["--mount", "--propagation", "private", "sh", "-c"])
        .arg(r#"mount --bind "$1" /etc && shift && exec "$@""#)
        .arg("sh")
        .arg(etc)
        .arg(static_bootctl())
        .args(args);
    output_with_timeout(&mut command, RUN_TIMEOUT)
}

#[test]
fn a_multiboot_partition_that_vanished_between_runs_exits_4_naming_its_uuid() {
    require_tools(&["unshare", "mount", "sh"]);
    let dir = TempDir::new("vanished");
    let disk = NodeDisk::builder(vec![FixtureImage::new("a"), FixtureImage::new("b")])
        .menu(MenuStyle::Fixed {
            next_entry_block: true,
        })
        .build(&dir.join("node.img"));
    let uuid = &disk.facts.multiboot_uuid;
    let etc = dir.join("etc");
    fs::create_dir_all(etc.join("multiboot")).unwrap();
    let boot_info = format!("{:#}\n", disk.facts.boot_info(0));
    fs::write(etc.join("multiboot/boot-info.json"), &boot_info).unwrap();

    let attached = LoopDisk::attach(&disk.path);
    attached.partition(MULTIBOOT_PARTITION);
    let there = bootctl_in_image(&etc, &["list", "--json"]);
    assert_eq!(
        there.status.and_then(|s| s.code()),
        Some(0),
        "with the disk attached: {}",
        there.stderr
    );
    let list: serde_json::Value = serde_json::from_str(&there.stdout).unwrap();
    for image in &disk.facts.images {
        assert!(
            list["entries"]
                .as_array()
                .unwrap()
                .iter()
                .any(|entry| entry["image_name"] == image.image.image_name.as_str()),
            "{} is not listed: {list:#}",
            image.image.image_name
        );
    }
    drop(attached);

    let want = format!(
        "bootctl: no block device holds the multiboot filesystem UUID {uuid} \
         (named by /etc/multiboot/boot-info.json)\n"
    );
    for args in [&["list"][..], &["status"], &["switch", "b"]] {
        let gone = bootctl_in_image(&etc, args);
        assert_eq!(
            (gone.status.and_then(|s| s.code()), gone.stderr.as_str()),
            (Some(4), want.as_str()),
            "{args:?} after the disk went; stdout {:?}",
            gone.stdout
        );
        assert!(gone.stdout.is_empty(), "{args:?}: {}", gone.stdout);
    }
    assert_eq!(
        fs::read_to_string(etc.join("multiboot/boot-info.json")).unwrap(),
        boot_info
    );
}
