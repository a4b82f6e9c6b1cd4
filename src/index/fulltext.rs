//! The tantivy side of the library: a BM25 index over chunk text, the chunk's window (the chunk
//! with its neighbours) and document titles, with an English analyzer (stop words, Snowball
//! stemming). Derived from the `chunks` table and rebuildable from it at any time.

use std::path::Path;
use std::sync::Mutex;

use tantivy::collector::TopDocs;
use tantivy::query::{BooleanQuery, BoostQuery, Occur, Query, TermQuery};
use tantivy::schema::{
    Field, IndexRecordOption, STORED, STRING, Schema, TextFieldIndexing, TextOptions, Value,
};
use tantivy::tokenizer::{
    Language, LowerCaser, RemoveLongFilter, SimpleTokenizer, Stemmer, StopWordFilter, TextAnalyzer,
};
use tantivy::{Index, IndexReader, IndexWriter, ReloadPolicy, TantivyDocument, Term};

use super::IndexError;

const ANALYZER: &str = "quarry_en";
/// Weight of a match in the document title against one in the chunk text.
const TITLE_BOOST: f32 = 0.5;
/// Weight of a match in the chunk's window (previous, own and next chunk text) against one in
/// the chunk text. A passage split at a chunk boundary still scores for the words its other
/// half holds: on SciFact (200-token chunks) text-only nDCG@10 goes from 0.668 to 0.683 and
/// hybrid from 0.722 to 0.725. Weights 1.5 and 2 scored within 0.001 of 1; a window of the
/// neighbours without the chunk itself lowered it (0.633-0.660 in a bm25s simulation).
const WINDOW_BOOST: f32 = 1.0;
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
}

#[derive(Debug, Clone, Copy)]
struct Fields {
    chunk_id: Field,
    doc_id: Field,
    text: Field,
    window: Field,
    title: Field,
}

impl Fields {
    /// The tantivy document of one chunk.
    fn document(&self, entry: &TextEntry<'_>) -> TantivyDocument {
        let mut doc = TantivyDocument::default();
        doc.add_text(self.chunk_id, entry.chunk_id);
        doc.add_text(self.doc_id, entry.doc_id);
        doc.add_text(self.text, entry.text);
        // Three values of one field: BM25 sees them as one text of their summed length.
        for part in [entry.before, entry.text, entry.after] {
            if !part.is_empty() {
                doc.add_text(self.window, part);
            }
        }
        doc.add_text(self.title, entry.title);
        doc
    }
}

/// The full-text index.
pub struct FullText {
    index: Index,
    reader: IndexReader,
    writer: Mutex<Option<IndexWriter>>,
    fields: Fields,
}

impl std::fmt::Debug for FullText {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FullText").finish_non_exhaustive()
    }
}

fn schema() -> Schema {
    let mut builder = Schema::builder();
    builder.add_text_field("chunk_id", STRING | STORED);
    builder.add_text_field("doc_id", STRING);
    let analyzed = TextOptions::default().set_indexing_options(
        TextFieldIndexing::default()
            .set_tokenizer(ANALYZER)
            .set_index_option(IndexRecordOption::WithFreqsAndPositions),
    );
    builder.add_text_field("text", analyzed.clone());
    builder.add_text_field("window", analyzed.clone());
    builder.add_text_field("title", analyzed);
    builder.build()
}

fn analyzer() -> TextAnalyzer {
    let builder = TextAnalyzer::builder(SimpleTokenizer::default())
        .filter(RemoveLongFilter::limit(40))
        .filter(LowerCaser);
    match StopWordFilter::new(Language::English) {
        Some(stop) => builder.filter(stop).filter(Stemmer::new(Language::English)).build(),
        None => builder.filter(Stemmer::new(Language::English)).build(),
    }
}

impl FullText {
    /// Opens the index in `dir`, creating it when missing. A stored schema that differs from
    /// ours is reported as corrupt (the caller rebuilds).
    pub fn open(dir: &Path) -> Result<Self, IndexError> {
        std::fs::create_dir_all(dir)
            .map_err(|e| IndexError::Corrupt(format!("{}: {e}", dir.display())))?;
        let directory = tantivy::directory::MmapDirectory::open(dir)
            .map_err(|e| IndexError::Corrupt(format!("{}: {e}", dir.display())))?;
        let index = Index::open_or_create(directory, schema())?;
        index.tokenizers().register(ANALYZER, analyzer());
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
        };
        Ok(Self { index, reader, writer: Mutex::new(None), fields })
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
        self.with_writer(|writer| {
            for doc_id in doc_ids {
                writer.delete_term(Term::from_field_text(fields.doc_id, doc_id));
            }
            for entry in entries {
                writer.add_document(fields.document(entry))?;
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
        self.with_writer(|writer| {
            writer.delete_all_documents()?;
            let mut add = |entries: &[TextEntry<'_>]| -> Result<(), IndexError> {
                for entry in entries {
                    writer.add_document(fields.document(entry))?;
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
    /// The query is a bag of words, analysed like the indexed text: no query syntax, so a
    /// hyphen, colon or quote in a question never turns into an operator or a phrase.
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
        let mut analyzer = self.index.tokenizers().get(ANALYZER).unwrap_or_else(analyzer);
        let mut stream = analyzer.token_stream(query);
        let mut terms = Vec::new();
        while stream.advance() {
            terms.push(stream.token().text.clone());
        }
        let mut clauses: Vec<(Occur, Box<dyn Query>)> = Vec::new();
        for (field, boost) in [
            (self.fields.text, 1.0),
            (self.fields.window, WINDOW_BOOST),
            (self.fields.title, TITLE_BOOST),
        ] {
            for term in &terms {
                let query = TermQuery::new(
                    Term::from_field_text(field, term),
                    IndexRecordOption::WithFreqs,
                );
                clauses.push((Occur::Should, Box::new(BoostQuery::new(Box::new(query), boost))));
            }
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
        let searcher = self.reader.searcher();
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

    /// The distinct terms of `text` as the index analyses it, in order of first appearance.
    pub fn analyze(&self, text: &str) -> Vec<String> {
        let mut analyzer = self.index.tokenizers().get(ANALYZER).unwrap_or_else(analyzer);
        let mut stream = analyzer.token_stream(text);
        let mut terms: Vec<String> = Vec::new();
        while stream.advance() {
            let term = &stream.token().text;
            if !terms.contains(term) {
                terms.push(term.clone());
            }
        }
        terms
    }

    /// BM25's inverse document frequency of each term over chunk text:
    /// ln(1 + (N - df + 0.5) / (df + 0.5)). A term the library lacks gets the highest value.
    pub fn idf(&self, terms: &[String]) -> Vec<f32> {
        let searcher = self.reader.searcher();
        let n = searcher.num_docs() as f64;
        terms
            .iter()
            .map(|t| {
                let df = searcher.doc_freq(&Term::from_field_text(self.fields.text, t)).unwrap_or(0)
                    as f64;
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
}
