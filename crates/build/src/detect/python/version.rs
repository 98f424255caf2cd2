//! Which Python an app asks for, which ones the host has, and which one its build uses.

use std::path::{Path, PathBuf};

use super::super::{Host, missing, read_optional};
use crate::error::BuildError;

/// A version an app asks for: major, minor and maybe patch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Asked {
    pub(super) major: u32,
    pub(super) minor: u32,
    pub(super) patch: Option<u32>,
}

impl std::fmt::Display for Asked {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}.{}", self.major, self.minor)?;
        if let Some(p) = self.patch {
            write!(f, ".{p}")?;
        }
        Ok(())
    }
}

/// An interpreter the host has.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Interpreter {
    pub(super) version: (u32, u32, u32),
    pub(super) exe: PathBuf,
}

impl Interpreter {
    pub(super) fn version(&self) -> String {
        let (a, b, c) = self.version;
        format!("{a}.{b}.{c}")
    }
}

/// The version asked for, and the file that asks: `.python-version` first, then
/// `runtime.txt`.
pub(super) fn asked_version(dir: &Path) -> Result<Option<(Asked, &'static str)>, BuildError> {
    if let Some(text) = read_optional(dir, ".python-version")? {
        for (i, line) in text.lines().enumerate() {
            let t = line.trim();
            if t.is_empty() || t.starts_with('#') {
                continue;
            }
            return match parse_version(t.strip_prefix("python-").unwrap_or(t)) {
                Some(v) => Ok(Some((v, ".python-version"))),
                None => Err(BuildError::Manifest {
                    file: ".python-version".into(),
                    line: Some(i + 1),
                    message: format!(
                        "`{t}` is not a Python version; write one such as 3.12 or 3.12.1"
                    ),
                }),
            };
        }
    }
    if let Some(text) = read_optional(dir, "runtime.txt")? {
        let t = text.trim();
        let line = text.lines().position(|l| !l.trim().is_empty()).unwrap_or(0) + 1;
        return match t.strip_prefix("python-").and_then(parse_version) {
            Some(v) => Ok(Some((v, "runtime.txt"))),
            None => Err(BuildError::Manifest {
                file: "runtime.txt".into(),
                line: Some(line),
                message: format!(
                    "`{}` is not a Python runtime; write one such as python-3.12.1",
                    t.lines().next().unwrap_or_default()
                ),
            }),
        };
    }
    Ok(None)
}

fn parse_version(s: &str) -> Option<Asked> {
    let parts: Vec<&str> = s.split('.').collect();
    let num = |p: &str| -> Option<u32> {
        if p.is_empty() || !p.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        p.parse().ok()
    };
    match parts.as_slice() {
        [a, b] => Some(Asked {
            major: num(a)?,
            minor: num(b)?,
            patch: None,
        }),
        [a, b, c] => Some(Asked {
            major: num(a)?,
            minor: num(b)?,
            patch: Some(num(c)?),
        }),
        _ => None,
    }
}

/// The interpreters of one major version that can make a virtualenv with pip: on `PATH`,
/// `pythonX` first (the host's default), then `pythonX.N`; then those pyenv installed under
/// `$PYENV_ROOT/versions` (when the build environment has `PYENV_ROOT`); each only once.
pub(super) fn interpreters(host: &Host, major: u32) -> Vec<Interpreter> {
    const PROBE: &str = "import sys, venv, ensurepip; print(sys.executable); print('%d.%d.%d' % sys.version_info[:3])";
    let mut names = vec![format!("python{major}")];
    names.extend((0..=30).map(|n| format!("python{major}.{n}")));
    let shims = host.var("PYENV_ROOT").map(|r| Path::new(r).join("shims"));
    let shims = shims.as_deref();
    let mut candidates: Vec<PathBuf> = names
        .iter()
        .enumerate()
        .flat_map(|(i, n)| {
            // pyenv's `pythonX.N` shims are slow scripts that run only the selected version,
            // which its installs below cover; its `pythonX` is the host's default.
            host.which_all(n)
                .into_iter()
                .filter(move |p| i == 0 || shims.is_none_or(|s| !p.starts_with(s)))
        })
        .collect();
    // pyenv's shims only run the versions pyenv has selected: ask its installs directly.
    if let Some(root) = host.var("PYENV_ROOT") {
        let mut installs: Vec<PathBuf> = std::fs::read_dir(Path::new(root).join("versions"))
            .into_iter()
            .flatten()
            .flatten()
            .map(|e| e.path().join("bin").join(format!("python{major}")))
            .filter(|p| p.is_file() && host.may_run(p))
            .collect();
        installs.sort();
        candidates.extend(installs);
    }
    // Probe them all at once: each is a process start, some of them slow.
    let outputs: Vec<Option<String>> = std::thread::scope(|scope| {
        let probes: Vec<_> = candidates
            .iter()
            .map(|path| scope.spawn(move || host.output(path, &["-c", PROBE])))
            .collect();
        probes
            .into_iter()
            .map(|p| p.join().unwrap_or_default())
            .collect()
    });
    let mut found: Vec<Interpreter> = Vec::new();
    for out in outputs {
        let Some(out) = out else {
            continue;
        };
        let mut lines = out.lines();
        let (Some(exe), Some(version)) = (lines.next(), lines.next()) else {
            continue;
        };
        let v: Vec<u32> = version.split('.').filter_map(|p| p.parse().ok()).collect();
        let [a, b, c] = v[..] else { continue };
        let exe = std::fs::canonicalize(exe).unwrap_or_else(|_| PathBuf::from(exe));
        if found.iter().any(|f| f.exe == exe) {
            continue;
        }
        found.push(Interpreter {
            version: (a, b, c),
            exe,
        });
    }
    found
}

