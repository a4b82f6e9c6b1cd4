//! OCR of pages without a text layer and of image files, with the real Tesseract and poppler
//! that setup installs: a German page rendered to an image by the test (ImageMagick) inside a
//! PDF whose other page has text, the same picture as a PNG, the shared scanned PDF, and the
//! switch that turns OCR off.

use std::path::Path;
use std::process::Command;

use crate::support::{TempLibrary, json_of, test_data};

/// Renders `lines` as black text on white with ImageMagick; returns width, height and 8-bit
/// grey pixels.
fn render(lines: &[&str], out: &Path) -> (usize, usize, Vec<u8>) {
    let mut convert = Command::new("convert");
    convert.args(["-size", "1800x300", "xc:white", "-font", "DejaVu-Sans", "-pointsize", "44"]);
    convert.args(["-fill", "black", "-depth", "8"]);
    for (i, line) in lines.iter().enumerate() {
        convert.args(["-annotate", &format!("+40+{}", 100 + 80 * i), line]);
    }
    let status = convert.arg(out).status().expect("ImageMagick's convert (setup installs it)");
    assert!(status.success());
    let pgm = std::fs::read(out).unwrap();
    // "P5\n<w> <h>\n255\n" then the pixels.
    let mut fields = Vec::new();
    let mut at = 2;
    while fields.len() < 3 {
        while pgm[at].is_ascii_whitespace() {
            at += 1;
        }
        let start = at;
        while !pgm[at].is_ascii_whitespace() {
            at += 1;
        }
        fields.push(std::str::from_utf8(&pgm[start..at]).unwrap().parse::<usize>().unwrap());
    }
    assert_eq!(fields[2], 255, "an 8-bit image");
    (fields[0], fields[1], pgm[at + 1..].to_vec())
}

/// A PDF whose first page has a text layer and whose second page is only an image of text.
fn write_scanned_pdf(path: &Path, first_page_text: &str, image: (usize, usize, Vec<u8>)) {
    let (w, h, pixels) = image;
    let text_stream = format!("BT /F1 14 Tf 72 700 Td ({first_page_text}) Tj ET");
    let image_stream = format!("q 540 0 0 {} 36 500 cm /Im1 Do Q", 540 * h / w);
    let mut objects: Vec<Vec<u8>> = vec![
        b"<< /Type /Catalog /Pages 2 0 R >>".to_vec(),
        b"<< /Type /Pages /Kids [3 0 R 6 0 R] /Count 2 >>".to_vec(),
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R /Resources << /Font << /F1 5 0 R >> >> >>".to_vec(),
        format!("<< /Length {} >>\nstream\n{text_stream}\nendstream", text_stream.len()).into_bytes(),
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>".to_vec(),
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 7 0 R /Resources << /XObject << /Im1 8 0 R >> >> >>".to_vec(),
        format!("<< /Length {} >>\nstream\n{image_stream}\nendstream", image_stream.len()).into_bytes(),
    ];
    let mut image_object = format!(
        "<< /Type /XObject /Subtype /Image /Width {w} /Height {h} /ColorSpace /DeviceGray /BitsPerComponent 8 /Length {} >>\nstream\n",
        pixels.len()
    )
    .into_bytes();
    image_object.extend_from_slice(&pixels);
    image_object.extend_from_slice(b"\nendstream");
    objects.push(image_object);
    let mut pdf = b"%PDF-1.4\n".to_vec();
    let mut offsets = Vec::new();
    for (i, object) in objects.iter().enumerate() {
        offsets.push(pdf.len());
        pdf.extend_from_slice(format!("{} 0 obj\n", i + 1).as_bytes());
        pdf.extend_from_slice(object);
        pdf.extend_from_slice(b"\nendobj\n");
    }
    let xref = pdf.len();
    pdf.extend_from_slice(
        format!("xref\n0 {}\n0000000000 65535 f \n", objects.len() + 1).as_bytes(),
    );
    for offset in offsets {
        pdf.extend_from_slice(format!("{offset:010} 00000 n \n").as_bytes());
    }
    pdf.extend_from_slice(
        format!(
            "trailer\n<< /Size {} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n",
            objects.len() + 1
        )
        .as_bytes(),
    );
    std::fs::write(path, pdf).unwrap();
}

fn search(lib: &TempLibrary, query: &str) -> Vec<serde_json::Value> {
    let found = json_of(&lib.run(&["search", "--mode", "text", "--json", "-k", "3", query]));
    found["hits"].as_array().unwrap().clone()
}

fn warnings_of(lib: &TempLibrary, name: &str) -> Vec<String> {
    let docs = json_of(&lib.run(&["docs", "--json"]));
    let doc = docs["documents"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["path"].as_str().unwrap().ends_with(name))
        .unwrap_or_else(|| panic!("{name} not in {docs:#}"))
        .clone();
    doc["warnings"].as_array().unwrap().iter().map(|w| w.as_str().unwrap().to_owned()).collect()
}

