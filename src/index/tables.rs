//! The LanceDB side of the library: the `documents` and `chunks` tables, the source of truth
//! from which the full-text index can always be rebuilt.

use std::sync::Arc;

use arrow_array::{RecordBatch, RecordBatchIterator};
use futures::TryStreamExt;
use lancedb::index::Index;
use lancedb::index::vector::IvfHnswSqIndexBuilder;
use lancedb::query::{ExecutableQuery, QueryBase, Select};
use lancedb::{Connection, Table};

use super::IndexError;
use super::schema::{
    ChunkRow, DocumentRow, VECTOR, chunks_batch, chunks_from_batch, chunks_schema, documents_batch,
    documents_from_batch, documents_schema,
};

const DOCUMENTS: &str = "documents";
const CHUNKS: &str = "chunks";

/// The chunk columns a search hit needs: everything but the vector, which is large and
/// not shown.
const HIT_COLUMNS: &[&str] = &[
    "chunk_id",
    "doc_id",
    "doc_path",
    "ordinal",
    "text",
    "page_start",
    "page_end",
    "char_start",
    "char_end",
    "heading",
    "language",
];

/// From this many chunks on, lookups by chunk id use a B-tree index instead of a scan.
const ID_INDEX_THRESHOLD: usize = 10_000;

/// How many ids go into one `IN (...)` filter; keeps SQL text and plans small.
const IDS_PER_FILTER: usize = 512;

/// Open handles on the two tables.
#[derive(Clone)]
pub struct Tables {
    db: Connection,
    documents: Table,
    chunks: Table,
    dims: Option<usize>,
}

impl std::fmt::Debug for Tables {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tables").finish_non_exhaustive()
    }
}

impl Tables {
    /// Opens the tables in the LanceDB database at `uri` (a folder, or `s3://` with its
    /// object-store `options`), creating them when missing; chunks carry vectors of `dims`
    /// dimensions when given.
    pub async fn open(
        uri: &str,
        options: std::collections::HashMap<String, String>,
        dims: Option<usize>,
    ) -> Result<Self, IndexError> {
        let db = lancedb::connect(uri).storage_options(options).execute().await?;
        let documents = open_or_create(&db, DOCUMENTS, documents_schema()).await?;
        let chunks = open_or_create(&db, CHUNKS, chunks_schema(dims)).await?;
        Ok(Self { db, documents, chunks, dims })
    }

    /// Drops both tables (an empty library starting over with another embedder).
    pub async fn drop_all(&self) -> Result<(), IndexError> {
        for name in [DOCUMENTS, CHUNKS] {
            self.db.drop_table(name, &[]).await?;
        }
        Ok(())
    }

    /// The versions of the `documents` and `chunks` tables this handle reads.
    pub async fn versions(&self) -> Result<(u64, u64), IndexError> {
        Ok((self.documents.version().await?, self.chunks.version().await?))
    }

    /// The `limit` chunks nearest to `vector` by cosine distance, with their distances.
    pub async fn nearest(
        &self,
        vector: &[f32],
        limit: usize,
        doc_ids: Option<&[String]>,
    ) -> Result<Vec<(ChunkRow, f32)>, IndexError> {
        if self.dims.is_none() {
            return Err(IndexError::Corrupt("this library has no vectors".into()));
        }
        let mut query = self
            .chunks
            .query()
            .nearest_to(vector)?
            .distance_type(lancedb::DistanceType::Cosine)
            .select(Select::columns(&[HIT_COLUMNS, &["_distance"]].concat()))
            .limit(limit);
        if let Some(ids) = doc_ids {
            // A prefilter: the nearest chunks among these documents, not a cut of the global top.
            query = query.only_if(in_filter("doc_id", ids));
        }
        let batches: Vec<RecordBatch> = query.execute().await?.try_collect().await?;
        let mut res = Vec::new();
        for batch in &batches {
            let rows = chunks_from_batch(batch)?;
            let distances = batch
                .column_by_name("_distance")
                .and_then(|c| c.as_any().downcast_ref::<arrow_array::Float32Array>())
                .ok_or_else(|| IndexError::Corrupt("vector search returned no distances".into()))?;
            res.extend(rows.into_iter().zip(distances.values().iter().copied()));
        }
        Ok(res)
    }

    /// Every document row.
    pub async fn documents(&self) -> Result<Vec<DocumentRow>, IndexError> {
        self.documents_where(None).await
    }

