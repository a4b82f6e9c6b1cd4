//! Arrow schemas of the `documents` and `chunks` tables and the conversions between rows and
//! record batches. Column names here are the storage contract of DESIGN.md §3.

use std::sync::Arc;

use arrow_array::types::Float32Type;
use arrow_array::{
    Array, ArrayRef, FixedSizeListArray, Float32Array, Int64Array, RecordBatch, StringArray,
    UInt32Array, UInt64Array,
};
use arrow_schema::{DataType, Field, Schema, SchemaRef};

use super::IndexError;
use crate::api::{DocumentState, FileKind};

/// One row of the `documents` table.
#[derive(Debug, Clone, PartialEq)]
pub struct DocumentRow {
    /// Document id (derived from the path).
    pub doc_id: String,
    /// Absolute path.
    pub path: String,
    /// File kind.
    pub kind: FileKind,
    /// Size in bytes when last seen.
    pub size: u64,
    /// Modification time when last seen, ns since the epoch.
    pub mtime_ns: i64,
    /// SHA-256 of the content, hex.
    pub sha256: String,
    /// Index state.
    pub state: DocumentState,
    /// Failure reason.
    pub error: Option<String>,
    /// Extraction warnings.
    pub warnings: Vec<String>,
    /// Page count.
    pub pages: u32,
    /// Chunk count.
    pub chunks: u32,
    /// Extractor name.
    pub extractor: String,
    /// Document title.
    pub title: Option<String>,
    /// RFC 3339 time of indexing.
    pub indexed_at: Option<String>,
}

/// One row of the `chunks` table.
#[derive(Debug, Clone, PartialEq)]
pub struct ChunkRow {
    /// Chunk id.
    pub chunk_id: String,
    /// Owning document.
    pub doc_id: String,
    /// Path of the owning document (kept here so hits need no join).
    pub doc_path: String,
    /// Position in the document.
    pub ordinal: u32,
    /// Text.
    pub text: String,
    /// First page.
    pub page_start: u32,
    /// Last page.
    pub page_end: u32,
    /// Character span start.
    pub char_start: u64,
    /// Character span end.
    pub char_end: u64,
    /// Heading path.
    pub heading: String,
    /// Detected language.
    pub language: String,
    /// Embedding, when the library has an embedder.
    pub vector: Option<Vec<f32>>,
}

/// Name of the vector column.
pub const VECTOR: &str = "vector";

/// Schema of the `documents` table.
pub fn documents_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("doc_id", DataType::Utf8, false),
        Field::new("path", DataType::Utf8, false),
        Field::new("kind", DataType::Utf8, false),
        Field::new("size", DataType::UInt64, false),
        Field::new("mtime_ns", DataType::Int64, false),
        Field::new("sha256", DataType::Utf8, false),
        Field::new("state", DataType::Utf8, false),
        Field::new("error", DataType::Utf8, true),
        Field::new("warnings", DataType::Utf8, false),
        Field::new("pages", DataType::UInt32, false),
        Field::new("chunks", DataType::UInt32, false),
        Field::new("extractor", DataType::Utf8, false),
        Field::new("title", DataType::Utf8, true),
        Field::new("indexed_at", DataType::Utf8, true),
    ]))
}

/// Schema of the `chunks` table; with `dims`, a vector column of that many dimensions.
pub fn chunks_schema(dims: Option<usize>) -> SchemaRef {
    let mut fields = vec![
        Field::new("chunk_id", DataType::Utf8, false),
        Field::new("doc_id", DataType::Utf8, false),
        Field::new("doc_path", DataType::Utf8, false),
        Field::new("ordinal", DataType::UInt32, false),
        Field::new("text", DataType::Utf8, false),
        Field::new("page_start", DataType::UInt32, false),
        Field::new("page_end", DataType::UInt32, false),
        Field::new("char_start", DataType::UInt64, false),
        Field::new("char_end", DataType::UInt64, false),
        Field::new("heading", DataType::Utf8, false),
        Field::new("language", DataType::Utf8, false),
    ];
    if let Some(dims) = dims {
        fields.push(Field::new(VECTOR, vector_type(dims), true));
    }
    Arc::new(Schema::new(fields))
}

fn vector_type(dims: usize) -> DataType {
    DataType::FixedSizeList(Arc::new(Field::new("item", DataType::Float32, true)), dims as i32)
}

fn strings<'a>(values: impl Iterator<Item = &'a str>) -> ArrayRef {
    Arc::new(StringArray::from_iter_values(values))
}

fn optional_strings<'a>(values: impl Iterator<Item = Option<&'a str>>) -> ArrayRef {
    Arc::new(values.collect::<StringArray>())
}

