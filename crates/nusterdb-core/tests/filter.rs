//! The filter engine: parse errors (paths and messages), the semantics table, and
//! property tests that `PayloadIndex::evaluate` equals `Filter::matches` slot by slot,
//! before and after removals, that the parser never panics, and that numbers compare
//! exactly across int and float (against an `i128` reference) in both.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::{BTreeMap, BTreeSet};

use std::cmp::Ordering;

use nusterdb_core::filter::eval::{cmp_int_float, cmp_num, compare_op};
use nusterdb_core::filter::{CmpOp, Filter, FilterInput, PayloadIndex, RoaringBitmap};
use nusterdb_core::{Error, Metadata, Value};
use proptest::prelude::*;

// ---------------------------------------------------------------- helpers

fn s(x: &str) -> FilterInput {
    FilterInput::Str(x.to_string())
}
fn i(x: i64) -> FilterInput {
    FilterInput::Int(x)
}
fn fl(x: f64) -> FilterInput {
    FilterInput::Float(x)
}
fn b(x: bool) -> FilterInput {
    FilterInput::Bool(x)
}
fn list(items: Vec<FilterInput>) -> FilterInput {
    FilterInput::List(items)
}
fn map(entries: Vec<(&str, FilterInput)>) -> FilterInput {
    FilterInput::Map(
        entries
            .into_iter()
            .map(|(k, v)| (k.to_string(), v))
            .collect(),
    )
}

fn meta(fields: Vec<(&str, Value)>, tags: &[&str]) -> Metadata {
    Metadata::with_parts(
        fields.into_iter().map(|(k, v)| (k.to_string(), v)),
        tags.iter().map(|t| t.to_string()),
    )
    .unwrap()
}

fn parse(input: &FilterInput) -> Filter {
    Filter::parse(input).unwrap_or_else(|e| panic!("{e}"))
}

fn parse_err(input: &FilterInput) -> (String, String) {
    match Filter::parse(input) {
        Err(Error::Filter { at, msg }) => (at, msg),
        other => panic!("expected Error::Filter, got {other:?}"),
    }
}

fn assert_err(input: FilterInput, at: &str, msg_parts: &[&str]) {
    let (got_at, msg) = parse_err(&input);
    assert_eq!(got_at, at, "path (message: {msg})");
    for part in msg_parts {
        assert!(msg.contains(part), "message {msg:?} lacks {part:?}");
    }
}

/// Slots (in `metas` order) where `f` matches, via the oracle.
fn oracle(f: &Filter, metas: &[(u32, Metadata)]) -> RoaringBitmap {
    metas
        .iter()
        .filter(|(_, m)| f.matches(m))
        .map(|(slot, _)| *slot)
        .collect()
}

// ---------------------------------------------------------------- parse errors

#[test]
fn filter_error_unknown_operators_list_valid_ones() {
    assert_err(
        map(vec![("year", map(vec![("$gtx", i(1))]))]),
        r#"filter["year"]["$gtx"]"#,
        &[
            "unknown operator \"$gtx\"",
            "$eq, $ne, $gt, $gte, $lt, $lte, $in, $nin, $exists",
        ],
    );
    assert_err(
        map(vec![("$nor", list(vec![]))]),
        r#"filter["$nor"]"#,
        &["unknown operator \"$nor\"", "$and, $or, $not, $tags"],
    );
    assert_err(
        map(vec![("$gt", i(3))]),
        r#"filter["$gt"]"#,
        &["field operator"],
    );
    assert_err(
        map(vec![("a", map(vec![("$not", map(vec![]))]))]),
        r#"filter["a"]["$not"]"#,
        &["filter-level operator", "$exists"],
    );
    assert_err(
        map(vec![("$tags", map(vec![("$none", list(vec![]))]))]),
        r#"filter["$tags"]["$none"]"#,
        &["$all, $any"],
    );
}

#[test]
fn filter_error_wrong_operand_types() {
    assert_err(
        map(vec![("a", map(vec![("$in", i(3))]))]),
        r#"filter["a"]["$in"]"#,
        &["$in needs a list", "an int"],
    );
    assert_err(
        map(vec![("a", map(vec![("$nin", s("x"))]))]),
        r#"filter["a"]["$nin"]"#,
        &["$nin needs a list", "a str"],
    );
    assert_err(
        map(vec![("a", map(vec![("$exists", i(1))]))]),
        r#"filter["a"]["$exists"]"#,
        &["$exists needs a bool", "an int"],
    );
    assert_err(
        map(vec![("$and", map(vec![]))]),
        r#"filter["$and"]"#,
        &["$and needs a non-empty list of filter maps", "a map"],
    );
    assert_err(
        map(vec![("$or", list(vec![]))]),
        r#"filter["$or"]"#,
        &["non-empty", "empty list"],
    );
    assert_err(
        map(vec![(
            "$or",
            list(vec![map(vec![("a", i(1))]), map(vec![]), i(5)]),
        )]),
        r#"filter["$or"][2]"#,
        &["filter maps", "an int"],
    );
    assert_err(
        map(vec![("$not", list(vec![]))]),
        r#"filter["$not"]"#,
        &["$not needs a filter map", "a list"],
    );
    assert_err(
        map(vec![("$tags", list(vec![s("a")]))]),
        r#"filter["$tags"]"#,
        &["$all", "a list"],
    );
    assert_err(
        map(vec![("$tags", map(vec![]))]),
        r#"filter["$tags"]"#,
        &["an empty map"],
    );
    assert_err(
        map(vec![("$tags", map(vec![("$all", s("a"))]))]),
        r#"filter["$tags"]["$all"]"#,
        &["list of tag strings"],
    );
    assert_err(
        map(vec![(
            "$tags",
            map(vec![("$any", list(vec![s("a"), i(1)]))]),
        )]),
        r#"filter["$tags"]["$any"][1]"#,
        &["tags must be strings"],
    );
    assert_err(
        map(vec![("$tags", map(vec![("$any", list(vec![s("")]))]))]),
        r#"filter["$tags"]["$any"][0]"#,
        &["tags must not be empty"],
    );
    assert_err(s("x"), "filter", &["a filter must be a map", "a str"]);
}

