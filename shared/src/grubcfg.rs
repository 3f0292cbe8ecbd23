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

use std::borrow::Cow;
use std::ops::Range;

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
    },
    /// A submenu and its items.
    Submenu {
        /// The submenu's items, in order.
        items: Vec<MenuItem>,
    },
}

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

    /// The `root=UUID=` of an entry's `linux` line; None for a submenu or an entry without one.
    pub fn root_uuid(&self) -> Option<&str> {
        match &self.kind {
            ItemKind::Entry { root_uuid, .. } => root_uuid.as_deref(),
            ItemKind::Submenu { .. } => None,
        }
    }
}

impl Menu {
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

    /// GRUB's own resolution of a `default` value (grub-core/normal/menu.c): at each level a
    /// number (as `grub_strtoul` reads it: leading digits, `0x` hex, leading-`0` octal), else
    /// the first item whose title or id matches up to the next single `>` (`>>` is a literal
    /// `>`); a submenu continues with the rest after that `>`. Returns `None` where GRUB would
    /// fall back to entry 0 (nothing matches, index out of range) and when the value names a
    /// submenu rather than an entry.
    pub fn resolve(&self, value: &str) -> Option<EntryRef<'_>> {
        let mut items = &self.items[..];
        let mut spec = value;
        let mut path = Vec::new();
        loop {
            let index = match grub_strtoul(spec) {
                // GRUB stores the number in an `int`: values past i32 wrap as in C.
                Number::Value(n) => usize::try_from(n as u32 as i32).ok()?,
                Number::Overflow => return None,
                Number::NoDigits => items.iter().position(|item| {
                    menuentry_eq(&item.title, spec)
                        || menuentry_eq(item.id.as_deref().unwrap_or(&item.title), spec)
                })?,
            };
            let item = items.get(index)?;
            path.push(index);
            match &item.kind {
                ItemKind::Entry { .. } => return Some(EntryRef { path, item }),
                ItemKind::Submenu { items: inner } => {
                    spec = rest_after_separator(spec)?;
                    items = inner;
                }
            }
        }
    }
}

/// "N" or "N>M>..." for a path.
pub fn address(path: &[usize]) -> String {
    let parts: Vec<String> = path.iter().map(usize::to_string).collect();
    parts.join(">")
}

/// Quote a string as one GRUB word that reads back exactly `s` (single quotes; a `'` inside
/// becomes `'\''`).
pub fn quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

/// Return `text` with every literal default assignment's value replaced by `quote(value)`,
/// or, if `menu` (which must be `parse(text)`) has none, with `set default=<quoted>` inserted
/// before the first line that is neither blank nor a comment. Nothing else changes. A later
/// non-literal assignment (such as `set default="${saved_entry}"`) still wins at boot.
pub fn set_fixed_default(text: &str, menu: &Menu, value: &str) -> String {
    let quoted = quote(value);
    let mut out = String::with_capacity(text.len() + quoted.len() + 16);
    if menu.defaults.iter().any(|d| d.literal) {
        let mut copied = 0;
        for span in menu
            .defaults
            .iter()
            .filter(|d| d.literal)
            .map(|d| &d.value_span)
        {
            // Spans that do not fit `text` (a menu parsed from other text) are skipped.
            if let (Some(before), Some(_)) = (text.get(copied..span.start), text.get(span.clone()))
            {
                out.push_str(before);
                out.push_str(&quoted);
                copied = span.end;
            }
        }
        out.push_str(&text[copied..]);
        return out;
    }
    let mut at = 0;
    for line in text.split_inclusive('\n') {
        let trimmed = line.trim_start_matches([' ', '\t', '\r', '\n']);
        if !trimmed.is_empty() && !trimmed.starts_with('#') {
            break;
        }
        at += line.len();
    }
    out.push_str(&text[..at]);
    if at > 0 && !text[..at].ends_with('\n') {
        out.push('\n');
    }
    out.push_str("set default=");
    out.push_str(&quoted);
    out.push('\n');
    out.push_str(&text[at..]);
    out
}

/// Result of GRUB's `grub_strtoul` on a `default` value.
enum Number {
    Value(u64),
    Overflow,
    NoDigits,
}

