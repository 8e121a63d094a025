//! The `[image]` section: which base the image starts from.

use std::path::{Path, PathBuf};

use super::error::{BaseRefError, RecipeError};
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
    /// `oci-archive:FILE[:NAME]`: an image in an OCI archive (a tar of a
    /// layout, as `boxwright save` and `podman save --format oci-archive`
    /// write); `name` picks one when the archive holds several.
    OciArchive { file: PathBuf, name: Option<String> },
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

pub(super) const BASE_FORMS: &str = "\"scratch\", \"rootfs:PATH\", \"oci:DIR[:TAG]\", \"oci-archive:FILE[:NAME]\" or an image reference such as \"debian:bookworm\"";

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

/// Parses a `base` string (`scratch`, `rootfs:PATH`, `oci:DIR[:TAG]`,
/// `oci-archive:FILE[:NAME]`, an image reference or local store name); the
/// error completes "'base' ...". Relative paths are read against `dir`.
pub fn parse_base(written: &str, dir: &Path) -> Result<Base, BaseRefError> {
    if written == "scratch" {
        return Ok(Base::Scratch);
    }
    if let Some(path) = written.strip_prefix("rootfs:") {
        if path.is_empty() {
            return Err(BaseRefError::RootfsPath);
        }
        return Ok(Base::Rootfs(dir.join(path)));
    }
    if let Some(rest) = written.strip_prefix("oci-archive:") {
        let (file, name) = match rest.split_once(':') {
            Some((file, name)) => (file, Some(name.to_string())),
            None => (rest, None),
        };
        if file.is_empty() {
            return Err(BaseRefError::ArchiveFile);
        }
        return Ok(Base::OciArchive {
            file: dir.join(file),
            name,
        });
    }
    if let Some(rest) = written.strip_prefix("oci:") {
        // The directory may hold no ':', so the first one starts the tag.
        let (layout, tag) = match rest.split_once(':') {
            Some((layout, tag)) => (layout, tag),
            None => (rest, "latest"),
        };
        if layout.is_empty() {
            return Err(BaseRefError::LayoutDir);
        }
        if !is_ref_name(tag) {
            return Err(BaseRefError::LayoutTag);
        }
        return Ok(Base::Oci {
            dir: dir.join(layout),
            tag: tag.to_string(),
        });
    }
    if written.is_empty() || written.chars().any(char::is_whitespace) {
        return Err(BaseRefError::Form);
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

/// Why `--byoi REF` names no usable base; completes "--byoi 'REF' ...".
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ByoiError {
    /// REF is not a base at all.
    #[error(transparent)]
    Base(#[from] BaseRefError),
    /// `scratch` has no root filesystem to bring.
    #[error("is 'scratch': bring an image with a root filesystem")]
    Scratch,
}

/// The recipe `build --byoi REF` stands for: exactly a recipe with
/// `base = REF` and the dev access layer, leaving out the `skip`ped
/// components. Relative paths in REF (`oci:DIR`, `oci-archive:FILE`,
/// `rootfs:FILE`) are made absolute against `cwd`, since the recipe is
/// written elsewhere. Serialized by the toml crate, so no reference can bend
/// the recipe.
pub fn byoi_recipe(reference: &str, skip: &[String], cwd: &Path) -> Result<String, ByoiError> {
    let base = parse_base(reference, cwd)?;
    let written = match &base {
        Base::Scratch => {
            return Err(ByoiError::Scratch);
        }
        Base::Rootfs(p) => format!("rootfs:{}", p.display()),
        Base::Oci { dir, tag } => format!("oci:{}:{tag}", dir.display()),
        Base::OciArchive { file, name } => match name {
            Some(n) => format!("oci-archive:{}:{n}", file.display()),
            None => format!("oci-archive:{}", file.display()),
        },
        // Checked as a reference by the build (the registry stage), which
        // names it in the same words as a recipe's base.
        Base::Registry(r) => r.clone(),
        Base::Template(_) => unreachable!("parse_base never gives a template"),
    };
    let mut image = toml::Table::new();
    image.insert("base".into(), written.into());
    image.insert("dev_access".into(), true.into());
    let mut doc = toml::Table::new();
    doc.insert("image".into(), image.into());
    if !skip.is_empty() {
        let mut dev = toml::Table::new();
        let list: Vec<toml::Value> = skip.iter().map(|s| s.as_str().into()).collect();
        dev.insert("skip".into(), list.into());
        doc.insert("dev_access".into(), dev.into());
    }
    Ok(format!("# boxwright build --byoi\n{doc}"))
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
