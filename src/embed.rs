//! Embed stage: turns text into vectors. The [`Embedder`] trait keeps documents and queries
//! apart because asymmetric models (E5, BGE) want different prefixes for the two.

pub mod bert_encoder;
pub mod candle_bert;
pub mod sentence_cache;
pub mod weights;

/// A unit-length embedding vector.
pub type Embedding = Vec<f32>;

/// Why embedding failed.
#[derive(Debug, thiserror::Error)]
pub enum EmbedError {
    /// The model folder is missing a file or holds something unreadable.
    #[error("cannot load embedding model from {path}: {message}")]
    Load {
        /// The model folder or file.
        path: String,
        /// What is wrong.
        message: String,
    },
    /// Tokenizing the input failed.
    #[error("tokenizer: {0}")]
    Tokenize(String),
    /// The model computation failed.
    #[error("embedding model: {0}")]
    Model(String),
}

impl From<EmbedError> for crate::error::Error {
    fn from(err: EmbedError) -> Self {
        match err {
            EmbedError::Load { .. } => crate::error::Error::user(err.to_string()),
            other => crate::error::Error::internal("embedding", other),
        }
    }
}

/// Turns text into vectors. Implementations are blocking and CPU-bound.
pub trait Embedder: Send + Sync {
    /// Stable model id, recorded in `library.json`.
    fn model_id(&self) -> &str;
    /// Length of each vector.
    fn dimensions(&self) -> usize;
    /// Longest input in tokens; longer inputs are truncated.
    fn max_input_tokens(&self) -> usize;
    /// Embeds passages for the index.
    fn embed_documents(&self, texts: &[&str]) -> Result<Vec<Embedding>, EmbedError>;
    /// Embeds a search query.
    fn embed_query(&self, text: &str) -> Result<Embedding, EmbedError>;
}

/// Cosine similarity of two vectors (1 for identical directions).
pub fn cosine(a: &[f32], b: &[f32]) -> f32 {
    let dot: f32 = a.iter().zip(b).map(|(x, y)| x * y).sum();
    let na: f32 = a.iter().map(|x| x * x).sum::<f32>().sqrt();
    let nb: f32 = b.iter().map(|x| x * x).sum::<f32>().sqrt();
    if na == 0.0 || nb == 0.0 { 0.0 } else { dot / (na * nb) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cosine_of_known_vectors() {
        assert!((cosine(&[1.0, 0.0], &[1.0, 0.0]) - 1.0).abs() < 1e-6);
        assert!(cosine(&[1.0, 0.0], &[0.0, 2.0]).abs() < 1e-6);
        // (1*2 + 2*1) / (sqrt(5) * sqrt(5)) = 4/5
        assert!((cosine(&[1.0, 2.0], &[2.0, 1.0]) - 0.8).abs() < 1e-6);
        assert_eq!(cosine(&[0.0, 0.0], &[1.0, 1.0]), 0.0);
    }
}
