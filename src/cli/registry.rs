//! Commands that talk to registries: pull, push, login, logout.
//!
//! With `--progress json`, pull and push end their event stream as a build
//! does: `finished` with the manifest digest and the reference, or `failed`
//! with the one-line reason (which stderr gets too).

use std::io::{BufRead as _, IsTerminal as _, Read as _, Write as _};

use boxwright::builder::{self, normalize_tag, registry_client, transfer_reporter};
use boxwright::digest::Digest;
use boxwright::image::parse_platform;
use boxwright::progress::{Clock, Event, Phase, ProgressMode, Sink, sink_for};
use boxwright::registry::{Reference, Secret, pull_into_store};

use super::{CliResult, Failure, Global, lock_store, open_store, reference};

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
    /// The user name [prompted for on a terminal when not given].
    #[arg(short = 'u', long = "username")]
    pub username: Option<String>,
    /// Read the password from standard input instead of prompting for it on
    /// the terminal (a password is never taken from the command line).
    #[arg(long)]
    pub password_stdin: bool,
}

#[derive(clap::Args, Debug)]
pub struct LogoutArgs {
    /// The registry host.
    pub registry: String,
}

pub fn pull(global: &Global, a: &PullArgs) -> CliResult {
    let mode = global.progress_mode();
    let sink = sink_for(mode, Clock::default());
    let result = pull_to_store(global, a, sink.as_ref());
    conclude(mode, sink.as_ref(), result)
}

fn pull_to_store(
    global: &Global,
    a: &PullArgs,
    sink: &dyn Sink,
) -> Result<(Digest, String), Failure> {
    let reference = reference(&a.reference)?;
    let platform = a
        .platform
        .as_deref()
        .map(parse_platform)
        .transpose()
        .map_err(|e| Failure::input(e.to_string()))?;
    let store = open_store(global)?;
    let client = registry_client(&global.registry_options(), &store)
        .map_err(|e| Failure::failed(e.to_string()))?;
    let report = transfer_reporter(sink);
    let _lock = lock_store(&store)?;
    let (_, desc) = pull_into_store(&client, &store, &reference, platform.as_ref(), &report)
        .map_err(|e| Failure::failed(e.to_string()))?;
    sink.emit(&Event::Info {
        message: format!("pulled {reference} {}", desc.digest),
    });
    Ok((desc.digest, reference.to_string()))
}

pub fn push(global: &Global, a: &PushArgs) -> CliResult {
    let mode = global.progress_mode();
    let sink = sink_for(mode, Clock::default());
    let result = push_from_store(global, a, sink.as_ref());
    conclude(mode, sink.as_ref(), result)
}

fn push_from_store(
    global: &Global,
    a: &PushArgs,
    sink: &dyn Sink,
) -> Result<(Digest, String), Failure> {
    let store = open_store(global)?;
    let name = normalize_tag(&a.name).map_err(|e| Failure::input(e.to_string()))?;
    let desc = store
        .layout()
        .resolve(&name)
        .map_err(|e| Failure::input(e.to_string()))?;
    let target = a.destination.clone().unwrap_or(name);
    // builder::push parses the target too; parsed here for the reference the
    // final event names (normalised, as pull names it).
    let shown = target
        .parse::<Reference>()
        .map(|r| r.to_string())
        .unwrap_or_else(|_| target.clone());
    let digest =
        builder::push(&store, &desc, &target, &global.registry_options(), sink).map_err(|e| {
            if e.is_bad_input() {
                Failure::input(e.to_string())
            } else {
                Failure::failed(e.to_string())
            }
        })?;
    Ok((digest, shown))
}

/// Ends a pull or push: the digest on stdout, or with `--progress json`
/// the events a build ends with (`phase` `done` and `finished`, or
/// `failed`), stdout then holding events only.
fn conclude(
    mode: ProgressMode,
    sink: &dyn Sink,
    result: Result<(Digest, String), Failure>,
) -> CliResult {
    let json = mode.uses_stdout();
    match result {
        Ok((digest, name)) => {
            if json {
                sink.emit(&Event::Phase { phase: Phase::Done });
                // The build's final event; a push or pull has no steps.
                sink.emit(&Event::Finished {
                    digest: digest.clone(),
                    name: Some(name),
                    cached_steps: 0,
                    total_steps: 0,
                });
            }
            sink.finish();
            if !json {
                println!("{digest}");
            }
            Ok(())
        }
        Err(f) => {
            if json {
                sink.emit(&Event::Failed {
                    step: None,
                    command: None,
                    exit_code: None,
                    message: f.message.clone(),
                    last_lines: Vec::new(),
                });
            }
            sink.finish();
            Err(f)
        }
    }
}

