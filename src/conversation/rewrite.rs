//! Follow-up questions made standalone: "and the deposit?" after a question about a lease is
//! searched for as "What about the deposit for the lease?". Retrieval only sees the question,
//! so a follow-up that leans on the previous turn must carry what it leans on.
//!
//! The rules (used when no model writes answers, and whenever the model's rewrite fails the
//! check in [`accept_model_rewrite`]):
//! 1. A question is a follow-up when it opens with a connective ("and", "what about", "und",
//!    "was ist mit", …), refers back with a pronoun ("it", "its", "they", "this" on its own,
//!    "es", "dort", "dazu", …; not "is there" or "gibt es"), or is three words or fewer. Any
//!    other question stands on its own and is left as it is.
//! 2. The previous turn's topic is read from its (standalone) question: the last name in it
//!    (a run of capitalised words after the first word, or a word with inner capitals or
//!    digits; in German only the latter, as every noun is capitalised), else its last
//!    prepositional phrase ("for the lease"), else its content words.
//! 3. An English subject or object pronoun is replaced by the topic's name ("How fast is it?"
//!    → "How fast is TraceMonkey?"), a possessive by the name's genitive; otherwise an English
//!    bare noun phrase becomes "What about …" (a German one stays elliptic: "Die Kaution im
//!    Mietvertrag?") and the topic is added at the end, with its own
//!    preposition when it has one ("… for the lease?"), else after "regarding" ("bezüglich").
//!    A follow-up that already names the topic is left as it is, and so is one led by a
//!    connective that has three content words of its own ("And the editors of the working paper
//!    series?"): the previous topic would only pull the search back to the previous passage.

use unicode_segmentation::UnicodeSegmentation;

use crate::generate::ChatMessage;
use crate::language::TextLanguage;

/// The previous turn of a conversation, as the rewrite needs it.
#[derive(Debug, Clone, Copy)]
pub struct PriorTurn<'a> {
    /// The question that was searched for (itself already standalone).
    pub question: &'a str,
}

/// Openers that make a question continue the previous one, longest first.
const EN_CONNECTIVES: &[&str] = &[
    "and what about",
    "and how about",
    "what about",
    "how about",
    "what else about",
    "and also",
    "and",
    "but",
    "also",
    "so",
    "then",
    "or",
];
const DE_CONNECTIVES: &[&str] = &[
    "und was ist mit",
    "und wie ist es mit",
    "und wie sieht es mit",
    "was ist mit",
    "wie ist es mit",
    "wie sieht es mit",
    "und bei",
    "und",
    "aber",
    "auch",
    "oder",
];

/// English pronouns replaced by the topic's name.
const EN_SUBJECT_PRONOUNS: &[&str] = &["it", "they", "them", "he", "she", "him"];
/// English possessives replaced by the topic's genitive.
const EN_POSSESSIVES: &[&str] = &["its", "their", "his"];
/// English words that point back, left in place (the topic is added at the end).
const EN_POINTERS: &[&str] =
    &["this", "that", "these", "those", "there", "her", "the same", "such", "former", "latter"];
const DE_POINTERS: &[&str] = &[
    "es", "er", "sie", "ihn", "ihm", "ihr", "ihre", "ihren", "ihrem", "ihrer", "sein", "seine",
    "seinen", "seinem", "seiner", "dessen", "deren", "dies", "diese", "dieser", "dieses", "diesem",
    "diesen", "dort", "dazu", "davon", "darin", "dafür", "dabei", "daran", "darüber", "darauf",
    "dafuer", "darueber",
];

/// Words that open a question (a follow-up that starts with one is already a question).
const EN_QUESTION_OPENERS: &[&str] = &[
    "what", "which", "who", "whom", "whose", "when", "where", "why", "how", "is", "are", "was",
    "were", "do", "does", "did", "can", "could", "should", "would", "will", "has", "have", "had",
    "may", "might", "must", "shall",
];
const DE_QUESTION_OPENERS: &[&str] = &[
    "was", "wer", "wen", "wem", "wessen", "wann", "wo", "wohin", "woher", "warum", "weshalb",
    "wieso", "wie", "welche", "welcher", "welches", "welchen", "welchem", "ist", "sind", "war",
    "waren", "gibt", "kann", "können", "muss", "müssen", "darf", "dürfen", "hat", "haben", "wird",
    "werden", "soll", "sollte",
];

