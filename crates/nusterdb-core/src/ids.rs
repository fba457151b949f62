//! Record ids as callers see them — ints or strings, one kind per database
//! ([`IdType`], fixed at creation) — and [`Names`], the map from string ids to the u64
//! keys that everything below the database (records in RocksDB, the id map, the graph
//! file) is keyed by.
//!
//! A string-id database gives each new string a fresh key; the pair is stored as a
//! record of its own (`n` + key → the string) in the same atomic batch as the vector,
//! so the indexes, the graph file and the crash and snapshot machinery work on keys
//! exactly as for int ids.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::ops::Bound;
use std::sync::Arc;

use crate::error::{Error, Result};
use crate::id_map::{check_id, ID_LIMIT};

/// Longest string id, in UTF-8 bytes.
pub const MAX_STR_ID_BYTES: usize = 1024;

/// The kind of ids a database takes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum IdType {
    /// Integers in 0..2^63 (the default, and the only kind of format-1 databases).
    #[default]
    Int,
    /// Non-empty UTF-8 strings of at most [`MAX_STR_ID_BYTES`] bytes.
    Str,
}

impl IdType {
    /// The name users know it by.
    pub fn name(self) -> &'static str {
        match self {
            IdType::Int => "int",
            IdType::Str => "str",
        }
    }

    /// Parses `"int"` or `"str"`.
    ///
    /// # Errors
    /// Any other name.
    pub fn parse(name: &str) -> Result<Self> {
        match name {
            "int" => Ok(IdType::Int),
            "str" => Ok(IdType::Str),
            other => Err(Error::invalid(format!(
                "unknown id_type {other:?}: use \"int\" or \"str\""
            ))),
        }
    }
}

/// One record id.
///
/// Strings are shared (`Arc<str>`): a search result refers to the id held by the map
/// instead of copying it.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Id {
    Int(u64),
    Str(Arc<str>),
}

impl Id {
    /// The kind of the id.
    pub fn id_type(&self) -> IdType {
        match self {
            Id::Int(_) => IdType::Int,
            Id::Str(_) => IdType::Str,
        }
    }

    /// The int, if it is one.
    pub fn as_int(&self) -> Option<u64> {
        match self {
            Id::Int(i) => Some(*i),
            Id::Str(_) => None,
        }
    }

    /// The string, if it is one.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Id::Int(_) => None,
            Id::Str(s) => Some(s),
        }
    }

    /// Checks the id for a database taking `expected` ids.
    ///
    /// # Errors
    /// An id of the other kind, an int ≥ 2^63, an empty string or one longer than
    /// [`MAX_STR_ID_BYTES`]; each message names the id.
    pub fn check(&self, expected: IdType) -> Result<()> {
        if self.id_type() != expected {
            return Err(Error::invalid(format!(
                "id {self} is {} {}, but this database's ids are {}s (id_type={:?})",
                article(self.id_type()),
                self.id_type().name(),
                expected.name(),
                expected.name()
            )));
        }
        match self {
            Id::Int(i) => check_id(*i),
            Id::Str(s) if s.is_empty() => Err(Error::invalid("string ids must not be empty")),
            Id::Str(s) if s.len() > MAX_STR_ID_BYTES => Err(Error::invalid(format!(
                "id {} is {} bytes, above the limit of {MAX_STR_ID_BYTES} bytes",
                Shown(s),
                s.len()
            ))),
            Id::Str(_) => Ok(()),
        }
    }
}

fn article(t: IdType) -> &'static str {
    match t {
        IdType::Int => "an",
        IdType::Str => "a",
    }
}

impl From<u64> for Id {
    fn from(i: u64) -> Self {
        Id::Int(i)
    }
}

impl From<&str> for Id {
    fn from(s: &str) -> Self {
        Id::Str(s.into())
    }
}

impl From<String> for Id {
    fn from(s: String) -> Self {
        Id::Str(s.into())
    }
}

/// A string id as messages show it: quoted and escaped, the first 80 characters.
struct Shown<'a>(&'a str);

impl fmt::Display for Shown<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut chars = self.0.chars();
        let head: String = chars.by_ref().take(80).collect();
        if chars.next().is_some() {
            write!(f, "{:?}…", head)
        } else {
            write!(f, "{head:?}")
        }
    }
}

