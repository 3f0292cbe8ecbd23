//! The deployer's man pages: deployer(8) and boot-info.json(5).
//!
//! `man/deployer.8` is generated from the deployer's clap definitions (`deployer/src/cli.rs`)
//! and the hand-written sections in `man/sections/deployer.8.roff`, as bootctl(8) is (see
//! `e2e::manpage`). `man/boot-info.json.5` has no command line to describe: it is the
//! hand-written `man/sections/boot-info.json.5.roff` plus an EXAMPLE section that is the
//! deployer's own boot-info.json writer run on `deployer/examples/multi-image.json`, so the
//! example is what a deploy of that config writes, key for key.
//!
//! The drift tests fail while a committed page differs from what the code generates. After
//! changing the code or a sections file, regenerate the pages and commit them:
//!
//! ```text
//! DEPLOYER_UPDATE_MAN=1 cargo test -p deployer --test man_pages
//! ```
//!
//! The render tests format the committed pages with the real man(1) and fail on any warning;
//! `boot_info_page_documents_every_key` fails when the writer writes a key the page does not
//! describe.

use clap::CommandFactory;
use deployer::apply::boot::{boot_info, Entry, MenuPlace};
use deployer::apply::image::DeployedImage;
use deployer::cli::Cli;
use deployer::plan::{plan, DiskInput, IdSource};
use deployer::validate::validate;
use e2e::manpage::{check_file_current, check_renders, read, without_leading_comments, ManPage};
use serde_json::Value;
use shared::kernels::KernelPair;
use uuid::Uuid;

const UPDATE_VAR: &str = "DEPLOYER_UPDATE_MAN";
const UPDATE_COMMAND: &str = "cargo test -p deployer --test man_pages";

const DEPLOYER_PAGE: ManPage = ManPage {
    path: "man/deployer.8",
    sections: "man/sections/deployer.8.roff",
    cli_source: "deployer/src/cli.rs",
    generator: "deployer/tests/man_pages.rs",
    update_var: UPDATE_VAR,
    update_command: UPDATE_COMMAND,
    title: "DEPLOYER",
    section: "8",
};

const BOOT_INFO_PAGE: &str = "man/boot-info.json.5";
const BOOT_INFO_SECTIONS: &str = "man/sections/boot-info.json.5.roff";
/// The config whose boot-info.json the page shows.
const EXAMPLE_CONFIG: &str = "deployer/examples/multi-image.json";
/// The heading the generated EXAMPLE section goes before.
const SEE_ALSO: &str = ".SH \"SEE ALSO\"\n";

#[test]
fn deployer_page_is_current() {
    DEPLOYER_PAGE.check_current(&Cli::command());
}

#[test]
fn deployer_page_renders_without_warnings() {
    check_renders(DEPLOYER_PAGE.path);
}

#[test]
fn boot_info_page_is_current() {
    check_file_current(
        BOOT_INFO_PAGE,
        &boot_info_page(),
        UPDATE_VAR,
        UPDATE_COMMAND,
    );
}

#[test]
fn boot_info_page_renders_without_warnings() {
    check_renders(BOOT_INFO_PAGE);
}

/// Every key of the example (the specification's and the deployer's own) has a `.TP` item
/// of its own in the page, and the page describes no key the writer does not write.
#[test]
fn boot_info_page_documents_every_key() {
    let example: Value =
        serde_json::from_str(&example_boot_info()).expect("the writer writes JSON");
    let mut written: Vec<String> = Vec::new();
    for (key, value) in example.as_object().expect("an object") {
        written.push(key.clone());
        if key == "elements" {
            let element = value[0].as_object().expect("elements are objects");
            written.extend(element.keys().cloned());
        }
    }
    let sections = read(BOOT_INFO_SECTIONS);
    let documented: Vec<String> = sections
        .split(".TP\n")
        .skip(1)
        .filter_map(|item| item.lines().next())
        .filter_map(|term| {
            term.strip_prefix("\\fB")
                .and_then(|rest| rest.split_once("\\fR"))
                .map(|(key, _)| key.replace("\\%", "").replace("\\-", "-"))
        })
        .collect();
    assert_eq!(
        documented, written,
        "the keys {BOOT_INFO_SECTIONS} describes (left) are not those the deployer writes \
         (right), in the same order"
    );
}

