//! String ids and documents: stored, read, searched and removed like int ids; kept
//! across reopen (with and without the graph file), followers and snapshots; the
//! format marker moves to 2 exactly when a database holds what only format 2 has.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;

use nusterdb_core::db::{segment_files_in, Include, PutMode};
use nusterdb_core::ids::MAX_STR_ID_BYTES;
use nusterdb_core::rng::SplitMix64;
use nusterdb_core::storage::codec::{decode_format, FORMAT_V1, FORMAT_VERSION};
use nusterdb_core::storage::keys::FORMAT_KEY;
use nusterdb_core::{
    Database, DatabaseConfig, DistanceMetric, Error, Id, IdType, IndexType, Location, Metadata,
    Value,
};

const DIM: usize = 6;

fn config(index: IndexType, ids: IdType) -> DatabaseConfig {
    let mut c = DatabaseConfig::new(DIM).unwrap();
    c.index_type = index;
    c.id_type = ids;
    c.distance_metric = DistanceMetric::Cosine;
    c.hnsw.max_nb_connection = 8;
    c.hnsw.ef_construction = 40;
    c
}

fn at(p: &Path) -> Location {
    Location::Path(p.to_path_buf())
}

fn rows(n: usize, seed: u64) -> Vec<f32> {
    let mut rng = SplitMix64::new(seed);
    (0..n * DIM).map(|_| rng.next_gaussian() as f32).collect()
}

fn name(i: usize) -> Id {
    Id::from(format!("doc/{i:04}-ü"))
}

fn meta(i: usize) -> Metadata {
    let mut m = Metadata::new();
    m.set("n", Value::Int(i as i64)).unwrap();
    m
}

/// `n` string-id rows, every third without a document.
fn fill(db: &Database, n: usize) -> Vec<f32> {
    let data = rows(n, 7);
    let ids: Vec<Id> = (0..n).map(name).collect();
    let metas = (0..n).map(|i| Some(meta(i))).collect();
    let docs = (0..n)
        .map(|i| (i % 3 != 0).then(|| format!("text of {i}")))
        .collect();
    assert_eq!(db.put(PutMode::Add, &ids, &data, metas, docs).unwrap(), n);
    data
}

fn stored_format(dir: &Path) -> u32 {
    // Read through a follower: the writer may be open.
    let db = Database::open(at(dir), None, true).unwrap();
    drop(db);
    let opts = rocksdb::Options::default();
    let raw = rocksdb::DB::open_for_read_only(&opts, dir, false).unwrap();
    decode_format(&raw.get(FORMAT_KEY).unwrap().unwrap()).unwrap()
}

/// Every record as stored, checked against what was written.
fn check(db: &Database, data: &[f32], n: usize) {
    let ids: Vec<Id> = (0..n).map(name).collect();
    let got = db.get_many(&ids, Include::ALL).unwrap();
    assert_eq!(got.len(), n);
    for (i, r) in got.iter().enumerate() {
        assert_eq!(r.id, name(i));
        assert_eq!(r.vector.as_deref(), Some(&data[i * DIM..(i + 1) * DIM]));
        assert_eq!(
            r.metadata.as_ref().unwrap().get("n"),
            Some(&Value::Int(i as i64))
        );
        let want = (i % 3 != 0).then(|| format!("text of {i}"));
        assert_eq!(r.document, want);
    }
}