    /// Document rows matching an SQL filter.
    pub async fn documents_where(
        &self,
        filter: Option<&str>,
    ) -> Result<Vec<DocumentRow>, IndexError> {
        let mut query = self.documents.query();
        if let Some(filter) = filter {
            query = query.only_if(filter);
        }
        let batches: Vec<RecordBatch> = query.execute().await?.try_collect().await?;
        let mut res = Vec::new();
        for batch in &batches {
            res.extend(documents_from_batch(batch)?);
        }
        Ok(res)
    }

    /// Inserts or replaces document rows by `doc_id`, in one transaction.
    pub async fn upsert_documents(&self, rows: &[DocumentRow]) -> Result<(), IndexError> {
        if rows.is_empty() {
            return Ok(());
        }
        let batch = documents_batch(rows)?;
        let mut merge = self.documents.merge_insert(&["doc_id"]);
        merge.when_matched_update_all(None).when_not_matched_insert_all();
        merge.execute(reader(batch)).await?;
        Ok(())
    }

    /// Appends document rows (for documents not in the table yet).
    pub async fn add_documents(&self, rows: &[DocumentRow]) -> Result<(), IndexError> {
        if rows.is_empty() {
            return Ok(());
        }
        self.documents.add(reader(documents_batch(rows)?)).execute().await?;
        Ok(())
    }

    /// Sets the state of documents `doc_ids` to `state` (a [`crate::api::DocumentState`] name).
    pub async fn set_state(&self, doc_ids: &[String], state: &str) -> Result<(), IndexError> {
        for ids in doc_ids.chunks(IDS_PER_FILTER) {
            self.documents
                .update()
                .only_if(in_filter("doc_id", ids))
                .column("state", sql_string(state))
                .execute()
                .await?;
        }
        Ok(())
    }

    /// Appends chunk rows (for documents that have none yet).
    pub async fn add_chunks(&self, rows: &[ChunkRow]) -> Result<(), IndexError> {
        if rows.is_empty() {
            return Ok(());
        }
        self.chunks.add(reader(chunks_batch(rows, self.dims)?)).execute().await?;
        Ok(())
    }

    /// Replaces all chunks of `doc_ids` with `rows` in one transaction, so a reader sees either
    /// the old chunks or the new ones, never a mix or none.
    pub async fn replace_chunks(
        &self,
        doc_ids: &[String],
        rows: &[ChunkRow],
    ) -> Result<(), IndexError> {
        if doc_ids.is_empty() {
            return Ok(());
        }
        if rows.is_empty() {
            return self.delete_chunks_of(doc_ids).await;
        }
        let batch = chunks_batch(rows, self.dims)?;
        // merge_insert deletes unmatched target rows only within one filter; with a very large
        // batch of documents the filter is long but still a single transaction.
        let filter = in_filter("doc_id", doc_ids);
        let mut merge = self.chunks.merge_insert(&["chunk_id"]);
        merge
            .when_matched_update_all(None)
            .when_not_matched_insert_all()
            .when_not_matched_by_source_delete(Some(filter));
        merge.execute(reader(batch)).await?;
        Ok(())
    }

    /// Deletes the chunks of `doc_ids`.
    pub async fn delete_chunks_of(&self, doc_ids: &[String]) -> Result<(), IndexError> {
        for ids in doc_ids.chunks(IDS_PER_FILTER) {
            self.chunks.delete(in_filter("doc_id", ids).as_str()).await?;
        }
        Ok(())
    }

    /// Deletes document rows (their chunks must be deleted first).
    pub async fn delete_documents(&self, doc_ids: &[String]) -> Result<(), IndexError> {
        for ids in doc_ids.chunks(IDS_PER_FILTER) {
            self.documents.delete(in_filter("doc_id", ids).as_str()).await?;
        }
        Ok(())
    }

    /// The chunks with the given ids, in no particular order.
    pub async fn chunks_by_id(&self, chunk_ids: &[String]) -> Result<Vec<ChunkRow>, IndexError> {
        let mut res = Vec::with_capacity(chunk_ids.len());
        for ids in chunk_ids.chunks(IDS_PER_FILTER) {
            res.extend(self.chunks_where(&in_filter("chunk_id", ids), None).await?);
        }
        Ok(res)
    }

    /// Chunk rows matching an SQL filter.
    pub async fn chunks_where(
        &self,
        filter: &str,
        limit: Option<usize>,
    ) -> Result<Vec<ChunkRow>, IndexError> {
        let mut query = self.chunks.query().only_if(filter).select(Select::columns(HIT_COLUMNS));
        if let Some(limit) = limit {
            query = query.limit(limit);
        }
        let batches: Vec<RecordBatch> = query.execute().await?.try_collect().await?;
        let mut res = Vec::new();
        for batch in &batches {
            res.extend(chunks_from_batch(batch)?);
        }
        Ok(res)
    }