/// `grub_strtoul (val, 0, 0)`: skip blanks, guess the base, read digits while they last.
fn grub_strtoul(s: &str) -> Number {
    let b = s.as_bytes();
    let mut i = 0;
    while matches!(b.get(i), Some(b' ' | b'\t' | b'\n' | b'\r')) {
        i += 1;
    }
    let mut base = 10u64;
    if b.get(i) == Some(&b'0') {
        if b.get(i + 1) == Some(&b'x') {
            base = 16;
            i += 2;
        } else if matches!(b.get(i + 1), Some(b'0'..=b'7')) {
            base = 8;
        }
    }
    let mut num = 0u64;
    let mut found = false;
    while let Some(&c) = b.get(i) {
        let digit = match c.to_ascii_lowercase() {
            d @ b'0'..=b'9' => d - b'0',
            d @ b'a'..=b'z' => d - b'a' + 10,
            _ => break,
        };
        if u64::from(digit) >= base {
            break;
        }
        found = true;
        match num
            .checked_mul(base)
            .and_then(|n| n.checked_add(u64::from(digit)))
        {
            Some(n) => num = n,
            None => return Number::Overflow,
        }
        i += 1;
    }
    if found {
        Number::Value(num)
    } else {
        Number::NoDigits
    }
}

/// GRUB's `menuentry_eq`: does `name` equal `spec` up to its first single `>`?
fn menuentry_eq(name: &str, spec: &str) -> bool {
    let (n, s) = (name.as_bytes(), spec.as_bytes());
    let at = |bytes: &[u8], i: usize| bytes.get(i).copied().unwrap_or(0);
    let (mut i, mut j) = (0, 0);
    loop {
        if at(s, j) == b'>' && at(s, j + 1) != b'>' {
            return at(n, i) == 0;
        }
        if at(s, j) == b'>' {
            j += 1;
        }
        if at(n, i) != at(s, j) {
            return false;
        }
        if at(n, i) == 0 {
            return true;
        }
        i += 1;
        j += 1;
    }
}

/// What GRUB sets `default` to inside a submenu: the rest after the first single `>`.
fn rest_after_separator(spec: &str) -> Option<&str> {
    let b = spec.as_bytes();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'>' {
            if b.get(i + 1) == Some(&b'>') {
                i += 2;
                continue;
            }
            return spec.get(i + 1..).filter(|rest| !rest.is_empty());
        }
        i += 1;
    }
    None
}

/// One word after quote removal, with what the parser needs to know about how it was written.
struct Word<'a> {
    /// Borrowed from the source while the word's pieces are adjacent there (as they are in
    /// most words: plain, one quoted string, one variable); owned once they are not.
    value: Cow<'a, str>,
    /// While `value` is borrowed: where it starts in the source.
    value_at: usize,
    /// Some part was quoted or backslash-escaped (so it is never a keyword).
    quoted: bool,
    /// Contains a variable expansion or a `$"..."` translation.
    expands: bool,
    refs_saved_entry: bool,
    refs_next_entry: bool,
    start: usize,
    end: usize,
}

impl<'a> Word<'a> {
    fn new(start: usize) -> Self {
        Word {
            value: Cow::Borrowed(""),
            value_at: start,
            quoted: false,
            expands: false,
            refs_saved_entry: false,
            refs_next_entry: false,
            start,
            end: start,
        }
    }
}

enum Tok<'a> {
    Word(Word<'a>),
    Newline,
    Separator,
    Open,
    Close,
    Eof,
}

struct Token<'a> {
    tok: Tok<'a>,
    line: usize,
    /// Byte offset where the token starts.
    start: usize,
}

struct Lexer<'a> {
    src: &'a str,
    pos: usize,
    line: usize,
    peeked: Option<Token<'a>>,
}

/// What a byte is to the lexer outside quotes.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Class {
    /// A plain word character; `#` too, which starts a comment only where a token would.
    Plain,
    /// Space, tab, carriage return.
    Blank,
    Newline,
    /// `;`, `|`, `&`, `<`, `>`.
    Separator,
    Open,
    Close,
    /// `'`, `"`, `$`, `\`: inside a word, a quoted string, a variable or an escape.
    Quoting,
}

