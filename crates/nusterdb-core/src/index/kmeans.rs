//! k-means centroids of a sample of rows (squared euclidean), deterministic for a seed.
//!
//! Seeded by k-means++ (each next centroid drawn with probability proportional to the
//! squared distance to the nearest one already chosen: well-separated clusters each get
//! a centroid, where uniform picks leave some merged), then refined by Lloyd's
//! iterations. Rows equal to a chosen centroid are never drawn again, so data with
//! fewer than `k` distinct rows gets fewer centroids rather than duplicates. The
//! assignment steps ([`assign`]) run as the flat index's batch search for the nearest
//! centroid (its blocked matrix product, in parallel); the result depends only on the
//! rows and the seed (sums are taken in a fixed order), not on the thread count.

use rayon::prelude::*;

use super::{FlatIndex, SearchParams, VectorIndex};
use crate::distance::kernels;
use crate::metric::DistanceMetric;
use crate::rng::SplitMix64;

/// Rows per batch search of [`assign`] (bounds the per-query state it holds at once).
const ASSIGN_ROWS: usize = 1 << 16;

/// Up to `k` centroids (`dim` floats each, concatenated) of `rows` (`dim` floats each),
/// after `iters` Lloyd iterations. Empty for no rows; fewer than `k` when `rows` has
/// fewer distinct rows.
pub fn train(rows: &[f32], dim: usize, k: usize, iters: usize, seed: u64) -> Vec<f32> {
    if dim == 0 || rows.len() < dim || k == 0 {
        return Vec::new();
    }
    let n = rows.len() / dim;
    let row = |i: usize| &rows[i * dim..(i + 1) * dim];
    let l2 = kernels().l2_squared;
    let mut rng = SplitMix64::new(seed);

    // k-means++ seeding; `near[i]` is row i's squared distance to its nearest centroid.
    let first = (rng.next_u64() % n as u64) as usize;
    let mut centroids = row(first).to_vec();
    let mut near: Vec<f32> = (0..n)
        .into_par_iter()
        .map(|i| l2(row(i), row(first)))
        .collect();
    while centroids.len() / dim < k {
        let total: f64 = near.iter().map(|&d| f64::from(d)).sum();
        if total <= 0.0 {
            break;
        }
        let mut target = rng.next_f64() * total;
        let mut pick = n;
        for (i, &d) in near.iter().enumerate() {
            target -= f64::from(d);
            if target < 0.0 && d > 0.0 {
                pick = i;
                break;
            }
        }
        if pick == n {
            // Rounding left the target past the end: the last row still away from
            // every centroid.
            match near.iter().rposition(|&d| d > 0.0) {
                Some(i) => pick = i,
                None => break,
            }
        }
        let c = row(pick).to_vec();
        near.par_iter_mut().enumerate().for_each(|(i, d)| {
            *d = d.min(l2(row(i), &c));
        });
        centroids.extend_from_slice(&c);
    }

    let kk = centroids.len() / dim;
    for _ in 0..iters {
        let assigned = assign(&centroids, dim, rows);
        let mut sums = vec![0f64; kk * dim];
        let mut counts = vec![0u64; kk];
        for (i, &a) in assigned.iter().enumerate() {
            let a = a as usize;
            counts[a] += 1;
            for (s, &x) in sums[a * dim..(a + 1) * dim].iter_mut().zip(row(i)) {
                *s += f64::from(x);
            }
        }
        for (j, &count) in counts.iter().enumerate() {
            // An emptied centroid keeps its place (it was a row, so it is not far off).
            if count > 0 {
                for (c, &s) in centroids[j * dim..(j + 1) * dim]
                    .iter_mut()
                    .zip(&sums[j * dim..(j + 1) * dim])
                {
                    *c = (s / count as f64) as f32;
                }
            }
        }
    }
    centroids
}

/// The nearest centroid of each of `rows` (`dim` floats each), as [`nearest`] finds it
/// for one row (squared euclidean; of equals the first), all at once: an exact flat
/// index over the centroids answers the rows as a batch of queries, a blocked matrix
/// product several times faster than one pair at a time.
pub fn assign(centroids: &[f32], dim: usize, rows: &[f32]) -> Vec<u32> {
    let dim = dim.max(1);
    let (k, n) = (centroids.len() / dim, rows.len() / dim);
    if k <= 1 {
        return vec![0; n];
    }
    let mut index = FlatIndex::new(dim, DistanceMetric::Euclidean, k);
    let items: Vec<(u32, &[f32])> = centroids
        .chunks_exact(dim)
        .enumerate()
        .map(|(j, c)| (j as u32, c))
        .collect();
    index.insert_many(&items);
    let mut out = Vec::with_capacity(n);
    for chunk in rows.chunks(ASSIGN_ROWS * dim) {
        let hits = index.batch_search(chunk, 1, None, &SearchParams::default());
        out.extend(hits.iter().map(|h| h.first().map_or(0, |&(j, _)| j)));
    }
    out
}