/// Prepositions that open a question's topic phrase ("for the lease").
const EN_PREPOSITIONS: &[&str] = &[
    "in",
    "of",
    "for",
    "about",
    "from",
    "on",
    "at",
    "by",
    "with",
    "under",
    "within",
    "regarding",
    "during",
    "into",
    "between",
];
const DE_PREPOSITIONS: &[&str] = &[
    "in",
    "im",
    "zum",
    "zur",
    "für",
    "von",
    "vom",
    "über",
    "bei",
    "beim",
    "aus",
    "mit",
    "unter",
    "laut",
    "gemäß",
    "nach",
    "bezüglich",
    "zwischen",
    "während",
];

/// Words that carry no topic (articles, auxiliaries, question words, pronouns).
const EN_FUNCTION_WORDS: &[&str] = &[
    "a",
    "an",
    "the",
    "what",
    "which",
    "who",
    "whom",
    "whose",
    "when",
    "where",
    "why",
    "how",
    "is",
    "are",
    "was",
    "were",
    "be",
    "been",
    "do",
    "does",
    "did",
    "can",
    "could",
    "should",
    "would",
    "will",
    "has",
    "have",
    "had",
    "to",
    "of",
    "in",
    "on",
    "for",
    "by",
    "with",
    "and",
    "or",
    "but",
    "it",
    "its",
    "they",
    "them",
    "their",
    "this",
    "that",
    "these",
    "those",
    "there",
    "about",
    "from",
    "at",
    "as",
    "i",
    "you",
    "we",
    "he",
    "she",
    "his",
    "her",
    "much",
    "many",
    "not",
    "no",
    "regarding",
    "must",
    "may",
    "might",
    "shall",
];
const DE_FUNCTION_WORDS: &[&str] = &[
    "der",
    "die",
    "das",
    "den",
    "dem",
    "des",
    "ein",
    "eine",
    "einen",
    "einem",
    "einer",
    "was",
    "wer",
    "wann",
    "wo",
    "warum",
    "wie",
    "welche",
    "welcher",
    "welches",
    "ist",
    "sind",
    "war",
    "waren",
    "gibt",
    "es",
    "und",
    "oder",
    "aber",
    "in",
    "im",
    "für",
    "von",
    "vom",
    "mit",
    "zu",
    "zum",
    "zur",
    "auf",
    "bei",
    "beim",
    "über",
    "nach",
    "aus",
    "sie",
    "er",
    "ihr",
    "ihre",
    "sein",
    "seine",
    "dies",
    "diese",
    "dieser",
    "dort",
    "hoch",
    "lang",
    "lange",
    "viel",
    "viele",
    "nicht",
    "kein",
    "keine",
    "ich",
    "man",
    "bezüglich",
];

/// The rules' standalone version of `question` after `prior`, or `None` when it stands on its
/// own (see the module's documentation).
pub fn by_rules(question: &str, prior: &PriorTurn, language: TextLanguage) -> Option<String> {
    let german = language == TextLanguage::German;
    let question = question.trim();
    let words = Words::of(question);
    if words.is_empty() {
        return None;
    }
    let (connective_words, _) = connective(&words, german);
    let pointers = pointer_positions(&words, german);
    let short = words.len() <= 3;
    if connective_words == 0 && pointers.is_empty() && !short {
        return None;
    }
    // A follow-up led by a connective that names three things of its own is specific enough;
    // the previous topic would only pull the search back to the previous passage.
    if pointers.is_empty() && !short && content_words(question, german).len() >= 3 {
        return None;
    }
    let topic = Topic::of(prior.question, german)?;
    // A follow-up that already names the topic stands on its own.
    let lower = question.to_lowercase();
    if topic.name().split_whitespace().all(|w| lower.contains(&w.to_lowercase())) {
        return None;
    }
    // Drop the connective; what remains is the follow-up's own question.
    let rest_start = if connective_words > 0 { words.0[connective_words - 1].end } else { 0 };
    let mut rest = question[rest_start..].trim().trim_start_matches([',', ';', ':']).trim();
    rest = rest.trim_end_matches(['?', '.', '!', ' ']);
    if rest.is_empty() {
        return None;
    }
    let rest_words = Words::of(rest);
    // English subject and object pronouns take the topic's name in place.
    if !german && let Some(replaced) = replace_pronoun(rest, &rest_words, topic.name()) {
        return Some(sentence_case(&format!("{replaced}?")));
    }
    let openers = if german { DE_QUESTION_OPENERS } else { EN_QUESTION_OPENERS };
    let opens_question = rest_words.0.first().is_some_and(|w| openers.contains(&w.lower.as_str()));
    // A bare noun phrase: English asks "What about …"; German keeps the elliptic question
    // ("Die Kaution im Mietvertrag?"), which needs no case agreement.
    let body =
        if opens_question || german { rest.to_owned() } else { format!("What about {rest}") };
    let tail = match (&topic.phrase, german) {
        (Some(phrase), _) => format!(" {phrase}"),
        (None, true) => format!(", bezüglich {}", topic.name()),
        (None, false) => format!(", regarding {}", topic.name()),
    };
    Some(sentence_case(&format!("{body}{tail}?")))
}

