//! A Python the host does not have: downloaded by the build with uv, then copied into the
//! app's `.venv`, so the slug carries a whole interpreter.
//!
//! uv installs CPython builds of the python-build-standalone project (checked against the
//! digests uv ships with) into `$CACHE_DIR/python`, so the next build of the app finds it there.
//! The virtualenv made from it links to that cache, which a release must not depend on (the
//! cache is the build's, and can be cleared): [`FOLD`] copies the interpreter and its standard
//! library into `.venv` and removes `pyvenv.cfg`, which leaves a Python of its own whose
//! `site-packages` is the virtualenv's. Those builds find their library and standard library
//! relative to the executable, so the tree runs wherever a release is extracted.
//!
//! `DOZEN_PYTHON_DOWNLOADS=never` (in the server's environment, or `[build.env]` of
//! `dozen.toml`) turns downloads off: the host's nearest minor stands in, as before. The uv
//! settings of a mirror (`UV_PYTHON_INSTALL_MIRROR`, `UV_PYTHON_DOWNLOADS_JSON_URL`) are passed
//! from the server's environment.

use super::super::{Host, sh_quote};
use super::version::{Asked, Interpreter};
use crate::error::BuildError;

/// The setting that allows downloads (`auto`, the default) or not (`never`).
pub(super) const SETTING: &str = "DOZEN_PYTHON_DOWNLOADS";

/// Where uv installs Pythons, and keeps its cache: the app's build cache.
const UV_ENV: &str = "UV_PYTHON_INSTALL_DIR=\"$CACHE_DIR/python\" UV_CACHE_DIR=\"$CACHE_DIR/uv\"";

/// Turns the virtualenv made from a downloaded Python (its base under `$CACHE_DIR/python`) into
/// a Python of its own: the standard library and shared library copied into `.venv/lib` (not
/// the base's `site-packages`, its test suite, static libraries, or uv's `EXTERNALLY-MANAGED`
/// marker), the executable copied over the link to it, links that point outside `.venv`
/// pointed at it, `pyvenv.cfg` removed; then the interpreter is started to prove it runs on
/// its own. A virtualenv made from the host's Python (the download failed) is left as it is.
pub(super) const FOLD: &str = concat!(
    "base=$(.venv/bin/python -c 'import sys; print(sys.base_prefix)') && case \"$base\" in \"$CACHE_DIR\"/python/*) ",
    "v=$(.venv/bin/python -c 'import sys; print(\"python%d.%d\" % sys.version_info[:2])') && ",
    "(cd \"$base/lib\" && tar cf - --exclude=\"./$v/site-packages\" --exclude=\"./$v/EXTERNALLY-MANAGED\" --exclude=\"./$v/test\" --exclude='*.a' .) | tar xf - -C .venv/lib && ",
    "cp \"$base/bin/$v\" \".venv/bin/$v.new\" && mv -f \".venv/bin/$v.new\" \".venv/bin/$v\" && ",
    "for f in .venv/bin/*; do if [ -L \"$f\" ]; then case \"$(readlink \"$f\")\" in /*) ln -sf \"$v\" \"$f\";; esac; fi; done && ",
    "rm .venv/pyvenv.cfg && ",
    ".venv/bin/python -c 'import sys; assert sys.prefix == sys.base_prefix, sys.prefix; print(\"copied Python %d.%d.%d into .venv: the slug carries its interpreter\" % sys.version_info[:3])';; ",
    "esac"
);

/// Whether the build may download a Python: [`SETTING`] is unset, empty or `auto`, not
/// `never`. Another value is an error naming the setting.
pub(super) fn allowed(host: &Host) -> Result<bool, BuildError> {
    match host.var(SETTING).map(str::trim) {
        None | Some("" | "auto") => Ok(true),
        Some("never") => Ok(false),
        Some(other) => Err(BuildError::Manifest {
            file: SETTING.into(),
            line: None,
            message: format!(
                "`{}` is not a setting: write auto (the default: download a Python the host does not have) or never",
                other.chars().take(40).collect::<String>()
            ),
        }),
    }
}

/// The step that installs `asked` with `uv` (a shell word) into the build cache and makes
/// `.venv` from it. When that fails, `.venv` is made from `fallback` with a warning, or, with
/// no fallback, the step fails saying what to do.
pub(super) fn download_step(uv: &str, asked: Asked, fallback: Option<&Interpreter>) -> String {
    let fetch = format!(
        "{UV_ENV} {uv} python install --no-bin {asked} && base=$({UV_ENV} {uv} python find --managed-python --no-python-downloads {asked}) && \"$base\" -m venv .venv"
    );
    match fallback {
        Some(f) => format!(
            "if {fetch}; then :; else echo \"warning: could not download Python {asked} (above); building with the host's Python {} instead\" >&2 && rm -rf .venv && {} -m venv --copies .venv; fi",
            f.version(),
            sh_quote(&f.exe.to_string_lossy())
        ),
        None => format!(
            "{fetch} || {{ echo \"could not download Python {asked} (above), and the host has no Python {} to build with instead: install one on the host, or let builds reach the download (a mirror: UV_PYTHON_INSTALL_MIRROR in the server's environment)\" >&2; exit 1; }}",
            asked.major
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::super::super::tests::{FakeHost, app};
    use super::*;

    #[test]
    fn downloads_are_on_unless_never_and_a_bad_setting_is_named() {
        let fake = FakeHost::new(&[]);
        let dir = app(&[]);
        for (value, on) in [("auto", true), ("", true), ("never", false)] {
            let host = fake.host(dir.path(), &[(SETTING, value)]);
            assert_eq!(allowed(&host).expect("setting"), on, "{value:?}");
        }
        assert!(allowed(&fake.host(dir.path(), &[])).expect("unset"));
        let e = allowed(&fake.host(dir.path(), &[(SETTING, "sometimes")]))
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("DOZEN_PYTHON_DOWNLOADS: `sometimes`"), "{e}");
    }
}
