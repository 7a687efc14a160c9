//! Model checks of GUDP's concurrent core. The models live in `tests/`; this library holds
//! the one helper they share. Build and run them with:
//!
//! ```text
//! scripts/loom.sh            # both inbox implementations, each model at its own bound
//! ```
//!
//! Without `--cfg loom` this crate is empty.

/// Runs `model` under loom's checker with at most `preemptions` preemptions per interleaving
/// (`LOOM_MAX_PREEMPTIONS`, if set, overrides it for every model) and prints how many
/// interleavings it explored, for `docs/proofs.md`.
#[cfg(loom)]
pub fn check<F>(name: &str, preemptions: usize, model: F)
where
    F: Fn() + Sync + Send + 'static,
{
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;

    let explored = Arc::new(AtomicUsize::new(0));
    let counter = explored.clone();
    let mut builder = loom::model::Builder::new();
    if builder.preemption_bound.is_none() {
        builder.preemption_bound = Some(preemptions);
    }
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
