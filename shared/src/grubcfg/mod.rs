//! grub.cfg menu model: the menu a GRUB script builds, its `default` assignments, and
//! GRUB's own resolution of a `default` value to a menu entry.
//!
//! [`parse`] reads the subset of GRUB script that determines the menu, in one pass over the
//! text, with GRUB's lexical rules (quotes, escapes, `#` comments, `\`-newline continuation,
//! `;` and newline separators, `{`/`}` always being tokens outside quotes).
//!
//! Which `menuentry`/`submenu` commands become menu items:
//! - at the top level and inside a submenu's block: every one, including those inside
//!   `if`/`elif`/`else` branches (each branch's entries are counted, as written) and inside
//!   `for`/`while`/`until` bodies (counted once, as written);
//! - inside `function` bodies, menu entry bodies and the blocks of other commands: none
//!   (a function body creates nothing until it is called).
//!
//! `default` assignments, `load_env` and reads of `next_entry` are recorded at the top level,
//! in its `if`/loop bodies and in function bodies, but not inside menu entries or submenus
//! (there they belong to the entry, or to the submenu's own default). Variables are never
//! expanded: a word keeps `$name`/`${name}` as written. `source`/`configfile` are not followed.

use std::ops::Range;

use parser::{Globals, Mode, Parser};

mod edit;
mod lexer;
mod parser;
mod resolve;
#[cfg(test)]
mod tests;

pub use edit::{quote, set_fixed_default};
pub use resolve::address;

/// Deepest nesting of blocks, `if`s and loops [`parse`] accepts.
pub const MAX_DEPTH: usize = 64;

/// The menu a grub.cfg builds, plus what decides its default entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Menu {
    /// Top-level menu, in order.
    pub items: Vec<MenuItem>,
    /// Every `default` assignment, in file order.
    pub defaults: Vec<DefaultAssignment>,
    /// A `default` assignment reads `$saved_entry`.
    pub reads_saved_entry: bool,
    /// The script reads `$next_entry`.
    pub reads_next_entry: bool,
    /// The script reads `$mb_try` ([`TRY_VARIABLE`]): it boots a trial entry and counts
    /// its tries down, as the deployer's grub.cfg does.
    pub reads_try: bool,
    /// The script calls `load_env`.
    pub loads_env: bool,
}

/// One `menuentry` or `submenu`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MenuItem {
    /// The title (first non-option argument), variables unexpanded.
    pub title: String,
    /// `--id` (or `$menuentry_id_option`) value; GRUB uses the title when absent.
    pub id: Option<String>,
    /// `--class` values, in order.
    pub classes: Vec<String>,
    /// 1-based line of the `menuentry`/`submenu` keyword.
    pub line: usize,
    /// Entry or submenu.
    pub kind: ItemKind,
}

/// What a menu item is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ItemKind {
    /// A bootable entry.
    Entry {
        /// The text between the braces (or the `--source` string).
        body: String,
        /// First argument of the first `linux`/`linux16`/`linuxefi` command.
        kernel: Option<String>,
        /// `root=UUID=` value on that command line.
        root_uuid: Option<String>,
        /// Where the kernel and initrd words lie in the parsed text, for editing them.
        files: BootFileSpans,
        /// The entry runs `save_env mb_booted` ([`BOOT_STAMP`]): GRUB records that it booted it.
        stamps_boot: bool,
    },
    /// A submenu and its items.
    Submenu {
        /// The submenu's items, in order.
        items: Vec<MenuItem>,
    },
}

/// Where an entry's boot files are named in the parsed text. Empty for an entry read from
/// `--source` (its offsets would be into that string).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BootFileSpans {
    /// The kernel word of the first `linux` command.
    pub kernel: Option<Range<usize>>,
    /// The end of that command's last word: where a line can be added after it.
    pub kernel_command_end: usize,
    /// The words of the first `initrd` command, each with its byte range.
    pub initrd: Vec<(String, Range<usize>)>,
}

