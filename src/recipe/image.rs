//! The `[image]` section: which base the image starts from.

use std::path::{Path, PathBuf};

use super::error::RecipeError;
use super::reader::{self, Doc, Keys, Value};
use crate::catalog::Catalog;

/// The `[image]` section.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageSection {
    /// What the first step runs on.
    pub base: Base,
    /// Line of `base` in the recipe, for messages about the base (e.g. a missing tar).
    pub base_line: usize,
    /// Timestamp clamped onto every file and written in the config; `None` leaves the
    /// choice to the build (environment variable, else a fixed default).
    pub source_date_epoch: Option<u64>,
    /// `dev_access = true|false` as written; `None` when absent (the toolbox
    /// format then decides, see [`crate::recipe::Toolbox::dev_access`]).
    pub dev_access: Option<bool>,
}

/// The image a recipe builds on, from `base = "..."`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Base {
    /// `scratch`: an empty filesystem.
    Scratch,
    /// `rootfs:PATH`: a tar of a root filesystem, as one base layer. The path is
    /// resolved against the recipe's directory.
    Rootfs(PathBuf),
    /// `oci:DIR[:TAG]`: an image in a local OCI image layout. `dir` is resolved against
    /// the recipe's directory; `tag` defaults to `latest`.
    Oci { dir: PathBuf, tag: String },
    /// Anything else: an image reference in a registry, kept exactly as written for the
    /// registry stage to parse.
    Registry(String),
    /// `template = "NAME"`: the built image of a catalog template, named
    /// [`crate::catalog::template_image`]`(NAME)` in the local store or a registry.
    Template(String),
}

/// The keys of `[image]`; `template` and `dev_access` are the toolbox format's.
const IMAGE_KEYS: Keys = Keys {
    known: &["base", "template", "source_date_epoch", "dev_access"],
    later: &[],
};

const BASE_FORMS: &str = "\"scratch\", \"rootfs:PATH\", \"oci:DIR[:TAG]\" or an image reference such as \"debian:bookworm\"";

/// Reads the `image` value of the top-level table.
pub(super) fn parse_image(
    doc: &Doc<'_>,
    value: &Value<'_>,
    dir: &Path,
) -> Result<ImageSection, RecipeError> {
    let table = reader::table(doc, value, "", "image", "with a 'base', written [image]")?;
    let fields = doc.fields(table, value.span(), "image", &IMAGE_KEYS)?;

    let (base, base_value) = match (fields.get("base"), fields.get("template")) {
        (Some(_), Some(template)) => {
            return Err(doc.invalid(
                &template.span(),
                "image",
                "'template' and 'base' are exclusive (a template is the base): keep one",
            ));
        }
        (None, None) => {
            return Err(doc.invalid(
                &fields.span,
                "image",
                "'base' or 'template' is required, such as base = \"scratch\" or template = \"blank\"",
            ));
        }
        (Some(base_value), None) => {
            let written = reader::string(doc, base_value, "image", "base")?;
            let base = parse_base(written, dir).map_err(|why| {
                doc.invalid(
                    &base_value.span(),
                    "image",
                    format!("'base' {why}; got {}", doc.written(&base_value.span())),
                )
            })?;
            (base, base_value)
        }
        (None, Some(template)) => (parse_template(doc, template)?, template),
    };

    let source_date_epoch = match fields.get("source_date_epoch") {
        None => None,
        Some(v) => match reader::integer(v).map(u64::try_from) {
            Some(Ok(n)) => Some(n),
            _ => {
                return Err(doc.invalid(
                    &v.span(),
                    "image",
                    "'source_date_epoch' must be a non-negative integer (seconds since 1970-01-01 UTC)",
                ));
            }
        },
    };

    let dev_access = match fields.get("dev_access") {
        None => None,
        Some(v) => match v.get_ref() {
            toml::de::DeValue::Boolean(b) => Some(*b),
            _ => {
                return Err(doc.invalid(&v.span(), "image", "'dev_access' must be true or false"));
            }
        },
    };

    Ok(ImageSection {
        base,
        base_line: doc.line(base_value.span().start),
        source_date_epoch,
        dev_access,
    })
}

