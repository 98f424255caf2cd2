//! Spring Boot's `application*.properties` and `application*.yml`: read as Spring reads them,
//! key by key and profile by profile.
//!
//! The profile comes from the file name (`application-mysql.properties` is the `mysql` profile,
//! `application.properties` the default one), and in YAML from each document's
//! `spring.config.activate.on-profile` (or the older `spring.profiles`). YAML is parsed with
//! serde-saphyr (documents, nesting, quoting); an indentation index of the text gives each dotted
//! key its line. Profiles named for development, tests or an
//! embedded database (`dev`, `local`, `test`, `h2`, `hsqldb`...) are not what a deploy runs, so
//! the rules below leave them alone and the generic line rules' findings in them are dropped
//! ([`drops`]). In the other profiles:
//!
//! - a secret-named key whose `${VAR:default}` placeholder has a literal default
//!   (`spring.datasource.password=${DB_PASS:app}`): TF03-SECRET-FALLBACK;
//! - a secret-named key with a literal value: TF03-SECRET-IN-CODE;
//! - `spring.sql.init.mode=always` and Hibernate's `ddl-auto=update|create|create-drop`: the schema
//!   is applied by every start (TF12-MIGRATE-AT-START);
//! - in the default profile, an embedded database (H2, HSQLDB, Derby) as the datasource or chosen
//!   through `spring.profiles.active`: development runs another database than deploys
//!   (TF10-SQLITE-IN-DEV); a SQLite file as the datasource: TF04-SQLITE-IN-PROD.
//!
//! `server.port=${PORT:8080}` is fine (the platform's `PORT` wins), and so is a placeholder with
//! no default.

use super::rule;
use crate::report::{Finding, Severity};
use crate::text::is_placeholder;
use crate::walk::SourceFile;

/// Profiles that a deploy does not run.
const DEV_PROFILES: &[&str] = &[
    "dev",
    "development",
    "local",
    "test",
    "tests",
    "testing",
    "it",
    "h2",
    "hsqldb",
    "hsql",
    "derby",
    "embedded",
    "mem",
    "memory",
    "inmemory",
    "ci",
];

const EMBEDDED: &[&str] = &["h2", "hsqldb", "hsql", "derby"];

/// The profile of a Spring config file: `Some("")` for the default profile, `None` when the
/// file is not one.
pub(crate) fn profile(rel: &str) -> Option<String> {
    let name = rel.rsplit('/').next().unwrap_or(rel);
    let stem = name
        .strip_suffix(".properties")
        .or_else(|| name.strip_suffix(".yml"))
        .or_else(|| name.strip_suffix(".yaml"))?;
    if stem == "application" || stem == "bootstrap" {
        return Some(String::new());
    }
    let p = stem
        .strip_prefix("application-")
        .or_else(|| stem.strip_prefix("bootstrap-"))?;
    Some(p.to_ascii_lowercase())
}

fn is_dev_profile(p: &str) -> bool {
    p.split(['-', '_', ','])
        .any(|part| DEV_PROFILES.contains(&part))
}

/// One `key=value` of a properties file (or one leaf of a YAML document).
struct Prop {
    line: u32,
    key: String,
    value: String,
    text: String,
}

/// The properties of a file (continuation lines joined, comments skipped).
fn props(text: &str) -> Vec<Prop> {
    let mut out = Vec::new();
    let mut lines = text.lines().enumerate();
    while let Some((i, raw)) = lines.next() {
        let t = raw.trim_start();
        if t.is_empty() || t.starts_with('#') || t.starts_with('!') {
            continue;
        }
        let mut logical = t.to_owned();
        while logical.ends_with('\\') {
            logical.pop();
            match lines.next() {
                Some((_, next)) => logical.push_str(next.trim_start()),
                None => break,
            }
        }
        let split = logical.find(['=', ':']);
        let (key, value) = match split {
            Some(at) => (&logical[..at], &logical[at + 1..]),
            None => (logical.as_str(), ""),
        };
        out.push(Prop {
            line: u32::try_from(i + 1).unwrap_or(u32::MAX),
            key: key.trim().to_owned(),
            value: value.trim().to_owned(),
            text: raw.to_owned(),
        });
    }
    out
}

/// `${VAR:default}` (or `${VAR}`): the variable and its default, when the whole value is one.
fn placeholder(value: &str) -> Option<(&str, Option<&str>)> {
    let inner = value.strip_prefix("${")?.strip_suffix('}')?;
    match inner.split_once(':') {
        Some((var, default)) => Some((var, Some(default))),
        None => Some((inner, None)),
    }
}

fn finding(file: &SourceFile, id: &str, p: &Prop) -> Finding {
    Finding::new(rule(id), Some(&file.rel), Some(p.line), &p.text)
}

