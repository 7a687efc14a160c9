//! GUDP: a UDP game-networking transport with virtual connections.
//!
//! See the README for the picture and `docs/` for the design.
#![deny(missing_docs)]
#![warn(unsafe_op_in_unsafe_fn)]

pub mod inbox;
#[cfg(not(feature = "naive-mutex"))]
mod parker;
pub mod ring;
pub mod status;
mod sync;

pub mod conditioner;
pub mod protocol;
