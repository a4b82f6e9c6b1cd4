//! Watches a generated answer as it streams and stops it when a small model degenerates: runs
//! of citation markers (`[1] [2][3] [4]…`), the same words over and over, or a verbatim copy
//! of a passage that goes on past a sentence or two. Pure text in, a decision out; the engine
//! cancels the model when the guard says stop and keeps only the usable part.

use std::collections::HashMap;

pub use crate::api::EarlyStop;

/// Markers in a row (with nothing but spaces and punctuation between them) that no answer needs:
/// `[2][3]` is a citation, `[1] [2][3] [4]` is a loop.
const MARKER_RUN: usize = 4;
/// Words in an n-gram whose third occurrence counts as a loop.
const LOOP_NGRAM: usize = 8;
/// Occurrences of such an n-gram that stop the answer.
const LOOP_REPEATS: usize = 3;
/// Characters without a letter or digit at the end of the text that count as a loop
/// (`........`, `- - - -`).
const NON_WORD_RUN: usize = 40;
/// New text, in bytes (a few words), after which the word-level checks run again.
const WORD_CHECK_BYTES: usize = 24;
/// Longest phrase, in words, whose immediate repetition is looked for.
const TANDEM_MAX_WORDS: usize = 16;
/// Words copied verbatim from one passage in a row after which the answer is stopped (about
/// two sentences): the passage itself is cited with its quote, the model adds nothing more.
const LONG_COPY_WORDS: usize = 50;

/// The streaming check: feed it the answer's pieces in order.
#[derive(Debug)]
pub struct DegenerationGuard {
    text: String,
    /// For every passage, its lower-cased words and the positions where each occurs.
    positions: Vec<HashMap<String, Vec<usize>>>,
    stopped: Option<(EarlyStop, usize)>,
    /// Length of the text when the word-level checks last ran.
    checked_len: usize,
}

impl DegenerationGuard {
    /// A guard for an answer written from `passages` (their texts).
    pub fn new<'a>(passages: impl IntoIterator<Item = &'a str>) -> Self {
        let positions = passages
            .into_iter()
            .map(|p| {
                let mut map: HashMap<String, Vec<usize>> = HashMap::new();
                for (i, (_, w)) in words(p).into_iter().enumerate() {
                    map.entry(w).or_default().push(i);
                }
                map
            })
            .collect();
        Self { text: String::new(), positions, stopped: None, checked_len: 0 }
    }

    /// Adds the next piece of the answer; `Some` once the answer should stop (and from then on).
    pub fn push(&mut self, piece: &str) -> Option<EarlyStop> {
        if let Some((why, _)) = self.stopped {
            return Some(why);
        }
        self.text.push_str(piece);
        // The marker scan is a byte loop; the word-level checks rescan the whole answer, so
        // they run once per few words, not per token (a loop is caught a few words later).
        self.stopped = marker_loop(&self.text).map(|at| (EarlyStop::MarkerLoop, at));
        if self.stopped.is_none() && self.text.len() >= self.checked_len + WORD_CHECK_BYTES {
            self.check_words();
        }
        self.stopped.map(|(why, _)| why)
    }

    /// Runs the word-level checks on everything written so far: call it once the model has
    /// stopped, so the last few words are checked too.
    pub fn finish(&mut self) -> Option<EarlyStop> {
        if self.stopped.is_none() {
            self.check_words();
        }
        self.stopped.map(|(why, _)| why)
    }

    fn check_words(&mut self) {
        self.checked_len = self.text.len();
        self.stopped = repeated_text(&self.text)
            .map(|at| (EarlyStop::RepeatedText, at))
            .or_else(|| self.long_copy().map(|at| (EarlyStop::LongCopy, at)));
    }

    /// Records that the model ran into its token limit (unless the guard stopped it first).
    pub fn hit_max_tokens(&mut self) {
        if self.finish().is_none() {
            self.stopped = Some((EarlyStop::MaxTokens, self.text.len()));
        }
    }

    /// Everything the model wrote.
    pub fn text(&self) -> &str {
        &self.text
    }

    /// Why the answer was stopped, if it was.
    pub fn stopped(&self) -> Option<EarlyStop> {
        self.stopped.map(|(why, _)| why)
    }

    /// The answer up to where it went wrong: everything before a loop, or the complete
    /// sentences of a long copy or of an answer cut by the token limit.
    pub fn usable(&self) -> &str {
        match self.stopped {
            None => &self.text,
            Some((why, at)) => {
                let head = &self.text[..at];
                match head.rfind(['.', '!', '?', ']']) {
                    Some(end) if why != EarlyStop::MarkerLoop => &head[..=end],
                    _ => head.trim_end(),
                }
            }
        }
    }

    /// Where a verbatim copy of one passage reaches [`LONG_COPY_WORDS`] words, if it does: the
    /// byte offset of the word that does.
    fn long_copy(&self) -> Option<usize> {
        let answer = words(&self.text);
        if answer.len() < LONG_COPY_WORDS {
            return None;
        }
        for map in &self.positions {
            // Lengths of the copied runs ending at each passage position, for the previous word.
            let mut runs: HashMap<usize, usize> = HashMap::new();
            for (offset, word) in &answer {
                let mut next = HashMap::new();
                for &j in map.get(word).map(Vec::as_slice).unwrap_or(&[]) {
                    let len = j.checked_sub(1).and_then(|i| runs.get(&i)).copied().unwrap_or(0) + 1;
                    if len >= LONG_COPY_WORDS {
                        return Some(*offset);
                    }
                    next.insert(j, len);
                }
                runs = next;
            }
        }
        None
    }
}

