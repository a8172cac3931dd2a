#!/usr/bin/env bash
# Makes the Debian bookworm base image the Dockerfile builds FROM (there is no registry):
# `debootstrap --variant=minbase bookworm` into a rootfs, packed as a tarball cached under
# $KVCOMP_CACHE (default /var/tmp/kvcomp-cache), keyed by this script's hash and the month,
# so a machine re-bootstraps at most monthly. `docker import` of the tarball is skipped when
# the image already exists in the running dockerd.
#   base-image.sh tarball   -> prints the cached tarball's path (makes it if missing)
#   base-image.sh import    -> ensures the image exists in $DOCKER_HOST's dockerd; prints its tag
set -euo pipefail
cache=${KVCOMP_CACHE:-/var/tmp/kvcomp-cache}
key="$(date -u +%Y%m)-$(sha256sum "$0" | cut -c1-12)"
tarball="$cache/bookworm-minbase-$key.tar"

make_tarball() {
  [ -s "$tarball" ] && return 0
  mkdir -p "$cache"
  local root
  root=$(mktemp -d "$cache/rootfs.XXXXXX")
  # shellcheck disable=SC2064
  trap "rm -rf '$root'" RETURN
  echo "base-image: debootstrap --variant=minbase bookworm (about a minute)" >&2
  debootstrap --variant=minbase bookworm "$root" http://deb.debian.org/debian > "$root.log" 2>&1 ||
    { tail -20 "$root.log" >&2; echo "base-image: FAILED: debootstrap (log above)" >&2; exit 1; }
  rm -f "$root.log"
  # apt in the image talks to Debian's archive directly, like the host.
  cat > "$root/etc/apt/sources.list" <<'SRC'
deb http://deb.debian.org/debian bookworm main
deb http://deb.debian.org/debian bookworm-updates main
deb http://deb.debian.org/debian-security bookworm-security main
SRC
  rm -rf "$root"/var/cache/apt/archives/*.deb "$root"/var/lib/apt/lists/*
  tar -C "$root" --numeric-owner -cf "$tarball.tmp" .
  mv "$tarball.tmp" "$tarball"
  # Older months' tarballs are stale.
  find "$cache" -maxdepth 1 -name 'bookworm-minbase-*.tar' ! -name "$(basename "$tarball")" -delete
}

case "${1:-}" in
  tarball) make_tarball; echo "$tarball" ;;
  import)
    image="kvcomp-base:bookworm-$key"
    if docker image inspect "$image" > /dev/null 2>&1; then echo "$image"; exit 0; fi
    make_tarball
    docker import --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
      --change 'CMD ["/bin/bash"]' "$tarball" "$image" > /dev/null
    echo "$image"
    ;;
  *) echo "usage: base-image.sh tarball | import" >&2; exit 2 ;;
esac
