//! libFuzzer target: see `multiboot_fuzz::grubcfg` for the properties it checks.

#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| multiboot_fuzz::grubcfg(data));
