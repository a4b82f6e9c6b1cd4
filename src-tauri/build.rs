//! Build script: lets tauri-build check the config and embed the UI build and icons.
fn main() {
    tauri_build::build();
}
