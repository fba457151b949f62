//! The audit log: `DATA_DIR/audit/audit-NNNNNN.jsonl`, one JSON object a line, for
//! every write, admin action and refused request. Each entry carries `seq` (one more
//! than the entry before, across files), `prev` (the hash of the entry before; 64
//! zeros for the first) and `hash`: the SHA-256 of the line's bytes without its
//! `,"hash":"…"` ending. So editing any byte, removing or reordering entries or whole
//! files breaks the chain, which [`verify`] walks. `audit/head` holds the last entry's
//! seq and hash (rewritten after each append), so cutting entries off the end is seen
//! too — by someone who cannot also rewrite `head`: anchor the head elsewhere (the
//! server prints it at shutdown) to catch that.
//!
//! A file is rotated when it passes a size; the next file continues the chain. Entries
//! are written to the OS before the response is sent, and synced to disk at rotation
//! and shutdown. A line a crash cut short is removed at the next start (with an entry
//! saying so).

use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};

use parking_lot::Mutex;
use serde::Serialize;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// One event to record.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Event {
    /// The key's id (`null` without authentication or without a valid key).
    pub key_id: Option<String>,
    /// The client's address.
    pub client: String,
    pub method: String,
    pub route: String,
    pub collection: Option<String>,
    /// What was done: `records.add`, `collections.create`, `keys.revoke`, ...
    pub operation: String,
    /// Records the operation wrote or removed, where it says.
    pub count: Option<u64>,
    pub status: u16,
    /// `ok`, `denied` (401/403) or `error`.
    pub result: &'static str,
    /// The error type of a refused or failed request.
    pub error: Option<String>,
}

#[derive(Serialize)]
struct Line<'a> {
    seq: u64,
    time: f64,
    #[serde(flatten)]
    event: &'a Event,
    prev: &'a str,
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn sha(bytes: &[u8]) -> String {
    hex(&Sha256::digest(bytes))
}

fn file_name(index: u64) -> String {
    format!("audit-{index:06}.jsonl")
}

/// The audit files of `dir`, in order.
fn files(dir: &Path) -> std::io::Result<Vec<(u64, PathBuf)>> {
    let mut out = Vec::new();
    match std::fs::read_dir(dir) {
        Ok(rd) => {
            for e in rd.flatten() {
                let name = e.file_name().to_string_lossy().into_owned();
                if let Some(n) = name
                    .strip_prefix("audit-")
                    .and_then(|r| r.strip_suffix(".jsonl"))
                    .and_then(|n| n.parse::<u64>().ok())
                {
                    out.push((n, e.path()));
                }
            }
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(e),
    }
    out.sort();
    Ok(out)
}

/// A line split into the hashed part and its hash, or `None` if it does not end in
/// `,"hash":"<64 hex>"}`.
fn split_line(line: &str) -> Option<(String, &str)> {
    let cut = line.len().checked_sub(75)?;
    let (body, tail) = line.split_at(cut);
    let hash = tail.strip_prefix(",\"hash\":\"")?.strip_suffix("\"}")?;
    (hash.len() == 64 && hash.bytes().all(|b| b.is_ascii_hexdigit()))
        .then(|| (format!("{body}}}"), hash))
}

struct Writer {
    dir: PathBuf,
    index: u64,
    file: File,
    size: u64,
    seq: u64,
    last: String,
}

/// The audit log of a server.
pub struct AuditLog {
    max_bytes: u64,
    inner: Mutex<Writer>,
}

impl AuditLog {
    /// Opens the log in `data_dir/audit`, continuing the chain of the last file (a
    /// last line a crash cut short is removed first).
    ///
    /// # Errors
    /// I/O errors; a last file whose last complete line does not parse.
    pub fn open(data_dir: &Path, max_bytes: u64) -> std::io::Result<Self> {
        let dir = data_dir.join("audit");
        std::fs::create_dir_all(&dir)?;
        let mut seq = 0;
        let mut last = GENESIS.to_owned();
        let mut index = 1;
        let mut cut_short = false;
        if let Some((n, path)) = files(&dir)?.pop() {
            index = n;
            let text = std::fs::read(&path)?;
            let keep = text.iter().rposition(|b| *b == b'\n').map_or(0, |p| p + 1);
            if keep < text.len() {
                let f = OpenOptions::new().write(true).open(&path)?;
                f.set_len(keep as u64)?;
                f.sync_all()?;
                cut_short = true;
            }
            if let Some(line) = text[..keep].split(|b| *b == b'\n').rfind(|l| !l.is_empty()) {
                let line = String::from_utf8_lossy(line);
                let v: Value = serde_json::from_str(&line).map_err(|e| {
                    std::io::Error::new(
                        std::io::ErrorKind::InvalidData,
                        format!(
                            "the last audit entry in {} does not parse: {e}",
                            path.display()
                        ),
                    )
                })?;
                seq = v["seq"].as_u64().unwrap_or(0);
                last = v["hash"].as_str().unwrap_or(GENESIS).to_owned();
            }
        }
        let path = dir.join(file_name(index));
        let file = OpenOptions::new().create(true).append(true).open(&path)?;
        let size = file.metadata()?.len();
        let log = Self {
            max_bytes: max_bytes.max(4096),
            inner: Mutex::new(Writer {
                dir,
                index,
                file,
                size,
                seq,
                last,
            }),
        };
        if cut_short {
            log.record(&Event {
                operation: "audit.recovered".into(),
                result: "ok",
                error: Some("a last entry cut short by a crash was removed".into()),
                ..Event::default()
            })?;
        }
        Ok(log)
    }

    /// Appends one entry.
    ///
    /// # Errors
    /// I/O errors writing the file (the caller answers the request with a 500: an
    /// action that cannot be recorded is reported, not hidden).
    pub fn record(&self, event: &Event) -> std::io::Result<()> {
        let mut w = self.inner.lock();
        if w.size >= self.max_bytes {
            w.file.sync_all()?;
            w.index += 1;
            let path = w.dir.join(file_name(w.index));
            w.file = OpenOptions::new().create(true).append(true).open(path)?;
            w.size = 0;
        }
        let time = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0.0, |d| (d.as_millis() as f64) / 1000.0);
        let seq = w.seq + 1;
        let body = serde_json::to_string(&Line {
            seq,
            time,
            event,
            prev: &w.last,
        })
        .map_err(std::io::Error::other)?;
        let hash = sha(body.as_bytes());
        let mut line = body;
        line.pop(); // the closing brace
        line.push_str(&format!(",\"hash\":\"{hash}\"}}\n"));
        w.file.write_all(line.as_bytes())?;
        w.size += line.len() as u64;
        w.seq = seq;
        w.last = hash;
        let head = format!("{seq} {}\n", w.last);
        std::fs::write(w.dir.join("head"), head)?;
        Ok(())
    }

    /// Syncs the current file; returns the head (seq, hash) to anchor elsewhere.
    ///
    /// # Errors
    /// I/O errors.
    pub fn sync(&self) -> std::io::Result<(u64, String)> {
        let w = self.inner.lock();
        w.file.sync_all()?;
        Ok((w.seq, w.last.clone()))
    }
}

