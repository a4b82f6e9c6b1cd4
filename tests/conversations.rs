//! Follow-up questions over the shared real-world PDFs: ten two-turn conversations
//! (`tests/fixtures/conversations.json`, each follow-up leaning on its first turn with a
//! pronoun or an ellipsis), asked through the engine in evidence mode, so the rules rewrite the
//! follow-ups. The bar (#21): the rewritten question retrieves the right passage (the expected
//! document and page, holding the expected phrase, among the first three hits) for at least 8
//! of 10. The follow-ups as typed are measured beside it, to show what the rewrite buys.

use std::path::Path;

use quarry::api::{NEW_THREAD, QuestionRewrite, SearchHit};
use quarry::{AskOptions, CancelToken, Engine};
use serde::Deserialize;

use crate::answer::config_with_embedder;
use crate::support::{TempLibrary, test_data};

#[derive(Deserialize)]
struct Fixture {
    conversations: Vec<Conversation>,
}

#[derive(Deserialize)]
struct Conversation {
    name: String,
    turns: Vec<Turn>,
}

#[derive(Deserialize)]
struct Turn {
    question: String,
    doc: String,
    page: u32,
    contains: String,
}

/// Lowercase, whitespace collapsed, and line-break hyphens joined.
fn normalised(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ").replace("- ", "-").to_lowercase()
}

/// Whether one of the first three hits is the expected passage.
fn found(hits: &[SearchHit], turn: &Turn) -> bool {
    let phrase = normalised(&turn.contains);
    hits.iter().take(3).any(|h| {
        Path::new(&h.doc_path).file_name().is_some_and(|n| n == turn.doc.as_str())
            && (h.page..=h.page_end).contains(&turn.page)
            && normalised(&h.text).contains(&phrase)
    })
}

#[tokio::test]
async fn rewritten_follow_ups_retrieve_the_right_passage() {
    let Some(data) = test_data("rewritten_follow_ups_retrieve_the_right_passage") else { return };
    let fixture: Fixture = serde_json::from_str(
        &std::fs::read_to_string(
            crate::support::repo_root().join("tests/fixtures/conversations.json"),
        )
        .unwrap(),
    )
    .unwrap();
    assert_eq!(fixture.conversations.len(), 10);
    let lib = TempLibrary::new();
    let docs = lib.path().join("docs");
    std::fs::create_dir_all(&docs).unwrap();
    for name in
        ["tracemonkey.pdf", "TAMReview.pdf", "pdkids.pdf", "issue13201.pdf", "bug1997343.pdf"]
    {
        std::fs::copy(data.join("pdfs").join(name), docs.join(name)).unwrap();
    }
    let config = config_with_embedder(&lib, &data);
    let report = lib.index(config.clone(), &[&docs]).await;
    assert_eq!((report.added, report.failed), (5, 0), "{report:?}");
    let engine = Engine::open(config).await.unwrap();
    let mode = engine.default_search_mode();
    let (mut rewritten_found, mut typed_found, mut first_found) = (0, 0, 0);
    for c in &fixture.conversations {
        let [first, follow] = c.turns.as_slice() else { panic!("{}: two turns", c.name) };
        let options = AskOptions {
            evidence: true,
            thread: Some(NEW_THREAD.to_owned()),
            ..AskOptions::default()
        };
        let (mut quiet, cancel) = (|_: &str| {}, CancelToken::new());
        let one = engine.ask(&first.question, &options, &mut quiet, &cancel).await.unwrap();
        let thread = one.conversation.as_ref().unwrap().thread_id.clone();
        let options = AskOptions { thread: Some(thread), ..options };
        let two = engine.ask(&follow.question, &options, &mut quiet, &cancel).await.unwrap();
        let turn = two.conversation.as_ref().unwrap();
        assert_eq!(turn.turn, 2);
        let first_ok = found(&engine.search(&first.question, mode, 3).await.unwrap(), first);
        let rewritten_ok = found(&engine.search(&two.question, mode, 3).await.unwrap(), follow);
        let typed_ok = found(&engine.search(&follow.question, mode, 3).await.unwrap(), follow);
        first_found += usize::from(first_ok);
        rewritten_found += usize::from(rewritten_ok);
        typed_found += usize::from(typed_ok);
        eprintln!(
            "{:<42} first {} | typed {} | rewritten ({:?}) {}: {:?} → {:?}",
            c.name,
            if first_ok { "ok" } else { "MISSED" },
            if typed_ok { "ok" } else { "missed" },
            turn.rewritten_by,
            if rewritten_ok { "ok" } else { "MISSED" },
            follow.question,
            two.question
        );
        assert_ne!(turn.rewritten_by, QuestionRewrite::Model, "evidence mode uses the rules");
    }
    eprintln!(
        "first turns {first_found}/10; follow-ups as typed {typed_found}/10, rewritten {rewritten_found}/10"
    );
    assert!(rewritten_found >= 8, "rewritten follow-ups found the passage {rewritten_found}/10");
}
