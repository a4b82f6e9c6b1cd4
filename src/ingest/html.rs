//! HTML: the visible text (no scripts, styles or hidden templates) and the `<title>`, cut into
//! sections at `<h1>`–`<h6>` so citations can name the heading.

use std::path::Path;

use scraper::{Html, Node};

use super::text::decode_text;
use super::{DocumentExtractor, Extracted};
use crate::api::FileKind;
use crate::error::ExtractError;

/// Extracts `.html` pages.
#[derive(Debug)]
pub struct HtmlExtractor;

impl DocumentExtractor for HtmlExtractor {
    fn name(&self) -> &'static str {
        "html"
    }

    fn accepts(&self, kind: FileKind) -> bool {
        kind == FileKind::Html
    }

    fn extract(&self, _path: &Path, bytes: &[u8]) -> Result<Extracted, ExtractError> {
        let mut res = Extracted { pages: 1, ..Extracted::default() };
        let source = decode_text(bytes, &mut res.warnings);
        let page = HtmlPage::parse(&source);
        res.title = page.title.clone();
        res.warnings.extend(page.hidden_warning());
        for (heading, text) in page.sections {
            res.push_section(1, heading, &text);
        }
        Ok(res)
    }
}

/// An HTML page's visible text: its title and its sections (heading path and text, every
/// section after the first starting with a blank line).
pub(super) struct HtmlPage {
    pub(super) title: Option<String>,
    pub(super) sections: Vec<(Vec<String>, String)>,
    hidden_with_text: usize,
}

impl HtmlPage {
    /// Parses `source` (also XHTML, as in e-books).
    pub(super) fn parse(source: &str) -> Self {
        let document = Html::parse_document(source);
        let mut walker = Walker::default();
        walker.walk(document.tree.root());
        walker.flush();
        Self {
            title: title(&document),
            sections: walker.sections,
            hidden_with_text: walker.hidden_with_text,
        }
    }

    /// The warning about hidden elements that held text, if there were any.
    pub(super) fn hidden_warning(&self) -> Option<String> {
        (self.hidden_with_text > 0).then(|| {
            format!(
                "hidden text: {} hidden {} (hidden, display: none) left out of the index",
                self.hidden_with_text,
                if self.hidden_with_text == 1 { "element with text" } else { "elements with text" }
            )
        })
    }
}

/// The first `<title>`, whitespace collapsed.
fn title(document: &Html) -> Option<String> {
    let selector = scraper::Selector::parse("title").ok()?;
    let element = document.select(&selector).next()?;
    let text = collapse_spaces(&element.text().collect::<String>());
    (!text.is_empty()).then_some(text)
}

#[derive(Default)]
struct Walker {
    sections: Vec<(Vec<String>, String)>,
    path: Vec<(usize, String)>,
    current: String,
    line: String,
    /// Elements hidden from readers (`hidden`, `display: none`) that held text.
    hidden_with_text: usize,
}

/// Elements whose content is never shown.
const HIDDEN: &[&str] = &["script", "style", "noscript", "template", "head", "svg", "iframe"];
/// Elements that start a new line.
const BLOCKS: &[&str] = &[
    "p",
    "div",
    "br",
    "li",
    "ul",
    "ol",
    "tr",
    "table",
    "section",
    "article",
    "header",
    "footer",
    "blockquote",
    "pre",
    "dt",
    "dd",
    "dl",
    "figure",
    "figcaption",
    "hr",
    "main",
    "nav",
    "aside",
    "form",
    "h1",
    "h2",
    "h3",
    "h4",
    "h5",
    "h6",
    "td",
    "th",
];

impl Walker {
    fn walk(&mut self, node: ego_tree::NodeRef<'_, Node>) {
        match node.value() {
            Node::Text(t) => self.line.push_str(t),
            Node::Element(el) => {
                let name = el.name();
                if HIDDEN.contains(&name) {
                    return;
                }
                if el.attr("hidden").is_some() || is_display_none(el) {
                    if !node_text(node).trim().is_empty() {
                        self.hidden_with_text += 1;
                    }
                    return;
                }
                if let Some(level) = heading_level(name) {
                    self.break_line();
                    self.start_section(level, collapse_spaces(&node_text(node)));
                }
                let block = BLOCKS.contains(&name);
                if block {
                    self.break_line();
                }
                for child in node.children() {
                    self.walk(child);
                }
                if block {
                    self.break_line();
                }
            }
            _ => {
                for child in node.children() {
                    self.walk(child);
                }
            }
        }
    }

    fn break_line(&mut self) {
        let line = collapse_spaces(&self.line);
        self.line.clear();
        if !line.is_empty() {
            if !self.current.is_empty() {
                self.current.push('\n');
            }
            self.current.push_str(&line);
        }
    }

    fn start_section(&mut self, level: usize, title: String) {
        self.flush();
        self.path.retain(|(l, _)| *l < level);
        self.path.push((level, title));
    }

    fn flush(&mut self) {
        self.break_line();
        if !self.current.is_empty() {
            let heading = self.path.iter().map(|(_, t)| t.clone()).collect();
            let mut text = std::mem::take(&mut self.current);
            if !self.sections.is_empty() {
                text.insert_str(0, "\n\n");
            }
            self.sections.push((heading, text));
        }
    }
}

fn heading_level(name: &str) -> Option<usize> {
    match name {
        "h1" => Some(1),
        "h2" => Some(2),
        "h3" => Some(3),
        "h4" => Some(4),
        "h5" => Some(5),
        "h6" => Some(6),
        _ => None,
    }
}

fn is_display_none(el: &scraper::node::Element) -> bool {
    el.attr("style").is_some_and(|s| {
        let s: String =
            s.chars().filter(|c| !c.is_whitespace()).collect::<String>().to_ascii_lowercase();
        s.contains("display:none") || s.contains("visibility:hidden")
    })
}

fn node_text(node: ego_tree::NodeRef<'_, Node>) -> String {
    let mut res = String::new();
    for d in node.descendants() {
        if let Node::Text(t) = d.value() {
            res.push_str(t);
        }
    }
    res
}

fn collapse_spaces(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn visible_text_title_and_headings() {
        let html = r#"<!doctype html><html><head><title> Lease  terms </title>
            <style>p { color: red }</style><script>var x = "secret";</script></head>
            <body><p>Intro <b>bold</b> text.</p><div hidden>invisible</div>
            <h1>Notice</h1><p>Three months.</p><p style="display: none">ghost</p>
            <h2>Exceptions</h2><ul><li>One</li><li>Two</li></ul></body></html>"#;
        let doc = HtmlExtractor.extract(Path::new("a.html"), html.as_bytes()).unwrap();
        assert_eq!(doc.title.as_deref(), Some("Lease terms"));
        assert_eq!(doc.text, "Intro bold text.\n\nNotice\nThree months.\n\nExceptions\nOne\nTwo");
        let headings: Vec<String> = doc.sections.iter().map(|s| s.heading.join(" > ")).collect();
        assert_eq!(headings, vec!["", "Notice", "Notice > Exceptions"]);
        assert_eq!(
            doc.warnings,
            vec![
                "hidden text: 2 hidden elements with text (hidden, display: none) left out of the index"
            ]
        );
    }
}
