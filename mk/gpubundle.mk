# mk/gpubundle.mk — the GPU bundle: everything one device lease needs, in one folder (docs/cuda.md).
#
#   make gpu-bundle      builds dist/gpu/ (needs nvcc; no GPU): the programs and GPU tests built
#                        with CUDA for sm_80 and sm_90 and for -march=x86-64-v3 (no AVX-512 assumed),
#                        the same tests on the CPU stand-in (for the rehearsal), every shared library
#                        they load that is not glibc's or CUDA's, the benchmark scripts, the DLO notes
#                        and a tokenizer, and run.sh. At most 60 MiB (checked).
#   make gpu-rehearsal   builds the bundle, then runs `run.sh --cpu` inside a minimal Debian root
#                        without the -dev packages (tests/gpu/bundle/rehearse.sh; root and
#                        debootstrap needed): every part must end `ok`. CI runs it.
#
# The device machine has nvcc, the CUDA libraries, the NVIDIA driver and python3 with torch,
# transformers and peft, but none of Debian's -dev packages and no network: what vet links
# (sentencepiece, protobuf-lite, msgpack-c, zstd, jansson, PCRE2, utf8proc, OpenBLAS, libgomp,
# libstdc++ ...) travels packed in dist/gpu/lib.tar.xz, and the programs themselves (built into
# build/bundle/progs/) in dist/gpu/programs.tar.xz (each CUDA program carries every kernel for two
# architectures: ~16 MB, ~2 MB packed); run.sh unpacks both into its work directory, where the
# programs find the libraries through their DT_RPATH ($ORIGIN/../lib; RPATH, not RUNPATH, so that
# it also holds for the libraries' own dependencies).
BUNDLE_DIR   := dist/gpu
BUNDLE_BUILD := build/bundle
BUNDLE_ARCH  := x86-64-v3
BUNDLE_PROGS := $(BUNDLE_BUILD)/progs

ifeq ($(CUDA),1)
BUNDLE_CPPF := -Ilib -I. -DVET_VERSION='"$(VERSION)"' -D_GNU_SOURCE -DVET_CUDA=1
BUNDLE_CF   := -std=c11 -O3 -march=$(BUNDLE_ARCH) -Wall -Wextra -Wshadow -Wno-unused-parameter \
               -Wno-format-truncation -fopenmp
BUNDLE_CXXF := -std=c++17 -O3 -march=$(BUNDLE_ARCH) -Wall -Wextra
# --as-needed: a program records only the libraries it uses (vet-dump does not need cuBLAS).
BUNDLE_LDF  := -fopenmp -Wl,--as-needed -Wl,--disable-new-dtags -Wl,-rpath,'$$ORIGIN/../lib' \
               -Wl,-rpath,$(CUDA_HOME)/lib64
BUNDLE_CUDA_LIBS := $(LDLIBS_NOCUDA) -L$(CUDA_HOME)/lib64 -lcudart -ldl  # cuBLAS: dlopen (kernels/cublas.cu)
BUNDLE_LIB_OBJ = $(patsubst %,$(BUNDLE_BUILD)/%.o,$(basename $(LIB_SRC)))
BUNDLE_STANDIN_OBJ := $(BUNDLE_BUILD)/tests/gpu/standin/ops_cuda_cpu.o

# One compile of lib/ (with VET_CUDA=1) makes two archives: libvet.a with the CUDA kernels (the
# release build's objects, Makefile: build/cuda), and libvet-standin.a with the CPU stand-in in
# their place (the rehearsal's test programs).
$(eval $(call vet_lib_build,$(BUNDLE_BUILD),$(CC),$(CXX),$(BUNDLE_CPPF),$(BUNDLE_CF),$(BUNDLE_CXXF),$(CU_OBJ)))
$(BUNDLE_BUILD)/libvet-standin.a: $(BUNDLE_LIB_OBJ) $(BUNDLE_STANDIN_OBJ)
	@rm -f $@
	ar rcs $@ $^

BUNDLE_TOOLS   := $(patsubst tools/%.c,$(BUNDLE_PROGS)/bin/%,$(wildcard tools/vet-*.c))
BUNDLE_HELPERS := $(BUNDLE_PROGS)/bin/vet-inspect $(BUNDLE_PROGS)/bin/vet-mktokens $(BUNDLE_PROGS)/bin/vet-fwdbwd \
                  $(BUNDLE_PROGS)/cpu/vet-fwdbwd $(BUNDLE_PROGS)/cpu/vet-generate
