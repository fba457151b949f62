//! [`PayloadIndex`]: inverted indexes over slots (`u32` positions of live vectors) that
//! answer a [`Filter`] by set algebra on roaring bitmaps, never by scanning metadata.
//!
//! # Layout
//!
//! - `live`: every slot inserted and not removed.
//! - Per metadata key a `FieldIndex`:
//!   - `exists`: slots that have the key (any type);
//!   - `ints: BTreeMap<i64, bitmap>` — int values, exact;
//!   - `floats: BTreeMap<FloatKey, bitmap>` — float values under a total-order key
//!     (`-0.0` folded into `0.0`; a NaN, which validated metadata never holds, is kept only
//!     in `exists`, and so — like in [`Filter::matches`] — equals nothing);
//!   - `strs: BTreeMap<String, bitmap>` — str values, ordered by bytes like the filter
//!     semantics; equality is a lookup, ranges are `range(..)` unions;
//!   - `falses`, `trues` — bool values.
//!
//!   Ints and floats live in two maps, each keyed by its own exact type, and numbers
//!   compare exactly across them ([`cmp_int_float`]): equality and ranges are unions
//!   over both maps. Against an int query `q`, the int map is queried with exact `i64`
//!   bounds; the float map with the float `g` nearest to `q`: when `g == q` exactly the
//!   bounds are `g`'s; otherwise no float lies strictly between `q` and `g`, so the
//!   bound at `g` is inclusive or exclusive according to the side of `q` that `g` is on
//!   (and no float equals `q`). Against a float query `x`, the float map is queried with `x` and the
//!   int map with the `i64` interval `{i : i op x}` (exactly), found by binary search
//!   over `i64` (valid because the exact comparison is monotone in `i`), so ints beyond
//!   ±2^53 that `f64` cannot tell apart are included exactly when [`Filter::matches`]
//!   includes them.
//!   There are no separate hash equality buckets: the ordered maps answer equality with
//!   one lookup each, and a second copy of every posting list would double the memory.
//! - `tags: HashMap<String, bitmap>`.
//!
//! Negative forms (`$ne`, `$nin`, `$exists: false`, `$not`) are `live − positive`, so
//! they include slots where the key is missing. An `And` intersects its positive parts,
//! cheapest [`estimate`](PayloadIndex::estimate) first and stopping when empty, then
//! subtracts the positive sets of its negative parts (no `live − x` is materialised).
//!
//! Empty bitmaps, map entries and whole keys are dropped on remove, so memory tracks the
//! live content under churn.

use std::borrow::Borrow;
use std::cmp::Ordering;
use std::collections::{BTreeMap, HashMap};
use std::mem::size_of;
use std::ops::Bound;

use roaring::{MultiOps, RoaringBitmap};

use super::eval::cmp_int_float;
use super::{CmpOp, Filter};
use crate::metadata::{Metadata, Value};

/// An `f64` (not NaN) as a totally ordered integer key: the order of the keys is the
/// numeric order, `-0.0` and `0.0` share one key.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(super) struct FloatKey(pub(super) u64);

impl FloatKey {
    pub(super) fn new(f: f64) -> Option<Self> {
        if f.is_nan() {
            return None;
        }
        // Fold -0.0 into 0.0 (they compare equal).
        let f = if f == 0.0 { 0.0 } else { f };
        let bits = f.to_bits();
        Some(FloatKey(if bits >> 63 == 1 {
            !bits
        } else {
            bits | (1 << 63)
        }))
    }
}

/// One past `i64::MAX`: the end of a half-open `i128` interval that reaches the top.
const INT_END: i128 = i64::MAX as i128 + 1;

/// The smallest `i64` for which the monotone (false…true) `pred` holds, or [`INT_END`].
fn first_true(pred: impl Fn(i64) -> bool) -> i128 {
    let (mut lo, mut hi) = (i64::MIN as i128, INT_END);
    while lo < hi {
        let mid = lo + (hi - lo) / 2;
        // lo <= mid < hi <= INT_END, so mid fits an i64.
        if pred(mid as i64) {
            hi = mid;
        } else {
            lo = mid + 1;
        }
    }
    lo
}

