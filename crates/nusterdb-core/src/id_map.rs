//! `IdMap`: external ids (u64 below 2^63) ↔ internal slots (u32 positions in the
//! index's buffers). Slots are dense and reused after removal, so the vector buffer
//! does not grow under churn and indexes can address vectors by a small integer.

use std::collections::HashMap;

use crate::error::{Error, Result};

/// Largest accepted id + 1: ids fit numpy int64, so batch results can pad with -1.
pub const ID_LIMIT: u64 = 1 << 63;

/// Checks an external id.
///
/// # Errors
/// An id ≥ 2^63.
pub fn check_id(id: u64) -> Result<()> {
    if id < ID_LIMIT {
        Ok(())
    } else {
        Err(Error::invalid(format!(
            "id {id} is out of range: ids must be below 2^63"
        )))
    }
}

/// The id [`IdMap::slots`] shows for a free (or reserved, unbound) slot.
pub const FREE: u64 = u64::MAX;

/// Slots taken by [`IdMap::reserve`].
#[derive(Debug)]
pub struct Reservation {
    /// The slots, in the order [`IdMap::assign`] would have given them.
    pub slots: Vec<u32>,
    /// How many of them came off the free list (the first ones).
    from_free: usize,
    /// The slot extent before.
    old_len: usize,
}

/// The two-way map with a free list of slots.
#[derive(Debug, Default)]
pub struct IdMap {
    slot_of: HashMap<u64, u32>,
    id_at: Vec<u64>,
    free: Vec<u32>,
}

impl IdMap {
    /// An empty map with room for `capacity` ids.
    pub fn with_capacity(capacity: usize) -> Self {
        Self {
            slot_of: HashMap::with_capacity(capacity),
            id_at: Vec::with_capacity(capacity),
            free: Vec::new(),
        }
    }

    /// The map whose slot `s` holds `ids[s]` (`u64::MAX`: a free slot), as saved with
    /// an HNSW graph.
    ///
    /// # Errors
    /// An id repeated or out of range, as a message.
    pub fn from_slots(ids: Vec<u64>) -> std::result::Result<Self, String> {
        if ids.len() > u32::MAX as usize {
            return Err(format!(
                "{} slots is more than the id map can hold",
                ids.len()
            ));
        }
        let mut slot_of = HashMap::with_capacity(ids.len());
        let mut free = Vec::new();
        for (s, &id) in ids.iter().enumerate().rev() {
            if id == FREE {
                free.push(s as u32);
            } else if id >= ID_LIMIT || slot_of.insert(id, s as u32).is_some() {
                return Err(format!("slot {s}: id {id} out of range or repeated"));
            }
        }
        // Collected from the top down: the lowest free slot is reused first.
        Ok(Self {
            slot_of,
            id_at: ids,
            free,
        })
    }

    /// The map whose slot `s` holds `ids[s]` ([`FREE`]: a free slot) and whose free
    /// list is `free` (in [`IdMap::free_list`] order), exactly as saved: the same ids
    /// in the same slots and the same [`IdMap::next_slot`] sequence.
    ///
    /// # Errors
    /// An id repeated or out of range, or a free list that is not exactly the free
    /// slots (one entry each), as a message.
    pub fn from_parts(ids: Vec<u64>, free: Vec<u32>) -> std::result::Result<Self, String> {
        let mut m = Self::from_slots(ids)?;
        let mut listed = vec![false; m.id_at.len()];
        for &s in &free {
            match listed.get_mut(s as usize) {
                Some(seen) if !*seen && m.id_at[s as usize] == FREE => *seen = true,
                _ => return Err(format!("free list: slot {s} is not free, or listed twice")),
            }
        }
        if free.len() != m.free.len() {
            return Err(format!(
                "free list has {} slots, the map has {} free",
                free.len(),
                m.free.len()
            ));
        }
        m.free = free;
        Ok(m)
    }

    /// The id of every slot ([`FREE`] for a free or reserved one).
    pub fn slots(&self) -> &[u64] {
        &self.id_at
    }

    /// The free slots, the last one reused first.
    pub fn free_list(&self) -> &[u32] {
        &self.free
    }

    /// The slot of `id`.
    pub fn slot(&self, id: u64) -> Option<u32> {
        self.slot_of.get(&id).copied()
    }