/// The Python a build uses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Pick {
    /// One the host has.
    Host(Interpreter),
    /// The version asked for, downloaded by the build (the host has none of its minor);
    /// `fallback` is the host's nearest of the same major, used when the download fails.
    Download {
        asked: Asked,
        fallback: Option<Interpreter>,
    },
}

/// Pick the interpreter for `asked` among `have` (the first is the host's default), and what
/// to say about the choice. With `download`, a version whose minor the host lacks is
/// downloaded; without, the nearest minor of the same major stands in for it.
pub(super) fn choose(
    asked: Option<(Asked, &'static str)>,
    have: &[Interpreter],
    detected_from: &'static str,
    download: bool,
) -> Result<(Pick, Option<String>), BuildError> {
    let Some((asked, file)) = asked else {
        let Some(first) = have.first() else {
            return Err(missing("python3", detected_from, "python"));
        };
        return Ok((
            Pick::Host(first.clone()),
            Some(format!(
                "using Python {} ({}), the host's python3: no .python-version or runtime.txt asks for a version",
                first.version(),
                first.exe.display()
            )),
        ));
    };
    let list = || {
        if have.is_empty() {
            "none".to_string()
        } else {
            have.iter()
                .map(|i| format!("{} ({})", i.version(), i.exe.display()))
                .collect::<Vec<_>>()
                .join(", ")
        }
    };
    let same_line: Vec<&Interpreter> = have
        .iter()
        .filter(|i| i.version.0 == asked.major && i.version.1 == asked.minor)
        .collect();
    if let Some(exact) = same_line
        .iter()
        .find(|i| asked.patch.is_none_or(|p| i.version.2 == p))
        .or(same_line.first())
    {
        let note = format!(
            "using Python {} ({}): {file} asks for {asked}",
            exact.version(),
            exact.exe.display()
        );
        return Ok((Pick::Host((*exact).clone()), Some(note)));
    }
    let nearest = have
        .iter()
        .filter(|i| i.version.0 == asked.major)
        .min_by_key(|i| {
            let d = i.version.1.abs_diff(asked.minor);
            // Equally far: the newer minor first.
            (d, i.version.1 < asked.minor)
        });
    // uv offers CPython 3 only.
    if download && asked.major == 3 {
        let otherwise = match nearest {
            Some(n) => format!(
                "; should the download fail, the build goes on with {}, the nearest",
                n.version()
            ),
            None => String::new(),
        };
        return Ok((
            Pick::Download {
                asked,
                fallback: nearest.cloned(),
            },
            Some(format!(
                "{file} asks for Python {asked}, which this host does not have (it has {}): downloading it with uv into the app's build cache (once), and the slug carries it{otherwise}",
                list()
            )),
        ));
    }
    match nearest {
        Some(n) => Ok((
            Pick::Host(n.clone()),
            Some(format!(
                "warning: {file} asks for Python {asked}, which this host does not have; it has {}; using {}, the nearest with the same major version ({})",
                list(),
                n.version(),
                if download {
                    format!("no Python {} to download", asked.major)
                } else {
                    "DOZEN_PYTHON_DOWNLOADS=never: no download".to_string()
                }
            )),
        )),
        None => Err(BuildError::PythonVersion {
            file: file.into(),
            asked: asked.to_string(),
            available: list(),
        }),
    }
}

#[cfg(test)]
pub(super) mod tests {
    use super::super::super::tests::{FakeHost, app};
    use super::*;

    /// A fake interpreter: answers the probe with its own path and `version`.
    pub(in crate::detect) fn fake_python(version: &str) -> String {
        format!("echo \"$0\"; echo {version}")
    }

    fn interp(v: (u32, u32, u32)) -> Interpreter {
        Interpreter {
            version: v,
            exe: PathBuf::from(format!("/usr/bin/python{}.{}", v.0, v.1)),
        }
    }

    fn ask(s: &str) -> Option<(Asked, &'static str)> {
        Some((parse_version(s).expect("version"), "runtime.txt"))
    }

    #[test]
    fn python_version_exact_then_nearest_same_major_then_error() {
        let have = [interp((3, 11, 7)), interp((3, 9, 18)), interp((3, 13, 0))];
        let host = |asked, download| match choose(asked, &have, "requirements.txt", download) {
            Ok((Pick::Host(i), note)) => (i.version, note.unwrap_or_default()),
            other => panic!("not the host's: {other:?}"),
        };
        for download in [false, true] {
            let (v, note) = host(ask("3.13"), download);
            assert_eq!(v, (3, 13, 0));
            assert!(!note.contains("warning"), "{note}");
            let (v, _) = host(ask("3.11.2"), download);
            assert_eq!(v, (3, 11, 7), "same minor, other patch");
            assert_eq!(host(None, download).0, (3, 11, 7), "the host's default");
        }
        let (v, note) = host(ask("3.12.1"), false);
        assert_eq!(v, (3, 13, 0), "equally far: the newer");
        assert!(note.contains("asks for Python 3.12.1"), "{note}");
        assert!(note.contains("3.9.18"), "lists what the host has: {note}");
        assert!(note.contains("DOZEN_PYTHON_DOWNLOADS=never"), "{note}");
        assert_eq!(host(ask("3.10"), false).0, (3, 11, 7), "3.9 and 3.11: 3.11");
        for download in [false, true] {
            let e = choose(ask("4.0"), &have, "requirements.txt", download)
                .unwrap_err()
                .to_string();
            assert!(e.contains("runtime.txt asks for Python 4.0"), "{e}");
            assert!(e.contains("3.11.7"), "{e}");
        }
    }

    #[test]
    fn a_minor_the_host_lacks_is_downloaded_with_the_nearest_to_fall_back_on() {
        let have = [interp((3, 11, 7)), interp((3, 9, 18))];
        let (pick, note) = choose(ask("3.14"), &have, "requirements.txt", true).expect("pick");
        assert_eq!(
            pick,
            Pick::Download {
                asked: parse_version("3.14").expect("version"),
                fallback: Some(interp((3, 11, 7))),
            }
        );
        let note = note.expect("note");
        assert!(note.contains("runtime.txt asks for Python 3.14"), "{note}");
        assert!(note.contains("downloading it with uv"), "{note}");
        assert!(note.contains("3.11.7, the nearest"), "{note}");
        let (pick, note) = choose(ask("3.14.2"), &[], "requirements.txt", true).expect("pick");
        assert!(
            matches!(pick, Pick::Download { fallback: None, asked } if asked.patch == Some(2)),
            "{pick:?}"
        );
        assert!(!note.expect("note").contains("nearest"));
    }

    #[test]
    fn python_version_files_are_read_and_bad_ones_named_with_their_line() {
        let dir = app(&[("runtime.txt", "python-3.12.1\n")]);
        let (v, f) = asked_version(dir.path()).expect("ok").expect("some");
        assert_eq!((v.to_string(), f), ("3.12.1".into(), "runtime.txt"));
        let dir = app(&[("runtime.txt", "\npython3.12\n")]);
        let e = asked_version(dir.path()).unwrap_err().to_string();
        assert!(e.starts_with("runtime.txt:2:"), "{e}");
        let dir = app(&[
            (".python-version", "# pinned\n3.12\n"),
            ("runtime.txt", "x"),
        ]);
        let (v, f) = asked_version(dir.path()).expect("ok").expect("some");
        assert_eq!((v.to_string(), f), ("3.12".into(), ".python-version"));
        let dir = app(&[(".python-version", "\nsystem\n")]);
        let e = asked_version(dir.path()).unwrap_err().to_string();
        assert!(e.starts_with(".python-version:2:"), "{e}");
    }

    #[test]
    fn interpreters_are_probed_on_path_and_deduplicated() {
        let fake = FakeHost::new(&[
            ("python3", &fake_python("3.11.7")),
            ("python3.11", &fake_python("3.11.7")),
            (
                "python3.12",
                "echo 'pyenv: python3.12: command not found' >&2; exit 127",
            ),
            ("python3.13", &fake_python("3.13.0")),
        ]);
        let dir = app(&[]);
        let found = interpreters(&fake.host(dir.path(), &[]), 3);
        let versions: Vec<_> = found.iter().map(|i| i.version).collect();
        // python3 and python3.11 are two files here, so both count; the failing shim does not.
        assert_eq!(versions, [(3, 11, 7), (3, 11, 7), (3, 13, 0)]);
    }

    #[test]
    fn pyenv_installs_count_although_their_shims_fail() {
        let fake = FakeHost::new(&[("python3", &fake_python("3.11.7"))]);
        let root = tempfile::tempdir().expect("tempdir");
        for v in ["3.13.0", "2.7.18"] {
            let bin = root.path().join("versions").join(v).join("bin");
            std::fs::create_dir_all(&bin).expect("mkdir");
            let major = &v[..1];
            let p = bin.join(format!("python{major}"));
            std::fs::write(&p, format!("#!/bin/sh\n{}\n", fake_python(v))).expect("write");
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).expect("chmod");
        }
        let dir = app(&[]);
        let root = root.path().display().to_string();
        let host = fake.host(dir.path(), &[("PYENV_ROOT", root.as_str())]);
        let versions: Vec<_> = interpreters(&host, 3).iter().map(|i| i.version).collect();
        assert_eq!(versions, [(3, 11, 7), (3, 13, 0)]);
    }
}
