//! [`FilterInput`] → [`Filter`]: validation with errors that name the path.
//!
//! Recursion happens only through filter maps (`$and` / `$or` elements, `$not`
//! operands), and the depth is checked before each recursive call, so the parser's stack
//! use is bounded by [`MAX_DEPTH`] whatever the input. Error messages describe offending
//! input by its type only (never by printing it), so they stay short for huge inputs.

use std::collections::HashSet;

use super::{CmpOp, Filter, FilterInput, MAX_DEPTH};
use crate::error::{Error, Result};
use crate::metadata::Value;

/// The root of every error path.
const ROOT: &str = "filter";
const FILTER_OPS: &str = "$and, $or, $not, $tags";
const FIELD_OPS: &str = "$eq, $ne, $gt, $gte, $lt, $lte, $in, $nin, $exists";
const TAG_OPS: &str = "$all, $any";

impl Filter {
    /// Parses a filter.
    ///
    /// # Errors
    /// [`Error::Filter`] naming the path into the filter and the problem: see the
    /// [module documentation](super) for the list.
    pub fn parse(input: &FilterInput) -> Result<Filter> {
        parse_map(input, ROOT, 1)
    }
}

fn err(at: &str, msg: impl Into<String>) -> Error {
    Error::Filter {
        at: at.to_string(),
        msg: msg.into(),
    }
}

fn key_path(at: &str, key: &str) -> String {
    format!("{at}[{key:?}]")
}

fn index_path(at: &str, i: usize) -> String {
    format!("{at}[{i}]")
}

/// The type of an input value, for messages.
fn describe(v: &FilterInput) -> &'static str {
    match v {
        FilterInput::Null => "null",
        FilterInput::Bool(_) => "a bool",
        FilterInput::Int(_) => "an int",
        FilterInput::Float(_) => "a float",
        FilterInput::Str(_) => "a str",
        FilterInput::List(_) => "a list",
        FilterInput::Map(_) => "a map",
    }
}

fn reject_duplicates(entries: &[(String, FilterInput)], at: &str) -> Result<()> {
    let mut seen = HashSet::with_capacity(entries.len());
    for (k, _) in entries {
        if !seen.insert(k.as_str()) {
            return Err(err(
                &key_path(at, k),
                format!("duplicate key {k:?} in one map"),
            ));
        }
    }
    Ok(())
}

/// AND of `parts`, without a one-element `And`.
fn conjunction(mut parts: Vec<Filter>) -> Filter {
    match parts.len() {
        0 => Filter::All,
        1 => parts.pop().unwrap_or(Filter::All),
        _ => Filter::And(parts),
    }
}

/// A filter map at nesting level `depth` (the caller has checked `depth <= MAX_DEPTH`).
fn parse_map(input: &FilterInput, at: &str, depth: usize) -> Result<Filter> {
    let FilterInput::Map(entries) = input else {
        return Err(err(
            at,
            format!(
                "a filter must be a map (like {{\"key\": value}}), got {}",
                describe(input)
            ),
        ));
    };
    reject_duplicates(entries, at)?;
    let mut parts = Vec::with_capacity(entries.len());
    for (key, value) in entries {
        let here = key_path(at, key);
        if key.is_empty() {
            return Err(err(&here, "keys must not be empty"));
        }
        let part = if key.starts_with('$') {
            parse_filter_op(key, value, &here, depth)?
        } else {
            parse_field(key, value, &here)?
        };
        parts.push(part);
    }
    Ok(conjunction(parts))
}

/// Parses a nested filter map one level below `depth`, refusing before recursing when
/// that would exceed [`MAX_DEPTH`].
fn parse_nested(input: &FilterInput, at: &str, depth: usize) -> Result<Filter> {
    if depth >= MAX_DEPTH {
        return Err(err(
            at,
            format!("filter nesting is deeper than {MAX_DEPTH} levels"),
        ));
    }
    parse_map(input, at, depth + 1)
}

