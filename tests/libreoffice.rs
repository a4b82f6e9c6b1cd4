//! Real office files made by LibreOffice (Debian's packages, installed by setup): the test
//! writes a report as HTML, a workbook and a deck as flat OpenDocument XML, has `soffice
//! --headless --convert-to` save them as DOCX, ODT, RTF, EPUB, PDF, XLSX, ODS, PPTX and ODP, and
//! finds known sentences in each through `quarry search --json` on the right page, sheet or
//! slide, under the right heading, with the title LibreOffice recorded.

use std::path::Path;
use std::process::Command;

use crate::support::{TempLibrary, json_of};

/// A two-page report: the second top-level heading starts a page, as people write it.
const REPORT_HTML: &str = r#"<!DOCTYPE html>
<html lang="de"><head><meta charset="utf-8"><title>Jahresbericht der Hafenverwaltung</title></head>
<body>
<h1>Jahresbericht</h1>
<p>Die Hafenverwaltung legt ihren Bericht für das Jahr 2026 vor.</p>
<h2>Liegeplätze</h2>
<p>Im Winter bleiben vierzig Boote im inneren Becken, die übrigen kommen an Land.</p>
<h1 style="page-break-before: always">Finanzen</h1>
<p>Die Rücklage für die Spundwand beträgt 118.000 Euro.</p>
<h2>Gebühren</h2>
<p>The berth fee for visiting yachts rises to 2.10 euros per metre and night.</p>
</body></html>
"#;

/// A workbook of two sheets with a header row each, a decimal and a formatted date.
const WORKBOOK_FODS: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<office:document xmlns:office="urn:oasis:names:tc:opendocument:xmlns:office:1.0" xmlns:table="urn:oasis:names:tc:opendocument:xmlns:table:1.0" xmlns:text="urn:oasis:names:tc:opendocument:xmlns:text:1.0" xmlns:dc="http://purl.org/dc/elements/1.1/" xmlns:style="urn:oasis:names:tc:opendocument:xmlns:style:1.0" xmlns:number="urn:oasis:names:tc:opendocument:xmlns:datastyle:1.0" office:version="1.3" office:mimetype="application/vnd.oasis.opendocument.spreadsheet">
<office:meta><dc:title>Harbour registers</dc:title></office:meta>
<office:automatic-styles><number:date-style style:name="N1"><number:year number:style="long"/><number:text>-</number:text><number:month number:style="long"/><number:text>-</number:text><number:day number:style="long"/></number:date-style><style:style style:name="ce1" style:family="table-cell" style:data-style-name="N1"/></office:automatic-styles>
<office:body><office:spreadsheet>
<table:table table:name="Moorings">
<table:table-row><table:table-cell office:value-type="string"><text:p>Boat</text:p></table:table-cell><table:table-cell office:value-type="string"><text:p>Berth</text:p></table:table-cell><table:table-cell office:value-type="string"><text:p>Length (m)</text:p></table:table-cell></table:table-row>
<table:table-row><table:table-cell office:value-type="string"><text:p>Kormoran</text:p></table:table-cell><table:table-cell office:value-type="string"><text:p>Pier 3 south</text:p></table:table-cell><table:table-cell office:value-type="float" office:value="11.5"><text:p>11.5</text:p></table:table-cell></table:table-row>
<table:table-row><table:table-cell office:value-type="string"><text:p>Albatross</text:p></table:table-cell><table:table-cell office:value-type="string"><text:p>Pier 1 west</text:p></table:table-cell><table:table-cell office:value-type="float" office:value="9"><text:p>9</text:p></table:table-cell></table:table-row>
</table:table>
<table:table table:name="Repairs">
<table:table-row><table:table-cell office:value-type="string"><text:p>Item</text:p></table:table-cell><table:table-cell office:value-type="string"><text:p>Due</text:p></table:table-cell></table:table-row>
<table:table-row><table:table-cell office:value-type="string"><text:p>Crane hydraulics overhaul</text:p></table:table-cell><table:table-cell table:style-name="ce1" office:value-type="date" office:date-value="2027-03-15"><text:p>2027-03-15</text:p></table:table-cell></table:table-row>
</table:table>
</office:spreadsheet></office:body></office:document>
"#;

