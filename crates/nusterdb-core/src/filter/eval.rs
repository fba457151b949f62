//! [`Filter::matches`]: evaluation on one vector's metadata. This is the reference
//! semantics ([`PayloadIndex::evaluate`](super::PayloadIndex::evaluate) must agree with it
//! exactly) and what graph search calls per candidate.

use std::cmp::Ordering;

use super::{CmpOp, Filter};
use crate::metadata::{Metadata, Value};

/// Orders a stored value against a comparison value, or `None` when they are not
/// comparable (different type classes, or a NaN).
///
/// int/int compares exactly; int/float and float/float compare as `f64` (the int
/// rounded to nearest); str/str by bytes; bool/bool with `false < true`.
pub fn compare(stored: &Value, query: &Value) -> Option<Ordering> {
    match (stored, query) {
        (Value::Int(a), Value::Int(b)) => Some(a.cmp(b)),
        (Value::Int(a), Value::Float(b)) => (*a as f64).partial_cmp(b),
        (Value::Float(a), Value::Int(b)) => a.partial_cmp(&(*b as f64)),
        (Value::Float(a), Value::Float(b)) => a.partial_cmp(b),
        (Value::Str(a), Value::Str(b)) => Some(a.as_bytes().cmp(b.as_bytes())),
        (Value::Bool(a), Value::Bool(b)) => Some(a.cmp(b)),
        _ => None,
    }
}

/// Whether `stored op query` holds. `Ne` is exactly the negation of `Eq`.
pub fn compare_op(stored: &Value, op: CmpOp, query: &Value) -> bool {
    let ord = compare(stored, query);
    match op {
        CmpOp::Eq => ord == Some(Ordering::Equal),
        CmpOp::Ne => ord != Some(Ordering::Equal),
        CmpOp::Gt => ord == Some(Ordering::Greater),
        CmpOp::Gte => matches!(ord, Some(Ordering::Greater | Ordering::Equal)),
        CmpOp::Lt => ord == Some(Ordering::Less),
        CmpOp::Lte => matches!(ord, Some(Ordering::Less | Ordering::Equal)),
    }
}

impl Filter {
    /// Whether the metadata `m` satisfies this filter.
    pub fn matches(&self, m: &Metadata) -> bool {
        match self {
            Filter::All => true,
            Filter::Cmp { key, op, value } => match m.get(key) {
                Some(stored) => compare_op(stored, *op, value),
                None => *op == CmpOp::Ne,
            },
            Filter::In {
                key,
                values,
                negate,
            } => {
                let found = m.get(key).is_some_and(|stored| {
                    values
                        .iter()
                        .any(|v| compare(stored, v) == Some(Ordering::Equal))
                });
                found != *negate
            }
            Filter::Exists { key, exists } => m.contains_key(key) == *exists,
            Filter::TagsAll(tags) => tags.iter().all(|t| m.has_tag(t)),
            Filter::TagsAny(tags) => tags.iter().any(|t| m.has_tag(t)),
            Filter::And(parts) => parts.iter().all(|f| f.matches(m)),
            Filter::Or(parts) => parts.iter().any(|f| f.matches(m)),
            Filter::Not(inner) => !inner.matches(m),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cross_type_numbers_and_mismatches() {
        assert_eq!(
            compare(&Value::Int(3), &Value::Float(3.0)),
            Some(Ordering::Equal)
        );
        assert_eq!(
            compare(&Value::Float(-0.0), &Value::Int(0)),
            Some(Ordering::Equal)
        );
        // Exact between ints even where f64 cannot tell them apart.
        let big = (1i64 << 53) + 1;
        assert_eq!(
            compare(&Value::Int(big), &Value::Int(1 << 53)),
            Some(Ordering::Greater)
        );
        assert_eq!(
            compare(&Value::Int(big), &Value::Float(9007199254740992.0)),
            Some(Ordering::Equal)
        );
        assert_eq!(compare(&Value::Bool(true), &Value::Int(1)), None);
        assert_eq!(compare(&Value::Str("1".into()), &Value::Int(1)), None);
        assert!(compare_op(
            &Value::Int(1),
            CmpOp::Ne,
            &Value::Str("a".into())
        ));
        assert!(!compare_op(
            &Value::Int(1),
            CmpOp::Gt,
            &Value::Str("a".into())
        ));
        assert!(compare_op(
            &Value::Bool(true),
            CmpOp::Gt,
            &Value::Bool(false)
        ));
        assert!(!compare_op(
            &Value::Float(1.0),
            CmpOp::Eq,
            &Value::Float(f64::NAN)
        ));
        assert!(compare_op(
            &Value::Float(1.0),
            CmpOp::Ne,
            &Value::Float(f64::NAN)
        ));
    }
}
