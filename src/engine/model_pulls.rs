//! Models for the app's Models view, owned by the engine like indexing runs, so the desktop
//! shell and `quarry serve` behave the same: what is installed and what the catalog offers,
//! and one download at a time in the background with progress snapshots and cancel.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use tokio::sync::watch;

use super::Engine;
use crate::api::{CatalogModel, ModelSummary, ModelsOverview, PullProgress};
use crate::error::{Error, Result};
use crate::models::ModelFolder;
use crate::models::pull::{PullEvent, PullOptions};
use crate::progress::CancelToken;

/// The engine's download state: the token of the one going, and the latest snapshot.
pub(super) struct ModelPulls {
    running: Mutex<Option<CancelToken>>,
    progress: watch::Sender<PullProgress>,
    /// The models folder as last read, with the folder's modification time then: the Models
    /// view asks every few seconds, and reading every GGUF header each time is not free.
    folder: Mutex<Option<(Option<std::time::SystemTime>, Arc<ModelFolder>)>>,
}

impl Default for ModelPulls {
    fn default() -> Self {
        Self {
            running: Mutex::default(),
            progress: watch::Sender::new(PullProgress::default()),
            folder: Mutex::default(),
        }
    }
}

impl ModelPulls {
    /// The models in `dir`, read again only when the folder changed (a model added or removed
    /// at its top) or a download or removal here said so.
    fn folder(&self, dir: &std::path::Path) -> Arc<ModelFolder> {
        let stamp = std::fs::metadata(dir).and_then(|m| m.modified()).ok();
        let Ok(mut cached) = self.folder.lock() else {
            return Arc::new(crate::models::discover(dir));
        };
        if let Some((when, folder)) = cached.as_ref()
            && *when == stamp
            && folder.dir() == dir
        {
            return Arc::clone(folder);
        }
        let folder = Arc::new(crate::models::discover(dir));
        *cached = Some((stamp, Arc::clone(&folder)));
        folder
    }

    /// Forgets the folder as read (after a download or a removal).
    fn changed(&self) {
        if let Ok(mut cached) = self.folder.lock() {
            *cached = None;
        }
    }
}

impl std::fmt::Debug for ModelPulls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ModelPulls").finish_non_exhaustive()
    }
}

impl Engine {
    fn models_dir(&self) -> Result<PathBuf> {
        self.config.models_dir.clone().ok_or_else(|| {
            Error::user("no models folder is set for this library (start Quarry with one)")
        })
    }

    /// The installed models, the catalog, and the download in progress.
    pub fn models_overview(&self) -> Result<ModelsOverview> {
        let dir = self.models_dir()?;
        let folder = self.pulls.folder(&dir);
        let embedder = self.embedder.as_ref().map(|e| e.meta().id);
        let generator = self.generator_path();
        let installed: Vec<ModelSummary> = folder
            .installed()
            .iter()
            .map(|m| ModelSummary {
                in_use: match m.role.as_str() {
                    "embed" => embedder.as_deref() == Some(m.id.as_str()),
                    _ => generator.as_deref() == Some(m.path.as_path()),
                },
                id: m.id.clone(),
                role: m.role.clone(),
                family: m.family.clone(),
                quantization: m.quantization.clone(),
                parameters: m.parameters,
                bytes: m.bytes,
                path: m.path.to_string_lossy().into_owned(),
                problem: m.problem.clone(),
            })
            .collect();
        let catalog = crate::models::catalog()
            .into_iter()
            .map(|e| CatalogModel {
                installed: crate::models::pull::model_dir(&dir, &e).is_dir(),
                downloadable: !e.download.is_empty(),
                id: e.id,
                role: e.role,
                family: e.family,
                license: e.license,
                size_mb: e.size_mb,
                languages: e.languages,
                good_for: e.good_for,
                ram_mb: e.ram_mb,
            })
            .collect();
        Ok(ModelsOverview {
            models_dir: dir.to_string_lossy().into_owned(),
            installed,
            catalog,
            pull: self.pulls.progress.borrow().clone(),
        })
    }

