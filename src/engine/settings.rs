//! The settings a user changes while the engine runs (the Settings view, `quarry settings
//! set`): the evidence threshold, passages per question, answer length and OCR take effect at
//! once and are saved in `<library>/settings.json` for the next start; the models folder is
//! saved and used from the next start.

use super::Engine;
use crate::api::{AppSettings, AskOptions};
use crate::config::{EngineConfig, LibrarySettings};
use crate::error::Result;

/// The part of the settings that can change under a running engine.
#[derive(Debug, Clone)]
pub(super) struct LiveSettings {
    pub gate_threshold: f32,
    pub passages_per_question: usize,
    pub max_answer_tokens: usize,
    pub ocr: Option<crate::ingest::ocr::OcrOptions>,
}

impl LiveSettings {
    pub(super) fn of(config: &EngineConfig) -> Self {
        Self {
            gate_threshold: config.answer.gate_threshold,
            passages_per_question: config.answer.passages_per_question,
            max_answer_tokens: config.answer.max_answer_tokens,
            ocr: config.extraction.ocr.clone(),
        }
    }
}

impl Engine {
    pub(super) fn live_settings(&self) -> LiveSettings {
        match self.live.read() {
            Ok(live) => live.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// The engine's settings with the live ones in place, for a run starting now.
    pub(super) fn run_config(&self) -> EngineConfig {
        let live = self.live_settings();
        let mut config = self.config.clone();
        config.answer.gate_threshold = live.gate_threshold;
        config.answer.passages_per_question = live.passages_per_question;
        config.answer.max_answer_tokens = live.max_answer_tokens;
        config.extraction.ocr = live.ocr;
        config
    }

    /// What a question is asked with when the caller names nothing else: the passages per
    /// question and answer length of the settings.
    pub fn ask_options(&self) -> AskOptions {
        let live = self.live_settings();
        AskOptions {
            k: live.passages_per_question,
            max_tokens: live.max_answer_tokens,
            ..AskOptions::default()
        }
    }

    /// Changes the settings `change` names (the others keep their values): refused whole,
    /// naming the field, when a value is out of range; otherwise saved for the library and
    /// applied at once (the models folder from the next start). Returns the settings as they
    /// are now.
    pub fn update_settings(&self, change: &LibrarySettings) -> Result<AppSettings> {
        change.validate()?;
        let saved = LibrarySettings::read(&self.config.data_dir).merged(change);
        saved.save(&self.config.data_dir)?;
        let mut config = self.run_config();
        LibrarySettings { models_dir: None, ..change.clone() }.apply(&mut config);
        let live = LiveSettings::of(&config);
        match self.live.write() {
            Ok(mut current) => *current = live,
            Err(poisoned) => *poisoned.into_inner() = live,
        }
        Ok(self.app_settings())
    }
}
