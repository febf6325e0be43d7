#!/bin/bash
# PID 1 of a host container ("instance"): host keys, the instance's authorized key, loopback
# forwards to the local cloud over unix sockets, sshd. SIGTERM (from `shutdown`) stops it all.
set -euo pipefail

SOCKET_DIR=${SPOTSCRIBE_SOCKET_DIR:-/run/spotscribe/sockets}

install_authorized_key() {
  [ -n "${SSH_AUTHORIZED_KEY:-}" ] || { echo "host-entry: SSH_AUTHORIZED_KEY is empty" >&2; exit 64; }
  install -d -m 700 -o ubuntu -g ubuntu /home/ubuntu/.ssh
  printf '%s\n' "$SSH_AUTHORIZED_KEY" > /home/ubuntu/.ssh/authorized_keys
  chown ubuntu:ubuntu /home/ubuntu/.ssh/authorized_keys
  chmod 600 /home/ubuntu/.ssh/authorized_keys
}

# SPOTSCRIBE_FORWARDS="moto:5000 registry:5123": 127.0.0.1:<port> here -> <socket dir>/<name>.sock
start_forwards() {
  local spec name port
  for spec in ${SPOTSCRIBE_FORWARDS:-}; do
    name=${spec%%:*} port=${spec##*:}
    socat "TCP-LISTEN:${port},bind=127.0.0.1,fork,reuseaddr" "UNIX-CONNECT:${SOCKET_DIR}/${name}.sock" &
    echo "host-entry: forwarding 127.0.0.1:${port} -> ${name}"
  done
}

power_off() {
  echo "host-entry: powering off"
  kill -TERM "$(cat /run/sshd.pid 2>/dev/null)" 2>/dev/null || true
  if [ -S /var/run/docker.sock ]; then timeout 20 docker ps -q | xargs -r timeout 20 docker stop -t 5 >/dev/null || true; fi
  exit 0
}

ssh-keygen -A >/dev/null
install_authorized_key
start_forwards
trap power_off TERM INT
/usr/sbin/sshd -D -e &
echo "host-entry: sshd started; host ready"
wait -n || true
power_off
