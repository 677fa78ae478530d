# The README's two commands: `make demo` and `make test`. Both set themselves up on a fresh machine
# that has only python3 and pip (and, for the full matrix, the pyenv interpreters 3.10 to 3.13).
PYTHON ?= python3
TOOLS := .venv-tools
VENV := .venv
TOX := $(TOOLS)/bin/tox
export UV_PYTHON_DOWNLOADS := never
# pyenv's shims answer python3.10 ... python3.13 through .python-version; the interpreters' own
# directories go at the end of PATH as a fallback for an environment without the shims.
empty :=
space := $(empty) $(empty)
PYENV_BINS := $(subst $(space),:,$(wildcard $(HOME)/.pyenv/versions/3.1[0-3].*/bin))
TEST_PATH := $(CURDIR)/$(TOOLS)/bin:$(PATH)$(if $(PYENV_BINS),:$(PYENV_BINS))

.PHONY: demo test test-fast lint type docs bench clean

$(TOX):
	$(PYTHON) -m venv $(TOOLS)
	$(TOOLS)/bin/python -m pip install --quiet --upgrade pip
	$(TOOLS)/bin/python -m pip install --quiet "tox>=4.22" "tox-uv>=1.11" "uv>=0.4"

$(VENV)/bin/voicewire:
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/python -m pip install --quiet --upgrade pip
	$(VENV)/bin/python -m pip install --quiet "./core[cli]" ./plugins/openai_ws ./plugins/twilio

demo: $(VENV)/bin/voicewire
	$(VENV)/bin/python -m pip install --quiet --force-reinstall --no-deps "./core" ./plugins/openai_ws ./plugins/twilio
	$(VENV)/bin/voicewire demo

# Every tox env (lint, type, py310..py313, docs, pkg). Outside CI a missing interpreter is skipped
# with a notice; in CI (CI=true) it fails the run.
test: $(TOX)
	PATH="$(TEST_PATH)" VOICEWIRE_SKIP_MISSING=$(if $(CI),false,true) $(TOX) run

test-fast: $(TOX)
	PATH="$(TEST_PATH)" $(TOX) run -e lint,type,py311

bench: $(VENV)/bin/voicewire
	$(VENV)/bin/python bench/audio.py

docs: $(TOX)
	PATH="$(TEST_PATH)" $(TOX) run -e docs

clean:
	rm -rf $(TOOLS) $(VENV) .tox dist site
