//! [`ImageConfig`]: the OCI image configuration (also reads Docker image configs).

use std::collections::BTreeMap;

use serde::{Deserialize, Deserializer, Serialize};
use serde_json::Value;

use super::ImageError;
use super::platform::host_platform;
use super::rfc3339::rfc3339;
use crate::digest::Digest;
use crate::store::to_canonical_json;

/// An OCI image config. Docker image configs have the same fields (plus some of their
/// own); every field this type does not name is kept in `extra` and written back, so a
/// base image's config survives a parse/serialize round trip.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ImageConfig {
    /// RFC 3339 creation time.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub author: Option<String>,
    pub architecture: String,
    pub os: String,
    #[serde(
        rename = "os.version",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub os_version: Option<String>,
    #[serde(
        rename = "os.features",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub os_features: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub variant: Option<String>,
    /// How to run a container from the image.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config: Option<ContainerConfig>,
    pub rootfs: RootFs,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub history: Vec<History>,
    #[serde(flatten)]
    pub extra: BTreeMap<String, Value>,
}

/// The `config` object: runtime defaults of containers made from the image.
/// Field names are Go's (`Env`, `Cmd`, …) as the spec writes them.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ContainerConfig {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    /// Keys like `22/tcp`; values are empty objects.
    #[serde(
        default,
        deserialize_with = "null_as_default",
        skip_serializing_if = "BTreeMap::is_empty"
    )]
    pub exposed_ports: BTreeMap<String, Value>,
    /// `KEY=VALUE` entries in order.
    #[serde(
        default,
        deserialize_with = "null_as_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub env: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub entrypoint: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cmd: Option<Vec<String>>,
    /// Kept when inherited from a base image; boxwright never adds volumes.
    #[serde(
        default,
        deserialize_with = "null_as_default",
        skip_serializing_if = "BTreeMap::is_empty"
    )]
    pub volumes: BTreeMap<String, Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub working_dir: Option<String>,
    #[serde(
        default,
        deserialize_with = "null_as_default",
        skip_serializing_if = "BTreeMap::is_empty"
    )]
    pub labels: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stop_signal: Option<String>,
    /// Docker's extras (`Healthcheck`, `Shell`, `OnBuild`, …), kept as they were.
    #[serde(flatten)]
    pub extra: BTreeMap<String, Value>,
}

/// `rootfs`: the uncompressed digests of the layers, bottom first.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RootFs {
    #[serde(rename = "type")]
    pub fs_type: String,
    #[serde(default)]
    pub diff_ids: Vec<Digest>,
}

/// One line of `history`: a layer, or a config-only change when `empty_layer` is set.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct History {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_by: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub author: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub comment: Option<String>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub empty_layer: bool,
    #[serde(flatten)]
    pub extra: BTreeMap<String, Value>,
}

/// Docker writes `null` for empty lists and maps; read it as empty.
fn null_as_default<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Default + Deserialize<'de>,
{
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}

impl ImageConfig {
    /// An empty config (no layers, no history) for the host's platform, created at
    /// `created_epoch` (seconds since the Unix epoch).
    pub fn new_for_host(created_epoch: u64) -> ImageConfig {
        let platform = host_platform();
        ImageConfig {
            created: Some(rfc3339(created_epoch)),
            author: None,
            architecture: platform.architecture,
            os: platform.os,
            os_version: None,
            os_features: None,
            variant: platform.variant,
            config: None,
            rootfs: RootFs {
                fs_type: "layers".to_string(),
                diff_ids: Vec::new(),
            },
            history: Vec::new(),
            extra: BTreeMap::new(),
        }
    }

    /// Parses an OCI or Docker image config.
    pub fn from_json(bytes: &[u8]) -> Result<ImageConfig, ImageError> {
        serde_json::from_slice(bytes).map_err(|source| ImageError::Json {
            what: "image config",
            source,
        })
    }

    /// Appends a layer: its diff_id to `rootfs`, a history line, and moves `created`.
    pub fn push_layer(&mut self, diff_id: Digest, created_by: &str, created: u64) {
        self.rootfs.diff_ids.push(diff_id);
        self.push_history(created_by, created, false);
    }

    /// Records a config-only step (ENV, WORKDIR, …): a history line with `empty_layer`.
    pub fn push_empty_history(&mut self, created_by: &str, created: u64) {
        self.push_history(created_by, created, true);
    }

    fn push_history(&mut self, created_by: &str, created: u64, empty_layer: bool) {
        let created = rfc3339(created);
        self.history.push(History {
            created: Some(created.clone()),
            created_by: Some(created_by.to_string()),
            empty_layer,
            ..History::default()
        });
        self.created = Some(created);
    }

    /// The canonical JSON bytes of the config: these are what get hashed and stored, so
    /// the same config always has the same digest.
    pub fn to_canonical_json(&self) -> Result<Vec<u8>, ImageError> {
        to_canonical_json(self).map_err(|source| ImageError::Json {
            what: "image config",
            source,
        })
    }

