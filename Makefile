# vet — build, test, install.
#
#   make deps          install the Debian packages vet needs (as root)
#   make               build every program into bin/ (CUDA parts only when nvcc is found)
#   make test          run the whole test suite; ends with "N passed, N failed, N skipped"
#   make test SANITIZE=1   the same suite built with AddressSanitizer + UBSan
#   make bench         benchmarks, printed side by side with a reference run
#   make install PREFIX=/usr/local
#
# Knobs: CUDA=0 forces the CPU-only build; SANITIZE=1 builds into build/san;
# NATIVE=0 drops -march=native (portable binaries).

VERSION   := 0.1.0
PREFIX    ?= /usr/local
CC        ?= cc
CXX       ?= c++
NVCC      ?= nvcc
SANITIZE  ?= 0
NATIVE    ?= 1
CUDA      ?= auto

# Debian's packages (make deps). Kept in one place: .ci/run uses this list too.
DEB_PACKAGES := build-essential pkg-config libsentencepiece-dev sentencepiece libmsgpack-dev \
                libzstd-dev zstd libopenblas-dev libjansson-dev python3-sentencepiece \
                python3-venv gnuplot-nox man-db jq clang libclang-rt-14-dev

ifeq ($(SANITIZE),1)
  BUILD   := build/san
  BIN     := build/san/bin
  OPT     := -O1 -g -fno-omit-frame-pointer
  SANFLAGS:= -fsanitize=address,undefined -fno-sanitize-recover=undefined
else
  BUILD   := build/rel
  BIN     := bin
  OPT     := -O3 -g
  SANFLAGS:=
endif
ifeq ($(NATIVE),1)
  OPT += -march=native
endif

CPPFLAGS += -Ilib -I/usr/include/x86_64-linux-gnu -DVET_VERSION='"$(VERSION)"' -D_GNU_SOURCE
CFLAGS   += -std=c11 $(OPT) -Wall -Wextra -Wshadow -Wno-unused-parameter -Wno-format-truncation -fopenmp $(SANFLAGS)
CXXFLAGS += -std=c++17 $(OPT) -Wall -Wextra $(SANFLAGS)
LDLIBS   += -lsentencepiece -lmsgpackc -lzstd -ljansson -lopenblas -lstdc++ -lm -lpthread
LDFLAGS  += -fopenmp $(SANFLAGS)

# --- CUDA: built whenever nvcc is present, unless CUDA=0 --------------------------------
ifeq ($(CUDA),auto)
  CUDA := $(if $(shell command -v $(NVCC) 2>/dev/null),1,0)
