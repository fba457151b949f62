//! x86_64 kernels with AVX2+FMA (8 `f32` lanes) and AVX-512F (16 lanes) intrinsics.
//!
//! Each kernel is an `unsafe fn` compiled with `#[target_feature]`; its only safety
//! requirement is that the CPU has those features. Slices may have any length and
//! alignment: loads are unaligned, the last partial vector is read with a masked load
//! (masked-off lanes are neither read nor faulted on, and come back as 0.0, which adds
//! nothing to any of these sums or maxima, nor to Σ(a − s·b)² for a finite `s`), and
//! only the common prefix of two slices of different lengths is read. The main loops keep four (cosine: twelve) independent
//! accumulators so that consecutive FMAs do not wait on each other's latency.
//!
//! Nothing here is reachable without runtime detection: the kernels and their safe
//! wrappers are private, and the only way out is the table returned by [`avx2_fma`] or
//! [`avx512`], which check `is_x86_feature_detected!` first.

use std::arch::x86_64::*;

use super::{Isa, Kernels};

// ------------------------------------------------------------------------------------
// AVX2 + FMA
// ------------------------------------------------------------------------------------

/// The AVX2+FMA kernels, if this CPU has both features.
pub(super) fn avx2_fma() -> Option<Kernels> {
    if !(is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma")) {
        return None;
    }
    safe_wrapper!(l2_squared = l2_squared_avx2(a, b) -> f32);
    safe_wrapper!(l2_scaled = l2_scaled_avx2(a, b, s: f32) -> f32);
    safe_wrapper!(dot = dot_avx2(a, b) -> f32);
    safe_wrapper!(cosine_parts = cosine_parts_avx2(a, b) -> (f32, f32, f32));
    safe_wrapper!(l1 = l1_avx2(a, b) -> f32);
    safe_wrapper!(linf = linf_avx2(a, b) -> f32);
    safe_wrapper!(norm_squared = norm_squared_avx2(a) -> f32);
    Some(Kernels {
        isa: Isa::Avx2Fma,
        l2_squared,
        l2_scaled,
        dot,
        cosine_parts,
        l1,
        linf,
        norm_squared,
        dot_u8: dot_u8_avx2_safe,
        dot_u8u8: dot_u8u8_avx2_safe,
        dot_u8u4: dot_u8u4_avx2_safe,
        dot_bits: dot_bits_x86(),
        fast_scan: fast_scan_avx2_safe,
    })
}

/// The 1-bit kernel for an x86 table: the portable loop built with `popcnt` (one
/// instruction a 64-bit word), if this CPU has it (every AVX2 CPU does; checked anyway).
fn dot_bits_x86() -> fn(&[u8], &[u8]) -> u32 {
    if is_x86_feature_detected!("popcnt") {
        dot_bits_popcnt_safe
    } else {
        super::scalar::dot_bits
    }
}

/// The safe wrapper of [`dot_bits_popcnt`], chosen only after `popcnt` detection.
fn dot_bits_popcnt_safe(planes: &[u8], c: &[u8]) -> u32 {
    super::debug_assert_bits_lengths(planes, c);
    // SAFETY: only reachable through `dot_bits_x86`, which checks for `popcnt` first.
    unsafe { dot_bits_popcnt(planes, c) }
}

/// [`super::scalar::dot_bits_body`] compiled with `popcnt`.
///
/// # Safety
/// The CPU must support `popcnt`.
#[target_feature(enable = "popcnt")]
unsafe fn dot_bits_popcnt(planes: &[u8], c: &[u8]) -> u32 {
    super::scalar::dot_bits_body(planes, c)
}

/// The safe wrapper of [`dot_u8u8_avx2`] (see [`dot_u8_avx2_safe`]).
fn dot_u8u8_avx2_safe(a: &[u8], b: &[u8]) -> u32 {
    debug_assert_eq!(
        a.len(),
        b.len(),
        "distance kernels need equal-length slices"
    );
    // SAFETY: as for `dot_u8_avx2_safe`.
    unsafe { dot_u8u8_avx2(a, b) }
}

/// Σ a·b of 8-bit codes: 32 per step, zero-extended to 16 bits and multiplied-added
/// in pairs into 32-bit lanes (`vpmaddwd`). A lane gains at most 2·255² = 130 050 per
/// step, so 32-bit lanes are exact for any dimension below 2³¹/130 050·32 ≈ 528 000.
///
/// # Safety
/// The CPU must support AVX2.
#[target_feature(enable = "avx2,fma")]
unsafe fn dot_u8u8_avx2(a: &[u8], b: &[u8]) -> u32 {
    let n = a.len().min(b.len());
    let (pa, pb) = (a.as_ptr(), b.as_ptr());
    let [mut s0, mut s1] = [_mm256_setzero_si256(); 2];
    let mut i = 0;
    while i + 32 <= n {
        // SAFETY: i + 32 <= n: 32 bytes from i are in bounds of both slices.
        unsafe {
            let a0 = _mm256_cvtepu8_epi16(_mm_loadu_si128(pa.add(i).cast()));
            let b0 = _mm256_cvtepu8_epi16(_mm_loadu_si128(pb.add(i).cast()));
            let a1 = _mm256_cvtepu8_epi16(_mm_loadu_si128(pa.add(i + 16).cast()));
            let b1 = _mm256_cvtepu8_epi16(_mm_loadu_si128(pb.add(i + 16).cast()));
            s0 = _mm256_add_epi32(s0, _mm256_madd_epi16(a0, b0));
            s1 = _mm256_add_epi32(s1, _mm256_madd_epi16(a1, b1));
        }
        i += 32;
    }
    let s = _mm256_add_epi32(s0, s1);
    let s = _mm_add_epi32(_mm256_castsi256_si128(s), _mm256_extracti128_si256::<1>(s));
    let s = _mm_add_epi32(s, _mm_shuffle_epi32::<0b0100_1110>(s));
    let s = _mm_add_epi32(s, _mm_shuffle_epi32::<0b1011_0001>(s));
    let mut total = _mm_cvtsi128_si32(s) as u32;
    while i < n {
        // SAFETY: i < n.
        unsafe { total = total.wrapping_add(u32::from(*pa.add(i)) * u32::from(*pb.add(i))) };
        i += 1;
    }
    total
}

/// The safe wrapper of [`dot_u8u4_avx2`] (see [`dot_u8_avx2_safe`]).
fn dot_u8u4_avx2_safe(q: &[u8], c: &[u8]) -> u32 {
    super::debug_assert_u4_lengths(q, c);
    // SAFETY: as for `dot_u8_avx2_safe`.
    unsafe { dot_u8u4_avx2(q, c) }
}

/// Σ q·c with 4-bit codes `c` packed two per byte (layout: [`Kernels::dot_u8u4`]), by
/// 32-byte blocks (64 dimensions) of `c`, four per step into two accumulators. The 16-bit
/// pair sums of two blocks (at most 2·15 300 = 30 600) are added before one `vpmaddwd`
/// widens them to 32 bits. Only whole blocks whose 64 query codes exist are read with
/// vectors; the rest (none for valid lengths) goes through the scalar formula.
///
/// # Safety
/// The CPU must support AVX2.
#[target_feature(enable = "avx2,fma")]
unsafe fn dot_u8u4_avx2(q: &[u8], c: &[u8]) -> u32 {
    const B: usize = super::U4_BLOCK;
    let blocks = (c.len() / B).min(q.len() / (2 * B));
    let (pq, pc) = (q.as_ptr(), c.as_ptr());
    let ones = _mm256_set1_epi16(1);
    let [mut s0, mut s1] = [_mm256_setzero_si256(); 2];
    let mut b = 0;
    while b + 4 <= blocks {
        // SAFETY: b + 4 <= blocks: c[32b..32b + 128] and q[64b..64b + 256] are in bounds.
        let (p0, p1) = unsafe {
            let block = |k: usize| u8u4_block_avx2(pq.add(2 * B * k), pc.add(B * k));
            (
                _mm256_add_epi16(block(b), block(b + 1)),
                _mm256_add_epi16(block(b + 2), block(b + 3)),
            )
        };
        s0 = _mm256_add_epi32(s0, _mm256_madd_epi16(p0, ones));
        s1 = _mm256_add_epi32(s1, _mm256_madd_epi16(p1, ones));
        b += 4;
    }
    while b < blocks {
        // SAFETY: b < blocks: c[32b..32b + 32] and q[64b..64b + 64] are in bounds.
        let p = unsafe { u8u4_block_avx2(pq.add(2 * B * b), pc.add(B * b)) };
        s0 = _mm256_add_epi32(s0, _mm256_madd_epi16(p, ones));
        b += 1;
    }
    // Lane sums wrap like the scalar u32 sum, so the total agrees with it modulo 2³².
    let s = _mm256_add_epi32(s0, s1);
    let s = _mm_add_epi32(_mm256_castsi256_si128(s), _mm256_extracti128_si256::<1>(s));
    let s = _mm_add_epi32(s, _mm_shuffle_epi32::<0b0100_1110>(s));
    let s = _mm_add_epi32(s, _mm_shuffle_epi32::<0b1011_0001>(s));
    let total = _mm_cvtsi128_si32(s) as u32;
    let done = blocks * B;
    if done == c.len() {
        return total;
    }
    total.wrapping_add(super::scalar::dot_u8u4_any(&q[2 * done..], &c[done..]))
}

/// One block of [`dot_u8u4_avx2`] as sixteen 16-bit partial sums, each of four products.
/// The low nibbles (`c & 15`) pair with `q[0..32]`, the high ones with `q[32..64]` (AVX2
/// has no 8-bit shift: a 16-bit one, then the mask drops the bits shifted in from the
/// neighbouring byte). `vpmaddubsw` multiplies q as unsigned by the nibble as signed
/// (0..=15, exact in i8) and adds adjacent pairs in i16: at most 2·255·15 = 7 650, so it
/// never saturates, and the low and high sums together stay at most 15 300.
///
/// # Safety
/// The CPU must support AVX2; `q..q + 64` and `c..c + 32` must be readable.
#[inline]
#[target_feature(enable = "avx2,fma")]
unsafe fn u8u4_block_avx2(q: *const u8, c: *const u8) -> __m256i {
    let nibble = _mm256_set1_epi8(0x0f);
    // SAFETY: the caller guarantees the 32 bytes at `c` and the 64 at `q` are readable;
    // the loads are unaligned.
    let (cv, q_lo, q_hi) = unsafe {
        (
            _mm256_loadu_si256(c.cast()),
            _mm256_loadu_si256(q.cast()),
            _mm256_loadu_si256(q.add(32).cast()),
        )
    };
    let c_lo = _mm256_and_si256(cv, nibble);
    let c_hi = _mm256_and_si256(_mm256_srli_epi16::<4>(cv), nibble);
    _mm256_add_epi16(
        _mm256_maddubs_epi16(q_lo, c_lo),
        _mm256_maddubs_epi16(q_hi, c_hi),
    )
}

