#!/usr/bin/env bash
# Builds the Padlock operator image (OCI) from this checkout, without Docker and without pulling any
# base image: a minimal Debian bookworm root filesystem made by mmdebstrap from Debian packages,
# Debian's Python 3.11, the padlock wheel built from the checkout and its dependencies pinned by
# image/requirements.lock (sha256-checked), bytecode compiled ahead (unchecked-hash pycs: the root
# filesystem is read-only at run time), user 65532, entrypoint `padlock`; assembled with umoci.
#
# Called by `make image`, tests/integration/test_operator_image.py and developers. Reproducible: all
# times are SOURCE_DATE_EPOCH (default: the HEAD commit's time), the layer is a sorted tar with
# numeric owners, so the same inputs (this checkout, the lock, the Debian packages) give the same digest.
# The result is cached in ${PADLOCK_CACHE:-~/.cache/padlock}/image/<hash of the inputs>/ and reused.
#
#   bash image/build.sh               build (or reuse) the image; prints `key=value` lines: layout, ref, digest...
#   bash image/build.sh --check       build twice from scratch (no cache) and fail unless the digests match
#   bash image/build.sh --push HOST:PORT/REPO[:TAG]   also copy it to a registry with skopeo (plain HTTP
#                                     for 127.0.0.1 / localhost; TAG defaults to the package version)
#
# Needs root (mmdebstrap --mode=root, chroot) and Debian's mmdebstrap, umoci, skopeo (for --push);
# installs them with apt-get when missing. Environment: SOURCE_DATE_EPOCH, PADLOCK_IMAGE_MIRROR (a Debian
# mirror, e.g. a snapshot.debian.org URL, to pin the Debian packages too), PADLOCK_CACHE.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT="$PWD"
PYTHON="${PYTHON:-$(command -v python || command -v python3)}"
CACHE="${PADLOCK_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/padlock}/image"
SUITE=bookworm
MIRROR="${PADLOCK_IMAGE_MIRROR:-http://deb.debian.org/debian}"
SECURITY_MIRROR="${PADLOCK_IMAGE_SECURITY_MIRROR:-http://deb.debian.org/debian-security}"
UID_GID=65532
VENV=/opt/padlock

check=0 push=""
while [ $# -gt 0 ]; do
  case "$1" in
    --check) check=1 ;;
    --push) push="${2:?--push needs HOST:PORT/REPO[:TAG]}"; shift ;;
    -h|--help) sed -n '2,21p' "$0"; exit 0 ;;
    *) echo "image/build.sh: unknown argument $1 (see --help)" >&2; exit 2 ;;
  esac
  shift
done

# Scratch directories, removed on any exit; --one-file-system never follows a mount a killed
# mmdebstrap may have left behind.
WORKDIRS=()
trap 'rm -rf --one-file-system "${WORKDIRS[@]}"' EXIT

log() { printf '== image: %s\n' "$*" >&2; }
die() { printf 'image/build.sh: error: %s\n' "$*" >&2; exit 1; }

[ "$(id -u)" = 0 ] || die "needs root (mmdebstrap --mode=root and chroot build the root filesystem)"
need=()
command -v mmdebstrap >/dev/null || need+=(mmdebstrap)
command -v umoci >/dev/null || need+=(umoci)
[ -z "$push" ] || command -v skopeo >/dev/null || need+=(skopeo)
if [ "${#need[@]}" -gt 0 ]; then
  log "apt-get install ${need[*]}"
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >&2
fi

VERSION="$("$PYTHON" -c 'import ast,sys; t=open("operator/padlock/__init__.py").read(); print(next(n.value.value for n in ast.parse(t).body if isinstance(n, ast.Assign) and n.targets[0].id == "__version__"))')"
REVISION="$(git rev-parse HEAD 2>/dev/null || echo unknown)"
export SOURCE_DATE_EPOCH="${SOURCE_DATE_EPOCH:-$(git log -1 --format=%ct 2>/dev/null || echo 0)}"
CREATED="$(date -u -d "@$SOURCE_DATE_EPOCH" +%Y-%m-%dT%H:%M:%SZ)"
SOURCE_URL="https://github.com/padlock-dev/padlock"

