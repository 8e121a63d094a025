//! Commands that talk to registries: pull, push, login, logout.

use std::io::Read;

use boxwright::build::{self, normalize_tag, registry_client, transfer_reporter};
use boxwright::progress::{Clock, Event, sink_for};
use boxwright::registry::{Reference, Secret, parse_platform, pull_into_store};

use super::{CliResult, Failure, Global, open_store};

#[derive(clap::Args, Debug)]
pub struct PullArgs {
    /// The image, e.g. ubuntu:24.04 or 127.0.0.1:5000/team/base:1.
    pub reference: String,
    /// The platform to pick from a multi-platform image: os/arch[/variant].
    #[arg(long, value_name = "OS/ARCH[/VARIANT]")]
    pub platform: Option<String>,
}

#[derive(clap::Args, Debug)]
pub struct PushArgs {
    /// The stored image (NAME[:TAG]).
    pub name: String,
    /// Where to push it [default: NAME itself, which then names a registry].
    pub destination: Option<String>,
}

#[derive(clap::Args, Debug)]
pub struct LoginArgs {
    /// The registry host, e.g. registry.example.com or 127.0.0.1:5000.
    pub registry: String,
    #[arg(short = 'u', long = "username")]
    pub username: String,
    /// Read the password from standard input (the only way: never on the command line).
    #[arg(long, required = true)]
    pub password_stdin: bool,
}

#[derive(clap::Args, Debug)]
pub struct LogoutArgs {
    /// The registry host.
    pub registry: String,
}

fn reference(s: &str) -> Result<Reference, Failure> {
    s.parse()
        .map_err(|e| Failure::input(format!("'{s}' is not an image reference: {e}")))
}

pub fn pull(global: &Global, a: &PullArgs) -> CliResult {
    let reference = reference(&a.reference)?;
    let platform = a
        .platform
        .as_deref()
        .map(parse_platform)
        .transpose()
        .map_err(|e| Failure::input(e.to_string()))?;
    let store = open_store(global)?;
    let client = registry_client(&global.registry_options(), &store).map_err(Failure::failed)?;
    let mode = global.progress_mode();
    let sink = sink_for(mode, Clock::default());
    let report = transfer_reporter(sink.as_ref());
    let pulled = pull_into_store(&client, &store, &reference, platform.as_ref(), &report);
    let (_, desc) = pulled.map_err(|e| {
        sink.finish();
        Failure::failed(e.to_string())
    })?;
    sink.emit(&Event::Info {
        message: format!("pulled {reference} {}", desc.digest),
    });
    sink.finish();
    if !mode.uses_stdout() {
        println!("{}", desc.digest);
    }
    Ok(())
}

pub fn push(global: &Global, a: &PushArgs) -> CliResult {
    let store = open_store(global)?;
    let name = normalize_tag(&a.name).map_err(|e| Failure::input(e.to_string()))?;
    let desc = store
        .layout()
        .resolve(&name)
        .map_err(|e| Failure::input(e.to_string()))?;
    let target = a.destination.clone().unwrap_or(name);
    let mode = global.progress_mode();
    let sink = sink_for(mode, Clock::default());
    let pushed = build::push(
        &store,
        &desc,
        &target,
        &global.registry_options(),
        sink.as_ref(),
    );
    sink.finish();
    let digest = pushed.map_err(|e| {
        if e.is_bad_input() {
            Failure::input(e.to_string())
        } else {
            Failure::failed(e.to_string())
        }
    })?;
    if !mode.uses_stdout() {
        println!("{digest}");
    }
    Ok(())
}

pub fn login(global: &Global, a: &LoginArgs) -> CliResult {
    let mut password = String::new();
    std::io::stdin()
        .read_to_string(&mut password)
        .map_err(|e| Failure::input(format!("cannot read the password from stdin: {e}")))?;
    let password = password.trim_end_matches(['\n', '\r']).to_string();
    if password.is_empty() {
        return Err(Failure::input(
            "no password on stdin: echo \"$PASSWORD\" | boxwright login HOST -u USER --password-stdin",
        ));
    }
    let store = open_store(global)?;
    let client = registry_client(&global.registry_options(), &store).map_err(Failure::failed)?;
    let path = client
        .login(&a.registry, &a.username, Secret::new(password))
        .map_err(|e| Failure::failed(e.to_string()))?;
    eprintln!("Login Succeeded (credentials stored in {})", path.display());
    Ok(())
}

pub fn logout(global: &Global, a: &LogoutArgs) -> CliResult {
    let store = open_store(global)?;
    let client = registry_client(&global.registry_options(), &store).map_err(Failure::failed)?;
    let removed = client
        .logout(&a.registry)
        .map_err(|e| Failure::failed(e.to_string()))?;
    if removed {
        eprintln!("Removed login credentials for {}", a.registry);
        Ok(())
    } else {
        Err(Failure::input(format!("not logged in to {}", a.registry)))
    }
}