/// The safe wrapper of [`fast_scan_avx2`] (see [`dot_u8_avx2_safe`]).
fn fast_scan_avx2_safe(codes: &[u8], luts: &[u8], out: &mut [u32; 32]) {
    super::debug_assert_fast_scan_lengths(codes, luts);
    // SAFETY: as for `dot_u8_avx2_safe`.
    unsafe { fast_scan_avx2(codes, luts, out) }
}

/// Vector steps (two groups for [`fast_scan_avx2`], four for [`fast_scan_avx512`]) the
/// fast-scan kernels add into 16-bit accumulators before widening them: a lane gains at
/// most 255 a step, and 256·255 = 65 280 < 2¹⁶.
const FAST_SCAN_STEPS_PER_FLUSH: usize = 256;

/// The fast-scan sums of 32 rows (layout: [`Kernels::fast_scan`]), two groups per step
/// with `vpshufb` as sixteen parallel 16-entry table lookups in each 128-bit lane: 32
/// code bytes hold group g (low lane) and g + 1 (high lane), and the 32 table bytes at
/// the same offset are those two groups' tables, in the matching lanes. The low nibbles
/// look up rows 0..16, the high ones rows 16..32. The looked-up bytes are added in 16-bit
/// lanes, even and odd bytes (rows 2i and 2i + 1) apart so no byte spills into its
/// neighbour, and widened into 32-bit totals every [`FAST_SCAN_STEPS_PER_FLUSH`] pairs, so
/// any number of groups is exact (modulo 2³², like the scalar sum). A last odd group, and
/// bytes past the whole groups (none for valid lengths), go through the scalar loop.
///
/// # Safety
/// The CPU must support AVX2.
#[target_feature(enable = "avx2")]
unsafe fn fast_scan_avx2(codes: &[u8], luts: &[u8], out: &mut [u32; 32]) {
    const G: usize = super::FAST_SCAN_GROUP;
    let pairs = codes.len().min(luts.len()) / (2 * G);
    let (pc, pl) = (codes.as_ptr(), luts.as_ptr());
    let nibble = _mm256_set1_epi8(0x0f);
    let low_byte = _mm256_set1_epi16(0x00ff);
    // 32-bit totals of rows 0..16 even, 0..16 odd, 16..32 even, 16..32 odd: lane i of
    // each holds row 2i (+ 1 for odd) of its half.
    let mut totals = [_mm256_setzero_si256(); 4];
    let mut p = 0;
    while p < pairs {
        let end = pairs.min(p + FAST_SCAN_STEPS_PER_FLUSH);
        // 16-bit sums in the same order; in each, 128-bit lane h holds groups g + h.
        let mut acc = [_mm256_setzero_si256(); 4];
        while p < end {
            // SAFETY: p < pairs: bytes 32p..32p + 32 are in bounds of both slices.
            let (cv, lut) = unsafe {
                (
                    _mm256_loadu_si256(pc.add(2 * G * p).cast()),
                    _mm256_loadu_si256(pl.add(2 * G * p).cast()),
                )
            };
            // No 8-bit shift in AVX2: a 16-bit one, then the mask drops the bits shifted
            // in from the neighbouring byte.
            let lo = _mm256_shuffle_epi8(lut, _mm256_and_si256(cv, nibble));
            let hi = _mm256_shuffle_epi8(lut, _mm256_and_si256(_mm256_srli_epi16::<4>(cv), nibble));
            acc[0] = _mm256_add_epi16(acc[0], _mm256_and_si256(lo, low_byte));
            acc[1] = _mm256_add_epi16(acc[1], _mm256_srli_epi16::<8>(lo));
            acc[2] = _mm256_add_epi16(acc[2], _mm256_and_si256(hi, low_byte));
            acc[3] = _mm256_add_epi16(acc[3], _mm256_srli_epi16::<8>(hi));
            p += 1;
        }
        // Widen each 128-bit lane to 32 bits and add the two (the same rows, other
        // groups) into the totals.
        for (t, a) in totals.iter_mut().zip(acc) {
            let g0 = _mm256_cvtepu16_epi32(_mm256_castsi256_si128(a));
            let g1 = _mm256_cvtepu16_epi32(_mm256_extracti128_si256::<1>(a));
            *t = _mm256_add_epi32(*t, _mm256_add_epi32(g0, g1));
        }
    }
    fast_scan_store_avx2(totals, out);
    let done = 2 * G * pairs;
    if done < codes.len().min(luts.len()) {
        super::scalar::fast_scan_add(&codes[done..], &luts[done..], out);
    }
}

/// Writes the fast-scan kernels' 32-bit totals to `out` in row order. `totals` holds rows
/// 0..16 even, 0..16 odd, 16..32 even, 16..32 odd: lane i of each is row 2i (+ 1 for odd)
/// of its half. Even and odd rows are interleaved back (here for rows 0..16; 16..32 the
/// same): `unpacklo` pairs rows 2i, 2i + 1 within each 128-bit lane into rows 0..4 |
/// 8..12, `unpackhi` into 4..8 | 12..16, and the lane permutes put the quarters in order.
#[inline]
#[target_feature(enable = "avx2")]
fn fast_scan_store_avx2(totals: [__m256i; 4], out: &mut [u32; 32]) {
    const G: usize = super::FAST_SCAN_GROUP;
    for (half, [even, odd]) in [[totals[0], totals[1]], [totals[2], totals[3]]]
        .into_iter()
        .enumerate()
    {
        let a = _mm256_unpacklo_epi32(even, odd);
        let b = _mm256_unpackhi_epi32(even, odd);
        let first = _mm256_permute2x128_si256::<0x20>(a, b);
        let second = _mm256_permute2x128_si256::<0x31>(a, b);
        // SAFETY: out has 32 lanes; half ≤ 1, so lanes 16·half..16·half + 16 exist.
        unsafe {
            let dst = out.as_mut_ptr().add(G * half);
            _mm256_storeu_si256(dst.cast(), first);
            _mm256_storeu_si256(dst.add(8).cast(), second);
        }
    }
}

/// The safe wrapper of [`dot_u8_avx2`], for tables built after AVX2+FMA detection.
fn dot_u8_avx2_safe(q: &[f32], c: &[u8]) -> f32 {
    debug_assert_eq!(
        q.len(),
        c.len(),
        "distance kernels need equal-length slices"
    );
    // SAFETY: only reachable through kernel tables built after `is_x86_feature_detected!`
    // found AVX2 and FMA (`avx2_fma`, and `avx512` when it has them too).
    unsafe { dot_u8_avx2(q, c) }
}

/// Σ q·c with 8-bit codes: 32 codes per step widened to four ×8 `f32` vectors.
///
/// # Safety
/// The CPU must support AVX2 and FMA.
#[target_feature(enable = "avx2,fma")]
unsafe fn dot_u8_avx2(q: &[f32], c: &[u8]) -> f32 {
    let n = q.len().min(c.len());
    let (pq, pc) = (q.as_ptr(), c.as_ptr());
    let [mut s0, mut s1, mut s2, mut s3] = [_mm256_setzero_ps(); 4];
    let widen = |b: __m128i| _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(b));
    let mut i = 0;
    while i + 32 <= n {
        // SAFETY: i + 32 <= n: 32 codes and 32 floats from i are in bounds.
        unsafe {
            let lo = _mm_loadu_si128(pc.add(i).cast());
            let hi = _mm_loadu_si128(pc.add(i + 16).cast());
            s0 = _mm256_fmadd_ps(load8(pq.add(i)), widen(lo), s0);
            s1 = _mm256_fmadd_ps(load8(pq.add(i + 8)), widen(_mm_srli_si128::<8>(lo)), s1);
            s2 = _mm256_fmadd_ps(load8(pq.add(i + 16)), widen(hi), s2);
            s3 = _mm256_fmadd_ps(load8(pq.add(i + 24)), widen(_mm_srli_si128::<8>(hi)), s3);
        }
        i += 32;
    }
    while i + 8 <= n {
        // SAFETY: i + 8 <= n: 8 codes (one 64-bit load) and 8 floats are in bounds.
        unsafe {
            let b = _mm_loadl_epi64(pc.add(i).cast());
            s0 = _mm256_fmadd_ps(load8(pq.add(i)), widen(b), s0);
        }
        i += 8;
    }
    let mut tail = 0.0f32;
    while i < n {
        // SAFETY: i < n.
        unsafe { tail += *pq.add(i) * f32::from(*pc.add(i)) };
        i += 1;
    }
    hsum8(_mm256_add_ps(_mm256_add_ps(s0, s1), _mm256_add_ps(s2, s3))) + tail
}

/// Sum of the 8 lanes.
#[inline]
#[target_feature(enable = "avx2,fma")]
fn hsum8(v: __m256) -> f32 {
    let s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps::<1>(v));
    let s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    _mm_cvtss_f32(_mm_add_ss(s, _mm_movehdup_ps(s)))
}

/// Maximum of the 8 lanes.
#[inline]
#[target_feature(enable = "avx2,fma")]
fn hmax8(v: __m256) -> f32 {
    let s = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps::<1>(v));
    let s = _mm_max_ps(s, _mm_movehl_ps(s, s));
    _mm_cvtss_f32(_mm_max_ss(s, _mm_movehdup_ps(s)))
}

/// |v|: clears the sign bits.
#[inline]
#[target_feature(enable = "avx2,fma")]
fn abs8(v: __m256) -> __m256 {
    _mm256_andnot_ps(_mm256_set1_ps(-0.0), v)
}

/// A mask selecting the first `r` lanes (`r` is clamped to 8).
#[inline]
#[target_feature(enable = "avx2,fma")]
fn mask8(r: usize) -> __m256i {
    let r = r.min(8) as i32;
    _mm256_cmpgt_epi32(
        _mm256_set1_epi32(r),
        _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7),
    )
}

