//! Portable kernels in plain Rust: the fallback on every CPU and the reference the SIMD
//! kernels are tested against.
//!
//! They are not deliberately slow: each sum runs in [`LANES`] independent `f32`
//! accumulators, which breaks the add-latency chain and lets the compiler vectorise
//! with whatever the build target guarantees (SSE2 on x86_64). They use no intrinsics,
//! no `unsafe` and no `mul_add` (without hardware FMA that is a slow libm call).
//! The `*_f64` versions (tests only) accumulate in `f64` as a more exact oracle.

/// Independent accumulators per sum.
const LANES: usize = 8;

/// Restricts both slices to their common length, so mismatched input (a caller bug,
/// caught by the `debug_assert`) cannot make the two iterations disagree.
#[inline]
fn common<'a>(a: &'a [f32], b: &'a [f32]) -> (&'a [f32], &'a [f32]) {
    debug_assert_eq!(
        a.len(),
        b.len(),
        "distance kernels need equal-length slices"
    );
    let n = a.len().min(b.len());
    (&a[..n], &b[..n])
}

/// Adds the accumulators pairwise (a balanced tree keeps the rounding error low).
#[inline]
fn sum_lanes(acc: [f32; LANES]) -> f32 {
    let [a0, a1, a2, a3, a4, a5, a6, a7] = acc;
    ((a0 + a4) + (a2 + a6)) + ((a1 + a5) + (a3 + a7))
}

/// Folds `f(x, y)` over both slices into `LANES` accumulators with `+`, then the tail.
#[inline(always)]
fn sum_pairs(a: &[f32], b: &[f32], f: impl Fn(f32, f32) -> f32) -> f32 {
    let (a, b) = common(a, b);
    let (ca, ta) = a.as_chunks::<LANES>();
    let (cb, tb) = b.as_chunks::<LANES>();
    let mut acc = [0.0f32; LANES];
    for (x, y) in ca.iter().zip(cb) {
        for k in 0..LANES {
            acc[k] += f(x[k], y[k]);
        }
    }
    let tail: f32 = ta.iter().zip(tb).map(|(&x, &y)| f(x, y)).sum();
    sum_lanes(acc) + tail
}

/// Σ (a−b)².
pub(super) fn l2_squared(a: &[f32], b: &[f32]) -> f32 {
    sum_pairs(a, b, |x, y| (x - y) * (x - y))
}

/// Σ (a − s·b)². `s·b` is rounded before the subtraction (no `mul_add`, see above): one
/// rounding more per term than the SIMD kernels' fused a − s·b. It matters only where
/// a ≈ s·b, and the tests' tolerance allows for it.
pub(super) fn l2_scaled(a: &[f32], b: &[f32], s: f32) -> f32 {
    sum_pairs(a, b, |x, y| (x - s * y) * (x - s * y))
}

/// Σ a·b.
pub(super) fn dot(a: &[f32], b: &[f32]) -> f32 {
    sum_pairs(a, b, |x, y| x * y)
}

/// Σ q·c with `c` 8-bit codes (the quantized-vector dot product).
pub(super) fn dot_u8(q: &[f32], c: &[u8]) -> f32 {
    let n = q.len().min(c.len());
    let (q, c) = (&q[..n], &c[..n]);
    let (cq, tq) = q.as_chunks::<LANES>();
    let (cc, tc) = c.as_chunks::<LANES>();
    let mut acc = [0.0f32; LANES];
    for (x, y) in cq.iter().zip(cc) {
        for k in 0..LANES {
            acc[k] += x[k] * f32::from(y[k]);
        }
    }
    let tail: f32 = tq.iter().zip(tc).map(|(&x, &y)| x * f32::from(y)).sum();
    sum_lanes(acc) + tail
}

/// Σ a·b of two code vectors, exactly (u32: no overflow below 66 051 dimensions).
pub(super) fn dot_u8u8(a: &[u8], b: &[u8]) -> u32 {
    a.iter()
        .zip(b)
        .map(|(&x, &y)| u32::from(x) * u32::from(y))
        .fold(0u32, u32::wrapping_add)
}

