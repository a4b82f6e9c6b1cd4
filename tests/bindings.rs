//! The UI's TypeScript types are generated from `src/api.rs` (ts-rs) and committed in
//! `ui/src/bindings/`; this test fails when they are stale. `QUARRY_BLESS_BINDINGS=1` rewrites them.

use quarry::api::*;
use ts_rs::TS;

use crate::support::repo_root;

fn check<T: TS + 'static>(stale: &mut Vec<String>) {
    let dir = repo_root().join("ui/src/bindings");
    let path = dir.join(format!("{}.ts", T::name()));
    let want = T::export_to_string().unwrap();
    if std::env::var_os("QUARRY_BLESS_BINDINGS").is_some() {
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(&path, &want).unwrap();
        return;
    }
    if std::fs::read_to_string(&path).ok().as_deref() != Some(want.as_str()) {
        stale.push(path.display().to_string());
    }
}

#[test]
fn typescript_bindings_are_current() {
    let mut stale = Vec::new();
    check::<FileKind>(&mut stale);
    check::<OcrWord>(&mut stale);
    check::<DocumentState>(&mut stale);
    check::<DocumentInfo>(&mut stale);
    check::<Failure>(&mut stale);
    check::<IndexReport>(&mut stale);
    check::<SearchMode>(&mut stale);
    check::<SearchHit>(&mut stale);
    check::<LibraryStatus>(&mut stale);
    check::<AnswerMode>(&mut stale);
    check::<AskOptions>(&mut stale);
    check::<Passage>(&mut stale);
    check::<Citation>(&mut stale);
    check::<AnswerSentence>(&mut stale);
    check::<AnswerTimings>(&mut stale);
    check::<GateDecision>(&mut stale);
    check::<AbstainCause>(&mut stale);
    check::<quarry::language::TextLanguage>(&mut stale);
    check::<EarlyStop>(&mut stale);
    check::<FallbackCause>(&mut stale);
    check::<Answer>(&mut stale);
    check::<PageStart>(&mut stale);
    check::<DocumentText>(&mut stale);
    check::<IndexProgress>(&mut stale);
    check::<AppSettings>(&mut stale);
    check::<quarry::config::LibrarySettings>(&mut stale);
    check::<ModelSummary>(&mut stale);
    check::<CatalogModel>(&mut stale);
    check::<PullProgress>(&mut stale);
    check::<ModelsOverview>(&mut stale);
    check::<AnswerStage>(&mut stale);
    check::<AskScope>(&mut stale);
    check::<quarry::api::AnswerConversation>(&mut stale);
    check::<quarry::api::QuestionRewrite>(&mut stale);
    check::<quarry::api::Thread>(&mut stale);
    check::<quarry::api::ThreadTurn>(&mut stale);
    check::<quarry::api::ThreadSummary>(&mut stale);
    check::<quarry::api::ThreadExportFormat>(&mut stale);
    assert!(
        stale.is_empty(),
        "stale TypeScript bindings (run `QUARRY_BLESS_BINDINGS=1 cargo test bindings` and commit): {stale:?}"
    );
}
