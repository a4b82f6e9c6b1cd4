//! Workbooks (`.xlsx`, `.xlsm`, `.xls`, `.ods`, read with calamine) and tables (`.csv`,
//! `.tsv`): one page per sheet, named by the sheet, and every row written out with its header
//! row ("Name: Anna Mueller; Rent: 1200"), so any passage cut from the sheet still says what its
//! values are.

use std::io::Cursor;
use std::path::Path;

use calamine::{Data, Reader};

use super::text::decode_text;
use super::{DocumentExtractor, Extracted};
use crate::api::FileKind;
use crate::error::ExtractError;

/// Most cells of one sheet that are read; a sheet that claims more is cut there, with a
/// warning (a few hundred megabytes of text at most).
const MAX_CELLS_PER_SHEET: usize = 20_000_000;

/// Extracts workbooks and CSV/TSV tables.
#[derive(Debug)]
pub struct SpreadsheetExtractor;

impl DocumentExtractor for SpreadsheetExtractor {
    fn name(&self) -> &'static str {
        "spreadsheet"
    }

    fn accepts(&self, kind: FileKind) -> bool {
        kind == FileKind::Spreadsheet
    }

    fn extract(&self, path: &Path, bytes: &[u8]) -> Result<Extracted, ExtractError> {
        let ext = path.extension().and_then(|e| e.to_str()).unwrap_or("").to_ascii_lowercase();
        match ext.as_str() {
            "csv" | "tsv" => table(bytes, ext == "tsv"),
            _ => workbook(bytes),
        }
    }
}

/// A workbook, one page per sheet.
fn workbook(bytes: &[u8]) -> Result<Extracted, ExtractError> {
    let mut title = None;
    if bytes.starts_with(b"PK") {
        // calamine inflates the parts itself: the sizes the archive declares are checked first.
        let mut package = super::package::Package::open(bytes, "a workbook")?;
        package.check_declared_sizes()?;
        // The title the office suite recorded (Office: docProps/core.xml, OpenDocument:
        // meta.xml).
        for part in ["docProps/core.xml", "meta.xml"] {
            if title.is_none() {
                title = package.read_text(part)?.and_then(|xml| super::docx::core_title(&xml));
            }
        }
    }
    let mut book =
        calamine::open_workbook_auto_from_rs(Cursor::new(bytes)).map_err(|e| match e {
            calamine::Error::Xlsx(calamine::XlsxError::Password)
            | calamine::Error::Xls(calamine::XlsError::Password)
            | calamine::Error::Ods(calamine::OdsError::Password) => {
                ExtractError::Encrypted("the workbook is password-protected".into())
            }
            other => ExtractError::Malformed(format!("not a readable workbook: {other}")),
        })?;
    let names = book.sheet_names();
    let mut res = Extracted { pages: names.len() as u32, title, ..Extracted::default() };
    for (index, name) in names.iter().enumerate() {
        let page = index as u32 + 1;
        let rows = match &mut book {
            // Cell by cell: a sheet with one value at XFD1048576 costs one cell, not a
            // dense range of seventeen billion.
            calamine::Sheets::Xlsx(xlsx) => streamed_rows(xlsx, name),
            other => other
                .worksheet_range(name)
                .map(|range| {
                    range
                        .rows()
                        .map(|row| {
                            row.iter()
                                .enumerate()
                                .map(|(col, cell)| (col, cell_text(cell)))
                                .filter(|(_, text)| !text.is_empty())
                                .collect()
                        })
                        .collect()
                })
                .map_err(|e| e.to_string()),
        };
        let rows = match rows {
            Ok(rows) => rows,
            Err(e) => {
                res.warnings.push(format!("sheet \"{name}\" could not be read: {e}"));
                continue;
            }
        };
        let (text, cut) = rows_text(rows.into_iter(), MAX_CELLS_PER_SHEET);
        if cut {
            res.warnings.push(format!(
                "sheet \"{name}\" has more than {MAX_CELLS_PER_SHEET} cells; the rest is left out"
            ));
        }
        res.push_block(page, vec![name.clone()], &text);
    }
    Ok(res)
}

/// The values of an Excel sheet read cell by cell, as sparse rows (column, text) in row order;
/// empty cells (styled but blank) are skipped and at most [`MAX_CELLS_PER_SHEET`] values kept.
fn streamed_rows(
    xlsx: &mut calamine::Xlsx<Cursor<&[u8]>>,
    name: &str,
) -> Result<Vec<SparseRow>, String> {
    let mut reader = xlsx.worksheet_cells_reader(name).map_err(|e| e.to_string())?;
    let mut rows: std::collections::BTreeMap<u32, SparseRow> = Default::default();
    let mut kept = 0usize;
    while let Some(cell) = reader.next_cell().map_err(|e| e.to_string())? {
        let (row, col) = cell.get_position();
        let text = cell_text(&Data::from(cell.get_value().clone()));
        if text.is_empty() {
            continue;
        }
        kept += 1;
        if kept > MAX_CELLS_PER_SHEET {
            break;
        }
        rows.entry(row).or_default().push((col as usize, text));
    }
    Ok(rows
        .into_values()
        .map(|mut row| {
            row.sort_by_key(|(col, _)| *col);
            row
        })
        .collect())
}

