// Entry point of the Quarry UI: the app frame (navigation, language, theme), the five views and
// the source viewer, all talking to the engine through one transport.
import "./style.css";
import type { Citation } from "./bindings/Citation";
import { h } from "./dom";
import { chosenLang, type Lang, strings } from "./i18n";
import { connect } from "./transport";
import { AskView } from "./views/ask";
import { LibraryView } from "./views/library";
import { ModelsView } from "./views/models";
import { SearchView } from "./views/search";
import { SettingsView, type Theme } from "./views/settings";
import { SourceViewer } from "./views/viewer";

type ViewName = "ask" | "search" | "library" | "models" | "settings";

const transport = connect();

function chosenTheme(): Theme {
  const saved = localStorage.getItem("quarry-theme");
  return saved === "light" || saved === "dark" ? saved : "system";
}

const systemDark = window.matchMedia("(prefers-color-scheme: dark)");

/** Sets the page's palette; "system" follows the system setting, also when it changes. */
function applyTheme(theme: Theme): void {
  const dark = theme === "dark" || (theme === "system" && systemDark.matches);
  document.documentElement.dataset.theme = dark ? "dark" : "light";
}
systemDark.addEventListener("change", () => applyTheme(chosenTheme()));

function mount(root: HTMLElement, lang: Lang, start: ViewName): void {
  const t = strings(lang);
  document.documentElement.lang = lang;
  document.title = t.appName;
  const errorBar = h("p", { class: "error-bar", role: "alert", hidden: true });
  const showError = (e: unknown) => {
    errorBar.textContent = `${t.error}: ${e instanceof Error ? e.message : String(e)}`;
    errorBar.hidden = false;
  };
  const viewer = new SourceViewer(transport, t);
  const openSource = (c: Citation) => void viewer.open(c);
  const views = {
    ask: new AskView(transport, t, openSource, () => show("models")),
    search: new SearchView(transport, t, openSource, showError),
    library: new LibraryView(transport, t, showError),
    models: new ModelsView(transport, t, showError),
    settings: new SettingsView(
      transport,
      t,
      lang,
      chosenTheme(),
      (l) => {
        localStorage.setItem("quarry-lang", l);
        mount(root, l, "settings");
      },
      (theme) => {
        localStorage.setItem("quarry-theme", theme);
        applyTheme(theme);
      },
    ),
  };
  const main = h("main", { id: "main", tabindex: -1 });
  const buttons = new Map<ViewName, HTMLButtonElement>();
  const show = (name: ViewName) => {
    for (const [n, b] of buttons) b.setAttribute("aria-current", n === name ? "page" : "false");
    main.replaceChildren(views[name].root);
    errorBar.hidden = true;
    if (name === "library") void views.library.refresh();
    if (name === "models") void views.models.refresh();
    if (name === "settings") void views.settings.refresh().catch(showError);
    if (name === "ask") views.ask.focus();
    if (name === "search") views.search.focus();
  };
  const nav = h("nav", { "aria-label": t.appName });
  for (const [name, label] of [
    ["ask", t.navAsk],
    ["search", t.navSearch],
    ["library", t.navLibrary],
    ["models", t.navModels],
    ["settings", t.navSettings],
  ] as [ViewName, string][]) {
    const b = h("button", { type: "button", class: "nav-item", "data-view": name }, label);
    b.addEventListener("click", () => show(name));
    buttons.set(name, b);
    nav.append(b);
  }
  root.replaceChildren(
    h(
      "header",
      { class: "app-head" },
      h("div", { class: "brand" }, h("span", { class: "logo", "aria-hidden": "true" }, "◆"), " ", t.appName),
      nav,
      h("span", { class: "offline muted" }, t.offline),
    ),
    errorBar,
    h("div", { class: "layout" }, main, viewer.root),
  );
  show(start);
}

applyTheme(chosenTheme());
const root = document.getElementById("app");
if (root) mount(root, chosenLang(), "ask");
