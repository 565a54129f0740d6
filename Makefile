# Everything a fresh machine needs, from nothing: `make demo`, `make test`.
SHELL := /bin/bash
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip
# Python packages from PyPI (pip, no root): enough to build, run the demo, the docs.
PY_STAMP := $(VENV)/.deps-installed
# ... and the system programs the tests and benches run (apt-get: root).
STAMP := $(VENV)/.test-deps-installed
REDIS_SERVER := /usr/bin/redis-server
STRACE := /usr/bin/strace
PY_DEPS := maturin==1.16.0 numpy cloudpickle pytest pytest-xdist typing_extensions ruff mypy import-linter "moto[server]" redis parsl pyyaml distributed globus-compute-sdk ziglang proxystore
# The demo plots (ProxyStore, which it measures in the same run, is a test dependency: the
# tests run byref.proxystore.Connector under ProxyStore's own Store).
DEMO_DEPS := matplotlib
DEMO_STAMP := $(VENV)/.demo-deps-installed
# The docs site: mkdocs-material, and mkdocstrings for the API reference from the docstrings.
DOCS_DEPS := mkdocs-material "mkdocstrings[python]"
DOCS_STAMP := $(VENV)/.docs-deps-installed

.PHONY: demo test build wheel docs lint rust-test py-test fuzz bench wrapt-check clean \
	format-check import-cycles test-build test-fuzz test-fuzz-build fuzz-build stubtest

# Every process a `make` here starts carries this mark in its environment (children inherit
# it): `make test` ends by failing on any process of its run still alive (tests/strays.py).
export BYREF_TEST_RUN ?= $(shell od -An -N8 -tx1 /dev/urandom | tr -d ' \n')

$(PY):
	python3 -m venv $(VENV)

# Real servers for the tests: redis-server from Debian, moto's S3 server from PyPI.
$(REDIS_SERVER):
	command -v redis-server >/dev/null || (apt-get update -qq && apt-get install -y -qq redis-server)

# strace counts the file store's metadata operations (tests/test_metadata_ops.py, the benches).
$(STRACE):
	command -v strace >/dev/null || (apt-get update -qq && apt-get install -y -qq strace)

$(PY_STAMP): $(PY) Makefile
	$(PIP) install --quiet --upgrade pip
	$(PIP) install --quiet $(PY_DEPS)
	touch $(PY_STAMP)

$(STAMP): $(PY_STAMP) $(REDIS_SERVER) $(STRACE)
	touch $(STAMP)

$(DEMO_STAMP): $(PY_STAMP)
	$(PIP) install --quiet $(DEMO_DEPS)
	touch $(DEMO_STAMP)

$(DOCS_STAMP): $(PY_STAMP)
	$(PIP) install --quiet $(DOCS_DEPS)
	touch $(DOCS_STAMP)

# The docs site, into site/; --strict: a broken link or reference fails the build.
docs: $(DOCS_STAMP)
	NO_MKDOCS_2_WARNING=1 $(PY) -m mkdocs build --strict --quiet

# The extension, optimised (the release profile: LTO, one codegen unit), into the venv.
build: $(PY_STAMP)
	VIRTUAL_ENV=$(CURDIR)/$(VENV) $(VENV)/bin/maturin develop --release --quiet

# The wheel users install: abi3, manylinux_2_28 (glibc 2.28: RHEL/Rocky 8 and later), linked
# against glibc 2.28 by zig (ziglang from PyPI), no debug info (the `dist` profile).
WHEEL_DIR := target/wheels
wheel: $(PY_STAMP)
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

# The lints by themselves (`make test` has clippy lint as it builds: test-build).
# stubtest checks python/byref/_native.pyi against the built extension.
lint: build format-check import-cycles
	cargo clippy --workspace --all-targets --quiet -- -D warnings
	$(MAKE) --no-print-directory stubtest

format-check: $(STAMP)
	cargo fmt --all --check
	$(VENV)/bin/ruff check python tests benches
	$(VENV)/bin/ruff format --check python tests benches

