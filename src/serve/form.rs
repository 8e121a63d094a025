//! The Images page's build form, turned into a recipe: the server never
//! builds from anything but recipe text, so a form build and a recipe build
//! are the same build.

use serde::Deserialize;

use super::api::present;

/// What the page's build form sends (`{"form": {...}}` of `POST /api/builds`).
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct BuildForm {
    /// `scratch` (the default), `byoi` or `template`.
    #[serde(deserialize_with = "present")]
    pub mode: Option<String>,
    /// Template (optional in scratch mode, required in template mode).
    #[serde(deserialize_with = "present")]
    pub template: Option<String>,
    /// Scratch without a template: the base image (default: the blank template).
    #[serde(deserialize_with = "present")]
    pub base: Option<String>,
    /// BYOI: the image to add the dev access layer to.
    #[serde(deserialize_with = "present")]
    pub image: Option<String>,
    /// Runtime name → version.
    pub runtimes: std::collections::BTreeMap<String, String>,
    /// apt package names.
    pub packages: Vec<String>,
    /// Package categories of the catalog.
    pub categories: Vec<String>,
    /// Install commands, one step each.
    pub commands: Vec<String>,
    /// AI tools of the catalog.
    pub ai_tools: Vec<String>,
    /// Custom AI tools: a name and the command that installs it.
    pub custom_ai_tools: Vec<CustomTool>,
    /// VS Code extensions (`publisher.name@version`).
    pub extensions: Vec<String>,
    /// The dev access layer (default on; BYOI always has it).
    #[serde(deserialize_with = "present")]
    pub dev_access: Option<bool>,
    /// Dev access components to leave out.
    pub skip: Vec<String>,
}

/// A custom AI tool of the form.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CustomTool {
    pub name: String,
    pub run: String,
}

/// Why a form does not make a recipe.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("form: {0}")]
pub struct FormError(pub String);

impl BuildForm {
    /// The recipe this form stands for, as TOML text (serialized by the
    /// toml crate, so no field can bend the recipe's structure). The recipe
    /// module then validates it like any recipe.
    pub fn to_recipe(&self) -> Result<String, FormError> {
        use toml::{Table, Value};
        let mut doc = Table::new();
        let mut image = Table::new();
        let mode = self.mode.as_deref().unwrap_or("scratch");
        match mode {
            "byoi" => {
                let img = self
                    .image
                    .as_deref()
                    .filter(|i| !i.trim().is_empty())
                    .ok_or_else(|| FormError("BYOI needs an image reference".into()))?;
                image.insert("base".into(), img.trim().into());
                image.insert("dev_access".into(), true.into());
            }
            "template" => {
                let t = self
                    .template
                    .as_deref()
                    .filter(|t| !t.is_empty())
                    .ok_or_else(|| FormError("pick a template".into()))?;
                image.insert("template".into(), t.into());
            }
            "scratch" => match (&self.template, &self.base) {
                (Some(t), _) if !t.is_empty() => {
                    image.insert("template".into(), t.as_str().into());
                }
                (_, Some(b)) if !b.trim().is_empty() => {
                    image.insert("base".into(), b.trim().into());
                }
                _ => {
                    image.insert("template".into(), "blank".into());
                }
            },
            other => {
                return Err(FormError(format!(
                    "mode '{}' is not scratch, byoi or template",
                    crate::quote::excerpt(other)
                )));
            }
        }
        if mode != "byoi"
            && let Some(d) = self.dev_access
        {
            image.insert("dev_access".into(), d.into());
        }
        doc.insert("image".into(), image.into());
        if !self.runtimes.is_empty() {
            let t: Table = self
                .runtimes
                .iter()
                .map(|(k, v)| (k.clone(), Value::from(v.as_str())))
                .collect();
            doc.insert("runtimes".into(), t.into());
        }
        if !self.packages.is_empty() || !self.categories.is_empty() {
            let mut t = Table::new();
            if !self.packages.is_empty() {
                t.insert("apt".into(), list(&self.packages));
            }
            if !self.categories.is_empty() {
                t.insert("categories".into(), list(&self.categories));
            }
            doc.insert("packages".into(), t.into());
        }
        if !self.ai_tools.is_empty() || !self.custom_ai_tools.is_empty() {
            let mut t = Table::new();
            if !self.ai_tools.is_empty() {
                t.insert("install".into(), list(&self.ai_tools));
            }
            if !self.custom_ai_tools.is_empty() {
                let custom: Vec<Value> = self
                    .custom_ai_tools
                    .iter()
                    .map(|c| {
                        let mut e = Table::new();
                        e.insert("name".into(), c.name.as_str().into());
                        e.insert("run".into(), c.run.as_str().into());
                        Value::Table(e)
                    })
                    .collect();
                t.insert("custom".into(), Value::Array(custom));
            }
            doc.insert("ai_tools".into(), t.into());
        }
        if !self.extensions.is_empty() {
            let mut t = Table::new();
            t.insert("extensions".into(), list(&self.extensions));
            doc.insert("vscode".into(), t.into());
        }
        if !self.skip.is_empty() {
            let mut t = Table::new();
            t.insert("skip".into(), list(&self.skip));
            doc.insert("dev_access".into(), t.into());
        }
        let steps: Vec<Value> = self
            .commands
            .iter()
            .map(|c| c.trim())
            .filter(|c| !c.is_empty())
            .map(|c| {
                let mut s = Table::new();
                s.insert("run".into(), c.into());
                Value::Table(s)
            })
            .collect();
        if !steps.is_empty() {
            doc.insert("steps".into(), Value::Array(steps));
        }
        Ok(format!("# built from the Images page\n{doc}"))
    }
}

