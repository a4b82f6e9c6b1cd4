//! The words Quarry itself writes into an answer (the refusal, why it abstained, why it quoted
//! instead of writing, why the model was stopped) in the question's language: one catalog,
//! English and German, so no message is assembled from pieces.

use crate::api::{AbstainCause, EarlyStop, FallbackCause};
use crate::language::TextLanguage;

/// The sentence an abstention answers with, which the model is also told to reply with.
pub fn refusal(language: TextLanguage) -> &'static str {
    match language {
        TextLanguage::English => "I could not find the answer in your documents.",
        TextLanguage::German => "Ich konnte die Antwort in Ihren Dokumenten nicht finden.",
    }
}

/// Every refusal sentence of the catalog (a model may answer a German question in English).
pub const REFUSALS: [&str; 2] = [
    "I could not find the answer in your documents.",
    "Ich konnte die Antwort in Ihren Dokumenten nicht finden.",
];

/// Why Quarry abstained.
pub fn abstain_reason(cause: AbstainCause, language: TextLanguage) -> &'static str {
    match language {
        TextLanguage::English => cause.describe(),
        TextLanguage::German => match cause {
            AbstainCause::WeakEvidence => {
                "keine Passage der Bibliothek beantwortet die Frage genau genug"
            }
            AbstainCause::NothingToQuote => {
                "kein Satz der gefundenen Passagen passt genau genug, um ihn zu zitieren"
            }
            AbstainCause::ModelRefused => "das Modell fand in den Passagen keine Antwort",
            AbstainCause::Unsupported => {
                "kein Satz der Antwort des Modells wird von den zitierten Passagen gestützt"
            }
        },
    }
}

/// Why a generated answer became quotes of the evidence.
pub fn fallback_reason(cause: FallbackCause, language: TextLanguage) -> &'static str {
    match language {
        TextLanguage::English => cause.describe(),
        TextLanguage::German => match cause {
            FallbackCause::Degenerate => {
                "die Antwort des Modells lief in eine Schleife; stattdessen die besten Sätze der \
                 Passagen"
            }
            FallbackCause::GenerationFailed => {
                "das Modell konnte nicht antworten; stattdessen die besten Sätze der Passagen"
            }
            FallbackCause::MarkersOnly => {
                "das Modell nannte nur Passagen, ohne zu antworten; hier ihre besten Sätze"
            }
        },
    }
}

/// Why the model's writing was cut short.
pub fn early_stop_reason(stop: EarlyStop, language: TextLanguage) -> &'static str {
    match language {
        TextLanguage::English => stop.describe(),
        TextLanguage::German => match stop {
            EarlyStop::MarkerLoop => "das Modell wiederholte Quellenverweise, ohne zu schreiben",
            EarlyStop::RepeatedText => "das Modell wiederholte sich",
            EarlyStop::LongCopy => "das Modell kopierte eine Passage in voller Länge",
            EarlyStop::MaxTokens => "das Modell schrieb bis zur Längengrenze",
        },
    }
}

/// The instruction that makes the model answer in the question's language (none for English:
/// it is what the model writes unasked, and the English prompt stays as measured).
pub fn answer_language_rule(language: TextLanguage) -> Option<&'static str> {
    match language {
        TextLanguage::English => None,
        TextLanguage::German => Some("The question is in German: answer in German."),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_message_exists_in_both_languages_and_differs() {
        for language in [TextLanguage::English, TextLanguage::German] {
            assert!(REFUSALS.contains(&refusal(language)));
        }
        let causes = [
            AbstainCause::WeakEvidence,
            AbstainCause::NothingToQuote,
            AbstainCause::ModelRefused,
            AbstainCause::Unsupported,
        ];
        for cause in causes {
            assert_ne!(
                abstain_reason(cause, TextLanguage::English),
                abstain_reason(cause, TextLanguage::German)
            );
        }
        for cause in
            [FallbackCause::Degenerate, FallbackCause::GenerationFailed, FallbackCause::MarkersOnly]
        {
            assert_ne!(
                fallback_reason(cause, TextLanguage::English),
                fallback_reason(cause, TextLanguage::German)
            );
        }
        for stop in [
            EarlyStop::MarkerLoop,
            EarlyStop::RepeatedText,
            EarlyStop::LongCopy,
            EarlyStop::MaxTokens,
        ] {
            assert_ne!(
                early_stop_reason(stop, TextLanguage::English),
                early_stop_reason(stop, TextLanguage::German)
            );
        }
    }
}