    /// The id at `slot`.
    pub fn id(&self, slot: u32) -> Option<u64> {
        self.id_at
            .get(slot as usize)
            .copied()
            .filter(|&id| id != FREE)
    }

    /// Whether `id` is present.
    pub fn contains(&self, id: u64) -> bool {
        self.slot_of.contains_key(&id)
    }

    /// Number of ids.
    pub fn len(&self) -> usize {
        self.slot_of.len()
    }

    /// No ids.
    pub fn is_empty(&self) -> bool {
        self.slot_of.is_empty()
    }

    /// Slots ever allocated (live + free); the extent of the index buffers.
    pub fn slot_extent(&self) -> usize {
        self.id_at.len()
    }

    /// Free slots awaiting reuse (left by removals).
    pub fn free_slots(&self) -> usize {
        self.free.len()
    }

    /// The slot the next [`IdMap::assign`] will return, without assigning it.
    pub fn next_slot(&self) -> Option<u32> {
        match self.free.last() {
            Some(&s) => Some(s),
            None => u32::try_from(self.id_at.len()).ok(),
        }
    }

    /// Assigns a slot to a new id (reusing a free one first).
    ///
    /// # Errors
    /// More than 2^32 − 1 slots.
    pub fn assign(&mut self, id: u64) -> Result<u32> {
        debug_assert!(!self.contains(id));
        let slot = match self.free.pop() {
            Some(s) => {
                self.id_at[s as usize] = id;
                s
            }
            None => {
                let s = u32::try_from(self.id_at.len())
                    .ok()
                    .filter(|&s| s != u32::MAX)
                    .ok_or_else(|| Error::invalid("the database is full (2^32 - 1 vectors)"))?;
                self.id_at.push(id);
                s
            }
        };
        self.slot_of.insert(id, slot);
        Ok(slot)
    }

    /// Takes `n` slots for rows not yet bound to ids (the slots [`IdMap::assign`] would
    /// give, in the same order): they stay free to every reader — no id maps to them
    /// and [`IdMap::id`] answers `None` — until [`IdMap::bind`], and
    /// [`IdMap::unreserve`] gives them back exactly as they were.
    ///
    /// # Errors
    /// More than 2^32 − 1 slots (nothing reserved then).
    pub fn reserve(&mut self, n: usize) -> Result<Reservation> {
        let from_free = n.min(self.free.len());
        let new = n - from_free;
        let old_len = self.id_at.len();
        if old_len + new >= u32::MAX as usize {
            return Err(Error::invalid("the database is full (2^32 - 1 vectors)"));
        }
        let mut slots: Vec<u32> = (0..from_free).filter_map(|_| self.free.pop()).collect();
        slots.extend((old_len..old_len + new).map(|s| s as u32));
        self.id_at.resize(old_len + new, FREE);
        Ok(Reservation {
            slots,
            from_free,
            old_len,
        })
    }

    /// Binds `id` (absent) to a reserved `slot`.
    pub fn bind(&mut self, id: u64, slot: u32) {
        debug_assert!(!self.contains(id));
        if let Some(at) = self.id_at.get_mut(slot as usize) {
            *at = id;
            self.slot_of.insert(id, slot);
        }
    }

    /// Gives back the slots of `r` (none of them bound): the map is as before
    /// [`IdMap::reserve`].
    pub fn unreserve(&mut self, r: &Reservation) {
        self.id_at.truncate(r.old_len);
        self.free
            .extend(r.slots[..r.from_free].iter().rev().copied());
    }

    /// Removes `id`, freeing its slot.
    pub fn release(&mut self, id: u64) -> Option<u32> {
        let slot = self.slot_of.remove(&id)?;
        self.id_at[slot as usize] = FREE;
        self.free.push(slot);
        Some(slot)
    }

    /// Every id, ascending.
    pub fn sorted_ids(&self) -> Vec<u64> {
        let mut ids: Vec<u64> = self.slot_of.keys().copied().collect();
        ids.sort_unstable();
        ids
    }

