#!/bin/bash -e
# On the build host: put the antiphon wheel and its installer into the image.
# files/ holds antiphon-*.whl and deploy/rpi's installer (see ../../README.md).
install -d "${ROOTFS_DIR}/opt/antiphon-setup"
install -m 644 files/antiphon-*.whl files/antiphon.service files/antiphon-usb0.nmconnection \
	"${ROOTFS_DIR}/opt/antiphon-setup/"
install -m 755 files/install.sh "${ROOTFS_DIR}/opt/antiphon-setup/install.sh"
