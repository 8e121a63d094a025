//! Reading spanned TOML values into typed values, with errors located by line.
//!
//! The recipe is walked by hand over `toml::de::DeTable` rather than derived with
//! serde: serde's messages ("invalid type: integer, expected a string") cannot say
//! what a recipe author should write, and serde cannot tell a later version's
//! section from a typo.

use std::collections::BTreeMap;
use std::ops::Range;
use std::path::Path;

use toml::Spanned;
use toml::de::{DeTable, DeValue};

use super::error::{Location, NameError, RecipeError};

/// A TOML value with its byte span in the recipe text.
pub(super) type Value<'i> = Spanned<DeValue<'i>>;

/// The keys a table accepts.
pub(super) struct Keys {
    /// Keys this version reads.
    pub known: &'static [&'static str],
    /// Keys of a later version of the format: refused with a "not supported by this
    /// version" message instead of "unknown key". Supporting one means moving it to
    /// `known` and reading it.
    pub later: &'static [&'static str],
}

/// The recipe text and its name, to turn byte spans into located errors.
pub(super) struct Doc<'a> {
    file: &'a Path,
    text: &'a str,
    /// Byte offsets of every '\n', for offset → line by binary search.
    newlines: Vec<usize>,
}

impl<'a> Doc<'a> {
    pub fn new(file: &'a Path, text: &'a str) -> Self {
        let newlines = text
            .bytes()
            .enumerate()
            .filter(|&(_, b)| b == b'\n')
            .map(|(i, _)| i)
            .collect();
        Doc {
            file,
            text,
            newlines,
        }
    }

    /// The 1-based line holding byte `offset`.
    pub fn line(&self, offset: usize) -> usize {
        self.newlines.partition_point(|&nl| nl < offset) + 1
    }

    pub fn at(&self, span: &Range<usize>, table: &str) -> Location {
        Location {
            file: self.file.to_path_buf(),
            line: self.line(span.start),
            table: table.to_string(),
        }
    }

    pub fn invalid(
        &self,
        span: &Range<usize>,
        table: &str,
        message: impl Into<String>,
    ) -> RecipeError {
        RecipeError::Invalid {
            at: self.at(span, table),
            message: message.into(),
        }
    }

    /// The value as written in the recipe, shortened to fit in a one-line message.
    pub fn written(&self, span: &Range<usize>) -> String {
        let raw = self.text.get(span.clone()).unwrap_or("");
        let first = raw.lines().next().unwrap_or("");
        if first.chars().count() > 40 || first.len() < raw.trim_end().len() {
            let cut: String = first.chars().take(40).collect();
            format!("{cut}…")
        } else {
            first.to_string()
        }
    }

    pub fn syntax(&self, err: &toml::de::Error) -> RecipeError {
        let span = err.span().unwrap_or(0..0);
        // toml's messages are one line today; keep the promise if that changes.
        let message = err.message().trim().replace('\n', "; ");
        RecipeError::Syntax {
            at: self.at(&span, ""),
            message,
        }
    }

    /// The entries of `table` (whose own span is `span`, TOML path `path`), after
    /// checking that every key is one of `keys`. The first offending key in file order
    /// is reported.
    pub fn fields<'t, 'i>(
        &self,
        table: &'t DeTable<'i>,
        span: Range<usize>,
        path: &str,
        keys: &Keys,
    ) -> Result<Fields<'t, 'i>, RecipeError> {
        let entries = in_file_order(table);
        for (key, _) in &entries {
            let name = key.get_ref().as_ref();
            if keys.known.contains(&name) {
                continue;
            }
            let at = self.at(&key.span(), path);
            if keys.later.contains(&name) {
                return Err(RecipeError::Unsupported {
                    at,
                    key: name.to_string(),
                });
            }
            return Err(RecipeError::UnknownKey {
                at,
                key: name.to_string(),
                expected: keys.known.join(", "),
            });
        }
        Ok(Fields {
            path: path.to_string(),
            span,
            entries,
        })
    }
}

/// A table's entries, all with known keys.
pub(super) struct Fields<'t, 'i> {
    /// TOML path of the table, for messages.
    pub path: String,
    /// Span of the table itself (its header, or its inline braces).
    pub span: Range<usize>,
    entries: Vec<(&'t Spanned<toml::de::DeString<'i>>, &'t Value<'i>)>,
}

impl<'t, 'i> Fields<'t, 'i> {
    pub fn get(&self, key: &str) -> Option<&'t Value<'i>> {
        self.entries
            .iter()
            .find(|(k, _)| k.get_ref().as_ref() == key)
            .map(|(_, v)| *v)
    }

    /// The value of a key that must be present.
    pub fn require(&self, doc: &Doc<'_>, key: &str) -> Result<&'t Value<'i>, RecipeError> {
        self.get(key)
            .ok_or_else(|| doc.invalid(&self.span, &self.path, format!("'{key}' is required")))
    }
}

