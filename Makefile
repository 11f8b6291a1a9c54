# The two commands of the README: `make demo` (main job on the embedded default) and `make test`.
VENV ?= .venv
BIN := $(VENV)/bin
RUN ?= runs/demo

.PHONY: setup demo test test-slow clean
setup:
	bash scripts/setup.sh

demo: setup
	$(BIN)/mmser demo --out $(RUN)

test: setup
	$(BIN)/python -m pytest -q

test-slow: setup
	$(BIN)/python -m pytest -q -m slow

clean:
	rm -rf runs cache .pytest_cache