    /// Streams every chunk to `each`, a batch at a time (for rebuilding the text index).
    pub async fn for_each_chunk(
        &self,
        mut each: impl FnMut(Vec<ChunkRow>) -> Result<(), IndexError>,
    ) -> Result<(), IndexError> {
        let mut stream = self.chunks.query().execute().await?;
        while let Some(batch) = stream.try_next().await? {
            each(chunks_from_batch(&batch)?)?;
        }
        Ok(())
    }

    /// Ids of the documents that have chunks (to find orphans).
    pub async fn chunk_doc_ids(&self) -> Result<std::collections::HashSet<String>, IndexError> {
        let mut stream = self.chunks.query().select(Select::columns(&["doc_id"])).execute().await?;
        let mut res = std::collections::HashSet::new();
        while let Some(batch) = stream.try_next().await? {
            let ids = batch
                .column_by_name("doc_id")
                .and_then(|c| c.as_any().downcast_ref::<arrow_array::StringArray>())
                .ok_or_else(|| IndexError::Corrupt("chunks.doc_id is missing".into()))?;
            res.extend(ids.iter().flatten().map(str::to_owned));
        }
        Ok(res)
    }

    /// Number of chunks.
    pub async fn count_chunks(&self) -> Result<u64, IndexError> {
        Ok(self.chunks.count_rows(None).await? as u64)
    }

    /// Builds an approximate-nearest-neighbour index on the vectors once the table holds
    /// `threshold` chunks (below that, exact search is fast enough and exact). Later rows are
    /// folded into it by [`Tables::optimize`]. Returns whether an index was built.
    pub async fn ensure_vector_index(&self, threshold: usize) -> Result<bool, IndexError> {
        let n_rows = self.chunks.count_rows(None).await?;
        let indices = self.chunks.list_indices().await?;
        let has_index =
            |column: &str| indices.iter().any(|i| i.columns.iter().any(|c| c == column));
        if n_rows >= ID_INDEX_THRESHOLD && !has_index("chunk_id") {
            let btree = Index::BTree(lancedb::index::scalar::BTreeIndexBuilder::default());
            self.chunks.create_index(&["chunk_id"], btree).execute().await?;
        }
        if self.dims.is_none() || n_rows < threshold || has_index(VECTOR) {
            return Ok(false);
        }
        let builder = IvfHnswSqIndexBuilder::default().distance_type(lancedb::DistanceType::Cosine);
        self.chunks.create_index(&[VECTOR], Index::IvfHnswSq(builder)).execute().await?;
        Ok(true)
    }

    /// Compacts small fragments and drops old versions; run after large writes.
    pub async fn optimize(&self) -> Result<(), IndexError> {
        use lancedb::table::OptimizeAction;
        for table in [&self.documents, &self.chunks] {
            table.optimize(OptimizeAction::All).await?;
        }
        Ok(())
    }
}

async fn open_or_create(
    db: &Connection,
    name: &str,
    schema: arrow_schema::SchemaRef,
) -> Result<Table, IndexError> {
    let names = db.table_names().execute().await?;
    if names.iter().any(|n| n == name) {
        let table = db.open_table(name).execute().await?;
        let actual = table.schema().await?;
        if actual.fields().len() != schema.fields().len()
            || actual.fields().iter().zip(schema.fields()).any(|(a, b)| a.name() != b.name())
        {
            return Err(IndexError::Corrupt(format!(
                "table {name} has columns the library format does not expect"
            )));
        }
        Ok(table)
    } else {
        Ok(db.create_empty_table(name, schema).execute().await?)
    }
}

fn reader(batch: RecordBatch) -> Box<dyn arrow_array::RecordBatchReader + Send> {
    let schema = batch.schema();
    Box::new(RecordBatchIterator::new(vec![Ok(batch)], Arc::clone(&schema)))
}

/// `column IN ('a', 'b')` with the values quoted as SQL string literals.
pub fn in_filter(column: &str, values: &[String]) -> String {
    let quoted: Vec<String> = values.iter().map(|v| sql_string(v)).collect();
    format!("{column} IN ({})", quoted.join(", "))
}

/// A value as an SQL string literal.
pub fn sql_string(value: &str) -> String {
    format!("'{}'", value.replace('\'', "''"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filters_quote_values() {
        assert_eq!(in_filter("doc_id", &["a".into(), "o'b".into()]), "doc_id IN ('a', 'o''b')");
    }
}
