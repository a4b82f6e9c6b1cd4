//! Rich Text Format (`.rtf`: WordPad, many exports and old office files): the visible text
//! with its paragraphs, page breaks (`\page`, `\pagebb` before a paragraph, and sections that
//! start on a new page: `\sect`, unless the next section says `\sbknone`) and headings
//! (paragraphs with an `\outlinelevelN`), `\'hh` bytes decoded in the document's code page
//! (`\ansicpg`, Windows-1252 by default) and `\uN` characters; font, colour and style tables,
//! pictures, field instructions and other destinations left out; the title from `\info`.
//! Written here rather than taken from a crate: the few RTF crates found either keep no code
//! page or panic on malformed input, and what Quarry needs is this small state machine.

use std::path::Path;

use encoding_rs::{Encoding, WINDOWS_1252};

use super::{DocumentExtractor, Extracted};
use crate::api::FileKind;
use crate::error::ExtractError;

/// Extracts `.rtf` files.
#[derive(Debug)]
pub struct RtfExtractor;

impl DocumentExtractor for RtfExtractor {
    fn name(&self) -> &'static str {
        "rtf"
    }

    fn accepts(&self, kind: FileKind) -> bool {
        kind == FileKind::Rtf
    }

    fn extract(&self, _path: &Path, bytes: &[u8]) -> Result<Extracted, ExtractError> {
        if !bytes.trim_ascii_start().starts_with(b"{\\rtf") {
            return Err(ExtractError::Malformed("not RTF: it does not start with {\\rtf".into()));
        }
        let doc = parse(bytes);
        let mut res = Extracted { pages: doc.pages.len().max(1) as u32, ..Extracted::default() };
        for (page, heading, text) in &doc.blocks {
            res.push_block(*page, heading.clone(), text);
        }
        let title = doc.title.trim();
        res.title = (!title.is_empty()).then(|| title.to_owned());
        Ok(res)
    }
}

/// Destinations whose text is not part of the document's visible text.
const SKIPPED: &[&str] = &[
    "fonttbl",
    "colortbl",
    "stylesheet",
    "listtable",
    "listoverridetable",
    "pict",
    "object",
    "header",
    "headerl",
    "headerr",
    "headerf",
    "footer",
    "footerl",
    "footerr",
    "footerf",
    "fldinst",
    "themedata",
    "colorschememapping",
    "datastore",
    "latentstyles",
    "rsidtbl",
    "xmlnstbl",
    "generator",
    "filetbl",
    "revtbl",
    "pgdsctbl",
    "bkmkstart",
    "bkmkend",
    "private",
    "nonshppict",
    "info",
];

#[derive(Clone, Copy)]
struct Group {
    /// Text in this group is not shown.
    skip: bool,
    /// Characters to skip after a `\uN` (its ANSI stand-in).
    uc: usize,
    /// Inside `\info`'s `\title`.
    title: bool,
}

struct Parsed {
    /// Each page's text.
    pages: Vec<String>,
    /// The pages cut at headings: (page, heading path, text).
    blocks: Vec<(u32, Vec<String>, String)>,
    title: String,
}

struct Output {
    encoding: &'static Encoding,
    pages: Vec<String>,
    pending: Vec<u8>,
    title: String,
    /// Where the current paragraph starts in the last page.
    paragraph_start: usize,
    /// The current paragraph's outline level (1 = top), from `\outlinelevelN`: a heading.
    paragraph_level: Option<usize>,
    /// Headings found: (page index, start, end in that page's text, level).
    headings: Vec<(usize, usize, usize, usize)>,
    /// A section ended (`\sect`) and the next one starts on a new page, RTF's default
    /// (`\sbkpage`), unless its properties say it runs on (`\sbknone`, `\sbkcol`).
    section_break: bool,
}

impl Output {
    fn flush(&mut self, title: bool) {
        if self.pending.is_empty() {
            return;
        }
        if !title {
            self.start_text();
        }
        let (text, _, _) = self.encoding.decode(&self.pending);
        if title {
            self.title.push_str(&text);
        } else if let Some(page) = self.pages.last_mut() {
            page.push_str(&text);
        }
        self.pending.clear();
    }

