//! What a fork found: package changes per manager, other files, exclusions;
//! as one JSON object (`fork --json`, documented in docs/fork-report.md) or
//! as text for people.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::inventory::{Changes, Delta};
use crate::layer::CommitStats;
use crate::units::human_bytes;

/// Every regular file the new layer holds (package files included), in all
/// and per top-level directory: the size of the change beside its meaning.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct OtherFiles {
    pub files: u64,
    pub bytes: u64,
    /// Per top-level directory: `{"/usr": {"files": 3, "bytes": 1200}}`.
    pub by_top: BTreeMap<String, TopDir>,
}

/// Files and bytes under one top-level directory.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct TopDir {
    pub files: u64,
    pub bytes: u64,
}

/// What was left out.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Excluded {
    /// Paths left out (an excluded directory counts with all it holds).
    pub paths: u64,
    /// The excluded paths found, each the top of what was left out.
    pub matched: Vec<String>,
}

/// The report of a fork.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct ForkReport {
    #[serde(flatten)]
    pub changes: Changes,
    pub other: OtherFiles,
    pub excluded: Excluded,
    /// Deletions (whiteouts and opaque directories) in the layer.
    pub deletions: u64,
}

impl ForkReport {
    pub(crate) fn new(changes: Changes, stats: &CommitStats) -> ForkReport {
        ForkReport {
            changes,
            other: OtherFiles {
                files: stats.files,
                bytes: stats.bytes,
                by_top: stats
                    .by_top
                    .iter()
                    .map(|(k, (files, bytes))| {
                        (
                            k.clone(),
                            TopDir {
                                files: *files,
                                bytes: *bytes,
                            },
                        )
                    })
                    .collect(),
            },
            excluded: Excluded {
                paths: stats.excluded,
                matched: stats.excluded_paths.clone(),
            },
            deletions: stats.deletions,
        }
    }

    /// The report as text, one section per package manager with changes.
    pub fn to_text(&self) -> String {
        let mut out = String::new();
        let c = &self.changes;
        section(&mut out, "apt", &c.apt.delta);
        if !c.apt.dependencies.is_empty() {
            let deps: Vec<&str> = c.apt.dependencies.iter().map(|p| p.name.as_str()).collect();
            out.push_str(&format!(
                "  and {} dependencies: {}\n",
                deps.len(),
                crate::quote::excerpt_n(&deps.join(", "), 200)
            ));
        }
        for s in &c.apt.new_sources {
            out.push_str(&format!("  new source: {s}\n"));
        }
        for k in &c.apt.new_keyrings {
            out.push_str(&format!("  new keyring: {k}\n"));
        }
        section(&mut out, "pip", &c.pip);
        section(&mut out, "npm", &c.npm);
        section(&mut out, "VS Code extensions", &c.vscode_extensions);
        if c.is_empty() {
            out.push_str("packages: no change\n");
        }
        if !c.not_compared.is_empty() {
            out.push_str(&format!(
                "not compared (the boot inventory lacks them): {}\n",
                c.not_compared.join(", ")
            ));
        }
        out.push_str(&format!(
            "other files: {} {}, {}",
            self.other.files,
            if self.other.files == 1 {
                "file"
            } else {
                "files"
            },
            human_bytes(self.other.bytes)
        ));
        if !self.other.by_top.is_empty() {
            let tops: Vec<String> = self
                .other
                .by_top
                .iter()
                .map(|(k, t)| format!("{k} {} ({})", t.files, human_bytes(t.bytes)))
                .collect();
            out.push_str(&format!(": {}", tops.join(", ")));
        }
        out.push('\n');
        if self.deletions > 0 {
            out.push_str(&format!("deleted: {} paths\n", self.deletions));
        }
        out.push_str(&format!("excluded: {} paths", self.excluded.paths));
        if !self.excluded.matched.is_empty() {
            let shown: Vec<&str> = self
                .excluded
                .matched
                .iter()
                .take(8)
                .map(String::as_str)
                .collect();
            let more = self.excluded.matched.len().saturating_sub(shown.len());
            out.push_str(&format!(" ({}", shown.join(", ")));
            if more > 0 {
                out.push_str(&format!(", and {more} more"));
            }
            out.push(')');
        }
        out.push('\n');
        out
    }
}

fn section(out: &mut String, title: &str, d: &Delta) {
    if d.added.is_empty() && d.removed.is_empty() && d.changed.is_empty() {
        return;
    }
    let mut counts = Vec::new();
    for (n, what) in [
        (d.added.len(), "added"),
        (d.removed.len(), "removed"),
        (d.changed.len(), "changed"),
    ] {
        if n > 0 {
            counts.push(format!("{n} {what}"));
        }
    }
    out.push_str(&format!("{title}: {}\n", counts.join(", ")));
    for p in &d.added {
        out.push_str(&format!("  + {} {}\n", p.name, p.version));
    }
    for p in &d.removed {
        out.push_str(&format!("  - {} {}\n", p.name, p.version));
    }
    for p in &d.changed {
        out.push_str(&format!("  ~ {} {} -> {}\n", p.name, p.from, p.to));
    }
}