/// The half-open interval of ints `i` with `Int(i) op Int(q)` (`Ne` treated as `Eq`).
fn int_interval_for_int(op: CmpOp, q: i64) -> (i128, i128) {
    let q = i128::from(q);
    let min = i128::from(i64::MIN);
    match op {
        CmpOp::Eq | CmpOp::Ne => (q, q + 1),
        CmpOp::Gt => (q + 1, INT_END),
        CmpOp::Gte => (q, INT_END),
        CmpOp::Lt => (min, q),
        CmpOp::Lte => (min, q + 1),
    }
}

/// The half-open interval of ints `i` with `i op x` compared exactly, `x` not NaN
/// (`Ne` as `Eq`).
fn int_interval_for_float(op: CmpOp, x: f64) -> (i128, i128) {
    let min = i128::from(i64::MIN);
    let first_gte = || first_true(|i| cmp_int_float(i, x) != Some(Ordering::Less));
    let first_gt = || first_true(|i| cmp_int_float(i, x) == Some(Ordering::Greater));
    match op {
        CmpOp::Eq | CmpOp::Ne => (first_gte(), first_gt()),
        CmpOp::Gt => (first_gt(), INT_END),
        CmpOp::Gte => (first_gte(), INT_END),
        CmpOp::Lt => (min, first_gte()),
        CmpOp::Lte => (min, first_gt()),
    }
}

/// The float-key bounds selecting floats `f` with `f op q` compared exactly (`Ne` as
/// `Eq`), or `None` when no float qualifies.
fn float_bounds_for_int(op: CmpOp, q: i64) -> Option<(Bound<FloatKey>, Bound<FloatKey>)> {
    // The float nearest to q (never NaN, so neither `?` returns early).
    let g = q as f64;
    let k = FloatKey::new(g)?;
    match cmp_int_float(q, g)? {
        Ordering::Equal => Some(bounds(op, k)),
        // q < g, and no float lies strictly between them: f > q  <=>  f >= g.
        Ordering::Less => match op {
            CmpOp::Eq | CmpOp::Ne => None,
            CmpOp::Gt | CmpOp::Gte => Some((Bound::Included(k), Bound::Unbounded)),
            CmpOp::Lt | CmpOp::Lte => Some((Bound::Unbounded, Bound::Excluded(k))),
        },
        // q > g: f < q  <=>  f <= g.
        Ordering::Greater => match op {
            CmpOp::Eq | CmpOp::Ne => None,
            CmpOp::Gt | CmpOp::Gte => Some((Bound::Excluded(k), Bound::Unbounded)),
            CmpOp::Lt | CmpOp::Lte => Some((Bound::Unbounded, Bound::Included(k))),
        },
    }
}

/// The key bounds selecting values `v` with `v op k` (`Ne` as `Eq`).
fn bounds<T>(op: CmpOp, k: T) -> (Bound<T>, Bound<T>)
where
    T: Copy,
{
    match op {
        CmpOp::Eq | CmpOp::Ne => (Bound::Included(k), Bound::Included(k)),
        CmpOp::Gt => (Bound::Excluded(k), Bound::Unbounded),
        CmpOp::Gte => (Bound::Included(k), Bound::Unbounded),
        CmpOp::Lt => (Bound::Unbounded, Bound::Excluded(k)),
        CmpOp::Lte => (Bound::Unbounded, Bound::Included(k)),
    }
}

fn add_to<K, Q>(map: &mut BTreeMap<K, RoaringBitmap>, key: &Q, slot: u32) -> bool
where
    K: Borrow<Q> + Ord,
    Q: ToOwned<Owned = K> + Ord + ?Sized,
{
    if let Some(b) = map.get_mut(key) {
        return b.insert(slot);
    }
    let mut b = RoaringBitmap::new();
    b.insert(slot);
    map.insert(key.to_owned(), b);
    true
}

fn remove_from<K, Q>(map: &mut BTreeMap<K, RoaringBitmap>, key: &Q, slot: u32) -> bool
where
    K: Borrow<Q> + Ord,
    Q: Ord + ?Sized,
{
    let Some(b) = map.get_mut(key) else {
        return false;
    };
    let removed = b.remove(slot);
    if b.is_empty() {
        map.remove(key);
    }
    removed
}

