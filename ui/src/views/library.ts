// Library view: add folders, watch indexing progress (files, rate, ETA, pause/resume), and the
// documents with their state, errors and warnings.
import type { DocumentInfo } from "../bindings/DocumentInfo";
import type { IndexProgress } from "../bindings/IndexProgress";
import { docName, duration, fileName, h } from "../dom";
import type { Strings } from "../i18n";
import { ApiError, type Transport } from "../transport";

export class LibraryView {
  readonly root = h("section", { class: "view", "aria-labelledby": "library-title" });
  private readonly progressBox = h("div", { class: "progress", role: "status", "aria-live": "polite" });
  private readonly docsBox = h("div", { class: "docs" });
  private readonly errorBox = h("p", { class: "error", role: "alert", hidden: true });
  private lastPaths: string[] = [];

  constructor(
    private readonly transport: Transport,
    private readonly t: Strings,
    private readonly onError: (e: unknown) => void,
  ) {
    const input = h("input", {
      id: "folder-path",
      name: "path",
      type: "text",
      required: true,
      autocomplete: "off",
      spellcheck: "false",
      placeholder: t.folderPathHint,
      "aria-describedby": "folder-hint",
    });
    const pick = transport.pickFolder;
    const chooser = pick ? h("button", { type: "button", class: "secondary" }, t.chooseFolder) : null;
    chooser?.addEventListener("click", async () => {
      const folder = await pick!().catch(() => null);
      if (folder) {
        input.value = folder;
        void this.runIndex([folder]);
      }
    });
    const form = h(
      "form",
      { class: "add-folder" },
      h("label", { for: "folder-path" }, t.folderPath),
      h("div", { class: "row" }, chooser, input, h("button", { type: "submit", class: "primary" }, t.addFolder)),
      h("small", { id: "folder-hint", class: "muted" }, t.folderPathHint),
    );
    form.addEventListener("submit", (e) => {
      e.preventDefault();
      const path = input.value.trim();
      if (path) void this.runIndex([path]);
    });
    this.root.append(
      h("h1", { id: "library-title" }, t.navLibrary),
      form,
      this.errorBox,
      this.progressBox,
      this.docsBox,
    );
  }

  private timer: number | undefined;

  async refresh(): Promise<void> {
    window.clearTimeout(this.timer);
    try {
      const [status, docs] = await Promise.all([this.transport.status(), this.transport.documents()]);
      this.renderProgress(status.indexing);
      this.renderDocuments(docs, status.library.sources);
      if (status.indexing.running) void this.follow();
    } catch (e) {
      this.onError(e);
    }
    // While the view is shown, keep it in step with runs started by folder watching.
    if (this.root.isConnected) this.timer = window.setTimeout(() => void this.refresh(), 2000);
  }

  private async runIndex(paths: string[]): Promise<void> {
    this.errorBox.hidden = true;
    this.lastPaths = paths;
    try {
      try {
        await this.transport.index(paths, (p) => this.renderProgress(p));
      } catch (e) {
        // A hidden folder or a file without an extension: added only if the user says so.
        if (!(e instanceof ApiError) || e.kind !== "confirm" || !window.confirm(e.message)) throw e;
        await this.transport.index(paths, (p) => this.renderProgress(p), true);
      }
    } catch (e) {
      this.errorBox.textContent = e instanceof Error ? e.message : String(e);
      this.errorBox.hidden = false;
    }
    await this.refresh();
  }

  /** A password field for a locked PDF: the file is indexed again with it (never stored). */
  private unlockForm(path: string): HTMLElement {
    const t = this.t;
    const input = h("input", { type: "password", autocomplete: "off", "aria-label": `${t.password}: ${fileName(path)}`, class: "unlock-password" });
    const button = h("button", { type: "submit" }, t.unlock);
    const form = h("form", { class: "unlock" }, input, " ", button);
    form.addEventListener("submit", (ev) => {
      ev.preventDefault();
      const password = input.value;
      if (!password) return;
      input.value = "";
      button.disabled = true;
      void (async () => {
        this.errorBox.hidden = true;
        try {
          await this.transport.unlock(path, password, (p) => this.renderProgress(p));
        } catch (e) {
          this.errorBox.textContent = e instanceof Error ? e.message : String(e);
          this.errorBox.hidden = false;
        }
        await this.refresh();
      })();
    });
    return form;
  }

  /** Follows a run started elsewhere (another window, or before a reload). */
  private following = false;

