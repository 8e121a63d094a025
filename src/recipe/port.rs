//! Exposed ports: `expose = [22, "8443/tcp", "53/udp"]`.

use std::fmt;

use toml::de::DeValue;

use super::error::RecipeError;
use super::reader::{self, Doc, Value};

/// A port the image's config declares as exposed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Port {
    /// 1..=65535.
    pub number: u16,
    pub protocol: Protocol,
}

/// Transport protocol of an exposed port.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Protocol {
    Tcp,
    Udp,
}

impl fmt::Display for Protocol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Protocol::Tcp => "tcp",
            Protocol::Udp => "udp",
        })
    }
}

impl fmt::Display for Port {
    /// `22/tcp`: the key form of an OCI config's `ExposedPorts`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.number, self.protocol)
    }
}

/// Reads `expose` of table `table`. A port listed twice is kept once, at its first place.
pub(super) fn parse_expose(
    doc: &Doc<'_>,
    value: &Value<'_>,
    table: &str,
) -> Result<Vec<Port>, RecipeError> {
    let DeValue::Array(items) = value.get_ref() else {
        return Err(doc.invalid(
            &value.span(),
            table,
            "'expose' must be a list of ports, such as [22, \"53/udp\"]",
        ));
    };
    let mut ports = Vec::new();
    for (i, item) in items.iter().enumerate() {
        let port = match item.get_ref() {
            DeValue::Integer(_) => reader::integer(item)
                .and_then(|n| u16::try_from(n).ok())
                .and_then(tcp),
            DeValue::String(s) => parse_port(s),
            _ => None,
        };
        let Some(port) = port else {
            return Err(doc.invalid(
                &item.span(),
                table,
                format!(
                    "'expose[{i}]' must be a port number 1-65535 or a string \"PORT/tcp\" or \"PORT/udp\"; got {}",
                    doc.written(&item.span())
                ),
            ));
        };
        if !ports.contains(&port) {
            ports.push(port);
        }
    }
    Ok(ports)
}

fn tcp(number: u16) -> Option<Port> {
    (number != 0).then_some(Port {
        number,
        protocol: Protocol::Tcp,
    })
}

/// `"8443"` (tcp), `"8443/tcp"`, `"53/udp"`.
fn parse_port(text: &str) -> Option<Port> {
    let (number, protocol) = match text.split_once('/') {
        Some((number, "tcp")) => (number, Protocol::Tcp),
        Some((number, "udp")) => (number, Protocol::Udp),
        Some(_) => return None,
        None => (text, Protocol::Tcp),
    };
    if number.is_empty() || !number.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let number: u16 = number.parse().ok()?;
    (number != 0).then_some(Port { number, protocol })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn port_strings() {
        let p = |number, protocol| Some(Port { number, protocol });
        assert_eq!(parse_port("8443/tcp"), p(8443, Protocol::Tcp));
        assert_eq!(parse_port("53/udp"), p(53, Protocol::Udp));
        assert_eq!(parse_port("22"), p(22, Protocol::Tcp));
        assert_eq!(parse_port("65535/udp"), p(65535, Protocol::Udp));
        for bad in [
            "", "0", "0/tcp", "65536", "80/sctp", "80/TCP", "/tcp", "+80", "80/", "a/tcp",
            "1-2/tcp",
        ] {
            assert_eq!(parse_port(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn display() {
        assert_eq!(
            parse_port("53/udp").map(|p| p.to_string()).as_deref(),
            Some("53/udp")
        );
        assert_eq!(tcp(22).map(|p| p.to_string()).as_deref(), Some("22/tcp"));
    }
}
