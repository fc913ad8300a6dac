# emu_device.sh — sourced by the scripts that run programs on the emulated device
# (test_gpu_emu.sh, test_gpu_emu_parity.sh, test_device_emu.sh; mk/gpuemu.mk builds them). Not a
# test itself (tests/run runs only test_*.sh).
#
# emu_ready NAME PROGRAM...: sets emu_dir (VET_EMU, default build/emu) and returns 0 when the
# programs are there and this is the suite's plain pass; otherwise prints why `skip NAME` and
# returns 1 (not built: no CUDA toolkit headers; the sanitizer pass: the one emulator build is
# ASan + UBSan already, so it runs once, in the plain pass).
emu_ready() {
    local name=$1 p
    shift
    emu_dir=${VET_EMU:-${VET_TOP:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}/build/emu}
    for p in "$@"; do
        if [ ! -x "$emu_dir/$p" ]; then
            echo "skip $name: $emu_dir/$p not built (make gpuemu; needs the CUDA toolkit's headers)"
            return 1
        fi
    done
    if [ "${VET_SANITIZE:-0}" = 1 ]; then
        echo "skip $name: ran in the plain pass (the emulated device is one ASan + UBSan build)"
        return 1
    fi
}
