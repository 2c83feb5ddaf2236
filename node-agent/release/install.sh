#!/usr/bin/env bash
# Installs llorch-agent from this unpacked release (built by `npm run build:agent`): the bundled
# agent and its own Node in /opt/llorch-agent, the wrapper /usr/local/bin/llorch-agent, the
# `llorch` system user, /etc/llorch/agent.yaml (written by `llorch-agent init` unless it exists),
# the token file /etc/llorch/node-token (0600, owned by llorch), /var/lib/llorch-agent and the
# systemd unit, enabled. Nothing is downloaded. Running it again upgrades and keeps config,
# token and state; a running service is restarted on the new version.
set -euo pipefail
# useradd, userdel and runuser live in sbin, which a non-login root shell may lack on PATH.
export PATH="$PATH:/usr/sbin:/sbin"

usage() {
  cat <<'USAGE'
usage: install.sh [--control-plane-url URL] [--token-stdin] [--start] [--root DIR]

  --control-plane-url URL  the control plane, written into a new /etc/llorch/agent.yaml
  --token-stdin            read the node token (from POST /v2/nodes) from stdin into /etc/llorch/node-token
  --start                  start the service once installed (otherwise it is only enabled)
  --root DIR               install under DIR as if it were / (also DESTDIR=DIR): a staging
                           install for images and tests; creates no user, chowns nothing and
                           runs no systemctl, so it works without root
USAGE
}

die() {
  echo "install.sh: $*" >&2
  exit 1
}

ROOT="${DESTDIR:-}"
URL=""
TOKEN_STDIN=0
START=0
while [ $# -gt 0 ]; do
  case "$1" in
    --root) [ $# -ge 2 ] || die "--root needs a directory"; ROOT="$2"; shift 2 ;;
    --control-plane-url) [ $# -ge 2 ] || die "--control-plane-url needs a URL"; URL="$2"; shift 2 ;;
    --token-stdin) TOKEN_STDIN=1; shift ;;
    --start) START=1; shift ;;
    -h|--help) usage; exit 0 ;;
    *) usage >&2; die "unknown argument: $1" ;;
  esac
done
ROOT="${ROOT%/}"
STAGING=0
[ -n "$ROOT" ] && STAGING=1

SERVICE_USER=llorch
PREFIX=/opt/llorch-agent
CONFIG_DIR=/etc/llorch
CONFIG=$CONFIG_DIR/agent.yaml
TOKEN_FILE=$CONFIG_DIR/node-token
STATE_DIR=/var/lib/llorch-agent
WRAPPER=/usr/local/bin/llorch-agent
UNIT=/etc/systemd/system/llorch-agent.service

here="$(cd "$(dirname "$0")" && pwd)"
for file in bin/node lib/llorch-agent.mjs llorch-agent.service uninstall.sh; do
  [ -e "$here/$file" ] || die "$here/$file is missing: run install.sh from an unpacked llorch-agent release"
done
if [ "$STAGING" = 0 ] && [ "$(id -u)" != 0 ]; then
  die "run as root (sudo $0 …), or give --root DIR for a staging install"
fi
if ! node_version="$("$here/bin/node" --version 2>&1)"; then
  die "the bundled Node does not run on this machine ($(uname -sm)): $node_version. Build the release on the same OS and CPU (glibc 2.28 or newer)."
fi
version="$("$here/bin/node" "$here/lib/llorch-agent.mjs" --version)"

if [ "$STAGING" = 0 ]; then
  if id -u "$SERVICE_USER" >/dev/null 2>&1; then
    echo "user $SERVICE_USER: exists"
  else
    useradd --system --user-group --home-dir "$STATE_DIR" --no-create-home --shell /usr/sbin/nologin "$SERVICE_USER"
    echo "user $SERVICE_USER: created"
  fi
fi