/// Walks the chain of `data_dir/audit`; returns a report: `healthy`, `entries`,
/// `files`, `denied` (entries of refused requests), `head` and `problems` (each with
/// the file and line).
///
/// # Errors
/// A directory that cannot be read.
pub fn verify(data_dir: &Path) -> std::io::Result<Value> {
    let dir = data_dir.join("audit");
    let mut problems: Vec<Value> = Vec::new();
    let mut prev = GENESIS.to_owned();
    let mut seq = 0u64;
    let mut entries = 0u64;
    let mut denied = 0u64;
    let all = files(&dir)?;
    for (i, (n, path)) in all.iter().enumerate() {
        if i > 0 && *n != all[i - 1].0 + 1 {
            problems.push(json!({"file": path.display().to_string(), "line": 0,
                "problem": format!("file {} is missing", file_name(all[i - 1].0 + 1))}));
        }
        let reader = BufReader::new(File::open(path)?);
        for (ln, line) in reader.split(b'\n').enumerate() {
            let line = line?;
            let at = |p: String| json!({"file": path.display().to_string(), "line": ln + 1, "problem": p});
            let Ok(text) = String::from_utf8(line) else {
                problems.push(at("not UTF-8".into()));
                continue;
            };
            let Some((body, hash)) = split_line(&text) else {
                problems.push(at("no hash at the end of the line".into()));
                continue;
            };
            let v: Value = match serde_json::from_str(&body) {
                Ok(v) => v,
                Err(e) => {
                    problems.push(at(format!("does not parse: {e}")));
                    continue;
                }
            };
            entries += 1;
            if sha(body.as_bytes()) != hash {
                problems.push(at("the entry was changed (its hash does not match)".into()));
            }
            if v["prev"].as_str() != Some(prev.as_str()) {
                problems.push(at(
                    "the chain is broken (an entry before it was removed, changed or moved)".into(),
                ));
            }
            let s = v["seq"].as_u64().unwrap_or(0);
            if s != seq + 1 {
                problems.push(at(format!("seq {s} follows seq {seq}")));
            }
            if v["result"] == "denied" {
                denied += 1;
            }
            seq = s;
            prev = hash.to_owned();
        }
    }
    let head = std::fs::read_to_string(dir.join("head")).ok();
    if let Some(h) = &head {
        let mut it = h.split_whitespace();
        let hs = it.next().and_then(|s| s.parse::<u64>().ok());
        let hh = it.next();
        if hs != Some(seq) || hh != Some(prev.as_str()) {
            problems.push(json!({"file": dir.join("head").display().to_string(), "line": 1,
                "problem": format!("the head names entry {} but the log ends at entry {seq}: entries were removed from the end, or the head was changed", hs.unwrap_or(0))}));
        }
    } else if entries > 0 {
        problems.push(
            json!({"file": dir.join("head").display().to_string(), "line": 0,
            "problem": "the head file is missing"}),
        );
    }
    Ok(json!({
        "path": dir.display().to_string(),
        "healthy": problems.is_empty(),
        "entries": entries,
        "files": all.len(),
        "denied": denied,
        "head": {"seq": seq, "hash": prev},
        "problems": problems,
    }))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn event(i: u64) -> Event {
        Event {
            key_id: Some("abc".into()),
            client: "127.0.0.1:1".into(),
            operation: "records.add".into(),
            count: Some(i),
            status: 200,
            result: if i.is_multiple_of(3) { "denied" } else { "ok" },
            ..Event::default()
        }
    }

    fn lines(dir: &Path) -> Vec<PathBuf> {
        files(&dir.join("audit"))
            .unwrap()
            .into_iter()
            .map(|(_, p)| p)
            .collect()
    }

    #[test]
    fn a_chain_across_rotations_verifies_and_reopens() {
        let d = tempfile::tempdir().unwrap();
        {
            let log = AuditLog::open(d.path(), 4096).unwrap();
            for i in 0..100 {
                log.record(&event(i)).unwrap();
            }
        }
        let log = AuditLog::open(d.path(), 4096).unwrap();
        log.record(&event(100)).unwrap();
        let r = verify(d.path()).unwrap();
        assert_eq!(r["healthy"], true, "{r}");
        assert_eq!(r["entries"], 101);
        assert_eq!(r["denied"], 34);
        assert!(r["files"].as_u64().unwrap() > 3);
    }

    #[test]
    fn any_changed_byte_removed_line_or_cut_end_is_found() {
        let d = tempfile::tempdir().unwrap();
        let log = AuditLog::open(d.path(), 1 << 20).unwrap();
        for i in 0..20 {
            log.record(&event(i)).unwrap();
        }
        drop(log);
        let path = lines(d.path()).remove(0);
        let original = std::fs::read(&path).unwrap();
        // Every byte of every line, changed (newlines aside): always found.
        for at in (0..original.len()).step_by(7) {
            if original[at] == b'\n' {
                continue;
            }
            let mut b = original.clone();
            b[at] = if b[at] == b'1' { b'2' } else { b'1' };
            std::fs::write(&path, &b).unwrap();
            assert_eq!(verify(d.path()).unwrap()["healthy"], false, "byte {at}");
        }
        let text = String::from_utf8(original.clone()).unwrap();
        let mut ls: Vec<&str> = text.lines().collect();
        // A line removed from the middle; two swapped; the last one cut off.
        let mut removed = ls.clone();
        removed.remove(5);
        std::fs::write(&path, removed.join("\n") + "\n").unwrap();
        assert_eq!(verify(d.path()).unwrap()["healthy"], false);
        ls.swap(3, 4);
        std::fs::write(&path, ls.join("\n") + "\n").unwrap();
        assert_eq!(verify(d.path()).unwrap()["healthy"], false);
        ls.swap(3, 4);
        std::fs::write(&path, ls[..19].join("\n") + "\n").unwrap();
        assert_eq!(verify(d.path()).unwrap()["healthy"], false);
        std::fs::write(&path, &original).unwrap();
        assert_eq!(verify(d.path()).unwrap()["healthy"], true);
    }

    #[test]
    fn a_line_cut_short_by_a_crash_is_removed_and_noted() {
        let d = tempfile::tempdir().unwrap();
        let log = AuditLog::open(d.path(), 1 << 20).unwrap();
        for i in 0..5 {
            log.record(&event(i)).unwrap();
        }
        drop(log);
        let path = lines(d.path()).remove(0);
        let mut f = OpenOptions::new().append(true).open(&path).unwrap();
        f.write_all(b"{\"seq\":6,\"ti").unwrap();
        drop(f);
        let log = AuditLog::open(d.path(), 1 << 20).unwrap();
        log.record(&event(9)).unwrap();
        drop(log);
        let r = verify(d.path()).unwrap();
        assert_eq!(r["healthy"], true, "{r}");
        assert_eq!(r["entries"], 7);
    }
}