/// Σ_j 2^j · popcount(c ∧ plane_j) (see [`Kernels::dot_bits`]), exactly.
///
/// [`Kernels::dot_bits`]: super::Kernels::dot_bits
pub(super) fn dot_bits(planes: &[u8], c: &[u8]) -> u32 {
    super::debug_assert_bits_lengths(planes, c);
    dot_bits_body(planes, c)
}

/// [`dot_bits`]'s body, inlined into the x86 table's `popcnt` build of it (where
/// `count_ones` is one instruction; on aarch64 it is NEON's `cnt`). Whole 64-bit words,
/// then any bytes left (none for valid lengths).
#[inline(always)]
pub(super) fn dot_bits_body(planes: &[u8], c: &[u8]) -> u32 {
    if c.is_empty() {
        return 0;
    }
    let (words, rest) = c.as_chunks::<8>();
    let mut total = 0u32;
    for (j, plane) in planes.chunks_exact(c.len()).take(8).enumerate() {
        let (pw, pr) = plane.as_chunks::<8>();
        let mut ones = 0u32;
        for (a, b) in words.iter().zip(pw) {
            ones += (u64::from_le_bytes(*a) & u64::from_le_bytes(*b)).count_ones();
        }
        for (a, b) in rest.iter().zip(pr) {
            ones += (a & b).count_ones();
        }
        total = total.wrapping_add(ones << j);
    }
    total
}

/// Σ q·c with `c` 4-bit codes packed two per byte (layout: [`Kernels::dot_u8u4`]), exactly.
///
/// [`Kernels::dot_u8u4`]: super::Kernels::dot_u8u4
pub(super) fn dot_u8u4(q: &[u8], c: &[u8]) -> u32 {
    super::debug_assert_u4_lengths(q, c);
    dot_u8u4_any(q, c)
}

/// [`dot_u8u4`] for any lengths, without the length `debug_assert`: terms whose `q` index
/// is past `q.len()` are skipped. Also the SIMD kernels' tail, called on what is left
/// after their whole blocks (block numbers restart at 0 there: the same layout).
pub(super) fn dot_u8u4_any(q: &[u8], c: &[u8]) -> u32 {
    const B: usize = super::U4_BLOCK;
    let (c_blocks, _) = c.as_chunks::<B>();
    let (q_blocks, _) = q.as_chunks::<{ 2 * B }>();
    let mut total = 0u32;
    // Whole blocks: c[32b..32b + 32] against q[64b..64b + 64]. Fixed-size arrays and
    // 16-bit products (at most 255·15 = 3 825) let the compiler vectorise this well.
    for (cb, qb) in c_blocks.iter().zip(q_blocks) {
        let (q_lo, q_hi) = qb.split_at(B);
        let product = |x: u8, nibble: u8| u32::from(u16::from(x) * u16::from(nibble));
        let lo: u32 = q_lo
            .iter()
            .zip(cb)
            .map(|(&x, &y)| product(x, y & 0x0f))
            .sum();
        let hi: u32 = q_hi.iter().zip(cb).map(|(&x, &y)| product(x, y >> 4)).sum();
        // lo + hi ≤ 64·3 825: no overflow within a block.
        total = total.wrapping_add(lo + hi);
    }
    // The rest (nothing for valid lengths): byte by byte, skipping missing query codes.
    let done = c_blocks.len().min(q_blocks.len()) * B;
    for (k, &y) in c.iter().enumerate().skip(done) {
        let (lo, hi) = (2 * B * (k / B) + k % B, 2 * B * (k / B) + B + k % B);
        for (i, nibble) in [(lo, y & 0x0f), (hi, y >> 4)] {
            if let Some(&x) = q.get(i) {
                total = total.wrapping_add(u32::from(x) * u32::from(nibble));
            }
        }
    }
    total
}

/// The fast-scan sums of a block of 32 rows (layout: [`Kernels::fast_scan`]), exactly.
///
/// [`Kernels::fast_scan`]: super::Kernels::fast_scan
pub(super) fn fast_scan(codes: &[u8], luts: &[u8], out: &mut [u32; 32]) {
    super::debug_assert_fast_scan_lengths(codes, luts);
    *out = [0; 32];
    fast_scan_add(codes, luts, out);
}

