//! tokmon: a terminal monitor for LLM token usage and cost.

pub mod cli;
pub mod commands;
pub mod config;
pub mod cost;
pub mod error;
pub mod import;
pub mod paths;
pub mod pricing;
pub mod store;
pub mod timefmt;
pub mod numfmt;
pub mod range;
pub mod report;
pub mod demo;
