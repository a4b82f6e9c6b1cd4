//! OCR for pages without a text layer (scans) and for image files: Debian's poppler
//! (`pdftoppm`) renders a page at 300 dpi in grey, Tesseract reads it (German and English
//! models together unless configured otherwise). Runs in the worker process, each program with
//! its own time limit and all of a file's OCR within a budget, so a long scan ends with the
//! pages read so far and a warning instead of the worker's timeout.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use super::external::run;

/// How OCR runs for one file (sent to the worker with the request).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OcrOptions {
    /// Tesseract's language models, `+`-joined ("deu+eng"; "jpn_vert+jpn" for vertical
    /// Japanese).
    pub languages: String,
    /// Seconds all OCR of one file may take; pages after that stay unread, with a warning.
    pub budget_secs: u64,
}

impl Default for OcrOptions {
    fn default() -> Self {
        Self { languages: "deu+eng".into(), budget_secs: 90 }
    }
}

/// Pages rendered for OCR: dots per inch (Tesseract's recommended resolution).
const DPI: &str = "300";
/// Longest time one program run (render or read one page) may take.
const STEP_LIMIT: Duration = Duration::from_secs(60);
/// Mean word confidence (0-100) under which a page is reported as poorly read.
pub const LOW_CONFIDENCE: f32 = 60.0;
/// Mean word confidence under which what was read is taken for noise and left out (a script
/// the language models do not know reads as a few short "words" at 25-35).
pub const NOISE_CONFIDENCE: f32 = 40.0;

/// What Tesseract read on one page.
#[derive(Debug, Clone, PartialEq)]
pub struct OcrText {
    /// Lines of words; blocks and paragraphs separated by blank lines.
    pub text: String,
    /// Mean confidence of the words (0-100); 0 when there were none.
    pub confidence: f32,
    /// The words with their boxes on the page.
    pub words: Vec<crate::api::OcrWord>,
}

/// Reads page `page` (1-based) of the PDF at `path`.
pub fn pdf_page(
    path: &Path,
    page: u32,
    options: &OcrOptions,
    deadline: Instant,
) -> Result<OcrText, String> {
    let page = page.to_string();
    let mut render = Command::new("pdftoppm");
    render.args(["-r", DPI, "-gray", "-f", &page, "-l", &page]).arg(path);
    let image = run(render, None, step_limit(deadline), "pdftoppm", &[0])?;
    if image.is_empty() {
        return Err("pdftoppm rendered nothing".into());
    }
    image_bytes(&image, options, deadline)
}

/// Reads an image (PNG, JPEG, TIFF, PNM: whatever Tesseract's Leptonica reads).
pub fn image_bytes(
    image: &[u8],
    options: &OcrOptions,
    deadline: Instant,
) -> Result<OcrText, String> {
    let mut read = Command::new("tesseract");
    read.args(["stdin", "stdout", "-l", &options.languages, "tsv"]);
    let tsv = run(read, Some(image), step_limit(deadline), "tesseract", &[0])?;
    Ok(parse_tsv(&String::from_utf8_lossy(&tsv)))
}

fn step_limit(deadline: Instant) -> Duration {
    deadline.saturating_duration_since(Instant::now()).min(STEP_LIMIT)
}

/// Builds the page text from Tesseract's TSV: words in reading order, a line break per line, a
/// blank line per block or paragraph; and their mean confidence.
fn parse_tsv(tsv: &str) -> OcrText {
    let mut text = String::new();
    let mut last: Option<(u32, u32, u32)> = None;
    let mut confidence_sum = 0.0f32;
    let mut words = 0usize;
    let mut boxes = Vec::new();
    let (mut page_w, mut page_h) = (1.0f32, 1.0f32);
    for row in tsv.lines().skip(1) {
        let cols: Vec<&str> = row.split('\t').collect();
        if cols.len() >= 10 && cols[0] == "1" {
            page_w = cols[8].parse::<f32>().unwrap_or(1.0).max(1.0);
            page_h = cols[9].parse::<f32>().unwrap_or(1.0).max(1.0);
        }
        if cols.len() < 12 || cols[0] != "5" {
            continue;
        }
        let word = cols[11].trim();
        if word.is_empty() {
            continue;
        }
        let number = |i: usize| cols[i].parse::<u32>().unwrap_or(0);
        let place = (number(2), number(3), number(4));
        match last {
            Some((block, par, _)) if (block, par) != (place.0, place.1) => text.push_str("\n\n"),
            Some((_, _, line)) if line != place.2 => text.push('\n'),
            Some(_) => text.push(' '),
            None => {}
        }
        last = Some(place);
        text.push_str(word);
        let px = |i: usize| cols[i].parse::<f32>().unwrap_or(0.0);
        boxes.push(crate::api::OcrWord {
            text: word.to_owned(),
            x: px(6) / page_w,
            y: px(7) / page_h,
            w: px(8) / page_w,
            h: px(9) / page_h,
        });
        confidence_sum += cols[10].parse::<f32>().unwrap_or(0.0).max(0.0);
        words += 1;
    }
    OcrText {
        text,
        confidence: if words == 0 { 0.0 } else { confidence_sum / words as f32 },
        words: boxes,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tsv_words_lines_and_paragraphs() {
        let tsv = "level\tpage_num\tblock_num\tpar_num\tline_num\tword_num\tleft\ttop\twidth\theight\tconf\ttext\n\
            1\t1\t0\t0\t0\t0\t0\t0\t100\t200\t-1\t\n\
            5\t1\t1\t1\t1\t1\t10\t20\t30\t10\t90\tDie\n\
            5\t1\t1\t1\t1\t2\t0\t0\t1\t1\t80\tMiete\n\
            5\t1\t1\t1\t2\t1\t0\t0\t1\t1\t70\tsteigt.\n\
            5\t1\t2\t1\t1\t1\t0\t0\t1\t1\t60\tEnde\n\
            5\t1\t2\t1\t1\t2\t0\t0\t1\t1\t95\t \n";
        let page = parse_tsv(tsv);
        assert_eq!(page.text, "Die Miete\nsteigt.\n\nEnde");
        assert_eq!(page.confidence, 75.0);
        assert_eq!(page.words.len(), 4);
        assert_eq!(
            page.words[0],
            crate::api::OcrWord { text: "Die".into(), x: 0.1, y: 0.1, w: 0.3, h: 0.05 }
        );
        assert_eq!(parse_tsv("level\n").confidence, 0.0);
    }
}
