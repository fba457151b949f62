//! `verify`: a full integrity check of a database directory, reported rather than
//! raised.
//!
//! What it checks, in order (each finding is a [`Problem`] with a [`ProblemKind`]; the
//! check goes on after one where it can):
//! 1. the directory is a NusterDB database and RocksDB opens it ([`ProblemKind::Open`]);
//! 2. every key and value RocksDB holds is read back with block checksums verified and
//!    the block cache bypassed ([`ProblemKind::Checksum`], [`ProblemKind::Storage`]);
//! 3. the format marker and the stored configuration decode ([`ProblemKind::Format`],
//!    [`ProblemKind::Config`]); every vector, metadata, document and string-id record
//!    decodes, every vector has its metadata record, every metadata record and document
//!    its vector, a string-id database has one distinct string id per vector (an
//!    int-id database none), and no other key is present ([`ProblemKind::Record`]);
//! 4. an HNSW database's graph file reads with its checksum and matches the store:
//!    the same ids, each with the hash of the vector stored ([`ProblemKind::GraphFile`],
//!    [`ProblemKind::GraphMismatch`]);
//! 5. the database loads as a reader would, and the loaded id map and index hold
//!    exactly the stored ids and vectors ([`ProblemKind::Load`], [`ProblemKind::Index`]);
//! 6. every snapshot's manifest reads with its checksum ([`ProblemKind::Snapshot`]).
//!
//! It writes nothing to the database. With no writer open it holds the writer lock
//! while it runs (a writer opening meanwhile is refused as locked), so what it reads
//! cannot change under it, and a graph file that lags the store is a problem: the last
//! writer stopped without saving it. Beside a live writer it reads as a follower does,
//! a consistent state of the store as of its open; the writer saves its graph file
//! only from time to time, so a lagging graph file is then a note, not a problem.

use std::path::{Path, PathBuf};

use crate::config::{DatabaseConfig, IndexType, MasterKey, StorageConfig};
use crate::db::{Database, GraphLoad, LoadSource, Location, GRAPH_FILE};
use crate::error::{Error, Result};
use crate::ids::{IdType, MAX_STR_ID_BYTES};
use crate::index::hnsw::{vector_hash, GraphImage, NO_ID};
use crate::snapshot;
use crate::storage::changelog::{self, Part, Seal, SealParts};
use crate::storage::codec;
use crate::storage::crypto::Cipher;
use crate::storage::keys::{
    self, CONFIG_KEY, DOCUMENT_PREFIX, FORMAT_KEY, LOG_NEXT_KEY, LOG_PREFIX, METADATA_PREFIX,
    NAME_PREFIX, SEAL_KEY, SEAL_PARTS_KEY, VECTOR_PREFIX,
};
use crate::storage::lock::WriterLock;
use crate::storage::rocks::inspect_dir;
use crate::storage::{DirState, Store};

/// At most this many ids are named in one problem's detail (the count is always given).
const NAMED_IDS: usize = 10;

/// The kind of a [`Problem`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ProblemKind {
    /// The directory is not a readable database, or RocksDB would not open it.
    Open,
    /// A block of a table file failed its checksum.
    Checksum,
    /// RocksDB failed to read for another reason.
    Storage,
    /// The format marker is missing, does not decode, or is older than the records
    /// need (documents or string ids in a format-1 database).
    Format,
    /// The stored configuration is missing or does not decode.
    Config,
    /// A vector, metadata, document or string-id record does not decode or lacks its
    /// partner, string ids repeat, or a key is not one NusterDB writes.
    Record,
    /// The HNSW graph file cannot be read (checksum, truncation, other parameters).
    GraphFile,
    /// The graph file reads but holds other ids or other vectors than the store.
    GraphMismatch,
    /// The database fails to load as a reader would open it.
    Load,
    /// The loaded id map or index disagrees with the store.
    Index,
    /// A snapshot's manifest cannot be read.
    Snapshot,
    /// The change log has a gap or an entry that does not decode, or its position or
    /// the seal record is damaged.
    ChangeLog,
    /// The seal's segment files are missing, damaged or disagree with each other (a
    /// reader's open then loads every record instead).
    Segment,
}

impl ProblemKind {
    /// The kind's stable name (`"checksum"`, `"graph_mismatch"`, ...).
    pub fn name(self) -> &'static str {
        match self {
            Self::Open => "open",
            Self::Checksum => "checksum",
            Self::Storage => "storage",
            Self::Format => "format",
            Self::Config => "config",
            Self::Record => "record",
            Self::GraphFile => "graph_file",
            Self::GraphMismatch => "graph_mismatch",
            Self::Load => "load",
            Self::Index => "index",
            Self::Snapshot => "snapshot",
            Self::ChangeLog => "change_log",
            Self::Segment => "segment",
        }
    }
}

/// One finding of [`verify`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Problem {
    pub kind: ProblemKind,
    pub detail: String,
}

