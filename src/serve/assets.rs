//! The page's files, built into the binary (no CDN, no network: the page
//! works air-gapped and the two README commands still do all the set-up).

const INDEX: &str = include_str!("../../web/index.html");
const APP_JS: &str = include_str!("../../web/app.js");
const APP_CSS: &str = include_str!("../../web/app.css");
const OPENAPI: &str = include_str!("../../web/openapi.json");

/// A file of the page and its content type.
pub(crate) fn get(name: &str) -> Option<(&'static str, &'static str)> {
    match name {
        "index.html" => Some((INDEX, "text/html; charset=utf-8")),
        "app.js" => Some((APP_JS, "text/javascript; charset=utf-8")),
        "app.css" => Some((APP_CSS, "text/css; charset=utf-8")),
        "openapi.json" => Some((OPENAPI, "application/json")),
        _ => None,
    }
}
