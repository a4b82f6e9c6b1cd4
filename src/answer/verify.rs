//! Citation verification of a generated answer: markers that name no given passage are removed
//! and reported, each sentence is checked against the passages it cites (term overlap and
//! embedding similarity), and each citation gets the passage sentence that best supports it as
//! its verbatim quote.

use std::collections::HashSet;

use super::evidence::{EvidenceWeights, PassageSentences, TermStats, WeightedTerms, combine};
use super::messages::REFUSALS;
use super::sentences::split_sentences;
use crate::api::{AnswerSentence, Passage};
use crate::embed::{Embedder, cosine};
use crate::error::Result;

/// An answer after verification.
#[derive(Debug, Clone, PartialEq)]
pub struct Verified {
    /// The sentences, markers stripped, each with its valid citations and support.
    pub sentences: Vec<AnswerSentence>,
    /// Marker numbers that named no passage.
    pub removed: Vec<u32>,
    /// Per cited passage number, the index (passage, sentence) of its best-supporting sentence.
    pub quotes: Vec<(u32, usize)>,
    /// Whether the model answered with the refusal sentence.
    pub refused: bool,
    /// Passages the model named with markers that no sentence of its own goes with (a small
    /// model answering `[1]` alone points at the passage instead of answering).
    pub pointed: Vec<u32>,
}

impl Verified {
    /// Whether at least one sentence is supported by the passages it cites.
    pub fn any_supported(&self) -> bool {
        self.sentences.iter().any(|s| s.supported)
    }

    /// The answer text rebuilt from the checked sentences, with only valid markers.
    pub fn text(&self) -> String {
        self.sentences
            .iter()
            .map(|s| {
                let marks = super::markers(&s.citations);
                if marks.is_empty() {
                    return s.text.clone();
                }
                match s.text.strip_suffix(['.', '!', '?', ':', ';']) {
                    Some(body) => format!("{body} {marks}{}", &s.text[body.len()..]),
                    None => format!("{} {marks}", s.text),
                }
            })
            .collect::<Vec<_>>()
            .join(" ")
    }
}

/// Checks `answer` against `passages` (whose sentences are analysed in `sentences`).
/// A sentence is supported when its support score reaches `threshold`.
pub fn verify(
    answer: &str,
    passages: &[Passage],
    sentences: &PassageSentences,
    stats: &dyn TermStats,
    embedder: Option<&dyn Embedder>,
    weights: EvidenceWeights,
    threshold: f32,
) -> Result<Verified> {
    let mut removed = Vec::new();
    let mut pointed = Vec::new();
    let mut parsed: Vec<(String, Vec<u32>)> = Vec::new();
    for span in split_sentences(answer) {
        let (text, numbers) = strip_markers(span.of(answer));
        let mut valid = Vec::new();
        for n in numbers {
            if n >= 1 && (n as usize) <= passages.len() {
                if !valid.contains(&n) {
                    valid.push(n);
                }
            } else if !removed.contains(&n) {
                removed.push(n);
            }
        }
        if !text.is_empty() {
            parsed.push((text, valid));
        } else if let Some(last) = parsed.last_mut() {
            // A marker on its own after a sentence break belongs to the sentence before.
            for n in valid {
                if !last.1.contains(&n) {
                    last.1.push(n);
                }
            }
        } else {
            // Markers before any words: the model pointing at passages.
            for n in valid {
                if !pointed.contains(&n) {
                    pointed.push(n);
                }
            }
        }
    }
    let vectors = match embedder {
        Some(e) if !parsed.is_empty() => {
            let texts: Vec<&str> = parsed.iter().map(|(t, _)| t.as_str()).collect();
            Some(e.embed_documents(&texts)?)
        }
        _ => None,
    };
    let mut checked = Vec::new();
    let mut best_quote: Vec<(u32, usize, f32)> = Vec::new();
    let mut refusals = 0;
    let flat_passages: Vec<String> = passages.iter().map(|p| flat_words(&p.text)).collect();
    let passage_numbers: Vec<HashSet<String>> =
        passages.iter().map(|p| numbers_held_by(&p.text)).collect();
    for (i, (text, citations)) in parsed.into_iter().enumerate() {
        if is_refusal_like(&text) {
            refusals += 1;
            continue;
        }
        let claim = Claim::new(&text, stats, vectors.as_ref().map(|v| v[i].as_slice()));
        let support_by = |n: u32| {
            let p = n as usize - 1;
            claim.support(p, sentences, weights, &flat_passages[p], &passage_numbers[p])
        };
        let cited: Vec<Support> = citations.iter().map(|&n| support_by(n)).collect();
        let best_cited = cited.iter().map(|s| s.support).fold(0.0f32, f32::max);
        let (citations, support, attributed, quotes) =
            if !citations.is_empty() && best_cited >= threshold {
                (citations, best_cited, false, cited)
            } else {
                // No marker, or markers whose passages do not hold the claim: the passage that
                // does, if one does, is cited on the model's behalf.
                let best = (1..=passages.len() as u32)
                    .map(|n| (n, support_by(n)))
                    .max_by(|a, b| a.1.support.total_cmp(&b.1.support));
                match best {
                    Some((n, s)) if s.support >= threshold => (vec![n], s.support, true, vec![s]),
                    _ => (citations, best_cited, false, cited),
                }
            };
        for (&n, s) in citations.iter().zip(&quotes) {
            let Some(sentence) = s.sentence else { continue };
            match best_quote.iter_mut().find(|(m, _, _)| *m == n) {
                Some(q) if s.rank > q.2 => *q = (n, sentence, s.rank),
                Some(_) => {}
                None => best_quote.push((n, sentence, s.rank)),
            }
        }
        checked.push(AnswerSentence {
            supported: !citations.is_empty() && support >= threshold,
            text,
            citations,
            support,
            attributed,
        });
    }
    best_quote.sort_by_key(|(n, _, _)| *n);
    let any_supported = checked.iter().any(|s| s.supported);
    Ok(Verified {
        sentences: checked,
        removed,
        quotes: best_quote.into_iter().map(|(n, s, _)| (n, s)).collect(),
        refused: is_refusal(answer) || (refusals > 0 && !any_supported),
        pointed,
    })
}

