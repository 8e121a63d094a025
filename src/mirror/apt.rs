//! apt's sources, rewritten for one step.
//!
//! apt has no URL rewriting of its own, and editing /etc/apt would put the
//! mirror into the layer. Instead the sandbox, inside the container and just
//! before the step, writes rewritten copies of the image's sources
//! (`/etc/apt/sources.list` and `/etc/apt/sources.list.d/*.list|*.sources`,
//! one-line and deb822 formats alike) to its /run tmpfs and points apt at
//! them through the `APT_CONFIG` file (`Dir::Etc::SourceList`,
//! `Dir::Etc::SourceParts`). apt reads that file before /etc/apt/apt.conf.d,
//! so an image that sets those keys itself keeps its own.
//!
//! The copies are taken when the step starts: a source the step adds or
//! edits itself is not seen by apt in that same step while a mirror applies
//! (it is from the next step on). Steps that add a repository should do so
//! in a step before the one that installs from it.

use std::fs;
use std::io;
use std::path::Path;

use super::Mirrors;

/// `text`, a sources file in either format, with every URI a rule covers
/// rewritten; `None` when no URI is. Comments and spacing are kept.
pub fn rewrite_sources(text: &str, mirrors: &Mirrors) -> Option<String> {
    let mut out = String::with_capacity(text.len());
    let mut changed = false;
    for line in text.split_inclusive('\n') {
        if line.trim_start().starts_with('#') {
            out.push_str(line);
            continue;
        }
        let mut rest = line;
        while !rest.is_empty() {
            let token_start = rest.len() - rest.trim_start().len();
            out.push_str(&rest[..token_start]);
            rest = &rest[token_start..];
            let end = rest.find(char::is_whitespace).unwrap_or(rest.len());
            let token = &rest[..end];
            match mirrors.rewrite(token) {
                Some(url) => {
                    out.push_str(&url);
                    changed = true;
                }
                None => out.push_str(token),
            }
            rest = &rest[end..];
        }
    }
    changed.then_some(out)
}

/// Writes the sources under `root` (`etc/apt/sources.list` and
/// `etc/apt/sources.list.d/`) to `out`, rewritten, and returns the apt
/// configuration lines that make apt read them from `out_inside` (where
/// `out` is seen by apt). Nothing is written, and `None` returned, when no
/// rule covers any source.
pub fn redirect_sources(
    root: &Path,
    out: &Path,
    out_inside: &str,
    mirrors: &Mirrors,
) -> io::Result<Option<String>> {
    if mirrors.is_empty() {
        return Ok(None);
    }
    let etc = root.join("etc/apt");
    let main = read_if_present(&etc.join("sources.list"))?;
    let mut parts: Vec<(String, String)> = Vec::new();
    match fs::read_dir(etc.join("sources.list.d")) {
        Ok(entries) => {
            for e in entries {
                let name = e?.file_name().to_string_lossy().into_owned();
                if !(name.ends_with(".list") || name.ends_with(".sources")) {
                    continue;
                }
                if let Some(text) = read_if_present(&etc.join("sources.list.d").join(&name))? {
                    parts.push((name, text));
                }
            }
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(e),
    }
    let rewrite = |text: &str| rewrite_sources(text, mirrors);
    let any = main.as_deref().and_then(rewrite).is_some()
        || parts.iter().any(|(_, t)| rewrite(t).is_some());
    if !any {
        return Ok(None);
    }
    fs::create_dir_all(out.join("sources.list.d"))?;
    let main = main.unwrap_or_default();
    fs::write(
        out.join("sources.list"),
        rewrite(&main).unwrap_or(main.clone()),
    )?;
    for (name, text) in &parts {
        fs::write(
            out.join("sources.list.d").join(name),
            rewrite(text).unwrap_or_else(|| text.clone()),
        )?;
    }
    Ok(Some(format!(
        "Dir::Etc::SourceList \"{out_inside}/sources.list\";\nDir::Etc::SourceParts \"{out_inside}/sources.list.d\";\n"
    )))
}

/// A file's text; `None` if it does not exist or is not a file. A file that
/// is not UTF-8 is passed on as it is (lossy), which apt would reject anyway.
fn read_if_present(path: &Path) -> io::Result<Option<String>> {
    match fs::read(path) {
        Ok(bytes) => Ok(Some(String::from_utf8_lossy(&bytes).into_owned())),
        Err(e)
            if matches!(
                e.kind(),
                io::ErrorKind::NotFound | io::ErrorKind::IsADirectory
            ) =>
        {
            Ok(None)
        }
        Err(e) => Err(e),
    }
}
