//! Process sizes on the server: which size each process type of each app runs at, and the
//! limits a size means for the supervisor.
//!
//! A type's size is, in order: what `ps:resize` stored, what the release's `dozen.toml`
//! (`[sizes]`) or `app.json` (`formation.TYPE.size`) declared, or [`DEFAULT_SIZE`]. The store
//! is the truth for the first; this keeps a copy per app so starting a process needs no query.

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;

use dozen_core::size::{DEFAULT_SIZE, SIZES, Size, format_bytes, format_cpu};
use dozen_supervise::Limits;

/// Sizes set with `ps:resize`, per app, as stored.
#[derive(Debug, Default)]
pub struct SizeBook {
    apps: Mutex<HashMap<String, BTreeMap<String, &'static Size>>>,
}

impl SizeBook {
    /// Remember the app's stored sizes (names the store holds; an unknown one, which only a
    /// newer dozen could have written, counts as unset).
    pub fn set(&self, app: &str, stored: &BTreeMap<String, String>) {
        let sizes = stored
            .iter()
            .filter_map(|(t, s)| Size::parse(s).ok().map(|s| (t.clone(), s)))
            .collect();
        self.lock().insert(app.to_string(), sizes);
    }

    /// Forget the app (destroyed).
    pub fn remove(&self, app: &str) {
        self.lock().remove(app);
    }

    /// The size `ps:resize` set for the type, if any.
    pub fn get(&self, app: &str, type_name: &str) -> Option<&'static Size> {
        self.lock().get(app).and_then(|m| m.get(type_name).copied())
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, BTreeMap<String, &'static Size>>> {
        self.apps.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// The size a type runs at: stored, else declared by the release (`declared`: type -> name
/// from the slug manifest), else the default.
pub fn effective(
    stored: Option<&'static Size>,
    declared: &BTreeMap<String, String>,
    type_name: &str,
) -> &'static Size {
    stored
        .or_else(|| declared.get(type_name).and_then(|s| Size::parse(s).ok()))
        .unwrap_or_else(Size::default_size)
}

/// The supervisor's limits for a process of `type_name` at `size`, with the advice its memory
/// event gives (the next size up).
pub fn limits(size: &Size, type_name: &str) -> Limits {
    let bigger = SIZES.iter().find(|s| s.memory > size.memory);
    let note = match bigger {
        Some(b) => format!(
            "size {}; for more memory: dozen ps:resize {type_name}={}",
            size.name, b.name
        ),
        None => format!("size {}, the largest", size.name),
    };
    Limits {
        memory: Some(size.memory),
        cpu_millis: Some(size.cpu_millis),
        pids: Some(size.pids),
        note: Some(note),
    }
}

/// The limits of a one-off (`dozen run`) and the release phase: the default size.
pub fn one_off_limits() -> Limits {
    let mut l = limits(Size::default_size(), "run");
    l.note = Some(format!("one-offs run at size {DEFAULT_SIZE}"));
    l
}

/// A size as the API gives it: name, memory, CPU, pids.
pub fn size_info(size: &Size) -> dozen_api::SizeInfo {
    dozen_api::SizeInfo {
        size: size.name.to_string(),
        memory: size.memory,
        memory_text: format_bytes(size.memory),
        cpu: format_cpu(size.cpu_millis),
        pids: u64::from(size.pids),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stored_wins_over_declared_over_default() {
        let declared = BTreeMap::from([("worker".to_string(), "tiny".to_string())]);
        let two = Size::parse("2x").ok();
        assert_eq!(effective(two, &declared, "worker").name, "2x");
        assert_eq!(effective(None, &declared, "worker").name, "tiny");
        assert_eq!(effective(None, &declared, "web").name, DEFAULT_SIZE);
    }

    #[test]
    fn limits_advise_the_next_size() {
        let tiny = Size::parse("tiny").expect("tiny");
        let l = limits(tiny, "worker");
        assert_eq!(l.memory, Some(128 << 20));
        assert_eq!(
            l.note.as_deref(),
            Some("size tiny; for more memory: dozen ps:resize worker=1x")
        );
    }
}
