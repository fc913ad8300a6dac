#!/bin/sh
# shard-parallel.sh — one vet-generate run fanned out over N shards on this machine, then one
# vet-eval over the N streams.
#
#   pipelines/shard-parallel.sh [-j JOBS] [-r parallel|xargs] [-c CODES] N INPUT OUTDIR [VET-GENERATE ARGS...]
#
# Runs `vet-generate -q --shard K/N ARGS -o OUTDIR/shard-K-of-N.pred INPUT` for K = 0 .. N-1,
# JOBS at a time (default N), with GNU parallel (-r parallel, the default when it is installed)
# or xargs -P (-r xargs); then `vet-eval --json OUTDIR/metrics.json` over the N streams, which
# checks that they are a complete set and scores them as the unsharded run (same metrics, notes
# merged back in input order). Shard K holds notes K, K+N, K+2N, ... (round-robin). INPUT must
# be a file (each shard reads it; a name starting with - is one too). Paths and ARGS reach
# vet-generate as they are: a {} in them is not the shard number. Each shard gets -t nproc/JOBS threads (at least 1), its share
# of the cores, unless ARGS give another -t: threads beyond the cores cost far more than they
# save (OpenMP threads spin). The programs are found in $VET_BIN when set, else on
# PATH. The same one-liners by hand, and the Slurm job array (shard-slurm.sbatch), are in
# pipelines/README.md. New notes, without gold labels, are not scored: with -c CODES the N
# streams become one table instead, OUTDIR/coded.csv (`vet-dump --csv --codes CODES`: the rows in
# the input's order, as from one unsharded run; CODES '' for no terms). Exit status: 0; 1 when a
# shard, vet-eval or vet-dump fails; 2 on a usage error.
set -u
jobs='' runner='' table=''
while getopts j:r:c:h opt; do
    case $opt in
    j) jobs=$OPTARG ;;
    r) runner=$OPTARG ;;
    c) table=yes codes=$OPTARG ;;
    h) sed -n '2,/^set -u$/{/^#/p}' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) exit 2 ;;
    esac
done
shift $((OPTIND - 1))
[ $# -ge 3 ] || { echo "shard-parallel.sh: usage: shard-parallel.sh [-j JOBS] [-r parallel|xargs] [-c CODES] N INPUT OUTDIR [VET-GENERATE ARGS...]" >&2; exit 2; }
n=$1 input=$2 out=$3
shift 3
case $n in '' | *[!0-9]* | 0*) echo "shard-parallel.sh: N must be an integer >= 1 (got '$n')" >&2; exit 2 ;; esac
jobs=${jobs:-$n}
case $jobs in '' | *[!0-9]* | 0*) echo "shard-parallel.sh: -j must be an integer >= 1 (got '$jobs')" >&2; exit 2 ;; esac
if [ -z "$runner" ]; then
    if command -v parallel >/dev/null 2>&1 && parallel --version 2>/dev/null | grep -q GNU; then runner='parallel'; else runner='xargs'; fi
fi
gen=${VET_BIN:+$VET_BIN/}vet-generate
eval_=${VET_BIN:+$VET_BIN/}vet-eval
dump=${VET_BIN:+$VET_BIN/}vet-dump
mkdir -p -- "$out" || exit 1

# The fan-out: one vet-generate per shard number K. Neither runner sees a path or an argument:
# they go to the shards quoted in VET_SHARD_ARGS (the runners would replace a {} in them by K,
# and GNU parallel its {.}, {/} ... too), and the runner's command, the same for every shard, is
# a sh script taking K as its one argument. INPUT comes after --, so a name starting with - is
# a file.
quote() {  # quote ARG: ARG as one single-quoted sh word
    q=$(printf '%sx' "$1" | sed "s/'/'\\\\''/g")
    printf "'%s' " "${q%x}"
}
fan_out() {
    VET_SHARD_ARGS=$(for a in "$gen" "$n" "$out" "$input" "$@"; do quote "$a"; done; echo x)
    VET_SHARD_ARGS=${VET_SHARD_ARGS%x}
    export VET_SHARD_ARGS
    # shellcheck disable=SC2016
    shard='k=$1; eval "set -- $VET_SHARD_ARGS"; gen=$1 n=$2 out=$3 input=$4; shift 4
exec "$gen" -q --shard "$k/$n" "$@" -o "$out/shard-$k-of-$n.pred" -- "$input"'
    case $runner in
    parallel) seq 0 $((n - 1)) | parallel -q -j "$jobs" sh -c "$shard" sh ;;
    xargs) seq 0 $((n - 1)) | xargs -P "$jobs" -n 1 sh -c "$shard" sh ;;
    esac
}
case $runner in parallel | xargs) ;; *) echo "shard-parallel.sh: -r must be parallel or xargs (got '$runner')" >&2; exit 2 ;; esac
threads=$(( $(nproc 2>/dev/null || echo 1) / jobs ))
[ "$threads" -ge 1 ] || threads=1
fan_out -t "$threads" "$@" || { echo "shard-parallel.sh: a shard failed (its vet-generate said why above)" >&2; exit 1; }

# The merge: the N streams in shard order (vet-eval would take any order).
set --
k=0
while [ $k -lt "$n" ]; do set -- "$@" "$out/shard-$k-of-$n.pred"; k=$((k + 1)); done
if [ -n "$table" ]; then
    # Written under a temporary name, renamed only when whole.
    "$dump" --csv ${codes:+--codes "$codes"} -- "$@" >"$out/coded.csv.tmp" && mv -- "$out/coded.csv.tmp" "$out/coded.csv" ||
        { rm -f -- "$out/coded.csv.tmp"; exit 1; }
else
    "$eval_" --json "$out/metrics.json" -- "$@" || exit 1
fi
