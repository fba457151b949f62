//! The calibration saved in the store (key `0x00` `calibration`), so a reopened
//! database, a snapshot restored from it and a follower answer recall targets without
//! measuring again.
//!
//! The record holds every kept curve with the change-log position it was measured at,
//! and the sample of queries searches asked. An open reads it and counts, from the
//! change log, the records changed since each curve's position: a curve whose entries
//! are gone (a seal deleted them) or that a `clear` followed is dropped, the others
//! carry that count towards the rule that measures again after a tenth of the rows
//! changed. It is a cache: a record that does not decode is ignored (and reported by
//! `verify`), and a failed save leaves the curves in memory.
//!
//! Layout (little-endian): version u8; curves u64, each: k u32, band u8, knob u8
//! (0 ef, 1 nprobe) and its bound u32, quantized u8 (0 unset, 1 false, 2 true), live
//! u64, log position u64, from_searches u8, points u64 × (value u32, recall f64 bits),
//! steps u64 × (nprobe u32, has reach u8, reach f32 bits, recall f64 bits, its standard
//! error f64 bits); then
//! queries seen u64, dimension u32, queries u64 × dimension f32. Version 1 (before IVF
//! curves had steps) had no steps; it is read as curves without them.

use std::sync::Arc;

use super::{Curve, Curves, Knob, Step, BANDS};
use crate::storage::changelog::read_tail;
use crate::storage::codec::{DecodeResult, Reader};
use crate::storage::Store;

const VERSION: u8 = 2;

/// The record of `curves` (queries of `dim` floats).
pub fn encode(curves: &Curves, dim: usize) -> Vec<u8> {
    let mut out = vec![VERSION];
    out.extend_from_slice(&(curves.kept.len() as u64).to_le_bytes());
    for c in &curves.kept {
        out.extend_from_slice(&(c.k as u32).to_le_bytes());
        out.push(c.band as u8);
        let (kind, bound) = match c.knob {
            Knob::Ef(v) => (0u8, v),
            Knob::Nprobe(v) => (1u8, v),
        };
        out.push(kind);
        out.extend_from_slice(&(bound as u32).to_le_bytes());
        out.push(match c.quantized {
            None => 0,
            Some(false) => 1,
            Some(true) => 2,
        });
        out.extend_from_slice(&(c.live as u64).to_le_bytes());
        out.extend_from_slice(&c.position.to_le_bytes());
        out.push(u8::from(c.from_searches));
        out.extend_from_slice(&(c.points.len() as u64).to_le_bytes());
        for &(v, r) in &c.points {
            out.extend_from_slice(&(v as u32).to_le_bytes());
            out.extend_from_slice(&r.to_bits().to_le_bytes());
        }
        out.extend_from_slice(&(c.steps.len() as u64).to_le_bytes());
        for s in &c.steps {
            out.extend_from_slice(&(s.nprobe as u32).to_le_bytes());
            out.push(u8::from(s.reach.is_some()));
            out.extend_from_slice(&s.reach.unwrap_or(0.0).to_bits().to_le_bytes());
            out.extend_from_slice(&s.recall.to_bits().to_le_bytes());
            out.extend_from_slice(&s.error.to_bits().to_le_bytes());
        }
    }
    out.extend_from_slice(&curves.seen.to_le_bytes());
    out.extend_from_slice(&(dim as u32).to_le_bytes());
    out.extend_from_slice(&(curves.asked.len() as u64).to_le_bytes());
    for q in &curves.asked {
        for v in q {
            out.extend_from_slice(&v.to_le_bytes());
        }
    }
    out
}

