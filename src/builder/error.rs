//! Why a build failed.

use crate::digest::Digest;
use crate::image::ImageError;
use crate::plan::PlanError;
use crate::recipe::RecipeError;
use crate::registry::{Reference, RegistryError};
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
    /// The user namespace or a step's sandbox could not be set up.
    #[error("{0}")]
    Sandbox(#[from] SandboxError),
    /// The image the build starts from could not be had. Boxed: a base
    /// error holds a registry error and a reference, and every build
    /// result carries this type.
    #[error("base image: {0}")]
    Base(#[source] Box<BaseError>),
    /// The registry client could not be made, or pushing (the result, or
    /// a client for the `--cache-to`/`--cache-from` registry) failed.
    #[error("push: {0}")]
    Push(#[source] RegistryError),
    /// A layer the store holds only in a registry (a lazy step-cache hit of
    /// an earlier build, under this build's base) could not be fetched.
    #[error("fetching a layer held by a registry: {0}")]
    RemoteLayer(#[source] RegistryError),
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
    /// A stage that stopped before its next step because a stage running
    /// beside it failed; that stage's error is the build's.
    #[error("stopped: another stage of the build failed")]
    Stopped,
    /// `--offline` and the build would reach the network (see `offline`).
    #[error("{0}")]
    Offline(String),
}

impl From<BaseError> for BuildError {
    fn from(e: BaseError) -> BuildError {
        BuildError::Base(Box::new(e))
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

/// Why the image a build starts from could not be had; a [`BuildError::Base`]
/// shows it after "base image: ". Each variant keeps the error beneath it,
/// so a caller can tell, say, a registry that has no such image from one
/// that refused the login: see [`BaseError::registry`].
#[derive(Debug, thiserror::Error)]
pub enum BaseError {
    /// The registry client could not be made, or pulling the base failed.
    #[error("{0}")]
    Registry(#[from] RegistryError),
    /// A layout, an archive or a blob (of the store or of the layout the
    /// base is in) could not be read or written; `what` names the base.
    #[error("{what}: {source}")]
    Store {
        what: String,
        #[source]
        source: StoreError,
    },
    /// The base's manifest or config does not read.
    #[error("{what}: {source}")]
    Image {
        what: String,
        #[source]
        source: ImageError,
    },
    #[error("{what}: layer {digest} has media type {media_type} which boxwright cannot read")]
    LayerMediaType {
        what: String,
        digest: Digest,
        media_type: String,
    },
    /// Copying a blob of a foreign layout into the store failed midway.
    #[error("{what}: copying blob {digest}: {source}")]
    CopyBlob {
        what: String,
        digest: Digest,
        #[source]
        source: std::io::Error,
    },
    /// The template registry refused the credentials (HTTP 401 or 403).
    #[error(
        "template '{name}': the registry refused access to {reference} ({source}); log in: boxwright login {}",
        reference.registry()
    )]
    TemplateRefused {
        name: String,
        reference: Reference,
        #[source]
        source: RegistryError,
    },
    /// Pulling a template failed, and no earlier copy is in the store.
    #[error(
        "template '{name}': {local} is not in the store and pulling {reference} failed: {source}"
    )]
    TemplatePull {
        name: String,
        local: String,
        reference: Reference,
        #[source]
        source: RegistryError,
    },
}

impl BaseError {
    /// The registry's error when a registry was asked for the base: its
    /// variant and [`RegistryError::status`] tell a missing image (404) from
    /// refused credentials ([`RegistryError::Unauthorized`], 401 or 403).
    pub fn registry(&self) -> Option<&RegistryError> {
        match self {
            BaseError::Registry(e)
            | BaseError::TemplateRefused { source: e, .. }
            | BaseError::TemplatePull { source: e, .. } => Some(e),
            _ => None,
        }
    }
}

/// Why a step's record could not be pushed to the `--cache-to` registry
/// cache (the build goes on with a warning).
#[derive(Debug, thiserror::Error)]
pub(crate) enum CacheRecordError {
    #[error("'{repo}' is not a repository: {source}")]
    Repository {
        repo: String,
        #[source]
        source: crate::registry::ReferenceError,
    },
    /// The record or its manifest could not be serialized (a boxwright bug).
    #[error("{0}")]
    Encode(#[from] serde_json::Error),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Registry(#[from] RegistryError),
}

#[cfg(test)]
mod tests {
    use std::error::Error as _;

    use super::*;

    /// What a caller (the CLI, the web API) can do with a failed build now:
    /// find the registry's own error under a base-image failure and tell a
    /// missing image from refused credentials, without reading the text.
    fn diagnose(e: &BuildError) -> &'static str {
        let BuildError::Base(base) = e else {
            return "not a base image";
        };
        match base.registry() {
            Some(RegistryError::Http { status: 404, .. }) => "no such image",
            Some(RegistryError::Unauthorized { .. }) => "log in",
            Some(r) if r.status() == Some(403) => "log in",
            Some(_) => "registry trouble",
            None => "not from a registry",
        }
    }

    fn not_found() -> RegistryError {
        RegistryError::Http {
            what: "manifest team/app:v1".into(),
            registry: "registry.example.com".into(),
            status: 404,
            detail: ": MANIFEST_UNKNOWN: manifest unknown".into(),
        }
    }

    fn refused() -> RegistryError {
        RegistryError::Unauthorized {
            registry: "registry.example.com".into(),
            user: " of user dev".into(),
            message: "authentication required".into(),
        }
    }

    #[test]
    fn a_base_image_error_carries_the_registry_error_beneath_it() {
        let missing = BuildError::from(BaseError::from(not_found()));
        let login = BuildError::from(BaseError::from(refused()));
        assert_eq!(diagnose(&missing), "no such image");
        assert_eq!(diagnose(&login), "log in");

        // A template's refused pull says more, and still carries the source.
        let reference: Reference = "registry.example.com/team/boxwright/template-rust:latest"
            .parse()
            .unwrap();
        let template = BuildError::from(BaseError::TemplateRefused {
            name: "rust".into(),
            reference,
            source: refused(),
        });
        assert_eq!(diagnose(&template), "log in");

        // A generic caller gets there through the standard source chain.
        let beneath = login
            .source()
            .and_then(|base| base.source())
            .and_then(|e| e.downcast_ref::<RegistryError>());
        assert!(
            matches!(beneath, Some(RegistryError::Unauthorized { .. })),
            "{beneath:?}"
        );

        // The line shown is the one shown before the errors were typed.
        assert_eq!(missing.to_string(), format!("base image: {}", not_found()));
        assert_eq!(
            template.to_string(),
            format!(
                "base image: template 'rust': the registry refused access to registry.example.com/team/boxwright/template-rust:latest ({}); log in: boxwright login registry.example.com",
                refused()
            )
        );
        // A registry failure is not the user's input (exit code 1, not 2).
        assert!(!missing.is_bad_input() && !login.is_bad_input());
    }

    #[test]
    fn push_and_sandbox_errors_keep_their_lines_and_sources() {
        let push = BuildError::Push(refused());
        assert_eq!(push.to_string(), format!("push: {}", refused()));
        assert!(push.source().is_some_and(|s| s.is::<RegistryError>()));

        let sandbox = SandboxError::TimedOut { seconds: 5 };
        let e = BuildError::from(sandbox.clone());
        assert_eq!(e.to_string(), sandbox.to_string());
        assert!(matches!(
            e,
            BuildError::Sandbox(SandboxError::TimedOut { seconds: 5 })
        ));
        assert!(!e.is_bad_input());
    }
}
