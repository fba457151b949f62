//! Metadata filters: the language users write, its parser, the per-vector evaluator
//! and the inverted indexes that compute matching sets by set algebra.
//!
//! - [`parse`]: [`FilterInput`] (a JSON-like tree built by the bindings from a Python
//!   dict) → [`Filter`], or [`Error::Filter`](crate::Error::Filter) naming the path.
//! - [`eval`]: [`Filter::matches`] on one vector's [`Metadata`](crate::Metadata) — the
//!   oracle, and what graph search calls per candidate.
//! - [`index`]: [`PayloadIndex`], roaring-bitmap posting lists per key, value and tag;
//!   [`PayloadIndex::evaluate`] returns exactly the slots [`Filter::matches`] accepts.
//! - `persist`: the byte form of a [`PayloadIndex`] in a segment's maps file.
//!
//! # The language
//!
//! A filter is a map. Each entry is a condition and **all entries must hold** (AND):
//!
//! ```text
//! {"category": "image", "type": "A"}                  # equality AND (the original form)
//! {"year": {"$gte": 2020, "$lt": 2024}}               # an operator map: AND of its operators
//! {"$or": [{"lang": "en"}, {"lang": "fr"}]}
//! {"$not": {"draft": true}}
//! {"$tags": {"$all": ["a", "b"], "$any": ["x", "y"]}}
//! {}                                                  # matches everything
//! ```
//!
//! Entry forms:
//! - `"key": scalar` — equality (`$eq`). Scalars are str, int, float and bool.
//! - `"key": {"$op": operand, ...}` — an operator map, the AND of its operators. Every key
//!   of an operator map must start with `$`; mixing `$` and plain keys is an error, and an
//!   empty operator map is an error. Field operators:
//!   - `$eq`, `$ne`, `$gt`, `$gte`, `$lt`, `$lte`: a scalar;
//!   - `$in`, `$nin`: a list of scalars (`$in: []` matches nothing, `$nin: []` everything);
//!   - `$exists`: a bool.
//! - `"$and": [filter, ...]`, `"$or": [filter, ...]`: a non-empty list of filter maps.
//! - `"$not": filter`: a filter map; matches exactly what the inner filter does not.
//! - `"$tags": {"$all": [str, ...], "$any": [str, ...]}`: the vector has every tag of
//!   `$all` / at least one tag of `$any`; either or both (both = AND). `$all: []` matches
//!   everything, `$any: []` nothing.
//!
//! # Semantics
//!
//! - **Numbers** compare numerically and **exactly** across int and float, as Python
//!   compares them ([`eval::cmp_num`]): `3 == 3.0`, `-0.0 == 0.0 == 0`, and no value is
//!   rounded to the other's type, so beyond ±2^53, where `f64` cannot hold every int,
//!   `2^53 + 1 > 9007199254740992.0`, `2^53 + 1 != float(2^53 + 1)` (that float is
//!   2^53) and `2^63 - 1 < 9223372036854775808.0`. Both [`Filter::matches`] and
//!   [`PayloadIndex`] use this one comparison, so every operator (`$eq` … `$lte`, `$in`,
//!   `$nin`, plain equality) agrees between them. Stored ints are `i64` (the bindings
//!   refuse a Python int outside it, in metadata and in filters alike); stored floats are
//!   finite, while a filter bound may be `±inf` (`{"$lt": inf}` matches every number,
//!   `{"$eq": inf}` none) but not NaN (an error).
//! - **Strings** compare only with strings, lexicographically by UTF-8 bytes.
//! - **Bools** compare only with bools (`true != 1`, `false != 0`, unlike Python, where
//!   bool is an int); they are ordered `false < true`.
//! - A comparison between **incompatible types is false**, never an error:
//!   `{"year": {"$gt": "abc"}}` matches nothing when `year` is an int.
//! - `$eq`, `$gt`, `$gte`, `$lt`, `$lte` and `$in` need the key present.
//!   `$ne` is exactly "not `$eq`" and `$nin` exactly "not `$in`", so they **match when the
//!   key is missing** (MongoDB semantics) or holds a value of another type.
//! - `$exists: true` matches when the key is set (any type), `$exists: false` when not.
//! - Tags are matched exactly (case-sensitive).
//!
//! # Errors
//!
//! Every malformed filter is [`Error::Filter`](crate::Error::Filter) `{ at, msg }` where
//! `at` is the path to the offending part, written like `filter["year"]["$gte"]` or
//! `filter["$or"][2]["tag"]`: unknown operators (the message lists the valid ones),
//! operands of the wrong type, `null` / list / map where a scalar is required (metadata
//! holds no null; use `{"$exists": false}`), NaN, empty keys or tags, duplicate keys, a
//! filter that is not a map, and nesting of filter maps (through `$and`, `$or`, `$not`)
//! deeper than [`MAX_DEPTH`] levels — checked before recursing, so a hostile
//! 100 000-deep filter is an error, not a stack overflow.
//!
//! Filters built directly (not through [`Filter::parse`]) are trusted: they may carry
//! NaN (which then equals nothing, so `$ne` NaN matches everything) or empty `And`
//! (everything) / `Or` (nothing), and their depth is the builder's responsibility.

