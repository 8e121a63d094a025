//! What changed between two inventories, and image labels summarizing it.
//!
//! apk packages are not compared: fork summaries cover apt, pip, npm and
//! VS Code extensions, the managers of boxwright's toolbox images. The
//! inventory still lists apk packages, for a caller to diff itself.
//!
//! Only what both inventories hold is compared: a section one of them lacks
//! (a first-boot inventory written by the dev access entrypoint has no apt
//! sources or keyrings) is named in [`Changes::not_compared`] instead of
//! reported as all new; entries without a place (architecture, site,
//! prefix) are compared by name alone.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use super::Inventory;
use super::pip::pep503_name;

/// The longest label value [`summary_labels`] writes, in characters.
const MAX_LABEL_CHARS: usize = 1000;

/// A package and its version.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Versioned {
    pub name: String,
    pub version: String,
}

/// A package whose version changed.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Changed {
    pub name: String,
    pub from: String,
    pub to: String,
}

/// The packages of one manager added, removed and changed, each sorted by name.
///
/// A name is qualified only when it would be ambiguous: when the same name is
/// installed in several places (architectures, site directories, prefixes) in
/// either inventory, each gets its own entry, `name:arch` for dpkg and
/// `name (place)` for the others.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Delta {
    pub added: Vec<Versioned>,
    pub removed: Vec<Versioned>,
    pub changed: Vec<Changed>,
}

/// The dpkg packages changed, with the apt sources and keyrings added.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct AptDelta {
    /// `added` holds the packages installed on purpose (apt's manual
    /// marks); what apt pulled in for them is in `dependencies`.
    #[serde(flatten)]
    pub delta: Delta,
    /// Packages added as dependencies of others (Auto-Installed in
    /// /var/lib/apt/extended_states).
    pub dependencies: Vec<Versioned>,
    /// Source entries (as in [`super::AptSource::entry`]) present now and not at boot.
    pub new_sources: Vec<String>,
    /// Keyring paths present now and not at boot.
    pub new_keyrings: Vec<String>,
}

/// What changed between a boot inventory and one taken later.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Changes {
    pub apt: AptDelta,
    pub pip: Delta,
    pub npm: Delta,
    pub vscode_extensions: Delta,
    /// The inventory sections (`dpkg`, `apt_sources`, `apt_keyrings`, `pip`,
    /// `npm`, `vscode_extensions`) left out because one of the inventories
    /// does not hold them: what changed there is unknown, not nothing.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub not_compared: Vec<String>,
}

impl Delta {
    /// Whether nothing was added, removed or changed.
    pub fn is_empty(&self) -> bool {
        self.added.is_empty() && self.removed.is_empty() && self.changed.is_empty()
    }
}

impl Changes {
    /// Whether nothing changed in what was compared.
    pub fn is_empty(&self) -> bool {
        self.apt.delta.is_empty()
            && self.apt.new_sources.is_empty()
            && self.apt.new_keyrings.is_empty()
            && self.pip.is_empty()
            && self.npm.is_empty()
            && self.vscode_extensions.is_empty()
    }
}

/// One installed package as compared: name, where it is (architecture, site,
/// prefix; may be empty) and version.
struct Item {
    name: String,
    place: String,
    version: String,
}

/// Both sides of section `name`, or `None` (with the name noted in
/// `missing`) when either inventory lacks it.
fn both<'a, T>(
    name: &str,
    boot: &'a Option<Vec<T>>,
    now: &'a Option<Vec<T>>,
    missing: &mut Vec<String>,
) -> Option<(&'a [T], &'a [T])> {
    match (boot, now) {
        (Some(b), Some(n)) => Some((b, n)),
        _ => {
            missing.push(name.to_string());
            None
        }
    }
}

/// What changed from inventory `boot` to inventory `now`, in the sections
/// both hold.
pub fn compare(boot: &Inventory, now: &Inventory) -> Changes {
    let mut missing = Vec::new();
    let mut c = Changes::default();
    if let Some((b, n)) = both("dpkg", &boot.dpkg, &now.dpkg, &mut missing) {
        let items = |list: &[super::DpkgPackage]| -> Vec<Item> {
            list.iter()
                .map(|p| item(&p.name, &p.arch, &p.version))
                .collect()
        };
        let mut apt = delta(items(b), items(n), |n, arch| format!("{n}:{arch}"));
        let auto: BTreeSet<&str> = n
            .iter()
            .filter(|p| !p.manual)
            .map(|p| p.name.as_str())
            .collect();
        let (dependencies, added): (Vec<Versioned>, Vec<Versioned>) = apt
            .added
            .drain(..)
            .partition(|v| auto.contains(v.name.split(':').next().unwrap_or(&v.name)));
        apt.added = added;
        c.apt.delta = apt;
        c.apt.dependencies = dependencies;
    }
    if let Some((b, n)) = both(
        "apt_sources",
        &boot.apt_sources,
        &now.apt_sources,
        &mut missing,
    ) {
        c.apt.new_sources = new_strings(b.iter().map(|s| &s.entry), n.iter().map(|s| &s.entry));
    }
    if let Some((b, n)) = both(
        "apt_keyrings",
        &boot.apt_keyrings,
        &now.apt_keyrings,
        &mut missing,
    ) {
        c.apt.new_keyrings = new_strings(b.iter(), n.iter());
    }
    if let Some((b, n)) = both("pip", &boot.pip, &now.pip, &mut missing) {
        let items = |list: &[super::PipDist]| -> Vec<Item> {
            list.iter()
                .map(|d| item(&pep503_name(&d.name), &d.site, &d.version))
                .collect()
        };
        c.pip = delta(items(b), items(n), place_in_parens);
    }
    if let Some((b, n)) = both("npm", &boot.npm, &now.npm, &mut missing) {
        let items = |list: &[super::NpmPackage]| -> Vec<Item> {
            list.iter()
                .map(|p| item(&p.name, &p.prefix, &p.version))
                .collect()
        };
        c.npm = delta(items(b), items(n), place_in_parens);
    }
    if let Some((b, n)) = both(
        "vscode_extensions",
        &boot.vscode_extensions,
        &now.vscode_extensions,
        &mut missing,
    ) {
        let items = |list: &[super::Extension]| -> Vec<Item> {
            list.iter()
                .map(|e| item(&e.id.to_lowercase(), "", &e.version))
                .collect()
        };
        c.vscode_extensions = delta(items(b), items(n), place_in_parens);
    }
    c.not_compared = missing;
    c
}

