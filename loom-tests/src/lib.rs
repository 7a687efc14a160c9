//! Model checks of GUDP's concurrent core live in `tests/`; build them with
//! `RUSTFLAGS="--cfg loom"`. This library is intentionally empty.