# No two modules use each other, directly or around a circle: Python's (import-linter, its
# contract in pyproject.toml; type-only imports count) and each Rust crate's (use crate::).
import-cycles: $(STAMP)
	PYTHONPATH=python $(VENV)/bin/lint-imports --no-cache
	$(PY) .ci/module_cycles.py crates

# The Rust tests and pytest, each by itself, on `make test`'s build (test-build, below).
# byref-py has no Rust tests: it is tested through Python, by pytest.
rust-test: test-build
	$(TEST_ENV) cargo test --workspace --exclude byref-py --exclude byref-benches --quiet

# pytest in 4 processes (pytest-xdist; tests/README.md says what tests may share), the ten
# slowest tests at the end. PYTEST_ARGS picks tests: `make py-test PYTEST_ARGS=tests/test_cli.py`.
PYTEST_ARGS ?=
py-test: test-build
	PATH="$(CURDIR)/$(VENV)/bin:$$PATH" BYREF_WHEEL_DIR=$(CURDIR)/$(TEST_WHEEL_DIR) \
		$(PY) -m pytest -n 4 -rs --durations=10 $(PYTEST_ARGS)

# libFuzzer on every decoder of untrusted bytes (handles, object frames, wire headers), from
# the seed corpus in fuzz/corpus, FUZZ_SECONDS per target; what a run finds new goes to a
# scratch directory, never into the repository. Needs the nightly toolchain (cargo-fuzz is
# installed if missing); without it, says so and skips. FUZZ_RUNS bounds targets by runs too
# ("handle=1000 wire=500"), FUZZ_JOBS targets run at once.
FUZZ_SECONDS ?= 300
FUZZ_RUNS ?=
FUZZ_JOBS ?= 1
# Flags of both `cargo fuzz build` and `run` (they must agree, or run builds again).
FUZZ_FLAGS ?=
FUZZ_TARGETS := handle frame wire locate listing
# Whether the nightly toolchain cargo-fuzz needs is installed.
HAVE_NIGHTLY := $(shell rustup toolchain list 2>/dev/null | grep -q '^nightly' && echo yes)
fuzz-build:
ifeq ($(HAVE_NIGHTLY),)
	@echo "fuzz: skipped, no nightly Rust toolchain (rustup toolchain install nightly)"
else
	@command -v cargo-fuzz >/dev/null || cargo install --quiet --locked cargo-fuzz
	cd fuzz && cargo +nightly fuzz build $(FUZZ_FLAGS)
endif

fuzz: fuzz-build
ifneq ($(HAVE_NIGHTLY),)
	@cd fuzz && printf '%s\n' $(FUZZ_TARGETS) | xargs -P $(FUZZ_JOBS) -I{} sh -c '\
		scratch=$$(mktemp -d); \
		runs=$$(printf "%s\n" $(FUZZ_RUNS) | sed -n "s/^{}=//p"); \
		cargo +nightly fuzz run $(FUZZ_FLAGS) {} $$scratch corpus/{} -- -max_total_time=$(FUZZ_SECONDS) \
			-runs=$${runs:--1} -print_final_stats=1 > $$scratch.log 2>&1; \
		status=$$?; grep -E "^Done|ERROR|panicked|SUMMARY" $$scratch.log | sed "s/^/{}: /"; \
		rm -rf $$scratch $$scratch.log; \
		[ $$status -eq 0 ] || { echo "fuzz: {} failed (crash input in fuzz/artifacts/{})"; exit 255; }'
endif

# `make test`'s fuzzing: each target for a bounded number of runs, all at once, 600 s at most
# each, without AddressSanitizer: the decoders fuzzed are safe Rust (byref's one `unsafe`,
# mapping, is not on their path), and without it the build takes 44 s instead of 194 and a
# run is ~8x faster, so these counts (the 30 s worth an instrumented build managed at
# b06837e) take ~6 s each on an idle machine and end before the tests beside which they run
# at the lowest priority. `make fuzz` fuzzes longer, with it.
# test-fuzz-build builds the targets by themselves (.ci/test: before the tests, whose load
# stretched the build to 210 s beside them), with the same flags.
TEST_FUZZ := FUZZ_JOBS=5 FUZZ_SECONDS=600 FUZZ_FLAGS="--sanitizer none" \
	FUZZ_RUNS="handle=7500000 frame=4700000 wire=3100000 locate=1900000 listing=1900000"
