//! How text becomes full-text index terms, per language. German gets its own analyzer (German
//! stop words, umlaut and ß folding, the German Snowball stemmer) and a second field of compound
//! parts, so "Kündigungsfrist" is found by "Frist"; every other language goes through the
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
        TextLanguage::German => german_with(options.german_stemming, false),
    }
}

/// Registered name of the German compound-parts analyzer.
pub const GERMAN_PARTS: &str = "quarry_de_parts";

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
    german_with(true, false)
}

/// The German analyzer followed by [`CompoundParts`]: the leading and trailing parts of long
/// words, for the compound-parts field.
pub fn german_parts(options: AnalysisOptions) -> TextAnalyzer {
    german_with(options.german_stemming, true)
}

fn german_with(stemming: bool, parts: bool) -> TextAnalyzer {
    let folded = TextAnalyzer::builder(SimpleTokenizer::default())
        .filter(RemoveLongFilter::limit(LONGEST_TOKEN))
        .filter(LowerCaser)
        .filter(stop_words(Language::German))
        .filter(GermanNormalizer);
    // Static chains for the library's analyzers; the unstemmed one is for measuring only.
    match (stemming, parts) {
        (true, false) => {
            folded.filter(Stemmer::new(Language::German)).filter(AsciiFoldingFilter).build()
        }
        (true, true) => folded
            .filter(Stemmer::new(Language::German))
            .filter(AsciiFoldingFilter)
            .filter(CompoundParts)
            .build(),
        (false, false) => folded.filter(AsciiFoldingFilter).build(),
        (false, true) => folded.filter(AsciiFoldingFilter).filter(CompoundParts).build(),
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

/// Replaces each long word by its leading and trailing parts ("mietvertrag" → "miet", "mietv",
/// …, "vertrag", "ertrag", "trag"), so a query word found as the head or the modifier of a
/// compound matches it. Without a dictionary most parts are not words; they cost index space,
/// and queries only ever look up real words among them. Short words yield nothing: they are in
/// the main field already.
#[derive(Clone)]
pub struct CompoundParts;

impl TokenFilter for CompoundParts {
    type Tokenizer<T: Tokenizer> = CompoundPartsFilter<T>;

    fn transform<T: Tokenizer>(self, tokenizer: T) -> Self::Tokenizer<T> {
        CompoundPartsFilter { tokenizer }
    }
}

/// [`CompoundParts`] applied to a tokenizer.
#[derive(Clone)]
pub struct CompoundPartsFilter<T> {
    tokenizer: T,
}

impl<T: Tokenizer> Tokenizer for CompoundPartsFilter<T> {
    type TokenStream<'a> = CompoundPartsStream<T::TokenStream<'a>>;

    fn token_stream<'a>(&'a mut self, text: &'a str) -> Self::TokenStream<'a> {
        CompoundPartsStream { tail: self.tokenizer.token_stream(text), parts: Vec::new() }
    }
}

/// The token stream of [`CompoundPartsFilter`]: parts of the current word, emitted last first.
pub struct CompoundPartsStream<T> {
    tail: T,
    parts: Vec<Token>,
}

/// The leading and trailing parts of `word` that [`CompoundParts`] emits (none for short words).
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

impl<T: TokenStream> TokenStream for CompoundPartsStream<T> {
    fn advance(&mut self) -> bool {
        self.parts.pop();
        while self.parts.is_empty() {
            if !self.tail.advance() {
                return false;
            }
            let token = self.tail.token();
            for part in compound_parts(&token.text) {
                self.parts.push(Token { text: part, ..token.clone() });
            }
        }
        true
    }

    fn token(&self) -> &Token {
        self.parts.last().unwrap_or_else(|| self.tail.token())
    }

    fn token_mut(&mut self) -> &mut Token {
        self.parts.last_mut().unwrap_or_else(|| self.tail.token_mut())
    }
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
        let parts =
            terms(german_parts(AnalysisOptions::default()), "Die Kündigungsfrist im Mietvertrag");
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