/// What [`verify`] checked and found.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct VerifyReport {
    pub path: PathBuf,
    /// A writer had the database open; it was checked as a follower sees it.
    pub live_writer: bool,
    /// The checks that ran to completion, by name, in order.
    pub checked: Vec<&'static str>,
    /// The stored configuration, when it decodes.
    pub config: Option<DatabaseConfig>,
    /// Keys read from RocksDB (all of them when no read failed).
    pub keys_read: u64,
    /// Bytes of keys and values read.
    pub bytes_read: u64,
    /// Vector records read.
    pub vectors: u64,
    /// Metadata records read.
    pub metadata_records: u64,
    /// Document records read.
    pub documents: u64,
    /// String-id records read (0 in an int-id database).
    pub string_ids: u64,
    /// Change-log entries read (see `storage::changelog`).
    pub log_entries: u64,
    /// Live nodes of the graph file, when there is one and it reads.
    pub graph_nodes: Option<u64>,
    /// Vectors in the loaded index, when the database loads.
    pub index_vectors: Option<u64>,
    /// Readable snapshots.
    pub snapshots: u64,
    pub problems: Vec<Problem>,
    /// Observations that are not damage (a graph file still to be brought up to date).
    pub notes: Vec<String>,
}

impl VerifyReport {
    /// No problem found.
    pub fn is_healthy(&self) -> bool {
        self.problems.is_empty()
    }

    fn problem(&mut self, kind: ProblemKind, detail: impl Into<String>) {
        self.problems.push(Problem {
            kind,
            detail: detail.into(),
        });
    }
}

/// What the full scan of the store found.
#[derive(Default)]
struct Scan {
    /// Every key was read.
    complete: bool,
    /// `(id, vector_hash)` of every vector that decodes, ascending by id.
    vectors: Vec<(u64, u64)>,
    /// The seal record, when there is one and it decodes.
    seal: Option<Seal>,
    /// The seal parts record, when there is one and it decodes.
    parts: Option<SealParts>,
    /// The log position, when stored and readable.
    log_next: Option<u64>,
    /// `(position, clear, keys)` of every log entry that decodes, ascending.
    log: Vec<(u64, bool, Vec<u64>)>,
    /// The data key of an encrypted store (its graph file is encrypted too).
    cipher: Option<std::sync::Arc<Cipher>>,
}

impl Scan {
    /// The parts of the seal's rows and codes (its own files alone unless a parts
    /// record names it).
    fn seal_parts(&self, seal: Seal) -> Vec<Part> {
        match &self.parts {
            Some(p) if p.seal == seal.id => p.parts.clone(),
            _ => vec![Part {
                id: seal.id,
                first: 0,
            }],
        }
    }

    /// The keys the log entries after the seal touched (`None`: a `clear` among them,
    /// so every key), or an empty set without a seal.
    fn touched_since_seal(&self) -> Option<std::collections::HashSet<u64>> {
        let Some(seal) = self.seal else {
            return Some(std::collections::HashSet::new());
        };
        let mut keys = std::collections::HashSet::new();
        for (pos, clear, ids) in &self.log {
            if *pos < seal.position {
                continue;
            }
            if *clear {
                return None;
            }
            keys.extend(ids.iter().copied());
        }
        Some(keys)
    }
}

/// Step 3b: the change log is whole — every entry from the seal's floor up to the
/// stored position, none outside — and the seal lies within it.
fn check_log(report: &mut VerifyReport, scan: &Scan) {
    if !scan.complete {
        return;
    }
    let next = scan.log_next.unwrap_or(0);
    let floor = scan
        .seal
        .map_or_else(|| scan.log.first().map_or(0, |e| e.0), |s| s.floor);
    let positions: Vec<u64> = scan.log.iter().map(|e| e.0).collect();
    let outside: Vec<u64> = positions
        .iter()
        .copied()
        .filter(|&p| p < floor || p >= next)
        .collect();
    let inside = positions.len() - outside.len();
    let mut found = Vec::new();
    if !outside.is_empty() {
        found.push(format!(
            "entries outside {floor}..{next}: {}",
            name_ids(&outside)
        ));
    }
    if (inside as u64) < next.saturating_sub(floor) {
        found.push(format!(
            "{} of the entries {floor}..{next} are missing",
            next - floor - inside as u64
        ));
    }
    if let Some(seal) = scan.seal {
        if seal.position > next {
            found.push(format!(
                "the seal includes the log up to {} but the log ends at {next}",
                seal.position
            ));
        }
    }
    if found.is_empty() {
        report.checked.push("change_log");
    } else {
        report.problem(ProblemKind::ChangeLog, found.join("; "));
    }
}

