//! `--shard I/N`: one of N deterministic parts of a run, for CI jobs that
//! split a suite. The unit is the object (loaded whole on a kernel, so a
//! shard loads only its own): objects go, heaviest first, to the lightest
//! shard, weighed by their programs and cases; ties by name. Every shard
//! computes the same assignment from the same project, so the shards
//! together are the whole run, each object in exactly one.

use std::{fmt, str::FromStr};

use crate::Prepared;

/// Part `index` (from 1) of `count`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Shard {
    pub index: usize,
    pub count: usize,
}

/// A `--shard` that is not `I/N` with 1 ≤ I ≤ N.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
#[error("`{text}`: {why}")]
pub struct BadShard {
    pub text: String,
    pub why: String,
}

impl FromStr for Shard {
    type Err = BadShard;

    fn from_str(s: &str) -> Result<Self, BadShard> {
        let bad = |why: String| BadShard {
            text: s.to_owned(),
            why,
        };
        let Some((i, n)) = s.split_once('/') else {
            return Err(bad("expected I/N, such as 1/4 (part I of N)".into()));
        };
        let number = |part: &str, what: &str| {
            part.trim().parse::<usize>().map_err(|_| {
                bad(format!(
                    "{what} `{part}` is not a whole number (expected I/N, such as 1/4)"
                ))
            })
        };
        let (index, count) = (number(i, "the part")?, number(n, "the number of parts")?);
        if count == 0 {
            return Err(bad("the number of parts must be at least 1".into()));
        }
        if index == 0 || index > count {
            return Err(bad(format!(
                "the part must be between 1 and {count} (parts count from 1)"
            )));
        }
        Ok(Self { index, count })
    }
}

impl fmt::Display for Shard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.index, self.count)
    }
}

impl Shard {
    /// Which part (from 1) each `(name, weight)` goes to.
    pub fn assign(units: &[(String, usize)], count: usize) -> Vec<usize> {
        let mut order: Vec<usize> = (0..units.len()).collect();
        order.sort_by(|&a, &b| {
            units[b]
                .1
                .cmp(&units[a].1)
                .then_with(|| units[a].0.cmp(&units[b].0))
        });
        let mut load = vec![0usize; count];
        let mut part = vec![0; units.len()];
        for u in order {
            // The lightest part; the first of equals.
            let (p, _) = load
                .iter()
                .enumerate()
                .min_by_key(|&(i, l)| (*l, i))
                .expect("count is at least 1");
            // Every object weighs at least 1, so empty ones spread too.
            load[p] += units[u].1.max(1);
            part[u] = p + 1;
        }
        part
    }
}

impl Prepared {
    /// Keeps the objects (with their cases and expectations) of `shard`,
    /// objects that did not build or open included.
    pub fn shard(&mut self, shard: Shard) {
        let mut units: Vec<(String, usize)> = self
            .objects
            .iter()
            .map(|o| {
                let programs = o
                    .info
                    .file
                    .programs()
                    .iter()
                    .filter(|p| self.is_selected(&o.name, &p.name))
                    .count();
                let cases = self.cases.iter().filter(|c| c.object == o.name).count();
                (o.name.clone(), programs + cases)
            })
            .collect();
        units.extend(self.unopened.iter().map(|u| (u.name.clone(), 1)));
        let parts = Shard::assign(&units, shard.count);
        let mine: std::collections::BTreeSet<String> = units
            .into_iter()
            .zip(parts)
            .filter(|(_, p)| *p == shard.index)
            .map(|((name, _), _)| name)
            .collect();
        self.objects.retain(|o| mine.contains(&o.name));
        self.cases.retain(|c| mine.contains(&c.object));
        self.expectations.retain(|e| mine.contains(&e.object));
        self.unopened.retain(|u| mine.contains(&u.name));
        self.shard = Some(shard);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_parts_and_refuses_nonsense() {
        assert_eq!("2/4".parse::<Shard>(), Ok(Shard { index: 2, count: 4 }));
        for (text, says) in [
            ("3/2", "between 1 and 2"),
            ("0/4", "between 1 and 4"),
            ("1/0", "at least 1"),
            ("2", "expected I/N"),
            ("a/3", "`a` is not a whole number"),
        ] {
            let e = text.parse::<Shard>().unwrap_err().to_string();
            assert!(e.contains(says) && e.contains(text), "{text}: {e}");
        }
    }

    #[test]
    fn every_unit_lands_in_exactly_one_part_and_the_heaviest_spread() {
        let units: Vec<(String, usize)> = [("a", 10), ("b", 1), ("c", 9), ("d", 2), ("e", 0)]
            .iter()
            .map(|(n, w)| (n.to_string(), *w))
            .collect();
        let parts = Shard::assign(&units, 2);
        // a (10) → 1, c (9) → 2, d (2) → 2 (11), b (1) → 1 (11), e → 1.
        assert_eq!(parts, vec![1, 1, 2, 2, 1]);
        assert_eq!(Shard::assign(&units, 1), vec![1; 5]);
        // More parts than units: some stay empty, none is shared.
        let many = Shard::assign(&units, 8);
        let mut sorted = many.clone();
        sorted.sort();
        sorted.dedup();
        assert_eq!(sorted.len(), 5, "{many:?}");
    }
}
