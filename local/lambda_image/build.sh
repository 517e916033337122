#!/usr/bin/env bash
# Recipe of the python3.13 Lambda base image for `sam local` where no container registry
# is reachable (local/sam_local.py runs it as root and caches the result, keyed by a hash
# of this file and its inputs: edit it and the image is rebuilt).
#
#   build.sh TAG LABEL PYTHON_PREFIX MIRROR
#
# TAG is the name SAM looks for (public.ecr.aws/lambda/python:3.13-x86_64); LABEL a
# `key=value` stamped on the image; PYTHON_PREFIX a CPython 3.13 installation built with
# --enable-shared (pyenv's); MIRROR the Debian mirror apt already uses. The image is a
# minimal Debian bookworm with that Python in /var/lang and the Lambda runtime interface
# client (awslambdaric) in /var/runtime, like AWS's image; SAM adds its emulator (the RIE,
# shipped in aws-sam-cli) and the layers on top.
set -euo pipefail

tag=$1 label=$2 python_prefix=$3 mirror=$4
awslambdaric=awslambdaric==4.2.2
libraries=(libssl3 libsqlite3-0 libffi8 libbz2-1.0 liblzma5 zlib1g libuuid1 libncursesw6
  libreadline8 ca-certificates)

root=$(mktemp -d /var/tmp/sfbroker-lambda-image.XXXXXX)
trap 'rm -rf --one-file-system "$root"' EXIT

debootstrap --variant=minbase bookworm "$root" "$mirror" >/dev/null
DEBIAN_FRONTEND=noninteractive chroot "$root" apt-get install -y -qq --no-install-recommends \
  "${libraries[@]}" >/dev/null
chroot "$root" apt-get clean
rm -rf "$root"/var/lib/apt/lists/* "$root"/usr/share/doc/* "$root"/usr/share/man/* \
  "$root"/usr/share/locale/*

mkdir -p "$root/var/lang" "$root/var/runtime" "$root/var/task" "$root/opt"
cp -a "$python_prefix/." "$root/var/lang/"
rm -rf "$root"/var/lang/lib/python3.13/{test,idlelib,tkinter,turtledemo,ensurepip} \
  "$root"/var/lang/lib/python3.13/config-3.13-*/*.a
find "$root/var/lang" -name __pycache__ -prune -exec rm -rf {} +
"$python_prefix/bin/python3.13" -m pip install --quiet --disable-pip-version-check --root-user-action=ignore \
  --no-compile --target "$root/var/runtime" "$awslambdaric"

cat >"$root/var/runtime/bootstrap" <<'BOOTSTRAP'
#!/bin/sh
# Started by the runtime interface emulator; SAM passes the handler in _HANDLER.
export PYTHONPATH="/var/task:/opt/python:/var/runtime${PYTHONPATH:+:$PYTHONPATH}"
exec /var/lang/bin/python3.13 -m awslambdaric "$_HANDLER"
BOOTSTRAP
chmod 755 "$root/var/runtime/bootstrap"

tar -C "$root" -c . | docker import \
  --change "LABEL $label" \
  --change "ENV PATH=/var/lang/bin:/usr/local/bin:/usr/bin:/bin" \
  --change "ENV LD_LIBRARY_PATH=/var/lang/lib:/lib64:/usr/lib64" \
  --change "ENV LANG=C.UTF-8" \
  --change "ENV LAMBDA_TASK_ROOT=/var/task" \
  --change "ENV LAMBDA_RUNTIME_DIR=/var/runtime" \
  --change "WORKDIR /var/task" \
  - "$tag" >/dev/null
