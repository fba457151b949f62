//! Distance kernels: the raw per-pair arithmetic (Σ(a−b)², Σ(a−s·b)², Σab, Σ|a−b|, …)
//! on `f32` slices, in one portable version and SIMD versions for AVX2+FMA, AVX-512F
//! and NEON.
//!
//! This module only does arithmetic on equal-length slices. It does not validate
//! dimensions (callers do, see `metric.rs`), does not take square roots or turn
//! dot products into cosine distances, and knows nothing of metrics' names.
//!
//! Callers use [`kernels()`], a table of safe `fn` pointers chosen once per process
//! for the best instruction set this CPU can run, so no feature check sits in any
//! inner loop. [`Kernels::for_isa`] hands out the other runnable tables, for tests
//! and benchmarks.

/// Defines a private safe wrapper around an `unsafe` `#[target_feature]` kernel of an
/// architecture module. The wrapper adds the length `debug_assert` and is what goes into
/// a [`Kernels`] table; use it only inside the function that builds that table after
/// detecting the kernel's features.
#[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
macro_rules! safe_wrapper {
    ($name:ident = $kernel:ident($a:ident, $b:ident) -> $ret:ty) => {
        fn $name($a: &[f32], $b: &[f32]) -> $ret {
            debug_assert_eq!(
                $a.len(),
                $b.len(),
                "distance kernels need equal-length slices"
            );
            // SAFETY: this private wrapper is only reachable through the kernel table of
            // its ISA, which is built only after runtime detection found the features
            // the kernel is compiled for.
            unsafe { $kernel($a, $b) }
        }
    };
    ($name:ident = $kernel:ident($a:ident, $b:ident, $s:ident: $st:ty) -> $ret:ty) => {
        fn $name($a: &[f32], $b: &[f32], $s: $st) -> $ret {
            debug_assert_eq!(
                $a.len(),
                $b.len(),
                "distance kernels need equal-length slices"
            );
            // SAFETY: as for the two-slice form: reachable only through the kernel table
            // of its ISA, built only after runtime detection found the kernel's features.
            unsafe { $kernel($a, $b, $s) }
        }
    };
    ($name:ident = $kernel:ident($a:ident) -> $ret:ty) => {
        fn $name($a: &[f32]) -> $ret {
            // SAFETY: this private wrapper is only reachable through the kernel table of
            // its ISA, built only after runtime detection found the kernel's features.
            unsafe { $kernel($a) }
        }
    };
}

mod scalar;

#[cfg(target_arch = "aarch64")]
mod aarch64;
#[cfg(target_arch = "x86_64")]
mod x86;

use std::sync::OnceLock;

/// The environment variable that forces an instruction set (see [`kernels()`]).
const FORCE_ISA_ENV: &str = "NUSTERDB_FORCE_ISA";

/// Instruction sets a kernel table can use.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Isa {
    Scalar,
    Avx2Fma,
    Avx512,
    Neon,
}

impl Isa {
    /// Every instruction set, from least to most preferred.
    const BY_PREFERENCE: [Isa; 4] = [Isa::Scalar, Isa::Neon, Isa::Avx2Fma, Isa::Avx512];

    /// A short stable name: "scalar", "avx2+fma", "avx512" or "neon".
    pub fn name(self) -> &'static str {
        match self {
            Isa::Scalar => "scalar",
            Isa::Avx2Fma => "avx2+fma",
            Isa::Avx512 => "avx512",
            Isa::Neon => "neon",
        }
    }

    /// Higher is preferred when several are runnable.
    fn rank(self) -> u8 {
        match self {
            Isa::Scalar => 0,
            Isa::Neon => 1,
            Isa::Avx2Fma => 2,
            Isa::Avx512 => 3,
        }
    }

    /// Parses a `NUSTERDB_FORCE_ISA` value, ignoring case and surrounding blanks.
    /// Accepts each [`Isa::name`] and the short forms "avx2" and "avx512f".
    fn parse(s: &str) -> Option<Isa> {
        match s.trim().to_ascii_lowercase().as_str() {
            "scalar" => Some(Isa::Scalar),
            "avx2" | "avx2+fma" | "avx2fma" => Some(Isa::Avx2Fma),
            "avx512" | "avx512f" => Some(Isa::Avx512),
            "neon" => Some(Isa::Neon),
            _ => None,
        }
    }
}

