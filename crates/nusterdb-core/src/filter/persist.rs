//! The byte form of a [`PayloadIndex`], as saved in a segment's maps file
//! (`segment::maps`, which documents the whole file and adds its header and CRC).
//!
//! # Layout (little-endian)
//! ```text
//! version   u64                      the index's change counter
//! live      bitmap
//! fields    u64 count, then per key in byte order:
//!             name     u32 len + UTF-8
//!             exists   bitmap
//!             ints     u64 count, then (i64 value, bitmap) ascending
//!             floats   u64 count, then (u64 float key, bitmap) ascending
//!             strs     u64 count, then (u32 len + UTF-8 value, bitmap) ascending
//!             falses   bitmap
//!             trues    bitmap
//!             num_count u64, str_count u64
//! tags      u64 count, then (u32 len + UTF-8 tag, bitmap) in byte order
//! bitmap  = u32 byte length + the roaring portable serialization
//! ```
//! A float key is the order-preserving integer the index keys floats by (`-0.0` folded
//! into `0.0`, never NaN).
//!
//! Decoding trusts nothing: every count is checked against the bytes left before
//! anything is sized by it, bitmaps go through roaring's checked deserializer, and the
//! index's invariants are checked — no empty value entry, tag or key (the index drops
//! them), every value set inside its key's `exists`, one value per slot and key,
//! `exists` and tags inside `live`, the two counts equal to what the maps hold — so a
//! decoded index answers filters exactly like the one saved.

use std::collections::{BTreeMap, HashMap};
use std::io::{self, Write};

use roaring::{MultiOps, RoaringBitmap};

use super::index::{FieldIndex, FloatKey};
use super::PayloadIndex;
use crate::storage::codec::{DecodeResult, Reader};

/// Fewest bytes a bitmap takes: its length prefix.
const MIN_BITMAP: usize = 4;
/// Fewest bytes a key takes: name length, exists, three entry counts, two bool bitmaps,
/// two counts.
const MIN_FIELD: usize = 4 + MIN_BITMAP + 3 * 8 + 2 * MIN_BITMAP + 2 * 8;

fn put_bitmap(w: &mut dyn Write, b: &RoaringBitmap) -> io::Result<()> {
    let len = u32::try_from(b.serialized_size())
        .map_err(|_| io::Error::other("a bitmap of 4 GiB or more"))?;
    w.write_all(&len.to_le_bytes())?;
    b.serialize_into(w)
}

fn put_str(w: &mut dyn Write, s: &str) -> io::Result<()> {
    let len = u32::try_from(s.len()).map_err(|_| io::Error::other("a string of 4 GiB"))?;
    w.write_all(&len.to_le_bytes())?;
    w.write_all(s.as_bytes())
}

fn put_count(w: &mut dyn Write, n: usize) -> io::Result<()> {
    w.write_all(&(n as u64).to_le_bytes())
}

/// Whether the container count in a roaring header fits in `bytes`: roaring's
/// deserializer sizes its buffers by that count (up to 65,536 containers, a few MiB)
/// before reading them, so a lying count is refused here first.
fn roaring_count_fits(bytes: &[u8]) -> bool {
    const COOKIE_NO_RUNS: u32 = 12346;
    const COOKIE_RUNS: u32 = 12347;
    let word = |at: usize| {
        let mut a = [0u8; 4];
        a.copy_from_slice(bytes.get(at..at + 4)?);
        Some(u32::from_le_bytes(a) as usize)
    };
    let Some(cookie) = word(0) else {
        return true; // Too short for any header: roaring refuses it.
    };
    // Bytes before the containers' data: cookie, (size,) run flags, 4 B per container.
    let needed = if cookie == COOKIE_NO_RUNS as usize {
        let Some(size) = word(4) else { return true };
        size.checked_mul(8).and_then(|b| b.checked_add(8))
    } else if cookie & 0xFFFF == COOKIE_RUNS as usize {
        let size = (cookie >> 16) + 1;
        Some(4 + size.div_ceil(8) + 4 * size)
    } else {
        return true; // An unknown cookie: roaring refuses it.
    };
    needed.is_some_and(|n| n <= bytes.len())
}

fn read_bitmap(r: &mut Reader<'_>, what: &str) -> DecodeResult<RoaringBitmap> {
    let len = r.u32(what)? as usize;
    let mut bytes = r.take(len, what)?;
    if !roaring_count_fits(bytes) {
        return Err(format!(
            "{what}: bitmap header counts more containers than its bytes hold"
        ));
    }
    // The checked deserializer: sorted containers and values, true cardinalities.
    let b = RoaringBitmap::deserialize_from(&mut bytes)
        .map_err(|e| format!("{what}: bad bitmap ({e})"))?;
    if !bytes.is_empty() {
        return Err(format!("{what}: {} bytes after the bitmap", bytes.len()));
    }
    Ok(b)
}

