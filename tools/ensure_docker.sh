#!/usr/bin/env bash
# Makes a Docker daemon available for the Docker tests, where this machine allows it:
# installs docker.io (Debian/Ubuntu, as root) when the client is missing and starts dockerd when
# no daemon answers. Elsewhere it says what is missing; the Docker tests then skip, unless
# KITT_REQUIRE_DOCKER=1 (as in .ci/run), which makes them fail instead.
set -u

if docker info >/dev/null 2>&1; then
  exit 0
fi
if [ "$(id -u)" != 0 ]; then
  echo "ensure_docker: no Docker daemon reachable and not root: Docker tests will be skipped" >&2
  exit 0
fi
if ! command -v docker >/dev/null 2>&1; then
  if command -v apt-get >/dev/null 2>&1; then
    echo "ensure_docker: installing docker.io" >&2
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq docker.io >/dev/null
  else
    echo "ensure_docker: no docker client and no apt-get: Docker tests will be skipped" >&2
    exit 0
  fi
fi
if ! docker info >/dev/null 2>&1 && command -v dockerd >/dev/null 2>&1; then
  echo "ensure_docker: starting dockerd (log: /tmp/kitt-dockerd.log)" >&2
  nohup dockerd >/tmp/kitt-dockerd.log 2>&1 &
  for _ in $(seq 1 60); do
    docker info >/dev/null 2>&1 && exit 0
    sleep 0.5
  done
  echo "ensure_docker: dockerd did not come up; see /tmp/kitt-dockerd.log" >&2
fi
exit 0
