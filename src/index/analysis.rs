//! How text becomes full-text index terms, per language. German gets its own analyzer (German
//! stop words, umlaut and ß folding, the German Snowball stemmer) and a second field of compound
//! parts ([`compound_parts`]), so "Kündigungsfrist" is found by "Frist"; every other language goes through the
//! English analyzer with ASCII folding. A chunk is indexed with the analyzer of its detected
//! language; a query is analysed for each language, so it reaches chunks of both.

pub use crate::language::TextLanguage;
use tantivy::tokenizer::{
    AsciiFoldingFilter, Language, LowerCaser, RemoveLongFilter, SimpleTokenizer, Stemmer,
    StopWordFilter, TextAnalyzer, Token, TokenFilter, TokenStream, Tokenizer,
};

/// Which parts of the German analysis are on. The library always has all of them; the
/// others exist so `quarry eval analyzers` can show what each part earns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AnalysisOptions {
    /// German chunks get German fields (otherwise everything goes through the English analyzer,
    /// as before German was treated apart).
    pub german: bool,
    /// The German Snowball stemmer (otherwise German words are only folded).
    pub german_stemming: bool,
    /// The compound-parts field (a question's word found inside a compound of the library).
    pub compound_parts: bool,
    /// A question's compound split into parts the library holds as words of their own.
    pub query_parts: bool,
}

impl Default for AnalysisOptions {
    fn default() -> Self {
        Self { german: true, german_stemming: true, compound_parts: true, query_parts: true }
    }
}

/// The registered name of `language`'s analyzer.
pub fn analyzer_name(language: TextLanguage) -> &'static str {
    match language {
        TextLanguage::English => "quarry_en",
        TextLanguage::German => "quarry_de",
    }
}

/// `language`'s analyzer.
pub fn analyzer(language: TextLanguage, options: AnalysisOptions) -> TextAnalyzer {
    match language {
        TextLanguage::English => english(),
        TextLanguage::German => german_with(options.german_stemming),
    }
}

/// Tokens longer than this are dropped (URLs, hashes, base64).
const LONGEST_TOKEN: usize = 40;

/// The stop words of `language` (none when tantivy lacks a list for it).
fn stop_words(language: Language) -> StopWordFilter {
    StopWordFilter::new(language).unwrap_or_else(|| StopWordFilter::remove(Vec::<String>::new()))
}

fn english() -> TextAnalyzer {
    TextAnalyzer::builder(SimpleTokenizer::default())
        .filter(RemoveLongFilter::limit(LONGEST_TOKEN))
        .filter(LowerCaser)
        .filter(stop_words(Language::English))
        .filter(Stemmer::new(Language::English))
        .filter(AsciiFoldingFilter)
        .build()
}

#[cfg(test)]
fn german() -> TextAnalyzer {
    german_with(true)
}

fn german_with(stemming: bool) -> TextAnalyzer {
    let folded = TextAnalyzer::builder(SimpleTokenizer::default())
        .filter(RemoveLongFilter::limit(LONGEST_TOKEN))
        .filter(LowerCaser)
        .filter(stop_words(Language::German))
        .filter(GermanNormalizer);
    // Static chains; the unstemmed one is for measuring only.
    if stemming {
        folded.filter(Stemmer::new(Language::German)).filter(AsciiFoldingFilter).build()
    } else {
        folded.filter(AsciiFoldingFilter).build()
    }
}

/// German spelling variants folded to one form, as Lucene's `GermanNormalizationFilter` does:
/// ä/ö/ü become a/o/u, ß becomes ss, and the transliterations ae/oe/ue (not "que") lose their
/// e, so "Straße" = "Strasse" and "Müller" = "Mueller".
#[derive(Clone)]
pub struct GermanNormalizer;

impl TokenFilter for GermanNormalizer {
    type Tokenizer<T: Tokenizer> = GermanNormalizerFilter<T>;

    fn transform<T: Tokenizer>(self, tokenizer: T) -> Self::Tokenizer<T> {
        GermanNormalizerFilter { tokenizer }
    }
}

/// [`GermanNormalizer`] applied to a tokenizer.
#[derive(Clone)]
pub struct GermanNormalizerFilter<T> {
    tokenizer: T,
}

impl<T: Tokenizer> Tokenizer for GermanNormalizerFilter<T> {
    type TokenStream<'a> = GermanNormalizerStream<T::TokenStream<'a>>;

    fn token_stream<'a>(&'a mut self, text: &'a str) -> Self::TokenStream<'a> {
        GermanNormalizerStream { tail: self.tokenizer.token_stream(text) }
    }
}

