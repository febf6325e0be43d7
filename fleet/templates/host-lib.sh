# spotscribe host library: what makes a fresh Ubuntu/Debian machine a Docker (GPU) host. Shared by the remote
# installer (step 122, sent over SSH and called one function at a time) and the user data (step 132, inlined).
# Every function is idempotent; the *_installed / *_running / *_configured ones only look.

INSTALL_LOG=${INSTALL_LOG:-/var/log/spotscribe-install.log}
DOCKERD_PIDFILE=/run/spotscribe-dockerd.pid
NVIDIA_KEYRING=/usr/share/keyrings/nvidia-container-toolkit-keyring.gpg
NVIDIA_LIST_URL=https://nvidia.github.io/libnvidia-container/stable/deb/nvidia-container-toolkit.list

log() { echo "$(date -u +%Y-%m-%dT%H:%M:%SZ) $*"; }

apt_install() {
  export DEBIAN_FRONTEND=noninteractive
  apt-get -o DPkg::Lock::Timeout=300 update -q
  apt-get -o DPkg::Lock::Timeout=300 install -y -q --no-install-recommends "$@"
}

has_systemd() { [ -d /run/systemd/system ]; }

docker_installed() { command -v docker >/dev/null 2>&1 && command -v dockerd >/dev/null 2>&1; }

install_docker() { apt_install docker.io ca-certificates curl; }

docker_running() { timeout 10 docker info >/dev/null 2>&1; }

wait_for_docker() {
  local seconds=${1:-60} waited=0
  until docker_running; do
    if [ "$waited" -ge "$seconds" ]; then
      log "dockerd did not answer within ${seconds} s" >&2
      tail -n 20 /var/log/dockerd.log 2>/dev/null >&2 || true
      return 1
    fi
    sleep 1
    waited=$((waited + 1))
  done
}

# Without an init system (a host container) dockerd runs under start-stop-daemon; Debian's init script cannot
# be used there because it raises RLIMIT_NOFILE, which needs CAP_SYS_RESOURCE.
start_docker() {
  if has_systemd; then
    systemctl enable --now docker
  else
    start-stop-daemon --start --background --no-close --make-pidfile --pidfile "$DOCKERD_PIDFILE" \
      --exec /usr/sbin/dockerd >>/var/log/dockerd.log 2>&1
  fi
  wait_for_docker 60
}

restart_docker() {
  if has_systemd; then
    systemctl restart docker
  else
    start-stop-daemon --stop --pidfile "$DOCKERD_PIDFILE" --remove-pidfile --retry 20 || true
    start_docker
  fi
  wait_for_docker 60
}

user_in_docker_group() { [ -z "${HOST_USER:-}" ] || id -nG "$HOST_USER" | grep -qw docker; }

add_user_to_docker_group() { usermod -aG docker "$HOST_USER"; }

has_nvidia_gpu() { command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L >/dev/null 2>&1; }

nvidia_toolkit_configured() {
  command -v nvidia-ctk >/dev/null 2>&1 && docker info --format '{{json .Runtimes}}' | grep -q '"nvidia"'
}

install_nvidia_toolkit() {
  if [ ! -s "$NVIDIA_KEYRING" ]; then
    apt_install gnupg
    curl -fsSL https://nvidia.github.io/libnvidia-container/gpgkey | gpg --batch --yes --dearmor -o "$NVIDIA_KEYRING"
  fi
  curl -fsSL "$NVIDIA_LIST_URL" \
    | sed "s#deb https://#deb [signed-by=${NVIDIA_KEYRING}] https://#g" \
    > /etc/apt/sources.list.d/nvidia-container-toolkit.list
  apt_install nvidia-container-toolkit
  nvidia-ctk runtime configure --runtime=docker
  restart_docker
}

# run_step NAME PHASE FUNCTION: run FUNCTION, its output timestamped into the install log as well.
run_step() {
  local name=$1 phase=$2 fn=$3 status
  set +e
  { log "[$name] $phase: $fn"; "$fn"; } 2>&1 | tee -a "$INSTALL_LOG"
  status=${PIPESTATUS[0]}
  set -e
  log "[$name] $phase: exit $status" >>"$INSTALL_LOG"
  return "$status"
}
