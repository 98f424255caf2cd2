//! The Procfile parser (`dozen_core::Procfile`) on any text: it never panics, what it accepts
//! obeys the format's rules and survives a round trip, and what it refuses names a real line.
#![no_main]

use std::path::Path;

use dozen_core::Procfile;
use dozen_core::name::validate_process_type;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(src) = std::str::from_utf8(data) else {
        return;
    };
    let path = Path::new("Procfile");
    let body = src.strip_prefix('\u{feff}').unwrap_or(src);
    let lines: Vec<&str> = body.split('\n').collect();
    match Procfile::parse(src, path) {
        Ok(procfile) => {
            assert!(
                !procfile.types.is_empty(),
                "an accepted Procfile has a process type"
            );
            let mut last_line = 0;
            for (i, t) in procfile.types.iter().enumerate() {
                assert!(
                    validate_process_type(&t.name).is_ok(),
                    "bad name {:?}",
                    t.name
                );
                assert!(!t.command.is_empty());
                assert_eq!(t.command.trim(), t.command, "command not trimmed");
                assert!(!t.command.contains('\n'));
                assert!(
                    t.line > last_line && t.line <= lines.len(),
                    "line {}",
                    t.line
                );
                last_line = t.line;
                let text = lines[t.line - 1];
                assert!(text.contains(&t.command) && text.contains(&t.name));
                assert!(
                    procfile.types[..i].iter().all(|o| o.name != t.name),
                    "duplicate {:?} accepted",
                    t.name
                );
                assert_eq!(procfile.get(&t.name), Some(t));
            }
            // What was accepted, written back in the canonical form, reads the same.
            let canonical: String = procfile
                .types
                .iter()
                .map(|t| format!("{}: {}\n", t.name, t.command))
                .collect();
            let again = Procfile::parse(&canonical, path).expect("the canonical form parses");
            assert_eq!(again.types.len(), procfile.types.len());
            for (a, b) in again.types.iter().zip(&procfile.types) {
                assert_eq!((&a.name, &a.command), (&b.name, &b.command));
            }
        }
        Err(e) => {
            assert_eq!(e.path(), path);
            if let Some(line) = e.line() {
                assert!(line >= 1 && line <= lines.len(), "error on line {line}");
            }
            let message = e.to_string();
            assert!(message.starts_with("Procfile"), "{message}");
        }
    }
});
