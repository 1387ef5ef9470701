#!/usr/bin/env bash
# README's test command: set the machine up, then run the whole suite against the real
# broker, a moto S3 server on 127.0.0.1, git, gource, ffmpeg and Xvfb.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec python3 -m pytest "$@"
