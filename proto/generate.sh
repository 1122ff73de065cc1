#!/usr/bin/env bash
# Regenerates packages/proto/src/gen from proto/ with Debian's protoc and the ts-proto
# plugin from node_modules (no binary is downloaded). Output is committed; CI checks it is current.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
out="$root/packages/proto/src/gen"
command -v protoc >/dev/null || { echo "protoc not found: apt-get install protobuf-compiler" >&2; exit 1; }
rm -rf "$out" && mkdir -p "$out"
protoc \
  --plugin="protoc-gen-ts_proto=$root/node_modules/.bin/protoc-gen-ts_proto" \
  --ts_proto_out="$out" \
  --ts_proto_opt=outputServices=grpc-js,esModuleInterop=true,importSuffix=.js,forceLong=number,useDate=false,env=node,useOptionals=none,oneof=unions-value,exportCommonSymbols=false,outputTypeRegistry=false \
  -I "$root/proto" "$root"/proto/ctnet/v1/*.proto
