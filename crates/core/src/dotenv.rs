//! `.env` files: `KEY=value` lines, as dotenv, foreman and docker compose users
//! write them.
//!
//! # Format
//!
//! - `KEY=value` or `export KEY=value`; blanks around `=` are fine. Keys match
//!   `[A-Za-z_][A-Za-z0-9_.-]*` ([`validate_env_key`]). `export` on its own
//!   before `=` is an ordinary key (`export=1`).
//! - Blank lines and lines whose first non-blank character is `#` are skipped.
//!   CRLF line endings and a leading UTF-8 byte order mark are tolerated.
//! - **Unquoted** values run to the end of the line; trailing blanks are
//!   trimmed; a `#` preceded by a blank starts a comment (`URL=http://x/#frag`
//!   keeps its `#`, and so does `KEY=#x`); expansion applies; `\$` is a
//!   literal `$`; every other backslash is kept as written.
//! - **Single-quoted** values (`'...'`) are literal: no escapes, no expansion;
//!   they may span lines. A single quote cannot appear inside one.
//! - **Double-quoted** values (`"..."`) understand `\n`, `\t`, `\r`, `\"`,
//!   `\\` and `\$` (a literal `$`); any other backslash is kept as written.
//!   Expansion applies; they may span lines.
//! - After a closing quote only blanks and a `# comment` may follow.
//! - `=` inside a value is part of it (`A=b=c` gives `b=c`); `#` inside quotes
//!   is part of the value.
//!
//! # Expansion
//!
//! `$NAME` (`NAME` = `[A-Za-z_][A-Za-z0-9_]*`), `${NAME}`, `${NAME:-default}`
//! (default when unset **or empty**) and `${NAME-default}` (default only when
//! unset). Inside braces the name may also contain `.`; a `-` there starts a
//! default. The default is itself expanded and may contain `\}`. A `$` not
//! followed by a name or `{` is literal, so `$$` is two dollars — write `\$`
//! for a literal dollar before a name. An undefined variable expands to the
//! empty string; an unclosed `${` is an error. A value may hold at most 128 KiB once
//! expanded ([`MAX_VALUE`], what Linux gives a process in one environment string).
//!
//! Names resolve in this order: keys defined on **earlier lines of the same
//! file** (the latest definition), then keys from **earlier files** (see
//! [`load_env_files`]), then the **caller's environment**. So `.env` files
//! describe the app's own config first and the supervisor's environment only
//! fills the gaps; `PATH=$PATH:./bin` still extends the caller's `PATH`.
//!
//! # Errors
//!
//! Every error names the file and the 1-based line (for a quote that is never
//! closed: the line where it opened). Errors may name a key, never a value:
//! values are secrets.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use crate::name::{NameError, validate_env_key};
use crate::text_file::{self, IoReason, ReadFailure};

/// How deeply `${A:-${B:-...}}` defaults may nest.
const MAX_NESTING: usize = 16;

/// The longest value, expanded: 128 KiB, what Linux passes to a process in one environment
/// string (`MAX_ARG_STRLEN`). Without it, a few lines of `A=$A$A` would double a value up to
/// any size.
pub const MAX_VALUE: usize = 128 * 1024;