  private async follow(): Promise<void> {
    if (this.following) return;
    this.following = true;
    try {
      await this.followRun();
    } finally {
      this.following = false;
    }
  }

  private async followRun(): Promise<void> {
    for (;;) {
      await new Promise((r) => setTimeout(r, 500));
      const p = await this.transport.progress();
      this.renderProgress(p);
      if (!p.running) break;
    }
    await this.refresh();
  }

  private renderProgress(p: IndexProgress): void {
    const t = this.t;
    this.progressBox.replaceChildren();
    if (p.running) {
      const pct = p.total > 0 ? Math.round((100 * p.done) / p.total) : 0;
      const bar = h("progress", { max: 100, value: pct, "aria-label": t.indexing });
      const pause = h("button", { type: "button", class: "secondary" }, t.pause);
      pause.addEventListener("click", () => void this.transport.cancelIndex().catch(this.onError));
      this.progressBox.append(
        h("h2", {}, t.indexing),
        bar,
        h(
          "p",
          { class: "counts" },
          t.filesDone(Number(p.done), Number(p.total)),
          p.rate_per_s > 0 ? ` · ${t.rate(p.rate_per_s.toFixed(1))}` : "",
          p.eta_s !== null && p.eta_s !== undefined ? ` · ${t.eta(duration(p.eta_s))}` : "",
        ),
        h("p", { class: "muted current" }, p.current ? fileName(p.current) : ""),
        pause,
      );
    } else if (p.paused) {
      const resume = h("button", { type: "button", class: "primary" }, t.resume);
      resume.addEventListener("click", () => void this.runIndex(this.lastPaths));
      this.progressBox.append(h("p", {}, t.paused), resume);
    } else if (p.report) {
      const r = p.report;
      this.progressBox.append(h("p", { class: "muted" }, t.lastRun(r.added, r.updated, r.removed, r.failed)));
    }
    if (p.error) this.progressBox.append(h("p", { class: "error" }, p.error));
  }

  private renderDocuments(docs: DocumentInfo[], sources: string[]): void {
    const t = this.t;
    this.docsBox.replaceChildren();
    if (sources.length > 0) {
      const list = h("ul", { class: "sources" });
      for (const source of sources) {
        const button = h("button", { type: "button", class: "link", "aria-label": `${t.removeFolder}: ${source}` }, t.remove);
        button.addEventListener("click", async () => {
          try {
            await this.transport.remove([source]);
          } catch (e) {
            this.onError(e);
          }
          await this.refresh();
        });
        list.append(h("li", {}, h("code", {}, source), " ", button));
      }
      this.docsBox.append(h("h2", {}, t.sources), list);
    }
    const indexed = docs.filter((d) => d.state === "indexed").length;
    this.docsBox.append(h("h2", {}, t.documents), h("p", { class: "muted", id: "doc-count" }, t.indexed(indexed)));
    if (docs.length === 0) {
      this.docsBox.append(h("p", { class: "empty" }, t.noDocuments));
      return;
    }
    const body = h("tbody");
    for (const d of docs) {
      const notes = h("div", { class: "notes" });
      if (d.error) notes.append(h("div", { class: "error" }, this.t.note(d.error)));
      // Where a titled document inside an archive or mailbox lies ("pack.zip › minutes/board.pptx").
      if (d.inside && d.title) notes.append(h("div", { class: "muted inside" }, docName(d.path)));
      // The password form re-reads one file; a locked PDF inside an archive is not one.
      if (d.state === "failed" && d.kind === "pdf" && d.error?.startsWith("encrypted") && !d.inside) notes.append(this.unlockForm(d.path));
      for (const w of d.warnings) notes.append(h("div", { class: "warning" }, this.t.note(w)));
      body.append(
        h(
          "tr",
          { "data-state": d.state },
          h("td", {}, h("span", { class: "doc-name", title: d.path }, d.title ?? (d.inside ? docName(d.path) : fileName(d.path))), notes),
          h("td", {}, h("span", { class: `state state-${d.state}` }, t.state[d.state] ?? d.state)),
          h("td", { class: "num" }, String(d.pages)),
          h("td", { class: "num" }, String(d.chunks)),
        ),
      );
    }
    this.docsBox.append(
      h(
        "table",
        { class: "doc-table" },
        h(
          "thead",
          {},
          h("tr", {}, h("th", { scope: "col" }, t.colDocument), h("th", { scope: "col" }, t.colState), h("th", { scope: "col" }, t.colPages), h("th", { scope: "col" }, t.colChunks)),
        ),
        body,
      ),
    );
  }
}