# The inputs: the files the wheel is built from (tracked or new, as they are on disk), this script,
# the lock, and what goes into the labels. Their hash names the cache entry.
mapfile -t SOURCES < <(git ls-files -co --exclude-standard -- operator pyproject.toml README.md | LC_ALL=C sort)
KEY="$( { printf '%s\n' "$SUITE" "$MIRROR" "$SECURITY_MIRROR" "$SOURCE_DATE_EPOCH" "$REVISION" "$VERSION";
          sha256sum image/build.sh image/requirements.lock "${SOURCES[@]}"; } | sha256sum | cut -c1-16)"

# build_into DIR: the whole build, from nothing to an OCI layout DIR/oci with tag $VERSION.
build_into() {
  local out="$1" work rootfs
  work="$(mktemp -d "${TMPDIR:-/tmp}/padlock-image.XXXXXX")"
  WORKDIRS+=("$work")
  rootfs="$work/rootfs"

  log "wheel of padlock $VERSION from the checkout, dependencies from image/requirements.lock"
  mkdir -p "$work/src" "$work/wheels"
  tar -cf - "${SOURCES[@]}" | tar -xf - -C "$work/src"
  # Wheels are kept in $CACHE/wheels: a rebuild asks no index (only a new lock entry is downloaded).
  local wheels="$CACHE/wheels" platform=(
    --only-binary=:all: --python-version 3.11 --implementation cp --abi cp311 --abi abi3 --abi none
    --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64
    --platform manylinux_2_5_x86_64 --platform manylinux1_x86_64 --platform linux_x86_64)
  mkdir -p "$wheels"
  # The build backend pyproject.toml asks for, for pip's isolated build of the padlock wheel.
  "$PYTHON" -m pip download -q --no-index --find-links "$wheels" -d "$wheels" 'setuptools>=69' wheel >/dev/null 2>&1 \
    || "$PYTHON" -m pip download -q -d "$wheels" 'setuptools>=69' wheel >&2
  "$PYTHON" -m pip wheel -q --no-deps --no-index --find-links "$wheels" -w "$work/wheels" "$work/src" >&2
  # Exactly the locked wheels for the image's platform (the same flags as image/lock.py).
  "$PYTHON" -m pip download -q --no-deps --require-hashes --no-index --find-links "$wheels" -d "$work/wheels" \
      "${platform[@]}" -r image/requirements.lock >/dev/null 2>&1 \
    || { "$PYTHON" -m pip download -q --no-deps --require-hashes -d "$wheels" "${platform[@]}" -r image/requirements.lock >&2 \
         && "$PYTHON" -m pip download -q --no-deps --require-hashes --no-index --find-links "$wheels" \
              -d "$work/wheels" "${platform[@]}" -r image/requirements.lock >&2; }
  cp image/requirements.lock "$work/wheels/"

  log "Debian $SUITE root filesystem (mmdebstrap, SOURCE_DATE_EPOCH=$SOURCE_DATE_EPOCH)"
  mkdir -p "$CACHE/debs"
  # Downloaded .debs are kept in the cache (the mmdebstrap manual's sync-in/sync-out recipe).
  # merged-/usr set up the debootstrap way (mmdebstrap's hook): else init-system-helpers pulls usrmerge and perl (45 MB).
  nice -n 10 mmdebstrap --mode=root --variant=essential --quiet --aptopt='APT::Install-Recommends "false"' \
    --hook-dir=/usr/share/mmdebstrap/hooks/merged-usr --include=python3,python3-venv,ca-certificates,tzdata \
    --dpkgopt='path-exclude=/usr/share/man/*' --dpkgopt='path-exclude=/usr/share/doc/*' \
    --dpkgopt='path-include=/usr/share/doc/*/copyright' --dpkgopt='path-exclude=/usr/share/locale/*' \
    --dpkgopt='path-exclude=/usr/share/info/*' --dpkgopt='path-exclude=/usr/share/lintian/*' \
    --skip=download/empty --skip=essential/unlink \
    --setup-hook='mkdir -p "$1"/var/cache/apt/archives/' \
    --setup-hook="sync-in '$CACHE/debs' /var/cache/apt/archives/" \
    --customize-hook="sync-out /var/cache/apt/archives '$CACHE/debs'" \
    --customize-hook='rm -f "$1"/var/cache/apt/archives/*.deb' \
    "$SUITE" "$rootfs" \
    "deb $MIRROR $SUITE main" "deb $MIRROR $SUITE-updates main" "deb $SECURITY_MIRROR $SUITE-security main" >&2

  log "padlock into $VENV (no index, hashes required), user $UID_GID"
  mkdir -p "$rootfs/wheels" && cp "$work/wheels"/* "$rootfs/wheels/"
  chroot "$rootfs" /usr/bin/python3 -m venv --without-pip "$VENV"
  # pip itself runs from Debian's wheel (python3-venv brings it) and is not installed into the venv.
  local pipwhl
  pipwhl="$(cd "$rootfs" && ls usr/share/python-wheels/pip-*.whl)" || die "no pip wheel from python3-venv"
  local pip=(chroot "$rootfs" env -i PATH=/usr/bin:/bin PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1
             SOURCE_DATE_EPOCH="$SOURCE_DATE_EPOCH" "$VENV/bin/python" "/$pipwhl/pip")
  "${pip[@]}" install -q --no-index --no-deps --no-compile --require-hashes -r /wheels/requirements.lock \
    --find-links /wheels >&2
  local wheel
  wheel="$(cd "$work/wheels" && ls padlock-"$VERSION"-*.whl)"
  "${pip[@]}" install -q --no-index --no-deps --no-compile "/wheels/$wheel" >&2
  rm -rf "$rootfs/wheels"
  # pip's record of where the wheels came from is a build-machine detail.
  find "$rootfs$VENV" -name direct_url.json -delete
  chroot "$rootfs" dpkg --purge python3-venv python3.11-venv python3-pip-whl python3-setuptools-whl >/dev/null
  echo "padlock:x:$UID_GID:$UID_GID:padlock operator:/home/padlock:/usr/sbin/nologin" >> "$rootfs/etc/passwd"
  echo "padlock:x:$UID_GID:" >> "$rootfs/etc/group"
  [ ! -f "$rootfs/etc/shadow" ] || echo "padlock:!:0::::::" >> "$rootfs/etc/shadow"
  install -d -m 0755 -o "$UID_GID" -g "$UID_GID" "$rootfs/home/padlock"
  install -d -m 1777 "$rootfs/tmp"

  # Files whose content depends on when or where the build ran, not on its inputs.
  rm -rf "$rootfs"/var/log/* "$rootfs"/var/cache/ldconfig/aux-cache "$rootfs"/var/cache/debconf/*-old \
         "$rootfs"/var/lib/dpkg/*-old "$rootfs"/etc/*- "$rootfs"/var/lib/apt/lists/* "$rootfs"/dev/*
  : > "$rootfs/etc/machine-id"
  [ ! -f "$rootfs/etc/shadow" ] || sed -i -E 's/^([^:]*:[^:]*:)[0-9]*:/\10:/' "$rootfs/etc/shadow"

  log "bytecode (unchecked-hash pycs, deterministic; Python cannot write any at run time)"
  find "$rootfs" -xdev -name '*.pyc' -delete
  find "$rootfs" -xdev -depth -name __pycache__ -type d -empty -delete
  chroot "$rootfs" env -i PATH=/usr/bin:/bin PYTHONHASHSEED=0 /usr/bin/python3 -m compileall -q -j1 \
    --invalidation-mode unchecked-hash /usr/lib/python3 /usr/lib/python3.11 "$VENV/lib" >/dev/null

  log "layer (sorted tar, numeric owners, mtime $CREATED) and OCI layout (umoci)"
  tar --sort=name --format=posix --numeric-owner --mtime="@$SOURCE_DATE_EPOCH" \
      --pax-option=exthdr.name=%d/PaxHeaders/%f,delete=atime,delete=ctime \
      -C "$rootfs" -cf "$work/layer.tar" .
  mkdir -p "$out"
  local layout="$out/oci" image="$out/oci:$VERSION"
  rm -rf "$layout"
  umoci init --layout "$layout"
  umoci new --image "$image"
  umoci raw add-layer --image "$image" --history.created="$CREATED" --history.author="padlock image/build.sh" \
    --history.created_by="image/build.sh: Debian $SUITE (mmdebstrap), python3, padlock $VERSION" "$work/layer.tar"
  local labels=(
    "org.opencontainers.image.title=padlock"
    "org.opencontainers.image.description=Padlock operator: managed Falco policies for Kubernetes"
    "org.opencontainers.image.source=$SOURCE_URL"
    "org.opencontainers.image.revision=$REVISION"
    "org.opencontainers.image.version=$VERSION"
    "org.opencontainers.image.created=$CREATED"
    "org.opencontainers.image.licenses=Apache-2.0"
  )
  local config=(--no-history --created="$CREATED" --author="Padlock" --architecture=amd64 --os=linux
                --config.user="$UID_GID:$UID_GID" --config.entrypoint=padlock --config.workingdir=/home/padlock
                --config.env="PATH=$VENV/bin:/usr/local/bin:/usr/bin:/bin"
                --config.env=PYTHONDONTWRITEBYTECODE=1 --config.env=PYTHONUNBUFFERED=1 --config.env=HOME=/home/padlock)
  for label in "${labels[@]}"; do config+=(--config.label="$label" --manifest.annotation="$label"); done
  umoci config --image "$image" "${config[@]}"
  umoci gc --layout "$layout"
  du -sb "$rootfs" | cut -f1 > "$out/rootfs-bytes"
  rm -rf --one-file-system "$work"
}

# Fields of the layout's manifest for $VERSION: digest, compressed size, config digest.
describe() {
  "$PYTHON" - "$1/oci" "$VERSION" <<'EOF'
import json, pathlib, sys
layout, tag = pathlib.Path(sys.argv[1]), sys.argv[2]
index = json.loads((layout / "index.json").read_text())
(desc,) = [m for m in index["manifests"] if m.get("annotations", {}).get("org.opencontainers.image.ref.name") == tag]
blob = lambda d: layout / "blobs" / d.split(":")[0] / d.split(":")[1]
manifest = json.loads(blob(desc["digest"]).read_text())
print(f"digest={desc['digest']}")
print(f"size={sum(layer['size'] for layer in manifest['layers']) + manifest['config']['size'] + desc['size']}")
print(f"config={manifest['config']['digest']}")
EOF
}

if [ "$check" = 1 ]; then
  tmp="$(mktemp -d "${TMPDIR:-/tmp}/padlock-image-check.XXXXXX")"
  WORKDIRS+=("$tmp")
  start=$(date +%s); build_into "$tmp/a"; log "first build: $(( $(date +%s) - start ))s"
  start=$(date +%s); build_into "$tmp/b"; log "second build: $(( $(date +%s) - start ))s"
  a="$(describe "$tmp/a" | sed -n 's/^digest=//p')" b="$(describe "$tmp/b" | sed -n 's/^digest=//p')"
  if [ "$a" != "$b" ]; then
    echo "NOT reproducible: $a != $b" >&2
    diff <(cd "$tmp/a/oci" && find . -type f -exec sha256sum {} + | sort -k2) \
         <(cd "$tmp/b/oci" && find . -type f -exec sha256sum {} + | sort -k2) >&2 || true
    exit 1
  fi
  echo "reproducible=yes"
  echo "digest=$a"
  exit 0
fi

entry="$CACHE/$KEY"
if [ -f "$entry/done" ]; then
  log "cached: $entry"
  cached=yes
else
  start=$(date +%s)
  rm -rf "$entry.partial"
  build_into "$entry.partial"
  echo "$(( $(date +%s) - start ))" > "$entry.partial/build-seconds"
  touch "$entry.partial/done"
  rm -rf "$entry" && mv "$entry.partial" "$entry"
  # Older entries are other inputs' images: keep the newest few only (each is ~100 MB).
  ls -1dt "$CACHE"/*/done 2>/dev/null | tail -n +4 | xargs -r -n1 dirname | xargs -r rm -rf
  cached=no
fi

if [ -n "$push" ]; then
  dest="$push"
  case "${dest##*/}" in *:*) ;; *) dest="$dest:$VERSION" ;; esac
  tls=()
  case "$dest" in 127.0.0.1:*|localhost:*) tls=(--dest-tls-verify=false) ;; esac
  log "push to $dest (skopeo)"
  skopeo copy -q "${tls[@]}" "oci:$entry/oci:$VERSION" "docker://$dest" >&2
  echo "pushed=$dest"
fi

echo "layout=$entry/oci"
echo "ref=oci:$entry/oci:$VERSION"
echo "version=$VERSION"
echo "revision=$REVISION"
echo "created=$CREATED"
echo "cached=$cached"
echo "build_seconds=$(cat "$entry/build-seconds")"
echo "rootfs_bytes=$(cat "$entry/rootfs-bytes")"
describe "$entry"
