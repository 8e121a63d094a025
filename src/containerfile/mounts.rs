//! `RUN --mount=...`: a comma-separated list of `key=value` (CSV: a field
//! may be quoted whole, `"source=a,b"`, and a value may hold a quoted part,
//! `target="/a b"`).

use super::ast::{Pos, RunMount};
use super::flags::{parse_bool, unquote};
use super::parse::Fail;

/// Splits a `--mount` value into fields, each with the character offset
/// where it starts. A field that starts with `"` is a CSV quoted field (`""`
/// is a quote); elsewhere a `"..."` part keeps its commas and its quotes.
pub(crate) fn csv_fields(value: &str) -> Vec<(String, usize)> {
    let chars: Vec<char> = value.chars().collect();
    let mut fields = Vec::new();
    let mut i = 0;
    loop {
        let start = i;
        let mut field = String::new();
        if chars.get(i) == Some(&'"') {
            i += 1;
            while i < chars.len() {
                if chars[i] == '"' {
                    if chars.get(i + 1) == Some(&'"') {
                        field.push('"');
                        i += 2;
                        continue;
                    }
                    i += 1;
                    break;
                }
                field.push(chars[i]);
                i += 1;
            }
        }
        let mut quoted = false;
        while i < chars.len() && (quoted || chars[i] != ',') {
            if chars[i] == '"' {
                quoted = !quoted;
            }
            field.push(chars[i]);
            i += 1;
        }
        fields.push((field, start));
        if i >= chars.len() {
            return fields;
        }
        i += 1; // `,`
    }
}

/// The keys each mount type takes (aliases included), for messages.
const BIND_KEYS: &str =
    "target (dst, destination), source (src), from, rw (readwrite), ro (readonly)";
const CACHE_KEYS: &str = "target (dst, destination), id, sharing, ro (readonly), rw (readwrite), \
                          mode, uid, gid, from, source (src)";
const TMPFS_KEYS: &str = "target (dst, destination), size";
const SECRET_KEYS: &str = "id, target (dst, destination), env, required, mode, uid, gid";

/// One `key[=value]` of a mount.
struct Opt {
    /// Lowercased, aliases folded (`dst` is `target`).
    key: String,
    /// As written, for messages.
    written: String,
    value: Option<String>,
    /// Where the field is in the file.
    pos: Pos,
}

