//! A dedicated connection that LISTENs on the store's channel: the tail sleeps on its socket
//! until a writer commits, instead of asking the server again and again.

use std::time::{Duration, Instant};

use postgres::fallible_iterator::FallibleIterator;

/// When the listener has heard nothing for this long, it checks that the server is still
/// there (a dropped network sends nothing).
pub const PING_EVERY: Duration = Duration::from_secs(5);
/// How long a ping may take before the connection counts as lost.
pub const PING_TIMEOUT: Duration = Duration::from_secs(5);

/// The function of the insert trigger that notifies (migrations/postgres/0001_native.sql).
const NOTIFY_FUNCTION: &str = "tokmon_notify";

/// Whether `events` has an enabled trigger calling the function named `$1`.
const HAS_TRIGGER: &str = "SELECT EXISTS (SELECT 1 FROM pg_trigger t JOIN pg_proc p ON p.oid = t.tgfoid \
     WHERE t.tgrelid = to_regclass('events') AND p.proname = $1 AND t.tgenabled <> 'D')";

pub struct Listener {
    client: postgres::Client,
    last_heard: Instant,
}

impl Listener {
    /// LISTEN on `channel` over `client` (a connection of its own: the tail's reads would
    /// otherwise hold notifications back while a transaction is open). `None`: the events
    /// table has no enabled trigger that notifies (nothing would ever be heard).
    pub fn start(mut client: postgres::Client, channel: &str) -> anyhow::Result<Option<Listener>> {
        let has_trigger: bool = client.query_one(HAS_TRIGGER, &[&NOTIFY_FUNCTION])?.get(0);
        if !has_trigger {
            return Ok(None);
        }
        client.batch_execute(&format!("LISTEN {}", quote_ident(channel)))?;
        Ok(Some(Listener {
            client,
            last_heard: Instant::now(),
        }))
    }

    /// Wait up to `timeout` for notifications; take every one that came. `Ok(true)`: a
    /// writer committed. An error: the connection is lost.
    pub fn wait(&mut self, timeout: Duration) -> anyhow::Result<bool> {
        let mut heard = false;
        {
            let mut n = self.client.notifications();
            let mut it = n.timeout_iter(timeout);
            if it.next()?.is_some() {
                heard = true;
            }
        }
        if heard {
            // Everything already here counts as the same wake-up.
            let mut n = self.client.notifications();
            let mut it = n.iter();
            while it.next()?.is_some() {}
        }
        if self.client.is_closed() {
            anyhow::bail!("the server closed the connection");
        }
        let now = Instant::now();
        if heard {
            self.last_heard = now;
        } else if now.duration_since(self.last_heard) >= PING_EVERY {
            self.client.is_valid(PING_TIMEOUT)?;
            self.last_heard = now;
        }
        Ok(heard)
    }
}

/// `name` as a PostgreSQL identifier, quoted.
pub fn quote_ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}