    /// Starts a new page (a paragraph starts with it).
    fn new_page(&mut self) {
        self.pages.push(String::new());
        self.paragraph_start = 0;
    }

    /// Ends the current paragraph, noting it as a heading when it has an outline level.
    fn end_paragraph(&mut self) {
        self.flush(false);
        let page = self.pages.len() - 1;
        let end = self.pages[page].len();
        if let Some(level) = self.paragraph_level
            && !self.pages[page][self.paragraph_start..end].trim().is_empty()
        {
            self.headings.push((page, self.paragraph_start, end, level));
        }
        self.pages[page].push('\n');
        self.paragraph_start = self.pages[page].len();
    }

    /// Text is about to be written: a section that starts on a new page starts it now (a
    /// page with nothing on it yet gets no new one).
    fn start_text(&mut self) {
        if std::mem::take(&mut self.section_break)
            && self.pages.last().is_some_and(|page| !page.trim().is_empty())
        {
            self.new_page();
        }
    }

    fn push(&mut self, title: bool, c: char) {
        self.flush(title);
        if !title {
            self.start_text();
        }
        if title {
            self.title.push(c);
        } else if let Some(page) = self.pages.last_mut() {
            page.push(c);
        }
    }
}

fn parse(bytes: &[u8]) -> Parsed {
    let mut out = Output {
        encoding: WINDOWS_1252,
        pages: vec![String::new()],
        pending: Vec::new(),
        title: String::new(),
        paragraph_start: 0,
        paragraph_level: None,
        headings: Vec::new(),
        section_break: false,
    };
    let mut stack: Vec<Group> = Vec::new();
    let mut group = Group { skip: false, uc: 1, title: false };
    let mut skip_chars = 0usize;
    let mut at = 0;
    // The first control word of a group decides whether it is a skipped destination.
    let mut group_start = false;
    while at < bytes.len() {
        let b = bytes[at];
        at += 1;
        match b {
            b'{' => {
                out.flush(group.title);
                stack.push(group);
                group_start = true;
                skip_chars = 0;
                continue;
            }
            b'}' => {
                out.flush(group.title);
                group = stack.pop().unwrap_or(group);
                skip_chars = 0;
                continue;
            }
            b'\r' | b'\n' => continue,
            b'\\' => {
                let Some(&next) = bytes.get(at) else { break };
                if next.is_ascii_alphabetic() {
                    let start = at;
                    while at < bytes.len() && bytes[at].is_ascii_alphabetic() {
                        at += 1;
                    }
                    let word = std::str::from_utf8(&bytes[start..at]).unwrap_or("");
                    let num_start = at;
                    if at < bytes.len() && bytes[at] == b'-' {
                        at += 1;
                    }
                    while at < bytes.len() && bytes[at].is_ascii_digit() {
                        at += 1;
                    }
                    let param: Option<i64> = std::str::from_utf8(&bytes[num_start..at])
                        .ok()
                        .and_then(|n| n.parse().ok());
                    if at < bytes.len() && bytes[at] == b' ' {
                        at += 1;
                    }
                    let first = std::mem::take(&mut group_start);
                    if first && SKIPPED.contains(&word) {
                        out.flush(group.title);
                        group.skip = true;
                    }
                    if word == "title" && stack.len() >= 2 {
                        group.title = true;
                        group.skip = false;
                    }
                    control_word(word, param, &mut group, &mut out, &mut skip_chars);
                    continue;
                }
                at += 1;
                group_start = false;
                match next {
                    b'\'' => {
                        let hex = bytes.get(at..at + 2).and_then(|h| std::str::from_utf8(h).ok());
                        at += 2;
                        if let Some(byte) = hex.and_then(|h| u8::from_str_radix(h, 16).ok()) {
                            if skip_chars > 0 {
                                skip_chars -= 1;
                            } else if !group.skip || group.title {
                                out.pending.push(byte);
                            }
                        }
                    }
                    b'*' => {
                        out.flush(group.title);
                        group.skip = true;
                    }
                    b'~' if !group.skip => out.push(group.title, '\u{a0}'),
                    b'_' if !group.skip => out.push(group.title, '\u{2011}'),
                    b'\n' | b'\r' if !group.skip => out.push(group.title, '\n'),
                    b'\\' | b'{' | b'}' if !group.skip || group.title => {
                        out.push(group.title, next as char)
                    }
                    _ => {}
                }
                continue;
            }
            _ => {}
        }
        group_start = false;
        if skip_chars > 0 {
            skip_chars -= 1;
            continue;
        }
        if !group.skip || group.title {
            out.pending.push(b);
        }
    }
    out.flush(group.title);
    let blocks = blocks_at_headings(&out.pages, &out.headings);
    let pages = out.pages.iter().map(|p| tidy(p)).collect();
    Parsed { pages, blocks, title: out.title }
}

