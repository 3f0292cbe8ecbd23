//! Writes a raw filesystem image onto a partition (or file) with the deployer's raw
//! writer, [`deployer::apply::raw::write_raw`]: zero blocks and holes skipped, fsync at
//! the end. Used by `bench/deploy-raw`.
//!
//! Usage: `raw_write IMAGE DEVICE`; prints the bytes of the image and the bytes written.

use std::path::Path;
use std::process::ExitCode;

fn main() -> ExitCode {
    let args: Vec<std::ffi::OsString> = std::env::args_os().skip(1).collect();
    let [image, device] = args.as_slice() else {
        eprintln!("usage: raw_write IMAGE DEVICE");
        return ExitCode::from(2);
    };
    match deployer::apply::raw::write_raw(Path::new(image), Path::new(device)) {
        Ok(report) => {
            println!(
                "{} bytes of image, {} bytes written",
                report.image_bytes, report.written
            );
            ExitCode::SUCCESS
        }
        Err(err) => {
            eprintln!("raw_write: {err:#}");
            ExitCode::FAILURE
        }
    }
}
