# redis-readthrough: `make run` and `make test` do the whole set-up on a fresh Debian machine.

SHELL := /bin/bash
VENV ?= .venv
PY := $(VENV)/bin/python
MODULE := target/release/libreadthrough.so
# Set READTHROUGH_TEST_MONGO_URI (tests) or MONGO_URI (run) to use an external MongoDB.
MONGO_URI ?=
MONGO_PORT ?= 27017
REDIS_PORT ?= 6379

.PHONY: run test test-matrix test-redis-suite lint deps venv build rejson bench clean node-example fuzz

## Install what is missing, decided by package state (dpkg -s), never by a file glob: a fresh
## machine has libclang-cpp14 (libclang-cpp.so) but not libclang-dev, which bindgen needs.
## redis-server/redis-tools: the default server and redis-cli/redis-benchmark; libclang-dev:
## bindgen; openssl: the TLS test's certificates; python3-venv: the SecantusDB virtualenv;
## tcl: the vendored servers' own test suites (make test-redis-suite); g++: valkey-json.
APT_PKGS := redis-server redis-tools libclang-dev openssl python3-venv tcl g++
deps:
	@missing=""; \
	for p in $(APT_PKGS); do \
	  dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q '^install ok installed$$' || missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
	  echo "installing:$$missing"; \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq $$missing; \
	fi
	@$(MAKE) --no-print-directory venv

# SecantusDB and pymongo for the servers and demo data; redis-py for the guided tour; FastAPI
# and uvicorn for examples/fastapi_todo and its smoke test.
VENV_PKGS := secantusdb pymongo redis fastapi uvicorn
VENV_STAMP := $(VENV)/.installed-2

venv: $(VENV_STAMP)

$(VENV_STAMP):
	[ -x $(VENV)/bin/python ] || python3 -m venv $(VENV)
	$(VENV)/bin/pip install -q --upgrade pip
	$(VENV)/bin/pip install -q $(VENV_PKGS)
	touch $@

## The Node example's packages, when npm exists (its smoke test is skipped otherwise).
node-example:
	@if command -v npm >/dev/null 2>&1; then \
	  [ -d examples/node/node_modules/redis ] || npm ci --prefix examples/node --no-audit --no-fund --loglevel=error \
	    || echo "npm ci failed: the Node example's smoke test will be skipped"; \
	else echo "npm not found: the Node example's smoke test will be skipped"; fi

build: $(MODULE)

## The JSON modules for `format=json` (tests and `make run`), built once from ../shared/vendor:
## RedisJSON 2.4.19 into target/rejson (for Redis) and valkey-json 1.0.2 into target/valkey-json
## (for Valkey). Without a tarball the JSON tests say they are skipped; REJSON_MODULE=/path/librejson.so
## or VALKEY_JSON_MODULE=/path/libjson.so uses your own build (REJSON_MODULE empty: a server with
## JSON built in, such as Redis 8).
rejson:
	@scripts/build_rejson.sh >/dev/null || [ $$? -eq 2 ]
	@scripts/build_valkey_json.sh >/dev/null || [ $$? -eq 2 ]

$(MODULE): Cargo.toml $(shell find src -name '*.rs')
	cargo build --release

## Build, start the embedded MongoDB-compatible server with the demo data, start Redis with the module.
run: deps build rejson
	MONGO_URI="$(MONGO_URI)" MONGO_PORT=$(MONGO_PORT) REDIS_PORT=$(REDIS_PORT) scripts/run.sh

## Everything: unit tests and end-to-end tests against real servers (module built once).
## Prints how many tests were skipped and why (CI=true makes a skip a failure instead).
test: deps build rejson node-example
	@rm -f target/test-skips.txt
	@cargo test --release -- --test-threads=4; status=$$?; \
	  n=$$(cat target/test-skips.txt 2>/dev/null | wc -l); \
	  echo "make test: $$n test(s) skipped"; \
	  [ "$$n" -eq 0 ] || sed 's/^/  skipped: /' target/test-skips.txt; \
	  exit $$status

## The suite against each server of the matrix (Debian's Redis 7.0, and Redis 7.2, 7.4 and
## Valkey 8 built once from ../shared/vendor into target/servers/), then a table.
## SMOKE=1: only the smoke subset, only on the vendored servers (what CI adds to `make test`).
MATRIX_SERVERS ?= redis-7.2.6 redis-7.4.1 valkey-8.0.1
test-matrix: deps build rejson node-example
	MATRIX_SERVERS="$(MATRIX_SERVERS)" SMOKE="$(SMOKE)" scripts/test_matrix.sh

## Each server's own test suite (./runtest from its vendored source) with the module loaded
## (see scripts/redis_suite.sh for SUITE_SERVERS and SUITE_UNITS).
test-redis-suite: deps build
	scripts/redis_suite.sh

lint:
	cargo fmt --check
	cargo clippy --release --all-targets -- -D warnings

clean:
	cargo clean
	rm -rf $(VENV) .run

## Benchmarks: ratios measured side by side in one run (see bench/results/).
## Needs the bench extras in the venv (redis-py, matplotlib) and the Rust load generator.
bench: deps build
	@$(PY) -c 'import matplotlib' 2>/dev/null || $(VENV)/bin/pip install -q matplotlib
	cargo build --release --example loadgen --example mongo_standin
	$(PY) bench/bench.py $(BENCH_ARGS)

## Fuzzing (nightly Rust + cargo-fuzz, installed if missing): each target runs FUZZ_SECONDS,
## starting from the committed seeds in fuzz/seeds/; new inputs go to target/fuzz-corpus/.
## A failure leaves its input in fuzz/artifacts/<target>/: copy it to fuzz/seeds/<target>/ so
## `make test` keeps checking it (tests/fuzz_seeds.rs).
FUZZ_SECONDS ?= 60
FUZZ_TARGETS := mapping_spec key codec
fuzz:
	@rustup toolchain list | grep -q nightly || rustup toolchain install nightly --profile minimal
	@command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz
	cd fuzz && cargo +nightly fuzz build -O --target-dir ../target/fuzz
	@set -o pipefail; for t in $(FUZZ_TARGETS); do \
	  mkdir -p target/fuzz-corpus/$$t; \
	  echo "== $$t: $(FUZZ_SECONDS) s"; \
	  (cd fuzz && cargo +nightly fuzz run -O --target-dir ../target/fuzz $$t \
	    ../target/fuzz-corpus/$$t seeds/$$t -- -max_total_time=$(FUZZ_SECONDS) -max_len=65536 \
	    -print_final_stats=1 2>&1 | grep -E "Done|stat::number_of_executed_units|stat::peak_rss|ERROR|panicked|SUMMARY|artifact") \
	    || exit 1; \
	done
