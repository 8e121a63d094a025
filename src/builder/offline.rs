//! `--offline`: a build that would download from the network fails before
//! any step runs, naming what it needs.
//!
//! Offline means "nothing from upstream": the build host's caches and the
//! internal mirrors the build is given are all it may use. So:
//!
//! - artifacts must be cached or in a mirror (`artifact::Fetcher::check_offline`);
//! - a registry base must be in the store, or its registry have mirrors in
//!   registries.toml (`base::resolve_base`);
//! - the steps that will run (cached ones download nothing) must have a
//!   mirror for every package index they use: apt (the Debian or Ubuntu
//!   archive), npm, PyPI, Open VSX ([`check`]). What a component step uses
//!   is known; a recipe's own step is judged by its command line (`apt-get`,
//!   `npm install`, `pip install`…), which is a best effort.
//! - Steps run without a network (loopback only, as `--network none`) when
//!   no download mirror is set, so anything else a step reaches for fails at
//!   once instead of hanging on timeouts. With mirrors, steps keep
//!   `--network` (the host's by default): the mirrors are servers that must
//!   be reached, and on an air-gapped host nothing else answers anyway; give
//!   `--network none` too for steps that need no mirror at all.

use crate::mirror::{APT_ARCHIVES, Mirrors, NPM_REGISTRY, OPEN_VSX, PYPI_INDEX};
use crate::plan::PlannedStep;
use crate::recipe::{LIB_SH, StepKind};
use crate::sandbox::Network;

use super::BuildError;

/// A package index a step downloads from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Index {
    Apt,
    Npm,
    Pypi,
    OpenVsx,
}

const INDEXES: [Index; 4] = [Index::Apt, Index::Npm, Index::Pypi, Index::OpenVsx];

impl Index {
    fn what(self) -> &'static str {
        match self {
            Index::Apt => "apt packages",
            Index::Npm => "npm packages",
            Index::Pypi => "pip packages",
            Index::OpenVsx => "VS Code extensions",
        }
    }

    /// The URL a mirror must cover.
    fn upstream(self) -> &'static str {
        match self {
            Index::Apt => "http://deb.debian.org/ (or of the image's Debian or Ubuntu archive)",
            Index::Npm => NPM_REGISTRY,
            Index::Pypi => PYPI_INDEX,
            Index::OpenVsx => OPEN_VSX,
        }
    }

    fn covered(self, mirrors: &Mirrors) -> bool {
        match self {
            Index::Apt => APT_ARCHIVES.iter().any(|a| mirrors.reaches(a)),
            Index::Npm => mirrors.covers(NPM_REGISTRY),
            Index::Pypi => mirrors.covers(PYPI_INDEX),
            Index::OpenVsx => mirrors.covers(OPEN_VSX),
        }
    }

    /// Commands that download from this index.
    fn commands(self) -> &'static [&'static str] {
        match self {
            Index::Apt => &[
                "apt-get",
                "apt install",
                "apt update",
                "apt upgrade",
                "aptitude",
                // The component scripts' helpers (recipes/scripts/lib.sh).
                "bw_pkg_install",
                "bw_apt_update",
            ],
            Index::Npm => &["npm install", "npm i", "npm ci", "npm update", "npx"],
            Index::Pypi => &[
                "pip install",
                "pip3 install",
                "pip download",
                "pip3 download",
                "pipx install",
            ],
            Index::OpenVsx => &[],
        }
    }
}

/// The network steps run with: none when offline without mirrors.
pub(crate) fn step_network(requested: Network, offline: bool, mirrors: &Mirrors) -> Network {
    if offline && mirrors.is_empty() {
        Network::None
    } else {
        requested
    }
}

/// The indexes a run step's command uses, as far as its text tells. The
/// helpers every component script starts with are not the step's own use.
pub(crate) fn indexes(command: &str) -> Vec<Index> {
    let own = match command.find(LIB_SH) {
        Some(at) => &command[at + LIB_SH.len()..],
        None => command,
    };
    INDEXES
        .into_iter()
        .filter(|&i| match i {
            Index::OpenVsx => installs_a_marketplace_extension(own),
            _ => i.commands().iter().any(|c| mentions(own, c)),
        })
        .collect()
}

/// `word` in `text` as words (not `/usr/bin/x`, `my-x` or `x-ed`).
fn mentions(text: &str, word: &str) -> bool {
    text.match_indices(word).any(|(at, _)| {
        let starts = text[..at]
            .chars()
            .next_back()
            .is_none_or(|c| c.is_whitespace() || ";&|(`'\"".contains(c));
        let ends = text[at + word.len()..]
            .chars()
            .next()
            .is_none_or(|c| !c.is_alphanumeric());
        starts && ends
    })
}

/// `--install-extension ID` (not a local `.vsix` path) downloads from the gallery.
fn installs_a_marketplace_extension(text: &str) -> bool {
    text.split("--install-extension")
        .skip(1)
        .filter_map(|rest| rest.split_whitespace().next())
        .map(|arg| arg.trim_matches(|c| c == '\'' || c == '"'))
        .any(|arg| !arg.starts_with('/') && !arg.ends_with(".vsix"))
}