/// Why an env file could not be read or parsed. Messages never contain a value.
#[derive(Debug, thiserror::Error)]
pub enum EnvError {
    /// The file could not be read (missing, unreadable, a directory).
    #[error("{}: cannot read the env file ({}); create it or leave it out", path.display(), IoReason(*kind))]
    Read {
        /// Path that was read.
        path: PathBuf,
        /// What kind of failure, e.g. "entity not found".
        kind: std::io::ErrorKind,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// The file is not UTF-8 text.
    #[error("{}:{line}: the env file is not valid UTF-8; save it as UTF-8 text", path.display())]
    NotUtf8 {
        /// Path of the file.
        path: PathBuf,
        /// Line holding the first invalid byte.
        line: usize,
    },
    /// A line that is not blank, not a comment and has no `=`.
    #[error("{}:{line}: expected `KEY=value` but the line has no `=`; add one or comment the line out with `#`", path.display())]
    MissingEquals {
        /// Path of the file.
        path: PathBuf,
        /// Offending line.
        line: usize,
    },
    /// The text before `=` is not a valid variable name. The name itself is
    /// not repeated: it may be a value pasted on the wrong line.
    #[error("{}:{line}: invalid variable name before `=`: {reason}; names start with a letter or `_` and use only letters, digits, `_`, `.` and `-`", path.display())]
    InvalidKey {
        /// Path of the file.
        path: PathBuf,
        /// Offending line.
        line: usize,
        /// What is wrong with the name.
        reason: NameError,
    },
    /// A quote that is never closed.
    #[error("{}:{line}: the value of `{key}` opens a {} quote that is never closed; add the closing {quote}", path.display(), quote_name(*quote))]
    UnterminatedQuote {
        /// Path of the file.
        path: PathBuf,
        /// Line where the quote opened.
        line: usize,
        /// The variable being defined.
        key: String,
        /// `'` or `"`.
        quote: char,
    },
    /// Something other than blanks or a comment after a closing quote.
    #[error("{}:{line}: unexpected text after the closing quote of `{key}`; only a `# comment` may follow, or quote the whole value", path.display())]
    TrailingCharacters {
        /// Path of the file.
        path: PathBuf,
        /// Line of the closing quote.
        line: usize,
        /// The variable being defined.
        key: String,
    },
    /// `${` without its `}`.
    #[error("{}:{line}: `${{` in the value of `{key}` is never closed; add `}}` (or write `\\$` for a literal `$`)", path.display())]
    UnterminatedExpansion {
        /// Path of the file.
        path: PathBuf,
        /// Line where the `${` opened.
        line: usize,
        /// The variable being defined.
        key: String,
    },
    /// `${...}` that is not one of the supported forms.
    #[error("{}:{line}: unsupported `${{...}}` in the value of `{key}`; use `${{NAME}}`, `${{NAME:-default}}` or `${{NAME-default}}`", path.display())]
    InvalidExpansion {
        /// Path of the file.
        path: PathBuf,
        /// Line where the `${` opened.
        line: usize,
        /// The variable being defined.
        key: String,
    },
    /// A value longer than [`MAX_VALUE`] once expanded.
    #[error("{}:{line}: the value of `{key}` is longer than 128 KiB once expanded (more than a process can be given); shorten it, or check for a variable that expands to itself twice", path.display())]
    TooLong {
        /// Path of the file.
        path: PathBuf,
        /// Line where the assignment starts.
        line: usize,
        /// The variable being defined.
        key: String,
    },
    /// Defaults nested more than a few levels deep.
    #[error("{}:{line}: `${{...}}` defaults in the value of `{key}` nest more than {MAX_NESTING} levels deep; simplify them", path.display())]
    TooDeep {
        /// Path of the file.
        path: PathBuf,
        /// Line where the innermost `${` opened.
        line: usize,
        /// The variable being defined.
        key: String,
    },
}

fn quote_name(quote: char) -> &'static str {
    if quote == '"' { "double" } else { "single" }
}

impl EnvError {
    /// The 1-based line the error is about, if it is about one line.
    pub fn line(&self) -> Option<usize> {
        match self {
            Self::Read { .. } => None,
            Self::NotUtf8 { line, .. }
            | Self::MissingEquals { line, .. }
            | Self::InvalidKey { line, .. }
            | Self::UnterminatedQuote { line, .. }
            | Self::TrailingCharacters { line, .. }
            | Self::UnterminatedExpansion { line, .. }
            | Self::InvalidExpansion { line, .. }
            | Self::TooLong { line, .. }
            | Self::TooDeep { line, .. } => Some(*line),
        }
    }

    /// The path of the env file the error is about.
    pub fn path(&self) -> &Path {
        match self {
            Self::Read { path, .. }
            | Self::NotUtf8 { path, .. }
            | Self::MissingEquals { path, .. }
            | Self::InvalidKey { path, .. }
            | Self::UnterminatedQuote { path, .. }
            | Self::TrailingCharacters { path, .. }
            | Self::UnterminatedExpansion { path, .. }
            | Self::InvalidExpansion { path, .. }
            | Self::TooLong { path, .. }
            | Self::TooDeep { path, .. } => path,
        }
    }
}

/// Parse one env file's text. `path` is only used in error messages.
///
/// `lookup` resolves names not defined earlier in *this* parse (the caller
/// passes: keys from earlier files, then the caller's process environment).
///
/// Returns every assignment in file order, after expansion. A key assigned
/// twice appears twice; the later one wins when collected into a map or
/// applied to a command in order.
///
/// ```
/// use dozen_core::parse_env;
/// let src = "export NAME=shop\nURL=\"postgres://db/${NAME}\" # the database\nEMPTY=\n";
/// let vars = parse_env(src, ".env".as_ref(), &|_| None)?;
/// assert_eq!(vars[1], ("URL".to_string(), "postgres://db/shop".to_string()));
/// assert_eq!(vars[2].1, "");
/// # Ok::<(), dozen_core::EnvError>(())
/// ```
pub fn parse_env(
    src: &str,
    path: &Path,
    lookup: &dyn Fn(&str) -> Option<String>,
) -> Result<Vec<(String, String)>, EnvError> {
    let src = src.strip_prefix('\u{feff}').unwrap_or(src);
    let src = src.replace("\r\n", "\n");
    let mut parser = Parser {
        src: &src,
        pos: 0,
        line: 1,
        path,
        key: String::new(),
        key_line: 1,
        defined: HashMap::new(),
        lookup,
    };
    parser.parse()
}

