//! The engine's integration tests, one binary (ripgrep's layout): each module covers one
//! subject end to end, through the public API or the `quarry` binary.

// Test helpers outside #[test] functions may unwrap (a failure is a test failure), print why a
// test was skipped, and read QUARRY_TEST_DATA: the engine's rules are for the engine.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::print_stderr,
    clippy::disallowed_methods
)]

mod support;
// Test doubles of the embedder and the generator, injected through `Engine::builder`.
mod fakes;

// The candle embedder against reference embeddings.
mod embed;
// Extraction of generated fixtures in every supported format.
mod ingest;
// Office, OpenDocument, e-book, e-mail and table formats, and bombs in them.
mod formats;
// Real files saved by LibreOffice in every office format Quarry reads.
mod libreoffice;
// Scanned pages and images read by Tesseract.
mod ocr;
// The shared corpus of real-world PDFs, broken ones included.
mod pdf_corpus;
// Incremental re-indexing: touch, edit, delete, remove.
mod incremental;
// Killing `quarry index` mid-run and reopening the library.
mod crash;
// Hybrid retrieval with the real embedder on a SciFact slice.
mod retrieve;
// Worker-process isolation: crashes and hangs cost one file.
mod isolation;
// The generation engine on random-weight checkpoints, and real chat templates.
mod generate;
// Tokenizers rebuilt from real GGUF vocabularies against llama.cpp's ids.
mod gguf_vocab;
// The ask pipeline and the engine's indexing runs and watch, with the test doubles.
mod pipeline;
// Documents and questions cannot add control tokens to the prompt, in any template family.
mod injection;
// Grounded answers: evidence, refusals, injections, verification, audit, SQuAD slice.
mod answer;
// German questions over German and English documents with the real multilingual embedder.
mod multilingual;
// The UI's generated TypeScript types match src/api.rs.
mod bindings;
// No network needed, and no socket opened but serve's loopback listener.
mod offline;
// `quarry models pull` against a local stand-in for huggingface.co.
mod pull;
// `quarry mcp` with the official MCP Python client.
mod mcp;
// A team library on S3-compatible storage, two machines and a real S3 server on loopback.
mod remote_library;
// Answers from llama-cpp-python's OpenAI-compatible server with the real Qwen file.
mod answer_server;
// Follow-up questions rewritten and retrieved over the shared PDFs.
mod conversations;
// The `quarry` command line and its JSON contract.
mod cli;
// House rules checked on the source tree.
mod tidy;
