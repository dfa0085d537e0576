#!/bin/sh
# Start antiphon in a container: make a workspace on first start, then play.
# The web UI listens on every interface inside the container so that the published
# port reaches it; OSC goes to the host by default (host.docker.internal).
set -eu

workspace=${ANTIPHON_WORKSPACE:-/workspace}
if [ -d "$workspace" ] && ! [ -w "$workspace" ]; then
    echo "antiphon: cannot write to $workspace (owned by uid $(stat -c %u "$workspace"), this container runs as uid $(id -u))." >&2
    echo "On the host: mkdir -p workspace && sudo chown $(id -u) workspace, or run with --user \$(id -u)." >&2
    exit 1
fi
if [ ! -f "$workspace/config.toml" ]; then
    antiphon init "$workspace" --web-host 0.0.0.0 --osc-client-ip host.docker.internal
fi
cd "$workspace"
if [ "$#" -eq 0 ]; then
    exec antiphon run --config "$workspace/config.toml" --web-host 0.0.0.0 --web-port 4000
fi
exec "$@"
