//! A library on S3-compatible object storage: the small files kept beside its LanceDB tables
//! (`library.json`, OCR word boxes) and the writer lease that lets exactly one machine write.
//!
//! The lease is an object, `writer.lease`, created only when absent (`If-None-Match: *`) and
//! renewed or taken over only when unchanged since it was read (`If-Match: <etag>`), so two
//! machines can never both believe they hold it. It names its holder and an expiry; the holder
//! renews it well before then. A writer that dies leaves a lease that expires, and the next
//! writer takes it over. One that cannot renew in time (a network partition, a suspended
//! laptop) learns it lost the lease and refuses to write further.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use lance_io::object_store::{ObjectStoreParams, StorageOptionsAccessor};
use object_store::path::Path as ObjectPath;
use object_store::{ObjectStore, ObjectStoreExt, PutMode, PutOptions, PutPayload, UpdateVersion};
use serde::{Deserialize, Serialize};
use tracing::{info, warn};

use super::IndexError;
use crate::config::RemoteLibrary;
use crate::error::{Error, Result};

/// The lease object's name under the library's prefix.
const LEASE: &str = "writer.lease";

/// How long a lease lasts without renewal, unless the library says otherwise.
pub const DEFAULT_LEASE_SECONDS: u64 = 60;

/// The library's objects other than the tables, addressed by names relative to its prefix.
#[derive(Clone)]
pub struct RemoteFiles {
    store: Arc<dyn ObjectStore>,
    root: ObjectPath,
    uri: String,
}

impl std::fmt::Debug for RemoteFiles {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RemoteFiles").field("uri", &self.uri).finish_non_exhaustive()
    }
}

/// Object-store options as LanceDB takes them.
pub fn storage_options(library: &RemoteLibrary) -> HashMap<String, String> {
    library.storage_options.iter().map(|(k, v)| (k.clone(), v.clone())).collect()
}

impl RemoteFiles {
    /// Connects to the bucket the way LanceDB does (same credentials chain, endpoint and
    /// options), so the tables and these files are reached alike.
    pub async fn open(library: &RemoteLibrary) -> Result<Self> {
        let params = ObjectStoreParams {
            storage_options_accessor: Some(Arc::new(StorageOptionsAccessor::with_static_options(
                storage_options(library),
            ))),
            ..Default::default()
        };
        let registry = Arc::new(lance_io::object_store::ObjectStoreRegistry::default());
        let (store, root) = lance_io::object_store::ObjectStore::from_uri_and_params(
            registry,
            &library.uri,
            &params,
        )
        .await
        .map_err(|e| remote_error(&library.uri, "connect", e))?;
        let files = Self { store: store.inner.clone(), root, uri: library.uri.clone() };
        // One listing request up front: the bucket exists, the credentials work and the server
        // answers (a missing object and a missing bucket both read as "not found" otherwise).
        files
            .store
            .list_with_delimiter(Some(&files.root))
            .await
            .map_err(|e| remote_error(&files.uri, "list", e))?;
        Ok(files)
    }

    /// The library's address (`s3://bucket/prefix`).
    pub fn uri(&self) -> &str {
        &self.uri
    }

    fn path(&self, name: &str) -> ObjectPath {
        name.split('/').fold(self.root.clone(), |path, part| path.join(part))
    }

    /// The object `name`'s bytes and version; `None` when there is no such object.
    async fn read_versioned(&self, name: &str) -> Result<Option<(Vec<u8>, UpdateVersion)>> {
        let path = self.path(name);
        let got = match self.store.get(&path).await {
            Ok(got) => got,
            Err(object_store::Error::NotFound { .. }) => return Ok(None),
            Err(e) => return Err(remote_error(&self.uri, name, e)),
        };
        let version =
            UpdateVersion { e_tag: got.meta.e_tag.clone(), version: got.meta.version.clone() };
        let bytes = got.bytes().await.map_err(|e| remote_error(&self.uri, name, e))?;
        Ok(Some((bytes.to_vec(), version)))
    }

    /// The object `name`'s bytes; `None` when there is no such object.
    pub async fn read(&self, name: &str) -> Result<Option<Vec<u8>>> {
        Ok(self.read_versioned(name).await?.map(|(bytes, _)| bytes))
    }

    /// Writes the object `name` whole (readers see the old or the new bytes, never a mix).
    pub async fn write(&self, name: &str, bytes: Vec<u8>) -> Result<()> {
        self.store
            .put(&self.path(name), PutPayload::from(bytes))
            .await
            .map_err(|e| remote_error(&self.uri, name, e))?;
        Ok(())
    }

