// Settings view: where the library and models are, which models answer, and the settings the
// user can change (evidence threshold, passages per question, answer length, OCR, models
// folder: saved in the library by the engine), and the UI's language and theme.
import type { AppSettings } from "../bindings/AppSettings";
import type { LibrarySettings } from "../bindings/LibrarySettings";
import { h } from "../dom";
import type { Lang, Strings } from "../i18n";
import type { Transport } from "../transport";

export type Theme = "system" | "light" | "dark";

export class SettingsView {
  readonly root = h("section", { class: "view", "aria-labelledby": "settings-title" });
  private readonly list = h("dl", { class: "settings" });
  private readonly form = h("form", { class: "settings-form", novalidate: true });
  private readonly message = h("p", { class: "muted", role: "status" });
  private readonly gate = h("input", { id: "set-gate", type: "number", min: 0, max: 1, step: 0.01 });
  private readonly passages = h("input", { id: "set-passages", type: "number", min: 1, max: 50, step: 1 });
  private readonly maxTokens = h("input", { id: "set-max-tokens", type: "number", min: 16, max: 4096, step: 1 });
  private readonly ocr = h("input", { id: "set-ocr", type: "checkbox" });
  private readonly modelsDir = h("input", { id: "set-models-dir", type: "text" });
  private current: AppSettings | null = null;
  /** Fields the user changed since they were last filled: settings arriving later (the view
   * loads them when it opens) do not overwrite what is being typed. */
  private readonly edited = new Set<HTMLInputElement>();
  /** Bumped by every load and save: a reply that a newer one overtook is dropped. */
  private generation = 0;

  constructor(
    private readonly transport: Transport,
    private readonly t: Strings,
    lang: Lang,
    theme: Theme,
    onLang: (l: Lang) => void,
    onTheme: (t: Theme) => void,
  ) {
    const langSelect = h(
      "select",
      { id: "lang" },
      h("option", { value: "en", selected: lang === "en" }, "English"),
      h("option", { value: "de", selected: lang === "de" }, "Deutsch"),
    );
    langSelect.addEventListener("change", () => onLang(langSelect.value as Lang));
    const themeSelect = h(
      "select",
      { id: "theme" },
      h("option", { value: "system", selected: theme === "system" }, t.themeSystem),
      h("option", { value: "light", selected: theme === "light" }, t.themeLight),
      h("option", { value: "dark", selected: theme === "dark" }, t.themeDark),
    );
    themeSelect.addEventListener("change", () => onTheme(themeSelect.value as Theme));
    this.root.append(
      h("h1", { id: "settings-title" }, t.navSettings),
      h(
        "div",
        { class: "prefs" },
        h("label", { for: "lang" }, t.language),
        langSelect,
        h("label", { for: "theme" }, t.theme),
        themeSelect,
      ),
      this.form,
      this.list,
    );
    const field = (id: string, label: string, input: HTMLElement) => h("div", { class: "field" }, h("label", { for: id }, label), input);
    this.form.append(
      field("set-gate", t.gate, this.gate),
      field("set-passages", t.passagesPerQuestion, this.passages),
      field("set-max-tokens", t.maxAnswerTokens, this.maxTokens),
      h("label", { class: "check" }, this.ocr, " ", t.ocrSetting),
      field("set-models-dir", t.modelsFolder, this.modelsDir),
      h("div", { class: "row" }, h("button", { type: "submit", class: "primary" }, t.saveSettings)),
      this.message,
    );
    for (const input of [this.gate, this.passages, this.maxTokens, this.ocr, this.modelsDir]) {
      input.addEventListener("input", () => this.edited.add(input));
      input.addEventListener("change", () => this.edited.add(input));
    }
    this.form.addEventListener("submit", (e) => {
      e.preventDefault();
      void this.save();
    });
  }

  /** Sends what changed; the engine refuses an out-of-range value naming the field. */
  private async save(): Promise<void> {
    const t = this.t;
    const generation = ++this.generation;
    this.message.className = "muted";
    try {
      const s = this.current ?? (await this.transport.settings());
      const number = (input: HTMLInputElement, was: number) => (input.value === "" || Number(input.value) === was ? null : Number(input.value));
      const dir = this.modelsDir.value.trim();
      const change: LibrarySettings = {
        gate_threshold: number(this.gate, Number(s.gate_threshold.toFixed(2))),
        passages_per_question: number(this.passages, s.default_k),
        max_answer_tokens: number(this.maxTokens, s.max_answer_tokens),
        ocr: this.ocr.checked === s.ocr ? null : this.ocr.checked,
        models_dir: dir === "" || dir === (s.models_dir_next_start ?? s.models_dir) ? null : dir,
      };
      const saved = await this.transport.updateSettings(change);
      if (generation !== this.generation) return;
      this.edited.clear();
      this.show(saved);
      this.message.setAttribute("role", "status");
      this.message.textContent = t.settingsSaved;
    } catch (e) {
      if (generation !== this.generation) return;
      this.message.className = "error";
      this.message.setAttribute("role", "alert");
      this.message.textContent = e instanceof Error ? e.message : String(e);
    }
  }

  /** Loads the settings when the view opens: edits left unsaved on an earlier visit are
   * dropped, what is typed while they load is kept. */
  async refresh(): Promise<void> {
    const generation = ++this.generation;
    this.edited.clear();
    this.message.textContent = "";
    const s = await this.transport.settings();
    if (generation === this.generation) this.show(s);
  }

  private show(s: AppSettings): void {
    const t = this.t;
    this.current = s;
    const fill = (input: HTMLInputElement, value: string) => {
      if (!this.edited.has(input)) input.value = value;
    };
    fill(this.gate, s.gate_threshold.toFixed(2));
    fill(this.passages, String(s.default_k));
    fill(this.maxTokens, String(s.max_answer_tokens));
    if (!this.edited.has(this.ocr)) this.ocr.checked = s.ocr;
    fill(this.modelsDir, s.models_dir_next_start ?? s.models_dir);
    const row = (k: string, v: string) => [h("dt", {}, k), h("dd", {}, v)];
    this.list.replaceChildren(
      ...row(t.dataFolder, s.data_dir),
      ...row(t.modelsFolder, s.models_dir),
      ...row(t.embedder, s.embedder ?? "—"),
      ...row(t.generator, s.generator ?? t.noGenerator),
      ...row(t.gate, s.gate_threshold.toFixed(2)),
      ...row(t.passagesPerQuestion, String(s.default_k)),
      ...row(t.maxAnswerTokens, String(s.max_answer_tokens)),
      ...row(t.ocrSetting, s.ocr ? "✓" : "—"),
      ...(s.models_dir_next_start ? row(t.modelsFolder, t.nextStart(s.models_dir_next_start)) : []),
      ...row(t.transport, this.transport.kind === "http" ? t.transportHttp : t.transportTauri),
    );
    this.list.append(h("p", { class: "muted" }, t.changeInModels));
  }
}
