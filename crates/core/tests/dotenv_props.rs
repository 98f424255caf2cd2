//! Property tests for the `.env` parser: it never panics, errors stay within
//! the input and never echo a value, and rendered files parse back exactly.

#![allow(clippy::unwrap_used)]

use std::path::Path;

use dozen_core::{EnvError, parse_env};
use proptest::prelude::*;

fn parse(src: &str) -> Result<Vec<(String, String)>, EnvError> {
    parse_env(src, Path::new(".env"), &|name| {
        (name == "HOME").then(|| "/home/u".to_string())
    })
}

fn line_count(src: &str) -> usize {
    src.matches('\n').count() + 1
}

/// Text made mostly of the characters the parser cares about.
fn env_like_text() -> impl Strategy<Value = String> {
    let piece = prop_oneof![
        Just("=".to_string()),
        Just("\"".to_string()),
        Just("'".to_string()),
        Just("\\".to_string()),
        Just("$".to_string()),
        Just("${".to_string()),
        Just("}".to_string()),
        Just(":-".to_string()),
        Just("-".to_string()),
        Just("#".to_string()),
        Just(" ".to_string()),
        Just("\t".to_string()),
        Just("\n".to_string()),
        Just("\r\n".to_string()),
        Just("\r".to_string()),
        Just("export ".to_string()),
        Just("\u{feff}".to_string()),
        "[A-Za-z_][A-Za-z0-9_]{0,4}",
        any::<char>().prop_map(String::from),
    ];
    prop::collection::vec(piece, 0..40).prop_map(|v| v.concat())
}

#[derive(Debug, Clone)]
enum Style {
    Unquoted,
    Single,
    Double { raw_newlines: bool },
}

fn key() -> impl Strategy<Value = String> {
    "[A-Za-z_][A-Za-z0-9_.-]{0,12}"
}

fn value() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<String>(),
        "[ -~\t\n]{0,30}",
        prop::collection::vec(
            prop_oneof![
                Just("$"),
                Just("${HOME}"),
                Just("\\"),
                Just("\""),
                Just("'"),
                Just("#"),
                Just(" #"),
                Just("\n"),
                Just("\r\n"),
                Just("="),
                Just("x"),
                Just(" "),
                Just("}"),
            ],
            0..12
        )
        .prop_map(|v| v.concat()),
    ]
}

/// Whether `value` reads back unchanged when written without quotes.
fn unquoted_safe(value: &str) -> bool {
    let mut prev_blank = false;
    for c in value.chars() {
        if c == '#' && prev_blank {
            return false;
        }
        prev_blank = c.is_whitespace();
    }
    value.trim() == value && !value.contains(['\n', '\r', '$']) && !value.starts_with(['"', '\''])
}

fn render_value(value: &str, style: &Style) -> Option<String> {
    match style {
        Style::Unquoted => unquoted_safe(value).then(|| value.to_string()),
        Style::Single => (!value.contains(['\'', '\r'])).then(|| format!("'{value}'")),
        Style::Double { raw_newlines } => {
            let mut out = String::from("\"");
            for c in value.chars() {
                match c {
                    '\\' => out.push_str("\\\\"),
                    '"' => out.push_str("\\\""),
                    '$' => out.push_str("\\$"),
                    '\r' => out.push_str("\\r"),
                    '\n' if !raw_newlines => out.push_str("\\n"),
                    c => out.push(c),
                }
            }
            out.push('"');
            Some(out)
        }
    }
}

#[derive(Debug, Clone)]
struct Entry {
    key: String,
    value: String,
    style: Style,
    export: bool,
    space_before_eq: bool,
    space_after_eq: bool,
    comment: bool,
    blank_line_after: bool,
}

fn entry() -> impl Strategy<Value = Entry> {
    let style = prop_oneof![
        Just(Style::Unquoted),
        Just(Style::Single),
        any::<bool>().prop_map(|raw_newlines| Style::Double { raw_newlines }),
    ];
    (key(), value(), style, any::<[bool; 5]>()).prop_map(|(key, value, style, flags)| Entry {
        key,
        value,
        style,
        export: flags[0],
        space_before_eq: flags[1],
        space_after_eq: flags[2],
        comment: flags[3],
        blank_line_after: flags[4],
    })
}

