# vet — build, test, install.
#
#   make deps          install the Debian packages vet needs (as root)
#   make               build every program into bin/ (CUDA parts only when nvcc is found)
#   make test          run the whole test suite; ends with "N passed, N failed, N skipped"
#   make test SANITIZE=1   the same suite built with AddressSanitizer + UBSan
#   make bench         benchmarks, printed side by side with a reference run
#   make install PREFIX=/usr/local
#
# Knobs: CUDA=0 forces the CPU-only build; MPI=0 builds vet-train without MPI (MPI=auto: with it
# when mpicc or pkg-config's ompi-c is found; docs/scale.md); NCCL=0 sums a multi-GPU run's
# gradients through the host (NCCL=auto: on the GPUs with NCCL when nccl.h and libnccl are found
# and CUDA and MPI are both on); SANITIZE=1 builds into build/san;
# NATIVE=0 drops -march=native (portable binaries); ARCH=x86-64-v3 builds for that -march
# instead (e.g. an AVX2-only machine's code on an AVX-512 one, to measure what it runs).

.DEFAULT_GOAL := all
VERSION   := 0.1.0
PREFIX    ?= /usr/local
CC        ?= cc
CXX       ?= c++
NVCC      ?= nvcc
SANITIZE  ?= 0
NATIVE    ?= 1
ARCH      ?= $(if $(filter 1,$(NATIVE)),native)
CUDA      ?= auto
MPI       ?= auto
NCCL      ?= auto

# Debian's packages (make deps). Kept in one place: .ci/run uses this list too.
DEB_PACKAGES := build-essential pkg-config libsentencepiece-dev sentencepiece libmsgpack-dev \
                libzstd-dev zstd libopenblas-dev libjansson-dev python3-sentencepiece \
                python3-venv gnuplot-nox man-db jq clang libclang-rt-14-dev libpcre2-dev \
                libutf8proc-dev libopenmpi-dev openmpi-bin parallel debootstrap

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
ifneq ($(ARCH),)
  OPT += -march=$(ARCH)
endif

CPPFLAGS += -Ilib -I. -DVET_VERSION='"$(VERSION)"' -D_GNU_SOURCE
CFLAGS   += -std=c11 $(OPT) -Wall -Wextra -Wshadow -Wno-unused-parameter -Wno-format-truncation -fopenmp $(SANFLAGS)
CXXFLAGS += -std=c++17 $(OPT) -Wall -Wextra $(SANFLAGS)
LDLIBS   += -lsentencepiece -lmsgpackc -lzstd -ljansson -lpcre2-8 -lutf8proc -lopenblas -lstdc++ -lm -lpthread
LDLIBS_NOCUDA := $(LDLIBS)
LDFLAGS  += -fopenmp $(SANFLAGS)
DEPFLAGS := -MMD -MP

# --- CUDA: built whenever nvcc is present, unless CUDA=0 --------------------------------
ifeq ($(CUDA),auto)
  CUDA := $(if $(shell command -v $(NVCC) 2>/dev/null),1,0)
