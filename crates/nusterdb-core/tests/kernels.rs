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

/// Checks all six kernels of `k` on one pair of equal-length vectors.
fn check_all(k: &Kernels, a: &[f32], b: &[f32]) {
    let n = a.len();
    let isa = k.isa;
    let l2 = reference(a, b, |x, y| (x - y) * (x - y));
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

/// [`tables`] without the report (the proptest body runs hundreds of times).
fn tables_quiet() -> Vec<Kernels> {
    available_isas()
        .into_iter()
        .filter_map(Kernels::for_isa)
        .collect()
}

/// Deterministic xorshift vectors in [-100, 100), so every length is covered for sure.
fn xorshift_vec(n: usize, seed: u64) -> Vec<f32> {
    let mut s = seed | 1;
    (0..n)
        .map(|_| {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            ((s >> 40) as f32 / (1u64 << 24) as f32 * 2.0 - 1.0) * 100.0
        })
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
