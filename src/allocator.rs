//! The memory allocator both executables install, and its one setting. Model inference
//! allocates and frees tensors of megabytes per layer; glibc's allocator hands such blocks back
//! to the kernel each time and pays page faults to get them again (a fifth of embedding time
//! in a profile). mimalloc reuses them, but by default returns idle memory after 10 ms, shorter
//! than one embedding batch or one generated token, so the faults came back; here memory is
//! returned after a second of idleness instead.

// The engine's one unsafe line: an FFI call to the allocator's C API.
#![allow(unsafe_code)]

/// The global allocator of Quarry's executables (`#[global_allocator]` in each binary).
pub type Allocator = mimalloc::MiMalloc;

/// `mi_option_purge_delay`: its position in mimalloc's option list (v2 and v3 alike), which
/// libmimalloc-sys does not name.
const PURGE_DELAY_OPTION: libmimalloc_sys::mi_option_t = 15;
/// Milliseconds freed memory stays with the process before it is returned to the system.
const PURGE_DELAY_MS: std::ffi::c_long = 1000;

/// Applies the setting; call first thing in `main`.
pub fn configure() {
    // SAFETY: sets a plain integer option of the allocator, which mimalloc allows at any time.
    unsafe { libmimalloc_sys::mi_option_set(PURGE_DELAY_OPTION, PURGE_DELAY_MS) };
}
