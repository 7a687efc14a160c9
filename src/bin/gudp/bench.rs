//! `gudp bench`: GUDP against raw UDP on loopback.

use clap::Args as ClapArgs;

/// Options of `gudp bench`.
#[derive(ClapArgs)]
pub struct Args {
    /// Seconds per measurement.
    #[arg(long, default_value_t = 3)]
    pub seconds: u64,
}

pub fn run(args: Args) -> Result<(), String> {
    Err(format!(
        "gudp bench is not available in this build (asked for {} s per measurement)",
        args.seconds
    ))
}
