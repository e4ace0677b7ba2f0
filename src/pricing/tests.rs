use super::*;

/// The entry a name resolves to, and how; panics with the name when it is unknown.
fn hit(model: &str) -> (&'static str, &'static str) {
    let r = resolve(model).unwrap_or_else(|| panic!("'{model}' should resolve"));
    (r.key, r.matched_by)
}

fn key(model: &str) -> &'static str {
    hit(model).0
}

fn price(model: &str) -> Price {
    resolve(model)
        .unwrap_or_else(|| panic!("'{model}' should resolve"))
        .price
}

// --- the table ---

#[test]
fn table_parses_and_has_a_sensible_size() {
    let n = TABLE.entries.len();
    assert!((300..=1000).contains(&n), "{n} entries");
    assert_eq!(TABLE.by_name.len(), n);
}

#[test]
fn table_covers_every_listed_provider() {
    for provider in [
        "openai",
        "anthropic",
        "google",
        "mistral",
        "deepseek",
        "qwen",
        "zai",
        "perplexity",
    ] {
        assert!(
            TABLE.entries.iter().any(|e| e.provider == provider),
            "no {provider} model"
        );
    }
    assert!(all().any(|r| r.provider == LOCAL_PROVIDER));
}

#[test]
fn source_note_names_the_source_its_versions_and_the_date() {
    let note = source_note();
    assert!(note.contains("LiteLLM"), "{note}");
    assert!(note.contains("MIT"), "{note}");
    assert!(note.contains("1.109.1"), "{note}");
    assert!(note.contains("generated 20"), "{note}");
}

#[test]
fn every_entry_resolves_to_itself_exactly() {
    for e in &TABLE.entries {
        assert_eq!(hit(e.key), (e.key, "exact"));
    }
}

#[test]
fn prices_come_from_the_table() {
    let p = price("claude-sonnet-4-5-20250929");
    assert_eq!(
        p,
        Price {
            input: 3e-6,
            output: 1.5e-5,
            cache_write: 3.75e-6,
            cache_write_1h: 6e-6,
            cache_read: 3e-7,
            long: None,
        }
    );
    let p = price("gpt-4o");
    assert_eq!((p.input, p.output, p.cache_read), (2.5e-6, 1e-5, 1.25e-6));
}

#[test]
fn a_missing_cache_price_is_the_input_price() {
    // The source lists no cache-write price for gpt-4o: writes are billed as input.
    let p = price("gpt-4o");
    assert_eq!(p.cache_write, p.input);
    // Nor any cache price for claude-2.
    let p = price("claude-2");
    assert_eq!((p.cache_write, p.cache_read), (p.input, p.input));
}

#[test]
fn cost_sums_every_kind_of_token() {
    let p = Price {
        input: 1.0,
        output: 10.0,
        cache_write: 100.0,
        cache_write_1h: 10_000.0,
        cache_read: 1000.0,
        long: None,
    };
    let t = Tokens {
        events: 7,
        input: 1,
        output: 2,
        cache_write: 3,
        cache_read: 4,
        ..Tokens::default()
    };
    assert_eq!(p.cost(&t), 4321.0);
    // Two of the three cache writes were 1-hour ones.
    let t = Tokens {
        cache_write_1h: 2,
        ..t
    };
    assert_eq!(p.cost(&t), 24121.0);
}