/// Rough heap bytes of a bitmap (its serialized size tracks its containers closely).
fn bitmap_bytes(b: &RoaringBitmap) -> usize {
    b.serialized_size()
}

/// Rough per-entry overhead of a tree or hash map beyond key and value.
const ENTRY_OVERHEAD: usize = 16;

/// The indexes of one metadata key.
/// (Fields visible to `filter::persist`, which saves and loads them.)
#[derive(Clone, Debug, Default)]
pub(super) struct FieldIndex {
    pub(super) exists: RoaringBitmap,
    pub(super) ints: BTreeMap<i64, RoaringBitmap>,
    pub(super) floats: BTreeMap<FloatKey, RoaringBitmap>,
    pub(super) strs: BTreeMap<String, RoaringBitmap>,
    pub(super) falses: RoaringBitmap,
    pub(super) trues: RoaringBitmap,
    /// Slots in `ints` or `floats`.
    pub(super) num_count: u64,
    /// Slots in `strs`.
    pub(super) str_count: u64,
}

impl FieldIndex {
    fn insert(&mut self, slot: u32, v: &Value) {
        self.exists.insert(slot);
        match v {
            Value::Int(i) => {
                if add_to(&mut self.ints, i, slot) {
                    self.num_count += 1;
                }
            }
            Value::Float(f) => {
                if let Some(k) = FloatKey::new(*f) {
                    if add_to(&mut self.floats, &k, slot) {
                        self.num_count += 1;
                    }
                }
            }
            Value::Str(s) => {
                if add_to(&mut self.strs, s.as_str(), slot) {
                    self.str_count += 1;
                }
            }
            Value::Bool(true) => {
                self.trues.insert(slot);
            }
            Value::Bool(false) => {
                self.falses.insert(slot);
            }
        }
    }

    fn remove(&mut self, slot: u32, v: &Value) {
        self.exists.remove(slot);
        match v {
            Value::Int(i) => {
                if remove_from(&mut self.ints, i, slot) {
                    self.num_count = self.num_count.saturating_sub(1);
                }
            }
            Value::Float(f) => {
                if let Some(k) = FloatKey::new(*f) {
                    if remove_from(&mut self.floats, &k, slot) {
                        self.num_count = self.num_count.saturating_sub(1);
                    }
                }
            }
            Value::Str(s) => {
                if remove_from(&mut self.strs, s.as_str(), slot) {
                    self.str_count = self.str_count.saturating_sub(1);
                }
            }
            Value::Bool(true) => {
                self.trues.remove(slot);
            }
            Value::Bool(false) => {
                self.falses.remove(slot);
            }
        }
    }

    /// Removes `slots` from every bitmap, dropping emptied value entries.
    fn remove_slots(&mut self, slots: &RoaringBitmap) {
        fn sub_all<K: Ord>(map: &mut BTreeMap<K, RoaringBitmap>, slots: &RoaringBitmap) -> u64 {
            let mut removed = 0;
            map.retain(|_, b| {
                let before = b.len();
                *b -= slots;
                removed += before - b.len();
                !b.is_empty()
            });
            removed
        }
        self.exists -= slots;
        let nums = sub_all(&mut self.ints, slots) + sub_all(&mut self.floats, slots);
        self.num_count = self.num_count.saturating_sub(nums);
        let strs = sub_all(&mut self.strs, slots);
        self.str_count = self.str_count.saturating_sub(strs);
        self.falses -= slots;
        self.trues -= slots;
    }

    pub(super) fn is_empty(&self) -> bool {
        self.exists.is_empty()
            && self.ints.is_empty()
            && self.floats.is_empty()
            && self.strs.is_empty()
            && self.falses.is_empty()
            && self.trues.is_empty()
    }

    fn int_range(&self, (lo, hi): (i128, i128)) -> RoaringBitmap {
        // Empty, or lo >= i64::MIN and hi - 1 <= i64::MAX: both convert.
        let (Ok(lo), Ok(last)) = (i64::try_from(lo), i64::try_from(hi - 1)) else {
            return RoaringBitmap::new();
        };
        if lo > last {
            return RoaringBitmap::new();
        }
        self.ints.range(lo..=last).map(|(_, b)| b).union()
    }