/// The index of the centroid nearest to `x` (the first of equals; 0 when there is none).
pub fn nearest(centroids: &[f32], dim: usize, x: &[f32]) -> usize {
    nearest_with_distance(centroids, dim, x).0
}

/// [`nearest`] and the squared distance to it (infinite when there is no centroid).
pub fn nearest_with_distance(centroids: &[f32], dim: usize, x: &[f32]) -> (usize, f32) {
    let l2 = kernels().l2_squared;
    let mut best = (0, f32::INFINITY);
    for (j, c) in centroids.chunks_exact(dim.max(1)).enumerate() {
        let d = l2(x, c);
        if d < best.1 {
            best = (j, d);
        }
    }
    best
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    /// Rows around `centres` (`spread` apart at most), in a scrambled order.
    fn blobs(centres: &[Vec<f32>], per: usize, spread: f32, seed: u64) -> Vec<f32> {
        let mut rng = SplitMix64::new(seed);
        let mut out = Vec::new();
        for i in 0..centres.len() * per {
            let c = &centres[(i * 7919) % centres.len()];
            out.extend(
                c.iter()
                    .map(|&x| x + spread * (rng.next_f64() as f32 - 0.5)),
            );
        }
        out
    }

    #[test]
    fn separated_blobs_each_get_one_centroid_at_their_centre() {
        let dim = 8;
        let centres: Vec<Vec<f32>> = (0..12)
            .map(|j| {
                (0..dim)
                    .map(|i| ((j * 31 + i * 17) % 23) as f32 * 10.0)
                    .collect()
            })
            .collect();
        let rows = blobs(&centres, 50, 1.0, 3);
        let c = train(&rows, dim, centres.len(), 10, 42);
        assert_eq!(c.len(), centres.len() * dim);
        for centre in &centres {
            let j = nearest(&c, dim, centre);
            let d = (kernels().l2_squared)(centre, &c[j * dim..(j + 1) * dim]);
            assert!(
                d < 0.5,
                "a blob's centroid is {d} (squared) from its centre"
            );
        }
    }

    #[test]
    fn the_same_rows_and_seed_give_the_same_centroids() {
        let centres: Vec<Vec<f32>> = (0..5).map(|j| vec![j as f32; 4]).collect();
        let rows = blobs(&centres, 40, 0.5, 9);
        assert_eq!(train(&rows, 4, 5, 6, 1), train(&rows, 4, 5, 6, 1));
    }

    #[test]
    fn fewer_distinct_rows_than_k_give_fewer_centroids() {
        let rows = [[1.0f32, 2.0], [1.0, 2.0], [3.0, 4.0], [1.0, 2.0]].concat();
        let c = train(&rows, 2, 8, 5, 0);
        assert_eq!(c.len(), 2 * 2);
        assert_eq!(train(&[5.0; 12], 3, 4, 5, 0), vec![5.0; 3]);
        assert!(train(&[], 3, 4, 5, 0).is_empty());
        assert_eq!(nearest(&[], 3, &[1.0, 2.0, 3.0]), 0);
    }

    #[test]
    fn assign_finds_what_nearest_finds() {
        let centres: Vec<Vec<f32>> = (0..37)
            .map(|j| vec![(j * 3) as f32, (j % 5) as f32, 1.0])
            .collect();
        let rows = blobs(&centres, 30, 2.0, 5);
        let c: Vec<f32> = centres.concat();
        let got = assign(&c, 3, &rows);
        assert_eq!(got.len(), rows.len() / 3);
        for (i, r) in rows.chunks_exact(3).enumerate() {
            let j = got[i] as usize;
            let l2 = kernels().l2_squared;
            let best = l2(r, &c[nearest(&c, 3, r) * 3..][..3]);
            assert!(l2(r, &c[j * 3..][..3]) <= best * (1.0 + 1e-5), "row {i}");
        }
        assert_eq!(assign(&c[..3], 3, &rows), vec![0; rows.len() / 3]);
    }
}
