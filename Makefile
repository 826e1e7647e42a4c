# The two commands of the README: `make demo` and `make test`. Both create
# .venv/ on first use. Where the CPU wheel torch==2.13.0 lies on local disk
# (pip's find-links, as on our machines and CI) it is installed first, so
# nothing pulls a multi-GB CUDA build; elsewhere a normal torch>=2.4.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
TORCH_LOCAL ?= torch==2.13.0

.PHONY: demo test quick lint bench clean

# The venv's bin/ holds the `rnnkit` command; the last line says how to get it on PATH.
demo: $(VENV)
	$(BIN)/python -m rnnkit demo
	@echo "rnnkit is installed in $(BIN)/: run \`source $(BIN)/activate\` to type \`rnnkit ...\` (e.g. rnnkit --help)"

test: $(VENV)
	$(BIN)/ruff check src tests benchmarks examples
	$(BIN)/python -m pytest -q

# Everything but the tests marked slow, for the edit-test loop.
quick: $(VENV)
	$(BIN)/python -m pytest -q -m "not slow"

bench: $(VENV)
	$(BIN)/python benchmarks/bench_rnn.py

$(VENV): pyproject.toml $(wildcard setup.py) $(wildcard csrc/*)
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q "setuptools>=64" wheel
	if $(BIN)/pip install -q --dry-run --no-index --no-deps "$(TORCH_LOCAL)" >/dev/null 2>&1; then \
		$(BIN)/pip install -q "$(TORCH_LOCAL)"; \
	else \
		$(BIN)/pip install -q "torch>=2.4"; \
	fi
	$(BIN)/pip install -q --no-build-isolation -e ".[test]"
	touch $(VENV)

clean:
	rm -rf $(VENV) build src/*.egg-info src/rnnkit/*.so
