//! Per-process-type settings of the Kubernetes export: [`Resources`] and [`Autoscale`], with
//! the parsers for their command-line forms.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::ResourceRequirements;
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;

use crate::error::ExportError;

/// CPU and memory for each container of one process type, in Kubernetes quantity syntax
/// (`250m`, `1`, `512Mi`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resources {
    /// CPU the scheduler reserves.
    pub cpu: String,
    /// Memory the scheduler reserves.
    pub memory: String,
    /// The most CPU the container may use (throttled above).
    pub cpu_limit: String,
    /// The most memory the container may use (killed above).
    pub memory_limit: String,
}

impl Default for Resources {
    /// 100m CPU (limit 1) and 256Mi memory (limit the same 256Mi, so memory is never
    /// overcommitted): enough for a small web process; raise it per type.
    fn default() -> Self {
        Resources {
            cpu: "100m".into(),
            memory: "256Mi".into(),
            cpu_limit: "1".into(),
            memory_limit: "256Mi".into(),
        }
    }
}

impl Resources {
    /// Apply `spec`, a comma-separated list of `cpu=Q`, `memory=Q`, `cpu-limit=Q` and
    /// `memory-limit=Q`, on top of `self`. Memory given without `memory-limit` sets the limit
    /// to the same amount. `option` names the setting in errors (`--resources web`).
    ///
    /// ```
    /// use dozen_export::kubernetes::Resources;
    /// let r = Resources::default().with("cpu=250m,memory=512Mi", "--resources web")?;
    /// assert_eq!((r.cpu.as_str(), r.memory_limit.as_str()), ("250m", "512Mi"));
    /// # Ok::<(), dozen_export::ExportError>(())
    /// ```
    pub fn with(&self, spec: &str, option: &str) -> Result<Resources, ExportError> {
        let mut r = self.clone();
        let mut memory_limit_given = false;
        let mut memory_given = false;
        for item in spec.split(',').map(str::trim).filter(|i| !i.is_empty()) {
            let Some((key, value)) = item.split_once('=') else {
                return Err(ExportError::option(
                    option,
                    format!(
                        "`{item}` is not KEY=QUANTITY; use cpu, memory, cpu-limit or memory-limit, e.g. cpu=250m,memory=512Mi"
                    ),
                ));
            };
            let value = value.trim();
            parse_quantity(value).ok_or_else(|| {
                ExportError::option(
                    option,
                    format!("{key}: `{value}` is not a Kubernetes quantity such as 250m, 1, 512Mi or 1Gi"),
                )
            })?;
            match key.trim() {
                "cpu" => r.cpu = value.into(),
                "memory" => {
                    r.memory = value.into();
                    memory_given = true;
                }
                "cpu-limit" => r.cpu_limit = value.into(),
                "memory-limit" => {
                    r.memory_limit = value.into();
                    memory_limit_given = true;
                }
                other => {
                    return Err(ExportError::option(
                        option,
                        format!(
                            "unknown key `{other}`; use cpu, memory, cpu-limit or memory-limit"
                        ),
                    ));
                }
            }
        }
        if memory_given && !memory_limit_given {
            r.memory_limit = r.memory.clone();
        }
        r.check(option)?;
        Ok(r)
    }

    /// Check that every quantity parses and no request is above its limit.
    pub fn check(&self, option: &str) -> Result<(), ExportError> {
        for (what, request, limit) in [
            ("cpu", &self.cpu, &self.cpu_limit),
            ("memory", &self.memory, &self.memory_limit),
        ] {
            let bad = |q: &str| {
                ExportError::option(
                    option,
                    format!(
                        "{what}: `{q}` is not a Kubernetes quantity such as 250m, 1, 512Mi or 1Gi"
                    ),
                )
            };
            let r = parse_quantity(request).ok_or_else(|| bad(request))?;
            let l = parse_quantity(limit).ok_or_else(|| bad(limit))?;
            if r > l {
                return Err(ExportError::option(
                    option,
                    format!(
                        "the {what} request {request} is above its limit {limit}; Kubernetes refuses that"
                    ),
                ));
            }
        }
        Ok(())
    }

    pub(crate) fn requirements(&self) -> ResourceRequirements {
        let quantities = |cpu: &str, memory: &str| {
            BTreeMap::from([
                ("cpu".to_string(), Quantity(cpu.to_string())),
                ("memory".to_string(), Quantity(memory.to_string())),
            ])
        };
        ResourceRequirements {
            requests: Some(quantities(&self.cpu, &self.memory)),
            limits: Some(quantities(&self.cpu_limit, &self.memory_limit)),
            ..ResourceRequirements::default()
        }
    }
}

/// The value of a Kubernetes quantity (`250m` = 0.25, `1Gi` = 2^30), or `None` when the text
/// is not one. Accepts what resource requests use: a non-negative decimal number and an
/// optional suffix (`m`, `k`, `M`, `G`, `T`, `P`, `E`, `Ki` … `Ei`, or an exponent `e3`).
pub fn parse_quantity(text: &str) -> Option<f64> {
    let split = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(text.len());
    let (number, suffix) = text.split_at(split);
    let digits = number.chars().filter(char::is_ascii_digit).count();
    if digits == 0 || number.matches('.').count() > 1 {
        return None;
    }
    let value: f64 = number.parse().ok()?;
    let factor = match suffix {
        "" => 1.0,
        "m" => 1e-3,
        "k" => 1e3,
        "M" => 1e6,
        "G" => 1e9,
        "T" => 1e12,
        "P" => 1e15,
        "E" => 1e18,
        "Ki" => 1024f64,
        "Mi" => 1024f64.powi(2),
        "Gi" => 1024f64.powi(3),
        "Ti" => 1024f64.powi(4),
        "Pi" => 1024f64.powi(5),
        "Ei" => 1024f64.powi(6),
        exp => {
            let rest = exp.strip_prefix(['e', 'E'])?;
            let digits = rest.strip_prefix(['+', '-']).unwrap_or(rest);
            if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
                return None;
            }
            10f64.powi(rest.parse().ok()?)
        }
    };
    Some(value * factor)
}

