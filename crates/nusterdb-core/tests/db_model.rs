//! T4: random operation sequences on a database against a model (a map of id →
//! (vector, group, document)), flat and HNSW, int ids and string ids: after every
//! step the contents agree; exact search and filtered exact search equal brute force
//! over the model; HNSW answers are live, allowed, sorted and carry exact distances;
//! a rejected call changes nothing.
//!
//! Sequences: `NUSTERDB_OPSEQ_CASES` per id type (default 2 000, half flat, half
//! HNSW), run through the id-generic API (`put`, `update_record`, `delete`,
//! `get_many`, `search_records`); int ids also through the `u64` forms.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;

use nusterdb_core::db::{Include, Location, MetadataUpdate, PutMode};
use nusterdb_core::filter::{Filter, FilterInput};
use nusterdb_core::{Database, DatabaseConfig, DistanceMetric, Error, Id, IdType, IndexType};
use nusterdb_core::{Metadata, Value};
use proptest::prelude::*;

const DIM: usize = 4;

#[derive(Clone, Debug)]
enum Op {
    Add(u64, [i8; DIM], i64),
    /// Adds with a document (the id-generic API only).
    AddDocument(u64, [i8; DIM], String),
    /// Sets a document (the id-generic API only).
    UpdateDocument(u64, String),
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
        1 => (id.clone(), v, "\\PC{0,6}").prop_map(|(i, v, d)| Op::AddDocument(i, v, d)),
        1 => (id.clone(), "\\PC{0,6}").prop_map(|(i, d)| Op::UpdateDocument(i, d)),
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

/// id → (vector, group, document).
type Model = BTreeMap<u64, (Vec<f32>, i64, Option<String>)>;

/// How a run reaches the database.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Api {
    /// The `u64` forms on an int-id database.
    Int,
    /// The id-generic API on an int-id database.
    IntIds,
    /// The id-generic API on a string-id database.
    StrIds,
}

impl Api {
    /// The database id of model id `i`: string ids are not in numeric order, so the
    /// answer's order among ties is checked against the strings.
    fn id(self, i: u64) -> Id {
        match self {
            Api::Int | Api::IntIds => Id::Int(i),
            Api::StrIds => Id::from(format!("{}-ü-{i}", 23 - i)),
        }
    }

    fn model_id(self, id: &Id) -> u64 {
        match id {
            Id::Int(i) => *i,
            Id::Str(s) => s.rsplit('-').next().unwrap().parse().unwrap(),
        }
    }
}

/// The model's group of an id stored without metadata.
const NO_GROUP: i64 = i64::MIN;