fn item(name: &str, place: &str, version: &str) -> Item {
    Item {
        name: name.to_string(),
        place: place.to_string(),
        version: version.to_string(),
    }
}

fn place_in_parens(name: &str, place: &str) -> String {
    format!("{name} ({place})")
}

/// The strings of `now` not in `boot`, sorted and without duplicates.
fn new_strings<'a>(
    boot: impl Iterator<Item = &'a String>,
    now: impl Iterator<Item = &'a String>,
) -> Vec<String> {
    let boot: BTreeSet<&String> = boot.collect();
    let now: BTreeSet<&String> = now.collect();
    now.difference(&boot).map(|s| s.to_string()).collect()
}

/// The delta between two lists of one manager; `qualify` names an item whose
/// name is installed in several places.
fn delta(boot: Vec<Item>, now: Vec<Item>, qualify: fn(&str, &str) -> String) -> Delta {
    // Places per name over both sides, so both sides key a name the same way.
    // A list without places (a script's inventory names packages only) makes
    // every name plain: a name qualified on one side only would look removed
    // and added.
    let placed = boot.iter().chain(&now).all(|i| !i.place.is_empty());
    let mut places: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new();
    for i in boot.iter().chain(&now) {
        places
            .entry(i.name.as_str())
            .or_default()
            .insert(i.place.as_str());
    }
    let key = |i: &Item| {
        if placed && places.get(i.name.as_str()).is_some_and(|p| p.len() > 1) {
            qualify(&i.name, &i.place)
        } else {
            i.name.clone()
        }
    };
    // When a key repeats on one side (two dist-info dirs of one project in one
    // site), the greatest version string stands for it.
    let index = |items: &[Item]| {
        let mut map: BTreeMap<String, String> = BTreeMap::new();
        for i in items {
            let version = map.entry(key(i)).or_default();
            if i.version > *version {
                version.clone_from(&i.version);
            }
        }
        map
    };
    let (boot, now) = (index(&boot), index(&now));
    let mut d = Delta::default();
    for (name, version) in &now {
        match boot.get(name) {
            None => d.added.push(Versioned {
                name: name.clone(),
                version: version.clone(),
            }),
            Some(from) if from != version => d.changed.push(Changed {
                name: name.clone(),
                from: from.clone(),
                to: version.clone(),
            }),
            Some(_) => {}
        }
    }
    for (name, version) in &boot {
        if !now.contains_key(name) {
            d.removed.push(Versioned {
                name: name.clone(),
                version: version.clone(),
            });
        }
    }
    d
}

/// Image labels summarizing `c`: for each manager with packages added or
/// changed, `io.boxwright.fork.<manager>` = `name=version,…` (sorted by name;
/// the new version for a changed one), cut to 1000 characters at a comma,
/// ending `,…` when cut. Managers: `apt`, `pip`, `npm`, `vscode-extensions`.
pub fn summary_labels(c: &Changes) -> BTreeMap<String, String> {
    let mut labels = BTreeMap::new();
    for (manager, delta) in [
        ("apt", &c.apt.delta),
        ("pip", &c.pip),
        ("npm", &c.npm),
        ("vscode-extensions", &c.vscode_extensions),
    ] {
        let mut items: Vec<(&str, &str)> = delta
            .added
            .iter()
            .map(|v| (v.name.as_str(), v.version.as_str()))
            .chain(
                delta
                    .changed
                    .iter()
                    .map(|c| (c.name.as_str(), c.to.as_str())),
            )
            .collect();
        if items.is_empty() {
            continue;
        }
        items.sort_unstable();
        let items: Vec<String> = items.iter().map(|(n, v)| format!("{n}={v}")).collect();
        labels.insert(format!("io.boxwright.fork.{manager}"), capped_list(&items));
    }
    labels
}

/// `items` joined with commas, at most [`MAX_LABEL_CHARS`] characters: cut
/// after the last item that fits, with `,…` marking the cut.
fn capped_list(items: &[String]) -> String {
    let full = items.join(",");
    if full.chars().count() <= MAX_LABEL_CHARS {
        return full;
    }
    let mut out = String::new();
    let mut chars = 0;
    for item in items {
        let sep = usize::from(!out.is_empty());
        let len = item.chars().count();
        // Room must stay for the ",…" marker.
        if chars + sep + len + 2 > MAX_LABEL_CHARS {
            break;
        }
        if sep == 1 {
            out.push(',');
        }
        out.push_str(item);
        chars += sep + len;
    }
    if out.is_empty() {
        // Even the first item is too long: cut inside it.
        let mut cut: String = full.chars().take(MAX_LABEL_CHARS - 1).collect();
        cut.push('…');
        return cut;
    }
    out.push_str(",…");
    out
}