#[test]
fn filter_error_non_scalar_values_null_nan_and_keys() {
    assert_err(
        map(vec![("a", FilterInput::Null)]),
        r#"filter["a"]"#,
        &["null", "$exists"],
    );
    assert_err(
        map(vec![("a", map(vec![("$ne", FilterInput::Null)]))]),
        r#"filter["a"]["$ne"]"#,
        &["null"],
    );
    assert_err(
        map(vec![("a", list(vec![i(1)]))]),
        r#"filter["a"]"#,
        &["a list is not a comparison value", "$in"],
    );
    assert_err(
        map(vec![(
            "a",
            map(vec![("$in", list(vec![i(1), list(vec![])]))]),
        )]),
        r#"filter["a"]["$in"][1]"#,
        &["a list is not a comparison value"],
    );
    assert_err(
        map(vec![("a", map(vec![("$eq", map(vec![("$gt", i(1))]))]))]),
        r#"filter["a"]["$eq"]"#,
        &["a map is not a comparison value"],
    );
    assert_err(
        map(vec![("a", map(vec![("b", i(1))]))]),
        r#"filter["a"]"#,
        &["a map is not a comparison value"],
    );
    assert_err(
        map(vec![("a", map(vec![("$gt", i(1)), ("b", i(2))]))]),
        r#"filter["a"]"#,
        &["mixes $ operators and plain keys"],
    );
    assert_err(
        map(vec![("a", map(vec![]))]),
        r#"filter["a"]"#,
        &["empty operator map"],
    );
    assert_err(
        map(vec![("a", map(vec![("$lt", fl(f64::NAN))]))]),
        r#"filter["a"]["$lt"]"#,
        &["NaN"],
    );
    assert_err(
        map(vec![(
            "a",
            map(vec![("$in", list(vec![fl(1.0), fl(f64::NAN)]))]),
        )]),
        r#"filter["a"]["$in"][1]"#,
        &["NaN"],
    );
    assert_err(
        map(vec![("", i(1))]),
        r#"filter[""]"#,
        &["keys must not be empty"],
    );
    assert_err(
        map(vec![(
            "$or",
            list(vec![map(vec![("x", i(1))]), map(vec![("", i(1))])]),
        )]),
        r#"filter["$or"][1][""]"#,
        &["keys must not be empty"],
    );
    assert_err(
        map(vec![("a", i(1)), ("a", i(2))]),
        r#"filter["a"]"#,
        &["duplicate key"],
    );
    assert_err(
        map(vec![("a", map(vec![("$gt", i(1)), ("$gt", i(2))]))]),
        r#"filter["a"]["$gt"]"#,
        &["duplicate key"],
    );
}

#[test]
fn filter_error_paths_go_through_nesting() {
    assert_err(
        map(vec![(
            "$or",
            list(vec![
                map(vec![("a", i(1))]),
                map(vec![("b", i(1))]),
                map(vec![("tag", FilterInput::Null)]),
            ]),
        )]),
        r#"filter["$or"][2]["tag"]"#,
        &["null"],
    );
    assert_err(
        map(vec![(
            "$not",
            map(vec![(
                "$and",
                list(vec![map(vec![(
                    "year",
                    map(vec![("$gte", s("x")), ("$bad", i(1))]),
                )])]),
            )]),
        )]),
        r#"filter["$not"]["$and"][0]["year"]["$bad"]"#,
        &["unknown operator"],
    );
}

#[test]
fn filter_deep_nesting_is_an_error_not_a_stack_overflow() {
    for depth in [65usize, 1000, 100_000] {
        let mut f = map(vec![("a", i(1))]);
        for _ in 0..depth {
            f = map(vec![("$not", f)]);
        }
        let (at, msg) = parse_err(&f);
        assert!(msg.contains("deeper than 64 levels"), "{msg}");
        assert_eq!(at.matches("[\"$not\"]").count(), 64, "{at}");
        // Dismantle iteratively: dropping a 100 000-deep tree recursively could itself
        // overflow the test thread's stack.
        let mut cur = f;
        while let FilterInput::Map(mut entries) = cur {
            cur = match entries.pop() {
                Some((_, inner)) => inner,
                None => break,
            };
        }
    }
    // Through $and / $or lists too.
    let mut f = map(vec![("a", i(1))]);
    for k in 0..1000 {
        f = map(vec![(
            if k % 2 == 0 { "$and" } else { "$or" },
            list(vec![f]),
        )]);
    }
    let (_, msg) = parse_err(&f);
    assert!(msg.contains("deeper than 64"), "{msg}");

    // 64 levels are fine.
    let mut f = map(vec![("a", i(1))]);
    for _ in 1..64 {
        f = map(vec![("$not", f)]);
    }
    assert!(Filter::parse(&f).is_ok());
}