    /// Rough heap bytes.
    pub fn memory_bytes(&self) -> usize {
        self.slot_of.capacity() * 16 + self.id_at.capacity() * 8 + self.free.capacity() * 4
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn slots_are_reused_after_release() {
        let mut m = IdMap::default();
        assert_eq!(m.assign(10).unwrap(), 0);
        assert_eq!(m.assign(20).unwrap(), 1);
        assert_eq!(m.release(10), Some(0));
        assert_eq!(m.id(0), None);
        assert_eq!(m.next_slot(), Some(0));
        assert_eq!(m.assign(30).unwrap(), 0);
        assert_eq!(m.id(0), Some(30));
        assert_eq!(m.sorted_ids(), vec![20, 30]);
        assert_eq!(m.release(99), None);
    }

    #[test]
    fn from_slots_restores_ids_and_free_slots() {
        let m = IdMap::from_slots(vec![7, FREE, 9, FREE]).unwrap();
        assert_eq!((m.len(), m.slot_extent(), m.free_slots()), (2, 4, 2));
        assert_eq!((m.slot(7), m.slot(9), m.id(1)), (Some(0), Some(2), None));
        assert_eq!(m.next_slot(), Some(1));
        assert!(IdMap::from_slots(vec![7, 7]).is_err());
        assert!(IdMap::from_slots(vec![1 << 63]).is_err());
    }

    /// `from_parts` keeps the free list order (so the next assigns are the same) and
    /// refuses a free list that is not exactly the free slots.
    #[test]
    fn from_parts_restores_the_free_list_order() {
        let mut m = IdMap::default();
        for id in 0..6 {
            m.assign(id).unwrap();
        }
        for id in [1, 4, 2] {
            m.release(id);
        }
        let back = IdMap::from_parts(m.slots().to_vec(), m.free_list().to_vec()).unwrap();
        assert_eq!(back.free_list(), &[1, 4, 2]);
        let mut m2 = back;
        let next: Vec<u32> = (10..14).map(|id| m2.assign(id).unwrap()).collect();
        let want: Vec<u32> = (10..14).map(|id| m.assign(id).unwrap()).collect();
        assert_eq!(next, want);
        assert_eq!(next, vec![2, 4, 1, 6]);
        let ids = vec![7, FREE, FREE];
        assert!(
            IdMap::from_parts(ids.clone(), vec![1]).is_err(),
            "slot 2 unlisted"
        );
        assert!(IdMap::from_parts(ids.clone(), vec![1, 1]).is_err());
        assert!(
            IdMap::from_parts(ids.clone(), vec![0, 1]).is_err(),
            "0 is bound"
        );
        assert!(
            IdMap::from_parts(ids.clone(), vec![1, 3]).is_err(),
            "3 is past the end"
        );
        assert!(IdMap::from_parts(ids, vec![2, 1]).is_ok());
    }

    /// Reserve then bind gives what assign gives; reserve then unreserve changes
    /// nothing, with free slots and new ones mixed.
    #[test]
    fn reserved_slots_are_assign_order_and_come_back_whole() {
        let fresh = || {
            let mut m = IdMap::default();
            for id in 0..6 {
                m.assign(id).unwrap();
            }
            m.release(4);
            m.release(1);
            m
        };
        let mut a = fresh();
        let assigned: Vec<u32> = (100..104).map(|id| a.assign(id).unwrap()).collect();
        let mut b = fresh();
        let r = b.reserve(4).unwrap();
        assert_eq!(r.slots, assigned);
        // Reserved slots are free to readers until bound.
        assert_eq!(b.len(), 4);
        assert!(r.slots.iter().all(|&s| b.id(s).is_none()));
        for (id, &s) in (100..104).zip(&r.slots) {
            b.bind(id, s);
        }
        assert_eq!(b.sorted_ids(), a.sorted_ids());
        assert_eq!(
            (b.slot_extent(), b.free_slots()),
            (a.slot_extent(), a.free_slots())
        );
        let mut c = fresh();
        let before = (
            c.sorted_ids(),
            c.slot_extent(),
            c.free_slots(),
            c.next_slot(),
        );
        let r = c.reserve(5).unwrap();
        c.unreserve(&r);
        assert_eq!(
            before,
            (
                c.sorted_ids(),
                c.slot_extent(),
                c.free_slots(),
                c.next_slot()
            )
        );
        let again: Vec<u32> = (200..205).map(|id| c.assign(id).unwrap()).collect();
        assert_eq!(again, r.slots);
    }

    #[test]
    fn ids_at_or_above_2_pow_63_are_rejected() {
        assert!(check_id((1 << 63) - 1).is_ok());
        assert!(check_id(1 << 63).is_err());
    }
}
