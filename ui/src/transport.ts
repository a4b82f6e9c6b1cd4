// The one module that knows how the UI reaches the engine: Tauri's IPC in the desktop app,
// HTTP (with the per-launch token) under `quarry serve`. Views only see `Transport`.
import type { Answer } from "./bindings/Answer";
import type { AnswerStage } from "./bindings/AnswerStage";
import type { AppSettings } from "./bindings/AppSettings";
import type { AskScope } from "./bindings/AskScope";
import type { DocumentInfo } from "./bindings/DocumentInfo";
import type { DocumentText } from "./bindings/DocumentText";
import type { IndexProgress } from "./bindings/IndexProgress";
import type { LibrarySettings } from "./bindings/LibrarySettings";
import type { OcrWord } from "./bindings/OcrWord";
import type { LibraryStatus } from "./bindings/LibraryStatus";
import type { ModelsOverview } from "./bindings/ModelsOverview";
import type { SearchHit } from "./bindings/SearchHit";
import type { Thread } from "./bindings/Thread";
import type { ThreadExportFormat } from "./bindings/ThreadExportFormat";
import type { ThreadSummary } from "./bindings/ThreadSummary";

export interface StatusResponse {
  library: LibraryStatus;
  indexing: IndexProgress;
}

/** An error as the engine reports it: a kind the UI can act on, a message, a detail. */
export class ApiError extends Error {
  constructor(
    readonly kind: string,
    message: string,
    readonly detail: string | null = null,
  ) {
    super(message);
  }
}

export interface Transport {
  readonly kind: "http" | "tauri";
  status(): Promise<StatusResponse>;
  documents(): Promise<DocumentInfo[]>;
  settings(): Promise<AppSettings>;
  /** Changes the settings `change` names (null: unchanged); refused naming the field when a value is out of range. */
  updateSettings(change: LibrarySettings): Promise<AppSettings>;
  /** The installed models, the catalog, and the download in progress. */
  models(): Promise<ModelsOverview>;
  /** Starts downloading catalog model `id` (from a mirror or a folder when `from` is given). */
  pullModel(id: string, from?: string): Promise<void>;
  cancelPull(): Promise<void>;
  /** Answers from now on come from the generator at `path` (null: quotes only). */
  useModel(path: string | null): Promise<AppSettings>;
  /** New libraries use the embedder `id`; resolves whether this library already does. */
  chooseEmbedder(id: string): Promise<boolean>;
  /** Deletes the installed model at `path` (not one in use). */
  removeModel(path: string): Promise<void>;
  /** Searches the library (hybrid when it has vectors), best hit first. */
  search(query: string, k?: number): Promise<SearchHit[]>;
  /** Indexes a locked PDF of the library again with `password` (used for this run only). */
  unlock(path: string, password: string, onProgress: (p: IndexProgress) => void): Promise<void>;
  /** Starts indexing; progress arrives through `onProgress` until the run ends. */
  /** Indexes `paths`; `confirm` when the user agreed to what the engine asked about (kind "confirm"). */
  index(paths: string[], onProgress: (p: IndexProgress) => void, confirm?: boolean): Promise<void>;
  cancelIndex(): Promise<void>;
  progress(): Promise<IndexProgress>;
  remove(paths: string[]): Promise<number>;
  /** Asks; answer text arrives through `onText` as it is written; resolves with the checked answer. */
  ask(
    question: string,
    evidence: boolean,
    onText: (text: string) => void,
    signal?: AbortSignal,
    onStage?: (stage: AnswerStage) => void,
    scope?: AskScope,
    thread?: string,
  ): Promise<Answer>;
  /** The saved conversations, the most recent first. */
  threads(): Promise<ThreadSummary[]>;
  /** One conversation with every turn. */
  thread(id: string): Promise<Thread>;
  renameThread(id: string, title: string): Promise<ThreadSummary>;
  deleteThread(id: string): Promise<void>;
  /** The conversation as Markdown or JSON (with its audit records). */
  exportThread(id: string, format: ThreadExportFormat): Promise<string>;
  documentText(path: string): Promise<DocumentText>;
  documentBytes(path: string): Promise<ArrayBuffer>;
  /** The words OCR read on a page of a document, with their boxes (empty without OCR). */
  ocrWords(path: string, page: number): Promise<OcrWord[]>;
  /** A native folder picker, where there is one (the desktop app); null when cancelled. */
  pickFolder?: () => Promise<string | null>;
}

