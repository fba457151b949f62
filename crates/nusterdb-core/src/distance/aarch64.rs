//! aarch64 kernels with NEON intrinsics (4 `f32` lanes).
//!
//! Deliberately simple: four accumulators over 16 floats per iteration, then whole
//! vectors of 4, then a scalar tail (NEON has no masked load). Like the x86 kernels,
//! each is an `unsafe fn` whose only requirement is the CPU feature, reads only the
//! common prefix of its two slices, and is reachable only through the table that
//! [`neon`] builds after runtime detection. This file is compiled only on aarch64.

use std::arch::aarch64::*;

use super::{Isa, Kernels};

/// The NEON kernels, if this CPU has NEON (every aarch64 Linux/macOS CPU does).
pub(super) fn neon() -> Option<Kernels> {
    if !std::arch::is_aarch64_feature_detected!("neon") {
        return None;
    }
    safe_wrapper!(l2_squared = l2_squared_neon(a, b) -> f32);
    safe_wrapper!(l2_scaled = l2_scaled_neon(a, b, s: f32) -> f32);
    safe_wrapper!(dot = dot_neon(a, b) -> f32);
    safe_wrapper!(cosine_parts = cosine_parts_neon(a, b) -> (f32, f32, f32));
    safe_wrapper!(l1 = l1_neon(a, b) -> f32);
    safe_wrapper!(linf = linf_neon(a, b) -> f32);
    safe_wrapper!(norm_squared = norm_squared_neon(a) -> f32);
    Some(Kernels {
        isa: Isa::Neon,
        l2_squared,
        l2_scaled,
        dot,
        cosine_parts,
        l1,
        linf,
        norm_squared,
        // Quantized traversal is not hand-vectorised for NEON; the portable loop is
        // auto-vectorised by the compiler.
        dot_u8: super::scalar::dot_u8,
        dot_u8u8: super::scalar::dot_u8u8,
        dot_u8u4: dot_u8u4_neon_safe,
        // `count_ones` compiles to NEON's `cnt` on aarch64: the portable loop is it.
        dot_bits: super::scalar::dot_bits,
        fast_scan: fast_scan_neon_safe,
    })
}

/// The safe wrapper of [`fast_scan_neon`], for the table built after NEON detection.
fn fast_scan_neon_safe(codes: &[u8], luts: &[u8], out: &mut [u32; 32]) {
    super::debug_assert_fast_scan_lengths(codes, luts);
    // SAFETY: only reachable through the table `neon` builds after
    // `is_aarch64_feature_detected!` found NEON.
    unsafe { fast_scan_neon(codes, luts, out) }
}

/// Groups [`fast_scan_neon`] adds into its 16-bit accumulators before widening them: a
/// lane gains at most 255 a group, and 256·255 = 65 280 < 2¹⁶.
const FAST_SCAN_GROUPS_PER_FLUSH: usize = 256;

/// The fast-scan sums of 32 rows (layout: [`Kernels::fast_scan`]), one group per step:
/// `vqtbl1q_u8` looks the 16 low nibbles (rows 0..16) and the 16 high ones (rows 16..32)
/// up in the group's 16-byte table, and `vaddw_u8`/`vaddw_high_u8` add the looked-up
/// bytes into 16-bit lanes, eight rows a vector. Those are widened into 32-bit totals
/// (`vaddw_u16`) every [`FAST_SCAN_GROUPS_PER_FLUSH`] groups, so any number of groups is
/// exact (modulo 2³², like the scalar sum). Bytes past the whole groups (none for valid
/// lengths) are not read: there is no partial group to add.
///
/// # Safety
/// The CPU must support NEON.
#[target_feature(enable = "neon")]
unsafe fn fast_scan_neon(codes: &[u8], luts: &[u8], out: &mut [u32; 32]) {
    const G: usize = super::FAST_SCAN_GROUP;
    let groups = codes.len().min(luts.len()) / G;
    let (pc, pl) = (codes.as_ptr(), luts.as_ptr());
    let nibble = vdupq_n_u8(0x0f);
    // 32-bit totals of rows 4k..4k + 4.
    let mut totals = [vdupq_n_u32(0); 8];
    let mut g = 0;
    while g < groups {
        let end = groups.min(g + FAST_SCAN_GROUPS_PER_FLUSH);
        // 16-bit sums of rows 8k..8k + 8.
        let mut acc = [vdupq_n_u16(0); 4];
        while g < end {
            // SAFETY: g < groups: bytes 16g..16g + 16 are in bounds of both slices.
            let (c, lut) = unsafe { (vld1q_u8(pc.add(G * g)), vld1q_u8(pl.add(G * g))) };
            let lo = vqtbl1q_u8(lut, vandq_u8(c, nibble));
            let hi = vqtbl1q_u8(lut, vshrq_n_u8::<4>(c));
            acc[0] = vaddw_u8(acc[0], vget_low_u8(lo));
            acc[1] = vaddw_high_u8(acc[1], lo);
            acc[2] = vaddw_u8(acc[2], vget_low_u8(hi));
            acc[3] = vaddw_high_u8(acc[3], hi);
            g += 1;
        }
        for (k, a) in acc.into_iter().enumerate() {
            totals[2 * k] = vaddw_u16(totals[2 * k], vget_low_u16(a));
            totals[2 * k + 1] = vaddw_high_u16(totals[2 * k + 1], a);
        }
    }
    for (k, t) in totals.into_iter().enumerate() {
        // SAFETY: out has 32 lanes; k < 8, so lanes 4k..4k + 4 exist.
        unsafe { vst1q_u32(out.as_mut_ptr().add(4 * k), t) };
    }
}

