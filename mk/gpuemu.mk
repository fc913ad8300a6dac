# mk/gpuemu.mk — a whole device on the CPU: lib/ built with VET_CUDA=1 as for a GPU, and linked
# with kernels/*.cu themselves compiled by the C++ compiler for the SIMT emulator
# (tests/unit/simt_emu.h) plus the CUDA runtime and cuBLAS done on the host
# (tests/gpu/emu/cuda_emu.cc). Where the stand-in (mk/gpustub.mk) replaces every kernel by the
# CPU op it promises to equal, this runs the kernels as written: their launches, grids, tiles
# and the host functions that choose them, composed by the GPU model as on a device. Needs the
# CUDA toolkit's headers (built where nvcc is, as the emulator's unit tests), no GPU, no
# CUDA library; under ASan + UBSan as the stand-in.
#
#   make gpuemu        builds build/emu/test_gpu_model, test_gpu_infer, op_parity, vet-train,
#                      vet-generate (tests/e2e/test_gpu_emu*.sh and test_device_emu.sh run them)
#                      and vet-fwdbwd (tests/reference/test_device_parity.py: against PyTorch)
ifeq ($(CUDA),1)
EMU          := build/emu
# mk/gpustub.mk's flags (read when the recipes run: it is included after this file).
EMU_SAN       = $(STANDIN_SAN)
EMU_CPPF      = $(STANDIN_CPPF)
EMU_CF        = $(STANDIN_CF)
# The kernels: every kernels/*.cu but cuBLAS's loader (cuda_emu.cc stands for cuBLAS), the
# emulator included before each, fp32 products and sums rounded apart as on the device.
EMU_KCXXF     = -std=c++17 -O1 -g -fno-omit-frame-pointer -Wall -Wextra -Wno-unknown-pragmas -Wno-sign-compare \
                -ffp-contract=off -fopenmp -DVET_SIMT_EMU -I$(CUDA_HOME)/include -Itests/unit $(EMU_SAN)
EMU_KSRC     := $(filter-out kernels/cublas.cu,$(CU_SRC)) $(CU_CXX_SRC) tests/gpu/emu/cuda_emu.cc
EMU_KOBJ     := $(patsubst %,$(EMU)/%.o,$(basename $(EMU_KSRC)))
$(EMU)/kernels/%.o: kernels/%.cu tests/unit/simt_emu.h $(BUILD_STAMP)
	@mkdir -p $(@D)
	$(CXX) $(EMU_CPPF) $(EMU_KCXXF) $(DEPFLAGS) -include tests/unit/simt_emu.h -x c++ -c $< -o $@
# kernels/*.cc (host-only C++: cuDNN's attention, without cuDNN's frontend here, so the version
# that says it was not built: cuDNN's kernels cannot run on the emulator).
$(EMU)/kernels/%.o: kernels/%.cc $(BUILD_STAMP)
	@mkdir -p $(@D)
	$(CXX) $(EMU_CPPF) $(EMU_KCXXF) $(DEPFLAGS) -c $< -o $@
$(EMU)/tests/gpu/emu/cuda_emu.o: tests/gpu/emu/cuda_emu.cc tests/unit/simt_emu.h $(BUILD_STAMP)
	@mkdir -p $(@D)
	$(CXX) $(EMU_CPPF) $(EMU_KCXXF) $(DEPFLAGS) -include tests/unit/simt_emu.h -c $< -o $@
-include $(EMU_KOBJ:.o=.d)

# The library's objects are the stand-in's (mk/gpustub.mk: the same flags, VET_CUDA=1 under
# ASan + UBSan): compiled once for both; only the kernels differ.
EMU_LIBOBJ   := $(patsubst %,build/standin/%.o,$(basename $(LIB_SRC)))
$(EMU)/libvet.a: $(EMU_LIBOBJ) $(EMU_KOBJ)
	@rm -f $@
	ar rcs $@ $^

EMU_PROGS := $(EMU)/test_gpu_model $(EMU)/test_gpu_infer $(EMU)/op_parity $(EMU)/vet-train $(EMU)/vet-generate \
             $(EMU)/vet-fwdbwd
$(EMU)/test_gpu_model: tests/gpu/test_gpu_model.c
$(EMU)/test_gpu_infer: tests/gpu/test_gpu_infer.c
$(EMU)/op_parity: tests/gpu/op_parity.c
$(EMU)/vet-train: tools/vet-train.c
$(EMU)/vet-generate: tools/vet-generate.c
$(EMU)/vet-fwdbwd: tests/helpers/vet-fwdbwd.c
$(EMU_PROGS): tests/gpu/gpu_test_util.h tests/unit/check.h tests/unit/tiny_models.h tools/cli.h $(EMU)/libvet.a
	$(CC) $(EMU_CPPF) $(EMU_CF) $(filter %.c,$^) $(EMU)/libvet.a -fopenmp $(EMU_SAN) $(LDLIBS_NOCUDA) -o $@
gpuemu: $(EMU_PROGS)
else
gpuemu:
	@echo "make gpuemu: needs the CUDA toolkit's headers (nvcc not found); nothing built"
endif
.PHONY: gpuemu
