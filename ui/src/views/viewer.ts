// Source viewer: a PDF rendered with pdf.js at the cited page with the quote highlighted, or a
// text document with the quoted span highlighted and scrolled into view.
import * as pdfjs from "pdfjs-dist";
import type { OcrWord } from "../bindings/OcrWord";
import workerUrl from "pdfjs-dist/build/pdf.worker.min.mjs?url";
import type { Citation } from "../bindings/Citation";
import { docName, h } from "../dom";
import type { Strings } from "../i18n";
import type { Transport } from "../transport";

pdfjs.GlobalWorkerOptions.workerSrc = workerUrl;

export class SourceViewer {
  readonly root = h("aside", { class: "viewer", hidden: true, role: "dialog", "aria-modal": "false", "aria-labelledby": "viewer-title" });
  private readonly body = h("div", { class: "viewer-body" });
  private readonly title = h("h2", { id: "viewer-title" });
  private readonly closeButton: HTMLButtonElement;

  constructor(
    private readonly transport: Transport,
    private readonly t: Strings,
  ) {
    this.closeButton = h("button", { type: "button", class: "secondary", "aria-label": t.close }, "×");
    this.closeButton.addEventListener("click", () => this.close());
    this.root.addEventListener("keydown", (e) => {
      if (e.key === "Escape") this.close();
    });
    this.root.append(h("header", { class: "viewer-head" }, this.title, this.closeButton), this.body);
  }

  close(): void {
    this.root.hidden = true;
    this.body.replaceChildren();
  }

  async open(c: Citation): Promise<void> {
    const t = this.t;
    this.root.hidden = false;
    this.title.textContent = `${docName(c.doc_path)} · ${t.page(c.page, c.doc_path)}`;
    this.body.replaceChildren(h("p", { class: "muted" }, t.loading));
    this.closeButton.focus();
    try {
      if (c.doc_path.toLowerCase().endsWith(".pdf")) await this.showPdf(c);
      else await this.showText(c);
    } catch (e) {
      this.body.replaceChildren(h("p", { class: "error", role: "alert" }, e instanceof Error ? e.message : String(e)));
    }
  }

  private async showText(c: Citation): Promise<void> {
    const doc = await this.transport.documentText(c.doc_path);
    const chars = Array.from(doc.text);
    const before = chars.slice(0, c.quote_start).join("");
    const quote = chars.slice(c.quote_start, c.quote_end).join("");
    const after = chars.slice(c.quote_end).join("");
    const mark = h("mark", { class: "quote", "data-testid": "highlight" }, quote);
    this.body.replaceChildren(h("pre", { class: "doc-text" }, before, mark, after));
    mark.scrollIntoView({ block: "center" });
  }

  private async showPdf(c: Citation): Promise<void> {
    const data = await this.transport.documentBytes(c.doc_path);
    const pdf = await pdfjs.getDocument({ data: new Uint8Array(data) }).promise;
    const page = await pdf.getPage(Math.min(Math.max(1, c.page), pdf.numPages));
    const width = Math.max(320, this.body.clientWidth - 24);
    const base = page.getViewport({ scale: 1 });
    const viewport = page.getViewport({ scale: width / base.width });
    const canvas = h("canvas", { class: "pdf-canvas", "aria-label": `${docName(c.doc_path)} ${this.t.page(c.page, c.doc_path)}` });
    const ratio = window.devicePixelRatio || 1;
    canvas.width = Math.floor(viewport.width * ratio);
    canvas.height = Math.floor(viewport.height * ratio);
    canvas.style.width = `${viewport.width}px`;
    canvas.style.height = `${viewport.height}px`;
    const context = canvas.getContext("2d");
    if (!context) throw new Error("no canvas");
    const layer = h("div", { class: "textLayer" });
    const pageBox = h("div", { class: "pdf-page", "data-page": c.page }, canvas, layer);
    pageBox.style.width = `${viewport.width}px`;
    pageBox.style.height = `${viewport.height}px`;
    pageBox.style.setProperty("--scale-factor", String(viewport.scale));
    this.body.replaceChildren(pageBox);
    await page.render({ canvas, canvasContext: context, viewport, transform: ratio !== 1 ? [ratio, 0, 0, ratio, 0, 0] : undefined }).promise;
    const content = await page.getTextContent();
    const textLayer = new pdfjs.TextLayer({ textContentSource: content, container: layer, viewport });
    await textLayer.render();
    highlight(layer, c.quote);
    if (!layer.querySelector(".highlight")) {
      // A scanned page has no text layer: the quote is marked on the words OCR read there.
      const words = await this.transport.ocrWords(c.doc_path, c.page);
      for (const box of ocrBoxes(words, c.quote)) {
        const mark = h("div", { class: "ocr-highlight highlight", "data-testid": "highlight" });
        mark.style.left = `${box.x * 100}%`;
        mark.style.top = `${box.y * 100}%`;
        mark.style.width = `${box.w * 100}%`;
        mark.style.height = `${box.h * 100}%`;
        pageBox.append(mark);
      }
    }
    pageBox.querySelector(".highlight")?.scrollIntoView({ block: "center" });
  }
}

/** The boxes of the OCR'd words that spell `quote` (the longest run of them, in order). */
function ocrBoxes(words: OcrWord[], quote: string): OcrWord[] {
  const norm = (s: string) => s.toLowerCase().replace(/[^\p{L}\p{N}]/gu, "");
  const wanted = quote.split(/\s+/).map(norm).filter((w) => w.length > 0);
  const read = words.map((w) => norm(w.text));
  let best: [number, number] = [0, 0];
  for (let start = 0; start < read.length; start++) {
    let i = start;
    let j = 0;
    while (i < read.length && j < wanted.length && read[i] === wanted[j]) {
      i++;
      j++;
    }
    if (i - start > best[1] - best[0]) best = [start, i];
  }
  // One matching word alone is chance (a "the"), unless the quote is one word.
  const enough = best[1] - best[0] >= Math.min(2, wanted.length);
  return enough ? words.slice(best[0], best[1]) : [];
}

/** Marks the text-layer spans that hold `quote` (matched with whitespace ignored). */
function highlight(layer: HTMLElement, quote: string): void {
  const squash = (s: string) => s.replace(/\s+/g, "").toLowerCase();
  const target = squash(quote);
  if (!target) return;
  const spans = Array.from(layer.querySelectorAll<HTMLElement>("span")).filter((s) => s.childElementCount === 0);
  const pieces = spans.map((s) => squash(s.textContent ?? ""));
  const joined = pieces.join("");
  // The quote may be cut at the page's edge of a passage: fall back to its longest prefix found.
  let start = joined.indexOf(target);
  let length = target.length;
  for (let cut = target.length; start < 0 && cut > 12; cut = Math.floor(cut * 0.75)) {
    start = joined.indexOf(target.slice(0, cut));
    length = cut;
  }
  if (start < 0) return;
  let offset = 0;
  spans.forEach((span, i) => {
    const end = offset + pieces[i].length;
    if (end > start && offset < start + length && pieces[i].length > 0) {
      span.classList.add("highlight");
      span.setAttribute("data-testid", "highlight");
    }
    offset = end;
  });
}
