#!/usr/bin/env bash
# test_runners.sh — the two runners CI's verdict rests on, on planted programs: tests/run (the
# suite, VET_TEST_JOBS at a time) must count every ok / not ok / skip line, count a crash, an exit
# status without a failure line and a program that reports nothing as failures, name them, and
# exit non-zero, whatever the number of jobs; tests/fuzz/run.sh (make fuzz) must report each
# harness in order and fail on a failing or missing one; the GPU bundle's run.sh must refuse a
# bundle whose packed libraries cannot be unpacked, with one line and exit 2.
set -u
: "${VET_TOP:?}"
tmp=$(mktemp -d "${TMPDIR:-/tmp}/vet-runners.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
ok() { echo "ok $1"; }
fail() { echo "not ok $1"; }
check() { local name=$1; shift; if "$@"; then ok "$name"; else fail "$name"; fi; }

# Planted unit programs: tests/run looks for $VET_BUILD/tests/test_*; the filter "plantedrun"
# matches no real test file.
mkdir -p "$tmp/build/tests"
plant() { printf '#!/bin/sh\n%s\n' "$2" >"$tmp/build/tests/test_plantedrun_$1"; chmod +x "$tmp/build/tests/test_plantedrun_$1"; }
plant pass 'echo "ok a"; echo "ok b"'
plant fail 'echo "ok a"; echo "not ok b"; echo "why b failed" >&2'
plant status 'echo "ok a"; exit 3'
plant crash 'echo "ok a"; kill -SEGV $$'
plant silent 'exit 0'
plant skip 'sleep 1; echo "skip c: no such thing here"'

run_suite() {  # run_suite JOBS: the planted suite; its output in $tmp/suite-JOBS
    VET_BUILD="$tmp/build" VET_TEST_JOBS=$1 "$VET_TOP/tests/run" plantedrun >"$tmp/suite-$1" 2>&1
}
suite_ok() {
    local j=$1 out="$tmp/suite-$1"
    run_suite "$j" && { echo "exit 0 with failures (jobs $j)" >&2; return 1; }
    # ok: pass 2 + fail 1 + status 1 + crash 1 = 5; failed: fail, status, crash, silent = 4; skipped 1
    grep -qx "vet: 5 passed, 4 failed, 1 skipped" "$out" || { cat "$out" >&2; return 1; }
    local t
    for t in fail status crash silent; do
        grep -q "^failed: .*unit/test_plantedrun_$t" "$out" || { echo "jobs $j: $t not named" >&2; return 1; }
    done
    grep -q "^failed: .*test_plantedrun_pass" "$out" && { echo "jobs $j: pass named as failed" >&2; return 1; }
    grep -q "not ok unit/test_plantedrun_status (exit status 3)" "$out" &&
        grep -q "not ok unit/test_plantedrun_crash (exit status 139)" "$out" &&
        grep -q "not ok unit/test_plantedrun_silent (ran no test case)" "$out" &&
        grep -q "| why b failed" "$out" && grep -q "skip c: no such thing here" "$out" ||
        { cat "$out" >&2; return 1; }
    # one report line per program
    [ "$(grep -c '^unit/test_plantedrun_' "$out")" = 6 ] || { cat "$out" >&2; return 1; }
}
check runner_counts_one_job suite_ok 1
check runner_counts_three_jobs suite_ok 3

passing_ok() {
    VET_BUILD="$tmp/build" VET_TEST_JOBS=2 "$VET_TOP/tests/run" plantedrun_pass plantedrun_skip >"$tmp/pass" 2>&1 &&
        grep -qx "vet: 2 passed, 0 failed, 1 skipped" "$tmp/pass"
}
check runner_passing_exits_0 passing_ok

bad_jobs_ok() {
    VET_BUILD="$tmp/build" VET_TEST_JOBS=two "$VET_TOP/tests/run" plantedrun >"$tmp/bad" 2>&1
    [ $? -eq 2 ] && grep -q "VET_TEST_JOBS=two" "$tmp/bad"
}
check runner_refuses_bad_jobs bad_jobs_ok

# tests/fuzz/run.sh: harnesses OUT/fuzz_<h>, their seeds in OUT/seeds/<h>.
mkdir -p "$tmp/fuzz/seeds/good" "$tmp/fuzz/seeds/bad"
printf '#!/bin/sh\necho "#9 cov: 7 ft: 8 corp: 9"\necho "stat::number_of_executed_units: 42"\n' >"$tmp/fuzz/fuzz_good"
printf '#!/bin/sh\necho "==1==ERROR: AddressSanitizer: planted"\nexit 77\n' >"$tmp/fuzz/fuzz_bad"
chmod +x "$tmp/fuzz/fuzz_good" "$tmp/fuzz/fuzz_bad"
fuzz_ok() {
    sh "$VET_TOP/tests/fuzz/run.sh" "$tmp/fuzz" 5 2 good bad gone >"$tmp/fuzz.out" 2>&1 &&
        { echo "exit 0 with failing harnesses" >&2; return 1; }
    [ "$(sed -n 1p "$tmp/fuzz.out")" = "fuzz good: ok, 42 runs (at most 5 s), cov: 7 ft: 8 corp: 9" ] &&
        grep -q "^fuzz bad: FAILED (exit 77)" "$tmp/fuzz.out" && grep -q "ERROR: AddressSanitizer: planted" "$tmp/fuzz.out" &&
        grep -q "^fuzz gone: FAILED" "$tmp/fuzz.out" || { cat "$tmp/fuzz.out" >&2; return 1; }
    sh "$VET_TOP/tests/fuzz/run.sh" "$tmp/fuzz" 5 1 good >"$tmp/fuzz1.out" 2>&1 || { cat "$tmp/fuzz1.out" >&2; return 1; }
    sh "$VET_TOP/tests/fuzz/run.sh" "$tmp/fuzz" 5 0 good >"$tmp/fuzz0.out" 2>&1
    [ $? -eq 2 ] && grep -q "JOBS=0: a whole number of at least 1" "$tmp/fuzz0.out"
}
check fuzz_runner_verdicts fuzz_ok

# pack_dir ARCHIVE DIR NAME: DIR packed as NAME/ into the xz tar ARCHIVE (Python's tarfile, as
# run.sh can read it where xz is missing).
pack_dir() {
    /usr/bin/python3 -c 'import sys, tarfile
with tarfile.open(sys.argv[1], "w:xz") as t: t.add(sys.argv[2], arcname=sys.argv[3])' "$1" "$2" "$3"
}

# tests/gpu/bundle/run.sh on a bundle whose programs.tar.xz or lib.tar.xz is not an archive: one
# line naming it, exit 2, no part run. (make gpu-rehearsal, as root in CI, runs it on a real
# bundle.)
bundle_refusal_ok() {
    local b=$tmp/bundle out rc
    mkdir -p "$b/progs/cpu" "$b/lib"
    cp "$VET_TOP/tests/gpu/bundle/run.sh" "$b/run.sh"
    echo "not an archive" >"$b/programs.tar.xz"
    pack_dir "$b/lib.tar.xz" "$b/lib" lib || return 1
    out=$(bash "$b/run.sh" --cpu "$tmp/bundle-out" 2>&1)
    rc=$?
    [ $rc -eq 2 ] && [ "$(echo "$out" | wc -l)" -eq 1 ] &&
        grep -q "^run.sh: cannot unpack $b/programs.tar.xz" <<<"$out" || { echo "exit $rc: $out" >&2; return 1; }
    pack_dir "$b/programs.tar.xz" "$b/progs/cpu" cpu || return 1
    echo "not an archive" >"$b/lib.tar.xz"
    out=$(bash "$b/run.sh" --cpu "$tmp/bundle-out" 2>&1)
    rc=$?
    [ $rc -eq 2 ] && [ "$(echo "$out" | wc -l)" -eq 1 ] &&
        grep -q "^run.sh: cannot unpack $b/lib.tar.xz" <<<"$out" || { echo "exit $rc: $out" >&2; return 1; }
}
check bundle_run_refuses_bad_archive bundle_refusal_ok

# tests/gpu/bundle/run.sh's attention fallback, from planted parity rows: a failed default row
# turns on the first of `_sync` (VET_GPU_ATTENTION=tc-sync) and `_transposed` (tc-transposed)
# whose rows all passed, else the fp32 kernels; no failed default row, no fallback; a parity run
# that printed no row (it hung or crashed) counts as failed, and parity-mid is then not run. (The planted
# bundle has only run.sh, scripts/choose.py, a parity program packed and an empty library archive;
# its summary fails, which this does not look at.)
attention_fallback_ok() {
    local b=$tmp/fallback
    mkdir -p "$b/progs/cpu" "$b/lib" "$b/scripts"
    cp "$VET_TOP/tests/gpu/bundle/run.sh" "$b/run.sh"
    cp "$VET_TOP/tests/gpu/bundle/choose.py" "$b/scripts/"
    printf '#!/bin/sh\nprintf "%%b" "$PLANTED_ROWS"\n' >"$b/progs/cpu/op_parity"
    chmod +x "$b/progs/cpu/op_parity"
    pack_dir "$b/lib.tar.xz" "$b/lib" lib && pack_dir "$b/programs.tar.xz" "$b/progs/cpu" cpu || return 1
    local default_bad='not ok attention_forward_bf16 out: max rel err 1 (tol 4e-03)\n'
    local default_ok='ok attention_forward_bf16 out: max rel err 0 (tol 4e-03)\n'
    local sync_ok='ok attention_forward_bf16_sync out: max rel err 0 (tol 4e-03)\n'
    local sync_bad='not ok attention_backward_bf16_sync dq: max rel err 1 (tol 4e-03)\n'
    local tr_ok='ok attention_forward_bf16_transposed out: max rel err 0 (tol 4e-03)\n'
    local tr_bad='not ok attention_backward_bf16_transposed dq: max rel err 1 (tol 4e-03)\n'
    fallback_of() {  # the setting run.sh exported after parity-small printed $1, or "none"
        local err
        err=$(PLANTED_ROWS=$1 VET_PYTHON=/usr/bin/python3 bash "$b/run.sh" --cpu --parts parity-small "$tmp/fallback-out" 2>&1 >/dev/null)
        grep -o 'VET_GPU_ATTENTION=[a-z0-9-]* from here on' <<<"$err" | sed 's/ from here on//' | grep . || echo none
    }
    local s t f d h mid
    s=$(fallback_of "$default_bad$tr_ok$sync_ok")
    h=$(fallback_of "")
    mid=$(PLANTED_ROWS="" VET_PYTHON=/usr/bin/python3 bash "$b/run.sh" --cpu --parts parity-small,parity-mid "$tmp/fallback-out" 2>/dev/null)
    t=$(fallback_of "$default_bad$sync_ok$sync_bad$tr_ok")
    f=$(fallback_of "$default_bad$sync_bad$tr_ok$tr_bad")
    d=$(fallback_of "$default_ok$sync_bad$tr_bad")
    [ "$s" = VET_GPU_ATTENTION=tc-sync ] && [ "$t" = VET_GPU_ATTENTION=tc-transposed ] &&
        [ "$f" = VET_GPU_ATTENTION=fp32 ] && [ "$d" = none ] && [ "$h" = VET_GPU_ATTENTION=fp32 ] &&
        grep -q "^not ok parity-mid: parity-small did not finish" <<<"$mid" ||
        { echo "fallbacks: to sync: $s; to transposed: $t; to fp32: $f; default ok: $d; no rows: $h; $mid" >&2; return 1; }
}
check bundle_run_attention_fallback attention_fallback_ok

# The LoRA fallbacks on the same planted bundle: a failed row of a fused product, the backward's
# lora_du and lora_grad_b included, turns on VET_GPU_LORA_FUSED=0; a failed row of a tensor-core
# product (lora_*_mma) turns on VET_GPU_LORA_MMA=0 and only that; all of them passing, neither.
lora_fallback_ok() {
    local b=$tmp/fallback
    lora_of() {  # lora_of ROWS: the settings the run turned on, space-separated, or none
        local err
        err=$(PLANTED_ROWS=$1 VET_PYTHON=/usr/bin/python3 bash "$b/run.sh" --cpu --parts parity-small "$tmp/fallback-out" 2>&1 >/dev/null)
        grep -o 'VET_GPU_LORA_[A-Z]*=0 from here on' <<<"$err" | sed 's/ from here on//' | tr '\n' ' ' | sed 's/ $//' | grep . || echo none
    }
    local ok='ok lora_down_dropout: max rel err 0 (tol 1e-05)\nok lora_du: max rel err 0 (tol 1e-05)\nok lora_grad_b: max rel err 0 (tol 1e-05)\n'
    ok+='ok lora_down_mma vs rounded operands: max rel err 0 (tol 1e-04)\n'
    local du_bad='not ok lora_du: max rel err 1 (tol 1e-05)\n' gb_bad='not ok lora_grad_b: max rel err 1 (tol 1e-05)\n'
    local dd_bad='not ok lora_grad_a_dropout: max rel err 1 (tol 1e-05)\n'
    local mma_bad='not ok lora_du_mma vs rounded operands: max rel err 1 (tol 1e-04)\n'
    local a c d e m
    a=$(lora_of "$ok") c=$(lora_of "$ok$du_bad") d=$(lora_of "$ok$gb_bad") e=$(lora_of "$ok$dd_bad")
    m=$(lora_of "$ok$mma_bad")
    [ "$a" = none ] && [ "$c" = VET_GPU_LORA_FUSED=0 ] && [ "$d" = VET_GPU_LORA_FUSED=0 ] &&
        [ "$e" = VET_GPU_LORA_FUSED=0 ] && [ "$m" = VET_GPU_LORA_MMA=0 ] ||
        { echo "lora fallback: all ok: $a; du bad: $c; grad_b bad: $d; grad_a bad: $e; du_mma bad: $m" >&2; return 1; }
}
check bundle_run_lora_fallback lora_fallback_ok

# The element-wise fallback: a failed `wide` or `narrow` row (16 bytes a thread against one
# element a thread) turns on VET_GPU_WIDE=0; all passing, not; no such row printed, it does.
# planted_setting PARTS SETTING ROWS: SETTING (a basic regular expression) if run.sh, on the planted bundle with the parity
# program printing ROWS, ran PARTS and then said it exported SETTING, else none.
planted_setting() {
    local err
    err=$(PLANTED_ROWS=$3 VET_PYTHON=/usr/bin/python3 bash "$tmp/fallback/run.sh" --cpu --parts "$1" \
        "$tmp/fallback-out" 2>&1 >/dev/null)
    grep -o "$2 from here on" <<<"$err" | sed 's/ from here on//' | grep . || echo none
}
wide_fallback_ok() {
    wide_of() { planted_setting parity-small VET_GPU_WIDE=0 "$1"; }
    local ok='ok wide add_inplace: the same bits as one element a thread N=8 C=8
'
    ok+='ok narrow add_inplace: the same bits as 16 bytes a thread N=8 C=8
'
    local bad='not ok narrow rope_forward_bf16: the same bits as 16 bytes a thread N=8 H=1 hd=8
'
    local a w n
    a=$(wide_of "$ok") w=$(wide_of "$ok$bad") n=$(wide_of 'ok lora_du: max rel err 0 (tol 1e-05)\n')
    [ "$a" = none ] && [ "$w" = VET_GPU_WIDE=0 ] && [ "$n" = VET_GPU_WIDE=0 ] ||
        { echo "wide fallback: all ok: $a; one bad: $w; no rows: $n" >&2; return 1; }
}
check bundle_run_wide_fallback wide_fallback_ok

# The up-product choice: parity-mid's table timing vet's kernel faster than cuBLAS's SGEMM, with
# its rows passing, turns on VET_GPU_LORA_UP=vet; slower, a failed row, or no times, not.
up_choice_ok() {
    up_of() { planted_setting parity-small,parity-mid VET_GPU_LORA_UP=vet "$1"; }
    # the parity lines: a verdict (ok or not ok), or the table's header and its two up rows with
    # cuBLAS's and the kernel's milliseconds
    verdict() { printf '%s lora_up (kernel: y += s u B^T): max rel err %s (tol 1e-05) N=8 out=8 r=16\\n' "$1" "$2"; }
    up_times() {
        printf '| op | shape | max rel err | tol | ms |\\n'
        printf '| lora cuBLAS up (y += s u B^T) | N=8 out=8 r=16 | 0 | 1e-05 | %s |\\n' "$1"
        printf '| lora_up (kernel: y += s u B^T) | N=8 out=8 r=16 | 0 | 1e-05 | %s |\\n' "$2"
    }
    local ok bad fast slow untimed
    ok=$(verdict ok 0) bad=$(verdict 'not ok' 1)
    fast=$(up_times 0.0300 0.0100) slow=$(up_times 0.0100 0.0300) untimed=$(up_times - -)
    local f s2 x u
    f=$(up_of "$ok$fast") s2=$(up_of "$ok$slow") x=$(up_of "$bad$fast") u=$(up_of "$ok$untimed")
    [ "$f" = VET_GPU_LORA_UP=vet ] && [ "$s2" = none ] && [ "$x" = none ] && [ "$u" = none ] ||
        { echo "up choice: faster: $f; slower: $s2; failed row: $x; untimed: $u" >&2; return 1; }
}
check bundle_run_lora_up_choice up_choice_ok

# The other choices by speed (scripts/choose.py), from planted rows that all pass: the attention's
# tile schedule or cuDNN's attention whose forward (bf16 output) + backward is >= 3% under the
# default's, none within the margin or with a failed row; the 16-bit adapters' products on CUDA cores when their four
# rank-16 bf16 rows add up to >= 3% under the tensor cores' four, not when slower; one element
# a thread when the narrow rows add up to less than the wide ones.
speed_choices_ok() {
    row() { printf '| %s | %s | 0 | 1e-04 | %s |\\n' "$1" "$2" "$3"; }
    verdict() { printf '%s %s: max rel err 0 (tol 1e-04) %s\\n' "$1" "$2" "$3"; }
    attention() {  # attention SYNC_VERDICT CUDNN_VERDICT MS...: the four variants' rows (fwd, bwd ms each)
        local v=$1 vc=$2 sh='B=1 T=8 H=1 KVH=1 hd=8' out='' s fw bw
        shift 2
        out+='| op | shape | max rel err | tol | ms |\n'
        for s in '' _sync _transposed cudnn; do
            fw=attention_forward_bf16$s bw=attention_backward_bf16$s
            [ "$s" = cudnn ] && fw=attention_forward_cudnn bw=attention_backward_cudnn
            out+=$(row "$fw out16" "$sh" "$1")$(row "$bw dq" "$sh" "$2")
            out+=$(verdict "$(case $s in _sync) echo "$v" ;; cudnn) echo "$vc" ;; *) echo ok ;; esac)" "$fw out16" "$sh")
            out+=$(verdict ok "$bw dq" "$sh")
            shift 2
        done
        printf '%s' "$out"
    }
    att_of() { planted_setting parity-small,parity-mid 'VET_GPU_ATTENTION=[a-z-]*' "$1"; }
    lora() {  # lora MMA_MS TWIN_MS: the four products' rows, each product at those times
        local out='| op | shape | max rel err | tol | ms |\n' p
        for p in down_dropout grad_a_dropout du grad_b; do
            out+=$(row "lora_${p}16 == fp32 twin" 'N=64 C=8 r=16 p=0.1 bf16' "$2")
            out+=$(verdict ok "lora_${p}16 == fp32 twin" 'N=64 C=8 r=16 p=0.1 bf16')
            out+=$(row "lora_${p%_dropout}_mma vs rounded operands" 'N=64 C=8 r=16 p=0.1 bf16' "$1")
            out+=$(verdict ok "lora_${p%_dropout}_mma vs rounded operands" 'N=64 C=8 r=16 p=0.1 bf16')
        done
        printf '%s' "$out"
    }
    mma_of() { planted_setting parity-small,parity-mid VET_GPU_LORA_MMA=0 "$1"; }
    wide() {  # wide WIDE_MS NARROW_MS
        printf '| op | shape | max rel err | tol | ms |\n'
        row 'wide add_inplace' 'N=8 C=8' "$1"
        row 'narrow add_inplace' 'N=8 C=8' "$2"
        printf 'ok wide add_inplace: the same bits as one element a thread N=8 C=8\n'
        printf 'ok narrow add_inplace: the same bits as 16 bytes a thread N=8 C=8\n'
    }
    wide_of() { planted_setting parity-small,parity-mid VET_GPU_WIDE=0 "$1"; }
    local a1 a2 a3 a4 a5 a6 m1 m2 w1 w2
    a1=$(att_of "$(attention ok ok 10 20 5 10 14 15.5 20 20)")         # sync 15 against 30: chosen
    a2=$(att_of "$(attention 'not ok' ok 10 20 5 10 14 15.5 20 20)")   # sync failed; transposed 29.5: within 3%
    a3=$(att_of "$(attention ok ok 10 20 14 15.5 9 10 20 20)")         # transposed 19: chosen
    a4=$(att_of "$(attention ok ok - - 5 10 14 15.5 1 1)")             # the default untimed: no choice
    a5=$(att_of "$(attention ok ok 10 20 5 10 14 15.5 2 3)")           # cuDNN 5 against sync's 15: chosen
    a6=$(att_of "$(attention ok 'not ok' 10 20 5 10 14 15.5 2 3)")     # cuDNN failed its parity: sync
    m1=$(mma_of "$(lora 0.3 0.1)") m2=$(mma_of "$(lora 0.1 0.3)")
    w1=$(wide_of "$(wide 0.2 0.1)") w2=$(wide_of "$(wide 0.1 0.2)")
    [ "$a1" = VET_GPU_ATTENTION=tc-sync ] && [ "$a2" = none ] && [ "$a3" = VET_GPU_ATTENTION=tc-transposed ] &&
        [ "$a4" = none ] && [ "$a5" = VET_GPU_ATTENTION=cudnn ] && [ "$a6" = VET_GPU_ATTENTION=tc-sync ] &&
        [ "$m1" = VET_GPU_LORA_MMA=0 ] && [ "$m2" = none ] && [ "$w1" = VET_GPU_WIDE=0 ] &&
        [ "$w2" = none ] ||
        { echo "speed choices: attention $a1 / $a2 / $a3 / $a4 / $a5 / $a6; lora mma $m1 / $m2; wide $w1 / $w2" >&2; return 1; }
}
check bundle_run_speed_choices speed_choices_ok
