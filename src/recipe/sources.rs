//! Checking that the files a recipe names on the build host are there and readable.
//!
//! Kept apart from parsing so that a recipe can be validated (and planned) on a
//! machine that lacks its inputs, and so that a missing file is reported before any
//! step runs rather than halfway through a build.

use std::fs;
use std::path::{Path, PathBuf};

use super::Recipe;
use super::error::{Location, RecipeError, SourceProblem};
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
                reason: Box::new(reason),
            })?,
            Base::Oci { dir, .. } => oci_layout(dir).map_err(|reason| RecipeError::Source {
                at: at(self.image.base_line, "image".into()),
                what: "base OCI layout",
                path: dir.clone(),
                reason: Box::new(reason),
            })?,
            Base::OciArchive { file, .. } => {
                readable_file(file).map_err(|reason| RecipeError::Source {
                    at: at(self.image.base_line, "image".into()),
                    what: "base OCI archive",
                    path: file.clone(),
                    reason: Box::new(reason),
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
                    reason: Box::new(reason),
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
                    reason: Box::new(reason),
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
fn confine(context: &Path, path: &Path) -> Result<PathBuf, SourceProblem> {
    let real = fs::canonicalize(path)?;
    if real.starts_with(context) {
        Ok(real)
    } else {
        Err(SourceProblem::OutsideContext {
            real,
            context: context.to_path_buf(),
        })
    }
}

fn readable_file(path: &Path) -> Result<(), SourceProblem> {
    let meta = fs::metadata(path)?;
    if !meta.is_file() {
        return Err(SourceProblem::NotAFile);
    }
    fs::File::open(path).map(drop)?;
    Ok(())
}

fn readable_file_or_dir(path: &Path) -> Result<(), SourceProblem> {
    let meta = fs::metadata(path)?;
    if meta.is_dir() {
        fs::read_dir(path).map(drop)?;
    } else if meta.is_file() {
        fs::File::open(path).map(drop)?;
    } else {
        return Err(SourceProblem::NotAFileOrDir);
    }
    Ok(())
}

/// An OCI image layout: a readable directory with `oci-layout` and `index.json`.
fn oci_layout(dir: &Path) -> Result<(), SourceProblem> {
    let meta = fs::metadata(dir)?;
    if !meta.is_dir() {
        return Err(SourceProblem::NotADir);
    }
    for name in ["oci-layout", "index.json"] {
        readable_file(&dir.join(name)).map_err(|problem| SourceProblem::NotALayout {
            name,
            problem: Box::new(problem),
        })?;
    }
    Ok(())
}
