//! Choosing how container ids map to host ids: the three rootless modes.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::error::SandboxError;

/// How many subordinate ids boxwright suggests and uses (the shadow-utils default).
const SUBID_COUNT: u32 = 65536;
/// Where shadow-utils starts allocating subordinate ids (`SUB_UID_MIN`).
const SUBID_MIN: u32 = 100_000;

/// Which of the three id-mapping modes a build runs in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum IdMode {
    /// Running as root: the whole id range is mapped, no helper tools needed.
    Root,
    /// Unprivileged with `/etc/subuid` and `/etc/subgid` ranges, mapped with `newuidmap`.
    Subordinate,
    /// Unprivileged without ranges: only the user's own id is mapped (to root).
    Single,
}

/// One contiguous run of ids: `container..container+len` maps to `host..host+len`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct IdRange {
    /// First id inside the namespace.
    pub container: u32,
    /// First id on the host (in the namespace that spawns the helper).
    pub host: u32,
    /// Number of ids in the range.
    pub len: u32,
}

impl IdRange {
    fn host_of(self, id: u32) -> Option<u32> {
        let offset = id.checked_sub(self.container)?;
        (offset < self.len).then(|| self.host + offset)
    }
}

/// The uid and gid maps of a helper's user namespace and the mode they came from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IdMapping {
    /// The mode chosen.
    pub mode: IdMode,
    /// Uid ranges, container id 0 first.
    pub uids: Vec<IdRange>,
    /// Gid ranges, container id 0 first.
    pub gids: Vec<IdRange>,
}

impl IdMapping {
    /// Detects the best mode for the calling user: root maps the whole range
    /// (whatever ranges this process itself has), a user with subordinate
    /// ranges and `newuidmap`/`newgidmap` on `PATH` gets them, anyone else
    /// gets a single id.
    pub fn detect() -> Result<IdMapping, SandboxError> {
        let uid = nix::unistd::geteuid().as_raw();
        let gid = nix::unistd::getegid().as_raw();
        if uid == 0 {
            return Ok(IdMapping {
                mode: IdMode::Root,
                uids: own_ranges(Path::new("/proc/self/uid_map"))?,
                gids: own_ranges(Path::new("/proc/self/gid_map"))?,
            });
        }
        let name = user_name(uid);
        let subuid = first_subid_range(Path::new("/etc/subuid"), name.as_deref(), uid)?;
        let subgid = first_subid_range(Path::new("/etc/subgid"), name.as_deref(), uid)?;
        let tools = find_in_path("newuidmap").is_some() && find_in_path("newgidmap").is_some();
        match (subuid, subgid) {
            (Some((ustart, ucount)), Some((gstart, gcount))) if tools => Ok(IdMapping {
                mode: IdMode::Subordinate,
                uids: subordinate_ranges(uid, ustart, ucount),
                gids: subordinate_ranges(gid, gstart, gcount),
            }),
            _ => Ok(IdMapping {
                mode: IdMode::Single,
                uids: vec![IdRange {
                    container: 0,
                    host: uid,
                    len: 1,
                }],
                gids: vec![IdRange {
                    container: 0,
                    host: gid,
                    len: 1,
                }],
            }),
        }
    }

    /// One line telling the user which mode was chosen and what it implies.
    pub fn describe(&self) -> String {
        match self.mode {
            IdMode::Root => {
                let whole = self.uids.len() == 1
                    && self.uids[0].container == 0
                    && self.uids[0].len == u32::MAX;
                if whole {
                    "root: user namespace mapping the whole id range (no helper tools needed)"
                        .to_string()
                } else {
                    format!(
                        "root: user namespace mapping this namespace's ids {}",
                        ranges_text(&self.uids)
                    )
                }
            }
            IdMode::Subordinate => format!(
                "rootless: user namespace with subordinate ids {} (newuidmap)",
                ranges_text(&self.uids[self.uids.len().min(1)..])
            ),
            IdMode::Single => {
                let uid = self.uids.first().map_or(0, |r| r.host);
                let user = user_name(uid).unwrap_or_else(|| uid.to_string());
                let (start, end) = free_subid_block();
                let tools = if find_in_path("newuidmap").is_some() {
                    ""
                } else {
                    " and install newuidmap/newgidmap (Debian package uidmap)"
                };
                format!(
                    "rootless, single id: only uid {uid} is mapped (to root), so files land \
                     root-owned and chown is faked; for full id mapping run `usermod \
                     --add-subuids {start}-{end} --add-subgids {start}-{end} {user}` as root{tools}"
                )
            }
        }
    }

    /// Whether steps need the fake-root seccomp filter (single-id mode).
    pub fn fake_root(&self) -> bool {
        self.mode == IdMode::Single
    }

    /// The host uid that container uid `id` lands on, if it is mapped.
    pub fn host_uid(&self, id: u32) -> Option<u32> {
        self.uids.iter().find_map(|r| r.host_of(id))
    }

    /// The host gid that container gid `id` lands on, if it is mapped.
    pub fn host_gid(&self, id: u32) -> Option<u32> {
        self.gids.iter().find_map(|r| r.host_of(id))
    }
}

