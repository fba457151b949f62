//! [`Filter::matches`]: evaluation on one vector's metadata. This is the reference
//! semantics ([`PayloadIndex::evaluate`](super::PayloadIndex::evaluate) must agree with it
//! exactly) and what graph search calls per candidate.

use std::cmp::Ordering;

use super::{CmpOp, Filter};
use crate::metadata::{Metadata, Value};

/// 2^63 as an `f64` (exact): the first float above every `i64`.
const TWO_POW_63: f64 = 9_223_372_036_854_775_808.0;

/// Orders the int `i` against the float `f` exactly (as Python does), or `None` when
/// `f` is NaN.
///
/// Converting `i` to `f64` would round beyond ±2^53 (2^53 + 1 would equal 2^53), and
/// converting `f` to `i64` would saturate, so: a float outside [-2^63, 2^63) is beyond
/// every `i64` and its sign decides; otherwise its integer part converts to `i64`
/// exactly, and when that equals `i` the fractional part decides.
pub fn cmp_int_float(i: i64, f: f64) -> Option<Ordering> {
    if f.is_nan() {
        return None;
    }
    if f >= TWO_POW_63 {
        return Some(Ordering::Less);
    }
    if f < -TWO_POW_63 {
        return Some(Ordering::Greater);
    }
    let whole = f.trunc();
    // -2^63 <= whole < 2^63 and integral: the conversion is exact.
    let whole_int = whole as i64;
    Some(match i.cmp(&whole_int) {
        // The fraction `f - whole` is exact and lies in (-1, 1).
        Ordering::Equal => 0.0f64.partial_cmp(&(f - whole)).unwrap_or(Ordering::Equal),
        other => other,
    })
}

/// Orders two numbers exactly, whatever mix of int and float (`None` with a NaN).
/// `-0.0 == 0.0 == 0`.
pub fn cmp_num(a: &Value, b: &Value) -> Option<Ordering> {
    match (a, b) {
        (Value::Int(x), Value::Int(y)) => Some(x.cmp(y)),
        (Value::Int(x), Value::Float(y)) => cmp_int_float(*x, *y),
        (Value::Float(x), Value::Int(y)) => cmp_int_float(*y, *x).map(Ordering::reverse),
        (Value::Float(x), Value::Float(y)) => x.partial_cmp(y),
        _ => None,
    }
}

/// Orders a stored value against a comparison value, or `None` when they are not
/// comparable (different type classes, or a NaN).
///
/// Numbers compare exactly across int and float ([`cmp_num`]); str/str by bytes;
/// bool/bool with `false < true`. A bool is not a number here (`true != 1`).
pub fn compare(stored: &Value, query: &Value) -> Option<Ordering> {
    match (stored, query) {
        (Value::Int(_) | Value::Float(_), Value::Int(_) | Value::Float(_)) => {
            cmp_num(stored, query)
        }
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
        // Exact between an int and a float too (Python's semantics), not through f64.
        assert_eq!(
            compare(&Value::Int(big), &Value::Float(9007199254740992.0)),
            Some(Ordering::Greater)
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

    #[test]
    fn int_float_edges() {
        use Ordering::{Equal, Greater, Less};
        let two63 = 9223372036854775808.0;
        let cases: [(i64, f64, Option<Ordering>); 16] = [
            (i64::MAX, two63, Some(Less)),
            (i64::MIN, -two63, Some(Equal)),
            (i64::MIN + 1, -two63, Some(Greater)),
            (i64::MIN, -18446744073709551616.0, Some(Greater)),
            ((1 << 53) + 1, 9007199254740992.0, Some(Greater)),
            ((1 << 53) + 1, 9007199254740994.0, Some(Less)),
            (-(1 << 53) - 1, -9007199254740992.0, Some(Less)),
            (0, -0.0, Some(Equal)),
            (0, 0.5, Some(Less)),
            (0, -0.5, Some(Greater)),
            (-1, -0.5, Some(Less)),
            (3, 2.999999999999999, Some(Greater)),
            (i64::MAX, f64::INFINITY, Some(Less)),
            (i64::MIN, f64::NEG_INFINITY, Some(Greater)),
            (5, 1e300, Some(Less)),
            (5, f64::NAN, None),
        ];
        for (i, f, want) in cases {
            assert_eq!(cmp_int_float(i, f), want, "{i} vs {f:?}");
            assert_eq!(
                cmp_num(&Value::Float(f), &Value::Int(i)),
                want.map(Ordering::reverse),
                "{f:?} vs {i}"
            );
        }
    }
}
