//! Integration tests of the distance kernels: every kernel table this CPU can run is
//! checked against an `f64` reference written here (independent of the crate's own
//! scalar code), plus edge cases and the ISA selection.
//!
//! Tolerance. Each kernel sums `n` terms tᵢ that are each computed with at most two
//! f32 roundings (a subtraction and a product; an FMA rounds once). Whatever order the
//! additions happen in (SIMD lanes, several accumulators, a horizontal reduction, a
//! scalar tail), the f32 result S̃ obeys |S̃ − S| ≤ ((n − 1)·u + 2u)·Σ|tᵢ|·(1 + O(n·u))
//! with u = 2⁻²⁴ (Higham, *Accuracy and Stability of Numerical Algorithms*, §4.2).
//! So the bound used is (n + 3)·u·Σ|tᵢ|·1.01, which is about 1e-4 of the magnitude at
//! n = 1536 and is guaranteed, not statistical. It is relative to Σ|tᵢ|, not to the
//! result: a dot product of ±100 values can cancel to almost 0, and no f32 kernel can
//! do better than that. Added zeros (masked lanes, empty accumulators) are exact and
//! cost nothing. `linf` is compared exactly: |a−b| is one correctly rounded f32
//! subtraction in every kernel, and computing it in f64 then rounding to f32 gives the
//! same value (double rounding is harmless for p' ≥ 2p + 2, 53 ≥ 50).
//!
//! `l2_scaled` = Σ(aᵢ − s·bᵢ)² gets one more term in its bound. The SIMD kernels form
//! dᵢ = aᵢ − s·bᵢ in one FMA (one rounding, as above), but the scalar kernel rounds s·bᵢ
//! before subtracting, an error of u·|s·bᵢ| that is not relative to dᵢ and is magnified
//! exactly where aᵢ ≈ s·bᵢ. Squaring turns it into at most 2u·|dᵢ|·|s·bᵢ| + 2u²·(s·bᵢ)²,
//! so that sum is added to the bound (see [`check_l2_scaled`]).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::process::Command;
use std::sync::Once;

use nusterdb_core::distance::{available_isas, kernels, Isa, Kernels};
use proptest::prelude::*;

/// The dimensions that matter in practice or sit next to a SIMD width.
const SPECIAL_DIMS: [usize; 12] = [1, 3, 7, 15, 16, 17, 31, 33, 97, 128, 384, 1536];

/// Every kernel table this CPU runs (scalar first), reported once per test.
fn tables(test: &str) -> Vec<Kernels> {
    let isas = available_isas();
    let names: Vec<&str> = isas.iter().map(|isa| isa.name()).collect();
    eprintln!("{test}: testing ISAs {names:?}");
    if !isas.contains(&Isa::Avx512) {
        eprintln!("{test}: AVX-512 is not available on this CPU, its kernels are skipped");
    }
    isas.into_iter()
        .map(|isa| Kernels::for_isa(isa).expect("available ISA has a table"))
        .collect()
}

/// The exact value (as far as f64 goes) and Σ|terms| of a sum of per-element terms.
fn reference(a: &[f32], b: &[f32], term: impl Fn(f64, f64) -> f64) -> (f64, f64) {
    a.iter().zip(b).fold((0.0, 0.0), |(sum, mag), (&x, &y)| {
        let t = term(f64::from(x), f64::from(y));
        (sum + t, mag + t.abs())
    })
}

fn check(what: &str, isa: Isa, got: f32, (exact, magnitude): (f64, f64), n: usize) {
    let u = f64::from(f32::EPSILON) / 2.0;
    let tol = (n as f64 + 3.0) * u * magnitude * 1.01;
    let err = (f64::from(got) - exact).abs();
    assert!(
        err <= tol,
        "{} {what}, n = {n}: got {got}, reference {exact}, |error| {err:e} > {tol:e}",
        isa.name()
    );
}

/// Checks `(k.l2_scaled)(a, b, s)` against Σ(aᵢ − s·bᵢ)² in f64 (where each s·bᵢ is
/// exact: 24 + 24 significant bits), with the bound of the module comment. The floor,
/// n·1e-44, covers terms that underflow to f32 subnormals (e.g. s = 1e-20 on tiny bᵢ).
fn check_l2_scaled(k: &Kernels, a: &[f32], b: &[f32], s: f32) {
    let n = a.len();
    let u = f64::from(f32::EPSILON) / 2.0;
    let s64 = f64::from(s);
    let (mut exact, mut cross, mut scaled) = (0.0f64, 0.0f64, 0.0f64);
    for (&x, &y) in a.iter().zip(b) {
        let sb = s64 * f64::from(y);
        let d = f64::from(x) - sb;
        exact += d * d;
        cross += d.abs() * sb.abs();
        scaled += sb * sb;
    }
    // Every term dᵢ² is ≥ 0, so Σ|tᵢ| is the exact value itself.
    let tol = ((n as f64 + 3.0) * u * exact + 2.0 * u * cross + 2.0 * u * u * scaled) * 1.01
        + n as f64 * 1e-44;
    let got = (k.l2_scaled)(a, b, s);
    let err = (f64::from(got) - exact).abs();
    assert!(
        err <= tol,
        "{} l2_scaled, n = {n}, s = {s:e}: got {got}, reference {exact}, |error| {err:e} > {tol:e}",
        k.isa.name()
    );
}

/// 1/‖b‖ as the f32 a caller would pass (1 for a zero `b`, where it is undefined).
fn inv_norm(b: &[f32]) -> f32 {
    let norm = b.iter().map(|&y| f64::from(y).powi(2)).sum::<f64>().sqrt();
    if norm > 0.0 {
        (1.0 / norm) as f32
    } else {
        1.0
    }
}

