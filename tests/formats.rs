//! The office, e-book, e-mail and table formats, from fixtures the test writes itself (the
//! smallest files the formats allow, laid out as Office, LibreOffice and e-book tools write
//! them): each is indexed through the real worker and a known sentence is found with
//! `quarry search --json` at its slide, sheet, chapter or message part. Zip bombs and
//! password-protected workbooks end as failures with a reason, and nothing else is lost.

use std::io::Write;
use std::path::Path;

use crate::support::{TempLibrary, json_of};

/// Writes a zip archive of `parts` (stored as given; `mimetype` first, as ODF and EPUB want).
fn write_zip(path: &Path, parts: &[(&str, &str)]) {
    let file = std::fs::File::create(path).unwrap();
    let mut zip = zip::ZipWriter::new(file);
    for (name, text) in parts {
        let options = if *name == "mimetype" {
            zip::write::SimpleFileOptions::default()
                .compression_method(zip::CompressionMethod::Stored)
        } else {
            zip::write::SimpleFileOptions::default()
        };
        zip.start_file(*name, options).unwrap();
        zip.write_all(text.as_bytes()).unwrap();
    }
    zip.finish().unwrap();
}

const PML: &str = r#"xmlns:a="http://schemas.openxmlformats.org/drawingml/2006/main" xmlns:r="http://schemas.openxmlformats.org/officeDocument/2006/relationships" xmlns:p="http://schemas.openxmlformats.org/presentationml/2006/main""#;

fn pptx_shape(placeholder: &str, text: &str) -> String {
    format!(
        r#"<p:sp><p:nvSpPr><p:cNvPr id="2" name="s"/><p:cNvSpPr/><p:nvPr>{placeholder}</p:nvPr></p:nvSpPr><p:spPr/><p:txBody><a:bodyPr/><a:p><a:r><a:t>{text}</a:t></a:r></a:p></p:txBody></p:sp>"#
    )
}