/// Builds a record batch of document rows.
pub fn documents_batch(rows: &[DocumentRow]) -> Result<RecordBatch, IndexError> {
    let warnings: Vec<String> = rows
        .iter()
        .map(|r| serde_json::to_string(&r.warnings).unwrap_or_else(|_| "[]".into()))
        .collect();
    let columns: Vec<ArrayRef> = vec![
        strings(rows.iter().map(|r| r.doc_id.as_str())),
        strings(rows.iter().map(|r| r.path.as_str())),
        strings(rows.iter().map(|r| r.kind.as_str())),
        Arc::new(UInt64Array::from_iter_values(rows.iter().map(|r| r.size))),
        Arc::new(Int64Array::from_iter_values(rows.iter().map(|r| r.mtime_ns))),
        strings(rows.iter().map(|r| r.sha256.as_str())),
        strings(rows.iter().map(|r| r.state.as_str())),
        optional_strings(rows.iter().map(|r| r.error.as_deref())),
        strings(warnings.iter().map(String::as_str)),
        Arc::new(UInt32Array::from_iter_values(rows.iter().map(|r| r.pages))),
        Arc::new(UInt32Array::from_iter_values(rows.iter().map(|r| r.chunks))),
        strings(rows.iter().map(|r| r.extractor.as_str())),
        optional_strings(rows.iter().map(|r| r.title.as_deref())),
        optional_strings(rows.iter().map(|r| r.indexed_at.as_deref())),
    ];
    Ok(RecordBatch::try_new(documents_schema(), columns)?)
}

/// Builds a record batch of chunk rows; with `dims`, every row must carry a vector that long.
pub fn chunks_batch(rows: &[ChunkRow], dims: Option<usize>) -> Result<RecordBatch, IndexError> {
    let mut columns: Vec<ArrayRef> = vec![
        strings(rows.iter().map(|r| r.chunk_id.as_str())),
        strings(rows.iter().map(|r| r.doc_id.as_str())),
        strings(rows.iter().map(|r| r.doc_path.as_str())),
        Arc::new(UInt32Array::from_iter_values(rows.iter().map(|r| r.ordinal))),
        strings(rows.iter().map(|r| r.text.as_str())),
        Arc::new(UInt32Array::from_iter_values(rows.iter().map(|r| r.page_start))),
        Arc::new(UInt32Array::from_iter_values(rows.iter().map(|r| r.page_end))),
        Arc::new(UInt64Array::from_iter_values(rows.iter().map(|r| r.char_start))),
        Arc::new(UInt64Array::from_iter_values(rows.iter().map(|r| r.char_end))),
        strings(rows.iter().map(|r| r.heading.as_str())),
        strings(rows.iter().map(|r| r.language.as_str())),
    ];
    if let Some(dims) = dims {
        for row in rows {
            let len = row.vector.as_ref().map_or(0, Vec::len);
            if len != dims {
                return Err(IndexError::Corrupt(format!(
                    "chunk {} has a vector of {len} dimensions, the library uses {dims}",
                    row.chunk_id
                )));
            }
        }
        let vectors = FixedSizeListArray::from_iter_primitive::<Float32Type, _, _>(
            rows.iter().map(|r| {
                r.vector.as_ref().map(|v| v.iter().copied().map(Some).collect::<Vec<_>>())
            }),
            dims as i32,
        );
        columns.push(Arc::new(vectors));
    }
    Ok(RecordBatch::try_new(chunks_schema(dims), columns)?)
}

/// Typed access to the columns of a batch read back from a table.
struct Columns<'a>(&'a RecordBatch);

impl<'a> Columns<'a> {
    fn get<T: Array + 'static>(&self, name: &str) -> Result<&'a T, IndexError> {
        self.0
            .column_by_name(name)
            .and_then(|c| c.as_any().downcast_ref::<T>())
            .ok_or_else(|| IndexError::Corrupt(format!("column {name} is missing or mistyped")))
    }

    fn str(&self, name: &str) -> Result<&'a StringArray, IndexError> {
        self.get::<StringArray>(name)
    }
}

fn opt(array: &StringArray, idx: usize) -> Option<String> {
    (!array.is_null(idx)).then(|| array.value(idx).to_owned())
}

