//! Inputs the fuzz targets in `fuzz/` found (minimized), kept as ordinary tests.

use std::path::Path;

use dozen_core::dotenv::MAX_VALUE;
use dozen_core::{EnvError, parse_env};

/// Found by `fuzz/fuzz_targets/dotenv.rs` (a timeout): a value that expands itself twice
/// doubles with every line, so 40 short lines asked for a terabyte. Now the value is refused
/// once it passes 128 KiB, with the line and the key, never the value.
#[test]
fn a_value_that_doubles_itself_is_refused_not_grown_without_bound() {
    let mut src = String::from("P=s3cr3t-value\n");
    for _ in 0..40 {
        src.push_str("P=$P${P}\n");
    }
    let e = parse_env(&src, Path::new(".env"), &|_| None).unwrap_err();
    assert!(
        matches!(&e, EnvError::TooLong { key, .. } if key == "P"),
        "{e}"
    );
    // Line n holds 2^(n-1) copies of the 12 bytes: line 15 is the first past 128 KiB.
    assert_eq!(e.line(), Some(15));
    assert!(
        e.to_string()
            .starts_with(".env:15: the value of `P` is longer than 128 KiB"),
        "{e}"
    );
    assert!(!e.to_string().contains("s3cr3t"), "{e}");

    // Within the bound, expansion is as before; a literal value is bounded the same way.
    let ok = format!("A={}\nB=$A\n", "x".repeat(MAX_VALUE));
    let vars = parse_env(&ok, Path::new(".env"), &|_| None).unwrap();
    assert_eq!(vars[1].1.len(), MAX_VALUE);
    let long = format!("A=\"{}\"\n", "x".repeat(MAX_VALUE + 1));
    let e = parse_env(&long, Path::new(".env"), &|_| None).unwrap_err();
    assert!(matches!(e, EnvError::TooLong { line: 1, .. }), "{e}");
}
