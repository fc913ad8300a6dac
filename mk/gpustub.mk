# mk/gpustub.mk — the GPU model's host code on the CPU: lib/ built with VET_CUDA=1 but linked
# against tests/gpu/standin/ops_cuda_cpu.c (every op of kernels/ops_cuda.h done with the CPU
# ops) instead of kernels/*.cu, always under ASan + UBSan. No nvcc, no GPU, no CUDA libraries
# needed, so CI runs kernels/host/gpu_model.c on every machine (tests/e2e/test_gpu_standin.sh).
#
# The same objects also make build/standin/vet-train: `--device cuda` runs the trainer's device
# path (lib/train/trainer.c driving kernels/host/gpu_*.c) on the stand-in (tests/e2e/test_train_device.sh),
# and build/standin/vet-generate: `--device cuda` runs kernels/host/gpu_infer.c's prefill and decode
# steps (tests/e2e/test_generate_device.sh).
#
#   make gpustub       builds build/standin/test_gpu_model, test_gpu_infer, test_collective, op_parity,
#                      vet-train and vet-generate
STANDIN      := build/standin
STANDIN_TEST := $(STANDIN)/test_gpu_model
STANDIN_TRAIN:= $(STANDIN)/vet-train
STANDIN_GEN  := $(STANDIN)/vet-generate
STANDIN_INFER:= $(STANDIN)/test_gpu_infer
STANDIN_SAN  := -fsanitize=address,undefined -fno-sanitize-recover=undefined
STANDIN_CPPF := -Ilib -I. -DVET_VERSION='"$(VERSION)"' -D_GNU_SOURCE -DVET_CUDA=1
STANDIN_CF   := -std=c11 -O1 -g $(filter -march=%,$(OPT)) -fno-omit-frame-pointer -Wall -Wextra -Wshadow -Wno-unused-parameter \
                -Wno-format-truncation -fopenmp $(STANDIN_SAN)
STANDIN_CXXF := -std=c++17 -O1 -g $(filter -march=%,$(OPT)) -fno-omit-frame-pointer -Wall -Wextra $(STANDIN_SAN)
# The Makefile's libraries without CUDA's (the stand-in replaces cudart and cuBLAS).
STANDIN_LIBS := $(LDLIBS_NOCUDA)

# The library through the Makefile's one template (objects under build/standin), with the
# stand-in for kernels/*.cu inside the archive.
$(eval $(call vet_lib_build,$(STANDIN),$(CC),$(CXX),$(STANDIN_CPPF),$(STANDIN_CF),$(STANDIN_CXXF),$(STANDIN)/tests/gpu/standin/ops_cuda_cpu.o))
$(STANDIN_TEST): tests/gpu/test_gpu_model.c tests/gpu/gpu_test_util.h tests/unit/check.h tests/unit/tiny_models.h \
                 $(STANDIN)/libvet.a
	$(CC) $(STANDIN_CPPF) $(STANDIN_CF) $< $(STANDIN)/libvet.a \
	  -fopenmp $(STANDIN_SAN) $(STANDIN_LIBS) -o $@
$(STANDIN_TRAIN): tools/vet-train.c tools/cli.h $(STANDIN)/libvet.a
	$(CC) $(STANDIN_CPPF) $(STANDIN_CF) $< $(STANDIN)/libvet.a \
	  -fopenmp $(STANDIN_SAN) $(STANDIN_LIBS) -o $@
$(STANDIN_INFER): tests/gpu/test_gpu_infer.c tests/gpu/gpu_test_util.h tests/unit/check.h tests/unit/tiny_models.h \
                  $(STANDIN)/libvet.a
	$(CC) $(STANDIN_CPPF) $(STANDIN_CF) $< $(STANDIN)/libvet.a \
	  -fopenmp $(STANDIN_SAN) $(STANDIN_LIBS) -o $@
$(STANDIN_GEN): tools/vet-generate.c tools/cli.h $(STANDIN)/libvet.a
	$(CC) $(STANDIN_CPPF) $(STANDIN_CF) $< $(STANDIN)/libvet.a \
	  -fopenmp $(STANDIN_SAN) $(STANDIN_LIBS) -o $@
# kernels/host/gpu_collective.c compiled against a stand-in NCCL (ranks as threads) beside the
# stand-in ops: its reduce-scatter / sum / gather schedule checked without GPUs.
STANDIN_COLL := $(STANDIN)/test_collective
STANDIN_COLL_SRC := tests/gpu/standin/test_collective.c tests/gpu/standin/nccl_threads.c kernels/host/gpu_collective.c
$(STANDIN_COLL): $(STANDIN_COLL_SRC) tests/gpu/standin/nccl.h kernels/host/gpu_collective.h $(STANDIN)/libvet.a
	$(CC) $(STANDIN_CPPF) -DVET_NCCL=1 -Itests/gpu/standin $(STANDIN_CF) $(STANDIN_COLL_SRC) $(STANDIN)/libvet.a \
	  -fopenmp $(STANDIN_SAN) $(STANDIN_LIBS) -o $@
# The lease's parity harness (tests/gpu/op_parity.c) on the stand-in: its bookkeeping, refusals
# and buffers checked under ASan + UBSan before a GPU runs it (tests/e2e/test_op_parity_standin.sh).
STANDIN_PARITY := $(STANDIN)/op_parity
$(STANDIN_PARITY): tests/gpu/op_parity.c $(STANDIN)/libvet.a
	$(CC) $(STANDIN_CPPF) $(STANDIN_CF) $< $(STANDIN)/libvet.a \
	  -fopenmp $(STANDIN_SAN) $(STANDIN_LIBS) -o $@
gpustub: $(STANDIN_TEST) $(STANDIN_TRAIN) $(STANDIN_GEN) $(STANDIN_INFER) $(STANDIN_COLL) $(STANDIN_PARITY)
.PHONY: gpustub
