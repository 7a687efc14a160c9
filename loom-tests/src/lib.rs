//! Model checks of GUDP's concurrent core. The models live in `tests/`; this library holds
//! the one helper they share. Build and run them with:
//!
//! ```text
//! RUSTFLAGS="--cfg loom" LOOM_MAX_PREEMPTIONS=2 \
//!     cargo test -p loom-tests --release --target-dir target-loom -- --nocapture
//! ```
//!
//! Without `--cfg loom` this crate is empty.

/// Runs `model` under loom's checker (bounds from the `LOOM_*` environment variables) and
/// prints how many interleavings it explored, for `docs/proofs.md`.
#[cfg(loom)]
pub fn check<F>(name: &str, model: F)
where
    F: Fn() + Sync + Send + 'static,
{
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;

    let explored = Arc::new(AtomicUsize::new(0));
    let counter = explored.clone();
    let builder = loom::model::Builder::new();
    let bound = builder.preemption_bound;
    builder.check(move || {
        counter.fetch_add(1, Ordering::Relaxed);
        model();
    });
    println!(
        "loom model {name} [{}]: {} interleavings, preemption bound {}",
        gudp::inbox::IMPLEMENTATION,
        explored.load(Ordering::Relaxed),
        bound.map_or_else(|| "none".to_string(), |b| b.to_string()),
    );
}
