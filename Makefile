# llmops — build, test and run everything from here. `make help` lists targets.
#
# Outputs go to build/ and bin/ (both ignored by git). Tools and libraries that
# `make deps` installs live under ~/.cache/llmops and are linked into build/.

SHELL := /bin/bash
.DEFAULT_GOAL := all

VERSION := $(shell git describe --tags --always --dirty 2>/dev/null || echo unknown)

CC ?= cc
PKGS := libcurl jansson yaml-0.1 libwebsockets openssl openblas
# Deferred (=): pkg-config is asked when a recipe runs, after `make deps`.
PKG_CFLAGS = $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
PKG_LIBS = $(shell pkg-config --libs $(PKGS) 2>/dev/null)

WARN := -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes -Wmissing-prototypes
CFLAGS := -std=c11 -D_GNU_SOURCE $(WARN) -O2 -g -fopenmp
CPPFLAGS = -Ilib -Ioperator -Iagent -Ikernels/include $(PKG_CFLAGS) -DLLMOPS_VERSION='"$(VERSION)"'
LDLIBS = $(PKG_LIBS) -fopenmp -lm -lpthread
SAN := -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=all

LIB_SRC := $(wildcard lib/*.c)
KERNEL_SRC := $(wildcard kernels/cpu/*.c kernels/models/*.c kernels/collectives/*.c)
# The operator's and agent's modules (all but their mains) go into the
# library too, so unit tests can link them.
APP_SRC := $(filter-out %/main.c,$(wildcard operator/*.c agent/*.c))
CORE_SRC := $(LIB_SRC) $(KERNEL_SRC) $(APP_SRC)
CORE_OBJ := $(CORE_SRC:%.c=build/obj/%.o)
SAN_OBJ := $(CORE_SRC:%.c=build/san/%.o)
UNIT_TESTS := $(patsubst tests/unit/%.c,build/tests/unit/%,$(wildcard tests/unit/test_*.c))
INTEGRATION_TESTS := $(patsubst tests/integration/%.c,build/tests/integration/%,$(wildcard tests/integration/test_*.c))
# The same tests without sanitizers, for valgrind's leak check.
VALGRIND_TESTS := $(patsubst tests/integration/%.c,build/plain/tests/integration/%,$(wildcard tests/integration/test_*.c))
BINARIES := bin/llmops-operator bin/llmops-agent
# Test tools built with `all`, unsanitized: the e2e tests run them
# (test_tokenizer_parity.py: tok_dump; test_finetune_cluster.py: logits_dump).
TOOLS := build/tests/tokenizer/tok_dump build/tests/model/logits_dump

# CUDA: the wheels from `make deps`, then /usr/local/cuda, then PATH.
CUDA_WHEELS := build/cuda/nvidia
NVCC = $(firstword $(wildcard $(CUDA_WHEELS)/cu13/bin/nvcc /usr/local/cuda/bin/nvcc) \
	$(shell command -v nvcc 2>/dev/null))
CUDA_ROOT = $(abspath $(dir $(NVCC))..)
NCCL_ROOT = $(abspath $(firstword $(wildcard $(CUDA_WHEELS)/nccl) $(CUDA_ROOT)))
CUDA_ARCH := -gencode arch=compute_90,code=sm_90 -gencode arch=compute_90,code=compute_90
NVCCFLAGS = -std=c++17 -O2 $(CUDA_ARCH) -Werror all-warnings -Xcompiler -Wall,-Wextra,-Werror \
	-Ilib -Ikernels/include -I$(NCCL_ROOT)/include
CUDA_LIBS = -L$(CUDA_ROOT)/lib -L$(CUDA_ROOT)/lib64 -L$(NCCL_ROOT)/lib \
	-l:libcublas.so.13 -l:libcublasLt.so.13 -l:libcudart.so.13 -l:libnccl.so.2 \
	-Xlinker -rpath=$(CUDA_ROOT)/lib -Xlinker -rpath=$(NCCL_ROOT)/lib
# kernels/collectives/*.cu: the NCCL backend, which coll.c refers to weakly, so
# libllmops.a itself needs neither CUDA nor NCCL.
CUDA_SRC := $(wildcard kernels/cuda/*.cu kernels/collectives/*.cu)
CUDA_OBJ := $(CUDA_SRC:%.cu=build/cuda-obj/%.o)
CUDA_TESTS := $(patsubst tests/cuda/%.cu,build/tests/cuda/%,$(wildcard tests/cuda/test_*.cu))
BENCH_CUDA := $(patsubst bench/%.cu,build/bench/%,$(wildcard bench/bench_cuda_*.cu))
# Links one .cu program ($<) with the CUDA objects and the library.
CUDA_LINK = $(NVCC) $(NVCCFLAGS) -cudart none $< $(CUDA_OBJ) -o $@ -Xlinker --start-group \
	build/libllmops.a $(CUDA_LIBS) $(patsubst -fopenmp,-lgomp,$(LDLIBS)) -Xlinker --end-group
# compute-sanitizer from the nvidia-cuda-sanitizer-api wheel, else the toolkit's
SANITIZER = $(firstword $(wildcard $(CUDA_WHEELS)/cu13/bin/compute-sanitizer \
	/usr/local/cuda/bin/compute-sanitizer))

VENV := build/venv
CONTROLPLANE := build/controlplane/bin

.PHONY: all help deps check test test-unit test-cuda-compile test-integration test-cuda \
	cuda-info cluster-up cluster-down cluster-env cluster-status run stop clean bench \
	bench-kube bench-operator bench-cpu bench-finetune bench-gemm bench-cuda test-lua golden

all: $(BINARIES) $(TOOLS) build/libllmops.a cuda-info ## build the binaries and libraries

help: ## list the targets
	@grep -hE '^[a-z%-]+:.*## ' Makefile | sed 's/:.*## /\t/' | expand -t 22

deps: ## install everything needed (idempotent; seconds when nothing changed)
	@scripts/deps.sh

# --- build ------------------------------------------------------------------

build/obj/%.o: %.c
	@mkdir -p $(@D)
	$(CC) $(CPPFLAGS) $(CFLAGS) -MMD -MP -c $< -o $@

build/san/%.o: %.c
	@mkdir -p $(@D)
	$(CC) $(CPPFLAGS) $(CFLAGS) $(SAN) -O1 -MMD -MP -c $< -o $@

# The GEMM tiles are written as vector multiply-adds; let each be one FMA.
build/obj/kernels/cpu/gemm.o build/san/kernels/cpu/gemm.o: CFLAGS += -ffp-contract=fast
# So are the vmath.h loops (FMA only in their AVX2 clones, which shortens the
# polynomial chains that bound them); test_vmath checks them built this way.
VMATH_OBJ := $(foreach k,attention crossentropy gelu softmax,build/obj/kernels/cpu/$(k).o build/san/kernels/cpu/$(k).o)
$(VMATH_OBJ) build/tests/unit/test_vmath: CFLAGS += -ffp-contract=fast

build/libllmops.a: $(CORE_OBJ)
	@mkdir -p $(@D)
	$(AR) rcs $@ $^

build/libllmops-san.a: $(SAN_OBJ)
	@mkdir -p $(@D)
	$(AR) rcs $@ $^

bin/llmops-%: build/obj/%/main.o build/libllmops.a
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) $< build/libllmops.a $(LDLIBS) -o $@

# The version is compiled into the mains: rebuild them when it changes.
build/obj/operator/main.o build/obj/agent/main.o: build/version.txt
build/version.txt: FORCE
	@mkdir -p $(@D)
	@echo '$(VERSION)' | cmp -s - $@ || echo '$(VERSION)' > $@
.PHONY: FORCE

cuda-info:
	@if [ -n "$(NVCC)" ]; then echo "CUDA: using $(NVCC)"; \
	else echo "CUDA: skipped (no nvcc in build/cuda, /usr/local/cuda or PATH; run 'make deps')"; fi

build/cuda-obj/%.o: %.cu
	@mkdir -p $(@D)
	$(NVCC) $(NVCCFLAGS) -MMD -MP -c $< -o $@

$(CUDA_TESTS): build/tests/cuda/%: tests/cuda/%.cu tests/cuda/harness.h $(CUDA_OBJ) build/libllmops.a
	@mkdir -p $(@D)
	$(CUDA_LINK)

# The CUDA model tests share their checks with the CPU golden tests.
build/tests/cuda/test_cuda_models: tests/unit/model_golden.h tests/unit/embedder_golden.h

# The agent with the CUDA objects linked in: it trains on the GPU when CUDA
# works where it runs, else on the CPU (LLMOPS_BACKEND, docs/finetune.md).
CUDA_AGENT := build/cuda-bin/llmops-agent
$(CUDA_AGENT): build/obj/agent/main.o $(CUDA_OBJ) build/libllmops.a
	@mkdir -p $(@D)
	$(CUDA_LINK)

# --- checks and tests ----------------------------------------------------------

STYLE_SRC = $(shell git ls-files --cached --others --exclude-standard '*.c' '*.h' '*.cu' 2>/dev/null)

check: ## style: clang-format, banned functions, cppcheck
	@scripts/check.sh $(STYLE_SRC)

build/tests/%: tests/%.c build/libllmops-san.a
	@mkdir -p $(@D)
	$(CC) $(CPPFLAGS) $(CFLAGS) $(SAN) $< build/libllmops-san.a $(LDLIBS) -lcmocka -o $@

# More specific than build/tests/%: the tools run without sanitizers.
$(TOOLS): build/tests/%: tests/%.c build/libllmops.a
	@mkdir -p $(@D)
	$(CC) $(CPPFLAGS) $(CFLAGS) $< build/libllmops.a $(LDLIBS) -o $@

build/plain/tests/%: tests/%.c build/libllmops.a
	@mkdir -p $(@D)
	$(CC) $(CPPFLAGS) $(CFLAGS) $< build/libllmops.a $(LDLIBS) -lcmocka -o $@

test-unit: $(UNIT_TESTS) ## C unit tests under ASan and UBSan
	@set -e; for t in $(UNIT_TESTS); do echo "== $$t"; $$t; done

test-lua: ## Argo CD health checks (Lua) against their fixtures
	@tests/lua/run_health_tests.sh

test-cuda-compile: ## compile and link every .cu, tests, benchmarks, the CUDA agent (needs nvcc; does not run)
	@if [ -z "$(NVCC)" ]; then echo "CUDA: skipped compile check (no nvcc)"; \
	else $(MAKE) --no-print-directory $(CUDA_TESTS) $(BENCH_CUDA) $(CUDA_AGENT) && \
		echo "CUDA: all .cu compiled and linked"; fi

test-integration: all $(INTEGRATION_TESTS) $(VALGRIND_TESTS) ## tests against a local control plane (started and stopped here)
	@e2e/run.sh $(INTEGRATION_TESTS) -- $(VALGRIND_TESTS)

test: deps ## everything CI runs: style, unit, Lua, CUDA compile, integration, e2e
	@$(MAKE) --no-print-directory all
	@$(MAKE) --no-print-directory check
	@$(MAKE) --no-print-directory test-unit
	@$(MAKE) --no-print-directory test-lua
	@$(MAKE) --no-print-directory test-cuda-compile
	@$(MAKE) --no-print-directory test-integration

# Every tests/golden/*/make_reference.py, finetune last: it starts from the
# tiny GPT-2 that models/ writes.
GOLDEN := $(filter-out finetune,$(patsubst tests/golden/%/make_reference.py,%,\
	$(wildcard tests/golden/*/make_reference.py))) finetune
golden: all ## regenerate the reference outputs under tests/golden/ with the reference libraries
	@scripts/deps.sh golden
	@for g in $(GOLDEN); do echo "golden: tests/golden/$$g/make_reference.py"; \
		build/golden-venv/bin/python tests/golden/$$g/make_reference.py || exit 1; done

# The tests run once in full (checks and timings), then in quick mode (small
# cases, no timing) under compute-sanitizer's memcheck, racecheck and synccheck;
# then the CUDA agent fine-tunes on the GPU against itself on the CPU.
test-cuda: deps $(CUDA_TESTS) $(CUDA_AGENT) ## the CUDA tests, then under compute-sanitizer, then the CUDA agent (needs an NVIDIA GPU)
	@SANITIZER=$(SANITIZER) scripts/run-cuda-tests.sh $(CUDA_TESTS)
	@build/venv/bin/python e2e/gpu_agent_check.py

# --- fuzzing ------------------------------------------------------------------

FUZZ_SECONDS ?= 600

# fuzz-safetensors, fuzz-tokenizer, fuzz-prompt: each harness tests/fuzz/fuzz_<name>*.c
fuzz-%: ## fuzz-<name>: the libFuzzer harnesses tests/fuzz/fuzz_<name>*.c, FUZZ_SECONDS (600) each
	@scripts/fuzz.sh $* $(FUZZ_SECONDS)

# --- benchmarks ---------------------------------------------------------------------

build/bench/%: bench/%.c bench/bench.h build/libllmops.a
	@mkdir -p $(@D)
	$(CC) $(CPPFLAGS) $(CFLAGS) $< build/libllmops.a $(LDLIBS) -o $@

# bench/bench_cuda_*.cu, linked as the CUDA tests are
$(BENCH_CUDA): build/bench/%: bench/%.cu bench/bench.h tests/cuda/harness.h $(CUDA_OBJ) build/libllmops.a
	@mkdir -p $(@D)
	$(CUDA_LINK)

# BLIS (Debian's libblis-dev, not in `make deps`: nothing else uses it) is
# linked into the GEMM benchmark only when installed, after OpenBLAS so the
# library's cblas_sgemm calls still reach OpenBLAS.
BLIS_INC := $(dir $(wildcard /usr/include/x86_64-linux-gnu/blis-openmp/blis.h))
ifneq ($(BLIS_INC),)
build/bench/bench_gemm: private CPPFLAGS += -DHAVE_BLIS -isystem $(BLIS_INC)
build/bench/bench_gemm: private LDLIBS += -lblis
endif

bench: bench-kube bench-operator bench-cpu bench-gemm ## every benchmark that runs on this machine

bench-kube: deps build/bench/bench_kube ## Kubernetes runtime: memory, watch latency, reconcile rate
	@bench/run-kube.sh

# pairs of runs per case for bench-cpu and bench-finetune (medians printed)
REPEAT ?= 1

bench-cpu: deps build/bench/bench_cpu ## CPU runtime against PyTorch: training, decoding, embeddings (REPEAT=N pairs)
	@scripts/deps.sh golden
	@build/golden-venv/bin/python bench/run_cpu.py --repeat $(REPEAT)

bench-finetune: deps build/bench/bench_cpu ## fine-tuning steps, full and LoRA, against transformers + peft (REPEAT=N)
	@scripts/deps.sh golden
	@build/golden-venv/bin/python bench/run_cpu.py --repeat $(REPEAT) gpt2_train gpt2_lora_train

# Asked for explicitly, so no GPU is an error, not a skip.
bench-cuda: deps ## CUDA kernels against the device's peaks, GPU models against PyTorch (needs an NVIDIA GPU)
	@if [ -z "$(NVCC)" ]; then echo "bench-cuda: no nvcc (run 'make deps')" >&2; exit 1; fi
	@if ! nvidia-smi -L >/dev/null 2>&1; then \
		echo "bench-cuda: no NVIDIA GPU here ('nvidia-smi -L' failed); this benchmark needs one" >&2; \
		exit 1; fi
	@$(MAKE) --no-print-directory $(BENCH_CUDA)
	@scripts/deps.sh golden
	@build/golden-venv/bin/python bench/run_cuda.py

bench-gemm: deps build/bench/bench_gemm ## CPU SGEMM: OpenBLAS, BLIS, own kernels and torch at the models' shapes
	@scripts/deps.sh golden
	@bench/run-gemm.sh

bench-operator: deps all ## operator memory at idle and with 1,000 resources of each kind
	@bench/run-operator.sh

# --- local control plane and the main job ---------------------------------------

cluster-up: ## start the local control plane (idempotent)
	@e2e/controlplane/cluster.sh up

cluster-down: ## stop the local control plane
	@e2e/controlplane/cluster.sh down

cluster-env: ## print the KUBECONFIG export for the local control plane
	@e2e/controlplane/cluster.sh env

cluster-status: ## show what is running
	@e2e/controlplane/cluster.sh status

run: deps ## install, build, start the control plane and the operator, apply, show
	@$(MAKE) --no-print-directory all
	@scripts/run.sh start

stop: ## stop what `make run` started
	@scripts/run.sh stop

clean: ## remove build outputs (not the cache of installed tools)
	rm -rf bin build/obj build/san build/plain build/bench build/cuda-obj build/cuda-bin build/cuda-bundle build/tests build/*.a \
		build/version.txt

-include $(CORE_OBJ:.o=.d) $(SAN_OBJ:.o=.d) $(CUDA_OBJ:.o=.d) build/obj/operator/main.d \
	build/obj/agent/main.d
