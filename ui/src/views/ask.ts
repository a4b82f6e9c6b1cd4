// Ask view: the question, the answer streaming in, citation chips, the cited passages with the
// quote highlighted, unsupported sentences marked, refusals shown as such; copy and export.
import type { Answer } from "../bindings/Answer";
import type { Citation } from "../bindings/Citation";
import type { FileKind } from "../bindings/FileKind";
import { fileName, h } from "../dom";
import type { Strings } from "../i18n";
import type { Transport } from "../transport";

export class AskView {
  readonly root = h("section", { class: "view", "aria-labelledby": "ask-title" });
  private readonly output = h("div", { class: "answer-area", "aria-live": "polite" });
  private readonly input: HTMLTextAreaElement;
  private readonly evidence: HTMLInputElement;
  /** The scope picker: one of the library's folders (or all), one file kind (or all). */
  private readonly within: HTMLSelectElement;
  private readonly kind: HTMLSelectElement;
  private readonly askButton: HTMLButtonElement;
  private running: AbortController | null = null;
  /** Shown when no answer model is installed: what works now, and how to get one. */
  private readonly firstRun = h("div", { class: "notice", role: "note", hidden: true });

  constructor(
    private readonly transport: Transport,
    private readonly t: Strings,
    private readonly openSource: (c: Citation) => void,
    private readonly openModels: () => void = () => {},
  ) {
    this.input = h("textarea", {
      id: "question",
      name: "question",
      rows: 2,
      required: true,
      placeholder: t.questionPlaceholder,
    });
    this.evidence = h("input", { id: "evidence", type: "checkbox" });
    this.within = h("select", { id: "scope-within", "aria-label": t.lookIn }, h("option", { value: "" }, t.wholeLibrary));
    this.kind = h(
      "select",
      { id: "scope-kind", "aria-label": t.fileKind },
      h("option", { value: "" }, t.allKinds),
      ...["pdf", "text", "markdown", "html", "docx", "odt", "rtf", "presentation", "spreadsheet", "epub", "email", "mbox", "zip", "image"].map((k) => h("option", { value: k }, t.kindNames[k] ?? k)),
    );
    this.askButton = h("button", { type: "submit", class: "primary", id: "ask-button" }, t.askButton);
    const form = h(
      "form",
      { class: "ask-form" },
      h("label", { for: "question" }, t.question),
      this.input,
      h(
        "div",
        { class: "row" },
        h("label", { class: "check" }, this.evidence, " ", t.evidenceMode),
        h("span", { class: "scope" }, this.within, this.kind),
        this.askButton,
      ),
    );
    form.addEventListener("submit", (e) => {
      e.preventDefault();
      if (this.running) {
        this.running.abort();
        return;
      }
      const q = this.input.value.trim();
      if (q) void this.ask(q);
    });
    this.input.addEventListener("keydown", (e) => {
      if (e.key === "Enter" && !e.shiftKey) {
        e.preventDefault();
        form.requestSubmit();
      }
    });
    this.root.append(h("h1", { id: "ask-title" }, t.navAsk), this.firstRun, form, this.output);
    void this.checkModels();
  }

  /** Without an answer model, says that answers quote the documents and offers a download
   * (with its size and the memory it needs). */
  private async checkModels(): Promise<void> {
    const t = this.t;
    try {
      const settings = await this.transport.settings();
      if (settings.generator) {
        this.firstRun.hidden = true;
        return;
      }
      const overview = await this.transport.models().catch(() => null);
      const offer = overview?.catalog.find((m) => m.role === "generate" && m.downloadable);
      const button = h("button", { type: "button" }, t.getAnswerModel);
      button.addEventListener("click", () => this.openModels());
      const parts: Node[] = [h("p", {}, t.noAnswerModel)];
      if (offer) parts.push(h("p", { class: "muted" }, t.answerModelOffer(offer.id, offer.size_mb, offer.ram_mb ?? 0)));
      parts.push(button);
      this.firstRun.replaceChildren(...parts);
      this.firstRun.hidden = false;
    } catch {
      this.firstRun.hidden = true;
    }
  }

  focus(): void {
    this.input.focus();
    void this.checkModels();
    void this.loadFolders();
  }

  /** Offers the library's folders in the scope picker, keeping the current choice. */
  private async loadFolders(): Promise<void> {
    try {
      const { library } = await this.transport.status();
      const chosen = this.within.value;
      this.within.replaceChildren(
        h("option", { value: "" }, this.t.wholeLibrary),
        ...library.sources.map((s) => h("option", { value: s, selected: s === chosen }, s)),
      );
    } catch {
      // The picker keeps "whole library"; the question still works.
    }
  }

