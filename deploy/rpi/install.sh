#!/usr/bin/env bash
# Install antiphon on a Raspberry Pi so that the instrument plays at boot.
#
# For 64-bit Raspberry Pi OS (Bookworm or Trixie), Zero 2 W to Pi 5. Run as root:
#
#   sudo deploy/rpi/install.sh [--hostname NAME] [--usb-gadget]
#
# It installs antiphon into a virtual environment owned by a dedicated user, creates
# the workspace, installs and enables a systemd service, and optionally sets the
# hostname and USB ethernet gadget mode, so that a laptop plugged into the Pi's USB
# port reaches the web UI at http://NAME.local:4000 (or http://10.55.0.1:4000).
# Running it again updates antiphon and keeps the workspace.
set -euo pipefail

usage() {
    cat <<'USAGE'
Usage: install.sh [options]

  --hostname NAME   set the Pi's name (the web UI is then at http://NAME.local:4000)
  --usb-gadget      make the USB port an ethernet link to a laptop (takes effect on reboot)
  --user NAME       the user antiphon runs as (default: antiphon)
  --prefix DIR      where the virtual environment goes (default: /opt/antiphon)
  --workspace DIR   config.toml, logs/, datasets/, models/ (default: the user's ~/workspace)
  --from SOURCE     what to install: a source folder, a wheel or a pip requirement
                    (default: the antiphon source this script belongs to)
  --python PATH     the Python to build the environment with (default: python3)
  --root DIR        install into DIR as if it were / and change nothing else on this
                    computer: commands that would (apt-get, useradd, systemctl) are printed
  --no-apt          do not install Debian packages
  --no-start        enable the service but do not start it now (when building an SD image)
  -h, --help        show this help
USAGE
}

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
user=antiphon
prefix=/opt/antiphon
workspace=""
source_spec=$(cd "$here/../.." && pwd)
python=python3
root=""
new_hostname=""
usb_gadget=0
apt=1
start=1
gadget_address=10.55.0.1

while [ "$#" -gt 0 ]; do
    case "$1" in
        --hostname) new_hostname=$2; shift 2 ;;
        --usb-gadget) usb_gadget=1; shift ;;
        --user) user=$2; shift 2 ;;
        --prefix) prefix=$2; shift 2 ;;
        --workspace) workspace=$2; shift 2 ;;
        --from) source_spec=$2; shift 2 ;;
        --python) python=$2; shift 2 ;;
        --root) root=$(cd "$2" && pwd); shift 2 ;;
        --no-apt) apt=0; shift ;;
        --no-start) start=0; shift ;;
        -h|--help) usage; exit 0 ;;
        *) echo "install.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
    esac
done
workspace=${workspace:-/home/$user/workspace}

if [ -n "$new_hostname" ] && ! [[ $new_hostname =~ ^[a-zA-Z0-9]([a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?$ ]]; then
    echo "install.sh: '$new_hostname' is not a valid hostname (letters, digits and -)" >&2
    exit 2
fi
if [ -z "$root" ] && [ "$(id -u)" -ne 0 ]; then
    echo "install.sh: run as root (sudo $0 $*)" >&2
    exit 1
fi

say() { printf '\033[1m==> %s\033[0m\n' "$*"; }

# Commands that change the computer itself; in a throwaway root they are only shown.
system() {
    if [ -n "$root" ]; then
        echo "would run: $*"
    else
        "$@"
    fi
}

boot_dir() {
    # Bookworm and later mount the boot partition at /boot/firmware.
    if [ -d "$root/boot/firmware" ]; then echo "$root/boot/firmware"; else echo "$root/boot"; fi
}

venv=$prefix/venv

if [ -z "$root" ] && [ -r /etc/os-release ]; then
    # shellcheck source=/dev/null
    . /etc/os-release
    case "${VERSION_CODENAME:-}" in
        bookworm|trixie) ;;
        *) echo "install.sh: warning: tested on Raspberry Pi OS Bookworm and Trixie, this is ${PRETTY_NAME:-unknown}" >&2 ;;
    esac
fi

# python-rtmidi (MIDI) publishes no wheels for Python 3.13 (Trixie): pip compiles it there.
rtmidi_from_source=0
if "$python" -c 'import sys; sys.exit(sys.version_info < (3, 13))'; then
    rtmidi_from_source=1
fi

if [ "$apt" -eq 1 ]; then
    say "Installing Debian packages"
    # libasound2: python-rtmidi's wheels load the system's ALSA library (MIDI); on
    # Trixie apt picks its new name, libasound2t64.
    packages=(python3-venv python3-pip avahi-daemon libasound2)
    if [ "$usb_gadget" -eq 1 ]; then
        packages+=(dnsmasq-base)  # NetworkManager hands the laptop an address with it
    fi
    if [ "$rtmidi_from_source" -eq 1 ]; then
        packages+=(build-essential python3-dev pkg-config libasound2-dev)
    fi
    system apt-get update
    system apt-get install -y --no-install-recommends "${packages[@]}"