    fn int_range_count(&self, (lo, hi): (i128, i128)) -> u64 {
        let (Ok(lo), Ok(last)) = (i64::try_from(lo), i64::try_from(hi - 1)) else {
            return 0;
        };
        if lo > last {
            return 0;
        }
        self.ints.range(lo..=last).map(|(_, b)| b.len()).sum()
    }

    fn float_range(&self, op: CmpOp, x: f64) -> RoaringBitmap {
        match FloatKey::new(x) {
            Some(k) => self.floats.range(bounds(op, k)).map(|(_, b)| b).union(),
            None => RoaringBitmap::new(),
        }
    }

    /// Floats `f` with `f op q`, exactly.
    fn float_range_for_int(&self, op: CmpOp, q: i64) -> RoaringBitmap {
        match float_bounds_for_int(op, q) {
            Some(range) => self.floats.range(range).map(|(_, b)| b).union(),
            None => RoaringBitmap::new(),
        }
    }

    fn bool_set(&self, op: CmpOp, q: bool) -> RoaringBitmap {
        let (f, t) = (&self.falses, &self.trues);
        match (op, q) {
            (CmpOp::Eq | CmpOp::Ne, false) | (CmpOp::Lt, true) | (CmpOp::Lte, false) => f.clone(),
            (CmpOp::Eq | CmpOp::Ne, true) | (CmpOp::Gt, false) | (CmpOp::Gte, true) => t.clone(),
            (CmpOp::Gte, false) | (CmpOp::Lte, true) => f | t,
            (CmpOp::Gt, true) | (CmpOp::Lt, false) => RoaringBitmap::new(),
        }
    }

    /// Slots whose value `v` satisfies `v op q`; for `Ne` the `Eq` set (the complement
    /// of the answer within the live slots).
    fn cmp_set(&self, op: CmpOp, q: &Value) -> RoaringBitmap {
        match q {
            Value::Int(i) => {
                let mut out = self.int_range(int_interval_for_int(op, *i));
                out |= self.float_range_for_int(op, *i);
                out
            }
            Value::Float(x) if x.is_nan() => RoaringBitmap::new(),
            Value::Float(x) => {
                let mut out = self.int_range(int_interval_for_float(op, *x));
                out |= self.float_range(op, *x);
                out
            }
            Value::Str(s) => match op {
                CmpOp::Eq | CmpOp::Ne => self.strs.get(s.as_str()).cloned().unwrap_or_default(),
                _ => self
                    .strs
                    .range::<str, _>(bounds(op, s.as_str()))
                    .map(|(_, b)| b)
                    .union(),
            },
            Value::Bool(b) => self.bool_set(op, *b),
        }
    }

    /// Exactly the size of the `Eq` set of `q`.
    fn eq_count(&self, q: &Value) -> u64 {
        let float_count = |x: f64| {
            FloatKey::new(x)
                .and_then(|k| self.floats.get(&k))
                .map_or(0, RoaringBitmap::len)
        };
        match q {
            Value::Int(i) => {
                // Only a float exactly equal to the int counts.
                let g = *i as f64;
                let floats = if cmp_int_float(*i, g) == Some(Ordering::Equal) {
                    float_count(g)
                } else {
                    0
                };
                self.ints.get(i).map_or(0, RoaringBitmap::len) + floats
            }
            Value::Float(x) if x.is_nan() => 0,
            Value::Float(x) => {
                self.int_range_count(int_interval_for_float(CmpOp::Eq, *x)) + float_count(*x)
            }
            Value::Str(s) => self.strs.get(s.as_str()).map_or(0, RoaringBitmap::len),
            Value::Bool(true) => self.trues.len(),
            Value::Bool(false) => self.falses.len(),
        }
    }

    /// Slots holding a value of `q`'s type class (an upper bound of any range on `q`).
    fn class_count(&self, q: &Value) -> u64 {
        match q {
            Value::Int(_) | Value::Float(_) => self.num_count,
            Value::Str(_) => self.str_count,
            Value::Bool(_) => self.falses.len() + self.trues.len(),
        }
    }