function asApiError(body: unknown, fallback: string): ApiError {
  const b = body as { kind?: string; message?: string; detail?: string | null } | null;
  return new ApiError(b?.kind ?? "internal", b?.message ?? fallback, b?.detail ?? null);
}

/** `quarry serve`: fetch with `Authorization: Bearer`, answers as server-sent events. */
export class HttpTransport implements Transport {
  readonly kind = "http" as const;
  constructor(private readonly token: string) {}

  private headers(json = false): HeadersInit {
    const h: Record<string, string> = { Authorization: `Bearer ${this.token}` };
    if (json) h["Content-Type"] = "application/json";
    return h;
  }

  private async call<T>(method: string, path: string, body?: unknown): Promise<T> {
    const response = await fetch(path, {
      method,
      headers: this.headers(body !== undefined),
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const data = await response.json().catch(() => null);
    if (!response.ok) throw asApiError(data, `${response.status} ${response.statusText}`);
    return data as T;
  }

  status(): Promise<StatusResponse> {
    return this.call("GET", "/api/status");
  }
  async documents(): Promise<DocumentInfo[]> {
    return (await this.call<{ documents: DocumentInfo[] }>("GET", "/api/docs")).documents;
  }
  models(): Promise<ModelsOverview> {
    return this.call("GET", "/api/models");
  }
  async pullModel(id: string, from?: string): Promise<void> {
    await this.call("POST", "/api/models/pull", { id, from: from || null });
  }
  async cancelPull(): Promise<void> {
    await this.call("POST", "/api/models/pull/cancel", {});
  }
  useModel(path: string | null): Promise<AppSettings> {
    return this.call("POST", "/api/models/use", { path });
  }
  async chooseEmbedder(id: string): Promise<boolean> {
    const r = await this.call<{ in_use: boolean }>("POST", "/api/models/embedder", { id });
    return r.in_use;
  }
  async removeModel(path: string): Promise<void> {
    await this.call("POST", "/api/models/remove", { path });
  }
  async search(query: string, k = 20): Promise<SearchHit[]> {
    const params = new URLSearchParams({ q: query, k: String(k) });
    const r = await this.call<{ hits: SearchHit[] }>("GET", `/api/search?${params}`);
    return r.hits;
  }
  settings(): Promise<AppSettings> {
    return this.call("GET", "/api/settings");
  }
  updateSettings(change: LibrarySettings): Promise<AppSettings> {
    return this.call("POST", "/api/settings", change);
  }
  progress(): Promise<IndexProgress> {
    return this.call("GET", "/api/index/progress");
  }
  async index(paths: string[], onProgress: (p: IndexProgress) => void, confirm = false): Promise<void> {
    await this.call("POST", "/api/index", { paths, confirm });
    // Poll while the run goes: simple, and survives a reconnect.
    for (;;) {
      const p = await this.progress();
      onProgress(p);
      if (!p.running) return;
      await new Promise((r) => setTimeout(r, 400));
    }
  }
  async unlock(path: string, password: string, onProgress: (p: IndexProgress) => void): Promise<void> {
    await this.call("POST", "/api/unlock", { path, password });
    for (;;) {
      const p = await this.progress();
      onProgress(p);
      if (!p.running) return;
      await new Promise((r) => setTimeout(r, 400));
    }
  }
  async cancelIndex(): Promise<void> {
    await this.call("POST", "/api/index/cancel", {});
  }
  async remove(paths: string[]): Promise<number> {
    return (await this.call<{ removed: number }>("POST", "/api/remove", { paths })).removed;
  }
  async ask(
    question: string,
    evidence: boolean,
    onText: (text: string) => void,
    signal?: AbortSignal,
    onStage?: (stage: AnswerStage) => void,
    scope?: AskScope,
    thread?: string,
  ): Promise<Answer> {
    const response = await fetch("/api/ask", {
      method: "POST",
      headers: this.headers(true),
      body: JSON.stringify({ question, evidence, scope: scope ?? { within: [], kinds: [] }, thread: thread ?? null }),
      signal,
    });
    if (!response.ok || !response.body) {
      throw asApiError(await response.json().catch(() => null), `${response.status}`);
    }
    const reader = response.body.getReader();
    const decoder = new TextDecoder();
    let buffer = "";
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      buffer += decoder.decode(value, { stream: true });
      let cut: number;
      while ((cut = buffer.indexOf("\n\n")) >= 0) {
        const block = buffer.slice(0, cut);
        buffer = buffer.slice(cut + 2);
        let event = "message";
        const data: string[] = [];
        for (const line of block.split("\n")) {
          if (line.startsWith("event:")) event = line.slice(6).trim();
          else if (line.startsWith("data:")) data.push(line.slice(5).replace(/^ /, ""));
        }
        if (data.length === 0) continue;
        const payload = JSON.parse(data.join("\n"));
        if (event === "token") onText(payload.text);
        else if (event === "stage") onStage?.(payload as AnswerStage);
        else if (event === "answer") return payload as Answer;
        else if (event === "error") throw asApiError(payload, "the answer failed");
      }
    }
    throw new ApiError("internal", "the answer stream ended early");
  }
  async threads(): Promise<ThreadSummary[]> {
    return (await this.call<{ threads: ThreadSummary[] }>("GET", "/api/threads")).threads;
  }
  thread(id: string): Promise<Thread> {
    return this.call("GET", `/api/thread?id=${encodeURIComponent(id)}`);
  }
  renameThread(id: string, title: string): Promise<ThreadSummary> {
    return this.call("POST", "/api/thread/rename", { id, title });
  }
  async deleteThread(id: string): Promise<void> {
    await this.call("POST", "/api/thread/delete", { id });
  }
  async exportThread(id: string, format: ThreadExportFormat): Promise<string> {
    const params = new URLSearchParams({ id, format });
    const response = await fetch(`/api/thread/export?${params}`, { headers: this.headers() });
    if (!response.ok) throw asApiError(await response.json().catch(() => null), `${response.status}`);
    return response.text();
  }
  documentText(path: string): Promise<DocumentText> {
    return this.call("GET", `/api/document?path=${encodeURIComponent(path)}`);
  }
  ocrWords(path: string, page: number): Promise<OcrWord[]> {
    return this.call("GET", `/api/ocr?path=${encodeURIComponent(path)}&page=${page}`);
  }
  async documentBytes(path: string): Promise<ArrayBuffer> {
    const response = await fetch(`/api/file?path=${encodeURIComponent(path)}`, { headers: this.headers() });
    if (!response.ok) throw asApiError(await response.json().catch(() => null), `${response.status}`);
    return response.arrayBuffer();
  }
}

/** The desktop app: Tauri commands, with progress and answer text over IPC channels. */
export class TauriTransport implements Transport {
  readonly kind = "tauri" as const;

