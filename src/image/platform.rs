//! The host's platform in OCI (Go) names, and matching index entries against it.

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

/// Whether an index entry for `candidate` runs on `want`. OS and architecture must be
/// equal; a variant is compared only when both sides name one, except that arm64's
/// default `v8` equals no variant at all (how most indexes write arm64).
pub fn platform_matches(candidate: &Platform, want: &Platform) -> bool {
    if candidate.os != want.os || candidate.architecture != want.architecture {
        return false;
    }
    let norm = |p: &Platform| match (p.architecture.as_str(), p.variant.as_deref()) {
        ("arm64", Some("v8")) => None,
        (_, v) => v.map(str::to_string),
    };
    match (norm(candidate), norm(want)) {
        (Some(c), Some(w)) => c == w,
        _ => true,
    }
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
        assert_eq!(platform_for("s390x", "linux", false), p("s390x", None));
        assert_eq!(platform_for("riscv64", "linux", true), p("riscv64", None));
        let host = host_platform();
        assert_eq!(host.os, "linux");
        assert!(!host.architecture.is_empty());
    }

    #[test]
    fn variants_match_as_registries_write_them() {
        assert!(platform_matches(&p("arm64", None), &p("arm64", Some("v8"))));
        assert!(platform_matches(&p("arm64", Some("v8")), &p("arm64", None)));
        assert!(!platform_matches(
            &p("arm", Some("v6")),
            &p("arm", Some("v7"))
        ));
        assert!(platform_matches(&p("arm", None), &p("arm", Some("v7"))));
        assert!(!platform_matches(&p("amd64", None), &p("arm64", None)));
        let mut windows = p("amd64", None);
        windows.os = "windows".into();
        assert!(!platform_matches(&windows, &p("amd64", None)));
    }
}