/// Loads 8 lanes from `p`, unaligned.
///
/// # Safety
/// `p..p + 8` must be readable.
#[inline]
#[target_feature(enable = "avx2,fma")]
unsafe fn load8(p: *const f32) -> __m256 {
    // SAFETY: guaranteed by the caller.
    unsafe { _mm256_loadu_ps(p) }
}

/// Loads the first `r < 8` lanes from `p` and zeroes the others, reading nothing else.
///
/// # Safety
/// `p..p + r` must be readable.
#[inline]
#[target_feature(enable = "avx2,fma")]
unsafe fn load8_partial(p: *const f32, r: usize) -> __m256 {
    // SAFETY: the caller guarantees the first `r` lanes are readable; vmaskmovps reads
    // (and can fault on) only the lanes whose mask is set.
    unsafe { _mm256_maskload_ps(p, mask8(r)) }
}

/// Σ (a−b)².
///
/// # Safety
/// The CPU must support AVX2 and FMA.
#[target_feature(enable = "avx2,fma")]
unsafe fn l2_squared_avx2(a: &[f32], b: &[f32]) -> f32 {
    let n = a.len().min(b.len());
    let (pa, pb) = (a.as_ptr(), b.as_ptr());
    let [mut s0, mut s1, mut s2, mut s3] = [_mm256_setzero_ps(); 4];
    let mut i = 0;
    while i + 32 <= n {
        // SAFETY: i + 32 <= n, so lanes i..i + 32 are in bounds of both slices.
        let (d0, d1, d2, d3) = unsafe {
            (
                _mm256_sub_ps(load8(pa.add(i)), load8(pb.add(i))),
                _mm256_sub_ps(load8(pa.add(i + 8)), load8(pb.add(i + 8))),
                _mm256_sub_ps(load8(pa.add(i + 16)), load8(pb.add(i + 16))),
                _mm256_sub_ps(load8(pa.add(i + 24)), load8(pb.add(i + 24))),
            )
        };
        s0 = _mm256_fmadd_ps(d0, d0, s0);
        s1 = _mm256_fmadd_ps(d1, d1, s1);
        s2 = _mm256_fmadd_ps(d2, d2, s2);
        s3 = _mm256_fmadd_ps(d3, d3, s3);
        i += 32;
    }
    while i + 8 <= n {
        // SAFETY: i + 8 <= n.
        let d = unsafe { _mm256_sub_ps(load8(pa.add(i)), load8(pb.add(i))) };
        s0 = _mm256_fmadd_ps(d, d, s0);
        i += 8;
    }
    if i < n {
        // SAFETY: lanes i..n are in bounds and n - i < 8.
        let d = unsafe {
            _mm256_sub_ps(
                load8_partial(pa.add(i), n - i),
                load8_partial(pb.add(i), n - i),
            )
        };
        s1 = _mm256_fmadd_ps(d, d, s1);
    }
    hsum8(_mm256_add_ps(_mm256_add_ps(s0, s1), _mm256_add_ps(s2, s3)))
}

/// Σ (a − s·b)²: [`l2_squared_avx2`] with the difference formed by one FMA
/// (`vfnmadd`: a − s·b, rounded once like the plain subtraction there).
///
/// # Safety
/// The CPU must support AVX2 and FMA.
#[target_feature(enable = "avx2,fma")]
unsafe fn l2_scaled_avx2(a: &[f32], b: &[f32], s: f32) -> f32 {
    let n = a.len().min(b.len());
    let (pa, pb) = (a.as_ptr(), b.as_ptr());
    let sv = _mm256_set1_ps(s);
    let [mut s0, mut s1, mut s2, mut s3] = [_mm256_setzero_ps(); 4];
    let mut i = 0;
    while i + 32 <= n {
        // SAFETY: i + 32 <= n, so lanes i..i + 32 are in bounds of both slices.
        let (d0, d1, d2, d3) = unsafe {
            (
                _mm256_fnmadd_ps(sv, load8(pb.add(i)), load8(pa.add(i))),
                _mm256_fnmadd_ps(sv, load8(pb.add(i + 8)), load8(pa.add(i + 8))),
                _mm256_fnmadd_ps(sv, load8(pb.add(i + 16)), load8(pa.add(i + 16))),
                _mm256_fnmadd_ps(sv, load8(pb.add(i + 24)), load8(pa.add(i + 24))),
            )
        };
        s0 = _mm256_fmadd_ps(d0, d0, s0);
        s1 = _mm256_fmadd_ps(d1, d1, s1);
        s2 = _mm256_fmadd_ps(d2, d2, s2);
        s3 = _mm256_fmadd_ps(d3, d3, s3);
        i += 32;
    }
    while i + 8 <= n {
        // SAFETY: i + 8 <= n.
        let d = unsafe { _mm256_fnmadd_ps(sv, load8(pb.add(i)), load8(pa.add(i))) };
        s0 = _mm256_fmadd_ps(d, d, s0);
        i += 8;
    }
    if i < n {
        // SAFETY: lanes i..n are in bounds and n - i < 8; masked-off lanes give
        // 0 − s·0 = 0 for any finite `s`.
        let d = unsafe {
            _mm256_fnmadd_ps(
                sv,
                load8_partial(pb.add(i), n - i),
                load8_partial(pa.add(i), n - i),
            )
        };
        s1 = _mm256_fmadd_ps(d, d, s1);
    }
    hsum8(_mm256_add_ps(_mm256_add_ps(s0, s1), _mm256_add_ps(s2, s3)))
}

/// Σ a·b.
///
/// # Safety
/// The CPU must support AVX2 and FMA.
#[target_feature(enable = "avx2,fma")]
unsafe fn dot_avx2(a: &[f32], b: &[f32]) -> f32 {
    let n = a.len().min(b.len());
    let (pa, pb) = (a.as_ptr(), b.as_ptr());
    let [mut s0, mut s1, mut s2, mut s3] = [_mm256_setzero_ps(); 4];
    let mut i = 0;
    while i + 32 <= n {
        // SAFETY: i + 32 <= n, so lanes i..i + 32 are in bounds of both slices.
        unsafe {
            s0 = _mm256_fmadd_ps(load8(pa.add(i)), load8(pb.add(i)), s0);
            s1 = _mm256_fmadd_ps(load8(pa.add(i + 8)), load8(pb.add(i + 8)), s1);
            s2 = _mm256_fmadd_ps(load8(pa.add(i + 16)), load8(pb.add(i + 16)), s2);
            s3 = _mm256_fmadd_ps(load8(pa.add(i + 24)), load8(pb.add(i + 24)), s3);
        }
        i += 32;
    }
    while i + 8 <= n {
        // SAFETY: i + 8 <= n.
        unsafe { s0 = _mm256_fmadd_ps(load8(pa.add(i)), load8(pb.add(i)), s0) };
        i += 8;
    }
    if i < n {
        // SAFETY: lanes i..n are in bounds and n - i < 8.
        unsafe {
            s1 = _mm256_fmadd_ps(
                load8_partial(pa.add(i), n - i),
                load8_partial(pb.add(i), n - i),
                s1,
            );
        }
    }
    hsum8(_mm256_add_ps(_mm256_add_ps(s0, s1), _mm256_add_ps(s2, s3)))
}

/// (Σ a·b, Σ a², Σ b²). Three FMAs per pair of loads make this FMA-bound, so the
/// main loop keeps 4 × 3 accumulators (12 of the 16 ymm registers).
///
/// # Safety
/// The CPU must support AVX2 and FMA.
#[target_feature(enable = "avx2,fma")]
unsafe fn cosine_parts_avx2(a: &[f32], b: &[f32]) -> (f32, f32, f32) {
    let n = a.len().min(b.len());
    let (pa, pb) = (a.as_ptr(), b.as_ptr());
    let z = _mm256_setzero_ps();
    let ([mut ab0, mut ab1, mut ab2, mut ab3], [mut aa0, mut aa1, mut aa2, mut aa3]) =
        ([z; 4], [z; 4]);
    let [mut bb0, mut bb1, mut bb2, mut bb3] = [z; 4];
    let mut i = 0;
    while i + 32 <= n {
        // SAFETY: i + 32 <= n, so lanes i..i + 32 are in bounds of both slices.
        let (x0, y0, x1, y1, x2, y2, x3, y3) = unsafe {
            (
                load8(pa.add(i)),
                load8(pb.add(i)),
                load8(pa.add(i + 8)),
                load8(pb.add(i + 8)),
                load8(pa.add(i + 16)),
                load8(pb.add(i + 16)),
                load8(pa.add(i + 24)),
                load8(pb.add(i + 24)),
            )
        };
        ab0 = _mm256_fmadd_ps(x0, y0, ab0);
        aa0 = _mm256_fmadd_ps(x0, x0, aa0);
        bb0 = _mm256_fmadd_ps(y0, y0, bb0);
        ab1 = _mm256_fmadd_ps(x1, y1, ab1);
        aa1 = _mm256_fmadd_ps(x1, x1, aa1);
        bb1 = _mm256_fmadd_ps(y1, y1, bb1);
        ab2 = _mm256_fmadd_ps(x2, y2, ab2);
        aa2 = _mm256_fmadd_ps(x2, x2, aa2);
        bb2 = _mm256_fmadd_ps(y2, y2, bb2);
        ab3 = _mm256_fmadd_ps(x3, y3, ab3);
        aa3 = _mm256_fmadd_ps(x3, x3, aa3);
        bb3 = _mm256_fmadd_ps(y3, y3, bb3);
        i += 32;
    }
    while i + 8 <= n {
        // SAFETY: i + 8 <= n.
        let (x, y) = unsafe { (load8(pa.add(i)), load8(pb.add(i))) };
        ab0 = _mm256_fmadd_ps(x, y, ab0);
        aa0 = _mm256_fmadd_ps(x, x, aa0);
        bb0 = _mm256_fmadd_ps(y, y, bb0);
        i += 8;
    }
    if i < n {
        // SAFETY: lanes i..n are in bounds and n - i < 8.
        let (x, y) = unsafe {
            (
                load8_partial(pa.add(i), n - i),
                load8_partial(pb.add(i), n - i),
            )
        };
        ab1 = _mm256_fmadd_ps(x, y, ab1);
        aa1 = _mm256_fmadd_ps(x, x, aa1);
        bb1 = _mm256_fmadd_ps(y, y, bb1);
    }
    let sum4 = |p: __m256, q: __m256, r: __m256, s: __m256| {
        _mm256_add_ps(_mm256_add_ps(p, q), _mm256_add_ps(r, s))
    };
    (
        hsum8(sum4(ab0, ab1, ab2, ab3)),
        hsum8(sum4(aa0, aa1, aa2, aa3)),
        hsum8(sum4(bb0, bb1, bb2, bb3)),
    )
}

