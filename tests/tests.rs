//! The engine's integration tests, one binary (ripgrep's layout): each module covers one
//! subject end to end, through the public API or the `quarry` binary.

mod support;

// Extraction of generated fixtures in every supported format.
mod ingest;
// The shared corpus of real-world PDFs, broken ones included.
mod pdf_corpus;
// Incremental re-indexing: touch, edit, delete, remove.
mod incremental;
// Killing `quarry index` mid-run and reopening the library.
mod crash;
// Worker-process isolation: crashes and hangs cost one file.
mod isolation;
// The `quarry` command line and its JSON contract.
mod cli;
// House rules checked on the source tree.
mod tidy;