/// Whether the rules read `question` as a follow-up (rule 1).
pub fn looks_like_follow_up(question: &str, language: TextLanguage) -> bool {
    let german = language == TextLanguage::German;
    let words = Words::of(question);
    !words.is_empty()
        && (connective(&words, german).0 > 0
            || !pointer_positions(&words, german).is_empty()
            || words.len() <= 3)
}

/// The messages that ask the model to rewrite a follow-up: the instruction, two worked
/// examples as earlier turns of the chat, then the previous question and the follow-up. On the
/// ten conversations of `tests/fixtures/conversations.json` a 0.5B model (Qwen2.5-Coder-0.5B)
/// rewrote 1 of 10 acceptably this way and none with the instruction alone (it repeated the
/// previous question); `accept_model_rewrite` keeps the rules for the rest.
pub fn model_messages(question: &str, prior: &PriorTurn) -> Vec<ChatMessage> {
    const EXAMPLES: [(&str, &str, &str); 2] = [
        (
            "How long is the notice period for the flat in Ulm?",
            "And the deposit?",
            "How much is the deposit for the flat in Ulm?",
        ),
        (
            "Who wrote the TraceMonkey paper?",
            "When was it published?",
            "When was the TraceMonkey paper published?",
        ),
    ];
    let mut messages = vec![ChatMessage::system(
        "You rewrite a follow-up question so that it can be understood without the \
         conversation. Replace words like \"it\", \"they\", \"this\" and \"there\" by what they \
         refer to, and add what an incomplete question leaves out. Keep the follow-up's own \
         meaning and language. Reply with the rewritten question only.",
    )];
    for (previous, follow_up, rewritten) in EXAMPLES {
        messages.push(ChatMessage::user(format!(
            "Previous question: {previous}\nFollow-up question: {follow_up}"
        )));
        messages.push(ChatMessage::assistant(rewritten));
    }
    messages.push(ChatMessage::user(format!(
        "Previous question: {}\nFollow-up question: {}",
        prior.question.trim(),
        question.trim()
    )));
    messages
}

/// The model's rewrite when it passes the checks: one line of a sensible length, no markup,
/// not the previous question repeated, no word left that points back ("it", "this", "dort"),
/// and keeping at least half of the follow-up's own content words (a rewrite that drops what
/// was asked is refused).
pub fn accept_model_rewrite(
    output: &str,
    question: &str,
    prior: &PriorTurn,
    language: TextLanguage,
) -> Option<String> {
    let german = language == TextLanguage::German;
    let line = output.lines().map(str::trim).find(|l| !l.is_empty())?;
    let line = strip_label(line).trim().trim_matches(['"', '\'', '“', '”', '„', '`']).trim();
    let chars = line.chars().count();
    if !(4..=300).contains(&chars)
        || line.contains("[")
        || line.contains("<|")
        || line.contains("```")
        || chars > 3 * question.chars().count() + 120
    {
        return None;
    }
    if line.eq_ignore_ascii_case(prior.question.trim()) {
        return None;
    }
    // A rewrite that still points back ("What license is it published under?") did not
    // resolve anything.
    if !pointer_positions(&Words::of(line), german).is_empty() {
        return None;
    }
    let wanted = content_words(question, german);
    if !wanted.is_empty() {
        let lower = line.to_lowercase();
        let kept = wanted.iter().filter(|w| lower.contains(w.as_str())).count();
        if kept * 2 < wanted.len() {
            return None;
        }
    }
    let mut rewritten = line.to_owned();
    if !rewritten.ends_with(['?', '.', '!']) {
        rewritten.push('?');
    }
    Some(rewritten)
}