#[test]
fn filter_parse_shapes() {
    assert_eq!(parse(&map(vec![])), Filter::All);
    assert_eq!(
        parse(&map(vec![(
            "year",
            map(vec![("$gte", i(2020)), ("$lt", i(2024))])
        )])),
        Filter::And(vec![
            Filter::Cmp {
                key: "year".into(),
                op: CmpOp::Gte,
                value: Value::Int(2020)
            },
            Filter::Cmp {
                key: "year".into(),
                op: CmpOp::Lt,
                value: Value::Int(2024)
            },
        ])
    );
    assert_eq!(
        parse(&map(vec![(
            "$tags",
            map(vec![("$all", list(vec![s("a")])), ("$any", list(vec![]))])
        )])),
        Filter::And(vec![
            Filter::TagsAll(vec!["a".into()]),
            Filter::TagsAny(vec![]),
        ])
    );
    assert_eq!(
        parse(&map(vec![(
            "k",
            map(vec![("$nin", list(vec![i(1), s("x")]))])
        )])),
        Filter::In {
            key: "k".into(),
            values: vec![Value::Int(1), Value::Str("x".into())],
            negate: true
        }
    );
    // Infinity is a valid bound.
    assert!(Filter::parse(&map(vec![("k", map(vec![("$lt", fl(f64::INFINITY))]))])).is_ok());
}

// ---------------------------------------------------------------- semantics table

fn table_data() -> Vec<(u32, Metadata)> {
    let two53 = 1i64 << 53;
    vec![
        (
            0,
            meta(
                vec![("n", Value::Int(3)), ("s", Value::Str("apple".into()))],
                &["red", "fruit"],
            ),
        ),
        (
            1,
            meta(
                vec![("n", Value::Float(3.0)), ("s", Value::Str("banana".into()))],
                &["yellow", "fruit"],
            ),
        ),
        (
            2,
            meta(
                vec![("n", Value::Float(3.5)), ("b", Value::Bool(true))],
                &["red"],
            ),
        ),
        (
            3,
            meta(
                vec![("n", Value::Str("3".into())), ("b", Value::Bool(false))],
                &[],
            ),
        ),
        (4, meta(vec![("b", Value::Bool(true))], &["fruit"])),
        (5, meta(vec![("n", Value::Int(two53 + 1))], &[])),
        (6, meta(vec![("n", Value::Int(two53))], &[])),
        (
            7,
            meta(
                vec![("n", Value::Float(-0.0)), ("s", Value::Str("Apple".into()))],
                &[],
            ),
        ),
        (
            1000,
            meta(
                vec![("n", Value::Int(-5)), ("s", Value::Str("".into()))],
                &["red"],
            ),
        ),
        (4_000_000_000, meta(vec![], &[])),
    ]
}

