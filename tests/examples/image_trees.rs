//! Writes fixture image trees for benchmarks and manual tries: `image_trees DIR NAME...`
//! makes `DIR/NAME` for every NAME, a bootable busybox tree with the host's Debian kernel
//! (the same trees the tests deploy). An existing `DIR/NAME` is replaced.

use std::path::PathBuf;
use std::process::ExitCode;

use e2e::fixture::{populate_image, FixtureImage};

fn main() -> ExitCode {
    let mut args = std::env::args_os().skip(1);
    let Some(dir) = args.next().map(PathBuf::from) else {
        eprintln!("usage: image_trees DIR NAME...");
        return ExitCode::from(2);
    };
    for name in args {
        let Some(name) = name.to_str() else {
            eprintln!("image_trees: {name:?}: not UTF-8");
            return ExitCode::from(2);
        };
        let root = dir.join(name);
        if root.exists() {
            std::fs::remove_dir_all(&root)
                .unwrap_or_else(|e| panic!("removing {}: {e}", root.display()));
        }
        std::fs::create_dir_all(&root)
            .unwrap_or_else(|e| panic!("creating {}: {e}", root.display()));
        populate_image(&root, &FixtureImage::new(name));
        println!("{}", root.display());
    }
    ExitCode::SUCCESS
}
