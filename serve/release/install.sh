#!/usr/bin/env bash
# Installs llorch serve (the home profile) from this unpacked release, built by
# `npm run build:server`: Node, workerd, the Worker bundle, the CLI, the libSQL server and the
# agent in /opt/llorch, the wrapper /usr/local/bin/llorch, the `llorch` system user,
# /etc/llorch/serve.env, the state dir /var/lib/llorch (0700) and the systemd unit, enabled.
# Nothing is downloaded. Running it again upgrades and keeps the state: the next start migrates
# the registry; a running service is restarted on the new version.
set -euo pipefail
# useradd, userdel and runuser live in sbin, which a non-login root shell may lack on PATH.
export PATH="$PATH:/usr/sbin:/sbin"

usage() {
  cat <<'USAGE'
usage: install.sh [--start] [--root DIR]

  --start     start the service once installed (otherwise it is only enabled)
  --root DIR  install under DIR as if it were / (also DESTDIR=DIR): a staging install for
              images and tests; creates no user, chowns nothing and runs no systemctl
USAGE
}

die() {
  echo "install.sh: $*" >&2
  exit 1
}

ROOT="${DESTDIR:-}"
START=0
while [ $# -gt 0 ]; do
  case "$1" in
    --root) [ $# -ge 2 ] || die "--root needs a directory"; ROOT="$2"; shift 2 ;;
    --start) START=1; shift ;;
    -h|--help) usage; exit 0 ;;
    *) usage >&2; die "unknown argument: $1" ;;
  esac
done
ROOT="${ROOT%/}"
STAGING=0
[ -n "$ROOT" ] && STAGING=1

SERVICE_USER=llorch
PREFIX=/opt/llorch
CONFIG_DIR=/etc/llorch
ENV_FILE=$CONFIG_DIR/serve.env
STATE_DIR=/var/lib/llorch
WRAPPER=/usr/local/bin/llorch
UNIT=/etc/systemd/system/llorch.service

here="$(cd "$(dirname "$0")" && pwd)"
for file in bin/node bin/workerd lib/llorch.mjs lib/release.json lib/worker/index.js llorch.service uninstall.sh; do
  [ -e "$here/$file" ] || die "$here/$file is missing: run install.sh from an unpacked llorch-server release"
done
if [ "$STAGING" = 0 ] && [ "$(id -u)" != 0 ]; then
  die "run as root (sudo $0 …), or give --root DIR for a staging install"
fi
if ! node_version="$("$here/bin/node" --version 2>&1)"; then
  die "the bundled Node does not run on this machine ($(uname -sm)): $node_version. Build the release on the same OS and CPU."
fi
if ! workerd_version="$("$here/bin/workerd" --version 2>&1)"; then
  die "the bundled workerd does not run on this machine ($(uname -sm)): $workerd_version"
fi
version="$("$here/bin/node" "$here/lib/llorch.mjs" --version)"

if [ "$STAGING" = 0 ]; then
  if id -u "$SERVICE_USER" >/dev/null 2>&1; then
    echo "user $SERVICE_USER: exists"
  else
    useradd --system --user-group --home-dir "$STATE_DIR" --no-create-home --shell /usr/sbin/nologin "$SERVICE_USER"
    echo "user $SERVICE_USER: created"
  fi
fi

# A new version replaces the old one whole, so no file of an older release lingers in lib/.
rm -rf "$ROOT$PREFIX.new"
install -d -m 0755 "$ROOT$PREFIX.new" "$ROOT$CONFIG_DIR" "$ROOT/usr/local/bin" "$ROOT/etc/systemd/system"
cp -R "$here/bin" "$here/lib" "$ROOT$PREFIX.new/"
install -m 0755 "$here/uninstall.sh" "$ROOT$PREFIX.new/uninstall.sh"
rm -rf "$ROOT$PREFIX"
mv "$ROOT$PREFIX.new" "$ROOT$PREFIX"
install -d -m 0700 "$ROOT$STATE_DIR"

# Relative to itself, so an install under --root runs as well as one in /.
cat >"$ROOT$WRAPPER.tmp" <<'WRAPPER_SCRIPT'
#!/bin/sh
# llorch, installed by the server release's install.sh: the CLI and llorch serve on their own Node (/opt/llorch).
prefix="$(dirname "$(readlink -f "$0")")/../../../opt/llorch"
exec "$prefix/bin/node" "$prefix/lib/llorch.mjs" "$@"
WRAPPER_SCRIPT
chmod 0755 "$ROOT$WRAPPER.tmp"
mv -f "$ROOT$WRAPPER.tmp" "$ROOT$WRAPPER"
echo "llorch: $version (Node $node_version, $workerd_version) in $ROOT$PREFIX, wrapper $ROOT$WRAPPER"

if [ -e "$ROOT$ENV_FILE" ]; then
  echo "settings: $ROOT$ENV_FILE exists, left alone"
else
  cat >"$ROOT$ENV_FILE" <<'ENV'
# Flags for `llorch serve` under systemd (see `llorch serve run --help`), e.g.
# LLORCH_SERVE_ARGS="--host 0.0.0.0 --port 8787 --agent-config /etc/llorch/agent.yaml"
LLORCH_SERVE_ARGS="--host 127.0.0.1 --port 8787"
ENV
  chmod 0644 "$ROOT$ENV_FILE"
  echo "settings: $ROOT$ENV_FILE written (127.0.0.1:8787)"
fi

if [ "$STAGING" = 0 ]; then
  chown "$SERVICE_USER:$SERVICE_USER" "$ROOT$STATE_DIR"
  # systemd refuses to start a unit whose supplementary group does not exist.
  groups=""
  for group in video render; do
    if getent group "$group" >/dev/null; then groups="$groups $group"; fi
  done
  sed "s/^SupplementaryGroups=.*/SupplementaryGroups=${groups# }/" "$here/llorch.service" >"$ROOT$UNIT.tmp"
else
  cp "$here/llorch.service" "$ROOT$UNIT.tmp"
fi
chmod 0644 "$ROOT$UNIT.tmp"
mv -f "$ROOT$UNIT.tmp" "$ROOT$UNIT"
echo "unit: $ROOT$UNIT"

if [ "$STAGING" = 1 ]; then
  echo "staging install under $ROOT: no user created, nothing chowned, systemctl not run"
elif ! command -v systemctl >/dev/null || [ ! -d /run/systemd/system ]; then
  echo "systemd is not running here: start it yourself with $WRAPPER serve run --state-dir $STATE_DIR (as $SERVICE_USER)"
else
  systemctl daemon-reload
  systemctl enable llorch >/dev/null 2>&1
  if [ "$START" = 1 ] || systemctl is-active --quiet llorch; then
    systemctl restart llorch
    echo "service: enabled and (re)started; journalctl -u llorch -f follows it"
  else
    echo "service: enabled, not started (sudo systemctl start llorch, or install.sh --start)"
  fi
fi

echo "next: sudo -u $SERVICE_USER $WRAPPER serve doctor --state-dir $STATE_DIR; the admin token is in $STATE_DIR/admin-token after the first start"
