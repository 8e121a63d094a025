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
    ///
    /// Copy sources and `.vsix` files are confined to the build context (the
    /// recipe's directory): each is resolved, symlinks included, and replaced by
    /// its real path, which must lie inside the context, so a recipe (which may
    /// travel inside an image) cannot read host files outside it. Bases are the
    /// user's own choice and may be anywhere.
    pub fn check_sources(&mut self) -> Result<(), RecipeError> {
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
            Base::OciArchive { file, .. } => {
                readable_file(file).map_err(|reason| RecipeError::Source {
                    at: at(self.image.base_line, "image".into()),
                    what: "base OCI archive",
                    path: file.clone(),
                    reason,
                })?
            }
            Base::Scratch | Base::Registry(_) | Base::Template(_) => {}
        }
        let context = match fs::canonicalize(&self.dir) {
            Ok(c) => c,
            Err(_) => self.dir.clone(),
        };
        let vscode_line = self.toolbox.lines.vscode;
        for ext in &mut self.toolbox.extensions {
            if let super::Extension::Vsix { path, .. } = ext {
                let err = |path: &Path, reason| RecipeError::Source {
                    at: at(vscode_line, "vscode".into()),
                    what: "VS Code extension",
                    path: path.to_path_buf(),
                    reason,
                };
                *path = confine(&context, path).map_err(|r| err(path, r))?;
                readable_file(path).map_err(|r| err(path, r))?;
            }
        }
        for step in &mut self.steps {
            let index = step.index;
            if let StepKind::Copy(copy) = &mut step.kind {
                let err = |path: &Path, reason| RecipeError::Source {
                    at: at(copy.src_line, format!("step {}.copy", index + 1)),
                    what: "copy source",
                    path: path.to_path_buf(),
                    reason,
                };
                let real = confine(&context, &copy.src).map_err(|r| err(&copy.src, r))?;
                readable_file_or_dir(&real).map_err(|r| err(&copy.src, r))?;
                copy.src = real;
            }
        }
        Ok(())
    }
}

/// The real path of `path` (symlinks resolved), refused unless it lies inside
/// `context` (itself a real path).
fn confine(context: &Path, path: &Path) -> Result<std::path::PathBuf, String> {
    let real = fs::canonicalize(path).map_err(|e| e.to_string())?;
    if real.starts_with(context) {
        Ok(real)
    } else {
        Err(format!(
            "it resolves (through a symlink) to {}, outside the build context {}: sources must be inside the recipe's directory; copy the file there instead of linking to it",
            real.display(),
            context.display()
        ))
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
