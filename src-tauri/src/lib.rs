//! The Tauri shell: builds the window around the `ui/` build. It stays thin: every command it
//! will offer forwards to `quarry::Engine`; nothing of substance lives here.

/// First argument that starts the hidden extraction worker (the same as the CLI's).
pub const WORKER_ARG: &str = "__extract-worker";

/// Builds and runs the app; returns the process exit code.
pub fn run() -> std::process::ExitCode {
    match tauri::Builder::default().run(tauri::generate_context!()) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(err) => {
            #[allow(clippy::print_stderr)] // No window to show the error in.
            {
                eprintln!("quarry: cannot start the app: {err}");
            }
            std::process::ExitCode::from(2)
        }
    }
}
