//! Desktop entry point. The same executable doubles as the engine's isolated extraction worker,
//! so an installed app needs no second binary to parse untrusted files safely.
#![cfg_attr(not(debug_assertions), windows_subsystem = "windows")]

/// See `quarry::allocator`.
#[global_allocator]
static ALLOCATOR: quarry::allocator::Allocator = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    quarry::allocator::configure();
    if std::env::args().nth(1).as_deref() == Some(quarry_desktop::WORKER_ARG) {
        let args: Vec<String> = std::env::args().skip(2).collect();
        return match quarry::ingest::worker::run(&args) {
            Ok(()) => std::process::ExitCode::SUCCESS,
            Err(_) => std::process::ExitCode::from(2),
        };
    }
    quarry_desktop::run()
}