/// Σ |a−b|.
///
/// # Safety
/// The CPU must support AVX2 and FMA.
#[target_feature(enable = "avx2,fma")]
unsafe fn l1_avx2(a: &[f32], b: &[f32]) -> f32 {
    let n = a.len().min(b.len());
    let (pa, pb) = (a.as_ptr(), b.as_ptr());
    let [mut s0, mut s1, mut s2, mut s3] = [_mm256_setzero_ps(); 4];
    let mut i = 0;
    while i + 32 <= n {
        // SAFETY: i + 32 <= n, so lanes i..i + 32 are in bounds of both slices.
        unsafe {
            s0 = _mm256_add_ps(s0, abs8(_mm256_sub_ps(load8(pa.add(i)), load8(pb.add(i)))));
            s1 = _mm256_add_ps(
                s1,
                abs8(_mm256_sub_ps(load8(pa.add(i + 8)), load8(pb.add(i + 8)))),
            );
            s2 = _mm256_add_ps(
                s2,
                abs8(_mm256_sub_ps(load8(pa.add(i + 16)), load8(pb.add(i + 16)))),
            );
            s3 = _mm256_add_ps(
                s3,
                abs8(_mm256_sub_ps(load8(pa.add(i + 24)), load8(pb.add(i + 24)))),
            );
        }
        i += 32;
    }
    while i + 8 <= n {
        // SAFETY: i + 8 <= n.
        unsafe { s0 = _mm256_add_ps(s0, abs8(_mm256_sub_ps(load8(pa.add(i)), load8(pb.add(i))))) };
        i += 8;
    }
    if i < n {
        // SAFETY: lanes i..n are in bounds and n - i < 8.
        let d = unsafe {
            _mm256_sub_ps(
                load8_partial(pa.add(i), n - i),
                load8_partial(pb.add(i), n - i),
            )
        };
        s1 = _mm256_add_ps(s1, abs8(d));
    }
    hsum8(_mm256_add_ps(_mm256_add_ps(s0, s1), _mm256_add_ps(s2, s3)))
}

/// max |a−b|, 0 for empty slices (the accumulators start at 0 and |x| ≥ 0).
///
/// # Safety
/// The CPU must support AVX2 and FMA.
#[target_feature(enable = "avx2,fma")]
unsafe fn linf_avx2(a: &[f32], b: &[f32]) -> f32 {
    let n = a.len().min(b.len());
    let (pa, pb) = (a.as_ptr(), b.as_ptr());
    let [mut m0, mut m1, mut m2, mut m3] = [_mm256_setzero_ps(); 4];
    let mut i = 0;
    while i + 32 <= n {
        // SAFETY: i + 32 <= n, so lanes i..i + 32 are in bounds of both slices.
        unsafe {
            m0 = _mm256_max_ps(m0, abs8(_mm256_sub_ps(load8(pa.add(i)), load8(pb.add(i)))));
            m1 = _mm256_max_ps(
                m1,
                abs8(_mm256_sub_ps(load8(pa.add(i + 8)), load8(pb.add(i + 8)))),
            );
            m2 = _mm256_max_ps(
                m2,
                abs8(_mm256_sub_ps(load8(pa.add(i + 16)), load8(pb.add(i + 16)))),
            );
            m3 = _mm256_max_ps(
                m3,
                abs8(_mm256_sub_ps(load8(pa.add(i + 24)), load8(pb.add(i + 24)))),
            );
        }
        i += 32;
    }
    while i + 8 <= n {
        // SAFETY: i + 8 <= n.
        unsafe { m0 = _mm256_max_ps(m0, abs8(_mm256_sub_ps(load8(pa.add(i)), load8(pb.add(i))))) };
        i += 8;
    }
    if i < n {
        // SAFETY: lanes i..n are in bounds and n - i < 8; masked-off lanes give |0 − 0| = 0.
        let d = unsafe {
            _mm256_sub_ps(
                load8_partial(pa.add(i), n - i),
                load8_partial(pb.add(i), n - i),
            )
        };
        m1 = _mm256_max_ps(m1, abs8(d));
    }
    hmax8(_mm256_max_ps(_mm256_max_ps(m0, m1), _mm256_max_ps(m2, m3)))
}

/// Σ a².
///
/// # Safety
/// The CPU must support AVX2 and FMA.
#[target_feature(enable = "avx2,fma")]
unsafe fn norm_squared_avx2(a: &[f32]) -> f32 {
    let n = a.len();
    let pa = a.as_ptr();
    let [mut s0, mut s1, mut s2, mut s3] = [_mm256_setzero_ps(); 4];
    let mut i = 0;
    while i + 32 <= n {
        // SAFETY: i + 32 <= n.
        let (x0, x1, x2, x3) = unsafe {
            (
                load8(pa.add(i)),
                load8(pa.add(i + 8)),
                load8(pa.add(i + 16)),
                load8(pa.add(i + 24)),
            )
        };
        s0 = _mm256_fmadd_ps(x0, x0, s0);
        s1 = _mm256_fmadd_ps(x1, x1, s1);
        s2 = _mm256_fmadd_ps(x2, x2, s2);
        s3 = _mm256_fmadd_ps(x3, x3, s3);
        i += 32;
    }
    while i + 8 <= n {
        // SAFETY: i + 8 <= n.
        let x = unsafe { load8(pa.add(i)) };
        s0 = _mm256_fmadd_ps(x, x, s0);
        i += 8;
    }
    if i < n {
        // SAFETY: lanes i..n are in bounds and n - i < 8.
        let x = unsafe { load8_partial(pa.add(i), n - i) };
        s1 = _mm256_fmadd_ps(x, x, s1);
    }
    hsum8(_mm256_add_ps(_mm256_add_ps(s0, s1), _mm256_add_ps(s2, s3)))
}

// ------------------------------------------------------------------------------------
// AVX-512F
// ------------------------------------------------------------------------------------

/// The AVX-512F kernels, if this CPU has AVX-512F.
pub(super) fn avx512() -> Option<Kernels> {
    if !is_x86_feature_detected!("avx512f") {
        return None;
    }
    safe_wrapper!(l2_squared = l2_squared_avx512(a, b) -> f32);
    safe_wrapper!(l2_scaled = l2_scaled_avx512(a, b, s: f32) -> f32);
    safe_wrapper!(dot = dot_avx512(a, b) -> f32);
    safe_wrapper!(cosine_parts = cosine_parts_avx512(a, b) -> (f32, f32, f32));
    safe_wrapper!(l1 = l1_avx512(a, b) -> f32);
    safe_wrapper!(linf = linf_avx512(a, b) -> f32);
    safe_wrapper!(norm_squared = norm_squared_avx512(a) -> f32);
    // The 8-bit kernel is AVX2's (every AVX-512 CPU shipped has AVX2 and FMA; checked
    // anyway).
    let avx2 = is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma");
    let dot_u8: fn(&[f32], &[u8]) -> f32 = if avx2 {
        dot_u8_avx2_safe
    } else {
        super::scalar::dot_u8
    };
    let dot_u8u8: fn(&[u8], &[u8]) -> u32 = if avx2 {
        dot_u8u8_avx2_safe
    } else {
        super::scalar::dot_u8u8
    };
    // The 4-bit kernel has an AVX-512 VNNI version (`vpdpbusd`: measured about 30 %
    // faster than AVX2's at 384 dimensions); AVX-512 CPUs without VNNI (Skylake-SP) run
    // AVX2's, which the AVX2 table tests on every machine that has this one.
    let vnni = is_x86_feature_detected!("avx512bw") && is_x86_feature_detected!("avx512vnni");
    let dot_u8u4: fn(&[u8], &[u8]) -> u32 = if vnni {
        dot_u8u4_avx512_safe
    } else if avx2 {
        dot_u8u4_avx2_safe
    } else {
        super::scalar::dot_u8u4
    };
    // The byte kernels below need AVX-512BW (Knights Landing has AVX-512F without it).
    let bw = is_x86_feature_detected!("avx512bw");
    // The 1-bit kernel has a VPOPCNTDQ version (Ice Lake and later; Skylake-SP has none
    // and runs the x86 table's `popcnt` one).
    let vpopcntdq = bw && is_x86_feature_detected!("avx512vpopcntdq");
    let dot_bits: fn(&[u8], &[u8]) -> u32 = if vpopcntdq {
        dot_bits_avx512_safe
    } else {
        dot_bits_x86()
    };
    // Fast-scan: four groups per 512-bit `vpshufb` (it looks up 16-entry tables in each
    // 128-bit lane, as in 256 bits) with AVX-512BW, else AVX2's two.
    let fast_scan: fn(&[u8], &[u8], &mut [u32; 32]) = if bw {
        fast_scan_avx512_safe
    } else if avx2 {
        fast_scan_avx2_safe
    } else {
        super::scalar::fast_scan
    };
    Some(Kernels {
        isa: Isa::Avx512,
        l2_squared,
        l2_scaled,
        dot,
        cosine_parts,
        l1,
        linf,
        norm_squared,
        dot_u8,
        dot_u8u8,
        dot_u8u4,
        dot_bits,
        fast_scan,
    })
}

/// The safe wrapper of [`dot_u8u4_avx512`].
fn dot_u8u4_avx512_safe(q: &[u8], c: &[u8]) -> u32 {
    super::debug_assert_u4_lengths(q, c);
    // SAFETY: only reachable through the table `avx512` builds, which picks it only after
    // `is_x86_feature_detected!` found AVX-512F, AVX-512BW and AVX-512 VNNI.
    unsafe { dot_u8u4_avx512(q, c) }
}

