//! T4: random operation sequences on a database against a model (a map of id →
//! (vector, group)), flat and HNSW: after every step the contents agree; exact search
//! and filtered exact search equal brute force over the model; HNSW answers are live,
//! allowed, sorted and carry exact distances; a rejected call changes nothing.
//!
//! Sequences: `NUSTERDB_OPSEQ_CASES` (default 2 000, half flat, half HNSW).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;

use nusterdb_core::db::Location;
use nusterdb_core::filter::{Filter, FilterInput};
use nusterdb_core::{Database, DatabaseConfig, DistanceMetric, Error, IndexType};
use nusterdb_core::{Metadata, Value};
use proptest::prelude::*;

const DIM: usize = 4;

#[derive(Clone, Debug)]
enum Op {
    Add(u64, [i8; DIM], i64),
    Upsert(u64, [i8; DIM]),
    UpdateVector(u64, [i8; DIM]),
    UpdateGroup(u64, i64),
    Remove(u64),
    BulkAdd(Vec<(u64, [i8; DIM])>),
    BulkRemove(Vec<u64>),
    Search([i8; DIM], usize),
    SearchGroup([i8; DIM], usize, i64),
}

fn op() -> impl Strategy<Value = Op> {
    let id = 0u64..24;
    let v = any::<[i8; DIM]>();
    prop_oneof![
        3 => (id.clone(), v, 0i64..3).prop_map(|(i, v, g)| Op::Add(i, v, g)),
        2 => (id.clone(), v).prop_map(|(i, v)| Op::Upsert(i, v)),
        1 => (id.clone(), v).prop_map(|(i, v)| Op::UpdateVector(i, v)),
        1 => (id.clone(), 0i64..3).prop_map(|(i, g)| Op::UpdateGroup(i, g)),
        2 => id.clone().prop_map(Op::Remove),
        1 => prop::collection::vec((id.clone(), v), 0..6).prop_map(Op::BulkAdd),
        1 => prop::collection::vec(id, 0..6).prop_map(Op::BulkRemove),
        3 => (v, 1usize..12).prop_map(|(v, k)| Op::Search(v, k)),
        2 => (v, 1usize..12, 0i64..3).prop_map(|(v, k, g)| Op::SearchGroup(v, k, g)),
    ]
}

fn vector(v: &[i8; DIM]) -> Vec<f32> {
    v.iter().map(|&x| f32::from(x) / 8.0).collect()
}

fn group(g: i64) -> Metadata {
    let mut m = Metadata::new();
    m.set("group", Value::Int(g)).unwrap();
    m
}

type Model = BTreeMap<u64, (Vec<f32>, i64)>;

/// The model's group of an id stored without metadata.
const NO_GROUP: i64 = i64::MIN;

/// The exact answer over the model: (id, distance) sorted by (distance, id).
fn brute(model: &Model, q: &[f32], k: usize, g: Option<i64>) -> Vec<(u64, f32)> {
    let mut all: Vec<(u64, f32)> = model
        .iter()
        .filter(|(_, (_, mg))| g.is_none_or(|g| *mg == g))
        .map(|(&i, (v, _))| (i, DistanceMetric::Euclidean.distance_unchecked(q, v)))
        .collect();
    all.sort_by(|a, b| a.1.total_cmp(&b.1).then(a.0.cmp(&b.0)));
    all.truncate(k);
    all
}

/// `got` is an exact answer: the same distances as `want`, and the same ids except
/// among vectors tied at the last distance, where which ones make the cut is the
/// index's choice (every returned id must be at that distance).
fn assert_same_answer(got: &[(u64, f32)], want: &[(u64, f32)], model: &Model, q: &[f32]) {
    let d = |a: &[(u64, f32)]| a.iter().map(|x| x.1).collect::<Vec<_>>();
    assert_eq!(d(got), d(want), "distances");
    let last = want.last().map_or(f32::INFINITY, |x| x.1);
    let strict = |a: &[(u64, f32)]| {
        a.iter()
            .filter(|x| x.1 < last)
            .map(|x| x.0)
            .collect::<Vec<_>>()
    };
    assert_eq!(strict(got), strict(want), "ids below the last distance");
    for (id, dist) in got {
        assert_eq!(
            *dist,
            DistanceMetric::Euclidean.distance_unchecked(q, &model[id].0)
        );
    }
}

fn check_contents(db: &Database, model: &Model) {
    assert_eq!(db.count().unwrap(), model.len());
    assert_eq!(
        db.list_ids().unwrap(),
        model.keys().copied().collect::<Vec<_>>()
    );
    for (&id, (v, g)) in model {
        assert_eq!(
            db.get(id).unwrap().as_deref(),
            Some(&v[..]),
            "vector of {id}"
        );
        let m = db.get_metadata(id).unwrap().unwrap();
        // NO_GROUP: upserted as a new id without metadata.
        let want = (*g != NO_GROUP).then_some(Value::Int(*g));
        assert_eq!(m.get("group"), want.as_ref(), "group of {id}");
    }
}

