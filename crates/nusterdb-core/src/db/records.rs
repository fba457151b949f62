//! The record API of [`Database`]: its types ([`Include`], [`Record`], [`Selection`];
//! the writes' [`PutMode`] and [`MetadataUpdate`] are re-exported from `write`), the
//! resolution of ids to record keys, filters evaluated through the filter cache, and
//! the reads (get, get_many, select, documents, counts), for ids of either kind. The writes are in `write`,
//! search in `search`.
//!
//! Every call works on [`Id`]s and resolves them to record keys under the database
//! lock; the `u64` forms (`add`, `search`, …) are the same calls for int-id databases,
//! kept because they need no conversion at all. Each write is validated completely,
//! then written as one RocksDB batch, then applied to the in-memory maps.

use std::collections::HashSet;
use std::sync::Arc;

use roaring::RoaringBitmap;

use super::{corruption, Database, State, FILTER_CACHE_ENTRIES};
use crate::error::{Error, Result};
use crate::filter::Filter;
use crate::ids::{Id, IdType};
use crate::metadata::Metadata;
use crate::storage::codec::{self, FORMAT_V2, MAX_DOCUMENT_BYTES};
use crate::storage::keys;

mod search;
mod write;

pub use write::{MetadataUpdate, PutMode};

/// What a read returns besides the ids.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Include {
    pub vector: bool,
    pub metadata: bool,
    pub document: bool,
}

impl Include {
    /// Ids (and distances) only.
    pub const NOTHING: Include = Include {
        vector: false,
        metadata: false,
        document: false,
    };

    /// Everything stored.
    pub const ALL: Include = Include {
        vector: true,
        metadata: true,
        document: true,
    };
}

/// A stored record with what an [`Include`] asked for (`None` where not asked; a
/// `document` is also `None` when the record has none).
#[derive(Clone, Debug, PartialEq)]
pub struct Record {
    pub id: Id,
    pub vector: Option<Vec<f32>>,
    pub metadata: Option<Metadata>,
    pub document: Option<String>,
}

/// Which records a read or a delete applies to (see [`Database::select`]).
#[derive(Clone, Copy, Debug, Default)]
pub struct Selection<'a> {
    /// These ids in this order; `None`: every record, in id order.
    pub ids: Option<&'a [Id]>,
    /// Only the records this filter allows.
    pub filter: Option<&'a Filter>,
    /// In id order, only the records after this id.
    pub after: Option<&'a Id>,
    /// Records to skip (after the filter).
    pub offset: usize,
    /// At most this many records.
    pub limit: Option<usize>,
}

impl State {
    /// The key of a stored id (`None`: not stored, or of the other kind).
    fn key_of(&self, id: &Id) -> Option<u64> {
        match (id, &self.names) {
            (Id::Int(i), None) => self.ids.contains(*i).then_some(*i),
            (Id::Str(s), Some(names)) => names.key(s),
            _ => None,
        }
    }

    /// The id of a stored key.
    fn id_of(&self, key: u64) -> Option<Id> {
        match &self.names {
            None => Some(Id::Int(key)),
            Some(names) => names.name(key).map(|s| Id::Str(Arc::clone(s))),
        }
    }

    fn stored_metadata(&self, key: u64) -> Result<Metadata> {
        let path = self.store.path();
        let bytes = self
            .store
            .get(&keys::metadata_key(key))?
            .ok_or_else(|| corruption(path, format!("metadata of key {key} missing")))?;
        codec::decode_metadata(&bytes)
            .map_err(|d| corruption(path, format!("metadata of key {key}: {d}")))
    }

    fn stored_document(&self, key: u64) -> Result<Option<String>> {
        if self.format < FORMAT_V2 {
            // A format-1 store has never held a document.
            return Ok(None);
        }
        match self.store.get(&keys::document_key(key))? {
            None => Ok(None),
            Some(bytes) => codec::decode_text(&bytes, MAX_DOCUMENT_BYTES)
                .map(Some)
                .map_err(|d| corruption(self.store.path(), format!("document of key {key}: {d}"))),
        }
    }

    /// The record of a stored key with what `include` asks for.
    fn record(&self, id: Id, key: u64, include: Include) -> Result<Record> {
        let slot = self.ids.slot(key);
        let vector = match (include.vector, slot) {
            (true, Some(s)) => self.index.get(s).map(<[f32]>::to_vec),
            _ => None,
        };
        let metadata = if include.metadata {
            Some(self.stored_metadata(key)?)
        } else {
            None
        };
        let document = if include.document {
            self.stored_document(key)?
        } else {
            None
        };
        Ok(Record {
            id,
            vector,
            metadata,
            document,
        })
    }

