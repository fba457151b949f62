//! The filter parser on filters built from arbitrary bytes (a small stack machine
//! turns bytes into nested maps and lists), then evaluated on a few metadata records:
//! an error or a filter, never a panic, and evaluation never panics.
#![no_main]

use libfuzzer_sys::fuzz_target;
use nusterdb_core::filter::{Filter, FilterInput};
use nusterdb_core::{Metadata, Value};

const KEYS: [&str; 8] = ["a", "b", "tags", "$and", "$or", "$not", "$in", "$gte"];
const OPS: [&str; 12] = [
    "$eq", "$ne", "$lt", "$lte", "$gt", "$gte", "$in", "$nin", "$exists", "$and", "$or", "$not",
];

fn build(data: &mut std::slice::Iter<'_, u8>, depth: usize) -> FilterInput {
    let Some(&b) = data.next() else {
        return FilterInput::Null;
    };
    match b % 9 {
        0 => FilterInput::Null,
        1 => FilterInput::Bool(b & 16 != 0),
        2 => FilterInput::Int(i64::from(b as i8) * 1000),
        3 => FilterInput::Float(f64::from(b) / 7.0 - 10.0),
        4 => FilterInput::Str(KEYS[usize::from(b / 9) % KEYS.len()].into()),
        5 | 6 if depth < 64 => {
            let n = usize::from(b / 9) % 4;
            FilterInput::List((0..n).map(|_| build(data, depth + 1)).collect())
        }
        _ if depth < 64 => {
            let n = usize::from(b / 9) % 4;
            let key = |x: u8| {
                if x & 1 == 0 {
                    KEYS[usize::from(x / 2) % KEYS.len()].to_string()
                } else {
                    OPS[usize::from(x / 2) % OPS.len()].to_string()
                }
            };
            FilterInput::Map(
                (0..n)
                    .map(|_| {
                        let k = key(data.next().copied().unwrap_or(0));
                        (k, build(data, depth + 1))
                    })
                    .collect(),
            )
        }
        _ => FilterInput::Null,
    }
}

fuzz_target!(|data: &[u8]| {
    let input = build(&mut data.iter(), 0);
    if let Ok(f) = Filter::parse(&input) {
        let mut m = Metadata::new();
        let _ = f.matches(&m);
        let _ = m.set("a", Value::Int(3));
        let _ = m.set("b", Value::Str("a".into()));
        let _ = f.matches(&m);
    }
});
