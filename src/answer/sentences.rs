//! Sentence boundaries for quoting and checking answers: Unicode sentence segmentation (UAX #29)
//! over text whose single line breaks are treated as spaces, since PDF text breaks lines inside
//! sentences. Spans are byte offsets into the original text, so quotes stay verbatim.

use unicode_segmentation::UnicodeSegmentation;

/// Shortest sentence, in words, that stands on its own; shorter pieces ("Fig. 3.", "Mr.") are
/// joined to the sentence before them.
const MIN_WORDS: usize = 4;

/// A sentence of a text: its byte span, trimmed of surrounding whitespace.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SentenceSpan {
    /// Byte offset of the first character.
    pub start: usize,
    /// Byte offset after the last character.
    pub end: usize,
}

impl SentenceSpan {
    /// The sentence's text in `text`.
    pub fn of<'a>(&self, text: &'a str) -> &'a str {
        &text[self.start..self.end]
    }
}

/// The sentences of `text`, in order.
pub fn split_sentences(text: &str) -> Vec<SentenceSpan> {
    // Same length as `text` (a line break and a space are both one byte), so offsets carry over.
    let unwrapped = unwrap_lines(text);
    let mut res: Vec<SentenceSpan> = Vec::new();
    for (offset, piece) in unwrapped.split_sentence_bound_indices() {
        let trimmed = piece.trim();
        if trimmed.is_empty() {
            continue;
        }
        let start = offset + (piece.len() - piece.trim_start().len());
        let span = SentenceSpan { start, end: start + trimmed.len() };
        let short = trimmed.split_whitespace().count() < MIN_WORDS;
        let after_paragraph = res.last().is_some_and(|last| text[last.end..start].contains("\n\n"));
        match res.last_mut() {
            Some(last) if short && !after_paragraph => last.end = span.end,
            _ => res.push(span),
        }
    }
    res
}

/// `text` with each single line break replaced by a space; paragraph breaks (two or more line
/// breaks) stay, so they still end sentences.
fn unwrap_lines(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = String::with_capacity(text.len());
    for (i, c) in text.char_indices() {
        let lone_break = c == '\n'
            && bytes.get(i + 1) != Some(&b'\n')
            && (i == 0 || bytes[i - 1] != b'\n')
            && !is_list_start(&text[i + 1..]);
        out.push(if lone_break || c == '\r' { ' ' } else { c });
    }
    out
}

/// Whether a line starts a list item or a heading, which ends the sentence before it.
fn is_list_start(rest: &str) -> bool {
    let rest = rest.trim_start_matches([' ', '\t']);
    rest.starts_with("- ")
        || rest.starts_with("* ")
        || rest.starts_with("# ")
        || rest.starts_with("• ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sentences(text: &str) -> Vec<&str> {
        split_sentences(text).iter().map(|s| s.of(text)).collect()
    }

    #[test]
    fn splits_sentences_and_unwraps_lines() {
        let text = "The lease ends on 31 March.  Notice must be given\nthree months before the end. \
                    Rent is due monthly!";
        assert_eq!(
            sentences(text),
            vec![
                "The lease ends on 31 March.",
                "Notice must be given\nthree months before the end.",
                "Rent is due monthly!"
            ]
        );
    }

    #[test]
    fn joins_fragments_but_not_across_paragraphs() {
        let text = "See the table in Fig. 3. It lists every tenant by floor.\n\nNotes.\n\nThe owner signs last.";
        assert_eq!(
            sentences(text),
            vec![
                "See the table in Fig. 3.",
                "It lists every tenant by floor.",
                "Notes.",
                "The owner signs last."
            ]
        );
    }

    #[test]
    fn german_and_multibyte_text_keeps_byte_spans() {
        let text = "Die Kündigungsfrist beträgt drei Monate. Sie gilt für beide Vertragsparteien.";
        let spans = split_sentences(text);
        assert_eq!(spans.len(), 2);
        assert_eq!(spans[1].of(text), "Sie gilt für beide Vertragsparteien.");
    }
}
