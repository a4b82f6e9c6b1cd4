//! Renders a model's own chat template (GGUF `tokenizer.chat_template` or
//! `tokenizer_config.json`) with minijinja, set up like Hugging Face transformers does it
//! (`trim_blocks`, `lstrip_blocks`, Python string methods, `raise_exception`, `strftime_now`),
//! so prompts are exactly what the model was trained on rather than a hand-written imitation.

use chrono::{DateTime, Local};
use minijinja::{Environment, ErrorKind, context};

use super::{ChatMessage, GenerateError};

/// A chat template with the special tokens it refers to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChatTemplate {
    source: String,
    bos_token: String,
    eos_token: String,
}

impl ChatTemplate {
    /// A template from its Jinja source; fails when the source does not parse.
    pub fn new(
        source: impl Into<String>,
        bos_token: impl Into<String>,
        eos_token: impl Into<String>,
    ) -> Result<Self, GenerateError> {
        let template = Self {
            source: source.into(),
            bos_token: bos_token.into(),
            eos_token: eos_token.into(),
        };
        let env = environment(Local::now());
        env.template_from_str(&template.source).map_err(template_error)?;
        Ok(template)
    }

    /// The Jinja source.
    pub fn source(&self) -> &str {
        &self.source
    }

    /// Renders `messages`, ending with the assistant's header when `add_generation_prompt`.
    pub fn render(
        &self,
        messages: &[ChatMessage],
        add_generation_prompt: bool,
    ) -> Result<String, GenerateError> {
        self.render_at(messages, add_generation_prompt, Local::now())
    }

    /// Like [`Self::render`], with `now` as the date templates may print (Llama 3 does).
    pub fn render_at(
        &self,
        messages: &[ChatMessage],
        add_generation_prompt: bool,
        now: DateTime<Local>,
    ) -> Result<String, GenerateError> {
        let env = environment(now);
        let template = env.template_from_str(&self.source).map_err(template_error)?;
        let render = |messages: &[ChatMessage]| {
            template
                .render(context! {
                    messages => messages,
                    add_generation_prompt => add_generation_prompt,
                    bos_token => self.bos_token,
                    eos_token => self.eos_token,
                })
                .map_err(template_error)
        };
        match render(messages) {
            // Templates without a system role (Mistral v0.1, Gemma 2) refuse one; the system
            // text then opens the first user turn, as transformers users do it.
            Err(err) => match fold_system(messages) {
                Some(folded) => render(&folded).map_err(|_| err),
                None => Err(err),
            },
            ok => ok,
        }
    }
}

/// `messages` with a leading system message merged into the first user message.
fn fold_system(messages: &[ChatMessage]) -> Option<Vec<ChatMessage>> {
    let (system, rest) = messages.split_first()?;
    if system.role != "system" || rest.first().is_none_or(|m| m.role != "user") {
        return None;
    }
    let mut folded = rest.to_vec();
    folded[0].content = format!("{}\n\n{}", system.content, folded[0].content);
    Some(folded)
}

fn template_error(err: minijinja::Error) -> GenerateError {
    let mut message = err.to_string();
    let mut source = std::error::Error::source(&err);
    while let Some(cause) = source {
        message.push_str(&format!(": {cause}"));
        source = cause.source();
    }
    GenerateError::Template(message)
}

/// A Jinja environment that behaves like transformers' `apply_chat_template`.
fn environment(now: DateTime<Local>) -> Environment<'static> {
    let mut env = Environment::new();
    env.set_trim_blocks(true);
    env.set_lstrip_blocks(true);
    minijinja_contrib::add_to_environment(&mut env);
    env.set_unknown_method_callback(minijinja_contrib::pycompat::unknown_method_callback);
    env.add_function("raise_exception", |message: String| -> Result<String, minijinja::Error> {
        Err(minijinja::Error::new(ErrorKind::InvalidOperation, message))
    });
    env.add_function("strftime_now", move |format: String| -> Result<String, minijinja::Error> {
        use std::fmt::Write;
        let mut out = String::new();
        write!(out, "{}", now.format(&format)).map_err(|_| {
            minijinja::Error::new(
                ErrorKind::InvalidOperation,
                format!("bad date format {format:?}"),
            )
        })?;
        Ok(out)
    });
    env
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn python_methods_and_errors_work() {
        let t = ChatTemplate::new(
            "{% for m in messages %}{% if m.role not in ['user'] %}{{ raise_exception('only users') }}{% endif %}\
             {{ bos_token }}{{ m.content.strip() | upper }}{% endfor %}",
            "<s>",
            "</s>",
        )
        .unwrap();
        assert_eq!(t.render(&[ChatMessage::user("  hi ")], true).unwrap(), "<s>HI");
        let err = t.render(&[ChatMessage::system("x")], true).unwrap_err();
        assert!(err.to_string().contains("only users"), "{err}");
        assert!(ChatTemplate::new("{% for %}", "", "").is_err());
    }

    #[test]
    fn a_template_without_a_system_role_gets_the_system_text_in_the_first_user_turn() {
        let t = ChatTemplate::new(
            "{{ bos_token }}{% for m in messages %}{% if m.role == 'user' %}[INST] {{ m.content }} [/INST]\
             {% else %}{{ raise_exception('Only user and assistant roles are supported!') }}{% endif %}{% endfor %}",
            "<s>",
            "</s>",
        )
        .unwrap();
        let messages = [ChatMessage::system("Use the passages."), ChatMessage::user("Why?")];
        assert_eq!(
            t.render(&messages, true).unwrap(),
            "<s>[INST] Use the passages.\n\nWhy? [/INST]"
        );
    }
}