/// A deck of three slides with title placeholders, the second with speaker notes.
const DECK_FODP: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<office:document xmlns:office="urn:oasis:names:tc:opendocument:xmlns:office:1.0" xmlns:style="urn:oasis:names:tc:opendocument:xmlns:style:1.0" xmlns:text="urn:oasis:names:tc:opendocument:xmlns:text:1.0" xmlns:draw="urn:oasis:names:tc:opendocument:xmlns:drawing:1.0" xmlns:presentation="urn:oasis:names:tc:opendocument:xmlns:presentation:1.0" xmlns:svg="urn:oasis:names:tc:opendocument:xmlns:svg-compatible:1.0" xmlns:dc="http://purl.org/dc/elements/1.1/" office:version="1.3" office:mimetype="application/vnd.oasis.opendocument.presentation">
<office:meta><dc:title>Harbour board, January</dc:title></office:meta>
<office:styles/>
<office:automatic-styles><style:style style:name="pr1" style:family="presentation"/><style:style style:name="pr2" style:family="presentation"/></office:automatic-styles>
<office:master-styles><style:master-page style:name="Default"/></office:master-styles>
<office:body><office:presentation>
SLIDES
</office:presentation></office:body></office:document>
"#;

/// One slide of the deck: title, body and, when given, speaker notes.
fn slide(n: usize, title: &str, body: &str, notes: Option<&str>) -> String {
    let frame = |style: &str, class: &str, y: &str, text: &str| {
        format!(
            r#"<draw:frame presentation:style-name="{style}" draw:layer="layout" presentation:class="{class}" svg:x="1cm" svg:y="{y}" svg:width="24cm" svg:height="3cm"><draw:text-box><text:p>{text}</text:p></draw:text-box></draw:frame>"#
        )
    };
    let notes = notes
        .map(|n| {
            format!("<presentation:notes>{}</presentation:notes>", frame("pr2", "notes", "14cm", n))
        })
        .unwrap_or_default();
    format!(
        r#"<draw:page draw:name="page{n}" draw:master-page-name="Default" presentation:presentation-page-layout-name="AL1T1">{}{}{notes}</draw:page>"#,
        frame("pr1", "title", "1cm", title),
        frame("pr2", "outline", "5cm", body),
    )
}

