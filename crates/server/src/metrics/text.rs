//! The Prometheus text exposition format (version 0.0.4), written by hand: families with their
//! `# HELP` and `# TYPE` lines, samples with escaped label values.

use std::fmt::Write as _;

/// The `Content-Type` of the format.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// What kind of metric a family is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Counter,
    Gauge,
    Histogram,
}

impl Kind {
    fn as_str(self) -> &'static str {
        match self {
            Kind::Counter => "counter",
            Kind::Gauge => "gauge",
            Kind::Histogram => "histogram",
        }
    }
}

/// A page of metrics being written. Each family is started once with [`Page::family`], then its
/// samples follow.
#[derive(Debug, Default)]
pub struct Page {
    out: String,
}

impl Page {
    /// Starts the family `name`.
    pub fn family(&mut self, name: &str, kind: Kind, help: &str) {
        let _ = writeln!(self.out, "# HELP {name} {}", escape_help(help));
        let _ = writeln!(self.out, "# TYPE {name} {}", kind.as_str());
    }

    /// One sample: `name{labels} value`.
    pub fn sample(&mut self, name: &str, labels: &[(&str, &str)], value: f64) {
        self.out.push_str(name);
        if !labels.is_empty() {
            self.out.push('{');
            for (i, (k, v)) in labels.iter().enumerate() {
                if i > 0 {
                    self.out.push(',');
                }
                self.out.push_str(k);
                self.out.push_str("=\"");
                escape_value(&mut self.out, v);
                self.out.push('"');
            }
            self.out.push('}');
        }
        self.out.push(' ');
        push_value(&mut self.out, value);
        self.out.push('\n');
    }

    /// A histogram's samples: a `_bucket` per bound (cumulative counts), `+Inf`, `_sum` and
    /// `_count`. `buckets` pairs each upper bound with the count at most that.
    pub fn histogram(
        &mut self,
        name: &str,
        labels: &[(&str, &str)],
        buckets: &[(f64, u64)],
        count: u64,
        sum: f64,
    ) {
        let bucket = format!("{name}_bucket");
        let mut with_le: Vec<(&str, &str)> = labels.to_vec();
        let mut bounds = Vec::with_capacity(buckets.len());
        for (bound, _) in buckets {
            let mut text = String::new();
            push_value(&mut text, *bound);
            bounds.push(text);
        }
        for ((_, n), bound) in buckets.iter().zip(&bounds) {
            with_le.push(("le", bound));
            self.sample(&bucket, &with_le, *n as f64);
            with_le.pop();
        }
        with_le.push(("le", "+Inf"));
        self.sample(&bucket, &with_le, count as f64);
        self.sample(&format!("{name}_sum"), labels, sum);
        self.sample(&format!("{name}_count"), labels, count as f64);
    }

    /// The page's text.
    pub fn finish(self) -> String {
        self.out
    }
}

fn escape_help(help: &str) -> String {
    help.replace('\\', "\\\\").replace('\n', "\\n")
}

fn escape_value(out: &mut String, v: &str) {
    for c in v.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
}

/// A number as Prometheus reads it: whole numbers without a fraction, `+Inf`, `NaN`.
fn push_value(out: &mut String, v: f64) {
    if v.is_nan() {
        out.push_str("NaN");
    } else if v.is_infinite() {
        out.push_str(if v > 0.0 { "+Inf" } else { "-Inf" });
    } else if v.fract() == 0.0 && v.abs() < 1e15 {
        let _ = write!(out, "{}", v as i64);
    } else {
        let _ = write!(out, "{v}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn families_samples_and_escapes() {
        let mut page = Page::default();
        page.family("dozen_x_total", Kind::Counter, "Things.\nMore");
        page.sample("dozen_x_total", &[("app", "a\"b\\c\nd")], 3.0);
        page.family("dozen_t_seconds", Kind::Histogram, "Time.");
        page.histogram(
            "dozen_t_seconds",
            &[("app", "shop")],
            &[(0.005, 1), (1.0, 2)],
            3,
            2.5,
        );
        page.sample("dozen_g", &[], 0.25);
        assert_eq!(
            page.finish(),
            "# HELP dozen_x_total Things.\\nMore\n\
             # TYPE dozen_x_total counter\n\
             dozen_x_total{app=\"a\\\"b\\\\c\\nd\"} 3\n\
             # HELP dozen_t_seconds Time.\n\
             # TYPE dozen_t_seconds histogram\n\
             dozen_t_seconds_bucket{app=\"shop\",le=\"0.005\"} 1\n\
             dozen_t_seconds_bucket{app=\"shop\",le=\"1\"} 2\n\
             dozen_t_seconds_bucket{app=\"shop\",le=\"+Inf\"} 3\n\
             dozen_t_seconds_sum{app=\"shop\"} 2.5\n\
             dozen_t_seconds_count{app=\"shop\"} 3\n\
             dozen_g 0.25\n"
        );
    }
}