#[test]
fn string_ids_round_trip_through_reopen_and_graph_file() {
    for index in [IndexType::Flat, IndexType::Hnsw] {
        let dir = tempfile::tempdir().unwrap();
        let n = 300;
        let data = {
            let db =
                Database::open(at(dir.path()), Some(config(index, IdType::Str)), false).unwrap();
            let data = fill(&db, n);
            check(&db, &data, n);
            // The nearest to a stored row is itself, found by its string id.
            let hits = db
                .search_records(&data[5 * DIM..6 * DIM], 3, None, None, Include::ALL)
                .unwrap();
            assert_eq!(hits[0].0.id, name(5));
            assert!(hits[0].1.abs() < 1e-6);
            assert_eq!(hits[0].0.document.as_deref(), Some("text of 5"));
            db.flush().unwrap();
            data
        };
        assert_eq!(stored_format(dir.path()), FORMAT_VERSION);
        let db = Database::open(at(dir.path()), None, false).unwrap();
        assert_eq!(db.config().id_type, IdType::Str);
        check(&db, &data, n);
        let mut want: Vec<Id> = (0..n).map(name).collect();
        want.sort();
        assert_eq!(db.ids().unwrap(), want);
        drop(db);
        if index == IndexType::Hnsw {
            // Without the segment files every record is loaded and the graph rebuilt
            // over the same keys.
            for f in segment_files_in(dir.path()).unwrap() {
                std::fs::remove_file(f).unwrap();
            }
            let db = Database::open(at(dir.path()), None, false).unwrap();
            check(&db, &data, n);
        }
    }
}

#[test]
fn removes_and_upserts_keep_names_and_documents_consistent() {
    let dir = tempfile::tempdir().unwrap();
    let db = Database::open(
        at(dir.path()),
        Some(config(IndexType::Hnsw, IdType::Str)),
        false,
    )
    .unwrap();
    let data = fill(&db, 50);
    // Remove a few (one twice, one absent), then re-add one of them without a document.
    let gone = [name(1), name(2), name(2), Id::from("absent")];
    assert_eq!(db.delete(&gone).unwrap(), 2);
    assert_eq!(db.get_document(&name(1)).unwrap(), None);
    assert!(!db.contains_id(&name(2)).unwrap());
    db.put(
        PutMode::Add,
        &[name(2)],
        &data[..DIM],
        Vec::new(),
        Vec::new(),
    )
    .unwrap();
    assert_eq!(
        db.get_document(&name(2)).unwrap(),
        None,
        "no stale document"
    );
    // Upsert: a new document replaces, no document keeps it, metadata kept.
    db.put(
        PutMode::Upsert,
        &[name(4)],
        &data[4 * DIM..5 * DIM],
        vec![None],
        vec![Some("new".into())],
    )
    .unwrap();
    db.put(
        PutMode::Upsert,
        &[name(4)],
        &data[..DIM],
        vec![None],
        vec![None],
    )
    .unwrap();
    let r = &db.get_many(&[name(4)], Include::ALL).unwrap()[0];
    assert_eq!(r.document.as_deref(), Some("new"));
    assert_eq!(r.vector.as_deref(), Some(&data[..DIM]));
    assert_eq!(r.metadata.as_ref().unwrap().get("n"), Some(&Value::Int(4)));
    db.update_record(&name(5), None, None, Some("five".into()))
        .unwrap();
    drop(db);
    let db = Database::open(at(dir.path()), None, false).unwrap();
    assert_eq!(db.count().unwrap(), 49);
    assert_eq!(db.get_document(&name(5)).unwrap().as_deref(), Some("five"));
    assert_eq!(db.get_document(&name(4)).unwrap().as_deref(), Some("new"));
    assert_eq!(db.get_document(&name(2)).unwrap(), None);
    assert!(!db.contains_id(&name(1)).unwrap());
}

