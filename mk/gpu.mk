# mk/gpu.mk — the GPU tests in tests/gpu: CUDA ops against the CPU ops (see docs/cuda.md).
#
#   make gpu-build     builds $(BUILD)/tests/gpu/op_parity (CUDA builds only)
#   make gpu-test      builds, then runs tests/gpu/run.sh (on a machine without a GPU it skips)
ifeq ($(CUDA),1)
GPU_TESTS := $(patsubst tests/gpu/%.c,$(BUILD)/tests/gpu/%,$(wildcard tests/gpu/*.c))

$(BUILD)/tests/gpu/%: tests/gpu/%.c tests/gpu/gpu_test_util.h $(LIBVET) kernels/ops_cuda.h | $(BUILD)/tests/gpu
	$(CC) $(CPPFLAGS) $(CFLAGS) $< $(LIBVET) $(LDFLAGS) $(LDLIBS) -o $@
$(BUILD)/tests/gpu:
	mkdir -p $@

gpu-build: $(GPU_TESTS)
gpu-test: gpu-build
	@VET_GPU_NO_BUILD=1 VET_BUILD=$(abspath $(BUILD)) tests/gpu/run.sh
else
gpu-build gpu-test:
	@echo "make $@: needs a build with CUDA (nvcc not found, or CUDA=0)"; exit 1
endif
.PHONY: gpu-build gpu-test
