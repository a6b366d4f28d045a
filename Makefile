# The two commands a newcomer needs: `make run` and `make test`. Both set up everything
# they need (a virtualenv in .venv, the Python packages, buf, ts-proto and the TypeScript
# client's packages from npm, the code generators' plugins in .tools/bin) on first use. Go,
# Maven, the JDK and Node.js are the machine's own (every machine of this kind has them).
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
BUF := node_modules/.bin/buf

.PHONY: setup services run test lint protos check-protos bench fuzz loadtest clean

$(STAMP): pyproject.toml clients/python/pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e clients/python -e '.[dev]'
	touch $@

# Not `npm ci`: the registry serves buf's binaries for some platforms at an older version, so
# the lock file lists only the ones it could resolve and `npm ci` refuses it as out of sync.
# `--no-save` installs exactly the locked versions and leaves the lock file untouched.
$(BUF): package.json package-lock.json clients/typescript/package.json
	npm install --no-save --no-audit --no-fund --loglevel=error
	touch $@

# The code generators' plugins, pinned, in .tools/bin (clients/generate.py looks there):
# Go's from the module proxy (cached in Go's module cache), protoc and protoc-gen-grpc-java
# from Maven Central (cached in ~/.m2). protoc-gen-grpc-java 1.85.x has no linux-x86_64 build
# on Maven Central; 1.83.1's generated code runs on the grpc-java 1.85 runtime (gencode may
# be older than the runtime, never newer). protoc's version is protobuf-java's (4.x = 36.x).
TOOLS := .tools/bin
PROTOC_GEN_GO_VERSION := v1.36.12
PROTOC_GEN_GO_GRPC_VERSION := v1.6.2
PROTOC_VERSION := 4.36.2
PROTOC_GEN_GRPC_JAVA_VERSION := 1.83.1
MAVEN_EXE = mvn -B -q org.apache.maven.plugins:maven-dependency-plugin:3.8.1:copy \
	-Dstyle.color=never -DoutputDirectory=$(CURDIR)/.tools/maven -Dmdep.stripVersion=true -Dartifact=$(1):exe:linux-x86_64 \
	&& mv .tools/maven/$(2)-linux-x86_64.exe $(TOOLS)/$(2) && chmod +x $(TOOLS)/$(2) && touch $(TOOLS)/$(2)
GEN_TOOLS := $(TOOLS)/protoc-gen-go $(TOOLS)/protoc-gen-go-grpc $(TOOLS)/protoc $(TOOLS)/protoc-gen-grpc-java

$(TOOLS)/protoc-gen-go: Makefile
	GOBIN=$(CURDIR)/$(TOOLS) go install google.golang.org/protobuf/cmd/protoc-gen-go@$(PROTOC_GEN_GO_VERSION)
$(TOOLS)/protoc-gen-go-grpc: Makefile
	GOBIN=$(CURDIR)/$(TOOLS) go install google.golang.org/grpc/cmd/protoc-gen-go-grpc@$(PROTOC_GEN_GO_GRPC_VERSION)
$(TOOLS)/protoc: Makefile
	$(call MAVEN_EXE,com.google.protobuf:protoc:$(PROTOC_VERSION),protoc)
$(TOOLS)/protoc-gen-grpc-java: Makefile
	$(call MAVEN_EXE,io.grpc:protoc-gen-grpc-java:$(PROTOC_GEN_GRPC_JAVA_VERSION),protoc-gen-grpc-java)

setup: $(STAMP) $(BUF) $(GEN_TOOLS)

## Redis on 127.0.0.1:6379 and h2load: installed from Debian's packages when missing, Redis started.
services:
	bash tests/services.sh

## Start the gateway on the built-in emulator and show a real call answered (Ctrl-C stops it).
run: $(STAMP)
	$(BIN)/gateway serve --emulator --demo

## Everything CI checks: lint, types, proto lint and breaking changes, generated code fresh,
## the test suite (which builds and runs every client's example against a live gateway).
test: setup services lint
	$(BIN)/python -m pytest -q

lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	cd protos && ../$(BUF) lint
	BUF=../$(BUF) bash protos/breaking.sh

## Regenerate every client's code from protos/ (commit the result).
protos: $(STAMP) $(BUF) $(GEN_TOOLS)
	$(BIN)/python clients/generate.py

## Load and soak benchmarks (not part of `make test`).
bench: setup services
	$(BIN)/python -m tests.bench.run_all

## Long fuzz runs (README "Fuzzing"): coverage-guided atheris for FUZZ_SECONDS over decoding,
## validation, the AWS mapping and the cache key, then FUZZ_INPUTS live inputs at a gateway
## and FUZZ_AUTH_INPUTS at one with [auth].
FUZZ_SECONDS ?= 600
FUZZ_INPUTS ?= 200000
FUZZ_AUTH_INPUTS ?= 20000
FUZZ_CORPUS ?= .fuzz-corpus
fuzz: setup
	mkdir -p $(FUZZ_CORPUS)
	$(BIN)/python -m tests.fuzz.atheris_pipeline $(FUZZ_CORPUS) -max_total_time=$(FUZZ_SECONDS) -artifact_prefix=$(FUZZ_CORPUS)/
	$(BIN)/python -m tests.fuzz.live --inputs $(FUZZ_INPUTS) --auth-inputs $(FUZZ_AUTH_INPUTS)
## Load-test GetRecommendations through the gateway with ghz: Zipf users, emulator latency,
## throttling and errors; prints throughput and latency percentiles (see README, "Clients").
GHZ_VERSION := v0.120.0
$(TOOLS)/ghz: Makefile
	GOBIN=$(CURDIR)/$(TOOLS) go install github.com/bojand/ghz/cmd/ghz@$(GHZ_VERSION)

loadtest: $(STAMP) $(TOOLS)/ghz
	$(BIN)/python -m tests.bench.ghz_load $(LOADTEST_ARGS)

clean:
	rm -rf $(VENV) node_modules .mypy_cache .ruff_cache .fuzz-corpus .tools