/// Σ q·c with 4-bit codes `c` packed two per byte (layout: [`Kernels::dot_u8u4`]), two
/// 32-byte blocks (128 dimensions) per step, the query codes regrouped to match the
/// nibbles (see [`u8u4_pair_avx512`]), each product group summed straight into 32-bit
/// lanes by `vpdpbusd`. A last odd block is one 32-byte load, zero-extended, against a
/// zero second block. Only whole blocks whose 64 query codes exist are read with
/// vectors; the rest (none for valid lengths) goes through the scalar formula. Two
/// accumulators (low and high nibbles), so consecutive `vpdpbusd` do not wait on each
/// other.
///
/// # Safety
/// The CPU must support AVX-512F, AVX-512BW and AVX-512 VNNI.
#[target_feature(enable = "avx512f,avx512bw,avx512vnni")]
unsafe fn dot_u8u4_avx512(q: &[u8], c: &[u8]) -> u32 {
    const B: usize = super::U4_BLOCK;
    let blocks = (c.len() / B).min(q.len() / (2 * B));
    let (pq, pc) = (q.as_ptr(), c.as_ptr());
    let mut s = [_mm512_setzero_si512(); 2];
    let mut b = 0;
    while b + 2 <= blocks {
        // SAFETY: b + 2 <= blocks: c[32b..32b + 64] and q[64b..64b + 128] are in bounds.
        let (cv, q0, q1) = unsafe {
            (
                _mm512_loadu_si512(pc.add(B * b).cast()),
                _mm512_loadu_si512(pq.add(2 * B * b).cast()),
                _mm512_loadu_si512(pq.add(2 * B * (b + 1)).cast()),
            )
        };
        s = u8u4_pair_avx512(s, cv, q0, q1);
        b += 2;
    }
    if b < blocks {
        // SAFETY: b < blocks: c[32b..32b + 32] and q[64b..64b + 64] are in bounds.
        let (cv, q0) = unsafe {
            (
                _mm512_zextsi256_si512(_mm256_loadu_si256(pc.add(B * b).cast())),
                _mm512_loadu_si512(pq.add(2 * B * b).cast()),
            )
        };
        s = u8u4_pair_avx512(s, cv, q0, _mm512_setzero_si512());
    }
    // Lane sums wrap like the scalar u32 sum, so the total agrees with it modulo 2³².
    let total = _mm512_reduce_add_epi32(_mm512_add_epi32(s[0], s[1])) as u32;
    let done = blocks * B;
    if done == c.len() {
        return total;
    }
    total.wrapping_add(super::scalar::dot_u8u4_any(&q[2 * done..], &c[done..]))
}

/// Two blocks of [`dot_u8u4_avx512`] added into the accumulators `s` (low nibbles,
/// high nibbles): `cv` holds blocks b and b + 1 (32 bytes each), `q0` and `q1` their 64
/// query codes each. The low nibbles of both blocks pair with `[q0[0..32] | q1[0..32]]`,
/// the high ones with `[q0[32..64] | q1[32..64]]`, two 128-bit lanes from each
/// (`vshufi64x2`). `vpdpbusd` multiplies q as unsigned by the nibble as signed (0..=15,
/// exact in i8) and adds each group of four products (at most 4·255·15 = 15 300) to a
/// 32-bit lane, without saturation.
#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512vnni")]
fn u8u4_pair_avx512(s: [__m512i; 2], cv: __m512i, q0: __m512i, q1: __m512i) -> [__m512i; 2] {
    let nibble = _mm512_set1_epi8(0x0f);
    let c_lo = _mm512_and_si512(cv, nibble);
    let c_hi = _mm512_and_si512(_mm512_srli_epi16::<4>(cv), nibble);
    let q_lo = _mm512_shuffle_i64x2::<0b01_00_01_00>(q0, q1);
    let q_hi = _mm512_shuffle_i64x2::<0b11_10_11_10>(q0, q1);
    [
        _mm512_dpbusd_epi32(s[0], q_lo, c_lo),
        _mm512_dpbusd_epi32(s[1], q_hi, c_hi),
    ]
}

/// The safe wrapper of [`dot_bits_avx512`].
fn dot_bits_avx512_safe(planes: &[u8], c: &[u8]) -> u32 {
    super::debug_assert_bits_lengths(planes, c);
    // SAFETY: only reachable through the table `avx512` builds, which picks it only after
    // `is_x86_feature_detected!` found AVX-512F, AVX-512BW and AVX-512 VPOPCNTDQ.
    unsafe { dot_bits_avx512(planes, c) }
}

/// Σ_j 2^j · popcount(c ∧ p_j) (layout: [`Kernels::dot_bits`]) with `vpopcntq`, 64 code
/// bytes a step: the codes are loaded once per step and ANDed with the same 64 bytes of
/// every plane, each plane's bit counts kept in its own 64-bit lanes (no overflow); the
/// planes are weighted only once, at the end, before the one horizontal sum. A last
/// partial step (the whole of it at 48 bytes, 384 dimensions) loads with byte masks, so no
/// length reads past either slice and none needs a scalar tail. The plane count is a
/// const parameter (one copy per count, 1 to 8) so the per-plane accumulators stay in
/// registers and the plane loop unrolls: at the code lengths in use (48 to 256 bytes, one
/// to four steps) loop overhead and the final sum are most of the cost. Truncated to u32
/// like the scalar sum (equal modulo 2³²).
///
/// # Safety
/// The CPU must support AVX-512F, AVX-512BW and AVX-512 VPOPCNTDQ.
#[target_feature(enable = "avx512f,avx512bw,avx512vpopcntdq")]
unsafe fn dot_bits_avx512(planes: &[u8], c: &[u8]) -> u32 {
    let n = c.len();
    if n == 0 {
        return 0;
    }
    // The whole planes of `n` bytes there are, at most 8 (as the scalar kernel).
    let nplanes = (planes.len() / n).min(8);
    let (pp, pc) = (planes.as_ptr(), c.as_ptr());
    // SAFETY: `c` holds `n` bytes and `planes` at least `nplanes · n`.
    unsafe {
        match nplanes {
            0 => 0,
            1 => bits_planes_avx512::<1>(pp, pc, n),
            2 => bits_planes_avx512::<2>(pp, pc, n),
            3 => bits_planes_avx512::<3>(pp, pc, n),
            4 => bits_planes_avx512::<4>(pp, pc, n),
            5 => bits_planes_avx512::<5>(pp, pc, n),
            6 => bits_planes_avx512::<6>(pp, pc, n),
            7 => bits_planes_avx512::<7>(pp, pc, n),
            _ => bits_planes_avx512::<8>(pp, pc, n),
        }
    }
}

/// [`dot_bits_avx512`] for `P` planes of `n` bytes at `planes` and `n` code bytes at `c`.
///
/// # Safety
/// The CPU must support AVX-512F, AVX-512BW and AVX-512 VPOPCNTDQ; `c..c + n` and
/// `planes..planes + P·n` must be readable.
#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512vpopcntdq")]
unsafe fn bits_planes_avx512<const P: usize>(planes: *const u8, c: *const u8, n: usize) -> u32 {
    // counts[j]: per 64-bit lane, the set bits of c ∧ p_j.
    let mut counts = [_mm512_setzero_si512(); P];
    let mut i = 0;
    while i + 64 <= n {
        // SAFETY: i + 64 <= n: bytes i..i + 64 of the codes and of every plane are readable.
        unsafe {
            let cv = _mm512_loadu_si512(c.add(i).cast());
            for (j, count) in counts.iter_mut().enumerate() {
                let pv = _mm512_loadu_si512(planes.add(j * n + i).cast());
                *count = _mm512_add_epi64(*count, _mm512_popcnt_epi64(_mm512_and_si512(cv, pv)));
            }
        }
        i += 64;
    }
    if i < n {
        let m = mask64(n - i);
        // SAFETY: bytes i..n of the codes and of every plane are readable, and n - i < 64;
        // a zero-masked load reads (and can fault on) only the bytes whose mask bit is set.
        unsafe {
            let cv = _mm512_maskz_loadu_epi8(m, c.add(i).cast());
            for (j, count) in counts.iter_mut().enumerate() {
                let pv = _mm512_maskz_loadu_epi8(m, planes.add(j * n + i).cast());
                *count = _mm512_add_epi64(*count, _mm512_popcnt_epi64(_mm512_and_si512(cv, pv)));
            }
        }
    }
    // Σ_j 2^j · counts[j], highest plane first: t ← 2t + counts[j].
    let mut t = counts[P - 1];
    for &count in counts[..P - 1].iter().rev() {
        t = _mm512_add_epi64(count, _mm512_add_epi64(t, t));
    }
    _mm512_reduce_add_epi64(t) as u32
}

/// The safe wrapper of [`fast_scan_avx512`].
fn fast_scan_avx512_safe(codes: &[u8], luts: &[u8], out: &mut [u32; 32]) {
    super::debug_assert_fast_scan_lengths(codes, luts);
    // SAFETY: only reachable through the table `avx512` builds, which picks it only after
    // `is_x86_feature_detected!` found AVX-512F and AVX-512BW.
    unsafe { fast_scan_avx512(codes, luts, out) }
}