/// Checks every kernel of `k` on one pair of equal-length vectors.
fn check_all(k: &Kernels, a: &[f32], b: &[f32]) {
    let n = a.len();
    let isa = k.isa;
    let l2 = reference(a, b, |x, y| (x - y) * (x - y));
    for s in [0.0, 1.0, -0.75, inv_norm(b)] {
        check_l2_scaled(k, a, b, s);
    }
    let dot = reference(a, b, |x, y| x * y);
    let aa = reference(a, a, |x, _| x * x);
    let bb = reference(b, b, |y, _| y * y);
    let l1 = reference(a, b, |x, y| (x - y).abs());
    check("l2_squared", isa, (k.l2_squared)(a, b), l2, n);
    check("dot", isa, (k.dot)(a, b), dot, n);
    check("norm_squared", isa, (k.norm_squared)(a), aa, n);
    check("l1", isa, (k.l1)(a, b), l1, n);
    let (ab, got_aa, got_bb) = (k.cosine_parts)(a, b);
    check("cosine_parts.0 (Σab)", isa, ab, dot, n);
    check("cosine_parts.1 (Σa²)", isa, got_aa, aa, n);
    check("cosine_parts.2 (Σb²)", isa, got_bb, bb, n);
    // The 8-bit kernel: `b` turned into codes (its bits' low byte, any value 0..=255).
    let codes: Vec<u8> = b.iter().map(|y| (y.to_bits() & 0xff) as u8).collect();
    let as_f32: Vec<f32> = codes.iter().map(|&c| f32::from(c)).collect();
    let dot_u8 = reference(a, &as_f32, |x, y| x * y);
    check("dot_u8", isa, (k.dot_u8)(a, &codes), dot_u8, n);
    let codes_a: Vec<u8> = a.iter().map(|x| (x.to_bits() >> 8) as u8).collect();
    let exact: u32 = codes_a
        .iter()
        .zip(&codes)
        .map(|(&x, &y)| u32::from(x) * u32::from(y))
        .sum();
    assert_eq!(
        (k.dot_u8u8)(&codes_a, &codes),
        exact,
        "{} dot_u8u8, n = {n}",
        isa.name()
    );
    let linf = a.iter().zip(b).fold(0.0f64, |m, (&x, &y)| {
        m.max((f64::from(x) - f64::from(y)).abs())
    });
    assert_eq!((k.linf)(a, b), linf as f32, "{} linf, n = {n}", isa.name());
}

