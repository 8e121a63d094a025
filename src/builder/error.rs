//! Why a build failed.

use crate::image::ImageError;
use crate::plan::PlanError;
use crate::recipe::RecipeError;
use crate::sandbox::SandboxError;
use crate::store::StoreError;

/// A failed build, one line each; [`BuildError::is_bad_input`] tells the CLI
/// which exit code to use.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    #[error(transparent)]
    Recipe(#[from] RecipeError),
    #[error(transparent)]
    Plan(#[from] PlanError),
    #[error("{0}")]
    BadInput(String),
    /// A Containerfile that cannot be built as written (`FILE:LINE:COL: ...`).
    #[error(transparent)]
    Containerfile(#[from] crate::containerfile::ContainerfileError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Image(#[from] ImageError),
    #[error("{0}")]
    Sandbox(String),
    #[error("base image: {0}")]
    Base(String),
    #[error("push: {0}")]
    Push(String),
    #[error("step {step} failed: `{command}` exited with code {exit_code}")]
    StepFailed {
        step: usize,
        command: String,
        exit_code: i32,
        last_lines: Vec<String>,
    },
    #[error("step {step} (`{command}`) could not run: {message}")]
    StepError {
        step: usize,
        command: String,
        message: String,
    },
    #[error(transparent)]
    Artifact(#[from] crate::artifact::ArtifactError),
    #[error(transparent)]
    Session(#[from] crate::session::SessionError),
    /// `--offline` and the build would reach the network (see `offline`).
    #[error("{0}")]
    Offline(String),
}

impl From<SandboxError> for BuildError {
    fn from(e: SandboxError) -> BuildError {
        BuildError::Sandbox(e.to_string())
    }
}

impl BuildError {
    /// True when the user's input is at fault (exit code 2), not the build.
    pub fn is_bad_input(&self) -> bool {
        matches!(
            self,
            BuildError::Recipe(_)
                | BuildError::Plan(_)
                | BuildError::BadInput(_)
                | BuildError::Containerfile(_)
        )
    }
}
