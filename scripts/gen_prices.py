#!/usr/bin/env python3
"""Generate tokmon's built-in price table, src/pricing/prices.tsv.

The prices come from LiteLLM's `model_prices_and_context_window.json` (MIT licensed,
https://github.com/BerriAI/litellm), which ships inside the `litellm` wheel on PyPI as
`litellm/model_prices_and_context_window_backup.json`. The wheels are only opened as zip
files; nothing from them is installed or run.

How to run it (from the repository root):

    for v in 1.109.1 1.80.0 1.72.0; do
        pip download --no-deps -d /tmp/litellm-wheels litellm==$v
    done
    python3 scripts/gen_prices.py /tmp/litellm-wheels/litellm-1.109.1-*.whl \\
        /tmp/litellm-wheels/litellm-1.80.0-*.whl /tmp/litellm-wheels/litellm-1.72.0-*.whl

Pass the wheels newest first. The current table was made from 1.109.1 (the newest release
when it was generated) and two 2025 releases, 1.80.0 and 1.72.0, that still list models the
newest one has dropped. A name present in several wheels takes its prices from the first
(newest) one; older wheels only add the names the newer ones no longer list. Retired models
such as claude-sonnet-4-20250514, claude-3-5-sonnet-20241022 or gemini-1.5-pro still appear
in old logs and databases, and that history is priced at what those models cost.

What is kept: chat, completion, responses and embedding models (no images, audio, ...)
of the providers listed in PROVIDERS, under their bare model name (LiteLLM's own routing
prefix such as `gemini/` or `deepseek/` is removed). When two providers list the same bare
name, the one listed first in PROVIDERS wins, so the model maker's own price is used.
Embedding models are priced per input token; their output price is 0 when none is listed.

Claude on the cloud providers' routes is priced apart (some regions cost more, and only
some routes list long-context rates), so CLOUD_ROUTES keeps those entries under LiteLLM's
own key: Bedrock's model ids (`us.anthropic.claude-sonnet-4-5-20250929-v1:0`) and Vertex
AI's (`vertex_ai/claude-sonnet-4-5@20250929`).

Output columns, tab separated, prices in USD per token:
    name  provider  input  output  cache_write  cache_write_1h  cache_read
    input_above_200k  output_above_200k  cache_write_above_200k  cache_write_1h_above_200k
    cache_read_above_200k
`cache_write_1h` is the price of 1-hour cache writes (`cache_creation_input_token_cost_above_1hr`);
`cache_write` is the 5-minute one. The `*_above_200k` cells are the long-context tier
(`*_above_200k_tokens`): the rates of every token of a request whose prompt exceeds 200k
tokens. A cell is left empty when the source has no such price; tokmon decides what an empty
cell means (see src/pricing/mod.rs). Models priced by prompt length in LiteLLM's
`tiered_pricing` list get their base tier (see base_tier). Local models are not in the file:
tokmon recognises them by their provider prefix and prices them at 0.
"""

import datetime
import json
import re
import sys
import zipfile

TABLE_IN_WHEEL = "litellm/model_prices_and_context_window_backup.json"
OUT = "src/pricing/prices.tsv"

# (LiteLLM provider, tokmon provider label, key prefix to strip, bare-name filter or None).
# Order matters: the first provider to claim a bare name keeps it.
PROVIDERS = [
    ("openai", "openai", "", None),
    ("text-completion-openai", "openai", "", None),
    ("anthropic", "anthropic", "", None),
    ("gemini", "google", "gemini/", None),
    ("vertex_ai-language-models", "google", "vertex_ai/", r"^gemini-"),
    ("mistral", "mistral", "mistral/", r"^(?!zai-|glm-|deepseek-)"),
    ("codestral", "mistral", "codestral/", None),
    ("deepseek", "deepseek", "deepseek/", None),
    ("zai", "zai", "zai/", None),
    ("dashscope", "qwen", "dashscope/", r"^(qwen|qwq)"),
    ("qwen_ai_platform", "qwen", "qwen_ai_platform/", r"^(qwen|qwq)"),
    ("qwencloud", "qwen", "qwencloud/", r"^(qwen|qwq)"),
    ("perplexity", "perplexity", "perplexity/", None),
    ("vertex_ai-embedding-models", "google", "",
     r"^(text-embedding|text-multilingual-embedding|gemini-embedding)"),
]
MODES = {"chat", "completion", "responses", "embedding"}

# (LiteLLM provider, tokmon provider label, key filter): entries kept under their whole key.
CLOUD_ROUTES = [
    ("bedrock_converse", "bedrock", r"^([a-z-]+\.)?anthropic\.claude-"),
    ("bedrock", "bedrock", r"^([a-z-]+\.)?anthropic\.claude-"),
    ("vertex_ai-anthropic_models", "vertex_ai", r"^vertex_ai/claude-"),
    ("vertex_ai", "vertex_ai", r"^vertex_ai/claude-"),
]

