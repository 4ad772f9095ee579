//! Reading parsed YAML values for messages: what kind of value a user wrote, shown briefly.
use serde_norway::Value;

/// The value behind any `!tag`s.
pub(crate) fn untag(value: &Value) -> &Value {
    match value {
        Value::Tagged(tagged) => untag(&tagged.value),
        other => other,
    }
}

/// "a list", "a number", ...: what the user wrote where something else was expected.
pub(crate) fn kind_of(value: &Value) -> &'static str {
    match untag(value) {
        Value::Null => "nothing",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Sequence(_) => "a list",
        Value::Mapping(_) => "a mapping",
        Value::Tagged(_) => "a tagged value",
    }
}

/// Like [`kind_of`], but shows scalar values themselves.
pub(crate) fn describe(value: &Value) -> String {
    match untag(value) {
        Value::Bool(b) => format!("'{b}'"),
        Value::Number(n) => format!("'{n}'"),
        Value::String(s) => format!("'{s}'"),
        other => kind_of(other).to_string(),
    }
}