/// Render entries as a file; entries whose value cannot be written in their
/// style are left out of both the text and the expected result.
fn render(entries: &[Entry], crlf: bool) -> (String, Vec<(String, String)>) {
    let mut text = String::from("# generated\n");
    let mut expected = Vec::new();
    for e in entries {
        let Some(rendered) = render_value(&e.value, &e.style) else {
            continue;
        };
        if e.export {
            text.push_str("export ");
        }
        text.push_str(&e.key);
        text.push_str(if e.space_before_eq { " =" } else { "=" });
        // `KEY= #x` is an empty value with a comment, so no blank before an
        // unquoted value that starts with `#`.
        let hash_first = matches!(e.style, Style::Unquoted) && e.value.starts_with('#');
        if e.space_after_eq && !hash_first {
            text.push(' ');
        }
        text.push_str(&rendered);
        if e.comment {
            text.push_str(" # a comment with \"quotes\" and $VARS");
        }
        text.push('\n');
        if e.blank_line_after {
            text.push_str("\n  # indented comment\n");
        }
        expected.push((e.key.clone(), e.value.clone()));
    }
    if crlf {
        text = text.replace('\n', "\r\n");
    }
    (text, expected)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn never_panics_on_arbitrary_text(src in any::<String>()) {
        if let Err(e) = parse(&src) {
            let line = e.line().unwrap();
            prop_assert!((1..=line_count(&src)).contains(&line), "{e}");
        }
    }

    #[test]
    fn never_panics_on_env_like_text(src in env_like_text()) {
        if let Err(e) = parse(&src) {
            let line = e.line().unwrap();
            prop_assert!((1..=line_count(&src)).contains(&line), "{e}");
            prop_assert!(e.to_string().starts_with(&format!(".env:{line}: ")), "{e}");
        }
    }

    #[test]
    fn rendered_files_parse_back(entries in prop::collection::vec(entry(), 0..12), crlf in any::<bool>()) {
        let (text, expected) = render(&entries, crlf);
        let got = parse(&text).map_err(|e| TestCaseError::fail(format!("{e}\n{text:?}")))?;
        prop_assert_eq!(got, expected, "{:?}", text);
    }

    #[test]
    fn errors_never_contain_the_value(
        k in key(),
        secret in "[a-z]{12,20}",
        breakage in 0..5usize,
        before in 0..4usize,
    ) {
        let broken = match breakage {
            0 => format!("{k}=\"{secret}\n"),
            1 => format!("{k}='{secret}\n"),
            2 => format!("{k}=\"{secret}\"trailing\n"),
            3 => format!("{k}={secret}${{HOME\n"),
            _ => format!("{k}={secret}${{HOME:?x}}\n"),
        };
        let src = format!("{}{broken}OTHER=1\n", "A=1\n".repeat(before));
        let e = parse(&src).unwrap_err();
        prop_assert_eq!(e.line(), Some(before + 1));
        let msg = e.to_string();
        prop_assert!(!msg.contains(&secret), "{}", msg);
        prop_assert!(msg.contains(&format!("`{k}`")), "{}", msg);
    }

    #[test]
    fn later_lines_see_earlier_values(
        a in "[A-Za-z_][A-Za-z0-9_]{0,8}",
        v in "[^\n\r\"\\\\$]{0,20}",
    ) {
        let src = format!("{a}=\"{v}\"\nB_COPY=\"<${{{a}}}>\"\nC_COPY=\"${{{a}:-unused}}\"\n");
        let got = parse(&src).unwrap();
        prop_assert_eq!(&got[1].1, &format!("<{v}>"));
        let expected_c = if v.is_empty() { "unused".to_string() } else { v.clone() };
        prop_assert_eq!(&got[2].1, &expected_c);
    }
}