# The price fields of one row after name and provider, in column order.
FIELDS = [
    "input_cost_per_token",
    "output_cost_per_token",
    "cache_creation_input_token_cost",
    "cache_creation_input_token_cost_above_1hr",
    "cache_read_input_token_cost",
    "input_cost_per_token_above_200k_tokens",
    "output_cost_per_token_above_200k_tokens",
    "cache_creation_input_token_cost_above_200k_tokens",
    "cache_creation_input_token_cost_above_1hr_above_200k_tokens",
    "cache_read_input_token_cost_above_200k_tokens",
]


def wheel_version(path):
    m = re.search(r"litellm-([0-9][^-]*)-", path)
    if not m:
        sys.exit(f"not a litellm wheel name: {path}")
    return m.group(1)


def load(path):
    with zipfile.ZipFile(path) as z:
        return json.loads(z.read(TABLE_IN_WHEEL))


def cell(v):
    # repr() of a float is the shortest text that reads back as the same number.
    return "" if v is None else repr(float(v))


def rows_of(table):
    """Yield (name, row) for the entries of one table that belong to PROVIDERS or CLOUD_ROUTES.

    row is (name, provider, *prices in FIELDS order), or None when the entry is not kept
    (see below).
    """
    for litellm_provider, label, prefix, name_filter in PROVIDERS:
        for key, e in table.items():
            if not isinstance(e, dict) or e.get("litellm_provider") != litellm_provider:
                continue
            name = key.lower()
            if prefix and name.startswith(prefix):
                name = name[len(prefix):]
            # Anything still routed through another service (perplexity/openai/gpt-5) is not
            # the model maker's price.
            if "/" in name or (name_filter and not re.search(name_filter, name)):
                continue
            yield name, row_of(name, label, e)
    for litellm_provider, label, key_filter in CLOUD_ROUTES:
        for key, e in table.items():
            if not isinstance(e, dict) or e.get("litellm_provider") != litellm_provider:
                continue
            name = key.lower()
            if re.search(key_filter, name) and "/" not in name.removeprefix("vertex_ai/"):
                yield name, row_of(name, label, e)


def row_of(name, label, e):
    """The row of one entry, or None when it is not a text model priced per token. A None
    still counts, so that an older table cannot bring back a name the newer one lists
    differently."""
    e = base_tier(e)
    if e.get("mode") == "embedding" and e.get("output_cost_per_token") is None:
        e = {**e, "output_cost_per_token": 0.0}
    if (e.get("mode") not in MODES or e.get("input_cost_per_token") is None
            or e.get("output_cost_per_token") is None):
        return None
    return (name, label, *(e.get(f) for f in FIELDS))


def base_tier(e):
    """The prices of the first tier of a model priced by prompt length.

    Some models list their prices as ranges of prompt size in `tiered_pricing` (Qwen's
    tiers). tokmon's sums keep one size split only, at 200k tokens (the `*_above_200k_tokens`
    fields), so such a model gets its base tier, as LiteLLM does for the flat
    `*_cost_per_token` fields.
    """
    if "input_cost_per_token" in e or not e.get("tiered_pricing"):
        return e
    tiers = sorted(e["tiered_pricing"], key=lambda t: (t.get("range") or [0])[0])
    return {**e, **tiers[0]}


def main(wheels):
    if not wheels:
        sys.exit(__doc__)
    versions = [wheel_version(w) for w in wheels]
    merged = {}
    for w in wheels:
        for name, row in rows_of(load(w)):
            merged.setdefault(name, row)
    merged = {name: row for name, row in merged.items() if row is not None}
    today = datetime.date.today().isoformat()
    with open(OUT, "w", encoding="utf-8", newline="\n") as f:
        f.write("# tokmon built-in model prices, USD per token. Generated by scripts/gen_prices.py;"
                " do not edit by hand.\n")
        f.write(f"# source: LiteLLM model_prices_and_context_window.json (MIT), litellm wheels "
                f"{', '.join(versions)}\n")
        f.write(f"# generated: {today}\n")
        f.write("# name\tprovider\tinput\toutput\tcache_write\tcache_write_1h\tcache_read"
                "\tinput_above_200k\toutput_above_200k\tcache_write_above_200k"
                "\tcache_write_1h_above_200k\tcache_read_above_200k\n")
        for name in sorted(merged):
            n, p, *prices = merged[name]
            f.write("\t".join([n, p, *map(cell, prices)]) + "\n")
    print(f"wrote {len(merged)} models to {OUT} from litellm {', '.join(versions)}")


if __name__ == "__main__":
    main(sys.argv[1:])
