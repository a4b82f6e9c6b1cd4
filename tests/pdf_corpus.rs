//! The shared corpus of real-world PDFs (`../shared/data/pdfs`): every file ends `indexed` or
//! `failed` with a readable reason, in the isolated worker, and search finds the right page.

use std::collections::BTreeMap;

use crate::support::{TempLibrary, json_of, test_data};

/// What each file of the corpus must end as: `Ok(min_chunks)` or `Err(words in the reason)`.
fn expected() -> BTreeMap<&'static str, Result<u32, &'static str>> {
    BTreeMap::from([
        ("ArabicCIDTrueType.pdf", Ok(1)),
        ("TAMReview.pdf", Ok(50)),
        ("XiaoBiaoSong.pdf", Ok(1)),
        ("bug1669099.pdf", Ok(1)),
        ("bug1997343.pdf", Ok(2)),
        ("helloworld-bad.pdf", Err("damaged PDF")),
        ("issue11656.pdf", Ok(1)),
        ("issue13201.pdf", Ok(2)),
        ("issue14297.pdf", Ok(2)),
        ("issue16538.pdf", Ok(1)),
        ("issue6010_1.pdf", Err("needs a password")),
        ("issue6931_reduced.pdf", Ok(1)),
        ("issue840.pdf", Ok(5)),
        ("issue918.pdf", Ok(1)),
        ("pdkids.pdf", Ok(100)),
        ("prefilled_f1040.pdf", Ok(5)),
        ("tracemonkey.pdf", Ok(50)),
        // Image-only pages: indexed, with a warning naming the pages.
        // Page 2 is read by OCR (the Firefox logo with its name); page 1 is the logo alone.
        ("two_pages.pdf", Ok(1)),
        // Vertical Japanese whose fonts pdf-extract cannot map to Unicode.
        ("vertical.pdf", Ok(0)),
        ("xref_command_missing.pdf", Err("damaged PDF")),
    ])
}

#[test]
fn every_shared_pdf_ends_indexed_or_failed_with_a_reason() {
    let Some(data) = test_data("every_shared_pdf_ends_indexed_or_failed_with_a_reason") else {
        return;
    };
    let pdfs = data.join("pdfs");
    let lib = TempLibrary::new();
    let report = json_of(&lib.run(&["index", pdfs.to_str().unwrap(), "--json"]));
    let n_files = std::fs::read_dir(&pdfs).unwrap().count() as u64;
    assert_eq!(report["added"].as_u64().unwrap() + report["failed"].as_u64().unwrap(), n_files);

    let docs = json_of(&lib.run(&["docs", "--json"]));
    let docs = docs["documents"].as_array().unwrap();
    assert_eq!(docs.len() as u64, n_files);
    let expected = expected();
    for doc in docs {
        let path = doc["path"].as_str().unwrap();
        let name = path.rsplit('/').next().unwrap();
        let state = doc["state"].as_str().unwrap();
        match expected.get(name) {
            Some(Ok(min_chunks)) => {
                assert_eq!(state, "indexed", "{name}: {doc}");
                assert!(doc["chunks"].as_u64().unwrap() >= u64::from(*min_chunks), "{name}: {doc}");
                assert!(doc["pages"].as_u64().unwrap() >= 1, "{name}");
                if *min_chunks == 0 {
                    let warnings = doc["warnings"].as_array().unwrap();
                    assert!(
                        warnings.iter().any(|w| w
                            .as_str()
                            .unwrap_or_default()
                            .starts_with("no extractable text on pages 1-")),
                        "{name}: {doc}"
                    );
                }
            }
            Some(Err(reason)) => {
                assert_eq!(state, "failed", "{name}: {doc}");
                let error = doc["error"].as_str().unwrap();
                assert!(error.contains(reason), "{name}: {error}");
            }
            None => panic!("{name} is new in the corpus: add its expected state"),
        }
        assert_eq!(doc["sha256"].as_str().unwrap().len(), 64);
    }
    let tracemonkey =
        docs.iter().find(|d| d["path"].as_str().unwrap().ends_with("tracemonkey.pdf"));
    assert_eq!(tracemonkey.unwrap()["pages"], 14);

    let hits =
        json_of(&lib.run(&["search", "--mode", "text", "tracemonkey trace trees", "--json"]));
    let first = &hits["hits"][0];
    assert!(first["doc_path"].as_str().unwrap().ends_with("tracemonkey.pdf"), "{first}");
    // Section 3.2 "Trace Trees" of the paper is on page 5.
    assert_eq!(first["page"], 5, "{first}");
    let hits = json_of(&lib.run(&["search", "Antrag auf Mitgliedschaft im Verein", "--json"]));
    assert!(hits["hits"][0]["doc_path"].as_str().unwrap().ends_with("bug1669099.pdf"), "{hits}");
}
