#!/usr/bin/env bash
# A minimal 64-bit Debian system to boot under qemu-system-aarch64, standing in for a
# Raspberry Pi: the base of Raspberry Pi OS, with its Python, systemd and apt.
#
#   deploy/emulated/build-image.sh SUITE OUT      (SUITE: bookworm or trixie)
#
# Writes OUT/disk.img (an ext4 file system), OUT/vmlinuz and OUT/initrd.img (Debian's
# arm64 kernel and the initramfs Debian made for it) and OUT/id_ed25519 (the key root's
# ssh accepts), and does nothing when OUT/stamp says that this very script built them
# for SUITE.
#
# How, without an arm64 computer and without binfmt_misc (so no arm64 chroot):
#  1. debootstrap's first stage unpacks the packages on this computer;
#  2. a throwaway initramfs (busybox and the few kernel modules that reach a virtio
#     disk, from the packages just downloaded) boots Debian's kernel under QEMU and
#     runs the second stage on the emulated system itself, which installs the kernel
#     package, whose initramfs is the one every later boot uses.
# What is installed is what Raspberry Pi OS Lite has before antiphon's installer runs:
# systemd, apt, python3 (no venv, no pip), an ssh server.
set -euo pipefail

suite=${1:?usage: build-image.sh SUITE OUT}
out=${2:?usage: build-image.sh SUITE OUT}
mirror=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
stamp="$suite $(sha256sum "${BASH_SOURCE[0]}" | cut -d' ' -f1)"
# Room for apt's packages, the virtual environment and, on trixie, a compiler.
disk_size=4G
packages=systemd-sysv,udev,kmod,iproute2,procps,openssh-server,python3,ca-certificates
packages+=,linux-image-arm64,initramfs-tools,busybox-static
# Reaching the root file system: the PCI bus, the disk, its file system and the checksum
# ext4 asks for by name (a soft dependency, which modules.dep does not list).
boot_modules=(virtio_pci virtio_blk crc32c_generic ext4)

if [ -f "$out/stamp" ] && [ "$(cat "$out/stamp")" = "$stamp" ]; then
    echo "build-image.sh: $out is up to date"
    exit 0
fi
for tool in debootstrap qemu-system-aarch64 mkfs.ext4 debugfs cpio ssh-keygen; do
    command -v "$tool" >/dev/null || {
        echo "build-image.sh: needs $tool" \
            "(apt-get install debootstrap qemu-system-arm e2fsprogs cpio openssh-client)" >&2
        exit 1
    }
done
[ "$(id -u)" -eq 0 ] || { echo "build-image.sh: run as root (files keep their owners)" >&2; exit 1; }

say() { printf '==> %s [%ss]\n' "$*" "$SECONDS"; }
root=$out/root
rm -rf "$out"
mkdir -p "$out"

say "debootstrap $suite: first stage (downloads and unpacks)"
debootstrap --arch=arm64 --foreign --variant=minbase --include="$packages" \
    "$suite" "$root" "$mirror" >"$out/debootstrap.log"
# In a container debootstrap links /proc to the host's; the emulated system mounts its own.
if [ -L "$root/proc" ]; then rm "$root/proc" && mkdir "$root/proc"; fi

say "a throwaway initramfs to reach the disk"
archives=$root/var/cache/apt/archives
boot=$out/bootstrap
mkdir -p "$boot/kernel" "$boot/initramfs/bin" "$boot/initramfs/modules"
for deb in "$archives"/linux-image-[0-9]*_arm64.deb "$archives"/busybox-static_*_arm64.deb; do
    dpkg-deb -x "$deb" "$boot/kernel"
