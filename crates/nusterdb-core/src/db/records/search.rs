//! Search of the record API: [`Database::search`] and [`Database::search_records`], and
//! batch search ([`Database::batch_search`] and its forms for ids of either kind and
//! with each hit's record), checked, then run under the read lock with the filter's
//! allowed set (see `Database::allowed`).

use super::{Include, Record};
use crate::config::{check_ef_search, check_nprobe, check_recall, DatabaseConfig, IndexType};
use crate::db::{calibration, Database, State, MAX_BATCH_RESULTS};
use crate::error::{Error, Result};
use crate::filter::Filter;
use crate::ids::Id;
use crate::index::SearchParams;
use crate::progress::{in_pieces, Observer, Phase, Unobserved};

/// The largest `ef_search` a recall target climbs to (at least `k`): HNSW's recall
/// is within a hair of 1 long before.
const EF_TOP: usize = 4096;

/// Checks the parameters against their ranges and the index type: `nprobe` is an IVF
/// index's, `ef_search` the graph's (a flat index accepts it, as it always did, and is
/// exact anyway), so each is refused where it would change nothing. Returns them with
/// the config's default recall target when they name no knob of their own.
fn checked(mut p: SearchParams, config: &DatabaseConfig) -> Result<SearchParams> {
    check_params(&p, config.index_type)?;
    if p.recall.is_none() && p.ef_search.is_none() && p.nprobe.is_none() {
        p.recall = config.recall;
    }
    Ok(p)
}

fn check_params(p: &SearchParams, index: IndexType) -> Result<()> {
    if let Some(r) = p.recall {
        check_recall(r)?;
        if p.ef_search.is_some() || p.nprobe.is_some() {
            return Err(Error::invalid(
                "recall chooses ef_search (HNSW) or nprobe (IVF) itself; give a recall or \
                 one of them, not both",
            ));
        }
    }
    if let Some(ef) = p.ef_search {
        check_ef_search(ef)?;
        if index == IndexType::Ivf {
            return Err(Error::invalid(
                "ef_search is for HNSW indexes; an IVF index takes nprobe (the lists a search \
                 scans)",
            ));
        }
    }
    if let Some(r) = p.probe_reach {
        if !(r.is_finite() && r >= 0.0) {
            return Err(Error::invalid(format!(
                "probe_reach={r}: give a finite score gap, at least 0"
            )));
        }
        if index != IndexType::Ivf {
            return Err(Error::invalid(format!(
                "probe_reach is for IVF indexes (index_type=\"ivf\"); this database's index \
                 is {}",
                index.name()
            )));
        }
        if p.recall.is_some() {
            return Err(Error::invalid(
                "recall chooses probe_reach itself; give a recall or probe_reach, not both",
            ));
        }
    }
    if let Some(n) = p.nprobe {
        check_nprobe(n)?;
        if index != IndexType::Ivf {
            return Err(Error::invalid(format!(
                "nprobe={n} is for IVF indexes (index_type=\"ivf\"); this database's index is {}",
                index.name()
            )));
        }
    }
    Ok(())
}

/// `quantized=True` needs an index that walks on codes: asked of one without, it is
/// refused rather than answered some other way.
fn check_walk(st: &State, p: &SearchParams) -> Result<()> {
    if p.quantized == Some(true) && !st.index.walks_on_codes() {
        return Err(Error::invalid(
            "quantized=True: this index keeps no codes to walk on (a flat index, an IVF \
             index with quantization=\"none\", an \
             HNSW index with quantization=\"none\" or on a metric without codes); leave \
             quantized unset or pass False",
        ));
    }
    Ok(())
}