/// Parses the raw value of one `--mount` flag at `pos`; `pos_of(offset)` is
/// where the value's character `offset` is, for errors about one option.
pub(crate) fn parse_mount(
    raw: &str,
    pos: Pos,
    pos_of: &dyn Fn(usize) -> Pos,
    escape: char,
) -> Result<RunMount, Fail> {
    let fail = |at: Pos, message: String| Err(Fail::new(at, message));
    let mut kind = ("bind".to_string(), pos);
    let mut opts: Vec<Opt> = Vec::new();
    for (field, offset) in csv_fields(raw) {
        if field.trim().is_empty() {
            continue;
        }
        let (written, value) = match field.split_once('=') {
            Some((k, v)) => (k.trim().to_string(), Some(v.to_string())),
            None => (field.trim().to_string(), None),
        };
        let key = written.to_ascii_lowercase();
        if key == "type" {
            let value = unquote(value.as_deref().unwrap_or(""), escape).to_ascii_lowercase();
            kind = (value, pos_of(offset));
            continue;
        }
        // Aliases are folded so that `dst=` overrides an earlier `target=`.
        let key = match key.as_str() {
            "dst" | "destination" => "target".to_string(),
            "src" => "source".to_string(),
            "readonly" => "ro".to_string(),
            "readwrite" => "rw".to_string(),
            _ => key,
        };
        opts.push(Opt {
            key,
            written,
            value,
            pos: pos_of(offset),
        });
    }
    // A later key overrides an earlier one, as in Docker: keep the last of
    // each (a set rather than a rescan, so a hostile list stays linear).
    let mut seen = std::collections::HashSet::new();
    opts.reverse();
    opts.retain(|o| seen.insert(o.key.clone()));
    opts.reverse();
    let (kind, kind_pos) = kind;
    let valid: &[&str] = match kind.as_str() {
        "bind" => &["target", "source", "from", "rw", "ro"],
        "cache" => &[
            "target", "id", "sharing", "ro", "rw", "mode", "uid", "gid", "from", "source",
        ],
        "tmpfs" => &["target", "size"],
        "secret" => &["id", "target", "env", "required", "mode", "uid", "gid"],
        "ssh" => {
            return fail(
                kind_pos,
                "RUN --mount=type=ssh is not supported: boxwright forwards no SSH agent; \
                 fetch with https and a token from a secret mount (--mount=type=secret,id=...) instead"
                    .to_string(),
            );
        }
        other => {
            return fail(
                kind_pos,
                format!(
                    "unknown mount type '{}': use bind, cache, tmpfs or secret",
                    crate::quote::excerpt(other)
                ),
            );
        }
    };
    for o in &opts {
        if !valid.contains(&o.key.as_str()) {
            let list = match kind.as_str() {
                "bind" => BIND_KEYS,
                "cache" => CACHE_KEYS,
                "tmpfs" => TMPFS_KEYS,
                _ => SECRET_KEYS,
            };
            return fail(
                o.pos,
                format!(
                    "unknown option '{}' for a {kind} mount: options are {list}",
                    crate::quote::excerpt(&o.written)
                ),
            );
        }
        let is_bool = matches!(o.key.as_str(), "ro" | "rw" | "required");
        if !is_bool && o.value.as_deref().is_none_or(str::is_empty) {
            let example = match o.key.as_str() {
                "target" => "/root/.cache",
                "id" => "mycache",
                "sharing" => "locked",
                "from" => "build",
                "source" => "/src",
                "env" => "TOKEN",
                "size" => "64m",
                "mode" => "0755",
                _ => "1000",
            };
            let written = crate::quote::excerpt(&o.written);
            return fail(
                o.pos,
                format!("mount option '{written}' needs a value, such as {written}={example}"),
            );
        }
    }
    let find = |key: &str| opts.iter().find(|o| o.key == key);
    let get = |key: &str| find(key).and_then(|o| o.value.clone());
    let flag = |key: &str| -> Result<Option<bool>, Fail> {
        match find(key) {
            None => Ok(None),
            Some(Opt { value: None, .. }) => Ok(Some(true)),
            Some(o) => {
                let v = o.value.as_deref().unwrap_or_default();
                match parse_bool(&unquote(v, escape)) {
                    Some(b) => Ok(Some(b)),
                    None => Err(Fail::new(
                        o.pos,
                        format!(
                            "mount option '{}' takes true or false, not '{}'",
                            crate::quote::excerpt(&o.written),
                            crate::quote::excerpt(v)
                        ),
                    )),
                }
            }
        }
    };
    // `rw` and `ro` both given: the one written last wins (opts keeps order).
    let writable = |default: bool| -> Result<bool, Fail> {
        let ro = flag("ro")?;
        let rw = flag("rw")?;
        let last = opts
            .iter()
            .rev()
            .find(|o| o.key == "ro" || o.key == "rw")
            .map(|o| o.key.as_str());
        Ok(match (last, ro, rw) {
            (Some("ro"), Some(ro), _) => !ro,
            (Some("rw"), _, Some(rw)) => rw,
            _ => default,
        })
    };
    let target = get("target");
    let needs_target = |example: &str| -> Result<String, Fail> {
        match &target {
            Some(t) => Ok(t.clone()),
            None => Err(Fail::new(
                pos,
                format!("RUN --mount=type={kind} needs target=, such as --mount={example}"),
            )),
        }
    };
    match kind.as_str() {
        "bind" => Ok(RunMount::Bind {
            target: needs_target("type=bind,source=go.sum,target=go.sum")?,
            source: get("source"),
            from: get("from"),
            readwrite: writable(false)?,
        }),
        "cache" => {
            let sharing = match find("sharing") {
                None => None,
                Some(o) => {
                    let raw = o.value.as_deref().unwrap_or_default();
                    let s = unquote(raw, escape).to_ascii_lowercase();
                    if !matches!(s.as_str(), "shared" | "private" | "locked") {
                        return fail(
                            o.pos,
                            format!(
                                "mount option sharing takes shared, private or locked, not '{}'",
                                crate::quote::excerpt(raw)
                            ),
                        );
                    }
                    Some(s)
                }
            };
            Ok(RunMount::Cache {
                target: needs_target("type=cache,target=/root/.cache/pip")?,
                id: get("id"),
                sharing,
                readonly: !writable(true)?,
                mode: get("mode"),
                uid: get("uid"),
                gid: get("gid"),
                from: get("from"),
                source: get("source"),
            })
        }
        "tmpfs" => Ok(RunMount::Tmpfs {
            target: needs_target("type=tmpfs,target=/tmp")?,
            size: get("size"),
        }),
        _ => {
            // Without id, Docker names the secret after the target's file name.
            let id = match (get("id"), &target) {
                (Some(id), _) => id,
                (None, Some(t)) => {
                    let t = unquote(t, escape);
                    let base = t.trim_end_matches('/').rsplit('/').next().unwrap_or("");
                    if base.is_empty() {
                        return fail(
                            pos,
                            "RUN --mount=type=secret needs id=, such as --mount=type=secret,id=npmrc,target=/root/.npmrc"
                                .to_string(),
                        );
                    }
                    base.to_string()
                }
                (None, None) => {
                    return fail(
                        pos,
                        "RUN --mount=type=secret needs id=, such as --mount=type=secret,id=npmrc,target=/root/.npmrc"
                            .to_string(),
                    );
                }
            };
            Ok(RunMount::Secret {
                id,
                target,
                env: get("env"),
                required: flag("required")?.unwrap_or(false),
                mode: get("mode"),
                uid: get("uid"),
                gid: get("gid"),
            })
        }
    }
}