/// One set of kernels, all for the same ISA. All inputs: equal-length slices (checked
/// with `debug_assert`; callers check dimensions before). Results in `f32`.
///
/// Given slices of unequal length anyway (release builds), a kernel reads only the
/// common prefix: wrong input gives a wrong number, never an out-of-bounds read.
#[derive(Clone, Copy, Debug)]
pub struct Kernels {
    /// The instruction set every kernel of this table uses.
    pub isa: Isa,
    /// Σ (a−b)².
    pub l2_squared: fn(&[f32], &[f32]) -> f32,
    /// Σ (a − s·b)²: the squared distance between `a` and `b` scaled by `s`, without forming
    /// `s·b` (cosine as a difference of normalised vectors: ‖q̂ − x/‖x‖‖² = 2 − 2·cos).
    /// For a finite `s` (an infinite one may give NaN where the exact answer is +∞).
    pub l2_scaled: fn(&[f32], &[f32], f32) -> f32,
    /// Σ a·b.
    pub dot: fn(&[f32], &[f32]) -> f32,
    /// (Σ a·b, Σ a², Σ b²) in one pass over both slices.
    #[allow(clippy::type_complexity)] // the signature itself is the documented API
    pub cosine_parts: fn(&[f32], &[f32]) -> (f32, f32, f32),
    /// Σ |a−b|.
    pub l1: fn(&[f32], &[f32]) -> f32,
    /// max |a−b|, 0 for empty slices.
    pub linf: fn(&[f32], &[f32]) -> f32,
    /// Σ a².
    pub norm_squared: fn(&[f32]) -> f32,
    /// Σ q·c for 8-bit codes `c` (quantized vectors; lengths as for the others).
    pub dot_u8: fn(&[f32], &[u8]) -> f32,
    /// Σ a·b of two 8-bit code vectors, exact (u32 arithmetic: exact below 66 051
    /// components, wrapping beyond).
    pub dot_u8u8: fn(&[u8], &[u8]) -> u32,
    /// Σ q·c for 8-bit query codes `q` and 4-bit codes `c` packed two per byte in blocks of
    /// 32 bytes (64 dimensions): byte `j` of block `b` holds dimension `64b + j` in its low
    /// nibble and `64b + 32 + j` in its high nibble. Exact (u32).
    ///
    /// Unlike the others, the slices differ in length: `q.len() == 2 * c.len()` with
    /// `c.len()` a multiple of 32 (checked with `debug_assert`). Given other lengths
    /// anyway, a kernel skips the terms whose `q` index is past `q.len()` (and bytes of
    /// `c` past its end) and never reads out of bounds. The sum is exact below about
    /// 1.1 million dimensions (at most 255·15 per dimension), wrapping beyond.
    pub dot_u8u4: fn(&[u8], &[u8]) -> u32,
    /// Σ_j 2^j · popcount(c ∧ p_j): the dot product of 1-bit codes `c` (bit `i` of the
    /// row is bit `i % 8` of byte `i / 8`) with a query of small unsigned integers given
    /// as its bit planes `p_0, p_1, …` (`p_j` = bit `j` of every query component, in the
    /// same layout), laid one after another in `planes`. Exact (u32).
    ///
    /// The slices differ in length: `planes.len()` is a multiple (1 to 8) of `c.len()`,
    /// and `c.len()` a multiple of 8 (checked with `debug_assert`). Given other lengths
    /// anyway, a kernel uses the whole planes of `c.len()` bytes there are (at most 8)
    /// and never reads out of bounds.
    pub dot_bits: fn(&[u8], &[u8]) -> u32,
    /// Fast-scan: the sums of 4-bit lookups for a block of 32 rows. A row is coded as
    /// `groups` 4-bit sub-codes; `luts` holds one 16-entry u8 table per group
    /// (`luts[16·g + v]` is group `g`'s value for code `v`) and `codes` the block's codes
    /// group by group, 16 bytes a group: byte `j` of group `g` holds row `j`'s code in its
    /// low nibble and row `j + 16`'s in its high nibble. `out[r] = Σ_g luts[16·g + code_g(r)]`,
    /// exact (u32).
    ///
    /// `codes.len() == luts.len()`, a multiple of 16 (checked with `debug_assert`). Given
    /// other lengths anyway, a kernel uses the whole groups both slices hold and never reads
    /// out of bounds.
    ///
    /// `out` is overwritten, not accumulated into. The sums are exact up to 16 843 009
    /// groups (at most 255 a group), wrapping beyond.
    pub fast_scan: fn(codes: &[u8], luts: &[u8], out: &mut [u32; 32]),
}

