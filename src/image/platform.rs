//! Platforms in OCI (Go) names: the host's, `--platform` text, and which index entry a
//! platform runs best.
//!
//! Matching follows containerd's `platforms.Only` so that `pull` and loading an `oci:`
//! layout pick the child containerd, Docker and podman would: names are normalised
//! (a missing arm64 variant is `v8`, amd64 `v1` is no variant, a missing arm variant is
//! `v7`), and a platform also runs the older variants of its architecture, best first.

use crate::media::Platform;

/// The platform this process runs on, in the names OCI images use (Go's `GOARCH`):
/// `x86_64` → `amd64`, `aarch64` → `arm64` variant `v8`, `arm` → `arm` variant `v7`, …
pub fn host_platform() -> Platform {
    platform_for(
        std::env::consts::ARCH,
        std::env::consts::OS,
        cfg!(target_endian = "little"),
    )
}

/// Maps a Rust target architecture and OS to OCI names.
fn platform_for(rust_arch: &str, rust_os: &str, little_endian: bool) -> Platform {
    let (arch, variant) = match rust_arch {
        "x86_64" => ("amd64", None),
        "x86" => ("386", None),
        "aarch64" => ("arm64", Some("v8")),
        // Rust's `arm` targets boxwright supports are ARMv7 (armv7-unknown-linux-*).
        "arm" => ("arm", Some("v7")),
        "powerpc64" if little_endian => ("ppc64le", None),
        "powerpc64" => ("ppc64", None),
        "mips64" if little_endian => ("mips64le", None),
        "mips" if little_endian => ("mipsle", None),
        "loongarch64" => ("loong64", None),
        other => (other, None), // riscv64, s390x, mips64, mips: same names in Go
    };
    Platform {
        architecture: arch.to_string(),
        os: rust_os.to_string(),
        os_version: None,
        os_features: None,
        variant: variant.map(str::to_string),
    }
}

/// A `--platform` value that is not `os/arch[/variant]` (the text as given).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("platform '{0}' must be os/arch[/variant], e.g. linux/arm64/v8")]
pub struct PlatformError(pub String);

/// Parses `os/arch[/variant]`, as `--platform` takes it.
pub fn parse_platform(s: &str) -> Result<Platform, PlatformError> {
    let parts: Vec<&str> = s.split('/').collect();
    if parts.len() < 2 || parts.len() > 3 || parts.iter().any(|p| p.is_empty()) {
        return Err(PlatformError(s.to_string()));
    }
    Ok(Platform {
        os: parts[0].to_string(),
        architecture: parts[1].to_string(),
        os_version: None,
        os_features: None,
        variant: parts.get(2).map(|v| v.to_string()),
    })
}

/// `os/arch[/variant]`, as Docker and podman print platforms.
pub fn platform_name(p: &Platform) -> String {
    match &p.variant {
        Some(v) => format!("{}/{}/{v}", p.os, p.architecture),
        None => format!("{}/{}", p.os, p.architecture),
    }
}

/// An architecture and variant in canonical spelling.
type Arch = (String, Option<String>);

/// containerd's normalisation: lower case, Go's names for the common aliases, and the
/// default variant of each architecture written one way only.
fn normalize(arch: &str, variant: Option<&str>) -> Arch {
    let arch = arch.to_ascii_lowercase();
    let variant = variant
        .map(str::to_ascii_lowercase)
        .filter(|v| !v.is_empty());
    let (arch, variant) = match (arch.as_str(), variant.as_deref()) {
        ("i386", _) => ("386", None),
        ("x86_64" | "x86-64" | "amd64", Some("v1")) => ("amd64", None),
        ("x86_64" | "x86-64" | "amd64", v) => ("amd64", v),
        // Most indexes write arm64 without a variant; v8 is what that means.
        ("aarch64" | "arm64", Some("8" | "v8")) => ("arm64", None),
        ("aarch64" | "arm64", v) => ("arm64", v),
        ("armhf", _) => ("arm", Some("v7")),
        ("armel", _) => ("arm", Some("v6")),
        ("arm", None | Some("7")) => ("arm", Some("v7")),
        ("arm", Some("5")) => ("arm", Some("v5")),
        ("arm", Some("6")) => ("arm", Some("v6")),
        ("arm", Some("8")) => ("arm", Some("v8")),
        (a, v) => (a, v),
    };
    (arch.to_string(), variant.map(str::to_string))
}