#[test]
fn filter_semantics_table() {
    let data = table_data();
    let mut index = PayloadIndex::new();
    for (slot, m) in &data {
        index.insert(*slot, m);
    }
    let two53 = 1i64 << 53;
    let cases: Vec<(FilterInput, Vec<u32>)> = vec![
        (
            map(vec![]),
            vec![0, 1, 2, 3, 4, 5, 6, 7, 1000, 4_000_000_000],
        ),
        // numeric cross-type equality
        (map(vec![("n", i(3))]), vec![0, 1]),
        (map(vec![("n", fl(3.0))]), vec![0, 1]),
        (map(vec![("n", i(0))]), vec![7]),
        (map(vec![("n", fl(0.0))]), vec![7]),
        (map(vec![("n", map(vec![("$gt", i(3))]))]), vec![2, 5, 6]),
        (
            map(vec![("n", map(vec![("$gte", fl(3.0)), ("$lt", fl(3.5))]))]),
            vec![0, 1],
        ),
        (
            map(vec![("n", map(vec![("$lte", fl(3.25))]))]),
            vec![0, 1, 7, 1000],
        ),
        // large ints: exact among ints and against floats (2^53 + 1 > 2^53 as a float)
        (map(vec![("n", i(two53))]), vec![6]),
        (map(vec![("n", i(two53 + 1))]), vec![5]),
        (map(vec![("n", fl(two53 as f64))]), vec![6]),
        (map(vec![("n", map(vec![("$gt", i(two53))]))]), vec![5]),
        (
            map(vec![("n", map(vec![("$gt", fl(two53 as f64))]))]),
            vec![5],
        ),
        (
            map(vec![("n", map(vec![("$lt", fl((two53 + 2) as f64))]))]),
            vec![0, 1, 2, 5, 6, 7, 1000],
        ),
        (
            map(vec![(
                "n",
                map(vec![("$in", list(vec![fl(two53 as f64)]))]),
            )]),
            vec![6],
        ),
        (
            map(vec![("n", map(vec![("$ne", fl(two53 as f64))]))]),
            vec![0, 1, 2, 3, 4, 5, 7, 1000, 4_000_000_000],
        ),
        // strings: byte order, only with strings
        (map(vec![("s", map(vec![("$gt", s("apple"))]))]), vec![1]),
        (
            map(vec![("s", map(vec![("$lt", s("apple"))]))]),
            vec![7, 1000],
        ),
        (map(vec![("n", s("3"))]), vec![3]),
        // type mismatches are false, never errors
        (map(vec![("n", map(vec![("$gt", s("abc"))]))]), vec![]),
        (map(vec![("n", map(vec![("$lt", s("abc"))]))]), vec![3]),
        (map(vec![("b", i(1))]), vec![]),
        (map(vec![("n", b(true))]), vec![]),
        // bools: equality, and false < true
        (map(vec![("b", b(true))]), vec![2, 4]),
        (map(vec![("b", map(vec![("$gt", b(false))]))]), vec![2, 4]),
        (map(vec![("b", map(vec![("$lt", b(false))]))]), vec![]),
        // $ne / $nin match missing keys and other types
        (
            map(vec![("b", map(vec![("$ne", b(true))]))]),
            vec![0, 1, 3, 5, 6, 7, 1000, 4_000_000_000],
        ),
        (
            map(vec![("n", map(vec![("$ne", i(3))]))]),
            vec![2, 3, 4, 5, 6, 7, 1000, 4_000_000_000],
        ),
        (
            map(vec![(
                "n",
                map(vec![("$nin", list(vec![i(3), s("3"), fl(3.5)]))]),
            )]),
            vec![4, 5, 6, 7, 1000, 4_000_000_000],
        ),
        (
            map(vec![("n", map(vec![("$in", list(vec![i(3), s("3")]))]))]),
            vec![0, 1, 3],
        ),
        // empty $in / $nin
        (map(vec![("n", map(vec![("$in", list(vec![]))]))]), vec![]),
        (
            map(vec![("zz", map(vec![("$nin", list(vec![]))]))]),
            vec![0, 1, 2, 3, 4, 5, 6, 7, 1000, 4_000_000_000],
        ),
        // $exists
        (
            map(vec![("b", map(vec![("$exists", b(true))]))]),
            vec![2, 3, 4],
        ),
        (
            map(vec![("s", map(vec![("$exists", b(false))]))]),
            vec![2, 3, 4, 5, 6, 4_000_000_000],
        ),
        (map(vec![("zz", map(vec![("$exists", b(true))]))]), vec![]),
        // missing key with positive operators
        (map(vec![("zz", i(1))]), vec![]),
        (
            map(vec![("zz", map(vec![("$ne", i(1))]))]),
            vec![0, 1, 2, 3, 4, 5, 6, 7, 1000, 4_000_000_000],
        ),
        // tags
        (
            map(vec![(
                "$tags",
                map(vec![("$all", list(vec![s("red"), s("fruit")]))]),
            )]),
            vec![0],
        ),
        (
            map(vec![(
                "$tags",
                map(vec![("$any", list(vec![s("yellow"), s("red")]))]),
            )]),
            vec![0, 1, 2, 1000],
        ),
        (
            map(vec![(
                "$tags",
                map(vec![
                    ("$all", list(vec![s("fruit")])),
                    ("$any", list(vec![s("red"), s("none")])),
                ]),
            )]),
            vec![0],
        ),
        (
            map(vec![("$tags", map(vec![("$all", list(vec![]))]))]),
            vec![0, 1, 2, 3, 4, 5, 6, 7, 1000, 4_000_000_000],
        ),
        (
            map(vec![("$tags", map(vec![("$any", list(vec![]))]))]),
            vec![],
        ),
        (
            map(vec![("$tags", map(vec![("$all", list(vec![s("Red")]))]))]),
            vec![],
        ),
        // logic
        (
            map(vec![(
                "$or",
                list(vec![map(vec![("n", i(3))]), map(vec![("b", b(false))])]),
            )]),
            vec![0, 1, 3],
        ),
        (
            map(vec![("$not", map(vec![("n", i(3))]))]),
            vec![2, 3, 4, 5, 6, 7, 1000, 4_000_000_000],
        ),
        (map(vec![("$not", map(vec![]))]), vec![]),
        (
            map(vec![
                ("$tags", map(vec![("$any", list(vec![s("fruit")]))])),
                ("$not", map(vec![("s", s("apple"))])),
                ("b", map(vec![("$ne", b(false))])),
            ]),
            vec![1, 4],
        ),
        (
            map(vec![(
                "$and",
                list(vec![
                    map(vec![("n", map(vec![("$gte", i(0))]))]),
                    map(vec![("n", map(vec![("$lt", i(4))]))]),
                ]),
            )]),
            vec![0, 1, 2, 7],
        ),
    ];
    for (input, expected) in cases {
        let f = parse(&input);
        let expected: RoaringBitmap = expected.into_iter().collect();
        assert_eq!(oracle(&f, &data), expected, "matches() for {f:?}");
        assert_eq!(index.evaluate(&f), expected, "evaluate() for {f:?}");
        assert!(index.estimate(&f) >= expected.len(), "estimate for {f:?}");
    }
}

#[test]
fn filter_estimates_are_exact_for_equality_and_exists() {
    let data = table_data();
    let mut index = PayloadIndex::new();
    for (slot, m) in &data {
        index.insert(*slot, m);
    }
    assert_eq!(index.len(), 10);
    assert_eq!(index.estimate(&parse(&map(vec![("n", i(3))]))), 2);
    assert_eq!(
        index.estimate(&parse(&map(vec![("n", fl(9007199254740992.0))]))),
        1
    );
    // 2^53 + 1 is stored as an int only; no float equals it.
    assert_eq!(
        index.estimate(&parse(&map(vec![("n", i((1 << 53) + 1))]))),
        1
    );
    assert_eq!(
        index.estimate(&parse(&map(vec![("n", map(vec![("$ne", i(3))]))]))),
        8
    );
    assert_eq!(
        index.estimate(&parse(&map(vec![("b", map(vec![("$exists", b(false))]))]))),
        7
    );
    assert_eq!(index.estimate(&Filter::All), 10);
    assert_eq!(index.keys(), vec!["b", "n", "s"]);
}

