//! [`Region`]: a growable, zero-initialised, 64-byte-aligned byte buffer, held either
//! on the heap or (unix) as a private copy-on-write mapping of part of a file.
//!
//! The mapped form is how an index opened from a seal holds its rows and codes without
//! reading them: the segment file is mapped at the start of a larger reserved range of
//! address space, so the buffer stays one contiguous slice that can grow in place
//! (the kernels index it as `slot · stride`). Pages are read from the page cache on
//! first touch, shared with every other mapping of the file (a second open, a
//! snapshot's hard link, a follower); a write copies the one page it lands on
//! (`MAP_PRIVATE`), so the file is never changed. Growth past the reservation moves
//! the buffer to the heap (one copy).
//!
//! The file must not be truncated while mapped (a read past its end would be a
//! `SIGBUS`): NusterDB writes segment files once and replaces them by new names, never
//! in place; a removed file's pages stay valid while mapped.

/// 64 bytes, 64-byte aligned: the unit heap buffers are allocated in.
#[derive(Clone, Copy)]
#[repr(C, align(64))]
struct Block([u8; 64]);

use std::ptr::NonNull;

const BLOCK: usize = 64;
const _: () =
    assert!(std::mem::size_of::<Block>() == BLOCK && std::mem::align_of::<Block>() == BLOCK);

/// See the module docs.
pub(crate) struct Region {
    repr: Repr,
    /// The buffer's first byte and length, cached from `repr` (updated by every change
    /// of it) so that reads in the search loops take no branch.
    ptr: NonNull<u8>,
    len: usize,
}

// SAFETY: `ptr` points into memory `repr` owns (a `Vec` or a mapping), accessed only
// through `&self` (reads) and `&mut self` (writes), as for a `Vec`.
unsafe impl Send for Region {}
// SAFETY: as above; shared access only reads.
unsafe impl Sync for Region {}

/// One file's part of a [`Region::of_files`] buffer: `bytes`, which are the file's from
/// byte `offset` (a multiple of 64). For the pieces to be mapped in place rather than
/// copied, each piece after the first must start at a page boundary of its file and
/// of the buffer (the first piece's offset within its page plus the lengths before it
/// a whole number of pages): segment files place their rows and codes at 64 KiB,
/// the largest page size in use, and cut parts at such boundaries.
pub(crate) struct Piece<'a> {
    pub file: &'a std::fs::File,
    pub offset: usize,
    pub bytes: &'a [u8],
}

enum Repr {
    Heap(Vec<Block>),
    #[cfg(unix)]
    Mapped(mapped::Mapping),
}

impl Default for Region {
    fn default() -> Self {
        Self::from_repr(Repr::Heap(Vec::new()))
    }
}

impl Clone for Region {
    /// A heap copy (a clone owns its bytes).
    fn clone(&self) -> Self {
        match &self.repr {
            Repr::Heap(v) => Self::from_repr(Repr::Heap(v.clone())),
            #[cfg(unix)]
            Repr::Mapped(m) => Self::heap_copy(m.bytes(), m.bytes().len()),
        }
    }
}

impl Region {
    fn from_repr(mut repr: Repr) -> Self {
        let (ptr, len) = Self::extent(&mut repr);
        Self { repr, ptr, len }
    }

    fn extent(repr: &mut Repr) -> (NonNull<u8>, usize) {
        let bytes = match repr {
            Repr::Heap(v) => blocks_bytes_mut(v),
            #[cfg(unix)]
            Repr::Mapped(m) => m.bytes_mut(),
        };
        let len = bytes.len();
        (
            NonNull::new(bytes.as_mut_ptr()).unwrap_or(NonNull::<Block>::dangling().cast()),
            len,
        )
    }

    /// An empty heap buffer with room for `bytes` reserved when the allocator grants it
    /// (a refusal only means growing later, never an abort).
    pub(crate) fn with_capacity_hint(bytes: usize) -> Self {
        let mut blocks = Vec::new();
        let _ = blocks.try_reserve_exact(bytes.div_ceil(BLOCK));
        Self::from_repr(Repr::Heap(blocks))
    }

