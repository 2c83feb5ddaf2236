#!/usr/bin/env bash
# Removes what the server release's install.sh added: the service (stopped and disabled), the
# unit, the wrapper and /opt/llorch. The settings (/etc/llorch/serve.env), the state
# (/var/lib/llorch: registry, Durable Objects, admin token) and the llorch user stay unless
# --purge. install.sh copies this script to /opt/llorch/uninstall.sh.
set -euo pipefail
# useradd, userdel and runuser live in sbin, which a non-login root shell may lack on PATH.
export PATH="$PATH:/usr/sbin:/sbin"

usage() {
  cat <<'USAGE'
usage: uninstall.sh [--purge] [--root DIR]

  --purge     also remove /etc/llorch/serve.env and /var/lib/llorch (every key, node and usage row:
              run `llorch serve backup` first) and the llorch user
  --root DIR  the staging root given to install.sh --root (also DESTDIR=DIR); runs no systemctl or userdel
USAGE
}

die() {
  echo "uninstall.sh: $*" >&2
  exit 1
}

ROOT="${DESTDIR:-}"
PURGE=0
while [ $# -gt 0 ]; do
  case "$1" in
    --root) [ $# -ge 2 ] || die "--root needs a directory"; ROOT="$2"; shift 2 ;;
    --purge) PURGE=1; shift ;;
    -h|--help) usage; exit 0 ;;
    *) usage >&2; die "unknown argument: $1" ;;
  esac
done
ROOT="${ROOT%/}"
STAGING=0
[ -n "$ROOT" ] && STAGING=1
if [ "$STAGING" = 0 ] && [ "$(id -u)" != 0 ]; then
  die "run as root (sudo $0 …), or give --root DIR for a staging install"
fi

SERVICE_USER=llorch
UNIT=/etc/systemd/system/llorch.service

if [ "$STAGING" = 0 ] && command -v systemctl >/dev/null && [ -d /run/systemd/system ] && [ -e "$UNIT" ]; then
  systemctl disable --now llorch >/dev/null 2>&1 || true
fi
rm -f "$ROOT$UNIT" "$ROOT/usr/local/bin/llorch"
rm -rf "$ROOT/opt/llorch"
if [ "$STAGING" = 0 ] && command -v systemctl >/dev/null && [ -d /run/systemd/system ]; then
  systemctl daemon-reload
fi
echo "removed: the service, $ROOT$UNIT, $ROOT/usr/local/bin/llorch, $ROOT/opt/llorch"

if [ "$PURGE" = 1 ]; then
  rm -rf "$ROOT/etc/llorch/serve.env" "$ROOT/var/lib/llorch"
  # The agent release shares the user; it stays while that is installed.
  if [ "$STAGING" = 0 ] && id -u "$SERVICE_USER" >/dev/null 2>&1 && [ ! -e /opt/llorch-agent ]; then
    userdel "$SERVICE_USER"
  fi
  echo "purged: $ROOT/etc/llorch/serve.env, $ROOT/var/lib/llorch"
else
  echo "kept: $ROOT/etc/llorch/serve.env, $ROOT/var/lib/llorch (registry, Durable Objects, admin token); --purge removes them"
fi
