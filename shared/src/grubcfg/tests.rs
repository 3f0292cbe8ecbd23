use super::*;

fn titles(items: &[MenuItem]) -> Vec<&str> {
    items.iter().map(|i| i.title.as_str()).collect()
}

fn sub(item: &MenuItem) -> &[MenuItem] {
    match &item.kind {
        ItemKind::Submenu { items } => items,
        ItemKind::Entry { .. } => panic!("{} is not a submenu", item.title),
    }
}

fn kernel(item: &MenuItem) -> (Option<&str>, Option<&str>) {
    (item.kernel(), item.root_uuid())
}

const ADDRESSING: &str = "\
menuentry 'A' --id a { linux /a }
submenu 'Advanced' --id adv {
    menuentry 'A1' --id a1 { linux /a1 }
    menuentry 'A2' --id a2 { linux /a2 }
}
menuentry 'B' --id b { linux /b }
";

fn resolved(menu: &Menu, value: &str) -> Option<String> {
    menu.resolve(value)
        .map(|e| format!("{} {}", address(&e.path), e.item.title))
}

#[test]
fn submenu_counts_as_one_top_level_entry() {
    let menu = parse(ADDRESSING).unwrap();
    assert_eq!(titles(&menu.items), ["A", "Advanced", "B"]);
    assert_eq!(titles(sub(&menu.items[1])), ["A1", "A2"]);
    let entries: Vec<String> = menu
        .entries()
        .iter()
        .map(|e| format!("{} {}", address(&e.path), e.item.title))
        .collect();
    assert_eq!(entries, ["0 A", "1>0 A1", "1>1 A2", "2 B"]);
    assert_eq!(address(&[]), "");
    assert_eq!(address(&[7]), "7");
    assert_eq!(address(&[1, 0, 3]), "1>0>3");
}

#[test]
fn resolve_by_index_path_id_title_and_mixes() {
    let menu = parse(ADDRESSING).unwrap();
    for (value, want) in [
        ("0", "0 A"),
        ("2", "2 B"),
        ("1>1", "1>1 A2"),
        ("1>0", "1>0 A1"),
        ("b", "2 B"),
        ("B", "2 B"),
        ("adv>a2", "1>1 A2"),
        ("Advanced>A2", "1>1 A2"),
        ("Advanced>1", "1>1 A2"),
        ("adv>0", "1>0 A1"),
        ("1>A1", "1>0 A1"),
        ("1>a2", "1>1 A2"),
        // grub_strtoul: leading blanks, hex, octal, trailing junk after the digits.
        (" 2", "2 B"),
        ("0x2", "2 B"),
        ("02", "2 B"),
        ("2junk", "2 B"),
        // GRUB keeps the number in an int: 2^32 + 2 wraps to 2.
        ("4294967298", "2 B"),
        // An entry ends the walk; the rest of the path is ignored, as GRUB boots it.
        ("0>5", "0 A"),
    ] {
        assert_eq!(
            resolved(&menu, value).as_deref(),
            Some(want),
            "value {value:?}"
        );
    }
    for value in [
        // Ids and titles are only matched at the current level.
        "a2",
        "1",
        "Advanced",
        "adv",
        "Advanced>",
        "3",
        "010",
        "1>2",
        "nothing",
        "",
        "adv>nothing",
        "99999999999999999999999",
        "2147483648",
    ] {
        assert_eq!(resolved(&menu, value), None, "value {value:?}");
    }
}

#[test]
fn resolve_unescapes_double_greater_than() {
    let menu =
        parse("menuentry 'x>y' { true; }\nsubmenu 'S>T' { menuentry 'E' --id 'e>1' { true; } }\n")
            .unwrap();
    assert_eq!(resolved(&menu, "x>>y").as_deref(), Some("0 x>y"));
    assert_eq!(resolved(&menu, "S>>T>E").as_deref(), Some("1>0 E"));
    assert_eq!(resolved(&menu, "S>>T>e>>1").as_deref(), Some("1>0 E"));
    assert_eq!(resolved(&menu, "x>y"), None);
}

