#!/usr/bin/env bash
# Makes sure a Docker engine answers, for CI and fresh machines.
#
# An engine that already answers is used as it is: this script exits 0 and
# touches nothing. Only when none answers does it install Debian's docker.io
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

if server_answers; then
  echo "ensure-docker: engine $(docker version --format '{{.Server.Version}} (API {{.Server.APIVersion}})') already answers"
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
  export DEBIAN_FRONTEND=noninteractive
  apt-get update || fail "apt-get update failed; check the package sources, then retry"
  apt-get install -y docker.io || fail "apt-get install docker.io failed; see the apt output above"
fi

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
