//! How far an IVF search probes, in one place for the search and for the calibration
//! of recall targets (which must count the lists a search would scan, not an
//! approximation of them).
//!
//! The lists go in the order of their centroids' coarse scores against the query
//! (nearest first). A list is scanned while any of these holds:
//! - fewer than `nprobe` lists were counted (a list counts only if it held allowed
//!   rows; every list without a filter);
//! - fewer than `k` rows were gathered;
//! - its score is within `reach` of the nearest list's (`SearchParams::probe_reach`).
//!
//! Scores ascend along the order and the counts only grow, so the lists scanned are
//! always a prefix of the order. `reach` is the finer knob: `nprobe` moves recall in
//! steps (on clustered data 2 lists gave recall@10 0.873 and 3 gave 0.957), while a
//! reach adds the next lists only for the queries that lie near their boundary —
//! those most likely to find neighbours there — so recall climbs between two `nprobe`
//! values query by query.

/// The gap of a list's coarse score to the nearest list's (`first`): what `reach`
/// bounds. The same f32 expression in the search and in the calibration, so a reach
/// the calibration picked scans exactly the lists it counted.
#[inline]
pub(super) fn gap(score: f32, first: f32) -> f32 {
    score - first
}

/// The running state of one search's probing.
pub(super) struct Walk {
    nprobe: usize,
    k: usize,
    reach: Option<f32>,
    filtered: bool,
    first: Option<f32>,
    counted: usize,
    gathered: usize,
}

impl Walk {
    pub(super) fn new(nprobe: usize, k: usize, reach: Option<f32>, filtered: bool) -> Self {
        Self {
            nprobe,
            k,
            reach,
            filtered,
            first: None,
            counted: 0,
            gathered: 0,
        }
    }

    /// Whether the next list in probe order, of coarse score `score`, is scanned.
    #[inline]
    pub(super) fn scans(&mut self, score: f32) -> bool {
        let first = *self.first.get_or_insert(score);
        self.counted < self.nprobe
            || self.gathered < self.k
            || self.reach.is_some_and(|r| gap(score, first) <= r)
    }

    /// The least `nprobe` from which the next list is scanned without a reach (1: it is
    /// scanned whatever `nprobe`, fewer than `k` rows having come before it).
    #[inline]
    pub(super) fn need(&self) -> usize {
        if self.gathered < self.k {
            1
        } else {
            self.counted + 1
        }
    }

    /// Records a scanned list that held `held` rows (allowed ones under a filter).
    #[inline]
    pub(super) fn scanned(&mut self, held: usize) {
        if held > 0 || !self.filtered {
            self.counted += 1;
        }
        self.gathered += held;
    }
}

/// One list as a search for a query meets it (calibration).
#[derive(Clone, Copy, Debug)]
pub struct ProbedList {
    /// The least `nprobe` at which a search without a reach scans it.
    pub need: usize,
    /// Its coarse score's gap to the nearest list's: scanned at any reach ≥ this.
    pub gap: f32,
    /// What scanning it costs, in rows scored exactly: its allowed rows for the plain
    /// scan, [`coded_row_cost`] a row for the coded one (which reads every row's code).
    pub cost: f64,
}

/// The cost of a row of a coded list's scan, in rows scored exactly, at `dim`
/// dimensions: bytes read, with a fixed share for what is done per row whatever the
/// dimension (the estimate, the filter's lookup, the bound's test) — `dim/8 + 490`
/// against `4·dim + 64` (the row and a cache line's worth of its random access). The
/// fixed share is fitted to the real set (384-d, `rabitq`, one thread: 44 ns a row of
/// the lists scanned at `nprobe` 15, 130 ns a row for the exact scan of a filter's
/// allowed rows: 0.34); at 128-d a coded row then costs 0.88 of an exact one, as the
/// synthetic set showed (the exact scan of a 1 % filter's rows beat the coded lists).
pub fn coded_row_cost(dim: usize) -> f64 {
    let d = dim as f64;
    ((d / 8.0 + 490.0) / (4.0 * d + 64.0)).min(1.0)
}

/// What a search for one query scans at any `nprobe` and reach, for the calibration
/// of recall targets ([`super::IvfIndex::probes`]).
#[derive(Clone, Debug, Default)]
pub struct Probes {
    /// The lists in probe order: `need` and `gap` ascend along it.
    pub lists: Vec<ProbedList>,
    /// For each slot asked about, its list's position in `lists` (`usize::MAX`: a slot
    /// the index does not hold).
    pub at: Vec<usize>,
    /// The least `nprobe` from which a search scores every allowed row exactly instead
    /// (`usize::MAX` without a filter), and how many rows that is.
    pub every: (usize, usize),
}

impl Probes {
    /// How many lists, from the first, a search at `nprobe` and `reach` scans.
    pub fn scanned(&self, nprobe: usize, reach: Option<f32>) -> usize {
        let by_need = self.lists.partition_point(|l| l.need <= nprobe);
        let by_reach = reach.map_or(0, |r| self.lists.partition_point(|l| l.gap <= r));
        by_need.max(by_reach)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_walk_scans_a_prefix_by_each_rule() {
        // nprobe 2: two lists counted, then whatever is in reach.
        let scores = [0.0f32, 1.0, 1.5, 2.5, 9.0];
        let run = |reach: Option<f32>, k: usize, held: &[usize]| {
            let mut w = Walk::new(2, k, reach, true);
            let mut n = 0;
            for (&s, &h) in scores.iter().zip(held) {
                if !w.scans(s) {
                    break;
                }
                w.scanned(h);
                n += 1;
            }
            n
        };
        let five = [5; 5];
        assert_eq!(run(None, 3, &five), 2);
        assert_eq!(run(Some(1.5), 3, &five), 3);
        assert_eq!(run(Some(2.5), 3, &five), 4);
        assert_eq!(run(Some(100.0), 3, &five), 5);
        // Lists without allowed rows do not count; fewer than k rows keep it going.
        assert_eq!(run(None, 3, &[0, 5, 0, 5, 5]), 4);
        assert_eq!(run(None, 12, &[5, 5, 1, 5, 5]), 4);
    }
}