    /// The environment as (key, value) pairs in order, for running build steps with the
    /// base image's `PATH` and friends. An entry without `=` has an empty value.
    pub fn env(&self) -> Vec<(String, String)> {
        self.config
            .iter()
            .flat_map(|c| &c.env)
            .map(|e| match e.split_once('=') {
                Some((k, v)) => (k.to_string(), v.to_string()),
                None => (e.clone(), String::new()),
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A config as `docker inspect`-era Docker writes it (trimmed from debian:bookworm).
    const DOCKER_CONFIG: &str = r##"{
      "architecture": "amd64",
      "config": {
        "Hostname": "", "Domainname": "", "User": "", "AttachStdin": false,
        "ExposedPorts": null, "Tty": false,
        "Env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "LANG=C.UTF-8"],
        "Cmd": ["bash"], "Image": "sha256:0123", "Volumes": {"/data": {}}, "WorkingDir": "",
        "Entrypoint": null, "OnBuild": null, "Labels": null,
        "Healthcheck": {"Test": ["CMD", "true"], "Interval": 30000000000}
      },
      "container": "8e3b",
      "container_config": {"Cmd": ["/bin/sh", "-c", "#(nop) CMD [\"bash\"]"]},
      "created": "2024-01-11T00:00:00.123456789Z",
      "docker_version": "20.10.23",
      "history": [
        {"created": "2024-01-11T00:00:00Z", "created_by": "/bin/sh -c #(nop) ADD file:abc in / "},
        {"created": "2024-01-11T00:00:01Z", "created_by": "/bin/sh -c #(nop)  CMD [\"bash\"]", "empty_layer": true}
      ],
      "os": "linux",
      "rootfs": {"type": "layers", "diff_ids": ["sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"]}
    }"##;

    #[test]
    fn docker_config_parses_and_unknown_fields_survive_a_round_trip() {
        let c = ImageConfig::from_json(DOCKER_CONFIG.as_bytes()).unwrap();
        assert_eq!(c.architecture, "amd64");
        let cc = c.config.as_ref().unwrap();
        assert_eq!(cc.cmd.as_deref(), Some(&["bash".to_string()][..]));
        assert_eq!(cc.entrypoint, None);
        assert!(cc.labels.is_empty() && cc.exposed_ports.is_empty());
        assert!(cc.volumes.contains_key("/data"));
        assert_eq!(c.history.len(), 2);
        assert!(c.history[1].empty_layer && !c.history[0].empty_layer);
        assert_eq!(c.env()[1], ("LANG".to_string(), "C.UTF-8".to_string()));

        let back: Value = serde_json::from_slice(&c.to_canonical_json().unwrap()).unwrap();
        assert_eq!(back["container"], "8e3b");
        assert_eq!(back["docker_version"], "20.10.23");
        assert_eq!(back["container_config"]["Cmd"][0], "/bin/sh");
        assert_eq!(back["config"]["Healthcheck"]["Interval"], 30000000000u64);
        assert_eq!(back["config"]["Hostname"], "");
        assert_eq!(back["config"]["Volumes"]["/data"], serde_json::json!({}));
        assert_eq!(back["created"], "2024-01-11T00:00:00.123456789Z");
        // And parsing the output again gives the same config.
        let again = ImageConfig::from_json(&c.to_canonical_json().unwrap()).unwrap();
        assert_eq!(again, c);
    }

    #[test]
    fn history_lines_track_layers_and_empty_layers() {
        let mut c = ImageConfig::new_for_host(0);
        assert_eq!(c.created.as_deref(), Some("1970-01-01T00:00:00Z"));
        c.push_layer(Digest::of(b"l1"), "apt-get install git", 10);
        c.push_empty_history("ENV LANG=C.UTF-8", 20);
        c.push_layer(Digest::of(b"l2"), "npm i -g x", 30);
        assert_eq!(c.rootfs.diff_ids, [Digest::of(b"l1"), Digest::of(b"l2")]);
        let v: Value = serde_json::from_slice(&c.to_canonical_json().unwrap()).unwrap();
        let h = v["history"].as_array().unwrap();
        assert_eq!(h.len(), 3);
        assert_eq!(h[0].get("empty_layer"), None);
        assert_eq!(h[1]["empty_layer"], true);
        assert_eq!(h[1]["created"], "1970-01-01T00:00:20Z");
        assert_eq!(h[2]["created_by"], "npm i -g x");
        assert_eq!(v["created"], "1970-01-01T00:00:30Z");
        let layers = h.iter().filter(|e| e.get("empty_layer").is_none()).count();
        assert_eq!(layers, v["rootfs"]["diff_ids"].as_array().unwrap().len());
        assert_eq!(v["rootfs"]["type"], "layers");
    }

    #[test]
    fn a_config_that_is_not_one_is_refused_clearly() {
        let err = ImageConfig::from_json(b"{\"os\":\"linux\"}").unwrap_err();
        assert!(err.to_string().contains("image config"), "{err}");
    }
}