#[test]
fn scanned_pages_and_images_are_read_by_ocr_and_found_by_a_german_query() {
    let lib = TempLibrary::new();
    let docs = lib.path().join("docs");
    std::fs::create_dir_all(&docs).unwrap();
    let image = render(
        &["Die Kündigungsfrist für die Garage", "beträgt sechs Wochen zum Quartalsende."],
        &lib.path().join("page.pgm"),
    );
    write_scanned_pdf(&docs.join("garage.pdf"), "Mietvertrag, Seite eins.", image);
    let status = Command::new("convert")
        .args(["-size", "1600x200", "xc:white", "-font", "DejaVu-Sans", "-pointsize", "44"])
        .args(["-fill", "black", "-annotate", "+40+110", "Der Schlüssel liegt beim Hausmeister."])
        .arg(docs.join("zettel.png"))
        .status()
        .unwrap();
    assert!(status.success());

    let report = json_of(&lib.run(&["index", "--json", docs.to_str().unwrap()]));
    assert_eq!(
        (report["added"].as_u64(), report["failed"].as_u64()),
        (Some(2), Some(0)),
        "{report:#}"
    );

    // The German question finds the scanned page, on its page.
    let hits = search(&lib, "Kündigungsfrist Garage");
    assert!(!hits.is_empty(), "the OCR'd page was not found");
    assert!(hits[0]["doc_path"].as_str().unwrap().ends_with("garage.pdf"), "{hits:#?}");
    assert_eq!(hits[0]["page"], 2, "{hits:#?}");
    assert!(hits[0]["text"].as_str().unwrap().contains("sechs Wochen"), "{hits:#?}");
    // The text page keeps its own text and page.
    let hits = search(&lib, "Mietvertrag Seite");
    assert_eq!(hits[0]["page"], 1, "{hits:#?}");
    assert_eq!(warnings_of(&lib, "garage.pdf"), ["page 2 read by OCR (deu+eng)"]);
    // The words keep their boxes on the page, for the viewer's highlight: the picture sits in
    // the upper half of the page, its first line left.
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let words = runtime.block_on(async {
        let engine = quarry::Engine::open(lib.config()).await.unwrap();
        let garage = std::fs::canonicalize(docs.join("garage.pdf")).unwrap();
        assert!(engine.ocr_words(&garage, 1).await.unwrap().is_empty(), "page 1 has a text layer");
        engine.ocr_words(&garage, 2).await.unwrap()
    });
    let word =
        words.iter().find(|w| w.text == "Kündigungsfrist").unwrap_or_else(|| panic!("{words:?}"));
    assert!((0.05..0.5).contains(&word.x) && (0.2..0.4).contains(&word.y), "{word:?}");
    assert!(word.w > 0.0 && word.w < 0.5 && word.h > 0.0 && word.h < 0.1, "{word:?}");
    // An image file is one page of OCR'd text.
    let hits = search(&lib, "Schlüssel Hausmeister");
    assert!(hits[0]["doc_path"].as_str().unwrap().ends_with("zettel.png"), "{hits:#?}");
    assert_eq!(warnings_of(&lib, "zettel.png"), ["read by OCR (deu+eng)"]);

    // Switched off: the scan is named as unread and the image is passed over.
    let off = TempLibrary::new();
    let output = off.run(&["--no-ocr", "index", "--json", docs.to_str().unwrap()]);
    let report = json_of(&output);
    assert_eq!(report["added"], 1, "{report:#}");
    assert!(search(&off, "Kündigungsfrist Quartalsende").is_empty());
    assert_eq!(
        warnings_of(&off, "garage.pdf"),
        [
            "no extractable text on page 2 (scanned, or fonts without a Unicode map; OCR is switched off)"
        ]
    );
}

