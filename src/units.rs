//! Byte sizes for humans: printed in binary units as `du -h` does, and read
//! from flags as podman reads `--memory` (`512m`, `64G`, `1.5GiB`, bytes).

/// Sizes for humans, in binary units as `du -h` prints them.
pub fn human_bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = n as f64;
    let mut u = 0;
    while v >= 1024.0 && u < UNITS.len() - 1 {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 {
        format!("{n} B")
    } else {
        format!("{v:.1} {}", UNITS[u])
    }
}

/// Why a size could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "'{0}' is not a size: write a number of bytes, optionally followed by k, m, g or t (binary units, e.g. 64g or 512MiB)"
)]
pub struct SizeError(pub String);

/// Reads `1024`, `512k`, `64G`, `1.5GiB`, `10 MB` (units are binary, as
/// podman's `--memory` reads them; the case and a `B`/`iB` suffix do not matter).
pub fn parse_size(text: &str) -> Result<u64, SizeError> {
    let bad = || SizeError(text.chars().take(40).collect());
    let t = text.trim().to_ascii_lowercase();
    let digits_end = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (number, unit) = t.split_at(digits_end);
    let number: f64 = number.parse().map_err(|_| bad())?;
    let unit = unit.trim();
    let unit = unit
        .strip_suffix("ib")
        .or_else(|| unit.strip_suffix('b'))
        .unwrap_or(unit);
    let shift = match unit {
        "" => 0,
        "k" => 10,
        "m" => 20,
        "g" => 30,
        "t" => 40,
        _ => return Err(bad()),
    };
    let bytes = number * (1u64 << shift) as f64;
    if !bytes.is_finite() || bytes < 0.0 || bytes > u64::MAX as f64 {
        return Err(bad());
    }
    Ok(bytes as u64)
}

/// Why a duration could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("'{0}' is not a duration: write it as 90s, 10m, 2h or 1h 30m")]
pub struct DurationError(pub String);

/// Reads a duration in whole seconds: `90s`, `10m`, `1h 30m` (humantime's
/// forms; a bare number is seconds).
pub fn parse_duration(text: &str) -> Result<u64, DurationError> {
    let t = text.trim();
    if let Ok(seconds) = t.parse::<u64>() {
        return Ok(seconds);
    }
    humantime::parse_duration(t)
        .map(|d| d.as_secs())
        .map_err(|_| DurationError(text.chars().take(40).collect()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn human_bytes_uses_binary_units() {
        assert_eq!(human_bytes(512), "512 B");
        assert_eq!(human_bytes(1536), "1.5 KiB");
        assert_eq!(human_bytes(3 * 1024 * 1024), "3.0 MiB");
    }

    #[test]
    fn durations_parse_to_seconds() {
        assert_eq!(parse_duration("90"), Ok(90));
        assert_eq!(parse_duration("90s"), Ok(90));
        assert_eq!(parse_duration("10m"), Ok(600));
        assert_eq!(parse_duration("1h 30m"), Ok(5400));
        assert!(parse_duration("soon").is_err());
        assert!(parse_duration("").is_err());
    }

    #[test]
    fn sizes_parse_in_binary_units() {
        assert_eq!(parse_size("1024"), Ok(1024));
        assert_eq!(parse_size("512k"), Ok(512 << 10));
        assert_eq!(parse_size("64G"), Ok(64 << 30));
        assert_eq!(parse_size("64GiB"), Ok(64 << 30));
        assert_eq!(parse_size("10 MB"), Ok(10 << 20));
        assert_eq!(parse_size("1.5g"), Ok(3 << 29));
        for bad in ["", "g", "-1", "12x", "1e9", "1..2m"] {
            assert!(parse_size(bad).is_err(), "{bad}");
        }
    }
}