/// Fails naming every step of `steps` (those that will run) that uses a
/// package index no mirror covers, and the mirror it needs.
pub(crate) fn check(steps: &[PlannedStep], mirrors: &Mirrors) -> Result<(), BuildError> {
    let mut missing: Vec<(Index, Vec<String>)> = Vec::new();
    for ps in steps {
        let StepKind::Run { command, .. } = &ps.step.kind else {
            continue;
        };
        for index in indexes(&command.argv().join(" ")) {
            if index.covered(mirrors) {
                continue;
            }
            let step = format!("step {} ({})", ps.number, ps.component);
            match missing.iter_mut().find(|(i, _)| *i == index) {
                Some((_, list)) => list.push(step),
                None => missing.push((index, vec![step])),
            }
        }
    }
    if missing.is_empty() {
        return Ok(());
    }
    missing.sort_by_key(|(i, _)| INDEXES.iter().position(|x| x == i));
    let parts: Vec<String> = missing
        .iter()
        .map(|(index, steps)| {
            format!(
                "{} for {} need a mirror of {}",
                index.what(),
                steps.join(", "),
                index.upstream()
            )
        })
        .collect();
    Err(BuildError::Offline(format!(
        "--offline: these steps would download from the network, and no download mirror covers it: {}; give internal mirrors with --mirror FROM=TO (or [mirrors] in registries.toml), or build without --offline",
        parts.join("; ")
    )))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mirror::Rule;

    #[test]
    fn indexes_from_commands() {
        let cases: [(&str, &[Index]); 9] = [
            ("apt-get update && apt-get install -y jq", &[Index::Apt]),
            ("python3 -m pip install six", &[Index::Pypi]),
            (
                "npm install -g is-number; pip3 install x",
                &[Index::Npm, Index::Pypi],
            ),
            ("cd /x && npx create-thing", &[Index::Npm]),
            ("echo pip installed > /etc/motd; cargo build", &[]),
            ("/opt/mypip install x; snapt-get install", &[]),
            (
                "code-server --install-extension 'ms-python.python@2025.1.0'",
                &[Index::OpenVsx],
            ),
            (
                "code-server --install-extension '/run/boxwright/vsix/0-x.vsix'",
                &[],
            ),
            ("code-server --install-extension my.vsix", &[]),
        ];
        for (command, expected) in cases {
            assert_eq!(indexes(command), expected, "{command}");
        }
        // The helpers every component script carries are not a use.
        let script = format!("# boxwright: x\n{LIB_SH}echo nothing\n");
        assert!(indexes(&script).is_empty());
        let script = format!("# boxwright: x\n{LIB_SH}bw_pkg_install jq\n");
        assert_eq!(indexes(&script), [Index::Apt]);
    }

    fn mirrors(rules: &[&str]) -> Mirrors {
        Mirrors::new(rules.iter().map(|r| Rule::parse(r).unwrap()))
    }

    #[test]
    fn coverage() {
        let m = mirrors(&["http://deb.debian.org/debian/=http://m/debian/"]);
        assert!(Index::Apt.covered(&m));
        assert!(!Index::Npm.covered(&m));
        let m = mirrors(&["http://archive.ubuntu.com/=http://m/ubuntu/"]);
        assert!(Index::Apt.covered(&m));
        let m = mirrors(&[
            "https://registry.npmjs.org/=http://m/npm/",
            "https://pypi.org/=http://m/pypi/",
            "https://open-vsx.org/=http://m/vsx/",
        ]);
        assert!(!Index::Apt.covered(&m));
        assert!(Index::Npm.covered(&m) && Index::Pypi.covered(&m) && Index::OpenVsx.covered(&m));
    }

    #[test]
    fn check_names_each_step_and_the_mirror_it_needs() {
        let t = tempfile::tempdir().unwrap();
        let path = t.path().join("r.toml");
        std::fs::write(
            &path,
            "[image]\nbase = \"scratch\"\ndev_access = false\n[packages]\napt = [\"jq\"]\n\
             [[steps]]\nrun = \"pip install six\"\n[[steps]]\nrun = \"echo no network\"\n\
             [[steps]]\nrun = \"apt-get install -y curl && npm install -g x\"\n",
        )
        .unwrap();
        let plan =
            crate::plan::Plan::new(crate::recipe::Recipe::load(&path).unwrap(), None).unwrap();
        let err = check(&plan.steps, &Mirrors::default()).unwrap_err();
        assert_eq!(
            err.to_string(),
            "--offline: these steps would download from the network, and no download mirror covers it: \
             apt packages for step 1 (packages), step 4 (recipe step 3) need a mirror of http://deb.debian.org/ (or of the image's Debian or Ubuntu archive); \
             npm packages for step 4 (recipe step 3) need a mirror of https://registry.npmjs.org/; \
             pip packages for step 2 (recipe step 1) need a mirror of https://pypi.org/simple/; \
             give internal mirrors with --mirror FROM=TO (or [mirrors] in registries.toml), or build without --offline"
        );
        assert!(!err.is_bad_input());
        let all = mirrors(&[
            "http://deb.debian.org/=http://m/deb/",
            "https://pypi.org/=http://m/pypi/",
            "https://registry.npmjs.org/=http://m/npm/",
        ]);
        check(&plan.steps, &all).unwrap();
        // Only the steps that will run count (the first ones were cached).
        check(&plan.steps[2..3], &Mirrors::default()).unwrap();
    }

    #[test]
    fn offline_steps_have_no_network_unless_mirrors_are_set() {
        let none = Mirrors::default();
        let some = mirrors(&["https://pypi.org/=http://m/pypi/"]);
        assert_eq!(step_network(Network::Host, true, &none), Network::None);
        assert_eq!(step_network(Network::Host, true, &some), Network::Host);
        assert_eq!(step_network(Network::None, true, &some), Network::None);
        assert_eq!(step_network(Network::Host, false, &none), Network::Host);
    }
}
