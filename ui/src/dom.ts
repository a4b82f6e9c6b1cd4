// A tiny element builder: the UI is small enough not to need a framework, and text always goes
// in as text (never as HTML), so document content cannot inject markup.
type Child = Node | string | null | undefined | false;
type Attrs = Record<string, string | boolean | number | EventListener | undefined>;

export function h<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  attrs: Attrs = {},
  ...children: Child[]
): HTMLElementTagNameMap[K] {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value === undefined || value === false) continue;
    if (key.startsWith("on") && typeof value === "function") {
      el.addEventListener(key.slice(2).toLowerCase(), value);
    } else if (value === true) {
      el.setAttribute(key, "");
    } else {
      el.setAttribute(key, String(value));
    }
  }
  for (const child of children) {
    if (child === null || child === undefined || child === false) continue;
    el.append(child);
  }
  return el;
}

export function fileName(path: string): string {
  return path.split(/[\\/]/).pop() ?? path;
}

/** A message of a mailbox, as the engine names it: `<mailbox>.mbox/message N`. */
const MAILBOX_MESSAGE = /\.mbox[\\/]message \d+$/i;

/**
 * A document's name as people read it: the file name, or for a document inside an archive or a
 * mailbox the file and the name inside ("pack.zip › minutes/june.txt", "2026.mbox › message 3").
 */
export function docName(path: string): string {
  const inside = /([^\\/]+\.(?:zip|mbox))[\\/](.+)$/i.exec(path);
  return inside ? `${inside[1]} › ${inside[2]}` : fileName(path);
}

/** The extensions a document counts as: its own, "eml" for a mailbox's message, and "zip" or "mbox" for what an archive or mailbox holds. */
export function docExtensions(path: string): string[] {
  const own = fileName(path);
  const exts = own.includes(".") ? [(own.split(".").pop() ?? "").toLowerCase()] : [];
  if (MAILBOX_MESSAGE.test(path)) exts.push("eml");
  for (const m of path.matchAll(/\.(zip|mbox)[\\/]/gi)) exts.push(m[1].toLowerCase());
  return exts;
}

/** What a citation's page number counts in a file of this name (as the engine's `FileKind::page_name`). */
export function pageUnit(path: string): "page" | "slide" | "sheet" | "chapter" | "part" | "message" {
  if (MAILBOX_MESSAGE.test(path)) return "part";
  const ext = (fileName(path).split(".").pop() ?? "").toLowerCase();
  if (ext === "pptx" || ext === "odp") return "slide";
  if (["xlsx", "xlsm", "xls", "ods", "csv", "tsv"].includes(ext)) return "sheet";
  if (ext === "epub") return "chapter";
  if (ext === "eml" || ext === "zip") return "part";
  if (ext === "mbox") return "message";
  return "page";
}

export function duration(seconds: number): string {
  if (seconds < 60) return `${Math.max(1, Math.round(seconds))} s`;
  if (seconds < 3600) return `${Math.round(seconds / 60)} min`;
  return `${(seconds / 3600).toFixed(1)} h`;
}