BUNDLE_GPUTEST := $(patsubst %,$(BUNDLE_PROGS)/test/%,op_parity test_gpu_model test_gpu_infer gemm_rate)
BUNDLE_CPUTEST := $(patsubst %,$(BUNDLE_PROGS)/cpu/%,op_parity test_gpu_model test_gpu_infer gemm_rate)

$(BUNDLE_PROGS)/bin/%: tools/%.c $(BUNDLE_BUILD)/libvet.a
	@mkdir -p $(@D)
	$(CC) $(BUNDLE_CPPF) $(BUNDLE_CF) $< $(BUNDLE_BUILD)/libvet.a $(BUNDLE_LDF) $(BUNDLE_CUDA_LIBS) -o $@
$(BUNDLE_PROGS)/bin/%: tests/helpers/%.c $(BUNDLE_BUILD)/libvet.a
	@mkdir -p $(@D)
	$(CC) $(BUNDLE_CPPF) $(BUNDLE_CF) $< $(BUNDLE_BUILD)/libvet.a $(BUNDLE_LDF) $(BUNDLE_CUDA_LIBS) -o $@
$(BUNDLE_PROGS)/test/%: tests/gpu/%.c tests/gpu/gpu_test_util.h $(BUNDLE_BUILD)/libvet.a
	@mkdir -p $(@D)
	$(CC) $(BUNDLE_CPPF) $(BUNDLE_CF) $< $(BUNDLE_BUILD)/libvet.a $(BUNDLE_LDF) $(BUNDLE_CUDA_LIBS) -o $@
$(BUNDLE_PROGS)/cpu/%: tests/gpu/%.c tests/gpu/gpu_test_util.h $(BUNDLE_BUILD)/libvet-standin.a
	@mkdir -p $(@D)
	$(CC) $(BUNDLE_CPPF) $(BUNDLE_CF) $< $(BUNDLE_BUILD)/libvet-standin.a $(BUNDLE_LDF) $(LDLIBS_NOCUDA) -o $@
# vet-fwdbwd's and vet-generate's device paths against PyTorch (run.sh's torch-parity part) on the
# stand-in, for the rehearsal.
$(BUNDLE_PROGS)/cpu/vet-fwdbwd: tests/helpers/vet-fwdbwd.c $(BUNDLE_BUILD)/libvet-standin.a
$(BUNDLE_PROGS)/cpu/vet-generate: tools/vet-generate.c $(BUNDLE_BUILD)/libvet-standin.a
$(BUNDLE_PROGS)/cpu/vet-fwdbwd $(BUNDLE_PROGS)/cpu/vet-generate:
	@mkdir -p $(@D)
	$(CC) $(BUNDLE_CPPF) $(BUNDLE_CF) $< $(BUNDLE_BUILD)/libvet-standin.a $(BUNDLE_LDF) $(LDLIBS_NOCUDA) -o $@

# The rest (libraries, scripts, data, the manifest, the size check) is assembled by a script;
# VET_SHARED names the shared/ folder whose DLO notes travel (synthetic notes without it).
# The bundle carries cuDNN's attention (the lease times it against vet's): its frontend headers
# must have been there when kernels/attention_cudnn.cc was compiled (`make cudnn-frontend`).
gpu-bundle: $(BUNDLE_TOOLS) $(BUNDLE_HELPERS) $(BUNDLE_GPUTEST) $(BUNDLE_CPUTEST)
	@test -n "$(CUDNN_FE_H)" || { echo "make gpu-bundle: no cuDNN frontend headers in $(CUDNN_FE): run make cudnn-frontend, then make gpu-bundle"; exit 1; }
	+@sh tests/gpu/bundle/assemble.sh $(BUNDLE_DIR) $(BUNDLE_ARCH) $(BUNDLE_PROGS)
gpu-rehearsal: gpu-bundle
	@sh tests/gpu/bundle/rehearse.sh $(BUNDLE_DIR)
else
gpu-bundle gpu-rehearsal:
	@echo "make $@: needs nvcc (the CUDA toolkit) to build the bundle; none found, or CUDA=0"; exit 1
endif
.PHONY: gpu-bundle gpu-rehearsal