pub mod eval;
pub mod index;
pub mod parse;
pub(crate) mod persist;

pub use index::PayloadIndex;
pub use roaring::RoaringBitmap;

use crate::metadata::Value;

/// The deepest nesting of filter maps [`Filter::parse`] accepts: the top-level map is
/// level 1 and each `$and` / `$or` element or `$not` operand one level deeper.
pub const MAX_DEPTH: usize = 64;

/// A JSON-like tree the bindings build from a Python dict (the core knows no Python).
/// `Map` keeps entry order; duplicate keys are rejected by the parser.
#[derive(Clone, Debug, PartialEq)]
pub enum FilterInput {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(String),
    List(Vec<FilterInput>),
    Map(Vec<(String, FilterInput)>),
}

/// A comparison operator.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum CmpOp {
    /// `$eq`, and a plain value.
    Eq,
    /// `$ne`: not `$eq` (true when the key is missing).
    Ne,
    /// `$gt`.
    Gt,
    /// `$gte`.
    Gte,
    /// `$lt`.
    Lt,
    /// `$lte`.
    Lte,
}

impl CmpOp {
    /// The operator as written in a filter (`"$gte"`).
    pub fn as_str(self) -> &'static str {
        match self {
            CmpOp::Eq => "$eq",
            CmpOp::Ne => "$ne",
            CmpOp::Gt => "$gt",
            CmpOp::Gte => "$gte",
            CmpOp::Lt => "$lt",
            CmpOp::Lte => "$lte",
        }
    }
}

/// A parsed, typed filter. See the [module documentation](self) for the semantics.
#[derive(Clone, Debug, PartialEq)]
pub enum Filter {
    /// The empty filter `{}`: matches everything.
    All,
    /// `$eq $ne $gt $gte $lt $lte` (and plain equality) on one key.
    Cmp {
        key: String,
        op: CmpOp,
        value: Value,
    },
    /// `$in` (`negate: false`) / `$nin` (`negate: true`).
    In {
        key: String,
        values: Vec<Value>,
        negate: bool,
    },
    /// `$exists`.
    Exists { key: String, exists: bool },
    /// `$tags: {"$all": [...]}`: every tag present (empty list: everything).
    TagsAll(Vec<String>),
    /// `$tags: {"$any": [...]}`: at least one tag present (empty list: nothing).
    TagsAny(Vec<String>),
    /// All must match (empty: everything).
    And(Vec<Filter>),
    /// At least one must match (empty: nothing).
    Or(Vec<Filter>),
    /// The inner filter must not match.
    Not(Box<Filter>),
}

impl Filter {
    /// Whether this is [`Filter::All`] (the empty filter), so callers can skip filtering.
    pub fn is_all(&self) -> bool {
        matches!(self, Filter::All)
    }
}