/// boot-info.json(5): the sections file with the generated EXAMPLE before SEE ALSO.
fn boot_info_page() -> String {
    let sections = read(BOOT_INFO_SECTIONS);
    let sections = without_leading_comments(&sections);
    let (before, see_also) = sections
        .split_once(SEE_ALSO)
        .unwrap_or_else(|| panic!("{BOOT_INFO_SECTIONS} has no {SEE_ALSO:?} section"));
    let mut page = format!(
        ".\\\" Generated from {BOOT_INFO_SECTIONS} and the boot-info.json the deployer writes \
         for\n.\\\" {EXAMPLE_CONFIG}, by deployer/tests/man_pages.rs.\n\
         .\\\" Do not edit: {UPDATE_VAR}=1 {UPDATE_COMMAND}\n\
         .TH BOOT\\-INFO.JSON 5 \"\" \"deployer {}\" \"File Formats Manual\"\n",
        env!("CARGO_PKG_VERSION")
    );
    page += before;
    page += ".SH EXAMPLE\n\
             What the deployer writes for the example configuration of the multi-image \
             deployment specification: two images, \\fBcentos\\fR (booted by default) and \
             \\fBubuntu\\fR, each with its own root filesystem.\n\
             .PP\n.RS 4\n.nf\n";
    page += &roff_literal(&example_boot_info());
    page += ".fi\n.RE\n";
    page += SEE_ALSO;
    page += see_also;
    page
}

/// `text` for a no-fill block: backslashes and hyphens escaped, no line starting a request.
fn roff_literal(text: &str) -> String {
    text.lines()
        .map(|line| {
            let escaped = line.replace('\\', "\\e").replace('-', "\\-");
            if escaped.starts_with(['.', '\'']) {
                format!("\\&{escaped}\n")
            } else {
                format!("{escaped}\n")
            }
        })
        .collect()
}

/// The boot-info.json that deploying `EXAMPLE_CONFIG` onto a 20 GiB disk writes, with the
/// operating systems' names and titles as CentOS 7 and Ubuntu 14.04 report them.
fn example_boot_info() -> String {
    let config = validate(&read(EXAMPLE_CONFIG)).expect("the example config is valid");
    let disks = [DiskInput {
        name: "vda".to_owned(),
        path: "/dev/vda".into(),
        size_bytes: 20 << 30,
        sector_size: 512,
        existing: None,
    }];
    let plan = plan(&config, &disks, &mut ExampleIds::default()).expect("the example fits");
    let deployed: Vec<DeployedImage> = plan
        .images
        .iter()
        .map(|image| {
            let (os_id, title) = match image.name.as_str() {
                "centos" => ("centos", "CentOS Linux 7 (Core)"),
                "ubuntu" => ("ubuntu", "Ubuntu 14.04.3 LTS"),
                other => panic!("{EXAMPLE_CONFIG} has an image {other} this test does not know"),
            };
            DeployedImage {
                name: image.name.clone(),
                os_id: os_id.to_owned(),
                title: title.to_owned(),
                kernel: KernelPair {
                    version: String::new(),
                    kernel: "vmlinuz".to_owned(),
                    initrd: Some("initrd.img".to_owned()),
                },
            }
        })
        .collect();
    let entries: Vec<Entry> = plan
        .images
        .iter()
        .zip(&deployed)
        .map(|(image, deployed)| Entry {
            image,
            layout: plan.layout(image),
            deployed,
        })
        .collect();
    let places: Vec<MenuPlace> = deployed
        .iter()
        .zip(0..)
        .map(|(image, grub_id)| MenuPlace {
            grub_id,
            title: image.title.clone(),
        })
        .collect();
    boot_info(&plan, &entries, &places)
        .expect("boot-info.json of the example")
        .to_json()
}

/// Version-4 UUIDs from a fixed seed: random-looking, the same at every run.
#[derive(Default)]
struct ExampleIds {
    state: u64,
}

impl ExampleIds {
    /// splitmix64.
    fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn uuid(&mut self) -> Uuid {
        let high = u128::from(self.next_u64()) << 64;
        let bytes = (high | u128::from(self.next_u64())).to_be_bytes();
        uuid::Builder::from_random_bytes(bytes).into_uuid()
    }
}

impl IdSource for ExampleIds {
    fn filesystem_uuid(&mut self) -> Uuid {
        self.uuid()
    }

    fn partition_uuid(&mut self) -> Uuid {
        self.uuid()
    }

    fn array_uuid(&mut self) -> Uuid {
        self.uuid()
    }
}
