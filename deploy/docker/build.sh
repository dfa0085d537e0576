#!/bin/sh
# Build antiphon into a self-contained virtual environment at PREFIX.
# The Dockerfile runs exactly this; tests run it too, into a throwaway folder.
#
#   build.sh PREFIX SOURCE [EXTRAS]
#
# SOURCE is a source folder or a wheel; EXTRAS (default "impsy"; e.g. "impsy,train")
# adds optional parts.
# For "train", TORCH_INDEX (default: PyTorch's CPU-only index) keeps CUDA out.
set -eu

prefix=$1
source=$2
# impsy (h5py): IMPSY .h5/.keras models play, uploaded through the web UI as well
extras=${3:-impsy}
torch_index=${TORCH_INDEX-https://download.pytorch.org/whl/cpu}

python3 -m venv "$prefix"
"$prefix/bin/pip" install --no-cache-dir --upgrade pip
if [ -n "$extras" ]; then
    case "$extras" in *train*) ;; *) torch_index="" ;; esac
    if [ -n "$torch_index" ]; then
        set -- --extra-index-url "$torch_index"
    else
        set --
    fi
    "$prefix/bin/pip" install --no-cache-dir "$@" "${source}[$extras]"
else
    "$prefix/bin/pip" install --no-cache-dir "$source"
fi
# Check the result works without a display, a sound card or a network.
"$prefix/bin/antiphon" --version
