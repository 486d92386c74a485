//! The order targets start in: the costliest first (longest processing
//! time first), so the last one to finish is not a long kernel started
//! late while the other cores idle. Costs are the last run's wall times,
//! kept in `<outputs>/timings.json`; a target never timed counts as the
//! costliest (what is unknown should not start last), newer kernels first
//! among those (they boot slower), the host last (in-process, cheap).

use std::{collections::BTreeMap, path::Path};

use harness_kernels::Target;

const FILE: &str = "timings.json";

/// Seconds each target label took last time.
pub(crate) type Timings = BTreeMap<String, f64>;

/// The last runs' timings; none when missing or unreadable (a schedule is
/// an optimisation, never a reason to fail).
pub(crate) fn load(outputs: &Path) -> Timings {
    std::fs::read_to_string(outputs.join(FILE))
        .ok()
        .and_then(|t| serde_json::from_str(&t).ok())
        .unwrap_or_default()
}

/// Adds this run's timings to the file (written whole; failures ignored,
/// as for reading).
pub(crate) fn save(outputs: &Path, now: &[(String, f64)]) {
    let mut all = load(outputs);
    all.extend(now.iter().cloned());
    let Ok(text) = serde_json::to_string_pretty(&all) else {
        return;
    };
    let Ok(mut tmp) = tempfile::NamedTempFile::new_in(outputs) else {
        return;
    };
    if std::io::Write::write_all(&mut tmp, text.as_bytes()).is_ok() {
        let _ = tmp.persist(outputs.join(FILE));
    }
}

/// Indices of `targets` in the order to start them.
pub(crate) fn order(targets: &[Target], last: &Timings) -> Vec<usize> {
    let mut order: Vec<usize> = (0..targets.len()).collect();
    // Sort key, descending: (class, cost, version); class 2: a VM never
    // timed, 1: a VM timed, 0: the host.
    let key = |t: &Target| {
        let class = match (t.is_host(), last.get(&t.label)) {
            (true, _) => 0,
            (false, None) => 2,
            (false, Some(_)) => 1,
        };
        (class, last.get(&t.label).copied().unwrap_or(0.0), t.version)
    };
    order.sort_by(|&a, &b| {
        let (ka, kb) = (key(&targets[a]), key(&targets[b]));
        kb.0.cmp(&ka.0)
            .then(kb.1.total_cmp(&ka.1))
            .then(kb.2.cmp(&ka.2))
            .then(a.cmp(&b))
    });
    order
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use harness_kernels::{Boot, Origin};

    use super::*;

    fn vm(label: &str, version: &str) -> Target {
        Target {
            label: label.into(),
            version: Some(version.parse().unwrap()),
            release: String::new(),
            boot: Boot::Vm {
                bzimage: PathBuf::from("/nonexistent"),
                origin: Origin::Image {
                    path: PathBuf::from("/nonexistent"),
                },
                config: None,
            },
        }
    }

    fn host() -> Target {
        Target {
            label: "host".into(),
            version: Some("6.18".parse().unwrap()),
            release: String::new(),
            boot: Boot::Host,
        }
    }

    #[test]
    fn the_costliest_start_first_and_the_unknown_before_them() {
        let targets = [
            vm("5.10", "5.10"),
            vm("6.1", "6.1"),
            host(),
            vm("7.2", "7.2"),
        ];
        // Never timed: newest first, the host last.
        assert_eq!(order(&targets, &Timings::new()), [3, 1, 0, 2]);
        let last: Timings = [("5.10", 2.4), ("6.1", 2.9), ("7.2", 5.1), ("host", 9.0)]
            .iter()
            .map(|(l, s)| ((*l).to_owned(), *s))
            .collect();
        assert_eq!(order(&targets, &last), [3, 1, 0, 2]);
        // 5.10 got slow: it goes first.
        let mut slow = last.clone();
        slow.insert("5.10".into(), 8.0);
        assert_eq!(order(&targets, &slow), [0, 3, 1, 2]);
        // A kernel never timed goes before the timed ones.
        let mut partial = last;
        partial.remove("6.1");
        assert_eq!(order(&targets, &partial), [1, 3, 0, 2]);
    }

    #[test]
    fn timings_survive_a_run_and_a_bad_file_is_no_schedule() {
        let dir = tempfile::tempdir().unwrap();
        save(dir.path(), &[("6.1".into(), 2.5)]);
        save(dir.path(), &[("7.2".into(), 5.0), ("6.1".into(), 3.0)]);
        let t = load(dir.path());
        assert_eq!(t.get("6.1"), Some(&3.0));
        assert_eq!(t.get("7.2"), Some(&5.0));
        std::fs::write(dir.path().join(FILE), "not json").unwrap();
        assert!(load(dir.path()).is_empty());
    }
}
