//! `boxwright serve`: the Images page (see `boxwright::serve`).

use std::net::SocketAddr;
use std::path::PathBuf;

use super::{CliResult, Failure, Global};

#[derive(clap::Args, Debug)]
pub struct ServeArgs {
    /// Address to listen on; anything but loopback needs --token-file.
    #[arg(long, value_name = "ADDR:PORT", default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,
    /// The registry org (HOST/ORG) whose images the page lists and manages.
    #[arg(long, value_name = "HOST/ORG")]
    pub registry: Option<String>,
    /// A file holding the bearer token clients must send (Authorization: Bearer TOKEN).
    #[arg(long, value_name = "FILE")]
    pub token_file: Option<PathBuf>,
}

pub fn run(global: &Global, a: &ServeArgs) -> CliResult {
    let token = match &a.token_file {
        Some(f) => {
            let t = std::fs::read_to_string(f)
                .map_err(|e| Failure::input(format!("--token-file {}: {e}", f.display())))?;
            let t = t.trim().to_string();
            // An empty token would let anyone in: refused. A short one is
            // the user's choice (a test box, a throwaway port forward), so it
            // is only warned about, as nothing in the convention sets a floor.
            if t.is_empty() {
                return Err(Failure::input(format!(
                    "--token-file {}: the file is empty; put a token in it (e.g. openssl rand -hex 32 > {})",
                    f.display(),
                    f.display()
                )));
            }
            if t.len() < 16 {
                eprintln!(
                    "warning: --token-file {}: the token has {} characters; one of at least 16 (e.g. openssl rand -hex 32) resists guessing",
                    f.display(),
                    t.chars().count()
                );
            }
            Some(t)
        }
        None => None,
    };
    let exe = std::env::current_exe()
        .map_err(|e| Failure::failed(format!("cannot find boxwright's own executable: {e}")))?;
    let mut child_args = Vec::new();
    if let Some(c) = &global.registries_conf {
        child_args.push(format!("--registries-conf={}", c.display()));
    }
    if let Some(v) = global.tls_verify {
        child_args.push(format!("--tls-verify={v}"));
    }
    if let Some(c) = &global.catalog {
        child_args.push(format!("--catalog={}", c.display()));
    }
    let opts = boxwright::serve::ServeOptions {
        listen: a.listen,
        registry: a.registry.clone(),
        token,
        store: global.store_root(),
        exe,
        child_args,
    };
    boxwright::serve::serve(opts, None).map_err(|e| {
        if e.is_bad_input() {
            Failure::input(e.to_string())
        } else {
            Failure::failed(e.to_string())
        }
    })
}
