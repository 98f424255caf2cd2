//! `dozen start` and `dozen check`: the Procfile's formation under the supervisor.

use std::io::IsTerminal;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use dozen_logs::{EventKind, Format, LogWriter, Output, PlatformEvent, TimeStyle};
use dozen_supervise::{Policy, ProcessSpec, RestartPolicy, Stop, Supervisor};
use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::watch;

use crate::cli::{CheckArgs, OutputArgs, Restart, StartArgs};
use crate::project::Project;

pub fn start(args: StartArgs) -> anyhow::Result<ExitCode> {
    let project = Project::load(&args.project, true)?;
    let plan = project.plan(args.formation.as_deref(), args.project.port, &args.only)?;
    if plan.is_empty() {
        anyhow::bail!(
            "{}: nothing to run: the formation starts no process",
            project.procfile_path.display()
        );
    }
    let policy = Policy {
        restart: match args.restart {
            Restart::Never => RestartPolicy::Never,
            Restart::OnFailure => RestartPolicy::OnFailure,
            Restart::Always => RestartPolicy::Always,
        },
        backoff_initial: seconds("--backoff", args.backoff)?,
        crash_limit: args.crash_limit,
        crash_window: seconds("--crash-window", args.crash_window)?,
        grace: seconds("-t/--timeout", args.timeout)?,
        ..Policy::default()
    };
    let specs: Vec<ProcessSpec> = plan
        .iter()
        .map(|inst| ProcessSpec {
            name: inst.name(),
            command: inst.command.clone(),
            env: project.process_env(inst.port, &inst.name()),
            cwd: project.root.clone(),
            port: Some(inst.port),
            color: inst.type_index,
            clear_env: false,
            log: None,
            confine: None,
            limits: None,
        })
        .collect();
    let note = project.run_env_note();
    let width = specs.iter().map(|s| s.name.len()).max().unwrap_or(0);
    let format = output_format(&args.output, width);
    let (writer, log) =
        LogWriter::spawn(format, Output::Stdout).context("starting the log writer")?;

    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .enable_time()
        .build()
        .context("starting the runtime")?;
    let outcome = runtime.block_on(async move {
        let (stop_tx, stop_rx) = watch::channel(Stop::Running);
        let supervisor = match Supervisor::new(policy, log.clone(), true) {
            Ok(s) => s,
            Err(e) => {
                let _ = log
                    .event(PlatformEvent::new(EventKind::Error, e.to_string()))
                    .await;
                return Err(anyhow::Error::from(e));
            }
        };
        if let Some(note) = note {
            let _ = log.event(PlatformEvent::new(EventKind::Info, note)).await;
        }
        drop(log);
        let signals = tokio::spawn(forward_signals(stop_tx));
        // Once the formation is up, the start-up code's pages need not stay resident.
        let trim = tokio::spawn(async {
            tokio::time::sleep(Duration::from_secs(2)).await;
            crate::trim::release_startup_pages();
        });
        let outcome = supervisor.run(specs, stop_rx).await;
        signals.abort();
        trim.abort();
        Ok(outcome)
    });
    // The runtime holds the last log senders in its tasks; drop it so the writer can finish.
    drop(runtime);
    let written = writer.finish();
    let outcome = outcome?;
    if let Err(e) = written {
        // The reader of our output went away (a closed pipe); nothing more can be shown there.
        if e.kind() != std::io::ErrorKind::BrokenPipe {
            eprintln!("dozen: writing output: {e}");
        }
    }
    Ok(ExitCode::from(
        u8::try_from(outcome.code.clamp(0, 255)).unwrap_or(1),
    ))
}

/// SIGINT, SIGTERM and SIGHUP ask for a graceful stop; a second one, for an immediate one.
async fn forward_signals(stop: watch::Sender<Stop>) {
    let (Ok(mut int), Ok(mut term), Ok(mut hup)) = (
        signal(SignalKind::interrupt()),
        signal(SignalKind::terminate()),
        signal(SignalKind::hangup()),
    ) else {
        return;
    };
    let mut asked = false;
    loop {
        let sig = tokio::select! {
            _ = int.recv() => libc::SIGINT,
            _ = term.recv() => libc::SIGTERM,
            _ = hup.recv() => libc::SIGHUP,
        };
        let request = if asked {
            Stop::Now
        } else {
            Stop::Graceful { signal: Some(sig) }
        };
        asked = true;
        if stop.send(request).is_err() {
            return;
        }
    }
}

fn seconds(flag: &str, value: f64) -> anyhow::Result<Duration> {
    Duration::try_from_secs_f64(value)
        .ok()
        .with_context(|| format!("{flag}: `{value}` is not a number of seconds (0 or more)"))
}

fn output_format(args: &OutputArgs, width: usize) -> Format {
    let json = args.json
        || std::env::var("DOZEN_LOG_FORMAT").is_ok_and(|v| v.eq_ignore_ascii_case("json"));
    if json {
        return Format::json();
    }
    let no_color_env = std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty());
    let color = !args.no_color && !no_color_env && std::io::stdout().is_terminal();
    let time = if args.no_timestamp {
        TimeStyle::None
    } else {
        TimeStyle::Local
    };
    Format::human(color, time, width)
}

pub fn check(args: CheckArgs) -> anyhow::Result<ExitCode> {
    let project = Project::load(&args.project, true)?;
    let procfile = project.procfile()?;
    let plan = project.plan(args.formation.as_deref(), args.project.port, &[])?;
    if args.json {
        let report = serde_json::json!({
            "procfile": project.procfile_path.display().to_string(),
            "types": procfile.types.iter().map(|t| serde_json::json!({
                "name": t.name, "command": t.command, "line": t.line,
            })).collect::<Vec<_>>(),
            "env_files": project.env_files.iter().map(|f| f.display().to_string()).collect::<Vec<_>>(),
            // Keys only: values are config, and config may be secret.
            "env_keys": project.env.iter().map(|(k, _)| k.as_str()).collect::<Vec<_>>(),
            "processes": plan.iter().map(|i| serde_json::json!({"name": i.name(), "port": i.port})).collect::<Vec<_>>(),
        });
        println!("{report}");
        return Ok(ExitCode::SUCCESS);
    }
    let width = procfile
        .types
        .iter()
        .map(|t| t.name.len())
        .max()
        .unwrap_or(0);
    println!(
        "{}: valid, {} process type(s)",
        project.procfile_path.display(),
        procfile.types.len()
    );
    for t in &procfile.types {
        println!("  {:<width$}  {}", t.name, t.command);
    }
    if project.env_files.is_empty() {
        println!("env files: none");
    }
    for f in &project.env_files {
        println!("{}: valid", f.display());
    }
    if !project.env.is_empty() {
        // Keys only: values are config, and config may be secret.
        let keys: Vec<&str> = project.env.iter().map(|(k, _)| k.as_str()).collect();
        println!("  variables: {}", keys.join(", "));
    }
    println!("formation (base port {}):", args.project.port);
    let pwidth = plan.iter().map(|i| i.name().len()).max().unwrap_or(0);
    for inst in &plan {
        println!("  {:<pwidth$}  port {}", inst.name(), inst.port);
    }
    Ok(ExitCode::SUCCESS)
}
