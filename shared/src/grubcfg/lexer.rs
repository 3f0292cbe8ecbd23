use std::borrow::Cow;
use std::ops::Range;

use super::ParseError;

/// One word after quote removal, with what the parser needs to know about how it was written.
pub(super) struct Word<'a> {
    /// Borrowed from the source while the word's pieces are adjacent there (as they are in
    /// most words: plain, one quoted string, one variable); owned once they are not.
    pub(super) value: Cow<'a, str>,
    /// While `value` is borrowed: where it starts in the source.
    value_at: usize,
    /// Some part was quoted or backslash-escaped (so it is never a keyword).
    pub(super) quoted: bool,
    /// Contains a variable expansion or a `$"..."` translation.
    pub(super) expands: bool,
    pub(super) refs_saved_entry: bool,
    pub(super) refs_next_entry: bool,
    /// Reads `mb_try`, the variable of a trial boot (`bootctl switch --try`).
    pub(super) refs_try: bool,
    pub(super) start: usize,
    pub(super) end: usize,
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
            refs_try: false,
            start,
            end: start,
        }
    }
}

pub(super) enum Tok<'a> {
    Word(Word<'a>),
    Newline,
    Separator,
    Open,
    Close,
    Eof,
}

pub(super) struct Token<'a> {
    pub(super) tok: Tok<'a>,
    pub(super) line: usize,
    /// Byte offset where the token starts.
    pub(super) start: usize,
}

pub(super) struct Lexer<'a> {
    pub(super) src: &'a str,
    pub(super) pos: usize,
    pub(super) line: usize,
    pub(super) peeked: Option<Token<'a>>,
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
        self.refs_try |= name == super::TRY_VARIABLE;
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
    pub(super) fn next(&mut self) -> Result<Token<'a>, ParseError> {
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
    pub(super) fn skip_words(&mut self) -> Result<Token<'a>, ParseError> {
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