    /// A heap buffer of `len` bytes (rounded up to 64) starting with `src`.
    fn heap_copy(src: &[u8], len: usize) -> Self {
        let mut blocks = vec![Block([0; BLOCK]); len.max(src.len()).div_ceil(BLOCK)];
        blocks_bytes_mut(&mut blocks)[..src.len()].copy_from_slice(src);
        Self::from_repr(Repr::Heap(blocks))
    }

    /// `len` bytes of `file` from byte `offset` (a multiple of 64), mapped privately
    /// (see the module docs), with address space for `room` more bytes to grow into.
    /// The bytes past `len` up to the next multiple of 64 read as zero.
    ///
    /// # Errors
    /// A range outside the file, an `offset` not a multiple of 64, or a failed `mmap`.
    #[cfg(all(unix, test))]
    pub(crate) fn map_file(
        file: &std::fs::File,
        offset: usize,
        len: usize,
        room: usize,
    ) -> std::io::Result<Self> {
        Ok(Self::from_repr(Repr::Mapped(mapped::Mapping::new(
            &[(file, offset, len)],
            room,
        )?)))
    }

    /// The bytes of `pieces` back to back (each a range of a file, `bytes` its content)
    /// as one region: with `map`, mapped in place on unix when every piece after the
    /// first starts on a page, in the buffer and in its file ([`Piece`]), with address
    /// space reserved for `room` more bytes to grow into; a heap copy otherwise (with
    /// capacity for an eighth more, at most `room`).
    ///
    /// # Errors
    /// A range outside its file or a failed `mmap`.
    pub(crate) fn of_files(pieces: &[Piece<'_>], room: usize, map: bool) -> std::io::Result<Self> {
        #[cfg(unix)]
        if map {
            let ranges: Vec<(&std::fs::File, usize, usize)> = pieces
                .iter()
                .map(|p| (p.file, p.offset, p.bytes.len()))
                .collect();
            if mapped::Mapping::fits(&ranges) {
                return Ok(Self::from_repr(Repr::Mapped(mapped::Mapping::new(
                    &ranges, room,
                )?)));
            }
        }
        // On the heap not all of `room` is reserved (capacity counts as memory held):
        // an eighth more, so the first rows added after the open do not copy it all.
        let total: usize = pieces.iter().map(|p| p.bytes.len()).sum();
        let mut r = Self::with_capacity_hint(total.saturating_add((total / 8).min(room)));
        r.resize(total);
        let mut at = 0;
        for p in pieces {
            r.as_bytes_mut()[at..at + p.bytes.len()].copy_from_slice(p.bytes);
            at += p.bytes.len();
        }
        Ok(r)
    }

    /// Whether the hinted reservation was granted (`capacity ≥ bytes`).
    pub(crate) fn reserved(&self, bytes: usize) -> bool {
        match &self.repr {
            Repr::Heap(v) => v.capacity() * BLOCK >= bytes,
            #[cfg(unix)]
            Repr::Mapped(m) => m.room() >= bytes,
        }
    }

    /// Grows (with zeros) or shrinks to at least `bytes`; the new length (a whole
    /// number of 64-byte blocks).
    pub(crate) fn resize(&mut self, bytes: usize) -> usize {
        let len = bytes.div_ceil(BLOCK) * BLOCK;
        match &mut self.repr {
            Repr::Heap(v) => {
                let blocks = len / BLOCK;
                if blocks > v.capacity() {
                    // Grow by at least an eighth: amortised like doubling (each byte is
                    // copied a bounded number of times), without doubling a large
                    // buffer's memory for a few more rows.
                    let _ = v.try_reserve_exact((blocks - v.len()).max(v.len() / 8));
                }
                v.resize(blocks, Block([0; BLOCK]));
            }
            #[cfg(unix)]
            Repr::Mapped(m) => {
                if !m.resize(len) {
                    // Past the reserved address space: one copy to the heap.
                    let copy = Self::heap_copy(m.bytes(), len);
                    *self = copy;
                    return len;
                }
            }
        }
        (self.ptr, self.len) = Self::extent(&mut self.repr);
        len
    }

    /// Every byte of the buffer.
    #[inline]
    pub(crate) fn as_bytes(&self) -> &[u8] {
        // SAFETY: `ptr`/`len` describe the bytes `repr` owns (refreshed by every
        // change of `repr`); the shared borrow of `self` keeps them alive and unchanged.
        unsafe { std::slice::from_raw_parts(self.ptr.as_ptr(), self.len) }
    }

    /// Every byte of the buffer, mutably (a write to a mapped page copies that page).
    #[inline]
    pub(crate) fn as_bytes_mut(&mut self) -> &mut [u8] {
        // SAFETY: as in `as_bytes`; the exclusive borrow makes this the only access.
        unsafe { std::slice::from_raw_parts_mut(self.ptr.as_ptr(), self.len) }
    }

    /// Heap bytes allocated (0 for a mapping: its pages belong to the page cache
    /// until written).
    pub(crate) fn heap_bytes(&self) -> usize {
        match &self.repr {
            Repr::Heap(v) => v.capacity() * BLOCK,
            #[cfg(unix)]
            Repr::Mapped(_) => 0,
        }
    }

    /// Bytes mapped from a file (0 on the heap).
    pub(crate) fn mapped_bytes(&self) -> usize {
        match &self.repr {
            Repr::Heap(_) => 0,
            #[cfg(unix)]
            Repr::Mapped(m) => m.bytes().len(),
        }
    }

    /// The address range of a mapped region's reservation (`None` on the heap).
    pub(crate) fn mapped_range(&self) -> Option<(usize, usize)> {
        match &self.repr {
            Repr::Heap(_) => None,
            #[cfg(unix)]
            Repr::Mapped(m) => Some(m.range()),
        }
    }

    /// Whether the buffer is a file mapping.
    #[cfg(test)]
    pub(crate) fn is_mapped(&self) -> bool {
        self.mapped_bytes() > 0
    }
}

fn blocks_bytes_mut(v: &mut [Block]) -> &mut [u8] {
    // SAFETY: `Block` is `repr(C)` around `[u8; 64]` with no padding (checked by the
    // const assertion above), so `v` is `64 · len` initialised contiguous bytes; the
    // exclusive borrow makes this the only access.
    unsafe { std::slice::from_raw_parts_mut(v.as_mut_ptr().cast::<u8>(), v.len() * BLOCK) }
}

#[cfg(unix)]
mod mapped {
    use std::io;
    use std::os::fd::AsRawFd;
    use std::ptr::NonNull;

