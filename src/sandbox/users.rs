//! Resolving an image's `User` (`name`, `uid`, `name:group`, `uid:gid`)
//! against the image's own /etc/passwd and /etc/group, as Docker and podman
//! do. Runs inside the container's root, so the files are the image's.

use std::path::Path;

use super::error::SandboxError;

/// A resolved user: ids and home directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct User {
    pub uid: u32,
    pub gid: u32,
    pub home: Option<String>,
    /// Supplementary groups: the primary group, then every group of
    /// /etc/group that lists the user by name (as runc sets them).
    pub groups: Vec<u32>,
}

/// Resolves `spec` with the passwd and group files under `root`.
pub(crate) fn resolve(spec: &str, root: &Path) -> Result<User, SandboxError> {
    let passwd = std::fs::read_to_string(root.join("etc/passwd")).unwrap_or_default();
    let group = std::fs::read_to_string(root.join("etc/group")).unwrap_or_default();
    resolve_in(spec, &passwd, &group)
}

fn resolve_in(spec: &str, passwd: &str, group: &str) -> Result<User, SandboxError> {
    let unknown = |what: &str, name: &str| SandboxError::InvalidSpec {
        reason: format!(
            "{what} '{name}' does not exist in the image's /etc/{}: give a numeric id or a name the image has",
            if what == "user" { "passwd" } else { "group" }
        ),
    };
    let (user_part, group_part) = match spec.split_once(':') {
        Some((u, g)) => (u, Some(g)),
        None => (spec, None),
    };
    // name:password:uid:gid:gecos:home:shell
    let entry = passwd.lines().find_map(|l| {
        let f: Vec<&str> = l.split(':').collect();
        (f.len() >= 7 && (f[0] == user_part || f[2] == user_part)).then(|| {
            (
                f[2].parse::<u32>().ok(),
                f[3].parse::<u32>().ok(),
                f[5].to_string(),
                f[0].to_string(),
            )
        })
    });
    let (uid, passwd_gid, home, name) = match (user_part.parse::<u32>(), entry) {
        (_, Some((Some(uid), gid, home, name))) => (uid, gid, Some(home), Some(name)),
        (Ok(uid), _) => (uid, None, None, None),
        (Err(_), _) => return Err(unknown("user", user_part)),
    };
    let gid = match group_part {
        // Docker and podman: a uid the image does not know gets group 0.
        None => passwd_gid.unwrap_or(0),
        Some(g) => match g.parse::<u32>() {
            Ok(gid) => gid,
            Err(_) => group
                .lines()
                .find_map(|l| {
                    let f: Vec<&str> = l.split(':').collect();
                    (f.len() >= 3 && f[0] == g).then(|| f[2].parse::<u32>().ok())?
                })
                .ok_or_else(|| unknown("group", g))?,
        },
    };
    let mut groups = vec![gid];
    if let Some(name) = name {
        for l in group.lines() {
            let f: Vec<&str> = l.split(':').collect();
            if f.len() >= 4
                && f[3].split(',').any(|m| m.trim() == name)
                && let Ok(g) = f[2].parse::<u32>()
                && !groups.contains(&g)
            {
                groups.push(g);
            }
        }
    }
    Ok(User {
        uid,
        gid,
        home,
        groups,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const PASSWD: &str = "root:x:0:0:root:/root:/bin/sh\ndev:x:1000:1001:Dev:/home/dev:/bin/bash\n";
    const GROUP: &str = "root:x:0:\nstaff:x:50:dev,other\ndev:x:1001:\n";

    #[test]
    fn names_and_ids_resolve_like_docker() {
        let r = |s| resolve_in(s, PASSWD, GROUP).unwrap();
        assert_eq!(
            r("dev"),
            User {
                uid: 1000,
                gid: 1001,
                home: Some("/home/dev".into()),
                groups: vec![1001, 50],
            }
        );
        assert_eq!(
            r("1000"),
            User {
                uid: 1000,
                gid: 1001,
                home: Some("/home/dev".into()),
                groups: vec![1001, 50],
            }
        );
        assert_eq!(r("dev:staff").gid, 50);
        assert_eq!(r("dev:staff").groups, [50]);
        assert_eq!(r("dev:7").gid, 7);
        assert_eq!(
            r("4242"),
            User {
                uid: 4242,
                gid: 0,
                home: None,
                groups: vec![0],
            }
        );
        assert_eq!(r("root").home.as_deref(), Some("/root"));
        assert!(resolve_in("nobody-here", PASSWD, GROUP).is_err());
        assert!(resolve_in("dev:nogroup", PASSWD, GROUP).is_err());
    }
}