/// Step 4b: the seal's segment files read with their checksums, agree with each other
/// and with the seal record, and hold what the store holds for every key the log has
/// not touched since.
fn check_segments(report: &mut VerifyReport, path: &Path, scan: &Scan) {
    let (Some(seal), Some(config)) = (scan.seal, report.config.clone()) else {
        return;
    };
    let files = crate::db::segment_files(path, seal.id);
    let problem = |report: &mut VerifyReport, detail: String| {
        report.problem(
            ProblemKind::Segment,
            format!("{detail} (an open loads every record from the store instead)"),
        );
    };
    let maps = match crate::segment::maps::read(&crate::storage::fileio::OsIo, &files[1]) {
        Ok(m) => m,
        Err(e) => return problem(report, e.to_string()),
    };
    if maps.tag.db_id != seal.id || maps.tag.log_position != seal.position {
        return problem(
            report,
            format!("{}: made for another seal", files[1].display()),
        );
    }
    let parts = scan.seal_parts(seal);
    let (vector_paths, _) = crate::db::part_files(path, &parts);
    let opened = crate::segment::vectors::open_parts(&vector_paths, parts.iter().map(|p| p.first))
        .and_then(|vfs| {
            vfs.iter()
                .try_for_each(|vf| vf.verify().map_err(|e| e.to_string()))?;
            Ok(vfs)
        });
    let vfs = match opened {
        Ok(vfs) => vfs,
        Err(e) => return problem(report, e),
    };
    let bounds =
        crate::segment::vectors::part_bounds(vfs.iter().map(|f| (f.first(), f.first() + f.len())));
    let (Some(bounds), Some(vf)) = (bounds, vfs.last()) else {
        return problem(
            report,
            format!(
                "{}: the parts do not follow one another",
                files[0].display()
            ),
        );
    };
    if vfs.len() > 1
        && vfs
            .iter()
            .any(|f| f.layout() != crate::segment::vectors::Layout::Slots)
    {
        return problem(
            report,
            format!("{}: parts of rows not laid out by slot", files[0].display()),
        );
    }
    let live = crate::db::live_slots(&maps.ids);
    let (rows_needed, by_slot) = match vf.layout() {
        crate::segment::vectors::Layout::Live => (live.len(), false),
        crate::segment::vectors::Layout::Slots => (maps.ids.slot_extent(), true),
    };
    let rows_ok = if by_slot {
        vf.first() + vf.len() >= rows_needed
    } else {
        vf.len() == rows_needed
    };
    if vfs.iter().any(|f| f.dim() != config.dim) || !rows_ok {
        return problem(
            report,
            format!(
                "{}: {} rows of {} floats for {} slots of {}",
                vf.path().display(),
                vf.len(),
                vf.dim(),
                rows_needed,
                config.dim
            ),
        );
    }
    // Row `i` of the file is the `i`-th live slot (version 1); slot `s` is in the part
    // whose slots include it (versions 2 and 3).
    let row_of = |i: usize, s: u32| {
        if !by_slot {
            return vf.row(i);
        }
        let s = s as usize;
        let k = bounds
            .partition_point(|&(_, to)| to <= s)
            .min(vfs.len() - 1);
        vfs[k].row(s.checked_sub(vfs[k].first())?)
    };
    report.checked.push("segment_files");
    if config.index_type == IndexType::Ivf {
        check_lists_file(report, path, seal.id, &config, live.len());
    }
    if !scan.complete {
        return;
    }
    let Some(touched) = scan.touched_since_seal() else {
        report.checked.push("segments_match_store");
        return;
    };
    let sealed: Vec<(u64, u64)> = {
        let mut v: Vec<(u64, u64)> = live
            .iter()
            .enumerate()
            .filter_map(|(i, &s)| Some((maps.ids.id(s)?, vector_hash(row_of(i, s)?))))
            .filter(|(id, _)| !touched.contains(id))
            .collect();
        v.sort_unstable();
        v
    };
    let stored: Vec<(u64, u64)> = scan
        .vectors
        .iter()
        .copied()
        .filter(|(id, _)| !touched.contains(id))
        .collect();
    if sealed == stored {
        report.checked.push("segments_match_store");
        return;
    }
    let ids = |v: &[(u64, u64)]| v.iter().map(|e| e.0).collect::<Vec<_>>();
    let (missing, extra) = differences(&ids(&stored), &ids(&sealed));
    let changed: Vec<u64> = merge_join_ids(&stored, &sealed)
        .into_iter()
        .filter(|&(_, a, b)| a != b)
        .map(|(id, _, _)| id)
        .collect();
    report.problem(
        ProblemKind::Segment,
        format!(
            "the segment files disagree with the store for keys the log has not touched              since the seal (stored, not sealed: {}; sealed, not stored: {}; other              vectors: {})",
            name_ids(&missing),
            name_ids(&extra),
            name_ids(&changed)
        ),
    );
}

/// What a loaded database holds, for the comparison with the store (see
/// [`Database::verify_loaded`]).
pub struct LoadedView<'a> {
    /// The ids of the id map, ascending.
    pub ids: Vec<u64>,
    /// Live vectors of the index.
    pub index_len: usize,
    /// How the graph was obtained.
    pub graph_load: &'a GraphLoad,
    /// Where the maps came from.
    pub load_source: &'a LoadSource,
    /// The vector the index holds for an id.
    pub row: &'a dyn Fn(u64) -> Option<&'a [f32]>,
}

/// Checks the database at `path` (see the module docs); never modifies it.
///
/// # Errors
/// Only when there is nothing to check: no database at `path`
/// ([`Error::NoDatabase`]) or the directory cannot be read. Everything found in a database is a
/// [`Problem`] in the report.
pub fn verify(path: &Path) -> Result<VerifyReport> {
    verify_with(path, None)
}

