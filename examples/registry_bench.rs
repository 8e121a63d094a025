//! Drives boxwright's registry client for `benches/registry_push.sh`:
//!
//! ```text
//! registry_bench push LAYOUT TAG REFERENCE   # push LAYOUT:TAG to REFERENCE
//! registry_bench pull REFERENCE LAYOUT       # pull REFERENCE into LAYOUT
//! ```
//!
//! The registry host of REFERENCE is spoken to over plain HTTP. The
//! blob-info cache is `$BW_BLOB_CACHE` (required, so runs stay independent).
//! Prints `transferred=N skipped=N mounted=N peak_rss_kb=N` on stdout.

#[path = "../tests/registry_support/layout.rs"]
#[allow(dead_code)]
mod layout;

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};

use boxwright::media::{self, Descriptor};
use boxwright::registry::{
    ClientOptions, CredentialStore, Reference, RegistriesConfig, Registry, SkipReason,
    TransferEvent,
};

fn main() {
    if let Err(e) = run() {
        eprintln!("registry_bench: {e}");
        std::process::exit(1);
    }
}

fn run() -> Result<(), String> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let cache = std::env::var_os("BW_BLOB_CACHE")
        .map(PathBuf::from)
        .ok_or("set BW_BLOB_CACHE")?;
    let client = |r: &Reference| {
        Registry::new(
            RegistriesConfig::default().insecure(r.registry()),
            CredentialStore::with_files(vec![], cache.with_extension("auth.json")),
            ClientOptions {
                blob_info_cache: Some(cache.clone()),
                ..Default::default()
            },
        )
        .map_err(|e| e.to_string())
    };
    let (transferred, skipped, mounted) = (AtomicU64::new(0), AtomicU64::new(0), AtomicU64::new(0));
    let progress = |e: TransferEvent| match e {
        TransferEvent::Done { .. } => {
            transferred.fetch_add(1, Ordering::Relaxed);
        }
        TransferEvent::Skipped {
            reason: SkipReason::Mounted { .. },
            ..
        } => {
            mounted.fetch_add(1, Ordering::Relaxed);
        }
        TransferEvent::Skipped { .. } => {
            skipped.fetch_add(1, Ordering::Relaxed);
        }
        _ => {}
    };
    match args
        .iter()
        .map(String::as_str)
        .collect::<Vec<_>>()
        .as_slice()
    {
        ["push", dir, tag, target] => {
            let layout = layout::Layout::create(std::path::Path::new(dir));
            let target: Reference = target.parse().map_err(|e| format!("{e}"))?;
            let desc = layout.tagged(tag);
            let manifest = layout.read_blob(&desc.digest);
            let doc: serde_json::Value =
                serde_json::from_slice(&manifest).map_err(|e| e.to_string())?;
            let mut blobs: Vec<Descriptor> =
                vec![serde_json::from_value(doc["config"].clone()).map_err(|e| e.to_string())?];
            blobs.extend(
                serde_json::from_value::<Vec<Descriptor>>(doc["layers"].clone())
                    .map_err(|e| e.to_string())?,
            );
            let media_type = doc["mediaType"]
                .as_str()
                .unwrap_or(media::OCI_MANIFEST)
                .to_string();
            client(&target)?
                .push(&layout, &target, &manifest, &media_type, &blobs, &progress)
                .map_err(|e| e.to_string())?;
        }
        ["pull", source, dir] => {
            let source: Reference = source.parse().map_err(|e| format!("{e}"))?;
            let layout = layout::Layout::create(std::path::Path::new(dir));
            let p = client(&source)?
                .pull(&source, None, &layout, &progress)
                .map_err(|e| e.to_string())?;
            layout.tag(
                "pulled",
                &Descriptor::new(
                    p.manifest_media_type,
                    p.manifest_digest,
                    p.manifest_bytes.len() as u64,
                ),
            );
        }
        _ => {
            return Err(
                "usage: registry_bench push LAYOUT TAG REFERENCE | pull REFERENCE LAYOUT".into(),
            );
        }
    }
    let hwm = std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1).map(str::to_string))
        })
        .unwrap_or_default();
    println!(
        "transferred={} skipped={} mounted={} peak_rss_kb={hwm}",
        transferred.load(Ordering::Relaxed),
        skipped.load(Ordering::Relaxed),
        mounted.load(Ordering::Relaxed)
    );
    Ok(())
}
