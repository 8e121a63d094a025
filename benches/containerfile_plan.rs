//! Parse + plan of a 300-line Dockerfile (the front end's cost before any
//! step runs). Target: under 5 ms. No peer: buildah has no parse-only mode,
//! so the figure stands alone; `benches/containerfile.sh` measures whole
//! builds side by side with buildah.
//!
//!   cargo bench --bench containerfile_plan

use std::collections::{BTreeMap, HashMap};
use std::time::Instant;

use boxwright::plan::containerfile::{self as lower, LowerInput};

fn main() {
    let ctx = tempfile::tempdir().expect("temp dir");
    std::fs::write(ctx.path().join("app.sh"), "#!/bin/sh\necho hi\n").expect("write");
    let mut text = String::from("# escape=\\\nARG BASE=debian:bookworm\nFROM ${BASE} AS build\n");
    let mut lines = 3;
    let mut i = 0;
    while lines < 300 {
        text.push_str(&format!(
            "# step {i}\nARG V{i}=1.{i}\nENV PATH_{i}=/opt/{i}/bin:$PATH V{i}=${{V{i}:-x}}\nRUN --mount=type=cache,target=/root/.cache/{i} set -eux; \\\n    echo \"$V{i}\" > /tmp/{i} && \\\n    test -s /tmp/{i}\nCOPY --chmod=0755 app.sh /usr/local/bin/app{i}.sh\nLABEL step{i}=\"value {i}\"\n"
        ));
        lines += 8;
        i += 1;
    }
    text.push_str("CMD [\"/usr/local/bin/app0.sh\"]\n");
    let path = ctx.path().join("Containerfile");
    let args = BTreeMap::new();
    let platform = lower::platform_args(&boxwright::image::host_platform());
    let mut times = Vec::new();
    for _ in 0..200 {
        let start = Instant::now();
        let file = boxwright::containerfile::parse(&text, &path).expect("parses");
        let names: HashMap<String, usize> = HashMap::from([("build".to_string(), 0)]);
        let input = LowerInput {
            file: &file,
            context: ctx.path(),
            dockerignore: &[],
            build_args: &args,
            base_env: vec![("PATH".into(), "/usr/bin:/bin".into())],
            base_shell: None,
            stages: &names,
            staging: ctx.path(),
            platform_args: &platform,
            check_only: false,
        };
        let lowered = lower::lower_stage(&input, &file.stages[0]).expect("lowers");
        assert!(lowered.steps.len() > 150, "{} steps", lowered.steps.len());
        times.push(start.elapsed());
    }
    times.sort();
    let median = times[times.len() / 2];
    println!(
        "parse + plan of a {}-line Dockerfile: median {:.2} ms over {} runs (target: under 5 ms)",
        text.lines().count(),
        median.as_secs_f64() * 1000.0,
        times.len()
    );
}