fn run(ops: &[Op], index: IndexType) {
    let mut cfg = DatabaseConfig::new(DIM).unwrap();
    cfg.index_type = index;
    let db = Database::open(Location::Memory, Some(cfg), false).unwrap();
    let mut model = Model::new();
    for op in ops {
        match op {
            Op::Add(id, v, g) => match db.add(*id, &vector(v), Some(group(*g))) {
                Ok(()) => assert!(model.insert(*id, (vector(v), *g)).is_none()),
                Err(Error::DuplicateId(d)) => assert!(d == *id && model.contains_key(id)),
                Err(e) => panic!("add: {e}"),
            },
            Op::Upsert(id, v) => {
                db.upsert(*id, &vector(v), None).unwrap();
                let g = model.get(id).map_or(NO_GROUP, |e| e.1);
                model.insert(*id, (vector(v), g));
            }
            Op::UpdateVector(id, v) => match db.update(*id, Some(&vector(v)), None) {
                Ok(()) => model.get_mut(id).unwrap().0 = vector(v),
                Err(Error::IdNotFound(_)) => assert!(!model.contains_key(id)),
                Err(e) => panic!("update: {e}"),
            },
            Op::UpdateGroup(id, g) => match db.update(*id, None, Some(group(*g))) {
                Ok(()) => model.get_mut(id).unwrap().1 = *g,
                Err(Error::IdNotFound(_)) => assert!(!model.contains_key(id)),
                Err(e) => panic!("update: {e}"),
            },
            Op::Remove(id) => assert_eq!(db.remove(*id).unwrap(), model.remove(id).is_some()),
            Op::BulkAdd(rows) => {
                let ids: Vec<u64> = rows.iter().map(|r| r.0).collect();
                let data: Vec<f32> = rows.iter().flat_map(|r| vector(&r.1)).collect();
                let metas = rows.iter().map(|_| group(0)).collect();
                let mut seen = std::collections::HashSet::new();
                let clash = ids
                    .iter()
                    .any(|i| !seen.insert(*i) || model.contains_key(i));
                match db.bulk_add(&ids, &data, Some(metas)) {
                    Ok(n) => {
                        assert!(!clash);
                        assert_eq!(n, ids.len());
                        for r in rows {
                            model.insert(r.0, (vector(&r.1), 0));
                        }
                    }
                    Err(Error::DuplicateId(_)) => assert!(clash),
                    Err(e) => panic!("bulk_add: {e}"),
                }
            }
            Op::BulkRemove(ids) => {
                let mut distinct = ids.clone();
                distinct.sort_unstable();
                distinct.dedup();
                let present = distinct.iter().filter(|i| model.contains_key(i)).count();
                assert_eq!(db.bulk_remove(ids).unwrap(), present);
                for i in ids {
                    model.remove(i);
                }
            }
            Op::Search(q, k) | Op::SearchGroup(q, k, _) => {
                let g = match op {
                    Op::SearchGroup(_, _, g) => Some(*g),
                    _ => None,
                };
                let f = g.map(|g| {
                    Filter::parse(&FilterInput::Map(vec![(
                        "group".into(),
                        FilterInput::Int(g),
                    )]))
                    .unwrap()
                });
                let q = vector(q);
                let got = db.search(&q, *k, f.as_ref(), None).unwrap();
                let want = brute(&model, &q, *k, g);
                if index == IndexType::Flat {
                    assert_same_answer(&got, &want, &model, &q);
                } else {
                    assert!(got.len() <= want.len());
                    for w in got.windows(2) {
                        assert!((w[0].1, w[0].0) <= (w[1].1, w[1].0), "unsorted {got:?}");
                    }
                    for (id, d) in &got {
                        let (v, mg) = &model[id];
                        assert!(g.is_none_or(|g| g == *mg), "{id} not in group");
                        assert_eq!(*d, DistanceMetric::Euclidean.distance_unchecked(&q, v));
                    }
                    // Tiny indexes are searched exhaustively: the answer is exact.
                    if model.len() <= 100 {
                        assert_same_answer(&got, &want, &model, &q);
                    }
                }
            }
        }
    }
    check_contents(&db, &model);
}

fn cases() -> u32 {
    std::env::var("NUSTERDB_OPSEQ_CASES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(2_000)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: cases() / 2, ..ProptestConfig::default() })]

    #[test]
    fn flat_database_matches_the_model(ops in prop::collection::vec(op(), 0..60)) {
        run(&ops, IndexType::Flat);
    }

    #[test]
    fn hnsw_database_matches_the_model(ops in prop::collection::vec(op(), 0..60)) {
        run(&ops, IndexType::Hnsw);
    }
}
