//! `quarry models pull | verify | remove | catalog`: the catalog as the user's menu, downloads
//! with a progress bar (Ctrl-C keeps what arrived for the next pull), and checks of what is
//! installed.

use std::io::IsTerminal;
use std::path::Path;

use quarry::CancelToken;
use quarry::models::CatalogEntry;
use quarry::models::pull::{PullEvent, PullOptions};

/// The catalog entry `id` names: its id, or its folder name.
fn entry(id: &str) -> anyhow::Result<CatalogEntry> {
    quarry::models::catalog().into_iter().find(|m| m.id == id || m.folder_name() == id).ok_or_else(
        || {
            quarry::Error::user(format!(
            "{id}: not in the catalog (see `quarry models catalog`; other models can be copied in \
             with `quarry models import`)"
        ))
        .into()
        },
    )
}

/// `models pull`.
pub(crate) async fn pull(
    models_dir: &Path,
    id: &str,
    from: Option<String>,
    json: bool,
) -> anyhow::Result<()> {
    let entry = entry(id)?;
    let cancel = CancelToken::new();
    let on_interrupt = cancel.clone();
    tokio::spawn(async move {
        if tokio::signal::ctrl_c().await.is_ok() {
            eprintln!("stopping; the next pull resumes where this one stopped");
            on_interrupt.cancel();
        }
    });
    let bar = (!json && std::io::stderr().is_terminal()).then(|| {
        let bar = indicatif::ProgressBar::new(0);
        bar.set_style(
            indicatif::ProgressStyle::with_template(
                "{msg} {wide_bar} {bytes}/{total_bytes} {bytes_per_sec} {eta}",
            )
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
        );
        bar
    });
    let mut sink = |event: PullEvent| match (&bar, event) {
        (Some(bar), PullEvent::File { path, .. }) => bar.set_message(path),
        (Some(bar), PullEvent::Progress { done, total, .. }) => {
            bar.set_length(total.unwrap_or(done));
            bar.set_position(done);
        }
        (Some(bar), PullEvent::Retry { path, error }) => {
            bar.println(format!("{path}: {error}; trying again"))
        }
        (None, PullEvent::Retry { path, error }) if !json => {
            eprintln!("{path}: {error}; trying again")
        }
        _ => {}
    };
    let options = PullOptions { mirror: from, ..PullOptions::default() };
    let dir = quarry::models::pull::pull(models_dir, &entry, &options, &mut sink, &cancel).await;
    if let Some(bar) = &bar {
        bar.finish_and_clear();
    }
    let dir = dir?;
    if json {
        println!("{}", serde_json::json!({ "id": entry.id, "dir": dir }));
    } else {
        println!("{} installed in {}", entry.id, dir.display());
    }
    Ok(())
}

/// `models verify`; `false` when a file is missing or damaged.
pub(crate) fn verify(models_dir: &Path, id: Option<&str>, json: bool) -> anyhow::Result<bool> {
    let entries = match id {
        Some(id) => vec![entry(id)?],
        None => quarry::models::catalog()
            .into_iter()
            .filter(|e| quarry::models::pull::model_dir(models_dir, e).is_dir())
            .collect(),
    };
    let mut all_ok = true;
    let mut report = Vec::new();
    for e in &entries {
        let checks = quarry::models::pull::verify(models_dir, e)?;
        all_ok &= checks.iter().all(|c| c.state == "ok" || c.state == "unchecked");
        if !json {
            for c in &checks {
                println!("{:<12} {} {}", c.state, e.id, c.path);
            }
        }
        report.push(serde_json::json!({ "id": e.id, "files": checks }));
    }
    if json {
        println!("{}", serde_json::to_string_pretty(&serde_json::json!({ "models": report }))?);
    } else if entries.is_empty() {
        println!("no catalog model is installed in {}", models_dir.display());
    }
    Ok(all_ok)
}

/// `models use`: saves the choice for this library; an embedder other than the one an
/// existing library was built with applies to new libraries only (it would need a re-index).
pub(crate) fn choose(
    models: &quarry::models::ModelFolder,
    data_dir: &Path,
    id: &str,
) -> anyhow::Result<()> {
    let mut choice = quarry::models::ModelChoice::read(data_dir);
    let embedder = quarry::models::catalog().into_iter().find(|e| e.role == "embed" && e.id == id);
    if let Some(entry) = embedder {
        if models.embedder(&entry.id).is_none() {
            anyhow::bail!(quarry::Error::user(format!(
                "{}: not installed in {} (`quarry models pull {}`)",
                entry.id,
                models.dir().display(),
                entry.id
            )));
        }
        choice.embedder = Some(entry.id.clone());
        choice.save(data_dir)?;
        let config = models.engine_config(data_dir.to_owned(), false);
        match config.embedder.map(|e| e.id) {
            Some(used) if used != entry.id => println!(
                "{} chosen; this library was built with {used} and keeps it: the choice applies to a new data folder (re-index there to switch)",
                entry.id
            ),
            _ => println!("{} is the embedder of this library", entry.id),
        }
        return Ok(());
    }
    let path = models.find_generator(id).ok_or_else(|| {
        quarry::Error::user(format!(
            "{id}: no installed generator or catalog embedder of that name (see `quarry models list` and `quarry models catalog`)"
        ))
    })?;
    choice.generator = Some(path.to_string_lossy().into_owned());
    choice.save(data_dir)?;
    println!("answers in this library are written by {}", path.display());
    Ok(())
}

/// `models remove`.
pub(crate) fn remove(models_dir: &Path, id: &str) -> anyhow::Result<()> {
    let dir = quarry::models::pull::remove(models_dir, &entry(id)?)?;
    println!("removed {}", dir.display());
    Ok(())
}

/// `models catalog`.
pub(crate) fn list_catalog(json: bool) -> anyhow::Result<()> {
    let entries = quarry::models::catalog();
    if json {
        println!("{}", serde_json::to_string_pretty(&serde_json::json!({ "models": entries }))?);
        return Ok(());
    }
    for e in &entries {
        let ram = e.ram_mb.map(|r| format!(", needs about {r} MB of memory")).unwrap_or_default();
        println!("{} ({}, {} MB{ram}, {})", e.id, e.role, e.size_mb, e.license);
        if !e.good_for.is_empty() {
            println!("    {}", e.good_for);
        }
    }
    Ok(())
}
