//! MongoDB-style filters over the event document (DESIGN §4, §5 `filter:`).
//!
//! A filter is parsed and validated once, when an automation is saved, into a small tree with its
//! regular expressions compiled; ingest then evaluates that tree against every event of the
//! automation's scope. Everything that can be wrong with a filter is found by [`Filter::parse`], so
//! [`Filter::matches`] cannot fail.
//!
//! Semantics, where MongoDB leaves room or where this engine deliberately differs:
//! - A field path is split on `.`; each step looks the segment up in an object, and when the
//!   value at hand is an array, in each of its object elements (one array level per step, as in
//!   MongoDB). Numeric segments are not array indexes: `run.tags.0` finds nothing in an array.
//!   A field is *missing* when the path finds no value at all.
//! - The values a path finds are its *candidates*, and so is every element of a candidate that is
//!   an array: `$eq`, `$in`, `$regex`, `$gt`, `$gte`, `$lt` and `$lte` hold when any candidate
//!   satisfies them (so `{"run.tags": "x"}` matches `["x", "y"]`, and `{"run.tags": ["x", "y"]}`
//!   matches it too, as the whole array). `$ne` and `$nin` are exactly the negations of `$eq`
//!   and `$in`.
//! - `null` equals a missing field (`{"f": null}`, `{"f": {"$in": [null]}}`), so `$ne: null`
//!   means "present and not null". Unlike MongoDB, an element of an array of objects that lacks
//!   the field does not count as missing when another element has it: `{"a.b": null}` does not
//!   match `{"a": [{"b": 1}, {}]}`. A document that is not an object has no fields.
//! - Numbers are equal and ordered by value, exactly (`1 == 1.0`, and a large integer is never
//!   rounded to a float). Objects are equal when they have the same keys with equal values, in
//!   any order. Ordering operators compare numbers with numbers and strings with strings (by
//!   code point); any other pairing is false, so their operand must be a number or a string.
//! - `$contains` is a substring test on a string value and an element-equality test on an array
//!   value; anything else is false.
//! - An object of a field is an operator expression when its keys all start with `$`; an object
//!   with no `$` key (including `{}`) is a value to compare with. Mixing both is rejected rather
//!   than silently compared as a literal that can never match; `{"$eq": {...}}` compares with an
//!   object that has `$` keys.
//! - Filters are limited to [`MAX_DEPTH`] levels of JSON nesting (values being compared
//!   included), which bounds the recursion of both parsing and evaluation.

use std::cmp::Ordering;

use regex::{Regex, RegexBuilder};
use serde_json::{Map, Number, Value};

/// How deeply a filter's JSON may nest; the root object is level 1.
pub const MAX_DEPTH: usize = 32;

/// Upper bound on a compiled `$regex`, so a hostile pattern is rejected at save time instead of
/// taking memory or time on every event.
const REGEX_SIZE_LIMIT: usize = 1 << 20;

/// Operators that apply to a field, listed for a clear error when one is used at filter level.
const FIELD_OPERATORS: &[&str] =
    &["$eq", "$ne", "$gt", "$gte", "$lt", "$lte", "$in", "$nin", "$exists", "$regex", "$options", "$contains", "$not"];

/// A filter compiled once at save time and evaluated many times.
#[derive(Debug, Clone)]
pub struct Filter {
    root: Node,
}

/// Why a filter was rejected, and where: `path` is dotted and relative to the filter root
/// (`run.name.$regex`, `$and[1].author.$in`), empty for the root itself.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{path}: {message}")]
pub struct FilterError {
    pub path: String,
    pub message: String,
}

#[derive(Debug, Clone)]
enum Node {
    And(Vec<Node>),
    Or(Vec<Node>),
    Nor(Vec<Node>),
    Field { path: Vec<String>, ops: Vec<Op> },
}

#[derive(Debug, Clone)]
enum Op {
    Eq(Value),
    Ne(Value),
    Compare(Comparison, Value),
    In(Vec<Value>),
    Nin(Vec<Value>),
    Exists(bool),
    Regex(Regex),
    Contains(Value),
    Not(Vec<Op>),
}

#[derive(Debug, Clone, Copy)]
enum Comparison {
    Gt,
    Gte,
    Lt,
    Lte,
}

impl Filter {
    /// Parses a filter JSON object. Errors name the path of the fault relative to the filter root,
    /// dotted, e.g. `run.name.$regex`, `$and[1].author.$in`, `$or` (not an array).
    pub fn parse(value: &Value) -> Result<Filter, FilterError> {
        let Value::Object(filter) = value else {
            return Err(fault("", "filter must be an object"));
        };
        Ok(Filter { root: parse_filter(filter, "", 1)? })
    }

    /// Evaluates against an event document (serde_json::Value object).
    pub fn matches(&self, doc: &Value) -> bool {
        self.root.matches(doc)
    }
}

fn fault(path: &str, message: impl Into<String>) -> FilterError {
    FilterError { path: path.to_owned(), message: message.into() }
}

fn too_deep(path: &str) -> FilterError {
    fault(path, format!("filter nests deeper than {MAX_DEPTH} levels"))
}

fn join(parent: &str, key: &str) -> String {
    if parent.is_empty() { key.to_owned() } else { format!("{parent}.{key}") }
}

fn index(parent: &str, i: usize) -> String {
    format!("{parent}[{i}]")
}

/// `level` is the nesting level of `filter` itself.
fn parse_filter(filter: &Map<String, Value>, path: &str, level: usize) -> Result<Node, FilterError> {
    if level > MAX_DEPTH {
        return Err(too_deep(path));
    }
    let mut nodes = Vec::with_capacity(filter.len());
    for (key, value) in filter {
        let key_path = join(path, key);
        let node = match key.as_str() {
            "$and" => Node::And(parse_filter_list(value, &key_path, level + 1)?),
            "$or" => Node::Or(parse_filter_list(value, &key_path, level + 1)?),
            "$nor" => Node::Nor(parse_filter_list(value, &key_path, level + 1)?),
            op if FIELD_OPERATORS.contains(&op) => {
                return Err(fault(
                    &key_path,
                    format!("{op} applies to a field: write {{\"<field>\": {{\"{op}\": ...}}}}"),
                ));
            }
            op if op.starts_with('$') => {
                return Err(fault(&key_path, format!("unknown operator {op}")));
            }
            field => parse_field(field, value, &key_path, level + 1)?,
        };
        nodes.push(node);
    }
    if nodes.len() == 1
        && let Some(node) = nodes.pop()
    {
        return Ok(node);
    }
    Ok(Node::And(nodes))
}

/// The operand of `$and`, `$or` and `$nor`; `level` is the level of the array.
fn parse_filter_list(value: &Value, path: &str, level: usize) -> Result<Vec<Node>, FilterError> {
    let items = match value {
        Value::Array(items) if !items.is_empty() => items,
        _ => return Err(fault(path, "must be a non-empty array of filter objects")),
    };
    if level > MAX_DEPTH {
        return Err(too_deep(path));
    }
    items
        .iter()
        .enumerate()
        .map(|(i, item)| {
            let item_path = index(path, i);
            match item {
                Value::Object(filter) => parse_filter(filter, &item_path, level + 1),
                _ => Err(fault(&item_path, "must be a filter object")),
            }
        })
        .collect()
}

