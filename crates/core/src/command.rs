//! How a Procfile command line is run: `/bin/sh -c LINE`, with `exec` in front of a simple
//! command.
//!
//! The shell then replaces itself with the program, so a stop signal reaches the program (not
//! a shell that exits at once while the program keeps running), the exit status is the
//! program's own, and each process costs one pid. Under Kubernetes this also makes the program
//! PID 1 of its container, the process the kubelet signals. Anything that needs the shell
//! (`;`, `&&`, pipes, redirections, subshells, globs, comments, a leading assignment or
//! variable, a builtin) is left exactly as written.
//!
//! It also turns the words of `dozen run -a APP -- WORDS...` into that line again ([`shell_line`]),
//! each word quoted so that the program gets exactly the arguments the user typed.

/// The interpreter every Procfile command runs under.
pub const SHELL: &str = "/bin/sh";

/// Characters that make a command line more than one simple command.
const SHELL_SYNTAX: &[char] = &[
    ';', '&', '|', '<', '>', '(', ')', '{', '}', '`', '\n', '#', '\\', '*', '?', '[',
];

/// Words that are shell builtins or keywords: `exec` in front of them would fail or change
/// their meaning.
const BUILTINS: &[&str] = &[
    "!", ".", ":", "alias", "break", "case", "cd", "command", "continue", "eval", "exec", "exit",
    "export", "for", "getopts", "if", "local", "read", "readonly", "return", "set", "shift",
    "source", "times", "trap", "ulimit", "umask", "unset", "until", "wait", "while",
];

/// The line handed to `sh -c` for a Procfile `command`.
///
/// ```
/// use dozen_core::command::exec_form;
/// assert_eq!(exec_form("bundle exec puma -p $PORT"), "exec bundle exec puma -p $PORT");
/// assert_eq!(exec_form("./migrate && ./serve"), "./migrate && ./serve");
/// ```
pub fn exec_form(command: &str) -> String {
    let line = command.trim();
    let first = line.split_whitespace().next().unwrap_or("");
    let simple = !line.is_empty()
        && !line.contains(SHELL_SYNTAX)
        && !first.contains(['=', '$'])
        && !first.starts_with(['\'', '"'])
        && !BUILTINS.contains(&first);
    if simple {
        format!("exec {line}")
    } else {
        command.to_string()
    }
}

/// The argument vector that runs a Procfile `command`: `["/bin/sh", "-c", exec_form(command)]`.
pub fn argv(command: &str) -> [String; 3] {
    [SHELL.to_string(), "-c".to_string(), exec_form(command)]
}

/// Characters a word may hold and still mean itself to `sh` without quotes.
fn plain_word_char(c: char) -> bool {
    c.is_ascii_alphanumeric()
        || matches!(c, '_' | '-' | '.' | '/' | ',' | ':' | '=' | '+' | '@' | '%')
}

/// `word` written so that `sh` reads it back as exactly this one word: as it is when it holds
/// only characters with no meaning to the shell, otherwise in single quotes (a `'` inside
/// becomes `'\''`). The empty word is `''`.
///
/// ```
/// use dozen_core::command::shell_quote;
/// assert_eq!(shell_quote("manage.py"), "manage.py");
/// assert_eq!(shell_quote("echo $HOME"), "'echo $HOME'");
/// assert_eq!(shell_quote("it's"), r"'it'\''s'");
/// assert_eq!(shell_quote(""), "''");
/// ```
pub fn shell_quote(word: &str) -> String {
    if !word.is_empty() && word.chars().all(plain_word_char) {
        return word.to_string();
    }
    format!("'{}'", word.replace('\'', r"'\''"))
}

/// The command line for `sh -c` that runs the words a user typed, as the Heroku CLI builds it
/// for `heroku run`: a single word is a command line of its own (so
/// `"head -c 10 /dev/zero | wc -c"` keeps its pipe); several words are each quoted when they
/// need it ([`shell_quote`]) and joined with spaces, so the program gets exactly these
/// arguments.
///
/// ```
/// use dozen_core::command::shell_line;
/// let words = |w: &[&str]| w.iter().map(|s| s.to_string()).collect::<Vec<_>>();
/// assert_eq!(shell_line(&words(&["ls -l | wc -l"])), "ls -l | wc -l");
/// assert_eq!(
///     shell_line(&words(&["sh", "-c", "echo one off; exit 3"])),
///     "sh -c 'echo one off; exit 3'"
/// );
/// ```
pub fn shell_line(words: &[String]) -> String {
    match words {
        [one] => one.clone(),
        many => many
            .iter()
            .map(|w| shell_quote(w))
            .collect::<Vec<_>>()
            .join(" "),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The arguments `sh -c LINE` gives the program `printf`, as `sh` parses LINE.
    fn words_through_sh(line: &str) -> Vec<String> {
        let out = std::process::Command::new(SHELL)
            .arg("-c")
            .arg(format!(
                r#"set -- {line}; for w in "$@"; do printf '%s\0' "$w"; done"#
            ))
            .output()
            .expect("run /bin/sh");
        assert!(out.status.success(), "sh -c failed on {line:?}");
        String::from_utf8(out.stdout)
            .expect("utf-8")
            .split_terminator('\0')
            .map(str::to_string)
            .collect()
    }

    #[test]
    fn quoted_words_reach_the_program_unchanged() {
        let words: Vec<String> = [
            "two words",
            "it's",
            r#"say "hi""#,
            "$HOME",
            "*",
            "",
            "line one\nline two",
            r"back\slash",
            "`date`",
            "a;b|c&d>e<f",
            "~",
            "#not-a-comment",
            "plain-word_1.2/x:y=z+@%,",
            "ünïcode",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        for w in &words {
            assert_eq!(
                words_through_sh(&shell_quote(w)),
                std::slice::from_ref(w),
                "{w:?}"
            );
        }
        let mut argv = vec!["printf".to_string()];
        argv.extend(words.iter().cloned());
        let line = shell_line(&argv);
        assert_eq!(words_through_sh(&line), argv, "{line}");
    }

    #[test]
    fn one_word_is_a_command_line() {
        assert_eq!(
            shell_line(&["echo a | tr a b".to_string()]),
            "echo a | tr a b"
        );
        assert_eq!(shell_quote("plain"), "plain");
    }

    #[test]
    fn a_simple_command_is_execed() {
        assert_eq!(exec_form("python3 web.py"), "exec python3 web.py");
        assert_eq!(exec_form("  ./serve  "), "exec ./serve");
        assert_eq!(
            argv("./serve"),
            ["/bin/sh".to_string(), "-c".into(), "exec ./serve".into()]
        );
    }

    #[test]
    fn shell_syntax_and_builtins_are_left_alone() {
        for line in [
            "a; b",
            "a && b",
            "a | b",
            "a > log",
            "PORT=1 ./run",
            "$RUN arg",
            "cd sub && ./run",
            "trap '' TERM",
            "(sub)",
            "ls *.py",
            "echo # note",
            "'quoted prog' arg",
            "exec ./serve",
            "gunicorn 'app:create()'",
        ] {
            assert_eq!(exec_form(line), line, "{line}");
        }
    }
}