    fn memory_bytes(&self) -> usize {
        let entry =
            |b: &RoaringBitmap| size_of::<RoaringBitmap>() + bitmap_bytes(b) + ENTRY_OVERHEAD;
        size_of::<Self>()
            + bitmap_bytes(&self.exists)
            + bitmap_bytes(&self.falses)
            + bitmap_bytes(&self.trues)
            + self
                .ints
                .values()
                .map(|b| size_of::<i64>() + entry(b))
                .sum::<usize>()
            + self
                .floats
                .values()
                .map(|b| size_of::<FloatKey>() + entry(b))
                .sum::<usize>()
            + self
                .strs
                .iter()
                .map(|(k, b)| size_of::<String>() + k.capacity() + entry(b))
                .sum::<usize>()
    }
}

/// Per-key inverted indexes over slots (`u32` positions of live vectors).
///
/// The caller keeps it in step with the stored metadata: [`insert`](Self::insert) once
/// per live slot, and [`remove`](Self::remove) with the metadata that was inserted for
/// it (to change a slot's metadata: remove with the old, insert the new). See the
/// [module documentation](self) for the layout and exactness guarantees.
#[derive(Clone, Debug, Default)]
pub struct PayloadIndex {
    pub(super) live: RoaringBitmap,
    pub(super) fields: HashMap<String, FieldIndex>,
    pub(super) tags: HashMap<String, RoaringBitmap>,
    /// Bumped by every change, so results computed from the index can be cached.
    pub(super) version: u64,
}

/// A lower and an upper bound of a match count.
type Bounds = (u64, u64);

impl PayloadIndex {
    /// An empty index.
    pub fn new() -> Self {
        Self::default()
    }

    /// A counter that changes whenever the index does.
    pub fn version(&self) -> u64 {
        self.version
    }

    /// Indexes `slot` with metadata `m` and marks it live.
    pub fn insert(&mut self, slot: u32, m: &Metadata) {
        self.version += 1;
        self.live.insert(slot);
        for (key, value) in m.fields() {
            match self.fields.get_mut(key.as_str()) {
                Some(field) => field.insert(slot, value),
                None => {
                    let mut field = FieldIndex::default();
                    field.insert(slot, value);
                    self.fields.insert(key.clone(), field);
                }
            }
        }
        for tag in m.tags() {
            match self.tags.get_mut(tag.as_str()) {
                Some(b) => {
                    b.insert(slot);
                }
                None => {
                    let mut b = RoaringBitmap::new();
                    b.insert(slot);
                    self.tags.insert(tag.clone(), b);
                }
            }
        }
    }

    /// Unindexes `slot`; `m` is the metadata inserted for it. Emptied buckets and keys
    /// are dropped.
    pub fn remove(&mut self, slot: u32, m: &Metadata) {
        self.version += 1;
        self.live.remove(slot);
        for (key, value) in m.fields() {
            if let Some(field) = self.fields.get_mut(key.as_str()) {
                field.remove(slot, value);
                if field.is_empty() {
                    self.fields.remove(key.as_str());
                }
            }
        }
        for tag in m.tags() {
            if let Some(b) = self.tags.get_mut(tag.as_str()) {
                b.remove(slot);
                if b.is_empty() {
                    self.tags.remove(tag.as_str());
                }
            }
        }
    }

    /// Unindexes every slot of `slots` without knowing its metadata (a log replay
    /// that only knows a slot was overwritten or removed): one pass subtracting
    /// `slots` from every bitmap — live, exists, each value entry, each tag — dropping
    /// emptied entries and keys as [`PayloadIndex::remove`] does, so memory tracks the
    /// live content. Costs a pass over the whole index, not per slot: for one slot
    /// with known metadata, [`PayloadIndex::remove`] is cheaper.
    pub fn remove_slots(&mut self, slots: &RoaringBitmap) {
        self.version += 1;
        self.live -= slots;
        self.fields.retain(|_, field| {
            field.remove_slots(slots);
            !field.is_empty()
        });
        self.tags.retain(|_, b| {
            *b -= slots;
            !b.is_empty()
        });
    }

