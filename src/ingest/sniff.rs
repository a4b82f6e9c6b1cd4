//! Decides what a file is from its extension and its first bytes, so a `.pdf` that is really an
//! HTML error page, or a `.txt` that is really an image, is named as such instead of parsed wrongly.

use std::io::Read;
use std::path::Path;

use crate::api::FileKind;

/// What sniffing concluded about a file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Sniffed {
    /// A supported document of this kind.
    Document(FileKind),
    /// Its name says it is a document, but the content says otherwise (the reason).
    Mismatch(String),
    /// Not something Quarry indexes (images, archives, programs); left out silently.
    Ignored,
}

/// Extensions whose files are indexed as plain text: prose, logs, source code and configuration.
const TEXT_EXTENSIONS: &[&str] = &[
    "txt",
    "text",
    "rst",
    "org",
    "log",
    "tex",
    "adoc",
    "asciidoc",
    "rtf",
    "rs",
    "py",
    "js",
    "mjs",
    "ts",
    "tsx",
    "jsx",
    "java",
    "kt",
    "scala",
    "go",
    "c",
    "h",
    "cc",
    "cpp",
    "hpp",
    "cs",
    "rb",
    "php",
    "swift",
    "sh",
    "bash",
    "zsh",
    "ps1",
    "sql",
    "r",
    "jl",
    "lua",
    "pl",
    "m",
    "toml",
    "yaml",
    "yml",
    "json",
    "ini",
    "cfg",
    "conf",
    "properties",
    "env",
    "xml",
    "css",
    "scss",
    "gradle",
    "cmake",
    "dockerfile",
    "makefile",
    "bib",
    "srt",
    "vtt",
];

/// The kind a file's extension promises, if it is one Quarry reads.
pub fn kind_from_extension(path: &Path) -> Option<FileKind> {
    let ext = path.extension()?.to_str()?.to_ascii_lowercase();
    Some(match ext.as_str() {
        "pdf" => FileKind::Pdf,
        "docx" => FileKind::Docx,
        "odt" => FileKind::Odt,
        "pptx" | "odp" => FileKind::Presentation,
        "xlsx" | "xlsm" | "xls" | "ods" | "csv" | "tsv" => FileKind::Spreadsheet,
        "epub" => FileKind::Epub,
        "eml" => FileKind::Email,
        "rtf" => FileKind::Rtf,
        "mbox" => FileKind::Mailbox,
        "zip" => FileKind::Archive,
        "png" | "jpg" | "jpeg" | "tif" | "tiff" => FileKind::Image,
        "md" | "markdown" | "mdown" | "mkd" => FileKind::Markdown,
        "html" | "htm" | "xhtml" => FileKind::Html,
        e if TEXT_EXTENSIONS.contains(&e) => FileKind::Text,
        _ => return None,
    })
}

