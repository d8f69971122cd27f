# Two commands set ssgan up from nothing: `make demo` and `make test` (see README.md).
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
DEMO_DIR ?= outputs/demo

.PHONY: install demo test bench-digits bench-fashion clean

# A virtual environment with ssgan installed (editable) and the test tools.
$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	touch $@

install: $(VENV)/.installed

# Trains SSGAN and the supervised baseline on the embedded digits data (50 labels), prints both test accuracies.
demo: install
	rm -rf $(DEMO_DIR)
	$(BIN)/ssgan-train experiment=digits_50 trainer.enable_progress_bar=false hydra.run.dir=$(DEMO_DIR)/ssgan
	$(BIN)/ssgan-train model=supervised trainer.enable_progress_bar=false hydra.run.dir=$(DEMO_DIR)/supervised
	$(BIN)/python scripts/summarize_runs.py $(DEMO_DIR)

test: install
	$(BIN)/python -m pytest -q -n auto --maxprocesses 4 --dist worksteal

# The measurements behind docs/benchmarks.md.
bench-digits: install
	$(BIN)/python scripts/bench_digits.py

bench-fashion: install
	$(BIN)/python scripts/bench_fashion_mnist.py

clean:
	rm -rf $(VENV) outputs multirun .cache .pytest_cache
