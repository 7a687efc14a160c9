#!/usr/bin/env bash
# Model-checks the concurrent core with loom, for both buffer implementations.
# Each model runs at the preemption bound written next to it in loom-tests/tests/*.rs;
# set LOOM_MAX_PREEMPTIONS to override every bound. Results (interleavings per model)
# are printed one line per model and recorded in docs/proofs.md.
set -euo pipefail
cd "$(dirname "$0")/.."

export RUSTFLAGS="--cfg loom"
export LOOM_MAX_BRANCHES="${LOOM_MAX_BRANCHES:-10000}"
# Its own target directory: --cfg loom rebuilds every crate differently.
target=(--release --target-dir target-loom -p loom-tests)

run() {
    # 20 minutes is a hang guard, far above the few minutes the suite takes.
    timeout 1200 cargo test "${target[@]}" "$@" -- --nocapture --test-threads 2 2>&1 |
        grep -E --line-buffered '^(loom model|test result)|panicked|deadlock|error|FAILED'
}

echo "--- loom: every model, lock-free buffers (default) ---"
run
# The ring, the status word, the wake gate and the stress tests do not depend on the feature;
# the models of the buffers (inbox, outbox) and of the protocols on them rerun.
echo "--- loom: inbox, outbox, conn, ready and messages models, naive-mutex buffers ---"
run --features gudp/naive-mutex --test inbox --test outbox --test conn --test ready --test messages --test lead