#[test]
fn bad_ids_are_refused_naming_them_and_store_nothing() {
    let db = Database::open(
        Location::Memory,
        Some(config(IndexType::Flat, IdType::Str)),
        false,
    )
    .unwrap();
    let v = rows(2, 1);
    let cases: Vec<(Vec<Id>, &str)> = vec![
        (vec![Id::from("ok"), Id::Int(3)], "id 3 is an int"),
        (vec![Id::from("ok"), Id::from("")], "must not be empty"),
        (
            vec![Id::from("ok"), Id::from("x".repeat(MAX_STR_ID_BYTES + 1))],
            "1025 bytes",
        ),
    ];
    for (ids, want) in cases {
        let e = db
            .put(PutMode::Add, &ids, &v, Vec::new(), Vec::new())
            .unwrap_err();
        assert!(matches!(e, Error::InvalidArgument(_)), "{e:?}");
        assert!(
            e.to_string().contains(want) && e.to_string().contains("row 1"),
            "{e}"
        );
        assert_eq!(db.count().unwrap(), 0);
    }
    // The longest id is fine; a repeat in one batch names both rows.
    let long = Id::from("é".repeat(MAX_STR_ID_BYTES / 2));
    let e = db
        .put(
            PutMode::Add,
            &[long.clone(), long.clone()],
            &v,
            Vec::new(),
            Vec::new(),
        )
        .unwrap_err();
    assert!(
        matches!(
            e,
            Error::RepeatedId {
                first: 0,
                again: 1,
                ..
            }
        ),
        "{e:?}"
    );
    db.put(
        PutMode::Add,
        std::slice::from_ref(&long),
        &v[..DIM],
        Vec::new(),
        Vec::new(),
    )
    .unwrap();
    let e = db
        .put(
            PutMode::Add,
            std::slice::from_ref(&long),
            &v[..DIM],
            Vec::new(),
            Vec::new(),
        )
        .unwrap_err();
    assert!(
        matches!(e, Error::DuplicateId(ref id) if *id == long),
        "{e:?}"
    );
    // The u64 forms refuse a string-id database; the generic ones refuse int ids.
    assert!(matches!(
        db.search(&v[..DIM], 1, None, None),
        Err(Error::InvalidArgument(_))
    ));
    assert!(matches!(
        db.add(1, &v[..DIM], None),
        Err(Error::InvalidArgument(_))
    ));
    assert!(db.contains_id(&Id::Int(1)).is_err());
    // A document above the limit.
    let big = "d".repeat(nusterdb_core::storage::codec::MAX_DOCUMENT_BYTES + 1);
    let e = db
        .put(
            PutMode::Add,
            &[Id::from("big")],
            &v[..DIM],
            Vec::new(),
            vec![Some(big)],
        )
        .unwrap_err();
    assert!(e.to_string().contains("document of"), "{e}");
    assert_eq!(db.count().unwrap(), 1);
}

/// A new database is the current format from the start (the change log needs it; an
/// older build refuses it by its marker), and a document goes with its record.
#[test]
fn new_databases_are_the_current_format_and_documents_go_with_their_records() {
    let dir = tempfile::tempdir().unwrap();
    let db = Database::open(
        at(dir.path()),
        Some(config(IndexType::Flat, IdType::Int)),
        false,
    )
    .unwrap();
    let v = rows(3, 2);
    db.bulk_add(&[1, 2], &v[..2 * DIM], None).unwrap();
    db.remove(1).unwrap();
    assert_eq!(stored_format(dir.path()), FORMAT_VERSION);
    db.update_record(&Id::Int(2), None, None, Some("doc".into()))
        .unwrap();
    assert_eq!(stored_format(dir.path()), FORMAT_VERSION);
    assert_eq!(
        db.get_document(&Id::Int(2)).unwrap().as_deref(),
        Some("doc")
    );
    db.remove(2).unwrap();
    db.add(2, &v[..DIM], None).unwrap();
    assert_eq!(
        db.get_document(&Id::Int(2)).unwrap(),
        None,
        "removed with its record"
    );
    drop(db);
    let db = Database::open(at(dir.path()), None, false).unwrap();
    assert_eq!(db.list_ids().unwrap(), vec![2]);
}

#[test]
fn followers_and_snapshots_carry_names_and_documents() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("db");
    let db = Database::open(at(&path), Some(config(IndexType::Hnsw, IdType::Str)), false).unwrap();
    let data = fill(&db, 40);
    let follower = Database::open(at(&path), None, true).unwrap();
    check(&follower, &data, 40);
    db.delete(&[name(0)]).unwrap();
    db.update_record(&name(1), None, None, Some("changed".into()))
        .unwrap();
    db.snapshot("s", &Metadata::new()).unwrap();
    follower.refresh().unwrap();
    assert!(!follower.contains_id(&name(0)).unwrap());
    assert_eq!(
        follower.get_document(&name(1)).unwrap().as_deref(),
        Some("changed")
    );
    let restored = dir.path().join("restored");
    db.restore_snapshot("s", &restored).unwrap();
    let copy = Database::open(at(&restored), None, false).unwrap();
    assert_eq!(copy.count().unwrap(), 39);
    assert_eq!(
        copy.get_document(&name(1)).unwrap().as_deref(),
        Some("changed")
    );
    let q = &data[7 * DIM..8 * DIM];
    let a = copy
        .search_records(q, 5, None, None, Include::NOTHING)
        .unwrap();
    let b = db
        .search_records(q, 5, None, None, Include::NOTHING)
        .unwrap();
    let ids = |h: &[(nusterdb_core::db::Record, f32)]| {
        h.iter().map(|x| (x.0.id.clone(), x.1)).collect::<Vec<_>>()
    };
    assert_eq!(ids(&a), ids(&b));
    assert_eq!(a[0].0.id, name(7));
}

