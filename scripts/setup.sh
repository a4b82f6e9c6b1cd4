#!/usr/bin/env bash
# Installs what `make run` and `make test` need and is missing: Debian/Ubuntu packages (with
# sudo when not root), the UI's npm packages. Safe to run again: it only acts on what is missing.
set -euo pipefail
cd "$(dirname "$0")/.."

# protobuf: lance's build; webkit/gtk/rsvg/appindicator/xdo: Tauri; xvfb/xauth: window tests;
# mold: a linker that keeps link times and memory low; nodejs/npm: the UI build;
# chromium: the UI's browser tests (Playwright drives /usr/bin/chromium); x11-utils, xdotool,
# imagemagick: the desktop window check (find the window, click, screenshot, look at it);
# strace: the test that Quarry opens no network socket (tests/offline.rs); python3-venv: the
# throwaway virtualenvs of the official MCP client that tests `quarry mcp` (tests/mcp.rs) and of
# llama-cpp-python's OpenAI-compatible server (tests/answer_server.rs; cmake builds llama.cpp);
# tesseract-ocr (English and German models), poppler-utils and poppler-data: OCR of scanned
# pages and images (pdftoppm renders, Tesseract reads); fonts-dejavu-core: the OCR test's page;
# qpdf: repairs damaged PDFs and decrypts locked ones with the user's password;
# libreoffice-{writer,calc,impress}-nogui: the test that indexes real files LibreOffice saves
# (tests/libreoffice.rs; about 100 MB, no GUI, not needed by Quarry itself).
APT_PACKAGES=(
  build-essential pkg-config curl file
  protobuf-compiler libprotobuf-dev
  libwebkit2gtk-4.1-dev libgtk-3-dev librsvg2-dev libayatana-appindicator3-dev libxdo-dev libssl-dev
  xvfb xauth
  mold
  chromium
  x11-utils xdotool imagemagick
  strace
  python3-venv cmake
  tesseract-ocr tesseract-ocr-eng tesseract-ocr-deu poppler-utils poppler-data fonts-dejavu-core
  qpdf
  libreoffice-writer-nogui libreoffice-calc-nogui libreoffice-impress-nogui
)

missing=()
if command -v dpkg-query >/dev/null 2>&1; then
  for pkg in "${APT_PACKAGES[@]}"; do
    status=$(dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null || true)
    [[ "$status" == "install ok installed" ]] || missing+=("$pkg")
  done
  command -v node >/dev/null 2>&1 || missing+=(nodejs)
  command -v npm >/dev/null 2>&1 || missing+=(npm)
fi

if ((${#missing[@]})); then
  if [[ $(id -u) -eq 0 ]]; then
    sudo_cmd=()
  elif command -v sudo >/dev/null 2>&1; then
    sudo_cmd=(sudo)
  else
    echo "setup: missing packages ${missing[*]}; install them as root: apt-get install ${missing[*]}" >&2
    exit 1
  fi
  echo "setup: installing ${missing[*]}" >&2
  "${sudo_cmd[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -qq
  "${sudo_cmd[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

if ! command -v cargo >/dev/null 2>&1; then
  echo "setup: no Rust toolchain found; install rustup (https://rustup.rs) and run again" >&2
  exit 1
fi

# Install only when the lock file changed since the last install. `npm install --no-save`
# follows the lock without rewriting it; `npm ci` is not used because it also demands lock
# entries for every platform's build of pdfjs-dist's optional Node canvas, and registries
# (this machine's mirror among them) may not carry them all.
if [[ ! -f ui/node_modules/.package-lock.json || ui/package-lock.json -nt ui/node_modules/.package-lock.json ]]; then
  echo "setup: installing UI packages" >&2
  (cd ui && npm install --no-save --no-audit --no-fund --loglevel=error)
fi