impl Database {
    /// `p` with a recall target turned into the knob its curve gives (measured now if
    /// there is no fresh one: `db/calibration`); unchanged without a target or on an
    /// exact index.
    fn with_recall(
        st: &State,
        (p, queries): (SearchParams, &[&[f32]]),
        k: usize,
        allow: Option<&roaring::RoaringBitmap>,
    ) -> SearchParams {
        use crate::db::calibration::{band_of, measure, Knob};
        use std::sync::atomic::Ordering;
        let Some(target) = p.recall else { return p };
        let live = st.ids.len();
        let knob = match (st.index.as_hnsw(), st.index.as_ivf()) {
            (Some(_), _) => Knob::Ef(live.clamp(k.max(1), EF_TOP.max(k))),
            (_, Some(ivf)) if ivf.nlist() > 0 => Knob::Nprobe(ivf.nlist()),
            // Exact: every target is met.
            _ => return SearchParams { recall: None, ..p },
        };
        let band = band_of(allow.map(|a| a.len()), live);
        let key = (k, band, knob, p.quantized);
        let changes = st.changes.load(Ordering::Relaxed);
        let mut curves = st.curves.lock();
        for q in queries {
            curves.asked(q);
        }
        let curve = match curves.find(key, live, changes) {
            Some(c) => c,
            None => {
                let slots = crate::db::seal::live_slots(&st.ids);
                let asked = curves.queries().to_vec();
                let c = std::sync::Arc::new(measure(
                    st.index.as_ref(),
                    &slots,
                    key,
                    (allow, &asked),
                    (changes, st.log_next.load(Ordering::Acquire)),
                ));
                curves.keep(c.clone());
                // A cache: a failed save leaves the curve in memory, the search goes on.
                let _ = calibration::persist::save(&st.store, &curves, st.index.dim());
                c
            }
        };
        drop(curves);
        let (value, reach) = curve.pick(f64::from(target));
        match knob {
            Knob::Ef(_) => SearchParams {
                ef_search: Some(value),
                recall: None,
                ..p
            },
            Knob::Nprobe(_) => SearchParams {
                nprobe: Some(value),
                probe_reach: reach,
                recall: None,
                ..p
            },
        }
    }

    /// The search parameters a search of `k` under `filter` with `search`'s recall
    /// target runs with: `ef_search` (HNSW) or `nprobe` and maybe `probe_reach` (IVF) as
    /// the calibration chose them (measured now if needed: `db/calibration`); unchanged without a target,
    /// and without one on an exact index (flat, or IVF below its training size).
    ///
    /// # Errors
    /// As [`Database::search`] for the parameters; `k == 0`.
    pub fn search_params_for(
        &self,
        k: usize,
        filter: Option<&Filter>,
        search: impl Into<SearchParams>,
    ) -> Result<SearchParams> {
        if k == 0 {
            return Err(Error::invalid("k must be at least 1"));
        }
        let params = checked(search.into(), &self.shared.config)?;
        self.read(|st| {
            check_walk(st, &params)?;
            let allow = Self::allowed(st, filter);
            Ok(Self::with_recall(st, (params, &[]), k, allow.as_deref()))
        })
    }

    /// The recall curves kept (measured in this process or saved by an earlier one and
    /// still fresh enough to use: `db/calibration`), oldest first.
    ///
    /// # Errors
    /// A closed database.
    pub fn recall_curves(&self) -> Result<Vec<calibration::RecallCurve>> {
        self.read(|st| {
            Ok(st
                .curves
                .lock()
                .shown(st.changes.load(std::sync::atomic::Ordering::Relaxed)))
        })
    }

    fn check_query(&self, q: &[f32], k: usize) -> Result<()> {
        if k == 0 {
            return Err(Error::invalid("k must be at least 1"));
        }
        self.check_vector(q)
    }

    /// Slot hits as (key, distance), nearest first; equal distances ordered by id, so
    /// results do not depend on slot reuse.
    fn to_keys(st: &State, hits: Vec<(u32, f32)>) -> Vec<(u64, f32)> {
        let mut out: Vec<(u64, f32)> = hits
            .into_iter()
            .filter_map(|(slot, d)| st.ids.id(slot).map(|key| (key, d)))
            .collect();
        match &st.names {
            None => out.sort_by(|a, b| a.1.total_cmp(&b.1).then(a.0.cmp(&b.0))),
            Some(names) => out.sort_by(|a, b| {
                a.1.total_cmp(&b.1)
                    .then_with(|| names.name(a.0).cmp(&names.name(b.0)))
            }),
        }
        out
    }

