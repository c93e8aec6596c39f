# The two commands of the README: `make demo` (set up, then run the demo on the embedded models)
# and `make test` (set up, then run the tests). Both work on a fresh CPU-only machine.
PY ?= python3
VENV ?= .venv
TORCH ?= 2.13.0
BIN := $(VENV)/bin

.PHONY: setup demo test llama-server lint client-test client-package e2e-vscode e2e-vscode-test e2e-nvim e2e-emacs clean

setup: $(VENV)/.installed

# torch first, pinned: a bare `torch` requirement with no torch installed would pull the CUDA build
$(VENV)/.installed: pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/python -c "import torch" 2>/dev/null || $(BIN)/pip install -q "torch==$(TORCH)"
	$(BIN)/pip install -q -e ".[dev]"
	touch $@

demo: setup
	$(BIN)/speclsp demo

# (the real-vocabulary test fetches its 0.7 MB GGUF vocabulary into .tools/ on first use)
test: setup
	$(BIN)/python -m pytest -q -p no:cacheprovider -m "not editor and not llama_server"

# a real llama.cpp llama-server (CPU), built once into .tools/llama-server by
# scripts/install_llama_server.sh, running our token-id prompts on the demo pair
llama-server: setup
	PYTHON=$(abspath $(BIN))/python bash scripts/install_llama_server.sh >/dev/null
	$(BIN)/python -m pytest -q -p no:cacheprovider -m llama_server tests/engine/test_llama_server.py -s

# real editors, headless: Neovim 0.12 (installed by scripts/install_neovim.sh) and VS Code (code-server)
e2e-nvim: setup
	$(BIN)/python -m pytest -q -p no:cacheprovider -m editor tests/editors/test_editor_neovim.py -s

# the VS Code extension: type-check, unit tests (no VS Code needed), and the .vsix
client-test:
	cd vscode-client && npm ci --no-audit --no-fund && npm test

client-package: client-test
	cd vscode-client && npm run package

e2e-emacs: setup
	$(BIN)/python -m pytest -q -p no:cacheprovider -m editor tests/editors/test_editor_emacs.py -s

# VS Code (code-server + chromium) typed into like a person; log and screenshots in artifacts/vscode/
# (SPECLSP_UPDATE_RUNS=1: also docs/editor-runs/). The server runs this checkout's code.
e2e-vscode: setup
	export SPECLSP_PYTHON="$${SPECLSP_PYTHON:-$(abspath $(BIN))/python}" && \
	bash tests/editors/vscode/setup.sh && node tests/editors/vscode/run.mjs

# the VS Code harness's own judgement (trace replay, verdicts) on made-up logs: no editor, no npm install
e2e-vscode-test:
	node --test tests/editors/vscode/test/

lint: setup
	$(BIN)/ruff check .

clean:
	rm -rf $(VENV) build *.egg-info