#[test]
fn a_string_id_database_is_refused_by_a_format_1_reader() {
    // What a format-1 build does with the marker: it accepts versions 1..=1 only.
    let dir = tempfile::tempdir().unwrap();
    drop(
        Database::open(
            at(dir.path()),
            Some(config(IndexType::Flat, IdType::Str)),
            false,
        )
        .unwrap(),
    );
    let v = stored_format(dir.path());
    assert!(
        v > FORMAT_V1,
        "a format-1 reader would misread string ids as int ids"
    );
}

#[test]
fn reopening_with_another_id_type_is_a_config_mismatch() {
    let dir = tempfile::tempdir().unwrap();
    drop(
        Database::open(
            at(dir.path()),
            Some(config(IndexType::Flat, IdType::Str)),
            false,
        )
        .unwrap(),
    );
    let given = config(IndexType::Flat, IdType::Int)
        .stating(nusterdb_core::config::Fields::NONE.with(nusterdb_core::config::Field::IdType));
    match Database::open(at(dir.path()), Some(given), false) {
        Err(Error::ConfigMismatch { field, .. }) => assert_eq!(field, "id_type"),
        other => panic!("{:?}", other.map(|_| ())),
    }
}

/// `select`, `count_where`, `delete_where` and `clear` against a plain model, for both
/// id kinds: pages in id order by offset and by cursor, filters, and atomic deletes.
#[test]
fn selections_page_filter_and_delete_like_a_model() {
    use nusterdb_core::db::Selection;
    use nusterdb_core::filter::{Filter, FilterInput};
    for ids in [IdType::Int, IdType::Str] {
        for index in [IndexType::Flat, IndexType::Hnsw] {
            let dir = tempfile::tempdir().unwrap();
            let db = Database::open(at(dir.path()), Some(config(index, ids)), false).unwrap();
            let n = 257;
            let id_of = |i: usize| match ids {
                IdType::Int => Id::Int((i * 7 % 1000) as u64),
                IdType::Str => Id::from(format!("k{:03}", i * 7 % 1000)),
            };
            let all: Vec<Id> = (0..n).map(id_of).collect();
            let data = rows(n, 9);
            let metas = (0..n).map(|i| Some(meta(i % 5))).collect();
            db.put(PutMode::Add, &all, &data, metas, Vec::new())
                .unwrap();
            let mut sorted = all.clone();
            sorted.sort();
            let two =
                Filter::parse(&FilterInput::Map(vec![("n".into(), FilterInput::Int(2))])).unwrap();
            let in_two: Vec<Id> = sorted
                .iter()
                .filter(|id| {
                    let i = all.iter().position(|x| x == *id).unwrap();
                    i % 5 == 2
                })
                .cloned()
                .collect();
            assert_eq!(db.count_where(None).unwrap(), n);
            assert_eq!(db.count_where(Some(&two)).unwrap(), in_two.len());
            let page = |sel: Selection<'_>| -> Vec<Id> {
                db.select(sel, Include::NOTHING)
                    .unwrap()
                    .into_iter()
                    .map(|r| r.id)
                    .collect()
            };
            // Offset pages and cursor pages both walk every id once, in order.
            let mut by_offset = Vec::new();
            let mut by_cursor: Vec<Id> = Vec::new();
            for p in 0.. {
                let got = page(Selection {
                    offset: p * 50,
                    limit: Some(50),
                    ..Selection::default()
                });
                let last = by_cursor.last().cloned();
                let next = page(Selection {
                    after: last.as_ref(),
                    limit: Some(50),
                    ..Selection::default()
                });
                if got.is_empty() {
                    assert!(next.is_empty());
                    break;
                }
                by_offset.extend(got);
                by_cursor.extend(next);
            }
            assert_eq!(by_offset, sorted);
            assert_eq!(by_cursor, sorted);
            let filtered = page(Selection {
                filter: Some(&two),
                offset: 3,
                limit: Some(10),
                ..Selection::default()
            });
            assert_eq!(filtered, in_two[3..13]);
            // Given ids keep their order; the filter still applies.
            let asked = [all[2].clone(), all[0].clone(), all[7].clone()];
            let got = page(Selection {
                ids: Some(&asked),
                filter: Some(&two),
                ..Selection::default()
            });
            assert_eq!(got, vec![all[2].clone(), all[7].clone()]);
            assert!(db
                .select(
                    Selection {
                        ids: Some(&asked),
                        after: Some(&all[0]),
                        ..Selection::default()
                    },
                    Include::NOTHING
                )
                .is_err());
            // Delete by filter, then by ids and filter together.
            assert_eq!(db.delete_where(None, Some(&two)).unwrap(), in_two.len());
            assert_eq!(db.count_where(Some(&two)).unwrap(), 0);
            assert_eq!(db.count_where(None).unwrap(), n - in_two.len());
            assert_eq!(db.delete_where(None, None).unwrap(), 0);
            drop(db);
            let db = Database::open(at(dir.path()), None, false).unwrap();
            assert_eq!(db.count().unwrap(), n - in_two.len());
            assert_eq!(db.clear().unwrap(), n - in_two.len());
            assert_eq!(db.count().unwrap(), 0);
            assert!(db.ids().unwrap().is_empty());
            let q = &data[..DIM];
            assert!(db
                .search_records(q, 3, None, None, Include::NOTHING)
                .unwrap()
                .is_empty());
            // The cleared database takes the same ids again, and keeps them.
            db.put(
                PutMode::Add,
                &all[..5],
                &data[..5 * DIM],
                Vec::new(),
                Vec::new(),
            )
            .unwrap();
            drop(db);
            let db = Database::open(at(dir.path()), None, false).unwrap();
            assert_eq!(db.count().unwrap(), 5);
            let hits = db
                .search_records(q, 1, None, None, Include::NOTHING)
                .unwrap();
            assert_eq!(hits[0].0.id, all[0]);
        }
    }
}