    /// The (id, key) a selection picks, in its order (see [`Database::select`]).
    /// `allow`: `Some(bits)` when a filter was given (`Some(None)`: it allows all).
    fn selected(
        &self,
        sel: &Selection<'_>,
        allow: Option<Option<&RoaringBitmap>>,
    ) -> Result<Vec<(Id, u64)>> {
        let passes = |key: u64| match allow.flatten() {
            None => true,
            Some(bits) => self.ids.slot(key).is_some_and(|s| bits.contains(s)),
        };
        let limit = sel.limit.unwrap_or(usize::MAX);
        let mut out = Vec::new();
        if limit == 0 {
            return Ok(out);
        }
        let mut skip = sel.offset;
        // Takes one candidate; false once the page is full.
        let mut take = |id: Id, key: u64, out: &mut Vec<(Id, u64)>| {
            if !passes(key) {
                return true;
            }
            if skip > 0 {
                skip -= 1;
                return true;
            }
            out.push((id, key));
            out.len() < limit
        };
        match (sel.ids, &self.names) {
            (Some(ids), _) => {
                let mut seen = HashSet::new();
                for id in ids {
                    if let Some(key) = self.key_of(id) {
                        if seen.insert(key) && !take(id.clone(), key, &mut out) {
                            break;
                        }
                    }
                }
            }
            // Int ids: RocksDB's keys are in id order.
            (None, None) => {
                let from = match sel.after {
                    Some(Id::Int(i)) => i.saturating_add(1),
                    _ => 0,
                };
                self.store.ids_from(keys::VECTOR_PREFIX, from, |key| {
                    take(Id::Int(key), key, &mut out)
                })?;
            }
            (None, Some(names)) => {
                for (name, key) in names.after(sel.after.and_then(Id::as_str)) {
                    if !take(Id::Str(Arc::clone(name)), key, &mut out) {
                        break;
                    }
                }
            }
        }
        Ok(out)
    }
}

impl Database {
    fn id_type(&self) -> IdType {
        self.shared.config.id_type
    }

    /// Checks an id for this database.
    fn check_id(&self, id: &Id) -> Result<()> {
        id.check(self.id_type())
    }

    /// Counts the records `filter` allows (all with `None`).
    ///
    /// # Errors
    /// [`Error::Closed`].
    pub fn count_where(&self, filter: Option<&Filter>) -> Result<usize> {
        self.read(|st| {
            Ok(match Self::allowed(st, filter) {
                None => st.ids.len(),
                Some(bits) => bits.len() as usize,
            })
        })
    }

    /// The records a selection picks, with what `include` asks for: `sel.ids` in the
    /// order asked (absent ones and repeats left out) or every record in id order (ints
    /// ascending, strings by their UTF-8 bytes), then only those `sel.filter` allows,
    /// after the id `sel.after` (id order only: a cursor for paging), skipping
    /// `sel.offset` and at most `sel.limit`. A page costs what it skips and returns.
    ///
    /// # Errors
    /// A bad id; `after` with `ids`; [`Error::Closed`]; storage errors.
    pub fn select(&self, sel: Selection<'_>, include: Include) -> Result<Vec<Record>> {
        for id in sel.ids.unwrap_or(&[]).iter().chain(sel.after) {
            self.check_id(id)?;
        }
        if sel.ids.is_some() && sel.after.is_some() {
            return Err(Error::invalid(
                "`after` pages through the records in id order: give it without ids",
            ));
        }
        self.read(|st| {
            let allow = Self::allowed(st, sel.filter);
            st.selected(&sel, sel.filter.map(|_| allow.as_deref()))?
                .into_iter()
                .map(|(id, key)| st.record(id, key, include))
                .collect()
        })
    }

    /// The stored records among `ids`, in the order asked, each once (absent ids are
    /// left out), with what `include` asks for.
    ///
    /// # Errors
    /// A bad id; [`Error::Closed`]; storage errors.
    pub fn get_many(&self, ids: &[Id], include: Include) -> Result<Vec<Record>> {
        let sel = Selection {
            ids: Some(ids),
            ..Selection::default()
        };
        self.select(sel, include)
    }

    /// The vector stored for `id` of either kind (`None`: no such id).
    ///
    /// # Errors
    /// A bad id; [`Error::Closed`].
    pub fn vector_of(&self, id: &Id) -> Result<Option<Vec<f32>>> {
        self.check_id(id)?;
        self.read(|st| {
            Ok(st
                .key_of(id)
                .and_then(|key| st.ids.slot(key))
                .and_then(|s| st.index.get(s))
                .map(<[f32]>::to_vec))
        })
    }