#[test]
fn a_name_starting_with_greater_than_cannot_follow_a_separator() {
    // Found by fuzzing (fuzz/artifacts-kept/grubcfg/crash-b43d63ce...): in GRUB's
    // `default` syntax `>>` is an escaped `>` and is read before a separator, so after
    // `S>` a name starting with `>` cannot be written: "S>>>x" reads as "S>" then "x".
    // Such an entry is still reached by its index.
    let menu =
        parse("submenu S { menuentry '>x' { true; } }\nsubmenu 'S>' { menuentry x { true; } }\n")
            .unwrap();
    assert_eq!(resolved(&menu, "S>>>x").as_deref(), Some("1>0 x"));
    assert_eq!(resolved(&menu, "S>0").as_deref(), Some("0>0 >x"));
    assert_eq!(resolved(&menu, "0>0").as_deref(), Some("0>0 >x"));
    assert_eq!(resolved(&menu, ">>x"), None);
}

#[test]
fn names_compare_as_c_strings_up_to_a_nul() {
    // Found by fuzzing (fuzz/artifacts-kept/grubcfg/crash-cf3ee1b2...): GRUB compares
    // titles and ids as C strings, so a value holding a NUL matches up to the NUL. (A
    // grub.cfg holding one, as that input did, is refused as a whole now.)
    let menu = parse(
        "submenu 'Advanced' --id adv {\n    menuentry 'A1' --id a2 { true; }\n    \
             menuentry 'A2' $menuentry_id_option a2x { true; }\n}\n",
    )
    .unwrap();
    assert_eq!(resolved(&menu, "adv>a2\0\0x").as_deref(), Some("0>0 A1"));
    assert_eq!(resolved(&menu, "adv>a2x").as_deref(), Some("0>1 A2"));
    assert_eq!(
        parse("menuentry 'A1' --id a2\0\0x { true; }\n"),
        Err(ParseError::NulByte { line: 1 })
    );
}

#[test]
fn nested_submenus_classes_ids_and_kernels() {
    let text = r#"# leading comment
set timeout=5
menuentry 'Alpha' --class alpha --class=os --id alpha-id {
	linux /boot/vmlinuz-a root=UUID=aaaa-1111 ro quiet
	initrd /boot/initrd-a
}
submenu "Advanced \"options\"" $menuentry_id_option 'adv' {
	menuentry 'Alpha, recovery' ${menuentry_id_option} adv-rec {
		linux16 /boot/vmlinuz-a root=UUID=aaaa-1111 single
	}
	submenu 'Deeper' --id=deep {
		menuentry 'Deep one' { linuxefi /deep root=/dev/sda1 ; }
		menuentry 'No kernel' { chainloader +1 }
	}
}
"#;
    let menu = parse(text).unwrap();
    assert_eq!(titles(&menu.items), ["Alpha", "Advanced \"options\""]);
    let alpha = &menu.items[0];
    assert_eq!(alpha.id.as_deref(), Some("alpha-id"));
    assert_eq!(alpha.classes, ["alpha", "os"]);
    assert_eq!(alpha.line, 3);
    assert_eq!(kernel(alpha), (Some("/boot/vmlinuz-a"), Some("aaaa-1111")));
    let ItemKind::Entry { body, .. } = &alpha.kind else {
        unreachable!()
    };
    assert_eq!(
        body,
        "\n\tlinux /boot/vmlinuz-a root=UUID=aaaa-1111 ro quiet\n\tinitrd /boot/initrd-a\n"
    );

    let adv = &menu.items[1];
    assert_eq!((adv.id.as_deref(), adv.line), (Some("adv"), 7));
    let inner = sub(adv);
    assert_eq!(titles(inner), ["Alpha, recovery", "Deeper"]);
    assert_eq!(inner[0].id.as_deref(), Some("adv-rec"));
    assert_eq!(
        kernel(&inner[0]),
        (Some("/boot/vmlinuz-a"), Some("aaaa-1111"))
    );
    assert_eq!(inner[1].id.as_deref(), Some("deep"));
    let deeper = sub(&inner[1]);
    assert_eq!(kernel(&deeper[0]), (Some("/deep"), None));
    assert_eq!(kernel(&deeper[1]), (None, None));
    assert_eq!(deeper[1].line, 13);
    assert_eq!(
        resolved(&menu, "adv>deep>Deep one").as_deref(),
        Some("1>1>0 Deep one")
    );
    assert_eq!(resolved(&menu, "1>1>1").as_deref(), Some("1>1>1 No kernel"));
}