fi

say "Creating the user $user"
if [ -n "$root" ] || ! id -u "$user" >/dev/null 2>&1; then
    system useradd --system --create-home --home-dir "/home/$user" --shell /usr/sbin/nologin \
        --groups audio,dialout "$user"
fi
# Access to MIDI and audio devices (audio) and serial ports such as a micro:bit (dialout).
system usermod --append --groups audio,dialout "$user"

say "Installing antiphon into $venv"
if [ "$rtmidi_from_source" -eq 1 ]; then
    echo "python-rtmidi has no ready-made wheel for this Python: it is compiled now, which"
    echo "takes minutes (several on a Zero 2 W) with no output until it is done."
fi
mkdir -p "$root$prefix"
"$python" -m venv "$root$venv"
# The 'impsy' extra (h5py) lets the instrument play IMPSY .h5/.keras models uploaded
# through its web UI; a requirement given with --from names its own extras.
install_spec=$source_spec
if [ -e "$source_spec" ]; then
    install_spec="${source_spec}[impsy]"
fi
"$root$venv/bin/python" -m pip install --quiet --upgrade "$install_spec"
version=$("$root$venv/bin/antiphon" --version)
echo "$version"

say "Preparing the workspace $workspace"
mkdir -p "$(dirname "$root$workspace")"
if [ -f "$root$workspace/config.toml" ]; then
    echo "keeping the existing $workspace/config.toml"
else
    # Reachable from the laptop: the web UI listens on every interface.
    "$root$venv/bin/antiphon" init "$root$workspace" --web-host 0.0.0.0
fi
system chown -R "$user:$user" "$workspace"

say "Installing the systemd service"
unit=$root/etc/systemd/system/antiphon.service
mkdir -p "$(dirname "$unit")"
sed -e "s|@USER@|$user|g" -e "s|@VENV@|$venv|g" -e "s|@WORKSPACE@|$workspace|g" \
    "$here/antiphon.service" > "$unit"
if [ "$start" -eq 1 ]; then
    system systemctl daemon-reload
    system systemctl enable antiphon.service
    system systemctl restart antiphon.service
else
    system systemctl enable antiphon.service
fi

if [ -n "$new_hostname" ]; then
    say "Naming this Pi $new_hostname"
    mkdir -p "$root/etc"
    echo "$new_hostname" > "$root/etc/hostname"
    if [ -f "$root/etc/hosts" ] && grep -q '^127\.0\.1\.1' "$root/etc/hosts"; then
        sed -i "s/^127\.0\.1\.1.*/127.0.1.1\t$new_hostname/" "$root/etc/hosts"
    else
        printf '127.0.1.1\t%s\n' "$new_hostname" >> "$root/etc/hosts"
    fi
    if [ "$start" -eq 1 ]; then
        system hostnamectl set-hostname "$new_hostname"
    fi
fi

if [ "$usb_gadget" -eq 1 ]; then
    say "Setting up USB ethernet gadget mode"
    boot=$(boot_dir)
    mkdir -p "$boot"
    touch "$boot/config.txt" "$boot/cmdline.txt"
    if ! grep -q '^dtoverlay=dwc2' "$boot/config.txt"; then
        printf '\n[all]\n# antiphon: USB ethernet gadget\ndtoverlay=dwc2\n' >> "$boot/config.txt"
    fi
    if ! grep -q 'modules-load=dwc2,g_ether' "$boot/cmdline.txt"; then
        # cmdline.txt is one line: add the modules after its last word.
        sed -i '1 s/[[:space:]]*$/ modules-load=dwc2,g_ether/' "$boot/cmdline.txt"
    fi
    connection=$root/etc/NetworkManager/system-connections/antiphon-usb0.nmconnection
    mkdir -p "$(dirname "$connection")"
    sed -e "s|@ADDRESS@|$gadget_address|g" "$here/antiphon-usb0.nmconnection" > "$connection"
    chmod 600 "$connection"
    echo "Reboot for USB networking to start: the Pi will be $gadget_address on the USB link."
fi

name=${new_hostname:-$(cat "$root/etc/hostname" 2>/dev/null || hostname)}
say "Done"
echo "antiphon plays at boot (systemctl status antiphon; journalctl -u antiphon -f)."
echo "Web UI: http://$name.local:4000"
if [ "$usb_gadget" -eq 1 ]; then
    echo "Over USB, if .local names do not work on your laptop: http://$gadget_address:4000"
fi