/// Has LibreOffice save `source` as `format` into `out` (a private profile under `profile`,
/// so the test does not touch the user's).
fn convert(source: &Path, format: &str, out: &Path, profile: &Path, import_filter: Option<&str>) {
    let mut soffice = Command::new("soffice");
    soffice.arg(format!("-env:UserInstallation=file://{}", profile.display()));
    soffice.arg("--headless");
    if let Some(filter) = import_filter {
        soffice.arg(format!("--infilter={filter}"));
    }
    soffice.args(["--convert-to", format, "--outdir"]).arg(out).arg(source);
    let output = soffice.output().expect("LibreOffice's soffice (setup installs it)");
    assert!(
        output.status.success(),
        "soffice {format}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let stem = source.file_stem().unwrap().to_string_lossy();
    assert!(
        out.join(format!("{stem}.{format}")).is_file(),
        "soffice wrote no {stem}.{format}: {}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

/// The best hit of `query` (text search) in the file named `name`: (page, heading, text).
fn hit_in(lib: &TempLibrary, query: &str, name: &str) -> (u64, String, String) {
    let found = json_of(&lib.run(&["search", "--mode", "text", "--json", "-k", "20", query]));
    let hit = found["hits"]
        .as_array()
        .unwrap()
        .iter()
        .find(|h| h["doc_path"].as_str().unwrap().ends_with(&format!("/{name}")))
        .unwrap_or_else(|| panic!("no hit in {name} for {query:?}: {found:#}"))
        .clone();
    (
        hit["page"].as_u64().unwrap(),
        hit["heading"].as_str().unwrap_or("").to_owned(),
        hit["text"].as_str().unwrap().to_owned(),
    )
}

#[test]
fn files_saved_by_libreoffice_are_found_at_their_page_sheet_and_slide() {
    let lib = TempLibrary::new();
    let sources = lib.path().join("sources");
    let docs = lib.path().join("docs");
    let profile = lib.path().join("soffice-profile");
    std::fs::create_dir_all(&sources).unwrap();
    std::fs::create_dir_all(&docs).unwrap();
    let report = sources.join("report.html");
    std::fs::write(&report, REPORT_HTML).unwrap();
    let workbook = sources.join("harbour.fods");
    std::fs::write(&workbook, WORKBOOK_FODS).unwrap();
    let deck = sources.join("board.fodp");
    let slides = [
        slide(1, "Agenda", "Welcome and the treasurer's report.", None),
        slide(
            2,
            "Dredging",
            "The entrance channel will be dredged to four metres in April.",
            Some("Mention that the dredger comes from Cuxhaven."),
        ),
        slide(
            3,
            "Any other business",
            "The summer festival moves to the second weekend of July.",
            None,
        ),
    ];
    std::fs::write(&deck, DECK_FODP.replace("SLIDES", &slides.concat())).unwrap();
    // Writer proper (not Writer/Web) opens the HTML, so every text format can be saved.
    for format in ["docx", "odt", "rtf", "epub", "pdf"] {
        convert(&report, format, &docs, &profile, Some("HTML (StarWriter)"));
    }
    for format in ["xlsx", "ods"] {
        convert(&workbook, format, &docs, &profile, None);
    }
    for format in ["pptx", "odp"] {
        convert(&deck, format, &docs, &profile, None);
    }

    let indexed = json_of(&lib.run(&["index", "--json", docs.to_str().unwrap()]));
    assert_eq!(
        (indexed["added"].as_u64(), indexed["failed"].as_u64()),
        (Some(9), Some(0)),
        "{indexed:#}"
    );

    // The report: the heading that starts page 2 starts it in every format (DOCX ends page 1
    // with a break, ODT puts the break in the heading's style, RTF writes \pagebb, EPUB starts
    // a chapter, PDF a page); headings where the format keeps them (the EPUB's from its table
    // of contents, the RTF's from its paragraphs' outline levels).
    for (name, keeps_headings) in [
        ("report.docx", true),
        ("report.odt", true),
        ("report.epub", true),
        ("report.rtf", true),
        ("report.pdf", false),
    ] {
        let (page, heading, text) = hit_in(&lib, "vierzig Boote inneren Becken", name);
        assert_eq!(page, 1, "{name}: {heading} | {text}");
        assert!(!text.contains("Spundwand"), "{name}: page 1 runs into page 2: {text}");
        let (page, heading, text) = hit_in(&lib, "Rücklage Spundwand", name);
        assert_eq!(page, 2, "{name}: {heading} | {text}");
        assert!(text.contains("beträgt 118.000 Euro"), "{name}: {text}");
        assert!(!text.contains("vierzig Boote"), "{name}: page 2 holds page 1's text: {text}");
        if keeps_headings {
            assert!(heading.starts_with("Finanzen"), "{name}: heading {heading:?}");
        }
    }

    // The workbook: one page per sheet, its name the heading, rows as "Column: value", the date
    // as a date.
    for name in ["harbour.xlsx", "harbour.ods"] {
        let (page, heading, text) = hit_in(&lib, "Kormoran", name);
        assert_eq!((page, heading.as_str()), (1, "Moorings"), "{name}: {text}");
        assert!(
            text.contains("Boat: Kormoran; Berth: Pier 3 south; Length (m): 11.5"),
            "{name}: {text}"
        );
        let (page, heading, text) = hit_in(&lib, "crane hydraulics", name);
        assert_eq!((page, heading.as_str()), (2, "Repairs"), "{name}: {text}");
        assert!(
            text.contains("Item: Crane hydraulics overhaul; Due: 2027-03-15"),
            "{name}: {text}"
        );
    }

    // The deck: slides in order, the title placeholder as heading, notes on their slide.
    for name in ["board.pptx", "board.odp"] {
        let (page, heading, text) = hit_in(&lib, "dredger Cuxhaven", name);
        assert_eq!((page, heading.as_str()), (2, "Dredging"), "{name}: {text}");
        let (page, heading, text) = hit_in(&lib, "summer festival July", name);
        assert_eq!((page, heading.as_str()), (3, "Any other business"), "{name}: {text}");
    }

    // Titles as LibreOffice recorded them.
    let listed = json_of(&lib.run(&["docs", "--json"]));
    for doc in listed["documents"].as_array().unwrap() {
        let path = doc["path"].as_str().unwrap();
        let want = match Path::new(path).file_stem().unwrap().to_str().unwrap() {
            "report" => "Jahresbericht der Hafenverwaltung",
            "harbour" => "Harbour registers",
            "board" => "Harbour board, January",
            other => panic!("unexpected document {other}"),
        };
        assert_eq!(doc["title"].as_str(), Some(want), "{path}");
    }
}