/// A non-empty bitmap inside `within`.
fn read_set(r: &mut Reader<'_>, within: &RoaringBitmap, what: &str) -> DecodeResult<RoaringBitmap> {
    let b = read_bitmap(r, what)?;
    if b.is_empty() {
        return Err(format!("{what}: an empty set is stored"));
    }
    if !b.is_subset(within) {
        return Err(format!(
            "{what}: holds slots outside its key or the live set"
        ));
    }
    Ok(b)
}

/// A map of value → non-empty bitmap ⊆ `exists`, keys unique; also the sum of the
/// bitmaps' lengths.
fn read_entries<K: Ord>(
    r: &mut Reader<'_>,
    exists: &RoaringBitmap,
    min_key: usize,
    what: &str,
    mut key: impl FnMut(&mut Reader<'_>) -> DecodeResult<K>,
) -> DecodeResult<(BTreeMap<K, RoaringBitmap>, u64)> {
    let n = r.count(min_key + MIN_BITMAP, what)?;
    let mut map = BTreeMap::new();
    let mut total = 0u64;
    for _ in 0..n {
        let k = key(r)?;
        let b = read_set(r, exists, what)?;
        total += b.len();
        if map.insert(k, b).is_some() {
            return Err(format!("{what}: a value stored twice"));
        }
    }
    Ok((map, total))
}

impl FieldIndex {
    fn encode(&self, w: &mut dyn Write) -> io::Result<()> {
        put_bitmap(w, &self.exists)?;
        put_count(w, self.ints.len())?;
        for (i, b) in &self.ints {
            w.write_all(&i.to_le_bytes())?;
            put_bitmap(w, b)?;
        }
        put_count(w, self.floats.len())?;
        for (k, b) in &self.floats {
            w.write_all(&k.0.to_le_bytes())?;
            put_bitmap(w, b)?;
        }
        put_count(w, self.strs.len())?;
        for (s, b) in &self.strs {
            put_str(w, s)?;
            put_bitmap(w, b)?;
        }
        put_bitmap(w, &self.falses)?;
        put_bitmap(w, &self.trues)?;
        w.write_all(&self.num_count.to_le_bytes())?;
        w.write_all(&self.str_count.to_le_bytes())
    }

    fn decode(r: &mut Reader<'_>, live: &RoaringBitmap, name: &str) -> DecodeResult<Self> {
        let what = |part: &str| format!("key {name:?}: {part}");
        let exists = read_set(r, live, &what("exists"))?;
        let (ints, int_total) =
            read_entries(r, &exists, 8, &what("ints"), |r| Ok(r.u64("int")? as i64))?;
        let (floats, float_total) = read_entries(r, &exists, 8, &what("floats"), |r| {
            let k = FloatKey(r.u64("float key")?);
            let bits = if k.0 >> 63 == 1 {
                k.0 & !(1 << 63)
            } else {
                !k.0
            };
            match FloatKey::new(f64::from_bits(bits)) {
                Some(again) if again == k => Ok(k),
                _ => Err(format!("float key {:#x} is no float the index keeps", k.0)),
            }
        })?;
        let (strs, str_total) = read_entries(r, &exists, 4, &what("strs"), |r| r.string("str"))?;
        let bool_set = |r: &mut Reader<'_>, part: &str| -> DecodeResult<RoaringBitmap> {
            let b = read_bitmap(r, &what(part))?;
            if !b.is_subset(&exists) {
                return Err(what(&format!("{part}: holds slots outside exists")));
            }
            Ok(b)
        };
        let falses = bool_set(r, "falses")?;
        let trues = bool_set(r, "trues")?;
        let num_count = r.u64("num_count")?;
        let str_count = r.u64("str_count")?;
        if num_count != int_total + float_total || str_count != str_total {
            return Err(what(&format!(
                "counts {num_count}, {str_count} disagree with the sets ({}, {str_total})",
                int_total + float_total
            )));
        }
        // One value per slot: the value sets are disjoint.
        let values = ints
            .values()
            .chain(floats.values())
            .chain(strs.values())
            .chain([&falses, &trues])
            .union();
        if values.len() != num_count + str_count + falses.len() + trues.len() {
            return Err(what("a slot holds two values"));
        }
        Ok(FieldIndex {
            exists,
            ints,
            floats,
            strs,
            falses,
            trues,
            num_count,
            str_count,
        })
    }
}

