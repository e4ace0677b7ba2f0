//! Ids the tail read past before they were committed (PostgreSQL). Another program's writers
//! take ids from the sequence in one order and may commit in another: the tail, having read
//! id 102, would never look at 101 again. So the ids it skips are kept here, with the
//! server's transaction horizon when they were skipped, and looked at again after each
//! commit until they show (then they are sent once, as late rows) or until no transaction
//! that could still hold them is running (a rolled-back insert, a conflict that consumed a
//! sequence value, a deleted row: nothing will ever show there).

use std::time::{Duration, Instant};

/// A gap is given up no sooner than this after it was seen, even when the transaction
/// horizon passed it: an insert takes its id from the sequence just before it gets a
/// transaction id, so a transaction holding the id may start after the horizon was read.
pub const MIN_AGE: Duration = Duration::from_secs(5);
/// At most this many gaps are kept (the lowest ids are given up first).
pub const MAX_GAPS: usize = 1024;

/// Ids `lo..=hi`, missing when the server's next transaction id was `horizon`.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Gap {
    lo: i64,
    hi: i64,
    horizon: i64,
    since: Instant,
}

#[derive(Debug, Default)]
pub struct Gaps {
    /// In id order, not overlapping.
    gaps: Vec<Gap>,
}

impl Gaps {
    pub fn is_empty(&self) -> bool {
        self.gaps.is_empty()
    }

    /// The missing ids, as ranges `(lo, hi)` (both included), in id order.
    pub fn ranges(&self) -> Vec<(i64, i64)> {
        self.gaps.iter().map(|g| (g.lo, g.hi)).collect()
    }

    /// Remember the ids above `after` and below `upto` that `ids` (ascending, all in
    /// `(after, upto]`) skips. Returns how many gaps were given up to stay within [`MAX_GAPS`].
    pub fn note(
        &mut self,
        after: i64,
        upto: i64,
        ids: impl IntoIterator<Item = i64>,
        horizon: i64,
        now: Instant,
    ) -> usize {
        let mut prev = after;
        let mut add = |lo: i64, hi: i64| {
            if lo <= hi {
                self.gaps.push(Gap {
                    lo,
                    hi,
                    horizon,
                    since: now,
                });
            }
        };
        for id in ids {
            add(prev.saturating_add(1), id.saturating_sub(1));
            prev = prev.max(id);
        }
        add(prev.saturating_add(1), upto);
        self.gaps.sort_by_key(|g| g.lo);
        let over = self.gaps.len().saturating_sub(MAX_GAPS);
        self.gaps.drain(..over);
        over
    }

    /// The ids that showed: they are no longer missing.
    pub fn found(&mut self, ids: &[i64]) {
        for &id in ids {
            let Some(i) = self.gaps.iter().position(|g| g.lo <= id && id <= g.hi) else {
                continue;
            };
            let g = self.gaps[i];
            match (g.lo == id, g.hi == id) {
                (true, true) => {
                    self.gaps.remove(i);
                }
                (true, false) => self.gaps[i].lo = id + 1,
                (false, true) => self.gaps[i].hi = id - 1,
                (false, false) => {
                    self.gaps[i].hi = id - 1;
                    self.gaps.insert(i + 1, Gap { lo: id + 1, ..g });
                }
            }
        }
    }

    /// Give up the gaps that no running transaction can fill any more: every transaction
    /// below their horizon has ended (`xmin`, the oldest running one, is past it), they are
    /// at least [`MIN_AGE`] old, and they were looked at in the same snapshot as `xmin`.
    pub fn settle(&mut self, xmin: i64, now: Instant) {
        self.gaps
            .retain(|g| !(xmin >= g.horizon && now.duration_since(g.since) >= MIN_AGE));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn skipped_ids_become_ranges_and_fill_one_by_one() {
        let now = Instant::now();
        let mut g = Gaps::default();
        assert_eq!(g.note(10, 20, [12, 13, 17], 500, now), 0);
        assert_eq!(g.ranges(), vec![(11, 11), (14, 16), (18, 20)]);
        g.found(&[15, 11, 20, 99]);
        assert_eq!(g.ranges(), vec![(14, 14), (16, 16), (18, 19)]);
        g.found(&[14, 16, 18, 19]);
        assert!(g.is_empty());
        // Nothing skipped: nothing kept.
        g.note(20, 23, [21, 22, 23], 500, now);
        assert!(g.is_empty());
    }

    #[test]
    fn a_gap_is_given_up_once_the_horizon_passed_and_it_is_old_enough() {
        let then = Instant::now();
        let mut g = Gaps::default();
        g.note(0, 3, [1], 100, then);
        g.note(3, 6, [5], 200, then);
        // Old enough, but a transaction below the horizon may still run.
        g.settle(99, then + MIN_AGE);
        assert_eq!(g.ranges(), vec![(2, 3), (4, 4), (6, 6)]);
        // Horizon passed but too young.
        g.settle(150, then + MIN_AGE / 2);
        assert_eq!(g.ranges().len(), 3);
        g.settle(150, then + MIN_AGE);
        assert_eq!(g.ranges(), vec![(4, 4), (6, 6)]);
        g.settle(200, then + MIN_AGE);
        assert!(g.is_empty());
    }

    #[test]
    fn the_lowest_gaps_are_given_up_past_the_limit() {
        let now = Instant::now();
        let mut g = Gaps::default();
        let ids: Vec<i64> = (1..=2 * MAX_GAPS as i64 + 10).step_by(2).collect();
        let dropped = g.note(0, ids[ids.len() - 1], ids.iter().copied(), 1, now);
        assert_eq!(g.ranges().len(), MAX_GAPS);
        assert!(dropped > 0);
        let last = *ids.last().unwrap();
        assert_eq!(g.ranges().last(), Some(&(last - 1, last - 1)));
    }
}
