//! The `boxwright` command: a thin shell over the library.

mod cli;

fn main() {
    // A worker is boxwright re-executed inside the build's user namespace:
    // it speaks JSON on stdin/stdout and never parses a command line.
    if std::env::args_os().nth(1).as_deref()
        == Some(boxwright::session::worker::WORKER_ARG.as_ref())
    {
        std::process::exit(boxwright::session::worker::worker_main());
    }
    // Sandbox monitors and `exec` entries are boxwright re-executed too; an
    // entry must stay single-threaded until it has joined the namespaces.
    match std::env::args_os().nth(1).as_deref() {
        Some(a) if a == boxwright::session::MONITOR_ARG => {
            std::process::exit(boxwright::session::monitor_main())
        }
        Some(a) if a == boxwright::session::ENTER_ARG => {
            std::process::exit(boxwright::session::enter_main())
        }
        _ => {}
    }
    std::process::exit(cli::main());
}