impl PayloadIndex {
    /// Writes the index in the layout of the [module docs](self), keys and tags in
    /// byte order (the same index always gives the same bytes).
    ///
    /// # Errors
    /// I/O errors from `w`.
    pub(crate) fn encode(&self, w: &mut dyn Write) -> io::Result<()> {
        w.write_all(&self.version.to_le_bytes())?;
        put_bitmap(w, &self.live)?;
        let mut fields: Vec<(&String, &FieldIndex)> = self.fields.iter().collect();
        fields.sort_unstable_by_key(|(k, _)| k.as_str());
        put_count(w, fields.len())?;
        for (name, field) in fields {
            put_str(w, name)?;
            field.encode(w)?;
        }
        let mut tags: Vec<(&String, &RoaringBitmap)> = self.tags.iter().collect();
        tags.sort_unstable_by_key(|(k, _)| k.as_str());
        put_count(w, tags.len())?;
        for (tag, b) in tags {
            put_str(w, tag)?;
            put_bitmap(w, b)?;
        }
        Ok(())
    }

    /// Reads an index written by [`PayloadIndex::encode`], checking every invariant
    /// (see the module docs).
    ///
    /// # Errors
    /// Truncated or malformed bytes or a broken invariant, as a message.
    pub(crate) fn decode(r: &mut Reader<'_>) -> DecodeResult<Self> {
        let version = r.u64("payload version")?;
        let live = read_bitmap(r, "live set")?;
        let n = r.count(MIN_FIELD, "metadata keys")?;
        let mut fields = HashMap::with_capacity(n);
        for _ in 0..n {
            let name = r.string("metadata key")?;
            let field = FieldIndex::decode(r, &live, &name)?;
            if fields.insert(name, field).is_some() {
                return Err("a metadata key stored twice".into());
            }
        }
        let n = r.count(4 + MIN_BITMAP, "tags")?;
        let mut tags = HashMap::with_capacity(n);
        for _ in 0..n {
            let tag = r.string("tag")?;
            let b = read_set(r, &live, &format!("tag {tag:?}"))?;
            if tags.insert(tag, b).is_some() {
                return Err("a tag stored twice".into());
            }
        }
        Ok(PayloadIndex {
            live,
            fields,
            tags,
            version,
        })
    }
}

/// Generators shared by the tests of this module, of `index` and of `segment::maps`.
#[cfg(test)]
pub(crate) mod strategies {
    use std::collections::{BTreeMap, BTreeSet};

    use proptest::prelude::*;

    use crate::filter::{CmpOp, Filter};
    use crate::metadata::{Metadata, Value};

    const KEYS: [&str; 4] = ["a", "b", "ключ", "c d"];
    const TAGS: [&str; 4] = ["t1", "t2", "ü", "x y"];
    const STRS: [&str; 6] = ["", "a", "ab", "b", "é", "日本"];

    /// Every kind of value, with the extremes of each.
    pub(crate) fn value() -> impl Strategy<Value = Value> {
        prop_oneof![
            (-3i64..4).prop_map(Value::Int),
            proptest::sample::select(vec![i64::MIN, i64::MAX, (1 << 53) + 1, -(1 << 53)])
                .prop_map(Value::Int),
            any::<i64>().prop_map(Value::Int),
            proptest::sample::select(vec![
                -0.0,
                0.0,
                2.5,
                -1.0,
                3.0,
                f64::MAX,
                f64::MIN,
                1e300,
                f64::MIN_POSITIVE,
                5e-324,
                -5e-324,
                9007199254740992.0,
            ])
            .prop_map(Value::Float),
            any::<f64>()
                .prop_filter("finite", |f| f.is_finite())
                .prop_map(Value::Float),
            proptest::sample::select(STRS.to_vec()).prop_map(|s| Value::Str(s.to_string())),
            "\\PC{0,6}".prop_map(Value::Str),
            any::<bool>().prop_map(Value::Bool),
        ]
    }

    pub(crate) fn metadata() -> impl Strategy<Value = Metadata> {
        (
            proptest::collection::btree_map(
                proptest::sample::select(KEYS.to_vec()),
                value(),
                0..=4,
            ),
            proptest::collection::btree_set(proptest::sample::select(TAGS.to_vec()), 0..=3),
        )
            .prop_map(|(fields, tags)| {
                let fields: BTreeMap<String, Value> = fields
                    .into_iter()
                    .map(|(k, v)| (k.to_string(), v))
                    .collect();
                let tags: BTreeSet<String> = tags.into_iter().map(str::to_string).collect();
                Metadata::from_stored(fields, tags, 0, 0, 1)
            })
    }