/// Reads document rows out of a batch with the `documents` schema.
pub fn documents_from_batch(batch: &RecordBatch) -> Result<Vec<DocumentRow>, IndexError> {
    let cols = Columns(batch);
    let (doc_id, path, kind, sha256, state) = (
        cols.str("doc_id")?,
        cols.str("path")?,
        cols.str("kind")?,
        cols.str("sha256")?,
        cols.str("state")?,
    );
    let (error, warnings, extractor, title, indexed_at) = (
        cols.str("error")?,
        cols.str("warnings")?,
        cols.str("extractor")?,
        cols.str("title")?,
        cols.str("indexed_at")?,
    );
    let size = cols.get::<UInt64Array>("size")?;
    let mtime = cols.get::<Int64Array>("mtime_ns")?;
    let pages = cols.get::<UInt32Array>("pages")?;
    let chunks = cols.get::<UInt32Array>("chunks")?;
    let mut res = Vec::with_capacity(batch.num_rows());
    for idx in 0..batch.num_rows() {
        res.push(DocumentRow {
            doc_id: doc_id.value(idx).to_owned(),
            path: path.value(idx).to_owned(),
            kind: FileKind::parse(kind.value(idx))
                .ok_or_else(|| IndexError::Corrupt(format!("unknown kind {}", kind.value(idx))))?,
            size: size.value(idx),
            mtime_ns: mtime.value(idx),
            sha256: sha256.value(idx).to_owned(),
            state: DocumentState::parse(state.value(idx)).ok_or_else(|| {
                IndexError::Corrupt(format!("unknown state {}", state.value(idx)))
            })?,
            error: opt(error, idx),
            warnings: serde_json::from_str(warnings.value(idx)).unwrap_or_default(),
            pages: pages.value(idx),
            chunks: chunks.value(idx),
            extractor: extractor.value(idx).to_owned(),
            title: opt(title, idx),
            indexed_at: opt(indexed_at, idx),
        });
    }
    Ok(res)
}

/// Reads chunk rows out of a batch with the `chunks` schema.
pub fn chunks_from_batch(batch: &RecordBatch) -> Result<Vec<ChunkRow>, IndexError> {
    let cols = Columns(batch);
    let (chunk_id, doc_id, doc_path, text, heading, language) = (
        cols.str("chunk_id")?,
        cols.str("doc_id")?,
        cols.str("doc_path")?,
        cols.str("text")?,
        cols.str("heading")?,
        cols.str("language")?,
    );
    let ordinal = cols.get::<UInt32Array>("ordinal")?;
    let page_start = cols.get::<UInt32Array>("page_start")?;
    let page_end = cols.get::<UInt32Array>("page_end")?;
    let char_start = cols.get::<UInt64Array>("char_start")?;
    let char_end = cols.get::<UInt64Array>("char_end")?;
    let vectors =
        batch.column_by_name(VECTOR).and_then(|c| c.as_any().downcast_ref::<FixedSizeListArray>());
    let mut res = Vec::with_capacity(batch.num_rows());
    for idx in 0..batch.num_rows() {
        res.push(ChunkRow {
            chunk_id: chunk_id.value(idx).to_owned(),
            doc_id: doc_id.value(idx).to_owned(),
            doc_path: doc_path.value(idx).to_owned(),
            ordinal: ordinal.value(idx),
            text: text.value(idx).to_owned(),
            page_start: page_start.value(idx),
            page_end: page_end.value(idx),
            char_start: char_start.value(idx),
            char_end: char_end.value(idx),
            heading: heading.value(idx).to_owned(),
            language: language.value(idx).to_owned(),
            vector: vectors.filter(|v| !v.is_null(idx)).and_then(|v| {
                let values = v.value(idx);
                values.as_any().downcast_ref::<Float32Array>().map(|f| f.values().to_vec())
            }),
        });
    }
    Ok(res)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_round_trip_through_batches() {
        let doc = DocumentRow {
            doc_id: "d".into(),
            path: "/x/a.pdf".into(),
            kind: FileKind::Pdf,
            size: 10,
            mtime_ns: -5,
            sha256: "ab".into(),
            state: DocumentState::Failed,
            error: Some("encrypted".into()),
            warnings: vec!["w1".into(), "w\"2".into()],
            pages: 3,
            chunks: 0,
            extractor: "pdf".into(),
            title: None,
            indexed_at: Some("2026-01-01T00:00:00Z".into()),
        };
        let batch = documents_batch(std::slice::from_ref(&doc)).unwrap();
        assert_eq!(documents_from_batch(&batch).unwrap(), vec![doc]);
        let chunk = ChunkRow {
            chunk_id: "c".into(),
            doc_id: "d".into(),
            doc_path: "/x/a.pdf".into(),
            ordinal: 1,
            text: "Grüße".into(),
            page_start: 2,
            page_end: 2,
            char_start: 7,
            char_end: 12,
            heading: "A > B".into(),
            language: "deu".into(),
            vector: None,
        };
        let batch = chunks_batch(std::slice::from_ref(&chunk), None).unwrap();
        assert_eq!(chunks_from_batch(&batch).unwrap(), vec![chunk.clone()]);
        let with_vector = ChunkRow { vector: Some(vec![0.5, -1.0, 2.0]), ..chunk };
        let batch = chunks_batch(std::slice::from_ref(&with_vector), Some(3)).unwrap();
        assert_eq!(chunks_from_batch(&batch).unwrap(), vec![with_vector.clone()]);
        let err = chunks_batch(&[with_vector], Some(4)).unwrap_err();
        assert!(err.to_string().contains("3 dimensions"), "{err}");
    }
}
