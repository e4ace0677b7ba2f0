//! `tokmon record`: one event from the shell into the native database.

use crate::cli::RecordArgs;
use crate::commands::Ctx;
use crate::error::bad_input;
use crate::store::native::NewEvent;
use crate::store::query::{MAX_TOKENS, add_tokens};
use crate::store::{Recorded, Writer};
use crate::timefmt::parse_user_time;

/// A token count: a whole number ≥ 0.
pub fn parse_tokens(flag: &str, v: &str) -> anyhow::Result<u64> {
    let t = v.trim();
    if !t.is_empty()
        && t.bytes().all(|b| b.is_ascii_digit())
        && let Ok(n) = t.parse::<u64>()
        && n <= i64::MAX as u64
    {
        return Ok(n);
    }
    let why = if t.starts_with('-') {
        "token counts cannot be negative"
    } else {
        "use a whole number of tokens, 0 or more"
    };
    Err(bad_input(format!("invalid {flag} '{v}': {why}")))
}

/// A non-negative finite number (cost, duration).
pub fn parse_amount(flag: &str, v: &str) -> anyhow::Result<f64> {
    match v.trim().parse::<f64>() {
        Ok(x) if x.is_finite() && x >= 0.0 => Ok(x),
        Ok(x) if x < 0.0 => Err(bad_input(format!(
            "invalid {flag} '{v}': it cannot be negative"
        ))),
        _ => Err(bad_input(format!(
            "invalid {flag} '{v}': use a number such as 0.0125"
        ))),
    }
}

/// Everything is validated before the database is opened, so a bad value writes nothing.
pub fn event_from_args(ctx: &Ctx, a: &RecordArgs) -> anyhow::Result<NewEvent> {
    let model = a.model.trim();
    if model.is_empty() {
        return Err(bad_input("invalid --model '': a model name is required"));
    }
    let at = match &a.at {
        Some(s) => parse_user_time(s, &ctx.zone, ctx.now)
            .map_err(|e| bad_input(format!("invalid --at: {}", e.0)))?,
        None => ctx.now,
    };
    let metadata = match &a.metadata {
        Some(m) => {
            let v: serde_json::Value = serde_json::from_str(m)
                .map_err(|e| bad_input(format!("invalid --metadata '{m}': not JSON ({e})")))?;
            Some(serde_json::to_string(&v)?)
        }
        None => None,
    };
    let cache_write = parse_tokens("--cache-write", &a.cache_write)?;
    let cache_write_1h = parse_tokens("--cache-write-1h", &a.cache_write_1h)?;
    if cache_write_1h > cache_write {
        return Err(bad_input(format!(
            "invalid --cache-write-1h '{}': it counts part of the --cache-write tokens ({cache_write}), so it cannot be more",
            a.cache_write_1h
        )));
    }
    let counts = [
        ("--input", &a.input),
        ("--output", &a.output),
        ("--cache-write", &a.cache_write),
        ("--cache-read", &a.cache_read),
    ];
    let mut total = 0u64;
    for (flag, v) in counts {
        total = add_tokens(total, parse_tokens(flag, v)?).map_err(|_| {
            bad_input(format!(
                "invalid token counts: --input {} + --output {} + --cache-write {} + --cache-read {} \
                 is more than {}, the most tokens tokmon counts exactly",
                a.input.trim(),
                a.output.trim(),
                a.cache_write.trim(),
                a.cache_read.trim(),
                crate::numfmt::thousands(MAX_TOKENS)
            ))
        })?;
    }
    Ok(NewEvent {
        ts_ms: at.timestamp_millis(),
        provider: a.provider.clone(),
        model: model.to_string(),
        agent: a.agent.clone(),
        session: a.session.clone(),
        project: a.project.clone(),
        user: a.user.clone(),
        channel: a.channel.clone(),
        operation: a.operation.clone(),
        input_tokens: parse_tokens("--input", &a.input)?,
        output_tokens: parse_tokens("--output", &a.output)?,
        cache_creation_tokens: cache_write,
        cache_read_tokens: parse_tokens("--cache-read", &a.cache_read)?,
        cache_creation_1h_tokens: cache_write_1h,
        cost_usd: a
            .cost
            .as_deref()
            .map(|c| parse_amount("--cost", c))
            .transpose()?,
        duration_ms: a
            .duration_ms
            .as_deref()
            .map(|c| parse_amount("--duration-ms", c))
            .transpose()?,
        source: "record".into(),
        unique_key: a.key.clone().filter(|k| !k.is_empty()),
        metadata,
    })
}

pub fn run(ctx: &Ctx, a: &RecordArgs) -> anyhow::Result<u8> {
    let event = event_from_args(ctx, a)?;
    let mut db = Writer::open(&ctx.db)?;
    let recorded = db.record(&event)?;
    drop(db);
    if recorded == Recorded::TooLarge {
        return Err(bad_input(format!(
            "not recorded: with this event the token sums of {} in its 15 minutes would pass {}, \
             the most tokens tokmon counts exactly",
            event.model,
            crate::numfmt::thousands(MAX_TOKENS)
        )));
    }
    if recorded == Recorded::Added {
        let total = [
            event.input_tokens,
            event.output_tokens,
            event.cache_creation_tokens,
            event.cache_read_tokens,
        ]
        .into_iter()
        .try_fold(0, add_tokens)?;
        crate::error::emit(&format!(
            "recorded {} tokens of {} in {}\n",
            crate::numfmt::thousands(total),
            event.model,
            crate::store::shown(&ctx.db)
        ))?;
    } else {
        crate::error::emit(&format!(
            "already recorded: an event with key '{}' is in {}; nothing added\n",
            event.unique_key.as_deref().unwrap_or_default(),
            crate::store::shown(&ctx.db)
        ))?;
    }
    Ok(0)
}