const CLASS: [Class; 256] = {
    let mut table = [Class::Plain; 256];
    let classes: [(&[u8], Class); 6] = [
        (b" \t\r", Class::Blank),
        (b"\n", Class::Newline),
        (b";|&<>", Class::Separator),
        (b"{", Class::Open),
        (b"}", Class::Close),
        (b"'\"$\\", Class::Quoting),
    ];
    let mut i = 0;
    while i < classes.len() {
        let (bytes, class) = classes[i];
        let mut j = 0;
        while j < bytes.len() {
            table[bytes[j] as usize] = class;
            j += 1;
        }
        i += 1;
    }
    table
};

/// Where the run of plain word characters starting at `from` ends.
fn plain_run_end(b: &[u8], from: usize) -> usize {
    let mut end = from;
    while end < b.len() && CLASS[usize::from(b[end])] == Class::Plain {
        end += 1;
    }
    end
}

/// Length of the variable reference at `b[p] == b'$'` and its name's range, if it is one.
fn variable_at(b: &[u8], p: usize) -> Option<(usize, Range<usize>)> {
    let name_end = |from: usize| -> Option<usize> {
        let first = *b.get(from)?;
        let mut end = from + 1;
        if first.is_ascii_alphabetic() || first == b'_' {
            while b
                .get(end)
                .is_some_and(|c| c.is_ascii_alphanumeric() || *c == b'_')
            {
                end += 1;
            }
        } else if first.is_ascii_digit() {
            while b.get(end).is_some_and(u8::is_ascii_digit) {
                end += 1;
            }
        } else if !matches!(first, b'?' | b'#' | b'*' | b'@') {
            return None;
        }
        Some(end)
    };
    if b.get(p + 1) == Some(&b'{') {
        let end = name_end(p + 2)?;
        (b.get(end) == Some(&b'}')).then(|| (end + 1 - p, p + 2..end))
    } else {
        let end = name_end(p + 1)?;
        Some((end - p, p + 1..end))
    }
}

/// What reading a word produces: a [`Word`] (its value and what the parser needs to know
/// about how it was written), or nothing, for the words of a command the model ignores.
trait WordSink<'a> {
    /// Append `src[piece]` to the value.
    fn push(&mut self, src: &'a str, piece: Range<usize>);
    /// Part of the word is quoted or escaped.
    fn quoted(&mut self);
    /// The word expands a variable called `name`.
    fn variable(&mut self, name: &str);
    /// The word holds a `$"..."` translation.
    fn translated(&mut self);
}

impl<'a> WordSink<'a> for Word<'a> {
    #[inline(always)]
    fn push(&mut self, src: &'a str, piece: Range<usize>) {
        if piece.is_empty() {
            return;
        }
        match &mut self.value {
            Cow::Owned(value) => value.push_str(&src[piece]),
            Cow::Borrowed("") => {
                self.value_at = piece.start;
                self.value = Cow::Borrowed(&src[piece]);
            }
            Cow::Borrowed(value) if self.value_at + value.len() == piece.start => {
                self.value = Cow::Borrowed(&src[self.value_at..piece.end]);
            }
            Cow::Borrowed(value) => {
                let mut joined = String::with_capacity(value.len() + piece.len());
                joined.push_str(value);
                joined.push_str(&src[piece]);
                self.value = Cow::Owned(joined);
            }
        }
    }

    fn quoted(&mut self) {
        self.quoted = true;
    }

    fn variable(&mut self, name: &str) {
        self.expands = true;
        self.refs_saved_entry |= name == "saved_entry";
        self.refs_next_entry |= name == "next_entry";
    }

    fn translated(&mut self) {
        self.expands = true;
    }
}

/// A word read only to get past it.
struct Skipped;

impl<'a> WordSink<'a> for Skipped {
    fn push(&mut self, _: &'a str, _: Range<usize>) {}
    fn quoted(&mut self) {}
    fn variable(&mut self, _: &str) {}
    fn translated(&mut self) {}
}

impl<'a> Lexer<'a> {
    fn next(&mut self) -> Result<Token<'a>, ParseError> {
        if let Some(token) = self.peeked.take() {
            return Ok(token);
        }
        match self.punctuation() {
            Some(token) => Ok(token),
            None => self.word(),
        }
    }

