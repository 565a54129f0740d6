# Everything a fresh machine needs, from nothing: `make demo`, `make test`.
SHELL := /bin/bash
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip
STAMP := $(VENV)/.deps-installed
PY_DEPS := maturin==1.16.0 numpy cloudpickle pytest typing_extensions ruff mypy "moto[server]" redis parsl pyyaml distributed globus-compute-sdk ziglang proxystore
# The demo plots (ProxyStore, which it measures in the same run, is a test dependency: the
# tests run byref.proxystore.Connector under ProxyStore's own Store).
DEMO_DEPS := matplotlib
DEMO_STAMP := $(VENV)/.demo-deps-installed
# The docs site: mkdocs-material, and mkdocstrings for the API reference from the docstrings.
DOCS_DEPS := mkdocs-material "mkdocstrings[python]"
DOCS_STAMP := $(VENV)/.docs-deps-installed

.PHONY: demo test build wheel docs lint rust-test py-test fuzz bench wrapt-check clean

$(PY):
	python3 -m venv $(VENV)

# Real servers for the tests: redis-server from Debian, moto's S3 server from PyPI.
/usr/bin/redis-server:
	command -v redis-server >/dev/null || (apt-get update -qq && apt-get install -y -qq redis-server)

# strace counts the file store's metadata operations (tests/test_metadata_ops.py, the benches).
/usr/bin/strace:
	command -v strace >/dev/null || (apt-get update -qq && apt-get install -y -qq strace)

$(STAMP): $(PY) Makefile /usr/bin/redis-server /usr/bin/strace
	$(PIP) install --quiet --upgrade pip
	$(PIP) install --quiet $(PY_DEPS)
	touch $(STAMP)

$(DEMO_STAMP): $(STAMP)
	$(PIP) install --quiet $(DEMO_DEPS)
	touch $(DEMO_STAMP)

$(DOCS_STAMP): $(STAMP)
	$(PIP) install --quiet $(DOCS_DEPS)
	touch $(DOCS_STAMP)

# The docs site, into site/; --strict: a broken link or reference fails the build.
docs: $(DOCS_STAMP)
	NO_MKDOCS_2_WARNING=1 $(PY) -m mkdocs build --strict --quiet

# The extension, optimised (the release profile: LTO, one codegen unit), into the venv.
build: $(STAMP)
	VIRTUAL_ENV=$(CURDIR)/$(VENV) $(VENV)/bin/maturin develop --release --quiet

# The wheel users install: abi3, manylinux_2_28 (glibc 2.28: RHEL/Rocky 8 and later), linked
# against glibc 2.28 by zig (ziglang from PyPI), no debug info (the `dist` profile).
WHEEL_DIR := target/wheels
wheel: $(STAMP)
	rm -f $(WHEEL_DIR)/byref-*.whl
	PATH="$(CURDIR)/$(VENV)/bin:$$PATH" $(VENV)/bin/maturin build --quiet --profile dist \
		--zig --compatibility manylinux_2_28 --out $(WHEEL_DIR)
	@ls -l $(WHEEL_DIR)/byref-*.whl

# The main job, short: Parsl tasks with 100 KiB-100 MiB arguments on a local
# HighThroughputExecutor, inline pickling against byref (decorator and plugin) and ProxyStore;
# the full sweep is in `make bench`. Parsl's worker pool and interchange are scripts in the
# venv's bin directory, hence PATH.
demo: build $(DEMO_STAMP)
	PATH="$(CURDIR)/$(VENV)/bin:$$PATH" $(PY) benches/parsl_throughput.py --quick

# stubtest checks python/byref/_native.pyi against the built extension.
lint: build
	cargo fmt --all --check
	cargo clippy --workspace --all-targets --quiet -- -D warnings
	$(VENV)/bin/ruff check python tests benches
	$(VENV)/bin/ruff format --check python tests benches
	$(PY) -m mypy.stubtest byref._native --allowlist tests/stubtest-allowlist.txt

# byref-py has no Rust tests: it is tested through Python, by pytest.
rust-test: $(STAMP)
	PATH="$(CURDIR)/$(VENV)/bin:$$PATH" cargo test --workspace --exclude byref-py --quiet

# tests/test_wheel.py installs the wheel `make wheel` built into a clean venv.
py-test: build wheel
	PATH="$(CURDIR)/$(VENV)/bin:$$PATH" BYREF_WHEEL_DIR=$(CURDIR)/$(WHEEL_DIR) $(PY) -m pytest

# libFuzzer on every decoder of untrusted bytes (handles, object frames, wire headers), from
# the seed corpus in fuzz/corpus, FUZZ_SECONDS per target; what a run finds new goes to a
# scratch directory, never into the repository. Needs the nightly toolchain (cargo-fuzz is
# installed if missing); without it, says so and skips.
FUZZ_SECONDS ?= 300
FUZZ_TARGETS := handle frame wire
fuzz:
	@if ! rustup toolchain list 2>/dev/null | grep -q '^nightly'; then \
		echo "fuzz: skipped, no nightly Rust toolchain (rustup toolchain install nightly)"; exit 0; fi; \
	command -v cargo-fuzz >/dev/null || cargo install --quiet --locked cargo-fuzz; \
	cd fuzz && cargo +nightly fuzz build && \
	for target in $(FUZZ_TARGETS); do \
		scratch=$$(mktemp -d) && \
		cargo +nightly fuzz run $$target $$scratch corpus/$$target -- \
			-max_total_time=$(FUZZ_SECONDS) -print_final_stats=1 2>&1 | grep -E '^Done|ERROR|panicked|SUMMARY' ; \
		status=$${PIPESTATUS[0]}; rm -rf $$scratch; \
		[ $$status -eq 0 ] || { echo "fuzz: $$target failed (crash input in fuzz/artifacts/$$target)"; exit 1; }; \
	done

# A short fuzzing run is part of every test run; `make fuzz` runs longer.
test: lint docs rust-test py-test
	$(MAKE) fuzz FUZZ_SECONDS=30

# Criterion and the backend comparisons start their own redis-server, moto_server and daemon.
bench: build $(DEMO_STAMP)
	PATH="$(CURDIR)/$(VENV)/bin:$$PATH" cargo bench --workspace
	$(PY) benches/roundtrip.py
	PATH="$(CURDIR)/$(VENV)/bin:$$PATH" $(PY) benches/parsl_throughput.py
	PATH="$(CURDIR)/$(VENV)/bin:$$PATH" $(PY) benches/parsl_throughput.py --crossover
	PATH="$(CURDIR)/$(VENV)/bin:$$PATH" $(PY) benches/backends.py
	PATH="$(CURDIR)/$(VENV)/bin:$$PATH" $(PY) benches/quic.py
	PATH="$(CURDIR)/$(VENV)/bin:$$PATH" $(PY) benches/value_return.py
	PATH="$(CURDIR)/$(VENV)/bin:$$PATH" $(PY) benches/fanout.py
	PATH="$(CURDIR)/$(VENV)/bin:$$PATH" $(PY) benches/ls.py

# wrapt's own ObjectProxy tests against byref.Proxy (downloads wrapt's sdist from PyPI).
wrapt-check: build
	$(PY) tests/wrapt_check.py

clean:
	rm -rf $(VENV) target site
