//! libFuzzer target: see `multiboot_fuzz::grubenv` for the properties it checks.

#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| multiboot_fuzz::grubenv(data));