/// Container 0 is the user; 1..=count are the subordinate ids.
fn subordinate_ranges(own: u32, start: u32, count: u32) -> Vec<IdRange> {
    vec![
        IdRange {
            container: 0,
            host: own,
            len: 1,
        },
        IdRange {
            container: 1,
            host: start,
            len: count,
        },
    ]
}

/// "100000-165535" for each range, joined with ", ".
fn ranges_text(ranges: &[IdRange]) -> String {
    ranges
        .iter()
        .map(|r| format!("{}-{}", r.host, u64::from(r.host) + u64::from(r.len) - 1))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The ranges this process itself has, mapped as identity (a root helper
/// inside a container can only hand on what it was given).
fn own_ranges(file: &Path) -> Result<Vec<IdRange>, SandboxError> {
    let text = std::fs::read_to_string(file).map_err(|e| SandboxError::IdConfig {
        file: file.display().to_string(),
        reason: e.to_string(),
    })?;
    let ranges: Vec<IdRange> = text
        .lines()
        .filter_map(|line| {
            let mut fields = line.split_whitespace().map(str::parse::<u32>);
            let (Some(Ok(inside)), Some(Ok(_outside)), Some(Ok(len))) =
                (fields.next(), fields.next(), fields.next())
            else {
                return None;
            };
            Some(IdRange {
                container: inside,
                host: inside,
                len,
            })
        })
        .collect();
    if ranges.is_empty() {
        return Err(SandboxError::IdConfig {
            file: file.display().to_string(),
            reason: "no id is mapped".to_string(),
        });
    }
    Ok(ranges)
}

/// The first `start:count` of `/etc/subuid`-style `file` owned by `name` or `uid`.
/// A missing file means no ranges.
fn first_subid_range(
    file: &Path,
    name: Option<&str>,
    uid: u32,
) -> Result<Option<(u32, u32)>, SandboxError> {
    let text = match std::fs::read_to_string(file) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => {
            return Err(SandboxError::IdConfig {
                file: file.display().to_string(),
                reason: e.to_string(),
            });
        }
    };
    let uid_text = uid.to_string();
    Ok(parse_subids(&text).find_map(|(owner, start, count)| {
        (Some(owner) == name || owner == uid_text).then_some((start, count))
    }))
}

/// The well-formed `owner:start:count` entries of a subid file.
fn parse_subids(text: &str) -> impl Iterator<Item = (&str, u32, u32)> {
    text.lines().filter_map(|line| {
        let line = line.trim();
        if line.starts_with('#') {
            return None;
        }
        let mut fields = line.split(':');
        let owner = fields.next()?;
        let start = fields.next()?.parse().ok()?;
        let count: u32 = fields.next()?.parse().ok()?;
        (count > 0 && fields.next().is_none()).then_some((owner, start, count))
    })
}

/// A 65536-id block above every range in /etc/subuid and /etc/subgid, so
/// the suggested `usermod` command does not overlap another user's ids.
fn free_subid_block() -> (u32, u32) {
    let mut start = SUBID_MIN;
    for file in ["/etc/subuid", "/etc/subgid"] {
        if let Ok(text) = std::fs::read_to_string(file) {
            for (_, s, c) in parse_subids(&text) {
                start = start.max(s.saturating_add(c));
            }
        }
    }
    (start, start.saturating_add(SUBID_COUNT - 1))
}

/// The login name of `uid`, if the password database knows it.
fn user_name(uid: u32) -> Option<String> {
    nix::unistd::User::from_uid(nix::unistd::Uid::from_raw(uid))
        .ok()
        .flatten()
        .map(|u| u.name)
}

/// The first executable file called `program` in `$PATH`.
pub(crate) fn find_in_path(program: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(program))
        .find(|candidate| {
            nix::unistd::access(candidate, nix::unistd::AccessFlags::X_OK).is_ok()
                && candidate.is_file()
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subid_lines_are_parsed_and_junk_skipped() {
        let text = "# comment\nalice:100000:65536\nbad line\n1001:200000:10\nbob:x:1\nz:5:0\n";
        let entries: Vec<_> = parse_subids(text).collect();
        assert_eq!(
            entries,
            vec![("alice", 100000, 65536), ("1001", 200000, 10)]
        );
    }

    #[test]
    fn host_ids_follow_the_ranges() {
        let m = IdMapping {
            mode: IdMode::Subordinate,
            uids: subordinate_ranges(1001, 100000, 65536),
            gids: subordinate_ranges(1001, 100000, 65536),
        };
        assert_eq!(m.host_uid(0), Some(1001));
        assert_eq!(m.host_uid(1), Some(100000));
        assert_eq!(m.host_uid(1000), Some(100999));
        assert_eq!(m.host_uid(65536), Some(165535));
        assert_eq!(m.host_uid(65537), None);
        assert_eq!(
            m.describe(),
            "rootless: user namespace with subordinate ids 100000-165535 (newuidmap)"
        );
    }
}
