# The two set-up commands of README.md: `make demo` and `make test`.
VENV ?= .venv
PYTHON ?= python3
STAMP := $(VENV)/.installed

.PHONY: demo test lint bench

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --upgrade pip
	$(VENV)/bin/pip install --quiet -e '.[test]'
	touch $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/probeboard demo

lint: $(STAMP)
	$(VENV)/bin/ruff check .

# pytest exits 5 when it collected nothing: that is a broken suite, not a pass.
test: lint
	$(VENV)/bin/pytest -q; rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "pytest collected no tests" >&2; exit 1; fi; exit $$rc

bench: $(STAMP)
	$(VENV)/bin/python benchmarks/bench_evaluate.py