impl fmt::Display for Id {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Id::Int(i) => write!(f, "{i}"),
            Id::Str(s) => Shown(s).fmt(f),
        }
    }
}

/// String ids ↔ their keys, with the next free key. The ids are kept sorted, so pages
/// of records in id order cost what they return.
#[derive(Debug, Default, Clone)]
pub struct Names {
    key_of: BTreeMap<Arc<str>, u64>,
    name_of: HashMap<u64, Arc<str>>,
    next: u64,
}

impl Names {
    /// The key of `name`.
    pub fn key(&self, name: &str) -> Option<u64> {
        self.key_of.get(name).copied()
    }

    /// The string id stored under `key`.
    pub fn name(&self, key: u64) -> Option<&Arc<str>> {
        self.name_of.get(&key)
    }

    /// Number of names.
    pub fn len(&self) -> usize {
        self.key_of.len()
    }

    /// No names.
    pub fn is_empty(&self) -> bool {
        self.key_of.is_empty()
    }

    /// Records `name` under `key` (as loaded, or after a write), keeping the next
    /// fresh key above every key in use.
    ///
    /// # Errors
    /// A name or a key already present, or a key out of range (a damaged store), as a
    /// message.
    pub fn insert(&mut self, name: Arc<str>, key: u64) -> std::result::Result<(), String> {
        if key >= ID_LIMIT {
            return Err(format!("key {key} out of range"));
        }
        if self.name_of.contains_key(&key) {
            return Err(format!("key {key} has two names"));
        }
        if self.key_of.contains_key(&name) {
            return Err(format!("id {} stored twice", Shown(&name)));
        }
        self.next = self.next.max(key + 1);
        self.key_of.insert(Arc::clone(&name), key);
        self.name_of.insert(key, name);
        Ok(())
    }

    /// The names of `pairs` (key, name) with `next` as the next fresh key, checked
    /// like [`Names::insert`] plus: each name a valid string id, `next` above every
    /// key and at most 2^63.
    ///
    /// # Errors
    /// A broken invariant, as a message.
    pub fn from_parts(pairs: Vec<(u64, Arc<str>)>, next: u64) -> std::result::Result<Self, String> {
        let mut names = Names::default();
        for (key, name) in pairs {
            if name.is_empty() || name.len() > MAX_STR_ID_BYTES {
                return Err(format!(
                    "key {key}: a string id of {} bytes (1 to {MAX_STR_ID_BYTES})",
                    name.len()
                ));
            }
            names.insert(name, key)?;
        }
        if next < names.next || next > ID_LIMIT {
            return Err(format!(
                "next key {next} is below a key in use or above 2^63"
            ));
        }
        names.next = next;
        Ok(names)
    }

    /// The next fresh key ([`Names::fresh_keys`] starts there).
    pub fn next_key(&self) -> u64 {
        self.next
    }

    /// Forgets the name under `key`.
    pub fn remove(&mut self, key: u64) -> Option<Arc<str>> {
        let name = self.name_of.remove(&key)?;
        self.key_of.remove(&name);
        Some(name)
    }

    /// `n` fresh keys, not yet recorded (the caller records them with
    /// [`Names::insert`] once they are stored).
    ///
    /// # Errors
    /// The key space (2^63) is used up.
    pub fn fresh_keys(&self, n: usize) -> Result<std::ops::Range<u64>> {
        let end = self
            .next
            .checked_add(n as u64)
            .filter(|&e| e <= ID_LIMIT)
            .ok_or_else(|| Error::invalid("the database has used up its 2^63 record keys"))?;
        Ok(self.next..end)
    }

    /// Every name, sorted by bytes.
    pub fn sorted(&self) -> Vec<Arc<str>> {
        self.key_of.keys().cloned().collect()
    }