/// The exact answer over the model: (id, distance) sorted by (distance, the
/// database's id).
fn brute(api: Api, model: &Model, q: &[f32], k: usize, g: Option<i64>) -> Vec<(u64, f32)> {
    let mut all: Vec<(u64, f32)> = model
        .iter()
        .filter(|(_, (_, mg, _))| g.is_none_or(|g| *mg == g))
        .map(|(&i, (v, _, _))| (i, DistanceMetric::Euclidean.distance_unchecked(q, v)))
        .collect();
    all.sort_by(|a, b| a.1.total_cmp(&b.1).then(api.id(a.0).cmp(&api.id(b.0))));
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

fn check_contents(api: Api, db: &Database, model: &Model) {
    assert_eq!(db.count().unwrap(), model.len());
    let mut want_ids: Vec<Id> = model.keys().map(|&i| api.id(i)).collect();
    want_ids.sort();
    assert_eq!(db.ids().unwrap(), want_ids);
    if api == Api::Int {
        assert_eq!(
            db.list_ids().unwrap(),
            model.keys().copied().collect::<Vec<_>>()
        );
    }
    // Asked in reverse with an absent id and a repeat: found ids once, in that order.
    let mut asked: Vec<Id> = model.keys().rev().map(|&i| api.id(i)).collect();
    asked.push(api.id(99));
    if let Some(first) = asked.first().cloned() {
        asked.push(first);
    }
    let records = db.get_many(&asked, Include::ALL).unwrap();
    assert_eq!(records.len(), model.len());
    for (r, (&id, (v, g, d))) in records.iter().zip(model.iter().rev()) {
        assert_eq!(r.id, api.id(id));
        assert_eq!(r.vector.as_deref(), Some(&v[..]), "vector of {id}");
        if api == Api::Int {
            assert_eq!(db.get(id).unwrap().as_deref(), Some(&v[..]));
        }
        let m = r.metadata.as_ref().unwrap();
        // NO_GROUP: upserted as a new id without metadata.
        let want = (*g != NO_GROUP).then_some(Value::Int(*g));
        assert_eq!(m.get("group"), want.as_ref(), "group of {id}");
        assert_eq!(&r.document, d, "document of {id}");
        assert_eq!(&db.get_document(&api.id(id)).unwrap(), d);
    }
}

/// Adds rows through `api`.
fn add_rows(
    api: Api,
    db: &Database,
    rows: &[(u64, Vec<f32>, Metadata, Option<String>)],
) -> nusterdb_core::Result<usize> {
    let data: Vec<f32> = rows.iter().flat_map(|r| r.1.clone()).collect();
    if api == Api::Int && rows.iter().all(|r| r.3.is_none()) {
        let ids: Vec<u64> = rows.iter().map(|r| r.0).collect();
        let metas = rows.iter().map(|r| r.2.clone()).collect();
        return db.bulk_add(&ids, &data, Some(metas));
    }
    let ids: Vec<Id> = rows.iter().map(|r| api.id(r.0)).collect();
    let metas = rows.iter().map(|r| Some(r.2.clone())).collect();
    let docs = rows.iter().map(|r| r.3.clone()).collect();
    db.put(PutMode::Add, &ids, &data, metas, docs)
}

fn run(ops: &[Op], index: IndexType, api: Api) {
    let mut cfg = DatabaseConfig::new(DIM).unwrap();
    cfg.index_type = index;
    if api == Api::StrIds {
        cfg.id_type = IdType::Str;
    }
    let db = Database::open(Location::Memory, Some(cfg), false).unwrap();
    let mut model = Model::new();
    for op in ops {
        match op {
            Op::Add(id, v, g) => match add_rows(api, &db, &[(*id, vector(v), group(*g), None)]) {
                Ok(_) => assert!(model.insert(*id, (vector(v), *g, None)).is_none()),
                Err(Error::DuplicateId(d)) => assert!(d == api.id(*id) && model.contains_key(id)),
                Err(e) => panic!("add: {e}"),
            },
            Op::AddDocument(id, v, doc) => {
                let row = (*id, vector(v), group(1), Some(doc.clone()));
                let api = if api == Api::Int { Api::IntIds } else { api };
                match add_rows(api, &db, &[row]) {
                    Ok(_) => {
                        let entry = (vector(v), 1, Some(doc.clone()));
                        assert!(model.insert(*id, entry).is_none());
                    }
                    Err(Error::DuplicateId(d)) => {
                        assert!(d == api.id(*id) && model.contains_key(id))
                    }
                    Err(e) => panic!("add: {e}"),
                }
            }
            Op::UpdateDocument(id, doc) => {
                match db.update_record(&api.id(*id), None, None, Some(doc.clone())) {
                    Ok(()) => model.get_mut(id).unwrap().2 = Some(doc.clone()),
                    Err(Error::IdNotFound(_)) => assert!(!model.contains_key(id)),
                    Err(e) => panic!("update: {e}"),
                }
            }
            Op::Upsert(id, v) => {
                match api {
                    Api::Int => db.upsert(*id, &vector(v), None).unwrap(),
                    _ => {
                        let ids = [api.id(*id)];
                        let n = db.put(PutMode::Upsert, &ids, &vector(v), Vec::new(), Vec::new());
                        assert_eq!(n.unwrap(), 1);
                    }
                }
                let (g, d) = model
                    .get(id)
                    .map_or((NO_GROUP, None), |e| (e.1, e.2.clone()));
                model.insert(*id, (vector(v), g, d));
            }
            Op::UpdateVector(id, v) => {
                let r = match api {
                    Api::Int => db.update(*id, Some(&vector(v)), None),
                    _ => db.update_record(&api.id(*id), Some(&vector(v)), None, None),
                };
                match r {
                    Ok(()) => model.get_mut(id).unwrap().0 = vector(v),
                    Err(Error::IdNotFound(_)) => assert!(!model.contains_key(id)),
                    Err(e) => panic!("update: {e}"),
                }
            }
            Op::UpdateGroup(id, g) => {
                let r = match api {
                    Api::Int => db.update(*id, None, Some(group(*g))),
                    _ => {
                        // The group is the only field: a merge sets it as a replace would.
                        let set = MetadataUpdate::Merge {
                            set: group(*g),
                            remove: Vec::new(),
                        };
                        db.update_record(&api.id(*id), None, Some(set), None)
                    }
                };
                match r {
                    Ok(()) => model.get_mut(id).unwrap().1 = *g,
                    Err(Error::IdNotFound(_)) => assert!(!model.contains_key(id)),
                    Err(e) => panic!("update: {e}"),
                }
            }
            Op::Remove(id) => {
                let removed = match api {
                    Api::Int => db.remove(*id).unwrap(),
                    _ => db.delete(&[api.id(*id)]).unwrap() == 1,
                };
                assert_eq!(removed, model.remove(id).is_some());
            }
            Op::BulkAdd(rows) => {
                let rows: Vec<_> = rows
                    .iter()
                    .map(|r| (r.0, vector(&r.1), group(0), None))
                    .collect();
                let mut seen = std::collections::HashSet::new();
                let repeat = rows.iter().any(|r| !seen.insert(r.0));
                let clash = rows.iter().any(|r| model.contains_key(&r.0));
                match add_rows(api, &db, &rows) {
                    Ok(n) => {
                        assert!(!repeat && !clash);
                        assert_eq!(n, rows.len());
                        for r in rows {
                            model.insert(r.0, (r.1, 0, None));
                        }
                    }
                    Err(Error::RepeatedId { .. }) => assert!(repeat),
                    Err(Error::DuplicateId(_)) => assert!(clash && !repeat),
                    Err(e) => panic!("bulk_add: {e}"),
                }
            }
            Op::BulkRemove(ids) => {
                let mut distinct = ids.clone();
                distinct.sort_unstable();
                distinct.dedup();
                let present = distinct.iter().filter(|i| model.contains_key(i)).count();
                let removed = match api {
                    Api::Int => db.bulk_remove(ids).unwrap(),
                    _ => {
                        let ids: Vec<Id> = ids.iter().map(|&i| api.id(i)).collect();
                        db.delete(&ids).unwrap()
                    }
                };
                assert_eq!(removed, present);
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
                let got: Vec<(u64, f32)> = match api {
                    Api::Int => db.search(&q, *k, f.as_ref(), None).unwrap(),
                    _ => {
                        let hits = db
                            .search_records(&q, *k, f.as_ref(), None, Include::ALL)
                            .unwrap();
                        hits.iter()
                            .map(|(r, d)| {
                                let i = api.model_id(&r.id);
                                let (v, g, doc) = &model[&i];
                                assert_eq!(r.vector.as_deref(), Some(&v[..]));
                                let mg = r.metadata.as_ref().unwrap().get("group").cloned();
                                assert_eq!(mg, (*g != NO_GROUP).then_some(Value::Int(*g)));
                                assert_eq!(&r.document, doc);
                                (i, *d)
                            })
                            .collect()
                    }
                };
                let want = brute(api, &model, &q, *k, g);
                let order = |x: &(u64, f32)| (x.1, api.id(x.0));
                if index == IndexType::Flat {
                    assert_same_answer(&got, &want, &model, &q);
                } else {
                    assert!(got.len() <= want.len());
                    for w in got.windows(2) {
                        assert!(order(&w[0]) <= order(&w[1]), "unsorted {got:?}");
                    }
                    for (id, d) in &got {
                        let (v, mg, _) = &model[id];
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
    check_contents(api, &db, &model);
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
        run(&ops, IndexType::Flat, Api::Int);
    }

    #[test]
    fn hnsw_database_matches_the_model(ops in prop::collection::vec(op(), 0..60)) {
        run(&ops, IndexType::Hnsw, Api::Int);
    }

    #[test]
    fn flat_string_id_database_matches_the_model(ops in prop::collection::vec(op(), 0..60)) {
        run(&ops, IndexType::Flat, Api::StrIds);
    }

    #[test]
    fn hnsw_string_id_database_matches_the_model(ops in prop::collection::vec(op(), 0..60)) {
        run(&ops, IndexType::Hnsw, Api::StrIds);
    }
}
