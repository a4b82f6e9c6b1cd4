//! Every supported format, from fixtures the test writes itself, indexed and searched with its
//! page, heading and character span.

use std::io::Write;
use std::path::Path;

use quarry::{DocumentState, Engine, FileKind, SearchMode};

use crate::support::TempLibrary;

/// Writes a minimal but real Word document: two pages, headings, a table cell.
pub(crate) fn write_docx(path: &Path) {
    let file = std::fs::File::create(path).unwrap();
    let mut zip = zip::ZipWriter::new(file);
    let options = zip::write::SimpleFileOptions::default();
    zip.start_file("[Content_Types].xml", options).unwrap();
    zip.write_all(br#"<?xml version="1.0"?><Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types"><Default Extension="xml" ContentType="application/xml"/><Override PartName="/word/document.xml" ContentType="application/vnd.openxmlformats-officedocument.wordprocessingml.document.main+xml"/></Types>"#).unwrap();
    zip.start_file("word/document.xml", options).unwrap();
    zip.write_all(
        r#"<?xml version="1.0" encoding="UTF-8"?>
<w:document xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/2006/main"><w:body>
<w:p><w:pPr><w:pStyle w:val="Heading1"/></w:pPr><w:r><w:t>Mietvertrag Müller</w:t></w:r></w:p>
<w:p><w:r><w:t>Die Kündigungsfrist beträgt drei Monate zum Monatsende.</w:t></w:r></w:p>
<w:p><w:r><w:br w:type="page"/></w:r><w:r><w:t>Second page: the deposit is kept in a separate escrow account.</w:t></w:r></w:p>
<w:tbl><w:tr><w:tc><w:p><w:r><w:t>Rent</w:t></w:r><w:r><w:tab/><w:t>1200 EUR</w:t></w:r></w:p></w:tc></w:tr></w:tbl>
</w:body></w:document>"#
            .as_bytes(),
    )
    .unwrap();
    zip.start_file("docProps/core.xml", options).unwrap();
    zip.write_all(br#"<?xml version="1.0"?><cp:coreProperties xmlns:cp="c" xmlns:dc="http://purl.org/dc/elements/1.1/"><dc:title>Lease agreement</dc:title></cp:coreProperties>"#).unwrap();
    zip.finish().unwrap();
}

/// Writes one fixture per format into `dir`.
pub(crate) fn write_fixtures(dir: &Path) {
    std::fs::write(dir.join("notes.txt"), "The quarterly budget review happens every March.\n")
        .unwrap();
    let utf16: Vec<u8> = [0xff, 0xfe]
        .into_iter()
        .chain(
            "Grüße aus Köln: the ferry leaves at nine.".encode_utf16().flat_map(u16::to_le_bytes),
        )
        .collect();
    std::fs::write(dir.join("utf16.txt"), utf16).unwrap();
    // Windows-1252: "Straße" and the euro sign.
    std::fs::write(dir.join("latin.txt"), b"Die Stra\xdfe kostet 5 \x80 Maut f\xfcr Lastwagen.")
        .unwrap();
    std::fs::write(
        dir.join("guide.md"),
        format!(
            "# Install guide\n\n{}\n\n## Linux\n\nRun the AppImage on Wayland compositors.\n",
            "This guide walks through installing the application step by step. ".repeat(14)
        ),
    )
    .unwrap();
    std::fs::write(
        dir.join("page.html"),
        "<!doctype html><html><head><title>Harbour rules</title><script>var hidden='kraken';</script></head>\
         <body><h1>Mooring</h1><p>Boats must register with the harbour master.</p></body></html>",
    )
    .unwrap();
    write_docx(&dir.join("lease.docx"));
    // A picture format Quarry does not read (PNG, JPEG and TIFF go to OCR) is passed over.
    std::fs::write(dir.join("photo.gif"), b"GIF89a\x01\0\x01\0\0\0\0").unwrap();
    std::fs::write(dir.join("fake.pdf"), "<!DOCTYPE html><p>404 not found</p>").unwrap();
}

#[tokio::test]
async fn every_format_is_extracted_and_searchable() {
    let docs = tempfile::tempdir().unwrap();
    write_fixtures(docs.path());
    let lib = TempLibrary::new();
    let report = lib.index(lib.in_process_config(), &[docs.path()]).await;
    assert_eq!((report.added, report.failed), (6, 1), "{report:?}");
    assert_eq!(report.failures[0].error, "not a PDF: the file is an HTML page");

    let engine = Engine::open(lib.in_process_config()).await.unwrap();
    let listed = engine.documents().await.unwrap();
    let kinds: Vec<(String, FileKind, DocumentState)> = listed
        .iter()
        .map(|d| {
            (
                Path::new(&d.path).file_name().unwrap().to_string_lossy().into_owned(),
                d.kind,
                d.state,
            )
        })
        .collect();
    assert_eq!(
        kinds,
        vec![
            ("fake.pdf".into(), FileKind::Pdf, DocumentState::Failed),
            ("guide.md".into(), FileKind::Markdown, DocumentState::Indexed),
            ("latin.txt".into(), FileKind::Text, DocumentState::Indexed),
            ("lease.docx".into(), FileKind::Docx, DocumentState::Indexed),
            ("notes.txt".into(), FileKind::Text, DocumentState::Indexed),
            ("page.html".into(), FileKind::Html, DocumentState::Indexed),
            ("utf16.txt".into(), FileKind::Text, DocumentState::Indexed),
        ]
    );
    let latin = listed.iter().find(|d| d.path.ends_with("latin.txt")).unwrap();
    assert_eq!(latin.warnings, vec!["not UTF-8; decoded as windows-1252".to_owned()]);
    let docx = listed.iter().find(|d| d.path.ends_with("lease.docx")).unwrap();
    assert_eq!((docx.pages, docx.title.as_deref()), (2, Some("Lease agreement")));
    let html = listed.iter().find(|d| d.path.ends_with("page.html")).unwrap();
    assert_eq!(html.title.as_deref(), Some("Harbour rules"));

    let top = |hits: Vec<quarry::SearchHit>| hits.into_iter().next().expect("a hit");
    let hit = top(engine.search("escrow deposit", SearchMode::Text, 3).await.unwrap());
    assert!(hit.doc_path.ends_with("lease.docx"));
    assert_eq!((hit.page, hit.heading.as_str()), (2, "Mietvertrag Müller"));
    let hit = top(engine.search("Straße Maut", SearchMode::Text, 3).await.unwrap());
    assert!(hit.doc_path.ends_with("latin.txt"), "{hit:?}");
    let hit = top(engine.search("ferry", SearchMode::Text, 3).await.unwrap());
    assert!(hit.text.starts_with("Grüße aus Köln"), "{hit:?}");
    let hit = top(engine.search("Wayland", SearchMode::Text, 3).await.unwrap());
    assert_eq!(hit.heading, "Install guide > Linux");
    // The chunk's character span points at its text in the source file.
    let source = std::fs::read_to_string(&hit.doc_path).unwrap();
    let span: String = source
        .chars()
        .skip(hit.char_start as usize)
        .take((hit.char_end - hit.char_start) as usize)
        .collect();
    assert_eq!(span, hit.text);
    let hit = top(engine.search("harbour master", SearchMode::Text, 3).await.unwrap());
    assert!(hit.doc_path.ends_with("page.html"));
    assert!(
        engine.search("kraken", SearchMode::Text, 3).await.unwrap().is_empty(),
        "script text indexed"
    );
}

#[tokio::test]
async fn chunks_are_sized_with_the_embedding_tokenizer() {
    let Some(data) = crate::support::test_data("chunks_are_sized_with_the_embedding_tokenizer")
    else {
        return;
    };
    let tokenizer_path = data.join("models/all-MiniLM-L6-v2/tokenizer.json");
    let docs = tempfile::tempdir().unwrap();
    let sentence = "Retrieval augmented generation cites the passages it used. ";
    std::fs::write(docs.path().join("long.txt"), sentence.repeat(200)).unwrap();
    let lib = TempLibrary::new();
    let mut config = lib.in_process_config();
    config.tokenizer = Some(tokenizer_path.clone());
    lib.index(config.clone(), &[docs.path()]).await;
    let engine = Engine::open(config).await.unwrap();
    let hits = engine.search("passages", SearchMode::Text, 100).await.unwrap();
    assert!(hits.len() > 5);
    let mut tokenizer = tokenizers::Tokenizer::from_file(&tokenizer_path).unwrap();
    tokenizer.with_padding(None);
    tokenizer.with_truncation(None).unwrap();
    let sizes: Vec<usize> =
        hits.iter().map(|h| tokenizer.encode(h.text.as_str(), false).unwrap().len()).collect();
    assert!(sizes.iter().all(|&n| n <= 200), "{sizes:?}");
    // Only the document's last chunk may be short.
    assert!(sizes.iter().filter(|&&n| n < 150).count() <= 1, "{sizes:?}");
    let status = engine.status().await.unwrap();
    assert!(status.chunker.starts_with("tokens(all-MiniLM-L6-v2) max 200"), "{}", status.chunker);
}

/// Writes a small PDF with one page per entry, each showing its text in Helvetica. A page given
/// `None` as its media box lacks one, which makes pdf-extract panic on that page.
pub(crate) fn write_pdf(path: &Path, pages: &[(Option<&str>, &str)]) {
    let n = pages.len();
    let font_id = 3 + 2 * n;
    let mut objects: Vec<String> = Vec::new();
    objects.push("<< /Type /Catalog /Pages 2 0 R >>".into());
    let kids: Vec<String> = (0..n).map(|i| format!("{} 0 R", 3 + 2 * i)).collect();
    objects.push(format!("<< /Type /Pages /Kids [{}] /Count {n} >>", kids.join(" ")));
    for (i, (media_box, text)) in pages.iter().enumerate() {
        let media = media_box.map(|m| format!("/MediaBox [{m}] ")).unwrap_or_default();
        objects.push(format!(
            "<< /Type /Page /Parent 2 0 R {media}/Contents {} 0 R /Resources << /Font << /F1 {font_id} 0 R >> >> >>",
            4 + 2 * i
        ));
        let stream = format!("BT /F1 12 Tf 72 720 Td ({text}) Tj ET");
        objects.push(format!("<< /Length {} >>\nstream\n{stream}\nendstream", stream.len()));
    }
    objects.push(
        "<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding /WinAnsiEncoding >>".into(),
    );
    let mut out = String::from("%PDF-1.4\n");
    let mut offsets = Vec::new();
    for (i, body) in objects.iter().enumerate() {
        offsets.push(out.len());
        out.push_str(&format!("{} 0 obj\n{body}\nendobj\n", i + 1));
    }
    let xref = out.len();
    out.push_str(&format!("xref\n0 {}\n0000000000 65535 f \n", objects.len() + 1));
    for offset in offsets {
        out.push_str(&format!("{offset:010} 00000 n \n"));
    }
    out.push_str(&format!(
        "trailer\n<< /Size {} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n",
        objects.len() + 1
    ));
    std::fs::write(path, out).unwrap();
}

#[tokio::test]
async fn a_page_that_breaks_the_parser_is_a_warning_not_a_lost_document() {
    let docs = tempfile::tempdir().unwrap();
    let pdf = docs.path().join("three.pdf");
    write_pdf(
        &pdf,
        &[
            (Some("0 0 612 792"), "Opening page about lighthouses"),
            (None, "Broken page without a media box"),
            (Some("0 0 612 792"), "Closing page about harbours"),
        ],
    );
    let lib = TempLibrary::new();
    let report = lib.index(lib.config(), &[docs.path()]).await;
    assert_eq!((report.added, report.failed), (1, 0), "{report:?}");
    let engine = Engine::open(lib.config()).await.unwrap();
    let doc = &engine.documents().await.unwrap()[0];
    assert_eq!(doc.pages, 3);
    assert_eq!(doc.warnings.len(), 1, "{:?}", doc.warnings);
    assert!(
        doc.warnings[0].starts_with("page 2 could not be read: parser error: MediaBox"),
        "{:?}",
        doc.warnings
    );
    let hit = engine.search("harbours", SearchMode::Text, 3).await.unwrap().remove(0);
    assert_eq!(hit.page, 3);
    let hit = engine.search("lighthouses", SearchMode::Text, 3).await.unwrap().remove(0);
    assert_eq!(hit.page, 1);
}
