//! libFuzzer target: see `multiboot_fuzz::bootinfo` for the properties it checks.

#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| multiboot_fuzz::bootinfo(data));