    fn key() -> impl Strategy<Value = String> {
        // "zz" is never set: missing-key semantics.
        proptest::sample::select(vec!["a", "b", "ключ", "c d", "zz"]).prop_map(str::to_string)
    }

    fn tag_list() -> impl Strategy<Value = Vec<String>> {
        proptest::collection::vec(
            proptest::sample::select(vec!["t1", "t2", "ü", "x y", "nope"]).prop_map(str::to_string),
            0..=3,
        )
    }

    pub(crate) fn filter() -> impl Strategy<Value = Filter> {
        let op = proptest::sample::select(vec![
            CmpOp::Eq,
            CmpOp::Ne,
            CmpOp::Gt,
            CmpOp::Gte,
            CmpOp::Lt,
            CmpOp::Lte,
        ]);
        let leaf = prop_oneof![
            1 => Just(Filter::All),
            6 => (key(), op, value()).prop_map(|(key, op, value)| Filter::Cmp { key, op, value }),
            3 => (key(), proptest::collection::vec(value(), 0..4), any::<bool>())
                .prop_map(|(key, values, negate)| Filter::In { key, values, negate }),
            2 => (key(), any::<bool>()).prop_map(|(key, exists)| Filter::Exists { key, exists }),
            1 => tag_list().prop_map(Filter::TagsAll),
            1 => tag_list().prop_map(Filter::TagsAny),
        ];
        leaf.prop_recursive(3, 16, 3, |inner| {
            prop_oneof![
                proptest::collection::vec(inner.clone(), 1..3).prop_map(Filter::And),
                proptest::collection::vec(inner.clone(), 1..3).prop_map(Filter::Or),
                inner.prop_map(|f| Filter::Not(Box::new(f))),
            ]
        })
    }