/// The fast-scan sums of 32 rows (layout: [`Kernels::fast_scan`]), four groups per step:
/// [`fast_scan_avx2`]'s scheme with 512-bit `vpshufb`, which looks up each 128-bit lane's
/// bytes in that lane's table just as in 256 bits, so lane h of a step holds group g + h
/// (codes and table at the same offset). AVX-512 runs 512-bit integer operations on two
/// ports where AVX2 has three for 256 bits, so operations per step are what count: the
/// 16-bit sums take each lookup's 16-bit lanes whole (row 2i + 256 · row 2i + 1, wrapping)
/// beside the odd rows alone (shifted down), and at each flush the even rows are the
/// difference, raw − 256 · odd (modulo 2¹⁶, exact because each is below 2¹⁶ after
/// [`FAST_SCAN_STEPS_PER_FLUSH`] steps). That drops AVX2's two masks, 11 operations a
/// step instead of 13. Totals are exact modulo 2³², like the scalar sum. A last one to
/// three groups, and bytes past the whole groups (none for valid lengths), go through the
/// scalar loop.
///
/// # Safety
/// The CPU must support AVX-512F and AVX-512BW.
#[target_feature(enable = "avx512f,avx512bw")]
unsafe fn fast_scan_avx512(codes: &[u8], luts: &[u8], out: &mut [u32; 32]) {
    const G: usize = super::FAST_SCAN_GROUP;
    let quads = codes.len().min(luts.len()) / (4 * G);
    let (pc, pl) = (codes.as_ptr(), luts.as_ptr());
    let nibble = _mm512_set1_epi8(0x0f);
    // 32-bit totals in [`fast_scan_store_avx2`]'s order: rows 0..16 even, 0..16 odd,
    // 16..32 even, 16..32 odd.
    let mut totals = [_mm256_setzero_si256(); 4];
    let mut p = 0;
    while p < quads {
        let end = quads.min(p + FAST_SCAN_STEPS_PER_FLUSH);
        // 16-bit sums of rows 0..16 whole lanes, 0..16 odd, 16..32 whole, 16..32 odd; in
        // each, 128-bit lane h holds groups g + h.
        let mut acc = [_mm512_setzero_si512(); 4];
        while p < end {
            // SAFETY: p < quads: bytes 64p..64p + 64 are in bounds of both slices.
            let (cv, lut) = unsafe {
                (
                    _mm512_loadu_si512(pc.add(4 * G * p).cast()),
                    _mm512_loadu_si512(pl.add(4 * G * p).cast()),
                )
            };
            // No 8-bit shift: a 16-bit one, then the mask drops the bits shifted in from
            // the neighbouring byte (`vpshufb` would read a set bit 7 as "zero this").
            let lo = _mm512_shuffle_epi8(lut, _mm512_and_si512(cv, nibble));
            let hi = _mm512_shuffle_epi8(lut, _mm512_and_si512(_mm512_srli_epi16::<4>(cv), nibble));
            acc[0] = _mm512_add_epi16(acc[0], lo);
            acc[1] = _mm512_add_epi16(acc[1], _mm512_srli_epi16::<8>(lo));
            acc[2] = _mm512_add_epi16(acc[2], hi);
            acc[3] = _mm512_add_epi16(acc[3], _mm512_srli_epi16::<8>(hi));
            p += 1;
        }
        // Even rows: the whole lanes minus the odd rows' share, 256 · odd.
        acc[0] = _mm512_sub_epi16(acc[0], _mm512_slli_epi16::<8>(acc[1]));
        acc[2] = _mm512_sub_epi16(acc[2], _mm512_slli_epi16::<8>(acc[3]));
        // Widen to 32 bits and add the four 128-bit lanes (the same rows, other groups)
        // into the totals: lanes 0 + 2 and 1 + 3, then those two.
        for (t, a) in totals.iter_mut().zip(acc) {
            let w = _mm512_add_epi32(
                _mm512_cvtepu16_epi32(_mm512_castsi512_si256(a)),
                _mm512_cvtepu16_epi32(_mm512_extracti64x4_epi64::<1>(a)),
            );
            let w = _mm256_add_epi32(_mm512_castsi512_si256(w), _mm512_extracti64x4_epi64::<1>(w));
            *t = _mm256_add_epi32(*t, w);
        }
    }
    fast_scan_store_avx2(totals, out);
    let done = 4 * G * quads;
    if done < codes.len().min(luts.len()) {
        super::scalar::fast_scan_add(&codes[done..], &luts[done..], out);
    }
}

/// The mask of the first `r` bytes (`r` is clamped to 64).
#[inline]
fn mask64(r: usize) -> __mmask64 {
    if r >= 64 {
        u64::MAX
    } else {
        (1u64 << r) - 1
    }
}

/// The mask of the first `r` lanes (`r` is clamped to 16).
#[inline]
fn mask16(r: usize) -> __mmask16 {
    ((1u32 << r.min(16)) - 1) as __mmask16
}

/// Loads 16 lanes from `p`, unaligned.
///
/// # Safety
/// `p..p + 16` must be readable.
#[inline]
#[target_feature(enable = "avx512f")]
unsafe fn load16(p: *const f32) -> __m512 {
    // SAFETY: guaranteed by the caller.
    unsafe { _mm512_loadu_ps(p) }
}

/// Loads the first `r < 16` lanes from `p` and zeroes the others, reading nothing else.
///
/// # Safety
/// `p..p + r` must be readable.
#[inline]
#[target_feature(enable = "avx512f")]
unsafe fn load16_partial(p: *const f32, r: usize) -> __m512 {
    // SAFETY: the caller guarantees the first `r` lanes are readable; a zero-masked
    // load reads (and can fault on) only the lanes whose mask bit is set.
    unsafe { _mm512_maskz_loadu_ps(mask16(r), p) }
}

/// Σ (a−b)².
///
/// # Safety
/// The CPU must support AVX-512F.
#[target_feature(enable = "avx512f")]
unsafe fn l2_squared_avx512(a: &[f32], b: &[f32]) -> f32 {
    let n = a.len().min(b.len());
    let (pa, pb) = (a.as_ptr(), b.as_ptr());
    let [mut s0, mut s1, mut s2, mut s3] = [_mm512_setzero_ps(); 4];
    let mut i = 0;
    while i + 64 <= n {
        // SAFETY: i + 64 <= n, so lanes i..i + 64 are in bounds of both slices.
        let (d0, d1, d2, d3) = unsafe {
            (
                _mm512_sub_ps(load16(pa.add(i)), load16(pb.add(i))),
                _mm512_sub_ps(load16(pa.add(i + 16)), load16(pb.add(i + 16))),
                _mm512_sub_ps(load16(pa.add(i + 32)), load16(pb.add(i + 32))),
                _mm512_sub_ps(load16(pa.add(i + 48)), load16(pb.add(i + 48))),
            )
        };
        s0 = _mm512_fmadd_ps(d0, d0, s0);
        s1 = _mm512_fmadd_ps(d1, d1, s1);
        s2 = _mm512_fmadd_ps(d2, d2, s2);
        s3 = _mm512_fmadd_ps(d3, d3, s3);
        i += 64;
    }
    while i + 16 <= n {
        // SAFETY: i + 16 <= n.
        let d = unsafe { _mm512_sub_ps(load16(pa.add(i)), load16(pb.add(i))) };
        s0 = _mm512_fmadd_ps(d, d, s0);
        i += 16;
    }
    if i < n {
        // SAFETY: lanes i..n are in bounds and n - i < 16.
        let d = unsafe {
            _mm512_sub_ps(
                load16_partial(pa.add(i), n - i),
                load16_partial(pb.add(i), n - i),
            )
        };
        s1 = _mm512_fmadd_ps(d, d, s1);
    }
    _mm512_reduce_add_ps(_mm512_add_ps(_mm512_add_ps(s0, s1), _mm512_add_ps(s2, s3)))
}

/// Σ (a − s·b)²: [`l2_squared_avx512`] with the difference formed by one FMA
/// (`vfnmadd`: a − s·b, rounded once like the plain subtraction there).
///
/// # Safety
/// The CPU must support AVX-512F.
#[target_feature(enable = "avx512f")]
unsafe fn l2_scaled_avx512(a: &[f32], b: &[f32], s: f32) -> f32 {
    let n = a.len().min(b.len());
    let (pa, pb) = (a.as_ptr(), b.as_ptr());
    let sv = _mm512_set1_ps(s);
    let [mut s0, mut s1, mut s2, mut s3] = [_mm512_setzero_ps(); 4];
    let mut i = 0;
    while i + 64 <= n {
        // SAFETY: i + 64 <= n, so lanes i..i + 64 are in bounds of both slices.
        let (d0, d1, d2, d3) = unsafe {
            (
                _mm512_fnmadd_ps(sv, load16(pb.add(i)), load16(pa.add(i))),
                _mm512_fnmadd_ps(sv, load16(pb.add(i + 16)), load16(pa.add(i + 16))),
                _mm512_fnmadd_ps(sv, load16(pb.add(i + 32)), load16(pa.add(i + 32))),
                _mm512_fnmadd_ps(sv, load16(pb.add(i + 48)), load16(pa.add(i + 48))),
            )
        };
        s0 = _mm512_fmadd_ps(d0, d0, s0);
        s1 = _mm512_fmadd_ps(d1, d1, s1);
        s2 = _mm512_fmadd_ps(d2, d2, s2);
        s3 = _mm512_fmadd_ps(d3, d3, s3);
        i += 64;
    }
    while i + 16 <= n {
        // SAFETY: i + 16 <= n.
        let d = unsafe { _mm512_fnmadd_ps(sv, load16(pb.add(i)), load16(pa.add(i))) };
        s0 = _mm512_fmadd_ps(d, d, s0);
        i += 16;
    }
    if i < n {
        // SAFETY: lanes i..n are in bounds and n - i < 16; masked-off lanes give
        // 0 − s·0 = 0 for any finite `s`.
        let d = unsafe {
            _mm512_fnmadd_ps(
                sv,
                load16_partial(pb.add(i), n - i),
                load16_partial(pa.add(i), n - i),
            )
        };
        s1 = _mm512_fmadd_ps(d, d, s1);
    }
    _mm512_reduce_add_ps(_mm512_add_ps(_mm512_add_ps(s0, s1), _mm512_add_ps(s2, s3)))
}

/// Σ a·b.
///
/// # Safety
/// The CPU must support AVX-512F.
#[target_feature(enable = "avx512f")]
unsafe fn dot_avx512(a: &[f32], b: &[f32]) -> f32 {
    let n = a.len().min(b.len());
    let (pa, pb) = (a.as_ptr(), b.as_ptr());
    let [mut s0, mut s1, mut s2, mut s3] = [_mm512_setzero_ps(); 4];
    let mut i = 0;
    while i + 64 <= n {
        // SAFETY: i + 64 <= n, so lanes i..i + 64 are in bounds of both slices.
        unsafe {
            s0 = _mm512_fmadd_ps(load16(pa.add(i)), load16(pb.add(i)), s0);
            s1 = _mm512_fmadd_ps(load16(pa.add(i + 16)), load16(pb.add(i + 16)), s1);
            s2 = _mm512_fmadd_ps(load16(pa.add(i + 32)), load16(pb.add(i + 32)), s2);
            s3 = _mm512_fmadd_ps(load16(pa.add(i + 48)), load16(pb.add(i + 48)), s3);
        }
        i += 64;
    }
    while i + 16 <= n {
        // SAFETY: i + 16 <= n.
        unsafe { s0 = _mm512_fmadd_ps(load16(pa.add(i)), load16(pb.add(i)), s0) };
        i += 16;
    }
    if i < n {
        // SAFETY: lanes i..n are in bounds and n - i < 16.
        unsafe {
            s1 = _mm512_fmadd_ps(
                load16_partial(pa.add(i), n - i),
                load16_partial(pb.add(i), n - i),
                s1,
            );
        }
    }
    _mm512_reduce_add_ps(_mm512_add_ps(_mm512_add_ps(s0, s1), _mm512_add_ps(s2, s3)))
}

