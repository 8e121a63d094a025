//! The recipe text as it may travel with an image: the values of steps'
//! `env` tables replaced, since a step's environment is build-time input
//! (tokens, passwords) that must never be written into an image.

use std::ops::Range;

use toml::de::{DeTable, DeValue};

/// What a step's env value becomes in the recorded recipe.
pub const REDACTED: &str = "<not recorded>";

/// `text` with every `[[steps]]` `env` value replaced by [`REDACTED`]
/// (names, comments and layout kept). Text that does not parse is returned
/// as `None`: it cannot be redacted, so it must not be recorded.
pub fn redact_step_env(text: &str) -> Option<String> {
    let root = DeTable::parse(text).ok()?;
    let mut spans: Vec<Range<usize>> = Vec::new();
    if let Some(steps) = root.get_ref().get("steps")
        && let DeValue::Array(items) = steps.get_ref()
    {
        for step in items {
            let DeValue::Table(t) = step.get_ref() else {
                continue;
            };
            let Some(env) = t.get("env") else { continue };
            match env.get_ref() {
                DeValue::Table(vars) => spans.extend(vars.values().map(|v| v.span())),
                // Not a table: the recipe would not have loaded; hide it whole.
                _ => spans.push(env.span()),
            }
        }
    }
    spans.sort_by_key(|s| s.start);
    let quoted = format!("\"{REDACTED}\"");
    let mut out = String::with_capacity(text.len());
    let mut at = 0;
    for span in spans {
        if span.start < at || span.end > text.len() {
            return None;
        }
        out.push_str(&text[at..span.start]);
        out.push_str(&quoted);
        at = span.end;
    }
    out.push_str(&text[at..]);
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn step_env_values_go_names_and_the_rest_stay() {
        let text = r#"# keep me
[image]
base = "scratch"
[[steps]]
run = "echo $TOKEN"
env = { TOKEN = "s3cr3t-value", MODE = 'fast' }

[[steps]]
run = "make"
[steps.env]
PASSWORD = """multi
line"""

[config]
env = { LANG = "C.UTF-8" }
"#;
        let out = redact_step_env(text).unwrap();
        assert!(!out.contains("s3cr3t-value") && !out.contains("fast") && !out.contains("multi"));
        assert!(out.contains("# keep me"));
        assert!(out.contains(r#"TOKEN = "<not recorded>""#), "{out}");
        assert!(out.contains("PASSWORD = \"<not recorded>\""), "{out}");
        assert!(
            out.contains(r#"LANG = "C.UTF-8""#),
            "image env stays: {out}"
        );
        // Still a valid recipe.
        assert!(DeTable::parse(&out).is_ok());
    }

    #[test]
    fn dotted_keys_are_found_too() {
        let text = "[image]\nbase = \"scratch\"\n[[steps]]\nrun = \"x\"\nenv.TOKEN = \"abc123\"\n";
        let out = redact_step_env(text).unwrap();
        assert!(!out.contains("abc123"), "{out}");
    }
}
