//! `boxwright catalog`: what toolbox recipes can ask for.

use boxwright::catalog::{Catalog, template_image};

use super::table::render as table;
use super::{CliResult, Failure, Global};

#[derive(clap::Args, Debug)]
pub struct CatalogArgs {
    #[command(subcommand)]
    pub what: What,
}

#[derive(clap::Subcommand, Debug)]
pub enum What {
    /// Runtimes, their versions and how each is installed ([runtimes]).
    Runtimes,
    /// System-package categories ([packages] categories).
    Packages {
        /// Show only categories and packages matching WORD.
        #[arg(long, value_name = "WORD")]
        search: Option<String>,
    },
    /// AI coding tools ([ai_tools] install).
    AiTools,
    /// The components of the dev access layer ([dev_access] skip).
    DevAccess,
    /// Templates ([image] template).
    Templates {
        /// Print the recipe of template NAME.
        #[arg(long, value_name = "NAME")]
        show: Option<String>,
    },
}

pub fn run(_global: &Global, a: &CatalogArgs) -> CliResult {
    let catalog = Catalog::builtin().map_err(|e| Failure::failed(e.to_string()))?;
    let text = match &a.what {
        What::Runtimes => runtimes(catalog),
        What::Packages { search } => packages(catalog, search.as_deref())?,
        What::AiTools => ai_tools(catalog),
        What::DevAccess => dev_access(catalog),
        What::Templates { show: Some(name) } => match catalog.template(name) {
            Some(t) => t.recipe.to_string(),
            None => {
                let names: Vec<&str> = catalog.templates.iter().map(|t| t.name.as_str()).collect();
                return Err(Failure::input(format!(
                    "unknown template '{name}' (expected one of: {})",
                    names.join(", ")
                )));
            }
        },
        What::Templates { show: None } => templates(catalog),
    };
    super::output::emit(&text)
}

fn runtimes(c: &Catalog) -> String {
    let mut rows = Vec::new();
    for r in &c.runtimes {
        for v in &r.versions {
            rows.push(vec![
                r.name.clone(),
                v.version.clone(),
                if v.version == r.default { "*" } else { "" }.to_string(),
                v.methods(),
            ]);
        }
    }
    table(&["RUNTIME", "VERSION", "DEFAULT", "INSTALLED FROM"], &rows)
}

fn packages(c: &Catalog, search: Option<&str>) -> Result<String, Failure> {
    let mut rows = Vec::new();
    for cat in &c.categories {
        let packages = match search {
            Some(word) if !cat.matches(word) => continue,
            Some(word) => cat.matching_packages(word),
            None => cat.apt.iter().map(String::as_str).collect(),
        };
        rows.push(vec![
            cat.name.clone(),
            cat.title.clone(),
            packages.join(" "),
        ]);
    }
    if rows.is_empty()
        && let Some(word) = search
    {
        return Err(Failure::failed(format!(
            "no package category or package matches '{word}'; [packages] apt = [...] takes any apt package name"
        )));
    }
    Ok(table(&["CATEGORY", "TITLE", "APT PACKAGES"], &rows))
}

fn ai_tools(c: &Catalog) -> String {
    let mut rows: Vec<Vec<String>> = c
        .tools
        .iter()
        .map(|t| {
            let source = match (&t.npm, &t.unavailable) {
                (Some(npm), _) => format!("npm {}", npm.spec()),
                (None, Some(why)) => format!("unavailable: {why}"),
                (None, None) => String::new(),
            };
            vec![t.name.clone(), t.bin.clone(), source]
        })
        .collect();
    rows.push(vec![
        "custom".into(),
        "-".into(),
        "custom = [{ name = \"NAME\", run = \"COMMAND\" }]".into(),
    ]);
    table(&["TOOL", "COMMAND", "INSTALLED FROM"], &rows)
}

fn dev_access(c: &Catalog) -> String {
    let rows: Vec<Vec<String>> = c
        .dev_access
        .iter()
        .map(|d| {
            let source = if let Some(a) = &d.artifact {
                format!("upstream {} {}", a.component, a.version)
            } else if let Some(t) = &d.tool {
                format!("AI tool {t}")
            } else {
                "the base's packages".to_string()
            };
            vec![
                d.name.clone(),
                d.port.map(|p| p.to_string()).unwrap_or_else(|| "-".into()),
                source,
            ]
        })
        .collect();
    table(&["COMPONENT", "PORT", "INSTALLED FROM"], &rows)
}

fn templates(c: &Catalog) -> String {
    let rows: Vec<Vec<String>> = c
        .templates
        .iter()
        .map(|t| {
            vec![
                t.name.clone(),
                template_image(&t.name),
                t.description.clone(),
            ]
        })
        .collect();
    table(&["TEMPLATE", "IMAGE", "DESCRIPTION"], &rows)
}