#[test]
fn filter_churn_returns_memory_to_baseline() {
    let mut index = PayloadIndex::new();
    let empty = index.memory_bytes();
    let data = table_data();
    for round in 0..20u32 {
        for (slot, m) in &data {
            index.insert(slot.wrapping_add(round * 7), m);
        }
        assert!(index.memory_bytes() > empty);
        for (slot, m) in &data {
            index.remove(slot.wrapping_add(round * 7), m);
        }
        assert_eq!(index.len(), 0);
        assert!(index.is_empty());
        assert_eq!(index.memory_bytes(), empty, "round {round}");
        assert!(index.keys().is_empty());
    }
}

// ---------------------------------------------------------------- properties

const KEYS: [&str; 4] = ["a", "b", "c", "d"];
const TAGS: [&str; 4] = ["t1", "t2", "t3", "t4"];
const STRS: [&str; 6] = ["", "a", "ab", "b", "ba", "é"];

/// Numbers around the places where int/float comparison is delicate.
fn interesting_numbers() -> Vec<i64> {
    let p53 = 1i64 << 53;
    let p60 = 1i64 << 60;
    vec![
        0,
        1,
        -1,
        3,
        p53 - 1,
        p53,
        p53 + 1,
        p53 + 2,
        -p53 - 1,
        p60,
        p60 + 1,
        p60 - 1,
        -p60,
        -p60 - 1,
        i64::MAX,
        i64::MIN,
    ]
}

fn value_strategy() -> impl Strategy<Value = Value> {
    let nums = interesting_numbers();
    let nums2 = nums.clone();
    prop_oneof![
        (-4i64..5).prop_map(Value::Int),
        (-8i32..9).prop_map(|h| Value::Float(f64::from(h) / 2.0)),
        proptest::sample::select(nums).prop_map(Value::Int),
        proptest::sample::select(nums2).prop_map(|n| Value::Float(n as f64)),
        proptest::sample::select(float_anchors()).prop_map(Value::Float),
        (-(1i64 << 60)..(1i64 << 60)).prop_map(Value::Int),
        Just(Value::Float(-0.0)),
        proptest::sample::select(STRS.to_vec()).prop_map(|s| Value::Str(s.to_string())),
        any::<bool>().prop_map(Value::Bool),
    ]
}

fn metadata_strategy() -> impl Strategy<Value = Metadata> {
    (
        proptest::collection::btree_map(
            proptest::sample::select(KEYS.to_vec()),
            value_strategy(),
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

fn op_strategy() -> impl Strategy<Value = CmpOp> {
    proptest::sample::select(vec![
        CmpOp::Eq,
        CmpOp::Ne,
        CmpOp::Gt,
        CmpOp::Gte,
        CmpOp::Lt,
        CmpOp::Lte,
    ])
}

fn filter_key() -> impl Strategy<Value = String> {
    // "zz" is never set: missing-key semantics.
    proptest::sample::select(vec!["a", "b", "c", "d", "zz"]).prop_map(str::to_string)
}

fn tag_list() -> impl Strategy<Value = Vec<String>> {
    proptest::collection::vec(
        proptest::sample::select(vec!["t1", "t2", "t3", "t4", "nope"]).prop_map(str::to_string),
        0..=3,
    )
}

fn filter_strategy() -> impl Strategy<Value = Filter> {
    let leaf = prop_oneof![
        1 => Just(Filter::All),
        6 => (filter_key(), op_strategy(), value_strategy())
            .prop_map(|(key, op, value)| Filter::Cmp { key, op, value }),
        3 => (filter_key(), proptest::collection::vec(value_strategy(), 0..4), any::<bool>())
            .prop_map(|(key, values, negate)| Filter::In { key, values, negate }),
        2 => (filter_key(), any::<bool>()).prop_map(|(key, exists)| Filter::Exists { key, exists }),
        1 => tag_list().prop_map(Filter::TagsAll),
        1 => tag_list().prop_map(Filter::TagsAny),
    ];
    leaf.prop_recursive(4, 24, 4, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 1..4).prop_map(Filter::And),
            proptest::collection::vec(inner.clone(), 1..4).prop_map(Filter::Or),
            inner.prop_map(|f| Filter::Not(Box::new(f))),
        ]
    })
}

/// 300 slots with distinct ids spread over the whole u32 range (several roaring
/// containers, both array and bitmap kinds).
fn slots_strategy() -> impl Strategy<Value = Vec<u32>> {
    (1u32..20_000, 0u32..1000).prop_map(|(stride, offset)| {
        (0..300u32)
            .map(|k| offset.wrapping_add(k.wrapping_mul(stride)))
            .collect()
    })
}

fn check_all(
    index: &PayloadIndex,
    data: &[(u32, Metadata)],
    filters: &[Filter],
) -> Result<(), TestCaseError> {
    let live: RoaringBitmap = data.iter().map(|(s, _)| *s).collect();
    prop_assert_eq!(index.live(), &live);
    prop_assert_eq!(index.len(), live.len());
    for f in filters {
        let expected = oracle(f, data);
        let got = index.evaluate(f);
        prop_assert_eq!(&got, &expected, "filter {:?}", f);
        prop_assert!(
            index.estimate(f) >= expected.len(),
            "estimate {} < {} for {:?}",
            index.estimate(f),
            expected.len(),
            f
        );
    }
    Ok(())
}