    /// The next token that is not a word: the words before it are read with the same rules
    /// (and the same errors) as by [`Lexer::next`], but not kept.
    fn skip_words(&mut self) -> Result<Token<'a>, ParseError> {
        if let Some(token) = self.peeked.take() {
            if !matches!(token.tok, Tok::Word(_)) {
                return Ok(token);
            }
        }
        loop {
            if let Some(token) = self.punctuation() {
                return Ok(token);
            }
            self.scan_word(&mut Skipped)?;
        }
    }

    /// Get past blanks, comments and line continuations; then read the token there unless
    /// it is a word (None: a word starts at `self.pos`).
    fn punctuation(&mut self) -> Option<Token<'a>> {
        let b = self.src.as_bytes();
        loop {
            let (start, line) = (self.pos, self.line);
            let Some(&c) = b.get(start) else {
                return Some(Token {
                    tok: Tok::Eof,
                    line,
                    start,
                });
            };
            let tok = match CLASS[usize::from(c)] {
                Class::Blank => {
                    self.pos += 1;
                    continue;
                }
                Class::Newline => {
                    self.pos += 1;
                    self.line += 1;
                    Tok::Newline
                }
                Class::Separator => {
                    self.pos += 1;
                    Tok::Separator
                }
                Class::Open => {
                    self.pos += 1;
                    Tok::Open
                }
                Class::Close => {
                    self.pos += 1;
                    Tok::Close
                }
                Class::Plain if c == b'#' => {
                    self.pos = b[start..]
                        .iter()
                        .position(|&c| c == b'\n')
                        .map_or(b.len(), |n| start + n);
                    continue;
                }
                Class::Quoting if c == b'\\' && b.get(start + 1) == Some(&b'\n') => {
                    self.pos += 2;
                    self.line += 1;
                    continue;
                }
                Class::Plain | Class::Quoting => return None,
            };
            return Some(Token { tok, line, start });
        }
    }

    fn word(&mut self) -> Result<Token<'a>, ParseError> {
        let (start, line) = (self.pos, self.line);
        let mut w = Word::new(start);
        self.scan_word(&mut w)?;
        w.end = self.pos;
        Ok(Token {
            tok: Tok::Word(w),
            line,
            start,
        })
    }

    /// Read the word starting at `self.pos` into `sink`: quotes removed, escapes resolved,
    /// variables kept as written.
    fn scan_word<S: WordSink<'a>>(&mut self, sink: &mut S) -> Result<(), ParseError> {
        let src = self.src;
        let b = src.as_bytes();
        loop {
            let run_start = self.pos;
            self.pos = plain_run_end(b, run_start);
            sink.push(src, run_start..self.pos);
            match b.get(self.pos) {
                Some(b'\'') => {
                    let open = self.pos;
                    let Some(len) = b[open + 1..].iter().position(|&c| c == b'\'') else {
                        return Err(ParseError::UnterminatedQuote {
                            line: self.line,
                            quote: '\'',
                        });
                    };
                    let content = open + 1..open + 1 + len;
                    self.line += b[content.clone()].iter().filter(|&&c| c == b'\n').count();
                    sink.push(src, content);
                    sink.quoted();
                    self.pos = open + len + 2;
                }
                Some(b'"') => self.double_quoted(sink, false)?,
                Some(b'$') if b.get(self.pos + 1) == Some(&b'"') => {
                    self.double_quoted(sink, true)?;
                }
                Some(b'$') => self.dollar(sink),
                Some(b'\\') => match src[self.pos + 1..].chars().next() {
                    None => {
                        sink.push(src, self.pos..self.pos + 1);
                        self.pos += 1;
                    }
                    Some('\n') => {
                        self.pos += 2;
                        self.line += 1;
                    }
                    Some(ch) => {
                        let escaped = self.pos + 1..self.pos + 1 + ch.len_utf8();
                        self.pos = escaped.end;
                        sink.push(src, escaped);
                        sink.quoted();
                    }
                },
                _ => return Ok(()),
            }
        }
    }

    /// A `$` outside single quotes: a variable reference kept as written, or a literal `$`.
    fn dollar<S: WordSink<'a>>(&mut self, sink: &mut S) {
        match variable_at(self.src.as_bytes(), self.pos) {
            Some((len, name)) => {
                sink.variable(&self.src[name]);
                sink.push(self.src, self.pos..self.pos + len);
                self.pos += len;
            }
            None => {
                sink.push(self.src, self.pos..self.pos + 1);
                self.pos += 1;
            }
        }
    }

    /// A double-quoted string, or with `translated` a `$"..."` string, which GRUB translates:
    /// kept untranslated and marked as expanding; inside it `$` is literal and `\\` stays.
    fn double_quoted<S: WordSink<'a>>(
        &mut self,
        sink: &mut S,
        translated: bool,
    ) -> Result<(), ParseError> {
        let (src, b) = (self.src, self.src.as_bytes());
        let line = self.line;
        sink.quoted();
        if translated {
            sink.translated();
        }
        self.pos += if translated { 2 } else { 1 };
        let stops = |c: u8| matches!(c, b'"' | b'\\' | b'\n') || (c == b'$' && !translated);
        loop {
            let run_start = self.pos;
            let run_len = b[run_start..]
                .iter()
                .position(|&c| stops(c))
                .unwrap_or(b.len() - run_start);
            self.pos = run_start + run_len;
            sink.push(src, run_start..self.pos);
            let at = self.pos;
            match b.get(at) {
                None => return Err(ParseError::UnterminatedQuote { line, quote: '"' }),
                Some(b'"') => {
                    self.pos += 1;
                    return Ok(());
                }
                Some(b'\n') => {
                    sink.push(src, at..at + 1);
                    self.pos += 1;
                    self.line += 1;
                }
                Some(b'$') => self.dollar(sink),
                Some(_) => match b.get(at + 1) {
                    Some(b'\n') => {
                        self.pos += 2;
                        self.line += 1;
                    }
                    // `\\` stays as written.
                    Some(b'\\') if translated => {
                        sink.push(src, at..at + 2);
                        self.pos += 2;
                    }
                    // The escaped character alone.
                    Some(b'"') => {
                        sink.push(src, at + 1..at + 2);
                        self.pos += 2;
                    }
                    Some(b'$' | b'\\') if !translated => {
                        sink.push(src, at + 1..at + 2);
                        self.pos += 2;
                    }
                    // A literal backslash.
                    _ => {
                        sink.push(src, at..at + 1);
                        self.pos += 1;
                    }
                },
            }
        }
    }
}