/// What a file with this extension must be inside, and the format's name for messages.
fn container(path: &Path) -> (Container, &'static str) {
    let ext = path.extension().and_then(|e| e.to_str()).unwrap_or("").to_ascii_lowercase();
    match ext.as_str() {
        "pdf" => (Container::Pdf, "a PDF"),
        "docx" => (Container::Zip, "a Word document"),
        "odt" => (Container::Zip, "an OpenDocument text"),
        "pptx" => (Container::Zip, "a PowerPoint presentation"),
        "odp" => (Container::Zip, "an OpenDocument presentation"),
        "xlsx" | "xlsm" => (Container::Zip, "an Excel workbook"),
        "ods" => (Container::Zip, "an OpenDocument spreadsheet"),
        "epub" => (Container::Zip, "an EPUB e-book"),
        "zip" => (Container::Zip, "a zip archive"),
        "xls" => (Container::Ole, "an Excel 97-2003 workbook"),
        "png" => (Container::Image(PNG), "a PNG image"),
        "jpg" | "jpeg" => (Container::Image(JPEG), "a JPEG image"),
        "tif" | "tiff" => (Container::Image(TIFF), "a TIFF image"),
        _ => (Container::Text, "text"),
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Container {
    Pdf,
    Zip,
    Ole,
    Image(&'static str),
    Text,
}

/// Sniffs the file at `path` by reading its first bytes.
pub fn sniff_path(path: &Path) -> std::io::Result<Sniffed> {
    let mut head = Vec::with_capacity(8192);
    std::fs::File::open(path)?.take(8192).read_to_end(&mut head)?;
    Ok(sniff(path, &head))
}

/// Sniffs a file from its name and its first bytes (up to 8 KiB is enough).
pub fn sniff(path: &Path, head: &[u8]) -> Sniffed {
    let by_ext = kind_from_extension(path);
    let has_extension = path.extension().is_some();
    let magic = magic_kind(head);
    let Some(kind) = by_ext else {
        return match magic {
            Magic::Pdf => Sniffed::Document(FileKind::Pdf),
            Magic::Text if !has_extension => {
                if looks_like_html(head) {
                    Sniffed::Document(FileKind::Html)
                } else {
                    Sniffed::Document(FileKind::Text)
                }
            }
            _ => Sniffed::Ignored,
        };
    };
    if magic == Magic::Pdf {
        return Sniffed::Document(FileKind::Pdf);
    }
    let (expected, name) = container(path);
    let fits = match expected {
        Container::Pdf => false,
        Container::Zip => magic == Magic::Zip,
        Container::Ole => magic == Magic::Binary(OLE),
        Container::Image(what) => magic == Magic::Binary(what),
        Container::Text => magic == Magic::Text,
    };
    if fits {
        Sniffed::Document(kind)
    } else if expected == Container::Zip
        && magic == Magic::Binary(OLE)
        && name != "an EPUB e-book"
        && name != "a zip archive"
        && !name.starts_with("an OpenDocument")
    {
        // Office writes password-protected documents into an OLE container.
        Sniffed::Mismatch(format!("encrypted: {name} protected by a password"))
    } else if expected == Container::Pdf && magic == Magic::Text && looks_like_html(head) {
        Sniffed::Mismatch("not a PDF: the file is an HTML page".into())
    } else {
        Sniffed::Mismatch(format!("not {name}: {}", magic.describe()))
    }
}

/// How [`magic_kind`] describes a legacy (OLE compound file) Office document.
const OLE: &str = "a legacy Office document (OLE)";
/// How [`magic_kind`] describes the images OCR reads.
const PNG: &str = "a PNG image";
const JPEG: &str = "a JPEG image";
const TIFF: &str = "a TIFF image";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Magic {
    Pdf,
    Zip,
    Binary(&'static str),
    Text,
}

impl Magic {
    fn describe(self) -> String {
        match self {
            Magic::Pdf => "the file is a PDF".into(),
            Magic::Zip => "the file is a zip archive".into(),
            Magic::Binary(what) => format!("the content looks like {what}"),
            Magic::Text => "the file is plain text".into(),
        }
    }
}

fn magic_kind(head: &[u8]) -> Magic {
    const SIGNATURES: &[(&[u8], &str)] = &[
        (b"PK\x03\x04", "zip"),
        (b"\x89PNG", PNG),
        (b"\xff\xd8\xff", JPEG),
        (b"II*\0", TIFF),
        (b"MM\0*", TIFF),
        (b"GIF8", "a GIF image"),
        (b"\x7fELF", "a program (ELF)"),
        (b"MZ", "a Windows program"),
        (b"\xd0\xcf\x11\xe0", OLE),
        (b"\x1f\x8b", "gzip data"),
        (b"7z\xbc\xaf", "a 7-Zip archive"),
        (b"Rar!", "a RAR archive"),
        (b"SQLite format 3", "an SQLite database"),
    ];
    // A signature at the start wins: a zip archive that stores a PDF uncompressed has "%PDF-"
    // in its first KiB too.
    for (sig, what) in SIGNATURES {
        if head.starts_with(sig) {
            return if *what == "zip" { Magic::Zip } else { Magic::Binary(what) };
        }
    }
    // PDF readers accept the header anywhere in the first KiB, so do we.
    let window = &head[..head.len().min(1024)];
    if window.windows(5).any(|w| w == b"%PDF-") {
        return Magic::Pdf;
    }
    let has_utf16_bom = head.starts_with(b"\xff\xfe") || head.starts_with(b"\xfe\xff");
    if has_utf16_bom {
        return Magic::Text;
    }
    // Text in any 8-bit encoding has no NUL bytes and few control characters.
    let controls = head
        .iter()
        .filter(|&&b| b == 0 || (b < 0x20 && !matches!(b, b'\n' | b'\r' | b'\t' | 0x0c)));
    let n_controls = controls.count();
    if head.contains(&0) || n_controls * 20 > head.len().max(1) {
        Magic::Binary("binary data")
    } else {
        Magic::Text
    }
}

fn looks_like_html(head: &[u8]) -> bool {
    let start = String::from_utf8_lossy(&head[..head.len().min(512)]).to_ascii_lowercase();
    let start = start.trim_start_matches('\u{feff}').trim_start();
    start.starts_with("<!doctype html") || start.starts_with("<html")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(name: &str, head: &[u8], expect: Sniffed) {
        assert_eq!(sniff(Path::new(name), head), expect, "{name}");
    }

    #[test]
    fn sniffs_by_magic_and_extension() {
        check("a.pdf", b"%PDF-1.7\n", Sniffed::Document(FileKind::Pdf));
        check("a.bin", b"junk\n%PDF-1.4", Sniffed::Document(FileKind::Pdf));
        check("a.docx", b"PK\x03\x04rest", Sniffed::Document(FileKind::Docx));
        check("a.md", b"# Title\n", Sniffed::Document(FileKind::Markdown));
        check("a.TXT", b"hello", Sniffed::Document(FileKind::Text));
        check("a.txt", b"\xff\xfeh\0i\0", Sniffed::Document(FileKind::Text));
        check("README", b"plain words", Sniffed::Document(FileKind::Text));
        check("page", b"<!DOCTYPE html><html>", Sniffed::Document(FileKind::Html));
        check("a.png", b"\x89PNG\r\n", Sniffed::Document(FileKind::Image));
        check("scan.TIF", b"II*\0rest", Sniffed::Document(FileKind::Image));
        check("a.gif", b"GIF89a", Sniffed::Ignored);
        check(
            "a.jpg",
            b"\x89PNG\r\n",
            Sniffed::Mismatch("not a JPEG image: the content looks like a PNG image".into()),
        );
        check("a.exe", b"MZ\x90\0", Sniffed::Ignored);
        check("a.pptx", b"PK\x03\x04rest", Sniffed::Document(FileKind::Presentation));
        check("a.ods", b"PK\x03\x04rest", Sniffed::Document(FileKind::Spreadsheet));
        check("a.xls", b"\xd0\xcf\x11\xe0rest", Sniffed::Document(FileKind::Spreadsheet));
        check("a.csv", b"name,age\n", Sniffed::Document(FileKind::Spreadsheet));
        check("a.eml", b"From: a@b\n", Sniffed::Document(FileKind::Email));
        check("a.zip", b"PK\x03\x04rest", Sniffed::Document(FileKind::Archive));
        // An archive storing a PDF uncompressed is still an archive.
        let stored_pdf = b"PK\x03\x04\x14\0\0\0\0\0contracts/dues.pdf%PDF-1.4\n";
        check("a.zip", stored_pdf, Sniffed::Document(FileKind::Archive));
        check("a.docx", stored_pdf, Sniffed::Document(FileKind::Docx));
        check("main.rs", b"fn main() {}\n", Sniffed::Document(FileKind::Text));
        check(
            "a.xlsx",
            b"\xd0\xcf\x11\xe0rest",
            Sniffed::Mismatch("encrypted: an Excel workbook protected by a password".into()),
        );
        check(
            "a.epub",
            b"plain words",
            Sniffed::Mismatch("not an EPUB e-book: the file is plain text".into()),
        );
        check(
            "a.pdf",
            b"<!doctype html><p>404",
            Sniffed::Mismatch("not a PDF: the file is an HTML page".into()),
        );
        check(
            "a.txt",
            b"\x89PNG\r\n\x1a\n\0\0",
            Sniffed::Mismatch("not text: the content looks like a PNG image".into()),
        );
    }
}