/// Adds the lookups of the whole groups both `codes` and `luts` hold to `out`, without the
/// length `debug_assert`; bytes past them are ignored. Also the SIMD kernels' tail, called
/// on what is left after their vector steps (group numbers restart at 0 there: the same
/// layout).
pub(super) fn fast_scan_add(codes: &[u8], luts: &[u8], out: &mut [u32; 32]) {
    const G: usize = super::FAST_SCAN_GROUP;
    let (code_groups, _) = codes.as_chunks::<G>();
    let (lut_groups, _) = luts.as_chunks::<G>();
    for (c, lut) in code_groups.iter().zip(lut_groups) {
        for (j, &byte) in c.iter().enumerate() {
            // Both indices are nibbles, < 16: always inside the group's table.
            let (lo, hi) = (lut[usize::from(byte & 0x0f)], lut[usize::from(byte >> 4)]);
            out[j] = out[j].wrapping_add(u32::from(lo));
            out[j + G] = out[j + G].wrapping_add(u32::from(hi));
        }
    }
}

/// Σ |a−b|.
pub(super) fn l1(a: &[f32], b: &[f32]) -> f32 {
    sum_pairs(a, b, |x, y| (x - y).abs())
}

/// Σ a².
pub(super) fn norm_squared(a: &[f32]) -> f32 {
    sum_pairs(a, a, |x, _| x * x)
}

/// `acc[k] += Σ x[k]·y[k]` over lane-chunks.
#[inline(always)]
fn mul_add_lanes(acc: &mut [f32; LANES], x: &[[f32; LANES]], y: &[[f32; LANES]]) {
    for (x, y) in x.iter().zip(y) {
        for k in 0..LANES {
            acc[k] += x[k] * y[k];
        }
    }
}

/// Lane-chunks per block in [`cosine_parts`]: 128 floats, 512 bytes per slice.
const BLOCK: usize = 16;

/// (Σ a·b, Σ a², Σ b²) in one pass over memory.
pub(super) fn cosine_parts(a: &[f32], b: &[f32]) -> (f32, f32, f32) {
    let (a, b) = common(a, b);
    let (ca, ta) = a.as_chunks::<LANES>();
    let (cb, tb) = b.as_chunks::<LANES>();
    let mut ab = [0.0f32; LANES];
    let mut aa = [0.0f32; LANES];
    let mut bb = [0.0f32; LANES];
    // The three sums run one after another over each L1-resident block: one loop
    // updating all three at once is vectorised so poorly (lane shuffles) that this is
    // about twice as fast, while memory is still streamed only once.
    for (x, y) in ca.chunks(BLOCK).zip(cb.chunks(BLOCK)) {
        mul_add_lanes(&mut ab, x, y);
        mul_add_lanes(&mut aa, x, x);
        mul_add_lanes(&mut bb, y, y);
    }
    let (mut tab, mut taa, mut tbb) = (0.0f32, 0.0f32, 0.0f32);
    for (&x, &y) in ta.iter().zip(tb) {
        tab += x * y;
        taa += x * x;
        tbb += y * y;
    }
    (
        sum_lanes(ab) + tab,
        sum_lanes(aa) + taa,
        sum_lanes(bb) + tbb,
    )
}

/// max |a−b|, 0 for empty slices. `f32::max` ignores a NaN operand, so NaNs in the
/// input are skipped rather than propagated.
pub(super) fn linf(a: &[f32], b: &[f32]) -> f32 {
    let (a, b) = common(a, b);
    let (ca, ta) = a.as_chunks::<LANES>();
    let (cb, tb) = b.as_chunks::<LANES>();
    let mut acc = [0.0f32; LANES];
    for (x, y) in ca.iter().zip(cb) {
        for k in 0..LANES {
            acc[k] = acc[k].max((x[k] - y[k]).abs());
        }
    }
    let tail = ta
        .iter()
        .zip(tb)
        .fold(0.0f32, |m, (&x, &y)| m.max((x - y).abs()));
    acc.into_iter().fold(tail, f32::max)
}

