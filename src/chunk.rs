//! Chunk stage: cuts extracted text into overlapping pieces of at most `max_tokens` tokens,
//! counted with the embedding model's own tokenizer. Chunks never cross pages, so a citation
//! names one page; each keeps its page range, character span and heading path.

use std::path::Path;

use text_splitter::{Characters, ChunkConfig, MarkdownSplitter, TextSplitter};
use tokenizers::Tokenizer;

use crate::api::FileKind;
use crate::config::ChunkingConfig;
use crate::error::{Error, Result};
use crate::ingest::{Extracted, Section};

/// A piece of a document, ready to embed and index.
#[derive(Debug, Clone, PartialEq)]
pub struct Chunk {
    /// Position in the document, from 0.
    pub ordinal: u32,
    /// The text.
    pub text: String,
    /// First page (1-based).
    pub page_start: u32,
    /// Last page.
    pub page_end: u32,
    /// Start of the span in the document text, in characters (Unicode scalar values).
    pub char_start: u64,
    /// End of the span (exclusive), in characters.
    pub char_end: u64,
    /// Heading path joined with " > ".
    pub heading: String,
    /// ISO 639-3 code of the detected language ("eng", "deu"), or empty when unsure.
    pub language: String,
}

/// Characters per token assumed when no tokenizer is available (English and German prose
/// average 4-5 characters per word piece; erring low keeps chunks inside the model's limit).
const CHARS_PER_TOKEN: usize = 4;

enum Sizer {
    Tokens(Box<Tokenizer>),
    Characters,
}

/// Cuts documents into chunks. Cheap to share between threads.
pub struct Chunker {
    sizer: Sizer,
    config: ChunkingConfig,
    description: String,
}

/// What chunking one document may cost.
#[derive(Debug, Clone, Copy)]
pub struct ChunkLimits {
    /// Most chunks.
    pub max_chunks: usize,
    /// Longest time.
    pub time: std::time::Duration,
}

impl std::fmt::Debug for Chunker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Chunker").field("description", &self.description).finish()
    }
}

impl Chunker {
    /// A chunker counting tokens with the `tokenizer.json` at `path`.
    pub fn with_tokenizer(path: &Path, config: &ChunkingConfig) -> Result<Self> {
        let mut tokenizer = Tokenizer::from_file(path)
            .map_err(|e| Error::user(format!("cannot load tokenizer {}: {e}", path.display())))?;
        // The sentence-transformers tokenizer.json pads and truncates to 128 tokens; counting
        // must see the real length.
        tokenizer.with_padding(None);
        tokenizer
            .with_truncation(None)
            .map_err(|e| Error::internal("tokenizer without truncation", e.to_string()))?;
        let model = path
            .parent()
            .and_then(|p| p.file_name())
            .map_or_else(|| "tokenizer".to_owned(), |n| n.to_string_lossy().into_owned());
        Ok(Self {
            sizer: Sizer::Tokens(Box::new(tokenizer)),
            config: config.clone(),
            description: format!(
                "tokens({model}) max {} overlap {}",
                config.max_tokens, config.overlap_tokens
            ),
        })
    }

    /// A chunker approximating tokens by characters, for when no tokenizer is installed.
    pub fn with_characters(config: &ChunkingConfig) -> Self {
        Self {
            sizer: Sizer::Characters,
            config: config.clone(),
            description: format!(
                "characters({CHARS_PER_TOKEN}/token) max {} overlap {}",
                config.max_tokens, config.overlap_tokens
            ),
        }
    }

    /// How chunks are sized, recorded in `library.json`.
    pub fn description(&self) -> &str {
        &self.description
    }

    /// Cuts `doc` into chunks.
    pub fn chunk(&self, doc: &Extracted, kind: FileKind) -> Vec<Chunk> {
        let unlimited = ChunkLimits { max_chunks: usize::MAX, time: std::time::Duration::MAX };
        self.chunk_within(doc, kind, unlimited).unwrap_or_default()
    }

    /// [`Chunker::chunk`] within `limits`: a document that would make more chunks, or take
    /// longer, is refused with the reason (checked after every chunk).
    pub fn chunk_within(
        &self,
        doc: &Extracted,
        kind: FileKind,
        limits: ChunkLimits,
    ) -> Result<Vec<Chunk>, String> {
        let started = std::time::Instant::now();
        let mut res = Vec::new();
        let mut chars = CharCounter::new(&doc.text);
        for block in self.blocks(doc) {
            let text = &doc.text[block.start..block.end];
            for (offset, piece) in self.split(text, kind) {
                let start = block.start + offset;
                let section = block
                    .sections
                    .iter()
                    .find(|s| s.end > start)
                    .or(block.sections.last())
                    .copied();
                let Some(section) = section else { continue };
                let char_start = chars.at(start);
                let char_end = char_start + piece.chars().count() as u64;
                res.push(Chunk {
                    ordinal: res.len() as u32,
                    text: piece.to_owned(),
                    page_start: section.page,
                    page_end: section.page,
                    char_start,
                    char_end,
                    heading: section.heading.join(" > "),
                    language: detect_language(piece),
                });
                if res.len() > limits.max_chunks {
                    return Err(format!(
                        "too long to index: more than {} chunks (the limit per file)",
                        limits.max_chunks
                    ));
                }
                if started.elapsed() > limits.time {
                    return Err(format!(
                        "chunking took longer than {} s and was stopped",
                        limits.time.as_secs()
                    ));
                }
            }
        }
        Ok(res)
    }

