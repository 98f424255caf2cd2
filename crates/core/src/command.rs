//! How a Procfile command line is run: `/bin/sh -c LINE`, with `exec` in front of a simple
//! command.
//!
//! The shell then replaces itself with the program, so a stop signal reaches the program (not
//! a shell that exits at once while the program keeps running), the exit status is the
//! program's own, and each process costs one pid. Under Kubernetes this also makes the program
//! PID 1 of its container, the process the kubelet signals. Anything that needs the shell
//! (`;`, `&&`, pipes, redirections, subshells, globs, comments, a leading assignment or
//! variable, a builtin) is left exactly as written.

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

#[cfg(test)]
mod tests {
    use super::*;

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
