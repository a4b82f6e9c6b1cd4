// Models view: what is installed (and in use), what the catalog offers with size, memory and
// licence, and one download at a time with progress and a Stop button; a folder or mirror can
// stand in for the internet (air-gapped machines, a USB stick).
import type { CatalogModel } from "../bindings/CatalogModel";
import type { ModelsOverview } from "../bindings/ModelsOverview";
import type { PullProgress } from "../bindings/PullProgress";
import { duration, h } from "../dom";
import type { Strings } from "../i18n";
import type { Transport } from "../transport";

function megabytes(bytes: number): string {
  return bytes >= 1e9 ? `${(bytes / 1e9).toFixed(1)} GB` : `${Math.round(bytes / 1e6)} MB`;
}

export class ModelsView {
  readonly root = h("section", { class: "view", "aria-labelledby": "models-title" });
  private readonly installed = h("div", { class: "models-installed" });
  private readonly catalog = h("ul", { class: "catalog" });
  private readonly progress = h("div", { class: "download", role: "status", "aria-live": "polite" });
  private readonly from = h("input", { id: "model-from", type: "text", autocomplete: "off" });
  private timer: number | undefined;

  constructor(
    private readonly transport: Transport,
    private readonly t: Strings,
    private readonly onError: (e: unknown) => void,
  ) {
    this.root.append(
      h("h1", { id: "models-title" }, t.navModels),
      h("h2", {}, t.installedModels),
      this.installed,
      h("h2", {}, t.catalog),
      this.progress,
      h(
        "div",
        { class: "field" },
        h("label", { for: "model-from" }, t.downloadFrom),
        this.from,
        h("p", { class: "muted" }, t.downloadFromHint),
      ),
      this.catalog,
    );
  }

  async refresh(): Promise<void> {
    window.clearTimeout(this.timer);
    let overview: ModelsOverview;
    try {
      overview = await this.transport.models();
    } catch (e) {
      this.onError(e);
      return;
    }
    this.render(overview);
    // While a download runs (or the view is open), keep its progress current.
    if (this.root.isConnected) {
      this.timer = window.setTimeout(() => void this.refresh(), overview.pull.running ? 500 : 3000);
    }
  }

  private render(o: ModelsOverview): void {
    const t = this.t;
    if (o.installed.length === 0) {
      this.installed.replaceChildren(h("p", { class: "muted" }, t.noModels));
    } else {
      this.installed.replaceChildren(
        h(
          "ul",
          { class: "installed-list" },
          ...o.installed.map((m) =>
            h(
              "li",
              { "data-model": m.id },
              h("strong", {}, m.id),
              ` · ${m.role === "generate" ? t.roleGenerate : t.roleEmbed} · ${m.family} ${m.quantization} · ${megabytes(m.bytes)}`,
              m.in_use ? h("span", { class: "tag" }, t.inUse) : null,
              m.problem ? h("p", { class: "error" }, m.problem) : null,
              h(
                "div",
                { class: "model-actions" },
                m.role === "generate" && !m.problem ? this.useButton(m.path, m.in_use) : null,
                m.role === "embed" && !m.problem ? this.embedderButton(m.id) : null,
                m.in_use ? null : this.removeButton(m.id, m.path),
              ),
            ),
          ),
        ),
      );
    }
    this.renderProgress(o.pull);
    const busy = o.pull.running;
    this.catalog.replaceChildren(...o.catalog.map((m) => this.catalogItem(m, busy)));
  }

  /** Makes the generator at `path` the one that writes answers, or stops using it. */
  private useButton(path: string, inUse: boolean): HTMLElement {
    const t = this.t;
    const button = h("button", { type: "button", class: "use-model" }, inUse ? t.stopUsing : t.useForAnswers);
    button.addEventListener("click", () => {
      void this.transport
        .useModel(inUse ? null : path)
        .then(() => this.refresh())
        .catch(this.onError);
    });
    return button;
  }

  /** New libraries use this embedder (the current library keeps its own). */
  private embedderButton(id: string): HTMLElement {
    const t = this.t;
    const button = h("button", { type: "button", class: "choose-embedder" }, t.useForNewLibraries);
    button.addEventListener("click", () => {
      void this.transport
        .chooseEmbedder(id)
        .then((inUse) => {
          this.progress.replaceChildren(h("p", {}, inUse ? t.embedderInUse(id) : t.embedderChosen(id)));
        })
        .catch(this.onError);
    });
    return button;
  }

  private removeButton(id: string, path: string): HTMLElement {
    const t = this.t;
    const button = h("button", { type: "button", class: "remove-model" }, t.removeModel);
    button.addEventListener("click", () => {
      if (!window.confirm(t.removeModelConfirm(id))) return;
      void this.transport
        .removeModel(path)
        .then(() => this.refresh())
        .catch(this.onError);
    });
    return button;
  }

  private catalogItem(m: CatalogModel, busy: boolean): HTMLElement {
    const t = this.t;
    const button = h("button", { type: "button", disabled: busy || !m.downloadable }, t.download);
    button.addEventListener("click", () => {
      const from = this.from.value.trim();
      void this.transport
        .pullModel(m.id, from || undefined)
        .then(() => this.refresh())
        .catch(this.onError);
    });
    const facts = [
      m.role === "generate" ? t.roleGenerate : t.roleEmbed,
      `${m.size_mb} MB`,
      m.ram_mb ? t.ramNeeded(m.ram_mb) : null,
      m.license,
      m.languages.join(", "),
    ].filter((f): f is string => !!f);
    return h(
      "li",
      { "data-catalog": m.id },
      h("strong", {}, m.id),
      m.installed ? h("span", { class: "tag" }, t.installedTag) : null,
      h("p", { class: "muted" }, facts.join(" · ")),
      m.good_for ? h("p", {}, m.good_for) : null,
      button,
    );
  }

  private renderProgress(p: PullProgress): void {
    const t = this.t;
    if (!p.id) {
      this.progress.replaceChildren();
      return;
    }
    if (p.running) {
      const stop = h("button", { type: "button" }, t.cancelDownload);
      stop.addEventListener("click", () => void this.transport.cancelPull().catch(this.onError));
      const left = p.total && p.rate > 0 ? ` · ${t.eta(duration((p.total - p.done) / p.rate))}` : "";
      this.progress.replaceChildren(
        h("p", {}, t.downloading(p.id)),
        h("progress", { max: p.total ?? 0, value: p.done }),
        h("p", { class: "muted" }, `${p.file ?? ""} · ${megabytes(p.done)}${p.total ? ` / ${megabytes(p.total)}` : ""}${left}`),
        stop,
      );
    } else if (p.error) {
      this.progress.replaceChildren(h("p", { class: "error" }, p.error));
    } else if (p.cancelled) {
      this.progress.replaceChildren(h("p", {}, t.downloadStopped));
    } else if (p.installed) {
      this.progress.replaceChildren(h("p", {}, t.downloaded(p.installed)));
    }
  }
}
