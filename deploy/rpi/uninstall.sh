#!/usr/bin/env bash
# Remove what install.sh installed. The workspace (your logs, datasets and models) is
# kept unless you pass --purge.
#
#   sudo deploy/rpi/uninstall.sh [--purge]
set -euo pipefail

usage() {
    cat <<'USAGE'
Usage: uninstall.sh [options]

  --purge           also delete the workspace and the antiphon user
  --user NAME       the user antiphon ran as (default: antiphon)
  --prefix DIR      where the virtual environment is (default: /opt/antiphon)
  --workspace DIR   the workspace (default: the user's ~/workspace)
  --root DIR        act on DIR as if it were / (see install.sh)
  -h, --help        show this help
USAGE
}

user=antiphon
prefix=/opt/antiphon
workspace=""
root=""
purge=0
while [ "$#" -gt 0 ]; do
    case "$1" in
        --purge) purge=1; shift ;;
        --user) user=$2; shift 2 ;;
        --prefix) prefix=$2; shift 2 ;;
        --workspace) workspace=$2; shift 2 ;;
        --root) root=$(cd "$2" && pwd); shift 2 ;;
        -h|--help) usage; exit 0 ;;
        *) echo "uninstall.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
    esac
done
workspace=${workspace:-/home/$user/workspace}
if [ -z "$root" ] && [ "$(id -u)" -ne 0 ]; then
    echo "uninstall.sh: run as root (sudo $0 $*)" >&2
    exit 1
fi

system() {
    if [ -n "$root" ]; then echo "would run: $*"; else "$@"; fi
}

unit=$root/etc/systemd/system/antiphon.service
if [ -f "$unit" ]; then
    system systemctl disable --now antiphon.service
    rm -f "$unit"
    system systemctl daemon-reload
fi
rm -rf "$root${prefix:?}"
rm -f "$root/etc/NetworkManager/system-connections/antiphon-usb0.nmconnection"
for boot in "$root/boot/firmware" "$root/boot"; do
    if [ -f "$boot/config.txt" ]; then
        sed -i -e '/^# antiphon: USB ethernet gadget$/d' -e '/^dtoverlay=dwc2$/d' "$boot/config.txt"
    fi
    if [ -f "$boot/cmdline.txt" ]; then
        sed -i 's/ modules-load=dwc2,g_ether//' "$boot/cmdline.txt"
    fi
done
if [ "$purge" -eq 1 ]; then
    rm -rf "$root${workspace:?}"
    system userdel --remove "$user"
    echo "Removed antiphon, its workspace and the user $user."
else
    echo "Removed antiphon. Your workspace is still in $workspace (--purge deletes it)."
fi
