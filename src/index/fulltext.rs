//! The tantivy side of the library: a BM25 index over chunk text, the chunk's window (the chunk
//! with its neighbours) and document titles, each in a field of the chunk's language (German, or
//! the English analyzer for everything else; see [`super::analysis`]), plus German compound
//! parts. Derived from the `chunks` table and rebuildable from it at any time.

use std::path::Path;
use std::sync::Mutex;

use tantivy::collector::TopDocs;
use tantivy::query::{BooleanQuery, BoostQuery, Occur, Query, TermQuery};
use tantivy::schema::{
    Field, IndexRecordOption, STORED, STRING, Schema, TextFieldIndexing, TextOptions, Value,
};
use tantivy::tokenizer::{PreTokenizedString, TextAnalyzer, Token};
use tantivy::{Index, IndexReader, IndexWriter, ReloadPolicy, Searcher, TantivyDocument, Term};

use super::IndexError;
use super::analysis::{AnalysisOptions, TextLanguage, analyzer, analyzer_name, compound_parts};
/// Weight of a match in the document title against one in the chunk text.
const TITLE_BOOST: f32 = 0.5;
/// Weight of a match in the chunk's window (previous, own and next chunk text) against one in
/// the chunk text. A passage split at a chunk boundary still scores for the words its other
/// half holds: on SciFact (200-token chunks) text-only nDCG@10 goes from 0.668 to 0.683 and
/// hybrid from 0.722 to 0.725. Weights 1.5 and 2 scored within 0.001 of 1; a window of the
/// neighbours without the chunk itself lowered it (0.633-0.660 in a bm25s simulation).
const WINDOW_BOOST: f32 = 1.0;
/// Weight of a query word found as a part of a longer German word (a compound's head or
/// modifier) against one found as a word of its own.
const PARTS_BOOST: f32 = 0.5;
/// Memory for the writer's in-RAM segment before it flushes (tantivy's own examples use 50 MB).
const WRITER_HEAP_BYTES: usize = 64 * 1024 * 1024;

/// One chunk as the text index sees it.
#[derive(Debug, Clone)]
pub struct TextEntry<'a> {
    /// Chunk id, stored and returned by searches.
    pub chunk_id: &'a str,
    /// Owning document, for deleting all chunks of a document.
    pub doc_id: &'a str,
    /// Chunk text.
    pub text: &'a str,
    /// Document title and file name, so a query naming the document finds it.
    pub title: &'a str,
    /// Text of the previous chunk of the same document ("" for the first).
    pub before: &'a str,
    /// Text of the next chunk of the same document ("" for the last).
    pub after: &'a str,
    /// The chunk's detected language (ISO 639-3, "" when unknown).
    pub language: &'a str,
}

#[derive(Debug, Clone, Copy)]
struct Fields {
    chunk_id: Field,
    doc_id: Field,
    text: Field,
    window: Field,
    title: Field,
    /// Parts of long German words (see [`compound_parts`]).
    german_parts: Field,
}

/// The analyzers a chunk can go through, built once per write.
struct Analyzers {
    english: TextAnalyzer,
    german: TextAnalyzer,
    options: AnalysisOptions,
}

impl Analyzers {
    fn new(options: AnalysisOptions) -> Self {
        Self {
            english: analyzer(TextLanguage::English, options),
            german: analyzer(TextLanguage::German, options),
            options,
        }
    }

    fn of(&mut self, language: TextLanguage) -> &mut TextAnalyzer {
        match language {
            TextLanguage::English => &mut self.english,
            TextLanguage::German => &mut self.german,
        }
    }
}

/// `text` as `analyzer` turns it into tokens.
fn pre_tokenized(analyzer: &mut TextAnalyzer, text: &str) -> PreTokenizedString {
    let mut stream = analyzer.token_stream(text);
    let mut tokens = Vec::new();
    while stream.advance() {
        tokens.push(stream.token().clone());
    }
    PreTokenizedString { text: text.to_owned(), tokens }
}

