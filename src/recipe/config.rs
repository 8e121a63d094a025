//! `[config]`: what the image's OCI config says about running it.

use std::collections::BTreeMap;

use super::error::{NameError, RecipeError};
use super::port::{Port, parse_expose};
use super::reader::{self, Doc, Keys, Value};

/// The `[config]` section. Absent keys leave the base image's value in place.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ConfigSection {
    /// Variables added to (or replacing those of) the base's environment.
    pub env: BTreeMap<String, String>,
    /// Absolute working directory.
    pub workdir: Option<String>,
    /// `name`, `uid`, `name:group` or `uid:gid`.
    pub user: Option<String>,
    /// `None`: inherit the base's; `Some(vec![])`: explicitly none.
    pub entrypoint: Option<Vec<String>>,
    /// `None`: inherit the base's; `Some(vec![])`: explicitly none.
    pub cmd: Option<Vec<String>>,
    /// Ports added to the base's, each once, in the order written.
    pub expose: Vec<Port>,
    /// Labels added to (or replacing those of) the base's.
    pub labels: BTreeMap<String, String>,
}

const CONFIG_KEYS: Keys = Keys {
    known: &[
        "env",
        "workdir",
        "user",
        "entrypoint",
        "cmd",
        "expose",
        "labels",
    ],
    later: &[],
};

/// Reads the `config` value of the top-level table.
pub(super) fn parse_config(doc: &Doc<'_>, value: &Value<'_>) -> Result<ConfigSection, RecipeError> {
    let table = reader::table(doc, value, "", "config", "written [config]")?;
    let fields = doc.fields(table, value.span(), "config", &CONFIG_KEYS)?;
    let path = "config";
    let mut config = ConfigSection::default();

    if let Some(v) = fields.get("env") {
        config.env = reader::string_map(doc, v, path, "env", reader::check_env_name)?;
    }
    if let Some(v) = fields.get("workdir") {
        let workdir = reader::string(doc, v, path, "workdir")?;
        if !workdir.starts_with('/') {
            return Err(doc.invalid(
                &v.span(),
                path,
                format!(
                    "'workdir' must be an absolute path, such as \"/root\"; got {}",
                    doc.written(&v.span())
                ),
            ));
        }
        config.workdir = Some(workdir.to_string());
    }
    if let Some(v) = fields.get("user") {
        let user = reader::string(doc, v, path, "user")?;
        if !is_user(user) {
            return Err(doc.invalid(
                &v.span(),
                path,
                format!(
                    "'user' must be a user name or uid, optionally with ':group' or ':gid', such as \"1000:1000\"; got {}",
                    doc.written(&v.span())
                ),
            ));
        }
        config.user = Some(user.to_string());
    }
    if let Some(v) = fields.get("entrypoint") {
        config.entrypoint = Some(reader::string_list(doc, v, path, "entrypoint")?);
    }
    if let Some(v) = fields.get("cmd") {
        config.cmd = Some(reader::string_list(doc, v, path, "cmd")?);
    }
    if let Some(v) = fields.get("expose") {
        config.expose = parse_expose(doc, v, path)?;
    }
    if let Some(v) = fields.get("labels") {
        config.labels = reader::string_map(doc, v, path, "labels", check_label_name)?;
    }
    Ok(config)
}

/// `user`, `uid`, `user:group`, `uid:gid` (and mixes): one or two non-empty parts
/// without blanks.
fn is_user(text: &str) -> bool {
    let parts: Vec<&str> = text.split(':').collect();
    parts.len() <= 2
        && parts
            .iter()
            .all(|p| !p.is_empty() && !p.chars().any(char::is_whitespace))
}

fn check_label_name(name: &str) -> Result<(), NameError> {
    if name.is_empty() {
        return Err(NameError::EmptyLabel);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn users() {
        for good in ["root", "0", "1000:1000", "dev:staff", "dev:100"] {
            assert!(is_user(good), "{good} refused");
        }
        for bad in ["", ":", "a:", ":a", "a:b:c", "a b", " root"] {
            assert!(!is_user(bad), "{bad:?} accepted");
        }
    }
}
