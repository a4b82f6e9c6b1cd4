//! Turns a growing list of token ids into text pieces that are safe to show: byte-level tokens
//! can end inside a UTF-8 character and merged tokens can change how earlier ones detokenize,
//! so text is released only once it is complete, and held back while it might still become a
//! stop string.

use tokenizers::Tokenizer;

use super::GenerateError;

/// Decodes token ids incrementally, releasing only complete text.
#[derive(Debug, Default)]
pub struct IncrementalDecoder {
    ids: Vec<u32>,
    /// Start of the tokens whose text is still needed as left context.
    prefix_start: usize,
    /// Tokens up to here have been released as text.
    released: usize,
}

impl IncrementalDecoder {
    /// A decoder with no tokens.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds `id` and returns the text that became complete, if any.
    pub fn push(
        &mut self,
        tokenizer: &Tokenizer,
        id: u32,
    ) -> Result<Option<String>, GenerateError> {
        self.ids.push(id);
        let decode = |ids: &[u32]| {
            tokenizer.decode(ids, true).map_err(|e| GenerateError::Tokenize(e.to_string()))
        };
        let before = decode(&self.ids[self.prefix_start..self.released])?;
        let now = decode(&self.ids[self.prefix_start..])?;
        if now.len() > before.len() && !now.ends_with('\u{FFFD}') && now.starts_with(&before) {
            let piece = now[before.len()..].to_owned();
            self.prefix_start = self.released;
            self.released = self.ids.len();
            Ok(Some(piece))
        } else {
            Ok(None)
        }
    }

    /// Text of the tokens not yet released (an unfinished character shows as U+FFFD).
    pub fn finish(&mut self, tokenizer: &Tokenizer) -> Result<Option<String>, GenerateError> {
        let decode = |ids: &[u32]| {
            tokenizer.decode(ids, true).map_err(|e| GenerateError::Tokenize(e.to_string()))
        };
        let before = decode(&self.ids[self.prefix_start..self.released])?;
        let now = decode(&self.ids[self.prefix_start..])?;
        self.prefix_start = self.ids.len();
        self.released = self.ids.len();
        Ok(now.strip_prefix(before.as_str()).filter(|rest| !rest.is_empty()).map(str::to_owned))
    }
}

/// Holds text back while it could still turn into one of the stop strings.
#[derive(Debug, Default)]
pub struct StopMatcher {
    stops: Vec<String>,
    pending: String,
}

/// What [`StopMatcher::push`] decided.
#[derive(Debug, PartialEq, Eq)]
pub struct Matched {
    /// Text that is safe to release.
    pub release: String,
    /// Whether a stop string was found (and nothing after it may be released).
    pub stopped: bool,
}

impl StopMatcher {
    /// A matcher for `stops` (empty strings are ignored).
    pub fn new(stops: &[String]) -> Self {
        Self {
            stops: stops.iter().filter(|s| !s.is_empty()).cloned().collect(),
            pending: String::new(),
        }
    }

    /// Adds `text`; releases what can no longer be the start of a stop string.
    pub fn push(&mut self, text: &str) -> Matched {
        self.pending.push_str(text);
        let first_stop = self.stops.iter().filter_map(|s| self.pending.find(s.as_str())).min();
        if let Some(at) = first_stop {
            let release = self.pending[..at].to_owned();
            self.pending.clear();
            return Matched { release, stopped: true };
        }
        // The longest tail of `pending` that is a proper prefix of some stop string stays.
        let mut keep = 0;
        for stop in &self.stops {
            for (idx, _) in stop.char_indices().skip(1) {
                if idx > keep && self.pending.ends_with(&stop[..idx]) {
                    keep = idx;
                }
            }
        }
        let cut = self.pending.len() - keep;
        let release: String = self.pending.drain(..cut).collect();
        Matched { release, stopped: false }
    }

    /// Releases whatever is still held (generation ended without a stop string).
    pub fn finish(&mut self) -> String {
        std::mem::take(&mut self.pending)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stop_strings_are_held_back_and_cut() {
        let mut m = StopMatcher::new(&["\n\nQuestion:".to_owned(), "###".to_owned()]);
        assert_eq!(m.push("The notice"), Matched { release: "The notice".into(), stopped: false });
        assert_eq!(m.push(" period.\n"), Matched { release: " period.".into(), stopped: false });
        assert_eq!(m.push("\nQue"), Matched { release: String::new(), stopped: false });
        assert_eq!(m.push("stion: next"), Matched { release: String::new(), stopped: true });
        let mut m = StopMatcher::new(&["###".to_owned()]);
        assert_eq!(m.push("a#"), Matched { release: "a".into(), stopped: false });
        assert_eq!(m.push("b"), Matched { release: "#b".into(), stopped: false });
        assert_eq!(m.push("c##"), Matched { release: "c".into(), stopped: false });
        assert_eq!(m.finish(), "##");
    }

    #[test]
    fn multibyte_characters_are_cut_nowhere() {
        let mut m = StopMatcher::new(&["für".to_owned()]);
        assert_eq!(m.push("Grüße f"), Matched { release: "Grüße ".into(), stopped: false });
        assert_eq!(m.push("ü"), Matched { release: String::new(), stopped: false });
        assert_eq!(m.push("r"), Matched { release: String::new(), stopped: true });
    }
}
