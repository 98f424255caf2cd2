//! Formation (process type -> quantity) and the port plan derived from it.
//!
//! A formation is written the way foreman's `-m`/`--formation` takes it:
//! `web=2,worker=1,all=1`. `all=N` sets the quantity of every type not named;
//! without it a type runs once. `0` turns a type off. Because `all` means
//! "every type", a process type that is itself called `all` can only be
//! scaled through that default.
//!
//! Ports follow foreman: `port = base + 100 * type_index + (number - 1)`, where
//! `type_index` is the type's position in the Procfile (so running a subset
//! of types does not move ports around).

use std::collections::HashMap;
use std::fmt;

use crate::name::{NameError, validate_process_type};
use crate::procfile::Procfile;

/// The name in a formation spec that sets the default quantity.
pub const ALL: &str = "all";

/// Process type -> quantity, with an optional default for unnamed types.
///
/// ```
/// use dozen_core::Formation;
/// let f = Formation::parse("web=2, all=0")?;
/// assert_eq!(f.quantity("web"), 2);
/// assert_eq!(f.quantity("worker"), 0);
/// assert_eq!(Formation::default().quantity("web"), 1);
/// # Ok::<(), dozen_core::FormationError>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Formation {
    /// Explicit entries, in the order given.
    entries: Vec<(String, usize)>,
    /// The `all=N` default, if given.
    all: Option<usize>,
}

/// Why a formation is invalid or cannot be planned.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FormationError {
    /// An item without `=`.
    #[error("formation item `{item}` is not `type=quantity`; write it like `web=2,worker=1`")]
    MissingEquals {
        /// The item as written.
        item: String,
    },
    /// The type name is not a valid process type name.
    #[error("formation item `{item}`: invalid process type name: {reason}")]
    InvalidName {
        /// The item as written.
        item: String,
        /// What is wrong with the name.
        reason: NameError,
    },
    /// The quantity is not a whole number >= 0.
    #[error("formation item `{item}`: the quantity must be a whole number 0 or more")]
    InvalidQuantity {
        /// The item as written.
        item: String,
    },
    /// The same type (or `all`) given twice.
    #[error("process type `{name}` appears twice in the formation; give it once")]
    Duplicate {
        /// The repeated name.
        name: String,
    },
    /// A type the Procfile does not define.
    #[error(
        "unknown process type `{name}`; the Procfile defines: {}",
        KnownTypes(known)
    )]
    UnknownType {
        /// The unknown name.
        name: String,
        /// The types the Procfile defines, in file order.
        known: Vec<String>,
    },
    /// The plan would need a port above 65535.
    #[error("process `{instance}` would get port {port}, above 65535; choose a lower base port")]
    PortOverflow {
        /// Instance name, e.g. `web.3`.
        instance: String,
        /// The port it would need.
        port: u64,
    },
    /// Two instances would share a port (a type with more than 100 instances
    /// runs into the next type's range).
    #[error(
        "processes `{first}` and `{second}` would both get port {port}; run at most 100 instances of a type"
    )]
    PortCollision {
        /// Instance that got the port first.
        first: String,
        /// Instance that would get it again.
        second: String,
        /// The shared port.
        port: u16,
    },
}

struct KnownTypes<'a>(&'a [String]);

impl fmt::Display for KnownTypes<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.is_empty() {
            return f.write_str("(none)");
        }
        f.write_str(&self.0.join(", "))
    }
}