/// A CSV or TSV file as one sheet; the delimiter of a `.csv` is `;` when its first line has
/// more semicolons than commas (German Excel writes them).
fn table(bytes: &[u8], tab: bool) -> Result<Extracted, ExtractError> {
    let mut res = Extracted { pages: 1, ..Extracted::default() };
    let text = decode_text(bytes, &mut res.warnings);
    let delimiter = if tab {
        b'\t'
    } else {
        let first = text.lines().next().unwrap_or("");
        if first.matches(';').count() > first.matches(',').count() { b';' } else { b',' }
    };
    let mut reader = csv::ReaderBuilder::new()
        .delimiter(delimiter)
        .has_headers(false)
        .flexible(true)
        .from_reader(text.as_bytes());
    let mut rows = Vec::new();
    for (line, record) in reader.records().enumerate() {
        match record {
            Ok(record) => rows.push(
                record
                    .iter()
                    .map(|f| f.trim().to_owned())
                    .enumerate()
                    .filter(|(_, f)| !f.is_empty())
                    .collect::<SparseRow>(),
            ),
            Err(e) => {
                res.warnings.push(format!("row {}: {e}; the rest is left out", line + 1));
                break;
            }
        }
    }
    let (text, _) = rows_text(rows.into_iter(), MAX_CELLS_PER_SHEET);
    res.push_section(1, Vec::new(), &text);
    Ok(res)
}

/// A cell as people read it: numbers without a trailing ".0", dates as dates.
fn cell_text(cell: &Data) -> String {
    match cell {
        Data::Empty => String::new(),
        Data::String(s) => s.trim().to_owned(),
        Data::DateTime(dt) if !dt.is_duration() => match dt.as_datetime() {
            Some(t) if t.time() == chrono::NaiveTime::MIN => t.format("%Y-%m-%d").to_string(),
            Some(t) => t.format("%Y-%m-%d %H:%M").to_string(),
            None => cell.to_string(),
        },
        Data::Error(_) => String::new(),
        other => other.to_string(),
    }
}

/// A row's values by column (0-based), empty cells left out.
type SparseRow = Vec<(usize, String)>;

/// The rows as lines: the first row with any value is the header; every later row is written
/// as "Header: value" pairs (a value without a header gets its column letter). Stops after
/// `max_cells` values; the flag says whether it did.
fn rows_text(rows: impl Iterator<Item = SparseRow>, max_cells: usize) -> (String, bool) {
    let mut header: Option<std::collections::HashMap<usize, String>> = None;
    let mut out = String::new();
    let mut cells = 0usize;
    for row in rows {
        if row.is_empty() {
            continue;
        }
        cells += row.len();
        if cells > max_cells {
            return (out, true);
        }
        let Some(names) = &header else {
            out.push_str(&row.iter().map(|(_, v)| v.as_str()).collect::<Vec<_>>().join(" | "));
            out.push('\n');
            header = Some(row.into_iter().collect());
            continue;
        };
        let pairs: Vec<String> = row
            .iter()
            .map(|(col, value)| match names.get(col) {
                Some(name) => format!("{name}: {value}"),
                None => format!("{}: {value}", column_letters(*col)),
            })
            .collect();
        out.push_str(&pairs.join("; "));
        out.push('\n');
    }
    (out, false)
}

/// Spreadsheet column letters: 0 → "A", 25 → "Z", 26 → "AA".
fn column_letters(mut col: usize) -> String {
    let mut letters = Vec::new();
    loop {
        letters.push(b'A' + (col % 26) as u8);
        if col < 26 {
            break;
        }
        col = col / 26 - 1;
    }
    letters.reverse();
    String::from_utf8(letters).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(cells: &[&str]) -> SparseRow {
        cells
            .iter()
            .enumerate()
            .filter(|(_, c)| !c.is_empty())
            .map(|(col, c)| (col, (*c).to_owned()))
            .collect()
    }

    #[test]
    fn rows_carry_their_header() {
        let rows = vec![
            row(&["", "", ""]),
            row(&["Tenant", "Rent", ""]),
            row(&["Anna Mueller", "1200", "paid"]),
            row(&["", "", ""]),
            row(&["Bauer GmbH", "", "late"]),
        ];
        let (text, cut) = rows_text(rows.into_iter(), 100);
        assert!(!cut);
        assert_eq!(
            text,
            "Tenant | Rent\nTenant: Anna Mueller; Rent: 1200; C: paid\nTenant: Bauer GmbH; C: late\n"
        );
        let (_, cut) = rows_text(vec![row(&["a", "b"]); 10].into_iter(), 5);
        assert!(cut);
    }

    #[test]
    fn column_letters_count_like_spreadsheets() {
        assert_eq!(column_letters(0), "A");
        assert_eq!(column_letters(25), "Z");
        assert_eq!(column_letters(26), "AA");
        assert_eq!(column_letters(701), "ZZ");
        assert_eq!(column_letters(702), "AAA");
    }

    #[test]
    fn csv_with_semicolons_and_tsv() {
        let doc = table("Name;Betrag\nMiete;900,50\n".as_bytes(), false).unwrap();
        assert_eq!(doc.text, "Name | Betrag\nName: Miete; Betrag: 900,50\n");
        let doc = table(b"a\tb\n1\t2\n", true).unwrap();
        assert_eq!(doc.text, "a | b\na: 1; b: 2\n");
    }
}
