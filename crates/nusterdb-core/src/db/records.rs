//! The record API of [`Database`]: writes (add, upsert, update, remove), reads (get,
//! get_many, documents) and search, for ids of either kind.
//!
//! Every call works on [`Id`]s and resolves them to record keys under the database
//! lock; the `u64` forms (`add`, `search`, …) are the same calls for int-id databases,
//! kept because they need no conversion at all. Each write is validated completely,
//! then written as one RocksDB batch, then applied to the in-memory maps.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use roaring::RoaringBitmap;
use rocksdb::WriteBatch;

use super::{corruption, Database, State, FILTER_CACHE_ENTRIES, MAX_BATCH_RESULTS};
use crate::config::check_ef_search;
use crate::error::{Error, Result};
use crate::filter::Filter;
use crate::ids::{Id, IdType};
use crate::index::SearchParams;
use crate::metadata::Metadata;
use crate::progress::{in_pieces, Observer, Phase, Unobserved};
use crate::storage::codec::{self, encode_format, FORMAT_VERSION, MAX_DOCUMENT_BYTES};
use crate::storage::keys::{self, FORMAT_KEY};
use crate::vector::check_dims;

/// How [`Database::put`] treats ids that are already stored.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PutMode {
    /// Every id must be new ([`Error::DuplicateId`] otherwise).
    Add,
    /// A stored id is replaced: its vector, and its metadata or document where given
    /// (kept where not).
    Upsert,
}

/// How [`Database::update_record`] changes a record's metadata.
#[derive(Clone, Debug, PartialEq)]
pub enum MetadataUpdate {
    /// The given fields and tags replace the stored ones.
    Replace(Metadata),
    /// The given fields are set and tags added over the stored ones, and the keys in
    /// `remove` are dropped.
    Merge { set: Metadata, remove: Vec<String> },
}

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