endif
CU_SRC := $(wildcard kernels/*.cu)
ifeq ($(CUDA),1)
  CUDA_HOME ?= $(patsubst %/bin/nvcc,%,$(shell command -v $(NVCC)))
  NVCCFLAGS ?= -O3 -std=c++17 -Ilib -I. -Xcompiler -Wall,-Werror -Werror all-warnings \
               -gencode arch=compute_80,code=sm_80 -gencode arch=compute_90,code=sm_90
  CPPFLAGS  += -DVET_CUDA=1
  # cuBLAS is not linked: kernels/cublas.cu loads it on first use (-ldl), found through this rpath.
  LDLIBS    += -L$(CUDA_HOME)/lib64 -Wl,-rpath,$(CUDA_HOME)/lib64 -lcudart -ldl
  # nvcc's flags do not change with SANITIZE or the bundle's -march: one compile of each kernel
  # (build/cuda) serves the release and sanitizer builds and the GPU bundle (mk/gpubundle.mk).
  CU_BUILD  := build/cuda
  # kernels/*.cc: the CUDA backend's host-only C++ (cuDNN's frontend shim), by the C++ compiler
  CU_CXX_SRC := $(wildcard kernels/*.cc)
  CU_OBJ    := $(CU_SRC:%.cu=$(CU_BUILD)/%.o) $(CU_CXX_SRC:%.cc=$(CU_BUILD)/%.o)
  BACKENDS  := cpu cuda
else
  CU_OBJ    :=
  BACKENDS  := cpu
endif

# --- MPI: data-parallel vet-train (lib/train/comm_mpi.c) whenever mpicc is present, unless MPI=0 ---
# Only the release and sanitizer builds: the fuzzing and CUDA stand-in builds keep their own flags
# (no VET_MPI) and libraries (LDLIBS_NOCUDA above), so they stay single-process.
MPICC ?= mpicc
ifeq ($(MPI),auto)
  MPI := $(if $(shell command -v $(MPICC) 2>/dev/null || pkg-config --exists ompi-c 2>/dev/null && echo y),1,0)
endif
ifeq ($(MPI),1)
  MPI_CFLAGS ?= $(shell $(MPICC) --showme:compile 2>/dev/null || pkg-config --cflags ompi-c)
  MPI_LIBS   ?= $(shell $(MPICC) --showme:link 2>/dev/null || pkg-config --libs ompi-c)
  CPPFLAGS   += -DVET_MPI=1 $(MPI_CFLAGS)
  LDLIBS     += $(MPI_LIBS)
  BACKENDS_MPI := , mpi
endif

# --- NCCL: multi-GPU gradient sums on the devices (kernels/host/gpu_collective.c) ------------
# Only with CUDA and MPI (MPI bootstraps NCCL's id); found in the CUDA toolkit (NVIDIA's
# packages put nccl.h in its include/ and libnccl in lib64/ or lib/) or in /usr. Like MPI, only
# the release and sanitizer builds: the stand-in and the GPU bundle build without it.
# NCCL_ON is the outcome (a command-line NCCL=1 cannot be overridden, so it is not reused).
NCCL_ON := 0
ifeq ($(CUDA)$(MPI),11)
  NCCL_H   ?= $(firstword $(wildcard $(CUDA_HOME)/include/nccl.h /usr/include/nccl.h))
  NCCL_LIB ?= $(firstword $(wildcard $(CUDA_HOME)/lib64/libnccl.so $(CUDA_HOME)/lib/libnccl.so \
                /usr/local/cuda-*/lib/libnccl.so /usr/lib/x86_64-linux-gnu/libnccl.so))
  ifeq ($(NCCL),auto)
    NCCL_ON := $(if $(and $(NCCL_H),$(NCCL_LIB)),1,0)
  else ifeq ($(NCCL),1)
    ifeq ($(and $(NCCL_H),$(NCCL_LIB)),)
      $(error NCCL=1: nccl.h or libnccl.so not found (looked in $(CUDA_HOME) and /usr); NCCL=0 builds without)
    endif
    NCCL_ON := 1
  endif
endif
ifeq ($(NCCL_ON),1)
  CPPFLAGS += -DVET_NCCL=1 -I$(dir $(NCCL_H)) -I$(CUDA_HOME)/include
  LDLIBS   += -L$(dir $(NCCL_LIB)) -Wl,-rpath,$(dir $(NCCL_LIB)) -lnccl
  BACKENDS_NCCL := , nccl
endif