/// A HorizontalPodAutoscaler for one process type: between `min` and `max` replicas, aiming
/// at `cpu_percent` of the CPU request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Autoscale {
    /// The fewest replicas (at least 1).
    pub min: u32,
    /// The most replicas.
    pub max: u32,
    /// Target average CPU use, in percent of the CPU request.
    pub cpu_percent: u32,
}

impl Autoscale {
    /// The CPU target when none is given.
    pub const DEFAULT_CPU_PERCENT: u32 = 80;

    /// Parse `MIN-MAX` or `MIN-MAX@CPU%` (`2-10`, `2-10@70`). `option` names the setting in
    /// errors.
    ///
    /// ```
    /// use dozen_export::kubernetes::Autoscale;
    /// let a = Autoscale::parse("2-10@70", "--autoscale web")?;
    /// assert_eq!((a.min, a.max, a.cpu_percent), (2, 10, 70));
    /// # Ok::<(), dozen_export::ExportError>(())
    /// ```
    pub fn parse(spec: &str, option: &str) -> Result<Autoscale, ExportError> {
        let bad = || {
            ExportError::option(
                option,
                format!("`{spec}` is not MIN-MAX or MIN-MAX@CPU%, e.g. 2-10 or 2-10@70"),
            )
        };
        let (range, cpu) = match spec.split_once('@') {
            Some((range, cpu)) => (range, Some(cpu.trim().trim_end_matches('%'))),
            None => (spec, None),
        };
        let (min, max) = range.split_once('-').ok_or_else(bad)?;
        let number = |s: &str| s.trim().parse::<u32>().map_err(|_| bad());
        let a = Autoscale {
            min: number(min)?,
            max: number(max)?,
            cpu_percent: match cpu {
                Some(c) => number(c)?,
                None => Self::DEFAULT_CPU_PERCENT,
            },
        };
        a.check(option)?;
        Ok(a)
    }

    /// Check 1 <= min <= max and a CPU target of at least 1 %.
    pub fn check(&self, option: &str) -> Result<(), ExportError> {
        if self.min == 0 || self.min > self.max {
            return Err(ExportError::option(
                option,
                format!(
                    "replicas {}-{}: the minimum must be at least 1 and at most the maximum",
                    self.min, self.max
                ),
            ));
        }
        if self.cpu_percent == 0 {
            return Err(ExportError::option(
                option,
                "the CPU target must be at least 1 %",
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantities() {
        assert_eq!(parse_quantity("250m"), Some(0.25));
        assert_eq!(parse_quantity("1"), Some(1.0));
        assert_eq!(parse_quantity("1.5"), Some(1.5));
        assert_eq!(parse_quantity("512Mi"), Some(512.0 * 1024.0 * 1024.0));
        assert_eq!(parse_quantity("1e3"), Some(1000.0));
        assert_eq!(parse_quantity("2G"), Some(2e9));
        for bad in ["", "m", "-1", "1.2.3", "1Q", "1 Gi", "1e", "1ex", ".", "Gi"] {
            assert_eq!(parse_quantity(bad), None, "{bad}");
        }
    }

    #[test]
    fn resources_override_and_check() {
        let r = Resources::default()
            .with("cpu=500m, memory=1Gi", "--resources web")
            .expect("valid");
        assert_eq!(r.cpu, "500m");
        assert_eq!(r.memory_limit, "1Gi");
        assert_eq!(r.cpu_limit, "1");
        let r = Resources::default()
            .with("memory=128Mi,memory-limit=1Gi,cpu-limit=2", "x")
            .expect("valid");
        assert_eq!(
            (r.memory.as_str(), r.memory_limit.as_str()),
            ("128Mi", "1Gi")
        );
        let e = Resources::default()
            .with("cpu=2", "--resources web")
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with("--resources web: the cpu request 2 is above its limit 1"),
            "{e}"
        );
        let e = Resources::default()
            .with("gpu=1", "x")
            .unwrap_err()
            .to_string();
        assert!(e.contains("unknown key `gpu`"), "{e}");
        let e = Resources::default()
            .with("cpu=lots", "x")
            .unwrap_err()
            .to_string();
        assert!(e.contains("`lots`"), "{e}");
        assert!(Resources::default().with("cpu", "x").is_err());
    }

    #[test]
    fn autoscale_forms() {
        assert_eq!(
            Autoscale::parse("1-3", "a").expect("valid"),
            Autoscale {
                min: 1,
                max: 3,
                cpu_percent: 80
            }
        );
        assert_eq!(
            Autoscale::parse("2-4@50%", "a").expect("valid").cpu_percent,
            50
        );
        for bad in ["3", "0-2", "3-2", "a-b", "1-2@0", "1-2@x"] {
            assert!(Autoscale::parse(bad, "a").is_err(), "{bad}");
        }
    }
}
