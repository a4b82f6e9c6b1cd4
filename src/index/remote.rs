//! A library on S3-compatible object storage: the small files kept beside its LanceDB tables
//! (`library.json`, OCR word boxes) and the writer lease that lets exactly one machine write.
//!
//! The lease is an object, `writer.lease`, created only when absent (`If-None-Match: *`) and
//! renewed or taken over only when unchanged since it was read (`If-Match: <etag>`), so two
//! machines can never both believe they hold it. It names its holder and an expiry; the holder
//! renews it well before then. A writer that dies leaves a lease that expires, and the next
//! writer takes it over. One that cannot renew in time (a network partition, a suspended
//! laptop) learns it lost the lease and refuses to write further.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

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
    /// How it was opened, to open it afresh (`None` for a store made in place, in tests).
    library: Option<RemoteLibrary>,
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
        let files = Self {
            store: store.inner.clone(),
            root,
            uri: library.uri.clone(),
            library: Some(library.clone()),
        };
        // One listing request up front: the bucket exists, the credentials work and the server
        // answers (a missing object and a missing bucket both read as "not found" otherwise).
        files
            .store
            .list_with_delimiter(Some(&files.root))
            .await
            .map_err(|e| remote_error(&files.uri, "list", e))?;
        Ok(files)
    }

    /// The same objects through a client of their own (no connection shared with this one).
    async fn reopen(&self) -> Result<Self> {
        match &self.library {
            Some(library) => Self::open(library).await,
            None => Ok(self.clone()),
        }
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

    /// The names of the objects under `prefix` (a folder-like prefix ending in `/`), relative
    /// to the library, like the names the other methods take.
    pub async fn names_under(&self, prefix: &str) -> Result<HashSet<String>> {
        use futures::TryStreamExt;
        let base = self.path(prefix.trim_end_matches('/'));
        let listed: Vec<object_store::ObjectMeta> = self
            .store
            .list(Some(&base))
            .try_collect()
            .await
            .map_err(|e| remote_error(&self.uri, prefix, e))?;
        let root = self.root.as_ref().to_owned();
        Ok(listed
            .into_iter()
            .filter_map(|meta| {
                let full = meta.location.as_ref().to_owned();
                full.strip_prefix(&root).map(|rest| rest.trim_start_matches('/').to_owned())
            })
            .collect())
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
    /// Tells this holder's record from any other.
    token: String,
    /// Milliseconds since the Unix epoch after which the lease is free, by the holder's clock.
    expires_at_ms: u64,
    /// Given up by its holder: the next writer takes it at once.
    #[serde(default)]
    released: bool,
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

/// What the holder knows of its lease: the version it wrote last, and until when it may write,
/// by both clocks (the monotonic one stands still while a laptop sleeps, the wall clock may
/// jump; either running out ends the right to write).
#[derive(Debug)]
struct Held {
    /// `None` once given up.
    version: Option<UpdateVersion>,
    valid_until: Option<(Instant, SystemTime)>,
}

/// The holder's state, shared with its renewal task.
#[derive(Debug)]
struct LeaseState {
    ttl: Duration,
    held: Mutex<Held>,
}

impl LeaseState {
    fn lock(&self) -> std::sync::MutexGuard<'_, Held> {
        self.held.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// How long this holder may still write, keeping a margin for a request under way.
    fn time_left(&self) -> Duration {
        let margin = self.ttl / 10;
        match self.lock().valid_until {
            Some((instant, wall)) => {
                let by_instant = instant.saturating_duration_since(Instant::now());
                let by_wall = wall.duration_since(SystemTime::now()).unwrap_or_default();
                by_instant.min(by_wall).saturating_sub(margin)
            }
            None => Duration::ZERO,
        }
    }

    /// A write of the lease sent at `sent` succeeded with `version`.
    fn renewed(&self, version: UpdateVersion, sent: (Instant, SystemTime)) {
        let mut held = self.lock();
        if held.version.is_none() {
            return; // Given up meanwhile: a renewal that was under way changes nothing.
        }
        held.version = Some(version);
        held.valid_until = Some((sent.0 + self.ttl, sent.1 + self.ttl));
    }

    fn lose(&self) {
        self.lock().valid_until = None;
    }
}

/// The right to write a library on object storage; renewed in the background while held and
/// given up when dropped (or left to expire when the process dies).
#[derive(Debug)]
pub struct WriterLease {
    files: RemoteFiles,
    record: LeaseRecord,
    state: Arc<LeaseState>,
    renewal: tokio::task::JoinHandle<()>,
}

/// How often `acquire` starts over when the lease changes hands under it.
const ACQUIRE_ATTEMPTS: usize = 4;

impl WriterLease {
    /// Takes the lease, or refuses naming who holds it and until when. A lease its holder gave
    /// up is taken at once; one that looks expired is taken over only after it was seen
    /// unchanged for longer than its holder renews it, so a live holder whose clock differs
    /// from this machine's keeps it.
    pub async fn acquire(files: &RemoteFiles, lease_seconds: u64) -> Result<Self> {
        Self::acquire_at(files, Duration::from_secs(lease_seconds.max(5)), 0).await
    }

    /// `acquire` with a term of `ttl`, judging expiry as if this machine's clock were
    /// `skew_ms` ahead (tests stand in for a machine whose clock is off).
    async fn acquire_at(files: &RemoteFiles, ttl: Duration, skew_ms: u64) -> Result<Self> {
        let record = LeaseRecord {
            holder: holder_name(),
            token: format!("{:016x}", rand::random::<u64>()),
            expires_at_ms: 0,
            released: false,
        };
        let fresh = |record: &LeaseRecord| {
            let mut record = record.clone();
            record.expires_at_ms = now_ms() + ttl.as_millis() as u64;
            serde_json::to_vec(&record).unwrap_or_default()
        };
        // Our own create may have landed although its answer was lost: its term counts from
        // the first one sent.
        let first_sent = (Instant::now(), SystemTime::now());
        for _ in 0..ACQUIRE_ATTEMPTS {
            let mut sent = (Instant::now(), SystemTime::now());
            let version = match files.put_conditional(LEASE, fresh(&record), PutMode::Create).await
            {
                Ok(version) => version,
                Err(object_store::Error::AlreadyExists { .. }) => {
                    let Some((bytes, version)) = files.read_versioned(LEASE).await? else {
                        continue; // Given up and deleted meanwhile: start over.
                    };
                    let current: Option<LeaseRecord> = serde_json::from_slice(&bytes).ok();
                    match &current {
                        // Our own create, whose answer was lost on the way: ours.
                        Some(c) if c.token == record.token => {
                            sent = first_sent;
                            version
                        }
                        Some(c) if !c.released && c.expires_at_ms > now_ms() + skew_ms => {
                            return Err(busy(files.uri(), c));
                        }
                        _ => {
                            let version = if current.as_ref().is_some_and(|c| c.released) {
                                version
                            } else {
                                // Expired by this machine's clock, or unreadable. Clocks may
                                // disagree: a holder may write for less than a term after its
                                // last renewal, and renews every third of one. Unchanged for
                                // longer than a term, it is gone, whatever the clocks say.
                                info!(target: "engine::index", library = files.uri(), "the writer lease looks expired; checking that its holder is gone");
                                tokio::time::sleep(ttl + ttl / 10).await;
                                match files.read_versioned(LEASE).await? {
                                    Some((bytes, now)) if now.e_tag != version.e_tag => {
                                        let holder = serde_json::from_slice(&bytes)
                                            .ok()
                                            .or(current)
                                            .unwrap_or(LeaseRecord {
                                                holder: "another process".into(),
                                                token: String::new(),
                                                expires_at_ms: now_ms(),
                                                released: false,
                                            });
                                        return Err(busy(files.uri(), &holder));
                                    }
                                    Some(_) => version,
                                    None => continue,
                                }
                            };
                            let sent = (Instant::now(), SystemTime::now());
                            match files
                                .put_conditional(LEASE, fresh(&record), PutMode::Update(version))
                                .await
                            {
                                Ok(version) => {
                                    let previous = current.map(|c| c.holder);
                                    info!(target: "engine::index", library = files.uri(), ?previous, "took over the writer lease");
                                    return Ok(Self::hold(files, record, ttl, version, sent));
                                }
                                // Changed or deleted meanwhile: start over.
                                Err(object_store::Error::Precondition { .. })
                                | Err(object_store::Error::NotFound { .. }) => continue,
                                Err(e) => return Err(remote_error(files.uri(), LEASE, e)),
                            }
                        }
                    }
                }
                Err(object_store::Error::NotImplemented { .. }) => {
                    return Err(Error::user(format!(
                        "{}: the storage server cannot write conditionally (If-None-Match), \
                         which Quarry needs to let only one machine write at a time",
                        files.uri()
                    )));
                }
                Err(e) => return Err(remote_error(files.uri(), LEASE, e)),
            };
            info!(target: "engine::index", library = files.uri(), "writer lease taken");
            return Ok(Self::hold(files, record, ttl, version, sent));
        }
        Err(Error::Busy(format!(
            "the writer lease of the library at {} kept changing hands; try again",
            files.uri()
        )))
    }

    fn hold(
        files: &RemoteFiles,
        record: LeaseRecord,
        ttl: Duration,
        version: UpdateVersion,
        sent: (Instant, SystemTime),
    ) -> Self {
        let state = Arc::new(LeaseState {
            ttl,
            held: Mutex::new(Held {
                version: Some(version),
                valid_until: Some((sent.0 + ttl, sent.1 + ttl)),
            }),
        });
        let renewal = tokio::spawn(renew(files.clone(), record.clone(), Arc::clone(&state)));
        Self { files: files.clone(), record, state, renewal }
    }

    /// Whether this process may still write; an error naming the library when the lease ran
    /// out or was taken over.
    pub fn check(&self) -> Result<()> {
        if self.state.time_left() > Duration::ZERO {
            Ok(())
        } else {
            Err(Error::Busy(format!(
                "lost the writer lease of the library at {} (it could not be renewed in time, \
                 and another machine may be writing now); stopped writing",
                self.files.uri()
            )))
        }
    }

    /// Gives the lease up, if it is still this holder's: the record is marked released, on
    /// the condition that it is the one this holder wrote last.
    pub async fn release(&self) -> Result<()> {
        self.renewal.abort();
        release(&self.files, &self.record, &self.state).await
    }
}

async fn release(files: &RemoteFiles, record: &LeaseRecord, state: &LeaseState) -> Result<()> {
    let version = {
        let mut held = state.lock();
        held.valid_until = None;
        held.version.take()
    };
    let Some(version) = version else { return Ok(()) }; // Given up already.
    let released = LeaseRecord { released: true, expires_at_ms: 0, ..record.clone() };
    let bytes = serde_json::to_vec(&released).unwrap_or_default();
    let mut version = version;
    for _ in 0..3 {
        match files.put_conditional(LEASE, bytes.clone(), PutMode::Update(version)).await {
            Ok(_) | Err(object_store::Error::NotFound { .. }) => return Ok(()),
            Err(object_store::Error::Precondition { .. }) => {
                // A renewal still under way may have landed first: while the record is this
                // holder's, try again on its version; someone else's stays.
                match files.read_versioned(LEASE).await? {
                    Some((current, now))
                        if serde_json::from_slice::<LeaseRecord>(&current)
                            .is_ok_and(|c| c.token == record.token && !c.released) =>
                    {
                        version = now;
                    }
                    _ => return Ok(()),
                }
            }
            Err(e) => return Err(remote_error(files.uri(), LEASE, e)),
        }
    }
    Ok(())
}

impl Drop for WriterLease {
    fn drop(&mut self) {
        self.renewal.abort();
        if self.state.lock().version.is_none() {
            return;
        }
        // Giving it up takes a request, sent from a thread of its own with its own runtime:
        // this may run inside a runtime, even one shutting down. Failing that, the lease
        // simply expires.
        let (files, record, state) =
            (self.files.clone(), self.record.clone(), Arc::clone(&self.state));
        let released = std::thread::Builder::new().name("quarry-lease".into()).spawn(move || {
            let runtime =
                tokio::runtime::Builder::new_current_thread().enable_all().build().ok()?;
            // A client of its own, so no connection of the caller's runtime (which waits
            // here) is needed; the timer is made inside this runtime.
            let give_up = async {
                let files = files.reopen().await?;
                release(&files, &record, &state).await
            };
            runtime
                .block_on(async { tokio::time::timeout(Duration::from_secs(5), give_up).await })
                .ok()?
                .ok()
        });
        if !released.is_ok_and(|thread| thread.join().ok().flatten().is_some()) {
            warn!(target: "engine::index", library = self.files.uri(), "the writer lease could not be given up; it expires on its own");
        }
    }
}

/// Keeps the lease alive: renews it every third of its term, conditionally on the version
/// this holder wrote last, each request bounded by the time the holder has left. A refused
/// renewal (someone took it over) ends the hold at once; failed ones are retried until the
/// time runs out, when `check` refuses by itself.
async fn renew(files: RemoteFiles, record: LeaseRecord, state: Arc<LeaseState>) {
    let ttl = state.ttl;
    loop {
        tokio::time::sleep(ttl / 3).await;
        let left = state.time_left();
        if left.is_zero() {
            warn!(target: "engine::index", library = files.uri(), "the writer lease ran out");
            state.lose();
            return;
        }
        let sent = (Instant::now(), SystemTime::now());
        let mut next = record.clone();
        next.expires_at_ms = now_ms() + ttl.as_millis() as u64;
        let bytes = serde_json::to_vec(&next).unwrap_or_default();
        let Some(version) = state.lock().version.clone() else { return };
        let put = files.put_conditional(LEASE, bytes, PutMode::Update(version));
        match tokio::time::timeout(left, put).await {
            Ok(Ok(version)) => state.renewed(version, sent),
            Ok(Err(object_store::Error::Precondition { .. }))
            | Ok(Err(object_store::Error::NotFound { .. })) => {
                warn!(target: "engine::index", library = files.uri(), "the writer lease was taken over");
                state.lose();
                return;
            }
            Ok(Err(e)) => {
                warn!(target: "engine::index", library = files.uri(), "renewing the writer lease failed: {e}");
            }
            Err(_) => {
                warn!(target: "engine::index", library = files.uri(), "renewing the writer lease took too long");
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
            library: None,
        }
    }

    async fn lease_record(files: &RemoteFiles) -> LeaseRecord {
        serde_json::from_slice(&files.read(LEASE).await.unwrap().unwrap()).unwrap()
    }

    /// A short lease (renewed every 100 ms) so the tests run in real time.
    const TERM: Duration = Duration::from_millis(300);

    #[tokio::test]
    async fn objects_are_listed_by_the_names_they_were_written_under() {
        let files = in_memory();
        files.write("ocr/a.json", b"[]".to_vec()).await.unwrap();
        files.write("ocr/b.json", b"[]".to_vec()).await.unwrap();
        files.write("library.json", b"{}".to_vec()).await.unwrap();
        let names = files.names_under("ocr/").await.unwrap();
        assert_eq!(names, HashSet::from(["ocr/a.json".to_owned(), "ocr/b.json".to_owned()]));
        files.delete("ocr/a.json").await.unwrap();
        assert_eq!(files.names_under("ocr/").await.unwrap().len(), 1);
    }

    #[tokio::test]
    async fn one_writer_holds_the_lease_renews_it_and_hands_it_on_when_done() {
        let files = in_memory();
        let first = WriterLease::acquire_at(&files, TERM, 0).await.unwrap();
        let err = WriterLease::acquire_at(&files, TERM, 0).await.unwrap_err();
        assert!(matches!(err, Error::Busy(_)), "{err}");
        let err = err.to_string();
        assert!(
            err.contains("another Quarry process") && err.contains("s3://bucket/team/lib"),
            "{err}"
        );
        // Renewed every third of its term: past two terms, still this holder's.
        let (_, taken) = files.read_versioned(LEASE).await.unwrap().unwrap();
        tokio::time::sleep(TERM * 2).await;
        first.check().unwrap();
        let (_, renewed) = files.read_versioned(LEASE).await.unwrap().unwrap();
        assert_ne!(taken.e_tag, renewed.e_tag, "the lease object was rewritten");
        assert_eq!(lease_record(&files).await.token, first.record.token);
        assert!(WriterLease::acquire_at(&files, TERM, 0).await.is_err());
        // Given up: marked released, and the next writer takes it at once.
        first.release().await.unwrap();
        assert!(first.check().is_err());
        assert!(lease_record(&files).await.released);
        let started = Instant::now();
        let second = WriterLease::acquire_at(&files, TERM, 0).await.unwrap();
        assert!(started.elapsed() < TERM / 3, "no wait for a released lease");
        second.check().unwrap();
        drop(second);
        assert!(lease_record(&files).await.released, "dropping gives it up too");
    }

    #[tokio::test]
    async fn a_dead_holder_s_lease_is_taken_over_and_it_cannot_write_any_more() {
        let files = in_memory();
        let first = WriterLease::acquire_at(&files, TERM, 0).await.unwrap();
        // The holder stops renewing (killed, or its laptop asleep) and its term runs out.
        first.renewal.abort();
        tokio::time::sleep(TERM).await;
        assert!(first.check().is_err(), "the holder's own clock stops it");
        let second = WriterLease::acquire_at(&files, TERM, 0).await.unwrap();
        assert_eq!(lease_record(&files).await.token, second.record.token);
        // The first holder giving up late leaves the new holder's lease alone.
        first.release().await.unwrap();
        assert_eq!(lease_record(&files).await.token, second.record.token);
        assert!(!lease_record(&files).await.released);
        second.check().unwrap();
        second.release().await.unwrap();
    }

    #[tokio::test]
    async fn a_taker_whose_clock_is_ahead_waits_out_the_holder_s_whole_term() {
        let files = in_memory();
        let first = WriterLease::acquire_at(&files, TERM, 0).await.unwrap();
        // The holder stops renewing; a machine ten seconds ahead sees the lease as expired at
        // once, but takes it only after the holder's own clocks have stopped it.
        first.renewal.abort();
        let started = Instant::now();
        let second = WriterLease::acquire_at(&files, TERM, 10_000).await.unwrap();
        assert!(started.elapsed() >= TERM, "{:?}", started.elapsed());
        assert!(first.check().is_err(), "never two holders at once");
        second.check().unwrap();
        second.release().await.unwrap();
    }

    #[tokio::test]
    async fn a_live_holder_keeps_its_lease_whatever_the_other_machine_s_clock_says() {
        let files = in_memory();
        let first = WriterLease::acquire_at(&files, TERM, 0).await.unwrap();
        // A machine whose clock runs ten seconds ahead reads the lease as expired, watches
        // it, sees it renewed, and stays out.
        let err = WriterLease::acquire_at(&files, TERM, 10_000).await.unwrap_err();
        assert!(err.to_string().contains("another Quarry process"), "{err}");
        first.check().unwrap();
        assert_eq!(lease_record(&files).await.token, first.record.token);
        first.release().await.unwrap();
    }

    #[tokio::test]
    async fn a_holder_whose_lease_was_taken_learns_it_at_its_next_renewal() {
        let files = in_memory();
        let first = WriterLease::acquire_at(&files, TERM, 0).await.unwrap();
        // Another machine wrote the lease (after a partition, say).
        let mut other = lease_record(&files).await;
        other.token = "someone else".into();
        files.write(LEASE, serde_json::to_vec(&other).unwrap()).await.unwrap();
        first.check().unwrap();
        // Its next renewal, conditional on the version it wrote, is refused: well before its
        // own term is out, it stops writing, and giving up leaves the other's lease alone.
        tokio::time::sleep(TERM / 2).await;
        assert!(first.check().unwrap_err().to_string().contains("lost the writer lease"));
        first.release().await.unwrap();
        assert_eq!(lease_record(&files).await.token, "someone else");
    }
}