/// The pages cut where headings start, each block with the heading path above it.
fn blocks_at_headings(
    pages: &[String],
    headings: &[(usize, usize, usize, usize)],
) -> Vec<(u32, Vec<String>, String)> {
    let mut blocks = Vec::new();
    let mut path: Vec<(usize, String)> = Vec::new();
    for (index, page) in pages.iter().enumerate() {
        let number = index as u32 + 1;
        let mut from = 0;
        for &(_, start, end, level) in headings.iter().filter(|h| h.0 == index) {
            let before = tidy(&page[from..start]);
            if !before.is_empty() {
                blocks.push((number, path.iter().map(|(_, t)| t.clone()).collect(), before));
            }
            path.retain(|(l, _)| *l < level);
            path.push((level, tidy(&page[start..end]).replace('\n', " ")));
            from = start;
        }
        let rest = tidy(&page[from..]);
        if !rest.is_empty() {
            blocks.push((number, path.iter().map(|(_, t)| t.clone()).collect(), rest));
        }
    }
    blocks
}

fn control_word(
    word: &str,
    param: Option<i64>,
    group: &mut Group,
    out: &mut Output,
    skip_chars: &mut usize,
) {
    match word {
        "ansicpg" => {
            if let Some(cp) = param {
                out.flush(group.title);
                out.encoding = Encoding::for_label(format!("windows-{cp}").as_bytes())
                    .or_else(|| Encoding::for_label(format!("cp{cp}").as_bytes()))
                    .unwrap_or(WINDOWS_1252);
            }
        }
        "uc" => group.uc = param.unwrap_or(1).clamp(0, 8) as usize,
        "u" => {
            if let Some(n) = param {
                let code = if n < 0 { n + 65536 } else { n };
                if !group.skip || group.title {
                    out.push(group.title, char::from_u32(code as u32).unwrap_or('\u{fffd}'));
                }
                *skip_chars = group.uc;
            }
        }
        _ if group.skip && !group.title => {}
        "par" if !group.title => out.end_paragraph(),
        "pard" => out.paragraph_level = None,
        "outlinelevel" => {
            out.paragraph_level = param.filter(|l| (0..9).contains(l)).map(|l| l as usize + 1);
        }
        "sect" if !group.title => {
            // It ends the paragraph too, unless a \par just did.
            out.flush(false);
            let open = out.pages.last().and_then(|page| page.get(out.paragraph_start..));
            if open.is_some_and(|text| !text.trim().is_empty()) {
                out.end_paragraph();
            }
            out.section_break = true;
        }
        "sbknone" | "sbkcol" => out.section_break = false,
        "par" | "line" | "sect" | "row" => out.push(group.title, '\n'),
        "tab" | "cell" => out.push(group.title, '\t'),
        "page" => {
            out.flush(group.title);
            out.new_page();
        }
        // "Page break before" this paragraph, as LibreOffice and Word write a heading that
        // starts a page: a new page unless the current one is still empty.
        "pagebb" if !group.title => {
            out.flush(false);
            if out.pages.last().is_some_and(|page| !page.trim().is_empty()) {
                out.new_page();
            }
        }
        "emdash" => out.push(group.title, '—'),
        "endash" => out.push(group.title, '–'),
        "bullet" => out.push(group.title, '•'),
        "lquote" => out.push(group.title, '‘'),
        "rquote" => out.push(group.title, '’'),
        "ldblquote" => out.push(group.title, '“'),
        "rdblquote" => out.push(group.title, '”'),
        _ => {}
    }
}

