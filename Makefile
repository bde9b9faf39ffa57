# wanhe — the two commands a new user needs first:
#   make demo   set everything up, build the demo scene, render it (tiles, denoise, previews)
#   make test   install the Debian packages the suite needs (scripts/system-packages.sh), set up
#               with test extras and run the whole suite (.ci/run is just this)

PYTHON ?= python3.11
# pytest-xdist workers: heavy modules run in two lanes, light ones fill the rest (tests/conftest.py)
PYTEST_WORKERS ?= 3
PYTEST_PARALLEL := -n $(PYTEST_WORKERS) --dist loadgroup
VENV   := .venv
PY     := $(VENV)/bin/python
WANHE  := $(VENV)/bin/wanhe
DEMO   := examples/demo.blend
OUT    ?= out/demo

.PHONY: demo test test-fast lint bench setup setup-test system-packages test-services clean

$(VENV)/.installed: pyproject.toml
	@command -v $(PYTHON) >/dev/null || { echo "wanhe needs Python 3.11 (the bpy wheel is built for it): set PYTHON=/path/to/python3.11"; exit 2; }
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	@# the reference OpenJD runner moved to a virtualenv of its own (test-services): one left
	@# here from before would clash with openjd-model 0.14
	$(PY) -m pip uninstall -qq -y openjd-cli
	$(PY) -m pip install -q -e .
	@# an editable install leaves wanhe uncompiled (a wheel's install compiles it): without
	@# bytecode on disk, a shell with PYTHONDONTWRITEBYTECODE compiles ~200 modules on every
	@# command (~0.1 s before `wanhe render` can start Blender)
	$(PY) -m compileall -q src/wanhe
	touch $@

$(VENV)/.installed-test: $(VENV)/.installed
	$(PY) -m pip install -q -e '.[test]'
	touch $@

setup: $(VENV)/.installed

setup-test: $(VENV)/.installed-test

# espeak-ng, rubberband-cli, ffmpeg, chromium, PostgreSQL, bubblewrap, redis-server: installed when missing
# (as root or with sudo -n), else one line naming the apt-get command; instant when present
system-packages:
	scripts/system-packages.sh

$(DEMO): examples/make_scenes.py $(VENV)/.installed
	$(PY) examples/make_scenes.py demo $(DEMO)

demo: $(DEMO)
	$(WANHE) render $(DEMO) --frames 1-4 --tiles 2x2 --denoise --video \
		--output $(OUT)/frame_#### --report-json $(OUT)/report.json
	@echo "frames, previews, preview video and report: $(OUT)/"

# the Kitsu server the publish tests start (Zou) and the reference OpenJD runner the OpenJD
# tests compare with (openjd-cli 0.8, which needs openjd-model 0.13), each in a virtualenv of
# its own under ~/.cache/wanhe-test: built once from PyPI, a few minutes; instant after
test-services: $(VENV)/.installed-test
	$(PY) -c 'from tests.publish._zou import zou_venv; print("Kitsu test server (Zou):", zou_venv())'
	$(PY) -c 'from tests.openjd._reference import reference_venv as v; print("openjd-cli:", v())'

test: system-packages $(VENV)/.installed-test test-services
	$(VENV)/bin/ruff check src tests bench examples
	$(VENV)/bin/mypy
	@# the `isolated` tests (a fake multi-node Ray cluster) in a pytest process of their own,
	@# beside the rest: they mostly wait on nodes starting, which the 2 cores have room for
	@isolated_log=$$(mktemp); \
	$(VENV)/bin/pytest -q -m isolated >$$isolated_log 2>&1 & isolated=$$!; \
	$(VENV)/bin/pytest -q --durations=30 $(PYTEST_PARALLEL) -m "not isolated"; rest=$$?; \
	wait $$isolated; iso=$$?; \
	echo "--- the isolated tests (their own pytest process):"; cat $$isolated_log; \
	rm -f $$isolated_log; test $$rest -eq 0 && test $$iso -eq 0

test-fast: system-packages $(VENV)/.installed-test
	$(VENV)/bin/pytest -q $(PYTEST_PARALLEL) -m "not slow and not browser"

lint: $(VENV)/.installed-test
	$(VENV)/bin/ruff check src tests bench examples
	$(VENV)/bin/mypy

bench: $(VENV)/.installed-test
	$(PY) bench/render_overhead.py
	$(PY) bench/dispatch.py
	$(PY) bench/retry.py
	$(PY) bench/denoise.py
	$(PY) bench/simulate.py
	$(PY) bench/generate.py

clean:
	rm -rf $(VENV) out examples/*.blend

# the Blender add-on's extension zip (install: Preferences › Get Extensions › Install from Disk)
.PHONY: addon
addon: $(VENV)/.installed
	$(WANHE) addon build --output dist