/// Load several env files in order; later files override earlier ones.
///
/// Expansion sees keys defined earlier in the same file and in earlier files
/// first, then `caller` (the process environment). Returns the merged
/// variables in first-definition order, the last value winning. A missing
/// file is an error naming it.
pub fn load_env_files(
    paths: &[PathBuf],
    caller: &dyn Fn(&str) -> Option<String>,
) -> Result<Vec<(String, String)>, EnvError> {
    let mut merged: Vec<(String, String)> = Vec::new();
    let mut index: HashMap<String, usize> = HashMap::new();
    for path in paths {
        let text = read_text(path)?;
        let lookup = |name: &str| match index.get(name) {
            Some(&i) => merged.get(i).map(|(_, v)| v.clone()),
            None => caller(name),
        };
        let vars = parse_env(&text, path, &lookup)?;
        for (key, value) in vars {
            match index.get(&key) {
                Some(&i) => merged[i].1 = value,
                None => {
                    index.insert(key.clone(), merged.len());
                    merged.push((key, value));
                }
            }
        }
    }
    Ok(merged)
}

fn read_text(path: &Path) -> Result<String, EnvError> {
    text_file::read(path).map_err(|failure| match failure {
        ReadFailure::Io(source) => EnvError::Read {
            path: path.to_path_buf(),
            kind: source.kind(),
            source,
        },
        ReadFailure::NotUtf8 { line } => EnvError::NotUtf8 {
            path: path.to_path_buf(),
            line,
        },
    })
}

/// Where a `$` appears: decides which characters end a `${NAME:-default}`
/// default and which backslash escapes apply.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Context {
    Unquoted,
    Double,
}

/// A blank within a line (not the newline).
fn is_blank(c: char) -> bool {
    c != '\n' && c.is_whitespace()
}

struct Parser<'a> {
    /// Text with CRLF already turned into LF.
    src: &'a str,
    /// Byte offset of the next character.
    pos: usize,
    /// 1-based line of `pos`.
    line: usize,
    path: &'a Path,
    /// Key of the assignment being parsed, for error messages.
    key: String,
    /// Line where that assignment starts.
    key_line: usize,
    /// Values defined so far in this file.
    defined: HashMap<String, String>,
    lookup: &'a dyn Fn(&str) -> Option<String>,
}

