# Quick start:  make demo  (set up, lint the fixtures, show the fixes)
#               make test  (set up with test deps, run every check)
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test lint format fuzz readme clean

$(STAMP): pyproject.toml requirements-dev.txt constraints-dev.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -r requirements-dev.txt -e .
	touch $(STAMP)

demo: $(STAMP)
	@echo "== aiperf-lint check fixtures/ (every before.py should be reported) =="
	$(BIN)/aiperf-lint check fixtures/ || true
	@echo
	@echo "== aiperf-lint check --diff fixtures/ (the safe fixes, nothing written) =="
	$(BIN)/aiperf-lint check --diff fixtures/ || true

lint: $(STAMP)
	$(BIN)/ruff check aiperf_lint rules tests benchmarks
	$(BIN)/ruff format --check aiperf_lint rules tests benchmarks

format: $(STAMP)
	$(BIN)/ruff format aiperf_lint rules tests benchmarks
	$(BIN)/ruff check --fix aiperf_lint rules tests benchmarks

test: $(STAMP) lint
	$(BIN)/python -m pytest
	@echo "== verify: every fixture pair at small size (machinery + equivalence, no timing verdicts) =="
	$(BIN)/aiperf-lint verify --check-only --size small --device cpu

# `make fuzz FUZZ_EXAMPLES=500` for a shorter run; CI (make test) runs 40 per property.
FUZZ_EXAMPLES ?= 2000
fuzz: $(STAMP)
	AIPERF_FUZZ_EXAMPLES=$(FUZZ_EXAMPLES) $(BIN)/python -m pytest tests/test_fuzz.py -p no:cacheprovider

readme: $(STAMP)
	$(BIN)/python -m aiperf_lint.docs

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache .hypothesis .aiperf_lint_cache