    /// Starts downloading the catalog model `id` into the models folder (from `from`, a mirror
    /// URL or a folder, when given) and returns at once; one download at a time
    /// ([`Error::Busy`]). Progress: [`Engine::pull_progress`].
    pub fn start_pull(self: &Arc<Self>, id: &str, from: Option<String>) -> Result<()> {
        let dir = self.models_dir()?;
        let entry = crate::models::catalog()
            .into_iter()
            .find(|m| m.id == id)
            .ok_or_else(|| Error::user(format!("{id}: not in the catalog")))?;
        let cancel = CancelToken::new();
        {
            let mut running = self.pulls.running.lock().map_err(|_| poisoned())?;
            if running.is_some() {
                return Err(Error::Busy("a model is being downloaded already".into()));
            }
            *running = Some(cancel.clone());
        }
        self.pulls.progress.send_replace(PullProgress {
            id: Some(entry.id.clone()),
            running: true,
            ..PullProgress::default()
        });
        let engine = Arc::clone(self);
        self.runtime.spawn(async move {
            let progress = &engine.pulls.progress;
            let mut sink = |event: PullEvent| {
                progress.send_modify(|p| match event {
                    PullEvent::File { path, .. } => p.file = Some(path),
                    PullEvent::Progress { done, total, rate } => {
                        p.done = done;
                        p.total = total;
                        p.rate = rate;
                    }
                    PullEvent::Retry { .. } | PullEvent::Installed { .. } => {}
                });
            };
            let options = PullOptions { mirror: from, ..PullOptions::default() };
            let outcome =
                crate::models::pull::pull(&dir, &entry, &options, &mut sink, &cancel).await;
            progress.send_modify(|p| {
                p.running = false;
                match outcome {
                    Ok(dir) => p.installed = Some(dir.to_string_lossy().into_owned()),
                    Err(Error::Cancelled) => p.cancelled = true,
                    Err(err) => p.error = Some(err.to_string()),
                }
            });
            engine.pulls.changed();
            if let Ok(mut running) = engine.pulls.running.lock() {
                *running = None;
            }
        });
        Ok(())
    }

    /// New libraries in this data folder use the catalog embedder `id` (this library keeps the
    /// one it was built with; another would need a re-index). Returns whether this library
    /// already uses it.
    pub fn choose_embedder(&self, id: &str) -> Result<bool> {
        let dir = self.models_dir()?;
        if self.pulls.folder(&dir).embedder(id).is_none() {
            return Err(Error::user(format!("{id}: not installed in {}", dir.display())));
        }
        let mut choice = crate::models::ModelChoice::read(&self.config.data_dir);
        choice.embedder = Some(id.to_owned());
        choice.save(&self.config.data_dir)?;
        Ok(self.embedder.as_ref().is_some_and(|e| e.meta().id == id))
    }

    /// Deletes the installed model at `path` (a file or folder inside the models folder, not
    /// the one answers or search use now); returns what was removed.
    pub fn remove_model(&self, path: &std::path::Path) -> Result<PathBuf> {
        let dir = std::fs::canonicalize(self.models_dir()?)
            .map_err(|e| Error::user(format!("the models folder cannot be read: {e}")))?;
        let target = std::fs::canonicalize(path).map_err(|e| Error::io(path, e))?;
        if !target.starts_with(&dir) || target == dir {
            return Err(Error::user(format!(
                "{}: not a model in {}",
                path.display(),
                dir.display()
            )));
        }
        let generator = self.generator_path().and_then(|p| std::fs::canonicalize(p).ok());
        let embedder =
            self.config.embedder.as_ref().and_then(|e| std::fs::canonicalize(&e.dir).ok());
        if generator.as_ref() == Some(&target) || embedder.as_ref() == Some(&target) {
            return Err(Error::user(format!(
                "{}: in use by this library; choose another model first",
                path.display()
            )));
        }
        self.pulls.changed();
        if target.is_dir() {
            std::fs::remove_dir_all(&target).map_err(|e| Error::io(&target, e))?;
        } else {
            std::fs::remove_file(&target).map_err(|e| Error::io(&target, e))?;
            // A model's own folder (as `pull` makes them) goes with its last file.
            if let Some(parent) = target.parent().filter(|p| *p != dir) {
                let _ = std::fs::remove_dir(parent);
            }
        }
        Ok(target)
    }

    /// Stops the download going (its partial files stay for the next pull); `false` when none.
    pub fn cancel_pull(&self) -> bool {
        match self.pulls.running.lock() {
            Ok(running) => running.as_ref().map(CancelToken::cancel).is_some(),
            Err(_) => false,
        }
    }

    /// The download in progress, or the last one.
    pub fn pull_progress(&self) -> PullProgress {
        self.pulls.progress.borrow().clone()
    }
}

fn poisoned() -> Error {
    Error::invariant("the download state is poisoned")
}