    /// Distinct slots with their metadata, spread so bitmaps get array and bitmap
    /// containers over several keys.
    pub(crate) fn data(max: usize) -> impl Strategy<Value = Vec<(u32, Metadata)>> {
        proptest::collection::btree_map(
            prop_oneof![0u32..300, 65_000u32..140_000, any::<u32>()],
            metadata(),
            0..max,
        )
        .prop_map(|m| m.into_iter().collect())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use proptest::prelude::*;

    use super::strategies::{data, filter};
    use super::*;
    use crate::filter::Filter;
    use crate::metadata::Metadata;

    fn build(data: &[(u32, Metadata)]) -> PayloadIndex {
        let mut p = PayloadIndex::new();
        for (s, m) in data {
            p.insert(*s, m);
        }
        p
    }

    fn round_trip(p: &PayloadIndex) -> DecodeResult<PayloadIndex> {
        let mut bytes = Vec::new();
        p.encode(&mut bytes).unwrap();
        let mut r = Reader::new(&bytes);
        let back = PayloadIndex::decode(&mut r)?;
        r.finish("payload")?;
        Ok(back)
    }

    fn same_answers(
        a: &PayloadIndex,
        b: &PayloadIndex,
        filters: &[Filter],
    ) -> Result<(), TestCaseError> {
        prop_assert_eq!(a.live(), b.live());
        prop_assert_eq!(a.keys(), b.keys());
        prop_assert_eq!(a.memory_bytes(), b.memory_bytes());
        for f in filters {
            prop_assert_eq!(a.evaluate(f), b.evaluate(f), "filter {:?}", f);
            prop_assert_eq!(a.estimate(f), b.estimate(f), "estimate of {:?}", f);
        }
        Ok(())
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        /// Decoding what was encoded gives an index answering every filter alike,
        /// with removals behind it (emptied entries gone) and the same version.
        #[test]
        fn encoded_index_decodes_to_the_same_answers(
            data in data(60),
            removed in proptest::collection::vec(any::<prop::sample::Index>(), 0..20),
            filters in proptest::collection::vec(filter(), 1..12),
        ) {
            let mut p = build(&data);
            if !data.is_empty() {
                for i in removed {
                    let (s, m) = i.get(&data);
                    p.remove(*s, m);
                }
            }
            let back = round_trip(&p).unwrap();
            prop_assert_eq!(back.version(), p.version());
            same_answers(&p, &back, &filters)?;
        }

        /// `remove_slots(S)` leaves the index built from the other slots alone: same
        /// answers, same estimates, same memory (no emptied entry left behind).
        #[test]
        fn remove_slots_equals_a_build_without_them(
            data in data(80),
            pick in proptest::collection::vec(any::<bool>(), 80),
            extra in proptest::collection::vec(any::<u32>(), 0..4),
            filters in proptest::collection::vec(filter(), 1..12),
        ) {
            let mut p = build(&data);
            let mut gone: RoaringBitmap = data
                .iter()
                .zip(&pick)
                .filter(|(_, &g)| g)
                .map(|((s, _), _)| *s)
                .collect();
            // Slots that are not in the index change nothing.
            gone.extend(extra.iter().copied().filter(|x| !data.iter().any(|(s, _)| s == x)));
            let kept: Vec<(u32, Metadata)> =
                data.iter().filter(|(s, _)| !gone.contains(*s)).cloned().collect();
            let v = p.version();
            p.remove_slots(&gone);
            prop_assert!(p.version() > v);
            let reference = build(&kept);
            same_answers(&p, &reference, &filters)?;
            for f in &filters {
                prop_assert!(p.evaluate(f).is_disjoint(&gone));
            }
            // And the result still satisfies every invariant the decoder checks.
            round_trip(&p).unwrap();
        }
    }

    /// A bitmap whose header counts more containers than its bytes hold is refused
    /// before roaring sizes anything by that count; real headers pass.
    #[test]
    fn lying_bitmap_headers_are_refused_first() {
        let mut runs = RoaringBitmap::new();
        runs.insert_range(0..300_000);
        runs.optimize();
        let mut cookies = Vec::new();
        for b in [
            RoaringBitmap::new(),
            (0..10).collect(),
            (0..200_000).step_by(3).collect(),
            runs,
        ] {
            let mut bytes = Vec::new();
            b.serialize_into(&mut bytes).unwrap();
            assert!(roaring_count_fits(&bytes), "{b:?}");
            cookies.push(u16::from_le_bytes([bytes[0], bytes[1]]));
        }
        assert!(
            cookies.contains(&12346) && cookies.contains(&12347),
            "{cookies:?}"
        );
        let mut lie = 12346u32.to_le_bytes().to_vec();
        lie.extend(65_536u32.to_le_bytes());
        assert!(!roaring_count_fits(&lie));
        assert!(!roaring_count_fits(&(12347u32 | 0xFFFF_0000).to_le_bytes()));
        let mut framed = (lie.len() as u32).to_le_bytes().to_vec();
        framed.extend(&lie);
        assert!(read_bitmap(&mut Reader::new(&framed), "b").is_err());
    }

    /// Decoded bytes that break an invariant are refused, each with a message.
    #[test]
    fn broken_invariants_are_refused() {
        let m = |fields: Vec<(&str, crate::metadata::Value)>| {
            Metadata::from_stored(
                fields
                    .into_iter()
                    .map(|(k, v)| (k.to_string(), v))
                    .collect(),
                ["t".to_string()].into(),
                0,
                0,
                1,
            )
        };
        use crate::metadata::Value::*;
        let good = build(&[
            (1, m(vec![("k", Int(3)), ("f", Float(2.5))])),
            (2, m(vec![("k", Str("x".into()))])),
        ]);
        round_trip(&good).unwrap();
        let mut cases: Vec<(&str, PayloadIndex)> = Vec::new();
        let mut p = good.clone();
        p.live.remove(2);
        cases.push(("slot outside live", p));
        let mut p = good.clone();
        if let Some(f) = p.fields.get_mut("k") {
            f.num_count += 1;
        }
        cases.push(("num_count", p));
        let mut p = good.clone();
        if let Some(f) = p.fields.get_mut("k") {
            f.strs.insert("y".into(), RoaringBitmap::new());
        }
        cases.push(("empty entry", p));
        let mut p = good.clone();
        if let Some(f) = p.fields.get_mut("k") {
            f.trues.insert(1);
        }
        cases.push(("two values", p));
        let mut p = good.clone();
        if let Some(f) = p.fields.get_mut("f") {
            let b = f.floats.pop_first().unwrap().1;
            f.floats
                .insert(FloatKey(0x7FF8_0000_0000_0000 | (1 << 63)), b);
        }
        cases.push(("NaN key", p));
        let mut p = good.clone();
        p.tags.insert("e".into(), RoaringBitmap::new());
        cases.push(("empty tag", p));
        let mut p = good;
        p.fields.insert("z".into(), FieldIndex::default());
        cases.push(("empty key", p));
        for (what, p) in cases {
            assert!(round_trip(&p).is_err(), "{what}");
        }
    }
}
