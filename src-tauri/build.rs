//! Build script: lets tauri-build check the config, embed the UI build and icons, and generate
//! the permissions of the app's own commands (the app manifest), so the capability file can
//! allow exactly the commands the window uses and nothing else.

/// Every command the shell registers (`tauri::generate_handler!` in `src/lib.rs`).
const COMMANDS: &[&str] = &[
    "status",
    "documents",
    "settings",
    "index_progress",
    "index",
    "cancel_index",
    "unlock",
    "remove",
    "ask",
    "cancel_ask",
    "document_text",
    "document_bytes",
    "ocr_words",
    "models",
    "pull_model",
    "cancel_pull",
    "use_model",
    "choose_embedder",
    "remove_model",
    "search",
    "update_settings",
    "threads",
    "thread",
    "rename_thread",
    "delete_thread",
    "export_thread",
];

fn main() {
    let attributes = tauri_build::Attributes::new()
        .app_manifest(tauri_build::AppManifest::new().commands(COMMANDS));
    if let Err(err) = tauri_build::try_build(attributes) {
        // A build script reports failure by panicking; the message is the reason.
        panic!("tauri-build: {err:#}");
    }
}