impl Formation {
    /// Parse `web=2,worker=1,all=1`. Spaces around items and `=` are fine,
    /// empty items (a trailing comma) are ignored, and an empty spec is the
    /// default formation (every type once).
    pub fn parse(spec: &str) -> Result<Formation, FormationError> {
        let mut formation = Formation::default();
        let mut seen = Vec::new();
        for item in spec.split(',').map(str::trim).filter(|i| !i.is_empty()) {
            let Some((name, qty)) = item.split_once('=') else {
                return Err(FormationError::MissingEquals { item: item.into() });
            };
            let name = name.trim();
            validate_process_type(name).map_err(|reason| FormationError::InvalidName {
                item: item.into(),
                reason,
            })?;
            let qty = qty.trim();
            // `usize::from_str` accepts a leading `+`; a formation should not.
            let n = match qty.bytes().all(|b| b.is_ascii_digit()) {
                true => qty.parse::<usize>().ok(),
                false => None,
            }
            .ok_or_else(|| FormationError::InvalidQuantity { item: item.into() })?;
            if seen.contains(&name) {
                return Err(FormationError::Duplicate { name: name.into() });
            }
            seen.push(name);
            formation.set(name, n);
        }
        Ok(formation)
    }

    /// How many instances of `type_name` to run: its explicit entry, else
    /// `all`, else 1.
    pub fn quantity(&self, type_name: &str) -> usize {
        self.entries
            .iter()
            .find(|(name, _)| name == type_name)
            .map(|&(_, n)| n)
            .or(self.all)
            .unwrap_or(1)
    }

    /// Set the quantity of one type; `all` sets the default.
    pub fn set(&mut self, type_name: &str, n: usize) {
        if type_name == ALL {
            self.all = Some(n);
        } else if let Some(entry) = self.entries.iter_mut().find(|(name, _)| name == type_name) {
            entry.1 = n;
        } else {
            self.entries.push((type_name.to_owned(), n));
        }
    }

    /// The `all=N` default, if set.
    pub fn all(&self) -> Option<usize> {
        self.all
    }

    /// Explicit entries in the order they were given (without `all`).
    pub fn entries(&self) -> impl Iterator<Item = (&str, usize)> {
        self.entries.iter().map(|(name, n)| (name.as_str(), *n))
    }

    /// Every type named explicitly must exist in `procfile`; the error lists
    /// the types it does define.
    pub fn check_against(&self, procfile: &Procfile) -> Result<(), FormationError> {
        for (name, _) in &self.entries {
            check_known(procfile, name)?;
        }
        Ok(())
    }
}

fn check_known(procfile: &Procfile, name: &str) -> Result<(), FormationError> {
    match procfile.index_of(name) {
        Some(_) => Ok(()),
        None => Err(FormationError::UnknownType {
            name: name.to_owned(),
            known: procfile.names().map(str::to_owned).collect(),
        }),
    }
}

/// One planned process instance, e.g. `web.2` on port 5001.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Instance {
    /// Process type name (`web`).
    pub type_name: String,
    /// Instance number, from 1.
    pub number: usize,
    /// The command from the Procfile.
    pub command: String,
    /// The port this instance gets in `PORT`.
    pub port: u16,
    /// Position of the type in the Procfile (0-based).
    pub type_index: usize,
}

impl Instance {
    /// `type.number`, e.g. `web.1`.
    pub fn name(&self) -> String {
        format!("{}.{}", self.type_name, self.number)
    }
}

/// foreman's port plan: `port = base + 100 * type_index + (number - 1)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct PortPlan;

