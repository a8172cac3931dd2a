#!/usr/bin/env bash
# The image's slow, rarely changing layers, built ahead of the compile: the debootstrap base
# (base-image.sh) and the Dockerfile's build-deps and runtime-deps stages, whose apt runs are
# network-bound. Sourced by scripts/deploy-check.sh (image_deps, in its running dockerd); run
# alone (`image-deps.sh`, as scripts/prefetch.sh does) it starts and stops a private dockerd.
# The stages are tagged, so `docker image prune` keeps their layers cached.

# image_deps: builds both stages in $DOCKER_HOST's dockerd, and sets IMAGE_BUILD_ARGS, the
# `docker build` arguments of the image itself (the same, so the stages' cache is hit).
IMAGE_BUILD_ARGS=()
image_deps() {
  local base
  base=$(deploy/checks/base-image.sh import) || fail "base image (debootstrap + docker import)"
  IMAGE_BUILD_ARGS=(--network host -f deploy/docker/Dockerfile --build-arg "BASE_IMAGE=$base"
    --build-arg JOBS=2)
  docker build -q "${IMAGE_BUILD_ARGS[@]}" --target build-deps -t kvcomp-build-deps:cache . \
    > /dev/null || fail "docker build --target build-deps"
  docker build -q "${IMAGE_BUILD_ARGS[@]}" --target runtime-deps -t kvcomp-runtime-deps:cache . \
    > /dev/null || fail "docker build --target runtime-deps"
}

if [[ ${BASH_SOURCE[0]} == "$0" ]]; then
  set -euo pipefail
  cd "$(dirname "$0")/../.."
  source deploy/checks/lib.sh
  source deploy/checks/dockerd.sh
  trap dockerd_stop EXIT
  dockerd_start
  image_deps
fi