fn arbitrary_input() -> impl Strategy<Value = FilterInput> {
    let key = proptest::sample::select(vec![
        "a", "b", "", "$and", "$or", "$not", "$tags", "$all", "$any", "$eq", "$ne", "$gt", "$gte",
        "$lt", "$lte", "$in", "$nin", "$exists", "$bogus", "$",
    ])
    .prop_map(str::to_string);
    let leaf = prop_oneof![
        Just(FilterInput::Null),
        any::<bool>().prop_map(FilterInput::Bool),
        prop_oneof![(-3i64..4), any::<i64>()].prop_map(FilterInput::Int),
        prop_oneof![
            Just(f64::NAN),
            Just(f64::INFINITY),
            Just(-0.0),
            any::<f64>(),
            (-3i32..4).prop_map(f64::from)
        ]
        .prop_map(FilterInput::Float),
        proptest::sample::select(vec!["", "a", "t1", "$and", "x"])
            .prop_map(|s| FilterInput::Str(s.to_string())),
    ];
    leaf.prop_recursive(6, 64, 4, move |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..4).prop_map(FilterInput::List),
            proptest::collection::vec((key.clone(), inner), 0..4).prop_map(FilterInput::Map),
        ]
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1500))]

    /// evaluate == matches on 300 random slots, then again after removing a random half.
    #[test]
    fn filter_index_equals_oracle_before_and_after_removal(
        slots in slots_strategy(),
        metas in proptest::collection::vec(metadata_strategy(), 300),
        filters in proptest::collection::vec(filter_strategy(), 8),
        removed in proptest::collection::vec(any::<bool>(), 300),
    ) {
        let data: Vec<(u32, Metadata)> = slots.into_iter().zip(metas).collect();
        let mut index = PayloadIndex::new();
        for (slot, m) in &data {
            index.insert(*slot, m);
        }
        check_all(&index, &data, &filters)?;

        let mut kept = Vec::new();
        for ((slot, m), gone) in data.into_iter().zip(removed) {
            if gone {
                index.remove(slot, &m);
            } else {
                kept.push((slot, m));
            }
        }
        check_all(&index, &kept, &filters)?;

        // Removing everything leaves nothing behind.
        for (slot, m) in &kept {
            index.remove(*slot, m);
        }
        prop_assert!(index.is_empty());
        prop_assert_eq!(index.memory_bytes(), PayloadIndex::new().memory_bytes());
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1000))]

    /// The parser never panics: Ok, or Error::Filter with a path from the root. What it
    /// accepts evaluates identically through the index and the oracle.
    #[test]
    fn filter_parse_never_panics(input in arbitrary_input()) {
        match Filter::parse(&input) {
            Ok(f) => {
                let data = table_data();
                let mut index = PayloadIndex::new();
                for (slot, m) in &data {
                    index.insert(*slot, m);
                }
                prop_assert_eq!(index.evaluate(&f), oracle(&f, &data), "filter {:?}", f);
            }
            Err(Error::Filter { at, msg }) => {
                prop_assert!(at.starts_with("filter"), "{}", at);
                prop_assert!(!msg.is_empty());
            }
            Err(other) => prop_assert!(false, "not a filter error: {other}"),
        }
    }
}

// ---------------------------------------------------------------- exact numbers

/// Reference int/float order, independent of the library's: through `floor` and `i128`
/// (every float with magnitude below 2^100 has an exact `i128` floor).
fn ref_cmp_int_float(i: i64, f: f64) -> Option<Ordering> {
    if f.is_nan() {
        return None;
    }
    let fl = f.floor();
    if fl.abs() >= 2f64.powi(100) {
        return Some(if f > 0.0 {
            Ordering::Less
        } else {
            Ordering::Greater
        });
    }
    Some(match i128::from(i).cmp(&(fl as i128)) {
        Ordering::Equal if f > fl => Ordering::Less,
        other => other,
    })
}

fn ref_cmp(a: &Value, b: &Value) -> Option<Ordering> {
    match (a, b) {
        (Value::Int(x), Value::Int(y)) => Some(i128::from(*x).cmp(&i128::from(*y))),
        (Value::Int(x), Value::Float(y)) => ref_cmp_int_float(*x, *y),
        (Value::Float(x), Value::Int(y)) => ref_cmp_int_float(*y, *x).map(Ordering::reverse),
        (Value::Float(x), Value::Float(y)) => x.partial_cmp(y),
        _ => None,
    }
}

/// Whether a slot holding `stored` (`None`: key missing) passes `key op q`, by the
/// reference order and the documented missing-key rule.
fn ref_holds(stored: Option<&Value>, op: CmpOp, q: &Value) -> bool {
    let Some(v) = stored else {
        return op == CmpOp::Ne;
    };
    let ord = ref_cmp(v, q);
    match op {
        CmpOp::Eq => ord == Some(Ordering::Equal),
        CmpOp::Ne => ord != Some(Ordering::Equal),
        CmpOp::Gt => ord == Some(Ordering::Greater),
        CmpOp::Gte => matches!(ord, Some(Ordering::Greater | Ordering::Equal)),
        CmpOp::Lt => ord == Some(Ordering::Less),
        CmpOp::Lte => matches!(ord, Some(Ordering::Less | Ordering::Equal)),
    }
}

