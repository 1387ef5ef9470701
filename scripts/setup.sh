#!/usr/bin/env bash
# Install everything gource-batch needs on a fresh Debian/Ubuntu machine and make sure a
# RabbitMQ broker answers on localhost. Safe to run again: each step checks first.
#   apt: rabbitmq-server gource ffmpeg xvfb git fonts-wqy-zenhei (CJK glyphs) libfaketime (gource's clock sped
#        up: processor/render.py) tesseract-ocr (tests read gource's date)
#        prometheus prometheus-pushgateway (tests/test_prometheus.py runs the dashboard against them)
#   python: this project with its dev extras
#   helm: pinned, built with `go install` (scripts/install-helm.sh)
set -euo pipefail
cd "$(dirname "$0")/.."

sudo_if_needed() { if [[ $(id -u) -eq 0 ]]; then "$@"; else sudo "$@"; fi; }

packages=(rabbitmq-server gource ffmpeg xvfb git fonts-wqy-zenhei libfaketime tesseract-ocr prometheus prometheus-pushgateway)
missing=()
for pkg in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
if ((${#missing[@]})); then
  echo "setup: installing ${missing[*]}"
  sudo_if_needed apt-get update -qq
  sudo_if_needed env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
    "${missing[@]}" >/dev/null
  # Debian starts Prometheus (:9090) and the Pushgateway (:9091) when it installs them; the
  # tests start their own on free ports, so the system services only hold ports: stop them.
  for service in prometheus prometheus-pushgateway; do
    [[ " ${missing[*]} " == *" $service "* ]] || continue
    if [[ -d /run/systemd/system ]]; then
      sudo_if_needed systemctl disable --now "$service" >/dev/null 2>&1 || true
    else
      sudo_if_needed service "$service" stop >/dev/null 2>&1 || true
    fi
  done
fi

python3 -m pip install -q --disable-pip-version-check -e '.[dev]' 2>&1 | grep -v "as the 'root' user" || true
python3 -c "import pika, boto3, pydantic_settings, moto, pytest" # fail loudly if the install did not take

[[ -d /usr/local/go/bin ]] && export PATH="$PATH:/usr/local/go/bin"
bash scripts/install-helm.sh >/dev/null

broker_answers() { (exec 3<>/dev/tcp/127.0.0.1/5672) 2>/dev/null; }
if ! broker_answers; then
  echo "setup: starting rabbitmq-server"
  sudo_if_needed rabbitmq-server -detached >/dev/null 2>&1 || true
  for _ in $(seq 1 120); do broker_answers && break; sleep 1; done
  sudo_if_needed timeout 120 rabbitmqctl await_startup >/dev/null
fi
broker_answers || { echo "setup: RabbitMQ does not answer on 127.0.0.1:5672" >&2; exit 1; }
# `processor setup-broker` applies the work queues' policy through the management API (15672).
management_answers() { (exec 3<>/dev/tcp/127.0.0.1/15672) 2>/dev/null; }
if ! management_answers; then
  echo "setup: enabling rabbitmq_management"
  sudo_if_needed rabbitmq-plugins enable rabbitmq_management >/dev/null
  for _ in $(seq 1 60); do management_answers && break; sleep 1; done
fi
management_answers || { echo "setup: the RabbitMQ management API does not answer on 127.0.0.1:15672" >&2; exit 1; }
echo "setup: ready (RabbitMQ on 127.0.0.1:5672, management on 15672, $(gource --help | head -1), $(helm version --short))"
