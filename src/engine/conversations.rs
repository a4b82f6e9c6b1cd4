//! Conversations on the engine: a follow-up made standalone before the search (by the model
//! when there is one and its rewrite passes the checks, else by the rules of
//! `conversation::rewrite`), and the saved threads listed, renamed, deleted and exported.

use std::sync::Arc;

use super::Engine;
use super::answering::LoadedGenerator;
use crate::answer::audit;
use crate::api::{
    AnswerConversation, AnswerStage, NEW_THREAD, QuestionRewrite, Thread, ThreadExportFormat,
    ThreadSummary,
};
use crate::conversation::rewrite::{self, PriorTurn};
use crate::error::{Error, Result};
use crate::generate::{GenerationParams, TokenSink};
use crate::language::TextLanguage;
use crate::progress::CancelToken;

/// Most tokens a rewritten follow-up may take.
const REWRITE_MAX_TOKENS: usize = 64;

/// A question placed in its conversation: what to search for, and the turn's record.
pub(super) struct FollowUp {
    /// The standalone question.
    pub question: String,
    pub turn: AnswerConversation,
}

impl Engine {
    /// `question` as turn of `thread` (an id, or [`NEW_THREAD`]): rewritten into a standalone
    /// question when it leans on the previous turn. The thread is saved with the answer.
    pub(super) async fn follow_up(
        &self,
        thread: &str,
        question: &str,
        generator: Option<&Arc<LoadedGenerator>>,
        sink: &mut dyn TokenSink,
        cancel: &CancelToken,
    ) -> Result<FollowUp> {
        let (thread_id, previous) = if thread == NEW_THREAD {
            (self.threads.new_id(), None)
        } else {
            let saved = self.threads.load(thread)?;
            let last = saved.turns.last().map(|t| t.answer.clone());
            (saved.id, last.map(|a| (saved.turns.len(), a)))
        };
        let turn = previous.as_ref().map_or(1, |(n, _)| *n as u32 + 1);
        let mut follow_up = FollowUp {
            question: question.to_owned(),
            turn: AnswerConversation {
                thread_id,
                turn,
                asked: question.to_owned(),
                rewritten_by: QuestionRewrite::Unchanged,
            },
        };
        let Some((_, last)) = previous else { return Ok(follow_up) };
        let prior = PriorTurn { question: &last.question };
        let language = TextLanguage::of_answer(question);
        if !rewrite::looks_like_follow_up(question, language) {
            return Ok(follow_up);
        }
        let by_model = match generator {
            Some(generator) => {
                let params = GenerationParams {
                    max_tokens: REWRITE_MAX_TOKENS,
                    stop: vec!["\n".to_owned()],
                    ..Default::default()
                };
                match generator
                    .complete(rewrite::model_messages(question, &prior), params, cancel)
                    .await
                {
                    Ok(text) => rewrite::accept_model_rewrite(&text, question, &prior, language),
                    Err(Error::Cancelled) => return Err(Error::Cancelled),
                    Err(e) => {
                        tracing::warn!(target: "engine::answer", "rewriting the follow-up: {e}; using the rules");
                        None
                    }
                }
            }
            None => None,
        };
        let (rewritten, by) = match by_model {
            Some(text) => (Some(text), QuestionRewrite::Model),
            None => (rewrite::by_rules(question, &prior, language), QuestionRewrite::Rules),
        };
        if let Some(rewritten) = rewritten {
            tracing::debug!(target: "engine::answer", asked = question, searched = %rewritten, ?by, "follow-up rewritten");
            sink.stage(AnswerStage::Rewritten { question: rewritten.clone(), by });
            follow_up.question = rewritten;
            follow_up.turn.rewritten_by = by;
        }
        Ok(follow_up)
    }

    /// The library's conversations, the most recently changed first.
    pub fn threads(&self) -> Result<Vec<ThreadSummary>> {
        self.threads.list()
    }

    /// The conversation `id` with every turn.
    pub fn thread(&self, id: &str) -> Result<Thread> {
        self.threads.load(id)
    }

    /// Renames the conversation `id`.
    pub fn rename_thread(&self, id: &str, title: &str) -> Result<ThreadSummary> {
        self.threads.rename(id, title)
    }

    /// Deletes the conversation `id`; its answers stay in the audit log.
    pub fn delete_thread(&self, id: &str) -> Result<()> {
        self.threads.delete(id)
    }

    /// The conversation `id` exported (see `conversation::export`), with the audit records of
    /// its answers for JSON.
    pub fn export_thread(&self, id: &str, format: ThreadExportFormat) -> Result<String> {
        let thread = self.threads.load(id)?;
        let records = match format {
            ThreadExportFormat::Json => audit::read(&audit::log_path(self.store.dir()), None)?
                .into_iter()
                .filter(|r| r.conversation.as_ref().is_some_and(|c| c.thread_id == thread.id))
                .collect(),
            ThreadExportFormat::Markdown => Vec::new(),
        };
        crate::conversation::export(&thread, &records, format)
    }
}