const OPS: [CmpOp; 6] = [
    CmpOp::Eq,
    CmpOp::Ne,
    CmpOp::Gt,
    CmpOp::Gte,
    CmpOp::Lt,
    CmpOp::Lte,
];

/// Ints where `f64` loses exactness, and their neighbours.
fn int_anchors() -> Vec<i64> {
    let mut out = Vec::new();
    for base in [0i64, 1 << 53, -(1 << 53), 1 << 62, -(1 << 62), 1 << 60] {
        for d in -3i64..=3 {
            out.push(base + d);
        }
    }
    for d in 0i64..4 {
        out.push(i64::MAX - d);
        out.push(i64::MIN + d);
    }
    out
}

/// Floats at the same places: the images of those ints, their float neighbours, 2^63
/// and -2^63 (and beyond), fractions.
fn float_anchors() -> Vec<f64> {
    let mut out = vec![0.0, -0.0, 0.5, -0.5, 2.5, -2.5, 1e300, -1e300];
    for base in [
        2f64.powi(53),
        -(2f64.powi(53)),
        2f64.powi(62),
        -(2f64.powi(62)),
        2f64.powi(63),
        -(2f64.powi(63)),
        2f64.powi(64),
        -(2f64.powi(64)),
        2f64.powi(60),
    ] {
        let (mut up, mut down) = (base, base);
        out.push(base);
        for _ in 0..3 {
            up = up.next_up();
            down = down.next_down();
            out.push(up);
            out.push(down);
        }
    }
    out
}

fn num_int() -> impl Strategy<Value = i64> {
    prop_oneof![
        3 => proptest::sample::select(int_anchors()),
        1 => any::<i64>(),
        1 => -5i64..6,
    ]
}

fn num_float() -> impl Strategy<Value = f64> {
    prop_oneof![
        3 => proptest::sample::select(float_anchors()),
        // The float image of an anchor int (rounded to nearest), exactly integral.
        2 => proptest::sample::select(int_anchors()).prop_map(|i| i as f64),
        1 => any::<f64>().prop_filter("finite", |f| f.is_finite()),
        1 => (-10i32..11).prop_map(|h| f64::from(h) / 2.0),
    ]
}

fn num_value() -> impl Strategy<Value = Value> {
    prop_oneof![
        num_int().prop_map(Value::Int),
        num_float().prop_map(Value::Float)
    ]
}

/// A filter bound: a stored-like number, or an infinity.
fn num_bound() -> impl Strategy<Value = Value> {
    prop_oneof![
        8 => num_value(),
        1 => proptest::sample::select(vec![f64::INFINITY, f64::NEG_INFINITY]).prop_map(Value::Float),
    ]
}

/// The library's comparison of `stored` with `q` under `op`, asserted equal to the
/// reference.
fn check_pair(stored: &Value, q: &Value) -> Result<(), TestCaseError> {
    prop_assert_eq!(
        cmp_num(stored, q),
        ref_cmp(stored, q),
        "{:?} vs {:?}",
        stored,
        q
    );
    for op in OPS {
        prop_assert_eq!(
            compare_op(stored, op, q),
            ref_holds(Some(stored), op, q),
            "{:?} {} {:?}",
            stored,
            op.as_str(),
            q
        );
    }
    Ok(())
}

/// The grid from the report: values around 2^53 and 2^63, as ints and floats, each
/// stored and each a bound, under every operator, through the evaluator and the index.
#[test]
fn numeric_grid_matches_exact_semantics() {
    let two53 = 1i64 << 53;
    let values = [
        Value::Int(two53),
        Value::Int(two53 + 1),
        Value::Float(two53 as f64),
        Value::Float((two53 + 2) as f64),
        Value::Int(i64::MAX),
        Value::Float(2f64.powi(63)),
    ];
    let data: Vec<(u32, Metadata)> = values
        .iter()
        .enumerate()
        .map(|(slot, v)| (slot as u32, meta(vec![("a", v.clone())], &[])))
        .collect();
    let mut index = PayloadIndex::new();
    for (slot, m) in &data {
        index.insert(*slot, m);
    }
    // Spot checks of the cases that used to be wrong.
    assert!(compare_op(&values[1], CmpOp::Gt, &values[2]));
    assert!(compare_op(&values[1], CmpOp::Ne, &values[2]));
    assert!(compare_op(&values[4], CmpOp::Lt, &values[5]));
    assert!(!compare_op(&values[5], CmpOp::Eq, &values[4]));
    for q in &values {
        for op in OPS {
            let expected: RoaringBitmap = data
                .iter()
                .filter(|(_, m)| ref_holds(m.get("a"), op, q))
                .map(|(s, _)| *s)
                .collect();
            let f = Filter::Cmp {
                key: "a".into(),
                op,
                value: q.clone(),
            };
            assert_eq!(
                oracle(&f, &data),
                expected,
                "matches() a {} {q:?}",
                op.as_str()
            );
            assert_eq!(
                index.evaluate(&f),
                expected,
                "evaluate() a {} {q:?}",
                op.as_str()
            );
        }
        // $in / $nin of one value are $eq / $ne.
        for negate in [false, true] {
            let op = if negate { CmpOp::Ne } else { CmpOp::Eq };
            let expected: RoaringBitmap = data
                .iter()
                .filter(|(_, m)| ref_holds(m.get("a"), op, q))
                .map(|(s, _)| *s)
                .collect();
            let f = Filter::In {
                key: "a".into(),
                values: vec![q.clone()],
                negate,
            };
            assert_eq!(oracle(&f, &data), expected, "matches() {f:?}");
            assert_eq!(index.evaluate(&f), expected, "evaluate() {f:?}");
        }
    }
}