endif
CU_SRC := $(wildcard kernels/*.cu)
ifeq ($(CUDA),1)
  CUDA_HOME ?= $(patsubst %/bin/nvcc,%,$(shell command -v $(NVCC)))
  NVCCFLAGS ?= -O3 -std=c++17 -Ilib -Xcompiler -Wall,-Werror -Werror all-warnings \
               -gencode arch=compute_80,code=sm_80 -gencode arch=compute_90,code=sm_90
  CPPFLAGS  += -DVET_CUDA=1
  LDLIBS    += -L$(CUDA_HOME)/lib64 -Wl,-rpath,$(CUDA_HOME)/lib64 -lcublas -lcublasLt -lcudart
  CU_OBJ    := $(CU_SRC:kernels/%.cu=$(BUILD)/kernels/%.o)
  BACKENDS  := cpu cuda
else
  CU_OBJ    :=
  BACKENDS  := cpu
endif

# --- sources ----------------------------------------------------------------------------
LIB_C    := $(wildcard lib/*.c)
LIB_CXX  := $(wildcard lib/*.cc)
LIB_OBJ  := $(LIB_C:lib/%.c=$(BUILD)/lib/%.o) $(LIB_CXX:lib/%.cc=$(BUILD)/lib/%.o) $(CU_OBJ)
LIBVET   := $(BUILD)/libvet.a
TOOLS    := $(patsubst tools/%.c,$(BIN)/%,$(wildcard tools/vet-*.c))
UNIT     := $(patsubst tests/unit/%.c,$(BUILD)/tests/%,$(wildcard tests/unit/test_*.c))
HELPERS  := $(patsubst tests/helpers/%.c,$(BUILD)/tests/helpers/%,$(wildcard tests/helpers/*.c))
MANPAGES := $(wildcard man/*.1)

.PHONY: all deps test helpers bench install clean
all: $(TOOLS)
	@echo "vet $(VERSION): built $(words $(TOOLS)) programs in $(BIN)/ (backends: $(BACKENDS)$(if $(filter 1,$(SANITIZE)), sanitized))"

$(BUILD)/lib/%.o: lib/%.c $(wildcard lib/*.h) | $(BUILD)/lib
	$(CC) $(CPPFLAGS) $(CFLAGS) -c $< -o $@
$(BUILD)/lib/%.o: lib/%.cc $(wildcard lib/*.h) | $(BUILD)/lib
	$(CXX) $(CPPFLAGS) $(CXXFLAGS) -c $< -o $@
$(BUILD)/kernels/%.o: kernels/%.cu $(wildcard lib/*.h kernels/*.h kernels/*.cuh) | $(BUILD)/kernels
	$(NVCC) $(NVCCFLAGS) -DVET_CUDA=1 -c $< -o $@
$(LIBVET): $(LIB_OBJ)
	@rm -f $@
	ar rcs $@ $^
$(BIN)/%: tools/%.c $(LIBVET) | $(BIN)
	$(CC) $(CPPFLAGS) $(CFLAGS) $< $(LIBVET) $(LDFLAGS) $(LDLIBS) -o $@
$(BUILD)/tests/%: tests/unit/%.c tests/unit/check.h tests/unit/tiny_models.h $(LIBVET) | $(BUILD)/tests
	$(CC) $(CPPFLAGS) -Itests/unit $(CFLAGS) $< $(LIBVET) $(LDFLAGS) $(LDLIBS) -o $@
$(BUILD)/tests/helpers/%: tests/helpers/%.c $(LIBVET) | $(BUILD)/tests/helpers
	$(CC) $(CPPFLAGS) $(CFLAGS) $< $(LIBVET) $(LDFLAGS) $(LDLIBS) -o $@
$(BUILD)/lib $(BUILD)/kernels $(BUILD)/tests $(BUILD)/tests/helpers $(BIN):
	mkdir -p $@

helpers: $(UNIT) $(HELPERS)

deps:
	@if [ "$$(id -u)" != 0 ]; then echo "make deps: run as root (apt-get install)"; exit 1; fi
	@missing=$$(for p in $(DEB_PACKAGES); do dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q "ok installed" || echo $$p; done); \
	if [ -z "$$missing" ]; then echo "make deps: all Debian packages present"; \
	else echo "make deps: installing $$missing"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null && \
	  echo "make deps: installed $$missing"; fi

# The whole suite: unit binaries, end-to-end scripts, the reference (PyTorch) suite.
test: all $(UNIT) $(HELPERS) build/standin/test_gpu_model build/standin/vet-train build/standin/vet-generate build/standin/test_gpu_infer
	@VET_BIN=$(abspath $(BIN)) VET_BUILD=$(abspath $(BUILD)) VET_SANITIZE=$(SANITIZE) tests/run

bench: all helpers tokenizer
	@VET_BIN=$(abspath $(BIN)) VET_BUILD=$(abspath $(BUILD)) bench/run

install: all
	install -d $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(PREFIX)/share/man/man1
	install -m 755 $(TOOLS) $(DESTDIR)$(PREFIX)/bin/
	$(if $(MANPAGES),install -m 644 $(MANPAGES) $(DESTDIR)$(PREFIX)/share/man/man1/)

clean:
	rm -rf build bin

-include mk/*.mk