/// A deck of three slides whose files are numbered out of order (slide 2 of the deck is
/// `slide3.xml`), the second with speaker notes.
pub(crate) fn write_pptx(path: &Path) {
    let slide = |title: &str, body: &str| {
        format!(
            r#"<?xml version="1.0"?><p:sld {PML}><p:cSld><p:spTree>{}{}{}</p:spTree></p:cSld></p:sld>"#,
            pptx_shape(r#"<p:ph type="title"/>"#, title),
            pptx_shape(r#"<p:ph idx="1"/>"#, body),
            pptx_shape(r#"<p:ph type="sldNum"/>"#, "99"),
        )
    };
    let rels = |items: &[(&str, &str, &str)]| {
        let items: String = items
            .iter()
            .map(|(id, kind, target)| {
                format!(r#"<Relationship Id="{id}" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/{kind}" Target="{target}"/>"#)
            })
            .collect();
        format!(
            r#"<?xml version="1.0"?><Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">{items}</Relationships>"#
        )
    };
    let notes = format!(
        r#"<?xml version="1.0"?><p:notes {PML}><p:cSld><p:spTree>{}{}</p:spTree></p:cSld></p:notes>"#,
        pptx_shape(r#"<p:ph type="sldImg"/>"#, ""),
        pptx_shape(
            r#"<p:ph type="body" idx="1"/>"#,
            "Remind the board that the lighthouse budget is frozen until spring."
        ),
    );
    write_zip(
        path,
        &[
            (
                "[Content_Types].xml",
                r#"<?xml version="1.0"?><Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types"><Default Extension="xml" ContentType="application/xml"/></Types>"#,
            ),
            (
                "ppt/presentation.xml",
                &format!(
                    r#"<?xml version="1.0"?><p:presentation {PML}><p:sldIdLst><p:sldId id="256" r:id="rId1"/><p:sldId id="257" r:id="rId3"/><p:sldId id="258" r:id="rId2"/></p:sldIdLst></p:presentation>"#
                ),
            ),
            (
                "ppt/_rels/presentation.xml.rels",
                &rels(&[
                    ("rId1", "slide", "slides/slide1.xml"),
                    ("rId2", "slide", "slides/slide2.xml"),
                    ("rId3", "slide", "slides/slide3.xml"),
                ]),
            ),
            (
                "ppt/slides/slide1.xml",
                &slide("Harbour report", "The harbour handled more ships than ever."),
            ),
            (
                "ppt/slides/slide3.xml",
                &slide("Lighthouse", "The lighthouse keeper retires in March."),
            ),
            (
                "ppt/slides/_rels/slide3.xml.rels",
                &rels(&[("rId1", "notesSlide", "../notesSlides/notesSlide1.xml")]),
            ),
            ("ppt/notesSlides/notesSlide1.xml", &notes),
            ("ppt/slides/slide2.xml", &slide("Questions", "Thank you.")),
            (
                "docProps/core.xml",
                r#"<?xml version="1.0"?><cp:coreProperties xmlns:cp="c" xmlns:dc="http://purl.org/dc/elements/1.1/"><dc:title>Harbour board, December</dc:title></cp:coreProperties>"#,
            ),
        ],
    );
}

/// A workbook with two sheets written the way Excel does (shared strings, numbers, a date).
pub(crate) fn write_xlsx(path: &Path) {
    write_zip(
        path,
        &[
            (
                "[Content_Types].xml",
                r#"<?xml version="1.0"?><Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types"><Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/><Default Extension="xml" ContentType="application/xml"/><Override PartName="/xl/workbook.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml"/><Override PartName="/xl/worksheets/sheet1.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.worksheet+xml"/><Override PartName="/xl/worksheets/sheet2.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.worksheet+xml"/><Override PartName="/xl/sharedStrings.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.sharedStrings+xml"/><Override PartName="/xl/styles.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.styles+xml"/></Types>"#,
            ),
            (
                "_rels/.rels",
                r#"<?xml version="1.0"?><Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships"><Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/officeDocument" Target="xl/workbook.xml"/></Relationships>"#,
            ),
            (
                "xl/workbook.xml",
                r#"<?xml version="1.0"?><workbook xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main" xmlns:r="http://schemas.openxmlformats.org/officeDocument/2006/relationships"><sheets><sheet name="Tenants" sheetId="1" r:id="rId1"/><sheet name="Repairs" sheetId="2" r:id="rId2"/></sheets></workbook>"#,
            ),
            (
                "xl/_rels/workbook.xml.rels",
                r#"<?xml version="1.0"?><Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships"><Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/worksheet" Target="worksheets/sheet1.xml"/><Relationship Id="rId2" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/worksheet" Target="worksheets/sheet2.xml"/><Relationship Id="rId3" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/sharedStrings" Target="sharedStrings.xml"/><Relationship Id="rId4" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/styles" Target="styles.xml"/></Relationships>"#,
            ),
            (
                "xl/styles.xml",
                r#"<?xml version="1.0"?><styleSheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main"><numFmts count="0"/><cellXfs count="2"><xf numFmtId="0"/><xf numFmtId="14" applyNumberFormat="1"/></cellXfs></styleSheet>"#,
            ),
            (
                "xl/sharedStrings.xml",
                r#"<?xml version="1.0"?><sst xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main" count="7" uniqueCount="7"><si><t>Tenant</t></si><si><t>Monthly rent</t></si><si><t>Anna Mueller</t></si><si><t>Bauer GmbH</t></si><si><t>Repair</t></si><si><t>Date</t></si><si><t>Replaced the boiler in the basement</t></si></sst>"#,
            ),
            (
                "xl/worksheets/sheet1.xml",
                r#"<?xml version="1.0"?><worksheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main"><sheetData><row r="1"><c r="A1" t="s"><v>0</v></c><c r="B1" t="s"><v>1</v></c></row><row r="2"><c r="A2" t="s"><v>2</v></c><c r="B2"><v>1200</v></c></row><row r="3"><c r="A3" t="s"><v>3</v></c><c r="B3"><v>2450.5</v></c></row></sheetData></worksheet>"#,
            ),
            (
                "xl/worksheets/sheet2.xml",
                r#"<?xml version="1.0"?><worksheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main"><sheetData><row r="1"><c r="A1" t="s"><v>4</v></c><c r="B1" t="s"><v>5</v></c></row><row r="2"><c r="A2" t="s"><v>6</v></c><c r="B2" s="1"><v>46363</v></c></row></sheetData></worksheet>"#,
            ),
        ],
    );
}

/// An OpenDocument spreadsheet with one sheet.
pub(crate) fn write_ods(path: &Path) {
    write_zip(
        path,
        &[
            ("mimetype", "application/vnd.oasis.opendocument.spreadsheet"),
            (
                "META-INF/manifest.xml",
                r#"<?xml version="1.0"?><manifest:manifest xmlns:manifest="urn:oasis:names:tc:opendocument:xmlns:manifest:1.0"><manifest:file-entry manifest:full-path="/" manifest:media-type="application/vnd.oasis.opendocument.spreadsheet"/><manifest:file-entry manifest:full-path="content.xml" manifest:media-type="text/xml"/></manifest:manifest>"#,
            ),
            (
                "content.xml",
                r#"<?xml version="1.0"?><office:document-content xmlns:office="urn:oasis:names:tc:opendocument:xmlns:office:1.0" xmlns:table="urn:oasis:names:tc:opendocument:xmlns:table:1.0" xmlns:text="urn:oasis:names:tc:opendocument:xmlns:text:1.0" office:version="1.3"><office:body><office:spreadsheet><table:table table:name="Fahrzeuge"><table:table-row><table:table-cell office:value-type="string"><text:p>Fahrzeug</text:p></table:table-cell><table:table-cell office:value-type="string"><text:p>Kilometerstand</text:p></table:table-cell></table:table-row><table:table-row><table:table-cell office:value-type="string"><text:p>Lastenfahrrad</text:p></table:table-cell><table:table-cell office:value-type="float" office:value="1834"><text:p>1834</text:p></table:table-cell></table:table-row></table:table></office:spreadsheet></office:body></office:document-content>"#,
            ),
        ],
    );
}

const ODF_NS: &str = r#"xmlns:office="urn:oasis:names:tc:opendocument:xmlns:office:1.0" xmlns:text="urn:oasis:names:tc:opendocument:xmlns:text:1.0" xmlns:draw="urn:oasis:names:tc:opendocument:xmlns:drawing:1.0" xmlns:presentation="urn:oasis:names:tc:opendocument:xmlns:presentation:1.0" xmlns:dc="http://purl.org/dc/elements/1.1/" xmlns:meta="urn:oasis:names:tc:opendocument:xmlns:meta:1.0""#;

/// An OpenDocument text of two pages (LibreOffice records the break).
pub(crate) fn write_odt(path: &Path) {
    write_zip(
        path,
        &[
            ("mimetype", "application/vnd.oasis.opendocument.text"),
            (
                "content.xml",
                &format!(
                    r#"<?xml version="1.0"?><office:document-content {ODF_NS}><office:body><office:text><text:h text:outline-level="1">Hausordnung</text:h><text:p>Die Mülltonnen stehen im Hof.</text:p><text:soft-page-break/><text:h text:outline-level="2">Ruhezeiten</text:h><text:p>Die Mittagsruhe gilt von 13 bis 15 Uhr<text:s/>an allen Werktagen.</text:p></office:text></office:body></office:document-content>"#
                ),
            ),
            (
                "meta.xml",
                &format!(
                    r#"<?xml version="1.0"?><office:document-meta {ODF_NS}><office:meta><dc:title>Hausordnung 2027</dc:title></office:meta></office:document-meta>"#
                ),
            ),
        ],
    );
}

/// An OpenDocument presentation of two slides, the first with notes.
pub(crate) fn write_odp(path: &Path) {
    write_zip(
        path,
        &[
            ("mimetype", "application/vnd.oasis.opendocument.presentation"),
            (
                "content.xml",
                &format!(
                    r#"<?xml version="1.0"?><office:document-content {ODF_NS}><office:body><office:presentation><draw:page draw:name="page1"><draw:frame presentation:class="title"><draw:text-box><text:p>Winterdienst</text:p></draw:text-box></draw:frame><draw:frame presentation:class="outline"><draw:text-box><text:p>Der Gehweg wird ab sechs Uhr geräumt.</text:p></draw:text-box></draw:frame><presentation:notes><draw:frame presentation:class="notes"><draw:text-box><text:p>Streusalz ist im Keller.</text:p></draw:text-box></draw:frame></presentation:notes></draw:page><draw:page draw:name="page2"><draw:frame presentation:class="title"><draw:text-box><text:p>Fahrräder</text:p></draw:text-box></draw:frame><draw:frame presentation:class="outline"><draw:text-box><text:p>Der Fahrradkeller wird im Januar gestrichen.</text:p></draw:text-box></draw:frame></draw:page></office:presentation></office:body></office:document-content>"#
                ),
            ),
        ],
    );
}

/// An e-book of a cover and two chapters.
pub(crate) fn write_epub(path: &Path) {
    let chapter = |title: &str, body: &str| {
        format!(
            r#"<?xml version="1.0" encoding="utf-8"?><html xmlns="http://www.w3.org/1999/xhtml"><head><title>{title}</title></head><body><h1>{title}</h1><p>{body}</p></body></html>"#
        )
    };
    write_zip(
        path,
        &[
            ("mimetype", "application/epub+zip"),
            (
                "META-INF/container.xml",
                r#"<?xml version="1.0"?><container version="1.0" xmlns="urn:oasis:names:tc:opendocument:xmlns:container"><rootfiles><rootfile full-path="OEBPS/content.opf" media-type="application/oebps-package+xml"/></rootfiles></container>"#,
            ),
            (
                "OEBPS/content.opf",
                r#"<?xml version="1.0"?><package xmlns="http://www.idpf.org/2007/opf" version="3.0"><metadata xmlns:dc="http://purl.org/dc/elements/1.1/"><dc:title>The Keeper's Log</dc:title></metadata><manifest><item id="cover" href="cover.xhtml" media-type="application/xhtml+xml"/><item id="c1" href="text/one.xhtml" media-type="application/xhtml+xml"/><item id="c2" href="text/chapter%20two.xhtml" media-type="application/xhtml+xml"/></manifest><spine><itemref idref="cover"/><itemref idref="c1"/><itemref idref="c2"/></spine></package>"#,
            ),
            (
                "OEBPS/cover.xhtml",
                r#"<html xmlns="http://www.w3.org/1999/xhtml"><body><img src="cover.jpg"/></body></html>"#,
            ),
            (
                "OEBPS/text/one.xhtml",
                &chapter("The Storm", "The storm tore the foghorn from its mount."),
            ),
            (
                "OEBPS/text/chapter two.xhtml",
                &chapter(
                    "The Calm",
                    "In the calm that followed, the keeper counted forty gulls on the rail.",
                ),
            ),
        ],
    );
}

/// A message with a body and a CSV attachment.
pub(crate) fn write_eml(path: &Path) {
    let eml = "From: Harbour Office <office@harbour.example>\r\n\
        To: Anna Mueller <anna@example.org>\r\n\
        Subject: Berth allocation for the winter\r\n\
        Date: Fri, 4 Dec 2026 09:30:00 +0100\r\n\
        MIME-Version: 1.0\r\n\
        Content-Type: multipart/mixed; boundary=\"sep\"\r\n\r\n\
        --sep\r\nContent-Type: text/html; charset=utf-8\r\n\r\n\
        <html><body><p>Your boat moves to the inner basin on 15 January.</p></body></html>\r\n\
        --sep\r\nContent-Type: text/csv; name=\"berths.csv\"\r\n\
        Content-Disposition: attachment; filename=\"berths.csv\"\r\n\r\n\
        Boat,Berth\r\nSeeschwalbe,Pier 7 north\r\n\
        --sep--\r\n";
    std::fs::write(path, eml).unwrap();
}

/// The first hit of `quarry search --json query` (text search, so no embedder is needed).
fn first_hit(lib: &TempLibrary, query: &str) -> serde_json::Value {
    let found = json_of(&lib.run(&["search", "--mode", "text", "--json", "-k", "3", query]));
    let hits = found["hits"].as_array().unwrap_or_else(|| panic!("{found}"));
    assert!(!hits.is_empty(), "nothing found for {query:?}");
    hits[0].clone()
}

/// The best hit of `query` in the document whose path ends with `/name`.
fn hit_in(lib: &TempLibrary, query: &str, name: &str) -> serde_json::Value {
    let found = json_of(&lib.run(&["search", "--mode", "text", "--json", "-k", "10", query]));
    found["hits"]
        .as_array()
        .unwrap()
        .iter()
        .find(|h| h["doc_path"].as_str().unwrap().ends_with(&format!("/{name}")))
        .unwrap_or_else(|| panic!("no hit in {name} for {query:?}: {found:#}"))
        .clone()
}

fn file_of(hit: &serde_json::Value) -> String {
    Path::new(hit["doc_path"].as_str().unwrap()).file_name().unwrap().to_string_lossy().into_owned()
}

#[test]
fn office_ebook_mail_and_table_files_are_found_at_their_slide_sheet_chapter_and_part() {
    let lib = TempLibrary::new();
    let docs = lib.path().join("docs");
    std::fs::create_dir_all(&docs).unwrap();
    write_pptx(&docs.join("board.pptx"));
    write_xlsx(&docs.join("tenants.xlsx"));
    write_ods(&docs.join("fuhrpark.ods"));
    write_odt(&docs.join("hausordnung.odt"));
    write_odp(&docs.join("winter.odp"));
    write_epub(&docs.join("keeper.epub"));
    write_eml(&docs.join("berths.eml"));
    std::fs::write(docs.join("tides.tsv"), "Day\tHigh water\nMonday\t06:42 and 19:05\n").unwrap();
    std::fs::write(docs.join("invoice.csv"), "Posten;Betrag\nHafengebühr;312,40\n").unwrap();
    // An archive with a deck and a note in a folder.
    let deck = docs.join("deck.pptx.tmp");
    write_pptx(&deck);
    let deck_bytes = std::fs::read(&deck).unwrap();
    std::fs::remove_file(&deck).unwrap();
    let archive = std::fs::File::create(docs.join("board-pack.zip")).unwrap();
    let mut zip = zip::ZipWriter::new(archive);
    zip.start_file("minutes/board.pptx", zip::write::SimpleFileOptions::default()).unwrap();
    zip.write_all(&deck_bytes).unwrap();
    zip.start_file("minutes/attendance.txt", zip::write::SimpleFileOptions::default()).unwrap();
    zip.write_all(b"The treasurer sent apologies for the December meeting.").unwrap();
    zip.finish().unwrap();
    std::fs::write(
        docs.join("hausverwaltung.mbox"),
        "From anna@example.org Mon Dec  7 10:00:00 2026\n\
         From: anna@example.org\nSubject: Aufzug\n\nDer Aufzug steht im dritten Stock.\n\n\
         From verwaltung@example.org Tue Dec  8 09:00:00 2026\n\
         From: verwaltung@example.org\nSubject: Re: Aufzug\n\nDer Monteur kommt am Donnerstag.\n",
    )
    .unwrap();
    std::fs::write(
        docs.join("brief.rtf"),
        br"{\rtf1\ansi\ansicpg1252{\fonttbl{\f0 Arial;}}{\info{\title Brief an die Hausverwaltung}}\f0 Sehr geehrte Damen und Herren,\par die Heizung im Treppenhaus f\'e4llt seit Montag aus.\page Mit freundlichen Gr\'fc\'dfen\par}",
    )
    .unwrap();
    std::fs::write(
        docs.join("pump.py"),
        "def drain_basin(level):\n    \"\"\"Opens the sluice when the basin overflows.\"\"\"\n",
    )
    .unwrap();
    let report = json_of(&lib.run(&["index", "--json", docs.to_str().unwrap()]));
    assert_eq!(report["failed"], 0, "{report:#}");
    // The archive's two entries and the mailbox's two messages are documents of their own.
    assert_eq!(report["added"], 15, "{report:#}");

    // Slides: the deck's order, not the file names'; notes are found on their slide.
    let hit = hit_in(&lib, "lighthouse keeper retires", "docs/board.pptx");
    assert_eq!((file_of(&hit).as_str(), hit["page"].as_u64()), ("board.pptx", Some(2)), "{hit:#}");
    assert_eq!(hit["heading"], "Lighthouse", "{hit:#}");
    let hit = hit_in(&lib, "budget frozen until spring", "docs/board.pptx");
    assert_eq!((file_of(&hit).as_str(), hit["page"].as_u64()), ("board.pptx", Some(2)), "{hit:#}");
    // (A short slide and its notes share a chunk, under the slide's heading.)
    assert!(hit["text"].as_str().unwrap().contains("lighthouse budget is frozen"), "{hit:#}");
    let hit = first_hit(&lib, "Gehweg geräumt");
    assert_eq!((file_of(&hit).as_str(), hit["page"].as_u64()), ("winter.odp", Some(1)), "{hit:#}");
    let hit = first_hit(&lib, "Fahrradkeller gestrichen");
    assert_eq!((file_of(&hit).as_str(), hit["page"].as_u64()), ("winter.odp", Some(2)), "{hit:#}");

    // Sheets: each row says what its values are; the sheet is the page, its name the heading.
    let hit = first_hit(&lib, "Bauer GmbH rent");
    assert_eq!(
        (file_of(&hit).as_str(), hit["page"].as_u64()),
        ("tenants.xlsx", Some(1)),
        "{hit:#}"
    );
    assert_eq!(hit["heading"], "Tenants", "{hit:#}");
    assert!(
        hit["text"].as_str().unwrap().contains("Tenant: Bauer GmbH; Monthly rent: 2450.5"),
        "{hit:#}"
    );
    let hit = first_hit(&lib, "boiler basement");
    assert_eq!(
        (file_of(&hit).as_str(), hit["page"].as_u64()),
        ("tenants.xlsx", Some(2)),
        "{hit:#}"
    );
    assert!(hit["text"].as_str().unwrap().contains("Date: 2026-12-07"), "{hit:#}");
    let hit = first_hit(&lib, "Lastenfahrrad");
    assert_eq!(hit["heading"], "Fahrzeuge", "{hit:#}");
    assert!(hit["text"].as_str().unwrap().contains("Kilometerstand: 1834"), "{hit:#}");
    let hit = first_hit(&lib, "Hafengebühr");
    assert!(
        hit["text"].as_str().unwrap().contains("Posten: Hafengebühr; Betrag: 312,40"),
        "{hit:#}"
    );
    let hit = first_hit(&lib, "high water Monday");
    assert!(
        hit["text"].as_str().unwrap().contains("Day: Monday; High water: 06:42 and 19:05"),
        "{hit:#}"
    );

    // OpenDocument text: the recorded page break and the heading path.
    let hit = first_hit(&lib, "Mittagsruhe Werktagen");
    assert_eq!(
        (file_of(&hit).as_str(), hit["page"].as_u64()),
        ("hausordnung.odt", Some(2)),
        "{hit:#}"
    );
    assert_eq!(hit["heading"], "Hausordnung > Ruhezeiten", "{hit:#}");

    // E-book: the chapter in reading order (the cover has no text) with its title.
    let hit = first_hit(&lib, "forty gulls");
    assert_eq!((file_of(&hit).as_str(), hit["page"].as_u64()), ("keeper.epub", Some(2)), "{hit:#}");
    assert_eq!(hit["heading"], "The Calm", "{hit:#}");

    // E-mail: the HTML body is part 1, the attachment part 2 under "message > attachment".
    let hit = first_hit(&lib, "inner basin January");
    assert_eq!((file_of(&hit).as_str(), hit["page"].as_u64()), ("berths.eml", Some(1)), "{hit:#}");
    assert!(
        hit["text"].as_str().unwrap().contains("From: Harbour Office <office@harbour.example>"),
        "{hit:#}"
    );
    let hit = first_hit(&lib, "Seeschwalbe");
    assert_eq!((file_of(&hit).as_str(), hit["page"].as_u64()), ("berths.eml", Some(2)), "{hit:#}");
    assert_eq!(hit["heading"], "Berth allocation for the winter > berths.csv", "{hit:#}");
    assert!(
        hit["text"].as_str().unwrap().contains("Boat: Seeschwalbe; Berth: Pier 7 north"),
        "{hit:#}"
    );

    // RTF: the code page's umlauts, no control words, `\page` as the page break.
    let hit = first_hit(&lib, "Heizung Treppenhaus");
    assert_eq!((file_of(&hit).as_str(), hit["page"].as_u64()), ("brief.rtf", Some(1)), "{hit:#}");
    assert!(hit["text"].as_str().unwrap().contains("fällt seit Montag aus"), "{hit:#}");
    assert!(!hit["text"].as_str().unwrap().contains('\\'), "{hit:#}");
    let hit = first_hit(&lib, "freundlichen Grüßen");
    assert_eq!((file_of(&hit).as_str(), hit["page"].as_u64()), ("brief.rtf", Some(2)), "{hit:#}");

    // A mailbox: one document per message, named by its place, the subject as heading.
    let under_docs = |hit: &serde_json::Value| {
        let path = hit["doc_path"].as_str().unwrap();
        path.strip_prefix(docs.to_str().unwrap()).unwrap().to_owned()
    };
    let hit = first_hit(&lib, "Monteur Donnerstag");
    assert_eq!(
        (under_docs(&hit).as_str(), hit["page"].as_u64()),
        ("/hausverwaltung.mbox/message 2", Some(1)),
        "{hit:#}"
    );
    assert_eq!(hit["heading"], "Re: Aufzug", "{hit:#}");

    // A zip archive: each entry a document of its own, read by its own parser, at its own
    // slide.
    let hit = first_hit(&lib, "treasurer apologies");
    assert_eq!(
        (under_docs(&hit).as_str(), hit["page"].as_u64()),
        ("/board-pack.zip/minutes/attendance.txt", Some(1)),
        "{hit:#}"
    );
    let in_zip = hit_in(&lib, "lighthouse keeper retires", "minutes/board.pptx");
    assert_eq!(
        (under_docs(&in_zip).as_str(), in_zip["page"].as_u64()),
        ("/board-pack.zip/minutes/board.pptx", Some(2)),
        "{in_zip:#}"
    );
    assert_eq!(in_zip["heading"], "Lighthouse", "{in_zip:#}");

    // Source code is text.
    assert_eq!(file_of(&first_hit(&lib, "sluice basin overflows")), "pump.py");

    // Titles come from the files' own metadata.
    let docs_json = json_of(&lib.run(&["docs", "--json"]));
    let title_of = |name: &str| {
        docs_json["documents"]
            .as_array()
            .unwrap()
            .iter()
            .find(|d| d["path"].as_str().unwrap().ends_with(name))
            .map(|d| d["title"].clone())
            .unwrap()
    };
    assert_eq!(title_of("board.pptx"), "Harbour board, December");
    assert_eq!(title_of("hausordnung.odt"), "Hausordnung 2027");
    assert_eq!(title_of("keeper.epub"), "The Keeper's Log");
    assert_eq!(title_of("berths.eml"), "Berth allocation for the winter");
    assert_eq!(title_of("hausverwaltung.mbox/message 1"), "Aufzug");
    assert_eq!(title_of("board-pack.zip/minutes/board.pptx"), "Harbour board, December");
    assert_eq!(title_of("brief.rtf"), "Brief an die Hausverwaltung");
}

#[test]
fn bombs_and_locked_workbooks_fail_with_a_reason_and_cost_nothing_else() {
    let lib = TempLibrary::new();
    let docs = lib.path().join("docs");
    std::fs::create_dir_all(&docs).unwrap();
    // A deck whose one slide inflates to 600 MB of zeros (a few hundred KB on disk).
    let file = std::fs::File::create(docs.join("bomb.pptx")).unwrap();
    let mut zip = zip::ZipWriter::new(file);
    let options = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Deflated)
        .large_file(true);
    zip.start_file("ppt/slides/slide1.xml", options).unwrap();
    let zeros = vec![b' '; 1 << 20];
    for _ in 0..600 {
        zip.write_all(&zeros).unwrap();
    }
    zip.finish().unwrap();
    // An archive of a note and an entry that inflates to 600 MB: the note is read, the huge
    // entry is left out with a warning.
    let file = std::fs::File::create(docs.join("pack.zip")).unwrap();
    let mut zip = zip::ZipWriter::new(file);
    zip.start_file("readme.txt", zip::write::SimpleFileOptions::default()).unwrap();
    zip.write_all(b"The pump manual is in the blue binder.").unwrap();
    zip.start_file("huge.log", options).unwrap();
    for _ in 0..600 {
        zip.write_all(&zeros).unwrap();
    }
    zip.finish().unwrap();
    // An e-book whose archive lists more entries than any book has.
    let file = std::fs::File::create(docs.join("many.epub")).unwrap();
    let mut zip = zip::ZipWriter::new(file);
    for i in 0..60_000 {
        zip.start_file(
            format!("e{i}"),
            zip::write::SimpleFileOptions::default()
                .compression_method(zip::CompressionMethod::Stored),
        )
        .unwrap();
    }
    zip.finish().unwrap();
    // A workbook whose sheet holds a value in its first and in its last cell (XFD1048576),
    // with 200,000 styled empty cells between: read cell by cell, not as a dense range.
    let mut sheet = String::from(
        r#"<?xml version="1.0"?><worksheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main"><sheetData><row r="1"><c r="A1" t="inlineStr"><is><t>Corner</t></is></c></row>"#,
    );
    let letters: Vec<String> = (b'A'..=b'Z')
        .flat_map(|a| (b'A'..=b'Z').map(move |b| format!("{}{}", a as char, b as char)))
        .take(100)
        .collect();
    for row in 2..2002 {
        sheet.push_str(&format!(r#"<row r="{row}">"#));
        for col in &letters {
            sheet.push_str(&format!(r#"<c r="{col}{row}" s="1"/>"#));
        }
        sheet.push_str("</row>");
    }
    sheet.push_str(r#"<row r="1048576"><c r="XFD1048576" t="inlineStr"><is><t>far away marker</t></is></c></row></sheetData></worksheet>"#);
    write_zip(
        &docs.join("sparse.xlsx"),
        &[
            (
                "[Content_Types].xml",
                r#"<?xml version="1.0"?><Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types"><Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/><Default Extension="xml" ContentType="application/xml"/><Override PartName="/xl/workbook.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml"/></Types>"#,
            ),
            (
                "_rels/.rels",
                r#"<?xml version="1.0"?><Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships"><Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/officeDocument" Target="xl/workbook.xml"/></Relationships>"#,
            ),
            (
                "xl/workbook.xml",
                r#"<?xml version="1.0"?><workbook xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main" xmlns:r="http://schemas.openxmlformats.org/officeDocument/2006/relationships"><sheets><sheet name="Far" sheetId="1" r:id="rId1"/></sheets></workbook>"#,
            ),
            (
                "xl/_rels/workbook.xml.rels",
                r#"<?xml version="1.0"?><Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships"><Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/worksheet" Target="worksheets/sheet1.xml"/></Relationships>"#,
            ),
            ("xl/worksheets/sheet1.xml", &sheet),
        ],
    );
    // A message with 300 attachments.
    let mut eml = String::from(
        "From: a@example.org\r\nSubject: Many scans\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"b\"\r\n\r\n--b\r\nContent-Type: text/plain\r\n\r\nSee the attached notes.\r\n",
    );
    for i in 0..300 {
        eml.push_str(&format!(
            "--b\r\nContent-Type: text/plain; name=\"note{i}.txt\"\r\nContent-Disposition: attachment; filename=\"note{i}.txt\"\r\n\r\nNote number {i}.\r\n"
        ));
    }
    eml.push_str("--b--\r\n");
    std::fs::write(docs.join("many.eml"), eml).unwrap();
    // Office puts a password-protected workbook into an OLE container.
    std::fs::write(docs.join("locked.xlsx"), b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1 encrypted package")
        .unwrap();
    write_odt(&docs.join("fine.odt"));
    let report = json_of(&lib.run(&["index", "--json", docs.to_str().unwrap()]));
    assert_eq!(report["added"], 4, "{report:#}");
    assert_eq!(report["failed"], 3, "{report:#}");
    let failures = report["failures"].as_array().unwrap();
    let reason = |name: &str| {
        failures
            .iter()
            .find(|f| f["path"].as_str().unwrap().ends_with(name))
            .map(|f| f["error"].as_str().unwrap().to_owned())
            .unwrap_or_else(|| panic!("{name} not among the failures: {report:#}"))
    };
    assert!(reason("bomb.pptx").contains("zip bomb"), "{}", reason("bomb.pptx"));
    assert!(reason("many.epub").contains("zip bomb"), "{}", reason("many.epub"));
    assert!(reason("locked.xlsx").contains("password"), "{}", reason("locked.xlsx"));
    assert_eq!(file_of(&first_hit(&lib, "Mülltonnen Hof")), "fine.odt");
    let hit = first_hit(&lib, "pump manual blue binder");
    assert!(hit["doc_path"].as_str().unwrap().ends_with("pack.zip/readme.txt"), "{hit:#}");
    let hit = first_hit(&lib, "far away marker");
    assert_eq!(file_of(&hit), "sparse.xlsx");
    assert!(hit["text"].as_str().unwrap().contains("XFD: far away marker"), "{hit:#}");
    // The first 200 attachments are parts of their own; the rest are named as not indexed.
    let hit = first_hit(&lib, "Note number 199");
    assert_eq!((file_of(&hit).as_str(), hit["page"].as_u64()), ("many.eml", Some(201)), "{hit:#}");
    let docs_json = json_of(&lib.run(&["docs", "--json"]));
    let many = docs_json["documents"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["path"].as_str().unwrap().ends_with("many.eml"))
        .unwrap()
        .clone();
    let warning = many["warnings"][0].as_str().unwrap();
    assert!(warning.starts_with("100 attachments not indexed"), "{warning}");
}
