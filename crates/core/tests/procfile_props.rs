//! Property tests for the Procfile parser and the port plan.

#![allow(clippy::unwrap_used)]

use std::collections::HashSet;
use std::path::Path;

use dozen_core::{Formation, PortPlan, Procfile, ProcfileError};
use proptest::prelude::*;

fn parse(src: &str) -> Result<Procfile, ProcfileError> {
    Procfile::parse(src, Path::new("Procfile"))
}

fn check_error(src: &str, e: &ProcfileError) -> Result<(), TestCaseError> {
    let lines = src.matches('\n').count() + 1;
    match e.line() {
        Some(line) => {
            prop_assert!((1..=lines).contains(&line), "{e}");
            prop_assert!(
                e.to_string().starts_with(&format!("Procfile:{line}: ")),
                "{e}"
            );
        }
        None => prop_assert!(matches!(e, ProcfileError::Empty { .. }), "{e}"),
    }
    prop_assert_eq!(e.path(), Path::new("Procfile"));
    Ok(())
}

fn procfile_like_text() -> impl Strategy<Value = String> {
    let piece = prop_oneof![
        Just(":".to_string()),
        Just("#".to_string()),
        Just(" ".to_string()),
        Just("\n".to_string()),
        Just("\r\n".to_string()),
        Just("web".to_string()),
        Just("web: run\n".to_string()),
        "[A-Za-z0-9_-]{1,6}",
        any::<char>().prop_map(String::from),
    ];
    prop::collection::vec(piece, 0..30).prop_map(|v| v.concat())
}

#[derive(Debug, Clone)]
struct Entry {
    name: String,
    command: String,
    pad: (bool, bool, bool),
    comment_before: bool,
}

fn entries() -> impl Strategy<Value = Vec<Entry>> {
    let entry = (
        "[A-Za-z0-9_-]{1,10}",
        "[^\n]{1,40}",
        any::<(bool, bool, bool)>(),
        any::<bool>(),
    )
        .prop_filter_map(
            "command is blank",
            |(name, command, pad, comment_before)| {
                let command = command.trim().to_string();
                (!command.is_empty()).then_some(Entry {
                    name,
                    command,
                    pad,
                    comment_before,
                })
            },
        );
    prop::collection::vec(entry, 1..10).prop_map(|mut v| {
        let mut seen = HashSet::new();
        v.retain(|e| seen.insert(e.name.clone()));
        v
    })
}

/// Render entries; returns the text and the 1-based line of each entry.
fn render(entries: &[Entry], crlf: bool) -> (String, Vec<usize>) {
    let mut text = String::new();
    let mut lines = Vec::new();
    let mut line = 1;
    for e in entries {
        if e.comment_before {
            text.push_str("\n  # a comment: not a type\n");
            line += 2;
        }
        let (lead, before_colon, after_colon) = e.pad;
        text.push_str(if lead { "  " } else { "" });
        text.push_str(&e.name);
        text.push_str(if before_colon { " :" } else { ":" });
        text.push_str(if after_colon { "\t" } else { " " });
        text.push_str(&e.command);
        text.push('\n');
        lines.push(line);
        line += 1;
    }
    if crlf {
        text = text.replace('\n', "\r\n");
    }
    (text, lines)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn never_panics_on_arbitrary_text(src in any::<String>()) {
        if let Err(e) = parse(&src) {
            check_error(&src, &e)?;
        }
    }

    #[test]
    fn never_panics_on_procfile_like_text(src in procfile_like_text()) {
        if let Err(e) = parse(&src) {
            check_error(&src, &e)?;
        }
    }

    #[test]
    fn rendered_procfiles_parse_back(entries in entries(), crlf in any::<bool>()) {
        let (text, lines) = render(&entries, crlf);
        let p = parse(&text).map_err(|e| TestCaseError::fail(format!("{e}\n{text:?}")))?;
        prop_assert_eq!(p.types.len(), entries.len());
        for ((t, e), line) in p.types.iter().zip(&entries).zip(lines) {
            prop_assert_eq!(&t.name, &e.name);
            prop_assert_eq!(&t.command, &e.command);
            prop_assert_eq!(t.line, line);
        }
    }

    #[test]
    fn duplicates_are_reported_on_the_second_line(entries in entries(), pick in any::<prop::sample::Index>()) {
        let mut entries = entries;
        let dup = entries[pick.index(entries.len())].clone();
        entries.push(dup.clone());
        let (text, lines) = render(&entries, false);
        let e = parse(&text).unwrap_err();
        prop_assert_eq!(e.line(), lines.last().copied());
        let is_duplicate = matches!(&e, ProcfileError::Duplicate { name, .. } if *name == dup.name);
        prop_assert!(is_duplicate, "{}", e);
    }

    #[test]
    fn port_plan_follows_foreman(
        entries in entries(),
        quantities in prop::collection::vec(0..5usize, 10),
        base in 1024u16..60000,
    ) {
        let (text, _) = render(&entries, false);
        let p = parse(&text).unwrap();
        let mut f = Formation::default();
        for (t, q) in p.types.iter().zip(&quantities) {
            f.set(&t.name, *q);
        }
        let spec: Vec<String> = f.entries().map(|(n, q)| format!("{n}={q}")).collect();
        prop_assert_eq!(&Formation::parse(&spec.join(",")).unwrap(), &f);
        match PortPlan::plan(&p, &f, base, &[]) {
            Ok(plan) => {
                let total: usize = p.types.iter().map(|t| f.quantity(&t.name)).sum();
                prop_assert_eq!(plan.len(), total);
                let mut ports = HashSet::new();
                for i in &plan {
                    let want = u32::from(base) + 100 * i.type_index as u32 + i.number as u32 - 1;
                    prop_assert_eq!(u32::from(i.port), want);
                    prop_assert!(ports.insert(i.port));
                    prop_assert_eq!(&p.types[i.type_index].name, &i.type_name);
                }
            }
            Err(e) => {
                let top = u32::from(base) + 100 * (p.types.len() as u32 - 1) + 4;
                prop_assert!(top > 65535, "{e}");
            }
        }
    }
}