#[test]
fn malformed_tables_are_rejected() {
    let head = "# source: test\n# generated: 2026-01-01\n";
    let ok = format!("{head}a\tx\t1e-6\t2e-6\t\t\t\t\t\t\t\t\n");
    assert!(Table::parse(ok.leak()).is_ok());
    let row = "a\tx\t1e-6\t2e-6\t\t\t\t\t\t\t\t\n";
    for (bad, why) in [
        (
            "a\tx\t1e-6\t2e-6\t\t\t\t\t\t\t\n".to_string(),
            "line 3: expected 12 tab-separated cells, found 11",
        ),
        (
            "a\tx\t-1e-6\t2e-6\t\t\t\t\t\t\t\t\n".to_string(),
            "line 3: input of a is not a price: '-1e-6'",
        ),
        (
            "a\tx\tabc\t2e-6\t\t\t\t\t\t\t\t\n".to_string(),
            "line 3: input of a is not a price: 'abc'",
        ),
        (
            "a\tx\t1e-6\t2e-6\t\t\t\tx\t\t\t\t\n".to_string(),
            "line 3: long-context input of a is not a price: 'x'",
        ),
        (
            "A\tx\t1e-6\t2e-6\t\t\t\t\t\t\t\t\n".to_string(),
            "line 3: bad name or provider in 'A\tx\t1e-6\t2e-6\t\t\t\t\t\t\t\t'",
        ),
        (format!("{row}{row}"), "line 4: a is listed twice"),
    ] {
        let text = format!("{head}{bad}");
        match Table::parse(text.leak()) {
            Ok(_) => panic!("accepted {bad:?}"),
            Err(e) => assert_eq!(e.to_string(), why),
        }
    }
    match Table::parse(row) {
        Ok(_) => panic!("no header accepted"),
        Err(e) => assert_eq!(
            e.to_string(),
            "the '# source:' or '# generated:' header line is missing"
        ),
    }
}

// --- retired models are kept ---

#[test]
fn retired_models_are_still_priced() {
    for model in [
        "claude-sonnet-4-20250514",
        "gemini-1.5-pro",
        "claude-3-5-sonnet-20241022",
        "claude-3-opus-20240229",
        "claude-opus-4-1-20250805",
        "gpt-4-0613",
    ] {
        assert_eq!(hit(model), (model, "exact"));
        assert!(price(model).input > 0.0, "{model}");
    }
}

// --- matching rules ---

#[test]
fn matching_ignores_case_and_surrounding_space() {
    assert_eq!(hit("GPT-4o"), ("gpt-4o", "exact"));
    assert_eq!(
        hit("  Claude-Sonnet-4-5-20250929 "),
        ("claude-sonnet-4-5-20250929", "exact")
    );
}

#[test]
fn a_dated_name_in_the_table_matches_itself_not_its_family() {
    assert_eq!(
        hit("claude-sonnet-4-5-20250929"),
        ("claude-sonnet-4-5-20250929", "exact")
    );
    assert_ne!(
        key("claude-sonnet-4-5-20250929"),
        "claude-sonnet-4-20250514"
    );
}

#[test]
fn route_prefixes_are_stripped() {
    let prefixed = "provider prefix stripped";
    assert_eq!(hit("openai/gpt-4o"), ("gpt-4o", prefixed));
    assert_eq!(hit("azure/gpt-4o-mini"), ("gpt-4o-mini", prefixed));
    assert_eq!(
        hit("anthropic/claude-sonnet-4-5"),
        ("claude-sonnet-4-5", prefixed)
    );
    assert_eq!(hit("gemini/gemini-2.5-pro"), ("gemini-2.5-pro", prefixed));
    assert_eq!(hit("models/gemini-2.5-pro"), ("gemini-2.5-pro", prefixed));
    assert_eq!(hit("deepseek/deepseek-chat"), ("deepseek-chat", prefixed));
    assert_eq!(
        hit("openrouter/anthropic/claude-opus-4-5"),
        ("claude-opus-4-5", prefixed)
    );
}

#[test]
fn bedrock_ids_match_their_route_entry_else_their_model() {
    // Claude on Bedrock has entries of its own (regional prices, long-context tiers).
    assert_eq!(
        hit("bedrock/us.anthropic.claude-sonnet-4-20250514-v1:0"),
        (
            "us.anthropic.claude-sonnet-4-20250514-v1:0",
            "provider prefix stripped"
        )
    );
    assert_eq!(
        key("anthropic.claude-3-5-sonnet-20241022-v2:0"),
        "anthropic.claude-3-5-sonnet-20241022-v2:0"
    );
    assert_eq!(
        key("bedrock/converse/global.anthropic.claude-sonnet-4-5-20250929-v1:0"),
        "global.anthropic.claude-sonnet-4-5-20250929-v1:0"
    );
    // A Bedrock id the table does not list is priced as its model.
    assert_eq!(
        hit("ca.anthropic.claude-sonnet-4-5-20250929-v1:0"),
        (
            "claude-sonnet-4-5-20250929",
            "provider prefix stripped, name form normalised"
        )
    );
}

