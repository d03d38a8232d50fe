# The two commands a newcomer needs:
#   make demo   set up, then annotate a sample folder of videos end to end
#   make test   set up, then run the whole test suite (what CI runs)
VENV ?= .venv
PY := $(VENV)/bin/python

.PHONY: setup demo test test-fast

setup:
	bash scripts/setup.sh

demo: setup
	$(PY) -m annotate.demo --workdir demo

test: setup
	$(PY) -m pytest

# Everything except the slow real-model and multi-process tests.
test-fast:
	$(PY) -m pytest -m "not slow"