/// A pair of equal-length vectors with values in [-100, 100]; lengths 0..=300 or one of
/// [`SPECIAL_DIMS`].
fn vector_pair() -> impl Strategy<Value = (Vec<f32>, Vec<f32>)> {
    let len = prop_oneof![
        2 => 0usize..=300,
        1 => prop::sample::select(SPECIAL_DIMS.to_vec()),
    ];
    len.prop_flat_map(|n| {
        let v = prop::collection::vec(-100.0f32..=100.0f32, n);
        (v.clone(), v)
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn every_isa_agrees_with_the_f64_reference((a, b) in vector_pair()) {
        static REPORT: Once = Once::new();
        REPORT.call_once(|| {
            tables("every_isa_agrees_with_the_f64_reference");
        });
        for k in tables_quiet() {
            check_all(&k, &a, &b);
        }
    }
}

/// `(a, b, s)` for `l2_scaled`: lengths 0..=70 or a large one (384, 1536, 1537); `s` one
/// of 0, ±1, ±1e-20, ±1e10, 1/‖b‖, or random over 30 orders of magnitude; and `a` either
/// independent of `b` or s·b plus a little noise (the cancelling case, as for
/// normalised near neighbours).
fn scaled_case() -> impl Strategy<Value = (Vec<f32>, Vec<f32>, f32)> {
    let len = prop_oneof![
        3 => 0usize..=70,
        1 => prop::sample::select(vec![384usize, 1536, 1537]),
    ];
    len.prop_flat_map(|n| {
        let v = prop::collection::vec(-100.0f32..=100.0f32, n);
        (v.clone(), v, any::<bool>())
    })
    .prop_flat_map(|(a, b, near)| {
        let fixed = vec![0.0f32, 1.0, -1.0, 1e-20, -1e-20, 1e10, -1e10, inv_norm(&b)];
        let s = prop_oneof![
            2 => prop::sample::select(fixed),
            1 => -10.0f32..=10.0f32,
            1 => (-20i32..=10, 1.0f32..10.0f32, any::<bool>()).prop_map(|(e, m, neg)| {
                let s = m * 10f32.powi(e);
                if neg { -s } else { s }
            }),
        ];
        (Just(a), Just(b), s, Just(near))
    })
    .prop_map(|(a, b, s, near)| {
        let a = if near {
            // a = s·b + noise up to 1e-4·|s|, a millionth of s·b's scale.
            a.iter()
                .zip(&b)
                .map(|(&x, &y)| s * y + x * 1e-6 * s.abs())
                .collect()
        } else {
            a
        };
        (a, b, s)
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn l2_scaled_agrees_with_the_f64_reference_on_every_isa((a, b, s) in scaled_case()) {
        for k in tables_quiet() {
            check_l2_scaled(&k, &a, &b, s);
        }
    }
}

/// [`tables`] without the report (the proptest body runs hundreds of times).
fn tables_quiet() -> Vec<Kernels> {
    available_isas()
        .into_iter()
        .filter_map(Kernels::for_isa)
        .collect()
}

/// A 64-bit xorshift stream.
fn xorshift(seed: u64) -> impl Iterator<Item = u64> {
    let mut s = seed | 1;
    std::iter::repeat_with(move || {
        s ^= s << 13;
        s ^= s >> 7;
        s ^= s << 17;
        s
    })
}

/// Deterministic xorshift vectors in [-100, 100), so every length is covered for sure.
fn xorshift_vec(n: usize, seed: u64) -> Vec<f32> {
    xorshift(seed)
        .take(n)
        .map(|s| ((s >> 40) as f32 / (1u64 << 24) as f32 * 2.0 - 1.0) * 100.0)
        .collect()
}

#[test]
fn every_isa_on_every_length_and_misalignment() {
    let base_a = xorshift_vec(1536 + 16, 1);
    let base_b = xorshift_vec(1536 + 16, 2);
    let lengths = (0..=300).chain(SPECIAL_DIMS);
    let lengths: Vec<usize> = lengths.collect();
    for k in tables("every_isa_on_every_length_and_misalignment") {
        for &n in &lengths {
            // Offsets 0..4 floats shift the start off any 16-byte (or wider) boundary.
            for off in 0..4 {
                check_all(&k, &base_a[off..off + n], &base_b[off + 5..off + 5 + n]);
            }
        }
    }
}

#[test]
fn edge_cases() {
    for k in tables("edge_cases") {
        let name = k.isa.name();
        // Empty slices give 0 everywhere.
        assert_eq!((k.l2_squared)(&[], &[]), 0.0, "{name}");
        assert_eq!((k.dot)(&[], &[]), 0.0, "{name}");
        assert_eq!((k.cosine_parts)(&[], &[]), (0.0, 0.0, 0.0), "{name}");
        assert_eq!((k.l1)(&[], &[]), 0.0, "{name}");
        assert_eq!((k.linf)(&[], &[]), 0.0, "{name}");
        assert_eq!((k.norm_squared)(&[]), 0.0, "{name}");
        // Identical inputs: l2, l1 and linf are exactly 0, at any length.
        for n in [1, 7, 8, 9, 16, 17, 64, 65, 128, 1536] {
            let a = xorshift_vec(n, n as u64);
            assert_eq!((k.l2_squared)(&a, &a), 0.0, "{name} n={n}");
            assert_eq!((k.l1)(&a, &a), 0.0, "{name} n={n}");
            assert_eq!((k.linf)(&a, &a), 0.0, "{name} n={n}");
        }
        // Single elements.
        assert_eq!((k.linf)(&[-3.5], &[2.0]), 5.5, "{name}");
        assert_eq!((k.linf)(&[7.0], &[7.0]), 0.0, "{name}");
        assert_eq!((k.l2_squared)(&[1.0], &[4.0]), 9.0, "{name}");
        assert_eq!((k.l1)(&[1.0], &[-4.0]), 5.0, "{name}");
        assert_eq!((k.dot)(&[3.0], &[-2.0]), -6.0, "{name}");
        assert_eq!(
            (k.cosine_parts)(&[3.0], &[-2.0]),
            (-6.0, 9.0, 4.0),
            "{name}"
        );
        // The maximum is found wherever it sits, including in the tail.
        for n in [1usize, 5, 8, 9, 31, 33, 100] {
            for at in [0, n / 2, n - 1] {
                let a = vec![0.5f32; n];
                let mut b = vec![0.25f32; n];
                b[at] = -9.0;
                assert_eq!((k.linf)(&a, &b), 9.5, "{name} n={n} at={at}");
            }
        }
        // Small integers are summed exactly, so results are exact.
        let a: Vec<f32> = (0..100).map(|i| (i % 7) as f32 - 3.0).collect();
        let b: Vec<f32> = (0..100).map(|i| (i % 5) as f32 - 2.0).collect();
        let exact_dot: f32 = a.iter().zip(&b).map(|(x, y)| x * y).sum();
        assert_eq!((k.dot)(&a, &b), exact_dot, "{name}");
    }
}

#[test]
fn l2_scaled_edge_cases() {
    for k in tables("l2_scaled_edge_cases") {
        let name = k.isa.name();
        assert_eq!((k.l2_scaled)(&[], &[], 2.5), 0.0, "{name}");
        assert_eq!((k.l2_scaled)(&[1.0], &[4.0], 0.5), 1.0, "{name}");
        assert_eq!((k.l2_scaled)(&[1.0], &[4.0], -2.0), 81.0, "{name}");
        for n in [1, 7, 8, 9, 16, 17, 33, 64, 65, 128, 1536, 1537] {
            let a = xorshift_vec(n, 3 * n as u64);
            let b = xorshift_vec(n, 5 * n as u64);
            // a − 1·a is exactly 0, in an FMA as in two roundings.
            assert_eq!((k.l2_scaled)(&a, &a, 1.0), 0.0, "{name} n={n}");
            // s = 0 leaves a, so the sum is Σa² in norm_squared's own order: bit-equal.
            assert_eq!(
                (k.l2_scaled)(&a, &b, 0.0).to_bits(),
                (k.norm_squared)(&a).to_bits(),
                "{name} n={n}"
            );
            // s = 1 is l2_squared, in the same order (x − 1·y rounds like x − y):
            // bit-equal even on non-integer values.
            assert_eq!(
                (k.l2_scaled)(&a, &b, 1.0).to_bits(),
                (k.l2_squared)(&a, &b).to_bits(),
                "{name} n={n}"
            );
        }
    }
}

#[test]
fn l2_scaled_with_unit_scale_is_l2_squared_on_integers() {
    for k in tables("l2_scaled_with_unit_scale_is_l2_squared_on_integers") {
        let name = k.isa.name();
        for n in (0..=70).chain([384, 1536, 1537]) {
            // Small integers: every term and partial sum is an exact f32, so any order
            // of summation gives exactly the integer total.
            let a: Vec<f32> = (0..n).map(|i| (i * 7 % 23) as f32 - 11.0).collect();
            let b: Vec<f32> = (0..n).map(|i| (i * 5 % 17) as f32 - 8.0).collect();
            let exact: i64 = a
                .iter()
                .zip(&b)
                .map(|(&x, &y)| (x as i64 - y as i64).pow(2))
                .sum();
            let got = (k.l2_scaled)(&a, &b, 1.0);
            assert_eq!(got, (k.l2_squared)(&a, &b), "{name} n={n}");
            assert_eq!(got, exact as f32, "{name} n={n}");
            // And with s = 2 (s·b still small integers), against the integer sum.
            let exact2: i64 = a
                .iter()
                .zip(&b)
                .map(|(&x, &y)| (x as i64 - 2 * y as i64).pow(2))
                .sum();
            assert_eq!((k.l2_scaled)(&a, &b, 2.0), exact2 as f32, "{name} n={n}");
        }
    }
}

#[test]
fn l2_scaled_of_normalised_vectors_is_two_minus_two_cos() {
    for k in tables("l2_scaled_of_normalised_vectors_is_two_minus_two_cos") {
        let name = k.isa.name();
        for n in [
            1usize, 2, 3, 8, 15, 16, 17, 31, 33, 64, 100, 128, 384, 768, 1536, 1537,
        ] {
            let q = xorshift_vec(n, 11 + n as u64);
            let noise = xorshift_vec(n, 13 + n as u64);
            let other = xorshift_vec(n, 17 + n as u64);
            // x: unrelated to q, near-parallel, near-antiparallel, and exactly parallel,
            // each at a scale far from 1 so that the 1/‖x‖ matters.
            let cases: [Vec<f32>; 4] = [
                other.iter().map(|&v| v * 37.5).collect(),
                q.iter()
                    .zip(&noise)
                    .map(|(&v, &e)| (v + 0.01 * e) * 0.02)
                    .collect(),
                q.iter()
                    .zip(&noise)
                    .map(|(&v, &e)| (0.05 * e - v) * 3.0)
                    .collect(),
                q.iter().map(|&v| v * 1000.0).collect(),
            ];
            let norm = |v: &[f32]| v.iter().map(|&y| f64::from(y).powi(2)).sum::<f64>().sqrt();
            let q_norm = norm(&q);
            let q_hat: Vec<f32> = q.iter().map(|&v| (f64::from(v) / q_norm) as f32).collect();
            for (case, x) in cases.iter().enumerate() {
                let x_norm = norm(x);
                let dot: f64 = q
                    .iter()
                    .zip(x)
                    .map(|(&u, &v)| f64::from(u) * f64::from(v))
                    .sum();
                let expected = 2.0 - 2.0 * dot / (q_norm * x_norm);
                let got = (k.l2_scaled)(&q_hat, x, (1.0 / x_norm) as f32);
                assert!(
                    (f64::from(got) - expected).abs() <= 1e-6,
                    "{name} n={n} case {case}: got {got}, 2 − 2cos = {expected}"
                );
            }
        }
    }
}

#[test]
fn l2_scaled_reads_only_the_common_prefix() {
    if cfg!(debug_assertions) {
        // Unequal lengths trip the kernels' debug_assert; release builds take the prefix.
        eprintln!("debug build: unequal-length call skipped");
        return;
    }
    for k in tables("l2_scaled_reads_only_the_common_prefix") {
        for n in [0usize, 1, 7, 9, 17, 63, 65, 100] {
            let a = xorshift_vec(n + 40, 7);
            let b = xorshift_vec(n, 8);
            let prefix = (k.l2_scaled)(&a[..n], &b, 0.3);
            assert_eq!((k.l2_scaled)(&a, &b, 0.3), prefix, "{} n={n}", k.isa.name());
            assert_eq!((k.l2_scaled)(&b, &a, 0.3), (k.l2_scaled)(&b, &a[..n], 0.3));
        }
    }
}

/// Random bytes from a 64-bit xorshift (every value 0..=255 is equally likely).
fn xorshift_bytes(n: usize, seed: u64) -> Vec<u8> {
    xorshift(seed).take(n).map(|s| (s >> 56) as u8).collect()
}

/// The 4-bit codes of `c` as one byte per dimension, in natural order: byte `j` of block
/// `b` (32 bytes) is dimension `64b + j` (low nibble) and `64b + 32 + j` (high nibble).
/// A partial last block unpacks to a whole one, with zeros where it has no bytes.
fn unpack_u4(c: &[u8]) -> Vec<u8> {
    let mut dims = vec![0u8; c.len().div_ceil(32) * 64];
    for (k, &byte) in c.iter().enumerate() {
        let (b, j) = (k / 32, k % 32);
        dims[64 * b + j] = byte & 0x0f;
        dims[64 * b + 32 + j] = byte >> 4;
    }
    dims
}

/// Σ q·c for packed 4-bit `c`, independently of the crate: unpack, then a plain dot
/// product over the dimensions both sides have.
fn dot_u8u4_reference(q: &[u8], c: &[u8]) -> u32 {
    q.iter()
        .zip(unpack_u4(c))
        .map(|(&x, y)| u32::from(x) * u32::from(y))
        .sum()
}

fn check_dot_u8u4(k: &Kernels, q: &[u8], c: &[u8]) {
    assert_eq!(
        (k.dot_u8u4)(q, c),
        dot_u8u4_reference(q, c),
        "{} dot_u8u4, {} code bytes, {} query codes",
        k.isa.name(),
        c.len(),
        q.len()
    );
}

#[test]
fn unpack_u4_follows_the_documented_layout() {
    let c: Vec<u8> = (0..64u8).map(|k| (k % 16) | ((15 - k % 16) << 4)).collect();
    let dims = unpack_u4(&c);
    assert_eq!(dims.len(), 128);
    for b in 0..2 {
        for j in 0..32 {
            let k = 32 * b + j;
            assert_eq!(dims[64 * b + j], (k % 16) as u8);
            assert_eq!(dims[64 * b + 32 + j], 15 - (k % 16) as u8);
        }
    }
    // One non-zero nibble at a time lands on exactly its dimension.
    for k in 0..64 {
        for (byte, dim) in [
            (0x01u8, 64 * (k / 32) + k % 32),
            (0x10, 64 * (k / 32) + 32 + k % 32),
        ] {
            let mut c = vec![0u8; 64];
            c[k] = byte;
            let mut q = vec![0u8; 128];
            q[dim] = 200;
            assert_eq!(
                dot_u8u4_reference(&q, &c),
                200,
                "byte {k}, nibble {byte:#x}"
            );
            for t in tables_quiet() {
                assert_eq!((t.dot_u8u4)(&q, &c), 200, "{} byte {k}", t.isa.name());
            }
        }
    }
}

#[test]
fn dot_u8u4_every_isa_on_block_lengths_and_misalignment() {
    // Code bytes: none, 1, 2, 3 blocks, 384 and 3 072 dimensions, and random multiples
    // of 32 up to 2 048 bytes (fixed seed).
    let mut lengths = vec![0usize, 32, 64, 96, 192, 1536];
    let mut s = 0x9e37_79b9_7f4a_7c15u64;
    for _ in 0..40 {
        s ^= s << 13;
        s ^= s >> 7;
        s ^= s << 17;
        lengths.push(32 * (s % 65) as usize);
    }
    let q_buf = xorshift_bytes(2 * 2048 + 8, 21);
    let c_buf = xorshift_bytes(2048 + 8, 22);
    for k in tables("dot_u8u4_every_isa_on_block_lengths_and_misalignment") {
        for &n in &lengths {
            // Offsets shift both starts off any 32-byte boundary, independently.
            for (oq, oc) in [(0, 0), (1, 3), (5, 0), (0, 7), (7, 2)] {
                check_dot_u8u4(&k, &q_buf[oq..oq + 2 * n], &c_buf[oc..oc + n]);
            }
        }
    }
}

#[test]
fn dot_u8u4_every_isa_on_every_value() {
    for k in tables("dot_u8u4_every_isa_on_every_value") {
        let name = k.isa.name();
        // Every code byte (so each nibble takes each value with each other one) against
        // query codes that run through every value of 0..=255 several times.
        let c: Vec<u8> = (0..=255u8).collect();
        let q: Vec<u8> = (0..512u32).map(|i| (i * 167 + 13) as u8).collect();
        check_dot_u8u4(&k, &q, &c);
        let c_rev: Vec<u8> = c.iter().rev().copied().collect();
        check_dot_u8u4(&k, &q, &c_rev);
        // The largest terms (255·15 on every dimension): no saturation, no sign trouble
        // from q ≥ 128 or a nibble of 15.
        for n in [32usize, 192, 1536] {
            let got = (k.dot_u8u4)(&vec![255u8; 2 * n], &vec![0xffu8; n]);
            assert_eq!(got, 255 * 15 * 2 * n as u32, "{name} n={n}");
            // Only one nibble set: half the dimensions.
            let got = (k.dot_u8u4)(&vec![255u8; 2 * n], &vec![0xf0u8; n]);
            assert_eq!(got, 255 * 15 * n as u32, "{name} n={n} high");
            let got = (k.dot_u8u4)(&vec![255u8; 2 * n], &vec![0x0fu8; n]);
            assert_eq!(got, 255 * 15 * n as u32, "{name} n={n} low");
        }
        assert_eq!((k.dot_u8u4)(&[], &[]), 0, "{name}");
        assert_eq!((k.dot_u8u4)(&[0; 64], &[0xff; 32]), 0, "{name}");
    }
}

#[test]
fn dot_u8u4_with_other_lengths_reads_only_what_exists() {
    if cfg!(debug_assertions) {
        // Other lengths trip the kernels' debug_assert; release builds skip the terms
        // whose query code does not exist.
        eprintln!("debug build: dot_u8u4 with other lengths skipped");
        return;
    }
    let q_buf = xorshift_bytes(2 * 300, 31);
    let c_buf = xorshift_bytes(300, 32);
    for k in tables("dot_u8u4_with_other_lengths_reads_only_what_exists") {
        // Every `c` length up to 100 and a few around whole blocks, each against `q`
        // shorter than one block, around one block, exactly 2·len, and longer.
        for nc in (0..=100).chain([127, 128, 129, 191, 192, 193, 255, 300]) {
            let q_lengths = [0, 1, 31, 32, 33, 63, 64, 65, 127];
            let q_lengths = q_lengths
                .into_iter()
                .chain([2 * nc, 2 * nc + 1, 2 * nc + 63]);
            for nq in q_lengths {
                let nq = nq.min(q_buf.len());
                check_dot_u8u4(&k, &q_buf[..nq], &c_buf[..nc]);
            }
        }
    }
}

/// `(q, c)` for `dot_u8u4`: 0..=48 blocks of random bytes, `q` twice as long as `c`.
fn u8u4_case() -> impl Strategy<Value = (Vec<u8>, Vec<u8>)> {
    (0usize..=48).prop_flat_map(|blocks| {
        (
            prop::collection::vec(any::<u8>(), 64 * blocks),
            prop::collection::vec(any::<u8>(), 32 * blocks),
        )
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn dot_u8u4_agrees_with_the_unpacked_reference_on_every_isa((q, c) in u8u4_case()) {
        for k in tables_quiet() {
            prop_assert_eq!(
                (k.dot_u8u4)(&q, &c),
                dot_u8u4_reference(&q, &c),
                "{} dot_u8u4, {} code bytes",
                k.isa.name(),
                c.len()
            );
        }
    }
}

/// `dot_bits` independently of the crate: unpack the code bits (bit `i` = bit `i % 8` of
/// byte `i / 8`) and rebuild each query value from its planes, then a plain dot product.
fn dot_bits_reference(planes: &[u8], c: &[u8]) -> u32 {
    let bits = c.len() * 8;
    let nplanes = if c.is_empty() {
        0
    } else {
        (planes.len() / c.len()).min(8)
    };
    let bit = |bytes: &[u8], i: usize| u32::from((bytes[i / 8] >> (i % 8)) & 1);
    (0..bits)
        .map(|i| {
            let q: u32 = (0..nplanes)
                .map(|j| bit(&planes[j * c.len()..], i) << j)
                .sum();
            q * bit(c, i)
        })
        .sum()
}

/// The planes of query values `q` (each < 2^nplanes), in `dot_bits`' layout.
fn to_planes(q: &[u8], nplanes: usize) -> Vec<u8> {
    let n = q.len() / 8;
    let mut planes = vec![0u8; nplanes * n];
    for (i, &v) in q.iter().enumerate() {
        for j in 0..nplanes {
            planes[j * n + i / 8] |= ((v >> j) & 1) << (i % 8);
        }
    }
    planes
}

#[test]
fn dot_bits_every_isa_on_words_planes_and_misalignment() {
    let buf = xorshift_bytes(8 * 1024 + 16, 41);
    let cbuf = xorshift_bytes(1024 + 16, 42);
    // Every whole number of words up to 264 bytes (the SIMD kernels' 64-byte steps, with
    // and without a partial last one: 384-d binary codes are 48 bytes, 768-d 96), then
    // longer ones.
    let lengths = (0usize..=264).step_by(8).chain([384, 512, 1024]);
    for k in tables("dot_bits_every_isa_on_words_planes_and_misalignment") {
        for n in lengths.clone() {
            for nplanes in 1..=8 {
                for (op, oc) in [(0, 0), (1, 3), (7, 0), (0, 5)] {
                    let planes = &buf[op..op + nplanes * n];
                    let c = &cbuf[oc..oc + n];
                    assert_eq!(
                        (k.dot_bits)(planes, c),
                        dot_bits_reference(planes, c),
                        "{} dot_bits, {n} code bytes, {nplanes} planes",
                        k.isa.name()
                    );
                }
            }
        }
        // The largest sum: every bit set in every plane.
        let n = 1024;
        assert_eq!(
            (k.dot_bits)(&vec![0xff; 8 * n], &vec![0xff; n]),
            255 * 8 * n as u32
        );
        // A query value rebuilt from its planes scores as the value.
        let q: Vec<u8> = (0..512u32).map(|i| (i * 37 % 16) as u8).collect();
        let mut c = vec![0u8; 64];
        c[5] = 0b1000_0001;
        let want = u32::from(q[40]) + u32::from(q[47]);
        assert_eq!(
            (k.dot_bits)(&to_planes(&q, 4), &c),
            want,
            "{}",
            k.isa.name()
        );
    }
}

#[test]
fn dot_bits_with_other_lengths_reads_only_what_exists() {
    if cfg!(debug_assertions) {
        eprintln!("debug build: dot_bits with other lengths skipped");
        return;
    }
    let buf = xorshift_bytes(9 * 200, 43);
    let cbuf = xorshift_bytes(200, 44);
    for k in tables("dot_bits_with_other_lengths_reads_only_what_exists") {
        // Every code length to 72 (past one 64-byte step), then some around two and three.
        for nc in (0..=72).chain([127, 128, 129, 135, 191, 192, 193, 200]) {
            for np in [0, 1, 7, nc, nc + 1, 2 * nc + 3, 9 * nc] {
                let np = np.min(buf.len());
                assert_eq!(
                    (k.dot_bits)(&buf[..np], &cbuf[..nc]),
                    dot_bits_reference(&buf[..np], &cbuf[..nc]),
                    "{} {np} plane bytes, {nc} code bytes",
                    k.isa.name()
                );
            }
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn dot_bits_agrees_with_the_unpacked_reference_on_every_isa(
        (q, c, nplanes) in (0usize..=64, 1usize..=8).prop_flat_map(|(words, nplanes)| (
            prop::collection::vec(0u8..=255, 64 * words),
            prop::collection::vec(any::<u8>(), 8 * words),
            Just(nplanes),
        ))
    ) {
        let q: Vec<u8> = q.iter().map(|&v| v & ((1u16 << nplanes) - 1) as u8).collect();
        let planes = to_planes(&q, nplanes);
        let want: u32 = q
            .iter()
            .enumerate()
            .map(|(i, &v)| u32::from(v) * u32::from((c[i / 8] >> (i % 8)) & 1))
            .sum();
        for k in tables_quiet() {
            prop_assert_eq!((k.dot_bits)(&planes, &c), want, "{} dot_bits", k.isa.name());
        }
    }
}

/// The fast-scan sums of 32 rows, independently of the crate: each row's codes unpacked
/// from the nibbles (row `r < 16` in the low nibble of byte `r` of a group, row `r ≥ 16`
/// in the high nibble of byte `r − 16`), looked up in their group's table and summed in
/// u64, over the whole groups both slices hold.
fn fast_scan_reference(codes: &[u8], luts: &[u8]) -> [u32; 32] {
    let groups = codes.len().min(luts.len()) / 16;
    let row_codes = |r: usize| -> Vec<usize> {
        (0..groups)
            .map(|g| {
                let byte = codes[16 * g + r % 16];
                usize::from(if r < 16 { byte & 0x0f } else { byte >> 4 })
            })
            .collect()
    };
    let mut out = [0u32; 32];
    for (r, o) in out.iter_mut().enumerate() {
        let sum: u64 = row_codes(r)
            .into_iter()
            .enumerate()
            .map(|(g, v)| u64::from(luts[16 * g + v]))
            .sum();
        *o = u32::try_from(sum).expect("test sums fit in u32");
    }
    out
}

/// Checks `(k.fast_scan)(codes, luts)` against [`fast_scan_reference`], into an `out`
/// full of garbage (it must be overwritten, not added to).
fn check_fast_scan(k: &Kernels, codes: &[u8], luts: &[u8]) {
    let mut out = [0xdead_beef_u32; 32];
    (k.fast_scan)(codes, luts, &mut out);
    assert_eq!(
        out,
        fast_scan_reference(codes, luts),
        "{} fast_scan, {} code bytes, {} table bytes",
        k.isa.name(),
        codes.len(),
        luts.len()
    );
}

#[test]
fn fast_scan_follows_the_documented_layout() {
    for k in tables("fast_scan_follows_the_documented_layout") {
        let name = k.isa.name();
        // One row at a time picks a non-zero table entry, in the middle one of three
        // groups: only its sum is non-zero.
        for r in 0..32 {
            let mut codes = [0u8; 48];
            codes[16 + r % 16] = if r < 16 { 0x05 } else { 0x50 };
            let mut luts = [0u8; 48];
            luts[16 + 5] = 100;
            let mut out = [7u32; 32];
            (k.fast_scan)(&codes, &luts, &mut out);
            let mut want = [0u32; 32];
            want[r] = 100;
            assert_eq!(out, want, "{name} row {r}");
            assert_eq!(
                fast_scan_reference(&codes, &luts),
                want,
                "reference row {r}"
            );
        }
        // Table g maps v to v + g mod 16: row j < 16 has code j in every group, row
        // j + 16 has 15 − j, so the sums are known in closed form.
        for groups in [1usize, 2, 3, 7, 64, 513] {
            let codes: Vec<u8> = (0..16 * groups)
                .map(|i| (i % 16) as u8 | ((15 - i % 16) as u8) << 4)
                .collect();
            let luts: Vec<u8> = (0..16 * groups)
                .map(|i| (i % 16 + i / 16 % 16) as u8)
                .collect();
            let offsets: u32 = (0..groups).map(|g| (g % 16) as u32).sum();
            let mut out = [0u32; 32];
            (k.fast_scan)(&codes, &luts, &mut out);
            for (r, &got) in out.iter().enumerate() {
                let code = (if r < 16 { r } else { 31 - r }) as u32;
                assert_eq!(
                    got,
                    code * groups as u32 + offsets,
                    "{name} {groups} groups, row {r}"
                );
            }
        }
        // No groups: every sum is 0.
        let mut out = [1u32; 32];
        (k.fast_scan)(&[], &[], &mut out);
        assert_eq!(out, [0; 32], "{name}");
    }
}

#[test]
fn fast_scan_every_isa_on_group_counts_and_misalignment() {
    // Around the SIMD steps (one, two, four groups) and the 16-bit flush of the vector
    // kernels (every 256 steps: 256 groups for NEON, 512 for AVX2, 1 024 for AVX-512).
    let counts = [
        0usize, 1, 2, 3, 4, 5, 6, 7, 8, 9, 31, 32, 33, 255, 256, 257, 511, 512, 513, 600, 1023,
        1024, 1025, 1027, 1100, 2047, 2048, 2049, 2100,
    ];
    let codes_buf = xorshift_bytes(16 * 2100 + 8, 51);
    let luts_buf = xorshift_bytes(16 * 2100 + 8, 52);
    for k in tables("fast_scan_every_isa_on_group_counts_and_misalignment") {
        for &groups in &counts {
            let n = 16 * groups;
            // Offsets shift both starts off any 16- or 32-byte boundary, independently.
            for (oc, ol) in [(0, 0), (1, 3), (5, 0), (0, 7), (8, 8)] {
                check_fast_scan(&k, &codes_buf[oc..oc + n], &luts_buf[ol..ol + n]);
            }
        }
    }
}

#[test]
fn fast_scan_every_isa_on_the_largest_sums() {
    // Every table entry 255: each row gains 255 a group whatever its codes, the worst case
    // for 16-bit accumulators. 2 100 groups is more than two AVX-512 flushes (1 024 groups
    // each), four AVX2 ones (512) and eight NEON ones (256), and 255·2 100 = 535 500 needs
    // more than 16 bits.
    for k in tables("fast_scan_every_isa_on_the_largest_sums") {
        let name = k.isa.name();
        for groups in [
            255usize, 256, 257, 300, 511, 512, 513, 1023, 1024, 1025, 1100, 2048, 2049, 2100,
        ] {
            let luts = vec![255u8; 16 * groups];
            for codes in [
                vec![0x00u8; 16 * groups],
                vec![0xffu8; 16 * groups],
                xorshift_bytes(16 * groups, groups as u64),
            ] {
                let mut out = [0u32; 32];
                (k.fast_scan)(&codes, &luts, &mut out);
                assert_eq!(out, [255 * groups as u32; 32], "{name} {groups} groups");
            }
        }
        // Only the entries 15 (high nibbles of 0xf0) are 255: rows 16..32 get them all,
        // rows 0..16 (code 0, entry 0) nothing.
        let groups = 1100;
        let luts: Vec<u8> = (0..16 * groups)
            .map(|i| if i % 16 == 15 { 255 } else { 0 })
            .collect();
        let mut out = [0u32; 32];
        (k.fast_scan)(&vec![0xf0u8; 16 * groups], &luts, &mut out);
        for (r, &got) in out.iter().enumerate() {
            let want = if r < 16 { 0 } else { 255 * groups as u32 };
            assert_eq!(got, want, "{name} row {r}");
        }
    }
}

#[test]
fn fast_scan_with_other_lengths_reads_only_whole_groups() {
    if cfg!(debug_assertions) {
        // Other lengths trip the kernels' debug_assert; release builds use the whole
        // groups both slices hold.
        eprintln!("debug build: fast_scan with other lengths skipped");
        return;
    }
    let codes_buf = xorshift_bytes(16 * 40, 53);
    let luts_buf = xorshift_bytes(16 * 40, 54);
    for k in tables("fast_scan_with_other_lengths_reads_only_whole_groups") {
        // Every `codes` length up to 100 and a few around 32 and 33 groups, each against
        // tables shorter, around one and two groups, of the same length and longer.
        for nc in (0usize..=100).chain([511, 512, 513, 527, 528, 529, 575, 576, 577, 640]) {
            let nl_lengths = [0, 1, 15, 16, 17, 31, 33, 47];
            let nl_lengths = nl_lengths.into_iter().chain([
                nc.saturating_sub(1),
                nc,
                nc + 1,
                nc + 15,
                nc + 16,
                2 * nc + 5,
            ]);
            for nl in nl_lengths {
                let nl = nl.min(luts_buf.len());
                // Both ways round: codes longer than the tables and tables longer.
                check_fast_scan(&k, &codes_buf[..nc], &luts_buf[..nl]);
                check_fast_scan(&k, &codes_buf[..nl], &luts_buf[..nc]);
            }
        }
    }
}

/// `(codes, luts)` for `fast_scan`: 0..=1 100 groups of random codes and table entries
/// (past 512 groups the AVX2 kernel flushes its 16-bit sums at least once, past 1 024 the
/// AVX-512 kernel).
fn fast_scan_case() -> impl Strategy<Value = (Vec<u8>, Vec<u8>)> {
    (0usize..=1100).prop_flat_map(|groups| {
        (
            prop::collection::vec(any::<u8>(), 16 * groups),
            prop::collection::vec(any::<u8>(), 16 * groups),
        )
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn fast_scan_agrees_with_the_unpacked_reference_on_every_isa(
        (codes, luts) in fast_scan_case()
    ) {
        let want = fast_scan_reference(&codes, &luts);
        for k in tables_quiet() {
            let mut out = [u32::MAX; 32];
            (k.fast_scan)(&codes, &luts, &mut out);
            prop_assert_eq!(out, want, "{} fast_scan, {} bytes", k.isa.name(), codes.len());
        }
    }
}

#[test]
fn kernels_returns_the_best_available_isa() {
    let available = available_isas();
    eprintln!(
        "available: {:?}; kernels() uses {}",
        available.iter().map(|isa| isa.name()).collect::<Vec<_>>(),
        kernels().isa.name()
    );
    assert_eq!(available.first(), Some(&Isa::Scalar));
    assert!(available.contains(&kernels().isa));
    if std::env::var_os("NUSTERDB_FORCE_ISA").is_none() {
        // `available_isas` lists in increasing preference, so the best is last.
        assert_eq!(Some(&kernels().isa), available.last());
    }
    #[cfg(target_arch = "x86_64")]
    {
        let has_avx2 = is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma");
        assert_eq!(available.contains(&Isa::Avx2Fma), has_avx2);
        assert_eq!(
            available.contains(&Isa::Avx512),
            is_x86_feature_detected!("avx512f")
        );
    }
}

/// Runs [`forced_isa_child`] in a fresh process of this test binary with
/// `NUSTERDB_FORCE_ISA` set, so the real environment path is tested without racing
/// other tests over the process environment or the `OnceLock`.
fn kernels_isa_with_forced(value: &str) -> String {
    let exe = std::env::current_exe().unwrap();
    let out = Command::new(exe)
        .args(["--exact", "forced_isa_child", "--ignored", "--nocapture"])
        .args(["--test-threads", "1"])
        .env("NUSTERDB_FORCE_ISA", value)
        .env("NUSTERDB_TEST_REPORT_ISA", "1")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "child failed: {out:?}");
    stdout
        .lines()
        .find_map(|l| l.split_once("chosen isa: "))
        .map(|(_, isa)| isa.trim().to_string())
        .unwrap_or_else(|| panic!("no report in child output: {stdout}"))
}

#[test]
#[ignore = "helper: run by force_isa_environment_variable in a child process"]
fn forced_isa_child() {
    if std::env::var_os("NUSTERDB_TEST_REPORT_ISA").is_some() {
        println!("chosen isa: {}", kernels().isa.name());
    }
}

#[test]
fn force_isa_environment_variable() {
    let available = available_isas();
    let best = *available.last().unwrap();
    for &isa in &available {
        assert_eq!(kernels_isa_with_forced(isa.name()), isa.name());
    }
    if available.contains(&Isa::Avx2Fma) {
        assert_eq!(kernels_isa_with_forced("avx2"), "avx2+fma");
        assert_eq!(kernels_isa_with_forced("AVX2"), "avx2+fma");
    }
    // Unknown values and ISAs this CPU cannot run fall back to the best.
    assert_eq!(kernels_isa_with_forced("no-such-isa"), best.name());
    assert_eq!(kernels_isa_with_forced(""), best.name());
    for isa in [Isa::Avx512, Isa::Neon, Isa::Avx2Fma] {
        if !available.contains(&isa) {
            assert_eq!(kernels_isa_with_forced(isa.name()), best.name());
            eprintln!(
                "forcing {} (not runnable here) falls back to {}",
                isa.name(),
                best.name()
            );
        }
    }
}