/// Lower-cased words of `text` with the byte offset where each starts.
fn words(text: &str) -> Vec<(usize, String)> {
    let mut res = Vec::new();
    let mut start = None;
    for (i, c) in text.char_indices().chain(std::iter::once((text.len(), ' '))) {
        match (c.is_alphanumeric(), start) {
            (true, None) => start = Some(i),
            (false, Some(s)) => {
                res.push((s, text[s..i].to_lowercase()));
                start = None;
            }
            _ => {}
        }
    }
    res
}

/// The byte offset of the second marker of a run of [`MARKER_RUN`] or more, if there is one.
fn marker_loop(text: &str) -> Option<usize> {
    let bytes = text.as_bytes();
    let mut run = 0;
    let mut second = 0;
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'[' => {
                let close = bytes[i + 1..].iter().position(|&b| b == b']').map(|c| i + 1 + c);
                let inner_ok = |end: usize| {
                    let inner = &text[i + 1..end];
                    !inner.trim().is_empty()
                        && inner.chars().all(|c| c.is_ascii_digit() || matches!(c, ',' | ' '))
                };
                match close {
                    Some(end) if inner_ok(end) => {
                        run += 1;
                        if run == 2 {
                            second = i;
                        }
                        if run >= MARKER_RUN {
                            return Some(second);
                        }
                        i = end + 1;
                        continue;
                    }
                    // An unclosed marker at the end of the stream: wait for the rest.
                    None if text[i + 1..].chars().all(|c| c.is_ascii_digit() || c == ' ') => {
                        return None;
                    }
                    _ => run = 0,
                }
            }
            b' ' | b'\n' | b'\t' | b',' | b'.' | b';' | b':' => {}
            _ => run = 0,
        }
        i += 1;
    }
    None
}

/// The byte offset where the text started repeating itself, if it did.
fn repeated_text(text: &str) -> Option<usize> {
    let tail_start =
        text.char_indices().rev().take_while(|(_, c)| !c.is_alphanumeric()).last().map(|(i, _)| i);
    if let Some(start) = tail_start
        && text[start..].chars().filter(|c| !c.is_whitespace()).count() >= NON_WORD_RUN
    {
        return Some(start);
    }
    let ws = words(text);
    if let Some(at) = tandem_repeat(&ws) {
        return Some(at);
    }
    if ws.len() < LOOP_NGRAM * LOOP_REPEATS {
        return None;
    }
    let mut counts: HashMap<Vec<&str>, (usize, usize)> = HashMap::new();
    for window in ws.windows(LOOP_NGRAM) {
        let key: Vec<&str> = window.iter().map(|(_, s)| s.as_str()).collect();
        let entry = counts.entry(key).or_insert((0, 0));
        entry.0 += 1;
        if entry.0 == 2 {
            entry.1 = window[0].0;
        }
        if entry.0 >= LOOP_REPEATS {
            return Some(entry.1);
        }
    }
    None
}

