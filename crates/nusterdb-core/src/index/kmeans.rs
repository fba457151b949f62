//! k-means centroids of a sample of rows (squared euclidean), deterministic for a seed.
//!
//! Seeded by k-means++ (each next centroid drawn with probability proportional to the
//! squared distance to the nearest one already chosen: well-separated clusters each get
//! a centroid, where uniform picks leave some merged), then refined by Lloyd's
//! iterations. Rows equal to a chosen centroid are never drawn again, so data with
//! fewer than `k` distinct rows gets fewer centroids rather than duplicates. The
//! assignment steps run in parallel; the result depends only on the rows and the seed
//! (sums are taken in a fixed order), not on the thread count.

use rayon::prelude::*;

use crate::distance::kernels;
use crate::rng::SplitMix64;

/// Rows per parallel task of an assignment step.
const CHUNK: usize = 256;

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
    let mut assign = vec![0u32; n];
    for _ in 0..iters {
        assign
            .par_chunks_mut(CHUNK)
            .enumerate()
            .for_each(|(c, out)| {
                for (j, a) in out.iter_mut().enumerate() {
                    *a = nearest(&centroids, dim, row(c * CHUNK + j)) as u32;
                }
            });
        let mut sums = vec![0f64; kk * dim];
        let mut counts = vec![0u64; kk];
        for (i, &a) in assign.iter().enumerate() {
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

/// The index of the centroid nearest to `x` (the first of equals; 0 when there is none).
pub fn nearest(centroids: &[f32], dim: usize, x: &[f32]) -> usize {
    let l2 = kernels().l2_squared;
    let mut best = (0, f32::INFINITY);
    for (j, c) in centroids.chunks_exact(dim.max(1)).enumerate() {
        let d = l2(x, c);
        if d < best.1 {
            best = (j, d);
        }
    }
    best.0
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
}
