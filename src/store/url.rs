//! Telling a PostgreSQL URL from a file path, and showing one without its password (kept in
//! `crate::paths`, which the lower layers use too).

pub use crate::paths::{
    is_postgres_url as is_url, redact_postgres_url as redact, shown_db as shown,
};
