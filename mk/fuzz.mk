# mk/fuzz.mk — libFuzzer harnesses for every parser of outside input (tests/fuzz/fuzz_*.c).
#
#   make fuzz                   build the harnesses (clang, ASan + UBSan + libFuzzer) and run each
#                               FUZZ_SECONDS (default 60) on its seeds; fails on any crash, leak,
#                               timeout or sanitizer report, leaving the input in build/fuzz/crashes
#   make fuzz FUZZ_ONLY=csv     only the named harnesses (space separated)
#   make fuzz FUZZ_JOBS=1       one harness at a time (default: as many as cores)
#   make fuzz FUZZ_SEED=1 FUZZ_RUNS=N   a fixed seed and at most N inputs per harness: the same
#                               exploration every run (CI), whatever the machine's speed
#   make fuzz-regress           replay every committed input: tests/fuzz/regress/<harness>/* (each
#                               a crash once found, now fixed) and tests/fuzz/corpus/<harness>/*
#   make fuzz-build             only build build/fuzz/fuzz_<harness>
#
# Needs clang and libFuzzer's runtime (Debian 12: packages clang and libclang-rt-14-dev). lib/ is
# compiled again with clang and the same sanitizers into build/fuzz (C++ shim with clang++);
# OpenMP comes from GCC's libgomp, as in the normal build. docs/reliability.md has the results.

FUZZ_CC      ?= clang
FUZZ_CXX     ?= clang++
FUZZ_SECONDS ?= 60
FUZZ_JOBS    ?= $(shell nproc 2>/dev/null || echo 1)
FUZZ_ONLY    ?=
FUZZ_OUT     := build/fuzz
FUZZ_SAN     := -fsanitize=address,undefined -fno-sanitize-recover=undefined
FUZZ_OPT     := -O1 -g -fno-omit-frame-pointer $(if $(filter 1,$(NATIVE)),-march=native)
FUZZ_CPPFLAGS:= -Ilib -I. -DVET_VERSION='"$(VERSION)"' -D_GNU_SOURCE
FUZZ_CFLAGS  := -std=c11 $(FUZZ_OPT) -Wall -Wextra -Wno-unused-parameter -fopenmp=libgomp \
                -fsanitize=fuzzer-no-link $(FUZZ_SAN)
FUZZ_CXXFLAGS:= -std=c++17 $(FUZZ_OPT) -Wall -Wextra -fsanitize=fuzzer-no-link $(FUZZ_SAN)
FUZZ_LDLIBS  := -lsentencepiece -lmsgpackc -lzstd -ljansson -lpcre2-8 -lutf8proc -lopenblas -lstdc++ -lm -lpthread
FUZZ_ALL     := $(patsubst tests/fuzz/fuzz_%.c,%,$(wildcard tests/fuzz/fuzz_*.c))
FUZZ_NAMES   := $(if $(FUZZ_ONLY),$(FUZZ_ONLY),$(FUZZ_ALL))
FUZZ_BINS    := $(FUZZ_ALL:%=$(FUZZ_OUT)/fuzz_%)
# Each harness gets at most this much memory and time per input; libFuzzer counts more as a bug.
FUZZ_SEED    ?=
FUZZ_RUNS    ?=
FUZZ_FLAGS   := -timeout=20 -rss_limit_mb=2048 -max_len=65536 -print_final_stats=1 $(if $(FUZZ_SEED),-seed=$(FUZZ_SEED)) $(if $(FUZZ_RUNS),-runs=$(FUZZ_RUNS))
export ASAN_OPTIONS ?= detect_leaks=1:abort_on_error=0
export UBSAN_OPTIONS ?= print_stacktrace=1:halt_on_error=1

.PHONY: fuzz fuzz-build fuzz-regress fuzz-seeds fuzz-check-clang
fuzz-check-clang:
	@command -v $(FUZZ_CC) >/dev/null && command -v $(FUZZ_CXX) >/dev/null || \
	  { echo "make fuzz: $(FUZZ_CC)/$(FUZZ_CXX) not found (Debian: apt-get install clang libclang-rt-14-dev)"; exit 1; }

# The library through the Makefile's one template, compiled by clang with the fuzzing flags.
$(eval $(call vet_lib_build,$(FUZZ_OUT),$(FUZZ_CC),$(FUZZ_CXX),$(FUZZ_CPPFLAGS),$(FUZZ_CFLAGS),$(FUZZ_CXXFLAGS),))
$(FUZZ_OUT)/libvet.a: | fuzz-check-clang
$(FUZZ_OUT)/fuzz_%: tests/fuzz/fuzz_%.c tests/fuzz/fuzz_util.h $(FUZZ_OUT)/libvet.a
	$(FUZZ_CC) $(FUZZ_CPPFLAGS) $(FUZZ_CFLAGS) -fsanitize=fuzzer -fsanitize-link-c++-runtime $< $(FUZZ_OUT)/libvet.a $(FUZZ_LDLIBS) -o $@

fuzz-build: $(FUZZ_BINS)

# Seeds need the programs (streams are made by vet-tokenize and vet-pack).
fuzz-seeds: all fuzz-build
	@VET_SHARED=$${VET_SHARED-$(if $(wildcard ../shared/data),$(abspath ../shared))} \
	  tests/fuzz/seeds.sh $(FUZZ_OUT)/seeds $(abspath $(BIN)) $(abspath $(FUZZ_OUT))

# Each harness: FUZZ_SECONDS on its growing corpus (build/fuzz/corpus/<h>, kept between runs)
# plus the seeds, FUZZ_JOBS harnesses at a time (default: one per core); a summary line per
# harness; the log in build/fuzz/logs/<h>.log (tests/fuzz/run.sh).
fuzz: fuzz-seeds
	@FUZZ_FLAGS='$(FUZZ_FLAGS)' sh tests/fuzz/run.sh $(FUZZ_OUT) $(FUZZ_SECONDS) $(FUZZ_JOBS) $(FUZZ_NAMES)

# Replays committed inputs one by one (no fuzzing): each must run clean.
fuzz-regress: fuzz-build
	@fail=0; for h in $(FUZZ_ALL); do \
	  files=$$(ls tests/fuzz/regress/$$h/* tests/fuzz/corpus/$$h/* 2>/dev/null); \
	  [ -n "$$files" ] || continue; \
	  if $(FUZZ_OUT)/fuzz_$$h $$files >$(FUZZ_OUT)/regress-$$h.log 2>&1; then \
	    echo "fuzz-regress $$h: ok ($$(echo $$files | wc -w) inputs)"; \
	  else fail=1; echo "fuzz-regress $$h: FAILED"; grep -E 'Running:|ERROR|runtime error|SUMMARY' $(FUZZ_OUT)/regress-$$h.log | tail -n 6 | sed 's/^/    /'; fi; \
	done; exit $$fail
