//! Secrets that must never reach a log line, an error or Debug output.

use std::fmt;

/// A password, token or other secret string. `Debug` prints `<redacted>` and
/// there is deliberately no `Display`: the only way to the value is
/// [`Secret::expose`], which makes every use visible in review.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Secret {
        Secret(value.into())
    }

    /// The secret value, for building a request header or a credentials file.
    pub fn expose(&self) -> &str {
        &self.0
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

impl From<&str> for Secret {
    fn from(s: &str) -> Secret {
        Secret::new(s)
    }
}

impl From<String> for Secret {
    fn from(s: String) -> Secret {
        Secret(s)
    }
}

/// What a user presents to a registry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Credential {
    /// Username and password (or a personal access token used as password).
    Basic { username: String, password: Secret },
    /// An OAuth2 refresh token (Docker's `identitytoken`), exchanged at the
    /// registry's token endpoint.
    IdentityToken(Secret),
}

impl Credential {
    pub fn basic(username: impl Into<String>, password: impl Into<Secret>) -> Credential {
        Credential::Basic {
            username: username.into(),
            password: password.into(),
        }
    }

    /// The user name, for messages (`<token>` for an identity token).
    pub fn username(&self) -> &str {
        match self {
            Credential::Basic { username, .. } => username,
            Credential::IdentityToken(_) => "<token>",
        }
    }

    /// The value of an `Authorization: Basic` header, when this is a username/password.
    pub(crate) fn basic_header(&self) -> Option<Secret> {
        use base64::Engine as _;
        match self {
            Credential::Basic { username, password } => Some(Secret(format!(
                "Basic {}",
                base64::engine::general_purpose::STANDARD
                    .encode(format!("{username}:{}", password.expose()))
            ))),
            Credential::IdentityToken(_) => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_output_never_shows_the_secret() {
        let c = Credential::basic("alice", "hunter2-very-secret");
        let dbg = format!("{c:?} {:?}", c.basic_header());
        assert!(dbg.contains("alice"));
        assert!(!dbg.contains("hunter2"));
        assert!(!dbg.contains("YWxpY2U6aHVudGVy")); // base64 of the pair
        assert!(format!("{:?}", Credential::IdentityToken("tok-123".into())).contains("redacted"));
    }
}
