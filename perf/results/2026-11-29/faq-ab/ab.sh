#!/usr/bin/env bash
# A/B: perf_analyzer on faq_match at one concurrency, the FAQ ensemble of OLD (a commit before the
# calibration, the scope model and MATCHED) against this checkout's, each on its own server
# (straight to Triton, no front door), alternating rounds.
set -euo pipefail
cd "$(dirname "$0")/../../../.."
OUT=${OUT:-perf/results/2026-11-29/faq-ab}
OLD=${OLD:-b91c2ab}
ROOT=$PWD
mkdir -p "$OUT"
rm -rf build/faq-ab-old && git worktree prune && git worktree add --detach build/faq-ab-old "$OLD" > /dev/null
build='from export.build_repository import build; from pathlib import Path; build("cpu", Path("build/faq_ab_repo"), only=["faq_match"], with_steps=True)'
(cd build/faq-ab-old && "$ROOT/.venv/bin/python" -c "$build")
.venv/bin/python -c "$build"
(cd build/faq-ab-old && "$ROOT/.venv/bin/python" -m serving serve --detach --no-front-door --repository build/faq_ab_repo --http-port 18100 --grpc-port 18101 --metrics-port 18102)
.venv/bin/python -m serving serve --detach --no-front-door --repository build/faq_ab_repo --http-port 18000 --grpc-port 18001 --metrics-port 18002
trap '(cd build/faq-ab-old && "$ROOT/.venv/bin/python" -m serving stop); .venv/bin/python -m serving stop; git worktree remove --force build/faq-ab-old' EXIT
.venv/bin/python -c "from perf.run import write_inputs; from perf import OUT_DIR; write_inputs(OUT_DIR / 'inputs')"
export LD_LIBRARY_PATH=$(.venv/bin/python -c "import nvidia.cuda_runtime as c; print(list(c.__path__)[0] + '/lib')")
for r in 1 2 3 4 5 6; do
  order="old new"; [ $((r % 2)) = 0 ] && order="new old"
  for which in $order; do
    port=18000; [ $which = old ] && port=18100
    .venv/bin/perf_analyzer -m faq_match -u localhost:$port -i http --concurrency-range ${C:-24}:${C:-24} --measurement-mode count_windows --measurement-request-count 3000 -s 50 -r 10 --input-data perf/out/inputs/faq.json -f $OUT/$which-r$r.csv > $OUT/$which-r$r.log 2>&1
    echo "$which r$r $(python3 -c "import csv; r=list(csv.DictReader(open('$OUT/$which-r$r.csv')))[0]; print(r['Inferences/Second'], int(r['p99 latency'])/1000)")"
  done
done
