//! `Metadata`: typed key/value fields and tags attached to a stored vector, with
//! bookkeeping (created/updated timestamps, a version bumped on every change).
//!
//! Values keep their type (str, int, float, bool) so filters compare like with like.
//! Keys and tags are kept sorted (BTreeMap/BTreeSet): iteration order is
//! deterministic and independent of insertion order, which makes stored bytes and
//! test expectations stable.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::time::{SystemTime, UNIX_EPOCH};

use crate::error::{Error, Result};

/// A typed metadata value.
#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    Str(String),
    Int(i64),
    Float(f64),
    Bool(bool),
}

impl Value {
    /// The value's type name as users see it.
    pub fn type_name(&self) -> &'static str {
        match self {
            Value::Str(_) => "str",
            Value::Int(_) => "int",
            Value::Float(_) => "float",
            Value::Bool(_) => "bool",
        }
    }

    /// Checks the value can be stored: floats must be finite, because NaN compares
    /// unequal to itself and would make range filters meaningless.
    ///
    /// # Errors
    /// A non-finite float.
    pub fn validate(&self) -> Result<()> {
        match self {
            Value::Float(f) if !f.is_finite() => Err(Error::invalid(format!(
                "metadata float values must be finite, got {f}"
            ))),
            _ => Ok(()),
        }
    }
}

impl fmt::Display for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::Str(s) => write!(f, "{s:?}"),
            Value::Int(i) => write!(f, "{i}"),
            Value::Float(x) => write!(f, "{x:?}"),
            Value::Bool(b) => write!(f, "{b}"),
        }
    }
}

/// Largest metadata key, and largest tag, in bytes of UTF-8 (64 KiB).
pub const MAX_KEY_BYTES: usize = 64 * 1024;
/// Largest string value, in bytes of UTF-8 (16 MiB).
pub const MAX_STR_BYTES: usize = 16 * 1024 * 1024;
/// Largest encoded metadata record: all fields and tags of one vector (64 MiB). Every
/// length in the record encoding is a u32, so this bound is what keeps them exact.
pub const MAX_METADATA_BYTES: usize = 64 * 1024 * 1024;

/// At most the first 40 characters of `s`, for messages about long strings.
fn head(s: &str) -> String {
    match s.char_indices().nth(40) {
        Some((i, _)) => format!("{:?}...", &s[..i]),
        None => format!("{s:?}"),
    }
}

/// Checks the sizes of a field: key ≤ [`MAX_KEY_BYTES`], a string value ≤
/// [`MAX_STR_BYTES`]. Applied where metadata is built, not when a stored record is
/// decoded (a record stored before the limits existed still opens).
///
/// # Errors
/// The first size over its limit, naming the key and the size.
fn check_field_size(key: &str, value: &Value) -> Result<()> {
    if key.len() > MAX_KEY_BYTES {
        return Err(Error::invalid(format!(
            "metadata key {} is {} bytes, above the limit of {MAX_KEY_BYTES} bytes",
            head(key),
            key.len()
        )));
    }
    if let Value::Str(v) = value {
        if v.len() > MAX_STR_BYTES {
            return Err(Error::invalid(format!(
                "metadata value of key {} is a string of {} bytes, above the limit of \
                 {MAX_STR_BYTES} bytes",
                head(key),
                v.len()
            )));
        }
    }
    Ok(())
}

/// Checks a tag's size (≤ [`MAX_KEY_BYTES`]), as [`check_field_size`].
fn check_tag_size(tag: &str) -> Result<()> {
    if tag.len() > MAX_KEY_BYTES {
        return Err(Error::invalid(format!(
            "tag {} is {} bytes, above the limit of {MAX_KEY_BYTES} bytes",
            head(tag),
            tag.len()
        )));
    }
    Ok(())
}