    /// A file mapped at the start of a reserved range (see the module docs).
    pub(super) struct Mapping {
        /// Start of the reservation (page aligned).
        base: NonNull<u8>,
        /// Bytes reserved from `base`.
        reserve: usize,
        /// Offset of the buffer's first byte from `base` (a multiple of 64).
        start: usize,
        /// Bytes of the buffer (a multiple of 64).
        len: usize,
        /// Offset from `base` past which no byte was ever exposed or mapped from the
        /// file: those pages are still the reservation's zero pages, so growing over
        /// them needs no zeroing (and touches no memory).
        pristine: usize,
    }

    // SAFETY: the mapping is plain memory owned by this value; access goes through
    // `&self` / `&mut self` as for a `Vec`.
    unsafe impl Send for Mapping {}
    // SAFETY: as above; shared access only reads.
    unsafe impl Sync for Mapping {}

    fn page_size() -> usize {
        // SAFETY: sysconf has no preconditions.
        let p = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
        usize::try_from(p).ok().filter(|&p| p > 0).unwrap_or(4096)
    }

    /// Reserve address space without reserving swap for it where the flag exists (the
    /// kernel's accounting would otherwise count the whole reservation).
    #[cfg(any(target_os = "linux", target_os = "android", target_vendor = "apple"))]
    const NORESERVE: libc::c_int = libc::MAP_NORESERVE;
    #[cfg(not(any(target_os = "linux", target_os = "android", target_vendor = "apple")))]
    const NORESERVE: libc::c_int = 0;

