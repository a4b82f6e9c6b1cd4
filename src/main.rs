//! The `quarry` command line: the engine's operations for terminals and scripts, with the JSON
//! contract of DESIGN.md §5. Exit codes: 0 success, 1 user error, 2 internal error.
// Writing to stdout and stderr is what a command-line tool is for.
#![allow(clippy::print_stdout, clippy::print_stderr)]

mod cli;

use std::process::ExitCode;

/// See `quarry::allocator`.
#[global_allocator]
static ALLOCATOR: quarry::allocator::Allocator = mimalloc::MiMalloc;

fn main() -> ExitCode {
    quarry::allocator::configure();
    // The hidden worker mode parses untrusted files for the indexing parent (see
    // `quarry::ingest::worker`); it must start fast and speak only its line protocol.
    if std::env::args().nth(1).as_deref() == Some(cli::WORKER_ARG) {
        let args: Vec<String> = std::env::args().skip(2).collect();
        return match quarry::ingest::worker::run(&args) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("quarry worker: {e}");
                ExitCode::from(2)
            }
        };
    }
    cli::main()
}