/// Seconds since the Unix epoch, 0 if the clock is before it.
pub fn now_unix() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// Checks a metadata key: non-empty and not starting with `$`, which the filter
/// language reserves for operators.
///
/// # Errors
/// An empty key or one starting with `$`.
pub fn validate_key(key: &str) -> Result<()> {
    if key.is_empty() {
        return Err(Error::invalid("metadata keys must not be empty"));
    }
    if key.starts_with('$') {
        return Err(Error::invalid(format!(
            "metadata key {key:?} starts with '$', which is reserved for filter operators"
        )));
    }
    Ok(())
}

/// Checks a tag: non-empty.
///
/// # Errors
/// An empty tag.
pub fn validate_tag(tag: &str) -> Result<()> {
    if tag.is_empty() {
        Err(Error::invalid("tags must not be empty"))
    } else {
        Ok(())
    }
}

/// Fields, tags and bookkeeping of one stored vector.
#[derive(Clone, Debug, PartialEq)]
pub struct Metadata {
    fields: BTreeMap<String, Value>,
    tags: BTreeSet<String>,
    created_at: u64,
    updated_at: u64,
    version: u64,
}

impl Default for Metadata {
    fn default() -> Self {
        Self::new()
    }
}

impl Metadata {
    /// Empty metadata, version 1, created now.
    pub fn new() -> Self {
        let now = now_unix();
        Self {
            fields: BTreeMap::new(),
            tags: BTreeSet::new(),
            created_at: now,
            updated_at: now,
            version: 1,
        }
    }

    /// Metadata holding `fields` and `tags` (version 1).
    ///
    /// # Errors
    /// A bad key, value or tag, or sizes over the limits ([`MAX_KEY_BYTES`],
    /// [`MAX_STR_BYTES`], [`MAX_METADATA_BYTES`]); nothing is built.
    pub fn with_parts(
        fields: impl IntoIterator<Item = (String, Value)>,
        tags: impl IntoIterator<Item = String>,
    ) -> Result<Self> {
        let mut m = Self::new();
        for (k, v) in fields {
            validate_key(&k)?;
            v.validate()?;
            check_field_size(&k, &v)?;
            m.fields.insert(k, v);
        }
        for t in tags {
            validate_tag(&t)?;
            check_tag_size(&t)?;
            m.tags.insert(t);
        }
        m.check_record_size()?;
        Ok(m)
    }

    /// The size of this metadata's record encoding (`storage::codec`): version byte,
    /// three u64 of bookkeeping, then each field as `u32 len, key, type byte, value`
    /// and each tag as `u32 len, tag`, both lists preceded by a u32 count.
    pub fn encoded_len(&self) -> usize {
        let fields: usize = self
            .fields
            .iter()
            .map(|(k, v)| {
                4 + k.len()
                    + 1
                    + match v {
                        Value::Str(s) => 4 + s.len(),
                        Value::Int(_) | Value::Float(_) => 8,
                        Value::Bool(_) => 1,
                    }
            })
            .sum();
        let tags: usize = self.tags.iter().map(|t| 4 + t.len()).sum();
        1 + 24 + 4 + fields + 4 + tags
    }

    /// Checks the whole record against [`MAX_METADATA_BYTES`].
    fn check_record_size(&self) -> Result<()> {
        let n = self.encoded_len();
        if n > MAX_METADATA_BYTES {
            return Err(Error::invalid(format!(
                "metadata of {n} bytes (encoded) is above the limit of {MAX_METADATA_BYTES} \
                 bytes for one vector"
            )));
        }
        Ok(())
    }

    /// Rebuilds metadata exactly as stored, bookkeeping included (used by decoders).
    pub fn from_stored(
        fields: BTreeMap<String, Value>,
        tags: BTreeSet<String>,
        created_at: u64,
        updated_at: u64,
        version: u64,
    ) -> Self {
        Self {
            fields,
            tags,
            created_at,
            updated_at,
            version,
        }
    }