/// The safe wrapper of [`dot_u8u4_neon`], for the table built after NEON detection.
fn dot_u8u4_neon_safe(q: &[u8], c: &[u8]) -> u32 {
    super::debug_assert_u4_lengths(q, c);
    // SAFETY: only reachable through the table `neon` builds after
    // `is_aarch64_feature_detected!` found NEON.
    unsafe { dot_u8u4_neon(q, c) }
}

/// Σ q·c with 4-bit codes `c` packed two per byte (layout: [`Kernels::dot_u8u4`]), one
/// 32-byte block (64 dimensions) per step. Per 16 code bytes, the low nibbles
/// (`vandq_u8` with 15) pair with 16 query codes and the high ones (`vshrq_n_u8` by 4)
/// with the 16 that are 32 further on; `vmull_u8`/`vmlal_u8` (and their `_high` forms)
/// multiply u8×u8 exactly into u16 lanes and add there: each lane collects four products
/// of at most 255·15 = 3 825, at most 15 300 < 65 536, before `vpadalq_u16` adds pairs
/// of lanes into the u32 accumulators. Only whole blocks whose 64 query codes exist are
/// read with vectors; the rest (none for valid lengths) goes through the scalar formula.
///
/// # Safety
/// The CPU must support NEON.
#[target_feature(enable = "neon")]
unsafe fn dot_u8u4_neon(q: &[u8], c: &[u8]) -> u32 {
    const B: usize = super::U4_BLOCK;
    let blocks = (c.len() / B).min(q.len() / (2 * B));
    let (pq, pc) = (q.as_ptr(), c.as_ptr());
    let nibble = vdupq_n_u8(0x0f);
    let [mut s0, mut s1] = [vdupq_n_u32(0); 2];
    for b in 0..blocks {
        // SAFETY: b < blocks: c[32b..32b + 32] and q[64b..64b + 64] are in bounds.
        let (c0, c1, q0, q1, q2, q3) = unsafe {
            let (c, q) = (pc.add(B * b), pq.add(2 * B * b));
            (
                vld1q_u8(c),
                vld1q_u8(c.add(16)),
                vld1q_u8(q),
                vld1q_u8(q.add(16)),
                vld1q_u8(q.add(32)),
                vld1q_u8(q.add(48)),
            )
        };
        let (lo0, lo1) = (vandq_u8(c0, nibble), vandq_u8(c1, nibble));
        let (hi0, hi1) = (vshrq_n_u8::<4>(c0), vshrq_n_u8::<4>(c1));
        // Dimensions 64b + 0..32: the low nibbles.
        let mut lo = vmull_u8(vget_low_u8(q0), vget_low_u8(lo0));
        lo = vmlal_high_u8(lo, q0, lo0);
        lo = vmlal_u8(lo, vget_low_u8(q1), vget_low_u8(lo1));
        lo = vmlal_high_u8(lo, q1, lo1);
        // Dimensions 64b + 32..64: the high nibbles.
        let mut hi = vmull_u8(vget_low_u8(q2), vget_low_u8(hi0));
        hi = vmlal_high_u8(hi, q2, hi0);
        hi = vmlal_u8(hi, vget_low_u8(q3), vget_low_u8(hi1));
        hi = vmlal_high_u8(hi, q3, hi1);
        s0 = vpadalq_u16(s0, lo);
        s1 = vpadalq_u16(s1, hi);
    }
    // u32 lanes and `vaddvq_u32` wrap like the scalar sum: equal modulo 2³².
    let total = vaddvq_u32(vaddq_u32(s0, s1));
    let done = blocks * B;
    if done == c.len() {
        return total;
    }
    total.wrapping_add(super::scalar::dot_u8u4_any(&q[2 * done..], &c[done..]))
}