impl Fields {
    /// The tantivy document of one chunk: its text, window and title analysed for the chunk's
    /// language, in the fields every language shares (so BM25's statistics, document lengths
    /// included, are those of the whole library).
    fn document(&self, entry: &TextEntry<'_>, analyzers: &mut Analyzers) -> TantivyDocument {
        let mut doc = TantivyDocument::default();
        doc.add_text(self.chunk_id, entry.chunk_id);
        doc.add_text(self.doc_id, entry.doc_id);
        let language = match TextLanguage::of_code(entry.language) {
            TextLanguage::German if analyzers.options.german => TextLanguage::German,
            _ => TextLanguage::English,
        };
        let analyzer = analyzers.of(language);
        let text = pre_tokenized(analyzer, entry.text);
        if language == TextLanguage::German && analyzers.options.compound_parts {
            // The parts of the words just analysed, at their places (no second analysis).
            let parts = text
                .tokens
                .iter()
                .flat_map(|t| {
                    compound_parts(&t.text)
                        .into_iter()
                        .map(|part| Token { text: part, ..t.clone() })
                })
                .collect();
            let parts = PreTokenizedString { text: entry.text.to_owned(), tokens: parts };
            doc.add_pre_tokenized_text(self.german_parts, parts);
        }
        let analyzer = analyzers.of(language);
        doc.add_pre_tokenized_text(self.text, text);
        // Three values of one field: BM25 sees them as one text of their summed length.
        for part in [entry.before, entry.text, entry.after] {
            if !part.is_empty() {
                doc.add_pre_tokenized_text(self.window, pre_tokenized(analyzer, part));
            }
        }
        doc.add_pre_tokenized_text(self.title, pre_tokenized(analyzer, entry.title));
        doc
    }
}

/// The full-text index.
pub struct FullText {
    index: Index,
    reader: IndexReader,
    writer: Mutex<Option<IndexWriter>>,
    fields: Fields,
    options: AnalysisOptions,
}

impl std::fmt::Debug for FullText {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FullText").finish_non_exhaustive()
    }
}

fn analyzed(tokenizer: &str) -> TextOptions {
    TextOptions::default().set_indexing_options(
        TextFieldIndexing::default()
            .set_tokenizer(tokenizer)
            .set_index_option(IndexRecordOption::WithFreqsAndPositions),
    )
}

fn schema() -> Schema {
    let mut builder = Schema::builder();
    builder.add_text_field("chunk_id", STRING | STORED);
    builder.add_text_field("doc_id", STRING);
    // Chunks arrive pre-tokenized by the analyzer of their language; the tokenizer named here
    // is what tantivy would use for plain text (none is added).
    let analyzed = analyzed(analyzer_name(TextLanguage::English));
    builder.add_text_field("text", analyzed.clone());
    builder.add_text_field("window", analyzed.clone());
    builder.add_text_field("title", analyzed);
    // Only German chunks have parts: without field norms a part found scores by its rarity,
    // not against an average length that the chunks without parts would make meaningless.
    builder.add_text_field(
        "parts_de",
        TextOptions::default().set_indexing_options(
            TextFieldIndexing::default()
                .set_tokenizer(analyzer_name(TextLanguage::German))
                .set_index_option(IndexRecordOption::WithFreqs)
                .set_fieldnorms(false),
        ),
    );
    builder.build()
}

const LANGUAGES: [TextLanguage; 2] = [TextLanguage::English, TextLanguage::German];

impl FullText {
    /// Opens the index in `dir`, creating it when missing. A stored schema that differs from
    /// ours is reported as corrupt (the caller rebuilds).
    pub fn open(dir: &Path) -> Result<Self, IndexError> {
        Self::open_with(dir, AnalysisOptions::default())
    }

    /// [`FullText::open`] with some of the German analysis off (for measuring what each part
    /// earns; a library always has all of it).
    pub fn open_with(dir: &Path, options: AnalysisOptions) -> Result<Self, IndexError> {
        std::fs::create_dir_all(dir)
            .map_err(|e| IndexError::Corrupt(format!("{}: {e}", dir.display())))?;
        let directory = tantivy::directory::MmapDirectory::open(dir)
            .map_err(|e| IndexError::Corrupt(format!("{}: {e}", dir.display())))?;
        let index = Index::open_or_create(directory, schema())?;
        for language in LANGUAGES {
            index.tokenizers().register(analyzer_name(language), analyzer(language, options));
        }
        let reader = index.reader_builder().reload_policy(ReloadPolicy::Manual).try_into()?;
        let s = index.schema();
        let field = |name: &str| {
            s.get_field(name).map_err(|_| IndexError::Corrupt(format!("text index lacks {name}")))
        };
        let fields = Fields {
            chunk_id: field("chunk_id")?,
            doc_id: field("doc_id")?,
            text: field("text")?,
            window: field("window")?,
            title: field("title")?,
            german_parts: field("parts_de")?,
        };
        Ok(Self { index, reader, writer: Mutex::new(None), fields, options })
    }

