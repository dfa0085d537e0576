#!/usr/bin/env bash
# Boot an image made by build-image.sh as a Raspberry Pi Zero 2 W stands: 4 Cortex-A53
# cores and 512 MB of memory, under QEMU's software emulation (no KVM: an x86 host
# cannot run arm64 code natively).
#
#   deploy/emulated/boot.sh IMAGE_DIR DISK
#
# DISK is the image's disk.img or a copy-on-write layer over it (the tests use a new
# layer each run, so every run starts from a fresh system). Reached only through
# forwarded ports on this computer's loopback address:
#   SSH_PORT (default 2222) -> ssh, WEB_PORT (4000) -> the web UI,
#   OSC_PORT (6000, UDP) -> antiphon's OSC input.
# From inside, this computer's loopback is 10.0.2.2 (QEMU's user-mode network).
# CONSOLE names a file for the serial console (default: this terminal).
# MEMORY and CPUS change the machine (defaults 512 and 4). The QEMU process replaces
# this script, so killing this script's process is pulling the plug.
set -euo pipefail

image=${1:?usage: boot.sh IMAGE_DIR DISK}
disk=${2:?usage: boot.sh IMAGE_DIR DISK}
format=raw
case $disk in *.qcow2) format=qcow2 ;; esac
forwards="hostfwd=tcp:127.0.0.1:${SSH_PORT:-2222}-:22"
forwards+=",hostfwd=tcp:127.0.0.1:${WEB_PORT:-4000}-:4000"
forwards+=",hostfwd=udp:127.0.0.1:${OSC_PORT:-6000}-:6000"
if [ -n "${CONSOLE:-}" ]; then serial="file:$CONSOLE"; else serial=mon:stdio; fi

exec qemu-system-aarch64 -machine virt -cpu cortex-a53 \
    -smp "${CPUS:-4}" -m "${MEMORY:-512}" \
    -display none -serial "$serial" \
    -kernel "$image/vmlinuz" -initrd "$image/initrd.img" \
    -append "root=/dev/vda rw console=ttyAMA0" \
    -drive "if=none,id=disk,file=$disk,format=$format,cache=writeback" \
    -device virtio-blk-pci,drive=disk \
    -netdev "user,id=net,$forwards" -device virtio-net-pci,netdev=net \
    -device virtio-rng-pci