  private async ask(question: string): Promise<void> {
    const t = this.t;
    this.running = new AbortController();
    this.askButton.textContent = t.stop;
    const streaming = h("p", { class: "streaming", "aria-busy": "true" });
    // Where the answer is, with the time it has taken so far.
    const status = h("p", { class: "muted stage", "data-stages": "" }, t.thinking);
    const started = performance.now();
    let label = t.thinking;
    const showStage = () => {
      status.textContent = `${label} · ${Math.round((performance.now() - started) / 1000)} s`;
    };
    const ticker = window.setInterval(showStage, 1000);
    this.output.replaceChildren(status, streaming);
    try {
      const answer = await this.transport.ask(
        question,
        this.evidence.checked,
        (text) => streaming.append(text),
        this.running.signal,
        (stage) => {
          label = t.stage(stage);
          status.dataset.stages = `${status.dataset.stages ?? ""} ${stage.stage}`.trim();
          showStage();
        },
        {
          within: this.within.value ? [this.within.value] : [],
          kinds: this.kind.value ? [this.kind.value as FileKind] : [],
        },
      );
      this.render(answer);
    } catch (e) {
      if ((e as Error).name !== "AbortError") {
        this.output.replaceChildren(h("p", { class: "error", role: "alert" }, e instanceof Error ? e.message : String(e)));
      }
    } finally {
      window.clearInterval(ticker);
      this.running = null;
      this.askButton.textContent = t.askButton;
    }
  }

  private render(answer: Answer): void {
    const t = this.t;
    if (answer.abstained) {
      this.output.replaceChildren(
        h(
          "div",
          { class: "refusal", role: "status", "data-testid": "refusal" },
          h("h2", {}, t.notFound),
          answer.abstain_cause ? h("p", { class: "muted" }, t.abstainCause[answer.abstain_cause] ?? answer.abstain_reason ?? "") : null,
        ),
      );
      return;
    }
    const byN = new Map(answer.citations.map((c) => [c.n, c]));
    const text = h("div", { class: "answer-text", "data-testid": "answer" });
    for (const s of answer.sentences) {
      const sentence = h("span", { class: s.supported ? "sentence" : "sentence unsupported" }, s.text);
      if (!s.supported) sentence.title = t.unsupported;
      for (const n of s.citations) {
        const c = byN.get(n);
        const label = c ? `[${n}] ${fileName(c.doc_path)}, ${t.page(c.page, c.doc_path)}` : `[${n}]`;
        const chip = h(
          "button",
          { type: "button", class: s.attributed ? "chip attributed" : "chip", "aria-label": s.attributed ? `${label} (${t.attributedShort})` : label },
          `[${n}]`,
        );
        if (s.attributed) chip.title = t.attributed;
        if (c) chip.addEventListener("click", () => this.openSource(c));
        sentence.append(" ", chip);
      }
      if (!s.supported) sentence.append(h("span", { class: "flag" }, ` (${t.unsupported})`));
      if (s.supported && s.attributed) sentence.append(h("span", { class: "flag attributed-flag", "data-testid": "attributed" }, ` (${t.attributedShort})`));
      text.append(answer.mode === "evidence" ? h("p", {}, sentence) : sentence, " ");
    }
    const sources = h("ol", { class: "sources-list" });
    for (const c of answer.citations) {
      const open = h("button", { type: "button", class: "link open-source" }, t.openSource);
      open.addEventListener("click", () => this.openSource(c));
      sources.append(
        h(
          "li",
          { value: c.n, "data-n": c.n },
          h("div", { class: "source-head" }, h("strong", {}, fileName(c.doc_path)), ` · ${t.page(c.page, c.doc_path)} `, open),
          h("blockquote", {}, h("mark", {}, c.quote)),
        ),
      );
    }
    const copy = h("button", { type: "button", class: "secondary" }, t.copy);
    copy.addEventListener("click", async () => {
      await navigator.clipboard?.writeText(plain(answer, t)).catch(() => undefined);
      copy.textContent = t.copied;
    });
    const exportLink = h("a", { class: "button secondary", download: "quarry-answer.md" }, t.exportAnswer);
    exportLink.setAttribute("href", URL.createObjectURL(new Blob([plain(answer, t)], { type: "text/markdown" })));
    const parts: Node[] = [
      h("h2", {}, t.answer, h("small", { class: "muted" }, ` · ${t.mode[answer.mode] ?? answer.mode}`)),
      text,
    ];
    const notice = answer.fallback ? t.fallback[answer.fallback] : answer.early_stop ? t.earlyStop[answer.early_stop] : undefined;
    if (notice) parts.push(h("p", { class: "muted notice", role: "note", "data-testid": "answer-notice" }, notice));
    if (answer.removed_citations.length > 0) {
      parts.push(h("p", { class: "muted" }, t.removedCitations(answer.removed_citations.map((n) => `[${n}]`).join(" "))));
    }
    parts.push(h("h3", {}, t.citedPassages), sources, h("div", { class: "row" }, copy, exportLink));
    this.output.replaceChildren(...parts);
  }
}

/** The answer and its sources as Markdown, for the clipboard and export. */
function plain(answer: Answer, t: Strings): string {
  const lines = [`**${answer.question}**`, "", answer.answer, "", `${t.citedPassages}:`];
  for (const c of answer.citations) lines.push(`[${c.n}] ${c.doc_path}, ${t.page(c.page, c.doc_path)}: "${c.quote}"`);
  return lines.join("\n");
}