/// A sentence of the answer, analysed for checking against passages.
struct Claim<'a> {
    /// The claim's words, lower-cased, for the verbatim check.
    flat: String,
    /// The numbers the claim states (`stated_numbers`): a passage that holds not all of them
    /// does not support the claim, however much else it shares (small models mix up the
    /// numbers of neighbouring passages, or make one up for a question the passages cannot
    /// answer).
    numbers: Vec<String>,
    terms: WeightedTerms,
    vector: Option<&'a [f32]>,
}

/// How well one passage supports a claim.
#[derive(Debug, Clone, Copy)]
struct Support {
    /// Share of the claim's idf weight found in the passage, mixed with the embedding
    /// similarity of its closest sentence.
    support: f32,
    /// The passage sentence closest to the claim (its quote), if the passage has sentences.
    sentence: Option<usize>,
    /// How close that sentence is.
    rank: f32,
}

impl<'a> Claim<'a> {
    fn new(text: &str, stats: &dyn TermStats, vector: Option<&'a [f32]>) -> Self {
        let flat = flat_words(text);
        Self { flat, numbers: stated_numbers(text), terms: WeightedTerms::new(text, stats), vector }
    }

    /// How well passage `p` (0-based, its words flattened as `flat_passage`) supports the
    /// claim. A claim the passage holds word for word ("three months", the short answers small
    /// models give) is fully supported, however little its embedding resembles the sentence's.
    fn support(
        &self,
        p: usize,
        sentences: &PassageSentences,
        weights: EvidenceWeights,
        flat_passage: &str,
        passage_numbers: &HashSet<String>,
    ) -> Support {
        let lexical = self.terms.coverage(&sentences.passage_terms[p]);
        // The passage sentence closest to the claim: its quote, and the embedding signal.
        let term_set: HashSet<&String> = self.terms.terms().collect();
        let mut best: Option<(usize, f32, Option<f32>)> = None;
        for (s, sentence_terms) in sentences.terms[p].iter().enumerate() {
            let shared = sentence_terms.iter().filter(|t| term_set.contains(t)).count() as f32;
            let overlap = shared / (self.terms.len().max(1) as f32);
            let sim = match (self.vector, &sentences.vectors) {
                (Some(a), Some(b)) => Some(cosine(a, &b[p][s]).max(0.0)),
                _ => None,
            };
            let rank = combine(overlap, sim, weights);
            if best.is_none_or(|(_, r, _)| rank > r) {
                best = Some((s, rank, sim));
            }
        }
        let verbatim = !self.terms.is_empty()
            && !self.flat.is_empty()
            && format!(" {flat_passage} ").contains(&format!(" {} ", self.flat));
        let numbers_held = self.numbers.iter().all(|n| passage_numbers.contains(n));
        match best {
            Some((s, rank, sim)) => {
                let support = if verbatim {
                    1.0
                } else if !numbers_held {
                    0.0
                } else {
                    combine(lexical, sim, weights)
                };
                Support { support, sentence: Some(s), rank }
            }
            None => Support { support: 0.0, sentence: None, rank: 0.0 },
        }
    }
}