test-fuzz-build:
	$(MAKE) --no-print-directory fuzz-build $(TEST_FUZZ)
test-fuzz:
	$(MAKE) --no-print-directory fuzz $(TEST_FUZZ)

# `make test` builds the Rust code once, in the dev profile (target/debug; Cargo.toml says
# why): clippy lints the workspace's crates as they compile (.ci/clippy-rustc), not in a
# check build of its own; the Rust tests run from that build; the extension pytest imports
# and the wheel tests/test_wheel.py installs (manylinux_2_28, linked by zig) are linked from
# it. `make wheel` and `make build` stay the optimised builds users get. The criterion benches
# (byref-benches) build in `make bench`: their dependencies are a minute of a clean build and
# would give shared crates features the extension's build lacks (compiling those twice).
TEST_ENV := env PATH="$(CURDIR)/$(VENV)/bin:$$PATH" RUSTC_WORKSPACE_WRAPPER=$(CURDIR)/.ci/clippy-rustc
TEST_WHEEL_DIR := target/test-wheels
test-build: $(PY_STAMP)
	$(TEST_ENV) cargo test --workspace --exclude byref-py --exclude byref-benches --all-targets --no-run --quiet
	$(TEST_ENV) VIRTUAL_ENV=$(CURDIR)/$(VENV) $(VENV)/bin/maturin develop --quiet --profile dev \
		-- -C linker=$(CURDIR)/.ci/zig-cc-glibc-2.28
	rm -f $(TEST_WHEEL_DIR)/byref-*.whl
	$(TEST_ENV) $(VENV)/bin/maturin build --quiet --profile dev --strip \
		--compatibility manylinux_2_28 --out $(TEST_WHEEL_DIR) -- -C linker=$(CURDIR)/.ci/zig-cc-glibc-2.28

# Everything CI runs: .ci/test says in what order, and what runs beside what.
test: $(STAMP)
	.ci/test

stubtest: $(STAMP)
	$(PY) -m mypy.stubtest byref._native --allowlist tests/stubtest-allowlist.txt

# Criterion and the backend comparisons start their own redis-server, moto_server and daemon.
bench: build $(DEMO_STAMP) $(STAMP)
	PATH="$(CURDIR)/$(VENV)/bin:$$PATH" cargo bench --workspace
	$(PY) benches/roundtrip.py
	PATH="$(CURDIR)/$(VENV)/bin:$$PATH" $(PY) benches/parsl_throughput.py
	PATH="$(CURDIR)/$(VENV)/bin:$$PATH" $(PY) benches/parsl_throughput.py --crossover
	PATH="$(CURDIR)/$(VENV)/bin:$$PATH" $(PY) benches/parsl_closure.py
	PATH="$(CURDIR)/$(VENV)/bin:$$PATH" $(PY) benches/backends.py
	PATH="$(CURDIR)/$(VENV)/bin:$$PATH" $(PY) benches/quic.py
	PATH="$(CURDIR)/$(VENV)/bin:$$PATH" $(PY) benches/value_return.py
	PATH="$(CURDIR)/$(VENV)/bin:$$PATH" $(PY) benches/fanout.py
	PATH="$(CURDIR)/$(VENV)/bin:$$PATH" $(PY) benches/ls.py
	PATH="$(CURDIR)/$(VENV)/bin:$$PATH" $(PY) benches/cluster.py
	PATH="$(CURDIR)/$(VENV)/bin:$$PATH" $(PY) benches/cluster.py --crossover

# wrapt's own ObjectProxy tests against byref.Proxy (downloads wrapt's sdist from PyPI).
wrapt-check: build
	$(PY) tests/wrapt_check.py

clean:
	rm -rf $(VENV) target site