/// [`verify`] for a database that may be encrypted: `master` is its master key.
///
/// # Errors
/// As [`verify`]; [`Error::EncryptionKey`] for an encrypted database without its key
/// (or a key for one that is not): nothing can be checked.
pub fn verify_with(path: &Path, master: Option<&MasterKey>) -> Result<VerifyReport> {
    let storage = StorageConfig {
        encryption: master.cloned(),
        ..StorageConfig::default()
    };
    let mut report = VerifyReport {
        path: path.to_path_buf(),
        ..VerifyReport::default()
    };
    match inspect_dir(path) {
        Ok(DirState::Existing) => {}
        Ok(DirState::New) => {
            return Err(Error::NoDatabase {
                path: path.to_path_buf(),
                detail: "nothing to verify".into(),
            })
        }
        Err(e @ Error::Io { .. }) => return Err(e),
        Err(e) => {
            report.problem(ProblemKind::Open, e.to_string());
            return Ok(report);
        }
    }
    // Held (when free) until the checks end, so no writer changes the files meanwhile.
    let lock = match WriterLock::acquire(path) {
        Ok(l) => Some(l),
        Err(Error::Locked { .. }) => {
            report.live_writer = true;
            None
        }
        // A lock file that cannot be opened (a read-only copy): nothing to hold.
        Err(_) => None,
    };
    report.checked.push("open");
    // Only the key is given: everything else is the stored config.
    let given = master.map(|_| {
        let mut c = DatabaseConfig::new(1)
            .unwrap_or_else(|_| unreachable!("1 is a valid dimension"))
            .stating(crate::config::Fields::NONE);
        c.storage = storage.clone();
        c
    });
    let mut cipher = None;
    match Database::open(Location::Path(path.to_path_buf()), given, true) {
        Ok(db) => {
            let outcome = db.verify_loaded(|store, loaded| {
                cipher = store.cipher().cloned();
                let scan = check_store(&mut report, store);
                check_log(&mut report, &scan);
                check_segments(&mut report, path, &scan);
                check_graph(&mut report, path, &scan);
                check_loaded(&mut report, &scan, loaded);
            });
            if let Err(e) = outcome {
                report.problem(ProblemKind::Load, e.to_string());
            }
            db.close();
        }
        Err(e @ Error::EncryptionKey { .. }) => return Err(e),
        Err(load_error) => {
            // The reader's open failed: the raw store says why, if it can be read.
            let before = report.problems.len();
            let store = match &lock {
                Some(l) => Store::open_frozen(path, &storage, l),
                None => Store::open_read_only(path, &storage),
            };
            match store {
                Ok(store) => {
                    cipher = store.cipher().cloned();
                    let scan = check_store(&mut report, &store);
                    check_log(&mut report, &scan);
                    check_segments(&mut report, path, &scan);
                    check_graph(&mut report, path, &scan);
                }
                Err(e) => report.problem(ProblemKind::Open, e.to_string()),
            }
            if report.problems.len() == before {
                report.problem(ProblemKind::Load, load_error.to_string());
            }
        }
    }
    check_snapshots(&mut report, path, cipher.as_deref());
    drop(lock);
    Ok(report)
}