    /// Groups consecutive sections of one page while they fit in one chunk together, so short
    /// sections (a heading with one line under it) do not become chunks of their own.
    fn blocks<'a>(&self, doc: &'a Extracted) -> Vec<Block<'a>> {
        let mut res: Vec<Block<'a>> = Vec::new();
        for section in &doc.sections {
            if let Some(last) = res.last_mut() {
                let same_page = last.sections.first().is_some_and(|s| s.page == section.page);
                if same_page
                    && self.size(&doc.text[last.start..section.end]) <= self.config.max_tokens
                {
                    last.end = section.end;
                    last.sections.push(section);
                    continue;
                }
            }
            res.push(Block { start: section.start, end: section.end, sections: vec![section] });
        }
        res
    }

    fn size(&self, text: &str) -> usize {
        match &self.sizer {
            Sizer::Tokens(t) => t.encode(text, false).map_or(text.len(), |e| e.len()),
            Sizer::Characters => text.chars().count().div_ceil(CHARS_PER_TOKEN),
        }
    }

    fn split<'t>(&self, text: &'t str, kind: FileKind) -> Vec<(usize, &'t str)> {
        let max = self.config.max_tokens;
        let overlap = self.config.overlap_tokens;
        match &self.sizer {
            Sizer::Tokens(tokenizer) => {
                let config = chunk_config(max, overlap).with_sizer(tokenizer.as_ref());
                split_with(config, text, kind)
            }
            Sizer::Characters => {
                let config = chunk_config(max * CHARS_PER_TOKEN, overlap * CHARS_PER_TOKEN)
                    .with_sizer(Characters);
                split_with(config, text, kind)
            }
        }
    }
}

fn chunk_config(max: usize, overlap: usize) -> ChunkConfig<Characters> {
    // Validated in EngineConfig::validate: overlap < max / 2.
    ChunkConfig::new(max).with_overlap(overlap).unwrap_or_else(|_| ChunkConfig::new(max))
}

fn split_with<S: text_splitter::ChunkSizer>(
    config: ChunkConfig<S>,
    text: &str,
    kind: FileKind,
) -> Vec<(usize, &str)> {
    if kind == FileKind::Markdown {
        MarkdownSplitter::new(config).chunk_indices(text).collect()
    } else {
        TextSplitter::new(config).chunk_indices(text).collect()
    }
}

struct Block<'a> {
    start: usize,
    end: usize,
    sections: Vec<&'a Section>,
}

/// Converts increasing byte offsets to character offsets without rescanning from the start.
struct CharCounter<'a> {
    text: &'a str,
    byte: usize,
    chars: u64,
}

impl<'a> CharCounter<'a> {
    fn new(text: &'a str) -> Self {
        Self { text, byte: 0, chars: 0 }
    }

    fn at(&mut self, byte: usize) -> u64 {
        if byte < self.byte {
            self.byte = 0;
            self.chars = 0;
        }
        self.chars += self.text[self.byte..byte].chars().count() as u64;
        self.byte = byte;
        self.chars
    }
}

/// The ISO 639-3 code of `text`'s language when whatlang is confident enough, else "".
pub fn detect_language(text: &str) -> String {
    match whatlang::detect(text) {
        // whatlang's own "reliable" flag rejects most chunk-sized texts; a confidence of one
        // half already separates English from German well.
        Some(info) if info.confidence() >= 0.5 => info.lang().code().to_owned(),
        _ => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn doc_of(sections: &[(u32, &str, &str)]) -> Extracted {
        let mut doc = Extracted::default();
        for (page, heading, text) in sections {
            let heading = if heading.is_empty() { vec![] } else { vec![(*heading).to_owned()] };
            doc.push_section(*page, heading, text);
        }
        doc
    }

    #[test]
    fn chunks_keep_pages_spans_and_headings() {
        let config = ChunkingConfig { max_tokens: 20, overlap_tokens: 4 };
        let chunker = Chunker::with_characters(&config);
        let long =
            "Der Mieter zahlt die Miete monatlich im Voraus und die Nebenkosten später. ".repeat(4);
        let doc = doc_of(&[(1, "Intro", "Short."), (1, "Terms", "Also short."), (2, "", &long)]);
        let chunks = chunker.chunk(&doc, FileKind::Text);
        // Page 1's two small sections merge into one chunk; page 2 needs several.
        assert_eq!(chunks[0].text, "Short.Also short.");
        assert_eq!((chunks[0].page_start, chunks[0].heading.as_str()), (1, "Intro"));
        assert!(chunks.len() > 3);
        for chunk in &chunks[1..] {
            assert_eq!(chunk.page_start, 2);
            assert!(chunk.text.chars().count() <= 80, "{}", chunk.text.len());
            let span: String = doc
                .text
                .chars()
                .skip(chunk.char_start as usize)
                .take((chunk.char_end - chunk.char_start) as usize)
                .collect();
            assert_eq!(span, chunk.text);
        }
        assert_eq!(chunks[1].language, "deu");
        let ordinals: Vec<u32> = chunks.iter().map(|c| c.ordinal).collect();
        assert_eq!(ordinals, (0..chunks.len() as u32).collect::<Vec<_>>());
    }

    #[test]
    fn char_counter_handles_multibyte_text() {
        let text = "äöü abc ß";
        let mut counter = CharCounter::new(text);
        assert_eq!(counter.at(6), 3);
        assert_eq!(counter.at(text.len()), 9);
        assert_eq!(counter.at(2), 1);
    }
}