/// The documents of a YAML config file as (profile, leaves); `None` when it does not parse.
fn yaml_docs(text: &str, file_profile: &str) -> Option<Vec<(String, Vec<Prop>)>> {
    let docs: Vec<serde_json::Value> = serde_saphyr::from_multiple(text).ok()?;
    let index = yaml_lines(text);
    let lines: Vec<&str> = text.lines().collect();
    let mut out = Vec::new();
    for (n, doc) in docs.iter().enumerate() {
        let mut leaves = Vec::new();
        flatten(doc, String::new(), &mut leaves);
        let profile = leaves
            .iter()
            .find(|(k, _)| k == "spring.config.activate.on-profile" || k == "spring.profiles")
            .map_or_else(|| file_profile.to_owned(), |(_, v)| v.to_ascii_lowercase());
        let props = leaves
            .into_iter()
            .filter_map(|(key, value)| {
                let line = *index.get(&(n, key.clone()))?;
                let text = lines
                    .get(usize::try_from(line).ok()?.checked_sub(1)?)
                    .copied()
                    .unwrap_or("")
                    .to_owned();
                Some(Prop {
                    line,
                    key,
                    value,
                    text,
                })
            })
            .collect();
        out.push((profile, props));
    }
    Some(out)
}

/// Leaves of a YAML value as dotted keys (sequence items as `key[i]`).
fn flatten(v: &serde_json::Value, prefix: String, out: &mut Vec<(String, String)>) {
    use serde_json::Value;
    let join = |k: &str| {
        if prefix.is_empty() {
            k.to_owned()
        } else {
            format!("{prefix}.{k}")
        }
    };
    match v {
        Value::Object(map) => {
            for (k, v) in map {
                flatten(v, join(k), out);
            }
        }
        Value::Array(items) => {
            for (i, v) in items.iter().enumerate() {
                flatten(v, format!("{prefix}[{i}]"), out);
            }
        }
        Value::String(s) => out.push((prefix, s.clone())),
        Value::Null => out.push((prefix, String::new())),
        other => out.push((prefix, other.to_string())),
    }
}

/// (document, dotted key) -> line, from the indentation of `key:` lines.
fn yaml_lines(text: &str) -> std::collections::HashMap<(usize, String), u32> {
    let mut map = std::collections::HashMap::new();
    let mut doc = 0usize;
    let mut seen_content = false;
    let mut stack: Vec<(usize, String)> = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        if raw.starts_with("---") {
            if seen_content {
                doc += 1;
            }
            stack.clear();
            continue;
        }
        let t = raw.trim_start();
        if t.is_empty() || t.starts_with('#') || t.starts_with('-') {
            continue;
        }
        seen_content = true;
        let indent = raw.len() - t.len();
        let Some((key, _)) = t.split_once(':') else {
            continue;
        };
        let key = key.trim().trim_matches(['"', '\'']).to_owned();
        while stack.last().is_some_and(|(at, _)| *at >= indent) {
            stack.pop();
        }
        stack.push((indent, key));
        let path: Vec<&str> = stack.iter().map(|(_, k)| k.as_str()).collect();
        map.entry((doc, path.join(".")))
            .or_insert(u32::try_from(i + 1).unwrap_or(u32::MAX));
    }
    map
}

/// Is this key a credential (the last segments of a dotted Spring key)?
fn secret_key(key: &str) -> bool {
    let last = key.rsplit('.').next().unwrap_or(key);
    if matches!(
        last.to_ascii_lowercase().as_str(),
        "key-store-type" | "keystore-type" | "key-alias" | "token-uri" | "key-store" | "keystore"
    ) {
        return false;
    }
    super::laravel::secret_var(&last.replace('-', "_"))
}

/// The findings of one Spring config file.
pub(crate) fn check(file: &SourceFile) -> Vec<Finding> {
    let mut out = Vec::new();
    let Some(profile) = profile(&file.rel) else {
        return out;
    };
    if !file.ctx.is_app() {
        return out;
    }
    let text = String::from_utf8_lossy(&file.text);
    let docs = if file.rel.ends_with(".properties") {
        vec![(profile, props(&text))]
    } else {
        yaml_docs(&text, &profile).unwrap_or_default()
    };
    for (profile, props) in docs {
        if !is_dev_profile(&profile) {
            out.extend(check_props(file, &profile, &props));
        }
    }
    out
}

