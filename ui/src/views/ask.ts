// Ask view: a conversation. The question, the answer streaming in, citation chips, the cited
// passages with the quote highlighted, unsupported sentences marked, refusals shown as such;
// follow-ups with the standalone question they were searched as; earlier turns above, the saved
// conversations beside (opened, renamed, deleted, exported); copy and export.
import type { Answer } from "../bindings/Answer";
import type { Citation } from "../bindings/Citation";
import type { FileKind } from "../bindings/FileKind";
import type { Thread } from "../bindings/Thread";
import type { ThreadExportFormat } from "../bindings/ThreadExportFormat";
import { docName, h } from "../dom";
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
  /** The conversation the next question continues (null: a new one). */
  private threadId: string | null = null;
  private readonly threadList = h("ul", { class: "thread-list", "aria-live": "polite" });
  private readonly threadHead = h("div", { class: "thread-head", hidden: true });
  /** Earlier turns of the conversation, compact, the most recent first; the latest is in
   * `output`. */
  private readonly history = h("ol", { class: "thread-history" });
  /** The latest answer, kept to move into the history when the next question is asked. */
  private latest: Answer | null = null;

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
    const newThread = h("button", { type: "button", id: "new-thread" }, t.newConversation);
    newThread.addEventListener("click", () => this.startThread());
    const panel = h(
      "aside",
      { class: "threads-panel", "aria-labelledby": "threads-title" },
      h("h2", { id: "threads-title" }, t.conversations),
      newThread,
      this.threadList,
    );
    // The question box stays on top (the source viewer opens over the right-hand side), the
    // latest answer under it, earlier turns below, the most recent first.
    const main = h("div", { class: "thread-main" }, this.threadHead, form, this.output, this.history);
    this.root.append(h("h1", { id: "ask-title" }, t.navAsk), this.firstRun, h("div", { class: "ask-layout" }, panel, main));
    void this.checkModels();
    void this.loadThreads();
  }

  /** A new conversation: the next question starts it. */
  private startThread(): void {
    if (this.running) return;
    this.threadId = null;
    this.latest = null;
    this.history.replaceChildren();
    this.output.replaceChildren();
    this.threadHead.hidden = true;
    this.input.focus();
    void this.loadThreads();
  }

  /** Lists the saved conversations, the current one marked. */
  private async loadThreads(): Promise<void> {
    const t = this.t;
    try {
      const threads = await this.transport.threads();
      if (threads.length === 0) {
        this.threadList.replaceChildren(h("li", { class: "muted" }, t.noConversations));
        return;
      }
      this.threadList.replaceChildren(
        ...threads.map((th) => {
          const open = h(
            "button",
            { type: "button", class: "link thread-open", "data-thread": th.id, "aria-current": th.id === this.threadId ? "true" : "false" },
            th.title,
          );
          open.addEventListener("click", () => void this.openThread(th.id));
          return h("li", {}, open, h("small", { class: "muted" }, ` · ${t.turns(th.turns)}`));
        }),
      );
    } catch {
      // The list stays as it was; asking still works.
    }
  }

  /** Shows a saved conversation: its earlier turns, its last answer, its title and actions. */
  private async openThread(id: string): Promise<void> {
    if (this.running) return;
    try {
      const thread = await this.transport.thread(id);
      this.threadId = thread.id;
      const turns = thread.turns.map((turn) => turn.answer);
      this.latest = turns.pop() ?? null;
      this.history.replaceChildren(...turns.reverse().map((a) => this.compact(a)));
      if (this.latest) this.render(this.latest);
      else this.output.replaceChildren();
      this.showHead(thread);
      void this.loadThreads();
    } catch (e) {
      this.output.replaceChildren(h("p", { class: "error", role: "alert" }, e instanceof Error ? e.message : String(e)));
    }
  }

  /** The conversation's title with rename, delete and export. */
  private showHead(thread: Pick<Thread, "id" | "title">): void {
    const t = this.t;
    const title = h("h2", { class: "thread-title" }, thread.title);
    const rename = h("button", { type: "button", class: "secondary", id: "rename-thread" }, t.rename);
    rename.addEventListener("click", () => {
      const field = h("input", { type: "text", id: "thread-title-input", "aria-label": t.threadTitle, value: thread.title });
      const save = h("button", { type: "submit", class: "primary" }, t.save);
      const form = h("form", { class: "row rename-form" }, field, save);
      form.addEventListener("submit", async (e) => {
        e.preventDefault();
        try {
          const renamed = await this.transport.renameThread(thread.id, field.value);
          this.showHead({ id: thread.id, title: renamed.title });
          void this.loadThreads();
        } catch (err) {
          form.append(h("p", { class: "error", role: "alert" }, err instanceof Error ? err.message : String(err)));
        }
      });
      title.replaceWith(form);
      field.focus();
    });
    const remove = h("button", { type: "button", class: "secondary", id: "delete-thread" }, t.deleteThread);
    remove.addEventListener("click", async () => {
      if (!window.confirm(t.deleteThreadConfirm(thread.title))) return;
      await this.transport.deleteThread(thread.id).catch(() => undefined);
      this.startThread();
    });
    const exporter = (format: ThreadExportFormat, label: string) => {
      const b = h("button", { type: "button", class: "secondary", "data-export": format }, label);
      b.addEventListener("click", async () => {
        const text = await this.transport.exportThread(thread.id, format);
        const link = h("a", { download: `quarry-conversation-${thread.id}.${format === "json" ? "json" : "md"}`, hidden: true });
        link.setAttribute("href", URL.createObjectURL(new Blob([text], { type: format === "json" ? "application/json" : "text/markdown" })));
        document.body.append(link);
        link.click();
        link.remove();
      });
      return b;
    };
    this.threadHead.replaceChildren(
      title,
      h("div", { class: "row" }, rename, remove, exporter("markdown", t.exportMarkdown), exporter("json", t.exportJson)),
    );
    this.threadHead.hidden = false;
  }

  /** An earlier turn, compact: what was asked (and searched for), the answer, its sources. */
  private compact(answer: Answer): HTMLElement {
    const t = this.t;
    const asked = answer.conversation?.asked ?? answer.question;
    const item = h("li", { class: "turn" }, h("p", { class: "turn-question" }, h("strong", {}, `${t.you}: `), asked));
    if (answer.question !== asked) item.append(h("p", { class: "muted searched-for" }, `${t.searchedFor}: ${answer.question}`));
    item.append(h("p", { class: answer.abstained ? "turn-answer muted" : "turn-answer" }, answer.abstained ? t.notFound : answer.answer));
    if (answer.citations.length > 0) {
      const sources = h("p", { class: "muted turn-sources" });
      for (const c of answer.citations) {
        const open = h("button", { type: "button", class: "link" }, `[${c.n}] ${docName(c.doc_path)}, ${t.page(c.page, c.doc_path)}`);
        open.addEventListener("click", () => this.openSource(c));
        sources.append(open, " ");
      }
      item.append(sources);
    }
    return item;
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
    void this.loadThreads();
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
    // The previous answer moves up into the conversation's history.
    if (this.latest && this.threadId) this.history.prepend(this.compact(this.latest));
    this.latest = null;
    this.output.replaceChildren(this.turnHead(question, null), status, streaming);
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
        this.threadId ?? "new",
      );
      this.latest = answer;
      this.input.value = "";
      this.render(answer);
      const opened = this.threadId === null;
      if (answer.conversation) this.threadId = answer.conversation.thread_id;
      if (opened && this.threadId) this.showHead({ id: this.threadId, title: question });
      void this.loadThreads();
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

  /** What was asked, and what it was searched as when the follow-up was rewritten. */
  private turnHead(asked: string, answer: Answer | null): HTMLElement {
    const t = this.t;
    const head = h("div", { class: "turn-head" }, h("p", { class: "turn-question" }, h("strong", {}, `${t.you}: `), asked));
    const by = answer?.conversation?.rewritten_by;
    if (answer && by && by !== "unchanged") {
      head.append(
        h("p", { class: "muted searched-for", "data-testid": "searched-for" }, `${t.searchedFor}: ${answer.question} (${t.rewrittenBy[by] ?? by})`),
      );
    }
    return head;
  }

  private render(answer: Answer): void {
    const t = this.t;
    const head = this.turnHead(answer.conversation?.asked ?? answer.question, answer);
    if (answer.abstained) {
      this.output.replaceChildren(
        head,
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
        const label = c ? `[${n}] ${docName(c.doc_path)}, ${t.page(c.page, c.doc_path)}` : `[${n}]`;
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
          h("div", { class: "source-head" }, h("strong", {}, docName(c.doc_path)), ` · ${t.page(c.page, c.doc_path)} `, open),
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
      head,
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