/// `f64`-accumulating oracles: each term and the running sum in `f64`, in order.
#[cfg(test)]
pub(crate) mod oracle {
    fn pairs<'a>(a: &'a [f32], b: &'a [f32]) -> impl Iterator<Item = (f64, f64)> + 'a {
        assert_eq!(a.len(), b.len());
        a.iter().zip(b).map(|(&x, &y)| (f64::from(x), f64::from(y)))
    }

    pub(crate) fn l2_squared_f64(a: &[f32], b: &[f32]) -> f64 {
        pairs(a, b).map(|(x, y)| (x - y) * (x - y)).sum()
    }

    /// Σ (a − s·b)² in f64 (each s·b is exact there: 24 + 24 significant bits).
    pub(crate) fn l2_scaled_f64(a: &[f32], b: &[f32], s: f32) -> f64 {
        let s = f64::from(s);
        pairs(a, b).map(|(x, y)| (x - s * y) * (x - s * y)).sum()
    }

    pub(crate) fn dot_f64(a: &[f32], b: &[f32]) -> f64 {
        pairs(a, b).map(|(x, y)| x * y).sum()
    }

    pub(crate) fn cosine_parts_f64(a: &[f32], b: &[f32]) -> (f64, f64, f64) {
        pairs(a, b).fold((0.0, 0.0, 0.0), |(ab, aa, bb), (x, y)| {
            (ab + x * y, aa + x * x, bb + y * y)
        })
    }

    pub(crate) fn l1_f64(a: &[f32], b: &[f32]) -> f64 {
        pairs(a, b).map(|(x, y)| (x - y).abs()).sum()
    }

    pub(crate) fn linf_f64(a: &[f32], b: &[f32]) -> f64 {
        pairs(a, b).fold(0.0, |m, (x, y)| m.max((x - y).abs()))
    }

    pub(crate) fn norm_squared_f64(a: &[f32]) -> f64 {
        a.iter().map(|&x| f64::from(x) * f64::from(x)).sum()
    }

    /// `len` deterministic 32-bit words (xorshift32), no dependencies.
    fn xorshift32(len: usize, seed: u32) -> impl Iterator<Item = u32> {
        let mut s = seed.max(1);
        (0..len).map(move |_| {
            s ^= s << 13;
            s ^= s >> 17;
            s ^= s << 5;
            s
        })
    }

    /// `len` deterministic bytes, every value about equally often.
    pub(crate) fn bytes(len: usize, seed: u32) -> Vec<u8> {
        xorshift32(len, seed).map(|s| (s >> 24) as u8).collect()
    }

    /// Deterministic test vectors in [-scale, scale).
    pub(crate) fn vector(len: usize, seed: u32, scale: f32) -> Vec<f32> {
        xorshift32(len, seed)
            .map(|s| {
                // 24 random bits -> [0, 1) exactly, then to [-scale, scale).
                let unit = (s >> 8) as f32 / (1u32 << 24) as f32;
                (unit * 2.0 - 1.0) * scale
            })
            .collect()
    }

    /// Checks `got` against `exact` within `(len + 3)·2⁻²⁴·magnitude` plus a tiny floor:
    /// any summation order of `len` f32 terms, each with up to two roundings, stays
    /// within that, where `magnitude` is Σ|termᵢ| (Higham, Accuracy and Stability of
    /// Numerical Algorithms, §4.2).
    pub(crate) fn assert_close(what: &str, got: f32, exact: f64, magnitude: f64, len: usize) {
        let tol = (len as f64 + 3.0) * f64::from(f32::EPSILON / 2.0) * magnitude * 1.01 + 1e-30;
        let err = (f64::from(got) - exact).abs();
        assert!(
            err <= tol,
            "{what} (len {len}): got {got}, exact {exact}, error {err:e} > tolerance {tol:e}"
        );
    }

