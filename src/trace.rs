//! Diagnostics: `tracing` events under the target `gudp`, with the cargo feature `tracing`.
//!
//! Without the feature every event site expands to nothing: its arguments are not even
//! evaluated, so the hot paths pay nothing for it.

/// `event!(level, fields..., "message")`: a `tracing` event at `level` (`error`, `warn`,
/// `info`, `debug`, `trace`), or nothing at all without the `tracing` feature.
#[cfg(feature = "tracing")]
macro_rules! event {
    ($level:ident, $($rest:tt)+) => {
        ::tracing::$level!(target: "gudp", $($rest)+)
    };
}

#[cfg(not(feature = "tracing"))]
macro_rules! event {
    ($level:ident, $($rest:tt)+) => {};
}

pub(crate) use event;