#[test]
fn vertex_at_dates_match_their_route_entry_else_their_model() {
    assert_eq!(
        hit("claude-sonnet-4-5@20250929"),
        (
            "vertex_ai/claude-sonnet-4-5@20250929",
            "name form normalised"
        )
    );
    assert_eq!(
        hit("vertex_ai/claude-3-5-sonnet-v2@20241022"),
        ("vertex_ai/claude-3-5-sonnet-v2@20241022", "exact")
    );
    // A snapshot the route does not list: its undated route entry.
    assert_eq!(
        key("claude-sonnet-4-5@20991231"),
        "vertex_ai/claude-sonnet-4-5"
    );
}

#[test]
fn date_suffixes_are_stripped_only_onto_an_entry() {
    let stripped = "date suffix stripped";
    assert_eq!(hit("gpt-4o-2099-01-01"), ("gpt-4o", stripped));
    assert_eq!(
        hit("claude-haiku-4-5-20991231"),
        ("claude-haiku-4-5", stripped)
    );
    assert_eq!(hit("gpt-4.1-mini-2099-12-31"), ("gpt-4.1-mini", stripped));
    assert_eq!(hit("gemini-2.5-pro-latest"), ("gemini-2.5-pro", stripped));
    // Without the date the name is not an entry: unknown, however close the family is.
    assert_eq!(resolve("claude-sonnet-4-9-20250929"), None);
    assert_eq!(resolve("gpt-4o-turbo-2024-08-06"), None);
}

#[test]
fn claude_spellings_are_normalised() {
    let form = "name form normalised";
    assert_eq!(hit("claude-sonnet-4.5"), ("claude-sonnet-4-5", form));
    assert_eq!(hit("claude-4-5-sonnet"), ("claude-sonnet-4-5", form));
    assert_eq!(
        hit("claude-sonnet-3-5-20241022"),
        ("claude-3-5-sonnet-20241022", form)
    );
    assert_eq!(
        hit("anthropic/claude-3.7-sonnet-20250219"),
        (
            "claude-3-7-sonnet-20250219",
            "provider prefix stripped, name form normalised"
        )
    );
}

#[test]
fn an_undated_name_takes_its_only_dated_entry() {
    let undated = "undated name of a dated entry";
    assert_eq!(hit("claude-3-opus"), ("claude-3-opus-20240229", undated));
    assert_eq!(hit("claude-3-haiku"), ("claude-3-haiku-20240307", undated));
    // Anthropic's `-0` alias of the first snapshot of a version.
    assert_eq!(
        hit("claude-sonnet-4-0"),
        (
            "claude-sonnet-4-20250514",
            "name form normalised, undated name of a dated entry"
        )
    );
}

#[test]
fn an_undated_name_with_differently_priced_snapshots_is_unknown() {
    // Two snapshots of `m` at different prices: `m` alone could be either.
    let text = "# source: t\n# generated: 2026-01-01\n\
                m-20240101\tx\t1e-6\t1e-6\t\t\t\t\t\t\t\t\n\
                m-20250101\tx\t2e-6\t2e-6\t\t\t\t\t\t\t\t\n\
                n-20240101\tx\t1e-6\t1e-6\t\t\t\t\t\t\t\t\n\
                n-20250101\tx\t1e-6\t1e-6\t\t\t\t\t\t\t\t\n";
    let t = Table::parse(text).unwrap();
    assert_eq!(t.lookup("m", 0), None);
    assert_eq!(t.lookup("n", 0).map(|r| r.key), Some("n-20250101"));
}

