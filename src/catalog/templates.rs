//! Templates (`recipes/catalog/templates.toml` and `recipes/templates/`): recipes
//! whose images other recipes start from with `[image] template = "NAME"`.

use super::error::CatalogError;
use super::raw::TemplatesFile;
use super::runtime::is_name;

const FILE: &str = "templates.toml";

/// A template: a recipe that is built as `boxwright/template-NAME:latest`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Template {
    pub name: String,
    pub title: String,
    pub description: String,
    /// File name in `recipes/templates/`.
    pub file: String,
    /// The recipe.
    pub recipe: &'static str,
}

/// The image a recipe with `template = "NAME"` starts from: the template's
/// recipe built and tagged under this name in the local store, or pushed
/// under it to a registry namespace (`HOST/ORG/boxwright/template-NAME:latest`,
/// see `builder::template`).
pub fn template_image(name: &str) -> String {
    format!("boxwright/template-{name}:latest")
}

pub(crate) fn parse(
    text: &str,
    recipes: &'static [(&'static str, &'static str)],
) -> Result<Vec<Template>, CatalogError> {
    let file: TemplatesFile =
        toml::from_str(text).map_err(|e| CatalogError::parse(FILE, text, &e))?;
    let mut out: Vec<Template> = Vec::new();
    for t in file.template {
        if !is_name(&t.name) {
            return Err(CatalogError::invalid(FILE, &t.name, "bad template name"));
        }
        if out.iter().any(|o| o.name == t.name) {
            return Err(CatalogError::invalid(FILE, &t.name, "listed twice"));
        }
        let Some((_, recipe)) = recipes.iter().find(|(f, _)| *f == t.file) else {
            return Err(CatalogError::invalid(
                FILE,
                &t.name,
                format!("recipes/templates/{} is not built into boxwright", t.file),
            ));
        };
        out.push(Template {
            name: t.name,
            title: t.title,
            description: t.description,
            file: t.file,
            recipe,
        });
    }
    if let Some((orphan, _)) = recipes
        .iter()
        .find(|(f, _)| !out.iter().any(|t| t.file == *f))
    {
        return Err(CatalogError::invalid(
            FILE,
            orphan,
            "a template recipe with no entry in templates.toml",
        ));
    }
    Ok(out)
}
