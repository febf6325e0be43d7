#!/bin/bash
# spotscribe worker user data (step 132). cloud-init runs it once, as root, on an instance's first boot:
# install what is missing, pull the worker image, start the worker (restart policy, host networking, logs to
# CloudWatch, rotated local copies) and power the instance off when the worker exits idle.
# Rendered from fleet/templates/docker-worker-userdata.sh.tmpl by `fleet userdata render`; do not edit a copy.
set -euo pipefail

# ---- settings (rendered from the deployment) ----
WORKER_IMAGE=123456789012.dkr.ecr.us-east-1.amazonaws.com/whisper-docker-dev:latest
AWS_REGION=us-east-1
LOG_GROUP=/spotscribe/dev/workers
HEALTH_PORT=8080
IMDS_ENDPOINT=http://169.254.169.254
IDLE_SHUTDOWN=1
READY_TIMEOUT=600
WORKER_NAME=spotscribe-worker
WORKER_MAX_RESTARTS=5
LOG_MAX_SIZE=10m
LOG_MAX_FILE=3
AWS_ENDPOINT_URL=''
LOCAL_AWS_ACCESS_KEY_ID=''
LOCAL_AWS_SECRET_ACCESS_KEY=''
WORKER_ENVIRONMENT=(
  QUEUE_URL=https://sqs.us-east-1.amazonaws.com/123456789012/whisper-dev-jobs
  DLQ_URL=https://sqs.us-east-1.amazonaws.com/123456789012/whisper-dev-dlq
  OUTPUT_URI=s3://spotscribe-dev-transcripts/transcripts/
  AWS_REGION=us-east-1
  AWS_DEFAULT_REGION=us-east-1
  TRANSCRIBE_ENGINE=faster-whisper
  HEALTH_PORT=8080
  IMDS_ENDPOINT=http://169.254.169.254
  IDLE_TIMEOUT=900
)

# ---- host library (fleet/templates/host-lib.sh) ----
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

# ---- user data ----
export HOME=${HOME:-/root}
USERDATA_LOG=/var/log/spotscribe-userdata.log
WORKER_ENV_FILE=/etc/spotscribe/worker.env
IDLE_WATCH=/usr/local/sbin/spotscribe-idle-shutdown
BOOT_STARTED=$(date +%s)

elapsed() { echo "$(( $(date +%s) - BOOT_STARTED )) s"; }

imds_get() {
  local token
  token=$(curl -fsS --max-time 5 -X PUT -H "X-aws-ec2-metadata-token-ttl-seconds: 300" "$IMDS_ENDPOINT/latest/api/token")
  curl -fsS --max-time 5 -H "X-aws-ec2-metadata-token: $token" "$IMDS_ENDPOINT/latest/meta-data/$1"
}

install_missing() {
  local packages=()
  docker_installed || packages+=(docker.io)
  command -v aws >/dev/null 2>&1 || packages+=(awscli)
  command -v curl >/dev/null 2>&1 || packages+=(curl ca-certificates)
  if [ "${#packages[@]}" -gt 0 ]; then
    log "installing ${packages[*]}"
    apt_install "${packages[@]}"
  fi
}

# Rotation for every container's json-file logs (the worker's own go to CloudWatch, see start_worker).
configure_docker_daemon() {
  local wanted
  wanted=$(printf '{\n  "log-driver": "json-file",\n  "log-opts": {"max-size": "%s", "max-file": "%s"}\n}\n' \
    "$LOG_MAX_SIZE" "$LOG_MAX_FILE")
  mkdir -p /etc/docker
  if [ "$(cat /etc/docker/daemon.json 2>/dev/null)" != "$wanted" ]; then
    printf '%s\n' "$wanted" > /etc/docker/daemon.json
    if docker_running; then restart_docker; fi
  fi
}

# Local target only: the AWS CLI and dockerd (whose awslogs driver ships the worker's logs) get the local cloud's
# credentials. On EC2 both use the instance profile through IMDS and this does nothing.
use_local_cloud_credentials() {
  [ -n "${LOCAL_AWS_ACCESS_KEY_ID:-}" ] || return 0
  export AWS_ACCESS_KEY_ID=$LOCAL_AWS_ACCESS_KEY_ID AWS_SECRET_ACCESS_KEY=$LOCAL_AWS_SECRET_ACCESS_KEY
  if has_systemd; then
    mkdir -p /etc/systemd/system/docker.service.d
    printf '[Service]\nEnvironment=AWS_ACCESS_KEY_ID=%s AWS_SECRET_ACCESS_KEY=%s\n' \
      "$AWS_ACCESS_KEY_ID" "$AWS_SECRET_ACCESS_KEY" > /etc/systemd/system/docker.service.d/spotscribe-aws.conf
    systemctl daemon-reload
  fi
}