/// (Σ a·b, Σ a², Σ b²) with 4 × 3 accumulators, as in the AVX2 version.
///
/// # Safety
/// The CPU must support AVX-512F.
#[target_feature(enable = "avx512f")]
unsafe fn cosine_parts_avx512(a: &[f32], b: &[f32]) -> (f32, f32, f32) {
    let n = a.len().min(b.len());
    let (pa, pb) = (a.as_ptr(), b.as_ptr());
    let z = _mm512_setzero_ps();
    let ([mut ab0, mut ab1, mut ab2, mut ab3], [mut aa0, mut aa1, mut aa2, mut aa3]) =
        ([z; 4], [z; 4]);
    let [mut bb0, mut bb1, mut bb2, mut bb3] = [z; 4];
    let mut i = 0;
    while i + 64 <= n {
        // SAFETY: i + 64 <= n, so lanes i..i + 64 are in bounds of both slices.
        let (x0, y0, x1, y1, x2, y2, x3, y3) = unsafe {
            (
                load16(pa.add(i)),
                load16(pb.add(i)),
                load16(pa.add(i + 16)),
                load16(pb.add(i + 16)),
                load16(pa.add(i + 32)),
                load16(pb.add(i + 32)),
                load16(pa.add(i + 48)),
                load16(pb.add(i + 48)),
            )
        };
        ab0 = _mm512_fmadd_ps(x0, y0, ab0);
        aa0 = _mm512_fmadd_ps(x0, x0, aa0);
        bb0 = _mm512_fmadd_ps(y0, y0, bb0);
        ab1 = _mm512_fmadd_ps(x1, y1, ab1);
        aa1 = _mm512_fmadd_ps(x1, x1, aa1);
        bb1 = _mm512_fmadd_ps(y1, y1, bb1);
        ab2 = _mm512_fmadd_ps(x2, y2, ab2);
        aa2 = _mm512_fmadd_ps(x2, x2, aa2);
        bb2 = _mm512_fmadd_ps(y2, y2, bb2);
        ab3 = _mm512_fmadd_ps(x3, y3, ab3);
        aa3 = _mm512_fmadd_ps(x3, x3, aa3);
        bb3 = _mm512_fmadd_ps(y3, y3, bb3);
        i += 64;
    }
    while i + 16 <= n {
        // SAFETY: i + 16 <= n.
        let (x, y) = unsafe { (load16(pa.add(i)), load16(pb.add(i))) };
        ab0 = _mm512_fmadd_ps(x, y, ab0);
        aa0 = _mm512_fmadd_ps(x, x, aa0);
        bb0 = _mm512_fmadd_ps(y, y, bb0);
        i += 16;
    }
    if i < n {
        // SAFETY: lanes i..n are in bounds and n - i < 16.
        let (x, y) = unsafe {
            (
                load16_partial(pa.add(i), n - i),
                load16_partial(pb.add(i), n - i),
            )
        };
        ab1 = _mm512_fmadd_ps(x, y, ab1);
        aa1 = _mm512_fmadd_ps(x, x, aa1);
        bb1 = _mm512_fmadd_ps(y, y, bb1);
    }
    let sum4 = |p: __m512, q: __m512, r: __m512, s: __m512| {
        _mm512_reduce_add_ps(_mm512_add_ps(_mm512_add_ps(p, q), _mm512_add_ps(r, s)))
    };
    (
        sum4(ab0, ab1, ab2, ab3),
        sum4(aa0, aa1, aa2, aa3),
        sum4(bb0, bb1, bb2, bb3),
    )
}

/// Σ |a−b|.
///
/// # Safety
/// The CPU must support AVX-512F.
#[target_feature(enable = "avx512f")]
unsafe fn l1_avx512(a: &[f32], b: &[f32]) -> f32 {
    let n = a.len().min(b.len());
    let (pa, pb) = (a.as_ptr(), b.as_ptr());
    let [mut s0, mut s1, mut s2, mut s3] = [_mm512_setzero_ps(); 4];
    let mut i = 0;
    while i + 64 <= n {
        // SAFETY: i + 64 <= n, so lanes i..i + 64 are in bounds of both slices.
        unsafe {
            s0 = _mm512_add_ps(
                s0,
                _mm512_abs_ps(_mm512_sub_ps(load16(pa.add(i)), load16(pb.add(i)))),
            );
            s1 = _mm512_add_ps(
                s1,
                _mm512_abs_ps(_mm512_sub_ps(
                    load16(pa.add(i + 16)),
                    load16(pb.add(i + 16)),
                )),
            );
            s2 = _mm512_add_ps(
                s2,
                _mm512_abs_ps(_mm512_sub_ps(
                    load16(pa.add(i + 32)),
                    load16(pb.add(i + 32)),
                )),
            );
            s3 = _mm512_add_ps(
                s3,
                _mm512_abs_ps(_mm512_sub_ps(
                    load16(pa.add(i + 48)),
                    load16(pb.add(i + 48)),
                )),
            );
        }
        i += 64;
    }
    while i + 16 <= n {
        // SAFETY: i + 16 <= n.
        unsafe {
            s0 = _mm512_add_ps(
                s0,
                _mm512_abs_ps(_mm512_sub_ps(load16(pa.add(i)), load16(pb.add(i)))),
            )
        };
        i += 16;
    }
    if i < n {
        // SAFETY: lanes i..n are in bounds and n - i < 16.
        let d = unsafe {
            _mm512_sub_ps(
                load16_partial(pa.add(i), n - i),
                load16_partial(pb.add(i), n - i),
            )
        };
        s1 = _mm512_add_ps(s1, _mm512_abs_ps(d));
    }
    _mm512_reduce_add_ps(_mm512_add_ps(_mm512_add_ps(s0, s1), _mm512_add_ps(s2, s3)))
}

/// max |a−b|, 0 for empty slices.
///
/// # Safety
/// The CPU must support AVX-512F.
#[target_feature(enable = "avx512f")]
unsafe fn linf_avx512(a: &[f32], b: &[f32]) -> f32 {
    let n = a.len().min(b.len());
    let (pa, pb) = (a.as_ptr(), b.as_ptr());
    let [mut m0, mut m1, mut m2, mut m3] = [_mm512_setzero_ps(); 4];
    let mut i = 0;
    while i + 64 <= n {
        // SAFETY: i + 64 <= n, so lanes i..i + 64 are in bounds of both slices.
        unsafe {
            m0 = _mm512_max_ps(
                m0,
                _mm512_abs_ps(_mm512_sub_ps(load16(pa.add(i)), load16(pb.add(i)))),
            );
            m1 = _mm512_max_ps(
                m1,
                _mm512_abs_ps(_mm512_sub_ps(
                    load16(pa.add(i + 16)),
                    load16(pb.add(i + 16)),
                )),
            );
            m2 = _mm512_max_ps(
                m2,
                _mm512_abs_ps(_mm512_sub_ps(
                    load16(pa.add(i + 32)),
                    load16(pb.add(i + 32)),
                )),
            );
            m3 = _mm512_max_ps(
                m3,
                _mm512_abs_ps(_mm512_sub_ps(
                    load16(pa.add(i + 48)),
                    load16(pb.add(i + 48)),
                )),
            );
        }
        i += 64;
    }
    while i + 16 <= n {
        // SAFETY: i + 16 <= n.
        unsafe {
            m0 = _mm512_max_ps(
                m0,
                _mm512_abs_ps(_mm512_sub_ps(load16(pa.add(i)), load16(pb.add(i)))),
            )
        };
        i += 16;
    }
    if i < n {
        // SAFETY: lanes i..n are in bounds and n - i < 16; masked-off lanes give 0.
        let d = unsafe {
            _mm512_sub_ps(
                load16_partial(pa.add(i), n - i),
                load16_partial(pb.add(i), n - i),
            )
        };
        m1 = _mm512_max_ps(m1, _mm512_abs_ps(d));
    }
    _mm512_reduce_max_ps(_mm512_max_ps(_mm512_max_ps(m0, m1), _mm512_max_ps(m2, m3)))
}

/// Σ a².
///
/// # Safety
/// The CPU must support AVX-512F.
#[target_feature(enable = "avx512f")]
unsafe fn norm_squared_avx512(a: &[f32]) -> f32 {
    let n = a.len();
    let pa = a.as_ptr();
    let [mut s0, mut s1, mut s2, mut s3] = [_mm512_setzero_ps(); 4];
    let mut i = 0;
    while i + 64 <= n {
        // SAFETY: i + 64 <= n.
        let (x0, x1, x2, x3) = unsafe {
            (
                load16(pa.add(i)),
                load16(pa.add(i + 16)),
                load16(pa.add(i + 32)),
                load16(pa.add(i + 48)),
            )
        };
        s0 = _mm512_fmadd_ps(x0, x0, s0);
        s1 = _mm512_fmadd_ps(x1, x1, s1);
        s2 = _mm512_fmadd_ps(x2, x2, s2);
        s3 = _mm512_fmadd_ps(x3, x3, s3);
        i += 64;
    }
    while i + 16 <= n {
        // SAFETY: i + 16 <= n.
        let x = unsafe { load16(pa.add(i)) };
        s0 = _mm512_fmadd_ps(x, x, s0);
        i += 16;
    }
    if i < n {
        // SAFETY: lanes i..n are in bounds and n - i < 16.
        let x = unsafe { load16_partial(pa.add(i), n - i) };
        s1 = _mm512_fmadd_ps(x, x, s1);
    }
    _mm512_reduce_add_ps(_mm512_add_ps(_mm512_add_ps(s0, s1), _mm512_add_ps(s2, s3)))
}

#[cfg(test)]
mod tests {
    use super::super::scalar::oracle::*;
    use super::*;

    /// Every kernel of `k` against the f64 oracle on every length 0..=200, at every
    /// starting offset within a vector (so loads are misaligned in every way).
    fn check_table(k: &Kernels) {
        let buf_a = vector(220, 11, 100.0);
        let buf_b = vector(220, 29, 100.0);
        for off in 0..8 {
            for len in 0..=200 {
                let (a, b) = (&buf_a[off..off + len], &buf_b[off + 3..off + 3 + len]);
                let abs_dot: f64 = a
                    .iter()
                    .zip(b)
                    .map(|(&x, &y)| (f64::from(x) * f64::from(y)).abs())
                    .sum();
                let l2 = l2_squared_f64(a, b);
                assert_close("l2_squared", (k.l2_squared)(a, b), l2, l2, len);
                for s in [0.0, 1.0, -0.75, 1e-20, 1e10] {
                    assert_close_l2_scaled((k.l2_scaled)(a, b, s), a, b, s);
                }
                assert_close("dot", (k.dot)(a, b), dot_f64(a, b), abs_dot, len);
                let l1 = l1_f64(a, b);
                assert_close("l1", (k.l1)(a, b), l1, l1, len);
                let na = norm_squared_f64(a);
                assert_close("norm_squared", (k.norm_squared)(a), na, na, len);
                let (ab, aa, bb) = (k.cosine_parts)(a, b);
                let (eab, eaa, ebb) = cosine_parts_f64(a, b);
                assert_close("cosine ab", ab, eab, abs_dot, len);
                assert_close("cosine aa", aa, eaa, eaa, len);
                assert_close("cosine bb", bb, ebb, ebb, len);
                assert_eq!((k.linf)(a, b), linf_f64(a, b) as f32, "linf len {len}");
            }
        }
        check_codes(k);
    }

