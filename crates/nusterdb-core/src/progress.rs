//! Progress and cancellation of long work (a bulk write's indexing, an open's loading,
//! a batch search).
//!
//! The work calls an [`Observer`] on the calling thread between pieces of about
//! [`STEP`] each; the observer reports progress and answers whether to go on. Work that
//! stops early leaves the database as before the call: a stopped write stores nothing,
//! a stopped open opens nothing. That is how the bindings turn Ctrl-C into a prompt
//! `KeyboardInterrupt`.

use std::time::{Duration, Instant};

/// The target length of the pieces between two observer calls.
pub const STEP: Duration = Duration::from_millis(50);

/// What a piece of long work is doing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Phase {
    /// Reading the stored records at open (units: records).
    Loading,
    /// Linking vectors into the index (units: vectors).
    Indexing,
    /// Searching a batch of queries (units: queries).
    Searching,
}

impl Phase {
    /// The name users see.
    pub fn name(self) -> &'static str {
        match self {
            Phase::Loading => "loading",
            Phase::Indexing => "indexing",
            Phase::Searching => "searching",
        }
    }
}

/// Watches long work. Called on the thread that started the work, never from the
/// worker threads, and never while the database lock could be wanted by the observer:
/// an observer must not use the database itself.
pub trait Observer: Sync {
    /// `done` of `total` units of `phase` are finished (`total` may grow while
    /// loading: it is an estimate there). `false` stops the work.
    fn step(&self, phase: Phase, done: u64, total: u64) -> bool;
}

/// The observer of work nobody watches: it always goes on.
pub struct Unobserved;

impl Observer for Unobserved {
    fn step(&self, _phase: Phase, _done: u64, _total: u64) -> bool {
        true
    }
}

/// Splits `total` units of work into pieces of about [`STEP`], learning the rate as
/// it goes: `next_size()` gives the size of the next piece.
pub struct Pacer {
    size: usize,
    min: usize,
    started: Instant,
}

impl Pacer {
    /// A pacer whose pieces are never smaller than `min` units (work that is cheaper
    /// per unit in larger pieces says how large), starting there.
    pub fn new(min: usize) -> Self {
        Self {
            size: min.max(1),
            min: min.max(1),
            started: Instant::now(),
        }
    }

    /// The size of the next piece, from how long the last one took.
    pub fn next_size(&mut self) -> usize {
        let took = self.started.elapsed().as_secs_f64().max(1e-6);
        let scale = (STEP.as_secs_f64() / took).clamp(0.25, 4.0);
        self.size = ((self.size as f64 * scale) as usize).clamp(self.min, (1 << 20).max(self.min));
        self.started = Instant::now();
        self.size
    }

    /// The size of the current piece.
    pub fn size(&self) -> usize {
        self.size
    }
}

/// Runs `work` over `items` in pieces paced by a [`Pacer`] (at least `min` items
/// each), calling `observer` after each piece. `Err(done)`: the observer stopped the work after the first
/// `done` items (perhaps all of them).
///
/// # Errors
/// The observer's stop, with how many items were done.
pub fn in_pieces<T>(
    items: &[T],
    min: usize,
    phase: Phase,
    observer: &dyn Observer,
    mut work: impl FnMut(&[T]),
) -> Result<(), usize> {
    let total = items.len() as u64;
    let mut pacer = Pacer::new(min);
    let mut done = 0usize;
    while done < items.len() {
        let end = (done + pacer.size()).min(items.len());
        work(&items[done..end]);
        done = end;
        if !observer.step(phase, done as u64, total) {
            return Err(done);
        }
        pacer.next_size();
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU64, Ordering};

    struct StopAt(u64, AtomicU64);

    impl Observer for StopAt {
        fn step(&self, _: Phase, done: u64, _: u64) -> bool {
            self.1.fetch_add(1, Ordering::Relaxed);
            done < self.0
        }
    }

    #[test]
    fn pieces_cover_everything_in_order_unless_stopped() {
        let items: Vec<u32> = (0..1000).collect();
        let mut seen = Vec::new();
        let all = in_pieces(&items, 7, Phase::Indexing, &Unobserved, |p| {
            seen.extend_from_slice(p)
        });
        assert_eq!((all, seen), (Ok(()), items.clone()));
        let stop = StopAt(300, AtomicU64::new(0));
        let mut seen = Vec::new();
        let r = in_pieces(&items, 7, Phase::Indexing, &stop, |p| {
            seen.extend_from_slice(p)
        });
        let Err(done) = r else { panic!("not stopped") };
        assert!((300..1000).contains(&done), "{done}");
        assert_eq!(seen, items[..done]);
        assert!(stop.1.load(Ordering::Relaxed) >= 1);
    }

    #[test]
    fn the_pacer_grows_fast_pieces_and_shrinks_slow_ones() {
        let mut p = Pacer::new(10);
        // Instant pieces grow by at most 4x per step; slow ones shrink, not below min.
        assert_eq!(p.next_size(), 40);
        p.started = Instant::now() - STEP * 8;
        assert_eq!(p.next_size(), 10);
        p.started = Instant::now() - STEP * 8;
        assert_eq!(p.next_size(), 10);
    }
}