/// Step 2 and 3: reads every record with checksums verified and decodes it.
fn check_store(report: &mut VerifyReport, store: &Store) -> Scan {
    let mut scan = Scan {
        cipher: store.cipher().cloned(),
        ..Scan::default()
    };
    let mut format_seen = false;
    let mut config: Option<DatabaseConfig> = None;
    let mut config_seen = false;
    let mut metadata_ids: Vec<u64> = Vec::new();
    let mut document_ids: Vec<u64> = Vec::new();
    // (key, string id) of every string-id record that decodes.
    let mut names: Vec<(u64, String)> = Vec::new();
    let mut name_keys: Vec<u64> = Vec::new();
    let mut format: Option<u32> = None;
    // Every vector key, decodable or not (a record that does not decode is reported as
    // such, not again as an orphan of its metadata).
    let mut vector_ids: Vec<u64> = Vec::new();
    let mut bad_vectors: Vec<u64> = Vec::new();
    let mut record_problems: Vec<String> = Vec::new();
    let mut keys_read = 0u64;
    let mut bytes_read = 0u64;
    let mut row: Vec<f32> = Vec::new();
    let read = store.scan_all_checked(|k, v| {
        keys_read += 1;
        bytes_read += (k.len() + v.len()) as u64;
        if k == FORMAT_KEY {
            format_seen = true;
            match codec::decode_format(v) {
                Ok(f) => format = Some(f),
                Err(d) => report.problem(ProblemKind::Format, d),
            }
        } else if k == CONFIG_KEY {
            config_seen = true;
            match codec::decode_config(v) {
                Ok(c) => {
                    row = vec![0.0; c.dim];
                    config = Some(c);
                }
                Err(d) => report.problem(ProblemKind::Config, d),
            }
        } else if let Some(id) = keys::parse_record_key(VECTOR_PREFIX, k) {
            // The config key sorts first (its prefix is 0x00), so the dimension is known
            // here unless the config is damaged.
            vector_ids.push(id);
            if config.is_none() {
                bad_vectors.push(id);
                return;
            }
            match codec::decode_vector_into(v, &mut row) {
                Ok(()) => scan.vectors.push((id, vector_hash(&row))),
                Err(d) => record_problems.push(format!("vector {id}: {d}")),
            }
        } else if let Some(id) = keys::parse_record_key(METADATA_PREFIX, k) {
            if let Err(d) = codec::decode_metadata(v) {
                record_problems.push(format!("metadata of {id}: {d}"));
            }
            metadata_ids.push(id);
        } else if let Some(id) = keys::parse_record_key(DOCUMENT_PREFIX, k) {
            if let Err(d) = codec::decode_text(v, codec::MAX_DOCUMENT_BYTES) {
                record_problems.push(format!("document of key {id}: {d}"));
            }
            document_ids.push(id);
        } else if k == LOG_NEXT_KEY {
            match <[u8; 8]>::try_from(v) {
                Ok(b) => scan.log_next = Some(u64::from_le_bytes(b)),
                Err(_) => report.problem(
                    ProblemKind::ChangeLog,
                    format!("the log position is {} bytes", v.len()),
                ),
            }
        } else if k == SEAL_KEY {
            match Seal::decode(v) {
                Ok(s) => scan.seal = Some(s),
                Err(d) => report.problem(ProblemKind::ChangeLog, d),
            }
        } else if k == keys::CALIBRATION_KEY {
            // A cache an open ignores when it does not decode; still damage to report.
            if let Err(d) = crate::db::calibration::persist::decode(v, row.len()) {
                record_problems.push(format!("recall calibration: {d}"));
            }
        } else if k == SEAL_PARTS_KEY {
            match SealParts::decode(v) {
                Ok(p) => scan.parts = Some(p),
                Err(d) => report.problem(ProblemKind::ChangeLog, d),
            }
        } else if let Some(pos) = keys::parse_record_key(LOG_PREFIX, k) {
            match changelog::decode_entry(v) {
                Ok((clear, ids)) => scan.log.push((pos, clear, ids)),
                Err(d) => report.problem(ProblemKind::ChangeLog, format!("{d} (entry {pos})")),
            }
        } else if let Some(key) = keys::parse_record_key(NAME_PREFIX, k) {
            name_keys.push(key);
            match codec::decode_text(v, MAX_STR_ID_BYTES) {
                Ok(name) if name.is_empty() => {
                    record_problems.push(format!("string id of key {key} is empty"));
                }
                Ok(name) => names.push((key, name)),
                Err(d) => record_problems.push(format!("string id of key {key}: {d}")),
            }
        } else {
            record_problems.push(format!("a key NusterDB does not write: {}", show_key(k)));
        }
    });
    report.keys_read = keys_read;
    report.bytes_read = bytes_read;
    report.vectors = vector_ids.len() as u64;
    report.metadata_records = metadata_ids.len() as u64;
    report.documents = document_ids.len() as u64;
    report.string_ids = name_keys.len() as u64;
    report.log_entries = scan.log.len() as u64;
    match read {
        Ok(()) => {
            scan.complete = true;
            report.checked.push("checksums");
        }
        Err(e @ Error::Corruption { .. }) => report.problem(
            ProblemKind::Checksum,
            format!("{e} (after {keys_read} keys read; the rest was not checked)"),
        ),
        Err(e) => report.problem(
            ProblemKind::Storage,
            format!("{e} (after {keys_read} keys read; the rest was not checked)"),
        ),
    }
    if scan.complete {
        if !format_seen {
            report.problem(ProblemKind::Format, "the format marker is missing");
        }
        if !config_seen {
            report.problem(ProblemKind::Config, "the stored configuration is missing");
        }
    }
    if !bad_vectors.is_empty() {
        report.problems.push(Problem {
            kind: ProblemKind::Record,
            detail: format!(
                "{} vector records could not be decoded without a configuration",
                bad_vectors.len()
            ),
        });
    }
    for d in record_problems {
        report.problem(ProblemKind::Record, d);
    }
    if scan.complete {
        // Both records of an id are written in one batch: one without the other is damage.
        let (no_meta, no_vector) = differences(&vector_ids, &metadata_ids);
        if !no_meta.is_empty() {
            report.problem(
                ProblemKind::Record,
                format!("vectors without a metadata record: {}", name_ids(&no_meta)),
            );
        }
        if !no_vector.is_empty() {
            report.problem(
                ProblemKind::Record,
                format!(
                    "metadata records without a vector: {}",
                    name_ids(&no_vector)
                ),
            );
        }
        let (_, no_vector) = differences(&vector_ids, &document_ids);
        if !no_vector.is_empty() {
            report.problem(
                ProblemKind::Record,
                format!("documents without a vector: {}", name_ids(&no_vector)),
            );
        }
        if let (Some(c), Some(f)) = (&config, format) {
            check_string_ids(report, c.id_type, &vector_ids, &name_keys, &mut names);
            let needs_v2 = if c.id_type == IdType::Str {
                Some("a string-id database")
            } else if !document_ids.is_empty() {
                Some("documents")
            } else {
                None
            };
            if let (Some(what), true) = (needs_v2, f < codec::FORMAT_V2) {
                report.problem(
                    ProblemKind::Format,
                    format!("{what} in a database marked as format {f}"),
                );
            }
        }
        report.checked.push("records");
    }
    report.config = config;
    scan
}

