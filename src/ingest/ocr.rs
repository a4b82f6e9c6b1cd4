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

/// Images smaller than this on either side hold no line of text Tesseract can read (icons,
/// logos in a signature, tracking pixels): inside e-mail and archives they are not OCR'd.
pub const MIN_TEXT_IMAGE_SIDE: u32 = 24;

/// Width and height of a PNG, GIF or JPEG image from its header, `None` for other formats or
/// a header that does not say.
pub fn image_size(bytes: &[u8]) -> Option<(u32, u32)> {
    let be16 =
        |at: usize| bytes.get(at..at + 2).map(|b| u32::from(u16::from_be_bytes([b[0], b[1]])));
    if bytes.starts_with(b"\x89PNG\r\n\x1a\n") {
        let word =
            |at: usize| bytes.get(at..at + 4).map(|b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]));
        return Some((word(16)?, word(20)?));
    }
    if bytes.starts_with(b"GIF87a") || bytes.starts_with(b"GIF89a") {
        let le16 =
            |at: usize| bytes.get(at..at + 2).map(|b| u32::from(u16::from_le_bytes([b[0], b[1]])));
        return Some((le16(6)?, le16(8)?));
    }
    if bytes.starts_with(&[0xff, 0xd8]) {
        // Segments after the start marker until a start-of-frame (SOF0-SOF15 but DHT, JPG, DAC).
        let mut at = 2;
        while at + 4 <= bytes.len() {
            if bytes[at] != 0xff {
                return None;
            }
            let marker = bytes[at + 1];
            if marker == 0xff {
                at += 1;
                continue;
            }
            let length = be16(at + 2)? as usize;
            if (0xc0..=0xcf).contains(&marker) && !matches!(marker, 0xc4 | 0xc8 | 0xcc) {
                return Some((be16(at + 7)?, be16(at + 5)?));
            }
            at += 2 + length;
        }
    }
    None
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

    #[test]
    fn image_sizes_from_png_gif_and_jpeg_headers() {
        let mut png = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR".to_vec();
        png.extend_from_slice(&640u32.to_be_bytes());
        png.extend_from_slice(&1u32.to_be_bytes());
        assert_eq!(image_size(&png), Some((640, 1)));
        assert_eq!(image_size(b"GIF89a\x01\x00\x01\x00rest"), Some((1, 1)));
        // A JPEG: start, an APP0 segment of 16 bytes, then SOF0 with height 200, width 1600.
        let mut jpeg = vec![0xff, 0xd8, 0xff, 0xe0, 0x00, 0x10];
        jpeg.extend_from_slice(&[0; 14]);
        jpeg.extend_from_slice(&[0xff, 0xc0, 0x00, 0x11, 0x08, 0x00, 0xc8, 0x06, 0x40, 0x03]);
        assert_eq!(image_size(&jpeg), Some((1600, 200)));
        assert_eq!(image_size(b"II*\0 a TIFF"), None);
        assert_eq!(image_size(b"\x89PNG\r\n\x1a\n short"), None);
        assert_eq!(image_size(&[0xff, 0xd8, 0xff]), None);
    }
}