/// A scan attached to an e-mail and a scan and a photo of a note inside a zip archive are read
/// by OCR like files of their own, cited at the attachment or entry; with OCR off they are
/// named as unread.
#[test]
fn scans_and_images_inside_archives_and_e_mails_are_read_by_ocr() {
    let lib = TempLibrary::new();
    let docs = lib.path().join("docs");
    std::fs::create_dir_all(&docs).unwrap();
    let image = render(
        &["Die Nebenkosten für das Jahr 2026", "werden im März abgerechnet."],
        &lib.path().join("page.pgm"),
    );
    let scanned = lib.path().join("abrechnung.pdf");
    write_scanned_pdf(&scanned, "Hausverwaltung Lindenhof.", image);
    let photo = lib.path().join("aushang.png");
    let status = Command::new("convert")
        .args(["-size", "1600x200", "xc:white", "-font", "DejaVu-Sans", "-pointsize", "44"])
        .args(["-fill", "black", "-annotate", "+40+110", "Der Fahrstuhl wird am Freitag gewartet."])
        .arg(&photo)
        .status()
        .unwrap();
    assert!(status.success());
    let (pdf_bytes, png_bytes) = (std::fs::read(&scanned).unwrap(), std::fs::read(&photo).unwrap());
    // A tracking pixel beside the photo: no Tesseract run, named as unread.
    let pixel = lib.path().join("pixel.png");
    write_blank_png(&pixel, 1, 1);
    let pixel_bytes = std::fs::read(&pixel).unwrap();

    let archive = std::fs::File::create(docs.join("hausakte.zip")).unwrap();
    let mut zip = zip::ZipWriter::new(archive);
    let options = zip::write::SimpleFileOptions::default();
    zip.start_file("2026/abrechnung.pdf", options).unwrap();
    std::io::Write::write_all(&mut zip, &pdf_bytes).unwrap();
    zip.start_file("2026/aushang.png", options).unwrap();
    std::io::Write::write_all(&mut zip, &png_bytes).unwrap();
    zip.finish().unwrap();

    // Base64 in lines of 76, as mail programs send attachments.
    let base64 = |bytes: &[u8]| {
        const ALPHABET: &[u8; 64] =
            b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
        let mut text = String::new();
        for group in bytes.chunks(3) {
            let n =
                group.iter().enumerate().fold(0u32, |n, (i, &b)| n | u32::from(b) << (16 - 8 * i));
            for i in 0..4 {
                let sextet = (n >> (18 - 6 * i)) & 63;
                text.push(if i <= group.len() { ALPHABET[sextet as usize] as char } else { '=' });
            }
        }
        text.as_bytes()
            .chunks(76)
            .map(|l| String::from_utf8_lossy(l).into_owned())
            .collect::<Vec<_>>()
            .join("\r\n")
    };
    let eml = format!(
        "From: Hausmeister <hausmeister@example.org>\r\nTo: mieter@example.org\r\n\
         Subject: Aushang\r\nMIME-Version: 1.0\r\n\
         Content-Type: multipart/mixed; boundary=\"b\"\r\n\r\n\
         --b\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nSiehe Anhang.\r\n\
         --b\r\nContent-Type: image/png; name=\"aushang.png\"\r\n\
         Content-Disposition: attachment; filename=\"aushang.png\"\r\n\
         Content-Transfer-Encoding: base64\r\n\r\n{}\r\n\
         --b\r\nContent-Type: image/png; name=\"pixel.png\"\r\n\
         Content-Disposition: inline; filename=\"pixel.png\"\r\n\
         Content-Transfer-Encoding: base64\r\n\r\n{}\r\n--b--\r\n",
        base64(&png_bytes),
        base64(&pixel_bytes)
    );
    std::fs::write(docs.join("aushang.eml"), eml).unwrap();

    let report = json_of(&lib.run(&["index", "--json", docs.to_str().unwrap()]));
    // The archive's two entries are documents of their own, the message a third.
    assert_eq!(
        (report["added"].as_u64(), report["failed"].as_u64()),
        (Some(3), Some(0)),
        "{report:#}"
    );
    // The scanned page inside the archive, on its own page of the entry's document.
    let hits = search(&lib, "Nebenkosten März abgerechnet");
    assert!(!hits.is_empty(), "the scan inside the archive was not read");
    assert!(
        hits[0]["doc_path"].as_str().unwrap().ends_with("hausakte.zip/2026/abrechnung.pdf"),
        "{hits:#?}"
    );
    assert_eq!(hits[0]["page"], 2, "{hits:#?}");
    // The photo, in the archive and attached to the message.
    let hits = search(&lib, "Fahrstuhl Freitag gewartet");
    let found: Vec<(String, String)> = hits
        .iter()
        .map(|h| {
            let path = h["doc_path"].as_str().unwrap();
            let file = path.strip_prefix(docs.to_str().unwrap()).unwrap().to_owned();
            (file, h["heading"].as_str().unwrap_or("").to_owned())
        })
        .collect();
    assert!(found.contains(&("/hausakte.zip/2026/aushang.png".into(), "".into())), "{found:?}");
    assert!(found.contains(&("/aushang.eml".into(), "Aushang > aushang.png".into())), "{found:?}");
    let warnings = warnings_of(&lib, "aushang.eml");
    assert!(
        warnings
            .iter()
            .any(|w| w.starts_with("1 attachment not indexed") && w.ends_with(": pixel.png")),
        "{warnings:?}"
    );
    assert!(!warnings.iter().any(|w| w.contains("OCR found no text")), "{warnings:?}");
    let warnings = warnings_of(&lib, "hausakte.zip/2026/abrechnung.pdf");
    assert!(warnings.contains(&"page 2 read by OCR (deu+eng)".to_owned()), "{warnings:?}");
    let warnings = warnings_of(&lib, "hausakte.zip/2026/aushang.png");
    assert!(warnings.contains(&"read by OCR (deu+eng)".to_owned()), "{warnings:?}");

    // Switched off: the photo is unread and the scanned page says why.
    let off = TempLibrary::new();
    let report = json_of(&off.run(&["--no-ocr", "index", "--json", docs.to_str().unwrap()]));
    assert_eq!(report["failed"], 0, "{report:#}");
    assert!(search(&off, "Fahrstuhl Freitag gewartet").is_empty());
    let warnings = warnings_of(&off, "hausakte.zip/2026/abrechnung.pdf");
    assert!(
        warnings
            .iter()
            .any(|w| w.starts_with("no extractable text on page 2")
                && w.contains("OCR is switched off")),
        "{warnings:?}"
    );
    let warnings = warnings_of(&off, "hausakte.zip");
    assert!(
        warnings
            .iter()
            .any(|w| w.starts_with("1 entry not indexed") && w.ends_with("2026/aushang.png")),
        "{warnings:?}"
    );
}