/// The numeric level of a `vN` variant.
fn level(variant: Option<&str>) -> Option<u32> {
    variant?.strip_prefix('v')?.parse().ok()
}

/// What a machine of `arch` runs, best first (containerd's platform vector): itself;
/// for amd64 `vN` the lower levels down to v1, then 386; for arm `vN` the lower
/// versions down to v5; for arm64 `v8.x`/`v9.x` the earlier arm64 revisions, then
/// 32-bit arm from v8 down.
fn runs(arch: &Arch) -> Vec<Arch> {
    let mut out = vec![arch.clone()];
    let plain = |a: &str, v: Option<String>| normalize(a, v.as_deref());
    match arch.0.as_str() {
        "amd64" => {
            let n = level(arch.1.as_deref()).unwrap_or(1);
            out.extend((1..n).rev().map(|l| plain("amd64", Some(format!("v{l}")))));
            out.push(plain("386", None));
        }
        "arm" => {
            let n = level(arch.1.as_deref()).unwrap_or(0);
            out.extend((5..n).rev().map(|l| plain("arm", Some(format!("v{l}")))));
        }
        "arm64" => {
            let variant = arch.1.as_deref().unwrap_or("v8");
            let (major, minor) = match variant.strip_prefix('v').map(|v| v.split_once('.')) {
                Some(Some((ma, mi))) => (ma.parse().ok(), mi.parse().unwrap_or(0)),
                Some(None) => (variant[1..].parse().ok(), 0),
                None => (None, 0),
            };
            let revision = |ma: u32, mi: u32| match mi {
                0 => plain("arm64", Some(format!("v{ma}"))),
                _ => plain("arm64", Some(format!("v{ma}.{mi}"))),
            };
            let mut v8_minor = minor;
            if major == Some(9) {
                out.extend((0..minor).rev().map(|mi| revision(9, mi)));
                // v9.x implements v8.(x+5), up to v8.9.
                v8_minor = (minor + 5).min(9);
                out.push(revision(8, v8_minor));
            }
            if matches!(major, Some(8 | 9)) {
                out.extend((0..v8_minor).rev().map(|mi| revision(8, mi)));
            }
            out.extend(runs(&plain("arm", Some("v8".to_string()))));
        }
        _ => {}
    }
    out
}