impl PortPlan {
    /// The instances to run, in Procfile order then by number.
    ///
    /// `only`, when non-empty, restricts the plan to those types; each must be
    /// in the Procfile. Types named in `formation` must be in the Procfile too
    /// ([`Formation::check_against`]). A port above 65535, or two instances on
    /// the same port (more than 100 instances of a type), is an error.
    ///
    /// ```
    /// use dozen_core::{Formation, PortPlan, Procfile};
    /// let p = Procfile::parse("web: ./web\nworker: ./work\n", "Procfile".as_ref())?;
    /// let f = Formation::parse("web=2,worker=1")?;
    /// let plan = PortPlan::plan(&p, &f, 7000, &[])?;
    /// let got: Vec<_> = plan.iter().map(|i| (i.name(), i.port)).collect();
    /// assert_eq!(got, [("web.1".into(), 7000), ("web.2".into(), 7001), ("worker.1".into(), 7100)]);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn plan(
        procfile: &Procfile,
        formation: &Formation,
        base: u16,
        only: &[String],
    ) -> Result<Vec<Instance>, FormationError> {
        formation.check_against(procfile)?;
        for name in only {
            check_known(procfile, name)?;
        }
        let mut plan = Vec::new();
        let mut taken: HashMap<u16, usize> = HashMap::new();
        for (type_index, t) in procfile.types.iter().enumerate() {
            if !only.is_empty() && !only.contains(&t.name) {
                continue;
            }
            for number in 1..=formation.quantity(&t.name) {
                let wanted = u64::from(base)
                    .saturating_add((type_index as u64).saturating_mul(100))
                    .saturating_add(number as u64 - 1);
                let instance = Instance {
                    type_name: t.name.clone(),
                    number,
                    command: t.command.clone(),
                    port: 0,
                    type_index,
                };
                let Ok(port) = u16::try_from(wanted) else {
                    return Err(FormationError::PortOverflow {
                        instance: instance.name(),
                        port: wanted,
                    });
                };
                if let Some(&first) = taken.get(&port) {
                    return Err(FormationError::PortCollision {
                        first: plan_name(&plan, first),
                        second: instance.name(),
                        port,
                    });
                }
                taken.insert(port, plan.len());
                plan.push(Instance { port, ..instance });
            }
        }
        Ok(plan)
    }
}