/// Decodes a record written for queries of `dim` floats (curves as measured: no
/// change carried yet).
///
/// # Errors
/// A detail naming what is wrong (every length and code is checked).
pub fn decode(bytes: &[u8], dim: usize) -> DecodeResult<Curves> {
    let mut r = Reader::new(bytes);
    let v = r.u8("calibration version")?;
    if v != VERSION && v != 1 {
        return Err(format!("calibration: version {v} not supported"));
    }
    let n = r.count(24, "calibration curves")?;
    let mut kept = Vec::with_capacity(n);
    for _ in 0..n {
        let k = r.u32("curve k")? as usize;
        let band = r.u8("curve band")? as usize;
        if band >= BANDS.len() || k == 0 {
            return Err(format!("calibration: curve k {k}, band {band}"));
        }
        let knob = match (r.u8("curve knob")?, r.u32("curve knob bound")? as usize) {
            (0, v) if v >= 1 => Knob::Ef(v),
            (1, v) if v >= 1 => Knob::Nprobe(v),
            (kind, v) => return Err(format!("calibration: knob {kind} bound {v}")),
        };
        let quantized = match r.u8("curve quantized")? {
            0 => None,
            1 => Some(false),
            2 => Some(true),
            q => return Err(format!("calibration: quantized code {q}")),
        };
        let live = r.u64("curve live rows")? as usize;
        let position = r.u64("curve position")?;
        let from_searches = r.bool("curve from searches")?;
        let m = r.count(12, "curve points")?;
        let mut points = Vec::with_capacity(m);
        for _ in 0..m {
            let value = r.u32("point value")? as usize;
            let recall = f64::from_bits(r.u64("point recall")?);
            if !(0.0..=1.0).contains(&recall) || value == 0 {
                return Err(format!("calibration: point ({value}, {recall})"));
            }
            points.push((value, recall));
        }
        if points.is_empty() || points.windows(2).any(|w| w[0].0 >= w[1].0) {
            return Err("calibration: a curve's points are empty or not ascending".into());
        }
        let m = if v == 1 {
            0
        } else {
            r.count(25, "curve steps")?
        };
        let mut steps = Vec::with_capacity(m);
        for _ in 0..m {
            let nprobe = r.u32("step nprobe")? as usize;
            let has = r.bool("step has reach")?;
            let reach = f32::from_bits(r.u32("step reach")?);
            let recall = f64::from_bits(r.u64("step recall")?);
            let error = f64::from_bits(r.u64("step error")?);
            let sound = nprobe > 0
                && (0.0..=1.0).contains(&recall)
                && (0.0..=1.0).contains(&error)
                && reach.is_finite()
                && reach >= 0.0;
            if !sound {
                return Err(format!(
                    "calibration: step ({nprobe}, {reach}, {recall}, {error})"
                ));
            }
            steps.push(Step {
                nprobe,
                reach: has.then_some(reach),
                recall,
                error,
            });
        }
        if steps.windows(2).any(|w| w[0].recall >= w[1].recall)
            || (!steps.is_empty() && !matches!(knob, Knob::Nprobe(_)))
        {
            return Err("calibration: a curve's steps are not ascending or not IVF's".into());
        }
        kept.push(Arc::new(Curve {
            k,
            band,
            knob,
            quantized,
            points,
            live,
            changes: 0,
            carried: 0,
            position,
            from_searches,
            // Set below, from the queries saved with it.
            queries: 0,
            steps,
        }));
    }
    let seen = r.u64("queries seen")?;
    let stored_dim = r.u32("query dimension")? as usize;
    let q = r.count(4 * stored_dim.max(1), "queries")?;
    if q > 0 && stored_dim != dim {
        return Err(format!(
            "calibration: queries of {stored_dim} floats in a {dim}-d database"
        ));
    }
    let mut asked = Vec::with_capacity(q);
    for _ in 0..q {
        let row = r.take(4 * dim, "query")?;
        asked.push(
            row.chunks_exact(4)
                .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                .collect(),
        );
    }
    r.finish("calibration")?;
    // A curve measured on asked queries is taken as measured on those saved (their
    // number when it was measured is not saved).
    for c in &mut kept {
        if c.from_searches {
            if let Some(c) = Arc::get_mut(c) {
                c.queries = asked.len();
            }
        }
    }
    Ok(Curves { kept, asked, seen })
}

/// The curves saved in `store`, each carrying the records changed since it was
/// measured (the change log up to `log_next`); empty when none are saved or the record
/// does not decode.
pub fn load(store: &Store, log_next: u64, dim: usize) -> Curves {
    let Ok(Some(bytes)) = store.get(crate::storage::keys::CALIBRATION_KEY) else {
        return Curves::default();
    };
    let Ok(mut curves) = decode(&bytes, dim) else {
        return Curves::default();
    };
    curves.kept = curves
        .kept
        .into_iter()
        .filter_map(|c| {
            let since = if c.position >= log_next {
                0
            } else {
                match read_tail(store, c.position, log_next) {
                    Ok(t) if !t.cleared => t.keys.len() as u64,
                    _ => return None,
                }
            };
            let mut c = Arc::unwrap_or_clone(c);
            c.carried = since;
            Some(Arc::new(c))
        })
        .collect();
    curves
}