/// A `$` key of a filter map: `$and`, `$or`, `$not`, `$tags`.
fn parse_filter_op(op: &str, value: &FilterInput, at: &str, depth: usize) -> Result<Filter> {
    match op {
        "$and" | "$or" => {
            let items = match value {
                FilterInput::List(items) if !items.is_empty() => items,
                FilterInput::List(_) => {
                    return Err(err(
                        at,
                        format!("{op} needs a non-empty list of filter maps, got an empty list"),
                    ))
                }
                other => {
                    return Err(err(
                        at,
                        format!(
                            "{op} needs a non-empty list of filter maps, got {}",
                            describe(other)
                        ),
                    ))
                }
            };
            let mut parts = Vec::with_capacity(items.len());
            for (i, item) in items.iter().enumerate() {
                let here = index_path(at, i);
                if !matches!(item, FilterInput::Map(_)) {
                    return Err(err(
                        &here,
                        format!(
                            "{op} needs a non-empty list of filter maps, this element is {}",
                            describe(item)
                        ),
                    ));
                }
                parts.push(parse_nested(item, &here, depth)?);
            }
            Ok(if op == "$and" {
                Filter::And(parts)
            } else {
                Filter::Or(parts)
            })
        }
        "$not" => {
            if !matches!(value, FilterInput::Map(_)) {
                return Err(err(
                    at,
                    format!("$not needs a filter map, got {}", describe(value)),
                ));
            }
            Ok(Filter::Not(Box::new(parse_nested(value, at, depth)?)))
        }
        "$tags" => parse_tags(value, at),
        "$eq" | "$ne" | "$gt" | "$gte" | "$lt" | "$lte" | "$in" | "$nin" | "$exists" => Err(err(
            at,
            format!(
                "{op} is a field operator: write {{\"key\": {{\"{op}\": ...}}}}; \
                     operators valid here: {FILTER_OPS}"
            ),
        )),
        _ => Err(err(
            at,
            format!("unknown operator {op:?}; operators valid here: {FILTER_OPS}"),
        )),
    }
}

/// `"$tags": {"$all": [...], "$any": [...]}`.
fn parse_tags(value: &FilterInput, at: &str) -> Result<Filter> {
    let entries = match value {
        FilterInput::Map(entries) if !entries.is_empty() => entries,
        other => {
            let got = if matches!(other, FilterInput::Map(_)) {
                "an empty map"
            } else {
                describe(other)
            };
            return Err(err(
                at,
                format!("$tags needs {{\"$all\": [tags]}} and/or {{\"$any\": [tags]}}, got {got}"),
            ));
        }
    };
    reject_duplicates(entries, at)?;
    let mut parts = Vec::with_capacity(entries.len());
    for (op, list) in entries {
        let here = key_path(at, op);
        if op != "$all" && op != "$any" {
            return Err(err(
                &here,
                format!("unknown $tags operator {op:?}; valid: {TAG_OPS}"),
            ));
        }
        let FilterInput::List(items) = list else {
            return Err(err(
                &here,
                format!("{op} needs a list of tag strings, got {}", describe(list)),
            ));
        };
        let mut tags = Vec::with_capacity(items.len());
        for (i, item) in items.iter().enumerate() {
            match item {
                FilterInput::Str(s) if !s.is_empty() => tags.push(s.clone()),
                FilterInput::Str(_) => {
                    return Err(err(&index_path(&here, i), "tags must not be empty"))
                }
                other => {
                    return Err(err(
                        &index_path(&here, i),
                        format!("tags must be strings, got {}", describe(other)),
                    ))
                }
            }
        }
        parts.push(if op == "$all" {
            Filter::TagsAll(tags)
        } else {
            Filter::TagsAny(tags)
        });
    }
    Ok(conjunction(parts))
}

/// `"key": scalar` or `"key": {"$op": operand, ...}`.
fn parse_field(key: &str, value: &FilterInput, at: &str) -> Result<Filter> {
    let FilterInput::Map(entries) = value else {
        return Ok(Filter::Cmp {
            key: key.to_string(),
            op: CmpOp::Eq,
            value: parse_scalar(value, at)?,
        });
    };
    if entries.is_empty() {
        return Err(err(
            at,
            "empty operator map: write a value for equality, or operators like {\"$gte\": 1}",
        ));
    }
    let dollar = entries.iter().filter(|(k, _)| k.starts_with('$')).count();
    if dollar == 0 {
        return Err(err(
            at,
            "a map is not a comparison value (metadata values are str, int, float or bool); \
             an operator map has only $ keys, like {\"$gte\": 1}",
        ));
    }
    if dollar != entries.len() {
        return Err(err(
            at,
            "an operator map mixes $ operators and plain keys; use only operators \
             (like {\"$gte\": 1, \"$lt\": 5})",
        ));
    }
    reject_duplicates(entries, at)?;
    let mut parts = Vec::with_capacity(entries.len());
    for (op, operand) in entries {
        parts.push(parse_field_op(key, op, operand, &key_path(at, op))?);
    }
    Ok(conjunction(parts))
}