    /// Checks `got` = Σ (aᵢ − s·bᵢ)² against [`l2_scaled_f64`]. With dᵢ = aᵢ − s·bᵢ, the
    /// error allowed is (len + 3)·u·Σdᵢ² (as in [`assert_close`]: the SIMD kernels round
    /// dᵢ once, in an FMA) plus 2u·Σ|dᵢ|·|s·bᵢ| + 2u²·Σ(s·bᵢ)² for the scalar kernel's
    /// separate rounding of s·bᵢ, whose error is relative to s·bᵢ, not to dᵢ; u = 2⁻²⁴.
    /// The floor covers terms that underflow to subnormals.
    pub(crate) fn assert_close_l2_scaled(got: f32, a: &[f32], b: &[f32], s: f32) {
        let u = f64::from(f32::EPSILON / 2.0);
        let n = a.len() as f64;
        let s64 = f64::from(s);
        let (mut t, mut p, mut q) = (0.0f64, 0.0f64, 0.0f64);
        for (&x, &y) in a.iter().zip(b) {
            let sb = s64 * f64::from(y);
            let d = f64::from(x) - sb;
            (t, p, q) = (t + d * d, p + d.abs() * sb.abs(), q + sb * sb);
        }
        let exact = l2_scaled_f64(a, b, s);
        let tol = ((n + 3.0) * u * t + 2.0 * u * p + 2.0 * u * u * q) * 1.01 + n * 1e-44;
        let err = (f64::from(got) - exact).abs();
        assert!(
            err <= tol,
            "l2_scaled (len {n}, s {s:e}): got {got}, exact {exact}, error {err:e} > \
             tolerance {tol:e}"
        );
    }
}

#[cfg(test)]
mod tests {
    use super::oracle::*;
    use super::*;

    #[test]
    fn agrees_with_the_f64_oracle_on_every_tail_length() {
        for len in 0..=70 {
            let a = vector(len, 7 + len as u32, 100.0);
            let b = vector(len, 1000 + len as u32, 100.0);
            let l1_mag = l1_f64(&a, &b);
            let abs_dot: f64 = a
                .iter()
                .zip(&b)
                .map(|(&x, &y)| (f64::from(x) * f64::from(y)).abs())
                .sum();
            let l2 = l2_squared_f64(&a, &b);
            assert_close("l2_squared", l2_squared(&a, &b), l2, l2, len);
            let inv_norm_b = (1.0 / norm_squared_f64(&b).sqrt()) as f32;
            for s in [0.0, 1.0, -0.75, 1e-20, -1e10, inv_norm_b] {
                assert_close_l2_scaled(l2_scaled(&a, &b, s), &a, &b, s);
            }
            assert_close("dot", dot(&a, &b), dot_f64(&a, &b), abs_dot, len);
            assert_close("l1", l1(&a, &b), l1_mag, l1_mag, len);
            let na = norm_squared_f64(&a);
            assert_close("norm_squared", norm_squared(&a), na, na, len);
            let (ab, aa, bb) = cosine_parts(&a, &b);
            let (eab, eaa, ebb) = cosine_parts_f64(&a, &b);
            assert_close("cosine ab", ab, eab, abs_dot, len);
            assert_close("cosine aa", aa, eaa, eaa, len);
            assert_close("cosine bb", bb, ebb, ebb, len);
            // |x−y| rounded once to f32 is what both compute, so the max matches exactly.
            assert_eq!(linf(&a, &b), linf_f64(&a, &b) as f32);
        }
    }

    #[test]
    fn small_exact_cases() {
        let a = [1.0, 2.0, 3.0];
        let b = [4.0, 6.0, 3.0];
        assert_eq!(l2_squared(&a, &b), 25.0);
        // (1 − 8)² + (2 − 12)² + (3 − 6)² = 49 + 100 + 9.
        assert_eq!(l2_scaled(&a, &b, 2.0), 158.0);
        assert_eq!(l2_scaled(&a, &b, 0.0), 14.0);
        assert_eq!(l2_scaled(&a, &a, 1.0), 0.0);
        assert_eq!(l2_scaled(&[], &[], 3.0), 0.0);
        assert_eq!(dot(&a, &b), 25.0);
        assert_eq!(l1(&a, &b), 7.0);
        assert_eq!(linf(&a, &b), 4.0);
        assert_eq!(norm_squared(&a), 14.0);
        assert_eq!(cosine_parts(&a, &b), (25.0, 14.0, 61.0));
        assert_eq!(linf(&[], &[]), 0.0);
        assert_eq!(l2_squared(&[], &[]), 0.0);
    }
}
