//! `template = "NAME"`: the template's built image, from the local store or
//! from a registry.
//!
//! A template NAME is built and tagged locally as
//! `boxwright/template-NAME:latest` ([`crate::catalog::template_image`]). In
//! a registry it has that same name under a namespace `HOST[/ORG]`, given by
//! `build --template-registry` or by `template_registry` in
//! `registries.toml`: `HOST/ORG/boxwright/template-NAME:latest`, which is
//! what `boxwright push boxwright/template-NAME HOST/ORG/boxwright/template-NAME`
//! (or `build -t HOST/ORG/boxwright/template-NAME --push`) makes.
//!
//! The store is looked in first, so a template built here wins. Otherwise
//! the registry's image is pulled the way `base = REF` is: its blobs land in
//! the store (and are named there after the full reference), a blob already
//! there is not fetched again, so a second build makes one manifest request
//! and downloads nothing. When the registry cannot be reached (or refuses),
//! a copy pulled earlier is used with a warning; when it answers that the
//! image is not there, the build fails with one line naming both places.

use crate::catalog::template_image;
use crate::progress::{Event, Sink};
use crate::registry::{Reference, RegistriesConfig, RegistryError};
use crate::store::Store;

use super::base::{BaseImage, copy_image, load_stored, offline_copy, pull_into_store};
use super::remote::{self, RegistryOptions};
use super::{BaseError, BuildError};

/// The image `template = "NAME"` starts from, resolved into the store.
pub(crate) fn resolve(
    name: &str,
    store: &Store,
    registry: &RegistryOptions,
    offline: Option<&RegistriesConfig>,
    sink: &dyn Sink,
) -> Result<BaseImage, BuildError> {
    let local = template_image(name);
    if let Ok(desc) = store.layout().resolve(&local) {
        sink.emit(&Event::Info {
            message: format!("template '{name}': {local} from the store"),
        });
        return copy_image(store.layout(), &desc, store, &local);
    }
    let build_it = format!(
        "boxwright catalog templates --show {name} > {name}.toml && boxwright build {name}.toml -t {local}"
    );
    let namespace = remote::template_namespace(registry)
        .map_err(|e| BuildError::BadInput(format!("template '{name}': {e}")))?;
    let Some(namespace) = namespace else {
        return Err(BuildError::BadInput(format!(
            "template '{name}': {local} is not in the store and no template registry is set (--template-registry HOST/ORG, or template_registry in registries.toml); build it first: {build_it}"
        )));
    };
    let reference = Reference::in_namespace(&namespace, &local)
        .map_err(|e| BuildError::BadInput(format!("template '{name}': {e}")))?;
    if let Some(stored) = offline_copy(&reference, "template", offline, store, sink) {
        return stored;
    }
    let client = remote::client(registry, store).map_err(BaseError::from)?;
    match pull_into_store(&client, &reference, store, sink) {
        Ok(desc) => load_stored(store, &desc, &reference.to_string()),
        Err(e) if is_not_found(&e) => Err(BuildError::BadInput(format!(
            "template '{name}': {local} is not in the store and {reference} is not in the registry (HTTP 404); build it first: {build_it}, then push it there: boxwright push {local} {reference}"
        ))),
        // Refused credentials are for the user to fix, not a reason to fall
        // back to an older copy without saying so.
        Err(e) if matches!(e.status(), Some(401 | 403)) => Err(BaseError::TemplateRefused {
            name: name.to_string(),
            reference,
            source: e,
        }
        .into()),
        Err(e) => match store.layout().resolve(&reference.to_string()) {
            Ok(desc) => {
                sink.emit(&Event::Warning {
                    message: format!(
                        "template '{name}': pulling {reference} failed ({e}); using the copy pulled earlier"
                    ),
                });
                load_stored(store, &desc, &reference.to_string())
            }
            Err(_) => Err(BaseError::TemplatePull {
                name: name.to_string(),
                local,
                reference,
                source: e,
            }
            .into()),
        },
    }
}

/// Whether the registry answered that the image is not there.
fn is_not_found(e: &RegistryError) -> bool {
    matches!(e, RegistryError::Http { status: 404, .. })
}