/// `level` is the level of the field's value.
fn parse_field(field: &str, value: &Value, path: &str, level: usize) -> Result<Node, FilterError> {
    if field.split('.').any(str::is_empty) {
        return Err(fault(path, "invalid field path: segments between dots must not be empty"));
    }
    let ops = match value {
        Value::Object(expression) if expression.keys().any(|k| k.starts_with('$')) => {
            if let Some(name) = expression.keys().find(|k| !k.starts_with('$')) {
                return Err(fault(
                    path,
                    format!(
                        "mixes operators with the field name \"{name}\"; to compare with an object \
                         that has $ keys, use {{\"$eq\": {{...}}}}"
                    ),
                ));
            }
            parse_operators(expression, path, level)?
        }
        literal => {
            check_literal(literal, path, level)?;
            vec![Op::Eq(literal.clone())]
        }
    };
    Ok(Node::Field { path: field.split('.').map(str::to_owned).collect(), ops })
}

/// An operator expression such as `{"$gt": 1, "$lt": 5}`; `level` is the level of the object.
fn parse_operators(expression: &Map<String, Value>, path: &str, level: usize) -> Result<Vec<Op>, FilterError> {
    if level > MAX_DEPTH {
        return Err(too_deep(path));
    }
    let operand_level = level + 1;
    let mut ops = Vec::with_capacity(expression.len());
    for (name, operand) in expression {
        let op_path = join(path, name);
        let op = match name.as_str() {
            "$eq" => Op::Eq(literal(operand, &op_path, operand_level)?),
            "$ne" => Op::Ne(literal(operand, &op_path, operand_level)?),
            "$gt" => Op::Compare(Comparison::Gt, orderable(operand, &op_path)?),
            "$gte" => Op::Compare(Comparison::Gte, orderable(operand, &op_path)?),
            "$lt" => Op::Compare(Comparison::Lt, orderable(operand, &op_path)?),
            "$lte" => Op::Compare(Comparison::Lte, orderable(operand, &op_path)?),
            "$in" => Op::In(literal_list(operand, &op_path, operand_level)?),
            "$nin" => Op::Nin(literal_list(operand, &op_path, operand_level)?),
            "$exists" => match operand {
                Value::Bool(exists) => Op::Exists(*exists),
                _ => return Err(fault(&op_path, "must be true or false")),
            },
            "$regex" => Op::Regex(compile_regex(operand, expression, path)?),
            "$options" => {
                if !expression.contains_key("$regex") {
                    return Err(fault(&op_path, "$options needs a $regex beside it"));
                }
                // Read and checked together with its $regex.
                continue;
            }
            "$contains" => Op::Contains(literal(operand, &op_path, operand_level)?),
            "$not" => match operand {
                Value::Object(inner) if !inner.is_empty() && inner.keys().all(|k| k.starts_with('$')) => {
                    Op::Not(parse_operators(inner, &op_path, operand_level)?)
                }
                _ => {
                    return Err(fault(&op_path, "must be an operator expression such as {\"$regex\": \"^x\"}"));
                }
            },
            "$and" | "$or" | "$nor" => {
                return Err(fault(
                    &op_path,
                    format!("{name} combines whole filters and cannot be used inside a field expression"),
                ));
            }
            _ => return Err(fault(&op_path, format!("unknown operator {name}"))),
        };
        ops.push(op);
    }
    Ok(ops)
}

fn literal(operand: &Value, path: &str, level: usize) -> Result<Value, FilterError> {
    check_literal(operand, path, level)?;
    Ok(operand.clone())
}

/// Values to compare with are held to the same depth limit as the filter, which also bounds the
/// recursion of equality at evaluation time.
fn check_literal(value: &Value, path: &str, level: usize) -> Result<(), FilterError> {
    if depth_within(value, (MAX_DEPTH + 1).saturating_sub(level)) { Ok(()) } else { Err(too_deep(path)) }
}

/// Whether `value` nests at most `budget` levels; stops descending once over budget.
fn depth_within(value: &Value, budget: usize) -> bool {
    match value {
        Value::Array(items) => budget > 0 && items.iter().all(|v| depth_within(v, budget - 1)),
        Value::Object(fields) => budget > 0 && fields.values().all(|v| depth_within(v, budget - 1)),
        _ => true,
    }
}

fn literal_list(operand: &Value, path: &str, level: usize) -> Result<Vec<Value>, FilterError> {
    match operand {
        Value::Array(items) => {
            check_literal(operand, path, level)?;
            Ok(items.clone())
        }
        _ => Err(fault(path, "must be an array")),
    }
}

fn orderable(operand: &Value, path: &str) -> Result<Value, FilterError> {
    match operand {
        Value::Number(_) | Value::String(_) => Ok(operand.clone()),
        _ => Err(fault(path, "must be a number or a string")),
    }
}

fn compile_regex(pattern: &Value, expression: &Map<String, Value>, path: &str) -> Result<Regex, FilterError> {
    let regex_path = join(path, "$regex");
    let Value::String(pattern) = pattern else {
        return Err(fault(&regex_path, "must be a string"));
    };
    let mut builder = RegexBuilder::new(pattern);
    builder.size_limit(REGEX_SIZE_LIMIT);
    if let Some(options) = expression.get("$options") {
        let options_path = join(path, "$options");
        let Value::String(options) = options else {
            return Err(fault(&options_path, "must be a string"));
        };
        for flag in options.chars() {
            match flag {
                'i' => builder.case_insensitive(true),
                'm' => builder.multi_line(true),
                's' => builder.dot_matches_new_line(true),
                'x' => builder.ignore_whitespace(true),
                other => {
                    return Err(fault(&options_path, format!("unknown regex option '{other}': use any of i, m, s, x")));
                }
            };
        }
    }
    builder.build().map_err(|error| match error {
        regex::Error::CompiledTooBig(_) => {
            fault(&regex_path, format!("regular expression is too large (limit {REGEX_SIZE_LIMIT} bytes compiled)"))
        }
        other => fault(&regex_path, format!("invalid regular expression: {other}")),
    })
}

impl Node {
    fn matches(&self, doc: &Value) -> bool {
        match self {
            Node::And(nodes) => nodes.iter().all(|n| n.matches(doc)),
            Node::Or(nodes) => nodes.iter().any(|n| n.matches(doc)),
            Node::Nor(nodes) => !nodes.iter().any(|n| n.matches(doc)),
            Node::Field { path, ops } => {
                let found = resolve(doc, path);
                ops.iter().all(|op| op.holds(&found))
            }
        }
    }
}

/// The values a dotted path finds; empty when the field is missing. Only an object has fields,
/// so a document that is not one (which ingest never passes) matches as if empty.
fn resolve<'a>(doc: &'a Value, path: &[String]) -> Vec<&'a Value> {
    let Value::Object(root) = doc else {
        return Vec::new();
    };
    let Some((first, rest)) = path.split_first() else {
        return Vec::new();
    };
    let mut found: Vec<&Value> = root.get(first).into_iter().collect();
    for segment in rest {
        if found.is_empty() {
            break;
        }
        let mut next = Vec::new();
        for value in found {
            match value {
                Value::Object(fields) => next.extend(fields.get(segment)),
                Value::Array(items) => next.extend(items.iter().filter_map(|item| item.as_object()?.get(segment))),
                _ => {}
            }
        }
        found = next;
    }
    found
}

