//! `quarry ask`, `quarry chat`, `quarry threads` and `quarry audit export`: a grounded answer
//! streamed to the terminal with its numbered sources, or as the JSON document of DESIGN.md §5;
//! conversations in the terminal and the saved threads; the audit log as a report.

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
    let generating = announce_generator(&config, &args.options, args.json);
    let engine = Engine::open(config).await?;
    let cancel = CancelToken::new();
    let on_interrupt = cancel.clone();
    tokio::spawn(async move {
        if tokio::signal::ctrl_c().await.is_ok() {
            on_interrupt.cancel();
        }
    });
    let answer =
        answer_one(&engine, &args.question, &args.options, args.json, generating, &cancel).await?;
    if let (false, Some(turn)) = (args.json, &answer.conversation) {
        println!();
        println!(
            "(conversation {}, turn {}; ask a follow-up with --thread {})",
            turn.thread_id, turn.turn, turn.thread_id
        );
    }
    Ok(())
}

/// Whether answers will be generated; says so when they cannot be.
fn announce_generator(config: &EngineConfig, options: &AskOptions, json: bool) -> bool {
    let has_generator = config.generator.is_some() || config.generator_server.is_some();
    if !has_generator && !options.evidence && !json {
        eprintln!("(no generator model installed: quoting the evidence; see `quarry models list`)");
    }
    has_generator && !options.evidence
}

/// One answer: the rewritten follow-up and the streamed text as they come, then the checked
/// answer with its sources (or the JSON document).
async fn answer_one(
    engine: &Engine,
    question: &str,
    options: &AskOptions,
    json: bool,
    generating: bool,
    cancel: &CancelToken,
) -> anyhow::Result<Answer> {
    struct Terminal {
        stream: bool,
        json: bool,
        out: std::io::Stdout,
    }
    impl quarry::generate::TokenSink for Terminal {
        fn text(&mut self, piece: &str) {
            if self.stream {
                let _ = self.out.write_all(piece.as_bytes());
                let _ = self.out.flush();
            }
        }

        fn stage(&mut self, stage: quarry::api::AnswerStage) {
            if let (quarry::api::AnswerStage::Rewritten { question, .. }, false) =
                (stage, self.json)
            {
                println!("(searching for: {question})");
            }
        }
    }
    let stream = generating && !json;
    let mut sink = Terminal { stream, json, out: std::io::stdout() };
    let answer = engine.ask(question, options, &mut sink, cancel).await?;
    if json {
        println!("{}", serde_json::to_string_pretty(&answer)?);
        return Ok(answer);
    }
    if stream {
        println!();
        println!();
    }
    print_answer(&answer, stream);
    Ok(answer)
}

/// `quarry chat`: a conversation in the terminal, one question per line; every answer is a
/// turn of one thread (a new one unless `thread` names one). Ctrl-C stops the answer being
/// written; an empty line, `/quit` or the end of input ends the conversation.
pub(crate) async fn chat(
    config: EngineConfig,
    mut options: AskOptions,
    json: bool,
) -> anyhow::Result<()> {
    use std::io::IsTerminal;
    let generating = announce_generator(&config, &options, json);
    let engine = Engine::open(config).await?;
    let interactive = std::io::stdin().is_terminal();
    let (tx, mut lines) = tokio::sync::mpsc::unbounded_channel::<String>();
    std::thread::spawn(move || {
        for line in std::io::stdin().lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let current = std::sync::Arc::new(std::sync::Mutex::new(CancelToken::new()));
    let on_interrupt = std::sync::Arc::clone(&current);
    tokio::spawn(async move {
        while tokio::signal::ctrl_c().await.is_ok() {
            if let Ok(token) = on_interrupt.lock() {
                token.cancel();
            }
        }
    });
    if options.thread.is_none() {
        options.thread = Some(quarry::api::NEW_THREAD.to_owned());
    }
    if interactive {
        eprintln!("Ask about your documents; follow-ups are understood. An empty line ends.");
    }
    loop {
        if interactive {
            eprint!("> ");
            let _ = std::io::stderr().flush();
        }
        let Some(line) = lines.recv().await else { break };
        let question = line.trim();
        if question.is_empty() || question == "/quit" {
            break;
        }
        let cancel = CancelToken::new();
        if let Ok(mut token) = current.lock() {
            *token = cancel.clone();
        }
        match answer_one(&engine, question, &options, json, generating, &cancel).await {
            Ok(answer) => {
                if let Some(turn) = answer.conversation {
                    options.thread = Some(turn.thread_id);
                }
            }
            Err(e) if matches!(e.downcast_ref(), Some(quarry::Error::Cancelled)) => {
                println!("\n(stopped)");
            }
            Err(e) => return Err(e),
        }
        if !json {
            println!();
        }
    }
    if let (Some(thread), false) = (&options.thread, json)
        && thread != quarry::api::NEW_THREAD
    {
        eprintln!(
            "(conversation {thread} saved; continue it with `quarry chat --thread {thread}`)"
        );
    }
    Ok(())
}

/// `quarry threads …`: the saved conversations.
pub(crate) async fn threads(
    config: EngineConfig,
    what: crate::cli::ThreadsCommand,
) -> anyhow::Result<()> {
    use crate::cli::ThreadsCommand;
    let engine = Engine::open(config).await?;
    match what {
        ThreadsCommand::List { json } => {
            let threads = engine.threads()?;
            if json {
                println!("{}", serde_json::to_string_pretty(&threads)?);
            } else if threads.is_empty() {
                println!("No conversations yet (`quarry chat`, or `quarry ask --thread new`).");
            } else {
                for t in threads {
                    println!("{}  {}  {} turns  {}", t.id, t.updated, t.turns, t.title);
                }
            }
        }
        ThreadsCommand::Show { id, json } => {
            let thread = engine.thread(&id)?;
            if json {
                println!("{}", serde_json::to_string_pretty(&thread)?);
            } else {
                print!(
                    "{}",
                    engine.export_thread(&thread.id, quarry::api::ThreadExportFormat::Markdown)?
                );
            }
        }
        ThreadsCommand::Rename { id, title } => {
            let t = engine.rename_thread(&id, &title)?;
            println!("{}  {}", t.id, t.title);
        }
        ThreadsCommand::Delete { id } => {
            engine.delete_thread(&id)?;
            println!("deleted conversation {id} (its answers stay in the audit log)");
        }
        ThreadsCommand::Export { id, format, out } => {
            let format = match format.as_str() {
                "md" | "markdown" => quarry::api::ThreadExportFormat::Markdown,
                "json" => quarry::api::ThreadExportFormat::Json,
                other => anyhow::bail!(quarry::Error::user(format!(
                    "--format {other}: expected md or json"
                ))),
            };
            let text = engine.export_thread(&id, format)?;
            match out {
                Some(path) => std::fs::write(&path, text)
                    .with_context(|| format!("cannot write {}", path.display()))?,
                None => print!("{text}"),
            }
        }
    }
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