    /// The scalar fast-scan sums, the reference for the SIMD ones.
    fn fast_scan_reference(codes: &[u8], luts: &[u8]) -> [u32; 32] {
        let mut out = [0; 32];
        super::super::scalar::fast_scan_add(codes, luts, &mut out);
        out
    }

    /// The 1-bit and fast-scan kernels of `k` against the scalar ones, on valid lengths
    /// (the wrappers `debug_assert` them; other lengths are
    /// `code_kernels_read_only_inside_their_slices`'): `dot_bits` on every code length
    /// 0..=264 in whole words with 1 to 8 planes, `fast_scan` on 0..=70 groups and around
    /// the 16-bit flushes (every 512 groups for AVX2, 1 024 for AVX-512), both with their
    /// slices misaligned in several ways, and on tables of 255 only (the largest sums).
    fn check_codes(k: &Kernels) {
        let name = k.isa.name();
        let plane_buf = bytes(8 * 264 + 8, 7);
        let code_buf = bytes(264 + 8, 13);
        for n in (0..=264).step_by(8) {
            for nplanes in 1..=8 {
                for (op, oc) in [(0, 0), (1, 5), (7, 3), (3, 0)] {
                    let (planes, c) = (&plane_buf[op..op + nplanes * n], &code_buf[oc..oc + n]);
                    assert_eq!(
                        (k.dot_bits)(planes, c),
                        super::super::scalar::dot_bits_body(planes, c),
                        "{name} dot_bits, {n} code bytes, {nplanes} planes"
                    );
                }
            }
        }
        // Every bit set: the largest sum, 255 per code bit.
        for n in [8, 48, 64, 96, 192, 256] {
            assert_eq!(
                (k.dot_bits)(&vec![0xff; 8 * n], &vec![0xff; n]),
                255 * 8 * n as u32,
                "{name} dot_bits, {n} code bytes of ones"
            );
        }
        let counts = (0..=70).chain([
            255, 256, 257, 511, 512, 513, 1023, 1024, 1025, 1026, 1027, 2047, 2048, 2049, 2051,
        ]);
        let codes_buf = bytes(16 * 2051 + 8, 17);
        let luts_buf = bytes(16 * 2051 + 8, 19);
        for groups in counts {
            let len = 16 * groups;
            for (oc, ol) in [(0, 0), (1, 3), (8, 5)] {
                let (codes, luts) = (&codes_buf[oc..oc + len], &luts_buf[ol..ol + len]);
                let mut out = [u32::MAX; 32];
                (k.fast_scan)(codes, luts, &mut out);
                let want = fast_scan_reference(codes, luts);
                assert_eq!(out, want, "{name} fast_scan, {groups} groups");
            }
            let mut out = [u32::MAX; 32];
            (k.fast_scan)(&codes_buf[..len], &vec![255; len], &mut out);
            let want = [255 * groups as u32; 32];
            assert_eq!(out, want, "{name} fast_scan, {groups} groups of 255");
        }
    }

    #[test]
    fn avx2_fma_matches_the_oracle() {
        match avx2_fma() {
            Some(k) => check_table(&k),
            None => eprintln!("AVX2+FMA not available on this CPU: skipped"),
        }
    }

    #[test]
    fn avx512_matches_the_oracle() {
        match avx512() {
            Some(k) => check_table(&k),
            None => eprintln!("AVX-512F not available on this CPU: skipped"),
        }
    }

    /// A copy of some bytes that ends where an inaccessible page begins, so reading one
    /// byte past it faults.
    #[cfg(unix)]
    struct Guarded {
        map: *mut libc::c_void,
        map_len: usize,
        start: *const u8,
        len: usize,
    }

    #[cfg(unix)]
    impl Guarded {
        fn new(data: &[u8]) -> Guarded {
            // SAFETY: sysconf has no preconditions.
            let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
            let page = usize::try_from(page).unwrap_or(4096).max(4096);
            let readable = data.len().div_ceil(page).max(1) * page;
            // SAFETY: a fresh anonymous mapping; no existing memory is affected.
            let map = unsafe {
                libc::mmap(
                    std::ptr::null_mut(),
                    readable + page,
                    libc::PROT_READ | libc::PROT_WRITE,
                    libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                    -1,
                    0,
                )
            };
            assert_ne!(map, libc::MAP_FAILED, "mmap failed");
            // SAFETY: the last page of the mapping just made.
            let protected =
                unsafe { libc::mprotect(map.cast::<u8>().add(readable).cast(), page, 0) };
            assert_eq!(protected, 0, "mprotect failed");
            // SAFETY: the last `data.len()` bytes before the guard page are read-write
            // memory of the new mapping, which cannot overlap `data`.
            let start = unsafe {
                let start = map.cast::<u8>().add(readable - data.len());
                std::ptr::copy_nonoverlapping(data.as_ptr(), start, data.len());
                start
            };
            Guarded {
                map,
                map_len: readable + page,
                start,
                len: data.len(),
            }
        }

        fn bytes(&self) -> &[u8] {
            // SAFETY: initialised bytes of the mapping, which lives as long as `self`.
            unsafe { std::slice::from_raw_parts(self.start, self.len) }
        }
    }

    #[cfg(unix)]
    impl Drop for Guarded {
        fn drop(&mut self) {
            // SAFETY: the mapping made in `new`, referenced by nothing that outlives `self`.
            unsafe { libc::munmap(self.map, self.map_len) };
        }
    }

    /// The 1-bit and fast-scan kernels this CPU runs, called directly (no length
    /// `debug_assert`) on lengths valid or not, each slice ending at an inaccessible
    /// page: a read past either slice crashes the test instead of going unnoticed, and
    /// every result must be the scalar kernel's (which uses the whole planes or groups
    /// both slices hold).
    #[cfg(unix)]
    #[test]
    fn code_kernels_read_only_inside_their_slices() {
        type Bits = fn(&[u8], &[u8]) -> u32;
        type Scan = fn(&[u8], &[u8], &mut [u32; 32]);
        let mut bits: Vec<(&str, Bits)> = Vec::new();
        let mut scans: Vec<(&str, Scan)> = Vec::new();
        if is_x86_feature_detected!("popcnt") {
            // SAFETY: `popcnt` was detected.
            bits.push(("popcnt", |p, c| unsafe { dot_bits_popcnt(p, c) }));
        }
        if is_x86_feature_detected!("avx2") {
            // SAFETY: AVX2 was detected.
            scans.push(("avx2", |c, l, o| unsafe { fast_scan_avx2(c, l, o) }));
        }
        let bw = is_x86_feature_detected!("avx512f") && is_x86_feature_detected!("avx512bw");
        if bw {
            // SAFETY: AVX-512F and AVX-512BW were detected.
            scans.push(("avx512", |c, l, o| unsafe { fast_scan_avx512(c, l, o) }));
        }
        if bw && is_x86_feature_detected!("avx512vpopcntdq") {
            // SAFETY: AVX-512F, AVX-512BW and AVX-512 VPOPCNTDQ were detected.
            bits.push(("avx512", |p, c| unsafe { dot_bits_avx512(p, c) }));
        } else {
            eprintln!("AVX-512BW or VPOPCNTDQ not available on this CPU: dot_bits_avx512 skipped");
        }
        let plane_buf = bytes(10 * 200 + 3, 23);
        let code_buf = bytes(200, 29);
        for nc in 0usize..=200 {
            let plane_lengths = [0, 1, 7, nc.saturating_sub(1), nc, nc + 1, 3 * nc + 7];
            let plane_lengths = plane_lengths.into_iter().chain([
                4 * nc,
                8 * nc - nc.min(1),
                8 * nc,
                8 * nc + 1,
                10 * nc + 3,
            ]);
            let c = Guarded::new(&code_buf[..nc]);
            for np in plane_lengths {
                let planes = Guarded::new(&plane_buf[..np]);
                let want = super::super::scalar::dot_bits_body(planes.bytes(), c.bytes());
                for (name, f) in &bits {
                    let got = f(planes.bytes(), c.bytes());
                    assert_eq!(
                        got, want,
                        "{name} dot_bits, {np} plane bytes, {nc} code bytes"
                    );
                }
            }
        }
        let codes_buf = bytes(16 * 1100 + 40, 31);
        let luts_buf = bytes(16 * 1100 + 40, 37);
        let code_lengths =
            (0usize..=100).chain([1023, 1024, 1025, 1039, 1040, 1041, 16 * 1100 + 9]);
        for nc in code_lengths {
            let lut_lengths = [0, 1, 15, 16, 17, 63, 64, 65, 79];
            let lut_lengths =
                lut_lengths
                    .into_iter()
                    .chain([nc.saturating_sub(1), nc, nc + 1, nc + 16, nc + 31]);
            for nl in lut_lengths {
                // Both ways round: codes longer than the tables and tables longer.
                for (nc, nl) in [(nc, nl), (nl, nc)] {
                    let codes = Guarded::new(&codes_buf[..nc]);
                    let luts = Guarded::new(&luts_buf[..nl]);
                    let want = fast_scan_reference(codes.bytes(), luts.bytes());
                    for (name, f) in &scans {
                        let mut out = [u32::MAX; 32];
                        f(codes.bytes(), luts.bytes(), &mut out);
                        assert_eq!(
                            out, want,
                            "{name} fast_scan, {nc} code bytes, {nl} table bytes"
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn masks_select_leading_lanes() {
        assert_eq!(mask16(0), 0);
        assert_eq!(mask16(1), 0b1);
        assert_eq!(mask16(15), 0x7fff);
        assert_eq!(mask16(16), 0xffff);
        assert_eq!(mask16(99), 0xffff);
        assert_eq!(mask64(0), 0);
        assert_eq!(mask64(1), 0b1);
        assert_eq!(mask64(48), (1 << 48) - 1);
        assert_eq!(mask64(63), u64::MAX >> 1);
        assert_eq!(mask64(64), u64::MAX);
        assert_eq!(mask64(200), u64::MAX);
    }
}
