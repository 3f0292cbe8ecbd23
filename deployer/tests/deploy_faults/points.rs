//! The fault points themselves: all exercised, none in the shipped deployer.

use super::*;

#[test]
fn the_shipped_deployer_has_no_fault_hook() {
    let has_hook = |binary: &Path| {
        let bytes = std::fs::read(binary).expect("reading the binary");
        bytes
            .windows(FAULT_ENV.len())
            .any(|w| w == FAULT_ENV.as_bytes())
    };
    assert!(
        has_hook(fault_deployer()),
        "the fault build reads {FAULT_ENV}"
    );
    assert!(
        !has_hook(plain_deployer()),
        "the shipped deployer reads {FAULT_ENV}"
    );
}

#[test]
fn every_fault_point_of_the_deployer_is_exercised() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut found = Vec::new();
    let mut dirs = vec![src];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir)
            .expect("reading deployer/src")
            .flatten()
        {
            let path = entry.path();
            if path.is_dir() {
                dirs.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") {
                let text = read(&path);
                for call in ["fault::step(\"", "fault::point(\""] {
                    found.extend(
                        text.split(call)
                            .skip(1)
                            .filter_map(|rest| rest.split('"').next())
                            .map(str::to_owned),
                    );
                }
            }
        }
    }
    found.sort();
    found.dedup();
    let mut tested: Vec<String> = STEPS.iter().map(|(p, _)| (*p).to_owned()).collect();
    tested.extend([FAILED_POINT.to_owned(), "deploy:done".to_owned()]);
    tested.sort();
    tested.dedup();
    assert_eq!(
        found, tested,
        "the fault points in deployer/src and the ones the tests use"
    );
}