/// String ids: one distinct, decodable string per vector in a string-id database
/// (`names` holds those that decode, `name_keys` every record's key); none in an
/// int-id database.
fn check_string_ids(
    report: &mut VerifyReport,
    id_type: IdType,
    vector_ids: &[u64],
    name_keys: &[u64],
    names: &mut [(u64, String)],
) {
    if id_type == IdType::Int {
        if !name_keys.is_empty() {
            report.problem(
                ProblemKind::Record,
                format!(
                    "string-id records in an int-id database: {}",
                    name_ids(name_keys)
                ),
            );
        }
        return;
    }
    let (unnamed, stray) = differences(vector_ids, name_keys);
    if !unnamed.is_empty() {
        report.problem(
            ProblemKind::Record,
            format!("vectors without a string id: keys {}", name_ids(&unnamed)),
        );
    }
    if !stray.is_empty() {
        report.problem(
            ProblemKind::Record,
            format!("string ids without a vector: keys {}", name_ids(&stray)),
        );
    }
    names.sort_unstable_by(|a, b| a.1.cmp(&b.1));
    let repeated: Vec<String> = names
        .windows(2)
        .filter(|w| w[0].1 == w[1].1)
        .map(|w| format!("{:?} (keys {} and {})", w[0].1, w[0].0, w[1].0))
        .take(NAMED_IDS)
        .collect();
    if !repeated.is_empty() {
        report.problem(
            ProblemKind::Record,
            format!("string ids stored twice: {}", repeated.join(", ")),
        );
    }
}

/// Step 4: the graph file against the store.
/// The seal's codes file, read as an open reads it, where the seal has one (slot-ordered
/// vector files of an index that keeps codes); its absence there is reported too, as
/// an open then loads every record.
fn check_codes(report: &mut VerifyReport, path: &Path, parts: &[Part], image: &GraphImage) {
    let (vector_paths, codes_paths) = crate::db::part_files(path, parts);
    // The codes cover the slots of the vector files (a stale graph is reported apart).
    let last = vector_paths
        .last()
        .map(|p| crate::segment::VectorFile::open(p));
    let slots = match last {
        Some(Ok(vf)) if vf.layout() == crate::segment::vectors::Layout::Slots => {
            vf.first() + vf.len()
        }
        _ => return,
    };
    if !image.index.has_codes() {
        return;
    }
    match image.index.check_codes_file(&codes_paths, slots) {
        Ok(()) => report.checked.push("codes_file"),
        Err(d) => report.problem(
            ProblemKind::Segment,
            format!("{d} (an open loads every record from the store instead)"),
        ),
    }
}

/// An IVF seal's lists file: present once the index has lists (from
/// `max(1,024, nlist)` live rows on), and every check of its reader passed. A damaged
/// one costs an open the training, not an answer.
fn check_lists_file(
    report: &mut VerifyReport,
    path: &Path,
    seal: u64,
    config: &DatabaseConfig,
    live: usize,
) {
    let file = crate::db::lists_file(path, seal);
    let trained = live >= crate::index::ivf::MIN_TRAIN_ROWS.max(config.ivf.nlist.unwrap_or(0));
    let problem = match std::fs::read(&file) {
        Ok(bytes) => crate::index::ivf::file::read(&bytes, config.dim, live).err(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && !trained => None,
        Err(e) => Some(e.to_string()),
    };
    match problem {
        None => report.checked.push("lists_file"),
        Some(detail) => report.problem(
            ProblemKind::Segment,
            format!(
                "{}: {detail} (an open trains the lists again)",
                file.display()
            ),
        ),
    }
}

fn check_graph(report: &mut VerifyReport, path: &Path, scan: &Scan) {
    let Some(config) = report.config.clone() else {
        return;
    };
    if config.index_type != IndexType::Hnsw {
        return;
    }
    let file = match scan.seal {
        Some(seal) => crate::db::segment_files(path, seal.id)[2].clone(),
        None => path.join(GRAPH_FILE),
    };
    let bytes = match std::fs::read(&file) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && scan.seal.is_none() => {
            report.notes.push(format!(
                "no graph file ({}): the graph is built from the vectors at open",
                file.display()
            ));
            return;
        }
        Err(e) => {
            report.problem(ProblemKind::GraphFile, format!("{}: {e}", file.display()));
            return;
        }
    };
    let image = match crate::db::decode_graph(bytes, &config, scan.cipher.as_deref()) {
        Ok(image) => image,
        Err(d) => {
            report.problem(
                ProblemKind::GraphFile,
                format!(
                    "{}: {d} (a writer's open rebuilds the graph from the vectors)",
                    file.display()
                ),
            );
            return;
        }
    };
    let mut nodes: Vec<(u64, u64)> = image
        .ids
        .iter()
        .zip(&image.hashes)
        .filter(|(&id, _)| id != NO_ID)
        .map(|(&id, &h)| (id, h))
        .collect();
    report.graph_nodes = Some(nodes.len() as u64);
    nodes.sort_unstable();
    let repeated: Vec<u64> = nodes
        .windows(2)
        .filter(|w| w[0].0 == w[1].0)
        .map(|w| w[0].0)
        .collect();
    if !repeated.is_empty() {
        report.problem(
            ProblemKind::GraphFile,
            format!("ids on more than one graph node: {}", name_ids(&repeated)),
        );
        return;
    }
    report.checked.push("graph_file");
    if let Some(seal) = scan.seal {
        check_codes(report, path, &scan.seal_parts(seal), &image);
    }
    if !scan.complete {
        return;
    }
    // A seal's graph holds the state as of the seal: keys the log touched since are
    // brought up to date by an open's replay, the others must match.
    let Some(touched) = scan.touched_since_seal() else {
        report.checked.push("graph_matches_store");
        return;
    };
    nodes.retain(|(id, _)| !touched.contains(id));
    let vectors: Vec<(u64, u64)> = scan
        .vectors
        .iter()
        .copied()
        .filter(|(id, _)| !touched.contains(id))
        .collect();
    let graph_ids: Vec<u64> = nodes.iter().map(|&(id, _)| id).collect();
    let store_ids: Vec<u64> = vectors.iter().map(|&(id, _)| id).collect();
    let (missing, extra) = differences(&store_ids, &graph_ids);
    let changed: Vec<u64> = merge_join_ids(&vectors, &nodes)
        .into_iter()
        .filter(|&(_, stored, saved)| stored != saved)
        .map(|(id, _, _)| id)
        .collect();
    let mut found = Vec::new();
    if !missing.is_empty() {
        found.push(format!(
            "stored ids not in the graph: {}",
            name_ids(&missing)
        ));
    }
    if !extra.is_empty() {
        found.push(format!("graph ids not stored: {}", name_ids(&extra)));
    }
    if !changed.is_empty() {
        found.push(format!(
            "ids whose stored vector differs from the graph's: {}",
            name_ids(&changed)
        ));
    }
    if found.is_empty() {
        report.checked.push("graph_matches_store");
        return;
    }
    let detail = format!(
        "the graph file disagrees with the store ({}); an open brings it up to date from \
         the stored vectors, which are not affected",
        found.join("; ")
    );
    if report.live_writer {
        report.notes.push(format!(
            "{detail} (a writer has the database open and saves its graph from time to time)"
        ));
    } else {
        report.problem(ProblemKind::GraphMismatch, detail);
    }
}