#[test]
fn other_provider_spellings() {
    assert_eq!(
        hit("gpt-35-turbo"),
        ("gpt-3.5-turbo", "name form normalised")
    );
    assert_eq!(
        hit("ft:gpt-4o-mini-2024-07-18:acme:support:abc123"),
        ("ft:gpt-4o-mini-2024-07-18", "name form normalised")
    );
}

// --- never a loose prefix ---

#[test]
fn a_longer_name_never_takes_a_shorter_entrys_price() {
    assert_eq!(key("gpt-4o-mini"), "gpt-4o-mini");
    assert_ne!(price("gpt-4o-mini"), price("gpt-4o"));
    assert_eq!(key("gpt-4"), "gpt-4");
    assert_ne!(price("gpt-4"), price("gpt-4o"));
    assert_eq!(key("o1-mini"), "o1-mini");
    assert_eq!(key("gemini-2.5-flash-lite"), "gemini-2.5-flash-lite");
    for unknown in [
        "gpt-4o-ultra",
        "gpt-4o-mini-xl",
        "claude-sonnet-4-5-turbo",
        "claude-opus",
        "gemini-2.5-pro-max",
        "deepseek-chat-v9",
    ] {
        assert_eq!(resolve(unknown), None, "{unknown} must be unknown");
    }
}

#[test]
fn unknown_names_are_unknown() {
    for unknown in [
        "gpt-9",
        "my-model",
        "",
        "   ",
        "openai/",
        "llama3.1:8b",
        "mistral",
    ] {
        assert_eq!(resolve(unknown), None, "{unknown:?} must be unknown");
    }
}

// --- local models ---

#[test]
fn local_models_are_known_and_free() {
    for (model, key) in [
        ("ollama/llama3.1:8b", "ollama/*"),
        ("ollama_chat/qwen2.5-coder:32b", "ollama_chat/*"),
        ("lmstudio/qwen2.5-7b-instruct", "lmstudio/*"),
        ("llama.cpp/mistral-7b", "llama.cpp/*"),
        ("litellm_proxy/ollama/llama3", "ollama/*"),
        ("/models/Llama-3-8B.Q4_K_M.gguf", "*.gguf"),
    ] {
        let r = resolve(model).unwrap_or_else(|| panic!("{model} should be local"));
        assert_eq!(
            (r.key, r.provider, r.price),
            (key, "local", Price::default()),
            "{model}"
        );
    }
    // A model name that merely starts like a local server is not local.
    assert_eq!(resolve("ollama-llama3"), None);
    assert_eq!(resolve("openai/gpt-4o").unwrap().provider, "openai");
}

// --- price rules: 1-hour cache writes, long-context tiers, embeddings ---

fn near(a: f64, b: f64) -> bool {
    (a - b).abs() < 1e-9
}

#[test]
fn one_hour_cache_writes_have_their_own_price() {
    // 1M tokens of 1-hour cache writes on claude-sonnet-4-5: $6.00 (2x the $3 input rate).
    let p = price("claude-sonnet-4-5");
    let t = Tokens::of_request(0, 0, 1_000_000, 1_000_000, 0);
    assert!(near(p.cost(&t), 6.0), "{}", p.cost(&t));
    // As 5-minute writes they cost $3.75; a mix is priced part by part.
    let t = Tokens::of_request(0, 0, 1_000_000, 0, 0);
    assert!(near(p.cost(&t), 3.75), "{}", p.cost(&t));
    let t = Tokens::of_request(0, 0, 1_000_000, 400_000, 0);
    assert!(near(p.cost(&t), 0.6 * 3.75 + 0.4 * 6.0), "{}", p.cost(&t));
}

#[test]
fn a_missing_one_hour_price_is_the_five_minute_price() {
    let p = price("gpt-4o");
    assert_eq!(p.cache_write_1h, p.cache_write);
    // Bedrock lists no 1-hour price for Sonnet 4; in its long-context tier either.
    let p = price("us.anthropic.claude-sonnet-4-20250514-v1:0");
    assert_eq!(p.cache_write_1h, p.cache_write);
    let l = p.long_rates();
    assert_eq!((l.cache_write, l.cache_write_1h), (7.5e-6, 7.5e-6));
}