    /// The metadata stored for `id` of either kind (`None`: no such id).
    ///
    /// # Errors
    /// A bad id; [`Error::Closed`]; storage errors.
    pub fn metadata_of(&self, id: &Id) -> Result<Option<Metadata>> {
        self.check_id(id)?;
        self.read(|st| st.key_of(id).map(|key| st.stored_metadata(key)).transpose())
    }

    /// The document stored with `id` (`None`: no such id, or no document).
    ///
    /// # Errors
    /// A bad id; [`Error::Closed`]; storage errors.
    pub fn get_document(&self, id: &Id) -> Result<Option<String>> {
        self.check_id(id)?;
        self.read(|st| match st.key_of(id) {
            Some(key) => st.stored_document(key),
            None => Ok(None),
        })
    }

    /// Whether `id` is stored.
    ///
    /// # Errors
    /// A bad id; [`Error::Closed`].
    pub fn contains_id(&self, id: &Id) -> Result<bool> {
        self.check_id(id)?;
        self.read(|st| Ok(st.key_of(id).is_some()))
    }

    /// Every id, sorted (ints ascending, strings by their UTF-8 bytes).
    ///
    /// # Errors
    /// [`Error::Closed`].
    pub fn ids(&self) -> Result<Vec<Id>> {
        self.read(|st| {
            Ok(match &st.names {
                None => st.ids.sorted_ids().into_iter().map(Id::Int).collect(),
                Some(names) => names.sorted().into_iter().map(Id::Str).collect(),
            })
        })
    }

    /// `Ok` for an int-id database, where the `u64` forms apply.
    fn int_ids(&self) -> Result<()> {
        match self.id_type() {
            IdType::Int => Ok(()),
            IdType::Str => Err(Error::invalid(
                "this database's ids are strs (id_type=\"str\"): give str ids",
            )),
        }
    }

    /// The vector stored for `id`.
    ///
    /// # Errors
    /// [`Error::Closed`].
    pub fn get(&self, id: u64) -> Result<Option<Vec<f32>>> {
        self.int_ids()?;
        self.read(|st| {
            Ok(st
                .ids
                .slot(id)
                .and_then(|s| st.index.get(s))
                .map(<[f32]>::to_vec))
        })
    }

    /// The metadata stored for `id`.
    ///
    /// # Errors
    /// [`Error::Closed`]; storage errors.
    pub fn get_metadata(&self, id: u64) -> Result<Option<Metadata>> {
        self.int_ids()?;
        self.read(|st| {
            if st.ids.contains(id) {
                st.stored_metadata(id).map(Some)
            } else {
                Ok(None)
            }
        })
    }

    /// Whether `id` is stored.
    ///
    /// # Errors
    /// [`Error::Closed`].
    pub fn contains(&self, id: u64) -> Result<bool> {
        self.int_ids()?;
        self.read(|st| Ok(st.ids.contains(id)))
    }

    /// Number of stored vectors.
    ///
    /// # Errors
    /// [`Error::Closed`].
    pub fn count(&self) -> Result<usize> {
        self.read(|st| Ok(st.ids.len()))
    }

    /// Every id, ascending.
    ///
    /// # Errors
    /// [`Error::Closed`].
    pub fn list_ids(&self) -> Result<Vec<u64>> {
        self.int_ids()?;
        self.read(|st| Ok(st.ids.sorted_ids()))
    }

    /// The slots `filter` allows, `None` meaning all of them. Evaluating a broad
    /// filter (a range over many values) can cost more than the search itself, and a
    /// query stream usually repeats a few filters: the last [`FILTER_CACHE_ENTRIES`]
    /// results are kept while the payload index is unchanged.
    fn allowed(st: &State, filter: Option<&Filter>) -> Option<Arc<RoaringBitmap>> {
        let f = match filter {
            None => return None,
            Some(f) if f.is_all() => return None,
            Some(f) => f,
        };
        let version = st.payload.version();
        {
            let mut cache = st.filter_cache.lock();
            if cache.version != version {
                cache.entries.clear();
                cache.version = version;
            }
            if let Some((_, hit)) = cache.entries.iter().find(|(g, _)| g == f) {
                return hit.clone();
            }
        }
        let bits = st.payload.evaluate(f);
        // A filter every live vector passes is no filter: the search runs unfiltered.
        let allowed = (bits.len() < st.ids.len() as u64).then(|| Arc::new(bits));
        let mut cache = st.filter_cache.lock();
        if cache.version == version {
            cache.entries.push_front((f.clone(), allowed.clone()));
            cache.entries.truncate(FILTER_CACHE_ENTRIES);
        }
        allowed
    }
}