/// Saves `curves` in `store` when it takes writes (a follower's or a frozen store's
/// curves stay in memory). A failure is returned for the caller to ignore: the curves
/// are a cache.
pub fn save(store: &Store, curves: &Curves, dim: usize) -> crate::error::Result<()> {
    use crate::storage::rocks::OpenMode;
    if !matches!(store.mode(), OpenMode::Writer | OpenMode::InMemory) {
        return Ok(());
    }
    let mut batch = store.batch();
    batch.put(crate::storage::keys::CALIBRATION_KEY, encode(curves, dim));
    store.write(batch)
}

#[cfg(test)]
#[allow(clippy::expect_used)]
mod tests {
    use super::*;

    fn curve(k: usize, knob: Knob) -> Arc<Curve> {
        Arc::new(Curve {
            k,
            band: 2,
            knob,
            quantized: Some(true),
            points: vec![(10, 0.8), (13, 0.9), (17, 0.95)],
            live: 5000,
            changes: 7,
            carried: 3,
            position: 42,
            from_searches: true,
            queries: 2,
            steps: match knob {
                Knob::Nprobe(_) => vec![
                    Step {
                        nprobe: 1,
                        reach: None,
                        recall: 0.7,
                        error: 0.02,
                    },
                    Step {
                        nprobe: 1,
                        reach: Some(0.25),
                        recall: 0.75,
                        error: 0.015,
                    },
                ],
                Knob::Ef(_) => Vec::new(),
            },
        })
    }

    #[test]
    fn a_record_reads_back_as_written() {
        let mut c = Curves::default();
        c.keep(curve(10, Knob::Ef(4096)));
        c.keep(curve(5, Knob::Nprobe(64)));
        c.asked(&[1.0, -2.5, 3.0]);
        c.asked(&[0.5, 0.25, f32::MIN_POSITIVE]);
        let bytes = encode(&c, 3);
        let back = decode(&bytes, 3).expect("decodes");
        assert_eq!(back.kept.len(), 2);
        for (a, b) in c.kept.iter().zip(&back.kept) {
            assert_eq!(
                (a.k, a.band, a.knob, a.quantized),
                (b.k, b.band, b.knob, b.quantized)
            );
            assert_eq!(a.points, b.points);
            assert_eq!(a.steps, b.steps);
            assert_eq!(
                (a.live, a.position, a.from_searches, a.queries),
                (b.live, b.position, b.from_searches, b.queries)
            );
            assert_eq!((b.changes, b.carried), (0, 0), "change is counted at load");
        }
        assert_eq!(back.asked, c.asked);
        assert_eq!(back.seen, 2);
        // Every truncation and a wrong dimension are refused, never a panic.
        for cut in 0..bytes.len() {
            assert!(decode(&bytes[..cut], 3).is_err(), "cut at {cut}");
        }
        assert!(decode(&bytes, 4).is_err());
        let mut bad = bytes.clone();
        bad[0] = 9;
        assert!(decode(&bad, 3).is_err());
    }

    #[test]
    fn a_version_1_record_reads_as_curves_without_steps() {
        let mut c = Curves::default();
        c.keep(curve(10, Knob::Ef(4096)));
        c.asked(&[1.0, 2.0]);
        let mut bytes = encode(&c, 2);
        // Version 1 had no steps count after a curve's points.
        let at = 1 + 8 + (4 + 1 + 1 + 4 + 1 + 8 + 8 + 1 + 8) + 12 * 3;
        assert_eq!(bytes[at..at + 8], [0; 8]);
        bytes.drain(at..at + 8);
        bytes[0] = 1;
        let back = decode(&bytes, 2).expect("decodes");
        assert_eq!(back.kept[0].points, c.kept[0].points);
        assert!(back.kept[0].steps.is_empty());
        assert_eq!(back.asked, c.asked);
    }
}