/// `template = "NAME"`, a template of the catalog.
fn parse_template(doc: &Doc<'_>, value: &Value<'_>) -> Result<Base, RecipeError> {
    let name = reader::string(doc, value, "image", "template")?;
    let catalog = Catalog::builtin()?;
    if catalog.template(name).is_none() {
        let names: Vec<&str> = catalog.templates.iter().map(|t| t.name.as_str()).collect();
        return Err(doc.invalid(
            &value.span(),
            "image",
            format!(
                "unknown template '{name}' (expected one of: {})",
                names.join(", ")
            ),
        ));
    }
    Ok(Base::Template(name.to_string()))
}

/// Parses a `base` string; the error completes "'base' ...".
fn parse_base(written: &str, dir: &Path) -> Result<Base, String> {
    if written == "scratch" {
        return Ok(Base::Scratch);
    }
    if let Some(path) = written.strip_prefix("rootfs:") {
        if path.is_empty() {
            return Err("needs a path after 'rootfs:', such as \"rootfs:base.tar\"".into());
        }
        return Ok(Base::Rootfs(dir.join(path)));
    }
    if let Some(rest) = written.strip_prefix("oci:") {
        // The directory may hold no ':', so the first one starts the tag.
        let (layout, tag) = match rest.split_once(':') {
            Some((layout, tag)) => (layout, tag),
            None => (rest, "latest"),
        };
        if layout.is_empty() {
            return Err("needs a directory after 'oci:', such as \"oci:layout:latest\"".into());
        }
        if !is_ref_name(tag) {
            return Err(
                "has an invalid tag after 'oci:DIR:' (letters and digits joined by . _ - : @ + or /)"
                    .into(),
            );
        }
        return Ok(Base::Oci {
            dir: dir.join(layout),
            tag: tag.to_string(),
        });
    }
    if written.is_empty() || written.chars().any(char::is_whitespace) {
        return Err(format!("must be {BASE_FORMS}"));
    }
    Ok(Base::Registry(written.to_string()))
}

/// The OCI image-layout grammar for `org.opencontainers.image.ref.name`:
/// `component ("/" component)*`, a component being alphanumerics joined by
/// one of `-._:@+` or by `--`.
fn is_ref_name(name: &str) -> bool {
    !name.is_empty() && name.split('/').all(is_ref_component)
}

fn is_ref_component(component: &str) -> bool {
    let bytes = component.as_bytes();
    let mut i = 0;
    loop {
        let start = i;
        while i < bytes.len() && bytes[i].is_ascii_alphanumeric() {
            i += 1;
        }
        if i == start {
            return false;
        }
        if i == bytes.len() {
            return true;
        }
        if bytes[i..].starts_with(b"--") {
            i += 2;
        } else if b"-._:@+".contains(&bytes[i]) {
            i += 1;
        } else {
            return false;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base_forms() {
        let dir = Path::new("/r");
        assert_eq!(parse_base("scratch", dir), Ok(Base::Scratch));
        assert_eq!(
            parse_base("rootfs:a/b.tar", dir),
            Ok(Base::Rootfs("/r/a/b.tar".into()))
        );
        assert_eq!(
            parse_base("rootfs:/abs.tar", dir),
            Ok(Base::Rootfs("/abs.tar".into()))
        );
        assert_eq!(
            parse_base("oci:lay", dir),
            Ok(Base::Oci {
                dir: "/r/lay".into(),
                tag: "latest".into()
            })
        );
        assert_eq!(
            parse_base("oci:/abs/lay:v1.2", dir),
            Ok(Base::Oci {
                dir: "/abs/lay".into(),
                tag: "v1.2".into()
            })
        );
        assert_eq!(
            parse_base("docker.io/library/debian:bookworm", dir),
            Ok(Base::Registry("docker.io/library/debian:bookworm".into()))
        );
        assert_eq!(
            parse_base("localhost:5000/x@sha256:00", dir),
            Ok(Base::Registry("localhost:5000/x@sha256:00".into()))
        );
        for bad in [
            "rootfs:",
            "oci:",
            "oci::tag",
            "oci:dir:",
            "oci:d:a b",
            "",
            "a b",
        ] {
            assert!(parse_base(bad, dir).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn ref_name_grammar() {
        for good in [
            "latest",
            "v1.0",
            "a_b",
            "a--b",
            "docker.io/library/busybox:1.36",
            "x@y+z",
        ] {
            assert!(is_ref_name(good), "{good} refused");
        }
        for bad in [
            "", "-a", "a-", "a---b", "a//b", "/a", "a/", "a b", "a__b", "ä",
        ] {
            assert!(!is_ref_name(bad), "{bad} accepted");
        }
    }
}