    fn with_writer<T>(
        &self,
        f: impl FnOnce(&mut IndexWriter) -> Result<T, IndexError>,
    ) -> Result<T, IndexError> {
        let mut guard = self
            .writer
            .lock()
            .map_err(|_| IndexError::Corrupt("text index writer poisoned".into()))?;
        if guard.is_none() {
            *guard = Some(self.index.writer(WRITER_HEAP_BYTES)?);
        }
        match guard.as_mut() {
            Some(writer) => f(writer),
            None => Err(IndexError::Corrupt("text index writer missing".into())),
        }
    }

    /// Replaces every chunk of `doc_ids` with `entries` and commits.
    pub fn replace(&self, doc_ids: &[String], entries: &[TextEntry<'_>]) -> Result<(), IndexError> {
        let fields = self.fields;
        let mut analyzers = Analyzers::new(self.options);
        self.with_writer(|writer| {
            for doc_id in doc_ids {
                writer.delete_term(Term::from_field_text(fields.doc_id, doc_id));
            }
            for entry in entries {
                writer.add_document(fields.document(entry, &mut analyzers))?;
            }
            writer.commit()?;
            Ok(())
        })?;
        self.reader.reload()?;
        Ok(())
    }

    /// Removes everything, then adds `entries` in batches from `fill`, and commits once.
    pub fn rebuild(
        &self,
        fill: impl FnOnce(
            &mut dyn FnMut(&[TextEntry<'_>]) -> Result<(), IndexError>,
        ) -> Result<(), IndexError>,
    ) -> Result<(), IndexError> {
        let fields = self.fields;
        let mut analyzers = Analyzers::new(self.options);
        self.with_writer(|writer| {
            writer.delete_all_documents()?;
            let mut add = |entries: &[TextEntry<'_>]| -> Result<(), IndexError> {
                for entry in entries {
                    writer.add_document(fields.document(entry, &mut analyzers))?;
                }
                Ok(())
            };
            fill(&mut add)?;
            writer.commit()?;
            Ok(())
        })?;
        self.reader.reload()?;
        Ok(())
    }

    /// The best `limit` chunks for `query` by BM25, as (chunk id, score).
    ///
    /// The query is a bag of words, analysed like the indexed text in each language (chunks of
    /// each language are reached by its analysis): no query syntax, so a hyphen, colon or quote
    /// in a question never turns into an operator or a phrase. Its German words are also looked
    /// up among the parts of longer German words.
    pub fn search(&self, query: &str, limit: usize) -> Result<Vec<(String, f32)>, IndexError> {
        self.search_within(query, limit, None)
    }

    /// [`FullText::search`] among the chunks of `doc_ids` only, when given.
    pub fn search_within(
        &self,
        query: &str,
        limit: usize,
        doc_ids: Option<&[String]>,
    ) -> Result<Vec<(String, f32)>, IndexError> {
        let searcher = self.reader.searcher();
        let mut clauses: Vec<(Occur, Box<dyn Query>)> = Vec::new();
        let mut add = |field: Field, terms: &[String], boost: f32| {
            for term in terms {
                let query = TermQuery::new(
                    Term::from_field_text(field, term),
                    IndexRecordOption::WithFreqs,
                );
                clauses.push((Occur::Should, Box::new(BoostQuery::new(Box::new(query), boost))));
            }
        };
        // The query's terms as each language analyses it, once each.
        let mut terms: Vec<String> = Vec::new();
        let mut german: Vec<String> = Vec::new();
        for language in LANGUAGES {
            if language == TextLanguage::German && !self.options.german {
                continue;
            }
            for term in self.terms_of(query, language) {
                if language == TextLanguage::German && !german.contains(&term) {
                    german.push(term.clone());
                }
                if !terms.contains(&term) {
                    terms.push(term);
                }
            }
        }
        let fields = self.fields;
        add(fields.text, &terms, 1.0);
        add(fields.window, &terms, WINDOW_BOOST);
        add(fields.title, &terms, TITLE_BOOST);
        if self.options.german && self.options.compound_parts {
            add(fields.german_parts, &german, PARTS_BOOST);
        }
        if self.options.german && self.options.query_parts {
            // The other half: a compound in the question whose parts the library holds as
            // words of their own ("Mietvertrag" → "Vertrag", "Miete"); the library's own
            // vocabulary is the dictionary.
            let parts = self.known_parts(&german, fields.text, &searcher);
            add(fields.text, &parts, PARTS_BOOST);
        }
        if clauses.is_empty() {
            return Ok(Vec::new());
        }
        let mut query: Box<dyn Query> = Box::new(BooleanQuery::new(clauses));
        if let Some(ids) = doc_ids {
            let within = tantivy::query::TermSetQuery::new(
                ids.iter().map(|id| Term::from_field_text(self.fields.doc_id, id)),
            );
            query = Box::new(BooleanQuery::new(vec![
                (Occur::Must, query),
                (Occur::Must, Box::new(within) as Box<dyn Query>),
            ]));
        }
        let top = searcher.search(&*query, &TopDocs::with_limit(limit.max(1)).order_by_score())?;
        let mut res = Vec::with_capacity(top.len());
        for (score, address) in top {
            let doc: TantivyDocument = searcher.doc(address)?;
            if let Some(id) = doc.get_first(self.fields.chunk_id).and_then(|v| v.as_str()) {
                res.push((id.to_owned(), score));
            }
        }
        Ok(res)
    }

    /// The leading and trailing parts of the long words among `terms` that occur in `field` as
    /// words of their own (the longest of each side, so "vertrag" and not also "trag"). A word
    /// the library holds as it is ("tracemonkey") is not split.
    fn known_parts(&self, terms: &[String], field: Field, searcher: &Searcher) -> Vec<String> {
        let known = |part: &String| {
            !terms.contains(part)
                && searcher.doc_freq(&Term::from_field_text(field, part)).is_ok_and(|df| df > 0)
        };
        let mut found = Vec::new();
        let held = |term: &String| {
            searcher.doc_freq(&Term::from_field_text(field, term)).is_ok_and(|df| df > 0)
        };
        for term in terms.iter().filter(|t| !held(t)) {
            let parts = compound_parts(term);
            // `compound_parts` alternates leading and trailing parts, shortest first.
            let leading = parts.iter().step_by(2).rev().find(|p| known(p));
            let trailing = parts.iter().skip(1).step_by(2).rev().find(|p| known(p));
            for part in leading.into_iter().chain(trailing) {
                if !found.contains(part) {
                    found.push(part.clone());
                }
            }
        }
        found
    }

    fn terms_of(&self, text: &str, language: TextLanguage) -> Vec<String> {
        let mut analyzer = self
            .index
            .tokenizers()
            .get(analyzer_name(language))
            .unwrap_or_else(|| analyzer(language, self.options));
        let mut stream = analyzer.token_stream(text);
        let mut terms = Vec::new();
        while stream.advance() {
            terms.push(stream.token().text.clone());
        }
        terms
    }

    /// The distinct terms of `text` as the index analyses text in `language`, in order of
    /// first appearance.
    pub fn analyze(&self, text: &str, language: TextLanguage) -> Vec<String> {
        let mut terms: Vec<String> = Vec::new();
        for term in self.terms_of(text, language) {
            if !terms.contains(&term) {
                terms.push(term);
            }
        }
        terms
    }

    /// BM25's inverse document frequency of each term over chunk text:
    /// ln(1 + (N - df + 0.5) / (df + 0.5)). A term the library lacks gets the highest value.
    pub fn idf(&self, terms: &[String]) -> Vec<f32> {
        let searcher = self.reader.searcher();
        let n = searcher.num_docs() as f64;
        let field = self.fields.text;
        terms
            .iter()
            .map(|t| {
                let df = searcher.doc_freq(&Term::from_field_text(field, t)).unwrap_or(0) as f64;
                (1.0 + (n - df + 0.5) / (df + 0.5)).ln() as f32
            })
            .collect()
    }

    /// Number of chunks in the committed index.
    pub fn len(&self) -> u64 {
        self.reader.searcher().num_docs()
    }

    /// Whether the index holds no chunk.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_chunk_scores_for_words_its_neighbours_hold() {
        let dir = tempfile::tempdir().unwrap();
        let ft = FullText::open(dir.path()).unwrap();
        let e = |c, t, before, after| TextEntry {
            chunk_id: c,
            doc_id: "d1",
            text: t,
            title: "",
            before,
            after,
            language: "eng",
        };
        let (first, second) = ("Vitamin D levels were measured", "in elderly patients in winter");
        ft.replace(
            &["d1".into()],
            &[
                e("c1", first, "", second),
                e("c2", second, first, ""),
                e("c3", "Unrelated notes on rainfall", second, ""),
            ],
        )
        .unwrap();
        let hits = ft.search("vitamin elderly", 5).unwrap();
        // Both halves of the split passage match both words; each ranks above the chunk that
        // only borders one of them.
        let ids: Vec<&str> = hits.iter().map(|(id, _)| id.as_str()).collect();
        assert_eq!(ids.len(), 3, "{hits:?}");
        assert!(ids[..2].contains(&"c1") && ids[..2].contains(&"c2"), "{hits:?}");
        assert_eq!(ids[2], "c3");
        // A chunk's own words count more than its neighbours': "winter" is c2's own word and
        // lies in the windows of c1 and c3.
        let winter = ft.search("winter", 5).unwrap();
        assert_eq!(winter.len(), 3, "{winter:?}");
        assert_eq!(winter[0].0, "c2");
        assert!(winter[0].1 > winter[1].1, "{winter:?}");
    }

    #[test]
    fn stems_replaces_and_rebuilds() {
        let dir = tempfile::tempdir().unwrap();
        let ft = FullText::open(dir.path()).unwrap();
        let e = |c, d, t| TextEntry {
            chunk_id: c,
            doc_id: d,
            text: t,
            title: "",
            before: "",
            after: "",
            language: "",
        };
        ft.replace(
            &["d1".into(), "d2".into()],
            &[e("c1", "d1", "Tracing the loops"), e("c2", "d2", "Gardening with roses")],
        )
        .unwrap();
        assert_eq!(ft.search("traces loop", 5).unwrap()[0].0, "c1");
        // Query syntax is not interpreted: operators and stray punctuation are just text.
        assert_eq!(ft.search("roses AND (", 5).unwrap()[0].0, "c2");
        assert_eq!(ft.search("-roses gardening:", 5).unwrap()[0].0, "c2");
        assert!(ft.search("the and of", 5).unwrap().is_empty(), "stop words alone match nothing");
        ft.replace(&["d1".into()], &[e("c3", "d1", "Other words")]).unwrap();
        assert!(ft.search("loops", 5).unwrap().is_empty());
        assert_eq!(ft.len(), 2);
        ft.rebuild(|add| add(&[e("c9", "d9", "only one")])).unwrap();
        assert_eq!(ft.len(), 1);
        drop(ft);
        let reopened = FullText::open(dir.path()).unwrap();
        assert_eq!(reopened.search("one", 5).unwrap()[0].0, "c9");
    }

    #[test]
    fn german_chunks_are_found_by_stems_spellings_and_compound_parts() {
        let dir = tempfile::tempdir().unwrap();
        let ft = FullText::open(dir.path()).unwrap();
        let e = |c, t, language| TextEntry {
            chunk_id: c,
            doc_id: "d1",
            text: t,
            title: "",
            before: "",
            after: "",
            language,
        };
        ft.replace(
            &["d1".into()],
            &[
                e("de1", "Die Kündigungsfrist beträgt drei Monate zum Quartalsende.", "deu"),
                e("de2", "Der Mietvertrag wurde in der Hauptstraße unterschrieben.", "deu"),
                e("de3", "Der Hund bellt laut in der Nacht.", "deu"),
                e("en1", "The notice period is three months; contracts are signed.", "eng"),
            ],
        )
        .unwrap();
        // Mostly English, as many libraries are: the German chunks must not be judged against
        // an average length the English ones make.
        let filler: Vec<String> = (0..40)
            .map(|i| {
                format!(
                    "Paragraph {i} of an English report on engines, im- plementation and costs."
                )
            })
            .collect();
        let ids: Vec<String> = (0..40).map(|i| format!("f{i}")).collect();
        let entries: Vec<TextEntry<'_>> = filler
            .iter()
            .zip(&ids)
            .map(|(t, id)| TextEntry { doc_id: "d2", ..e(id, t, "eng") })
            .collect();
        ft.replace(&["d2".into()], &entries).unwrap();
        let first = |q: &str| ft.search(q, 3).unwrap().first().map(|(id, _)| id.clone());
        // Compound heads and modifiers, umlaut and ß spellings, inflected forms.
        assert_eq!(first("Frist").as_deref(), Some("de1"));
        assert_eq!(first("Kündigung").as_deref(), Some("de1"));
        assert_eq!(first("Vertrag").as_deref(), Some("de2"));
        assert_eq!(first("Verträge").as_deref(), Some("de2"));
        assert_eq!(first("Hauptstrasse").as_deref(), Some("de2"));
        assert_eq!(first("Kuendigungsfrist").as_deref(), Some("de1"));
        // A compound in the question finds its part written as a word of its own.
        assert_eq!(first("Nachbarhund").as_deref(), Some("de3"));
        assert_eq!(first("Kündigungsfrist im Monat").as_deref(), Some("de1"));
        // English chunks keep the English analyzer.
        assert_eq!(first("contract signing").as_deref(), Some("en1"));
        // Term statistics per language.
        assert_eq!(ft.analyze("Verträge", TextLanguage::German), vec!["vertrag".to_owned()]);
        let de = ft.analyze("Monaten", TextLanguage::German);
        let idf = ft.idf(&de)[0];
        let missing = ft.idf(&["zzz".to_owned()])[0];
        assert!(idf < missing, "a German term the library holds is less rare: {idf} vs {missing}");
    }
}