#[test]
fn the_shared_scans_become_searchable() {
    let Some(data) = test_data("the_shared_scans_become_searchable") else { return };
    let lib = TempLibrary::new();
    let docs = lib.path().join("docs");
    std::fs::create_dir_all(&docs).unwrap();
    for name in ["two_pages.pdf", "vertical.pdf"] {
        std::fs::copy(data.join("pdfs").join(name), docs.join(name)).unwrap();
    }
    let report = json_of(&lib.run(&["index", "--json", docs.to_str().unwrap()]));
    assert_eq!(report["failed"], 0, "{report:#}");
    // The second page is the Firefox logo with its name; the first is the logo alone.
    let hits = search(&lib, "Firefox");
    assert_eq!(hits.len(), 1, "{hits:#?}");
    assert_eq!(hits[0]["page"], 2, "{hits:#?}");
    // Vertical Japanese is not read by the German and English models, and says so.
    let warnings = warnings_of(&lib, "vertical.pdf");
    assert!(
        warnings.iter().any(|w| w.contains("OCR read nothing reliable on page 1")),
        "{warnings:?}"
    );
}

/// A grey PNG of `width` x `height` white pixels (the bytes compress to almost nothing).
fn write_blank_png(path: &Path, width: u32, height: u32) {
    use std::io::Write;
    let mut deflate = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::best());
    let row: Vec<u8> = std::iter::once(0).chain(std::iter::repeat_n(255, width as usize)).collect();
    for _ in 0..height {
        deflate.write_all(&row).unwrap();
    }
    let data = deflate.finish().unwrap();
    let chunk = |kind: &[u8], body: &[u8]| {
        let mut out = (body.len() as u32).to_be_bytes().to_vec();
        out.extend_from_slice(kind);
        out.extend_from_slice(body);
        let mut crc = crc32fast::Hasher::new();
        crc.update(kind);
        crc.update(body);
        out.extend_from_slice(&crc.finalize().to_be_bytes());
        out
    };
    let mut header = width.to_be_bytes().to_vec();
    header.extend_from_slice(&height.to_be_bytes());
    header.extend_from_slice(&[8, 0, 0, 0, 0]); // 8-bit grey, no interlace
    let mut png = b"\x89PNG\r\n\x1a\n".to_vec();
    png.extend(chunk(b"IHDR", &header));
    png.extend(chunk(b"IDAT", &data));
    png.extend(chunk(b"IEND", b""));
    std::fs::write(path, png).unwrap();
}

/// A 100-megapixel picture (120 KB on disk) and a broken one: each ends with a reason, and
/// the note beside them is indexed.
#[test]
fn a_huge_or_broken_image_costs_only_itself() {
    let lib = TempLibrary::new();
    let docs = lib.path().join("docs");
    std::fs::create_dir_all(&docs).unwrap();
    write_blank_png(&docs.join("huge.png"), 10_000, 10_000);
    std::fs::write(docs.join("broken.jpg"), b"\xff\xd8\xff\xe0 not really a JPEG").unwrap();
    std::fs::write(docs.join("note.txt"), "The ferry leaves at noon.").unwrap();
    let report = json_of(&lib.run(&["index", "--json", docs.to_str().unwrap()]));
    assert_eq!(
        (report["added"].as_u64(), report["failed"].as_u64()),
        (Some(2), Some(1)),
        "{report:#}"
    );
    assert_eq!(warnings_of(&lib, "huge.png"), ["OCR found no text in the image"]);
    let error = report["failures"][0]["error"].as_str().unwrap();
    assert!(error.starts_with("OCR failed: tesseract failed"), "{error}");
    assert!(!search(&lib, "ferry noon").is_empty());
}
