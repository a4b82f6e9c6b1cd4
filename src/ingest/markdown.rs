//! Markdown: the source text is kept as written (so spans point into the file), cut into sections
//! at headings, each section carrying its heading path ("Setup > Linux").

use std::path::Path;

use pulldown_cmark::{Event, HeadingLevel, Parser, Tag, TagEnd};

use super::text::decode_text;
use super::{DocumentExtractor, Extracted};
use crate::api::FileKind;
use crate::error::ExtractError;

/// Extracts `.md` files.
#[derive(Debug)]
pub struct MarkdownExtractor;

impl DocumentExtractor for MarkdownExtractor {
    fn name(&self) -> &'static str {
        "markdown"
    }

    fn accepts(&self, kind: FileKind) -> bool {
        kind == FileKind::Markdown
    }

    fn extract(&self, _path: &Path, bytes: &[u8]) -> Result<Extracted, ExtractError> {
        let mut res = Extracted { pages: 1, ..Extracted::default() };
        let source = decode_text(bytes, &mut res.warnings);
        let headings = headings(&source);
        res.title = headings.iter().find(|h| h.level == 1).map(|h| h.text.clone());
        let mut path: Vec<(usize, String)> = Vec::new();
        let mut start = 0;
        let mut current_path: Vec<String> = Vec::new();
        for heading in &headings {
            res.push_section(1, current_path.clone(), &source[start..heading.offset]);
            start = heading.offset;
            path.retain(|(level, _)| *level < heading.level);
            path.push((heading.level, heading.text.clone()));
            current_path = path.iter().map(|(_, t)| t.clone()).collect();
        }
        res.push_section(1, current_path, &source[start..]);
        Ok(res)
    }
}

struct Heading {
    level: usize,
    text: String,
    offset: usize,
}

fn headings(source: &str) -> Vec<Heading> {
    let mut res = Vec::new();
    let mut open: Option<Heading> = None;
    for (event, range) in Parser::new(source).into_offset_iter() {
        match event {
            Event::Start(Tag::Heading { level, .. }) => {
                open = Some(Heading {
                    level: level_number(level),
                    text: String::new(),
                    offset: range.start,
                });
            }
            Event::Text(t) | Event::Code(t) => {
                if let Some(h) = open.as_mut() {
                    h.text.push_str(&t);
                }
            }
            Event::End(TagEnd::Heading(_)) => {
                if let Some(mut h) = open.take() {
                    h.text = h.text.trim().to_owned();
                    res.push(h);
                }
            }
            _ => {}
        }
    }
    res
}

fn level_number(level: HeadingLevel) -> usize {
    match level {
        HeadingLevel::H1 => 1,
        HeadingLevel::H2 => 2,
        HeadingLevel::H3 => 3,
        HeadingLevel::H4 => 4,
        HeadingLevel::H5 => 5,
        HeadingLevel::H6 => 6,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sections_follow_headings() {
        let md = "Preface.\n\n# Guide\n\nIntro.\n\n## Setup\n\nRun it.\n\n## Use\n\nAsk.\n\n# Notes\n\nEnd.\n";
        let doc = MarkdownExtractor.extract(Path::new("a.md"), md.as_bytes()).unwrap();
        assert_eq!(doc.text, md);
        assert_eq!(doc.title.as_deref(), Some("Guide"));
        let got: Vec<(String, &str)> = doc
            .sections
            .iter()
            .map(|s| (s.heading.join(" > "), doc.text[s.start..s.end].trim()))
            .collect();
        assert_eq!(
            got,
            vec![
                ("".into(), "Preface."),
                ("Guide".into(), "# Guide\n\nIntro."),
                ("Guide > Setup".into(), "## Setup\n\nRun it."),
                ("Guide > Use".into(), "## Use\n\nAsk."),
                ("Notes".into(), "# Notes\n\nEnd."),
            ]
        );
    }
}