fn parse_field_op(key: &str, op: &str, operand: &FilterInput, at: &str) -> Result<Filter> {
    let cmp = |op: CmpOp| -> Result<Filter> {
        Ok(Filter::Cmp {
            key: key.to_string(),
            op,
            value: parse_scalar(operand, at)?,
        })
    };
    match op {
        "$eq" => cmp(CmpOp::Eq),
        "$ne" => cmp(CmpOp::Ne),
        "$gt" => cmp(CmpOp::Gt),
        "$gte" => cmp(CmpOp::Gte),
        "$lt" => cmp(CmpOp::Lt),
        "$lte" => cmp(CmpOp::Lte),
        "$in" | "$nin" => {
            let FilterInput::List(items) = operand else {
                return Err(err(
                    at,
                    format!("{op} needs a list of values, got {}", describe(operand)),
                ));
            };
            let values = items
                .iter()
                .enumerate()
                .map(|(i, v)| parse_scalar(v, &index_path(at, i)))
                .collect::<Result<Vec<_>>>()?;
            Ok(Filter::In {
                key: key.to_string(),
                values,
                negate: op == "$nin",
            })
        }
        "$exists" => match operand {
            FilterInput::Bool(b) => Ok(Filter::Exists {
                key: key.to_string(),
                exists: *b,
            }),
            other => Err(err(
                at,
                format!("$exists needs a bool, got {}", describe(other)),
            )),
        },
        "$and" | "$or" | "$not" | "$tags" => Err(err(
            at,
            format!(
                "{op} is a filter-level operator (like {{\"{op}\": ...}} beside the keys), \
                 not a field operator; operators valid on a field: {FIELD_OPS}"
            ),
        )),
        _ => Err(err(
            at,
            format!("unknown operator {op:?}; operators valid on a field: {FIELD_OPS}"),
        )),
    }
}

/// A comparison value: str, int, float (not NaN) or bool.
fn parse_scalar(v: &FilterInput, at: &str) -> Result<Value> {
    match v {
        FilterInput::Bool(b) => Ok(Value::Bool(*b)),
        FilterInput::Int(i) => Ok(Value::Int(*i)),
        FilterInput::Float(f) if f.is_nan() => Err(err(at, "NaN is not a comparison value")),
        FilterInput::Float(f) => Ok(Value::Float(*f)),
        FilterInput::Str(s) => Ok(Value::Str(s.clone())),
        FilterInput::Null => Err(err(
            at,
            "null is not a comparison value (metadata holds no null); \
             use {\"$exists\": false} to match a missing key",
        )),
        FilterInput::List(_) => Err(err(
            at,
            "a list is not a comparison value (values are str, int, float or bool); \
             use {\"$in\": [...]} to match any of several values",
        )),
        FilterInput::Map(_) => Err(err(
            at,
            "a map is not a comparison value (values are str, int, float or bool)",
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(x: &str) -> FilterInput {
        FilterInput::Str(x.to_string())
    }
    fn map(entries: Vec<(&str, FilterInput)>) -> FilterInput {
        FilterInput::Map(
            entries
                .into_iter()
                .map(|(k, v)| (k.to_string(), v))
                .collect(),
        )
    }
    fn parse_err(input: &FilterInput) -> (String, String) {
        match Filter::parse(input) {
            Err(Error::Filter { at, msg }) => (at, msg),
            other => panic!("expected a filter error, got {other:?}"),
        }
    }

    #[test]
    fn plain_entries_are_equality_and() {
        let f = Filter::parse(&map(vec![
            ("category", s("image")),
            ("n", FilterInput::Int(3)),
        ]));
        assert_eq!(
            f.ok(),
            Some(Filter::And(vec![
                Filter::Cmp {
                    key: "category".into(),
                    op: CmpOp::Eq,
                    value: Value::Str("image".into())
                },
                Filter::Cmp {
                    key: "n".into(),
                    op: CmpOp::Eq,
                    value: Value::Int(3)
                },
            ]))
        );
        assert_eq!(Filter::parse(&map(vec![])).ok(), Some(Filter::All));
    }

    #[test]
    fn operator_map_and_paths() {
        let f = map(vec![(
            "year",
            map(vec![
                ("$gte", FilterInput::Int(2020)),
                ("$lt", FilterInput::Null),
            ]),
        )]);
        let (at, msg) = parse_err(&f);
        assert_eq!(at, r#"filter["year"]["$lt"]"#);
        assert!(msg.contains("null"), "{msg}");
    }

    #[test]
    fn depth_limit_is_exact() {
        let mut ok = map(vec![("a", FilterInput::Int(1))]);
        for _ in 1..MAX_DEPTH {
            ok = map(vec![("$not", ok)]);
        }
        assert!(Filter::parse(&ok).is_ok());
        let too_deep = map(vec![("$not", ok)]);
        let (_, msg) = parse_err(&too_deep);
        assert!(msg.contains("deeper than 64"), "{msg}");
    }
}