fn list(items: &[String]) -> toml::Value {
    toml::Value::Array(items.iter().map(|s| s.trim().into()).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forms_become_recipes() {
        let f = BuildForm {
            mode: Some("scratch".into()),
            template: Some("python-api".into()),
            runtimes: [("node".to_string(), "20".to_string())].into(),
            packages: vec!["jq".into()],
            commands: vec!["echo hi".into(), " ".into()],
            ai_tools: vec!["claude-code".into()],
            ..BuildForm::default()
        };
        let text = f.to_recipe().unwrap();
        let doc: toml::Table = toml::from_str(&text).unwrap();
        assert_eq!(doc["image"]["template"].as_str(), Some("python-api"));
        assert_eq!(doc["runtimes"]["node"].as_str(), Some("20"));
        assert_eq!(doc["steps"].as_array().unwrap().len(), 1);
        let byoi = BuildForm {
            mode: Some("byoi".into()),
            image: Some("127.0.0.1:5000/x:1".into()),
            ..BuildForm::default()
        };
        let doc: toml::Table = toml::from_str(&byoi.to_recipe().unwrap()).unwrap();
        assert_eq!(doc["image"]["base"].as_str(), Some("127.0.0.1:5000/x:1"));
        assert_eq!(doc["image"]["dev_access"].as_bool(), Some(true));
        assert!(
            BuildForm {
                mode: Some("byoi".into()),
                ..BuildForm::default()
            }
            .to_recipe()
            .is_err()
        );
        assert!(
            BuildForm {
                mode: Some("weird".into()),
                ..BuildForm::default()
            }
            .to_recipe()
            .is_err()
        );
        // A command with quotes and newlines stays one string value.
        let tricky = BuildForm {
            mode: Some("template".into()),
            template: Some("blank".into()),
            commands: vec!["echo \"a\"\n[image]\nbase = \"evil\"".into()],
            ..BuildForm::default()
        };
        let doc: toml::Table = toml::from_str(&tricky.to_recipe().unwrap()).unwrap();
        assert_eq!(doc["image"]["template"].as_str(), Some("blank"));
    }
}