/// Separators between groups of three digits in one number: "10,000", "1.000", "1'000",
/// and the thin and no-break spaces of typeset text.
const DIGIT_GROUP_SEPARATORS: [char; 6] = [',', '.', '\'', '\u{2009}', '\u{202F}', '\u{00A0}'];

/// Words after which a number is a label, not a claim: "page 4", "passage 2", "Seite 3".
const NUMBER_LABELS: [&str; 9] =
    ["page", "pages", "p", "passage", "passages", "seite", "seiten", "abschnitt", "absatz"];

/// The numbers `text` states, each as its digits without leading zeros: "10,000" and
/// "10.000" are 10000 (groups of three joined), "5km", "1970s" and "10th" are 5, 1970 and
/// 10, "3.5" is 3 and 5. A list item's number ("2. ", at the start of a line) and a number
/// after a label word ("page 4") are left out.
fn stated_numbers(text: &str) -> Vec<String> {
    let chars: Vec<char> = text.chars().collect();
    let mut numbers = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        if !chars[i].is_ascii_digit() {
            i += 1;
            continue;
        }
        let start = i;
        let mut digits = String::new();
        loop {
            while i < chars.len() && chars[i].is_ascii_digit() {
                digits.push(chars[i]);
                i += 1;
            }
            // A separator followed by exactly three digits continues the number.
            let group = i + 1 < chars.len()
                && DIGIT_GROUP_SEPARATORS.contains(&chars[i])
                && chars[i + 1..].iter().take_while(|c| c.is_ascii_digit()).count() == 3;
            if !group {
                break;
            }
            i += 1;
        }
        let line_start =
            chars[..start].iter().rev().take_while(|c| **c != '\n').all(|c| c.is_whitespace());
        let list_item = line_start
            && digits.len() <= 2
            && matches!(chars.get(i), Some('.' | ')'))
            && chars.get(i + 1).is_none_or(|c| c.is_whitespace());
        // The word just before the number, across spaces only ("page 4", not "COVID-19").
        let word_end = chars[..start].iter().rposition(|c| !c.is_whitespace()).map_or(0, |e| e + 1);
        let word_start =
            chars[..word_end].iter().rposition(|c| !c.is_alphanumeric()).map_or(0, |s| s + 1);
        let word: String = chars[word_start..word_end].iter().collect();
        let label = word_end < start && NUMBER_LABELS.contains(&word.to_lowercase().as_str());
        if !list_item && !label {
            let trimmed = digits.trim_start_matches('0');
            numbers.push(if trimmed.is_empty() { "0".to_owned() } else { trimmed.to_owned() });
        }
    }
    numbers
}