    fn invalid(msg: String) -> io::Error {
        io::Error::new(io::ErrorKind::InvalidInput, msg)
    }

    impl Mapping {
        /// Whether `pieces` (file, offset, length) can be mapped back to back: every
        /// piece after the first starts on a page, in its file and in the buffer.
        pub(super) fn fits(pieces: &[(&std::fs::File, usize, usize)]) -> bool {
            let page = page_size();
            let Some(&(_, first, _)) = pieces.first() else {
                return false;
            };
            let mut at = first % page;
            for (i, &(_, offset, len)) in pieces.iter().enumerate() {
                if i > 0 && (!at.is_multiple_of(page) || !offset.is_multiple_of(page)) {
                    return false;
                }
                at += len;
            }
            true
        }

        /// Maps `pieces` (file, offset, length) back to back at the start of a new
        /// reservation with `room` more bytes (see [`Mapping::fits`]). The first
        /// file is mapped from its start (the buffer starts `offset` bytes in); the
        /// last to its end, so the bytes past the buffer are the file's until exposed.
        pub(super) fn new(
            pieces: &[(&std::fs::File, usize, usize)],
            room: usize,
        ) -> io::Result<Self> {
            let page = page_size();
            let Some(&(_, start, _)) = pieces.first() else {
                return Err(invalid("nothing to map".into()));
            };
            if !start.is_multiple_of(super::BLOCK) || !Self::fits(pieces) {
                return Err(invalid(format!(
                    "cannot map {} pieces from offset {start}",
                    pieces.len()
                )));
            }
            // Where each piece's file mapping goes (from `base`), from which byte of
            // its file, and how long it is.
            let mut plan = Vec::with_capacity(pieces.len());
            let mut at = start;
            for (i, &(file, offset, len)) in pieces.iter().enumerate() {
                let file_len = usize::try_from(file.metadata()?.len())
                    .map_err(|_| invalid("file too large to map".into()))?;
                if offset.checked_add(len).is_none_or(|e| e > file_len) {
                    return Err(invalid(format!(
                        "cannot map {len} bytes at {offset} of a {file_len}-byte file"
                    )));
                }
                let from = if i == 0 { 0 } else { offset };
                let map_at = at - (offset - from);
                let map_len = if i + 1 == pieces.len() {
                    (file_len - from).div_ceil(page) * page
                } else {
                    // `at + len` is the next piece's page-aligned start.
                    at + len - map_at
                };
                plan.push((file, from, map_at, map_len));
                at += len;
            }
            let len = at - start;
            let file_end = plan.last().map_or(0, |&(_, _, a, l)| a + l);
            let exposed = len.div_ceil(super::BLOCK) * super::BLOCK;
            let reserve = (start + exposed)
                .checked_add(room)
                .map(|r| r.div_ceil(page) * page)
                .ok_or_else(|| invalid("mapping too large".into()))?
                .max(file_end);
            // SAFETY: a fresh anonymous mapping; no existing memory is affected.
            let base = unsafe {
                libc::mmap(
                    std::ptr::null_mut(),
                    reserve,
                    libc::PROT_READ | libc::PROT_WRITE,
                    libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | NORESERVE,
                    -1,
                    0,
                )
            };
            if base == libc::MAP_FAILED {
                return Err(io::Error::last_os_error());
            }
            let Some(base) = NonNull::new(base.cast::<u8>()) else {
                return Err(invalid("mmap returned null".into()));
            };
            // `this` unmaps the reservation when dropped (on an error below too).
            let mut this = Self {
                base,
                reserve,
                start,
                len: exposed,
                pristine: file_end,
            };
            for (file, from, map_at, map_len) in plan {
                if map_len == 0 {
                    continue;
                }
                let offset = libc::off_t::try_from(from)
                    .map_err(|_| invalid("file offset too large".into()))?;
                // SAFETY: `[base + map_at, base + map_at + map_len)` lies inside the
                // reservation this value owns (`map_at + map_len ≤ file_end ≤
                // reserve`; the ranges of the pieces do not overlap), so MAP_FIXED
                // replaces only our own pages; the file is mapped privately (never
                // written through) from a page-aligned offset.
                let got = unsafe {
                    libc::mmap(
                        base.as_ptr().add(map_at).cast(),
                        map_len,
                        libc::PROT_READ | libc::PROT_WRITE,
                        libc::MAP_PRIVATE | libc::MAP_FIXED,
                        file.as_raw_fd(),
                        offset,
                    )
                };
                if got == libc::MAP_FAILED {
                    return Err(io::Error::last_os_error());
                }
            }
            // The bytes between the buffer's end and the next 64-byte boundary are
            // whatever follows in the last file: zero them (one page copied at most).
            let tail = (start + len).min(file_end)..(start + exposed).min(file_end);
            if !tail.is_empty() {
                this.raw_mut()[tail].fill(0);
            }
            Ok(this)
        }

