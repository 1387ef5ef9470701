#!/usr/bin/env bash
# README's first command: install what is needed, then render real repositories end to end
# on local defaults: local RabbitMQ, a local S3 server (moto) on 127.0.0.1, two processors.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec python3 scripts/demo.py "$@"