pub fn login(global: &Global, a: &LoginArgs) -> CliResult {
    let (username, password) = if a.password_stdin {
        let username = a.username.clone().ok_or_else(|| {
            Failure::input("--password-stdin needs the user name: boxwright login HOST -u USER --password-stdin")
        })?;
        let mut password = String::new();
        std::io::stdin()
            .read_to_string(&mut password)
            .map_err(|e| Failure::input(format!("cannot read the password from stdin: {e}")))?;
        (
            username,
            password.trim_end_matches(['\n', '\r']).to_string(),
        )
    } else {
        if !std::io::stdin().is_terminal() {
            return Err(Failure::input(
                "no terminal to ask for the password on: pipe it in, echo \"$PASSWORD\" | boxwright login HOST -u USER --password-stdin",
            ));
        }
        let username = match &a.username {
            Some(u) => u.clone(),
            None => prompt_line("Username: ")
                .map_err(|e| Failure::input(format!("cannot read the user name: {e}")))?,
        };
        let password = prompt_hidden("Password: ")
            .map_err(|e| Failure::input(format!("cannot read the password: {e}")))?;
        (username, password)
    };
    if username.is_empty() {
        return Err(Failure::input(
            "no user name given: boxwright login HOST -u USER",
        ));
    }
    if password.is_empty() {
        return Err(Failure::input(if a.password_stdin {
            "no password on stdin: echo \"$PASSWORD\" | boxwright login HOST -u USER --password-stdin"
        } else {
            "no password given"
        }));
    }
    let store = open_store(global)?;
    let client = registry_client(&global.registry_options(), &store)
        .map_err(|e| Failure::failed(e.to_string()))?;
    let path = client
        .login(&a.registry, &username, Secret::new(password))
        .map_err(|e| Failure::failed(e.to_string()))?;
    eprintln!("Login Succeeded (credentials stored in {})", path.display());
    Ok(())
}

/// Asks on stderr and reads one line of the terminal on stdin.
fn prompt_line(prompt: &str) -> std::io::Result<String> {
    eprint!("{prompt}");
    std::io::stderr().flush()?;
    let mut line = String::new();
    std::io::stdin().lock().read_line(&mut line)?;
    Ok(line.trim_end_matches(['\n', '\r']).to_string())
}

/// [`prompt_line`] with the terminal's echo off, so the password is never
/// shown (the newline still is, as `passwd` and `sudo` do). The terminal's
/// settings are restored when the read ends, and also when a signal (Ctrl-C,
/// a hang-up) ends the process during it: a shell left without echo is
/// where the next password typed would be lost.
fn prompt_hidden(prompt: &str) -> std::io::Result<String> {
    use nix::sys::signal::{SaFlags, SigAction, SigHandler, SigSet, Signal, sigaction};
    use nix::sys::termios::{LocalFlags, SetArg, Termios, tcgetattr, tcsetattr};

    /// The settings to restore, for the signal handler (a plain C struct:
    /// reading it there takes no lock).
    static SAVED: std::sync::OnceLock<libc::termios> = std::sync::OnceLock::new();
    const SIGNALS: [Signal; 4] = [
        Signal::SIGINT,
        Signal::SIGTERM,
        Signal::SIGQUIT,
        Signal::SIGHUP,
    ];

    extern "C" fn restore_and_die(sig: libc::c_int) {
        if let Some(t) = SAVED.get() {
            // SAFETY: tcsetattr, signal and raise are async-signal-safe; `t`
            // is a valid termios that is never written after it was set.
            unsafe { libc::tcsetattr(libc::STDIN_FILENO, libc::TCSANOW, t) };
        }
        // SAFETY: as above. With the default disposition back, the signal
        // ends the process as it would have without this handler.
        unsafe {
            libc::signal(sig, libc::SIG_DFL);
            libc::raise(sig);
        }
    }

    struct Restore {
        termios: Termios,
        handlers: Vec<(Signal, SigAction)>,
    }
    impl Drop for Restore {
        fn drop(&mut self) {
            let _ = tcsetattr(std::io::stdin(), SetArg::TCSANOW, &self.termios);
            for (sig, old) in &self.handlers {
                // SAFETY: puts back the handler that was there before.
                let _ = unsafe { sigaction(*sig, old) };
            }
        }
    }

    let saved = tcgetattr(std::io::stdin())?;
    let _ = SAVED.set(libc::termios::from(saved.clone()));
    let mut restore = Restore {
        termios: saved.clone(),
        handlers: Vec::new(),
    };
    let on_signal = SigAction::new(
        SigHandler::Handler(restore_and_die),
        SaFlags::empty(),
        SigSet::empty(),
    );
    for sig in SIGNALS {
        // SAFETY: the handler only calls async-signal-safe functions.
        if let Ok(old) = unsafe { sigaction(sig, &on_signal) } {
            restore.handlers.push((sig, old));
        }
    }
    let mut quiet = saved;
    quiet.local_flags.remove(LocalFlags::ECHO);
    quiet.local_flags.insert(LocalFlags::ECHONL);
    // Flush what was typed ahead, so it is not read with echo off unseen.
    tcsetattr(std::io::stdin(), SetArg::TCSAFLUSH, &quiet)?;
    let line = prompt_line(prompt);
    drop(restore);
    line
}

pub fn logout(global: &Global, a: &LogoutArgs) -> CliResult {
    let store = open_store(global)?;
    let client = registry_client(&global.registry_options(), &store)
        .map_err(|e| Failure::failed(e.to_string()))?;
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
