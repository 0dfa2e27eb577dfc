# Tanpuhui: `make serve` and `make test` are all a newcomer needs (Python 3.11+ on PATH).
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: serve test bench schema demo clean

$(BIN)/.installed: pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Python 3.11+ is required")'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	@touch $@

serve: $(BIN)/.installed  ## start the API on the embedded PostgreSQL + Redis, GraphiQL at :8000/graphql
	$(BIN)/tanpuhui serve

test: $(BIN)/.installed  ## run the whole suite against real embedded servers
	$(BIN)/python -m pytest

bench: $(BIN)/.installed  ## run the benchmarks and print their table
	$(BIN)/python -m bench

schema: $(BIN)/.installed  ## rewrite frontend_contracts/schema.graphql after a deliberate schema change
	$(BIN)/tanpuhui schema

demo: $(BIN)/.installed  ## load demo accounts into the embedded database
	$(BIN)/tanpuhui demo

clean:
	rm -rf $(VENV) .tanpuhui
