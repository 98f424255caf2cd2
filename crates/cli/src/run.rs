//! `dozen run`: one command, once, in the app's environment, in dozen's place.
//!
//! dozen replaces itself with the command (`exec`), so the terminal, stdin, signals and the
//! exit status belong to the command alone, and nothing is left behind when it ends.

use std::os::unix::process::CommandExt;
use std::process::{Command, ExitCode};

use crate::cli::RunArgs;
use crate::project::Project;

pub fn run(args: RunArgs) -> anyhow::Result<ExitCode> {
    let project = Project::load(&args.project, false)?;
    let words = &args.command;
    let mut cmd = match words.as_slice() {
        [one] => {
            // A Procfile process type by name runs that type's command, as with foreman.
            let line = project
                .procfile
                .as_ref()
                .and_then(|p| p.get(one))
                .map(|t| t.command.clone())
                .unwrap_or_else(|| one.clone());
            let mut c = Command::new("/bin/sh");
            c.arg("-c").arg(line);
            c
        }
        [program, rest @ ..] => {
            let mut c = Command::new(program);
            c.args(rest);
            c
        }
        [] => {
            anyhow::bail!("nothing to run: give a command, e.g. dozen run -- ./manage.py migrate")
        }
    };
    if let Some(note) = project.run_env_note() {
        // On stderr: stdout belongs to the command (`dozen run -- ./dump > file`).
        eprintln!("dozen: {note}");
    }
    cmd.current_dir(&project.root)
        .envs(project.process_env(args.project.port, "run.1"));
    // SAFETY: only `signal`, which is async-signal-safe, runs between fork and exec (and here,
    // with exec in place of dozen, before exec in the same process).
    unsafe {
        cmd.pre_exec(|| {
            // dozen ignores SIGPIPE; the command must get the default back.
            libc::signal(libc::SIGPIPE, libc::SIG_DFL);
            Ok(())
        });
    }
    let err = cmd.exec();
    // exec returns only on failure. Exit as a shell would: 127 not found, 126 not runnable.
    let code = if err.kind() == std::io::ErrorKind::NotFound {
        127
    } else {
        126
    };
    eprintln!("dozen: could not run `{}`: {err}", words[0]);
    Ok(ExitCode::from(code))
}
