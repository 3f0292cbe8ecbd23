//! libFuzzer target: see `multiboot_fuzz::provision` for the properties it checks.

#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| multiboot_fuzz::provision(data));
