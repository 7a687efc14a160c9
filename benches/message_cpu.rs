//! CPU time per 100-byte reliable-ordered message, GUDP's message layer against renet's,
//! both ends in one thread over a lossless simulated link (100 ms RTT, 6,000 messages/s).
//! The time spent in the link conditioner is left out; handshakes are outside the timing.
//! `benches/messages.rs` prints the other figures.
//!
//! `cargo bench --bench message_cpu`

use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};

mod msg_common;

use msg_common::{throughput, Gudp, Renet, Stack};

fn run<S: Stack>(iters: u64) -> Duration {
    let t = throughput::<S>(iters, 100, 0);
    Duration::from_secs_f64(t.stack_ns_per_msg * iters as f64 / 1e9)
}

fn messages(c: &mut Criterion) {
    let mut g = c.benchmark_group("reliable_ordered_100B");
    g.throughput(Throughput::Elements(1));
    g.sample_size(10);
    g.warm_up_time(Duration::from_secs(1));
    g.measurement_time(Duration::from_secs(3));
    g.bench_function("gudp", |b| b.iter_custom(run::<Gudp>));
    g.bench_function("renet", |b| b.iter_custom(run::<Renet>));
    g.finish();
}

criterion_group!(benches, messages);
criterion_main!(benches);