/// Loads 4 lanes from `p`.
///
/// # Safety
/// `p..p + 4` must be readable.
#[inline]
#[target_feature(enable = "neon")]
unsafe fn load4(p: *const f32) -> float32x4_t {
    // SAFETY: guaranteed by the caller; vld1q has no alignment requirement beyond f32's.
    unsafe { vld1q_f32(p) }
}

/// Σ (a−b)².
///
/// # Safety
/// The CPU must support NEON.
#[target_feature(enable = "neon")]
unsafe fn l2_squared_neon(a: &[f32], b: &[f32]) -> f32 {
    let n = a.len().min(b.len());
    let (pa, pb) = (a.as_ptr(), b.as_ptr());
    let [mut s0, mut s1, mut s2, mut s3] = [vdupq_n_f32(0.0); 4];
    let mut i = 0;
    while i + 16 <= n {
        // SAFETY: i + 16 <= n, so lanes i..i + 16 are in bounds of both slices.
        let (d0, d1, d2, d3) = unsafe {
            (
                vsubq_f32(load4(pa.add(i)), load4(pb.add(i))),
                vsubq_f32(load4(pa.add(i + 4)), load4(pb.add(i + 4))),
                vsubq_f32(load4(pa.add(i + 8)), load4(pb.add(i + 8))),
                vsubq_f32(load4(pa.add(i + 12)), load4(pb.add(i + 12))),
            )
        };
        s0 = vfmaq_f32(s0, d0, d0);
        s1 = vfmaq_f32(s1, d1, d1);
        s2 = vfmaq_f32(s2, d2, d2);
        s3 = vfmaq_f32(s3, d3, d3);
        i += 16;
    }
    while i + 4 <= n {
        // SAFETY: i + 4 <= n.
        let d = unsafe { vsubq_f32(load4(pa.add(i)), load4(pb.add(i))) };
        s0 = vfmaq_f32(s0, d, d);
        i += 4;
    }
    let mut tail = 0.0f32;
    for (x, y) in a[i..n].iter().zip(&b[i..n]) {
        tail += (x - y) * (x - y);
    }
    vaddvq_f32(vaddq_f32(vaddq_f32(s0, s1), vaddq_f32(s2, s3))) + tail
}

/// Σ (a − s·b)²: [`l2_squared_neon`] with the difference formed by one FMA
/// (`vfmsq_f32`: a − b·s, rounded once like the plain subtraction there).
///
/// # Safety
/// The CPU must support NEON.
#[target_feature(enable = "neon")]
unsafe fn l2_scaled_neon(a: &[f32], b: &[f32], s: f32) -> f32 {
    let n = a.len().min(b.len());
    let (pa, pb) = (a.as_ptr(), b.as_ptr());
    let sv = vdupq_n_f32(s);
    let [mut s0, mut s1, mut s2, mut s3] = [vdupq_n_f32(0.0); 4];
    let mut i = 0;
    while i + 16 <= n {
        // SAFETY: i + 16 <= n, so lanes i..i + 16 are in bounds of both slices.
        let (d0, d1, d2, d3) = unsafe {
            (
                vfmsq_f32(load4(pa.add(i)), load4(pb.add(i)), sv),
                vfmsq_f32(load4(pa.add(i + 4)), load4(pb.add(i + 4)), sv),
                vfmsq_f32(load4(pa.add(i + 8)), load4(pb.add(i + 8)), sv),
                vfmsq_f32(load4(pa.add(i + 12)), load4(pb.add(i + 12)), sv),
            )
        };
        s0 = vfmaq_f32(s0, d0, d0);
        s1 = vfmaq_f32(s1, d1, d1);
        s2 = vfmaq_f32(s2, d2, d2);
        s3 = vfmaq_f32(s3, d3, d3);
        i += 16;
    }
    while i + 4 <= n {
        // SAFETY: i + 4 <= n.
        let d = unsafe { vfmsq_f32(load4(pa.add(i)), load4(pb.add(i)), sv) };
        s0 = vfmaq_f32(s0, d, d);
        i += 4;
    }
    let mut tail = 0.0f32;
    for (&x, &y) in a[i..n].iter().zip(&b[i..n]) {
        // aarch64 always has scalar FMA, so `mul_add` is one instruction (fmsub) and the
        // tail rounds a − s·b once, like the vector lanes.
        let d = (-s).mul_add(y, x);
        tail += d * d;
    }
    vaddvq_f32(vaddq_f32(vaddq_f32(s0, s1), vaddq_f32(s2, s3))) + tail
}

