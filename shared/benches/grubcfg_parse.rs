//! Benchmark: parsing a generated grub.cfg of 1,000 and 10,000 menu entries.
//! Prints the median parse time of each (target: under 10 ms for 10,000 entries) and the
//! 10k/1k ratio (about 10 for linear growth). Run: `cargo bench -p multiboot-shared`.

use std::hint::black_box;
use std::time::{Duration, Instant};

use shared::grubcfg;

/// A grub-mkconfig-like config: Debian's header, then `count` entries, every tenth of them
/// followed by a one-entry "Advanced options" submenu.
fn generated_config(count: usize) -> String {
    let mut cfg = String::from(
        "if [ -s $prefix/grubenv ]; then\n  load_env\nfi\nif [ \"${next_entry}\" ] ; then\n   set default=\"${next_entry}\"\n   set next_entry=\n   save_env next_entry\nelse\n   set default=\"0\"\nfi\n",
    );
    for i in 0..count {
        let uuid = format!("{i:08x}-d52f-4f62-a351-7358221bc51f");
        let entry = format!(
            "menuentry 'Image {i} GNU/Linux' --class gnu-linux --class os $menuentry_id_option 'image-{i}' {{\n\
             \tinsmod part_gpt\n\tinsmod ext2\n\tsearch --no-floppy --fs-uuid --set=root {uuid}\n\
             \tlinux /boot/vmlinuz-6.1.0-56-amd64 root=UUID={uuid} ro quiet\n\tinitrd /boot/initrd.img-6.1.0-56-amd64\n}}\n"
        );
        if i % 10 == 9 {
            cfg.push_str(&format!(
                "submenu 'Advanced options for image {i}' $menuentry_id_option 'advanced-{i}' {{\n"
            ));
            cfg.push_str(&entry.replace(&format!("'image-{i}'"), &format!("'image-{i}-recovery'")));
            cfg.push_str("}\n");
        } else {
            cfg.push_str(&entry);
        }
    }
    cfg
}

fn median_parse_time(cfg: &str, runs: usize) -> Duration {
    let mut times: Vec<Duration> = (0..runs)
        .map(|_| {
            let start = Instant::now();
            let menu = grubcfg::parse(black_box(cfg));
            let elapsed = start.elapsed();
            black_box(menu.expect("generated config parses"));
            elapsed
        })
        .collect();
    times.sort();
    times[runs / 2]
}

fn main() {
    let small = generated_config(1_000);
    let large = generated_config(10_000);
    let entries = grubcfg::parse(&large)
        .expect("generated config parses")
        .entries()
        .len();
    assert_eq!(entries, 10_000);
    median_parse_time(&large, 5);
    let t1k = median_parse_time(&small, 101);
    let t10k = median_parse_time(&large, 51);
    println!(
        "grub.cfg parse, 1,000 entries ({} KiB):  median {:.3} ms",
        small.len() / 1024,
        t1k.as_secs_f64() * 1e3
    );
    println!(
        "grub.cfg parse, 10,000 entries ({} KiB): median {:.3} ms (target < 10 ms: {})",
        large.len() / 1024,
        t10k.as_secs_f64() * 1e3,
        if t10k < Duration::from_millis(10) {
            "met"
        } else {
            "MISSED"
        }
    );
    println!(
        "ratio 10k/1k: {:.2} (linear growth: about 10)",
        t10k.as_secs_f64() / t1k.as_secs_f64()
    );
}