#[test]
fn quote_styles_and_escapes() {
    let text = r#"menuentry 'single "dq" $x {}' { true; }
menuentry "a \"q\" \\ \$x $y ${z} \n {" { true; }
menuentry Bare\ word { true; }
menuentry "a"'b'c\'d { true; }
menuentry 'it'\''s' { true; }
menuentry $"Translated \"x\"" { true; }
menuentry 'multi
line' { true; }
menuentry "dq \
joined" --id \
  'continued' { true; }
menuentry 'last' { true; }
"#;
    let menu = parse(text).unwrap();
    assert_eq!(
        titles(&menu.items),
        [
            "single \"dq\" $x {}",
            "a \"q\" \\ $x $y ${z} \\n {",
            "Bare word",
            "abc'd",
            "it's",
            "Translated \"x\"",
            "multi\nline",
            "dq joined",
            "last",
        ]
    );
    let lines: Vec<usize> = menu.items.iter().map(|i| i.line).collect();
    assert_eq!(lines, [1, 2, 3, 4, 5, 6, 7, 9, 12]);
    assert_eq!(menu.items[7].id.as_deref(), Some("continued"));
    let translated = parse(r#"menuentry $"t \\ $v \$" { true; }"#).unwrap();
    assert_eq!(
        translated.items[0].title, r"t \\ $v \$",
        "`\\\\` kept, `$` literal"
    );
}

#[test]
fn menuentry_options_follow_grub_argument_parsing() {
    let text = r#"menuentry --id=first 'T1' --class a --unrestricted --hotkey=x --users root { true; }
menuentry 'T2' --id one --id two --class=b --class c { true; }
menuentry --frobnicate 'T3' { true; }
menuentry 'T4' --frob=1 --weird { true; }
menuentry -x 'T5' { true; }
menuentry -- --id { true; }
menuentry 'T7' --class { true; }
menuentry 'T8' --source "linux /src root=UUID=s-1"
"#;
    let menu = parse(text).unwrap();
    assert_eq!(
        titles(&menu.items),
        ["T1", "T2", "--frobnicate", "T4", "-x", "--id", "T7", "T8"]
    );
    assert_eq!(menu.items[0].id.as_deref(), Some("first"));
    assert_eq!(menu.items[0].classes, ["a"]);
    assert_eq!(menu.items[1].id.as_deref(), Some("two"));
    assert_eq!(menu.items[1].classes, ["b", "c"]);
    assert_eq!(menu.items[5].id, None);
    assert!(menu.items[6].classes.is_empty());
    let ItemKind::Entry {
        body,
        kernel,
        root_uuid,
        ..
    } = &menu.items[7].kind
    else {
        unreachable!()
    };
    assert_eq!(body, "linux /src root=UUID=s-1");
    assert_eq!(
        (kernel.as_deref(), root_uuid.as_deref()),
        (Some("/src"), Some("s-1"))
    );
    // As in GRUB, --users takes the next word when it does not start with '-'.
    assert_eq!(
        parse("menuentry --users 'T' { true; }"),
        Err(ParseError::MissingTitle {
            line: 1,
            keyword: "menuentry"
        })
    );
}

#[test]
fn entries_inside_if_and_loops_count_but_not_in_functions() {
    let text = r#"if [ "${grub_platform}" = "efi" ]; then
	menuentry 'Firmware {setup}' --unrestricted { fwsetup; }
elif true; then
	menuentry "Has # hash" { echo "}" ; }
else
	menuentry Other { echo '{' }
fi
function hidden {
	menuentry 'Not an item' { true; }
	set default=3
}
function empty
{
	true
}
for k in a b; do
	menuentry "K $k" { linux /vmlinuz-$k }
done
while false; do menuentry 'W' { true; }; done
until true; do if true; then submenu 'U' { menuentry 'U1' { true; } }; fi; done
"#;
    let menu = parse(text).unwrap();
    assert_eq!(
        titles(&menu.items),
        ["Firmware {setup}", "Has # hash", "Other", "K $k", "W", "U"]
    );
    assert_eq!(kernel(&menu.items[3]), (Some("/vmlinuz-$k"), None));
    assert_eq!(titles(sub(&menu.items[5])), ["U1"]);
    assert_eq!(menu.defaults.len(), 1);
    assert_eq!(
        (menu.defaults[0].value.as_str(), menu.defaults[0].line),
        ("3", 10)
    );
}

#[test]
fn braces_hash_and_comments() {
    let text = r##"# menuentry 'commented' {
menuentry 'a#b' --id x#y { echo #comment }
}
menuentry c { echo a#b; echo "#}" '#}' \}; }   # trailing comment {
	# menuentry 'also commented' {
"##;
    let menu = parse(text).unwrap();
    assert_eq!(titles(&menu.items), ["a#b", "c"]);
    assert_eq!(menu.items[0].id.as_deref(), Some("x#y"));
    let ItemKind::Entry { body, .. } = &menu.items[0].kind else {
        unreachable!()
    };
    assert_eq!(body, " echo #comment }\n");
    let text = "menuentry 'x' { true; }; menuentry 'y' {\ntrue\n}\n";
    assert_eq!(titles(&parse(text).unwrap().items), ["x", "y"]);
}

#[test]
fn missing_block_on_the_same_line_is_an_error() {
    // GRUB reads a block only on the menuentry's own line; a newline or `;` ends it.
    assert_eq!(
        parse("menuentry 'a'\n{\n}\n"),
        Err(ParseError::MissingBlock {
            line: 1,
            keyword: "menuentry"
        })
    );
    assert_eq!(
        parse("\nmenuentry 'a';{ true; }\n"),
        Err(ParseError::MissingBlock {
            line: 2,
            keyword: "menuentry"
        })
    );
}

#[test]
fn default_assignments_values_spans_and_literals() {
    let text = r#"set default=0
set default="1>1"
default='Alpha'
if true; then set default=$next_entry; fi
set "default=odd"
set default=
submenu s { set default=9; menuentry x { set default=8; } }
set default="${saved_entry}"
"#;
    let menu = parse(text).unwrap();
    let got: Vec<(&str, bool, &str, usize)> = menu
        .defaults
        .iter()
        .map(|d| {
            (
                d.value.as_str(),
                d.literal,
                &text[d.value_span.clone()],
                d.line,
            )
        })
        .collect();
    assert_eq!(
        got,
        [
            ("0", true, "0", 1),
            ("1>1", true, "\"1>1\"", 2),
            ("Alpha", true, "'Alpha'", 3),
            ("$next_entry", false, "$next_entry", 4),
            ("odd", false, "\"default=odd\"", 5),
            ("", true, "", 6),
            ("${saved_entry}", false, "\"${saved_entry}\"", 8),
        ]
    );
    assert!(menu.reads_saved_entry);
    assert!(menu.reads_next_entry);
    assert!(!menu.loads_env);
}

#[test]
fn env_flags_come_from_the_script_not_from_entries() {
    let header = r#"if [ -s $prefix/grubenv ]; then
  set have_grubenv=true
  load_env
fi
if [ "${next_entry}" ] ; then
   set default="${next_entry}"
   set next_entry=
else
   set default="0"
fi
"#;
    let menu = parse(header).unwrap();
    assert!(menu.loads_env && menu.reads_next_entry && !menu.reads_saved_entry);
    let menu =
        parse("menuentry a { load_env; echo $next_entry; set default=$saved_entry; }").unwrap();
    assert!(!menu.loads_env && !menu.reads_next_entry && !menu.reads_saved_entry);
    assert!(menu.defaults.is_empty());
    let menu = parse("set next_entry=\nset saved_entry=x\nsave_env saved_entry\n").unwrap();
    assert!(!menu.reads_next_entry && !menu.reads_saved_entry);
}

#[test]
fn every_error_names_its_line() {
    let cases: Vec<(&str, ParseError)> = vec![
        (
            "menuentry a { true; }\n\n}\n",
            ParseError::UnbalancedBrace { line: 3 },
        ),
        (
            "menuentry a {\n linux '/x\n}\n",
            ParseError::UnterminatedQuote {
                line: 2,
                quote: '\'',
            },
        ),
        (
            "\necho \"abc\n\n",
            ParseError::UnterminatedQuote {
                line: 2,
                quote: '"',
            },
        ),
        (
            "\n\necho $\"abc",
            ParseError::UnterminatedQuote {
                line: 3,
                quote: '"',
            },
        ),
        (
            "true\nmenuentry {\n}\n",
            ParseError::MissingTitle {
                line: 2,
                keyword: "menuentry",
            },
        ),
        (
            "submenu --class x {\n}\n",
            ParseError::MissingTitle {
                line: 1,
                keyword: "submenu",
            },
        ),
        (
            "\nsubmenu 'x'\n",
            ParseError::MissingBlock {
                line: 2,
                keyword: "submenu",
            },
        ),
        (
            "function f\n\ntrue\n",
            ParseError::MissingBlock {
                line: 1,
                keyword: "function",
            },
        ),
        (
            "function\n",
            ParseError::MissingBlock {
                line: 1,
                keyword: "function",
            },
        ),
        (
            "submenu 'a' {\n menuentry 'b' {\n }\n",
            ParseError::Unclosed {
                line: 1,
                opener: "submenu",
            },
        ),
        (
            "true\nfunction f {\n",
            ParseError::Unclosed {
                line: 2,
                opener: "function",
            },
        ),
        (
            "echo {\n",
            ParseError::Unclosed {
                line: 1,
                opener: "{",
            },
        ),
        (
            "if true; then\n menuentry a { x }\n",
            ParseError::Unclosed {
                line: 1,
                opener: "if",
            },
        ),
        (
            "menuentry 'a' {\n if x; then }\n",
            ParseError::Unclosed {
                line: 2,
                opener: "if",
            },
        ),
        (
            "for x in a; do\nif true; then\ndone\n",
            ParseError::Unclosed {
                line: 2,
                opener: "if",
            },
        ),
        (
            "menuentry 'a' {\n\tlinux /vmlinuz\0}\n}\n",
            ParseError::NulByte { line: 2 },
        ),
        (
            "true\nfi\n",
            ParseError::UnexpectedKeyword {
                line: 2,
                keyword: "fi",
                expected: "if",
            },
        ),
        (
            "then\n",
            ParseError::UnexpectedKeyword {
                line: 1,
                keyword: "then",
                expected: "if",
            },
        ),
        (
            "\n\ndone\n",
            ParseError::UnexpectedKeyword {
                line: 3,
                keyword: "done",
                expected: "for/while/until",
            },
        ),
    ];
    for (text, want) in cases {
        let err = parse(text).unwrap_err();
        assert_eq!(err, want, "text {text:?}");
        assert!(
            err.to_string()
                .starts_with(&format!("line {}: ", want.line())),
            "{err}"
        );
    }
}

#[test]
fn nesting_is_capped() {
    let deep_ifs = "if true; then\n".repeat(100);
    assert_eq!(parse(&deep_ifs), Err(ParseError::TooDeep { line: 65 }));
    let deep_submenus = "submenu 'x' {\n".repeat(100);
    assert_eq!(parse(&deep_submenus), Err(ParseError::TooDeep { line: 65 }));
    assert_eq!(
        parse(&"{ ".repeat(100_000)),
        Err(ParseError::TooDeep { line: 1 })
    );
    let ok = format!(
        "{}menuentry 'deep' {{ true; }}\n{}",
        "submenu 's' {\n".repeat(60),
        "}\n".repeat(60)
    );
    let menu = parse(&ok).unwrap();
    assert_eq!(menu.entries()[0].path, vec![0; 61]);
    assert_eq!(
        resolved(&menu, &["0"; 61].join(">"))
            .as_deref()
            .map(|s| s.ends_with(" deep")),
        Some(true)
    );
}

#[test]
fn no_panic_on_junk_or_truncations() {
    let sample = include_str!("../../tests/data/grub/debian-os-prober.cfg");
    for end in (0..=sample.len()).filter(|&i| sample.is_char_boundary(i)) {
        let _ = parse(&sample[..end]);
        let _ = parse(&sample[end..]);
    }
    let pieces: &[&[u8]] = &[
        b"{",
        b"}",
        b"'",
        b"\"",
        b"\\",
        b"$",
        b"${",
        b"#",
        b";",
        b"\n",
        b" ",
        b"menuentry ",
        b"submenu ",
        b"if ",
        b"fi",
        b"then ",
        b"for ",
        b"do ",
        b"done",
        b"function ",
        b"set default=",
        b"--id",
        b">",
        b"\xff",
        b"\xc3",
        b"\0",
        b"x",
    ];
    let mut state = 0x2545_f491_4f6c_dd1du64;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    for _ in 0..20_000 {
        let mut bytes = Vec::new();
        for _ in 0..next() % 60 {
            let r = next();
            if r % 4 == 0 {
                bytes.push((r >> 8) as u8);
            } else {
                bytes.extend_from_slice(pieces[(r >> 8) as usize % pieces.len()]);
            }
        }
        let text = String::from_utf8_lossy(&bytes);
        if let Ok(menu) = parse(&text) {
            let _ = menu.entries();
            let _ = menu.resolve(&text);
            let out = set_fixed_default(&text, &menu, "0");
            assert!(parse(&out).is_ok(), "{text:?} -> {out:?}");
        }
    }
}

#[test]
fn quote_reads_back_exactly() {
    for s in [
        "plain",
        "with space",
        "it's",
        "'",
        "''",
        "a\\b",
        "$var",
        "x>y",
        "\"dq\"",
        "t\ta",
        "n\nl",
        "{}",
        "#",
        "",
    ] {
        let text = format!("set default={}\n", quote(s));
        let menu = parse(&text).unwrap();
        assert_eq!(menu.defaults.len(), 1);
        assert_eq!(menu.defaults[0].value, s);
        assert!(menu.defaults[0].literal);
    }
    assert_eq!(quote("it's"), r"'it'\''s'");
}

#[test]
fn set_fixed_default_rewrites_only_literal_values() {
    let text = "set default=0\nif [ \"${next_entry}\" ]; then\n  set default=\"${next_entry}\"\nelse\n  default=\"2\"\nfi\n"
            .to_owned()
            + ADDRESSING;
    let menu = parse(&text).unwrap();
    let out = set_fixed_default(&text, &menu, "Advanced>A2");
    let want = text
        .replacen("set default=0", "set default='Advanced>A2'", 1)
        .replacen("default=\"2\"", "default='Advanced>A2'", 1);
    assert_eq!(out, want);
    let again = parse(&out).unwrap();
    let literal: Vec<&str> = again
        .defaults
        .iter()
        .filter(|d| d.literal)
        .map(|d| d.value.as_str())
        .collect();
    assert_eq!(literal, ["Advanced>A2", "Advanced>A2"]);
    assert_eq!(resolved(&again, literal[0]).as_deref(), Some("1>1 A2"));
    assert_eq!(without_offsets(&again.items), without_offsets(&menu.items));
}

/// `items` without the byte offsets of their boot files, which an edit before them moves.
fn without_offsets(items: &[MenuItem]) -> Vec<MenuItem> {
    items
        .iter()
        .map(|item| {
            let mut item = item.clone();
            match &mut item.kind {
                ItemKind::Submenu { items } => *items = without_offsets(items),
                ItemKind::Entry { files, .. } => *files = BootFileSpans::default(),
            }
            item
        })
        .collect()
}

#[test]
fn set_fixed_default_inserts_after_leading_comments() {
    let text = "#\n# generated\n\n  # indented comment\nif [ x ]; then\n  set default=\"${saved_entry}\"\nfi\n"
            .to_owned()
            + ADDRESSING;
    let menu = parse(&text).unwrap();
    let out = set_fixed_default(&text, &menu, "b");
    let at = text.find("if [").unwrap();
    assert_eq!(
        out,
        format!("{}set default='b'\n{}", &text[..at], &text[at..])
    );
    let again = parse(&out).unwrap();
    assert_eq!(
        (again.defaults[0].value.as_str(), again.defaults[0].line),
        ("b", 5)
    );
    assert_eq!(resolved(&again, "b").as_deref(), Some("2 B"));

    let empty = parse("").unwrap();
    assert_eq!(set_fixed_default("", &empty, "0"), "set default='0'\n");
    let comments = "# only\n# comments";
    let menu = parse(comments).unwrap();
    assert_eq!(
        set_fixed_default(comments, &menu, "x"),
        "# only\n# comments\nset default='x'\n"
    );
}

#[test]
fn boot_file_spans_point_at_the_kernel_and_initrd_words() {
    let text = "menuentry 'A' {\n\tset mb_booted='a'\n\tsave_env mb_booted\n\
                \tlinux '/boot/vmlinuz-6.1' root=UUID=u ro\n\
                \tinitrd /boot/ucode.img \"/boot/initrd.img-6.1\"\n}\n\
                menuentry 'B' { linux /vmlinuz-2; initrd /i-2; linux /other }\n\
                menuentry 'C' --source 'linux /k'\n";
    let menu = parse(text).unwrap();
    let a = menu.items[0].boot_files().unwrap();
    assert_eq!(&text[a.kernel.clone().unwrap()], "'/boot/vmlinuz-6.1'");
    assert!(text[..a.kernel_command_end].ends_with("root=UUID=u ro"));
    let initrd: Vec<(&str, &str)> = a
        .initrd
        .iter()
        .map(|(value, span)| (value.as_str(), &text[span.clone()]))
        .collect();
    assert_eq!(
        initrd,
        [
            ("/boot/ucode.img", "/boot/ucode.img"),
            ("/boot/initrd.img-6.1", "\"/boot/initrd.img-6.1\""),
        ]
    );
    assert!(menu.items[0].stamps_boot() && !menu.items[1].stamps_boot());
    let b = menu.items[1].boot_files().unwrap();
    assert_eq!(
        &text[b.kernel.clone().unwrap()],
        "/vmlinuz-2",
        "the first linux"
    );
    assert_eq!(b.initrd.len(), 1);
    let c = menu.items[2].boot_files().unwrap();
    assert_eq!(
        c,
        &BootFileSpans::default(),
        "--source offsets are not the text's"
    );
    assert!(!menu.reads_try);
    assert!(
        parse("if [ \"${mb_try}\" ]; then set default=\"${mb_try}\"; fi")
            .unwrap()
            .reads_try
    );
}

/// grub.cfg as Bareon's `_generate_boot_info` (bareon/drivers/deploy/generic.py) writes it:
/// its template's indentation, `'NAME'{` with no space, no newline after `set default=0`.
const BAREON: &str = "\n    set timeout=1\n    insmod part_gpt\n    insmod ext2\n        \n    \
menuentry 'Fixture A (on /dev/sda3)'{\n    search --no-floppy --fs-uuid --set=root \
2abf123d-d52f-4f62-a351-7358221bc51f\n    linux /boot/vmlinuz-6.1.0-13-amd64 \
root=UUID=2abf123d-d52f-4f62-a351-7358221bc51f ro console=ttyS0\n    initrd \
/boot/initrd.img-6.1.0-13-amd64\n    }\n    \n    menuentry 'Fixture B (on /dev/sda4)'{\n    \
search --no-floppy --fs-uuid --set=root 688c5f1e-dc46-4aca-a90e-be21ba8aa3e2\n    linux \
/boot/vmlinuz-6.1.0-13-amd64 root=UUID=688c5f1e-dc46-4aca-a90e-be21ba8aa3e2 ro console=ttyS0\n    \
initrd /boot/initrd.img-6.1.0-13-amd64\n    }\n    set default=0";

#[test]
fn bareons_grub_cfg_parses_with_its_fixed_default() {
    let menu = parse(BAREON).unwrap();
    let titles: Vec<&str> = menu
        .entries()
        .iter()
        .map(|e| e.item.title.as_str())
        .collect();
    assert_eq!(
        titles,
        ["Fixture A (on /dev/sda3)", "Fixture B (on /dev/sda4)"]
    );
    assert_eq!(
        menu.entries()[1].item.root_uuid(),
        Some("688c5f1e-dc46-4aca-a90e-be21ba8aa3e2")
    );
    assert!(!menu.loads_env && !menu.reads_next_entry && !menu.reads_saved_entry);
    let literal: Vec<&str> = menu.defaults.iter().map(|d| d.value.as_str()).collect();
    assert_eq!(literal, ["0"]);
}

#[test]
fn set_fixed_default_on_bareons_grub_cfg_edits_as_bareon_ironics_sed_does() {
    let menu = parse(BAREON).unwrap();
    // bareon-ironic's switch_boot: sed -i 's/\(set default=\)[0-9]*/\1N/' boot/grub2/grub.cfg
    let sed = |text: &str, n: &str| text.replace("set default=0", &format!("set default={n}"));
    let out = set_fixed_default(BAREON, &menu, "1");
    assert_eq!(out, sed(BAREON, "1"));
    let back = set_fixed_default(&out, &parse(&out).unwrap(), "0");
    assert_eq!(back, BAREON);
    // A value that is no plain word is still quoted.
    let odd = set_fixed_default(BAREON, &menu, "1>0");
    assert!(odd.ends_with("set default='1>0'"), "{odd}");
}