/// Metadata updates: a merge sets and removes keys over the stored ones, a replace
/// replaces them; both keep `created_at` and bump `version`, and so does an upsert
/// that gives metadata. The payload index follows (filters see the new values).
#[test]
fn metadata_updates_merge_or_replace_as_the_next_version() {
    use nusterdb_core::db::MetadataUpdate;
    use nusterdb_core::filter::{Filter, FilterInput};
    let db = Database::open(
        Location::Memory,
        Some(config(IndexType::Flat, IdType::Str)),
        false,
    )
    .unwrap();
    let v = rows(1, 3);
    let mut m = Metadata::new();
    m.set("a", Value::Int(1)).unwrap();
    m.set("b", Value::Str("x".into())).unwrap();
    m.add_tag("t1").unwrap();
    let id = Id::from("r");
    db.put(
        PutMode::Add,
        std::slice::from_ref(&id),
        &v,
        vec![Some(m)],
        Vec::new(),
    )
    .unwrap();
    let stored = |db: &Database| {
        db.get_many(std::slice::from_ref(&id), Include::ALL)
            .unwrap()[0]
            .metadata
            .clone()
            .unwrap()
    };
    let first = stored(&db);
    let mut set = Metadata::new();
    set.set("a", Value::Int(2)).unwrap();
    set.set("c", Value::Bool(true)).unwrap();
    set.add_tag("t2").unwrap();
    let merge = MetadataUpdate::Merge {
        set,
        remove: vec!["b".into(), "absent".into()],
    };
    db.update_record(&id, None, Some(merge), None).unwrap();
    let merged = stored(&db);
    assert_eq!(merged.get("a"), Some(&Value::Int(2)));
    assert_eq!(merged.get("b"), None);
    assert_eq!(merged.get("c"), Some(&Value::Bool(true)));
    assert_eq!(merged.tags().len(), 2);
    assert_eq!(merged.created_at(), first.created_at());
    assert_eq!(merged.version(), first.version() + 1);
    let count = |key: &str, value: FilterInput| {
        let f = Filter::parse(&FilterInput::Map(vec![(key.into(), value)])).unwrap();
        db.count_where(Some(&f)).unwrap()
    };
    assert_eq!(count("a", FilterInput::Int(2)), 1);
    assert_eq!(count("a", FilterInput::Int(1)), 0);
    assert_eq!(count("b", FilterInput::Str("x".into())), 0);
    let mut only = Metadata::new();
    only.set("z", Value::Float(0.5)).unwrap();
    db.update_record(&id, None, Some(MetadataUpdate::Replace(only.clone())), None)
        .unwrap();
    let replaced = stored(&db);
    assert_eq!(replaced.fields(), only.fields());
    assert!(replaced.tags().is_empty());
    assert_eq!(replaced.created_at(), first.created_at());
    assert_eq!(replaced.version(), first.version() + 2);
    db.put(
        PutMode::Upsert,
        std::slice::from_ref(&id),
        &v,
        vec![Some(Metadata::new())],
        Vec::new(),
    )
    .unwrap();
    let upserted = stored(&db);
    assert!(upserted.fields().is_empty());
    assert_eq!(upserted.version(), first.version() + 3);
    assert_eq!(count("z", FilterInput::Float(0.5)), 0);
}

