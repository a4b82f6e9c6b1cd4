//! Desktop entry point. The same executable doubles as the engine's isolated extraction worker,
//! so an installed app needs no second binary to parse untrusted files safely.
#![cfg_attr(not(debug_assertions), windows_subsystem = "windows")]

/// The engine's models allocate and free large tensors per layer; mimalloc reuses them where
/// glibc's allocator returns them to the kernel and pays page faults again (see the CLI).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    if std::env::args().nth(1).as_deref() == Some(quarry_desktop::WORKER_ARG) {
        let stdin = std::io::stdin().lock();
        let stdout = std::io::stdout().lock();
        return match quarry::ingest::worker::serve(stdin, stdout) {
            Ok(()) => std::process::ExitCode::SUCCESS,
            Err(_) => std::process::ExitCode::from(2),
        };
    }
    quarry_desktop::run()
}
