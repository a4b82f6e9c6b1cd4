//! Remembers the vectors of passage sentences. Evidence scoring embeds every sentence of the
//! retrieved passages for every question, and the next question about the same documents
//! brings the same passages back: with a 12-layer embedder (multilingual-e5-small) that
//! re-embedding is most of the time an evidence answer takes.

use std::num::NonZeroUsize;
use std::sync::{Arc, Mutex};

use lru::LruCache;

use super::{EmbedError, Embedder, Embedding};

/// Sentences remembered by default: about 1.5 KB each for a 384-dimension model, so ~25 MB.
pub const DEFAULT_CAPACITY: usize = 16_384;

/// A bounded, least-recently-used memory of passage vectors by text, for one embedder.
#[derive(Debug)]
pub struct SentenceVectors {
    vectors: Mutex<LruCache<String, Embedding>>,
}

impl SentenceVectors {
    /// An empty memory of at most `capacity` sentences (at least one).
    pub fn new(capacity: usize) -> Self {
        let capacity = NonZeroUsize::new(capacity.max(1)).unwrap_or(NonZeroUsize::MIN);
        Self { vectors: Mutex::new(LruCache::new(capacity)) }
    }

    /// `embedder` with this memory in front of its passage embedding.
    pub fn in_front_of(self: &Arc<Self>, embedder: Arc<dyn Embedder>) -> Arc<dyn Embedder> {
        Arc::new(Remembering { inner: embedder, memory: Arc::clone(self) })
    }

    fn lookup(&self, texts: &[&str]) -> Vec<Option<Embedding>> {
        match self.vectors.lock() {
            Ok(mut cache) => texts.iter().map(|t| cache.get(*t).cloned()).collect(),
            // A poisoned memory is only a slower answer.
            Err(_) => vec![None; texts.len()],
        }
    }

    fn remember(&self, texts: &[&str], vectors: &[Embedding]) {
        if let Ok(mut cache) = self.vectors.lock() {
            for (text, vector) in texts.iter().zip(vectors) {
                cache.put((*text).to_owned(), vector.clone());
            }
        }
    }

    /// Sentences remembered now.
    pub fn len(&self) -> usize {
        self.vectors.lock().map_or(0, |c| c.len())
    }

    /// Whether nothing is remembered.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

struct Remembering {
    inner: Arc<dyn Embedder>,
    memory: Arc<SentenceVectors>,
}

impl Embedder for Remembering {
    fn model_id(&self) -> &str {
        self.inner.model_id()
    }

    fn dimensions(&self) -> usize {
        self.inner.dimensions()
    }

    fn max_input_tokens(&self) -> usize {
        self.inner.max_input_tokens()
    }

    fn embed_documents(&self, texts: &[&str]) -> Result<Vec<Embedding>, EmbedError> {
        let mut found = self.memory.lookup(texts);
        let missing: Vec<usize> = (0..texts.len()).filter(|&i| found[i].is_none()).collect();
        if !missing.is_empty() {
            let missing_texts: Vec<&str> = missing.iter().map(|&i| texts[i]).collect();
            // One batch for every sentence not remembered, as without the memory.
            let vectors = self.inner.embed_documents(&missing_texts)?;
            self.memory.remember(&missing_texts, &vectors);
            for (i, vector) in missing.into_iter().zip(vectors) {
                found[i] = Some(vector);
            }
        }
        found
            .into_iter()
            .map(|v| v.ok_or_else(|| EmbedError::Model("a sentence got no vector".into())))
            .collect()
    }

    fn embed_query(&self, text: &str) -> Result<Embedding, EmbedError> {
        self.inner.embed_query(text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// Counts the texts it is asked to embed; a text's vector is its length.
    struct Counting(AtomicUsize);

    impl Embedder for Counting {
        fn model_id(&self) -> &str {
            "counting"
        }
        fn dimensions(&self) -> usize {
            1
        }
        fn max_input_tokens(&self) -> usize {
            512
        }
        fn embed_documents(&self, texts: &[&str]) -> Result<Vec<Embedding>, EmbedError> {
            self.0.fetch_add(texts.len(), Ordering::SeqCst);
            Ok(texts.iter().map(|t| vec![t.len() as f32]).collect())
        }
        fn embed_query(&self, text: &str) -> Result<Embedding, EmbedError> {
            Ok(vec![text.len() as f32])
        }
    }

    #[test]
    fn remembered_sentences_are_not_embedded_again_and_order_is_kept() {
        let counting = Arc::new(Counting(AtomicUsize::new(0)));
        let memory = Arc::new(SentenceVectors::new(3));
        let embedder = memory.in_front_of(counting.clone());
        assert_eq!(embedder.embed_documents(&["a", "bb"]).unwrap(), vec![vec![1.0], vec![2.0]]);
        assert_eq!(counting.0.load(Ordering::SeqCst), 2);
        // "bb" is remembered; only "ccc" is embedded, and the order is the caller's.
        let vectors = embedder.embed_documents(&["ccc", "bb"]).unwrap();
        assert_eq!(vectors, vec![vec![3.0], vec![2.0]]);
        assert_eq!(counting.0.load(Ordering::SeqCst), 3);
        // Bounded: a fourth sentence pushes out the least recently used one ("a").
        embedder.embed_documents(&["dddd"]).unwrap();
        assert_eq!(memory.len(), 3);
        embedder.embed_documents(&["a"]).unwrap();
        assert_eq!(counting.0.load(Ordering::SeqCst), 5);
    }
}
