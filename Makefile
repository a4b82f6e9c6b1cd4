# Two commands for a fresh Debian/Ubuntu machine:
#   make run   set up what is missing, build, launch the desktop app
#   make test  set up what is missing, then format check, clippy, tests, shell and UI builds
# `make eval` and `make bench` (added with the retrieval work) run the long measurements.

SHELL := /bin/bash
.DEFAULT_GOAL := test

# The build cache lives outside the clone so fresh clones and CI runs reuse it.
export CARGO_TARGET_DIR ?= $(HOME)/.cache/quarry/target
export CARGO_TERM_COLOR ?= never
CARGO ?= cargo
DESKTOP_BIN = $(CARGO_TARGET_DIR)/debug/quarry-desktop

# The linker flags are part of cargo's cache key, so every build must see the same ones. mold is
# installed by setup, which runs first: the top-level make (parsed before setup) decides nothing
# while mold is missing and leaves the flags to the inner make, parsed after setup. (Deciding at
# the top level made a first `make test` on a new machine build without mold and the next
# command rebuild everything with it.)
# candle's quantized kernels choose their SIMD code at compile time: build for x86-64-v3 (AVX2,
# FMA, F16C: every x86 PC since 2013), as .cargo/config.toml does for plain cargo commands.
X86_FLAGS := -C target-cpu=x86-64-v3
ifneq ($(shell command -v mold 2>/dev/null),)
export CARGO_TARGET_X86_64_UNKNOWN_LINUX_GNU_RUSTFLAGS ?= -C link-arg=-fuse-ld=mold $(X86_FLAGS)
else ifneq ($(MAKELEVEL),0)
# An inner make and still no mold: setup could not install it.
export CARGO_TARGET_X86_64_UNKNOWN_LINUX_GNU_RUSTFLAGS ?= $(X86_FLAGS)
endif

.PHONY: run test eval bench setup ui check-fmt lint unit desktop test-inner run-inner real-models s3-server \
	eval-inner bench-inner rustflags app-models mcp-client llama-server dist dist-inner dist-check \
	dist-check-inner

# Shared test data and models (see ../shared/data/MANIFEST.md).
QUARRY_TEST_DATA ?= $(abspath ../shared/data)
QUARRY_BIN = $(CARGO_TARGET_DIR)/debug/quarry
BENCH_MODEL = $(HOME)/.cache/quarry/bench/random-qwen2.5-0.5b-q4_k_m.gguf

# Full evaluations and benchmarks: minutes each, so not part of `make test`. Like run and test,
# they build in an inner make, after setup.
eval: setup real-models
	@$(MAKE) --no-print-directory eval-inner

bench: setup
	@$(MAKE) --no-print-directory bench-inner

# The linker and CPU flags a build from here uses (the same for every target after setup).
rustflags: setup
	@$(MAKE) --no-print-directory -s rustflags-inner

rustflags-inner:
	@echo "$$CARGO_TARGET_X86_64_UNKNOWN_LINUX_GNU_RUSTFLAGS"

eval-inner:
	$(CARGO) build --locked --workspace
	$(QUARRY_BIN) --models-dir $(QUARRY_TEST_DATA)/models eval retrieval --beir $(QUARRY_TEST_DATA)/beir/scifact --json
	$(QUARRY_BIN) --models-dir $(QUARRY_TEST_DATA)/models eval qa --evidence --calibrate --json \
		--squad $(QUARRY_TEST_DATA)/squad2/squad2_dev_shared_questions.jsonl
	@# Generated answers with the real Qwen2.5-Coder-0.5B-Instruct file (about an hour on 2 cores).
	$(QUARRY_BIN) --models-dir $(QUARRY_TEST_DATA)/models eval qa --json \
		--model $(REAL_MODELS)/qwen2.5-coder-0.5b-instruct-q4_k_m.gguf \
		--squad $(QUARRY_TEST_DATA)/squad2/squad2_dev_shared_questions.jsonl
	$(QUARRY_BIN) --models-dir $(QUARRY_TEST_DATA)/models eval qa --json \
		--model $(REAL_MODELS)/qwen2.5-coder-0.5b-instruct-q4_k_m.gguf \
		--squad $(QUARRY_TEST_DATA)/xquad/xquad_de_dev_questions.jsonl

