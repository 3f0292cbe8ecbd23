use super::lexer::{Lexer, Tok, Word};
use super::BOOT_STAMP;
use super::{BootFileSpans, DefaultAssignment, ItemKind, MenuItem, ParseError, MAX_DEPTH};

/// Where a block's commands run, which decides what they contribute to the model.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Mode {
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
pub(super) struct Globals {
    pub(super) defaults: Vec<DefaultAssignment>,
    pub(super) reads_saved_entry: bool,
    pub(super) reads_next_entry: bool,
    pub(super) reads_try: bool,
    pub(super) loads_env: bool,
}

/// What a block contributes to its owner.
#[derive(Default)]
pub(super) struct Block {
    pub(super) items: Vec<MenuItem>,
    kernel: Option<(String, Option<String>)>,
    files: BootFileSpans,
    stamps_boot: bool,
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
    /// The first `initrd` command of a menu entry.
    Initrd,
    /// A `save_env` in a menu entry.
    SaveEnv,
    /// Anything else.
    Other,
}

pub(super) struct Parser<'a, 'g> {
    lex: Lexer<'a>,
    globals: &'g mut Globals,
    /// Words of the command being read.
    words: Vec<Word<'a>>,
}

impl<'a, 'g> Parser<'a, 'g> {
    pub(super) fn new(src: &'a str, first_line: usize, globals: &'g mut Globals) -> Self {
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
    pub(super) fn parse_block(
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
            "initrd" | "initrd16" | "initrdefi"
                if mode == Mode::Entry && out.files.initrd.is_empty() =>
            {
                Command::Initrd
            }
            "save_env" if mode == Mode::Entry => Command::SaveEnv,
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
                    out.files.kernel = Some(kernel.start..kernel.end);
                    out.files.kernel_command_end = words.last().map_or(kernel.end, |w| w.end);
                }
            }
            Command::Initrd => {
                out.files.initrd = words[1..]
                    .iter()
                    .map(|w| (w.value.to_string(), w.start..w.end))
                    .collect();
            }
            Command::SaveEnv => {
                out.stamps_boot |= words[1..].iter().any(|w| w.value == BOOT_STAMP);
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
        g.reads_try |= words.iter().any(|w| w.refs_try);
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
                let (mut block, _) =
                    Parser::new(&source, line, &mut scratch).parse_block(mode, depth + 1, None)?;
                // Offsets into the `--source` string, not into the parsed text.
                block.files = BootFileSpans::default();
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
                files: block.files,
                stamps_boot: block.stamps_boot,
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