/// One row of a write, resolved against the stored state.
struct RowWrite<'a> {
    key: u64,
    /// The new string id to record (a new row of a string-id database).
    name: Option<Arc<str>>,
    /// The slot of a stored row; `None` for a new one.
    slot: Option<u32>,
    /// The vector to store and index; `None` keeps the stored one.
    vector: Option<&'a [f32]>,
    /// The metadata to store; `None` keeps the stored one (a new row stores empty
    /// metadata).
    metadata: Option<Metadata>,
    /// The stored metadata a new one replaces (taken out of the payload index).
    old_metadata: Option<Metadata>,
    document: Option<String>,
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
        if self.format < FORMAT_VERSION {
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

    /// Removes the records under `keys` (stored, distinct) in one batch.
    fn remove_keys(&mut self, keys: &[u64]) -> Result<usize> {
        let mut present = Vec::with_capacity(keys.len());
        for &key in keys {
            present.push((key, self.stored_metadata(key)?));
        }
        if present.is_empty() {
            return Ok(0);
        }
        let mut batch = WriteBatch::default();
        for (key, _) in &present {
            batch.delete(keys::vector_key(*key));
            batch.delete(keys::metadata_key(*key));
            if self.format >= FORMAT_VERSION {
                batch.delete(keys::document_key(*key));
            }
            if self.names.is_some() {
                batch.delete(keys::name_key(*key));
            }
        }
        self.store.write(batch)?;
        let mut slots = Vec::with_capacity(present.len());
        for (key, m) in &present {
            if let Some(slot) = self.ids.release(*key) {
                slots.push(slot);
                self.payload.remove(slot, m);
            }
            if let Some(names) = self.names.as_mut() {
                names.remove(*key);
            }
        }
        // One graph repair for the whole batch.
        self.index.remove_many(&slots);
        self.changed(slots.len());
        Ok(present.len())
    }

    /// Stores `rows` in one batch and applies them to the maps, all or nothing.
    ///
    /// New rows are given slots and indexed first, in pieces `observer` may stop
    /// between; a stop, or a failed store, takes them back ([`VectorIndex::abandon`])
    /// and releases their slots, so the database is as before the call. Only then is
    /// the batch written — the commit point — and the rest applied (replaced vectors
    /// are re-linked after it: a replacement cannot be taken back cheaply).
    fn commit(&mut self, rows: Vec<RowWrite<'_>>, observer: &dyn Observer) -> Result<()> {
        let mut fresh: Vec<(u32, &[f32])> = Vec::new();
        for r in rows.iter().filter(|r| r.slot.is_none()) {
            match self.ids.assign(r.key) {
                Ok(s) => fresh.push((s, r.vector.unwrap_or(&[]))),
                Err(e) => {
                    self.take_back(&rows, 0);
                    return Err(e);
                }
            }
        }
        let index = &mut self.index;
        let stopped = in_pieces(&fresh, 256, Phase::Indexing, observer, |piece| {
            index.insert_many(piece)
        });
        if let Err(done) = stopped {
            self.take_back(&rows, done);
            return Err(Error::Interrupted("indexing"));
        }
        let mut batch = WriteBatch::default();
        let mut documents = false;
        for r in &rows {
            if let Some(v) = r.vector {
                batch.put(keys::vector_key(r.key), codec::encode_vector(v));
            }
            match (&r.metadata, r.slot) {
                (Some(m), _) => batch.put(keys::metadata_key(r.key), codec::encode_metadata(m)),
                (None, None) => batch.put(
                    keys::metadata_key(r.key),
                    codec::encode_metadata(&Metadata::new()),
                ),
                (None, Some(_)) => {}
            }
            if let Some(d) = &r.document {
                batch.put(keys::document_key(r.key), codec::encode_text(d));
                documents = true;
            }
            if let Some(name) = &r.name {
                batch.put(keys::name_key(r.key), codec::encode_text(name));
            }
        }
        let upgrade = documents && self.format < FORMAT_VERSION;
        if upgrade {
            // The first document makes the store format 2, in the same batch: a build
            // that reads only format 1 then refuses it instead of losing documents.
            batch.put(FORMAT_KEY, encode_format(FORMAT_VERSION));
        }
        if let Err(e) = self.store.write(batch) {
            self.take_back(&rows, fresh.len());
            return Err(e);
        }
        // Committed.
        if upgrade {
            self.format = FORMAT_VERSION;
        }
        let mut replaced: Vec<(u32, &[f32])> = Vec::new();
        for r in rows.iter() {
            match r.slot {
                None => {
                    // Assigned above; the lookup cannot miss.
                    let Some(s) = self.ids.slot(r.key) else {
                        continue;
                    };
                    if let (Some(names), Some(name)) = (self.names.as_mut(), &r.name) {
                        names
                            .insert(Arc::clone(name), r.key)
                            .map_err(|d| corruption(self.store.path(), d))?;
                    }
                    self.payload
                        .insert(s, r.metadata.as_ref().unwrap_or(&Metadata::new()));
                }
                Some(slot) => {
                    if let Some(v) = r.vector {
                        replaced.push((slot, v));
                    }
                    if let (Some(old), Some(new)) = (&r.old_metadata, &r.metadata) {
                        self.payload.remove(slot, old);
                        self.payload.insert(slot, new);
                    }
                }
            }
        }
        self.index.insert_many(&replaced);
        self.changed(fresh.len() + replaced.len());
        Ok(())
    }

    /// Undoes the first part of [`State::commit`]: the first `indexed` new rows leave
    /// the index, and every new row's slot is released.
    fn take_back(&mut self, rows: &[RowWrite<'_>], indexed: usize) {
        let mut slots = Vec::new();
        for r in rows.iter().filter(|r| r.slot.is_none()) {
            if let Some(s) = self.ids.release(r.key) {
                slots.push(s);
            }
        }
        // `release` hands back the slots in assignment order.
        slots.truncate(indexed);
        self.index.abandon(&slots);
    }
}

/// The first id given twice in `ids`, with both rows.
fn first_repeat(ids: &[Id]) -> Option<Error> {
    let mut seen: HashMap<&Id, usize> = HashMap::with_capacity(ids.len());
    for (row, id) in ids.iter().enumerate() {
        if let Some(&first) = seen.get(id) {
            return Some(Error::RepeatedId {
                id: id.clone(),
                first,
                again: row,
            });
        }
        seen.insert(id, row);
    }
    None
}

fn check_document(d: &str) -> Result<()> {
    if d.len() > MAX_DOCUMENT_BYTES {
        return Err(Error::invalid(format!(
            "document of {} bytes, above the limit of {MAX_DOCUMENT_BYTES} bytes",
            d.len()
        )));
    }
    Ok(())
}

/// `e` with the row and id of a bulk call (`n` rows) in its message.
fn in_row(e: Error, n: usize, row: usize, id: &Id) -> Error {
    if n == 1 {
        return e;
    }
    match e {
        Error::NonFinite { position, value } => Error::invalid(format!(
            "row {row} (id {id}): the vector has a non-finite value ({value}) at position {position}"
        )),
        Error::InvalidArgument(msg) => Error::invalid(format!("row {row} (id {id}): {msg}")),
        other => other,
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

    /// Writes rows atomically: all or nothing. `vectors` is row-major, one row per
    /// id; `metadata` and `documents` are empty (none given) or one entry per id, `None`
    /// meaning none given for that row. Returns the number of rows written.
    ///
    /// # Errors
    /// A bad id, vector, metadata or document (naming the row and id); an id given
    /// twice ([`Error::RepeatedId`]); under [`PutMode::Add`] a stored id
    /// ([`Error::DuplicateId`]). Nothing is stored then.
    pub fn put(
        &self,
        mode: PutMode,
        ids: &[Id],
        vectors: &[f32],
        metadata: Vec<Option<Metadata>>,
        documents: Vec<Option<String>>,
    ) -> Result<usize> {
        self.put_observed(mode, ids, vectors, metadata, documents, &Unobserved)
    }

    /// [`Database::put`] watched by `observer`, which is told of the indexing's
    /// progress and may stop it: then nothing is stored ([`Error::Interrupted`]). Once
    /// the batch is being written the call runs to its end.
    ///
    /// # Errors
    /// As [`Database::put`]; [`Error::Interrupted`].
    pub fn put_observed(
        &self,
        mode: PutMode,
        ids: &[Id],
        vectors: &[f32],
        metadata: Vec<Option<Metadata>>,
        documents: Vec<Option<String>>,
        observer: &dyn Observer,
    ) -> Result<usize> {
        let dim = self.shared.config.dim;
        let n = ids.len();
        if n == 1 {
            // One row: a wrong length is that vector's dimension.
            check_dims(dim, vectors.len())?;
        }
        if vectors.len() != n * dim {
            return Err(Error::invalid(format!(
                "{n} ids but {} values for dimension {dim} ({} rows)",
                vectors.len(),
                vectors.len() as f64 / dim as f64
            )));
        }
        for (what, len) in [("metadata", metadata.len()), ("document", documents.len())] {
            if len != 0 && len != n {
                return Err(Error::invalid(format!("{n} ids but {len} {what} entries")));
            }
        }
        for (row, (id, v)) in ids.iter().zip(vectors.chunks_exact(dim)).enumerate() {
            self.check_id(id).map_err(|e| in_row(e, n, row, id))?;
            self.check_vector(v).map_err(|e| in_row(e, n, row, id))?;
            if let Some(Some(d)) = documents.get(row) {
                check_document(d).map_err(|e| in_row(e, n, row, id))?;
            }
        }
        if let Some(e) = first_repeat(ids) {
            return Err(e);
        }
        let mut metadata = metadata.into_iter();
        let mut documents = documents.into_iter();
        self.write(|st| {
            let mut rows = Vec::with_capacity(n);
            let fresh_needed = match &st.names {
                Some(_) => ids.iter().filter(|id| st.key_of(id).is_none()).count(),
                None => 0,
            };
            let mut fresh = match &st.names {
                Some(names) => names.fresh_keys(fresh_needed)?,
                None => 0..0,
            };
            for (id, v) in ids.iter().zip(vectors.chunks_exact(dim)) {
                let m = metadata.next().flatten();
                let d = documents.next().flatten();
                let row = match st.key_of(id) {
                    Some(_) if mode == PutMode::Add => return Err(Error::DuplicateId(id.clone())),
                    Some(key) => {
                        let slot = st.ids.slot(key);
                        // An unchanged vector is not re-linked (nor rewritten).
                        let same = slot.and_then(|s| st.index.get(s)) == Some(v);
                        // Given metadata replaces the stored one as its next version.
                        let (metadata, old_metadata) = match m {
                            Some(m) => {
                                let old = st.stored_metadata(key)?;
                                (Some(m.succeeding(&old)), Some(old))
                            }
                            None => (None, None),
                        };
                        RowWrite {
                            key,
                            name: None,
                            slot,
                            vector: (!same).then_some(v),
                            old_metadata,
                            metadata,
                            document: d,
                        }
                    }
                    None => {
                        let (key, name) = match id {
                            Id::Int(i) => (*i, None),
                            Id::Str(s) => (
                                fresh.next().ok_or_else(|| {
                                    Error::invalid("internal: fresh key range exhausted")
                                })?,
                                Some(Arc::clone(s)),
                            ),
                        };
                        RowWrite {
                            key,
                            name,
                            slot: None,
                            vector: Some(v),
                            metadata: Some(m.unwrap_or_default()),
                            old_metadata: None,
                            document: d,
                        }
                    }
                };
                rows.push(row);
            }
            st.commit(rows, observer)?;
            Ok(n)
        })
    }

    /// Changes the vector, metadata and/or document of a stored id (what is `None`
    /// is kept). The metadata becomes the next version of the stored one (its
    /// `created_at` kept, its `version` + 1), replaced or merged as `metadata` says.
    ///
    /// # Errors
    /// [`Error::IdNotFound`]; a bad id, vector or document; storage errors.
    pub fn update_record(
        &self,
        id: &Id,
        v: Option<&[f32]>,
        metadata: Option<MetadataUpdate>,
        document: Option<String>,
    ) -> Result<()> {
        self.check_id(id)?;
        if let Some(v) = v {
            self.check_vector(v)?;
        }
        if let Some(d) = &document {
            check_document(d)?;
        }
        self.write(|st| {
            let key = st.key_of(id).ok_or_else(|| Error::IdNotFound(id.clone()))?;
            let slot = st.ids.slot(key);
            let same = match (v, slot) {
                (Some(v), Some(s)) => st.index.get(s) == Some(v),
                _ => true,
            };
            let (metadata, old_metadata) = match metadata {
                Some(change) => {
                    let old = st.stored_metadata(key)?;
                    let new = match change {
                        MetadataUpdate::Replace(m) => m.succeeding(&old),
                        MetadataUpdate::Merge { set, remove } => {
                            Metadata::merged(&old, &set, &remove)?
                        }
                    };
                    (Some(new), Some(old))
                }
                None => (None, None),
            };
            st.commit(
                vec![RowWrite {
                    key,
                    name: None,
                    slot,
                    vector: if same { None } else { v },
                    metadata,
                    old_metadata,
                    document,
                }],
                &Unobserved,
            )
        })
    }

    /// Removes every stored id among `ids` atomically; returns how many were removed.
    ///
    /// # Errors
    /// A bad id; storage errors (nothing removed).
    pub fn delete(&self, ids: &[Id]) -> Result<usize> {
        self.delete_where(Some(ids), None)
    }

    /// Removes atomically every record a selection picks — `ids` (absent ones ignored)
    /// and/or those `filter` allows; both `None`: nothing (use [`Database::clear`]).
    /// Returns how many were removed.
    ///
    /// # Errors
    /// A bad id; storage errors (nothing removed).
    pub fn delete_where(&self, ids: Option<&[Id]>, filter: Option<&Filter>) -> Result<usize> {
        for id in ids.unwrap_or(&[]) {
            self.check_id(id)?;
        }
        if ids.is_none() && filter.is_none() {
            return Ok(0);
        }
        self.write(|st| {
            let allow = Self::allowed(st, filter);
            let sel = Selection {
                ids,
                ..Selection::default()
            };
            let keys: Vec<u64> = st
                .selected(&sel, filter.map(|_| allow.as_deref()))?
                .into_iter()
                .map(|(_, key)| key)
                .collect();
            st.remove_keys(&keys)
        })
    }

    /// Removes every record atomically (one range deletion per record kind); returns
    /// how many there were.
    ///
    /// # Errors
    /// Storage errors (nothing removed).
    pub fn clear(&self) -> Result<usize> {
        let config = self.shared.config.clone();
        self.write(|st| {
            let n = st.ids.len();
            let mut batch = WriteBatch::default();
            for prefix in [
                keys::VECTOR_PREFIX,
                keys::METADATA_PREFIX,
                keys::DOCUMENT_PREFIX,
                keys::NAME_PREFIX,
            ] {
                let (from, to) = (keys::record_key(prefix, 0), [prefix + 1]);
                batch.delete_range(&from[..], &to[..]);
            }
            st.store.write(batch)?;
            st.ids = crate::id_map::IdMap::default();
            st.index = super::new_index(&config, 0);
            st.payload = crate::filter::PayloadIndex::new();
            *st.filter_cache.lock() = super::FilterCache::default();
            if let Some(names) = st.names.as_mut() {
                *names = crate::ids::Names::default();
            }
            st.changed(n.max(1));
            // The graph file is saved now (by `write`), or the next open would cut
            // every old node out of it one by one.
            st.save_at.store(0, std::sync::atomic::Ordering::Relaxed);
            Ok(n)
        })
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

    /// Adds a new vector.
    ///
    /// # Errors
    /// [`Error::DuplicateId`] if `id` exists; bad id, dimension or values; storage errors.
    pub fn add(&self, id: u64, v: &[f32], metadata: Option<Metadata>) -> Result<()> {
        self.put(PutMode::Add, &[Id::Int(id)], v, vec![metadata], Vec::new())
            .map(|_| ())
    }

    /// Adds many vectors atomically: all or nothing. `vectors` is row-major, one row per id.
    ///
    /// # Errors
    /// As [`Database::put`] with [`PutMode::Add`].
    pub fn bulk_add(
        &self,
        ids: &[u64],
        vectors: &[f32],
        metadata: Option<Vec<Metadata>>,
    ) -> Result<usize> {
        let ids: Vec<Id> = ids.iter().map(|&i| Id::Int(i)).collect();
        let metadata = metadata.map_or_else(Vec::new, |m| m.into_iter().map(Some).collect());
        self.put(PutMode::Add, &ids, vectors, metadata, Vec::new())
    }

    /// Inserts or replaces `id`'s vector. Given metadata replaces the stored one;
    /// without it an existing id keeps its metadata and a new id gets empty metadata.
    ///
    /// # Errors
    /// Bad id, dimension or values; storage errors.
    pub fn upsert(&self, id: u64, v: &[f32], metadata: Option<Metadata>) -> Result<()> {
        self.put(
            PutMode::Upsert,
            &[Id::Int(id)],
            v,
            vec![metadata],
            Vec::new(),
        )
        .map(|_| ())
    }

    /// Changes the vector and/or the metadata of an existing id; given metadata
    /// replaces the stored one (as its next version).
    ///
    /// # Errors
    /// [`Error::IdNotFound`]; bad dimension or values; storage errors.
    pub fn update(&self, id: u64, v: Option<&[f32]>, metadata: Option<Metadata>) -> Result<()> {
        self.update_record(&Id::Int(id), v, metadata.map(MetadataUpdate::Replace), None)
    }

    /// Removes `id`; returns whether it was there.
    ///
    /// # Errors
    /// Storage errors.
    pub fn remove(&self, id: u64) -> Result<bool> {
        self.bulk_remove(&[id]).map(|n| n == 1)
    }

    /// Removes every present id among `ids` atomically; returns how many were removed.
    ///
    /// # Errors
    /// Storage errors (nothing removed).
    pub fn bulk_remove(&self, ids: &[u64]) -> Result<usize> {
        let ids: Vec<Id> = ids.iter().map(|&i| Id::Int(i)).collect();
        self.delete(&ids)
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

    fn check_query(&self, q: &[f32], k: usize) -> Result<()> {
        if k == 0 {
            return Err(Error::invalid("k must be at least 1"));
        }
        self.check_vector(q)
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

    /// Slot hits as (key, distance), nearest first; equal distances ordered by id, so
    /// results do not depend on slot reuse.
    fn to_keys(st: &State, hits: Vec<(u32, f32)>) -> Vec<(u64, f32)> {
        let mut out: Vec<(u64, f32)> = hits
            .into_iter()
            .filter_map(|(slot, d)| st.ids.id(slot).map(|key| (key, d)))
            .collect();
        match &st.names {
            None => out.sort_by(|a, b| a.1.total_cmp(&b.1).then(a.0.cmp(&b.0))),
            Some(names) => out.sort_by(|a, b| {
                a.1.total_cmp(&b.1)
                    .then_with(|| names.name(a.0).cmp(&names.name(b.0)))
            }),
        }
        out
    }

    /// Slot hits as (id, distance), in the order of [`Database::to_keys`].
    fn to_ids(st: &State, hits: Vec<(u32, f32)>) -> Vec<(Id, f32)> {
        Self::to_keys(st, hits)
            .into_iter()
            .filter_map(|(key, d)| st.id_of(key).map(|id| (id, d)))
            .collect()
    }

    /// The nearest slots to `q` under the read lock, mapped by `map` under it too.
    fn search_slots<T>(
        &self,
        q: &[f32],
        k: usize,
        filter: Option<&Filter>,
        ef_search: Option<usize>,
        map: impl FnOnce(&State, Vec<(u32, f32)>) -> Result<T>,
    ) -> Result<T> {
        self.check_query(q, k)?;
        if let Some(ef) = ef_search {
            check_ef_search(ef)?;
        }
        let params = SearchParams { ef_search };
        self.read(|st| {
            let allow = Self::allowed(st, filter);
            let hits = st.index.search(q, k, allow.as_deref(), &params);
            map(st, hits)
        })
    }

    /// The min(k, matches) nearest vectors to `q`, nearest first, as (id, distance).
    ///
    /// # Errors
    /// `k == 0`, `ef_search` outside 1..=[`crate::config::MAX_EF`], wrong dimension,
    /// non-finite query, [`Error::Closed`]; a string-id database.
    pub fn search(
        &self,
        q: &[f32],
        k: usize,
        filter: Option<&Filter>,
        ef_search: Option<usize>,
    ) -> Result<Vec<(u64, f32)>> {
        self.int_ids()?;
        self.search_slots(q, k, filter, ef_search, |st, hits| {
            Ok(Self::to_keys(st, hits))
        })
    }

    /// [`Database::search`] for ids of either kind, each hit with what `include` asks
    /// for, read under the same lock as the search (a concurrent write cannot pair a
    /// hit with another record's data).
    ///
    /// # Errors
    /// As [`Database::search`]; storage errors reading metadata or documents.
    pub fn search_records(
        &self,
        q: &[f32],
        k: usize,
        filter: Option<&Filter>,
        ef_search: Option<usize>,
        include: Include,
    ) -> Result<Vec<(Record, f32)>> {
        self.search_slots(q, k, filter, ef_search, |st, hits| {
            Self::to_keys(st, hits)
                .into_iter()
                .filter_map(|(key, d)| st.id_of(key).map(|id| (id, key, d)))
                .map(|(id, key, d)| Ok((st.record(id, key, include)?, d)))
                .collect()
        })
    }

    /// Checks a batch of queries and runs them in parallel under the read lock, in
    /// pieces `observer` may stop between ([`Error::Interrupted`]); each row's slot
    /// hits are mapped by `map`.
    fn batch_slots<T: Send>(
        &self,
        queries: &[f32],
        k: usize,
        filter: Option<&Filter>,
        ef_search: Option<usize>,
        observer: &dyn Observer,
        map: impl Fn(&State, Vec<(u32, f32)>) -> T,
    ) -> Result<Vec<T>> {
        let dim = self.shared.config.dim;
        if k == 0 {
            return Err(Error::invalid("k must be at least 1"));
        }
        if !queries.len().is_multiple_of(dim) {
            return Err(Error::DimensionMismatch {
                expected: dim,
                got: queries.len(),
            });
        }
        if let Some(ef) = ef_search {
            check_ef_search(ef)?;
        }
        let n = queries.len() / dim;
        if (n as u64).saturating_mul(k as u64) > MAX_BATCH_RESULTS {
            return Err(Error::invalid(format!(
                "batch_search would return {n} x {k} results, above the limit of {MAX_BATCH_RESULTS}; \
                 lower k or split the batch"
            )));
        }
        for (row, q) in queries.chunks_exact(dim).enumerate() {
            self.check_vector(q).map_err(|e| match e {
                Error::NonFinite { position, value } => Error::invalid(format!(
                    "query {row} has a non-finite value ({value}) at position {position}"
                )),
                Error::InvalidArgument(msg) => Error::invalid(format!("query {row}: {msg}")),
                other => other,
            })?;
        }
        let params = SearchParams { ef_search };
        self.read(|st| {
            let allow = Self::allowed(st, filter);
            let rows: Vec<usize> = (0..n).collect();
            let mut out = Vec::with_capacity(n);
            let min = st.index.batch_granularity();
            in_pieces(&rows, min, Phase::Searching, observer, |piece| {
                let (a, b) = (piece[0] * dim, (piece[piece.len() - 1] + 1) * dim);
                let hits = st
                    .index
                    .batch_search(&queries[a..b], k, allow.as_deref(), &params);
                out.extend(hits.into_iter().map(|h| map(st, h)));
            })
            .map_err(|_| Error::Interrupted("searching"))?;
            Ok(out)
        })
    }

    /// Searches for every row of `queries` (row-major), in parallel.
    ///
    /// # Errors
    /// As [`Database::search`] for any row; n·k above [`MAX_BATCH_RESULTS`]; a
    /// string-id database.
    pub fn batch_search(
        &self,
        queries: &[f32],
        k: usize,
        filter: Option<&Filter>,
        ef_search: Option<usize>,
    ) -> Result<Vec<Vec<(u64, f32)>>> {
        self.batch_search_observed(queries, k, filter, ef_search, &Unobserved)
    }

    /// [`Database::batch_search`] watched by `observer`, which may stop it between
    /// pieces of queries ([`Error::Interrupted`]).
    ///
    /// # Errors
    /// As [`Database::batch_search`]; [`Error::Interrupted`].
    pub fn batch_search_observed(
        &self,
        queries: &[f32],
        k: usize,
        filter: Option<&Filter>,
        ef_search: Option<usize>,
        observer: &dyn Observer,
    ) -> Result<Vec<Vec<(u64, f32)>>> {
        self.int_ids()?;
        self.batch_slots(queries, k, filter, ef_search, observer, Self::to_keys)
    }

    /// [`Database::batch_search_observed`] for ids of either kind.
    ///
    /// # Errors
    /// As [`Database::batch_search_observed`] (any id type).
    pub fn batch_search_ids(
        &self,
        queries: &[f32],
        k: usize,
        filter: Option<&Filter>,
        ef_search: Option<usize>,
        observer: &dyn Observer,
    ) -> Result<Vec<Vec<(Id, f32)>>> {
        self.batch_slots(queries, k, filter, ef_search, observer, Self::to_ids)
    }

    /// [`Database::batch_search_ids`] with each hit's record as `include` asks, read
    /// under the same lock as the search, as [`Database::search_records`] does: a
    /// concurrent write cannot pair a hit with another record's data, and every hit's
    /// record is there to read.
    ///
    /// # Errors
    /// As [`Database::batch_search_ids`]; storage errors reading metadata or documents.
    pub fn batch_search_records(
        &self,
        queries: &[f32],
        k: usize,
        filter: Option<&Filter>,
        ef_search: Option<usize>,
        include: Include,
        observer: &dyn Observer,
    ) -> Result<Vec<Vec<(Record, f32)>>> {
        let rows = self.batch_slots(queries, k, filter, ef_search, observer, |st, hits| {
            Self::to_keys(st, hits)
                .into_iter()
                .filter_map(|(key, d)| st.id_of(key).map(|id| (id, key, d)))
                .map(|(id, key, d)| Ok((st.record(id, key, include)?, d)))
                .collect::<Result<Vec<_>>>()
        })?;
        rows.into_iter().collect()
    }
}