/// The grubenv variable a trial boot names its entry in (`bootctl switch --try`).
pub const TRY_VARIABLE: &str = "mb_try";

/// The grubenv variable holding how many boots of a trial are left.
pub const TRY_LEFT: &str = "mb_try_left";

/// The grubenv variable GRUB sets to the trial entry when it gives up on it.
pub const TRY_FAILED: &str = "mb_try_failed";

/// The most tries of a trial boot a generated grub.cfg counts down from.
pub const MAX_TRIES: u32 = 9;

/// The grubenv variable each entry of the deployer's grub.cfg sets to its own id and saves
/// as it boots: proof that GRUB booted it and could write grubenv.
pub const BOOT_STAMP: &str = "mb_booted";

/// One `set default=VALUE` or `default=VALUE`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DefaultAssignment {
    /// The value with quoting removed (variables unexpanded).
    pub value: String,
    /// No variable expansion, and `default=` written plainly: the value word can be
    /// rewritten in place. (For a quoted `"default=..."` the span is the whole word.)
    pub literal: bool,
    /// Byte range of the value word in the parsed text.
    pub value_span: Range<usize>,
    /// 1-based line of the assignment.
    pub line: usize,
}

/// A bootable (non-submenu) entry and its position.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EntryRef<'a> {
    /// Index at each menu level.
    pub path: Vec<usize>,
    /// The entry.
    pub item: &'a MenuItem,
}

/// Why a grub.cfg could not be parsed; every variant names a 1-based line.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    /// A `}` with no open block.
    #[error("line {line}: `}}` without a matching `{{`")]
    UnbalancedBrace {
        /// Line of the `}`.
        line: usize,
    },
    /// A quote never closed.
    #[error("line {line}: unterminated {quote} quote")]
    UnterminatedQuote {
        /// Line where the quote opens.
        line: usize,
        /// `'` or `"`.
        quote: char,
    },
    /// `menuentry`/`submenu` without a title argument.
    #[error("line {line}: `{keyword}` without a title")]
    MissingTitle {
        /// Line of the keyword.
        line: usize,
        /// `menuentry` or `submenu`.
        keyword: &'static str,
    },
    /// `menuentry`/`submenu`/`function` not followed by its `{ ... }` block.
    #[error("line {line}: `{keyword}` is not followed by its `{{ ... }}` block")]
    MissingBlock {
        /// Line of the keyword.
        line: usize,
        /// `menuentry`, `submenu` or `function`.
        keyword: &'static str,
    },
    /// A block, `if` or loop still open at the end of the text or at its enclosing `}`.
    #[error("line {line}: `{opener}` is never closed")]
    Unclosed {
        /// Line of the opener.
        line: usize,
        /// What was opened: a keyword or `{`.
        opener: &'static str,
    },
    /// `then`/`elif`/`else`/`fi` outside an `if`, or `do`/`done` outside a loop.
    #[error("line {line}: `{keyword}` without a matching `{expected}`")]
    UnexpectedKeyword {
        /// Line of the keyword.
        line: usize,
        /// The keyword found.
        keyword: &'static str,
        /// What it needs to be inside.
        expected: &'static str,
    },
    /// Nesting deeper than [`MAX_DEPTH`].
    #[error("line {line}: nesting deeper than {MAX_DEPTH} levels")]
    TooDeep {
        /// Line of the construct that goes too deep.
        line: usize,
    },
    /// A NUL byte. GRUB reads each line as a C string, so it ignores the rest of the line
    /// after one, and would see a different script than this parser.
    #[error("line {line}: NUL byte (GRUB ignores the rest of the line after it)")]
    NulByte {
        /// Line of the first NUL byte.
        line: usize,
    },
}

