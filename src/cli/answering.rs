//! `quarry ask` and `quarry audit export`: a grounded answer streamed to the terminal with its
//! numbered sources, or as the JSON document of DESIGN.md §5; the audit log as a report.

use std::io::Write;
use std::path::PathBuf;

use anyhow::Context;
use quarry::answer::audit::{self, ExportFormat};
use quarry::{Answer, AskOptions, CancelToken, Engine, EngineConfig};

/// Options of `quarry ask`.
#[derive(Debug)]
pub(crate) struct AskArgs {
    pub(crate) question: String,
    pub(crate) options: AskOptions,
    pub(crate) json: bool,
}

/// Answers, streaming generated text unless `--json`; prints the sources afterwards.
pub(crate) async fn ask(config: EngineConfig, args: AskArgs) -> anyhow::Result<()> {
    let has_generator = config.generator.is_some() || config.generator_server.is_some();
    let generating = has_generator && !args.options.evidence;
    if !has_generator && !args.options.evidence && !args.json {
        eprintln!("(no generator model installed: quoting the evidence; see `quarry models list`)");
    }
    let engine = Engine::open(config).await?;
    let cancel = CancelToken::new();
    let on_interrupt = cancel.clone();
    tokio::spawn(async move {
        if tokio::signal::ctrl_c().await.is_ok() {
            on_interrupt.cancel();
        }
    });
    let stream = generating && !args.json;
    let mut out = std::io::stdout();
    let mut sink = |piece: &str| {
        if stream {
            let _ = out.write_all(piece.as_bytes());
            let _ = out.flush();
        }
    };
    let answer = engine.ask(&args.question, &args.options, &mut sink, &cancel).await?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&answer)?);
        return Ok(());
    }
    if stream {
        println!();
        println!();
    }
    print_answer(&answer, stream);
    Ok(())
}

fn print_answer(answer: &Answer, streamed: bool) {
    if answer.abstained {
        if streamed {
            println!("Not used: {}.", answer.abstain_reason.as_deref().unwrap_or("no support"));
        }
        println!("{}", answer.answer);
        if let Some(reason) = &answer.abstain_reason {
            println!(
                "({reason}; best evidence {:.2}, needed {:.2})",
                answer.gate.score, answer.gate.threshold
            );
        }
        return;
    }
    // In the question's language, like the answer's refusal and reasons; the CLI's own framing
    // stays English.
    let language = answer.language;
    if let Some(cause) = answer.fallback {
        println!("({})", quarry::answer::messages::fallback_reason(cause, language));
    } else if let Some(stop) = answer.early_stop {
        println!(
            "(stopped early: {}; the rest was not used)",
            quarry::answer::messages::early_stop_reason(stop, language)
        );
    }
    if streamed {
        println!("Checked answer:");
    }
    for s in &answer.sentences {
        let marks = quarry::answer::markers(&s.citations);
        let flag = match (s.supported, s.attributed) {
            (false, _) => "  (not supported by the passages)",
            (true, true) => "  (citation attributed by Quarry)",
            (true, false) => "",
        };
        println!("{} {marks}{flag}", s.text);
    }
    if !answer.removed_citations.is_empty() {
        println!(
            "(removed citations of passages that were not given: {})",
            quarry::answer::markers(&answer.removed_citations)
        );
    }
    println!();
    println!("Sources:");
    for c in &answer.citations {
        println!("[{}] {}, {} {}", c.n, c.doc_path, page_name(&c.doc_path), c.page);
        println!("    \u{201C}{}\u{201D}", flat(&c.quote));
    }
}

fn flat(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// `quarry audit export`.
pub(crate) fn export_audit(
    data_dir: &std::path::Path,
    since: Option<&str>,
    format: &str,
    out: Option<PathBuf>,
) -> anyhow::Result<()> {
    let since = since
        .map(|s| {
            chrono::DateTime::parse_from_rfc3339(s)
                .map(|t| t.with_timezone(&chrono::Utc))
                .or_else(|_| {
                    chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d")
                        .map(|d| d.and_hms_opt(0, 0, 0).unwrap_or_default().and_utc())
                })
                .map_err(|_| {
                    quarry::Error::user(format!(
                        "--since {s}: expected a date (2026-11-21) or an RFC 3339 time"
                    ))
                })
        })
        .transpose()?;
    let format = match format {
        "jsonl" => ExportFormat::Jsonl,
        "md" | "markdown" => ExportFormat::Markdown,
        other => {
            anyhow::bail!(quarry::Error::user(format!("--format {other}: expected jsonl or md")))
        }
    };
    let (records, problems) = audit::read_all(&audit::log_path(data_dir), since)?;
    for problem in &problems {
        eprintln!("warning: {problem}");
    }
    let text = audit::export(&records, format)?;
    match out {
        Some(path) => std::fs::write(&path, text)
            .with_context(|| format!("cannot write {}", path.display()))?,
        None => print!("{text}"),
    }
    Ok(())
}

/// `quarry audit verify`: `false` when the chain is broken.
pub(crate) fn verify_audit(data_dir: &std::path::Path, json: bool) -> anyhow::Result<bool> {
    let path = audit::log_path(data_dir);
    let report = audit::verify(&path)?;
    if json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        match &report.broken {
            None => println!(
                "{}: {} records, chain intact{}",
                path.display(),
                report.records,
                if report.unchained > 0 {
                    format!(
                        " ({} older records before the chain are not covered)",
                        report.unchained
                    )
                } else {
                    String::new()
                }
            ),
            Some((line, problem)) => println!("{} line {line}: {problem}", path.display()),
        }
    }
    Ok(report.broken.is_none())
}

/// What a page number counts in this file: "page", "slide", "sheet", "chapter" or "part".
pub(crate) fn page_name(path: &str) -> &'static str {
    quarry::ingest::sniff::kind_from_extension(std::path::Path::new(path))
        .map_or("page", quarry::FileKind::page_name)
}