    /// Number of live slots.
    pub fn len(&self) -> u64 {
        self.live.len()
    }

    /// No live slots.
    pub fn is_empty(&self) -> bool {
        self.live.is_empty()
    }

    /// Whether `slot` is live.
    pub fn contains(&self, slot: u32) -> bool {
        self.live.contains(slot)
    }

    /// The live slots.
    pub fn live(&self) -> &RoaringBitmap {
        &self.live
    }

    /// The metadata keys present on at least one live slot, sorted.
    pub fn keys(&self) -> Vec<&str> {
        let mut keys: Vec<&str> = self.fields.keys().map(String::as_str).collect();
        keys.sort_unstable();
        keys
    }

    /// The exact set of live slots matching `f` — equal to the slots whose metadata
    /// [`Filter::matches`] — computed by set algebra on the indexes.
    pub fn evaluate(&self, f: &Filter) -> RoaringBitmap {
        match f {
            Filter::All => self.live.clone(),
            Filter::And(parts) => self.evaluate_and(parts),
            Filter::Or(parts) => parts.iter().map(|p| self.evaluate(p)).union(),
            Filter::TagsAll(tags) => self.tags_all(tags),
            Filter::TagsAny(tags) => tags.iter().filter_map(|t| self.tags.get(t)).union(),
            Filter::Cmp { key, op, value } if *op != CmpOp::Ne => self
                .fields
                .get(key.as_str())
                .map(|field| field.cmp_set(*op, value))
                .unwrap_or_default(),
            Filter::In {
                key,
                values,
                negate: false,
            } => self.in_set(key, values),
            Filter::Exists { key, exists: true } => self
                .fields
                .get(key.as_str())
                .map(|field| field.exists.clone())
                .unwrap_or_default(),
            // The negative forms: everything live but the positive set.
            Filter::Cmp { .. } | Filter::In { .. } | Filter::Exists { .. } | Filter::Not(_) => {
                &self.live - &self.negated_set(f)
            }
        }
    }

    /// Whether `f` is a negative form, answered as `live − negated_set(f)`.
    fn is_negative(f: &Filter) -> bool {
        matches!(
            f,
            Filter::Cmp { op: CmpOp::Ne, .. }
                | Filter::In { negate: true, .. }
                | Filter::Exists { exists: false, .. }
                | Filter::Not(_)
        )
    }

    /// For a negative form `f`, the set `S` with `f = live − S`; for anything else, the
    /// complement of `evaluate(f)` within the live slots.
    fn negated_set(&self, f: &Filter) -> RoaringBitmap {
        match f {
            Filter::Cmp {
                key,
                op: CmpOp::Ne,
                value,
            } => self
                .fields
                .get(key.as_str())
                .map(|field| field.cmp_set(CmpOp::Eq, value))
                .unwrap_or_default(),
            Filter::In {
                key,
                values,
                negate: true,
            } => self.in_set(key, values),
            Filter::Exists { key, exists: false } => self
                .fields
                .get(key.as_str())
                .map(|field| field.exists.clone())
                .unwrap_or_default(),
            Filter::Not(inner) => self.evaluate(inner),
            other => &self.live - &self.evaluate(other),
        }
    }

    fn in_set(&self, key: &str, values: &[Value]) -> RoaringBitmap {
        match self.fields.get(key) {
            Some(field) => values.iter().map(|v| field.cmp_set(CmpOp::Eq, v)).union(),
            None => RoaringBitmap::new(),
        }
    }

    fn tags_all(&self, tags: &[String]) -> RoaringBitmap {
        let mut sets = Vec::with_capacity(tags.len());
        for t in tags {
            match self.tags.get(t.as_str()) {
                Some(b) => sets.push(b),
                None => return RoaringBitmap::new(),
            }
        }
        if sets.is_empty() {
            return self.live.clone();
        }
        sets.sort_unstable_by_key(|b| b.len());
        sets.into_iter().intersection()
    }