/// A line without a leading label the model may repeat ("Rewritten question:").
fn strip_label(line: &str) -> &str {
    match line.split_once(':') {
        Some((label, rest))
            if label.to_lowercase().contains("question")
                || label.to_lowercase().contains("frage") =>
        {
            rest
        }
        _ => line,
    }
}

/// The words of a text with their byte positions.
struct Words(Vec<Word>);

struct Word {
    text: String,
    lower: String,
    start: usize,
    end: usize,
}

impl Words {
    fn of(text: &str) -> Self {
        Self(
            text.unicode_word_indices()
                .map(|(start, w)| Word {
                    text: w.to_owned(),
                    lower: w.to_lowercase(),
                    start,
                    end: start + w.len(),
                })
                .collect(),
        )
    }

    fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    fn len(&self) -> usize {
        self.0.len()
    }
}

/// How many leading words form a connective, and which.
fn connective(words: &Words, german: bool) -> (usize, Option<&'static str>) {
    let list = if german { DE_CONNECTIVES } else { EN_CONNECTIVES };
    for c in list {
        let parts: Vec<&str> = c.split(' ').collect();
        if parts.len() <= words.len()
            && parts.iter().zip(&words.0).all(|(p, w)| *p == w.lower.as_str())
        {
            // "And" alone followed by nothing is still a connective ("And?").
            return (parts.len(), Some(c));
        }
    }
    (0, None)
}

/// Positions of words that point back to the previous turn.
fn pointer_positions(words: &Words, german: bool) -> Vec<usize> {
    let w = &words.0;
    let is = |i: usize, list: &[&str]| w.get(i).is_some_and(|x| list.contains(&x.lower.as_str()));
    const BE: &[&str] = &["is", "are", "was", "were", "be"];
    let mut found = Vec::new();
    for (i, word) in w.iter().enumerate() {
        let lower = word.lower.as_str();
        let pointer = if german {
            // "Gibt es …" and "es gibt" are not about anything said before.
            DE_POINTERS.contains(&lower)
                && !(lower == "es"
                    && (is(i + 1, &["gibt", "gab"]) || i > 0 && is(i - 1, &["gibt", "gab"])))
                // The formal "Sie" addresses the reader.
                && !(lower == "sie" && word.text == "Sie" && i > 0)
        } else if EN_SUBJECT_PRONOUNS.contains(&lower) || EN_POSSESSIVES.contains(&lower) {
            true
        } else if lower == "there" {
            !(is(i + 1, BE) || i > 0 && is(i - 1, BE))
        } else if ["this", "that", "these", "those"].contains(&lower) {
            // A demonstrative on its own or before a verb points back; "that" before anything
            // else is usually a conjunction or a relative pronoun. "This paper" points back
            // too (a determiner with a noun).
            lower != "that" || i + 1 == w.len() || is(i + 1, BE)
        } else {
            EN_POINTERS.contains(&lower) && lower != "her"
        };
        if pointer {
            found.push(i);
        }
    }
    found
}

/// The English follow-up with its first subject/object pronoun or possessive replaced by
/// `name`, when it has one.
fn replace_pronoun(text: &str, words: &Words, name: &str) -> Option<String> {
    let word = words.0.iter().find(|w| {
        EN_SUBJECT_PRONOUNS.contains(&w.lower.as_str())
            || EN_POSSESSIVES.contains(&w.lower.as_str())
    })?;
    let replacement = if EN_POSSESSIVES.contains(&word.lower.as_str()) {
        if name.ends_with('s') { format!("{name}'") } else { format!("{name}'s") }
    } else {
        name.to_owned()
    };
    Some(format!("{}{}{}", &text[..word.start], replacement, &text[word.end..]))
}