/// Step 5: the loaded id map and index against the store.
fn check_loaded(report: &mut VerifyReport, scan: &Scan, loaded: &LoadedView<'_>) {
    report.index_vectors = Some(loaded.index_len as u64);
    if let LoadSource::Records {
        refused: Some(reason),
    } = loaded.load_source
    {
        let detail = format!("a reader's open could not use the seal: {reason}");
        if report.live_writer {
            // The writer may have sealed again and removed the files the follower's
            // state named meanwhile.
            report.notes.push(detail);
        } else {
            report.problem(ProblemKind::Segment, detail);
        }
    }
    if let GraphLoad::Rebuilt { reason } = loaded.graph_load {
        let what = if report
            .config
            .as_ref()
            .is_some_and(|c| c.index_type == IndexType::Ivf)
        {
            "trained the IVF lists again"
        } else {
            "rebuilt the graph from the vectors"
        };
        report
            .notes
            .push(format!("a reader's open {what}: {reason}"));
    }
    if !scan.complete {
        return;
    }
    let store_ids: Vec<u64> = scan.vectors.iter().map(|&(id, _)| id).collect();
    let (not_loaded, not_stored) = differences(&store_ids, &loaded.ids);
    if !not_loaded.is_empty() {
        report.problem(
            ProblemKind::Index,
            format!(
                "stored ids missing from the loaded id map: {}",
                name_ids(&not_loaded)
            ),
        );
    }
    if !not_stored.is_empty() {
        report.problem(
            ProblemKind::Index,
            format!("loaded ids that are not stored: {}", name_ids(&not_stored)),
        );
    }
    if loaded.index_len != loaded.ids.len() {
        report.problem(
            ProblemKind::Index,
            format!(
                "the index holds {} vectors for {} ids",
                loaded.index_len,
                loaded.ids.len()
            ),
        );
    }
    let differ: Vec<u64> = scan
        .vectors
        .iter()
        .filter(|&&(id, h)| (loaded.row)(id).is_some_and(|r| vector_hash(r) != h))
        .map(|&(id, _)| id)
        .collect();
    if !differ.is_empty() {
        report.problem(
            ProblemKind::Index,
            format!(
                "ids whose indexed vector differs from the stored one: {}",
                name_ids(&differ)
            ),
        );
    }
    report.checked.push("index_matches_store");
}

/// Step 6: the snapshots' manifests.
fn check_snapshots(report: &mut VerifyReport, path: &Path, cipher: Option<&Cipher>) {
    match snapshot::list_report(path, cipher) {
        Ok(listing) => {
            report.snapshots = listing.snapshots.len() as u64;
            for bad in listing.damaged {
                report.problem(
                    ProblemKind::Snapshot,
                    format!("snapshot {:?}: {}", bad.name, bad.reason),
                );
            }
            report.checked.push("snapshots");
        }
        Err(e) => report.problem(ProblemKind::Snapshot, e.to_string()),
    }
}

