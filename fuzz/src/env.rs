use shared::grubenv::{GrubEnv, GrubEnvError, BLOCK_SIZE};

use crate::check_one_line;

/// grubenv: `shared::grubenv::GrubEnv::{parse, to_bytes, set, unset}`.
///
/// The whole input is parsed as a block (only 1024 bytes can succeed). Then its first
/// 1024 bytes, padded with `#`, are the block checked; the bytes after them are operations
/// applied to that environment (or to a new one, if the block does not parse): a tag byte,
/// even for `set` and odd for `unset`, a length byte and that many bytes of name, and for
/// `set` a length byte and that many bytes of value (names and values lossily UTF-8).
pub fn grubenv(data: &[u8]) {
    if data.len() != BLOCK_SIZE {
        match GrubEnv::parse(data) {
            Err(GrubEnvError::WrongSize { len }) if len == data.len() => {}
            other => panic!("a {}-byte block parses as {other:?}", data.len()),
        }
    }
    let (head, mut ops) = data.split_at(data.len().min(BLOCK_SIZE));
    let mut block = head.to_vec();
    block.resize(BLOCK_SIZE, b'#');
    let mut env = match GrubEnv::parse(&block) {
        Ok(env) => {
            check_env_round_trip(&env);
            env
        }
        Err(err) => {
            check_one_line("grubenv", &err.to_string());
            GrubEnv::new()
        }
    };
    while let Some((&tag, rest)) = ops.split_first() {
        let (key, rest) = take_counted(rest);
        ops = rest;
        let before: Vec<(String, String)> = pairs(&env);
        let mut want: Vec<(String, String)> =
            before.iter().filter(|(k, _)| *k != key).cloned().collect();
        if tag % 2 == 0 {
            let (value, rest) = take_counted(ops);
            ops = rest;
            let storable = key_is_storable(&key) && !value.contains('\0');
            match env.set(&key, &value) {
                Ok(()) => {
                    assert!(storable, "set({key:?}, {value:?}) is accepted");
                    match before.iter().position(|(k, _)| *k == key) {
                        Some(at) => want.insert(at, (key.clone(), value.clone())),
                        None => want.push((key.clone(), value.clone())),
                    }
                }
                Err(err) => {
                    assert!(!storable, "set({key:?}, {value:?}) is refused: {err}");
                    check_one_line("grubenv set", &err.to_string());
                    want = before.clone();
                }
            }
            assert_eq!(pairs(&env), want, "after set({key:?}, {value:?})");
        } else {
            env.unset(&key);
            assert_eq!(pairs(&env), want, "after unset({key:?})");
        }
        check_env_round_trip(&env);
    }
}

/// A byte `n` and the `n` bytes after it as a string (lossily UTF-8), and what follows.
fn take_counted(bytes: &[u8]) -> (String, &[u8]) {
    let Some((&len, rest)) = bytes.split_first() else {
        return (String::new(), bytes);
    };
    let (text, rest) = rest.split_at(rest.len().min(usize::from(len)));
    (String::from_utf8_lossy(text).into_owned(), rest)
}

fn pairs(env: &GrubEnv) -> Vec<(String, String)> {
    env.iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect()
}

/// What `GrubEnv::set` documents it accepts as a name: not empty, not starting with `#`,
/// without `=`, newline or NUL.
fn key_is_storable(key: &str) -> bool {
    !key.is_empty() && !key.starts_with('#') && !key.contains(['=', '\n', '\0'])
}

/// `env` writes to exactly 1024 bytes that parse back to `env`, or is too large to fit.
fn check_env_round_trip(env: &GrubEnv) {
    match env.to_bytes() {
        Ok(bytes) => {
            assert_eq!(
                bytes.len(),
                BLOCK_SIZE,
                "to_bytes gives a wrong-sized block"
            );
            match GrubEnv::parse(&bytes) {
                Ok(again) => assert_eq!(&again, env, "to_bytes then parse changes it"),
                Err(err) => panic!("to_bytes gives a block that does not parse: {err}"),
            }
        }
        Err(GrubEnvError::TooLarge { needed }) => {
            assert!(needed > BLOCK_SIZE, "too large at {needed} bytes")
        }
        Err(err) => panic!("to_bytes fails: {err}"),
    }
}
