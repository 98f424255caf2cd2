//! What an app declares about its build and its web process: `dozen.toml` and `app.json`.

use std::collections::BTreeMap;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::error::BuildError;

/// dozen's own manifest file, in the app's root.
pub const DOZEN_TOML: &str = "dozen.toml";
/// Heroku's app manifest, in the app's root.
pub const APP_JSON: &str = "app.json";

/// The longest boot timeout an app may ask for, in seconds.
pub const MAX_BOOT_TIMEOUT: u64 = 3600;

/// What an app declares in `dozen.toml` and `app.json`. Everything is optional; a missing file
/// is the same as an empty one.
///
/// `dozen.toml`:
///
/// ```toml
/// [build]
/// command = "make dist"        # replaces detection
///
/// [build.env]                 # variables for the build steps only (never the app's config)
/// DISABLE_COLLECTSTATIC = "1"
///
/// [web]
/// health_check = "/healthz"    # path the router probes before sending traffic
/// boot_timeout = 60            # seconds the web process has to come up
///
/// [sizes]                     # process type -> size (`dozen ps:resize` overrides)
/// web = "2x"
/// worker = "tiny"
/// ```
///
/// Other tables (such as `[doctor]`) belong to other parts of dozen and are ignored here;
/// unknown keys inside `[build]` and `[web]` are errors, so a typo is not silently ignored.
///
/// `app.json` (Heroku's format): `formation` (process type -> `quantity` and `size`; a size
/// dozen does not know is ignored with a warning; `dozen.toml`'s `[sizes]` wins) is the formation of the app's first release, `scripts.postdeploy` (a
/// command, or an object with `command`) runs once after the first successful deploy, and
/// `scripts.build` is read as the build command (a dozen extension; Heroku itself has only
/// `postdeploy` and `pr-predestroy`). Everything else in it is ignored. When both files
/// declare a build command, `dozen.toml` wins.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AppManifest {
    /// The declared build command, if any.
    pub build_command: Option<String>,
    /// Which file declared [`build_command`](Self::build_command).
    pub build_command_from: Option<PathBuf>,
    /// The HTTP path to probe, starting with `/`.
    pub health_check: Option<String>,
    /// Seconds the web process has to come up.
    pub boot_timeout: Option<u64>,
    /// Variables the build steps get (`[build.env]` of `dozen.toml`), sorted by name.
    pub build_env: Vec<(String, String)>,
    /// `app.json`'s `formation`: process type -> quantity.
    pub formation: BTreeMap<String, u32>,
    /// Process sizes, type -> size name (canonical: `2x`), from `[sizes]` of `dozen.toml`
    /// and `app.json`'s `formation.TYPE.size`.
    pub sizes: BTreeMap<String, String>,
    /// `app.json`'s `scripts.postdeploy` command.
    pub postdeploy: Option<String>,
    /// What the build should say about the manifests (fields read but ignored).
    pub warnings: Vec<String>,
}

/// What `app.json` declares.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AppJson {
    /// `scripts.build`.
    pub build: Option<String>,
    /// `formation`: process type -> quantity.
    pub formation: BTreeMap<String, u32>,
    /// `formation.TYPE.size`, for sizes dozen knows: type -> size name.
    pub sizes: BTreeMap<String, String>,
    /// `scripts.postdeploy` (its `command` when it is an object).
    pub postdeploy: Option<String>,
    /// Fields read but ignored, for the build log.
    pub warnings: Vec<String>,
}

