//! Expansion: components become ordered steps with what the driver needs.

use super::parse;
use crate::catalog::Arch;
use crate::recipe::{ENTRYPOINT_PATH, RunCommand, STANDARD_CACHES, StepKind, labels};

const ALL: &str = r#"[image]
base = "rootfs:base.tar"
[runtimes]
python = "3.12"
node = "20"
[packages]
apt = ["jq"]
categories = ["databases"]
[ai_tools]
install = ["claude-code", "codex", "gemini"]
custom = [{ name = "aider", run = "pip install aider-chat" }]
[vscode]
extensions = ["ms-python.python@2025.1.0", "vendor/local.vsix"]
[dev_access]
skip = ["ttyd"]
[[steps]]
run = "cargo fetch"
cache = ["/root/.cargo/registry"]
[[steps]]
copy = { src = "motd", dest = "/etc/motd" }
"#;

fn script(step: &crate::recipe::ExpandedStep) -> &str {
    match &step.step.kind {
        StepKind::Run {
            command: RunCommand::Shell(s),
            ..
        } => s,
        other => panic!("not a shell step: {other:?}"),
    }
}

#[test]
fn components_come_in_the_fixed_order() {
    let x = parse(ALL).expand_for(Arch::Amd64).unwrap();
    let order: Vec<&str> = x.steps.iter().map(|s| s.component.as_str()).collect();
    assert_eq!(
        order,
        [
            "dev-access",
            "packages",
            "runtime python 3.12",
            "runtime node 20",
            "ai-tools",
            "vscode",
            "recipe step 1",
            "recipe step 2",
        ]
    );
    // Scripts announce themselves on their first line (the progress summary).
    assert!(
        script(&x.steps[0]).starts_with(
            "# boxwright: dev access layer: openssh-server code-server gh claude-code\n"
        )
    );
    assert!(script(&x.steps[1]).starts_with(
        "# boxwright: system packages postgresql-client default-mysql-client sqlite3 redis-tools jq\n"
    ));
}

#[test]
fn dev_access_layer_contents() {
    let x = parse(ALL).expand_for(Arch::Amd64).unwrap();
    let dev = &x.steps[0];
    let s = script(dev);
    for needle in [
        "case \"$BW_PM\" in",
        "apt) bw_pkg_install openssh-server ;;",
        "apk) bw_pkg_install openssh-server openssh-sftp-server ;;",
        "dnf|microdnf) bw_pkg_install openssh-server ;;",
        "rm -f /etc/ssh/ssh_host_*",
        "PasswordAuthentication no",
        "npm install -g --no-fund --no-audit --loglevel=warn '@anthropic-ai/claude-code@2.1.332'",
        "cat > '/usr/local/bin/boxwright-entrypoint' <<'BOXWRIGHT_EOF'",
        "ssh-keygen -A",
        "--bind-addr \"0.0.0.0:${BOXWRIGHT_CODE_SERVER_PORT:-8443}\"",
    ] {
        assert!(s.contains(needle), "dev access script lacks {needle:?}");
    }
    // ttyd is skipped: not installed, not fetched, not exposed; warned about.
    assert!(!s.contains("install -m 0755 \"$ARTIFACT\" /usr/local/bin/ttyd"));
    let fetched: Vec<&str> = dev.artifacts.iter().map(|a| a.component.as_str()).collect();
    assert_eq!(fetched, ["code-server", "gh"]);
    assert_eq!(
        dev.artifacts[0].target,
        "/run/boxwright/artifacts/code-server/code-server-4.139.1-linux-amd64.tar.gz"
    );
    let ports: Vec<String> = x.ports.iter().map(|p| p.to_string()).collect();
    assert_eq!(ports, ["22/tcp", "8443/tcp"]);
    assert_eq!(x.entrypoint, Some(vec![ENTRYPOINT_PATH.to_string()]));
    assert!(
        x.warnings.iter().any(|w| w.contains("leaves out ttyd")),
        "{:?}",
        x.warnings
    );
    assert_eq!(x.labels[labels::DEV_ACCESS_SKIPPED], "ttyd");
    assert_eq!(
        x.labels[labels::DEV_ACCESS],
        "openssh-server,code-server,gh,claude-code"
    );
}

#[test]
fn runtimes_bring_artifacts_path_and_profile() {
    let x = parse(ALL).expand_for(Arch::Arm64).unwrap();
    let py = &x.steps[2];
    let s = script(py);
    // Ubuntu 24.04 provides Python 3.12 itself; anything else uses the artifact.
    assert!(s.contains(
        "'ubuntu:24.04') bw_pkg_install python3 python3-pip python3-venv python3-dev ;;"
    ));
    assert_eq!(py.artifacts.len(), 1);
    assert_eq!(
        py.artifacts[0].file.file,
        "cpython-3.12.8+20241206-aarch64-unknown-linux-gnu-install_only.tar.gz"
    );
    assert!(s.contains(&py.artifacts[0].file.checksum.to_string()));
    assert_eq!(py.path, ["/opt/boxwright/python/bin"]);
    assert!(s.contains("/etc/profile.d/boxwright-python.sh"));
    assert!(s.contains("export PATH=\"/opt/boxwright/python/bin:$PATH\""));
    assert!(s.contains("sh -c 'python3 --version'"));
    let node = &x.steps[3];
    assert_eq!(
        node.artifacts[0].file.file,
        "node-v20.11.1-linux-arm64.tar.gz"
    );
    assert_eq!(node.artifacts[0].component, "node");
    assert_eq!(node.artifacts[0].version, "20.11.1");
}