/// Σ a·b.
///
/// # Safety
/// The CPU must support NEON.
#[target_feature(enable = "neon")]
unsafe fn dot_neon(a: &[f32], b: &[f32]) -> f32 {
    let n = a.len().min(b.len());
    let (pa, pb) = (a.as_ptr(), b.as_ptr());
    let [mut s0, mut s1, mut s2, mut s3] = [vdupq_n_f32(0.0); 4];
    let mut i = 0;
    while i + 16 <= n {
        // SAFETY: i + 16 <= n, so lanes i..i + 16 are in bounds of both slices.
        unsafe {
            s0 = vfmaq_f32(s0, load4(pa.add(i)), load4(pb.add(i)));
            s1 = vfmaq_f32(s1, load4(pa.add(i + 4)), load4(pb.add(i + 4)));
            s2 = vfmaq_f32(s2, load4(pa.add(i + 8)), load4(pb.add(i + 8)));
            s3 = vfmaq_f32(s3, load4(pa.add(i + 12)), load4(pb.add(i + 12)));
        }
        i += 16;
    }
    while i + 4 <= n {
        // SAFETY: i + 4 <= n.
        unsafe { s0 = vfmaq_f32(s0, load4(pa.add(i)), load4(pb.add(i))) };
        i += 4;
    }
    let mut tail = 0.0f32;
    for (x, y) in a[i..n].iter().zip(&b[i..n]) {
        tail += x * y;
    }
    vaddvq_f32(vaddq_f32(vaddq_f32(s0, s1), vaddq_f32(s2, s3))) + tail
}

/// (Σ a·b, Σ a², Σ b²), two vectors per iteration (6 accumulators).
///
/// # Safety
/// The CPU must support NEON.
#[target_feature(enable = "neon")]
unsafe fn cosine_parts_neon(a: &[f32], b: &[f32]) -> (f32, f32, f32) {
    let n = a.len().min(b.len());
    let (pa, pb) = (a.as_ptr(), b.as_ptr());
    let z = vdupq_n_f32(0.0);
    let ([mut ab0, mut ab1], [mut aa0, mut aa1], [mut bb0, mut bb1]) = ([z; 2], [z; 2], [z; 2]);
    let mut i = 0;
    while i + 8 <= n {
        // SAFETY: i + 8 <= n, so lanes i..i + 8 are in bounds of both slices.
        let (x0, y0, x1, y1) = unsafe {
            (
                load4(pa.add(i)),
                load4(pb.add(i)),
                load4(pa.add(i + 4)),
                load4(pb.add(i + 4)),
            )
        };
        ab0 = vfmaq_f32(ab0, x0, y0);
        aa0 = vfmaq_f32(aa0, x0, x0);
        bb0 = vfmaq_f32(bb0, y0, y0);
        ab1 = vfmaq_f32(ab1, x1, y1);
        aa1 = vfmaq_f32(aa1, x1, x1);
        bb1 = vfmaq_f32(bb1, y1, y1);
        i += 8;
    }
    while i + 4 <= n {
        // SAFETY: i + 4 <= n.
        let (x, y) = unsafe { (load4(pa.add(i)), load4(pb.add(i))) };
        ab0 = vfmaq_f32(ab0, x, y);
        aa0 = vfmaq_f32(aa0, x, x);
        bb0 = vfmaq_f32(bb0, y, y);
        i += 4;
    }
    let (mut tab, mut taa, mut tbb) = (0.0f32, 0.0f32, 0.0f32);
    for (&x, &y) in a[i..n].iter().zip(&b[i..n]) {
        tab += x * y;
        taa += x * x;
        tbb += y * y;
    }
    (
        vaddvq_f32(vaddq_f32(ab0, ab1)) + tab,
        vaddvq_f32(vaddq_f32(aa0, aa1)) + taa,
        vaddvq_f32(vaddq_f32(bb0, bb1)) + tbb,
    )
}