done
cp "$(find "$boot/kernel" -path "*bin/busybox" | head -n1)" "$boot/initramfs/bin/busybox"
module_dir=$(dirname "$(find "$boot/kernel" -path "*/lib/modules/*/modules.builtin" | head -n1)")
# Each module after the ones it depends on; built-in ones have no file and are skipped.
declare -A loaded=()
load_order=()
add_module() {
    local name=$1 file dep
    [ -z "${loaded[$name]:-}" ] || return 0
    loaded[$name]=1
    file=$(find "$module_dir" \( -name "$name.ko" -o -name "$name.ko.xz" \) | head -n1)
    [ -n "$file" ] || file=$(find "$module_dir" \( -name "${name//_/-}.ko" -o -name "${name//_/-}.ko.xz" \) | head -n1)
    [ -n "$file" ] || return 0
    case $file in *.xz) xz -dc "$file" ;; *) cat "$file" ;; esac >"$boot/initramfs/modules/$name.ko"
    for dep in $(grep -a -o 'depends=[a-z0-9_,-]*' "$boot/initramfs/modules/$name.ko" \
        | head -n1 | cut -d= -f2 | tr ',' ' '); do
        add_module "$dep"
    done
    load_order+=("$name")
}
for module in "${boot_modules[@]}"; do add_module "$module"; done
printf '%s\n' "${load_order[@]}" >"$boot/initramfs/modules/order"
cat >"$boot/initramfs/init" <<'INIT'
#!/bin/busybox sh
/bin/busybox --install -s /bin
mkdir -p /proc /sys /dev /newroot
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev
for m in $(cat /modules/order); do insmod "/modules/$m.ko"; done
mount -t ext4 -o rw /dev/vda /newroot
for fs in /dev /proc /sys; do mount --move "$fs" "/newroot$fs"; done
exec switch_root /newroot /provision.sh
INIT
chmod +x "$boot/initramfs/init"
(cd "$boot/initramfs" && find . | cpio -o -H newc --quiet | gzip -1) >"$boot/initramfs.gz"

say "second stage and the kernel package, on the emulated system"
# A small initramfs boots faster: only what the virt machine needs to reach its root.
mkdir -p "$root/etc/initramfs-tools/conf.d" "$root/usr/share/initramfs-tools/modules.d"
echo "MODULES=list" >"$root/etc/initramfs-tools/conf.d/antiphon-emulated"
printf '%s\n' "${boot_modules[@]}" virtio_net >"$root/usr/share/initramfs-tools/modules.d/antiphon-emulated"
echo "pi-emulated" >"$root/etc/hostname"
printf '127.0.0.1\tlocalhost\n127.0.1.1\tpi-emulated\n' >"$root/etc/hosts"
printf '/dev/vda / ext4 defaults,noatime 0 1\n' >"$root/etc/fstab"
# QEMU's user-mode network: DHCP gives 10.0.2.15, the host is 10.0.2.2, DNS 10.0.2.3.
mkdir -p "$root/etc/systemd/network"
printf '[Match]\nName=en* eth*\n\n[Network]\nDHCP=ipv4\n' >"$root/etc/systemd/network/10-wired.network"
ssh-keygen -q -t ed25519 -N "" -C antiphon-emulated -f "$out/id_ed25519"
install -d -m 700 "$root/root/.ssh"
install -m 600 "$out/id_ed25519.pub" "$root/root/.ssh/authorized_keys"
cat >"$root/provision.sh" <<PROVISION
#!/bin/sh
# PID 1 for one boot: finish installing Debian, then power off.
export PATH=/usr/sbin:/usr/bin:/sbin:/bin LC_ALL=C.UTF-8 DEBIAN_FRONTEND=noninteractive
if DEBOOTSTRAP_DIR=/debootstrap /debootstrap/debootstrap --second-stage; then
    echo "deb $mirror $suite main" >/etc/apt/sources.list
    echo "nameserver 10.0.2.3" >/etc/resolv.conf
    systemctl enable systemd-networkd.service
    apt-get clean
    echo "provision: done"
else
    tail -n 40 /debootstrap/debootstrap.log
    echo "provision: failed"
fi
sync
echo o >/proc/sysrq-trigger
PROVISION
chmod +x "$root/provision.sh"
mkfs.ext4 -q -L antiphon-pi -d "$root" "$out/disk.img" "$disk_size"
rm -rf "$root"
timeout 3h qemu-system-aarch64 -machine virt -cpu cortex-a53 -smp 4 -m 1024 -no-reboot \
    -display none -monitor none -serial "file:$out/provision.log" \
    -kernel "$(echo "$boot"/kernel/boot/vmlinuz-*)" -initrd "$boot/initramfs.gz" \
    -append "console=ttyAMA0 panic=1" \
    -drive "if=none,id=disk,file=$out/disk.img,format=raw,cache=unsafe" \
    -device virtio-blk-pci,drive=disk -device virtio-rng-pci
grep -q "provision: done" "$out/provision.log" || {
    tail -n 60 "$out/provision.log" >&2
    echo "build-image.sh: the second stage failed (see $out/provision.log)" >&2
    exit 1
}

say "the kernel and the initramfs Debian made"
debugfs -R "rm /provision.sh" -w "$out/disk.img" 2>/dev/null
kernel=$(debugfs -R "ls -p /boot" "$out/disk.img" 2>/dev/null | cut -d/ -f6 | grep '^vmlinuz-' | sort -V | tail -n1)
debugfs -R "dump /boot/$kernel $out/vmlinuz" "$out/disk.img" 2>/dev/null
debugfs -R "dump /boot/initrd.img-${kernel#vmlinuz-} $out/initrd.img" "$out/disk.img" 2>/dev/null
if ! [ -s "$out/vmlinuz" ] || ! [ -s "$out/initrd.img" ]; then
    echo "build-image.sh: no kernel or initramfs in the image" >&2
    exit 1
fi
rm -rf "$boot"
echo "$stamp" >"$out/stamp"
say "done: $out"