configure_logrotate() {
  cat > /etc/logrotate.d/spotscribe <<'ROTATE'
/var/log/spotscribe-*.log /var/log/dockerd.log {
  weekly
  rotate 4
  maxsize 50M
  compress
  missingok
  notifempty
  copytruncate
}
ROTATE
}

registry_login() {
  local registry=${WORKER_IMAGE%%/*}
  aws ecr get-login-password --region "$AWS_REGION" ${AWS_ENDPOINT_URL:+--endpoint-url "$AWS_ENDPOINT_URL"} \
    | docker login --username AWS --password-stdin "$registry"
}

pull_worker_image() {
  local attempt
  for attempt in 1 2 3 4 5; do
    if docker pull "$WORKER_IMAGE"; then return 0; fi
    log "pull attempt $attempt failed; retrying"
    sleep $((attempt * 3))
  done
  return 1
}

write_worker_env() {
  mkdir -p "$(dirname "$WORKER_ENV_FILE")"
  ( umask 077 && printf '%s\n' "${WORKER_ENVIRONMENT[@]}" > "$WORKER_ENV_FILE" )
}

# Restart on failure only: an idle worker exits 0 and stays down, which is the idle watch's signal.
start_worker() {
  docker rm -f "$WORKER_NAME" >/dev/null 2>&1 || true
  docker run -d --name "$WORKER_NAME" --restart "on-failure:${WORKER_MAX_RESTARTS}" --network host \
    --env-file "$WORKER_ENV_FILE" --env "INSTANCE_ID=$INSTANCE_ID" \
    --log-driver awslogs \
    --log-opt "awslogs-region=$AWS_REGION" \
    --log-opt "awslogs-group=$LOG_GROUP" \
    --log-opt "awslogs-stream=$INSTANCE_ID/$WORKER_NAME" \
    --log-opt awslogs-create-group=true \
    ${AWS_ENDPOINT_URL:+--log-opt "awslogs-endpoint=$AWS_ENDPOINT_URL"} \
    --log-opt mode=non-blocking --log-opt max-buffer-size=4m \
    --log-opt "cache-max-size=$LOG_MAX_SIZE" --log-opt "cache-max-file=$LOG_MAX_FILE" \
    "$WORKER_IMAGE"
}

wait_for_worker_ready() {
  local waited=0
  until curl -fsS --max-time 3 "http://127.0.0.1:${HEALTH_PORT}/ready" >/dev/null 2>&1; do
    if [ "$waited" -ge "$READY_TIMEOUT" ]; then
      log "worker not ready after ${READY_TIMEOUT} s"
      docker logs --tail 50 "$WORKER_NAME" || true
      return 1
    fi
    sleep 2
    waited=$((waited + 2))
  done
}

write_idle_watch() {
  cat > "$IDLE_WATCH" <<WATCH
#!/bin/bash
# Powers the instance off once the worker is down for good: exit 0 (idle timeout, or a drained spot notice),
# or a failure its restart policy gave up on. Written by the spotscribe user data.
while true; do
  code=\$(docker wait $WORKER_NAME 2>/dev/null) || { reason="worker container gone"; break; }
  if [ "\$code" = 0 ]; then reason="worker exited idle (exit 0)"; break; fi
  sleep 10
  state=\$(docker inspect -f '{{.State.Status}} {{.State.Restarting}}' $WORKER_NAME 2>/dev/null) \
    || { reason="worker container gone"; break; }
  case "\$state" in running*|*true) continue ;; esac
  reason="worker exited \$code and its restart policy gave up"; break
done
echo "\$(date -u +%Y-%m-%dT%H:%M:%SZ) \$reason: shutting down"
shutdown -h now
WATCH
  chmod 755 "$IDLE_WATCH"
}

start_idle_watch() {
  [ "$IDLE_SHUTDOWN" = 1 ] || { log "idle shutdown disabled"; return 0; }
  write_idle_watch
  if has_systemd; then
    systemd-run --unit=spotscribe-idle-shutdown --description="spotscribe idle shutdown" "$IDLE_WATCH"
  else
    setsid nohup "$IDLE_WATCH" >>/var/log/spotscribe-idle-shutdown.log 2>&1 </dev/null &
  fi
}

main() {
  log "user data started"
  install_missing
  configure_docker_daemon
  use_local_cloud_credentials
  configure_logrotate
  docker_running || start_docker
  if has_nvidia_gpu && ! nvidia_toolkit_configured; then install_nvidia_toolkit; fi
  INSTANCE_ID=$(imds_get instance-id)
  log "instance $INSTANCE_ID; tools ready after $(elapsed)"
  registry_login
  pull_worker_image
  log "worker image pulled after $(elapsed)"
  write_worker_env
  start_worker
  start_idle_watch
  wait_for_worker_ready
  log "worker ready after $(elapsed)"
}

main 2>&1 | tee -a "$USERDATA_LOG"