impl ParseError {
    /// The 1-based line the error is about.
    pub fn line(&self) -> usize {
        match self {
            Self::UnbalancedBrace { line }
            | Self::UnterminatedQuote { line, .. }
            | Self::MissingTitle { line, .. }
            | Self::MissingBlock { line, .. }
            | Self::Unclosed { line, .. }
            | Self::UnexpectedKeyword { line, .. }
            | Self::TooDeep { line }
            | Self::NulByte { line } => *line,
        }
    }
}

/// Parse a grub.cfg into its menu model.
pub fn parse(text: &str) -> Result<Menu, ParseError> {
    if let Some(at) = find_nul(text.as_bytes()) {
        let line = 1 + text[..at].bytes().filter(|&b| b == b'\n').count();
        return Err(ParseError::NulByte { line });
    }
    let mut globals = Globals::default();
    let (block, _) = Parser::new(text, 1, &mut globals).parse_block(Mode::Script, 0, None)?;
    Ok(Menu {
        items: block.items,
        defaults: globals.defaults,
        reads_saved_entry: globals.reads_saved_entry,
        reads_next_entry: globals.reads_next_entry,
        reads_try: globals.reads_try,
        loads_env: globals.loads_env,
    })
}

/// Offset of the first NUL byte. Whole chunks are checked without stopping early, which
/// the compiler turns into vector instructions: this runs over every parsed text.
fn find_nul(b: &[u8]) -> Option<usize> {
    const CHUNK: usize = 64;
    let clean = b
        .chunks(CHUNK)
        .take_while(|chunk| !chunk.iter().fold(false, |nul, &c| nul | (c == 0)))
        .count()
        .saturating_mul(CHUNK)
        .min(b.len());
    b[clean..].iter().position(|&c| c == 0).map(|n| clean + n)
}

impl MenuItem {
    /// The kernel path of an entry's `linux` line; None for a submenu or an entry without one.
    pub fn kernel(&self) -> Option<&str> {
        match &self.kind {
            ItemKind::Entry { kernel, .. } => kernel.as_deref(),
            ItemKind::Submenu { .. } => None,
        }
    }

    /// Where an entry's kernel and initrd are named; None for a submenu.
    pub fn boot_files(&self) -> Option<&BootFileSpans> {
        match &self.kind {
            ItemKind::Entry { files, .. } => Some(files),
            ItemKind::Submenu { .. } => None,
        }
    }

    /// Whether an entry saves [`BOOT_STAMP`] as it boots.
    pub fn stamps_boot(&self) -> bool {
        matches!(
            &self.kind,
            ItemKind::Entry {
                stamps_boot: true,
                ..
            }
        )
    }

    /// The `root=UUID=` of an entry's `linux` line; None for a submenu or an entry without one.
    pub fn root_uuid(&self) -> Option<&str> {
        match &self.kind {
            ItemKind::Entry { root_uuid, .. } => root_uuid.as_deref(),
            ItemKind::Submenu { .. } => None,
        }
    }
}

impl Menu {
    /// The item at `path` (indices at each level), if there is one.
    pub fn entry(&self, path: &[usize]) -> Option<&MenuItem> {
        let (&last, parents) = path.split_last()?;
        let mut items = &self.items[..];
        for &i in parents {
            match &items.get(i)?.kind {
                ItemKind::Submenu { items: inner } => items = inner,
                ItemKind::Entry { .. } => return None,
            }
        }
        items.get(last)
    }

    /// Every bootable entry, depth first in menu order, with its path (indices at each level).
    pub fn entries(&self) -> Vec<EntryRef<'_>> {
        fn walk<'m>(items: &'m [MenuItem], path: &mut Vec<usize>, out: &mut Vec<EntryRef<'m>>) {
            for (index, item) in items.iter().enumerate() {
                path.push(index);
                match &item.kind {
                    ItemKind::Entry { .. } => out.push(EntryRef {
                        path: path.clone(),
                        item,
                    }),
                    ItemKind::Submenu { items } => walk(items, path, out),
                }
                path.pop();
            }
        }
        let mut out = Vec::new();
        walk(&self.items, &mut Vec::new(), &mut out);
        out
    }
}