bench-inner:
	$(CARGO) build --locked --workspace
	$(QUARRY_BIN) --models-dir $(QUARRY_TEST_DATA)/models bench embed
	$(QUARRY_BIN) bench search
	@# Generation speed on a random-weight GGUF in Qwen2.5-0.5B's shape (written once, ~3 min).
	test -f $(BENCH_MODEL) || (mkdir -p $(dir $(BENCH_MODEL)) && $(QUARRY_BIN) bench checkpoint \
		--shape qwen2.5-0.5b --quant q4_k_m --out $(BENCH_MODEL) \
		--tokenizer $(QUARRY_TEST_DATA)/models/smollm2-135m-instruct-tokenizer/tokenizer.json)
	$(QUARRY_BIN) bench generate --model $(BENCH_MODEL) --threads 1,2

run: setup
	@$(MAKE) --no-print-directory run-inner

# The installers: an optimised build (the release profile) bundled as a .deb and an AppImage by
# the Tauri bundler (@tauri-apps/cli from npm), with the desktop entry and icons; the .deb names
# the Debian packages OCR and PDF repair need, the AppImage carries GTK and WebKit. `make
# dist-check` installs the .deb on this machine (apt) and launches it, then the AppImage, under
# Xvfb with a fresh home: launch-to-window time and a screenshot of each.
DEB_DIR = $(CARGO_TARGET_DIR)/release/bundle/deb
APPIMAGE_DIR = $(CARGO_TARGET_DIR)/release/bundle/appimage
# Tauri's AppImage bundler fetches linuxdeploy from GitHub unless its tool cache has it:
# scripts/appimage-tools.sh fills this cache from a pinned PyPI wheel.
APPIMAGE_TOOLS = $(HOME)/.cache/quarry/appimage-tools
dist: setup
	@$(MAKE) --no-print-directory dist-inner