    /// Removes the object `name` (nothing to do when it is absent).
    pub async fn delete(&self, name: &str) -> Result<()> {
        match self.store.delete(&self.path(name)).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(remote_error(&self.uri, name, e)),
        }
    }

    async fn put_conditional(
        &self,
        name: &str,
        bytes: Vec<u8>,
        mode: PutMode,
    ) -> std::result::Result<UpdateVersion, object_store::Error> {
        let opts = PutOptions { mode, ..Default::default() };
        let put = self.store.put_opts(&self.path(name), PutPayload::from(bytes), opts).await?;
        Ok(UpdateVersion { e_tag: put.e_tag, version: put.version })
    }
}

/// A failed request to the library at `uri`, in words the user can act on where the cause is
/// theirs to fix (a missing bucket, missing or refused credentials, a server out of reach);
/// anything else keeps the store's own message.
pub fn remote_error(uri: &str, what: &str, err: impl std::fmt::Display) -> Error {
    let text = err.to_string();
    let has = |marks: &[&str]| marks.iter().any(|m| text.contains(m));
    let bucket = uri.trim_start_matches("s3://").split('/').next().unwrap_or_default();
    if has(&["NoSuchBucket"]) {
        return Error::user(format!(
            "{uri}: the bucket {bucket} does not exist (or these credentials cannot see it); \
             create it first"
        ));
    }
    if has(&["Failed to get AWS credentials", "CredentialsNotLoaded", "no providers in chain"]) {
        return Error::user(format!(
            "{uri}: no AWS credentials found; set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, \
             or AWS_PROFILE"
        ));
    }
    for code in ["InvalidAccessKeyId", "SignatureDoesNotMatch", "AccessDenied"] {
        if text.contains(code) {
            return Error::user(format!(
                "{uri}: the storage server refused these credentials ({code})"
            ));
        }
    }
    if has(&["error sending request", "Connection refused", "dns error", "tcp connect error"]) {
        return Error::user(format!(
            "{uri}: cannot reach the storage server (check AWS_ENDPOINT_URL and the network)"
        ));
    }
    Error::from(IndexError::Remote(format!("{uri}: {what}: {text}")))
}

/// What the lease object says.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct LeaseRecord {
    /// Who holds it, for the message another writer gets (host and process).
    holder: String,
    /// Tells this holder's record from a later one by the same process.
    token: String,
    /// Milliseconds since the Unix epoch after which the lease is free.
    expires_at_ms: u64,
}

fn now_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64)
}

fn holder_name() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|h| h.trim().to_owned())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "this machine".to_owned());
    format!("process {} on {host}", std::process::id())
}

/// The right to write a library on object storage; renewed in the background while held and
/// given up when dropped (or left to expire when the process dies).
#[derive(Debug)]
pub struct WriterLease {
    files: RemoteFiles,
    token: String,
    held: Arc<AtomicBool>,
    renewal: tokio::task::JoinHandle<()>,
}

impl WriterLease {
    /// Takes the lease, or refuses naming who holds it and until when. An expired lease (its
    /// holder died or lost its connection) is taken over.
    pub async fn acquire(files: &RemoteFiles, lease_seconds: u64) -> Result<Self> {
        Self::acquire_for(files, Duration::from_secs(lease_seconds.max(5))).await
    }

