//! Parsing `WWW-Authenticate` challenges (RFC 7235) as registries send them.

use std::collections::BTreeMap;

/// One authentication challenge.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Challenge {
    Basic,
    Bearer {
        realm: String,
        service: Option<String>,
        /// The scope the registry asked for, if it said.
        scope: Option<String>,
    },
}

/// Parses a header value; returns the challenges boxwright understands, in
/// the order given (unknown schemes are skipped).
pub(crate) fn parse(header: &str) -> Vec<Challenge> {
    let mut out = Vec::new();
    let mut rest = header.trim();
    while !rest.is_empty() {
        let scheme_end = rest
            .find(|c: char| c.is_whitespace() || c == ',')
            .unwrap_or(rest.len());
        let scheme = rest[..scheme_end].to_ascii_lowercase();
        // Every separator, not only space and tab: a vertical tab or a
        // newline left here would start an empty scheme forever (found by
        // the auth_challenge fuzz target as a hang).
        rest = rest[scheme_end..].trim_start_matches(|c: char| c.is_whitespace() || c == ',');
        let mut params = BTreeMap::new();
        // Parameters are `key=value` (value quoted or a token), comma separated;
        // a word not followed by '=' starts the next challenge.
        while let Some(eq) = rest.find('=') {
            let key = &rest[..eq];
            if key.is_empty() || key.contains([' ', ',', '\t']) {
                break;
            }
            let after = &rest[eq + 1..];
            let (value, remaining) = if let Some(q) = after.strip_prefix('"') {
                let mut v = String::new();
                let mut chars = q.char_indices();
                let mut end = q.len();
                while let Some((i, c)) = chars.next() {
                    match c {
                        '\\' => {
                            if let Some((_, n)) = chars.next() {
                                v.push(n);
                            }
                        }
                        '"' => {
                            end = i + 1;
                            break;
                        }
                        c => v.push(c),
                    }
                }
                (v, &q[end.min(q.len())..])
            } else {
                let end = after.find(',').unwrap_or(after.len());
                (after[..end].trim().to_string(), &after[end..])
            };
            params.insert(key.to_ascii_lowercase(), value);
            rest = remaining.trim_start_matches(|c: char| c.is_whitespace() || c == ',');
        }
        match scheme.as_str() {
            "basic" => out.push(Challenge::Basic),
            "bearer" => {
                if let Some(realm) = params.remove("realm") {
                    out.push(Challenge::Bearer {
                        realm,
                        service: params.remove("service"),
                        scope: params.remove("scope"),
                    });
                }
            }
            _ => {}
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_whitespace_separates_and_parsing_always_ends() {
        for header in [
            "a\nb",
            "Basic\x0brealm=x",
            "\u{a0}Bearer\u{2028}realm=r",
            "x\r\n\x0c",
        ] {
            let _ = parse(header);
        }
        assert_eq!(parse("Basic\nrealm=x"), [Challenge::Basic]);
    }

    #[test]
    fn parses_the_usual_forms() {
        assert_eq!(parse(r#"Basic realm="boxwright-test""#), [Challenge::Basic]);
        assert_eq!(
            parse(
                r#"Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/ubuntu:pull,push""#
            ),
            [Challenge::Bearer {
                realm: "https://auth.docker.io/token".into(),
                service: Some("registry.docker.io".into()),
                scope: Some("repository:library/ubuntu:pull,push".into()),
            }]
        );
        assert_eq!(
            parse(r#"bearer realm=http://x/t, service="a \"b\"""#),
            [Challenge::Bearer {
                realm: "http://x/t".into(),
                service: Some("a \"b\"".into()),
                scope: None,
            }]
        );
        assert_eq!(
            parse(r#"Negotiate, Basic realm="r", Bearer realm="http://t""#),
            [
                Challenge::Basic,
                Challenge::Bearer {
                    realm: "http://t".into(),
                    service: None,
                    scope: None
                }
            ]
        );
        assert!(parse("").is_empty());
        assert!(parse("Bearer service=x").is_empty());
    }
}