/// Where a block's commands run, which decides what they contribute to the model.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// The top level of the config.
    Script,
    /// A function body reachable from the top level.
    Function,
    /// A submenu's block.
    Submenu,
    /// A menu entry's block.
    Entry,
    /// Anything else: nothing inside is recorded.
    Other,
}

impl Mode {
    fn collects_items(self) -> bool {
        matches!(self, Mode::Script | Mode::Submenu)
    }

    fn records_globals(self) -> bool {
        matches!(self, Mode::Script | Mode::Function)
    }
}

#[derive(Default)]
struct Globals {
    defaults: Vec<DefaultAssignment>,
    reads_saved_entry: bool,
    reads_next_entry: bool,
    loads_env: bool,
}

/// What a block contributes to its owner.
#[derive(Default)]
struct Block {
    items: Vec<MenuItem>,
    kernel: Option<(String, Option<String>)>,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum FrameKind {
    If,
    Loop,
}

/// A reserved word at the start of a command.
enum Keyword {
    /// `if`, `for`, `while`, `until`.
    Opens(FrameKind, &'static str),
    /// `then`, `elif`, `else`, `do`; and `fi`, `done`, which also close (the flag).
    Inside(FrameKind, &'static str, bool),
    /// `function`.
    Function,
}

fn keyword(word: &Word<'_>) -> Option<Keyword> {
    if word.quoted {
        return None;
    }
    Some(match &*word.value {
        "if" => Keyword::Opens(FrameKind::If, "if"),
        "for" => Keyword::Opens(FrameKind::Loop, "for"),
        "while" => Keyword::Opens(FrameKind::Loop, "while"),
        "until" => Keyword::Opens(FrameKind::Loop, "until"),
        "then" => Keyword::Inside(FrameKind::If, "then", false),
        "elif" => Keyword::Inside(FrameKind::If, "elif", false),
        "else" => Keyword::Inside(FrameKind::If, "else", false),
        "fi" => Keyword::Inside(FrameKind::If, "fi", true),
        "do" => Keyword::Inside(FrameKind::Loop, "do", false),
        "done" => Keyword::Inside(FrameKind::Loop, "done", true),
        "function" => Keyword::Function,
        _ => return None,
    })
}

/// An open `if` or loop inside a block.
struct Frame {
    kind: FrameKind,
    line: usize,
    opener: &'static str,
}

/// Options and title of a `menuentry`/`submenu` command, read as GRUB's argument parser does.
#[derive(Default)]
struct ItemArgs {
    title: Option<String>,
    id: Option<String>,
    classes: Vec<String>,
    source: Option<String>,
}

fn item_args(args: &[Word<'_>]) -> ItemArgs {
    let mut out = ItemArgs::default();
    let mut i = 0;
    while i < args.len() {
        let word = &args[i];
        let arg: &str = if !word.quoted
            && matches!(
                &*word.value,
                "$menuentry_id_option" | "${menuentry_id_option}"
            ) {
            "--id"
        } else {
            &word.value
        };
        i += 1;
        if arg == "--" {
            if out.title.is_none() {
                out.title = args.get(i).map(|w| w.value.to_string());
            }
            break;
        }
        let known = arg.strip_prefix("--").and_then(|long| {
            let (name, inline) = long
                .split_once('=')
                .map_or((long, None), |(n, v)| (n, Some(v)));
            matches!(
                name,
                "class" | "users" | "hotkey" | "source" | "id" | "unrestricted"
            )
            .then_some((name, inline))
        });
        let Some((name, inline)) = known else {
            // Anything else, unknown `--options` included, is a plain argument to GRUB.
            if out.title.is_none() {
                out.title = Some(arg.to_owned());
            }
            continue;
        };
        if name == "unrestricted" {
            continue;
        }
        let value = match inline {
            Some(v) => Some(v.to_owned()),
            None => match args.get(i) {
                Some(next) if !next.value.starts_with('-') => {
                    i += 1;
                    Some(next.value.to_string())
                }
                _ => None,
            },
        };
        match (name, value) {
            ("class", Some(v)) => out.classes.push(v),
            ("id", Some(v)) => out.id = Some(v),
            ("source", Some(v)) => out.source = Some(v),
            _ => {}
        }
    }
    out
}

/// What a simple command means to the model, by its first word.
enum Command {
    /// `menuentry` or `submenu`.
    Item(&'static str),
    /// The first `linux` command of a menu entry.
    Kernel,
    /// Anything else.
    Other,
}

struct Parser<'a, 'g> {
    lex: Lexer<'a>,
    globals: &'g mut Globals,
    /// Words of the command being read.
    words: Vec<Word<'a>>,
}

impl<'a, 'g> Parser<'a, 'g> {
    fn new(src: &'a str, first_line: usize, globals: &'g mut Globals) -> Self {
        Parser {
            lex: Lexer {
                src,
                pos: 0,
                line: first_line,
                peeked: None,
            },
            globals,
            words: Vec::new(),
        }
    }

    /// Parse commands until the `}` closing this block (`opener` is set) or the end of the
    /// text (top level). Returns what the block contributes and where its `}` starts.
    fn parse_block(
        &mut self,
        mode: Mode,
        depth: usize,
        opener: Option<(usize, &'static str)>,
    ) -> Result<(Block, usize), ParseError> {
        let mut out = Block::default();
        let mut frames: Vec<Frame> = Vec::new();
        loop {
            let token = self.lex.next()?;
            let line = token.line;
            let word = match token.tok {
                Tok::Newline | Tok::Separator => continue,
                Tok::Eof | Tok::Close => {
                    if let Some(frame) = frames.last() {
                        return Err(ParseError::Unclosed {
                            line: frame.line,
                            opener: frame.opener,
                        });
                    }
                    let at_eof = matches!(token.tok, Tok::Eof);
                    return match (at_eof, opener) {
                        (true, Some((line, opener))) => Err(ParseError::Unclosed { line, opener }),
                        (false, None) => Err(ParseError::UnbalancedBrace { line }),
                        _ => Ok((out, token.start)),
                    };
                }
                Tok::Open => {
                    self.nested(Mode::Other, depth + frames.len() + 1, line, "{")?;
                    continue;
                }
                Tok::Word(word) => word,
            };
            match keyword(&word) {
                Some(Keyword::Function) => {
                    self.function(mode, depth + frames.len() + 1, line)?;
                    continue;
                }
                Some(Keyword::Opens(kind, opener)) => {
                    if depth + frames.len() + 1 > MAX_DEPTH {
                        return Err(ParseError::TooDeep { line });
                    }
                    frames.push(Frame { kind, line, opener });
                    if opener == "for" {
                        self.skip_for_header(mode)?;
                    }
                    continue;
                }
                Some(Keyword::Inside(kind, keyword, closes)) => {
                    match frames.last() {
                        Some(frame) if frame.kind == kind => {}
                        Some(frame) => {
                            return Err(ParseError::Unclosed {
                                line: frame.line,
                                opener: frame.opener,
                            });
                        }
                        None => {
                            let expected = if kind == FrameKind::If {
                                "if"
                            } else {
                                "for/while/until"
                            };
                            return Err(ParseError::UnexpectedKeyword {
                                line,
                                keyword,
                                expected,
                            });
                        }
                    }
                    if closes {
                        frames.pop();
                    }
                    continue;
                }
                None => {}
            }
            self.command(word, mode, depth + frames.len(), line, &mut out)?;
        }
    }

    /// Parse a nested block whose `{` was just read.
    fn nested(
        &mut self,
        mode: Mode,
        depth: usize,
        line: usize,
        opener: &'static str,
    ) -> Result<(Block, usize), ParseError> {
        if depth > MAX_DEPTH {
            return Err(ParseError::TooDeep { line });
        }
        self.parse_block(mode, depth, Some((line, opener)))
    }

    /// `for NAME in WORDS...`: the header up to its separator.
    fn skip_for_header(&mut self, mode: Mode) -> Result<(), ParseError> {
        loop {
            let token = self.lex.next()?;
            match token.tok {
                Tok::Word(w) => {
                    self.globals.reads_next_entry |= mode.records_globals() && w.refs_next_entry
                }
                Tok::Newline | Tok::Separator => return Ok(()),
                Tok::Open | Tok::Close | Tok::Eof => {
                    self.lex.peeked = Some(token);
                    return Ok(());
                }
            }
        }
    }

    /// `function NAME [newlines] { ... }`: the body runs only when called.
    fn function(&mut self, mode: Mode, depth: usize, line: usize) -> Result<(), ParseError> {
        let missing = ParseError::MissingBlock {
            line,
            keyword: "function",
        };
        if !matches!(self.lex.next()?.tok, Tok::Word(_)) {
            return Err(missing);
        }
        let open = loop {
            let token = self.lex.next()?;
            if !matches!(token.tok, Tok::Newline) {
                break token;
            }
        };
        if !matches!(open.tok, Tok::Open) {
            return Err(missing);
        }
        let body_mode = if mode.records_globals() {
            Mode::Function
        } else {
            Mode::Other
        };
        self.nested(body_mode, depth, line, "function").map(drop)
    }

    /// One simple command starting with `first`: read the rest of its words (into the reused
    /// `self.words`) and its block, if any, and record what it means for the model. The words
    /// are consumed before any nested block is parsed.
    fn command(
        &mut self,
        first: Word<'a>,
        mode: Mode,
        depth: usize,
        line: usize,
        out: &mut Block,
    ) -> Result<(), ParseError> {
        let kind = match &*first.value {
            "menuentry" => Command::Item("menuentry"),
            "submenu" => Command::Item("submenu"),
            "linux" | "linux16" | "linuxefi" if mode == Mode::Entry && out.kernel.is_none() => {
                Command::Kernel
            }
            _ => Command::Other,
        };
        self.words.clear();
        self.words.push(first);
        let end = if matches!(kind, Command::Other) && !mode.records_globals() {
            self.lex.skip_words()?
        } else {
            loop {
                let token = self.lex.next()?;
                match token.tok {
                    Tok::Word(w) => self.words.push(w),
                    _ => break token,
                }
            }
        };
        let block_start = match end.tok {
            Tok::Open => Some(end.start + 1),
            Tok::Close | Tok::Eof => {
                self.lex.peeked = Some(end);
                None
            }
            _ => None,
        };
        if mode.records_globals() {
            self.record_globals(line);
        }
        let words = &self.words;
        match kind {
            Command::Item(keyword) => {
                let args = item_args(&words[1..]);
                let item = self.menu_item(keyword, args, depth, line, block_start)?;
                if mode.collects_items() {
                    out.items.push(item);
                }
                return Ok(());
            }
            Command::Kernel => {
                if let Some(kernel) = words.get(1) {
                    let root = words[2..]
                        .iter()
                        .find_map(|w| w.value.strip_prefix("root=UUID="));
                    out.kernel = Some((kernel.value.to_string(), root.map(str::to_owned)));
                }
            }
            Command::Other => {}
        }
        if block_start.is_some() {
            self.nested(Mode::Other, depth + 1, line, "{")?;
        }
        Ok(())
    }

    fn record_globals(&mut self, line: usize) {
        let (g, words) = (&mut *self.globals, &self.words);
        g.reads_next_entry |= words.iter().any(|w| w.refs_next_entry);
        g.loads_env |= words[0].value == "load_env";
        let word = if words[0].value == "set" {
            words.get(1)
        } else {
            words.first()
        };
        let Some(word) = word.filter(|w| w.value.starts_with("default=")) else {
            return;
        };
        // `default=` written as plain characters, not quoted or escaped.
        let plain = self.lex.src[word.start..].starts_with("default=");
        let (literal, value_span) = if plain {
            (!word.expands, word.start + "default=".len()..word.end)
        } else {
            (false, word.start..word.end)
        };
        g.reads_saved_entry |= word.refs_saved_entry;
        g.defaults.push(DefaultAssignment {
            value: word.value["default=".len()..].to_owned(),
            literal,
            value_span,
            line,
        });
    }

    fn menu_item(
        &mut self,
        keyword: &'static str,
        args: ItemArgs,
        depth: usize,
        line: usize,
        block_start: Option<usize>,
    ) -> Result<MenuItem, ParseError> {
        let title = args
            .title
            .ok_or(ParseError::MissingTitle { line, keyword })?;
        let mode = if keyword == "submenu" {
            Mode::Submenu
        } else {
            Mode::Entry
        };
        let (block, body) = match (block_start, args.source) {
            (Some(start), _) => {
                let (block, close) = self.nested(mode, depth + 1, line, keyword)?;
                (block, self.lex.src[start..close].to_owned())
            }
            (None, Some(source)) => {
                if depth + 1 > MAX_DEPTH {
                    return Err(ParseError::TooDeep { line });
                }
                let mut scratch = Globals::default();
                let (block, _) =
                    Parser::new(&source, line, &mut scratch).parse_block(mode, depth + 1, None)?;
                (block, source)
            }
            (None, None) => return Err(ParseError::MissingBlock { line, keyword }),
        };
        let kind = if mode == Mode::Submenu {
            ItemKind::Submenu { items: block.items }
        } else {
            let (kernel, root_uuid) = block.kernel.map_or((None, None), |(k, r)| (Some(k), r));
            ItemKind::Entry {
                body,
                kernel,
                root_uuid,
            }
        };
        Ok(MenuItem {
            title,
            id: args.id,
            classes: args.classes,
            line,
            kind,
        })
    }
}

#[cfg(test)]
mod tests {
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
        let menu = parse(
            "menuentry 'x>y' { true; }\nsubmenu 'S>T' { menuentry 'E' --id 'e>1' { true; } }\n",
        )
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
        let menu = parse(
            "submenu S { menuentry '>x' { true; } }\nsubmenu 'S>' { menuentry x { true; } }\n",
        )
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
        let sample = include_str!("../tests/data/grub/debian-os-prober.cfg");
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
        assert_eq!(again.items, menu.items);
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
}
