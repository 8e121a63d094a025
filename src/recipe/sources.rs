//! Checking that the files a recipe names on the build host are there and readable.
//!
//! Kept apart from parsing so that a recipe can be validated (and planned) on a
//! machine that lacks its inputs, and so that a missing file is reported before any
//! step runs rather than halfway through a build.

use std::fs;
use std::path::Path;

use super::Recipe;
use super::error::{Location, RecipeError};
use super::image::Base;
use super::step::StepKind;

impl Recipe {
    /// Checks that the base rootfs tar or OCI layout and every copy source exist and
    /// are readable. Reports the first one that is not, at its line in the recipe.
    pub fn check_sources(&self) -> Result<(), RecipeError> {
        let at = |line: usize, table: String| Location {
            file: self.path.clone(),
            line,
            table,
        };
        match &self.image.base {
            Base::Rootfs(path) => readable_file(path).map_err(|reason| RecipeError::Source {
                at: at(self.image.base_line, "image".into()),
                what: "base rootfs tar",
                path: path.clone(),
                reason,
            })?,
            Base::Oci { dir, .. } => oci_layout(dir).map_err(|reason| RecipeError::Source {
                at: at(self.image.base_line, "image".into()),
                what: "base OCI layout",
                path: dir.clone(),
                reason,
            })?,
            Base::Scratch | Base::Registry(_) | Base::Template(_) => {}
        }
        for ext in &self.toolbox.extensions {
            if let super::Extension::Vsix { path, .. } = ext {
                readable_file(path).map_err(|reason| RecipeError::Source {
                    at: at(self.toolbox.lines.vscode, "vscode".into()),
                    what: "VS Code extension",
                    path: path.clone(),
                    reason,
                })?;
            }
        }
        for step in &self.steps {
            if let StepKind::Copy(copy) = &step.kind {
                readable_file_or_dir(&copy.src).map_err(|reason| RecipeError::Source {
                    at: at(copy.src_line, format!("steps[{}].copy", step.index)),
                    what: "copy source",
                    path: copy.src.clone(),
                    reason,
                })?;
            }
        }
        Ok(())
    }
}

fn readable_file(path: &Path) -> Result<(), String> {
    let meta = fs::metadata(path).map_err(|e| e.to_string())?;
    if !meta.is_file() {
        return Err("it is not a regular file".into());
    }
    fs::File::open(path).map(drop).map_err(|e| e.to_string())
}

fn readable_file_or_dir(path: &Path) -> Result<(), String> {
    let meta = fs::metadata(path).map_err(|e| e.to_string())?;
    if meta.is_dir() {
        fs::read_dir(path).map(drop).map_err(|e| e.to_string())
    } else if meta.is_file() {
        fs::File::open(path).map(drop).map_err(|e| e.to_string())
    } else {
        Err("it is neither a regular file nor a directory".into())
    }
}

/// An OCI image layout: a readable directory with `oci-layout` and `index.json`.
fn oci_layout(dir: &Path) -> Result<(), String> {
    let meta = fs::metadata(dir).map_err(|e| e.to_string())?;
    if !meta.is_dir() {
        return Err("it is not a directory".into());
    }
    for name in ["oci-layout", "index.json"] {
        readable_file(&dir.join(name))
            .map_err(|e| format!("it is not an OCI image layout ({name}: {e})"))?;
    }
    Ok(())
}
