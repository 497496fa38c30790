# Refuge: the commands a person types. Each installs the Debian packages it
# needs first (scripts/deps.sh: as root it runs apt-get, otherwise it prints
# the exact apt line and stops).
#
#   make run     build (release, in build/) and serve a demo instance from ./var
#   make check   every test: unit + fuzz-replay under ASan/UBSan, layering,
#                end-to-end, browser; ends with "N passed, N failed"
#   make bench   bench/*.sh (bench/run.py), figures written into docs/performance.md
#   make fuzz    libFuzzer harnesses, FUZZ_SECONDS each (default 30)
#   make screenshots  the README's screenshots (docs/screenshots/) from the
#                browser test, with the release build
#   make deb     the Debian package (debian/, dpkg-buildpackage, lintian) in
#                build-deb/; the source tree is left as it was

SHELL := /bin/sh
FUZZ_SECONDS ?= 30

.PHONY: all build run check bench fuzz screenshots deb clean

all: build

build:
	@scripts/deps.sh build
	@[ -f build/build.ninja ] || meson setup build -Dbuildtype=release -Dtests=false >/dev/null
	@ninja -C build refuge

run: build
	@scripts/run-demo

check:
	@scripts/check

bench: build
	@scripts/deps.sh bench
	@ninja -C build >/dev/null
	@python3 bench/run.py

fuzz:
	@scripts/deps.sh fuzz
	@FUZZ_SECONDS=$(FUZZ_SECONDS) scripts/fuzz

screenshots: build
	@scripts/deps.sh check
	@REFUGE_BIN=$(CURDIR)/build/refuge SCREENSHOTS_DIR=docs/screenshots tests/browser/run

deb:
	@scripts/make-deb

clean:
	rm -rf build build-san build-fuzz build-deb
