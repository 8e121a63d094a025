//! [`ConfigOverrides`]: what a recipe changes in the config it inherits, and the merge rules.

use std::collections::BTreeMap;

use serde_json::Value;

use super::config::{ContainerConfig, ImageConfig};

/// Runtime settings a build sets on top of its base image's config.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ConfigOverrides {
    /// Variables to set; values are literal (the caller expands `$PATH`-style references
    /// against [`ImageConfig::env`] before handing them over).
    pub env: BTreeMap<String, String>,
    pub workdir: Option<String>,
    pub user: Option<String>,
    pub entrypoint: Option<Vec<String>>,
    pub cmd: Option<Vec<String>>,
    /// `PORT/PROTO`, e.g. `22/tcp`; a bare `8443` means `8443/tcp`.
    pub exposed_ports: Vec<String>,
    pub labels: BTreeMap<String, String>,
}

impl ConfigOverrides {
    /// Whether applying these would change nothing.
    pub fn is_empty(&self) -> bool {
        self == &ConfigOverrides::default()
    }
}

impl ImageConfig {
    /// Applies overrides with Docker's rules:
    /// - env: merged by key, later wins. Inherited variables keep their position (an
    ///   overridden one changes value in place); new ones are appended in key order.
    /// - labels: merged, later wins. Exposed ports: union.
    /// - entrypoint/cmd: replaced when set. Setting an entrypoint without a cmd clears
    ///   the inherited cmd, as Docker does (the old cmd was arguments for the old
    ///   entrypoint).
    /// - workdir/user: replaced when set. Volumes and everything else: inherited as is.
    pub fn apply(&mut self, o: &ConfigOverrides) {
        if o.is_empty() {
            return;
        }
        let c = self.config.get_or_insert_with(ContainerConfig::default);
        merge_env(&mut c.env, &o.env);
        c.labels
            .extend(o.labels.iter().map(|(k, v)| (k.clone(), v.clone())));
        for port in &o.exposed_ports {
            let port = if port.contains('/') {
                port.clone()
            } else {
                format!("{port}/tcp")
            };
            c.exposed_ports
                .entry(port)
                .or_insert_with(|| Value::Object(Default::default()));
        }
        if let Some(ep) = &o.entrypoint {
            c.entrypoint = Some(ep.clone());
            if o.cmd.is_none() {
                c.cmd = None;
            }
        }
        if let Some(cmd) = &o.cmd {
            c.cmd = Some(cmd.clone());
        }
        if let Some(w) = &o.workdir {
            c.working_dir = Some(w.clone());
        }
        if let Some(u) = &o.user {
            c.user = Some(u.clone());
        }
    }
}

fn merge_env(env: &mut Vec<String>, set: &BTreeMap<String, String>) {
    let mut pending: BTreeMap<&str, &str> =
        set.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    for entry in env.iter_mut() {
        let key = entry.split_once('=').map_or(entry.as_str(), |(k, _)| k);
        if let Some(v) = pending.remove(key) {
            *entry = format!("{key}={v}");
        }
    }
    env.extend(pending.into_iter().map(|(k, v)| format!("{k}={v}")));
}

#[cfg(test)]
mod tests {
    use super::*;

    fn base() -> ImageConfig {
        let mut c = ImageConfig::new_for_host(0);
        c.config = Some(ContainerConfig {
            env: vec!["PATH=/usr/bin:/bin".into(), "LANG=C".into(), "TERM".into()],
            cmd: Some(vec!["bash".into()]),
            labels: [("maintainer".to_string(), "base".to_string())].into(),
            exposed_ports: [("80/tcp".to_string(), Value::Object(Default::default()))].into(),
            volumes: [("/data".to_string(), Value::Object(Default::default()))].into(),
            working_dir: Some("/".into()),
            ..ContainerConfig::default()
        });
        c
    }

    fn strings(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn env_is_merged_by_key_in_base_order_with_new_keys_appended_sorted() {
        let mut c = base();
        c.apply(&ConfigOverrides {
            env: [
                ("ZED", "1"),
                ("LANG", "C.UTF-8"),
                ("ALPHA", "2"),
                ("TERM", "xterm"),
            ]
            .into_iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
            ..Default::default()
        });
        let cc = c.config.unwrap();
        assert_eq!(
            cc.env,
            strings(&[
                "PATH=/usr/bin:/bin",
                "LANG=C.UTF-8",
                "TERM=xterm",
                "ALPHA=2",
                "ZED=1"
            ])
        );
    }

    #[test]
    fn entrypoint_without_cmd_clears_the_inherited_cmd() {
        let mut c = base();
        c.apply(&ConfigOverrides {
            entrypoint: Some(strings(&["/usr/local/bin/boot"])),
            ..Default::default()
        });
        let cc = c.config.as_ref().unwrap();
        assert_eq!(cc.entrypoint, Some(strings(&["/usr/local/bin/boot"])));
        assert_eq!(cc.cmd, None);

        let mut c = base();
        c.apply(&ConfigOverrides {
            entrypoint: Some(strings(&["/boot"])),
            cmd: Some(strings(&["--serve"])),
            ..Default::default()
        });
        assert_eq!(c.config.as_ref().unwrap().cmd, Some(strings(&["--serve"])));

        // A cmd alone keeps the entrypoint.
        let mut c = base();
        c.config.as_mut().unwrap().entrypoint = Some(strings(&["/e"]));
        c.apply(&ConfigOverrides {
            cmd: Some(strings(&["x"])),
            ..Default::default()
        });
        let cc = c.config.unwrap();
        assert_eq!(
            (cc.entrypoint, cc.cmd),
            (Some(strings(&["/e"])), Some(strings(&["x"])))
        );
    }

    #[test]
    fn labels_ports_workdir_user_and_volumes() {
        let mut c = base();
        c.apply(&ConfigOverrides {
            labels: [("maintainer", "me"), ("dev.boxwright.recipe", "x")]
                .into_iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            exposed_ports: strings(&["22/tcp", "8443", "80/tcp", "7681/udp"]),
            workdir: Some("/home/dev".into()),
            user: Some("dev".into()),
            ..Default::default()
        });
        let cc = c.config.unwrap();
        assert_eq!(cc.labels["maintainer"], "me");
        assert_eq!(cc.labels["dev.boxwright.recipe"], "x");
        let ports: Vec<&str> = cc.exposed_ports.keys().map(String::as_str).collect();
        assert_eq!(ports, ["22/tcp", "7681/udp", "80/tcp", "8443/tcp"]);
        assert_eq!(cc.working_dir.as_deref(), Some("/home/dev"));
        assert_eq!(cc.user.as_deref(), Some("dev"));
        assert!(cc.volumes.contains_key("/data"));
        assert_eq!(cc.cmd, Some(strings(&["bash"])));
    }

    #[test]
    fn empty_overrides_leave_a_config_without_a_config_object_alone() {
        let mut c = ImageConfig::new_for_host(0);
        let before = c.clone();
        c.apply(&ConfigOverrides::default());
        assert_eq!(c, before);
        c.apply(&ConfigOverrides {
            user: Some("1000".into()),
            ..Default::default()
        });
        assert_eq!(c.config.unwrap().user.as_deref(), Some("1000"));
    }
}
