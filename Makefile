# flashrt — top-level entry points. `make test` is what CI runs (.ci/run); it installs what is missing.
SHELL := /bin/bash
JOBS ?= $(shell nproc)
BUILD ?= build
ASAN_BUILD ?= build-asan
MODEL ?= models/pycoder-hybrid-12m.gguf
CMAKE_GEN := $(shell command -v ninja >/dev/null 2>&1 && echo "-G Ninja")
# The official openai npm client that tests/server drives (pinned by its package-lock.json).
JS_TEST_DIR := tests/server/js

# Debian packages the build and the tests need (see README "Install").
DEPS := build-essential cmake ninja-build pkg-config git \
        libgtest-dev libgmock-dev libbenchmark-dev \
        nlohmann-json3-dev libcli11-dev libfmt-dev libxxhash-dev libzstd-dev \
        libpcre2-dev libutf8proc-dev libcpp-httplib-dev libedit-dev curl clang-format \
        pybind11-dev python3-dev python3-numpy python3-pytest python3-setuptools python3-wheel

.PHONY: all deps build run test test-asan fuzz bench python format format-check clean

all: build

deps:
	@missing=""; for p in $(DEPS); do \
	  dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q "install ok installed" || missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
	  echo "installing:$$missing"; \
	  SUDO=""; [ "$$(id -u)" = 0 ] || SUDO=sudo; \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq $$missing; \
	fi
	@if [ ! -d $(JS_TEST_DIR)/node_modules/openai ]; then \
	  if ! command -v npm >/dev/null 2>&1; then \
	    SUDO=""; [ "$$(id -u)" = 0 ] || SUDO=sudo; \
	    $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq nodejs npm; \
	  fi; \
	  echo "installing the openai npm client into $(JS_TEST_DIR)"; \
	  cd $(JS_TEST_DIR) && npm ci --no-audit --no-fund; \
	fi

$(BUILD)/build.ninja $(BUILD)/Makefile:
	cmake -S . -B $(BUILD) $(CMAKE_GEN) -DCMAKE_BUILD_TYPE=Release

build: deps $(BUILD)/$(if $(CMAKE_GEN),build.ninja,Makefile)
	cmake --build $(BUILD) -j $(JOBS)

run: build
	./$(BUILD)/flashrt demo -m $(MODEL)

test: build
	cd $(BUILD) && ctest --output-on-failure -j $(JOBS) $(CTEST_ARGS)

test-asan: deps
	cmake -S . -B $(ASAN_BUILD) $(CMAKE_GEN) -DCMAKE_BUILD_TYPE=Debug -DFLASHRT_SANITIZE=ON
	cmake --build $(ASAN_BUILD) -j $(JOBS)
	cd $(ASAN_BUILD) && ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
	  ctest --output-on-failure -j $(JOBS) $(CTEST_ARGS)

# libFuzzer targets for FUZZ_SECONDS each (clang, tree build-fuzz; see fuzz/run.sh).
FUZZ_SECONDS ?= 60
fuzz: build
	fuzz/run.sh $(FUZZ_SECONDS)

# The Python module (build/python/flashrt); `pip install --no-build-isolation --no-index .` then
# installs it into an environment (README "Python").
python: deps $(BUILD)/$(if $(CMAKE_GEN),build.ninja,Makefile)
	cmake --build $(BUILD) -j $(JOBS) --target flashrt_python
	@echo "built $(BUILD)/python/flashrt: PYTHONPATH=$(CURDIR)/$(BUILD)/python /usr/bin/python3 -c 'import flashrt'"

bench: build
	cmake --build $(BUILD) -j $(JOBS) --target benches

format:
	clang-format -i $$(git ls-files '*.cpp' '*.h' '*.cu' '*.cuh')

format-check:
	tests/format_check.sh .

clean:
	rm -rf $(BUILD) $(ASAN_BUILD)