        /// The whole reservation.
        fn raw_mut(&mut self) -> &mut [u8] {
            // SAFETY: `base` points at `reserve` bytes mapped readable and writable for
            // as long as `self` lives; `&mut self` makes this the only access.
            unsafe { std::slice::from_raw_parts_mut(self.base.as_ptr(), self.reserve) }
        }

        pub(super) fn bytes(&self) -> &[u8] {
            // SAFETY: `[start, start + len)` is inside the reservation (kept by
            // `new` and `resize`), mapped and readable while `self` lives.
            unsafe { std::slice::from_raw_parts(self.base.as_ptr().add(self.start), self.len) }
        }

        pub(super) fn bytes_mut(&mut self) -> &mut [u8] {
            let (start, len) = (self.start, self.len);
            &mut self.raw_mut()[start..start + len]
        }

        /// The reservation's address range.
        pub(super) fn range(&self) -> (usize, usize) {
            let start = self.base.as_ptr() as usize;
            (start, start + self.reserve)
        }

        /// Bytes the buffer can grow to in place.
        pub(super) fn room(&self) -> usize {
            self.reserve - self.start
        }

        /// Sets the length to `len` (a multiple of 64) in place, zeroing what is newly
        /// exposed; `false` when `len` does not fit the reservation.
        pub(super) fn resize(&mut self, len: usize) -> bool {
            if len > self.room() {
                return false;
            }
            let (old, new) = (self.start + self.len, self.start + len);
            if new > old {
                let dirty_end = new.min(self.pristine.max(old));
                self.raw_mut()[old..dirty_end].fill(0);
                self.pristine = self.pristine.max(new);
            }
            self.len = len;
            true
        }
    }