/// The byte offset of the second copy where a phrase of two to sixteen words follows itself
/// three times in a row ("European Union law European Union law European Union law"), or one
/// word six times: no answer does that.
fn tandem_repeat(ws: &[(usize, String)]) -> Option<usize> {
    let same = |a: usize, b: usize, k: usize| (0..k).all(|j| ws[a + j].1 == ws[b + j].1);
    for i in 0..ws.len() {
        if ws.len() - i >= 6 && (1..6).all(|j| ws[i + j].1 == ws[i].1) {
            return Some(ws[i + 1].0);
        }
        for k in 2..=TANDEM_MAX_WORDS {
            if i + 3 * k > ws.len() {
                break;
            }
            if same(i, i + k, k) && same(i, i + 2 * k, k) {
                return Some(ws[i + k].0);
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn feed(guard: &mut DegenerationGuard, text: &str) -> Option<EarlyStop> {
        // Token-sized pieces, as the model streams them.
        let mut stop = None;
        let mut rest = text;
        while !rest.is_empty() {
            let cut = rest.char_indices().nth(3).map_or(rest.len(), |(i, _)| i);
            stop = guard.push(&rest[..cut]);
            rest = &rest[cut..];
        }
        stop.or_else(|| guard.finish())
    }

    #[test]
    fn a_run_of_markers_stops_after_the_first() {
        let mut g = DegenerationGuard::new(["TraceMonkey is fast."]);
        let stop =
            feed(&mut g, "TraceMonkey is faster than SpiderMonkey [1] [2][3] [4][5] [6] [7]");
        assert_eq!(stop, Some(EarlyStop::MarkerLoop));
        assert_eq!(g.usable(), "TraceMonkey is faster than SpiderMonkey [1]");
        assert!(EarlyStop::MarkerLoop.is_degenerate());
    }

    #[test]
    fn ordinary_citations_pass() {
        let mut g = DegenerationGuard::new(["Rent is due monthly."]);
        let text = "Rent is due monthly [1][2]. The notice period is three months [3]. \
                    Both parties may end it [1, 2].";
        assert_eq!(feed(&mut g, text), None);
        assert_eq!(g.usable(), text);
    }

    #[test]
    fn repeated_sentences_stop_at_the_second_copy() {
        let mut g = DegenerationGuard::new(["x"]);
        let once = "The trace tree records the hot loop of the program as it runs. ";
        let text = format!("{once}{once}{once}{once}");
        assert_eq!(feed(&mut g, &text), Some(EarlyStop::RepeatedText));
        assert_eq!(g.usable(), once.trim_end());
        let mut short = DegenerationGuard::new(["x"]);
        let text = "European Union law European Union law European Union law [1][2]";
        assert_eq!(feed(&mut short, text), Some(EarlyStop::RepeatedText));
        assert_eq!(short.usable(), "European Union law");
        let mut dots = DegenerationGuard::new(["x"]);
        let text = format!("The answer is yes{}", ".".repeat(60));
        assert_eq!(feed(&mut dots, &text), Some(EarlyStop::RepeatedText));
        assert_eq!(dots.usable(), "The answer is yes");
    }

    #[test]
    fn a_long_verbatim_copy_keeps_its_complete_sentences() {
        let passage = "Steam engines burn coal to boil water under pressure. The steam pushes a \
            piston back and forth inside a closed cylinder. A crank turns that motion into the \
            rotation of a wheel. Early mines used such engines to pump water from deep shafts. \
            Watt added a separate condenser, which saved much of the fuel. Railways later put \
            lighter engines on wheels and pulled wagons across whole countries. Ships followed \
            with paddle wheels and then screw propellers driven by engines.";
        let mut g = DegenerationGuard::new([passage]);
        assert_eq!(feed(&mut g, passage), Some(EarlyStop::LongCopy));
        assert!(!EarlyStop::LongCopy.is_degenerate());
        let usable = g.usable();
        assert!(usable.ends_with("deep shafts."), "{usable}");
        let kept = usable.split_whitespace().count();
        assert!((30..LONG_COPY_WORDS).contains(&kept), "{kept} words kept");
        // Copying a sentence or two is fine.
        let mut short = DegenerationGuard::new([passage]);
        assert_eq!(feed(&mut short, &passage[..200]), None);
    }

    #[test]
    fn the_token_limit_keeps_complete_sentences() {
        let mut g = DegenerationGuard::new(["x"]);
        feed(&mut g, "The first claim holds. The second one is cut");
        g.hit_max_tokens();
        assert_eq!(g.stopped(), Some(EarlyStop::MaxTokens));
        assert_eq!(g.usable(), "The first claim holds.");
    }
}
