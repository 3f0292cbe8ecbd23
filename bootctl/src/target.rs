//! Which entry a TARGET names. Pure: no I/O.

use crate::exit::{fail, Code};
use crate::view::{Entry, View};

/// Resolve TARGET to an entry: a GRUB index ("2", "1>0"), a menu entry id, an image name from
/// boot-info.json (`image_name` or the provision `name`), or a title. Exact matches of every
/// kind are gathered first; only when there are none are names, ids and titles compared
/// ignoring case. More than one entry matched is an error that lists them.
pub fn resolve<'v>(view: &'v View, target: &str) -> anyhow::Result<&'v Entry> {
    let exact = candidates(view, target, |a, b| a == b);
    let found = if exact.is_empty() {
        candidates(view, target, |a, b| a.eq_ignore_ascii_case(b))
    } else {
        exact
    };
    match found.as_slice() {
        [one] => Ok(&view.entries[*one]),
        [] if view.entries.is_empty() => Err(fail(
            Code::Target,
            format!("no boot entry matches {target:?}: grub.cfg has no menu entries"),
        )),
        [] => Err(fail(
            Code::Target,
            format!(
                "no boot entry matches {target:?}; candidates: {}",
                list(view, 0..view.entries.len())
            ),
        )),
        many => Err(fail(
            Code::Target,
            format!(
                "{target:?} is ambiguous; it matches: {}; use the index or the id",
                list(view, many.iter().copied())
            ),
        )),
    }
}

/// Indices into `view.entries` that `target` names. An image name selects the image's own entry (its `grub_id`), not
/// the recovery entries of the same root, unless boot-info.json names no entry for it.
fn candidates(view: &View, target: &str, same: impl Fn(&str, &str) -> bool) -> Vec<usize> {
    let mut found = Vec::new();
    let mut add = |i: usize| {
        if !found.contains(&i) {
            found.push(i);
        }
    };
    for (i, entry) in view.entries.iter().enumerate() {
        if entry.index == target
            || same(&entry.title, target)
            || entry.id.as_deref().is_some_and(|id| same(id, target))
        {
            add(i);
        }
    }
    let named: Vec<usize> = (0..view.entries.len())
        .filter(|&i| {
            view.entries[i]
                .image_names
                .iter()
                .any(|name| same(name, target))
        })
        .collect();
    let primary: Vec<usize> = named
        .iter()
        .copied()
        .filter(|&i| view.entries[i].primary)
        .collect();
    for i in if primary.is_empty() { named } else { primary } {
        add(i);
    }
    found.sort_unstable();
    found
}

fn list(view: &View, indices: impl Iterator<Item = usize>) -> String {
    indices
        .map(|i| {
            let entry = &view.entries[i];
            let mut text = format!("{} {:?}", entry.index, entry.title);
            if let Some(id) = &entry.id {
                text.push_str(&format!(" (id {id})"));
            }
            if let Some(name) = &entry.image_name {
                text.push_str(&format!(" [image {name}]"));
            }
            text
        })
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::resolve;
    use crate::exit::{code_of, Code};
    use crate::fixtures;

    fn index_of(target: &str) -> Result<String, (Code, String)> {
        let files = fixtures::files(fixtures::fixed_cfg(), None);
        let (_, view) = fixtures::load(&files, None);
        resolve(&view, target)
            .map(|entry| entry.index.clone())
            .map_err(|err| (code_of(&err), err.to_string()))
    }

    #[test]
    fn every_kind_of_name_resolves() {
        assert_eq!(index_of("2").unwrap(), "2");
        assert_eq!(index_of("1>0").unwrap(), "1>0");
        assert_eq!(index_of("img-centos-recovery").unwrap(), "1>0");
        assert_eq!(index_of("ubuntu").unwrap(), "2", "image_name");
        assert_eq!(
            index_of("centos").unwrap(),
            "0",
            "provision name, the image's own entry"
        );
        assert_eq!(index_of("centos-7.1.1503").unwrap(), "0");
        assert_eq!(index_of("Ubuntu 14.04").unwrap(), "2", "title");
        assert_eq!(
            index_of("UBUNTU 14.04").unwrap(),
            "2",
            "case-insensitive when nothing matches exactly"
        );
    }

    #[test]
    fn unknown_targets_list_the_candidates() {
        let (code, message) = index_of("fedora").unwrap_err();
        assert_eq!(code, Code::Target);
        assert!(
            message.contains("no boot entry matches \"fedora\""),
            "{message}"
        );
        assert!(
            message.contains("2 \"Ubuntu 14.04\" [image ubuntu]"),
            "{message}"
        );
        assert!(
            message.contains("1>0 \"CentOS Linux (recovery mode)\" (id img-centos-recovery)"),
            "{message}"
        );
    }

    #[test]
    fn a_menu_without_entries_is_named_as_such() {
        let files = fixtures::files("set default=0\nset timeout=5\n".to_string(), None);
        let (_, view) = fixtures::load(&files, None);
        let err = resolve(&view, "0").unwrap_err();
        assert_eq!(code_of(&err), Code::Target);
        assert_eq!(
            err.to_string(),
            "no boot entry matches \"0\": grub.cfg has no menu entries"
        );
    }

    #[test]
    fn ambiguous_targets_list_what_they_match() {
        let files = fixtures::files(
            fixtures::fixed_cfg().replace("'Ubuntu 14.04'", "'CentOS Linux'"),
            None,
        );
        let (_, view) = fixtures::load(&files, None);
        let err = resolve(&view, "CentOS Linux").unwrap_err();
        assert_eq!(code_of(&err), Code::Target);
        let message = err.to_string();
        assert!(message.contains("is ambiguous"), "{message}");
        assert!(
            message.contains("0 \"CentOS Linux\"") && message.contains("2 \"CentOS Linux\""),
            "{message}"
        );
    }

    #[test]
    fn an_image_named_like_an_index_of_another_entry_is_ambiguous() {
        let mut files = fixtures::files(fixtures::fixed_cfg(), None);
        files.boot_info.as_mut().unwrap().elements[1].image_name = "0".into();
        let (_, view) = fixtures::load(&files, None);
        assert_eq!(code_of(&resolve(&view, "0").unwrap_err()), Code::Target);
    }
}