/// The previous turn's topic: a name to put in place of a pronoun, and the phrase that adds it
/// at the end of a question.
struct Topic {
    /// A name in the question ("TraceMonkey", "Technology Acceptance Model").
    entity: Option<String>,
    /// Its last prepositional phrase ("for the lease").
    phrase: Option<String>,
    /// The phrase without its preposition ("the lease"), or the content words.
    noun: String,
}

impl Topic {
    fn of(question: &str, german: bool) -> Option<Self> {
        let question = question.trim().trim_end_matches(['?', '.', '!', ' ']);
        let words = Words::of(question);
        if words.is_empty() {
            return None;
        }
        let entity = entity(&words, german);
        let prepositions = if german { DE_PREPOSITIONS } else { EN_PREPOSITIONS };
        let functions = if german { DE_FUNCTION_WORDS } else { EN_FUNCTION_WORDS };
        let phrase = words
            .0
            .iter()
            .enumerate()
            .skip(1)
            .rev()
            .find(|(_, w)| prepositions.contains(&w.lower.as_str()))
            .filter(|(i, _)| {
                let tail = &words.0[i + 1..];
                !tail.is_empty()
                    && tail.len() <= 6
                    && tail.iter().any(|w| !functions.contains(&w.lower.as_str()))
            })
            .map(|(i, w)| {
                // "for terminating the lease": the topic is the lease, not the terminating.
                let mut first = i + 1;
                while !german
                    && first + 1 < words.len()
                    && words.0[first].lower.len() > 5
                    && words.0[first].lower.ends_with("ing")
                {
                    first += 1;
                }
                let noun = question[words.0[first].start..].trim().to_owned();
                (format!("{} {noun}", w.text), noun)
            });
        let noun = match &phrase {
            Some((_, noun)) => noun.clone(),
            None => content_words_in(&words, german).join(" "),
        };
        if entity.is_none() && noun.is_empty() {
            return None;
        }
        Some(Self { entity, phrase: phrase.map(|(p, _)| p), noun })
    }

    /// What replaces a pronoun.
    fn name(&self) -> &str {
        self.entity.as_deref().unwrap_or(&self.noun)
    }
}

/// The first name in a question (see the module's documentation, rule 2).
fn entity(words: &Words, german: bool) -> Option<String> {
    let marked = |w: &Word| {
        let inner_capital = w.text.chars().skip(1).any(char::is_uppercase);
        let digit = w.text.chars().any(|c| c.is_ascii_digit());
        inner_capital || digit
    };
    let capitalised = |w: &Word| w.text.chars().next().is_some_and(char::is_uppercase);
    let functions = if german { DE_FUNCTION_WORDS } else { EN_FUNCTION_WORDS };
    // The last name: a question's focus is usually named last ("In the tale The Half-Chick,
    // what does Medio Pollito mean?").
    let mut runs: Vec<Vec<&Word>> = vec![Vec::new()];
    for (i, w) in words.0.iter().enumerate() {
        let part_of_name = if german {
            marked(w)
        } else {
            (i > 0 && capitalised(w) && w.lower != "i") || marked(w)
        };
        let run = runs.last_mut()?;
        if part_of_name && !(run.is_empty() && functions.contains(&w.lower.as_str()) && !marked(w))
        {
            run.push(w);
        } else if !run.is_empty() {
            runs.push(Vec::new());
        }
    }
    let run = runs.into_iter().rfind(|r| !r.is_empty())?;
    Some(run.iter().map(|w| w.text.as_str()).collect::<Vec<_>>().join(" "))
}

fn content_words_in(words: &Words, german: bool) -> Vec<String> {
    let functions = if german { DE_FUNCTION_WORDS } else { EN_FUNCTION_WORDS };
    words
        .0
        .iter()
        .filter(|w| !functions.contains(&w.lower.as_str()))
        .map(|w| w.text.clone())
        .collect()
}

/// The lowercase content words of a text.
fn content_words(text: &str, german: bool) -> Vec<String> {
    let connectives = if german { DE_CONNECTIVES } else { EN_CONNECTIVES };
    content_words_in(&Words::of(text), german)
        .into_iter()
        .map(|w| w.to_lowercase())
        .filter(|w| !connectives.contains(&w.as_str()))
        .collect()
}

