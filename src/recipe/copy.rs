//! `copy = { src, dest, mode, owner }`: a file or directory added from the build host.

use std::path::{Path, PathBuf};

use super::error::RecipeError;
use super::reader::{self, Doc, Keys, Value};

/// A copy step.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CopySpec {
    /// The source on the build host: inside the build context (the recipe's
    /// directory), where an absolute path is read as relative to the context
    /// and `..` may not leave it, as Docker reads COPY sources. Symlinks on the
    /// way are resolved (and checked to stay inside) by
    /// [`super::Recipe::check_sources`].
    pub src: PathBuf,
    /// The source as the recipe wrote it, for history and messages.
    pub src_as_written: String,
    /// Line of `src` in the recipe, for messages about the source.
    pub src_line: usize,
    /// Absolute destination path in the image.
    pub dest: String,
    /// Permission bits to set (at most `0o7777`); `None` keeps the source's.
    pub mode: Option<u32>,
    /// `(uid, gid)` to own the copied files; `None` leaves it to the build's default.
    pub owner: Option<(u32, u32)>,
}

const COPY_KEYS: Keys = Keys {
    known: &["src", "dest", "mode", "owner"],
    later: &[],
};

/// Reads the `copy` value of step `step_path` (e.g. `step 2`).
pub(super) fn parse_copy(
    doc: &Doc<'_>,
    value: &Value<'_>,
    step_path: &str,
    dir: &Path,
) -> Result<CopySpec, RecipeError> {
    let table = reader::table(
        doc,
        value,
        step_path,
        "copy",
        "with 'src' and 'dest', such as { src = \"files/motd\", dest = \"/etc/motd\" }",
    )?;
    let path = reader::child(step_path, "copy");
    let fields = doc.fields(table, value.span(), &path, &COPY_KEYS)?;

    let src_value = fields.require(doc, "src")?;
    let src = reader::non_empty_string(doc, src_value, &path, "src")?;

    let dest_value = fields.require(doc, "dest")?;
    let dest = reader::string(doc, dest_value, &path, "dest")?;
    if !dest.starts_with('/') {
        return Err(doc.invalid(
            &dest_value.span(),
            &path,
            format!(
                "'dest' must be an absolute path in the image, such as \"/etc/motd\"; got {}",
                doc.written(&dest_value.span())
            ),
        ));
    }

    let mode = match fields.get("mode") {
        None => None,
        // A TOML integer is refused too: 644 would silently mean decimal 644.
        Some(v) => Some(v.get_ref().as_str().and_then(parse_mode).ok_or_else(|| {
            doc.invalid(
                &v.span(),
                &path,
                format!(
                    "'mode' must be an octal string no greater than \"07777\", such as \"0644\"; got {}",
                    doc.written(&v.span())
                ),
            )
        })?),
    };

    let owner = match fields.get("owner") {
        None => None,
        Some(v) => Some(v.get_ref().as_str().and_then(parse_owner).ok_or_else(|| {
            doc.invalid(
                &v.span(),
                &path,
                format!(
                    "'owner' must be \"UID:GID\" with numeric ids, such as \"1000:1000\"; got {}",
                    doc.written(&v.span())
                ),
            )
        })?),
    };

    let Some(inside) = context_relative(src) else {
        return Err(doc.invalid(
            &src_value.span(),
            &path,
            format!(
                "'src' {} leaves the build context (the recipe's directory {}): copy sources must be inside it; move the file there",
                doc.written(&src_value.span()),
                dir.display()
            ),
        ));
    };
    Ok(CopySpec {
        src: dir.join(inside),
        src_as_written: src.to_string(),
        src_line: doc.line(src_value.span().start),
        dest: dest.to_string(),
        mode,
        owner,
    })
}

/// A source path read inside the build context, lexically: an absolute path
/// is relative to the context, `.` and empty components go, `..` drops the
/// previous component. `None` when a `..` would leave the context. Empty
/// means the context itself.
pub(crate) fn context_relative(src: &str) -> Option<PathBuf> {
    let mut parts: Vec<&str> = Vec::new();
    for comp in src.split('/') {
        match comp {
            "" | "." => {}
            ".." => {
                parts.pop()?;
            }
            c => parts.push(c),
        }
    }
    Some(parts.iter().collect())
}

/// `"0644"`, `"644"`, `"4755"`: octal digits only, at most 0o7777.
fn parse_mode(text: &str) -> Option<u32> {
    if text.is_empty() || !text.bytes().all(|b| (b'0'..=b'7').contains(&b)) {
        return None;
    }
    u32::from_str_radix(text, 8)
        .ok()
        .filter(|&mode| mode <= 0o7777)
}

/// `"UID:GID"`, both decimal. `u32::MAX` is refused: it is the kernel's "no id".
fn parse_owner(text: &str) -> Option<(u32, u32)> {
    let (uid, gid) = text.split_once(':')?;
    Some((parse_id(uid)?, parse_id(gid)?))
}

fn parse_id(text: &str) -> Option<u32> {
    // u32's FromStr accepts a leading '+', which is no way to write an id.
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    text.parse().ok().filter(|&id| id != u32::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sources_stay_in_the_context() {
        assert_eq!(context_relative("files/motd"), Some("files/motd".into()));
        assert_eq!(context_relative("/etc/skel/"), Some("etc/skel".into()));
        assert_eq!(context_relative("a/../b"), Some("b".into()));
        assert_eq!(context_relative("./"), Some(PathBuf::new()));
        assert_eq!(context_relative(".."), None);
        assert_eq!(context_relative("../../etc/passwd"), None);
        assert_eq!(context_relative("a/../../x"), None);
        assert_eq!(context_relative("/../etc/shadow"), None);
    }

    #[test]
    fn modes() {
        assert_eq!(parse_mode("0644"), Some(0o644));
        assert_eq!(parse_mode("644"), Some(0o644));
        assert_eq!(parse_mode("4755"), Some(0o4755));
        assert_eq!(parse_mode("07777"), Some(0o7777));
        assert_eq!(parse_mode("0"), Some(0));
        for bad in [
            "",
            "999",
            "abc",
            "10000",
            "0o644",
            "+644",
            " 644",
            "-1",
            "77777777777777",
        ] {
            assert_eq!(parse_mode(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn owners() {
        assert_eq!(parse_owner("0:0"), Some((0, 0)));
        assert_eq!(parse_owner("1000:100"), Some((1000, 100)));
        assert_eq!(parse_owner("4294967294:1"), Some((4294967294, 1)));
        for bad in [
            "",
            "0",
            "root:root",
            "0:",
            ":0",
            "1:2:3",
            "+1:1",
            "-1:0",
            "4294967295:0",
            "4294967296:0",
            " 1:1",
        ] {
            assert_eq!(parse_owner(bad), None, "{bad:?}");
        }
    }
}
