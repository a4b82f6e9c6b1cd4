// Search view: for people who want to find, not ask. Hybrid search over the library (vectors and
// BM25 fused), each hit with its document, page, heading and text, filtered by file type, and
// opened in the source viewer at the passage.
import type { Citation } from "../bindings/Citation";
import type { SearchHit } from "../bindings/SearchHit";
import { docExtensions, docName, h } from "../dom";
import type { Strings } from "../i18n";
import type { Transport } from "../transport";

/** The file types the filter offers, by extension. */
const KINDS: Record<string, string[]> = {
  pdf: ["pdf"],
  text: ["txt", "md", "markdown"],
  web: ["html", "htm"],
  office: ["docx", "odt", "rtf"],
  slides: ["pptx", "odp"],
  sheets: ["xlsx", "xlsm", "xls", "ods", "csv", "tsv"],
  ebook: ["epub"],
  mail: ["eml", "mbox"],
  images: ["png", "jpg", "jpeg", "tif", "tiff"],
  archives: ["zip"],
};

export class SearchView {
  readonly root = h("section", { class: "view", "aria-labelledby": "search-title" });
  private readonly input = h("input", { id: "search-query", type: "search", autocomplete: "off" });
  private readonly kind = h("select", { id: "search-kind" });
  private readonly results = h("ol", { class: "search-results", "aria-live": "polite" });
  private hits: SearchHit[] = [];

  constructor(
    private readonly transport: Transport,
    private readonly t: Strings,
    private readonly openSource: (c: Citation) => void,
    private readonly onError: (e: unknown) => void,
  ) {
    this.kind.append(
      h("option", { value: "" }, t.allKinds),
      ...Object.keys(KINDS).map((k) => h("option", { value: k }, t.kinds[k] ?? k)),
    );
    this.kind.addEventListener("change", () => this.render());
    const form = h(
      "form",
      { class: "search-form" },
      h("label", { for: "search-query" }, t.searchLabel),
      h("div", { class: "row" }, this.input, this.kind, h("button", { type: "submit", class: "primary" }, t.searchButton)),
    );
    form.addEventListener("submit", (e) => {
      e.preventDefault();
      const q = this.input.value.trim();
      if (q) void this.search(q);
    });
    this.root.append(h("h1", { id: "search-title" }, t.navSearch), form, this.results);
  }

  focus(): void {
    this.input.focus();
  }

  private async search(q: string): Promise<void> {
    this.results.replaceChildren(h("li", { class: "muted" }, this.t.loading));
    try {
      this.hits = await this.transport.search(q, 30);
      this.render();
    } catch (e) {
      this.results.replaceChildren();
      this.onError(e);
    }
  }

  private render(): void {
    const t = this.t;
    const wanted = KINDS[this.kind.value];
    const shown = wanted
      ? this.hits.filter((hit) => docExtensions(hit.doc_path).some((ext) => wanted.includes(ext)))
      : this.hits;
    if (shown.length === 0) {
      this.results.replaceChildren(h("li", { class: "muted" }, t.noHits));
      return;
    }
    this.results.replaceChildren(
      ...shown.map((hit, i) => {
        const open = h("button", { type: "button", class: "link" }, t.openSource);
        open.addEventListener("click", () =>
          this.openSource({
            n: i + 1,
            chunk_id: hit.chunk_id,
            doc_path: hit.doc_path,
            page: hit.page,
            char_start: hit.char_start,
            char_end: hit.char_end,
            quote: hit.text,
            quote_start: hit.char_start,
            quote_end: hit.char_end,
          }),
        );
        const text = hit.text.length > 320 ? `${hit.text.slice(0, 320)}…` : hit.text;
        return h(
          "li",
          { "data-hit": hit.chunk_id },
          h("strong", {}, docName(hit.doc_path)),
          ` · ${t.page(hit.page, hit.doc_path)}${hit.heading ? ` · ${hit.heading}` : ""} `,
          open,
          h("p", {}, text),
          h("p", { class: "muted" }, `${t.foundBy}: ${hit.retrievers.join(", ")}`),
        );
      }),
    );
  }
}
