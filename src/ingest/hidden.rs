//! Hidden text: what a document holds but a reader of it cannot see (invisible Unicode
//! characters, PDF text drawn invisibly). It is indexed like any text, so it is reported as a
//! warning at ingest: documents are data, and a reviewer should know when one carries text meant
//! for machines only (a prompt-injection carrier, or an OCR layer).

/// Characters that render as nothing: zero-width spaces and joiners, word joiners, invisible
/// operators, bidirectional overrides, and the Unicode tag block (used to smuggle ASCII text).
fn is_invisible(c: char) -> bool {
    matches!(c,
        '\u{200B}'..='\u{200F}'
        | '\u{202A}'..='\u{202E}'
        | '\u{2060}'..='\u{2064}'
        | '\u{2066}'..='\u{2069}'
        | '\u{E0000}'..='\u{E007F}'
    ) || (c == '\u{FEFF}')
}

/// A warning when `text` holds invisible characters (a byte-order mark at the very start is
/// normal and not counted).
pub fn invisible_characters_warning(text: &str) -> Option<String> {
    let body = text.strip_prefix('\u{FEFF}').unwrap_or(text);
    let count = body.chars().filter(|&c| is_invisible(c)).count();
    let tags = body.chars().filter(|c| ('\u{E0000}'..='\u{E007F}').contains(c)).count();
    (count > 0).then(|| {
        let mut msg = format!(
            "hidden text: {count} invisible {} (zero-width, bidirectional or tag characters)",
            if count == 1 { "character" } else { "characters" }
        );
        if tags > 0 {
            msg.push_str(&format!("; {tags} Unicode tag characters can carry text no reader sees"));
        }
        msg
    })
}

/// A warning naming the pages of a PDF that draw text invisibly (text render modes 3 and 7):
/// OCR layers over scans do this, and so do documents hiding text from their readers.
pub fn invisible_pdf_text_warning(pages: &[u32]) -> Option<String> {
    (!pages.is_empty()).then(|| {
        format!(
            "hidden text: invisible text (render mode 3) on {} {} (an OCR layer, or text hidden from readers)",
            if pages.len() == 1 { "page" } else { "pages" },
            super::page_ranges(pages)
        )
    })
}

/// Whether a page content stream shows text while the render mode is invisible.
pub fn shows_invisible_text(operations: &[(String, Option<i64>)]) -> bool {
    let mut mode = 0;
    for (operator, operand) in operations {
        match operator.as_str() {
            "Tr" => mode = operand.unwrap_or(0),
            "BT" => {}
            "Tj" | "TJ" | "'" | "\"" if mode == 3 || mode == 7 => return true,
            _ => {}
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn invisible_characters_are_counted_but_a_leading_bom_is_not() {
        assert_eq!(invisible_characters_warning("\u{FEFF}plain text"), None);
        let smuggled = "Rent is due.\u{E0049}\u{E0067}\u{E006E}\u{200B}";
        let w = invisible_characters_warning(smuggled).unwrap();
        assert!(w.starts_with("hidden text: 4 invisible characters"), "{w}");
        assert!(w.contains("3 Unicode tag characters"), "{w}");
    }

    #[test]
    fn render_mode_three_text_is_found() {
        let op = |o: &str, v: Option<i64>| (o.to_owned(), v);
        assert!(!shows_invisible_text(&[op("BT", None), op("Tj", None), op("ET", None)]));
        assert!(shows_invisible_text(&[op("BT", None), op("Tr", Some(3)), op("TJ", None)]));
        assert!(!shows_invisible_text(&[op("Tr", Some(3)), op("Tr", Some(0)), op("Tj", None)]));
        assert_eq!(
            invisible_pdf_text_warning(&[2, 3]).unwrap(),
            "hidden text: invisible text (render mode 3) on pages 2-3 (an OCR layer, or text hidden from readers)"
        );
    }
}
