#!/usr/bin/env bash
# Builds the local stack's binaries from the Go module proxy into $DEVSTACK_BIN
# (default ~/.cache/destination-aws-s3/bin), each only when missing or at another version:
#   temporal  Temporal CLI dev server with the Web UI (server 1.29.1, UI 2.42.1)
#   minio     S3 + STS + KMS server (AGPL: built and run as a separate process, never imported)
#   bqemu     BigQuery emulator v0.8.1 behind a proxy that speaks BigQuery's real Arrow framing
# A cold build takes 15-25 minutes on 2 cores; a warm run takes seconds.
set -euo pipefail
cd "$(dirname "$0")/.."

BIN=${DEVSTACK_BIN:-${XDG_CACHE_HOME:-$HOME/.cache}/destination-aws-s3/bin}
TEMPORAL_CLI_VERSION=v1.5.1
MINIO_VERSION=v0.0.0-20260212201848-7aac2a2c5b7c
mkdir -p "$BIN"
export GOFLAGS=-buildvcs=false

install_module() { # name package version
  local name=$1 pkg=$2 version=$3 stamp="$BIN/.$1.version"
  if [[ -x "$BIN/$name" && "$(cat "$stamp" 2>/dev/null)" == "$version" ]]; then
    return 0
  fi
  echo "install-tools: building $name $version (cold builds take minutes)"
  GOBIN="$BIN" go install "$pkg@$version"
  echo "$version" >"$stamp"
}

pids=()
install_module temporal github.com/temporalio/cli/cmd/temporal "$TEMPORAL_CLI_VERSION" & pids+=($!)
install_module minio github.com/minio/minio "$MINIO_VERSION" & pids+=($!)
# bqemu is our own tool module; go build's cache makes a warm rebuild take seconds.
(cd internal/devstack/bqemu && go build -o "$BIN/bqemu.tmp" . && mv "$BIN/bqemu.tmp" "$BIN/bqemu") & pids+=($!)
status=0
for p in "${pids[@]}"; do wait "$p" || status=1; done
if [[ $status -ne 0 ]]; then
  echo "install-tools: a build failed" >&2
  exit 1
fi
echo "install-tools: temporal, minio and bqemu are in $BIN"