#[test]
fn runtime_history_names_the_component_and_its_catalog_entry() {
    let catalog = crate::catalog::Catalog::builtin().unwrap();
    let python = catalog.runtime("python").unwrap();
    let entry = python.entry_digest(python.version("3.12").unwrap());
    let amd = parse(ALL).expand_for(Arch::Amd64).unwrap();
    let arm = parse(ALL).expand_for(Arch::Arm64).unwrap();
    let want = format!("RUN [boxwright] component python 3.12 {entry}");
    // The issue's wording, verbatim, and one text for every architecture: the
    // entry pins both artifacts and the distro packages.
    assert!(want.contains(&format!("component python 3.12 {entry}")));
    assert_eq!(amd.steps[2].step.describe(), want);
    assert_eq!(arm.steps[2].step.describe(), want);
    assert!(
        !amd.steps[2].step.describe().contains("bw_"),
        "no shell library"
    );
    // Another version is another entry.
    assert_ne!(entry, python.entry_digest(python.version("3.13").unwrap()));
    // Progress lines still show the script's title.
    assert_eq!(
        amd.steps[2].step.summary(),
        "RUN [boxwright] runtime python 3.12"
    );
}

#[test]
fn distro_only_versions_fail_clearly_on_other_bases() {
    let x =
        parse("[image]\nbase = \"scratch\"\ndev_access = false\n[runtimes]\npython = \"3.11\"\n")
            .expand_for(Arch::Amd64)
            .unwrap();
    assert_eq!(x.steps.len(), 1);
    let s = script(&x.steps[0]);
    assert!(s.contains("'debian:12') bw_pkg_install python3"));
    assert!(s.contains("python 3.11 comes from the packages of debian:12 only"));
    assert!(x.steps[0].artifacts.is_empty());
    assert_eq!(x.labels[labels::DEV_ACCESS], "none");
}

#[test]
fn tools_extensions_and_user_steps() {
    let x = parse(ALL).expand_for(Arch::Amd64).unwrap();
    let tools = &x.steps[4];
    let s = script(tools);
    // Claude Code is in the dev access layer already.
    assert!(s.contains(
        "npm install -g --no-fund --no-audit --loglevel=warn '@openai/codex@0.171.0' '@google/gemini-cli@0.61.0'"
    ));
    assert!(!s.contains("claude-code@"));
    assert!(s.contains("# custom tool aider\n(\npip install aider-chat\n)\n"));
    // Node 20 satisfies gemini's engines; no warning about it.
    assert!(
        !x.warnings.iter().any(|w| w.contains("gemini")),
        "{:?}",
        x.warnings
    );
    assert_eq!(
        x.labels[labels::AI_TOOLS],
        "claude-code@2.1.332,codex@0.171.0,gemini@0.61.0,custom:aider"
    );

    let vs = &x.steps[5];
    let s = script(vs);
    assert!(s.contains("code-server --install-extension 'ms-python.python@2025.1.0'"));
    assert!(s.contains("code-server --install-extension '/run/boxwright/vsix/1-local.vsix'"));
    assert_eq!(vs.inputs.len(), 1);
    assert_eq!(
        vs.inputs[0].src,
        std::path::PathBuf::from("/r/vendor/local.vsix")
    );
    assert!(
        vs.caches
            .iter()
            .any(|c| c.ends_with("CachedExtensionVSIXs"))
    );

    let user = &x.steps[6];
    let mut expected: Vec<String> = STANDARD_CACHES.iter().map(|s| s.to_string()).collect();
    expected.push("/root/.cargo/registry".into());
    assert_eq!(user.caches, expected);
    assert!(x.steps[7].caches.is_empty(), "copy steps mount no cache");
    assert_eq!(x.labels[labels::RUNTIMES], "python=3.12,node=20");
    assert_eq!(
        x.labels[labels::EXTENSIONS],
        "ms-python.python@2025.1.0,vendor/local.vsix"
    );
    assert_eq!(x.labels[labels::PACKAGES], "jq");
    assert!(x.labels[labels::RECIPE_DIGEST].starts_with("sha256:"));
}

#[test]
fn a_template_child_builds_only_its_own_components() {
    let x = parse(
        "[image]\ntemplate = \"blank\"\n[ai_tools]\ninstall = [\"claude-code\", \"gemini\"]\n",
    )
    .expand_for(Arch::Amd64)
    .unwrap();
    let order: Vec<&str> = x.steps.iter().map(|s| s.component.as_str()).collect();
    assert_eq!(order, ["ai-tools"]);
    assert!(x.entrypoint.is_none() && x.ports.is_empty());
    assert_eq!(x.labels[labels::TEMPLATE], "blank");
    // Without a node runtime the base's own Node.js is used: gemini wants 20.
    assert!(
        x.warnings
            .iter()
            .any(|w| w.starts_with("gemini needs Node.js >= 20")),
        "{:?}",
        x.warnings
    );
}

#[test]
fn plain_recipes_expand_to_their_steps_with_standard_caches() {
    let x = parse("[image]\nbase = \"scratch\"\n[[steps]]\nrun = \"true\"\n")
        .expand_for(Arch::Amd64)
        .unwrap();
    assert_eq!(x.steps.len(), 1);
    assert_eq!(x.steps[0].caches, STANDARD_CACHES);
    assert!(x.labels.is_empty() && x.entrypoint.is_none());
}

#[test]
fn generated_scripts_are_valid_sh() {
    let x = parse(ALL).expand_for(Arch::Amd64).unwrap();
    for step in x.steps.iter().filter(|s| s.component != "recipe step 2") {
        let out = std::process::Command::new("sh")
            .arg("-n")
            .arg("-c")
            .arg(script(step))
            .output()
            .expect("sh -n");
        assert!(
            out.status.success(),
            "{}: {}",
            step.component,
            String::from_utf8_lossy(&out.stderr)
        );
    }
}