#[test]
fn batch_search_records_are_the_batch_hits_with_their_records() {
    use nusterdb_core::filter::{Filter, FilterInput};
    use nusterdb_core::progress::Unobserved;
    let n = 120;
    let queries = rows(9, 99);
    let some = Include {
        vector: false,
        metadata: true,
        document: true,
    };
    let small = Filter::parse(&FilterInput::Map(vec![(
        "n".into(),
        FilterInput::Map(vec![("$lt".into(), FilterInput::Int(4))]),
    )]))
    .unwrap();
    for ids in [IdType::Str, IdType::Int] {
        for index in [IndexType::Flat, IndexType::Hnsw] {
            let db = Database::open(Location::Memory, Some(config(index, ids)), false).unwrap();
            let data = rows(n, 7);
            let keys: Vec<Id> = (0..n)
                .map(|i| match ids {
                    IdType::Str => name(i),
                    IdType::Int => Id::Int(i as u64 * 3),
                })
                .collect();
            let metas = (0..n).map(|i| Some(meta(i))).collect();
            let docs = (0..n)
                .map(|i| (i % 3 != 0).then(|| format!("text of {i}")))
                .collect();
            db.put(PutMode::Add, &keys, &data, metas, docs).unwrap();
            for filter in [None, Some(&small)] {
                for include in [Include::ALL, Include::NOTHING, some] {
                    let plain = db
                        .batch_search_ids(&queries, 7, filter, None, &Unobserved)
                        .unwrap();
                    let got = db
                        .batch_search_records(&queries, 7, filter, None, include, &Unobserved)
                        .unwrap();
                    assert_eq!(got.len(), plain.len());
                    for (row, want) in got.iter().zip(&plain) {
                        // The filter allows 4 records: rows are that short.
                        assert_eq!(row.len(), if filter.is_some() { 4 } else { 7 });
                        let hit_ids: Vec<Id> = want.iter().map(|(id, _)| id.clone()).collect();
                        let records = db.get_many(&hit_ids, include).unwrap();
                        assert_eq!(row.len(), want.len());
                        for ((r, d), ((id, wd), rec)) in row.iter().zip(want.iter().zip(&records)) {
                            assert_eq!(&r.id, id);
                            assert_eq!(d.to_bits(), wd.to_bits());
                            assert_eq!(r, rec);
                        }
                    }
                }
            }
        }
    }
}