    /// Slot hits as (id, distance), in the order of [`Database::to_keys`].
    fn to_ids(st: &State, hits: Vec<(u32, f32)>) -> Vec<(Id, f32)> {
        Self::to_keys(st, hits)
            .into_iter()
            .filter_map(|(key, d)| st.id_of(key).map(|id| (id, d)))
            .collect()
    }

    /// The nearest slots to `q` under the read lock, mapped by `map` under it too.
    fn search_slots<T>(
        &self,
        q: &[f32],
        k: usize,
        filter: Option<&Filter>,
        params: SearchParams,
        map: impl FnOnce(&State, Vec<(u32, f32)>) -> Result<T>,
    ) -> Result<T> {
        self.check_query(q, k)?;
        let params = checked(params, &self.shared.config)?;
        self.read(|st| {
            check_walk(st, &params)?;
            let allow = Self::allowed(st, filter);
            let params = Self::with_recall(st, (params, &[q]), k, allow.as_deref());
            let hits = st.index.search(q, k, allow.as_deref(), &params);
            map(st, hits)
        })
    }

    /// The min(k, matches) nearest vectors to `q`, nearest first, as (id, distance).
    /// `search`: the [`SearchParams`], or just an `ef_search` (`None`, `Some(64)`).
    ///
    /// # Errors
    /// `k == 0`, `ef_search` outside 1..=[`crate::config::MAX_EF`] or given to an IVF
    /// index, `nprobe` outside 1..=65,536 or given to another index type, `quantized:
    /// Some(true)` on an index without codes, wrong dimension, non-finite query,
    /// [`Error::Closed`]; a string-id database.
    pub fn search(
        &self,
        q: &[f32],
        k: usize,
        filter: Option<&Filter>,
        search: impl Into<SearchParams>,
    ) -> Result<Vec<(u64, f32)>> {
        self.int_ids()?;
        self.search_slots(q, k, filter, search.into(), |st, hits| {
            Ok(Self::to_keys(st, hits))
        })
    }

    /// [`Database::search`] for ids of either kind, each hit with what `include` asks
    /// for, read under the same lock as the search (a concurrent write cannot pair a
    /// hit with another record's data).
    ///
    /// # Errors
    /// As [`Database::search`]; storage errors reading metadata or documents.
    pub fn search_records(
        &self,
        q: &[f32],
        k: usize,
        filter: Option<&Filter>,
        search: impl Into<SearchParams>,
        include: Include,
    ) -> Result<Vec<(Record, f32)>> {
        self.search_slots(q, k, filter, search.into(), |st, hits| {
            Self::to_keys(st, hits)
                .into_iter()
                .filter_map(|(key, d)| st.id_of(key).map(|id| (id, key, d)))
                .map(|(id, key, d)| Ok((st.record(id, key, include)?, d)))
                .collect()
        })
    }

