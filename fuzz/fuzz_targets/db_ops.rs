//! Operation sequences on an in-memory database against a model (a map of id →
//! vector): after every step the contents agree, and exact search agrees with brute
//! force. Bytes choose the operations, ids and values.
#![no_main]

use std::collections::BTreeMap;

use libfuzzer_sys::fuzz_target;
use nusterdb_core::db::Location;
use nusterdb_core::{Database, DatabaseConfig, DistanceMetric, Error};

const DIM: usize = 3;

fuzz_target!(|data: &[u8]| {
    let Ok(cfg) = DatabaseConfig::new(DIM) else {
        return;
    };
    let Ok(db) = Database::open(Location::Memory, Some(cfg), false) else {
        return;
    };
    let mut model: BTreeMap<u64, Vec<f32>> = BTreeMap::new();
    for op in data.chunks_exact(5) {
        let id = u64::from(op[1] % 16);
        let v: Vec<f32> = op[2..5].iter().map(|&x| f32::from(x as i8) / 4.0).collect();
        match op[0] % 5 {
            0 => match db.add(id, &v, None) {
                Ok(()) => assert!(model.insert(id, v).is_none()),
                Err(Error::DuplicateId(_)) => assert!(model.contains_key(&id)),
                Err(e) => panic!("add: {e}"),
            },
            1 => {
                db.upsert(id, &v, None).unwrap();
                model.insert(id, v);
            }
            2 => {
                let removed = db.remove(id).unwrap();
                assert_eq!(removed, model.remove(&id).is_some());
            }
            3 => match db.update(id, Some(&v), None) {
                Ok(()) => assert!(model.insert(id, v).is_some()),
                Err(Error::IdNotFound(_)) => assert!(!model.contains_key(&id)),
                Err(e) => panic!("update: {e}"),
            },
            _ => {
                let k = usize::from(op[1] % 8) + 1;
                let got = db.search(&v, k, None, None).unwrap();
                let mut want: Vec<(f32, u64)> = model
                    .iter()
                    .map(|(&i, x)| (DistanceMetric::Euclidean.distance_unchecked(&v, x), i))
                    .collect();
                want.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
                want.truncate(k);
                let got: Vec<(f32, u64)> = got.into_iter().map(|(i, d)| (d, i)).collect();
                assert_eq!(got, want);
            }
        }
        assert_eq!(db.count().unwrap(), model.len());
    }
    assert_eq!(
        db.list_ids().unwrap(),
        model.keys().copied().collect::<Vec<_>>()
    );
});