dist-inner: ui
	ui/node_modules/.bin/tauri build --no-bundle --ci
	@# The release profile keeps line tables for profiling (a 1.5 GB binary): the packages get the
	@# binary stripped (260 MB, most of it LanceDB/DataFusion/Arrow code). (Stripping through the
	@# profile instead would rebuild every crate.)
	strip -s $(CARGO_TARGET_DIR)/release/quarry-desktop
	scripts/appimage-tools.sh $(APPIMAGE_TOOLS)
	XDG_CACHE_HOME=$(APPIMAGE_TOOLS) ui/node_modules/.bin/tauri bundle --bundles deb,appimage --ci
	@ls -l $(DEB_DIR)/*.deb $(APPIMAGE_DIR)/*.AppImage

dist-check: dist
	@$(MAKE) --no-print-directory dist-check-inner

dist-check-inner:
	$(if $(filter root,$(shell whoami)),,sudo) apt-get install -y --reinstall $$(ls -t $(DEB_DIR)/*.deb | head -1)
	home=$$(mktemp -d) && trap 'rm -rf "$$home"' EXIT && HOME=$$home XDG_DATA_HOME=$$home/.local/share \
		QUARRY_TEST_DATA= scripts/window-check.sh /usr/bin/quarry-desktop \
		test-artifacts/screenshots/installed-deb-window.png
	@# The AppImage the same way. Containers have no FUSE to mount it, so it unpacks itself into a
	@# temporary folder on every start (APPIMAGE_EXTRACT_AND_RUN), which is most of its launch time.
	home=$$(mktemp -d) && trap 'rm -rf "$$home"' EXIT && HOME=$$home XDG_DATA_HOME=$$home/.local/share \
		QUARRY_TEST_DATA= APPIMAGE_EXTRACT_AND_RUN=1 TMPDIR=$$home \
		scripts/window-check.sh $$(ls -t $(APPIMAGE_DIR)/*.AppImage | head -1) \
		test-artifacts/screenshots/appimage-window.png

test: setup
	@$(MAKE) --no-print-directory test-inner

setup:
	@./scripts/setup.sh

ui:
	cd ui && npm run build

check-fmt:
	$(CARGO) fmt --all -- --check

# --workspace everywhere: one feature resolution for engine and shell, so dependencies build once.
lint: ui
	$(CARGO) clippy --locked --workspace --all-targets -- -D warnings

TEST_LOG = $(CARGO_TARGET_DIR)/quarry-test.log

# The real generator checkpoints (../shared/data/fetch-real-models.sh, ~750 MB the first time)
# and the real multilingual-e5-small folder (../shared/data/fetch-multilingual-e5.sh, ~95 MB of
# downloads), cached under ~/.cache/quarry/real-models: the real-model tests use them.
REAL_MODELS ?= $(HOME)/.cache/quarry/real-models
export QUARRY_REAL_MODELS ?= $(REAL_MODELS)
real-models:
	@if [ -f $(QUARRY_TEST_DATA)/fetch-real-models.sh ]; then \
		bash $(QUARRY_TEST_DATA)/fetch-real-models.sh $(REAL_MODELS) >/dev/null; \
	else echo "no $(QUARRY_TEST_DATA)/fetch-real-models.sh: the real-model tests will be SKIPPED"; fi
	@if [ -f $(QUARRY_TEST_DATA)/fetch-multilingual-e5.sh ]; then \
		bash $(QUARRY_TEST_DATA)/fetch-multilingual-e5.sh $(REAL_MODELS)/multilingual-e5-small-q4dq >/dev/null; \
	else echo "no $(QUARRY_TEST_DATA)/fetch-multilingual-e5.sh: the multilingual tests will be SKIPPED"; fi

# The official MCP Python client (PyPI `mcp`) in a throwaway virtualenv, for tests/mcp.rs: a
# reference tool, never a dependency of Quarry.
MCP_VENV ?= $(HOME)/.cache/quarry/venvs/mcp
export QUARRY_MCP_PYTHON ?= $(MCP_VENV)/bin/python
mcp-client:
	@if [ ! -x $(MCP_VENV)/bin/python ] || ! $(MCP_VENV)/bin/python -c 'import mcp' 2>/dev/null; then \
		echo "installing the MCP client (pip install mcp) into $(MCP_VENV)"; \
		/usr/bin/python3 -m venv $(MCP_VENV) && $(MCP_VENV)/bin/pip install --quiet 'mcp==1.30.0'; \
	fi

# llama-cpp-python's OpenAI-compatible server in a throwaway virtualenv, for
# tests/answer_server.rs: a reference server, never a dependency of Quarry. The first install
# compiles llama.cpp (a few minutes on 2 cores; pip caches the wheel).
LLAMA_SERVER_VENV ?= $(HOME)/.cache/quarry/venvs/llama-server
export QUARRY_LLAMA_SERVER_PYTHON ?= $(LLAMA_SERVER_VENV)/bin/python
llama-server:
	@if [ ! -f $(QUARRY_TEST_DATA)/fetch-real-models.sh ]; then \
		echo "no real models to serve: tests/answer_server.rs will be SKIPPED"; \
	elif [ ! -x $(LLAMA_SERVER_VENV)/bin/python ] || ! $(LLAMA_SERVER_VENV)/bin/python -c 'import llama_cpp.server.app' 2>/dev/null; then \
		echo "installing llama-cpp-python's server into $(LLAMA_SERVER_VENV) (builds llama.cpp the first time)"; \
		/usr/bin/python3 -m venv $(LLAMA_SERVER_VENV) && CMAKE_ARGS="-DGGML_NATIVE=OFF" \
			$(LLAMA_SERVER_VENV)/bin/pip install --quiet 'llama-cpp-python[server]==0.3.36'; \
	fi

# moto's S3 server (PyPI `moto[server]`, with boto3) in a throwaway virtualenv, for
# tests/remote_library.rs: a real S3-compatible server on loopback with the conditional writes
# (If-None-Match, If-Match) the writer lease and LanceDB's commits use; never a dependency of Quarry.
S3_VENV ?= $(HOME)/.cache/quarry/venvs/s3
export QUARRY_S3_SERVER_PYTHON ?= $(S3_VENV)/bin/python
s3-server:
	@if [ ! -x $(S3_VENV)/bin/python ] || ! $(S3_VENV)/bin/python -c 'import moto.server, boto3' 2>/dev/null; then \
		echo "installing moto's S3 server (pip install moto[server]) into $(S3_VENV)"; \
		/usr/bin/python3 -m venv $(S3_VENV) && $(S3_VENV)/bin/pip install --quiet 'moto[server]==5.2.6'; \
	fi

unit: ui real-models mcp-client llama-server s3-server
	@mkdir -p $(CARGO_TARGET_DIR)
	set -o pipefail; $(CARGO) test --locked --workspace 2>&1 | tee $(TEST_LOG)

desktop: ui
	$(CARGO) build --locked --workspace

test-inner: check-fmt ui lint unit desktop
	cd ui && npm run check
	@# The web UI in headless Chromium against `quarry serve` (Playwright; screenshots in test-artifacts/).
	cd ui && QUARRY_BIN=$(QUARRY_BIN) QUARRY_TEST_DATA=$(QUARRY_TEST_DATA) npm run e2e
	@# The desktop window under Xvfb: launch time, a non-blank screenshot, the library loaded over IPC.
	QUARRY_TEST_DATA=$(QUARRY_TEST_DATA) scripts/window-check.sh $(DESKTOP_BIN) test-artifacts/screenshots/desktop-window.png
	@awk '/^test result:/ { p += $$4; f += $$6 } END { printf "tests: %d passed, %d failed\n", p, f }' $(TEST_LOG)

# The models the first window needs, installed through the same sha256-checked path a user
# takes (`quarry models pull`) into the app's models folder: the English and the multilingual
# embedder (a new library takes the multilingual one, for German and English documents) and a
# small generator. Where this machine has mirrors (the shared test data, the real-model cache) they
# are the source; elsewhere the files come from huggingface.co. Installed and intact models
# are kept. `make run QUARRY_SKIP_MODELS=1` skips this (text search and quotes only).
APP_DATA_DIR ?= $(or $(QUARRY_DATA_DIR),$(HOME)/.local/share/quarry)
APP_MODELS_DIR ?= $(or $(QUARRY_MODELS_DIR),$(APP_DATA_DIR)/models)
EMBEDDER_MIRROR = $(QUARRY_TEST_DATA)/models/all-MiniLM-L6-v2
# The multilingual embedder new libraries use when it is installed (German and English in one
# library), built by ../shared/data/fetch-multilingual-e5.sh (real-models).
E5_MIRROR = $(REAL_MODELS)/multilingual-e5-small-q4dq
GENERATOR_FILE = qwen2.5-coder-0.5b-instruct-q4_k_m.gguf
app-models: real-models desktop
	@if [ -n "$(QUARRY_SKIP_MODELS)" ]; then echo "QUARRY_SKIP_MODELS: no models installed"; else \
		set -e; \
		from=$$([ -d $(EMBEDDER_MIRROR) ] && echo "--from $(EMBEDDER_MIRROR)" || true); \
		$(QUARRY_BIN) --quiet --models-dir $(APP_MODELS_DIR) models pull sentence-transformers/all-MiniLM-L6-v2 $$from; \
		from=$$([ -d $(E5_MIRROR) ] && echo "--from $(E5_MIRROR)" || true); \
		$(QUARRY_BIN) --quiet --models-dir $(APP_MODELS_DIR) models pull intfloat/multilingual-e5-small $$from; \
		from=$$([ -f $(REAL_MODELS)/$(GENERATOR_FILE) ] && echo "--from $(REAL_MODELS)" || true); \
		$(QUARRY_BIN) --quiet --models-dir $(APP_MODELS_DIR) models pull Qwen/Qwen2.5-Coder-0.5B-Instruct-GGUF $$from; \
	fi

run-inner: ui desktop app-models
	$(DESKTOP_BIN)
