#!/usr/bin/env bash
# Spark resource discovery for the GPU worker (spark.worker.resource.gpu.discoveryScript):
# prints the GPUs the container was given, e.g. {"name": "gpu", "addresses": ["0"]}.
set -euo pipefail
addresses=$(nvidia-smi --query-gpu=index --format=csv,noheader | awk 'NF {printf "%s\"%s\"", sep, $1; sep=","}')
echo "{\"name\": \"gpu\", \"addresses\": [${addresses}]}"
