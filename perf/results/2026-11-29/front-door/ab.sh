#!/usr/bin/env bash
# A/B: perf_analyzer on faq_match at one concurrency, straight vs through the door, alternating.
# The repository: .venv/bin/python -c "from export.build_repository import build; from pathlib import Path; build('cpu', Path('build/fd_repo'), only=['faq_match'], with_steps=True)"
set -euo pipefail
cd "$(dirname "$0")/../../../.."
OUT=${OUT:-perf/results/2026-11-29/front-door}
mkdir -p $OUT
.venv/bin/python -m serving serve --detach --repository build/fd_repo --http-port 18000 --grpc-port 18001 --metrics-port 18002
TRITON=$(.venv/bin/python -c "import json; print(json.load(open('.run/triton.json'))['triton_http'])")
export LD_LIBRARY_PATH=$(.venv/bin/python -c "import nvidia.cuda_runtime as c; print(list(c.__path__)[0] + '/lib')")
for r in 1 2 3 4 5 6; do
  order="direct door"; [ $((r % 2)) = 0 ] && order="door direct"
  for which in $order; do
    port=$TRITON; [ $which = door ] && port=18000
    .venv/bin/perf_analyzer -m faq_match -u localhost:$port -i http --concurrency-range ${C:-24}:${C:-24} --measurement-mode count_windows --measurement-request-count 3000 -s 50 -r 10 --input-data perf/out/inputs/faq.json -f $OUT/$which-r$r.csv > $OUT/$which-r$r.log 2>&1
    echo "$which r$r $(python3 -c "import csv; r=list(csv.DictReader(open('$OUT/$which-r$r.csv')))[0]; print(r['Inferences/Second'], int(r['p99 latency'])/1000)")"
  done
done
.venv/bin/python -m serving stop