install -d -m 0755 "$ROOT$PREFIX/bin" "$ROOT$PREFIX/lib" "$ROOT$PREFIX/examples" "$ROOT$CONFIG_DIR" "$ROOT/usr/local/bin" "$ROOT/etc/systemd/system"
install -d -m 0750 "$ROOT$STATE_DIR"
install -m 0755 "$here/bin/node" "$ROOT$PREFIX/bin/node"
install -m 0644 "$here/lib/llorch-agent.mjs" "$ROOT$PREFIX/lib/llorch-agent.mjs"
install -m 0755 "$here/uninstall.sh" "$ROOT$PREFIX/uninstall.sh"
install -m 0644 "$here"/examples/* "$ROOT$PREFIX/examples/"

# Relative to itself, so an install under --root runs as well as one in /.
cat >"$ROOT$WRAPPER.tmp" <<'WRAPPER_SCRIPT'
#!/bin/sh
# llorch-agent, installed by install.sh: the bundled agent on its own Node (/opt/llorch-agent).
prefix="$(dirname "$(readlink -f "$0")")/../../../opt/llorch-agent"
exec "$prefix/bin/node" "$prefix/lib/llorch-agent.mjs" "$@"
WRAPPER_SCRIPT
chmod 0755 "$ROOT$WRAPPER.tmp"
mv -f "$ROOT$WRAPPER.tmp" "$ROOT$WRAPPER"
echo "agent: $version (Node $node_version) in $ROOT$PREFIX, wrapper $ROOT$WRAPPER"

if [ -e "$ROOT$CONFIG" ]; then
  echo "config: $ROOT$CONFIG exists, left alone${URL:+ (--control-plane-url not applied)}"
else
  init_args=(init --config "$ROOT$CONFIG" --token-file "$TOKEN_FILE" --state-dir "$STATE_DIR")
  [ -n "$URL" ] && init_args+=(--control-plane-url "$URL")
  "$ROOT$WRAPPER" "${init_args[@]}" >/dev/null
  echo "config: $ROOT$CONFIG written by llorch-agent init for the engines on PATH"
fi

if [ "$TOKEN_STDIN" = 1 ]; then
  IFS= read -r token || true
  [ -n "$token" ] || die "--token-stdin: no token on stdin"
  (umask 077 && printf '%s\n' "$token" >"$ROOT$TOKEN_FILE")
  echo "token file: $ROOT$TOKEN_FILE written"
elif [ ! -e "$ROOT$TOKEN_FILE" ]; then
  (umask 077 && : >"$ROOT$TOKEN_FILE")
  echo "token file: $ROOT$TOKEN_FILE created empty; put the node token in it"
else
  echo "token file: $ROOT$TOKEN_FILE exists, left alone"
fi
chmod 0600 "$ROOT$TOKEN_FILE"

if [ "$STAGING" = 0 ]; then
  chown "$SERVICE_USER:$SERVICE_USER" "$ROOT$TOKEN_FILE" "$ROOT$STATE_DIR"
  # systemd refuses to start a unit whose supplementary group does not exist.
  groups=""
  for group in video render; do
    if getent group "$group" >/dev/null; then groups="$groups $group"; fi
  done
  sed "s/^SupplementaryGroups=.*/SupplementaryGroups=${groups# }/" "$here/llorch-agent.service" >"$ROOT$UNIT.tmp"
else
  cp "$here/llorch-agent.service" "$ROOT$UNIT.tmp"
fi
chmod 0644 "$ROOT$UNIT.tmp"
mv -f "$ROOT$UNIT.tmp" "$ROOT$UNIT"
echo "unit: $ROOT$UNIT"

if [ "$STAGING" = 1 ]; then
  echo "staging install under $ROOT: no user created, nothing chowned, systemctl not run"
elif ! command -v systemctl >/dev/null || [ ! -d /run/systemd/system ]; then
  echo "systemd is not running here: start the agent yourself with $WRAPPER run --config $CONFIG (as $SERVICE_USER)"
else
  systemctl daemon-reload
  systemctl enable llorch-agent >/dev/null 2>&1
  if [ "$START" = 1 ] || systemctl is-active --quiet llorch-agent; then
    systemctl restart llorch-agent
    echo "service: enabled and (re)started; journalctl -u llorch-agent -f follows it"
  else
    echo "service: enabled, not started (sudo systemctl start llorch-agent, or install.sh --start)"
  fi
fi

echo "next: $WRAPPER doctor --config $CONFIG"
