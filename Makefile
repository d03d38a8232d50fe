# The two commands a newcomer needs:
#   make demo   set up, then annotate a sample folder of videos end to end
#   make test   set up, then run the whole test suite (what CI runs)
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.setup-done

LABEL_STUDIO_STAMP := .venv-labelstudio/.setup-done

.PHONY: setup label-studio demo test test-fast lint

# Set-up runs again only when its inputs change (or the environment is missing).
setup: $(STAMP)

$(STAMP): pyproject.toml scripts/setup.sh
	bash scripts/setup.sh
	touch $@

# Label Studio, for the labelling loop's end-to-end test only (its own environment: scripts/labelstudio.sh).
label-studio: $(LABEL_STUDIO_STAMP)

$(LABEL_STUDIO_STAMP): scripts/labelstudio.sh scripts/labelstudio-lock.txt
	bash scripts/labelstudio.sh
	touch $@

demo: setup
	$(PY) -m samples.demo --workdir demo

test: setup label-studio lint
	$(PY) -m pytest

# Everything except the slow real-model and multi-process tests.
test-fast: setup
	$(PY) -m pytest -m "not slow"

lint: setup
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
