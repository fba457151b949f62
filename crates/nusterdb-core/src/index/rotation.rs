//! The random rotation of RaBitQ codes and the 1-bit code of a rotated row, shared by
//! the HNSW index's codes (`hnsw/rabitq.rs`, which documents the scheme) and the IVF
//! lists' (`ivf/codes.rs`).

use crate::config::rotated_dim;
use crate::rng::SplitMix64;

/// Seed of the rotation's signs (with `P` mixed in). Changing it changes every code: the
/// codes file's scheme would need a new version.
const ROTATION_SEED: u64 = 0x5261_4269_7451_0001;

/// The random rotation `R` for rows of `dim` components.
#[derive(Clone, Debug)]
pub(crate) struct Rotation {
    dim: usize,
    /// `P`.
    p: usize,
    /// `D₁, D₂, D₃` as `±1.0`, `P` each.
    signs: Vec<f32>,
}

impl Rotation {
    pub(crate) fn new(dim: usize) -> Self {
        let p = rotated_dim(dim);
        Self::seeded(dim, ROTATION_SEED ^ (p as u64).rotate_left(17))
    }

    /// A rotation with signs drawn from `seed` (tests average over many of them).
    pub(crate) fn seeded(dim: usize, seed: u64) -> Self {
        let p = rotated_dim(dim);
        let mut rng = SplitMix64::new(seed);
        let signs = (0..3 * p)
            .map(|_| if rng.next_u64() >> 63 == 1 { 1.0 } else { -1.0 })
            .collect();
        Self { dim, p, signs }
    }

    /// `P`.
    pub(crate) fn padded(&self) -> usize {
        self.p
    }

    /// `out = R·(x − center)` (`center` may be empty: no centring; components past
    /// either slice count as 0).
    pub(crate) fn apply(&self, x: &[f32], center: &[f32], out: &mut Vec<f32>) {
        out.clear();
        out.extend(
            (0..self.dim)
                .map(|i| x.get(i).copied().unwrap_or(0.0) - center.get(i).copied().unwrap_or(0.0)),
        );
        out.resize(self.p, 0.0);
        for signs in self.signs.chunks_exact(self.p) {
            for (v, s) in out.iter_mut().zip(signs) {
                *v *= s;
            }
            fwht(out);
        }
        // Three unnormalised transforms scale by P^{3/2}.
        let scale = 1.0 / (self.p as f32 * (self.p as f32).sqrt());
        for v in out.iter_mut() {
            *v *= scale;
        }
    }
}

/// The unnormalised Walsh–Hadamard transform of `a` (length a power of two), in place.
fn fwht(a: &mut [f32]) {
    let n = a.len();
    let mut h = 1;
    while h < n {
        for block in a.chunks_exact_mut(2 * h) {
            let (lo, hi) = block.split_at_mut(h);
            for (x, y) in lo.iter_mut().zip(hi.iter_mut()) {
                let (u, v) = (*x, *y);
                *x = u + v;
                *y = u - v;
            }
        }
        h *= 2;
    }
}

/// Codes the rotated row `y` into `out` (`P / 8` bytes, bit `i` = bit `i % 8` of byte
/// `i / 8`): the per-row numbers `[‖y‖, 1/⟨x̄, o⟩, ones, ‖y‖²]` (`1/⟨x̄, o⟩` is 0 for
/// the zero row, whose score is then that of its centre, exact). The HNSW codes
/// then add the centroid's part (see its module docs); an IVF list codes its rows
/// the same way against its own centroid (`ivf/codes.rs`).
pub(crate) fn encode(y: &[f32], out: &mut [u8]) -> [f32; 4] {
    out.fill(0);
    let (mut norm2, mut abs_sum, mut ones) = (0f64, 0f64, 0u32);
    for (i, &v) in y.iter().enumerate() {
        norm2 += f64::from(v) * f64::from(v);
        abs_sum += f64::from(v.abs());
        if v > 0.0 {
            if let Some(byte) = out.get_mut(i / 8) {
                *byte |= 1 << (i % 8);
                ones += 1;
            }
        }
    }
    let norm = norm2.sqrt();
    let inv = if abs_sum > 0.0 {
        (y.len() as f64).sqrt() * norm / abs_sum
    } else {
        0.0
    };
    [norm as f32, inv as f32, ones as f32, norm2 as f32]
}
