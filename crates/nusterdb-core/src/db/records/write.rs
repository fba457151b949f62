//! The writes of the record API: [`Database::put`] (add and upsert, for ids of either
//! kind), [`Database::update_record`], [`Database::delete`] and [`Database::delete_where`],
//! [`Database::clear`], and the `u64` forms (`add`, `upsert`, `update`, `remove`, …).
//!
//! Each write is validated completely, then written as one RocksDB batch (the commit
//! point), then applied to the in-memory maps. New rows (and the new vectors of stored
//! rows) are indexed first — staged and linked with searches going on
//! (`Database::write_rows`) where the index stages, under the exclusive lock otherwise
//! (`State::commit`) — so a stopped or failed write is taken back and changes nothing;
//! removals retire their rows exclusively and repair the graph with searches going on.

use std::collections::HashMap;
use std::sync::Arc;

use parking_lot::{RwLockUpgradableReadGuard, RwLockWriteGuard};

use super::Selection;
use crate::db::{beside, corruption, Database, State};
use crate::error::{Error, Result};
use crate::filter::Filter;
use crate::ids::Id;
use crate::metadata::Metadata;
use crate::progress::{in_pieces, Observer, Phase, Unobserved};
use crate::storage::codec::{self, FORMAT_V2, MAX_DOCUMENT_BYTES};
use crate::storage::keys;
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
    /// Deletes the records under `keys` (stored, distinct) from the store in one batch
    /// — the commit point — and returns each with the metadata it had (for the payload
    /// index), and whether the batch moved the store to the current format. The maps
    /// are left to [`State::forget_removed`].
    fn store_removal(&self, keys: &[u64]) -> Result<(Vec<(u64, Metadata)>, bool)> {
        let mut present = Vec::with_capacity(keys.len());
        for &key in keys {
            present.push((key, self.stored_metadata(key)?));
        }
        if present.is_empty() {
            return Ok((present, false));
        }
        let mut batch = self.store.batch();
        for (key, _) in &present {
            batch.delete(keys::vector_key(*key));
            batch.delete(keys::metadata_key(*key));
            if self.format >= FORMAT_V2 {
                batch.delete(keys::document_key(*key));
            }
            if self.names.is_some() {
                batch.delete(keys::name_key(*key));
            }
        }
        let touched: Vec<u64> = present.iter().map(|(k, _)| *k).collect();
        let upgrade = self.write_logged(batch, &touched, false)?;
        Ok((present, upgrade))
    }

    /// After [`State::store_removal`]: the removed records leave the id map, payload
    /// index and string ids, and their rows are retired from the index
    /// ([`VectorIndex::retire`]: searches stop returning them at once). Returns what
    /// the index still has to repair, for [`VectorIndex::repair_retired`].
    fn forget_removed(
        &mut self,
        present: &[(u64, Metadata)],
        upgrade: bool,
    ) -> Option<roaring::RoaringBitmap> {
        if upgrade {
            self.format = codec::FORMAT_VERSION;
        }
        let mut slots = Vec::with_capacity(present.len());
        for (key, m) in present {
            if let Some(slot) = self.ids.release(*key) {
                slots.push(slot);
                self.payload.remove(slot, m);
            }
            if let Some(names) = self.names.as_mut() {
                names.remove(*key);
            }
        }
        self.changed(slots.len());
        // One graph repair for the whole batch.
        self.index.retire(&slots)
    }

    /// Stores `rows` in one batch and applies them to the maps, all or nothing, under
    /// exclusive access (the path of indexes that do not stage, and of single-row
    /// updates).
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
        index.begin_batch();
        let stopped = in_pieces(&fresh, 256, Phase::Indexing, observer, |piece| {
            index.insert_many(piece)
        });
        index.end_batch();
        if let Err(done) = stopped {
            self.take_back(&rows, done);
            return Err(Error::Interrupted("indexing"));
        }
        let upgrade = match self.store_rows(&rows) {
            Ok(u) => u,
            Err(e) => {
                self.take_back(&rows, fresh.len());
                return Err(e);
            }
        };
        self.apply_committed(&rows, &[], upgrade, fresh.len())
    }

    /// Writes `rows` as one RocksDB batch: the commit point. Returns whether the
    /// batch moved the store to the current format ([`State::write_logged`]).
    fn store_rows(&self, rows: &[RowWrite<'_>]) -> Result<bool> {
        let mut batch = self.store.batch();
        for r in rows {
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
            }
            if let Some(name) = &r.name {
                batch.put(keys::name_key(r.key), codec::encode_text(name));
            }
        }
        let touched: Vec<u64> = rows.iter().map(|r| r.key).collect();
        self.write_logged(batch, &touched, false)
    }

    /// After the commit point: the new rows' string ids and payload, the replaced
    /// rows' payload and vectors (re-linked now), the format. The new rows are bound
    /// to their slots in the id map already.
    fn apply_committed(
        &mut self,
        rows: &[RowWrite<'_>],
        moved: &[bool],
        upgrade: bool,
        fresh: usize,
    ) -> Result<()> {
        if upgrade {
            self.format = codec::FORMAT_VERSION;
        }
        let mut replaced: Vec<(u32, &[f32])> = Vec::new();
        for (i, r) in rows.iter().enumerate() {
            if moved.get(i).copied().unwrap_or(false) {
                // Moved to a new slot by `write_rows`, payload and all.
                continue;
            }
            match r.slot {
                None => {
                    // Bound before; the lookup cannot miss.
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
        self.changed(fresh + replaced.len());
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
        self.write_rows(observer, |st| {
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
            Ok(rows)
        })?;
        Ok(n)
    }

    /// Writes the rows `build` resolves against the state, all or nothing (see
    /// [`State::commit`]). With an index that stages ([`VectorIndex::stages`]: HNSW),
    /// searches and reads go on while the new rows are linked into the graph — the
    /// costly part of a bulk write:
    ///
    /// 1. under the lock's upgradable read (no other write; searches go on) the rows
    ///    are resolved; upgraded to exclusive, the new rows get reserved slots (bound to
    ///    no id yet) and are staged in the index (their vectors stored, never returned
    ///    by a search);
    /// 2. back to the upgradable read, the staged rows are linked in pieces `observer`
    ///    may stop between, while searches walk the graph, and the RocksDB batch is
    ///    written — the commit point;
    /// 3. exclusive again: the new rows are bound to their ids and published, the rest
    ///    applied; or, after a stop or a failed store, taken back
    ///    ([`VectorIndex::abandon`], the slots unreserved): the database as before.
    ///
    /// A stored row whose vector changes (an upsert) moves: its new vector is staged
    /// and linked in a new slot like a new row's, and in step 3 the id and its payload
    /// move to that slot while the old node is retired ([`VectorIndex::retire`]); 4.
    /// under the upgradable read again the old node's neighbours are repaired, as a
    /// removal's are, searches going on.
    ///
    /// A reader therefore sees the write whole or not at all: before step 3 no id,
    /// count, payload or search result shows a new row or a new vector.
    fn write_rows<'v>(
        &self,
        observer: &dyn Observer,
        build: impl FnOnce(&State) -> Result<Vec<RowWrite<'v>>>,
    ) -> Result<()> {
        self.check_writable()?;
        let guard = self.shared.state.upgradable_read();
        let st = guard.as_ref().ok_or(Error::Closed)?;
        let rows = build(st)?;
        let fresh_rows = rows.iter().filter(|r| r.slot.is_none()).count();
        // Stored rows whose vector changes move to a new slot, staged and linked like
        // a new row; their old node is retired and repaired like a removal's.
        let moved: Vec<bool> = rows
            .iter()
            .map(|r| st.index.stages() && r.slot.is_some() && r.vector.is_some())
            .collect();
        let moving = moved.iter().filter(|&&m| m).count();
        if !st.index.stages() || fresh_rows + moving == 0 {
            let mut w = RwLockUpgradableReadGuard::upgrade(guard);
            let st = w.as_mut().ok_or(Error::Closed)?;
            st.commit(rows, observer)?;
            self.after_write(w);
            return Ok(());
        }
        // The metadata a moved row takes to its new slot: the given one, else the
        // stored one.
        let mut carried: Vec<Metadata> = Vec::with_capacity(moving);
        for (r, _) in rows.iter().zip(&moved).filter(|(_, &m)| m) {
            carried.push(match &r.metadata {
                Some(m) => m.clone(),
                None => st.stored_metadata(r.key)?,
            });
        }
        // New rows first, then moved ones, in row order: the staging order.
        let staged: Vec<usize> = (0..rows.len())
            .filter(|&i| rows[i].slot.is_none())
            .chain((0..rows.len()).filter(|&i| moved[i]))
            .collect();
        // 1. Stage.
        let mut w = RwLockUpgradableReadGuard::upgrade(guard);
        let st = w.as_mut().ok_or(Error::Closed)?;
        let reserved = st.ids.reserve(staged.len())?;
        let items: Vec<(u32, &[f32])> = staged
            .iter()
            .zip(&reserved.slots)
            .map(|(&i, &s)| (s, rows[i].vector.unwrap_or(&[])))
            .collect();
        st.index.stage(&items);
        // 2. Link and store, searches going on.
        let guard = RwLockWriteGuard::downgrade_to_upgradable(w);
        let st = guard.as_ref().ok_or(Error::Closed)?;
        let stored = match in_pieces(&reserved.slots, 256, Phase::Indexing, observer, |piece| {
            beside::run(|| st.index.link_staged(piece))
        }) {
            Err(_) => Err(Error::Interrupted("indexing")),
            Ok(()) => st.store_rows(&rows),
        };
        // 3. Publish, or take back.
        let mut w = RwLockUpgradableReadGuard::upgrade(guard);
        let st = w.as_mut().ok_or(Error::Closed)?;
        let upgrade = match stored {
            Ok(u) => u,
            Err(e) => {
                st.index.abandon(&reserved.slots);
                st.ids.unreserve(&reserved);
                return Err(e);
            }
        };
        let mut old_slots = Vec::with_capacity(moving);
        let mut carried = carried.into_iter();
        for (&i, &slot) in staged.iter().zip(&reserved.slots) {
            let r = &rows[i];
            if moved[i] {
                let Some(m) = carried.next() else { continue };
                if let Some(old) = st.ids.release(r.key) {
                    old_slots.push(old);
                    // The metadata the old slot was indexed with: the replaced one, or
                    // the kept one (which moves unchanged). Removing by it touches that
                    // slot's entries only, not every posting list.
                    st.payload
                        .remove(old, r.old_metadata.as_ref().unwrap_or(&m));
                }
                st.ids.bind(r.key, slot);
                st.payload.insert(slot, &m);
            } else {
                st.ids.bind(r.key, slot);
            }
        }
        st.index.publish(&reserved.slots);
        let retired = st.index.retire(&old_slots);
        st.apply_committed(&rows, &moved, upgrade, fresh_rows + moving)?;
        // 4. The moved rows' old nodes repaired, searches going on.
        let guard = RwLockWriteGuard::downgrade_to_upgradable(w);
        if let (Some(st), Some(retired)) = (guard.as_ref(), retired) {
            beside::run(|| st.index.repair_retired(&retired));
        }
        self.after_staged_write(guard);
        Ok(())
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
        // Through `write_rows`: a new vector is staged and linked with searches going
        // on, like an upsert's.
        self.write_rows(&Unobserved, |st| {
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
            Ok(vec![RowWrite {
                key,
                name: None,
                slot,
                vector: if same { None } else { v },
                metadata,
                old_metadata,
                document,
            }])
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
        self.check_writable()?;
        // As a staged write (`write_rows`): resolved and stored under the upgradable
        // read, applied exclusively (searches stop returning the rows), and the graph
        // repaired under the upgradable read again, searches going on.
        let guard = self.shared.state.upgradable_read();
        let st = guard.as_ref().ok_or(Error::Closed)?;
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
        let (present, upgrade) = st.store_removal(&keys)?;
        if present.is_empty() {
            return Ok(0);
        }
        let mut w = RwLockUpgradableReadGuard::upgrade(guard);
        let st = w.as_mut().ok_or(Error::Closed)?;
        let retired = st.forget_removed(&present, upgrade);
        let guard = RwLockWriteGuard::downgrade_to_upgradable(w);
        if let (Some(st), Some(retired)) = (guard.as_ref(), retired) {
            beside::run(|| st.index.repair_retired(&retired));
        }
        self.after_staged_write(guard);
        Ok(present.len())
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
            let mut batch = st.store.batch();
            for prefix in [
                keys::VECTOR_PREFIX,
                keys::METADATA_PREFIX,
                keys::DOCUMENT_PREFIX,
                keys::NAME_PREFIX,
            ] {
                let (from, to) = (keys::record_key(prefix, 0), [prefix + 1]);
                batch.delete_range(&from[..], &to[..]);
            }
            if st.write_logged(batch, &[], true)? {
                st.format = codec::FORMAT_VERSION;
            }
            st.ids = crate::id_map::IdMap::default();
            st.index = crate::db::new_index(&config, 0);
            st.payload = crate::filter::PayloadIndex::new();
            *st.filter_cache.lock() = crate::db::FilterCache::default();
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
}