/// Σ |a−b| (`vabdq_f32` is the absolute difference in one instruction).
///
/// # Safety
/// The CPU must support NEON.
#[target_feature(enable = "neon")]
unsafe fn l1_neon(a: &[f32], b: &[f32]) -> f32 {
    let n = a.len().min(b.len());
    let (pa, pb) = (a.as_ptr(), b.as_ptr());
    let [mut s0, mut s1, mut s2, mut s3] = [vdupq_n_f32(0.0); 4];
    let mut i = 0;
    while i + 16 <= n {
        // SAFETY: i + 16 <= n, so lanes i..i + 16 are in bounds of both slices.
        unsafe {
            s0 = vaddq_f32(s0, vabdq_f32(load4(pa.add(i)), load4(pb.add(i))));
            s1 = vaddq_f32(s1, vabdq_f32(load4(pa.add(i + 4)), load4(pb.add(i + 4))));
            s2 = vaddq_f32(s2, vabdq_f32(load4(pa.add(i + 8)), load4(pb.add(i + 8))));
            s3 = vaddq_f32(s3, vabdq_f32(load4(pa.add(i + 12)), load4(pb.add(i + 12))));
        }
        i += 16;
    }
    while i + 4 <= n {
        // SAFETY: i + 4 <= n.
        unsafe { s0 = vaddq_f32(s0, vabdq_f32(load4(pa.add(i)), load4(pb.add(i)))) };
        i += 4;
    }
    let mut tail = 0.0f32;
    for (x, y) in a[i..n].iter().zip(&b[i..n]) {
        tail += (x - y).abs();
    }
    vaddvq_f32(vaddq_f32(vaddq_f32(s0, s1), vaddq_f32(s2, s3))) + tail
}

/// max |a−b|, 0 for empty slices.
///
/// # Safety
/// The CPU must support NEON.
#[target_feature(enable = "neon")]
unsafe fn linf_neon(a: &[f32], b: &[f32]) -> f32 {
    let n = a.len().min(b.len());
    let (pa, pb) = (a.as_ptr(), b.as_ptr());
    let [mut m0, mut m1] = [vdupq_n_f32(0.0); 2];
    let mut i = 0;
    while i + 8 <= n {
        // SAFETY: i + 8 <= n, so lanes i..i + 8 are in bounds of both slices.
        unsafe {
            m0 = vmaxq_f32(m0, vabdq_f32(load4(pa.add(i)), load4(pb.add(i))));
            m1 = vmaxq_f32(m1, vabdq_f32(load4(pa.add(i + 4)), load4(pb.add(i + 4))));
        }
        i += 8;
    }
    while i + 4 <= n {
        // SAFETY: i + 4 <= n.
        unsafe { m0 = vmaxq_f32(m0, vabdq_f32(load4(pa.add(i)), load4(pb.add(i)))) };
        i += 4;
    }
    let mut tail = 0.0f32;
    for (x, y) in a[i..n].iter().zip(&b[i..n]) {
        tail = tail.max((x - y).abs());
    }
    vmaxvq_f32(vmaxq_f32(m0, m1)).max(tail)
}

/// Σ a².
///
/// # Safety
/// The CPU must support NEON.
#[target_feature(enable = "neon")]
unsafe fn norm_squared_neon(a: &[f32]) -> f32 {
    let n = a.len();
    let pa = a.as_ptr();
    let [mut s0, mut s1, mut s2, mut s3] = [vdupq_n_f32(0.0); 4];
    let mut i = 0;
    while i + 16 <= n {
        // SAFETY: i + 16 <= n.
        let (x0, x1, x2, x3) = unsafe {
            (
                load4(pa.add(i)),
                load4(pa.add(i + 4)),
                load4(pa.add(i + 8)),
                load4(pa.add(i + 12)),
            )
        };
        s0 = vfmaq_f32(s0, x0, x0);
        s1 = vfmaq_f32(s1, x1, x1);
        s2 = vfmaq_f32(s2, x2, x2);
        s3 = vfmaq_f32(s3, x3, x3);
        i += 16;
    }
    while i + 4 <= n {
        // SAFETY: i + 4 <= n.
        let x = unsafe { load4(pa.add(i)) };
        s0 = vfmaq_f32(s0, x, x);
        i += 4;
    }
    let mut tail = 0.0f32;
    for &x in &a[i..n] {
        tail += x * x;
    }
    vaddvq_f32(vaddq_f32(vaddq_f32(s0, s1), vaddq_f32(s2, s3))) + tail
}