    /// `self` as the next version of `previous`, the metadata it replaces: created when
    /// `previous` was, its version + 1, updated now.
    #[must_use]
    pub fn succeeding(mut self, previous: &Metadata) -> Self {
        self.created_at = previous.created_at;
        self.version = previous.version.saturating_add(1);
        self.updated_at = now_unix();
        self
    }

    /// `previous` with the fields of `changes` set, its tags added and the `removed`
    /// keys gone, as the next version of `previous` (see [`Metadata::succeeding`]).
    ///
    /// # Errors
    /// The merged record over [`MAX_METADATA_BYTES`].
    pub fn merged(previous: &Metadata, changes: &Metadata, removed: &[String]) -> Result<Self> {
        let mut m = previous.clone();
        for k in removed {
            m.fields.remove(k);
        }
        m.fields
            .extend(changes.fields.iter().map(|(k, v)| (k.clone(), v.clone())));
        m.tags.extend(changes.tags.iter().cloned());
        m.check_record_size()?;
        Ok(m.succeeding(previous))
    }

    fn touch(&mut self) {
        self.version = self.version.saturating_add(1);
        self.updated_at = now_unix();
    }

    /// Sets `key` to `value` (a change even when the value is equal: the caller wrote it).
    ///
    /// # Errors
    /// A bad key or value, or sizes over the limits ([`MAX_KEY_BYTES`],
    /// [`MAX_STR_BYTES`], [`MAX_METADATA_BYTES`]); the metadata is unchanged.
    pub fn set(&mut self, key: impl Into<String>, value: Value) -> Result<()> {
        let key = key.into();
        validate_key(&key)?;
        value.validate()?;
        check_field_size(&key, &value)?;
        let old = self.fields.insert(key.clone(), value);
        if let Err(e) = self.check_record_size() {
            match old {
                Some(v) => self.fields.insert(key, v),
                None => self.fields.remove(&key),
            };
            return Err(e);
        }
        self.touch();
        Ok(())
    }

    /// The value of `key`.
    pub fn get(&self, key: &str) -> Option<&Value> {
        self.fields.get(key)
    }

    /// Removes `key`, returning its value; bumps the version only if it was there.
    pub fn remove(&mut self, key: &str) -> Option<Value> {
        let old = self.fields.remove(key);
        if old.is_some() {
            self.touch();
        }
        old
    }

    /// Whether `key` is set.
    pub fn contains_key(&self, key: &str) -> bool {
        self.fields.contains_key(key)
    }

    /// Number of fields (tags not counted).
    pub fn len(&self) -> usize {
        self.fields.len()
    }

    /// No fields and no tags.
    pub fn is_empty(&self) -> bool {
        self.fields.is_empty() && self.tags.is_empty()
    }

    /// The fields, sorted by key.
    pub fn fields(&self) -> &BTreeMap<String, Value> {
        &self.fields
    }

    /// Adds a tag; returns whether it was new (the version bumps only then).
    ///
    /// # Errors
    /// An empty tag, or sizes over the limits; the metadata is unchanged.
    pub fn add_tag(&mut self, tag: impl Into<String>) -> Result<bool> {
        let tag = tag.into();
        validate_tag(&tag)?;
        check_tag_size(&tag)?;
        let added = self.tags.insert(tag.clone());
        if added {
            if let Err(e) = self.check_record_size() {
                self.tags.remove(&tag);
                return Err(e);
            }
            self.touch();
        }
        Ok(added)
    }

    /// Removes a tag; returns whether it was there.
    pub fn remove_tag(&mut self, tag: &str) -> bool {
        let removed = self.tags.remove(tag);
        if removed {
            self.touch();
        }
        removed
    }

    /// Whether the tag is present.
    pub fn has_tag(&self, tag: &str) -> bool {
        self.tags.contains(tag)
    }

    /// The tags, sorted.
    pub fn tags(&self) -> &BTreeSet<String> {
        &self.tags
    }