/// The found values and the elements of those that are arrays.
fn candidates<'a>(found: &'a [&'a Value]) -> impl Iterator<Item = &'a Value> {
    found.iter().flat_map(|value| std::iter::once(*value).chain(value.as_array().into_iter().flatten()))
}

fn equals_any(found: &[&Value], operand: &Value) -> bool {
    if found.is_empty() { operand.is_null() } else { candidates(found).any(|c| json_equal(c, operand)) }
}

impl Op {
    fn holds(&self, found: &[&Value]) -> bool {
        match self {
            Op::Eq(operand) => equals_any(found, operand),
            Op::Ne(operand) => !equals_any(found, operand),
            Op::In(operands) => operands.iter().any(|o| equals_any(found, o)),
            Op::Nin(operands) => !operands.iter().any(|o| equals_any(found, o)),
            Op::Compare(comparison, operand) => {
                candidates(found).any(|c| order(c, operand).is_some_and(|ordering| comparison.accepts(ordering)))
            }
            Op::Exists(exists) => found.is_empty() != *exists,
            Op::Regex(regex) => candidates(found).any(|c| c.as_str().is_some_and(|s| regex.is_match(s))),
            Op::Contains(operand) => found.iter().any(|value| match value {
                Value::String(text) => operand.as_str().is_some_and(|part| text.contains(part)),
                Value::Array(items) => items.iter().any(|item| json_equal(item, operand)),
                _ => false,
            }),
            Op::Not(ops) => !ops.iter().all(|op| op.holds(found)),
        }
    }
}

impl Comparison {
    fn accepts(self, ordering: Ordering) -> bool {
        match self {
            Comparison::Gt => ordering == Ordering::Greater,
            Comparison::Gte => ordering != Ordering::Less,
            Comparison::Lt => ordering == Ordering::Less,
            Comparison::Lte => ordering != Ordering::Greater,
        }
    }
}

/// How `value` orders against `operand`: numbers with numbers, strings with strings, else none.
fn order(value: &Value, operand: &Value) -> Option<Ordering> {
    match (value, operand) {
        (Value::Number(a), Value::Number(b)) => compare_numbers(a, b),
        (Value::String(a), Value::String(b)) => Some(a.as_str().cmp(b.as_str())),
        _ => None,
    }
}

fn json_equal(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Null, Value::Null) => true,
        (Value::Bool(a), Value::Bool(b)) => a == b,
        (Value::Number(a), Value::Number(b)) => compare_numbers(a, b) == Some(Ordering::Equal),
        (Value::String(a), Value::String(b)) => a == b,
        (Value::Array(a), Value::Array(b)) => a.len() == b.len() && a.iter().zip(b).all(|(x, y)| json_equal(x, y)),
        (Value::Object(a), Value::Object(b)) => {
            a.len() == b.len() && a.iter().all(|(key, x)| b.get(key).is_some_and(|y| json_equal(x, y)))
        }
        _ => false,
    }
}

fn integer(n: &Number) -> Option<i128> {
    n.as_i64().map(i128::from).or_else(|| n.as_u64().map(i128::from))
}

/// Exact numeric order: integers are never rounded through f64, so 2^53 + 1 != 2^53 as a float.
fn compare_numbers(a: &Number, b: &Number) -> Option<Ordering> {
    match (integer(a), integer(b)) {
        (Some(a), Some(b)) => Some(a.cmp(&b)),
        (Some(a), None) => compare_integer_float(a, b.as_f64()?),
        (None, Some(b)) => compare_integer_float(b, a.as_f64()?).map(Ordering::reverse),
        (None, None) => a.as_f64()?.partial_cmp(&b.as_f64()?),
    }
}

