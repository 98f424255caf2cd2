//! A lenient Procfile reader for auditing: `name: command` per line.
//!
//! The doctor reads Procfiles that may be broken, so it keeps what it can instead of failing.
//! Whether dozen can run a Procfile is decided by `dozen_core::Procfile` (the strict parser,
//! rule `TF08-PROCFILE-INVALID`); this reader only feeds the other rules.

/// One process type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ProcessType {
    pub name: String,
    pub command: String,
    /// 1-based line.
    pub line: u32,
}

/// Parse the process types of a Procfile, skipping comments, blank and malformed lines.
pub(crate) fn parse(src: &str) -> Vec<ProcessType> {
    let mut out = Vec::new();
    for (i, raw) in src.lines().enumerate() {
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let Some((name, command)) = line.split_once(':') else {
            continue;
        };
        let name = name.trim();
        if name.is_empty()
            || !name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
        {
            continue;
        }
        out.push(ProcessType {
            name: name.to_owned(),
            command: command.trim().to_owned(),
            line: u32::try_from(i + 1).unwrap_or(u32::MAX),
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_types() {
        let p = parse(
            "# c\nweb: gunicorn app:app --bind 0.0.0.0:$PORT\n\nworker:celery -A x worker\nbad line\n",
        );
        assert_eq!(p.len(), 2);
        assert_eq!(p[0].name, "web");
        assert_eq!(p[0].line, 2);
        assert_eq!(p[1].command, "celery -A x worker");
    }
}