/// Small numbers written as words (English and German cardinals, English ordinals), which a
/// passage may spell out where an answer writes digits ("three months", "3 months").
#[rustfmt::skip]
const NUMBER_WORDS: [(&str, u32); 52] = [
    ("zero", 0), ("one", 1), ("two", 2), ("three", 3), ("four", 4), ("five", 5), ("six", 6),
    ("seven", 7), ("eight", 8), ("nine", 9), ("ten", 10), ("eleven", 11), ("twelve", 12),
    ("twenty", 20), ("thirty", 30), ("forty", 40), ("fifty", 50), ("hundred", 100),
    ("thousand", 1000), ("first", 1), ("second", 2), ("third", 3), ("fourth", 4), ("fifth", 5),
    ("sixth", 6), ("seventh", 7), ("eighth", 8), ("ninth", 9), ("tenth", 10), ("eleventh", 11),
    ("twelfth", 12), ("once", 1), ("twice", 2), ("null", 0), ("eins", 1), ("zwei", 2), ("drei", 3),
    ("vier", 4), ("fünf", 5), ("sechs", 6), ("sieben", 7), ("acht", 8), ("neun", 9), ("zehn", 10),
    ("elf", 11), ("zwölf", 12), ("zwanzig", 20), ("dreißig", 30), ("vierzig", 40), ("fünfzig", 50),
    ("hundert", 100), ("tausend", 1000),
];

/// The numbers a passage holds: those it writes in digits and the small ones it spells out.
fn numbers_held_by(text: &str) -> HashSet<String> {
    let mut held: HashSet<String> = stated_numbers(text).into_iter().collect();
    for word in text.split(|c: char| !c.is_alphanumeric()).filter(|w| !w.is_empty()) {
        let word = word.to_lowercase();
        if let Some((_, n)) = NUMBER_WORDS.iter().find(|(w, _)| *w == word) {
            held.insert(n.to_string());
        }
    }
    held
}

/// `text`'s words (letters and digits), lower-cased, joined by single spaces.
fn flat_words(text: &str) -> String {
    text.split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(str::to_lowercase)
        .collect::<Vec<_>>()
        .join(" ")
}

/// Whether a sentence of an answer says, in the refusal sentence's words or in the usual
/// ways small models put it, that the passages do not hold the answer. A phrase alone is not
/// enough ("the alloy does not contain lead" is a claim): the sentence must also be about the
/// passages.
pub fn is_refusal_like(sentence: &str) -> bool {
    if is_refusal(sentence) {
        return true;
    }
    let lower = sentence.to_lowercase();
    const PHRASES: &[&str] = &[
        "could not find the answer",
        "cannot find the answer",
        "can't find the answer",
        "unable to find",
        "do not contain",
        "does not contain",
        "do not mention",
        "does not mention",
        "do not provide",
        "does not provide",
        "do not specify",
        "does not specify",
        "do not say",
        "does not say",
        "is not mentioned",
        "are not mentioned",
        "not mentioned in",
        "not provided in",
        "not specified in",
        "not found in",
        "no information",
        "no mention",
        "cannot be determined",
        "cannot answer",
        "nicht gefunden",
        "keine informationen",
        "nicht erwähnt",
        "nicht enthalten",
        "enthalten keine",
        "enthält keine",
    ];
    const ABOUT_SOURCES: &[&str] = &[
        "passage",
        "document",
        "text",
        "context",
        "source",
        "provided",
        "given",
        "abschnitt",
        "dokument",
        "quelle",
    ];
    PHRASES.iter().any(|p| lower.contains(p)) && ABOUT_SOURCES.iter().any(|w| lower.contains(w))
}

/// Whether `answer` is the refusal sentence (give or take case, punctuation and markers).
pub fn is_refusal(answer: &str) -> bool {
    let norm = |s: &str| {
        s.chars()
            .filter(|c| c.is_alphanumeric() || c.is_whitespace())
            .collect::<String>()
            .to_lowercase()
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ")
    };
    let (stripped, _) = strip_markers(answer);
    let stripped = norm(&stripped);
    REFUSALS.iter().any(|r| stripped.starts_with(&norm(r)))
}

/// `sentence` without its `[n]`, `[n, m]` and `[n][m]` markers, and the numbers they held.
pub fn strip_markers(sentence: &str) -> (String, Vec<u32>) {
    let mut text = String::with_capacity(sentence.len());
    let mut numbers = Vec::new();
    let mut rest = sentence;
    while let Some(open) = rest.find('[') {
        let Some(close) = rest[open..].find(']').map(|c| open + c) else { break };
        let inner = &rest[open + 1..close];
        let parsed: Option<Vec<u32>> = inner
            .split([',', ';'])
            .map(|part| part.trim().trim_start_matches(['#', 'n', 'N']).parse().ok())
            .collect();
        text.push_str(&rest[..open]);
        match parsed {
            Some(ns) if !inner.trim().is_empty() => numbers.extend(ns),
            _ => text.push_str(&rest[open..=close]),
        }
        rest = &rest[close + 1..];
    }
    text.push_str(rest);
    let text = text.split_whitespace().collect::<Vec<_>>().join(" ");
    let text = text.replace(" .", ".").replace(" ,", ",").replace(" !", "!").replace(" ?", "?");
    (text.trim().to_owned(), numbers)
}

