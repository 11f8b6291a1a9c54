# The two commands of the README: `make demo` (main job on the embedded default) and `make test`.
VENV ?= .venv
BIN := $(VENV)/bin
RUN ?= runs/demo

.PHONY: setup demo test test-slow reproduce bench clean
setup:
	bash scripts/setup.sh

demo: setup
	$(BIN)/mmser demo --out $(RUN)

test: setup
	$(BIN)/python -m pytest -q

test-slow: setup
	$(BIN)/python -m pytest -q -m slow

reproduce: setup
	bash scripts/reproduce_results.sh

bench: setup
	bash scripts/bench.sh

clean:
	rm -rf runs cache .pytest_cache
