#!/usr/bin/env bash
# Builds dso-systemd:dev (or the tag given as $1): a minimal Debian bookworm
# whose PID 1 is systemd, for test/systemd (`make test-systemd`), which runs
# `docker dso system enable|status|logs|restart|disable` against a real
# systemd and journald.
#
# No image registry is reachable where dso is tested, so nothing is pulled:
# debootstrap builds the root file system from the Debian package mirror this
# machine's apt already uses (read from /etc/apt at run time; no mirror is
# named in this repository), and `docker import` turns the tarball into an
# image. debootstrap is installed with apt-get when it is missing (root).
#
# Cached: the image carries the sha256 of this script as a label, and a
# rebuild is skipped while an image with the same key exists. Edit the script
# (or pass DSO_SYSTEMD_IMAGE_REBUILD=1) to rebuild.
set -euo pipefail

tag="${1:-dso-systemd:dev}"
self="${BASH_SOURCE[0]}"
key="$(sha256sum "$self" | cut -c1-64)"
label="dev.dso.systemd-image.key"

fail() {
  echo "build-systemd-image: $*" >&2
  exit 1
}

command -v docker >/dev/null 2>&1 || fail "the docker CLI is not installed; run hack/ensure-docker.sh first"

if [ "${DSO_SYSTEMD_IMAGE_REBUILD:-0}" != 1 ]; then
  have="$(docker image inspect --format "{{index .Config.Labels \"$label\"}}" "$tag" 2>/dev/null || true)"
  if [ "$have" = "$key" ]; then
    echo "$tag is current (key ${key:0:12}); not rebuilding"
    exit 0
  fi
fi

[ "$(id -u)" -eq 0 ] || fail "debootstrap needs root; run as root (or sudo)"

# The mirror: the first bookworm (not -security) URI of this machine's apt
# sources, deb822 first, then the one-line format.
mirror() {
  local f
  for f in /etc/apt/sources.list.d/*.sources; do
    [ -f "$f" ] || continue
    # A deb822 stanza: remember its URIs, print them when its Suites name
    # bookworm itself.
    awk '
      /^[[:space:]]*$/ { if (uris != "" && ok) { split(uris, u, " "); print u[1]; exit } uris = ""; ok = 0; next }
      /^URIs:/ { sub(/^URIs:[[:space:]]*/, ""); uris = $0 }
      /^Suites:/ { n = split($0, s, /[[:space:]]+/); for (i = 2; i <= n; i++) if (s[i] == "bookworm") ok = 1 }
      END { if (uris != "" && ok) { split(uris, u, " "); print u[1] } }
    ' "$f" | head -n1
  done
  for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
    [ -f "$f" ] || continue
    awk '$1 == "deb" { for (i = 2; i <= NF; i++) if ($i !~ /^\[/) { if ($(i+1) == "bookworm") print $i; break } }' "$f"
  done
}
mirror_uri="$(mirror | head -n1)"
[ -n "$mirror_uri" ] || fail "no bookworm entry in /etc/apt/sources.list.d/*.sources or /etc/apt/sources.list: cannot tell which Debian mirror to use"

if ! command -v debootstrap >/dev/null 2>&1; then
  command -v apt-get >/dev/null 2>&1 || fail "debootstrap is missing and apt-get is not available to install it"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq || fail "apt-get update failed"
  apt-get install -y -qq debootstrap >/dev/null || fail "apt-get install debootstrap failed"
fi

work="$(mktemp -d "${TMPDIR:-/tmp}/dso-systemd-image.XXXXXX")"
rootfs="$work/rootfs"
cleanup() {
  # debootstrap mounts proc and sys in the target while it runs; a failed
  # run can leave them mounted. Unmount whatever is under the work dir
  # (deepest first), and never let rm cross into another file system.
  awk -v d="$work" 'index($2, d "/") == 1 { print $2 }' /proc/mounts | sort -r | while read -r m; do
    umount -l "$m" 2>/dev/null || true
  done
  rm -rf --one-file-system "$work"
}
trap cleanup EXIT

echo "debootstrap bookworm (minbase + systemd, dbus) ..."
if ! debootstrap --variant=minbase --include=systemd,systemd-sysv,dbus,procps \
  bookworm "$rootfs" "$mirror_uri" >"$work/debootstrap.log" 2>&1; then
  # The mirror's address is this machine's business: keep it out of logs.
  tail -n 30 "$work/debootstrap.log" | sed "s#$mirror_uri#<apt mirror>#g" >&2
  fail "debootstrap failed (log above)"
fi

# Trim and adapt to a container: no udev, no gettys, no units that need
# hardware or a writable /sys; the machine id is made at first boot.
chroot "$rootfs" /bin/sh -eu <<'CHROOT'
apt-get clean
rm -rf /var/lib/apt/lists/* /var/cache/apt/*.bin /usr/share/doc/* /usr/share/man/* /usr/share/info/* /usr/share/locale/*
: >/etc/machine-id
rm -f /var/lib/dbus/machine-id
for u in systemd-udevd.service systemd-udevd-control.socket systemd-udevd-kernel.socket \
         systemd-udev-trigger.service systemd-udev-settle.service \
         getty.target console-getty.service getty@tty1.service \
         systemd-modules-load.service sys-kernel-config.mount sys-kernel-debug.mount sys-kernel-tracing.mount \
         systemd-remount-fs.service systemd-firstboot.service systemd-hwdb-update.service \
         apt-daily.timer apt-daily-upgrade.timer e2scrub_all.timer e2scrub_reap.service fstrim.timer; do
  ln -sf /dev/null "/etc/systemd/system/$u"
done
# journald: keep the journal in memory (/run); that is what the tests read.
mkdir -p /etc/systemd/journald.conf.d
printf '[Journal]\nStorage=volatile\n' >/etc/systemd/journald.conf.d/10-container.conf
CHROOT

echo "docker import $tag ..."
tar -C "$rootfs" --numeric-owner -c . | docker import \
  --change 'ENV container=docker' \
  --change "LABEL $label=$key" \
  --change 'LABEL org.opencontainers.image.title=dso-systemd' \
  --change 'CMD ["/sbin/init"]' \
  - "$tag" >/dev/null
echo "built $tag ($(docker image inspect --format '{{.Id}}' "$tag"), $(docker image inspect --format '{{.Size}}' "$tag" | awk '{printf "%.0f MB", $1/1e6}'))"