#[cfg(test)]
mod tests {
    use super::super::evidence::tests::{WordStats, passage};
    use super::*;

    const W: EvidenceWeights = EvidenceWeights::mix(0.5);

    #[test]
    fn strips_markers_of_every_shape() {
        assert_eq!(
            strip_markers("Notice is three months [1]."),
            ("Notice is three months.".into(), vec![1])
        );
        assert_eq!(
            strip_markers("Rent [2][3] is due [1, 4]."),
            ("Rent is due.".into(), vec![2, 3, 1, 4])
        );
        assert_eq!(
            strip_markers("See [the annex] here."),
            ("See [the annex] here.".into(), vec![])
        );
    }

    #[test]
    fn removes_unknown_markers_and_flags_unsupported_sentences() {
        let passages = vec![
            passage(1, "The notice period is three months. It applies to both parties."),
            passage(2, "Rent is due on the first day of each month."),
        ];
        let sentences = PassageSentences::new(&passages, &WordStats, None).unwrap();
        let answer = "The notice period is three months [1][7]. Rent is due on the first day [2]. \
                      The landlord owns seven boats [1].";
        let v = verify(answer, &passages, &sentences, &WordStats, None, W, 0.5).unwrap();
        assert_eq!(v.removed, vec![7]);
        assert_eq!(v.sentences.len(), 3);
        assert_eq!(v.sentences[0].citations, vec![1]);
        assert!(v.sentences[0].supported);
        assert!(v.sentences[1].supported);
        assert!(!v.sentences[2].supported, "{:?}", v.sentences[2]);
        assert!(v.any_supported());
        assert!(!v.refused);
        assert_eq!(v.quotes, vec![(1, 0), (2, 0)]);
        assert_eq!(
            v.text(),
            "The notice period is three months [1]. Rent is due on the first day [2]. The landlord owns seven boats [1]."
        );
    }

    #[test]
    fn uncited_claims_are_attributed_when_a_passage_holds_them() {
        let passages = vec![
            passage(1, "Rent is due on the first day of each month."),
            passage(2, "The notice period is three months."),
        ];
        let sentences = PassageSentences::new(&passages, &WordStats, None).unwrap();
        let answer = "The notice period is three months. The landlord owns seven boats.";
        let v = verify(answer, &passages, &sentences, &WordStats, None, W, 0.5).unwrap();
        assert_eq!(v.sentences[0].citations, vec![2]);
        assert!(v.sentences[0].supported && v.sentences[0].attributed);
        assert!(!v.sentences[1].supported && !v.sentences[1].attributed);
        assert!(v.sentences[1].citations.is_empty());
        assert_eq!(v.quotes, vec![(2, 0)]);
        // A marker naming the wrong passage is replaced by the right one.
        let v = verify(
            "The notice period is three months [1].",
            &passages,
            &sentences,
            &WordStats,
            None,
            W,
            0.5,
        )
        .unwrap();
        assert_eq!(v.sentences[0].citations, vec![2]);
        assert!(v.sentences[0].attributed);
        assert_eq!(v.text(), "The notice period is three months [2].");
    }

    #[test]
    fn a_number_the_passage_lacks_is_not_supported_by_it() {
        let passages = vec![
            passage(1, "In 1979 the price of oil rose to 12 dollars a barrel."),
            passage(2, "In 1973 the price of oil rose to 3 dollars a barrel."),
        ];
        let sentences = PassageSentences::new(&passages, &WordStats, None).unwrap();
        let check =
            |answer: &str| verify(answer, &passages, &sentences, &WordStats, None, W, 0.5).unwrap();
        // The right number cited to the wrong passage: cited to the passage that holds it.
        let v = check("In 1979 the price of oil rose to 12 dollars [2].");
        assert_eq!(v.sentences[0].citations, vec![1], "{v:?}");
        assert!(v.sentences[0].supported && v.sentences[0].attributed);
        // A number no passage holds: nothing supports the sentence, however many words match.
        let v = check("In 1979 the price of oil rose to 75 dollars a barrel [1].");
        assert!(!v.sentences[0].supported, "{v:?}");
        assert!(!v.any_supported());
    }

