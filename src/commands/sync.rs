//! `tokmon sync VALUE`: set the quota counter to the cumulative value another tool shows.

use crate::cli::SyncArgs;
use crate::error::bad_input;
use crate::state_file::{
    self, DEFAULT_SESSION_CAP, DEFAULT_TOTAL, SyncOutcome, SyncRequest, format_count, level_word,
    parse_sync_value,
};

use super::Ctx;

pub fn run(ctx: &Ctx, args: &SyncArgs) -> anyhow::Result<u8> {
    // Every input is checked before anything is opened or created.
    let value = parse_sync_value(&args.value)?;
    let total = match args.total.as_deref() {
        None => None,
        Some(t) => {
            let n = parse_sync_value(t).map_err(|e| bad_input(format!("--total: {e}")))?;
            if n == 0 {
                return Err(bad_input("--total 0: a quota total must be greater than 0"));
            }
            Some(n)
        }
    };
    let default_total = ctx.config.sync.default_total.unwrap_or(DEFAULT_TOTAL);
    if default_total == 0 {
        return Err(bad_input(
            "config sync.default_total = 0: a quota total must be greater than 0",
        ));
    }
    let mut req = SyncRequest::new(&ctx.state, value);
    req.note = args.note.as_deref();
    req.total = total;
    req.default_total = default_total;
    req.session_cap = ctx.config.sync.session_cap.unwrap_or(DEFAULT_SESSION_CAP);
    req.zone = ctx.zone;
    let out = state_file::sync(&req)?;
    crate::error::emit(&describe(&out))?;
    Ok(crate::error::exit::OK)
}

/// The lines `sync` prints.
pub fn describe(out: &SyncOutcome) -> String {
    let p = &out.plan;
    let mut s = String::new();
    if out.created {
        s += &format!("Created {}.\n", out.state_path.display());
    }
    if p.unchanged {
        s += &format!(
            "Nothing new to record: the counter is already at {}.\n",
            format_count(p.value)
        );
    } else if p.reset {
        s += &format!(
            "Counter reset: {} is below the previous {}; counted {} as new usage.\n",
            format_count(p.value),
            format_count(p.previous),
            format_count(p.increment)
        );
    } else {
        s += &format!(
            "Synced: +{} tokens since {}.\n",
            format_count(p.increment),
            format_count(p.previous)
        );
    }
    let v = &out.view;
    match (v.total, v.percentage) {
        (Some(t), Some(pct)) => {
            s += &format!(
                "Used {} of {} ({pct:.2} %, {}).\n",
                format_count(v.used),
                format_count(t),
                level_word(v.level)
            );
        }
        _ => s += &format!("Used {} (no quota total).\n", format_count(v.used)),
    }
    s
}