fn plan_name(plan: &[Instance], i: usize) -> String {
    plan.get(i).map(Instance::name).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    fn procfile(src: &str) -> Procfile {
        Procfile::parse(src, Path::new("Procfile")).unwrap()
    }

    fn names_ports(plan: &[Instance]) -> Vec<(String, u16)> {
        plan.iter().map(|i| (i.name(), i.port)).collect()
    }

    #[test]
    fn parse_and_quantity() {
        let f = Formation::parse(" web = 2 , worker=1,all=3, ").unwrap();
        assert_eq!(f.quantity("web"), 2);
        assert_eq!(f.quantity("worker"), 1);
        assert_eq!(f.quantity("clock"), 3);
        assert_eq!(f.all(), Some(3));
        assert_eq!(f.entries().collect::<Vec<_>>(), [("web", 2), ("worker", 1)]);
        let f = Formation::parse("web=0").unwrap();
        assert_eq!(f.quantity("web"), 0);
        assert_eq!(f.quantity("other"), 1);
    }

    #[test]
    fn empty_spec_is_default() {
        assert_eq!(Formation::parse("").unwrap(), Formation::default());
        assert_eq!(Formation::parse(" , ").unwrap(), Formation::default());
        assert_eq!(Formation::default().quantity("anything"), 1);
    }

    #[test]
    fn parse_errors() {
        assert_eq!(
            Formation::parse("web"),
            Err(FormationError::MissingEquals { item: "web".into() })
        );
        for bad in [
            "web=",
            "web=-1",
            "web=two",
            "web=+1",
            "web=1.5",
            "web=99999999999999999999999",
        ] {
            assert!(
                matches!(
                    Formation::parse(bad),
                    Err(FormationError::InvalidQuantity { .. })
                ),
                "{bad}"
            );
        }
        assert!(matches!(
            Formation::parse("we b=1"),
            Err(FormationError::InvalidName { .. })
        ));
        assert!(matches!(
            Formation::parse("=1"),
            Err(FormationError::InvalidName {
                reason: NameError::Empty,
                ..
            })
        ));
        assert_eq!(
            Formation::parse("web=1,web=2"),
            Err(FormationError::Duplicate { name: "web".into() })
        );
        assert!(Formation::parse("all=1,all=2").is_err());
        let msg = Formation::parse("web=x").unwrap_err().to_string();
        assert_eq!(
            msg,
            "formation item `web=x`: the quantity must be a whole number 0 or more"
        );
    }

    #[test]
    fn set_replaces_and_sets_default() {
        let mut f = Formation::parse("web=2").unwrap();
        f.set("web", 5);
        f.set("worker", 0);
        f.set(ALL, 2);
        assert_eq!(f.quantity("web"), 5);
        assert_eq!(f.quantity("worker"), 0);
        assert_eq!(f.quantity("clock"), 2);
        assert_eq!(f.entries().count(), 2);
    }

    #[test]
    fn check_against_lists_known_types() {
        let p = procfile("web: a\nworker: b\n");
        let f = Formation::parse("web=1,wrker=2").unwrap();
        let e = f.check_against(&p).unwrap_err();
        assert_eq!(
            e.to_string(),
            "unknown process type `wrker`; the Procfile defines: web, worker"
        );
        assert!(
            Formation::parse("all=2,web=1")
                .unwrap()
                .check_against(&p)
                .is_ok()
        );
    }

    #[test]
    fn foreman_example() {
        let p = procfile("web: ./web\nworker: ./work\n");
        let f = Formation::parse("web=2,worker=1").unwrap();
        let plan = PortPlan::plan(&p, &f, 7000, &[]).unwrap();
        assert_eq!(
            names_ports(&plan),
            [
                ("web.1".into(), 7000),
                ("web.2".into(), 7001),
                ("worker.1".into(), 7100)
            ]
        );
        assert_eq!(plan[2].command, "./work");
        assert_eq!(plan[2].type_index, 1);
        assert_eq!(plan[1].number, 2);
    }

    #[test]
    fn only_keeps_procfile_positions() {
        let p = procfile("web: a\nworker: b\nclock: c\n");
        let plan = PortPlan::plan(&p, &Formation::default(), 5000, &["clock".into()]).unwrap();
        assert_eq!(names_ports(&plan), [("clock.1".into(), 5200)]);
        assert_eq!(plan[0].type_index, 2);
        let e = PortPlan::plan(&p, &Formation::default(), 5000, &["clok".into()]).unwrap_err();
        assert!(matches!(e, FormationError::UnknownType { ref name, .. } if name == "clok"));
    }

    #[test]
    fn zero_quantity_and_all() {
        let p = procfile("web: a\nworker: b\nclock: c\n");
        let f = Formation::parse("all=0,worker=2").unwrap();
        let plan = PortPlan::plan(&p, &f, 5000, &[]).unwrap();
        assert_eq!(
            names_ports(&plan),
            [("worker.1".into(), 5100), ("worker.2".into(), 5101)]
        );
    }

    #[test]
    fn plan_rejects_unknown_formation_types() {
        let p = procfile("web: a\n");
        let f = Formation::parse("worker=1").unwrap();
        assert!(matches!(
            PortPlan::plan(&p, &f, 5000, &[]),
            Err(FormationError::UnknownType { .. })
        ));
    }

    #[test]
    fn port_overflow() {
        let p = procfile("web: a\nworker: b\n");
        let f = Formation::parse("web=1").unwrap();
        let e = PortPlan::plan(&p, &f, 65500, &[]).unwrap_err();
        assert_eq!(
            e,
            FormationError::PortOverflow {
                instance: "worker.1".into(),
                port: 65600
            }
        );
        let p = procfile("web: a\n");
        let f = Formation::parse("web=2").unwrap();
        assert!(PortPlan::plan(&p, &f, 65534, &[]).is_ok());
        assert!(PortPlan::plan(&p, &f, 65535, &[]).is_err());
        // A huge quantity fails on the port, it does not allocate forever.
        let f = Formation::parse("web=18446744073709551615").unwrap();
        assert!(PortPlan::plan(&p, &f, 5000, &[]).is_err());
    }

    #[test]
    fn port_collision() {
        let p = procfile("web: a\nworker: b\n");
        let f = Formation::parse("web=101").unwrap();
        let e = PortPlan::plan(&p, &f, 5000, &[]).unwrap_err();
        assert_eq!(
            e,
            FormationError::PortCollision {
                first: "web.101".into(),
                second: "worker.1".into(),
                port: 5100
            }
        );
        // No collision when the next type is not planned.
        assert_eq!(
            PortPlan::plan(&p, &f, 5000, &["web".into()]).unwrap().len(),
            101
        );
    }
}
