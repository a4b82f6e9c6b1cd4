// Settings view: where the library and models are, which models answer, the evidence
// threshold, and the UI's language and theme.
import { h } from "../dom";
import type { Lang, Strings } from "../i18n";
import type { Transport } from "../transport";

export type Theme = "system" | "light" | "dark";

export class SettingsView {
  readonly root = h("section", { class: "view", "aria-labelledby": "settings-title" });
  private readonly list = h("dl", { class: "settings" });

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
      this.list,
    );
  }

  async refresh(): Promise<void> {
    const t = this.t;
    const s = await this.transport.settings();
    const row = (k: string, v: string) => [h("dt", {}, k), h("dd", {}, v)];
    this.list.replaceChildren(
      ...row(t.dataFolder, s.data_dir),
      ...row(t.modelsFolder, s.models_dir),
      ...row(t.embedder, s.embedder ?? "—"),
      ...row(t.generator, s.generator ?? t.noGenerator),
      ...row(t.gate, s.gate_threshold.toFixed(2)),
      ...row(t.passagesPerQuestion, String(s.default_k)),
      ...row(t.transport, this.transport.kind === "http" ? t.transportHttp : t.transportTauri),
    );
  }
}