    /// Checks a batch of queries and runs them in parallel under the read lock, in
    /// pieces `observer` may stop between ([`Error::Interrupted`]); each row's slot
    /// hits are mapped by `map`.
    fn batch_slots<T: Send>(
        &self,
        queries: &[f32],
        k: usize,
        filter: Option<&Filter>,
        params: SearchParams,
        observer: &dyn Observer,
        map: impl Fn(&State, Vec<(u32, f32)>) -> T,
    ) -> Result<Vec<T>> {
        let dim = self.shared.config.dim;
        if k == 0 {
            return Err(Error::invalid("k must be at least 1"));
        }
        if !queries.len().is_multiple_of(dim) {
            return Err(Error::DimensionMismatch {
                expected: dim,
                got: queries.len(),
            });
        }
        let params = checked(params, &self.shared.config)?;
        let n = queries.len() / dim;
        if (n as u64).saturating_mul(k as u64) > MAX_BATCH_RESULTS {
            return Err(Error::invalid(format!(
                "batch_search would return {n} x {k} results, above the limit of {MAX_BATCH_RESULTS}; \
                 lower k or split the batch"
            )));
        }
        for (row, q) in queries.chunks_exact(dim).enumerate() {
            self.check_vector(q).map_err(|e| match e {
                Error::NonFinite { position, value } => Error::invalid(format!(
                    "query {row} has a non-finite value ({value}) at position {position}"
                )),
                Error::InvalidArgument(msg) => Error::invalid(format!("query {row}: {msg}")),
                other => other,
            })?;
        }
        self.read(|st| {
            check_walk(st, &params)?;
            let allow = Self::allowed(st, filter);
            let asked: Vec<&[f32]> = queries.chunks_exact(dim).collect();
            let params = Self::with_recall(st, (params, &asked), k, allow.as_deref());
            let rows: Vec<usize> = (0..n).collect();
            let mut out = Vec::with_capacity(n);
            let min = st.index.batch_granularity();
            in_pieces(&rows, min, Phase::Searching, observer, |piece| {
                let (a, b) = (piece[0] * dim, (piece[piece.len() - 1] + 1) * dim);
                let hits = st
                    .index
                    .batch_search(&queries[a..b], k, allow.as_deref(), &params);
                out.extend(hits.into_iter().map(|h| map(st, h)));
            })
            .map_err(|_| Error::Interrupted("searching"))?;
            Ok(out)
        })
    }

    /// Searches for every row of `queries` (row-major), in parallel.
    ///
    /// # Errors
    /// As [`Database::search`] for any row; n·k above [`MAX_BATCH_RESULTS`]; a
    /// string-id database.
    pub fn batch_search(
        &self,
        queries: &[f32],
        k: usize,
        filter: Option<&Filter>,
        search: impl Into<SearchParams>,
    ) -> Result<Vec<Vec<(u64, f32)>>> {
        self.batch_search_observed(queries, k, filter, search, &Unobserved)
    }

    /// [`Database::batch_search`] watched by `observer`, which may stop it between
    /// pieces of queries ([`Error::Interrupted`]).
    ///
    /// # Errors
    /// As [`Database::batch_search`]; [`Error::Interrupted`].
    pub fn batch_search_observed(
        &self,
        queries: &[f32],
        k: usize,
        filter: Option<&Filter>,
        search: impl Into<SearchParams>,
        observer: &dyn Observer,
    ) -> Result<Vec<Vec<(u64, f32)>>> {
        self.int_ids()?;
        self.batch_slots(queries, k, filter, search.into(), observer, Self::to_keys)
    }

    /// [`Database::batch_search_observed`] for ids of either kind.
    ///
    /// # Errors
    /// As [`Database::batch_search_observed`] (any id type).
    pub fn batch_search_ids(
        &self,
        queries: &[f32],
        k: usize,
        filter: Option<&Filter>,
        search: impl Into<SearchParams>,
        observer: &dyn Observer,
    ) -> Result<Vec<Vec<(Id, f32)>>> {
        self.batch_slots(queries, k, filter, search.into(), observer, Self::to_ids)
    }

    /// [`Database::batch_search_ids`] with each hit's record as `include` asks, read
    /// under the same lock as the search, as [`Database::search_records`] does: a
    /// concurrent write cannot pair a hit with another record's data, and every hit's
    /// record is there to read.
    ///
    /// # Errors
    /// As [`Database::batch_search_ids`]; storage errors reading metadata or documents.
    pub fn batch_search_records(
        &self,
        queries: &[f32],
        k: usize,
        filter: Option<&Filter>,
        search: impl Into<SearchParams>,
        include: Include,
        observer: &dyn Observer,
    ) -> Result<Vec<Vec<(Record, f32)>>> {
        let rows = self.batch_slots(queries, k, filter, search.into(), observer, |st, hits| {
            Self::to_keys(st, hits)
                .into_iter()
                .filter_map(|(key, d)| st.id_of(key).map(|id| (id, key, d)))
                .map(|(id, key, d)| Ok((st.record(id, key, include)?, d)))
                .collect::<Result<Vec<_>>>()
        })?;
        rows.into_iter().collect()
    }
}