/// `text` with its first letter capitalised.
fn sentence_case(text: &str) -> String {
    let mut chars = text.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn en(question: &str, prior: &str) -> Option<String> {
        by_rules(question, &PriorTurn { question: prior }, TextLanguage::English)
    }

    fn de(question: &str, prior: &str) -> Option<String> {
        by_rules(question, &PriorTurn { question: prior }, TextLanguage::German)
    }

    #[test]
    fn pronouns_take_the_previous_topic_s_name() {
        assert_eq!(
            en("How much faster is it than SpiderMonkey?", "What is a trace tree in TraceMonkey?")
                .as_deref(),
            Some("How much faster is TraceMonkey than SpiderMonkey?")
        );
        assert_eq!(
            en("How does it timestamp transactions?", "What problem does the Bitcoin paper solve?")
                .as_deref(),
            Some("How does Bitcoin timestamp transactions?")
        );
        assert_eq!(
            en(
                "Who proposed its original version?",
                "What does the Technology Acceptance Model explain?"
            )
            .as_deref(),
            Some("Who proposed Technology Acceptance Model's original version?")
        );
    }

    #[test]
    fn elliptic_follow_ups_get_the_previous_topic_phrase() {
        assert_eq!(
            en("And the deposit?", "How long is the notice period for the lease?").as_deref(),
            Some("What about the deposit for the lease?")
        );
        assert_eq!(
            en("And the monthly rent?", "What is the notice period for terminating the lease?")
                .as_deref(),
            Some("What about the monthly rent for the lease?")
        );
        assert_eq!(
            en("and how high is the rent", "How long is the notice period for the lease?")
                .as_deref(),
            Some("How high is the rent for the lease?")
        );
        assert_eq!(
            de("Und die Kaution?", "Wie lang ist die Kündigungsfrist im Mietvertrag?").as_deref(),
            Some("Die Kaution im Mietvertrag?")
        );
        assert_eq!(
            de("Wie hoch ist sie dort?", "Was kostet die Miete laut Vertrag 2023?").as_deref(),
            Some("Wie hoch ist sie dort laut Vertrag 2023?")
        );
    }

    #[test]
    fn standalone_questions_are_left_alone() {
        let prior = "What is a trace tree in TraceMonkey?";
        assert_eq!(en("Who wrote the Bitcoin paper in 2008?", prior), None);
        assert_eq!(en("Is there a limit on the number of traces in TraceMonkey?", prior), None);
        assert_eq!(en("How fast is TraceMonkey on SunSpider?", prior), None);
        assert_eq!(
            de("Gibt es eine Kaution für die Wohnung in Berlin?", "Was kostet die Miete?"),
            None
        );
        assert!(!looks_like_follow_up(
            "Which benchmarks did the authors run?",
            TextLanguage::English
        ));
        assert!(looks_like_follow_up("Why?", TextLanguage::English));
        assert!(looks_like_follow_up("Und dort?", TextLanguage::German));
    }

    #[test]
    fn a_model_rewrite_must_keep_the_follow_up_and_stay_a_question() {
        let prior = PriorTurn { question: "What is a trace tree in TraceMonkey?" };
        let q = "How much faster is it than SpiderMonkey?";
        let lang = TextLanguage::English;
        assert_eq!(
            accept_model_rewrite(
                "How much faster is TraceMonkey than SpiderMonkey?\n",
                q,
                &prior,
                lang
            )
            .as_deref(),
            Some("How much faster is TraceMonkey than SpiderMonkey?")
        );
        assert_eq!(
            accept_model_rewrite(
                "Rewritten question: \"How much faster is TraceMonkey than SpiderMonkey\"",
                q,
                &prior,
                lang
            )
            .as_deref(),
            Some("How much faster is TraceMonkey than SpiderMonkey?")
        );
        // The previous question again, the follow-up's words lost, markup: refused.
        assert_eq!(
            accept_model_rewrite("What is a trace tree in TraceMonkey?", q, &prior, lang),
            None
        );
        assert_eq!(accept_model_rewrite("What is TraceMonkey?", q, &prior, lang), None);
        assert_eq!(accept_model_rewrite("It is faster [1].", q, &prior, lang), None);
        assert_eq!(
            accept_model_rewrite("How much faster is it than SpiderMonkey", q, &prior, lang),
            None
        );
        assert_eq!(accept_model_rewrite("   \n", q, &prior, lang), None);
    }
}
