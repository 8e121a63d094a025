//! Which paths a fork leaves out: the catalog's list (`fork-exclude.toml`)
//! plus the user's `--exclude` globs, matched on absolute paths.

pub use crate::layer::Exclusions;

use super::ForkError;

/// The catalog's exclusions (with `--catalog` applied) followed by `extra`.
pub fn all_globs(extra: &[String]) -> Result<Vec<String>, ForkError> {
    let catalog = crate::catalog::Catalog::builtin()?;
    let mut globs: Vec<String> = catalog
        .fork_exclude
        .iter()
        .flat_map(|e| e.paths.iter().cloned())
        .collect();
    for g in extra {
        if !g.starts_with('/') && !g.starts_with("**/") {
            return Err(ForkError::BadExclude {
                glob: g.clone(),
                why: "write an absolute path such as /opt/secrets or a glob such as **/.env".into(),
            });
        }
        globs.push(g.clone());
    }
    Ok(globs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_catalog_list_covers_secrets_histories_caches_and_workspaces() {
        let e = Exclusions::new(&all_globs(&["/opt/mine/**".into()]).unwrap()).unwrap();
        for p in [
            "/etc/ssh/ssh_host_ed25519_key",
            "/root/.ssh",
            "/home/dev/.ssh",
            "/root/.git-credentials",
            "/root/.config/gh",
            "/home/dev/.claude",
            "/root/.claude.json",
            "/root/.bash_history",
            "/home/dev/.python_history",
            "/root/.cache",
            "/var/cache/apt",
            "/var/lib/apt/lists",
            "/tmp",
            "/run",
            "/etc/machine-id",
            "/var/lib/boxwright/boot-inventory.json",
            "/workspace",
            "/home/dev/projects",
            "/opt/mine/x/y",
            "/root/.npmrc",
            "/root/.local/share/code-server/User/globalStorage",
        ] {
            assert!(e.matches(p), "{p} should be excluded");
        }
        for p in [
            "/usr/bin/cowsay",
            "/usr/local/lib/python3.11/dist-packages/six.py",
            "/root/.local/share/code-server/extensions",
            "/etc/ssh/sshd_config",
            "/home/dev/.bashrc",
            "/var/lib/dpkg/status",
            "/opt/mine",
            "/tmpfile",
        ] {
            assert!(!e.matches(p), "{p} should be kept");
        }
    }

    #[test]
    fn relative_or_broken_globs_are_refused() {
        assert!(all_globs(&["relative".into()]).is_err());
        assert!(Exclusions::new(&["/a/[".into()]).is_err());
    }
}