    async fn acquire_for(files: &RemoteFiles, ttl: Duration) -> Result<Self> {
        let token = format!("{:016x}", rand::random::<u64>());
        let record = |expires_at_ms| LeaseRecord {
            holder: holder_name(),
            token: token.clone(),
            expires_at_ms,
        };
        let encode = |r: &LeaseRecord| serde_json::to_vec(r).unwrap_or_default();
        let fresh = encode(&record(now_ms() + ttl.as_millis() as u64));
        let version = match files.put_conditional(LEASE, fresh.clone(), PutMode::Create).await {
            Ok(version) => version,
            Err(object_store::Error::AlreadyExists { .. }) => {
                let Some((bytes, version)) = files.read_versioned(LEASE).await? else {
                    // Released between the two requests: try once more from the start.
                    return Box::pin(Self::acquire_for(files, ttl)).await;
                };
                let current: Option<LeaseRecord> = serde_json::from_slice(&bytes).ok();
                if let Some(current) = &current
                    && current.expires_at_ms > now_ms()
                {
                    return Err(busy(files.uri(), current));
                }
                match files.put_conditional(LEASE, fresh, PutMode::Update(version)).await {
                    Ok(version) => {
                        warn!(target: "engine::index", library = files.uri(), previous = current.as_ref().map(|c| c.holder.as_str()), "took over an expired writer lease");
                        version
                    }
                    Err(object_store::Error::Precondition { .. }) => {
                        return Err(Error::Busy(format!(
                            "another Quarry process took the writer lease of the library at {} \
                             a moment ago; wait for it to finish",
                            files.uri()
                        )));
                    }
                    Err(e) => return Err(remote_error(files.uri(), LEASE, e)),
                }
            }
            Err(object_store::Error::NotImplemented { .. }) => {
                return Err(Error::user(format!(
                    "{}: the storage server cannot write conditionally (If-None-Match), which \
                     Quarry needs to let only one machine write at a time",
                    files.uri()
                )));
            }
            Err(e) => return Err(remote_error(files.uri(), LEASE, e)),
        };
        info!(target: "engine::index", library = files.uri(), "writer lease taken");
        let held = Arc::new(AtomicBool::new(true));
        let renewal =
            tokio::spawn(renew(files.clone(), record(0), version, ttl, Arc::clone(&held)));
        Ok(Self { files: files.clone(), token, held, renewal })
    }

    /// Whether this process still holds the lease; an error naming the library when it lost it.
    pub fn check(&self) -> Result<()> {
        if self.held.load(Ordering::Acquire) {
            Ok(())
        } else {
            Err(Error::user(format!(
                "lost the writer lease of the library at {} (it could not be renewed in time, \
                 and another machine may be writing now); stopped writing",
                self.files.uri()
            )))
        }
    }

    /// Gives the lease up: it is deleted when it is still this holder's.
    pub async fn release(&self) -> Result<()> {
        self.renewal.abort();
        if !self.held.swap(false, Ordering::AcqRel) {
            return Ok(());
        }
        if let Some((bytes, _)) = self.files.read_versioned(LEASE).await?
            && serde_json::from_slice::<LeaseRecord>(&bytes).is_ok_and(|r| r.token == self.token)
        {
            self.files.delete(LEASE).await?;
        }
        Ok(())
    }
}

impl Drop for WriterLease {
    fn drop(&mut self) {
        self.renewal.abort();
        if !self.held.load(Ordering::Acquire) {
            return;
        }
        // Deleting takes a request; on a multi-threaded runtime (the CLI, the app) this thread
        // may wait for it. Elsewhere the lease simply expires.
        if let Ok(handle) = tokio::runtime::Handle::try_current()
            && handle.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread
        {
            tokio::task::block_in_place(|| {
                let released =
                    handle.block_on(tokio::time::timeout(Duration::from_secs(5), self.release()));
                if !matches!(released, Ok(Ok(()))) {
                    warn!(target: "engine::index", library = self.files.uri(), "the writer lease could not be given up; it expires on its own");
                }
            });
        }
    }
}

/// Keeps the lease alive: renews it a third of the way through its term, conditionally on the
/// version this holder wrote last. A refused renewal (someone took it over) ends the hold at
/// once; failed requests are retried until the lease would have expired.
async fn renew(
    files: RemoteFiles,
    mut record: LeaseRecord,
    mut version: UpdateVersion,
    ttl: Duration,
    held: Arc<AtomicBool>,
) {
    let mut valid_until = now_ms() + ttl.as_millis() as u64;
    loop {
        tokio::time::sleep(ttl / 3).await;
        record.expires_at_ms = now_ms() + ttl.as_millis() as u64;
        let bytes = serde_json::to_vec(&record).unwrap_or_default();
        match files.put_conditional(LEASE, bytes, PutMode::Update(version.clone())).await {
            Ok(next) => {
                version = next;
                valid_until = record.expires_at_ms;
            }
            Err(object_store::Error::Precondition { .. }) => {
                warn!(target: "engine::index", library = files.uri(), "the writer lease was taken over");
                held.store(false, Ordering::Release);
                return;
            }
            Err(e) => {
                warn!(target: "engine::index", library = files.uri(), "renewing the writer lease failed: {e}");
                // Stop writing before the lease could have passed to someone else.
                if now_ms() + (ttl / 3).as_millis() as u64 >= valid_until {
                    held.store(false, Ordering::Release);
                    return;
                }
            }
        }
    }
}