# --- sources ----------------------------------------------------------------------------
# The library: lib/<layer>/ (lib/README.md) and the CUDA backend's host side, kernels/host/.
LIB_SRC  := $(wildcard lib/*/*.c lib/*/*.cc kernels/host/*.c)
LIB_C    := $(filter %.c,$(LIB_SRC))
LIB_CXX  := $(filter %.cc,$(LIB_SRC))
LIBVET   := $(BUILD)/libvet.a
TOOLS    := $(patsubst tools/%.c,$(BIN)/%,$(wildcard tools/vet-*.c))
UNIT     := $(patsubst tests/unit/%.c,$(BUILD)/tests/%,$(wildcard tests/unit/test_*.c))
# Unit tests of the kernels' host-and-device headers (tests/unit/test_*.cu): where nvcc is.
UNIT_CU  := $(if $(filter 1,$(CUDA)),$(patsubst tests/unit/%.cu,$(BUILD)/tests/%,$(wildcard tests/unit/test_*.cu)))
# The kernels themselves run on the CPU (tests/unit/test_*.cc on tests/unit/simt_emu.h): built by
# the C++ compiler with the CUDA toolkit's headers, so where nvcc is, as the .cu tests.
UNIT_EMU := $(if $(filter 1,$(CUDA)),$(patsubst tests/unit/%.cc,$(BUILD)/tests/%,$(wildcard tests/unit/test_*.cc)))
HELPERS  := $(patsubst tests/helpers/%.c,$(BUILD)/tests/helpers/%,$(wildcard tests/helpers/*.c))
MANPAGES := $(wildcard man/*.1)

# The settings that change how objects are compiled, kept in BUILD/settings and rewritten only
# when they change: every object depends on it, so `make CUDA=0` after `make` (or the other way
# round) rebuilds instead of linking objects compiled for the other setting.
BUILD_SETTINGS := CUDA=$(CUDA) MPI=$(MPI) NCCL=$(NCCL_ON) NATIVE=$(NATIVE) SANITIZE=$(SANITIZE)
BUILD_STAMP := $(BUILD)/settings
$(shell mkdir -p $(BUILD) && (test "$$(cat $(BUILD_STAMP) 2>/dev/null)" = "$(BUILD_SETTINGS)" || echo "$(BUILD_SETTINGS)" > $(BUILD_STAMP)))

# One template for every build of the library (release or sanitized here; the fuzzing build in
# mk/fuzz.mk; the CUDA stand-in in mk/gpustub.mk): objects mirror the source tree under DIR,
# header dependencies come from the compiler (-MMD -MP), and DIR/libvet.a holds them all.
#   $(call vet_lib_build,DIR,CC,CXX,CPPFLAGS,CFLAGS,CXXFLAGS,EXTRA_OBJECTS)
define vet_lib_build
$(1)/%.o: %.c $(BUILD_STAMP)
	@mkdir -p $$(@D)
	$(2) $(4) $(5) $$(DEPFLAGS) -c $$< -o $$@
$(1)/%.o: %.cc $(BUILD_STAMP)
	@mkdir -p $$(@D)
	$(3) $(4) $(6) $$(DEPFLAGS) -c $$< -o $$@
$(1)/libvet.a: $(patsubst %,$(1)/%.o,$(basename $(LIB_SRC))) $(7)
	@rm -f $$@
	ar rcs $$@ $$^
-include $(patsubst %,$(1)/%.d,$(basename $(LIB_SRC)))
endef
$(eval $(call vet_lib_build,$(BUILD),$(CC),$(CXX),$(CPPFLAGS),$(CFLAGS),$(CXXFLAGS),$(CU_OBJ)))

.PHONY: all deps test test-build helpers bench install clean
all: $(TOOLS)
	@echo "vet $(VERSION): built $(words $(TOOLS)) programs in $(BIN)/ (backends: $(BACKENDS)$(BACKENDS_MPI)$(BACKENDS_NCCL)$(if $(filter 1,$(SANITIZE)), sanitized))"

$(CU_BUILD)/kernels/%.o: kernels/%.cu
	@mkdir -p $(@D)
	$(NVCC) $(NVCCFLAGS) $(DEPFLAGS) -DVET_CUDA=1 -c $< -o $@
# cuDNN's fused attention (kernels/attention_cudnn.cc) through cuDNN's frontend, header-only C++
# fetched by mk/cudnn_frontend.sh (`make cudnn-frontend`; `sh bootstrap` runs it where nvcc is):
# with the headers the file builds the real path (cuDNN itself is loaded at run time), without
# them one that says so when asked. Its headers are NVIDIA's: -isystem keeps -Werror to vet's code.
CUDNN_FE ?= build/third_party/cudnn-frontend
CUDNN_FE_H := $(wildcard $(CUDNN_FE)/include/cudnn_frontend.h)
CU_CXXFLAGS := -std=c++17 -O2 -g -Wall -Wextra -Werror -Ilib -I. -I$(CUDA_HOME)/include
$(CU_BUILD)/kernels/%.o: kernels/%.cc
	@mkdir -p $(@D)
	$(CXX) $(CU_CXXFLAGS) $(DEPFLAGS) -DVET_CUDA=1 -c $< -o $@
$(CU_BUILD)/kernels/attention_cudnn.o: $(CUDNN_FE_H)
# -O1 -g1 (line tables only): the file builds cuDNN graphs once per shape, nothing in it is hot,
# and the frontend's templates under -O2 -g took 128 s of a 2-core build (-O1 -g1: ~65 s) and
# a 66 MB object, most of vet-train's 58 MB (measured 2026-12-08, GCC 12).
$(CU_BUILD)/kernels/attention_cudnn.o: CU_CXXFLAGS += $(if $(CUDNN_FE_H),-isystem $(CUDNN_FE)/include \
    -DVET_CUDNN_FE=1 -DNV_CUDNN_FRONTEND_USE_DYNAMIC_LOADING -O1 -g1)
cudnn-frontend:
	sh mk/cudnn_frontend.sh $(CUDNN_FE)
.PHONY: cudnn-frontend
$(BIN)/%: tools/%.c $(LIBVET)
	@mkdir -p $(@D)
	$(CC) $(CPPFLAGS) $(CFLAGS) $(DEPFLAGS) -MF $(BUILD)/tools/$*.d -MT $@ $< $(LIBVET) $(LDFLAGS) $(LDLIBS) -o $@
$(BUILD)/tests/%: tests/unit/%.c $(LIBVET)
	@mkdir -p $(@D)
	$(CC) $(CPPFLAGS) -Itests/unit $(CFLAGS) $(DEPFLAGS) -MF $@.d -MT $@ $< $(LIBVET) $(LDFLAGS) $(LDLIBS) -o $@
# nvcc compiles a .cu unit test as host code (no GPU needed); the C++ compiler links it with this
# build's sanitizers (-Xcompiler splits its argument at commas: one flag at a time).
CU_TEST_SAN := $(if $(SANFLAGS),-Xcompiler -fsanitize=address -Xcompiler -fsanitize=undefined \
                 -Xcompiler -fno-sanitize-recover=undefined -Xcompiler -fno-omit-frame-pointer)
$(BUILD)/tests/%: tests/unit/%.cu tests/unit/check.h $(wildcard kernels/*.cuh)
	@mkdir -p $(@D)
	$(NVCC) -std=c++17 -O1 -g -Ilib -I. -Itests/unit $(CU_TEST_SAN) -c $< -o $@.o
	$(CXX) $(SANFLAGS) $@.o -L$(CUDA_HOME)/lib64 -Wl,-rpath,$(CUDA_HOME)/lib64 -lcudart -o $@
# -ffp-contract=off: a product and a sum round apart, as the kernels' __fmul_rn and __fadd_rn.
$(BUILD)/tests/%: tests/unit/%.cc tests/unit/simt_emu.h tests/unit/emu_check.h tests/unit/check.h $(wildcard kernels/*.cuh kernels/*.cu) \
                  $(LIBVET)
	@mkdir -p $(@D)
	$(CXX) -std=c++17 -O1 -g -Wall -Wextra -Wno-unknown-pragmas -Wno-sign-compare -ffp-contract=off -DVET_SIMT_EMU \
	  -I$(CUDA_HOME)/include -Ilib -I. -Itests/unit $(SANFLAGS) $< $(LIBVET) $(LDFLAGS) $(LDLIBS) -fopenmp -o $@
$(BUILD)/tests/helpers/%: tests/helpers/%.c $(LIBVET)
	@mkdir -p $(@D)
	$(CC) $(CPPFLAGS) $(CFLAGS) $(DEPFLAGS) -MF $@.d -MT $@ $< $(LIBVET) $(LDFLAGS) $(LDLIBS) -o $@
$(BUILD)/tools:
	@mkdir -p $@
$(TOOLS): | $(BUILD)/tools
-include $(CU_OBJ:.o=.d) $(wildcard $(BUILD)/tools/*.d $(BUILD)/tests/*.d $(BUILD)/tests/helpers/*.d)

helpers: $(UNIT) $(UNIT_CU) $(UNIT_EMU) $(HELPERS)

deps:
	@if [ "$$(id -u)" != 0 ]; then echo "make deps: run as root (apt-get install)"; exit 1; fi
	@missing=$$(for p in $(DEB_PACKAGES); do dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q "ok installed" || echo $$p; done); \
	if [ -z "$$missing" ]; then echo "make deps: all Debian packages present"; \
	else echo "make deps: installing $$missing"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null && \
	  echo "make deps: installed $$missing"; fi

# The whole suite: unit binaries, end-to-end scripts, the reference (PyTorch) suite.
# test-build makes what it runs (`make -j test-build` in parallel, then `make test`: the suite's
# own processes then do not inherit a make jobserver).
test-build: all $(UNIT) $(UNIT_CU) $(UNIT_EMU) $(HELPERS) tokenizer build/standin/test_gpu_model build/standin/vet-train build/standin/vet-generate build/standin/test_gpu_infer build/standin/test_collective build/standin/op_parity gpuemu
test: test-build
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