/// The length contract of [`Kernels::dot_bits`], checked in debug builds only.
#[inline]
fn debug_assert_bits_lengths(planes: &[u8], c: &[u8]) {
    debug_assert!(
        c.len().is_multiple_of(8)
            && planes.len().is_multiple_of(c.len().max(1))
            && planes.len() <= 8 * c.len(),
        "dot_bits needs whole 64-bit words and 1 to 8 planes: {} plane bytes, {} code bytes",
        planes.len(),
        c.len()
    );
}

/// Bytes per block of 4-bit codes in [`Kernels::dot_u8u4`]'s layout (64 dimensions).
const U4_BLOCK: usize = 32;

/// The length contract of [`Kernels::dot_u8u4`], checked in debug builds only (release
/// kernels handle any lengths safely, see there).
#[inline]
fn debug_assert_u4_lengths(q: &[u8], c: &[u8]) {
    debug_assert_eq!(
        q.len(),
        2 * c.len(),
        "dot_u8u4 needs two query codes per packed byte"
    );
    debug_assert!(
        c.len().is_multiple_of(U4_BLOCK),
        "dot_u8u4 needs whole blocks of {U4_BLOCK} packed bytes, got {}",
        c.len()
    );
}

/// Bytes per group in [`Kernels::fast_scan`]: the 16 code bytes of a block of 32 rows
/// (two nibbles a byte), and equally the 16 entries of the group's table.
const FAST_SCAN_GROUP: usize = 16;

/// The length contract of [`Kernels::fast_scan`], checked in debug builds only (release
/// kernels use the whole groups both slices hold, see there).
#[inline]
fn debug_assert_fast_scan_lengths(codes: &[u8], luts: &[u8]) {
    debug_assert!(
        codes.len() == luts.len() && codes.len().is_multiple_of(FAST_SCAN_GROUP),
        "fast_scan needs one {FAST_SCAN_GROUP}-entry table per {FAST_SCAN_GROUP}-byte group \
         of codes: {} code bytes, {} table bytes",
        codes.len(),
        luts.len()
    );
}

impl Kernels {
    /// The kernels for `isa` if this CPU can run them (runtime detection), else `None`.
    pub fn for_isa(isa: Isa) -> Option<Kernels> {
        match isa {
            Isa::Scalar => Some(Kernels::scalar()),
            // Each architecture module detects its features itself, so a SIMD table can
            // only be obtained on a CPU that runs it.
            #[cfg(target_arch = "x86_64")]
            Isa::Avx2Fma => x86::avx2_fma(),
            #[cfg(target_arch = "x86_64")]
            Isa::Avx512 => x86::avx512(),
            #[cfg(target_arch = "aarch64")]
            Isa::Neon => aarch64::neon(),
            // The other architectures' ISAs.
            _ => None,
        }
    }

    /// The scalar kernels (always available).
    pub fn scalar() -> Kernels {
        Kernels {
            isa: Isa::Scalar,
            l2_squared: scalar::l2_squared,
            l2_scaled: scalar::l2_scaled,
            dot: scalar::dot,
            cosine_parts: scalar::cosine_parts,
            l1: scalar::l1,
            linf: scalar::linf,
            norm_squared: scalar::norm_squared,
            dot_u8: scalar::dot_u8,
            dot_u8u8: scalar::dot_u8u8,
            dot_u8u4: scalar::dot_u8u4,
            dot_bits: scalar::dot_bits,
            fast_scan: scalar::fast_scan,
        }
    }
}

/// The best kernels for this CPU, chosen once on first use: Avx512 > Avx2Fma > Neon > Scalar.
///
/// The environment variable `NUSTERDB_FORCE_ISA` = `scalar` | `avx2` | `avx512` | `neon`
/// (case-insensitive; `avx2+fma` also works), if set when this is first called and
/// runnable on this CPU, forces that choice, so every path can be tested from Python.
/// An unknown value, or an ISA this CPU cannot run, is ignored: the best is used, since
/// a typo in a tuning knob should not take the database down or slow it to scalar.
/// Compare `kernels().isa` with the request to notice that.
pub fn kernels() -> &'static Kernels {
    static KERNELS: OnceLock<Kernels> = OnceLock::new();
    KERNELS.get_or_init(|| {
        let forced = std::env::var(FORCE_ISA_ENV).ok();
        let isa = choose(forced.as_deref(), &available_isas());
        // `choose` only returns runnable ISAs; scalar is the safe answer regardless.
        Kernels::for_isa(isa).unwrap_or_else(Kernels::scalar)
    })
}