#[derive(Debug, Default, Deserialize)]
struct DozenToml {
    #[serde(default)]
    build: Option<BuildTable>,
    #[serde(default)]
    web: Option<WebTable>,
    #[serde(default)]
    sizes: Option<BTreeMap<String, String>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct BuildTable {
    command: Option<String>,
    env: Option<BTreeMap<String, String>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct WebTable {
    health_check: Option<String>,
    boot_timeout: Option<u64>,
}

impl AppManifest {
    /// Read `dir/dozen.toml` and `dir/app.json`, if they exist. Errors name the file and,
    /// where it is known, the line.
    pub fn load(dir: &Path) -> Result<AppManifest, BuildError> {
        let mut manifest = AppManifest::default();
        if let Some(text) = read_optional(&dir.join(DOZEN_TOML))? {
            manifest = Self::parse_dozen_toml(&text, Path::new(DOZEN_TOML))?;
        }
        if let Some(text) = read_optional(&dir.join(APP_JSON))? {
            let app = Self::parse_app_json(&text, Path::new(APP_JSON))?;
            if manifest.build_command.is_none() && app.build.is_some() {
                manifest.build_command = app.build;
                manifest.build_command_from = Some(APP_JSON.into());
            }
            manifest.formation = app.formation;
            for (t, size) in app.sizes {
                manifest.sizes.entry(t).or_insert(size);
            }
            manifest.postdeploy = app.postdeploy;
            manifest.warnings.extend(app.warnings);
        }
        Ok(manifest)
    }

    /// Parse `dozen.toml` text; `file` is only used in errors.
    pub fn parse_dozen_toml(text: &str, file: &Path) -> Result<AppManifest, BuildError> {
        let parsed: DozenToml = toml::from_str(text).map_err(|e| BuildError::Manifest {
            file: file.into(),
            line: e.span().map(|s| line_of(text, s.start)),
            message: e.message().trim().to_string(),
        })?;
        let err = |key: &str, message: &str| BuildError::Manifest {
            file: file.into(),
            line: find_key_line(text, key),
            message: message.to_string(),
        };
        let mut manifest = AppManifest::default();
        if let Some(build) = parsed.build {
            if let Some(command) = build.command {
                if command.trim().is_empty() {
                    return Err(err(
                        "command",
                        "`build.command` is empty; remove it or give a shell command",
                    ));
                }
                manifest.build_command = Some(command);
                manifest.build_command_from = Some(file.into());
            }
            for (key, value) in build.env.unwrap_or_default() {
                let valid = key
                    .bytes()
                    .next()
                    .is_some_and(|b| b.is_ascii_alphabetic() || b == b'_')
                    && key.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_');
                if !valid {
                    return Err(err(
                        &key,
                        &format!(
                            "`build.env.{key}` is not a valid variable name (letters, digits and `_`, not starting with a digit)"
                        ),
                    ));
                }
                manifest.build_env.push((key, value));
            }
        }
        for (kind, size) in parsed.sizes.unwrap_or_default() {
            if dozen_core::name::validate_process_type(&kind).is_err() {
                return Err(err(
                    &kind,
                    &format!("`sizes.{kind}`: not a valid process type name"),
                ));
            }
            let size = dozen_core::Size::parse(&size)
                .map_err(|e| err(&kind, &format!("`sizes.{kind}`: {e}")))?;
            manifest.sizes.insert(kind, size.name.to_string());
        }
        if let Some(web) = parsed.web {
            if let Some(path) = web.health_check {
                if !path.starts_with('/') || path.chars().any(char::is_whitespace) {
                    return Err(err(
                        "health_check",
                        "`web.health_check` must be a URL path starting with `/`, such as \"/healthz\"",
                    ));
                }
                manifest.health_check = Some(path);
            }
            if let Some(secs) = web.boot_timeout {
                if secs == 0 || secs > MAX_BOOT_TIMEOUT {
                    return Err(err(
                        "boot_timeout",
                        &format!(
                            "`web.boot_timeout` must be between 1 and {MAX_BOOT_TIMEOUT} seconds"
                        ),
                    ));
                }
                manifest.boot_timeout = Some(secs);
            }
        }
        Ok(manifest)
    }

    /// Parse `app.json` text; `file` is only used in errors.
    pub fn parse_app_json(text: &str, file: &Path) -> Result<AppJson, BuildError> {
        use serde_json::Value;
        let value: Value = serde_json::from_str(text).map_err(|e| BuildError::Manifest {
            file: file.into(),
            line: Some(e.line()),
            message: format!("invalid JSON: {e}"),
        })?;
        let err = |key: &str, message: String| BuildError::Manifest {
            file: file.into(),
            line: find_key_line(text, key),
            message,
        };
        let Some(object) = value.as_object() else {
            return Err(BuildError::Manifest {
                file: file.into(),
                line: Some(1),
                message: "the top level must be a JSON object".into(),
            });
        };
        let mut app = AppJson::default();
        match object.get("scripts") {
            None | Some(Value::Null) => {}
            Some(Value::Object(scripts)) => {
                app.build = match scripts.get("build") {
                    None | Some(Value::Null) => None,
                    Some(Value::String(s)) if !s.trim().is_empty() => Some(s.clone()),
                    Some(Value::String(_)) => {
                        return Err(err(
                            "build",
                            "`scripts.build` is empty; remove it or give a shell command".into(),
                        ));
                    }
                    Some(_) => {
                        return Err(err(
                            "build",
                            "`scripts.build` must be a string (a shell command)".into(),
                        ));
                    }
                };
                let postdeploy = match scripts.get("postdeploy") {
                    None | Some(Value::Null) => None,
                    Some(Value::String(s)) => Some(s.clone()),
                    Some(Value::Object(o)) => match o.get("command") {
                        Some(Value::String(s)) => {
                            if o.contains_key("size") {
                                app.warnings.push(format!(
                                    "{}: `scripts.postdeploy.size` is ignored: one-offs run at size 1x",
                                    file.display()
                                ));
                            }
                            Some(s.clone())
                        }
                        _ => {
                            return Err(err(
                                "postdeploy",
                                "`scripts.postdeploy.command` must be a string (a shell command)"
                                    .into(),
                            ));
                        }
                    },
                    Some(_) => {
                        return Err(err(
                            "postdeploy",
                            "`scripts.postdeploy` must be a shell command or an object with `command`".into(),
                        ));
                    }
                };
                app.postdeploy = postdeploy.filter(|s| !s.trim().is_empty());
            }
            Some(_) => {
                return Err(err("scripts", "`scripts` must be an object".into()));
            }
        }
        match object.get("formation") {
            None | Some(Value::Null) => {}
            Some(Value::Object(formation)) => {
                for (name, entry) in formation {
                    if dozen_core::name::validate_process_type(name).is_err() {
                        return Err(err(
                            name,
                            format!("`formation.{name}`: not a valid process type name"),
                        ));
                    }
                    let Some(entry) = entry.as_object() else {
                        return Err(err(
                            name,
                            format!(
                                "`formation.{name}` must be an object such as {{\"quantity\": 1}}"
                            ),
                        ));
                    };
                    let quantity = match entry.get("quantity") {
                        None => 1,
                        Some(q) => q
                            .as_u64()
                            .and_then(|q| u32::try_from(q).ok())
                            .ok_or_else(|| {
                                err(
                                    "quantity",
                                    format!("`formation.{name}.quantity` must be a whole number, 0 or more"),
                                )
                            })?,
                    };
                    match entry.get("size") {
                        None | Some(Value::Null) => {}
                        Some(Value::String(s)) => match dozen_core::Size::parse(s) {
                            Ok(size) => {
                                app.sizes.insert(name.clone(), size.name.to_string());
                            }
                            Err(e) => app.warnings.push(format!(
                                "{}: `formation.{name}.size` is ignored: {e}",
                                file.display()
                            )),
                        },
                        Some(_) => {
                            return Err(err(
                                "size",
                                format!(
                                    "`formation.{name}.size` must be a size name such as \"1x\""
                                ),
                            ));
                        }
                    }
                    app.formation.insert(name.clone(), quantity);
                }
            }
            Some(_) => {
                return Err(err(
                    "formation",
                    "`formation` must be an object: process type -> {\"quantity\": N}".into(),
                ));
            }
        }
        Ok(app)
    }
}

fn read_optional(path: &Path) -> Result<Option<String>, BuildError> {
    match fs::read(path) {
        Ok(bytes) => String::from_utf8(bytes).map(Some).map_err(|e| {
            let at = e.utf8_error().valid_up_to();
            BuildError::Manifest {
                file: path.file_name().map(PathBuf::from).unwrap_or_default(),
                line: Some(line_of_bytes(e.as_bytes(), at)),
                message: "not valid UTF-8; save it as UTF-8 text".into(),
            }
        }),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(BuildError::io(path, e)),
    }
}

/// The 1-based line holding byte `offset`.
fn line_of(text: &str, offset: usize) -> usize {
    line_of_bytes(text.as_bytes(), offset)
}

fn line_of_bytes(bytes: &[u8], offset: usize) -> usize {
    let end = offset.min(bytes.len());
    bytes[..end].iter().filter(|b| **b == b'\n').count() + 1
}

/// The first line on which `key` appears as a key (`key =`, `key:` or `"key"`), for errors
/// about values that parsed but are not acceptable.
fn find_key_line(text: &str, key: &str) -> Option<usize> {
    let quoted = format!("\"{key}\"");
    text.lines()
        .position(|line| {
            let t = line.trim_start();
            t.starts_with(&quoted)
                || t.strip_prefix(key)
                    .is_some_and(|rest| rest.trim_start().starts_with('='))
        })
        .map(|i| i + 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dozen_toml_reads_build_and_web_and_ignores_other_tables() {
        let text = "[build]\ncommand = \"make\"\n\n[web]\nhealth_check = \"/healthz\"\nboot_timeout = 30\n\n[doctor]\nanything = 1\n";
        let m = AppManifest::parse_dozen_toml(text, Path::new("dozen.toml")).expect("parses");
        assert_eq!(m.build_command.as_deref(), Some("make"));
        assert_eq!(m.health_check.as_deref(), Some("/healthz"));
        assert_eq!(m.boot_timeout, Some(30));
    }

    #[test]
    fn dozen_toml_errors_name_file_and_line() {
        let text = "[build]\ncommand = \"make\"\n\n[web]\nboot_timeout = \"soon\"\n";
        let e = AppManifest::parse_dozen_toml(text, Path::new("dozen.toml")).unwrap_err();
        let msg = e.to_string();
        assert!(msg.starts_with("dozen.toml:5:"), "{msg}");

        let text = "[web]\nhealth_check = \"healthz\"\n";
        let e = AppManifest::parse_dozen_toml(text, Path::new("dozen.toml")).unwrap_err();
        assert!(e.to_string().starts_with("dozen.toml:2:"), "{e}");
        assert!(e.to_string().contains("web.health_check"), "{e}");

        let text = "[build]\ncomand = \"make\"\n";
        let e = AppManifest::parse_dozen_toml(text, Path::new("dozen.toml")).unwrap_err();
        assert!(e.to_string().starts_with("dozen.toml:2:"), "{e}");
        assert!(e.to_string().contains("comand"), "{e}");
    }

    #[test]
    fn dozen_toml_sizes_are_checked() {
        let text = "[sizes]\nweb = \"2X\"\nworker = \"tiny\"\n";
        let m = AppManifest::parse_dozen_toml(text, Path::new("dozen.toml")).expect("parses");
        assert_eq!(
            m.sizes,
            BTreeMap::from([
                ("web".to_string(), "2x".to_string()),
                ("worker".to_string(), "tiny".to_string())
            ])
        );
        let text = "[web]\nboot_timeout = 5\n\n[sizes]\nworker = \"huge\"\n";
        let e = AppManifest::parse_dozen_toml(text, Path::new("dozen.toml")).unwrap_err();
        let msg = e.to_string();
        assert!(msg.starts_with("dozen.toml:5:"), "{msg}");
        assert!(
            msg.contains("`sizes.worker`: unknown size `huge`; the sizes are: tiny"),
            "{msg}"
        );
    }

    #[test]
    fn app_json_scripts_build_is_the_build_command() {
        let text = "{\n \"name\": \"x\",\n \"scripts\": {\"postdeploy\": \"a\", \"build\": \"make\"},\n \"healthchecks\": {}\n}";
        let c = AppManifest::parse_app_json(text, Path::new("app.json")).expect("parses");
        assert_eq!(c.build.as_deref(), Some("make"));
        let c = AppManifest::parse_app_json(
            "{\"scripts\":{\"postdeploy\":\"a\"}}",
            Path::new("app.json"),
        )
        .expect("parses");
        assert_eq!(c.build, None);
        assert_eq!(c.postdeploy.as_deref(), Some("a"));
    }

    #[test]
    fn app_json_formation_and_postdeploy() {
        let text = r#"{
  "scripts": {"postdeploy": {"command": "python manage.py loaddata seed", "size": "basic"}},
  "formation": {"web": {"quantity": 2, "size": "standard-1x"}, "worker": {"quantity": 0}, "clock": {}}
}"#;
        let c = AppManifest::parse_app_json(text, Path::new("app.json")).expect("parses");
        assert_eq!(
            c.postdeploy.as_deref(),
            Some("python manage.py loaddata seed")
        );
        let f: Vec<_> = c.formation.iter().map(|(k, v)| (k.as_str(), *v)).collect();
        assert_eq!(f, [("clock", 1), ("web", 2), ("worker", 0)]);
        // standard-1x is read as dozen's 1x; only the postdeploy's size is ignored.
        assert_eq!(
            c.sizes,
            BTreeMap::from([("web".to_string(), "1x".to_string())])
        );
        assert_eq!(c.warnings.len(), 1, "{:?}", c.warnings);
        assert!(
            c.warnings[0].contains("scripts.postdeploy.size"),
            "{:?}",
            c.warnings
        );
        let c = AppManifest::parse_app_json(
            r#"{"formation": {"web": {"size": "performance-l-ram"}}}"#,
            Path::new("app.json"),
        )
        .expect("parses");
        assert!(c.sizes.is_empty());
        assert!(
            c.warnings[0].contains("unknown size `performance-l-ram`; the sizes are: tiny"),
            "{:?}",
            c.warnings
        );

        let text = "{\n\"formation\": {\n\"web\": {\n\"quantity\": -1}}}";
        let e = AppManifest::parse_app_json(text, Path::new("app.json")).unwrap_err();
        assert!(e.to_string().starts_with("app.json:4:"), "{e}");
        assert!(e.to_string().contains("formation.web.quantity"), "{e}");
        let e =
            AppManifest::parse_app_json("{\"formation\": []}", Path::new("app.json")).unwrap_err();
        assert!(
            e.to_string().contains("`formation` must be an object"),
            "{e}"
        );
    }

    #[test]
    fn dozen_toml_build_env() {
        let text = "[build]\nenv = { DISABLE_COLLECTSTATIC = \"1\" }\n";
        let m = AppManifest::parse_dozen_toml(text, Path::new("dozen.toml")).expect("parses");
        assert_eq!(m.build_env, [("DISABLE_COLLECTSTATIC".into(), "1".into())]);
        let text = "[build.env]\n\"1X\" = \"1\"\n";
        let e = AppManifest::parse_dozen_toml(text, Path::new("dozen.toml")).unwrap_err();
        assert!(e.to_string().contains("build.env.1X"), "{e}");
    }

    #[test]
    fn app_json_errors_name_file_and_line() {
        let e =
            AppManifest::parse_app_json("{\n\"scripts\": {\n\"build\": 3}}", Path::new("app.json"))
                .unwrap_err();
        assert!(e.to_string().starts_with("app.json:3:"), "{e}");
        let e = AppManifest::parse_app_json("{\n\"scripts\": [,\n}", Path::new("app.json"))
            .unwrap_err();
        assert!(e.to_string().starts_with("app.json:2:"), "{e}");
    }

    #[test]
    fn dozen_toml_wins_over_app_json() {
        let dir = tempfile::tempdir().expect("tempdir");
        fs::write(dir.path().join(DOZEN_TOML), "[build]\ncommand = \"a\"\n").expect("write");
        fs::write(dir.path().join(APP_JSON), "{\"scripts\":{\"build\":\"b\"}}").expect("write");
        let m = AppManifest::load(dir.path()).expect("loads");
        assert_eq!(m.build_command.as_deref(), Some("a"));
        fs::remove_file(dir.path().join(DOZEN_TOML)).expect("rm");
        let m = AppManifest::load(dir.path()).expect("loads");
        assert_eq!(m.build_command.as_deref(), Some("b"));
        assert_eq!(m.build_command_from.as_deref(), Some(Path::new(APP_JSON)));
    }
}
