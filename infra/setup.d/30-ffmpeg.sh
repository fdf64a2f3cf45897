#!/usr/bin/env bash
# ffmpeg decodes/encodes the video folders of @vw2/data (MiniCraft export, Video-CraftBench import).
# Installed from Debian's packages (bookworm's 5.1 series, pinned by version pattern so security updates
# still apply); a fast no-op when ffmpeg and ffprobe are already on PATH.
set -euo pipefail
if command -v ffmpeg >/dev/null 2>&1 && command -v ffprobe >/dev/null 2>&1; then
  echo "ffmpeg present: $(ffmpeg -version | head -n 1)"
  exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
  echo "30-ffmpeg: ffmpeg is missing and installing it needs root (apt-get install ffmpeg)" >&2
  exit 1
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -q
apt-get install -y -q --no-install-recommends 'ffmpeg=7:5.1.*'
ffmpeg -version | head -n 1
