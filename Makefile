# Two commands from a fresh clone: `make demo` and `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp

.PHONY: demo test test-fast bench bench-smoke screenshots deps test-deps system-deps system-test-deps lint clean

## demo: set everything up and open the app on a SoftHSM demo token
demo: deps
	$(BIN)/tui-csr demo

## test: set everything up and run the whole suite
test: test-deps
	$(BIN)/python -m pytest -q -n 2 --dist loadgroup -p no:cacheprovider

test-fast: test-deps
	$(BIN)/python -m pytest -q -n 2 --dist loadgroup -m "not slow"

## bench: benchmarks against the peer tools (not part of `make test`)
bench: test-deps
	$(BIN)/python -m bench

## bench-smoke: a few runs of every figure (CI: proves the benchmark still runs; prints every figure)
bench-smoke: test-deps
	$(BIN)/python -m bench --smoke

## screenshots: the real app on a throwaway token, an SVG (and PNG) of each screen
screenshots: deps
	$(BIN)/python scripts/screenshots.py screenshots

## lint: ruff, the import-layer contracts (import-linter) and mypy, all at zero findings
lint: deps
	$(BIN)/ruff check tui_csr tests bench scripts
	$(BIN)/lint-imports --no-cache
	$(BIN)/mypy

deps: system-deps $(STAMP)

## test-deps: deps, plus the real back ends the suite and the bench run (tpm2-pkcs11 over swtpm,
## p11-kit remoting, PostgreSQL)
test-deps: system-test-deps $(STAMP)

system-deps:
	@scripts/system-deps.sh

system-test-deps:
	@scripts/system-deps.sh --test

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --disable-pip-version-check \
		--config-settings editable_mode=compat -e '.[test]'
	@touch $(STAMP)

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .hypothesis