fn busy(uri: &str, current: &LeaseRecord) -> Error {
    let seconds = current.expires_at_ms.saturating_sub(now_ms()).div_ceil(1000);
    Error::Busy(format!(
        "another Quarry process ({}) is writing to the library at {uri}; wait for it to finish \
         (if it died, its lease expires within {seconds} s)",
        current.holder
    ))
}

/// Copies the `library.json` of the library on object storage into `dir` (this machine's
/// folder for it), so choosing the embedder before the library opens reads the library's own
/// record; nothing to do for a library not created yet.
pub async fn mirror_library_meta(library: &RemoteLibrary, dir: &std::path::Path) -> Result<()> {
    let files = RemoteFiles::open(library).await?;
    if let Some(bytes) = files.read("library.json").await? {
        let origin = format!("{}/library.json", library.uri);
        super::meta::LibraryMeta::parse(&bytes, &origin, &library.uri)?;
        std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
        let path = dir.join("library.json");
        std::fs::write(&path, bytes).map_err(|e| Error::io(&path, e))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn in_memory() -> RemoteFiles {
        RemoteFiles {
            store: Arc::new(object_store::memory::InMemory::new()),
            root: ObjectPath::from("team/lib"),
            uri: "s3://bucket/team/lib".to_owned(),
        }
    }

    async fn lease_record(files: &RemoteFiles) -> Option<LeaseRecord> {
        let bytes = files.read(LEASE).await.unwrap()?;
        Some(serde_json::from_slice(&bytes).unwrap())
    }

    /// A short lease (renewed every 100 ms) so the test runs in real time.
    const TERM: Duration = Duration::from_millis(300);

    #[tokio::test]
    async fn one_writer_holds_the_lease_and_keeps_it_by_renewing() {
        let files = in_memory();
        let first = WriterLease::acquire_for(&files, TERM).await.unwrap();
        let err = WriterLease::acquire_for(&files, TERM).await.unwrap_err().to_string();
        assert!(
            err.contains("another Quarry process") && err.contains("s3://bucket/team/lib"),
            "{err}"
        );
        // Renewed every third of its term: past two terms, still this holder's.
        let (_, taken) = files.read_versioned(LEASE).await.unwrap().unwrap();
        tokio::time::sleep(TERM * 2).await;
        first.check().unwrap();
        let (bytes, renewed) = files.read_versioned(LEASE).await.unwrap().unwrap();
        assert_ne!(taken.e_tag, renewed.e_tag, "the lease object was rewritten");
        let record: LeaseRecord = serde_json::from_slice(&bytes).unwrap();
        assert_eq!(record.token, first.token);
        assert!(WriterLease::acquire_for(&files, TERM).await.is_err());
        first.release().await.unwrap();
        assert!(files.read(LEASE).await.unwrap().is_none(), "released leases are deleted");
        let second = WriterLease::acquire_for(&files, TERM).await.unwrap();
        second.check().unwrap();
        second.release().await.unwrap();
    }

    #[tokio::test]
    async fn an_expired_lease_is_taken_over_and_its_holder_learns_it_lost_it() {
        let files = in_memory();
        let first = WriterLease::acquire_for(&files, Duration::from_secs(30)).await.unwrap();
        first.renewal.abort();
        // The holder stopped renewing (a suspended laptop); its lease ran out.
        let mut record = lease_record(&files).await.unwrap();
        record.expires_at_ms = now_ms() - 1;
        files.write(LEASE, serde_json::to_vec(&record).unwrap()).await.unwrap();
        let second = WriterLease::acquire_for(&files, Duration::from_secs(30)).await.unwrap();
        assert_ne!(lease_record(&files).await.unwrap().token, first.token);
        // The first holder's next renewal is refused: it may no longer write.
        let (_, version) = files.read_versioned(LEASE).await.unwrap().unwrap();
        let stale = UpdateVersion { e_tag: Some("\"stale\"".into()), version: None };
        assert_ne!(stale.e_tag, version.e_tag);
        let held = Arc::new(AtomicBool::new(true));
        let renewal = tokio::spawn(renew(
            files.clone(),
            record,
            stale,
            Duration::from_millis(30),
            Arc::clone(&held),
        ));
        renewal.await.unwrap();
        assert!(!held.load(Ordering::Acquire));
        first.held.store(false, Ordering::Release);
        let err = first.check().unwrap_err().to_string();
        assert!(err.contains("lost the writer lease"), "{err}");
        // Giving up a lease that is someone else's now leaves theirs alone.
        first.release().await.unwrap();
        assert_eq!(lease_record(&files).await.unwrap().token, second.token);
        second.release().await.unwrap();
    }
}
