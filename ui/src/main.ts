// Entry point of the Quarry UI. For now a start page that says what the app does and how to
// add documents; the library, ask and source views arrive with the desktop-app issue.
import "./style.css";

type Lang = "en" | "de";

const text: Record<Lang, { title: string; lead: string; step: string; offline: string }> = {
  en: {
    title: "Quarry",
    lead: "Ask questions about your own documents. Answers cite the page and passage they come from.",
    step: "Add a folder from the command line: quarry index ~/Documents",
    offline: "Everything stays on this computer.",
  },
  de: {
    title: "Quarry",
    lead: "Stellen Sie Fragen zu Ihren eigenen Dokumenten. Antworten nennen Seite und Textstelle.",
    step: "Ordner über die Kommandozeile hinzufügen: quarry index ~/Dokumente",
    offline: "Alles bleibt auf diesem Computer.",
  },
};

function preferredLang(): Lang {
  return navigator.language.toLowerCase().startsWith("de") ? "de" : "en";
}

function render(root: HTMLElement, lang: Lang): void {
  const t = text[lang];
  root.innerHTML = "";
  const h1 = document.createElement("h1");
  h1.textContent = t.title;
  const lead = document.createElement("p");
  lead.className = "lead";
  lead.textContent = t.lead;
  const step = document.createElement("p");
  step.textContent = t.step;
  const offline = document.createElement("p");
  offline.className = "muted";
  offline.textContent = t.offline;
  root.append(h1, lead, step, offline);
  document.documentElement.lang = lang;
}

const root = document.getElementById("app");
if (root) {
  render(root, preferredLang());
}