/// Every ISA this CPU can run, scalar first, then in increasing order of preference
/// (so the last one is what [`kernels()`] picks unless forced).
pub fn available_isas() -> Vec<Isa> {
    Isa::BY_PREFERENCE
        .into_iter()
        .filter(|&isa| Kernels::for_isa(isa).is_some())
        .collect()
}

/// The ISA to use: `forced` if it names one of `available`, else the most preferred of
/// `available` (unknown and unavailable forced values fall back to the best), else
/// scalar. Pure, so the `NUSTERDB_FORCE_ISA` logic is testable without touching the
/// process environment.
fn choose(forced: Option<&str>, available: &[Isa]) -> Isa {
    if let Some(isa) = forced.and_then(Isa::parse) {
        if available.contains(&isa) {
            return isa;
        }
    }
    available
        .iter()
        .copied()
        .max_by_key(|isa| isa.rank())
        .unwrap_or(Isa::Scalar)
}

#[cfg(test)]
mod tests {
    use super::*;

    const X86_AVX2: [Isa; 2] = [Isa::Scalar, Isa::Avx2Fma];
    const X86_ALL: [Isa; 3] = [Isa::Scalar, Isa::Avx2Fma, Isa::Avx512];

    #[test]
    fn choose_defaults_to_best() {
        assert_eq!(choose(None, &X86_AVX2), Isa::Avx2Fma);
        assert_eq!(choose(None, &X86_ALL), Isa::Avx512);
        // The order of `available` does not matter.
        assert_eq!(
            choose(None, &[Isa::Avx512, Isa::Scalar, Isa::Avx2Fma]),
            Isa::Avx512
        );
        assert_eq!(choose(None, &[Isa::Scalar, Isa::Neon]), Isa::Neon);
        assert_eq!(choose(None, &[Isa::Scalar]), Isa::Scalar);
        assert_eq!(choose(None, &[]), Isa::Scalar);
    }

    #[test]
    fn choose_honours_runnable_forced_values() {
        assert_eq!(choose(Some("scalar"), &X86_ALL), Isa::Scalar);
        assert_eq!(choose(Some("avx2"), &X86_ALL), Isa::Avx2Fma);
        assert_eq!(choose(Some("avx2+fma"), &X86_ALL), Isa::Avx2Fma);
        assert_eq!(choose(Some(" AVX2 \n"), &X86_ALL), Isa::Avx2Fma);
        assert_eq!(choose(Some("avx512"), &X86_ALL), Isa::Avx512);
        assert_eq!(choose(Some("AVX512F"), &X86_ALL), Isa::Avx512);
        assert_eq!(choose(Some("neon"), &[Isa::Scalar, Isa::Neon]), Isa::Neon);
        assert_eq!(
            choose(Some("Scalar"), &[Isa::Scalar, Isa::Neon]),
            Isa::Scalar
        );
    }

    #[test]
    fn choose_falls_back_to_best_for_unknown_or_unrunnable() {
        assert_eq!(choose(Some("avx512"), &X86_AVX2), Isa::Avx2Fma);
        assert_eq!(choose(Some("neon"), &X86_AVX2), Isa::Avx2Fma);
        assert_eq!(choose(Some("avx2"), &[Isa::Scalar, Isa::Neon]), Isa::Neon);
        assert_eq!(choose(Some(""), &X86_ALL), Isa::Avx512);
        assert_eq!(choose(Some("sse9"), &X86_ALL), Isa::Avx512);
        assert_eq!(choose(Some("avx"), &X86_AVX2), Isa::Avx2Fma);
    }

    #[test]
    fn names_round_trip_through_parse() {
        for isa in Isa::BY_PREFERENCE {
            assert_eq!(Isa::parse(isa.name()), Some(isa));
        }
    }

    #[test]
    fn available_isas_start_with_scalar_and_each_table_matches_its_isa() {
        let available = available_isas();
        assert_eq!(available.first(), Some(&Isa::Scalar));
        for isa in Isa::BY_PREFERENCE {
            match Kernels::for_isa(isa) {
                Some(k) => {
                    assert_eq!(k.isa, isa);
                    assert!(available.contains(&isa));
                }
                None => assert!(!available.contains(&isa)),
            }
        }
        assert!(available.contains(&kernels().isa));
    }
}