/// How well an index entry for `candidate` suits a machine of `want`: `None` when it
/// does not run there, else a rank where lower is better. OS must be equal; the
/// architecture and variant are ranked by [`runs`], and among equals the entry whose
/// variant is written exactly as wanted comes first (`arm64/v8` over a bare `arm64`
/// when `arm64/v8` is asked for).
pub(super) fn platform_rank(candidate: &Platform, want: &Platform) -> Option<(usize, bool)> {
    if !candidate.os.eq_ignore_ascii_case(&want.os) {
        return None;
    }
    let have = normalize(&candidate.architecture, candidate.variant.as_deref());
    let position = runs(&normalize(&want.architecture, want.variant.as_deref()))
        .iter()
        .position(|a| *a == have)?;
    Some((position, candidate.variant != want.variant))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(arch: &str, variant: Option<&str>) -> Platform {
        Platform {
            architecture: arch.into(),
            os: "linux".into(),
            os_version: None,
            os_features: None,
            variant: variant.map(Into::into),
        }
    }

    #[test]
    fn rust_names_map_to_go_names() {
        assert_eq!(platform_for("x86_64", "linux", true), p("amd64", None));
        assert_eq!(
            platform_for("aarch64", "linux", true),
            p("arm64", Some("v8"))
        );
        assert_eq!(platform_for("arm", "linux", true), p("arm", Some("v7")));
        assert_eq!(platform_for("powerpc64", "linux", true), p("ppc64le", None));
        assert_eq!(platform_for("powerpc64", "linux", false), p("ppc64", None));
        assert_eq!(platform_for("s390x", "linux", false), p("s390x", None));
        assert_eq!(platform_for("riscv64", "linux", true), p("riscv64", None));
        let host = host_platform();
        assert_eq!(host.os, "linux");
        assert!(!host.architecture.is_empty());
    }

    #[test]
    fn platform_text_parses_and_prints() {
        assert_eq!(
            parse_platform("linux/arm64/v8").unwrap(),
            p("arm64", Some("v8"))
        );
        assert_eq!(platform_name(&p("arm64", Some("v8"))), "linux/arm64/v8");
        assert_eq!(platform_name(&p("amd64", None)), "linux/amd64");
        for bad in ["linux", "linux//x", "a/b/c/d", "/amd64"] {
            assert_eq!(parse_platform(bad), Err(PlatformError(bad.to_string())));
        }
    }

    #[test]
    fn ranks_follow_containerd() {
        let rank = |have: Platform, want: Platform| platform_rank(&have, &want);
        // A missing arm64 variant is v8, both ways; the exact spelling wins a tie.
        assert_eq!(
            rank(p("arm64", None), p("arm64", Some("v8"))),
            Some((0, true))
        );
        assert_eq!(
            rank(p("arm64", Some("v8")), p("arm64", Some("v8"))),
            Some((0, false))
        );
        assert_eq!(
            rank(p("arm64", Some("v8")), p("arm64", None)),
            Some((0, true))
        );
        // amd64 runs lower levels, best first, then 386; never a higher level.
        let v3 = p("amd64", Some("v3"));
        assert_eq!(rank(p("amd64", Some("v3")), v3.clone()).unwrap().0, 0);
        assert_eq!(rank(p("amd64", Some("v2")), v3.clone()).unwrap().0, 1);
        assert_eq!(rank(p("amd64", None), v3.clone()).unwrap().0, 2);
        assert_eq!(rank(p("amd64", Some("v1")), v3.clone()).unwrap().0, 2);
        assert_eq!(rank(p("386", None), v3.clone()).unwrap().0, 3);
        assert_eq!(rank(p("amd64", Some("v4")), v3), None);
        assert_eq!(rank(p("amd64", Some("v2")), p("amd64", None)), None);
        // arm: a missing variant is v7, which runs v6 and v5.
        assert_eq!(rank(p("arm", Some("v7")), p("arm", None)).unwrap().0, 0);
        assert_eq!(rank(p("arm", Some("v6")), p("arm", None)).unwrap().0, 1);
        assert_eq!(rank(p("arm", Some("v8")), p("arm", Some("v7"))), None);
        // arm64 v8.2 runs v8.1, v8, then 32-bit arm; v9.1 runs v9 and v8.6.
        let v82 = p("arm64", Some("v8.2"));
        assert_eq!(rank(p("arm64", Some("v8.1")), v82.clone()).unwrap().0, 1);
        assert_eq!(rank(p("arm64", None), v82.clone()).unwrap().0, 2);
        assert_eq!(rank(p("arm", Some("v7")), v82.clone()).unwrap().0, 4);
        assert_eq!(rank(p("arm64", Some("v8.3")), v82), None);
        let v91 = p("arm64", Some("v9.1"));
        assert_eq!(rank(p("arm64", Some("v9")), v91.clone()).unwrap().0, 1);
        assert_eq!(rank(p("arm64", Some("v8.6")), v91.clone()).unwrap().0, 2);
        assert_eq!(rank(p("arm64", Some("v8.7")), v91), None);
        // Aliases and case; another OS never matches.
        assert!(rank(p("x86_64", None), p("amd64", None)).is_some());
        assert!(rank(p("AArch64", None), p("arm64", Some("v8"))).is_some());
        let mut windows = p("amd64", None);
        windows.os = "windows".into();
        assert_eq!(rank(windows, p("amd64", None)), None);
        assert_eq!(rank(p("arm64", None), p("amd64", None)), None);
    }
}