/// `(in a only, in b only)` of two ascending id lists.
fn differences(a: &[u64], b: &[u64]) -> (Vec<u64>, Vec<u64>) {
    let (mut only_a, mut only_b) = (Vec::new(), Vec::new());
    let (mut i, mut j) = (0, 0);
    while i < a.len() || j < b.len() {
        match (a.get(i), b.get(j)) {
            (Some(x), Some(y)) if x == y => {
                i += 1;
                j += 1;
            }
            (Some(x), Some(y)) if x < y => {
                only_a.push(*x);
                i += 1;
            }
            (Some(_), Some(y)) => {
                only_b.push(*y);
                j += 1;
            }
            (Some(x), None) => {
                only_a.push(*x);
                i += 1;
            }
            (None, Some(y)) => {
                only_b.push(*y);
                j += 1;
            }
            (None, None) => break,
        }
    }
    (only_a, only_b)
}

/// `(id, hash in a, hash in b)` for the ids in both ascending lists.
fn merge_join_ids(a: &[(u64, u64)], b: &[(u64, u64)]) -> Vec<(u64, u64, u64)> {
    let mut out = Vec::new();
    let (mut i, mut j) = (0, 0);
    while i < a.len() && j < b.len() {
        match a[i].0.cmp(&b[j].0) {
            std::cmp::Ordering::Equal => {
                out.push((a[i].0, a[i].1, b[j].1));
                i += 1;
                j += 1;
            }
            std::cmp::Ordering::Less => i += 1,
            std::cmp::Ordering::Greater => j += 1,
        }
    }
    out
}

/// A count and the first few ids.
fn name_ids(ids: &[u64]) -> String {
    let shown: Vec<String> = ids.iter().take(NAMED_IDS).map(u64::to_string).collect();
    let more = if ids.len() > NAMED_IDS { ", ..." } else { "" };
    format!("{} ({}{more})", ids.len(), shown.join(", "))
}

/// A key for a message: printable ASCII as is, other bytes escaped, at most 64 bytes.
fn show_key(k: &[u8]) -> String {
    let shown: String = k
        .iter()
        .take(64)
        .flat_map(|&b| std::ascii::escape_default(b))
        .map(char::from)
        .collect();
    if k.len() > 64 {
        format!("\"{shown}...\" ({} bytes)", k.len())
    } else {
        format!("\"{shown}\"")
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    /// The loaded maps cannot disagree with the store they were just loaded from
    /// through files alone, so the comparison is checked on a made-up view: an id the
    /// map lacks, one it has in excess, an index count off and a changed row.
    #[test]
    fn a_loaded_state_unlike_the_store_is_an_index_problem() {
        let v = |x: f32| vec![x; 4];
        let scan = Scan {
            complete: true,
            vectors: (0..4u64)
                .map(|id| (id, vector_hash(&v(id as f32))))
                .collect(),
            ..Scan::default()
        };
        let rows: Vec<(u64, Vec<f32>)> = vec![(0, v(0.0)), (1, v(1.0)), (2, v(9.0)), (7, v(7.0))];
        let row = |id: u64| rows.iter().find(|r| r.0 == id).map(|r| r.1.as_slice());
        let loaded = LoadedView {
            ids: vec![0, 1, 2, 7],
            index_len: 5,
            graph_load: &GraphLoad::NotPersisted,
            load_source: &LoadSource::Records { refused: None },
            row: &row,
        };
        let mut report = VerifyReport::default();
        check_loaded(&mut report, &scan, &loaded);
        let details: Vec<&str> = report
            .problems
            .iter()
            .inspect(|p| assert_eq!(p.kind, ProblemKind::Index))
            .map(|p| p.detail.as_str())
            .collect();
        assert_eq!(
            details,
            vec![
                "stored ids missing from the loaded id map: 1 (3)",
                "loaded ids that are not stored: 1 (7)",
                "the index holds 5 vectors for 4 ids",
                "ids whose indexed vector differs from the stored one: 1 (2)",
            ]
        );

        // The same view of the same store: nothing found.
        let same: Vec<(u64, Vec<f32>)> = (0..4u64).map(|id| (id, v(id as f32))).collect();
        let row = |id: u64| same.iter().find(|r| r.0 == id).map(|r| r.1.as_slice());
        let loaded = LoadedView {
            ids: vec![0, 1, 2, 3],
            index_len: 4,
            graph_load: &GraphLoad::NotPersisted,
            load_source: &LoadSource::Records { refused: None },
            row: &row,
        };
        let mut report = VerifyReport::default();
        check_loaded(&mut report, &scan, &loaded);
        assert!(report.is_healthy(), "{:?}", report.problems);
        assert_eq!(report.checked, vec!["index_matches_store"]);
    }

    #[test]
    fn id_lists_are_compared_and_named() {
        assert_eq!(
            differences(&[1, 2, 4, 6], &[2, 3, 4, 7, 8]),
            (vec![1, 6], vec![3, 7, 8])
        );
        assert_eq!(name_ids(&[1, 2]), "2 (1, 2)");
        let many: Vec<u64> = (0..12).collect();
        assert_eq!(name_ids(&many), "12 (0, 1, 2, 3, 4, 5, 6, 7, 8, 9, ...)");
        assert_eq!(show_key(b"a\x00"), "\"a\\x00\"");
    }
}
