// The engine's ingest warnings in the UI's language. The engine writes them in English (they are
// stored with the document, and the CLI and the audit read them); this catalog says each known
// one in German, by its exact English form, and shows any other as written.
import type { Lang } from "./i18n";

type Rule = [RegExp, (m: RegExpMatchArray) => string];

const pages = (word: string, list: string) => (word === "page" ? `Seite ${list}` : `Seiten ${list}`);

const german: Rule[] = [
  [/^not UTF-8; decoded as (.+)$/, (m) => `kein UTF-8; als ${m[1]} gelesen`],
  [/^some bytes are not valid (.+); replaced$/, (m) => `einige Bytes sind kein gültiges ${m[1]}; ersetzt`],
  [/^page (\d+) could not be read: (.+)$/, (m) => `Seite ${m[1]} konnte nicht gelesen werden: ${m[2]}`],
  [
    /^no extractable text on (pages?) (.+) \(scanned, or fonts without a Unicode map; (OCR found none|OCR is switched off)\)$/,
    (m) =>
      `kein auslesbarer Text auf ${pages(m[1], m[2])} (gescannt, oder Schriften ohne Unicode-Zuordnung; ${
        m[3] === "OCR found none" ? "die Texterkennung fand keinen" : "die Texterkennung ist ausgeschaltet"
      })`,
  ],
  [/^(pages?) (.+) read by OCR \((.+)\)$/, (m) => `${pages(m[1], m[2])} per Texterkennung gelesen (${m[3]})`],
  [/^read by OCR \((.+)\)$/, (m) => `per Texterkennung gelesen (${m[1]})`],
  [/^OCR found no text in the image$/, () => "die Texterkennung fand im Bild keinen Text"],
  [
    /^low OCR confidence on (pages?) (.+): the text may be wrong$/,
    (m) => `unsichere Texterkennung auf ${pages(m[1], m[2])}: der Text kann Fehler enthalten`,
  ],
  [
    /^low OCR confidence \(mean (\d+) %\): the text may be wrong$/,
    (m) => `unsichere Texterkennung (im Mittel ${m[1]} %): der Text kann Fehler enthalten`,
  ],
  [
    /^OCR read nothing reliable on (pages?) (.+) with the (.+) models \(another script\? set the OCR languages\)$/,
    (m) =>
      `die Texterkennung las auf ${pages(m[1], m[2])} nichts Verlässliches mit den Modellen ${m[3]} (eine andere Schrift? OCR-Sprachen einstellen)`,
  ],
  [
    /^(pages?) (.+) not read by OCR: its (\d+) s budget for this file ran out$/,
    (m) => `${pages(m[1], m[2])} nicht per Texterkennung gelesen: die ${m[3]} s für diese Datei waren aufgebraucht`,
  ],
  [
    /^(\d+) (images?) not indexed \(part of the message's layout, a logo or signature: not read by OCR\): (.+)$/,
    (m) =>
      `${m[1]} ${m[2] === "image" ? "Bild" : "Bilder"} nicht indiziert (Teil der Gestaltung der Nachricht, ein Logo oder eine Signatur: nicht per Texterkennung gelesen): ${m[3]}`,
  ],
  [
    /^(\d+) (images?) not indexed \(not read by OCR: the file's (\d+) s budget ran out\): (.+)$/,
    (m) =>
      `${m[1]} ${m[2] === "image" ? "Bild" : "Bilder"} nicht indiziert (nicht per Texterkennung gelesen: die ${m[3]} s für diese Datei waren aufgebraucht): ${m[4]}`,
  ],
  [
    /^(\d+) (entry|entries) not indexed \(type not read, or archives nested too deep\): (.+)$/,
    (m) => `${m[1]} ${m[2] === "entry" ? "Eintrag" : "Einträge"} nicht indiziert (Dateityp nicht lesbar, oder Archive zu tief verschachtelt): ${m[3]}`,
  ],
  [
    /^(\d+) (attachments?) not indexed \(type not read, or too many\): (.+)$/,
    (m) => `${m[1]} ${m[2] === "attachment" ? "Anhang" : "Anhänge"} nicht indiziert (Dateityp nicht lesbar, oder zu viele): ${m[3]}`,
  ],
  [/^(\d+) messages after the first (\d+) are not indexed$/, (m) => `${m[1]} Nachrichten nach den ersten ${m[2]} sind nicht indiziert`],
  [/^not a readable e-mail message$/, () => "keine lesbare E-Mail-Nachricht"],
  [/^repaired by qpdf \((.+)\)$/, (m) => `von qpdf repariert (${engineNote(m[1], "de")})`],
  // Why a document failed.
  [/^damaged PDF: (.+)$/, (m) => `beschädigtes PDF: ${m[1]}`],
  [
    /^encrypted: the PDF needs a password to open \(give it with quarry index --password-file FILE\)$/,
    () => "verschlüsselt: das PDF braucht ein Passwort (mit quarry index --password-file DATEI angeben)",
  ],
  [
    /^encrypted: the PDF needs a password to open, and none of the (\d+) given opens it$/,
    (m) => `verschlüsselt: das PDF braucht ein Passwort, und keines der ${m[1]} angegebenen öffnet es`,
  ],
  [/^encrypted: .+ protected by a password$/, () => "verschlüsselt: die Datei ist passwortgeschützt"],
  [/^encrypted: the (document|workbook) is password-protected$/, () => "verschlüsselt: die Datei ist passwortgeschützt"],
  [
    /^its parts inflate to more than (\d+) MB: refused as a zip bomb$/,
    (m) => `ihre Teile entpacken sich zu mehr als ${m[1]} MB: als Zip-Bombe abgelehnt`,
  ],
  [
    /^the archive lists (\d+) entries \(more than (\d+)\): refused as a zip bomb$/,
    (m) => `das Archiv nennt ${m[1]} Einträge (mehr als ${m[2]}): als Zip-Bombe abgelehnt`,
  ],
  [/^not (a .+|an .+|text): (.+)$/, (m) => `${kindName(m[1])}: ${engineNote(m[2], "de")}`],
  [/^the file is plain text$/, () => "die Datei ist reiner Text"],
  [/^the file is an HTML page$/, () => "die Datei ist eine HTML-Seite"],
  [/^the file is a zip archive$/, () => "die Datei ist ein Zip-Archiv"],
  [/^the file is a PDF$/, () => "die Datei ist ein PDF"],
  [/^the content looks like (.+)$/, (m) => `der Inhalt sieht aus wie ${m[1]}`],
  [/^OCR failed: (.+)$/, (m) => `Texterkennung fehlgeschlagen: ${m[1]}`],
  [/^opened with a password you gave$/, () => "mit einem von Ihnen angegebenen Passwort geöffnet"],
  [/^the document contains no text$/, () => "das Dokument enthält keinen Text"],
  [
    /^hidden text: (\d+) hidden elements? with text \(hidden, display: none\) left out of the index$/,
    (m) => `versteckter Text: ${m[1]} verborgene${m[1] === "1" ? "s Element" : " Elemente"} mit Text (hidden, display: none) nicht indiziert`,
  ],
  [
    /^hidden text: (\d+) invisible characters? \(zero-width, bidirectional or tag characters\)(?:; (\d+) Unicode tag characters can carry text no reader sees)?$/,
    (m) =>
      `versteckter Text: ${m[1]} unsichtbare${m[1] === "1" ? "s Zeichen" : " Zeichen"} (Nullbreiten-, Richtungs- oder Tag-Zeichen)` +
      (m[2] ? `; ${m[2]} Unicode-Tag-Zeichen können Text tragen, den niemand sieht` : ""),
  ],
  [
    /^hidden text: invisible text \(render mode 3\) on (pages?) (.+) \(an OCR layer, or text hidden from readers\)$/,
    (m) =>
      `versteckter Text: unsichtbarer Text (Render-Modus 3) auf ${pages(m[1], m[2])} (eine OCR-Ebene, oder Text, der Lesern verborgen bleibt)`,
  ],
];

/** "not a Word document" → "kein Word-Dokument", for the formats the engine names. */
function kindName(what: string): string {
  const names: Record<string, string> = {
    "a PDF": "kein PDF",
    text: "kein Text",
    "a Word document": "kein Word-Dokument",
    "an OpenDocument text": "kein OpenDocument-Text",
    "a PowerPoint presentation": "keine PowerPoint-Präsentation",
    "an OpenDocument presentation": "keine OpenDocument-Präsentation",
    "an Excel workbook": "keine Excel-Arbeitsmappe",
    "an OpenDocument spreadsheet": "keine OpenDocument-Tabelle",
    "an EPUB e-book": "kein EPUB-E-Book",
    "a zip archive": "kein Zip-Archiv",
    "an Excel 97-2003 workbook": "keine Excel-97-2003-Arbeitsmappe",
    "a PNG image": "kein PNG-Bild",
    "a JPEG image": "kein JPEG-Bild",
    "a TIFF image": "kein TIFF-Bild",
  };
  return names[what] ?? `nicht ${what}`;
}

/** `note` (an engine warning or failure reason) in `lang`. */
export function engineNote(note: string, lang: Lang): string {
  if (lang === "en") return note;
  for (const [pattern, say] of german) {
    const m = note.match(pattern);
    if (m) return say(m);
  }
  return note;
}