/// The findings of the properties of one profile (not a development one).
fn check_props(file: &SourceFile, profile: &str, props: &[Prop]) -> Vec<Finding> {
    let mut out = Vec::new();
    for p in props {
        let key = p.key.to_ascii_lowercase();
        let value = p.value.as_str();
        if secret_key(&key) && !value.is_empty() {
            match placeholder(value) {
                Some((_, Some(default))) if !default.trim().is_empty() => {
                    out.push(finding(file, "TF03-SECRET-FALLBACK", p));
                }
                Some(_) => {}
                None if !value.contains("${") && !is_placeholder(value) && value.len() >= 3 => {
                    out.push(finding(file, "TF03-SECRET-IN-CODE", p));
                }
                None => {}
            }
        }
        let plain = placeholder(value)
            .and_then(|(_, d)| d)
            .unwrap_or(value)
            .to_ascii_lowercase();
        if (key == "spring.sql.init.mode" || key == "spring.datasource.initialization-mode")
            && plain == "always"
        {
            out.push(finding(file, "TF12-MIGRATE-AT-START", p));
        }
        if (key.ends_with("hibernate.ddl-auto") || key.ends_with("hibernate.hbm2ddl.auto"))
            && matches!(plain.as_str(), "update" | "create" | "create-drop")
        {
            out.push(finding(file, "TF12-MIGRATE-AT-START", p));
        }
        if profile.is_empty() {
            if key.ends_with("datasource.url") || key.ends_with("datasource.jdbc-url") {
                if plain.starts_with("jdbc:sqlite:") {
                    out.push(finding(file, "TF04-SQLITE-IN-PROD", p));
                } else if EMBEDDED
                    .iter()
                    .any(|db| plain.starts_with(&format!("jdbc:{db}:")))
                {
                    out.push(finding(file, "TF10-SQLITE-IN-DEV", p));
                }
            } else if key == "spring.profiles.active" {
                if plain
                    .split(',')
                    .any(|p| EMBEDDED.contains(&p.trim()) || p.trim() == "sqlite")
                {
                    out.push(finding(file, "TF10-SQLITE-IN-DEV", p));
                }
            } else if (key == "database" || key.ends_with(".database") || key == "db")
                && EMBEDDED.contains(&plain.as_str())
            {
                out.push(finding(file, "TF10-SQLITE-IN-DEV", p));
            }
        }
    }
    out
}

/// Should a generic finding be dropped because this reader knows better? Findings of config,
/// database and admin rules in a development profile (a file, or a YAML document) are.
pub(crate) fn drops(f: &Finding, text: &[u8]) -> bool {
    let (Some(file), true) = (&f.file, matches!(f.factor, 3 | 4 | 10 | 12)) else {
        return false;
    };
    let Some(file_profile) = profile(file) else {
        return false;
    };
    if f.severity == Severity::Info {
        return false;
    }
    if file.ends_with(".properties") {
        return is_dev_profile(&file_profile);
    }
    let text = String::from_utf8_lossy(text);
    let Some(docs) = yaml_docs(&text, &file_profile) else {
        return is_dev_profile(&file_profile);
    };
    let Some(line) = f.line else {
        return is_dev_profile(&file_profile);
    };
    // The document holding the line: the last one with a leaf at or before it.
    let mut profile = file_profile.as_str();
    for (p, props) in &docs {
        if props.iter().any(|leaf| leaf.line <= line) {
            profile = p;
        }
    }
    is_dev_profile(profile)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn profiles_come_from_the_file_name() {
        assert_eq!(
            profile("src/main/resources/application.properties").as_deref(),
            Some("")
        );
        assert_eq!(
            profile("x/application-mysql.properties").as_deref(),
            Some("mysql")
        );
        assert_eq!(profile("x/app.properties"), None);
        assert!(is_dev_profile("h2"));
        assert!(is_dev_profile("local-h2"));
        assert!(!is_dev_profile("postgres"));
        assert!(!is_dev_profile(""));
    }

    #[test]
    fn yaml_documents_have_profiles_and_lines() {
        let docs = yaml_docs(
            "spring:\n  datasource:\n    url: ${DATABASE_URL}\n---\nspring:\n  config:\n    activate:\n      on-profile: local\n  datasource:\n    password: \"${DB_PASS:dev}\"\n",
            "",
        )
        .expect("valid YAML");
        assert_eq!(docs.len(), 2);
        assert_eq!(docs[0].0, "");
        assert_eq!(docs[1].0, "local");
        let pw = docs[1]
            .1
            .iter()
            .find(|p| p.key == "spring.datasource.password")
            .expect("password leaf");
        assert_eq!((pw.line, pw.value.as_str()), (10, "${DB_PASS:dev}"));
    }

    #[test]
    fn placeholders() {
        assert_eq!(
            placeholder("${DB_PASS:app}"),
            Some(("DB_PASS", Some("app")))
        );
        assert_eq!(placeholder("${DB_PASS}"), Some(("DB_PASS", None)));
        assert_eq!(placeholder("app"), None);
    }
}