    /// (name, key) in name order, from the first name after `after` (all with `None`).
    pub fn after<'a>(
        &'a self,
        after: Option<&'a str>,
    ) -> impl Iterator<Item = (&'a Arc<str>, u64)> + 'a {
        let from = after.map_or(Bound::Unbounded, Bound::Excluded);
        self.key_of
            .range::<str, _>((from, Bound::Unbounded))
            .map(|(n, &k)| (n, k))
    }

    /// Rough heap bytes: both maps and the strings.
    pub fn memory_bytes(&self) -> usize {
        let strings: usize = self.name_of.values().map(|s| s.len() + 16).sum();
        // A B-tree entry (name, key) plus its share of the nodes; a hash entry.
        self.key_of.len() * 40 + self.name_of.capacity() * 32 + strings
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_checked_against_the_database_kind() {
        assert!(Id::from(5).check(IdType::Int).is_ok());
        assert!(Id::from("a").check(IdType::Str).is_ok());
        let e = Id::from("a").check(IdType::Int).unwrap_err().to_string();
        assert!(e.contains("\"a\"") && e.contains("ints"), "{e}");
        let e = Id::from(7).check(IdType::Str).unwrap_err().to_string();
        assert!(e.contains("id 7") && e.contains("strs"), "{e}");
        assert!(Id::from("").check(IdType::Str).is_err());
        assert!(Id::from("é".repeat(512)).check(IdType::Str).is_ok());
        let long = Id::from("x".repeat(MAX_STR_ID_BYTES + 1));
        let e = long.check(IdType::Str).unwrap_err().to_string();
        assert!(e.contains("1025 bytes") && e.contains('…'), "{e}");
        assert!(Id::from(1u64 << 63).check(IdType::Int).is_err());
    }

    #[test]
    fn names_map_both_ways_and_keys_stay_fresh() {
        let mut n = Names::default();
        assert_eq!(n.fresh_keys(2).unwrap(), 0..2);
        n.insert("a".into(), 0).unwrap();
        n.insert("b".into(), 5).unwrap();
        assert_eq!(n.fresh_keys(1).unwrap(), 6..7);
        assert_eq!(
            (n.key("a"), n.key("b"), n.key("c")),
            (Some(0), Some(5), None)
        );
        assert_eq!(n.name(5).map(|s| &**s), Some("b"));
        assert!(n.insert("a".into(), 9).is_err());
        assert!(n.insert("c".into(), 5).is_err());
        assert_eq!(n.remove(0).as_deref(), Some("a"));
        assert_eq!(n.key("a"), None);
        assert_eq!(n.sorted(), vec![Arc::<str>::from("b")]);
        // Keys only grow while open (after a reopen a removed top key may come back:
        // every record of it went in the batch that removed it).
        assert_eq!(n.fresh_keys(1).unwrap(), 6..7);
        n.insert("d".into(), 7).unwrap();
        n.insert("c".into(), 8).unwrap();
        let after_b: Vec<u64> = n.after(Some("b")).map(|x| x.1).collect();
        assert_eq!(after_b, vec![8, 7]);
        assert_eq!(n.after(None).count(), 3);
        assert_eq!(n.fresh_keys(1).unwrap(), 9..10);
    }

    #[test]
    fn from_parts_checks_names_keys_and_next() {
        let n = Names::from_parts(vec![(3, "a".into()), (1, "b".into())], 9).unwrap();
        assert_eq!((n.key("a"), n.name(1).map(|s| &**s)), (Some(3), Some("b")));
        assert_eq!((n.next_key(), n.fresh_keys(1).unwrap()), (9, 9..10));
        type Parts = (Vec<(u64, Arc<str>)>, u64);
        let bad: [Parts; 6] = [
            (vec![(3, "a".into()), (4, "a".into())], 9),
            (vec![(3, "a".into()), (3, "b".into())], 9),
            (vec![(3, "".into())], 9),
            (vec![(3, "x".repeat(MAX_STR_ID_BYTES + 1).into())], 9),
            (vec![(3, "a".into())], 3),
            (vec![(ID_LIMIT, "a".into())], ID_LIMIT),
        ];
        for (pairs, next) in bad {
            assert!(
                Names::from_parts(pairs.clone(), next).is_err(),
                "{pairs:?} {next}"
            );
        }
        assert!(Names::from_parts(Vec::new(), ID_LIMIT + 1).is_err());
        assert_eq!(
            Names::from_parts(Vec::new(), ID_LIMIT).unwrap().next_key(),
            ID_LIMIT
        );
    }

    #[test]
    fn display_quotes_and_cuts_long_strings() {
        assert_eq!(Id::from(3).to_string(), "3");
        assert_eq!(Id::from("a\"b\n").to_string(), r#""a\"b\n""#);
        assert!(Id::from("y".repeat(200)).to_string().ends_with('…'));
    }
}