    fn evaluate_and(&self, parts: &[Filter]) -> RoaringBitmap {
        let (negative, mut positive): (Vec<&Filter>, Vec<&Filter>) =
            parts.iter().partition(|f| Self::is_negative(f));
        positive.sort_by_cached_key(|f| self.estimate(f));
        let mut positive = positive.into_iter();
        let mut acc = match positive.next() {
            Some(first) => self.evaluate(first),
            None => self.live.clone(),
        };
        for f in positive {
            if acc.is_empty() {
                return acc;
            }
            acc &= self.evaluate(f);
        }
        for f in negative {
            if acc.is_empty() {
                return acc;
            }
            acc -= self.negated_set(f);
        }
        acc
    }

    /// A cheap upper bound of the number of matches of `f` (exact for equality,
    /// `$exists`, single tags and their negations), for query planning.
    pub fn estimate(&self, f: &Filter) -> u64 {
        self.bounds(f).1
    }

    fn bounds(&self, f: &Filter) -> Bounds {
        let n = self.live.len();
        let exact = |c: u64| (c.min(n), c.min(n));
        let complement = |(lo, hi): Bounds| (n.saturating_sub(hi), n.saturating_sub(lo));
        match f {
            Filter::All => (n, n),
            Filter::Cmp { key, op, value } => {
                let Some(field) = self.fields.get(key.as_str()) else {
                    return if *op == CmpOp::Ne { (n, n) } else { (0, 0) };
                };
                match op {
                    CmpOp::Eq => exact(field.eq_count(value)),
                    CmpOp::Ne => complement(exact(field.eq_count(value))),
                    _ => (0, field.class_count(value).min(n)),
                }
            }
            Filter::In {
                key,
                values,
                negate,
            } => {
                let in_bounds = match self.fields.get(key.as_str()) {
                    Some(field) => values.iter().fold((0, 0), |(lo, hi): Bounds, v| {
                        let c = field.eq_count(v);
                        (lo.max(c), hi.saturating_add(c))
                    }),
                    None => (0, 0),
                };
                let in_bounds = (in_bounds.0.min(n), in_bounds.1.min(n));
                if *negate {
                    complement(in_bounds)
                } else {
                    in_bounds
                }
            }
            Filter::Exists { key, exists } => {
                let present = exact(self.fields.get(key.as_str()).map_or(0, |f| f.exists.len()));
                if *exists {
                    present
                } else {
                    complement(present)
                }
            }
            Filter::TagsAll(tags) => {
                let counts = tags.iter().map(|t| {
                    self.tags
                        .get(t.as_str())
                        .map_or(0, RoaringBitmap::len)
                        .min(n)
                });
                Self::and_bounds(n, counts.map(|c| (c, c)))
            }
            Filter::TagsAny(tags) => {
                let counts = tags.iter().map(|t| {
                    self.tags
                        .get(t.as_str())
                        .map_or(0, RoaringBitmap::len)
                        .min(n)
                });
                Self::or_bounds(n, counts.map(|c| (c, c)))
            }
            Filter::And(parts) => Self::and_bounds(n, parts.iter().map(|p| self.bounds(p))),
            Filter::Or(parts) => Self::or_bounds(n, parts.iter().map(|p| self.bounds(p))),
            Filter::Not(inner) => complement(self.bounds(inner)),
        }
    }

    /// Bounds of an intersection: at most the smallest part; at least what the parts
    /// must share (Bonferroni).
    fn and_bounds(n: u64, parts: impl Iterator<Item = Bounds>) -> Bounds {
        let (mut k, mut lo_sum, mut hi) = (0u64, 0u64, n);
        for (lo, h) in parts {
            k += 1;
            lo_sum = lo_sum.saturating_add(lo);
            hi = hi.min(h);
        }
        let lo = lo_sum.saturating_sub(k.saturating_sub(1).saturating_mul(n));
        (lo.min(hi), hi)
    }

    /// Bounds of a union: at least the largest part, at most the sum.
    fn or_bounds(n: u64, parts: impl Iterator<Item = Bounds>) -> Bounds {
        let (mut lo, mut hi) = (0u64, 0u64);
        for (l, h) in parts {
            lo = lo.max(l);
            hi = hi.saturating_add(h);
        }
        (lo.min(n), hi.min(n))
    }

