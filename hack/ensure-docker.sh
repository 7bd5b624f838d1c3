#!/usr/bin/env bash
# Makes sure a Docker engine answers and docker-compose is installed, for CI
# and fresh machines.
#
# docker-compose (the e2e tests drive `docker-compose up`/`down`) is installed
# from Debian's docker-compose package when the command is missing, whether
# or not an engine already answers; that needs root and apt-get.
#
# An engine that already answers is used as it is: this script exits 0 and
# touches nothing else. Only when none answers does it install Debian's docker.io
# (if dockerd is missing) and start dockerd in the background, configured as
# NOTES.md found to work in unprivileged-network sandboxes: no iptables
# management, published ports on 127.0.0.1 only. It never stops or restarts
# an engine, including one it started earlier: the caller owns its lifetime
# (the pid is written to $DSO_DOCKERD_PIDFILE, default /tmp/dso-dockerd.pid).
set -euo pipefail

log="${DSO_DOCKERD_LOG:-/tmp/dso-dockerd.log}"
pidfile="${DSO_DOCKERD_PIDFILE:-/tmp/dso-dockerd.pid}"
wait_s="${DSO_DOCKERD_WAIT:-30}"

fail() {
  echo "ensure-docker: $*" >&2
  exit 1
}

server_answers() {
  command -v docker >/dev/null 2>&1 && docker version --format '{{.Server.Version}}' >/dev/null 2>&1
}

apt_updated=0
apt_install() {
  command -v apt-get >/dev/null 2>&1 || fail "apt-get is not available to install $1; install it by hand"
  export DEBIAN_FRONTEND=noninteractive
  if [ "$apt_updated" -eq 0 ]; then
    apt-get update || fail "apt-get update failed; check the package sources, then retry"
    apt_updated=1
  fi
  apt-get install -y "$1" || fail "apt-get install $1 failed; see the apt output above"
}

ensure_compose() {
  if command -v docker-compose >/dev/null 2>&1; then
    return 0
  fi
  if [ "$(id -u)" -ne 0 ]; then
    fail "docker-compose is not installed and this is not root, so it cannot be installed; install Debian's docker-compose package (or run this script as root) and retry"
  fi
  echo "ensure-docker: docker-compose not found; installing Debian's docker-compose"
  apt_install docker-compose
  command -v docker-compose >/dev/null 2>&1 || fail "docker-compose is still not on PATH after installing the package"
  echo "ensure-docker: installed $(docker-compose version --short 2>/dev/null || echo docker-compose)"
}

if server_answers; then
  echo "ensure-docker: engine $(docker version --format '{{.Server.Version}} (API {{.Server.APIVersion}})') already answers"
  ensure_compose
  exit 0
fi

# Installing and starting an engine needs root; say so instead of failing
# halfway through apt.
if [ "$(id -u)" -ne 0 ]; then
  fail "no Docker engine answers and this is not root, so none can be installed or started; start Docker (or run this script as root) and retry"
fi

if ! command -v dockerd >/dev/null 2>&1 || ! command -v docker >/dev/null 2>&1; then
  echo "ensure-docker: dockerd not found; installing Debian's docker.io"
  command -v apt-get >/dev/null 2>&1 || fail "dockerd is missing and apt-get is not available to install docker.io; install Docker Engine by hand"
  apt_install docker.io
fi
ensure_compose

# A socket without a live engine behind it (left from a crashed dockerd)
# would make dockerd refuse to start; a pidfile naming a live dockerd means
# one is still coming up, so wait for it rather than starting a second one.
if [ -f "$pidfile" ] && kill -0 "$(cat "$pidfile")" 2>/dev/null; then
  echo "ensure-docker: dockerd (pid $(cat "$pidfile")) started earlier is still running; waiting for it"
else
  echo "ensure-docker: starting dockerd (log: $log)"
  nohup dockerd --iptables=false --ip=127.0.0.1 --storage-driver=overlay2 >"$log" 2>&1 &
  echo $! >"$pidfile"
fi

pid="$(cat "$pidfile")"
for ((i = 0; i < wait_s * 5; i++)); do
  if server_answers; then
    echo "ensure-docker: engine $(docker version --format '{{.Server.Version}} (API {{.Server.APIVersion}})') is up after ~$((i / 5)) s (dockerd pid $pid)"
    exit 0
  fi
  if ! kill -0 "$pid" 2>/dev/null; then
    echo "--- last lines of $log ---" >&2
    tail -n 30 "$log" >&2 || true
    fail "dockerd exited during startup; see $log (overlay2 needs a filesystem that supports it; running inside a container needs --privileged)"
  fi
  sleep 0.2
done
echo "--- last lines of $log ---" >&2
tail -n 30 "$log" >&2 || true
fail "dockerd did not answer within ${wait_s} s; see $log"