impl<'a> Parser<'a> {
    fn rest(&self) -> &'a str {
        self.src.get(self.pos..).unwrap_or("")
    }

    fn peek(&self) -> Option<char> {
        self.rest().chars().next()
    }

    fn peek2(&self) -> Option<char> {
        self.rest().chars().nth(1)
    }

    /// Consume one character, counting lines.
    fn bump(&mut self) -> Option<char> {
        let c = self.peek()?;
        self.pos += c.len_utf8();
        if c == '\n' {
            self.line += 1;
        }
        Some(c)
    }

    fn skip_blanks(&mut self) -> bool {
        let mut skipped = false;
        while self.peek().is_some_and(is_blank) {
            self.bump();
            skipped = true;
        }
        skipped
    }

    /// Move to the newline ending this line (not past it).
    fn skip_to_eol(&mut self) {
        let rest = self.rest();
        self.pos += rest.find('\n').unwrap_or(rest.len());
    }

    fn parse(&mut self) -> Result<Vec<(String, String)>, EnvError> {
        let mut vars = Vec::new();
        loop {
            self.skip_blanks();
            match self.peek() {
                None => break,
                Some('\n') => {
                    self.bump();
                }
                Some('#') => self.skip_to_eol(),
                Some(_) => {
                    let (key, value) = self.assignment()?;
                    self.defined.insert(key.clone(), value.clone());
                    vars.push((key, value));
                }
            }
        }
        Ok(vars)
    }

    /// `[export] KEY = value [# comment]`, starting at the key.
    fn assignment(&mut self) -> Result<(String, String), EnvError> {
        let rest = self.rest();
        let line_text = &rest[..rest.find('\n').unwrap_or(rest.len())];
        let Some(eq) = line_text.find('=') else {
            return Err(EnvError::MissingEquals {
                path: self.path.to_path_buf(),
                line: self.line,
            });
        };
        let lhs = line_text[..eq].trim();
        let key = match lhs.strip_prefix("export") {
            Some(after) if after.starts_with(is_blank) => after.trim_start(),
            _ => lhs,
        };
        validate_env_key(key).map_err(|reason| EnvError::InvalidKey {
            path: self.path.to_path_buf(),
            line: self.line,
            reason,
        })?;
        self.key = key.to_owned();
        self.key_line = self.line;
        self.pos += eq + 1;
        let blank_before = self.skip_blanks();
        let value = match self.peek() {
            Some('\'') => self.single_quoted()?,
            Some('"') => self.double_quoted()?,
            _ => self.unquoted(blank_before)?,
        };
        if value.len() > MAX_VALUE {
            return Err(self.too_long());
        }
        Ok((std::mem::take(&mut self.key), value))
    }

    fn unquoted(&mut self, blank_before: bool) -> Result<String, EnvError> {
        let mut out = String::new();
        // Length of `out` without trailing literal blanks.
        let mut keep = 0;
        let mut after_blank = blank_before;
        loop {
            match self.peek() {
                None | Some('\n') => break,
                Some('#') if after_blank => {
                    self.skip_to_eol();
                    break;
                }
                Some('\\') if self.peek2() == Some('$') => {
                    self.bump();
                    self.bump();
                    out.push('$');
                }
                Some('$') => self.dollar(&mut out, Context::Unquoted, 0)?,
                Some(c) => {
                    self.bump();
                    out.push(c);
                    after_blank = is_blank(c);
                    if !after_blank {
                        keep = out.len();
                    }
                    continue;
                }
            }
            after_blank = false;
            keep = out.len();
        }
        out.truncate(keep);
        Ok(out)
    }

    fn single_quoted(&mut self) -> Result<String, EnvError> {
        let open_line = self.line;
        self.bump();
        let rest = self.rest();
        let Some(end) = rest.find('\'') else {
            return Err(self.unterminated_quote(open_line, '\''));
        };
        let value = rest[..end].to_owned();
        self.line += value.matches('\n').count();
        self.pos += end + 1;
        self.after_quote()?;
        Ok(value)
    }

    fn double_quoted(&mut self) -> Result<String, EnvError> {
        let open_line = self.line;
        self.bump();
        let mut out = String::new();
        loop {
            match self.peek() {
                None => return Err(self.unterminated_quote(open_line, '"')),
                Some('"') => {
                    self.bump();
                    break;
                }
                Some('\\') => self.escape(&mut out, Context::Double),
                Some('$') => self.dollar(&mut out, Context::Double, 0)?,
                Some(c) => {
                    self.bump();
                    out.push(c);
                }
            }
        }
        self.after_quote()?;
        Ok(out)
    }

    /// At a backslash: push what it stands for. In double quotes `\n \t \r \"
    /// \\ \$` are escapes; in any context `\}` is one inside a default and
    /// `\$` is one. Other backslashes are kept and the next character is left
    /// for the caller.
    fn escape(&mut self, out: &mut String, ctx: Context) {
        self.bump();
        let replacement = match (self.peek(), ctx) {
            (Some('$'), _) => Some('$'),
            (Some('n'), Context::Double) => Some('\n'),
            (Some('t'), Context::Double) => Some('\t'),
            (Some('r'), Context::Double) => Some('\r'),
            (Some('"'), Context::Double) => Some('"'),
            (Some('\\'), Context::Double) => Some('\\'),
            _ => None,
        };
        match replacement {
            Some(c) => {
                self.bump();
                out.push(c);
            }
            None => out.push('\\'),
        }
    }

    /// Blanks and a `# comment` may follow a closing quote, nothing else.
    fn after_quote(&mut self) -> Result<(), EnvError> {
        self.skip_blanks();
        match self.peek() {
            None | Some('\n') => Ok(()),
            Some('#') => {
                self.skip_to_eol();
                Ok(())
            }
            Some(_) => Err(EnvError::TrailingCharacters {
                path: self.path.to_path_buf(),
                line: self.line,
                key: self.key.clone(),
            }),
        }
    }

    /// At a `$`: expand `$NAME` or `${...}` into `out`, or keep a lone `$`.
    fn dollar(&mut self, out: &mut String, ctx: Context, depth: usize) -> Result<(), EnvError> {
        let open_line = self.line;
        self.bump();
        match self.peek() {
            Some('{') => {
                self.bump();
                self.braced(out, ctx, depth, open_line)
            }
            Some(c) if c.is_ascii_alphabetic() || c == '_' => {
                let name = self.take_name(|c| c.is_ascii_alphanumeric() || c == '_');
                if let Some(value) = self.resolve(&name) {
                    self.push_expanded(out, &value)?;
                }
                Ok(())
            }
            _ => {
                out.push('$');
                Ok(())
            }
        }
    }

    /// After `${`: `NAME}`, `NAME:-default}` or `NAME-default}`.
    fn braced(
        &mut self,
        out: &mut String,
        ctx: Context,
        depth: usize,
        open_line: usize,
    ) -> Result<(), EnvError> {
        let name = self.take_name(|c| c.is_ascii_alphanumeric() || c == '_' || c == '.');
        let valid_name = name
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphabetic() || c == '_');
        let when_empty_too = match (self.peek(), self.peek2()) {
            (Some('}'), _) if valid_name => {
                self.bump();
                if let Some(value) = self.resolve(&name) {
                    self.push_expanded(out, &value)?;
                }
                return Ok(());
            }
            (Some(':'), Some('-')) if valid_name => {
                self.bump();
                self.bump();
                true
            }
            (Some('-'), _) if valid_name => {
                self.bump();
                false
            }
            (None | Some('\n'), _) => return Err(self.unterminated_expansion(open_line)),
            (Some('"'), _) if ctx == Context::Double => {
                return Err(self.unterminated_expansion(open_line));
            }
            _ => {
                return Err(EnvError::InvalidExpansion {
                    path: self.path.to_path_buf(),
                    line: open_line,
                    key: self.key.clone(),
                });
            }
        };
        if depth >= MAX_NESTING {
            return Err(EnvError::TooDeep {
                path: self.path.to_path_buf(),
                line: open_line,
                key: self.key.clone(),
            });
        }
        // Parse the default even when it is not used, so errors in it surface
        // regardless of the environment.
        let default = self.default_text(ctx, depth + 1, open_line)?;
        match self.resolve(&name) {
            Some(value) if !(when_empty_too && value.is_empty()) => self.push_expanded(out, &value),
            _ => self.push_expanded(out, &default),
        }
    }

    /// The default of `${NAME:-default}`, up to and including the `}`.
    fn default_text(
        &mut self,
        ctx: Context,
        depth: usize,
        open_line: usize,
    ) -> Result<String, EnvError> {
        let mut out = String::new();
        loop {
            match self.peek() {
                None => return Err(self.unterminated_expansion(open_line)),
                Some('\n') if ctx == Context::Unquoted => {
                    return Err(self.unterminated_expansion(open_line));
                }
                Some('"') if ctx == Context::Double => {
                    return Err(self.unterminated_expansion(open_line));
                }
                Some('}') => {
                    self.bump();
                    return Ok(out);
                }
                Some('\\') if self.peek2() == Some('}') => {
                    self.bump();
                    self.bump();
                    out.push('}');
                }
                Some('\\') => self.escape(&mut out, ctx),
                Some('$') => self.dollar(&mut out, ctx, depth)?,
                Some(c) => {
                    self.bump();
                    out.push(c);
                }
            }
        }
    }

    fn take_name(&mut self, allowed: impl Fn(char) -> bool) -> String {
        let rest = self.rest();
        let len = rest.find(|c: char| !allowed(c)).unwrap_or(rest.len());
        let name = rest[..len].to_owned();
        self.pos += len;
        name
    }

    /// Appends an expansion to a value, within [`MAX_VALUE`].
    fn push_expanded(&self, out: &mut String, value: &str) -> Result<(), EnvError> {
        if out.len().saturating_add(value.len()) > MAX_VALUE {
            return Err(self.too_long());
        }
        out.push_str(value);
        Ok(())
    }

    fn too_long(&self) -> EnvError {
        EnvError::TooLong {
            path: self.path.to_path_buf(),
            line: self.key_line,
            key: self.key.clone(),
        }
    }

    /// Earlier lines of this file first, then the caller's lookup.
    fn resolve(&self, name: &str) -> Option<String> {
        match self.defined.get(name) {
            Some(value) => Some(value.clone()),
            None => (self.lookup)(name),
        }
    }

    fn unterminated_quote(&self, line: usize, quote: char) -> EnvError {
        EnvError::UnterminatedQuote {
            path: self.path.to_path_buf(),
            line,
            key: self.key.clone(),
            quote,
        }
    }

    fn unterminated_expansion(&self, line: usize) -> EnvError {
        EnvError::UnterminatedExpansion {
            path: self.path.to_path_buf(),
            line,
            key: self.key.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_with(src: &str, env: &[(&str, &str)]) -> Result<Vec<(String, String)>, EnvError> {
        let env: HashMap<String, String> = env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        parse_env(src, Path::new(".env"), &|name| env.get(name).cloned())
    }

    fn parse(src: &str) -> Result<Vec<(String, String)>, EnvError> {
        parse_with(src, &[])
    }

    fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
        list.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    /// One `KEY=...` line parsed to its value.
    fn value(src: &str) -> String {
        let vars = parse(src).unwrap_or_else(|e| panic!("{src:?}: {e}"));
        assert_eq!(vars.len(), 1, "{src:?}");
        vars[0].1.clone()
    }

    /// The error for `src`, checked to name the line and not leak `secret`.
    fn error(src: &str, line: usize, secret: &str) -> EnvError {
        let e = parse(src).expect_err(src);
        assert_eq!(e.line(), Some(line), "{src:?}: {e}");
        let msg = e.to_string();
        assert!(msg.starts_with(&format!(".env:{line}: ")), "{msg}");
        assert!(!msg.contains(secret), "{msg} leaks {secret}");
        e
    }

    #[test]
    fn simple_forms() {
        let src = "A=1\nexport B=2\nC = 3\n  D\t=\t4  \nexport  E=5\n";
        assert_eq!(
            parse(src).unwrap(),
            pairs(&[("A", "1"), ("B", "2"), ("C", "3"), ("D", "4"), ("E", "5")])
        );
    }

    #[test]
    fn key_forms() {
        assert_eq!(
            parse("a.b-c_D=1\n_X=2").unwrap(),
            pairs(&[("a.b-c_D", "1"), ("_X", "2")])
        );
        // `export` alone before `=` is the key itself.
        assert_eq!(parse("export=1").unwrap(), pairs(&[("export", "1")]));
        assert_eq!(parse("export = 1").unwrap(), pairs(&[("export", "1")]));
        assert_eq!(parse("export export=1").unwrap(), pairs(&[("export", "1")]));
        assert_eq!(parse("exportX=1").unwrap(), pairs(&[("exportX", "1")]));
    }

    #[test]
    fn comments_blank_lines_crlf_bom() {
        let src = "\u{feff}# comment\r\n\r\n   \r\n\t# indented\r\nA=1\r\nB=\"x\r\ny\"\r\n";
        assert_eq!(parse(src).unwrap(), pairs(&[("A", "1"), ("B", "x\ny")]));
        assert!(parse("").unwrap().is_empty());
        assert!(parse("\u{feff}").unwrap().is_empty());
    }

    #[test]
    fn unquoted_values() {
        assert_eq!(value("A=b=c"), "b=c");
        assert_eq!(value("A=  spaced out  "), "spaced out");
        assert_eq!(value("A=x # comment"), "x");
        assert_eq!(value("A=x\t# comment"), "x");
        assert_eq!(value("URL=http://x/#frag"), "http://x/#frag");
        assert_eq!(value("A=#not-a-comment"), "#not-a-comment");
        assert_eq!(value("A= # only a comment"), "");
        assert_eq!(value("A=it's \"fine\""), "it's \"fine\"");
        assert_eq!(value(r"A=C:\path\n"), r"C:\path\n");
        assert_eq!(value(r"A=cost \$5"), "cost $5");
        assert_eq!(value("A=ünïcødé ✓"), "ünïcødé ✓");
    }

    #[test]
    fn empty_values() {
        assert_eq!(
            parse("A=\nB=\"\"\nC=''\nD= \n").unwrap(),
            pairs(&[("A", ""), ("B", ""), ("C", ""), ("D", "")])
        );
    }

    #[test]
    fn single_quotes_are_literal() {
        assert_eq!(
            value(r"A='$HOME \n ${X} # not a comment'"),
            r"$HOME \n ${X} # not a comment"
        );
        assert_eq!(value("A='a\nb'  # c"), "a\nb");
        assert_eq!(value("A = 'a b' # c"), "a b");
        assert_eq!(value("A='\"'"), "\"");
    }

    #[test]
    fn double_quotes_escapes_and_multiline() {
        assert_eq!(value(r#"A="a\nb\tc\rd\"e\\f\$g""#), "a\nb\tc\rd\"e\\f$g");
        assert_eq!(value(r#"A="C:\path""#), r"C:\path");
        assert_eq!(value("A=\"line1\nline2\"\n"), "line1\nline2");
        assert_eq!(value(r#"KEY = "a b" # c"#), "a b");
        assert_eq!(value(r##"A="# not a comment""##), "# not a comment");
        assert_eq!(value(r##"A="x"# comment"##), "x");
        assert_eq!(value("A=\"it's\""), "it's");
    }

    #[test]
    fn lines_after_multiline_values_are_counted() {
        let e = parse("A=\"1\n2\n3\"\nB='x\ny'\nbad line\n").unwrap_err();
        assert_eq!(e.line(), Some(6));
    }

    #[test]
    fn expansion_forms() {
        let env = [("HOME", "/home/u"), ("EMPTY", ""), ("my.var", "dot")];
        let v = |src: &str| parse_with(src, &env).unwrap()[0].1.clone();
        assert_eq!(v("A=$HOME/x"), "/home/u/x");
        assert_eq!(v("A=${HOME}x"), "/home/ux");
        assert_eq!(v("A=\"$HOME ${HOME}\""), "/home/u /home/u");
        assert_eq!(v("A=$UNSET."), ".");
        assert_eq!(v("A=${UNSET}"), "");
        assert_eq!(v("A=${UNSET:-dflt}"), "dflt");
        assert_eq!(v("A=${EMPTY:-dflt}"), "dflt");
        assert_eq!(v("A=${HOME:-dflt}"), "/home/u");
        assert_eq!(v("A=${UNSET-dflt}"), "dflt");
        assert_eq!(v("A=${EMPTY-dflt}"), "");
        assert_eq!(v("A=${UNSET:-}"), "");
        assert_eq!(v("A=${UNSET:-a b}"), "a b");
        assert_eq!(v("A=${UNSET:-$HOME/x}"), "/home/u/x");
        assert_eq!(v("A=${UNSET:-${EMPTY:-deep}}"), "deep");
        assert_eq!(v(r"A=${UNSET:-a\}b}"), "a}b");
        assert_eq!(v(r#"A="${UNSET:-a\"b\n}""#), "a\"b\n");
        assert_eq!(v("A=${my.var}"), "dot");
        assert_eq!(v("A=$my.var"), ".var");
        assert_eq!(v("A=$HOME_X"), "");
        assert_eq!(v("A=${UNSET:-x #y}"), "x #y");
        // Lone dollars are literal.
        assert_eq!(v("A=$"), "$");
        assert_eq!(v("A=$$"), "$$");
        assert_eq!(v("A=5$ and $1"), "5$ and $1");
        assert_eq!(v("A=\"$\""), "$");
        assert_eq!(v(r#"A="\$HOME""#), "$HOME");
        assert_eq!(v(r"A=\$HOME"), "$HOME");
        // Whitespace from an expansion is not trimmed, literal blanks are.
        let env = [("SP", " x ")];
        assert_eq!(parse_with("A=$SP  # c", &env).unwrap()[0].1, " x ");
    }

    #[test]
    fn expansion_precedence() {
        let env = [("A", "from-env"), ("PATH", "/bin")];
        let vars = parse_with(
            "B=$A\nA=from-file\nC=$A\nA=again\nD=${A}\nPATH=$PATH:./bin\n",
            &env,
        )
        .unwrap();
        assert_eq!(
            vars,
            pairs(&[
                ("B", "from-env"),
                ("A", "from-file"),
                ("C", "from-file"),
                ("A", "again"),
                ("D", "again"),
                ("PATH", "/bin:./bin"),
            ])
        );
        // Defined-but-empty in the file counts as set.
        let vars = parse_with("E=\nF=${E-dflt}\nG=${E:-dflt}", &[("E", "env")]).unwrap();
        assert_eq!(vars[1].1, "");
        assert_eq!(vars[2].1, "dflt");
    }

    #[test]
    fn missing_equals() {
        let e = error("A=1\nsk_live_SECRET\n", 2, "SECRET");
        assert!(matches!(e, EnvError::MissingEquals { .. }));
        let e = error("export\n", 1, "\u{0}");
        assert!(matches!(e, EnvError::MissingEquals { .. }));
        error("export FOO\n", 1, "\u{0}");
    }

    #[test]
    fn invalid_key() {
        for (src, line) in [
            ("1A=x", 1),
            ("\nA B=x", 2),
            ("=x", 1),
            ("A$=x", 1),
            ("-A=x", 1),
            ("\n\n'A'=x", 3),
        ] {
            let e = error(src, line, "\u{0}");
            assert!(matches!(e, EnvError::InvalidKey { .. }), "{src:?}: {e}");
        }
        // The text before `=` might be a secret pasted on the wrong line.
        let e = error("postgres://user:hunter2@db/x=1", 1, "hunter2");
        assert!(matches!(e, EnvError::InvalidKey { .. }));
    }

    #[test]
    fn unterminated_quotes_report_the_opening_line() {
        let e = error("A=1\nTOKEN=\"s3cret\nB=2\nC=3\n", 2, "s3cret");
        assert!(
            matches!(e, EnvError::UnterminatedQuote { quote: '"', ref key, .. } if key == "TOKEN")
        );
        assert!(e.to_string().contains("`TOKEN`"));
        let e = error("\n\nTOKEN='s3cret\n", 3, "s3cret");
        assert!(matches!(e, EnvError::UnterminatedQuote { quote: '\'', .. }));
        // An escaped quote does not close.
        error(r#"TOKEN="s3cret\""#, 1, "s3cret");
        // A trailing backslash does not close either.
        error("TOKEN=\"s3cret\\", 1, "s3cret");
    }

    #[test]
    fn garbage_after_closing_quote() {
        let e = error("A=1\nTOKEN=\"s3cret\"tail\n", 2, "s3cret");
        assert!(matches!(e, EnvError::TrailingCharacters { ref key, .. } if key == "TOKEN"));
        error("TOKEN='s3cret' tail", 1, "s3cret");
        // The line is the closing quote's line.
        error("TOKEN=\"s3\ncret\" tail", 2, "cret");
    }

    #[test]
    fn expansion_errors() {
        let e = error("A=1\nTOKEN=s3cret${HOME\n", 2, "s3cret");
        assert!(matches!(e, EnvError::UnterminatedExpansion { .. }));
        error("TOKEN=\"s3cret${HOME\"", 1, "s3cret");
        error("TOKEN=\"s3cret\n${HOME:-x\"", 2, "s3cret");
        error("TOKEN=s3cret${HOME:-x", 1, "s3cret");
        error("TOKEN=s3cret${", 1, "s3cret");
        for bad in [
            "${}", "${1}", "${A B}", "${A:?x}", "${A+x}", "${A:x}", "${-x}",
        ] {
            let e = error(&format!("TOKEN=s3cret{bad}"), 1, "s3cret");
            assert!(matches!(e, EnvError::InvalidExpansion { .. }), "{bad}: {e}");
        }
        let deep = format!("A={}x{}", "${U:-".repeat(40), "}".repeat(40));
        let e = error(&deep, 1, "\u{0}");
        assert!(matches!(e, EnvError::TooDeep { .. }));
        // Errors in an unused default still surface.
        let e = parse_with("A=${HOME:-${}", &[("HOME", "/h")]).unwrap_err();
        assert!(matches!(e, EnvError::InvalidExpansion { .. }));
    }

    #[test]
    fn load_merges_in_order_with_precedence() {
        let dir = tempfile::tempdir().unwrap();
        let base = dir.path().join(".env");
        let local = dir.path().join(".env.local");
        std::fs::write(&base, "A=1\nB=${CALLER}\nC=base\n").unwrap();
        std::fs::write(&local, "C=local-$A\nD=$C\nA=2\nE=$B\n").unwrap();
        let caller = |name: &str| match name {
            "CALLER" => Some("caller".to_string()),
            "A" | "C" => Some("caller-must-not-win".to_string()),
            _ => None,
        };
        let vars = load_env_files(&[base, local], &caller).unwrap();
        assert_eq!(
            vars,
            pairs(&[
                ("A", "2"),
                ("B", "caller"),
                ("C", "local-1"),
                ("D", "local-1"),
                ("E", "caller"),
            ])
        );
        assert!(load_env_files(&[], &caller).unwrap().is_empty());
    }

    #[test]
    fn load_missing_file_names_the_path() {
        let dir = tempfile::tempdir().unwrap();
        let present = dir.path().join(".env");
        std::fs::write(&present, "A=1\n").unwrap();
        let missing = dir.path().join(".env.missing");
        let e = load_env_files(&[present, missing.clone()], &|_| None).unwrap_err();
        assert_eq!(e.path(), missing);
        assert_eq!(e.line(), None);
        assert!(e.to_string().contains(".env.missing"), "{e}");
        assert!(e.to_string().contains("(no such file)"), "{e}");
    }

    #[test]
    fn load_reports_the_failing_file() {
        let dir = tempfile::tempdir().unwrap();
        let a = dir.path().join("a.env");
        let b = dir.path().join("b.env");
        std::fs::write(&a, "A=1\n").unwrap();
        std::fs::write(&b, "A=1\n\nB=\"s3cret\n").unwrap();
        let e = load_env_files(&[a, b.clone()], &|_| None).unwrap_err();
        assert_eq!(e.path(), b);
        assert_eq!(e.line(), Some(3));
        assert!(!e.to_string().contains("s3cret"));
        std::fs::write(&b, b"A=1\nB=\xff\n").unwrap();
        let e = load_env_files(&[b], &|_| None).unwrap_err();
        assert!(matches!(e, EnvError::NotUtf8 { line: 2, .. }), "{e}");
    }
}
