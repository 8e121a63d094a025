//! The shell scripts of component steps, generated from the catalog.
//!
//! Each script is the whole command of its step (`/bin/sh -c SCRIPT`), so its
//! text, which names every package, version and pinned checksum, is part of
//! the step's cache key. Scripts start with a `# boxwright: ...` line that the
//! progress output shows.

use std::collections::BTreeMap;
use std::fmt::Write as _;

/// Helpers every component script starts with.
pub const LIB_SH: &str = include_str!("../../recipes/scripts/lib.sh");

/// The entrypoint the dev access layer installs.
pub const ENTRYPOINT_SH: &str = include_str!("../../recipes/scripts/entrypoint.sh");

/// Where the entrypoint lands in the image.
pub const ENTRYPOINT_PATH: &str = "/usr/local/bin/boxwright-entrypoint";

/// Where a step finds its artifacts: `ARTIFACTS_DIR/<component>/<file>`.
pub const ARTIFACTS_DIR: &str = "/run/boxwright/artifacts";

/// Where a step finds the recipe's `.vsix` files.
pub const VSIX_DIR: &str = "/run/boxwright/vsix";

/// A script under construction.
pub(crate) struct Script {
    text: String,
}

/// The title of a script [`Script::new`] made, from its first line.
pub fn title(text: &str) -> Option<&str> {
    text.lines().next()?.strip_prefix(TITLE_PREFIX)
}

/// How a generated script's first line starts.
const TITLE_PREFIX: &str = "# boxwright: ";

impl Script {
    /// A script titled `title` (its first line), starting with the helpers.
    pub fn new(title: &str) -> Script {
        let mut text = format!("{TITLE_PREFIX}{title}\n");
        text.push_str(LIB_SH);
        Script { text }
    }

    pub fn line(&mut self, line: &str) -> &mut Script {
        self.text.push_str(line);
        self.text.push('\n');
        self
    }

    /// Writes `content` to `path` in the image with a quoted here-document.
    pub fn file(&mut self, path: &str, mode: &str, content: &str) -> &mut Script {
        let marker = heredoc_marker(content);
        let _ = writeln!(self.text, "mkdir -p \"$(dirname {})\"", quote(path));
        let _ = writeln!(self.text, "cat > {} <<'{marker}'", quote(path));
        self.text.push_str(content);
        if !content.ends_with('\n') {
            self.text.push('\n');
        }
        let _ = writeln!(self.text, "{marker}");
        let _ = writeln!(self.text, "chmod {mode} {}", quote(path));
        self
    }

    /// /etc/profile.d/boxwright-NAME.sh exporting PATH additions and variables,
    /// so SSH and other login shells see what the image config sets.
    pub fn profile(
        &mut self,
        name: &str,
        path: &[String],
        env: &BTreeMap<String, String>,
    ) -> &mut Script {
        if path.is_empty() && env.is_empty() {
            return self;
        }
        let mut content = String::new();
        if !path.is_empty() {
            let _ = writeln!(content, "export PATH=\"{}:$PATH\"", path.join(":"));
        }
        for (k, v) in env {
            let _ = writeln!(content, "export {k}={}", quote(v));
        }
        self.file(
            &format!("/etc/profile.d/boxwright-{name}.sh"),
            "0644",
            &content,
        )
    }

    pub fn finish(self) -> String {
        self.text
    }
}

/// Single-quotes `s` for sh.
pub(crate) fn quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', "'\\''"))
}

/// A here-document end marker that does not occur in `content`.
fn heredoc_marker(content: &str) -> String {
    let mut marker = String::from("BOXWRIGHT_EOF");
    while content.lines().any(|l| l == marker) {
        marker.push('_');
    }
    marker
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoting_and_heredocs() {
        assert_eq!(quote("a b"), "'a b'");
        assert_eq!(quote("it's"), "'it'\\''s'");
        let mut s = Script::new("test");
        s.file("/x", "0644", "BOXWRIGHT_EOF\nhi");
        let text = s.finish();
        assert!(text.starts_with("# boxwright: test\n"));
        assert_eq!(title(&text), Some("test"));
        assert_eq!(title("echo hi"), None);
        assert!(text.contains("<<'BOXWRIGHT_EOF_'\nBOXWRIGHT_EOF\nhi\nBOXWRIGHT_EOF_\n"));
    }

    #[test]
    fn lib_and_entrypoint_are_valid_sh() {
        for (name, text) in [("lib.sh", LIB_SH), ("entrypoint.sh", ENTRYPOINT_SH)] {
            let out = std::process::Command::new("sh")
                .arg("-n")
                .arg("-c")
                .arg(text)
                .output()
                .expect("run sh -n");
            assert!(
                out.status.success(),
                "{name}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
    }
}
