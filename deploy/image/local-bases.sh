#!/usr/bin/env bash
# Base images without Docker Hub (an air-gapped builder, or this project's sandbox): Debian
# bookworm made by debootstrap from Debian's own archive, with Debian's Python 3.11, as
# localhost/flowgate-python:bookworm; the same plus this machine's Node.js and npm as
# localhost/flowgate-node:bookworm. Then:
#   buildah build --isolation chroot --build-arg PYTHON_IMAGE=localhost/flowgate-python:bookworm \
#     --build-arg NODE_IMAGE=localhost/flowgate-node:bookworm -f deploy/image/Containerfile .
# Needs root, debootstrap and buildah.
set -euo pipefail
work=${1:-/var/tmp/flowgate-bases}
mirror=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
if [ ! -x "$work/rootfs/usr/bin/python3" ]; then
  rm -rf "$work/rootfs"; mkdir -p "$work"
  debootstrap --variant=minbase --include=python3,python3-venv,ca-certificates \
    bookworm "$work/rootfs" "$mirror"
  rm -rf "$work/rootfs/var/cache/apt/archives/"*.deb
fi

commit() { # commit NAME EXTRA_SETUP_COMMAND: the root file system (plus extras) as NAME
  local name=$1 container mount
  container=$(buildah from scratch)
  mount=$(buildah mount "$container")
  cp -a "$work/rootfs/." "$mount/"
  eval "$2"
  buildah config --env PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    --env LANG=C.UTF-8 --cmd /bin/bash "$container"
  buildah umount "$container" >/dev/null
  buildah commit --quiet --rm "$container" "$name"
}

commit localhost/flowgate-python:bookworm ":"
node=$(command -v node)
npm_root=$(dirname "$(dirname "$(readlink -f "$(command -v npm)")")")
commit localhost/flowgate-node:bookworm '
  install -D "$node" "$mount/usr/local/bin/node"
  mkdir -p "$mount/usr/local/lib/node_modules"
  cp -a "$npm_root" "$mount/usr/local/lib/node_modules/npm"
  ln -sf ../lib/node_modules/npm/bin/npm-cli.js "$mount/usr/local/bin/npm"
  ln -sf ../lib/node_modules/npm/bin/npx-cli.js "$mount/usr/local/bin/npx"'
buildah images --filter reference='localhost/flowgate-*'