#[test]
fn infinite_bounds_and_nan() {
    let data: Vec<(u32, Metadata)> = [
        Value::Int(i64::MAX),
        Value::Int(i64::MIN),
        Value::Float(1e300),
    ]
    .into_iter()
    .enumerate()
    .map(|(slot, v)| (slot as u32, meta(vec![("a", v)], &[])))
    .collect();
    let mut index = PayloadIndex::new();
    for (slot, m) in &data {
        index.insert(*slot, m);
    }
    let all: RoaringBitmap = (0..3).collect();
    for (input, expected) in [
        (
            map(vec![("a", map(vec![("$lt", fl(f64::INFINITY))]))]),
            all.clone(),
        ),
        (
            map(vec![("a", map(vec![("$gt", fl(f64::NEG_INFINITY))]))]),
            all.clone(),
        ),
        (map(vec![("a", fl(f64::INFINITY))]), RoaringBitmap::new()),
        (
            map(vec![("a", map(vec![("$ne", fl(f64::INFINITY))]))]),
            all.clone(),
        ),
        (
            map(vec![("a", map(vec![("$gte", fl(1e300))]))]),
            [2u32].into_iter().collect(),
        ),
    ] {
        let f = parse(&input);
        assert_eq!(oracle(&f, &data), expected, "{f:?}");
        assert_eq!(index.evaluate(&f), expected, "{f:?}");
    }
    assert_err(
        map(vec![("a", map(vec![("$lt", fl(f64::NAN))]))]),
        r#"filter["a"]["$lt"]"#,
        &["NaN"],
    );
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(20_000))]

    /// Every operator on an int/float pair (either side stored) agrees with the `i128`
    /// reference, and so does the int/float order itself.
    #[test]
    fn numeric_compare_is_exact(i in num_int(), f in num_float()) {
        prop_assert_eq!(cmp_int_float(i, f), ref_cmp_int_float(i, f), "{} vs {:?}", i, f);
        check_pair(&Value::Int(i), &Value::Float(f))?;
        check_pair(&Value::Float(f), &Value::Int(i))?;
        check_pair(&Value::Int(i), &Value::Int(i))?;
        check_pair(&Value::Float(f), &Value::Float(f))?;
    }
}

/// A slot's value of the key "a": mostly a number, sometimes missing, a str or a bool.
fn num_slot_value() -> impl Strategy<Value = Option<Value>> {
    prop_oneof![
        10 => num_value().prop_map(Some),
        1 => Just(None),
        1 => Just(Some(Value::Str("1".into()))),
        1 => any::<bool>().prop_map(|b| Some(Value::Bool(b))),
    ]
}

/// A numeric filter on "a" with its reference set computed from `ref_holds`.
fn num_filter() -> impl Strategy<Value = Filter> {
    prop_oneof![
        3 => (proptest::sample::select(OPS.to_vec()), num_bound()).prop_map(|(op, value)| {
            Filter::Cmp { key: "a".into(), op, value }
        }),
        1 => (proptest::collection::vec(num_bound(), 0..4), any::<bool>()).prop_map(
            |(values, negate)| Filter::In { key: "a".into(), values, negate }
        ),
    ]
}

fn ref_filter(f: &Filter, stored: Option<&Value>) -> bool {
    match f {
        Filter::Cmp { op, value, .. } => ref_holds(stored, *op, value),
        Filter::In { values, negate, .. } => {
            values.iter().any(|v| ref_holds(stored, CmpOp::Eq, v)) != *negate
        }
        Filter::And(parts) => parts.iter().all(|p| ref_filter(p, stored)),
        _ => unreachable!("only numeric filters are generated"),
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(600))]

    /// On numbers clustered where int/float comparison is delicate, the index, the
    /// evaluator and the reference select exactly the same slots, for single operators,
    /// `$in` / `$nin`, and ranges (an AND of two bounds).
    #[test]
    fn numeric_index_equals_evaluator_and_reference(
        values in proptest::collection::vec(num_slot_value(), 1..120),
        filters in proptest::collection::vec(num_filter(), 6),
        ranges in proptest::collection::vec((num_filter(), num_filter()), 3),
    ) {
        let data: Vec<(u32, Metadata)> = values
            .iter()
            .enumerate()
            .map(|(slot, v)| {
                let fields: Vec<(&str, Value)> = v.iter().map(|v| ("a", v.clone())).collect();
                (slot as u32 * 3, meta(fields, &[]))
            })
            .collect();
        let mut index = PayloadIndex::new();
        for (slot, m) in &data {
            index.insert(*slot, m);
        }
        let all = filters
            .into_iter()
            .chain(ranges.into_iter().map(|(a, b)| Filter::And(vec![a, b])));
        for f in all {
            let expected: RoaringBitmap = data
                .iter()
                .filter(|(_, m)| ref_filter(&f, m.get("a")))
                .map(|(s, _)| *s)
                .collect();
            prop_assert_eq!(oracle(&f, &data), expected.clone(), "matches() {:?}", f);
            prop_assert_eq!(index.evaluate(&f), expected.clone(), "evaluate() {:?}", f);
            prop_assert!(index.estimate(&f) >= expected.len(), "estimate {:?}", f);
        }
    }
}
