# The kit's two everyday commands. Each sets up what it needs on a fresh machine.
#   make demo   the instructor's pipeline on a demo class (release, collect, grade, feedback, export)
#   make test   every test (the real-data ones included); `make quick` is the quick loop (below)
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
DATA   := data/cifar-10-batches-py
SHARED_CIFAR := ../shared/cifar10/build.py

.PHONY: setup demo test quick data sandbox services bench accuracy clean

setup: $(VENV)/.installed

# Both distributions of the checkout, editable: the student package a2lib and the instructor kit.
$(VENV)/.installed: pyproject.toml a2lib/pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip uninstall -q -y a2-course-kit 2>/dev/null || true  # the former single distribution
	$(PY) -m pip install -q -e ./a2lib -e '.[dev,postgres]'
	touch $@

# CIFAR-10 for the real-data tests: rebuilt from a local copy where one exists, else downloaded.
data: $(DATA)/batches.meta
$(DATA)/batches.meta: | $(VENV)/.installed
	if [ -f $(SHARED_CIFAR) ]; then $(PY) $(SHARED_CIFAR) data; else $(PY) -m a2lib download --data data; fi

# The grader runs student code inside bubblewrap; install it where we may (Debian, as root).
sandbox:
	@command -v bwrap >/dev/null || { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null && \
	  (apt-get update -qq && apt-get install -y -qq bubblewrap >/dev/null); } || \
	  { echo "bubblewrap (bwrap) is missing: install it (Debian/Ubuntu: apt-get install bubblewrap)"; exit 1; }

# The tests' real services: a PostgreSQL server (gradebook tests) and headless Chromium (browser tests,
# driven by Playwright from the dev extra). Installed where missing and we may (Debian, as root);
# elsewhere the tests that need them say so and are skipped.
services:
	@missing=""; ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || missing="$$missing postgresql"; \
	  command -v chromium >/dev/null || missing="$$missing chromium fonts-dejavu-core"; \
	  [ -z "$$missing" ] && exit 0; \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; \
	  else echo "Not installed:$$missing; as root on Debian: apt-get install$$missing (the tests need them)"; fi

demo: setup sandbox data
	$(VENV)/bin/a2kit demo

# Two pytest processes side by side, which alone keep about half of the 2 cores busy each: the corpus grading
# (with the tests that read its grades) and the two longest end-to-end tests, and the rest (docs/maintainers.md).
BESIDE := tests/test_corpus.py tests/test_notebooks.py tests/test_release_fresh_venv.py tests/test_docs.py
test: setup sandbox services data
	@log=$$(mktemp); $(PY) -m pytest -p no:cacheprovider $(BESIDE) > $$log 2>&1 & corpus=$$!; \
	  $(PY) -m pytest $(addprefix --ignore=,$(BESIDE)); rest=$$?; \
	  wait $$corpus; corpus_status=$$?; echo; echo "== $(BESIDE) (run beside the rest) =="; cat $$log; \
	  rm -f $$log; [ $$rest -eq 0 ] && [ $$corpus_status -eq 0 ]

# The quick loop: no real data, no test that takes minutes, no real service (PostgreSQL, Dask cluster, Chromium).
quick: setup sandbox
	$(PY) -m pytest -m "not slow and not service and not browser"

# Speed benchmarks (minutes); each writes bench/results/NAME.json and prints its table.
BENCHMARKS := bench/numpy_conv.py bench/train_speed.py bench/grading.py
bench: setup sandbox data
	for b in $(BENCHMARKS); do $(PY) $$b || exit 1; done

# The reference solution's accuracy (docs/benchmarks.md): SCHEDULE=fast (minutes), medium (about an hour on a
# 2-core CPU), full (GPU).
SCHEDULE ?= medium
accuracy: setup data
	$(PY) bench/accuracy.py --schedule $(SCHEDULE)

clean:
	rm -rf runs course .pytest_cache
