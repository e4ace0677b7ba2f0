//! `tokmon demo --rows N --out PATH`: write a database of generated events.

use std::time::Instant;

use crate::cli::{DemoArgs, DemoSchema};
use crate::commands::Ctx;
use crate::demo::{Flavor, generate};

pub fn run(ctx: &Ctx, a: &DemoArgs) -> anyhow::Result<u8> {
    let rows: u64 = a.rows.trim().parse().map_err(|_| {
        crate::error::bad_input(format!(
            "invalid --rows '{}': use a whole number of events, such as 1000000",
            a.rows
        ))
    })?;
    let flavor = match a.as_schema {
        DemoSchema::Native => Flavor::Native,
        DemoSchema::Bot => Flavor::Bot,
        DemoSchema::ChatAgent => Flavor::ChatAgent,
        DemoSchema::Desktop => Flavor::Desktop,
    };
    let started = Instant::now();
    let n = generate(&a.out, flavor, rows, a.days, a.seed, ctx.now)?;
    crate::error::tell!(
        "wrote {} events over {} days into {} in {:.1}s",
        crate::numfmt::thousands(n),
        a.days,
        a.out.display(),
        started.elapsed().as_secs_f64()
    );
    Ok(0)
}
