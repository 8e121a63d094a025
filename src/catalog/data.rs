//! The catalog's sources, built into the binary.

/// The text of every catalog file.
pub(crate) struct Sources {
    pub runtimes: &'static str,
    pub packages: &'static str,
    pub ai_tools: &'static str,
    pub dev_access: &'static str,
    pub templates: &'static str,
    /// `(file name, recipe text)` of every file in `recipes/templates/`.
    pub template_recipes: &'static [(&'static str, &'static str)],
}

/// The built-in catalog.
pub(crate) const SOURCES: Sources = Sources {
    runtimes: include_str!("../../recipes/catalog/runtimes.toml"),
    packages: include_str!("../../recipes/catalog/packages.toml"),
    ai_tools: include_str!("../../recipes/catalog/ai-tools.toml"),
    dev_access: include_str!("../../recipes/catalog/dev-access.toml"),
    templates: include_str!("../../recipes/catalog/templates.toml"),
    template_recipes: &[
        (
            "blank.toml",
            include_str!("../../recipes/templates/blank.toml"),
        ),
        (
            "python-api.toml",
            include_str!("../../recipes/templates/python-api.toml"),
        ),
        (
            "node-fullstack.toml",
            include_str!("../../recipes/templates/node-fullstack.toml"),
        ),
        (
            "go-microservice.toml",
            include_str!("../../recipes/templates/go-microservice.toml"),
        ),
        (
            "java-api.toml",
            include_str!("../../recipes/templates/java-api.toml"),
        ),
        (
            "rust.toml",
            include_str!("../../recipes/templates/rust.toml"),
        ),
        (
            "data-science.toml",
            include_str!("../../recipes/templates/data-science.toml"),
        ),
        (
            "ai-agents.toml",
            include_str!("../../recipes/templates/ai-agents.toml"),
        ),
    ],
};
