//! tokmon: a terminal monitor for LLM token usage and cost.

pub mod blocks;
pub mod budget;
pub mod cli;
pub mod commands;
pub mod config;
pub mod cost;
pub mod demo;
pub mod discover;
pub mod domain;
pub mod error;
pub mod import;
pub mod numfmt;
pub mod paths;
pub mod pricing;
pub mod range;
pub mod regular;
pub mod report;
pub mod state_file;
pub mod store;
pub mod text;
pub mod timefmt;
pub mod tui;