    impl Drop for Mapping {
        fn drop(&mut self) {
            // SAFETY: the reservation was mapped by `new` and is unmapped once, here;
            // no borrow of it outlives `self`.
            unsafe {
                libc::munmap(self.base.as_ptr().cast(), self.reserve);
            }
        }
    }
}

/// Bytes of this process's memory resident in each of `ranges` (address ranges): the
/// `Rss` of the mappings they span, from `/proc/self/smaps` (Linux; `None` elsewhere
/// or when it cannot be read). Pages of a file mapping count once this process has
/// touched them, whether or not other processes share them.
pub(crate) fn resident_in(ranges: &[(usize, usize)]) -> Option<Vec<usize>> {
    #[cfg(target_os = "linux")]
    {
        let smaps = std::fs::read_to_string("/proc/self/smaps").ok()?;
        // A mapping of a file's length (not a multiple of the page) ends at its last
        // page's end in smaps.
        // SAFETY: sysconf has no preconditions.
        let page = usize::try_from(unsafe { libc::sysconf(libc::_SC_PAGESIZE) })
            .ok()
            .filter(|&p| p > 0)
            .unwrap_or(4096);
        let ranges: Vec<(usize, usize)> = ranges
            .iter()
            .map(|&(lo, hi)| (lo, hi.next_multiple_of(page)))
            .collect();
        let mut out = vec![0usize; ranges.len()];
        let mut current: Option<(usize, usize)> = None;
        for line in smaps.lines() {
            let head = line.split_whitespace().next().unwrap_or("");
            if let Some((a, b)) = head.split_once('-') {
                if let (Ok(a), Ok(b)) = (usize::from_str_radix(a, 16), usize::from_str_radix(b, 16))
                {
                    current = Some((a, b));
                    continue;
                }
            }
            if let (Some((a, b)), Some(kib)) = (current, line.strip_prefix("Rss:")) {
                let kib: usize = kib.trim().trim_end_matches("kB").trim().parse().ok()?;
                for (o, &(lo, hi)) in out.iter_mut().zip(&ranges) {
                    // A mapping lies inside a reservation or outside it: a reservation
                    // is split into mappings, never shared with another.
                    if a >= lo && b <= hi {
                        *o += kib * 1024;
                    }
                }
            }
        }
        Some(out)
    }
    #[cfg(not(target_os = "linux"))]
    {
        let _ = ranges;
        None
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn heap_regions_are_aligned_zeroed_and_keep_their_bytes_when_grown() {
        let mut r = Region::with_capacity_hint(160);
        assert!(r.reserved(160));
        assert_eq!(r.resize(80), 128);
        assert_eq!(r.as_bytes().as_ptr() as usize % 64, 0);
        assert!(r.as_bytes().iter().all(|&x| x == 0));
        r.as_bytes_mut()[79] = 7;
        assert_eq!(r.resize(4000), 4032);
        assert_eq!(r.as_bytes()[79], 7);
        assert!(r.heap_bytes() >= 4032);
        assert!(!r.is_mapped());
    }

    #[cfg(unix)]
    #[test]
    fn a_mapped_region_reads_the_file_copies_on_write_and_grows() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        let content: Vec<u8> = (0..10_000u32).map(|i| (i % 251) as u8).collect();
        std::fs::File::create(&path)
            .unwrap()
            .write_all(&content)
            .unwrap();
        let file = std::fs::File::open(&path).unwrap();
        // 1,000 bytes from 128: exposed as 1,024, the last 24 zeroed (not the file's).
        let mut r = Region::map_file(&file, 128, 1000, 8192).unwrap();
        assert!(r.is_mapped());
        assert_eq!(r.as_bytes().len(), 1024);
        assert_eq!(r.as_bytes().as_ptr() as usize % 64, 0);
        assert_eq!(&r.as_bytes()[..1000], &content[128..1128]);
        assert!(r.as_bytes()[1000..].iter().all(|&x| x == 0));
        r.as_bytes_mut()[5] = 0xEE;
        // Grown in place over the rest of the file's pages and the reservation: the
        // file's later bytes never show through.
        let len = r.resize(9000);
        assert!(r.is_mapped());
        assert_eq!(len, 9024);
        assert_eq!(r.as_bytes()[5], 0xEE);
        assert_eq!(&r.as_bytes()[6..1000], &content[134..1128]);
        assert!(r.as_bytes()[1000..].iter().all(|&x| x == 0));
        // Shrunk, written, grown again: the written bytes past the new end are zeroed.
        r.resize(2048);
        r.as_bytes_mut()[2047] = 1;
        r.resize(1024);
        r.resize(4096);
        assert!(r.as_bytes()[1024..].iter().all(|&x| x == 0));
        // The file is unchanged.
        assert_eq!(std::fs::read(&path).unwrap(), content);
        // Past the reservation: moved to the heap with its bytes.
        let copy = r.clone();
        r.resize(1 << 20);
        assert!(!r.is_mapped());
        assert_eq!(r.as_bytes()[5], 0xEE);
        assert_eq!(&r.as_bytes()[..4096], copy.as_bytes());
        assert!(r.as_bytes()[4096..].iter().all(|&x| x == 0));
    }

    /// The bytes of the pieces, back to back.
    fn want_len(pieces: &[Piece<'_>]) -> usize {
        pieces.iter().map(|p| p.bytes.len()).sum()
    }

    /// Pieces of several files map back to back as one buffer when each after the
    /// first starts on a page; otherwise (or asked to) they are copied, same bytes.
    #[cfg(unix)]
    #[test]
    fn pieces_of_files_make_one_buffer() {
        let dir = tempfile::tempdir().unwrap();
        let page = 1 << 16;
        let make = |name: &str, len: usize, seed: u32| {
            let path = dir.path().join(name);
            let content: Vec<u8> = (0..len as u32)
                .map(|i| ((i * 7 + seed) % 253) as u8)
                .collect();
            std::fs::write(&path, &content).unwrap();
            (std::fs::File::open(&path).unwrap(), content)
        };
        let (fa, a) = make("a", 3 * page, 1);
        let (fb, b) = make("b", 3 * page + 100, 2);
        let (fc, c) = make("c", page + 500, 3);
        // a: bytes 64..2·page (the buffer starts 64 in, so the next piece starts on a
        // page) or 64 bytes fewer (it does not: copied); b: one page from page; c: 300
        // bytes from page (its end is not aligned).
        let rest: Vec<u8> = [&b[page..2 * page], &c[page..page + 300]].concat();
        for (end0, mapped) in [(2 * page, true), (2 * page - 64, false)] {
            let pieces = [
                Piece {
                    file: &fa,
                    offset: 64,
                    bytes: &a[64..end0],
                },
                Piece {
                    file: &fb,
                    offset: page,
                    bytes: &b[page..2 * page],
                },
                Piece {
                    file: &fc,
                    offset: page,
                    bytes: &c[page..page + 300],
                },
            ];
            let mut r = Region::of_files(&pieces, 4096, true).unwrap();
            let copy = Region::of_files(&pieces, 0, false).unwrap();
            assert!(!copy.is_mapped());
            assert_eq!(
                &copy.as_bytes()[..want_len(&pieces)],
                &r.as_bytes()[..want_len(&pieces)]
            );
            let want = [&a[64..end0], &rest[..]].concat();
            assert_eq!(r.is_mapped(), mapped, "first piece to {end0}");
            assert_eq!(r.as_bytes().as_ptr() as usize % 64, 0);
            assert_eq!(&r.as_bytes()[..want.len()], &want[..]);
            assert!(r.as_bytes()[want.len()..].iter().all(|&x| x == 0));
            // Written and grown: the files never change, growth reads zeros.
            r.as_bytes_mut()[10] ^= 0xff;
            let len = r.resize(want.len() + 3000);
            assert!(r.as_bytes()[want.len()..len].iter().all(|&x| x == 0));
            assert_eq!(r.as_bytes()[10], want[10] ^ 0xff);
        }
        assert_eq!(std::fs::read(dir.path().join("a")).unwrap(), a);
    }

    #[cfg(unix)]
    #[test]
    fn ranges_outside_the_file_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        std::fs::write(&path, [1u8; 100]).unwrap();
        let file = std::fs::File::open(&path).unwrap();
        assert!(Region::map_file(&file, 64, 37, 0).is_err());
        assert!(Region::map_file(&file, 3, 10, 0).is_err());
        let r = Region::map_file(&file, 64, 36, 0).unwrap();
        assert_eq!(r.as_bytes().len(), 64);
        assert_eq!(&r.as_bytes()[..36], &[1u8; 36]);
    }
}
