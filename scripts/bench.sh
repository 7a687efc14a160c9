#!/usr/bin/env bash
# Runs every benchmark behind docs/benchmarks.md, in both inbox modes, and keeps the raw
# output in target/bench-results/ (criterion's reports stay in target/criterion/).
#
#   scripts/bench.sh            # everything (~10 minutes on 2 cores)
#   ROUNDS=3 scripts/bench.sh   # the criterion benches 3 times, to see the spread
#   CLIENTS=0 scripts/bench.sh  # skip gudp bench's many-connections run
#
# Run it on an otherwise idle machine: every figure is compared with a baseline measured in
# the same run, but a neighbour's load still moves both.
set -euo pipefail
cd "$(dirname "$0")/.."

out=target/bench-results
mkdir -p "$out"
rounds="${ROUNDS:-1}"
clients="${CLIENTS:-1000}"
{
    echo "date: $(date -u +%FT%TZ)"
    echo "commit: $(git rev-parse --short HEAD 2>/dev/null || echo unknown)"
    echo "cpu: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //')"
    echo "cores: $(nproc), memory: $(free -g | awk '/^Mem:/ {print $2}') GiB"
    echo "kernel: $(uname -r)"
    echo "rustc: $(rustc --version)"
} | tee "$out/machine.txt"

criterion() { grep -E --line-buffered '^[a-z_0-9-]+/|time:|thrpt:' || true; }

for round in $(seq 1 "$rounds"); do
    echo "--- round $round: criterion core, lock-free ---"
    cargo bench -q --bench core --features internals 2>&1 | criterion | tee "$out/core-lock-free-$round.txt"
    echo "--- round $round: criterion core, naive-mutex (inbox) ---"
    cargo bench -q --bench core --features internals,naive-mutex -- inbox 2>&1 | criterion |
        tee "$out/core-naive-mutex-$round.txt"
    echo "--- round $round: criterion e2e, lock-free ---"
    cargo bench -q --bench e2e 2>&1 | criterion | tee "$out/e2e-lock-free-$round.txt"
    echo "--- round $round: criterion e2e, naive-mutex ---"
    cargo bench -q --bench e2e --features naive-mutex 2>&1 | criterion |
        tee "$out/e2e-naive-mutex-$round.txt"
    echo "--- round $round: criterion message_cpu (GUDP's message layer vs renet) ---"
    cargo bench -q --bench message_cpu 2>&1 | criterion | tee "$out/message-cpu-$round.txt"
done

echo "--- message layer vs renet, simulated link (the table) ---"
cargo bench -q --bench messages 2>&1 | tee "$out/messages.txt"

for mode in lock-free naive-mutex; do
    features=()
    [ "$mode" = naive-mutex ] && features=(--features naive-mutex)
    echo "--- gudp bench, $mode ---"
    cargo run -q --release "${features[@]}" -- bench --clients "$clients" \
        --csv "$out/gudp-bench-$mode.csv" --svg "$out/gudp-bench-$mode.svg" |
        tee "$out/gudp-bench-$mode.txt"
done
echo "results in $out/"