/// `integer` lies in [-2^63, 2^64), the range of serde_json's integers.
fn compare_integer_float(integer: i128, float: f64) -> Option<Ordering> {
    const TWO_POW_64: f64 = 18_446_744_073_709_551_616.0;
    const MINUS_TWO_POW_63: f64 = -9_223_372_036_854_775_808.0;
    if float.is_nan() {
        return None;
    }
    if float >= TWO_POW_64 {
        return Some(Ordering::Less);
    }
    if float < MINUS_TWO_POW_63 {
        return Some(Ordering::Greater);
    }
    let whole = float.trunc();
    // In range and integral, so the conversion is exact.
    let whole_int = whole as i128;
    Some(match integer.cmp(&whole_int) {
        Ordering::Equal => {
            if float > whole {
                Ordering::Less
            } else if float < whole {
                Ordering::Greater
            } else {
                Ordering::Equal
            }
        }
        unequal => unequal,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::json;

    fn filter(value: Value) -> Filter {
        match Filter::parse(&value) {
            Ok(filter) => filter,
            Err(error) => panic!("{value} should parse: {error}"),
        }
    }

    fn matches(f: Value, doc: &Value) -> bool {
        filter(f).matches(doc)
    }

    fn error(value: Value) -> FilterError {
        match Filter::parse(&value) {
            Ok(_) => panic!("{value} should be rejected"),
            Err(error) => error,
        }
    }

    fn error_path(value: Value) -> String {
        error(value).path
    }

    fn event() -> Value {
        json!({
            "v": 1, "id": "evt_1", "type": "ADD_ARTIFACT_ALIAS", "team": "ml-team",
            "project": "wandb-registry-models", "author": "alice",
            "artifact": {
                "collection": "churn-model", "version": "v7", "type": "model",
                "aliases": ["latest", "production"], "tags": ["xgb"],
                "metadata": {"auc": 0.91, "epochs": 10, "note": null, "layers": [{"units": 64}, {"units": 32}]}
            },
            "alias": "production",
            "run": {"id": "r1", "name": "ablation-3", "state": "FAILED", "tags": ["baseline", "gpu"],
                    "config": {"lr": 0.001, "batch": 32, "opt": {"name": "adam"}}}
        })
    }

    #[test]
    fn empty_filter_matches_everything() {
        assert!(matches(json!({}), &event()));
        assert!(matches(json!({}), &json!({})));
        assert!(matches(json!({}), &json!(null)));
    }

    #[test]
    fn plain_value_means_eq() {
        let doc = event();
        assert!(matches(json!({"author": "alice"}), &doc));
        assert!(!matches(json!({"author": "bob"}), &doc));
        assert!(matches(json!({"author": "alice", "alias": "production"}), &doc));
        assert!(!matches(json!({"author": "alice", "alias": "latest"}), &doc));
        assert!(matches(json!({"run.config.opt": {"name": "adam"}}), &doc));
        assert!(!matches(json!({"run.config.opt": {"name": "sgd"}}), &doc));
        assert!(!matches(json!({"run.config.opt": {}}), &doc));
        assert!(matches(json!({"x": {}}), &json!({"x": {}})));
    }

    #[test]
    fn eq_and_ne() {
        let doc = event();
        assert!(matches(json!({"run.state": {"$eq": "FAILED"}}), &doc));
        assert!(!matches(json!({"run.state": {"$eq": "FINISHED"}}), &doc));
        assert!(matches(json!({"run.state": {"$ne": "FINISHED"}}), &doc));
        assert!(!matches(json!({"run.state": {"$ne": "FAILED"}}), &doc));
        assert!(matches(json!({"nope": {"$ne": "FAILED"}}), &doc));
        assert!(matches(json!({"v": {"$eq": true}}), &json!({"v": true})));
        assert!(!matches(json!({"v": {"$eq": 1}}), &json!({"v": true})));
        assert!(!matches(json!({"v": {"$eq": "1"}}), &json!({"v": 1})));
        // Operator-looking objects inside $eq are values.
        assert!(matches(json!({"v": {"$eq": {"$gt": 1}}}), &json!({"v": {"$gt": 1}})));
    }

    #[test]
    fn numbers_compare_by_value() {
        assert!(matches(json!({"n": 1}), &json!({"n": 1.0})));
        assert!(matches(json!({"n": 1.0}), &json!({"n": 1})));
        assert!(matches(json!({"n": -0.0}), &json!({"n": 0})));
        assert!(matches(json!({"n": {"$in": [2, 1.0]}}), &json!({"n": 1})));
        assert!(matches(json!({"n": [1, 2.0]}), &json!({"n": [1.0, 2]})));
        assert!(matches(json!({"n": {"a": 1}}), &json!({"n": {"a": 1.0}})));
        assert!(!matches(json!({"n": 1}), &json!({"n": 1.5})));
        assert!(matches(json!({"n": {"$gt": 1}}), &json!({"n": 1.5})));
        assert!(matches(json!({"n": {"$lt": 2}}), &json!({"n": 1.5})));
        assert!(matches(json!({"n": {"$gte": 1.0}}), &json!({"n": 1})));
        assert!(matches(json!({"n": {"$lte": -1}}), &json!({"n": -1.5})));
        assert!(matches(json!({"n": {"$gt": -2}}), &json!({"n": -1.5})));
        assert!(matches(json!({"n": {"$gt": 18446744073709551615u64}}), &json!({"n": 1e300})));
        assert!(matches(json!({"n": {"$lt": -9223372036854775808i64}}), &json!({"n": -1e300})));
        assert!(matches(json!({"n": {"$gt": u64::MAX - 1}}), &json!({"n": u64::MAX})));
        assert!(matches(json!({"n": {"$lt": 0}}), &json!({"n": i64::MIN})));
    }

    #[test]
    fn large_integers_are_not_rounded() {
        let big = 9_007_199_254_740_993_i64; // 2^53 + 1, not representable as f64
        assert!(!matches(json!({"n": 9_007_199_254_740_992.0}), &json!({"n": big})));
        assert!(matches(json!({"n": {"$gt": 9_007_199_254_740_992.0}}), &json!({"n": big})));
        assert!(matches(json!({"n": big}), &json!({"n": big})));
        assert!(matches(json!({"n": 9_007_199_254_740_992.0}), &json!({"n": 9_007_199_254_740_992_i64})));
    }

    #[test]
    fn comparisons() {
        let doc = event();
        assert!(matches(json!({"artifact.metadata.auc": {"$gt": 0.9}}), &doc));
        assert!(!matches(json!({"artifact.metadata.auc": {"$gt": 0.91}}), &doc));
        assert!(matches(json!({"artifact.metadata.auc": {"$gte": 0.91}}), &doc));
        assert!(matches(json!({"artifact.metadata.auc": {"$lt": 1}}), &doc));
        assert!(!matches(json!({"artifact.metadata.auc": {"$lte": 0.9}}), &doc));
        assert!(matches(json!({"artifact.metadata.epochs": {"$gte": 10, "$lt": 11}}), &doc));
        assert!(!matches(json!({"artifact.metadata.epochs": {"$gt": 5, "$lt": 10}}), &doc));
        // Strings order by code point.
        assert!(matches(json!({"author": {"$gt": "alex"}}), &doc));
        assert!(matches(json!({"author": {"$lt": "b"}}), &doc));
        assert!(matches(json!({"s": {"$lt": "a"}}), &json!({"s": "B"})));
        assert!(matches(json!({"author": {"$gte": "alice", "$lte": "alice"}}), &doc));
        // Mismatched types and missing fields are false.
        assert!(!matches(json!({"author": {"$gt": 1}}), &doc));
        assert!(!matches(json!({"author": {"$lt": 1}}), &doc));
        assert!(!matches(json!({"artifact.metadata.auc": {"$lt": "z"}}), &doc));
        assert!(!matches(json!({"v": {"$gte": 0}}), &json!({"v": true})));
        assert!(!matches(json!({"v": {"$gte": 0}}), &json!({"v": null})));
        assert!(!matches(json!({"nope": {"$lt": 100}}), &doc));
        assert!(!matches(json!({"nope": {"$gt": -100}}), &doc));
    }

    #[test]
    fn in_and_nin() {
        let doc = event();
        assert!(matches(json!({"author": {"$in": ["bob", "alice"]}}), &doc));
        assert!(!matches(json!({"author": {"$in": ["bob"]}}), &doc));
        assert!(!matches(json!({"author": {"$in": []}}), &doc));
        assert!(matches(json!({"author": {"$nin": ["bob"]}}), &doc));
        assert!(!matches(json!({"author": {"$nin": ["bob", "alice"]}}), &doc));
        assert!(matches(json!({"author": {"$nin": []}}), &doc));
        assert!(matches(json!({"nope": {"$nin": ["bob"]}}), &doc));
        assert!(!matches(json!({"nope": {"$in": ["bob"]}}), &doc));
        assert!(matches(json!({"nope": {"$in": ["bob", null]}}), &doc));
        assert!(!matches(json!({"nope": {"$nin": [null]}}), &doc));
    }

    #[test]
    fn exists() {
        let doc = event();
        assert!(matches(json!({"run.name": {"$exists": true}}), &doc));
        assert!(!matches(json!({"run.name": {"$exists": false}}), &doc));
        assert!(matches(json!({"run.url": {"$exists": false}}), &doc));
        assert!(!matches(json!({"run.url": {"$exists": true}}), &doc));
        // A null value exists.
        assert!(matches(json!({"artifact.metadata.note": {"$exists": true}}), &doc));
        // Through a scalar: missing.
        assert!(matches(json!({"author.name": {"$exists": false}}), &doc));
    }

    #[test]
    fn null_matches_missing_and_ne_null_means_present() {
        let doc = event();
        assert!(matches(json!({"run.url": null}), &doc));
        assert!(matches(json!({"run.url": {"$eq": null}}), &doc));
        assert!(matches(json!({"artifact.metadata.note": null}), &doc));
        assert!(!matches(json!({"author": null}), &doc));
        assert!(matches(json!({"author": {"$ne": null}}), &doc));
        assert!(!matches(json!({"run.url": {"$ne": null}}), &doc));
        assert!(!matches(json!({"artifact.metadata.note": {"$ne": null}}), &doc));
        assert!(matches(json!({"t": null}), &json!({"t": [1, null]})));
        assert!(!matches(json!({"t": {"$ne": null}}), &json!({"t": [1, null]})));
    }

    #[test]
    fn regex_and_options() {
        let doc = event();
        assert!(matches(json!({"run.name": {"$regex": "^ablation-"}}), &doc));
        assert!(!matches(json!({"run.name": {"$regex": "^baseline"}}), &doc));
        assert!(matches(json!({"run.name": {"$regex": "tion-\\d"}}), &doc), "unanchored search");
        assert!(!matches(json!({"run.name": {"$regex": "^ABLATION"}}), &doc));
        assert!(matches(json!({"run.name": {"$regex": "^ABLATION", "$options": "i"}}), &doc));
        assert!(matches(json!({"run.name": {"$options": "i", "$regex": "^ABLATION"}}), &doc));
        assert!(matches(json!({"run.name": {"$regex": "(?i)^ABLATION"}}), &doc));
        assert!(matches(json!({"run.name": {"$regex": "^ab lation", "$options": "x"}}), &doc));
        let two_lines = json!({"s": "first\nsecond"});
        assert!(!matches(json!({"s": {"$regex": "^second"}}), &two_lines));
        assert!(matches(json!({"s": {"$regex": "^second", "$options": "m"}}), &two_lines));
        assert!(!matches(json!({"s": {"$regex": "first.second"}}), &two_lines));
        assert!(matches(json!({"s": {"$regex": "first.second", "$options": "s"}}), &two_lines));
        assert!(matches(json!({"s": {"$regex": "^SECOND$", "$options": "mi"}}), &two_lines));
        // Only strings match.
        assert!(!matches(json!({"n": {"$regex": "1"}}), &json!({"n": 1})));
        assert!(!matches(json!({"nope": {"$regex": ""}}), &doc));
        assert!(matches(json!({"author": {"$regex": ""}}), &doc));
    }

    #[test]
    fn contains() {
        let doc = event();
        assert!(matches(json!({"run.name": {"$contains": "lation"}}), &doc));
        assert!(matches(json!({"run.name": {"$contains": ""}}), &doc));
        assert!(!matches(json!({"run.name": {"$contains": "LATION"}}), &doc));
        assert!(matches(json!({"artifact.aliases": {"$contains": "production"}}), &doc));
        assert!(!matches(json!({"artifact.aliases": {"$contains": "prod"}}), &doc), "membership, not substring");
        assert!(matches(json!({"n": {"$contains": 1.0}}), &json!({"n": [3, 1]})));
        assert!(matches(json!({"n": {"$contains": [1]}}), &json!({"n": [[1], 2]})));
        assert!(!matches(json!({"n": {"$contains": 1}}), &json!({"n": 1})));
        assert!(!matches(json!({"n": {"$contains": 1}}), &json!({"n": "1"})));
        assert!(!matches(json!({"n": {"$contains": "a"}}), &json!({"n": {"a": 1}})));
        assert!(!matches(json!({"nope": {"$contains": "a"}}), &doc));
    }

    #[test]
    fn not() {
        let doc = event();
        assert!(!matches(json!({"run.name": {"$not": {"$regex": "^ablation"}}}), &doc));
        assert!(matches(json!({"run.name": {"$not": {"$regex": "^x"}}}), &doc));
        assert!(matches(json!({"nope": {"$not": {"$regex": "^x"}}}), &doc), "missing fields pass $not");
        assert!(matches(json!({"artifact.metadata.auc": {"$not": {"$gt": 0.95}}}), &doc));
        // $not negates the conjunction of its operators.
        assert!(!matches(json!({"artifact.metadata.auc": {"$not": {"$gt": 0.5, "$lt": 1}}}), &doc));
        assert!(matches(json!({"artifact.metadata.auc": {"$not": {"$gt": 0.5, "$lt": 0.6}}}), &doc));
        assert!(matches(json!({"n": {"$not": {"$not": {"$eq": 1}}}}), &json!({"n": 1})));
        assert!(matches(json!({"run.tags": {"$not": {"$in": ["cpu"]}}}), &doc));
    }

    #[test]
    fn logical_operators() {
        let doc = event();
        assert!(matches(json!({"$and": [{"author": "alice"}, {"run.state": "FAILED"}]}), &doc));
        assert!(!matches(json!({"$and": [{"author": "alice"}, {"run.state": "RUNNING"}]}), &doc));
        assert!(matches(json!({"$or": [{"author": "bob"}, {"run.state": "FAILED"}]}), &doc));
        assert!(!matches(json!({"$or": [{"author": "bob"}, {"run.state": "RUNNING"}]}), &doc));
        assert!(matches(json!({"$nor": [{"author": "bob"}, {"run.state": "RUNNING"}]}), &doc));
        assert!(!matches(json!({"$nor": [{"author": "bob"}, {"run.state": "FAILED"}]}), &doc));
        assert!(matches(json!({"$or": [{}]}), &doc));
        assert!(!matches(json!({"$nor": [{}]}), &doc));
        assert!(matches(
            json!({"author": "alice", "$or": [{"$and": [{"run.tags": "gpu"}, {"artifact.metadata.auc": {"$gt": 0.9}}]}, {"alias": "x"}]}),
            &doc
        ));
        assert!(!matches(json!({"author": "bob", "$or": [{"alias": "production"}]}), &doc));
    }

    #[test]
    fn array_fields_match_any_element_or_the_whole_array() {
        let doc = event();
        assert!(matches(json!({"run.tags": "gpu"}), &doc));
        assert!(!matches(json!({"run.tags": "tpu"}), &doc));
        assert!(matches(json!({"run.tags": ["baseline", "gpu"]}), &doc));
        assert!(!matches(json!({"run.tags": ["gpu", "baseline"]}), &doc));
        assert!(!matches(json!({"run.tags": ["gpu"]}), &doc));
        assert!(matches(json!({"run.tags": {"$in": ["tpu", "gpu"]}}), &doc));
        assert!(matches(json!({"run.tags": {"$regex": "^base"}}), &doc));
        assert!(!matches(json!({"run.tags": {"$ne": "gpu"}}), &doc));
        assert!(matches(json!({"run.tags": {"$ne": "tpu"}}), &doc));
        assert!(!matches(json!({"run.tags": {"$nin": ["tpu", "gpu"]}}), &doc));
        assert!(matches(json!({"run.tags": {"$nin": ["tpu"]}}), &doc));
        assert!(matches(json!({"xs": {"$gt": 2}}), &json!({"xs": [1, 3]})));
        assert!(!matches(json!({"xs": {"$gt": 3}}), &json!({"xs": [1, 3]})));
        // Each operator picks its own element, as in MongoDB.
        assert!(matches(json!({"xs": {"$gt": 2, "$lt": 2}}), &json!({"xs": [1, 3]})));
        assert!(matches(json!({"xs": []}), &json!({"xs": []})));
        assert!(!matches(json!({"xs": null}), &json!({"xs": []})));
        // One level only: elements of nested arrays are not candidates.
        assert!(!matches(json!({"xs": 1}), &json!({"xs": [[1]]})));
        assert!(matches(json!({"xs": [1]}), &json!({"xs": [[1]]})));
    }

    #[test]
    fn dotted_paths() {
        let doc = event();
        assert!(matches(json!({"artifact.collection": "churn-model"}), &doc));
        assert!(matches(json!({"run.config.opt.name": "adam"}), &doc));
        assert!(!matches(json!({"run.config.opt.name.x": {"$exists": true}}), &doc));
        // Arrays of objects: the field is collected from each element.
        assert!(matches(json!({"artifact.metadata.layers.units": 32}), &doc));
        assert!(matches(json!({"artifact.metadata.layers.units": {"$gt": 60}}), &doc));
        assert!(!matches(json!({"artifact.metadata.layers.units": {"$gt": 64}}), &doc));
        assert!(!matches(json!({"artifact.metadata.layers.units": {"$ne": 64}}), &doc));
        assert!(matches(json!({"artifact.metadata.layers.units": {"$exists": true}}), &doc));
        assert!(matches(json!({"artifact.metadata.layers.kind": {"$exists": false}}), &doc));
        let nested = json!({"a": [{"b": [{"c": 1}, {"c": 2}]}, {"b": {"c": 3}}, 7, {"x": 1}]});
        assert!(matches(json!({"a.b.c": 2}), &nested));
        assert!(matches(json!({"a.b.c": 3}), &nested));
        assert!(!matches(json!({"a.b.c": 4}), &nested));
        // Numeric segments are keys, not indexes.
        assert!(!matches(json!({"run.tags.0": "baseline"}), &doc));
        assert!(matches(json!({"m.0": "x"}), &json!({"m": {"0": "x"}})));
        // A non-object document has no fields.
        assert!(!matches(json!({"a": {"$exists": true}}), &json!([{"a": 1}])));
        assert!(matches(json!({"a": null}), &json!("text")));
    }

    #[test]
    fn missing_fields() {
        let doc = event();
        for op in [
            json!({"$eq": 1}),
            json!({"$gt": 0}),
            json!({"$lt": 0}),
            json!({"$in": [1]}),
            json!({"$regex": ""}),
            json!({"$contains": ""}),
            json!({"$exists": true}),
        ] {
            assert!(!matches(json!({"absent": op.clone()}), &doc), "{op}");
            assert!(matches(json!({"absent": {"$not": op.clone()}}), &doc), "{op}");
        }
        assert!(matches(json!({"absent": {"$ne": 1}}), &doc));
        assert!(matches(json!({"absent": {"$nin": [1]}}), &doc));
        assert!(matches(json!({"absent": {"$exists": false}}), &doc));
    }

    #[test]
    fn error_paths() {
        let cases = [
            (json!([]), ""),
            (json!(null), ""),
            (json!("run.name"), ""),
            (json!({"$or": {"a": 1}}), "$or"),
            (json!({"$or": []}), "$or"),
            (json!({"$nor": null}), "$nor"),
            (json!({"$and": [{"a": 1}, 2]}), "$and[1]"),
            (json!({"$and": [{}, {"author": {"$in": "alice"}}]}), "$and[1].author.$in"),
            (json!({"$or": [{"$and": [{"x": {"$nin": 3}}]}]}), "$or[0].$and[0].x.$nin"),
            (json!({"run.name": {"$regex": "("}}), "run.name.$regex"),
            (json!({"run.name": {"$regex": 5}}), "run.name.$regex"),
            (json!({"run.name": {"$regex": "(?<=a)b"}}), "run.name.$regex"),
            (json!({"run.name": {"$regex": "a", "$options": "g"}}), "run.name.$options"),
            (json!({"run.name": {"$regex": "a", "$options": 1}}), "run.name.$options"),
            (json!({"run.name": {"$options": "i"}}), "run.name.$options"),
            (json!({"a": {"$exists": 1}}), "a.$exists"),
            (json!({"a": {"$exists": "true"}}), "a.$exists"),
            (json!({"a": {"$gt": null}}), "a.$gt"),
            (json!({"a": {"$gte": true}}), "a.$gte"),
            (json!({"a": {"$lt": [1]}}), "a.$lt"),
            (json!({"a": {"$lte": {}}}), "a.$lte"),
            (json!({"$foo": 1}), "$foo"),
            (json!({"$where": "1"}), "$where"),
            (json!({"a": {"$foo": 1}}), "a.$foo"),
            (json!({"a": {"$eq": 1, "$size": 1}}), "a.$size"),
            (json!({"$eq": 1}), "$eq"),
            (json!({"$not": {"a": 1}}), "$not"),
            (json!({"a": {"$and": [{"b": 1}]}}), "a.$and"),
            (json!({"a": {"$not": "^x"}}), "a.$not"),
            (json!({"a": {"$not": {}}}), "a.$not"),
            (json!({"a": {"$not": {"b": 1}}}), "a.$not"),
            (json!({"a": {"$not": {"$regex": "["}}}), "a.$not.$regex"),
            (json!({"a": {"$not": {"$bad": 1}}}), "a.$not.$bad"),
            (json!({"a": {"$gt": 1, "b": 2}}), "a"),
            (json!({"a..b": 1}), "a..b"),
            (json!({"": 1}), ""),
            (json!({"a.": 1}), "a."),
        ];
        for (value, path) in cases {
            let err = error(value.clone());
            assert_eq!(err.path, path, "{value}: {err:?}");
            assert!(!err.message.is_empty());
        }
    }

    #[test]
    fn error_messages() {
        assert_eq!(error(json!([])), FilterError { path: String::new(), message: "filter must be an object".into() });
        let err = error(json!({"run.name": {"$regex": "("}}));
        assert!(err.to_string().starts_with("run.name.$regex: invalid regular expression"), "{err}");
        let err = error(json!({"$foo": 1}));
        assert_eq!(err.to_string(), "$foo: unknown operator $foo");
        let err = error(json!({"a": {"$foo": 1}}));
        assert_eq!(err.message, "unknown operator $foo");
        let err = error(json!({"$or": 1}));
        assert_eq!(err.message, "must be a non-empty array of filter objects");
        let err = error(json!({"a": {"$in": 1}}));
        assert_eq!(err.message, "must be an array");
    }

    #[test]
    fn hostile_regex_is_rejected_quickly() {
        let start = std::time::Instant::now();
        let err = error(json!({"a": {"$regex": "(\\w{100}){100}"}}));
        assert_eq!(err.path, "a.$regex");
        assert!(err.message.contains("too large"), "{err}");
        let err = error(json!({"a": {"$regex": "a{1000}{1000}"}}));
        assert_eq!(err.path, "a.$regex");
        assert!(start.elapsed() < std::time::Duration::from_secs(5));
        // Catastrophic backtracking patterns elsewhere run in linear time here.
        let f = filter(json!({"a": {"$regex": "^(a+)+$"}}));
        let text = format!("{}b", "a".repeat(10_000));
        assert!(!f.matches(&json!({"a": text})));
    }

    fn nested_and(levels: usize) -> Value {
        let mut value = json!({"a": 1});
        for _ in 0..levels {
            value = json!({"$and": [value]});
        }
        value
    }

    #[test]
    fn depth_is_limited() {
        // Each $and adds two levels (array and object): 15 of them reach level 31, plus the
        // field's own operator object at level 32.
        let f = nested_and(15);
        assert!(Filter::parse(&f).is_ok());
        // Root 1, then 14 × ($or array, filter object) to level 29, the operator object 30,
        // $not 31, and the $in array 32.
        let ok = json!({"a": {"$not": {"$in": [1]}}});
        let mut deep = ok;
        for _ in 0..14 {
            deep = json!({"$or": [deep]});
        }
        assert!(Filter::parse(&deep).is_ok(), "exactly {MAX_DEPTH} levels");
        let deeper = json!({"$or": [deep]});
        let err = error(deeper);
        assert!(err.message.contains("deeper than 32"), "{err}");
        assert!(err.path.starts_with("$or[0].$or[0]"), "{err}");

        let err = error(nested_and(40));
        assert!(err.path.starts_with("$and[0].$and[0]."), "{err}");

        // A hostile depth is rejected without exhausting the stack. (serde_json's parser stops
        // at 128 levels already; these are built by hand, and kept small enough that dropping
        // them, which recurses, fits a test thread's stack.)
        let hostile = nested_and(500);
        assert!(Filter::parse(&hostile).is_err());
        let mut not = json!({"$eq": 1});
        for _ in 0..1_000 {
            not = json!({"$not": not});
        }
        assert!(Filter::parse(&json!({"a": not})).is_err());
    }

    #[test]
    fn literal_depth_is_limited() {
        let mut literal = json!(1);
        for _ in 0..29 {
            literal = json!([literal]);
        }
        // Root 1, operator object 2, the literal's 29 arrays 3..=31.
        assert!(Filter::parse(&json!({"a": {"$eq": literal.clone()}})).is_ok());
        assert!(Filter::parse(&json!({"a": literal.clone()})).is_ok());
        let literal = json!([[[literal]]]);
        assert_eq!(error_path(json!({"a": {"$eq": literal.clone()}})), "a.$eq");
        assert_eq!(error_path(json!({"a": {"$in": [literal.clone()]}})), "a.$in");
        assert_eq!(error_path(json!({"a": {"$contains": literal.clone()}})), "a.$contains");
        assert_eq!(error_path(json!({"a": literal})), "a");
        let mut hostile = json!(1);
        for _ in 0..1_000 {
            hostile = json!({"k": hostile});
        }
        assert_eq!(error_path(json!({"a": {"$ne": hostile}})), "a.$ne");
    }

    #[test]
    fn compiled_filter_is_reusable_and_cloneable() {
        let f = filter(json!({"run.name": {"$regex": "^ablation-"}, "author": {"$ne": null}}));
        let g = f.clone();
        let doc = event();
        for _ in 0..3 {
            assert!(f.matches(&doc));
            assert!(g.matches(&doc));
        }
        assert!(!f.matches(&json!({"run": {"name": "ablation-1"}})));
    }

    #[test]
    fn integer_float_ordering_edges() {
        assert_eq!(compare_integer_float(2, 2.5), Some(Ordering::Less));
        assert_eq!(compare_integer_float(3, 2.5), Some(Ordering::Greater));
        assert_eq!(compare_integer_float(-2, -2.5), Some(Ordering::Greater));
        assert_eq!(compare_integer_float(-3, -2.5), Some(Ordering::Less));
        assert_eq!(compare_integer_float(0, -0.0), Some(Ordering::Equal));
        assert_eq!(compare_integer_float(0, f64::NAN), None);
        assert_eq!(compare_integer_float(i128::from(u64::MAX), 18_446_744_073_709_551_616.0), Some(Ordering::Less));
        assert_eq!(compare_integer_float(i128::from(i64::MIN), -9_223_372_036_854_775_808.0), Some(Ordering::Equal));
        assert_eq!(compare_integer_float(i128::from(i64::MIN), f64::NEG_INFINITY), Some(Ordering::Greater));
    }

    /// A deliberately naive evaluator: interprets the raw filter JSON on every call, clones
    /// freely and compares numbers as f64 (the generated numbers are small, so that is exact).
    /// It assumes the filter is valid.
    mod reference {
        use regex::Regex;
        use serde_json::Value;
        use std::cmp::Ordering;

        pub fn matches(filter: &Value, doc: &Value) -> bool {
            filter.as_object().unwrap().iter().all(|(key, value)| match key.as_str() {
                "$and" => value.as_array().unwrap().iter().all(|f| matches(f, doc)),
                "$or" => value.as_array().unwrap().iter().any(|f| matches(f, doc)),
                "$nor" => !value.as_array().unwrap().iter().any(|f| matches(f, doc)),
                path => field(&lookup(doc, path), value),
            })
        }

        fn lookup(doc: &Value, path: &str) -> Vec<Value> {
            if !doc.is_object() {
                return Vec::new();
            }
            let mut found = vec![doc.clone()];
            for segment in path.split('.') {
                let mut next = Vec::new();
                for value in found {
                    match value {
                        Value::Object(o) => {
                            if let Some(v) = o.get(segment) {
                                next.push(v.clone());
                            }
                        }
                        Value::Array(items) => {
                            for item in items {
                                if let Value::Object(o) = item
                                    && let Some(v) = o.get(segment)
                                {
                                    next.push(v.clone());
                                }
                            }
                        }
                        _ => {}
                    }
                }
                found = next;
            }
            found
        }

        fn is_operator_expression(value: &Value) -> bool {
            match value {
                Value::Object(o) => !o.is_empty() && o.keys().all(|k| k.starts_with('$')),
                _ => false,
            }
        }

        fn field(found: &[Value], condition: &Value) -> bool {
            if is_operator_expression(condition) {
                operators(found, condition)
            } else {
                operator(found, "$eq", condition, None)
            }
        }

        fn operators(found: &[Value], expression: &Value) -> bool {
            let expression = expression.as_object().unwrap();
            let options = expression.get("$options").map(|o| o.as_str().unwrap());
            expression
                .iter()
                .filter(|(name, _)| name.as_str() != "$options")
                .all(|(name, operand)| operator(found, name, operand, options))
        }

        fn flatten(found: &[Value]) -> Vec<Value> {
            let mut all = Vec::new();
            for value in found {
                all.push(value.clone());
                if let Value::Array(items) = value {
                    all.extend(items.iter().cloned());
                }
            }
            all
        }

        fn operator(found: &[Value], name: &str, operand: &Value, options: Option<&str>) -> bool {
            let all = flatten(found);
            let ordered = |want: &[Ordering]| all.iter().any(|c| order(c, operand).is_some_and(|o| want.contains(&o)));
            match name {
                "$eq" => {
                    if found.is_empty() {
                        operand.is_null()
                    } else {
                        all.iter().any(|c| same(c, operand))
                    }
                }
                "$ne" => !operator(found, "$eq", operand, None),
                "$in" => operand.as_array().unwrap().iter().any(|o| operator(found, "$eq", o, None)),
                "$nin" => !operator(found, "$in", operand, None),
                "$gt" => ordered(&[Ordering::Greater]),
                "$gte" => ordered(&[Ordering::Greater, Ordering::Equal]),
                "$lt" => ordered(&[Ordering::Less]),
                "$lte" => ordered(&[Ordering::Less, Ordering::Equal]),
                "$exists" => found.is_empty() != operand.as_bool().unwrap(),
                "$regex" => {
                    let pattern = operand.as_str().unwrap();
                    let pattern = match options {
                        Some(flags) if !flags.is_empty() => format!("(?{flags}){pattern}"),
                        _ => pattern.to_owned(),
                    };
                    let regex = Regex::new(&pattern).unwrap();
                    all.iter().any(|c| c.as_str().is_some_and(|s| regex.is_match(s)))
                }
                "$contains" => found.iter().any(|value| match value {
                    Value::String(s) => operand.as_str().is_some_and(|part| s.contains(part)),
                    Value::Array(items) => items.iter().any(|item| same(item, operand)),
                    _ => false,
                }),
                "$not" => !operators(found, operand),
                other => panic!("reference does not know {other}"),
            }
        }

        fn same(a: &Value, b: &Value) -> bool {
            match (a, b) {
                (Value::Number(x), Value::Number(y)) => x.as_f64() == y.as_f64(),
                (Value::Array(x), Value::Array(y)) => x.len() == y.len() && x.iter().zip(y).all(|(p, q)| same(p, q)),
                (Value::Object(x), Value::Object(y)) => {
                    x.len() == y.len() && x.iter().all(|(k, v)| y.get(k).is_some_and(|w| same(v, w)))
                }
                _ => a == b,
            }
        }

        fn order(a: &Value, b: &Value) -> Option<Ordering> {
            match (a, b) {
                (Value::Number(x), Value::Number(y)) => x.as_f64()?.partial_cmp(&y.as_f64()?),
                (Value::String(x), Value::String(y)) => Some(x.cmp(y)),
                _ => None,
            }
        }
    }

    fn scalar() -> impl Strategy<Value = Value> {
        prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            (-3i64..=3).prop_map(Value::from),
            prop::sample::select(vec![-1.5, 0.0, 1.0, 2.0, 2.5]).prop_map(Value::from),
            prop::sample::select(vec!["", "a", "ab", "abc", "b", "B", "x-1", "a b", "line\nnext"])
                .prop_map(Value::from),
        ]
    }

    fn small_value() -> impl Strategy<Value = Value> {
        prop_oneof![
            4 => scalar(),
            1 => prop::collection::vec(scalar(), 0..3).prop_map(Value::from),
        ]
    }

    fn object_of(entries: Vec<(&'static str, Option<Value>)>) -> Value {
        Value::Object(entries.into_iter().filter_map(|(k, v)| Some((k.to_owned(), v?))).collect())
    }

    /// Most fields present, so that operators usually have something to decide on.
    fn present<S: Strategy>(strategy: S) -> impl Strategy<Value = Option<S::Value>> {
        prop::option::weighted(0.85, strategy)
    }

    fn document() -> impl Strategy<Value = Value> {
        let nested = (present(scalar()), present(scalar()), present(prop::collection::vec(small_value(), 0..4)))
            .prop_map(|(x, y, arr)| object_of(vec![("x", x), ("y", y), ("arr", arr.map(Value::from))]));
        let item = (present(small_value()), present(scalar())).prop_map(|(x, z)| object_of(vec![("x", x), ("z", z)]));
        (
            present(small_value()),
            present(scalar()),
            present(prop::collection::vec(scalar(), 0..4)),
            present(nested),
            present(prop::collection::vec(item, 0..3)),
        )
            .prop_map(|(a, b, tags, obj, items)| {
                object_of(vec![
                    ("a", a),
                    ("b", b),
                    ("tags", tags.map(Value::from)),
                    ("obj", obj),
                    ("items", items.map(Value::from)),
                ])
            })
    }

    fn field_path() -> impl Strategy<Value = &'static str> {
        prop::sample::select(vec![
            "a",
            "b",
            "tags",
            "obj",
            "obj.x",
            "obj.y",
            "obj.arr",
            "items",
            "items.x",
            "items.z",
            "missing",
            "obj.missing.z",
            "a.x",
        ])
    }

    fn orderable_operand() -> impl Strategy<Value = Value> {
        prop_oneof![
            (-3i64..=3).prop_map(Value::from),
            prop::sample::select(vec![-1.5, 0.5, 2.0]).prop_map(Value::from),
            prop::sample::select(vec!["", "a", "ab", "b", "B"]).prop_map(Value::from),
        ]
    }

    fn regex_operator() -> impl Strategy<Value = Value> {
        (
            prop::sample::select(vec!["^a", "b$", "A", "^$", "a.c", "x-\\d", "^a b", "^next", "line$", "e.n"]),
            prop::sample::select(vec![
                None,
                Some(""),
                Some("i"),
                Some("m"),
                Some("s"),
                Some("x"),
                Some("im"),
                Some("msix"),
            ]),
        )
            .prop_map(|(pattern, options)| match options {
                Some(o) => json!({"$regex": pattern, "$options": o}),
                None => json!({"$regex": pattern}),
            })
    }

    fn single_operator() -> impl Strategy<Value = Value> {
        prop_oneof![
            small_value().prop_map(|v| json!({"$eq": v})),
            small_value().prop_map(|v| json!({"$ne": v})),
            (prop::sample::select(vec!["$gt", "$gte", "$lt", "$lte"]), orderable_operand())
                .prop_map(|(op, v)| json!({ op: v })),
            (any::<bool>(), prop::collection::vec(small_value(), 0..3))
                .prop_map(|(neg, vs)| { if neg { json!({"$nin": vs}) } else { json!({"$in": vs}) } }),
            any::<bool>().prop_map(|b| json!({"$exists": b})),
            regex_operator(),
            small_value().prop_map(|v| json!({"$contains": v})),
        ]
    }

    fn operator_expression() -> impl Strategy<Value = Value> {
        let combined = prop::collection::vec(single_operator(), 2..4).prop_map(|parts| {
            let mut all = serde_json::Map::new();
            for part in parts {
                if let Value::Object(o) = part {
                    all.extend(o);
                }
            }
            Value::Object(all)
        });
        let flat = prop_oneof![3 => single_operator(), 1 => combined];
        flat.prop_recursive(2, 6, 2, |inner| {
            prop_oneof![
                inner.clone().prop_map(|e| json!({"$not": e})),
                (inner.clone(), inner).prop_map(|(a, b)| {
                    let mut all = a.as_object().cloned().unwrap_or_default();
                    all.insert("$not".into(), b);
                    Value::Object(all)
                }),
            ]
        })
    }

    fn condition() -> impl Strategy<Value = Value> {
        prop_oneof![
            2 => small_value(),
            1 => Just(json!({})),
            6 => operator_expression(),
        ]
    }

    fn filter_strategy() -> impl Strategy<Value = Value> {
        let leaf = prop::collection::vec((field_path(), condition()), 1..3)
            .prop_map(|entries| Value::Object(entries.into_iter().map(|(k, v)| (k.to_owned(), v)).collect()));
        leaf.prop_recursive(3, 16, 3, |inner| {
            (
                prop::sample::select(vec!["$and", "$or", "$nor"]),
                prop::collection::vec(inner.clone(), 1..4),
                prop::option::of((field_path(), condition())),
            )
                .prop_map(|(op, subs, extra)| {
                    let mut object = serde_json::Map::new();
                    object.insert(op.to_owned(), Value::from(subs));
                    if let Some((path, cond)) = extra {
                        object.insert(path.to_owned(), cond);
                    }
                    Value::Object(object)
                })
        })
    }

    /// Arbitrary JSON that uses the filter vocabulary, valid or not.
    fn wild_json() -> impl Strategy<Value = Value> {
        let key = prop::sample::select(vec![
            "$and",
            "$or",
            "$nor",
            "$not",
            "$eq",
            "$ne",
            "$gt",
            "$gte",
            "$lt",
            "$lte",
            "$in",
            "$nin",
            "$exists",
            "$regex",
            "$options",
            "$contains",
            "$foo",
            "a",
            "b",
            "tags",
            "obj.x",
            "items.x",
            "a..b",
            "",
            "i",
            "(",
        ]);
        scalar().prop_recursive(5, 40, 4, move |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..4).prop_map(Value::from),
                prop::collection::vec((key.clone(), inner), 0..4).prop_map(|entries| {
                    Value::Object(entries.into_iter().map(|(k, v)| (k.to_owned(), v)).collect())
                }),
            ]
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(1_000))]

        #[test]
        fn compiled_filter_agrees_with_reference(f in filter_strategy(), docs in prop::collection::vec(document(), 1..6)) {
            let compiled = Filter::parse(&f);
            prop_assert!(compiled.is_ok(), "{} rejected: {:?}", f, compiled.err());
            let compiled = compiled.unwrap();
            for doc in &docs {
                prop_assert_eq!(compiled.matches(doc), reference::matches(&f, doc), "filter {} doc {}", f, doc);
            }
        }

        #[test]
        fn single_operator_agrees_with_reference(
            path in field_path(),
            condition in prop_oneof![4 => single_operator(), 1 => small_value()],
            docs in prop::collection::vec(document(), 1..8),
        ) {
            let f = json!({ path: condition });
            let compiled = Filter::parse(&f);
            prop_assert!(compiled.is_ok(), "{} rejected: {:?}", f, compiled.err());
            let compiled = compiled.unwrap();
            for doc in &docs {
                prop_assert_eq!(compiled.matches(doc), reference::matches(&f, doc), "filter {} doc {}", f, doc);
            }
        }

        #[test]
        fn regex_agrees_with_reference(
            operator in regex_operator(),
            texts in prop::collection::vec(
                prop::sample::select(vec!["", "a", "ab", "abc", "B", "x-1", "a b", "A B", "line\nnext", "linE\nNext"]),
                0..3,
            ),
            as_array in any::<bool>(),
        ) {
            let f = json!({"a": operator});
            let doc = if as_array || texts.is_empty() {
                json!({"a": texts})
            } else {
                json!({"a": texts[0]})
            };
            let compiled = Filter::parse(&f);
            prop_assert!(compiled.is_ok(), "{} rejected: {:?}", f, compiled.err());
            prop_assert_eq!(compiled.unwrap().matches(&doc), reference::matches(&f, &doc), "filter {} doc {}", f, doc);
        }

        #[test]
        fn any_json_parses_or_fails_cleanly(f in wild_json(), doc in document()) {
            match Filter::parse(&f) {
                Ok(compiled) => {
                    prop_assert_eq!(compiled.matches(&doc), reference::matches(&f, &doc), "filter {} doc {}", f, doc);
                }
                Err(error) => prop_assert!(!error.message.is_empty()),
            }
        }
    }
}