  private async invoke<T>(command: string, args?: Record<string, unknown>): Promise<T> {
    const { invoke } = await import("@tauri-apps/api/core");
    try {
      return await invoke<T>(command, args);
    } catch (e) {
      throw asApiError(e, String(e));
    }
  }

  status(): Promise<StatusResponse> {
    return this.invoke("status");
  }
  documents(): Promise<DocumentInfo[]> {
    return this.invoke("documents");
  }
  settings(): Promise<AppSettings> {
    return this.invoke("settings");
  }
  updateSettings(change: LibrarySettings): Promise<AppSettings> {
    return this.invoke("update_settings", { change });
  }
  models(): Promise<ModelsOverview> {
    return this.invoke("models");
  }
  async pullModel(id: string, from?: string): Promise<void> {
    await this.invoke("pull_model", { id, from: from || null });
  }
  async cancelPull(): Promise<void> {
    await this.invoke("cancel_pull");
  }
  useModel(path: string | null): Promise<AppSettings> {
    return this.invoke("use_model", { path });
  }
  chooseEmbedder(id: string): Promise<boolean> {
    return this.invoke("choose_embedder", { id });
  }
  async removeModel(path: string): Promise<void> {
    await this.invoke("remove_model", { path });
  }
  search(query: string, k = 20): Promise<SearchHit[]> {
    return this.invoke("search", { query, k });
  }
  progress(): Promise<IndexProgress> {
    return this.invoke("index_progress");
  }
  async index(paths: string[], onProgress: (p: IndexProgress) => void, confirm = false): Promise<void> {
    const { Channel } = await import("@tauri-apps/api/core");
    const channel = new Channel<IndexProgress>();
    channel.onmessage = onProgress;
    const last = await this.invoke<IndexProgress>("index", { paths, confirm, onProgress: channel });
    onProgress(last);
  }
  async unlock(path: string, password: string, onProgress: (p: IndexProgress) => void): Promise<void> {
    const { Channel } = await import("@tauri-apps/api/core");
    const channel = new Channel<IndexProgress>();
    channel.onmessage = onProgress;
    const last = await this.invoke<IndexProgress>("unlock", { path, password, onProgress: channel });
    onProgress(last);
  }
  async cancelIndex(): Promise<void> {
    await this.invoke("cancel_index");
  }
  remove(paths: string[]): Promise<number> {
    return this.invoke("remove", { paths });
  }
  async ask(
    question: string,
    evidence: boolean,
    onText: (text: string) => void,
    signal?: AbortSignal,
    onStage?: (stage: AnswerStage) => void,
    scope?: AskScope,
    thread?: string,
  ): Promise<Answer> {
    const { Channel } = await import("@tauri-apps/api/core");
    const channel = new Channel<string>();
    channel.onmessage = onText;
    const stages = new Channel<AnswerStage>();
    stages.onmessage = (stage) => onStage?.(stage);
    // The engine stops the answer registered under this id when the Stop button aborts.
    const request = crypto.randomUUID();
    const stop = () => void this.invoke("cancel_ask", { request }).catch(() => undefined);
    signal?.addEventListener("abort", stop, { once: true });
    try {
      return await this.invoke("ask", { question, evidence, request, scope: scope ?? null, thread: thread ?? null, onText: channel, onStage: stages });
    } catch (e) {
      if (signal?.aborted) throw new DOMException("stopped", "AbortError");
      throw e;
    } finally {
      signal?.removeEventListener("abort", stop);
    }
  }
  threads(): Promise<ThreadSummary[]> {
    return this.invoke("threads");
  }
  thread(id: string): Promise<Thread> {
    return this.invoke("thread", { id });
  }
  renameThread(id: string, title: string): Promise<ThreadSummary> {
    return this.invoke("rename_thread", { id, title });
  }
  async deleteThread(id: string): Promise<void> {
    await this.invoke("delete_thread", { id });
  }
  exportThread(id: string, format: ThreadExportFormat): Promise<string> {
    return this.invoke("export_thread", { id, format });
  }
  documentText(path: string): Promise<DocumentText> {
    return this.invoke("document_text", { path });
  }
  documentBytes(path: string): Promise<ArrayBuffer> {
    return this.invoke("document_bytes", { path });
  }
  ocrWords(path: string, page: number): Promise<OcrWord[]> {
    return this.invoke("ocr_words", { path, page });
  }
  pickFolder = async (): Promise<string | null> => {
    const { open } = await import("@tauri-apps/plugin-dialog");
    const chosen = await open({ directory: true, multiple: false });
    return typeof chosen === "string" ? chosen : null;
  };
}

/** The transport this page runs under. Under `quarry serve` the token comes in the URL
 * fragment once; it is kept for the tab's session and removed from the address bar. */
export function connect(): Transport {
  if ("__TAURI_INTERNALS__" in window) return new TauriTransport();
  const fragment = new URLSearchParams(location.hash.slice(1));
  const fromUrl = fragment.get("token");
  if (fromUrl) {
    sessionStorage.setItem("quarry-token", fromUrl);
    history.replaceState(null, "", location.pathname + location.search);
  }
  return new HttpTransport(fromUrl ?? sessionStorage.getItem("quarry-token") ?? "");
}