#[test]
fn a_long_prompt_on_gemini_2_5_pro_is_priced_at_its_tier() {
    // 250,000 prompt tokens and 1,000 output: 250,000 x $2.50/M + 1,000 x $15/M = $0.64.
    let p = price("gemini-2.5-pro");
    let t = Tokens::of_request(250_000, 1_000, 0, 0, 0);
    assert!(near(p.cost(&t), 0.64), "{}", p.cost(&t));
    // At 200,000 exactly the prompt is not above the threshold: base rates.
    let t = Tokens::of_request(200_000, 1_000, 0, 0, 0);
    assert!(near(p.cost(&t), 0.25 + 0.01), "{}", p.cost(&t));
    // The prompt counts cache reads and writes too; the cache write has no tier of its own
    // and keeps its base rate (the input rate, as the table lists no cache-write price).
    let t = Tokens::of_request(100_000, 1_000, 1_000, 0, 100_000);
    let want = 100_000.0 * 2.5e-6 + 1_000.0 * 1.5e-5 + 1_000.0 * 1.25e-6 + 100_000.0 * 2.5e-7;
    assert!(near(p.cost(&t), want), "{} vs {want}", p.cost(&t));
}

#[test]
fn claude_on_a_cloud_route_uses_its_tier() {
    // Sonnet 4.5 on Bedrock and on Vertex AI: above 200k, $6 input and $22.50 output per M.
    for model in [
        "global.anthropic.claude-sonnet-4-5-20250929-v1:0",
        "claude-sonnet-4-5@20250929",
        "vertex_ai/claude-sonnet-4-5",
        "us.anthropic.claude-sonnet-4-20250514-v1:0",
    ] {
        let p = price(model);
        let t = Tokens::of_request(250_000, 1_000, 0, 0, 0);
        assert!(near(p.cost(&t), 1.5 + 0.0225), "{model}: {}", p.cost(&t));
        // Cache writes and reads of a long request at the tier's cache rates.
        let t = Tokens::of_request(1_000, 0, 150_000, 0, 100_000);
        let want = 1_000.0 * 6e-6 + 150_000.0 * 7.5e-6 + 100_000.0 * 6e-7;
        assert!(near(p.cost(&t), want), "{model}: {}", p.cost(&t));
    }
    // 1-hour writes of a long request on Sonnet 4.5's routes: the tier's $12 per M.
    let p = price("global.anthropic.claude-sonnet-4-5-20250929-v1:0");
    let t = Tokens::of_request(1_000, 0, 250_000, 250_000, 0);
    assert!(near(p.cost(&t), 0.006 + 3.0), "{}", p.cost(&t));
    // The direct API entry of Sonnet 4.5 lists no tier: the same rate at any size.
    let p = price("claude-sonnet-4-5");
    assert_eq!(p.long, None);
    let t = Tokens::of_request(250_000, 1_000, 0, 0, 0);
    assert!(near(p.cost(&t), 0.75 + 0.015), "{}", p.cost(&t));
}

#[test]
fn sums_of_short_and_long_requests_price_each_part_at_its_rates() {
    let p = price("gemini-2.5-pro");
    let mut t = Tokens::of_request(250_000, 1_000, 0, 0, 0);
    t.add(&Tokens::of_request(10_000, 2_000, 0, 0, 0)).unwrap();
    let want = 0.64 + 10_000.0 * 1.25e-6 + 2_000.0 * 1e-5;
    assert!(near(p.cost(&t), want), "{}", p.cost(&t));
}

#[test]
fn embedding_models_are_priced_per_input_token() {
    for (model, per_m) in [
        ("text-embedding-004", 0.10),
        ("text-embedding-3-small", 0.02),
        ("text-embedding-3-large", 0.13),
    ] {
        let p = price(model);
        let t = Tokens::of_request(1_000_000, 0, 0, 0, 0);
        assert!(near(p.cost(&t), per_m), "{model}: {}", p.cost(&t));
        assert_eq!(p.output, 0.0, "{model}");
    }
}
