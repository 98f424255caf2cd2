//! `dozen run -a APP` and `dozen run:detached -a APP`: one-offs on the server.

use std::io::Write;
use std::process::ExitCode;

use anyhow::{Context, bail};
use dozen_server::frames::{self, Frame};
use reqwest::Method;

use super::{AppArgs, path, percent_encode, print};
use crate::client::Client;

/// `run` and `run:detached` on the server. The words go as a list; the server runs a single
/// word as a command line and quotes several, as the Heroku CLI does, so each reaches the
/// program as typed. Attached, this side's stdin is streamed to the one-off and its stdout and
/// stderr come back as bytes, exactly (see `dozen_server::frames`).
pub fn run(command: &[String], detached: bool, args: AppArgs) -> anyhow::Result<ExitCode> {
    let app = args.app()?;
    let client = Client::from_env()?;
    if detached {
        let body = dozen_api::RunRequest {
            argv: Some(command.to_vec()),
            detached: true,
            ..Default::default()
        };
        let v: dozen_api::RunStarted = client.call(Method::POST, &path(app, "/run"), &body)?;
        print(args.json, &v, |v| {
            println!("running as {} (dozen logs -a {app} --ps {0})", v.name)
        });
        return Ok(ExitCode::SUCCESS);
    }
    let argv = serde_json::to_string(command).context("encoding the command")?;
    let query = format!("/run?argv={}", percent_encode(&argv));
    let answer = client.duplex_raw(&path(app, &query), frames::CONTENT_TYPE, std::io::stdin())?;
    let mut reader = std::io::BufReader::with_capacity(256 * 1024, answer);
    let mut stdout = std::io::stdout().lock();
    let mut stderr = std::io::stderr().lock();
    loop {
        let written = match frames::read_frame(&mut reader)? {
            Some(Frame::Stdout(bytes)) => stdout.write_all(&bytes).and_then(|()| stdout.flush()),
            Some(Frame::Stderr(bytes)) => stderr.write_all(&bytes).and_then(|()| stderr.flush()),
            Some(Frame::Exit(v)) => {
                if let Some(err) = &v.error {
                    eprintln!("dozen: {err}");
                }
                let code = v.exit;
                return Ok(ExitCode::from(
                    u8::try_from(code.clamp(0, 255)).unwrap_or(1),
                ));
            }
            None => bail!(
                "the server ended the one-off without its exit status; see `dozen logs -a {app}`"
            ),
        };
        if let Err(e) = written {
            if e.kind() == std::io::ErrorKind::BrokenPipe {
                // Whatever read our output went away (the client usually dies of SIGPIPE
                // first, as Unix tools do); closing the connection stops the one-off. Exit
                // as a shell reports a writer killed by SIGPIPE.
                return Ok(ExitCode::from(128 + libc::SIGPIPE as u8));
            }
            return Err(anyhow::Error::from(e).context("writing the one-off's output"));
        }
    }
}