/// The token stream of [`GermanNormalizerFilter`].
pub struct GermanNormalizerStream<T> {
    tail: T,
}

/// `word` (lower-cased) with German variants folded; see [`GermanNormalizer`].
pub fn normalize_german(word: &str) -> String {
    let mut out = String::with_capacity(word.len());
    // Whether the previous letter was a vowel that an "e" after it turns into an umlaut.
    let mut umlaut_vowel = false;
    let mut after_q = false;
    for c in word.chars() {
        match c {
            'a' | 'o' => {
                out.push(c);
                umlaut_vowel = true;
            }
            'u' => {
                out.push(c);
                umlaut_vowel = !after_q;
            }
            'e' if umlaut_vowel => umlaut_vowel = false,
            'ä' => {
                out.push('a');
                umlaut_vowel = false;
            }
            'ö' => {
                out.push('o');
                umlaut_vowel = false;
            }
            'ü' => {
                out.push('u');
                umlaut_vowel = false;
            }
            'ß' => {
                out.push_str("ss");
                umlaut_vowel = false;
            }
            _ => {
                out.push(c);
                umlaut_vowel = false;
            }
        }
        after_q = c == 'q';
    }
    out
}

impl<T: TokenStream> TokenStream for GermanNormalizerStream<T> {
    fn advance(&mut self) -> bool {
        if !self.tail.advance() {
            return false;
        }
        let text = &mut self.tail.token_mut().text;
        if text.bytes().any(|b| matches!(b, b'e' | 0xc3)) {
            *text = normalize_german(text);
        }
        true
    }

    fn token(&self) -> &Token {
        self.tail.token()
    }

    fn token_mut(&mut self) -> &mut Token {
        self.tail.token_mut()
    }
}

/// Words at least this long (in characters, after stemming) are treated as possible compounds.
const SHORTEST_COMPOUND: usize = 8;
/// Shortest part emitted, and shortest rest left beside it.
const SHORTEST_PART: usize = 4;
const SHORTEST_REST: usize = 3;

/// The leading and trailing parts of a long (analysed) word, "mietvertrag" → "miet", "mietv",
/// …, "vertrag", "ertrag", "trag", shortest first and alternating sides; none for short words.
/// Indexed for German chunks (a query word found as the head or the modifier of a compound
/// matches it) and looked up for a question's compounds. Without a dictionary most parts are
/// not words; they cost index space, and only real words are ever looked up among them.
pub fn compound_parts(word: &str) -> Vec<String> {
    let chars: Vec<char> = word.chars().collect();
    let n = chars.len();
    if n < SHORTEST_COMPOUND {
        return Vec::new();
    }
    let mut parts = Vec::new();
    for len in SHORTEST_PART..=n - SHORTEST_REST {
        parts.push(chars[..len].iter().collect());
        parts.push(chars[n - len..].iter().collect());
    }
    parts
}

#[cfg(test)]
mod tests {
    use super::*;

    fn terms(mut analyzer: TextAnalyzer, text: &str) -> Vec<String> {
        let mut stream = analyzer.token_stream(text);
        let mut out = Vec::new();
        while stream.advance() {
            out.push(stream.token().text.clone());
        }
        out
    }

    #[test]
    fn german_spelling_variants_fold_to_one_term() {
        let de = |t: &str| terms(german(), t);
        assert_eq!(de("Straße"), de("Strasse"));
        assert_eq!(de("Müller"), de("Mueller"));
        assert_eq!(de("Größe"), de("Groesse"));
        assert_eq!(de("Verträge"), de("Vertrag"));
        assert_eq!(de("Kündigungsfristen"), de("Kündigungsfrist"));
        // "que" keeps its e; stop words go.
        assert_eq!(normalize_german("quelle"), "quelle");
        assert!(de("und der die das").is_empty());
        // English keeps its own stemmer, and folds accents.
        assert_eq!(terms(english(), "Cafés running"), vec!["cafe", "run"]);
    }

    #[test]
    fn compound_parts_hold_head_and_modifier() {
        let parts: Vec<String> = terms(german(), "Die Kündigungsfrist im Mietvertrag")
            .iter()
            .flat_map(|w| compound_parts(w))
            .collect();
        let stem = |t: &str| terms(german(), t).pop().unwrap();
        for word in ["Frist", "Vertrag", "Miete", "Kündigung"] {
            assert!(parts.contains(&stem(word)), "{word} ({}) not in {parts:?}", stem(word));
        }
        assert!(compound_parts("frist").is_empty(), "short words are not split");
        assert!(
            !parts.contains(&"kundigungsfrist".to_owned()),
            "whole words stay in the main field"
        );
    }
}