/// A table's entries sorted by where their keys appear (the map itself is sorted by name).
pub(super) fn in_file_order<'t, 'i>(
    table: &'t DeTable<'i>,
) -> Vec<(&'t Spanned<toml::de::DeString<'i>>, &'t Value<'i>)> {
    let mut entries: Vec<_> = table.iter().collect();
    entries.sort_by_key(|(k, _)| k.span().start);
    entries
}

/// `parent.key`, or `key` at the top level.
pub(super) fn child(parent: &str, key: &str) -> String {
    if parent.is_empty() {
        key.to_string()
    } else {
        format!("{parent}.{key}")
    }
}

/// A string without NUL (which no path, argument or variable can hold).
pub(super) fn string<'t>(
    doc: &Doc<'_>,
    value: &'t Value<'_>,
    table: &str,
    key: &str,
) -> Result<&'t str, RecipeError> {
    match value.get_ref() {
        DeValue::String(s) => {
            no_nul(doc, value, table, key, s)?;
            Ok(s.as_ref())
        }
        _ => Err(doc.invalid(&value.span(), table, format!("'{key}' must be a string"))),
    }
}

/// A string that is not empty or only blanks.
pub(super) fn non_empty_string<'t>(
    doc: &Doc<'_>,
    value: &'t Value<'_>,
    table: &str,
    key: &str,
) -> Result<&'t str, RecipeError> {
    let s = string(doc, value, table, key)?;
    if s.trim().is_empty() {
        return Err(doc.invalid(&value.span(), table, format!("'{key}' must not be empty")));
    }
    Ok(s)
}

fn no_nul(
    doc: &Doc<'_>,
    value: &Value<'_>,
    table: &str,
    key: &str,
    s: &str,
) -> Result<(), RecipeError> {
    if s.contains('\0') {
        return Err(doc.invalid(
            &value.span(),
            table,
            format!("'{key}' must not contain a NUL character"),
        ));
    }
    Ok(())
}

/// A table, `what` describing what it should hold for the message.
pub(super) fn table<'t, 'i>(
    doc: &Doc<'_>,
    value: &'t Value<'i>,
    table: &str,
    key: &str,
    what: &str,
) -> Result<&'t DeTable<'i>, RecipeError> {
    match value.get_ref() {
        DeValue::Table(t) => Ok(t),
        _ => Err(doc.invalid(
            &value.span(),
            table,
            format!("'{key}' must be a table {what}"),
        )),
    }
}

/// A list of strings, possibly empty. A bad element is reported at its own line.
pub(super) fn string_list(
    doc: &Doc<'_>,
    value: &Value<'_>,
    table: &str,
    key: &str,
) -> Result<Vec<String>, RecipeError> {
    let DeValue::Array(items) = value.get_ref() else {
        return Err(doc.invalid(
            &value.span(),
            table,
            format!("'{key}' must be a list of strings"),
        ));
    };
    items
        .iter()
        .enumerate()
        .map(|(i, item)| string(doc, item, table, &format!("{key}[{i}]")).map(str::to_string))
        .collect()
}

/// A table of string values, such as `env` or `labels`. `check_name` vets each key
/// and returns why it is refused; problems are reported at the entry's line.
pub(super) fn string_map(
    doc: &Doc<'_>,
    value: &Value<'_>,
    parent: &str,
    key: &str,
    check_name: fn(&str) -> Result<(), NameError>,
) -> Result<BTreeMap<String, String>, RecipeError> {
    let entries = table(
        doc,
        value,
        parent,
        key,
        "of string values, such as { NAME = \"value\" }",
    )?;
    let path = child(parent, key);
    let mut map = BTreeMap::new();
    for (name, v) in in_file_order(entries) {
        let name_str = name.get_ref().as_ref();
        if let Err(why) = check_name(name_str) {
            return Err(doc.invalid(&name.span(), &path, why.to_string()));
        }
        let s = string(doc, v, &path, name_str)?;
        map.insert(name_str.to_string(), s.to_string());
    }
    Ok(map)
}

/// A TOML integer as i128 (wide enough for every TOML integer), None for other types.
pub(super) fn integer(value: &Value<'_>) -> Option<i128> {
    match value.get_ref() {
        DeValue::Integer(i) => i128::from_str_radix(i.as_str(), i.radix()).ok(),
        _ => None,
    }
}

/// Environment variable names: non-empty, no '=' (it ends the name), no NUL.
pub(super) fn check_env_name(name: &str) -> Result<(), NameError> {
    if name.is_empty() || name.contains('=') || name.contains('\0') {
        return Err(NameError::Variable(name.to_string()));
    }
    Ok(())
}