    #[test]
    fn numbers_are_read_in_the_forms_text_writes_them() {
        assert_eq!(stated_numbers("10,000 people in 1970s, 5km"), vec!["10000", "1970", "5"]);
        assert_eq!(stated_numbers("1.000.000 Euro, 3,5 Prozent"), vec!["1000000", "3", "5"]);
        assert_eq!(stated_numbers("the 10th day, on 03 March"), vec!["10", "3"]);
        // Labels and list numbers are not claims.
        assert_eq!(stated_numbers("See page 4 and Seite 7."), Vec::<String>::new());
        assert_eq!(stated_numbers("Rent is due.\n2. Notice is 3 months."), vec!["3"]);
        let held = numbers_held_by("The notice period is three months, rent 1,200 euros.");
        assert!(held.contains("3") && held.contains("1200"), "{held:?}");
    }

    #[test]
    fn a_number_written_another_way_is_still_supported() {
        let passages = vec![passage(
            1,
            "Either party may end the lease with three months notice. The deposit is 1,200 euros.",
        )];
        let sentences = PassageSentences::new(&passages, &WordStats, None).unwrap();
        let check =
            |answer: &str| verify(answer, &passages, &sentences, &WordStats, None, W, 0.5).unwrap();
        let v = check("Either party may end the lease with 3 months notice [1].");
        assert!(v.sentences[0].supported, "{v:?}");
        let v = check("The deposit is 1200 euros, see page 4 [1].");
        assert!(v.sentences[0].supported, "{v:?}");
        let v = check("The deposit is 1300 euros [1].");
        assert!(!v.sentences[0].supported, "{v:?}");
    }

    #[test]
    fn markers_without_words_point_at_passages() {
        let passages = vec![passage(1, "The notice period is three months."), passage(2, "x y z.")];
        let sentences = PassageSentences::new(&passages, &WordStats, None).unwrap();
        let v = verify("[1][9]", &passages, &sentences, &WordStats, None, W, 0.5).unwrap();
        assert!(v.sentences.is_empty() && !v.refused);
        assert_eq!((v.pointed, v.removed), (vec![1], vec![9]));
    }

    #[test]
    fn a_short_answer_quoted_word_for_word_is_supported() {
        let passages = vec![passage(
            1,
            "Either party may end the lease with a notice period of three months.",
        )];
        let sentences = PassageSentences::new(&passages, &WordStats, None).unwrap();
        let v = verify("Three months.", &passages, &sentences, &WordStats, None, W, 0.9).unwrap();
        assert!(v.sentences[0].supported && v.sentences[0].attributed, "{v:?}");
        let v = verify("Four months.", &passages, &sentences, &WordStats, None, W, 0.9).unwrap();
        assert!(!v.sentences[0].supported, "{v:?}");
    }

    #[test]
    fn refusals_are_recognised_in_the_words_small_models_use() {
        let passages = vec![passage(1, "The notice period is three months.")];
        let sentences = PassageSentences::new(&passages, &WordStats, None).unwrap();
        let v = verify(
            "The passages do not mention the deposit.",
            &passages,
            &sentences,
            &WordStats,
            None,
            W,
            0.5,
        )
        .unwrap();
        assert!(v.refused && v.sentences.is_empty());
        // A claim with a refusal phrase that is not about the passages is a claim.
        assert!(!is_refusal_like("The alloy does not contain lead."));
        assert!(is_refusal_like("Die Abschnitte enthalten keine Angabe dazu."));
        assert!(is_refusal("I could not find the answer in your documents."));
        assert!(is_refusal("i could not find the answer in your documents [1]"));
        assert!(is_refusal("Ich konnte die Antwort in Ihren Dokumenten nicht finden [2]."));
        assert!(!is_refusal("The answer is in your documents."));
    }
}