/// Lines trimmed, runs of blank lines folded into one.
fn tidy(text: &str) -> String {
    let mut out = String::new();
    let mut blank = 0;
    for line in text.lines().map(str::trim) {
        if line.is_empty() {
            blank += 1;
            continue;
        }
        if !out.is_empty() {
            out.push_str(if blank > 0 { "\n\n" } else { "\n" });
        }
        blank = 0;
        out.push_str(line);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_code_page_unicode_tables_and_pages() {
        let rtf = br"{\rtf1\ansi\ansicpg1252\deff0{\fonttbl{\f0 Times;}}{\colortbl;\red0\green0\blue0;}{\info{\title Mietvertrag}{\author A}}{\*\generator Word;}\pard\b K\'fcndigung\b0\par Die Frist betr\'e4gt drei Monate.\par Stra\u223?e\tab Ende.\page Seite zwei {\*\bkmkstart x}mit \{Klammern\}.\par}";
        let doc = parse(rtf);
        assert_eq!(doc.title, "Mietvertrag");
        assert_eq!(
            doc.pages,
            [
                "Kündigung\nDie Frist beträgt drei Monate.\nStraße\tEnde.",
                "Seite zwei mit {Klammern}."
            ]
        );
        let err = RtfExtractor.extract(Path::new("a.rtf"), b"plain").unwrap_err();
        assert!(err.to_string().contains("not RTF"));
    }

    #[test]
    fn a_page_break_before_a_paragraph_starts_a_page_unless_the_page_is_empty() {
        // As LibreOffice writes a heading that starts a page; the style sheet's own \pagebb
        // is not a break.
        let rtf = br"{\rtf1\ansi{\stylesheet{\s1\pagebb Heading 1;}}\pard\plain\s1\pagebb Eins\par\pard Erste Seite.\par\pard\plain\s1\pagebb Zwei\par\pard Zweite Seite.\par}";
        assert_eq!(parse(rtf).pages, ["Eins\nErste Seite.", "Zwei\nZweite Seite."]);
    }

    #[test]
    fn sections_start_new_pages_unless_they_run_on() {
        // Word ends each section with \sect; the next section's properties follow it (new
        // page by default, \sbknone runs on). A trailing \sect adds no empty page.
        let rtf = br"{\rtf1\ansi\sectd\sbknone\pard Deckblatt.\par\sect\sectd\pard Kapitel eins.\par\sect\sectd\sbknone\pard Noch Kapitel eins.\par\sect\sectd\sbkpage\pard Kapitel zwei.\par\sect}";
        assert_eq!(
            parse(rtf).pages,
            ["Deckblatt.", "Kapitel eins.\nNoch Kapitel eins.", "Kapitel zwei."]
        );
    }

    #[test]
    fn paragraphs_with_an_outline_level_are_headings() {
        // As LibreOffice and Word write heading paragraphs: \outlinelevel0 is a top heading;
        // the style sheet's own levels are not text, and \pard ends a heading's level.
        let rtf = br"{\rtf1\ansi{\stylesheet{\s1\outlinelevel0 Heading 1;}}\pard Vorwort.\par\pard\plain\s1\outlinelevel0 Bericht\par\pard Erste Seite.\par\pard\s2\outlinelevel1 Liegepl\'e4tze\par\pard Vierzig Boote.\par\pard\plain\s1\pagebb\outlinelevel0 Finanzen\par\pard Zweite Seite.\par}";
        let doc = parse(rtf);
        let got: Vec<(u32, String, &str)> = doc
            .blocks
            .iter()
            .map(|(page, path, text)| (*page, path.join(" > "), text.as_str()))
            .collect();
        assert_eq!(
            got,
            [
                (1, String::new(), "Vorwort."),
                (1, "Bericht".into(), "Bericht\nErste Seite."),
                (1, "Bericht > Liegeplätze".into(), "Liegeplätze\nVierzig Boote."),
                (2, "Finanzen".into(), "Finanzen\nZweite Seite."),
            ]
        );
    }
}
