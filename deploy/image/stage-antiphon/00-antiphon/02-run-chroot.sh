#!/bin/bash -e
# Inside the image: install antiphon as a service with USB networking, as on a Pi.
wheel=$(ls /opt/antiphon-setup/antiphon-*.whl)
/opt/antiphon-setup/install.sh --from "$wheel" --no-apt --no-start --usb-gadget
rm -rf /opt/antiphon-setup