    /// Creation time, Unix seconds.
    pub fn created_at(&self) -> u64 {
        self.created_at
    }

    /// Time of the last change, Unix seconds.
    pub fn updated_at(&self) -> u64 {
        self.updated_at
    }

    /// Starts at 1, +1 on every change.
    pub fn version(&self) -> u64 {
        self.version
    }

    /// Seconds since creation (0 if the clock went backwards).
    pub fn age_seconds(&self) -> u64 {
        now_unix().saturating_sub(self.created_at)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn version_bumps_on_every_change_only() {
        let mut m = Metadata::new();
        assert_eq!(m.version(), 1);
        m.set("a", Value::Int(1)).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(m.version(), 2);
        assert_eq!(m.remove("missing"), None);
        assert_eq!(m.version(), 2);
        assert_eq!(m.add_tag("x").ok(), Some(true));
        assert_eq!(m.add_tag("x").ok(), Some(false));
        assert_eq!(m.version(), 3);
        assert!(m.remove_tag("x"));
        assert!(!m.remove_tag("x"));
        assert_eq!(m.version(), 4);
    }

    #[test]
    fn rejects_bad_keys_values_and_tags_without_change() {
        let mut m = Metadata::new();
        assert!(m.set("", Value::Int(1)).is_err());
        assert!(m.set("$gt", Value::Int(1)).is_err());
        assert!(m.set("x", Value::Float(f64::NAN)).is_err());
        assert!(m.add_tag("").is_err());
        assert_eq!(m, {
            let mut n = m.clone();
            n.version = 1;
            n
        });
        assert_eq!(m.version(), 1);
    }

    #[test]
    fn sizes_over_the_limits_are_refused_naming_the_key() {
        let mut m = Metadata::new();
        let long_key = "k".repeat(MAX_KEY_BYTES + 1);
        let e = m.set(long_key, Value::Int(1)).err().map(|e| e.to_string());
        let e = e.unwrap_or_default();
        assert!(e.contains("65537 bytes") && e.contains("\"kkkk"), "{e}");
        assert!(m.set("k".repeat(MAX_KEY_BYTES), Value::Int(1)).is_ok());
        let e = m
            .set("big", Value::Str("x".repeat(MAX_STR_BYTES + 1)))
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(
            e.contains("\"big\"") && e.contains(&format!("{}", MAX_STR_BYTES + 1)),
            "{e}"
        );
        assert!(m.add_tag("t".repeat(MAX_KEY_BYTES + 1)).is_err());
        assert!(Metadata::with_parts(
            [("k".to_string(), Value::Str("x".repeat(MAX_STR_BYTES + 1)))],
            []
        )
        .is_err());
        // The whole record: three values of the largest size fit, a fourth does not,
        // and the refused set changes nothing.
        let mut m = Metadata::new();
        for i in 0..3 {
            m.set(format!("s{i}"), Value::Str("x".repeat(MAX_STR_BYTES)))
                .unwrap_or_else(|e| panic!("{e}"));
        }
        let before = m.clone();
        let e = m
            .set("s3", Value::Str("x".repeat(MAX_STR_BYTES)))
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(e.contains("above the limit of 67108864 bytes"), "{e}");
        assert_eq!(m, before);
        assert!(m.encoded_len() <= MAX_METADATA_BYTES);
    }

    #[test]
    fn values_keep_their_type() {
        let m = Metadata::with_parts(
            [
                ("s".to_string(), Value::Str("x".into())),
                ("i".to_string(), Value::Int(3)),
                ("f".to_string(), Value::Float(3.0)),
                ("b".to_string(), Value::Bool(true)),
            ],
            ["t".to_string()],
        )
        .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(m.get("i"), Some(&Value::Int(3)));
        assert_eq!(m.get("f"), Some(&Value::Float(3.0)));
        assert_ne!(m.get("i"), m.get("f"));
        assert!(m.has_tag("t"));
        assert_eq!(m.len(), 4);
    }
}