    /// Rough heap bytes used (bitmaps, keys and map entries).
    pub fn memory_bytes(&self) -> usize {
        size_of::<Self>()
            + bitmap_bytes(&self.live)
            + self
                .fields
                .iter()
                .map(|(k, f)| {
                    size_of::<String>() + k.capacity() + ENTRY_OVERHEAD + f.memory_bytes()
                })
                .sum::<usize>()
            + self
                .tags
                .iter()
                .map(|(k, b)| {
                    size_of::<String>()
                        + k.capacity()
                        + size_of::<RoaringBitmap>()
                        + bitmap_bytes(b)
                        + ENTRY_OVERHEAD
                })
                .sum::<usize>()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn float_key_orders_numerically() {
        let xs = [
            f64::NEG_INFINITY,
            -1e300,
            -2.5,
            -f64::MIN_POSITIVE,
            0.0,
            f64::MIN_POSITIVE,
            1.0,
            9007199254740993.0,
            f64::INFINITY,
        ];
        for w in xs.windows(2) {
            assert!(FloatKey::new(w[0]) < FloatKey::new(w[1]), "{w:?}");
        }
        assert_eq!(FloatKey::new(-0.0), FloatKey::new(0.0));
        assert_eq!(FloatKey::new(f64::NAN), None);
    }

    #[test]
    fn int_intervals_for_floats_are_exact() {
        let two53 = 1i64 << 53;
        // Only 2^53 itself equals the float 2^53; 2^53 + 1 is above it.
        let (lo, hi) = int_interval_for_float(CmpOp::Eq, two53 as f64);
        assert_eq!((lo, hi), (i128::from(two53), i128::from(two53) + 1));
        assert_eq!(
            int_interval_for_float(CmpOp::Gt, two53 as f64),
            (i128::from(two53) + 1, INT_END)
        );
        assert_eq!(
            int_interval_for_float(CmpOp::Eq, 2.5),
            (3, 3),
            "no int equals 2.5"
        );
        assert_eq!(int_interval_for_float(CmpOp::Gt, 2.5), (3, INT_END));
        assert_eq!(
            int_interval_for_float(CmpOp::Lt, -2.5),
            (i128::from(i64::MIN), -2)
        );
        assert_eq!(
            int_interval_for_float(CmpOp::Lt, f64::NEG_INFINITY),
            (i128::from(i64::MIN), i128::from(i64::MIN))
        );
        // Every i64 is below 2^63, none equals it.
        assert_eq!(
            int_interval_for_float(CmpOp::Eq, 9223372036854775808.0),
            (INT_END, INT_END)
        );
        assert_eq!(
            int_interval_for_float(CmpOp::Lt, 9223372036854775808.0),
            (i128::from(i64::MIN), INT_END)
        );
    }

    #[test]
    fn float_bounds_for_ints_are_exact() {
        let two53 = 1i64 << 53;
        let k = |f: f64| FloatKey::new(f).unwrap_or_else(|| panic!("NaN"));
        // 2^53 + 1 rounds down to 2^53: floats above it start strictly after 2^53.
        assert_eq!(float_bounds_for_int(CmpOp::Eq, two53 + 1), None);
        assert_eq!(
            float_bounds_for_int(CmpOp::Gte, two53 + 1),
            Some((Bound::Excluded(k(two53 as f64)), Bound::Unbounded))
        );
        assert_eq!(
            float_bounds_for_int(CmpOp::Lte, two53 + 1),
            Some((Bound::Unbounded, Bound::Included(k(two53 as f64))))
        );
        // i64::MAX rounds up to 2^63: the float 2^63 is above it.
        let two63 = 9223372036854775808.0;
        assert_eq!(
            float_bounds_for_int(CmpOp::Gt, i64::MAX),
            Some((Bound::Included(k(two63)), Bound::Unbounded))
        );
        assert_eq!(
            float_bounds_for_int(CmpOp::Lte, i64::MAX),
            Some((Bound::Unbounded, Bound::Excluded(k(two63))))
        );
        // Exactly representable: the float's own bounds.
        assert_eq!(
            float_bounds_for_int(CmpOp::Eq, i64::MIN),
            Some((Bound::Included(k(-two63)), Bound::Included(k(-two63))))
        );
    }
}
