//! The event record, declared once: [`event_fields!`] below lists every field of an event
//! with its column and kind, and the struct, the column list, the SQL types and the values the
//! stores bind are all built from that one list. Adding a column means adding one line here
//! (and a migration for each store: `tests` check the two agree).

/// One value of an event as a store binds it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Value<'a> {
    Int(i64),
    Real(Option<f64>),
    Text(Option<&'a str>),
}

/// The type of a column, as the stores declare it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SqlType {
    Int,
    Real,
    Text,
}

/// A token count above what a store holds (`i64::MAX`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("{what} {n} is too large to store")]
pub struct TooLarge {
    pub what: &'static str,
    pub n: u64,
}

fn count(n: u64, what: &'static str) -> Result<i64, TooLarge> {
    i64::try_from(n).map_err(|_| TooLarge { what, n })
}

/// How a text field is stored: a dimension's blank value is no value (NULL); other text as is.
/// A field that always has a value (`String`) is set to `""` for no value.
trait Text {
    fn dim(&self) -> Option<&str>;
    fn raw(&self) -> Option<&str>;
    fn set(&mut self, v: Option<String>);
}

impl Text for String {
    fn dim(&self) -> Option<&str> {
        Some(self)
    }
    fn raw(&self) -> Option<&str> {
        Some(self)
    }
    fn set(&mut self, v: Option<String>) {
        *self = v.unwrap_or_default();
    }
}

impl Text for Option<String> {
    fn dim(&self) -> Option<&str> {
        let v = self.as_deref()?;
        // Most values start and end with a printable ASCII character, which is no blank:
        // then there is nothing to trim (and `trim` would decode the characters at both ends).
        let v = match (v.as_bytes().first(), v.as_bytes().last()) {
            (Some(a), Some(z)) if a.is_ascii_graphic() && z.is_ascii_graphic() => v,
            _ => v.trim(),
        };
        (!v.is_empty()).then_some(v)
    }
    fn raw(&self) -> Option<&str> {
        self.as_deref()
    }
    fn set(&mut self, v: Option<String>) {
        *self = v;
    }
}

/// A row of a store's result, read column by column (see [`EventRow::read`]).
pub trait ReadRow {
    type Error;
    fn id(&self, i: usize) -> Result<i64, Self::Error>;
    fn time(&self, i: usize) -> Result<Option<i64>, Self::Error>;
    fn text(&self, i: usize) -> Result<Option<String>, Self::Error>;
    /// A token count: never negative.
    fn count(&self, i: usize) -> Result<u64, Self::Error>;
    fn amount(&self, i: usize) -> Result<Option<f64>, Self::Error>;
    fn flag(&self, i: usize) -> Result<bool, Self::Error>;
}

/// Declares the event, one line per field, in groups by kind:
/// - `time`: the event's time, unix milliseconds;
/// - `dimensions`: what reports group by (`name: type = "column", Dimension;`); a blank value
///   is stored as NULL;
/// - `counts`: token counts (`name = "column", "what it is called in errors"`, and
///   `<= other` when it is stored at most the field `other`);
/// - `amounts`: numbers that may be unknown;
/// - `kept`: text the store keeps as it is and reads only itself.
macro_rules! event_fields {
    (
        time { $(#[$tdoc:meta])* $time:ident = $tcol:literal; }
        dimensions { $( $(#[$ddoc:meta])* $dim:ident : $dty:ty = $dcol:literal, $dvar:ident; )* }
        counts {
            $( $(#[$cdoc:meta])* $count:ident = $ccol:literal, $what:literal $(, <= $max:ident)?; )*
        }
        amounts { $( $(#[$adoc:meta])* $amount:ident = $acol:literal; )* }
        kept { $( $(#[$kdoc:meta])* $kept:ident : $kty:ty = $kcol:literal; )* }
    ) => {
        /// One event to write. Dimension values that are empty become NULL.
        #[derive(Debug, Clone, Default, PartialEq)]
        pub struct NewEvent {
            $(#[$tdoc])* pub $time: i64,
            $( $(#[$ddoc])* pub $dim: $dty, )*
            $( $(#[$cdoc])* pub $count: u64, )*
            $( $(#[$adoc])* pub $amount: Option<f64>, )*
            $( $(#[$kdoc])* pub $kept: $kty, )*
        }

        impl NewEvent {
            /// The columns of the fields, in declaration order.
            pub const COLUMNS: &'static [&'static str] =
                &[$tcol, $($dcol,)* $($ccol,)* $($acol,)* $($kcol,)*];
            /// The type of each column of [`NewEvent::COLUMNS`].
            pub const SQL_TYPES: &'static [SqlType] = &[
                SqlType::Int,
                $(event_fields!(@text $dim),)*
                $(event_fields!(@int $count),)*
                $(event_fields!(@real $amount),)*
                $(event_fields!(@text $kept),)*
            ];

            /// The values to store, in the order of [`NewEvent::COLUMNS`].
            pub fn values(&self) -> Result<[Value<'_>; NewEvent::COLUMNS.len()], TooLarge> {
                Ok([
                    Value::Int(self.$time),
                    $(Value::Text(Text::dim(&self.$dim)),)*
                    $(Value::Int(count(self.$count $(.min(self.$max))?, $what)?),)*
                    $(Value::Real(self.$amount),)*
                    $(Value::Text(Text::raw(&self.$kept)),)*
                ])
            }
        }

        /// What reports group by: the event's dimensions.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum Dimension {
            $($dvar,)*
        }

        impl Dimension {
            pub const ALL: [Dimension; [$($dcol),*].len()] = [$(Dimension::$dvar),*];

            /// Its name, which is also its column's in tokmon's own table.
            pub fn name(self) -> &'static str {
                match self {
                    $(Dimension::$dvar => $dcol,)*
                }
            }
        }

        /// One `T` for each dimension (e.g. where a table keeps it).
        #[derive(Debug, Clone, Default, PartialEq)]
        pub struct Dims<T> {
            $(pub $dim: T,)*
        }

        impl<T> Dims<T> {
            /// Each dimension's value from `f` of its name.
            pub fn from_fn(mut f: impl FnMut(&'static str) -> T) -> Dims<T> {
                Dims { $($dim: f($dcol),)* }
            }

            pub fn get(&self, d: Dimension) -> &T {
                match d {
                    $(Dimension::$dvar => &self.$dim,)*
                }
            }
        }

        /// One `T` for each token count, with the counts' column names.
        #[derive(Debug, Clone, Default, PartialEq)]
        pub struct Counts<T> {
            $(pub $count: T,)*
        }

        impl<T> Counts<T> {
            /// Each count's value from `f` of its column.
            pub fn from_fn(mut f: impl FnMut(&'static str) -> T) -> Counts<T> {
                Counts { $($count: f($ccol),)* }
            }

            /// Each count's column and value, in declaration order.
            pub fn each(&self) -> [(&'static str, &T); COUNT_COLUMNS.len()] {
                [$(($ccol, &self.$count)),*]
            }

            /// `f` of each count of `self` and `other`.
            pub fn zip<U, V>(self, other: Counts<U>, mut f: impl FnMut(T, U) -> V) -> Counts<V> {
                Counts { $($count: f(self.$count, other.$count),)* }
            }

            /// Each count's value from `f` of its column, or `f`'s first error.
            pub fn try_from_fn<E>(
                mut f: impl FnMut(&'static str) -> Result<T, E>,
            ) -> Result<Counts<T>, E> {
                Ok(Counts { $($count: f($ccol)?,)* })
            }
        }

        /// The columns of the token counts, in declaration order.
        pub const COUNT_COLUMNS: [&str; [$($ccol),*].len()] = [$($ccol),*];

        /// Whether the count in `column` is a part of another (stored at most that one), not
        /// usage of its own.
        pub fn is_part(column: &str) -> bool {
            match column {
                $($ccol => event_fields!(@part $($max)?),)*
                _ => false,
            }
        }

        impl NewEvent {
            /// The token counts.
            pub fn counts(&self) -> Counts<u64> {
                Counts { $($count: self.$count,)* }
            }

            /// Set the token counts.
            pub fn set_counts(&mut self, c: Counts<u64>) {
                $(self.$count = c.$count;)*
            }

            /// Set a dimension (`None`: no value).
            pub fn set_dim(&mut self, d: Dimension, v: Option<String>) {
                match d {
                    $(Dimension::$dvar => Text::set(&mut self.$dim, v),)*
                }
            }
        }

        /// One event as read back from any store: its id, the declared fields but the kept
        /// text, and what the store adds.
        #[derive(Debug, Clone, Default, PartialEq)]
        pub struct EventRow {
            pub id: i64,
            $(#[$tdoc])* pub $time: Option<i64>,
            $( $(#[$ddoc])* pub $dim: Option<String>, )*
            $( $(#[$cdoc])* pub $count: u64, )*
            $( $(#[$adoc])* pub $amount: Option<f64>, )*
            /// A correction of an earlier event (its tokens and cost count, it is no event itself).
            pub correction: bool,
            /// Part of a long-context request (priced at the long-context rates).
            pub long_context: bool,
        }

        impl EventRow {
            pub fn dim(&self, d: Dimension) -> Option<&str> {
                match d {
                    $(Dimension::$dvar => self.$dim.as_deref(),)*
                }
            }

            /// Read one row whose columns are, in order: the id, the time, the dimensions
            /// ([`Dimension::ALL`]), the counts ([`Counts::each`]), the amounts (`cost_usd`,
            /// `duration_ms`), whether it is a correction, whether it is long-context.
            pub fn read<R: ReadRow>(r: &R) -> Result<EventRow, R::Error> {
                let mut at = 0;
                let mut next = || {
                    at += 1;
                    at - 1
                };
                Ok(EventRow {
                    id: r.id(next())?,
                    $time: r.time(next())?,
                    $($dim: r.text(next())?,)*
                    $($count: r.count(next())?,)*
                    $($amount: r.amount(next())?,)*
                    correction: r.flag(next())?,
                    long_context: r.flag(next())?,
                })
            }
        }
    };
    (@part) => { false };
    (@part $max:ident) => { true };
    (@text $f:ident) => { SqlType::Text };
    (@int $f:ident) => { SqlType::Int };
    (@real $f:ident) => { SqlType::Real };
}

event_fields! {
    time {
        /// Unix milliseconds, UTC.
        ts_ms = "ts";
    }
    dimensions {
        model: String = "model", Model;
        agent: Option<String> = "agent", Agent;
        provider: Option<String> = "provider", Provider;
        session: Option<String> = "session", Session;
        project: Option<String> = "project", Project;
        user: Option<String> = "user", User;
        channel: Option<String> = "channel", Channel;
        operation: Option<String> = "operation", Operation;
    }
    counts {
        input_tokens = "input_tokens", "input tokens";
        output_tokens = "output_tokens", "output tokens";
        cache_creation_tokens = "cache_creation_tokens", "cache-write tokens";
        cache_read_tokens = "cache_read_tokens", "cache-read tokens";
        /// Of `cache_creation_tokens`, the 1-hour cache writes.
        cache_creation_1h_tokens = "cache_creation_1h_tokens", "1-hour cache-write tokens",
            <= cache_creation_tokens;
    }
    amounts {
        cost_usd = "cost_usd";
        duration_ms = "duration_ms";
    }
    kept {
        /// Who wrote it: `record`, `import:claude-code`, `demo`, …
        source: String = "source";
        /// Makes imports idempotent: an event whose key is stored adds nothing.
        unique_key: Option<String> = "unique_key";
        /// JSON text (validated before it gets here).
        metadata: Option<String> = "metadata";
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dimensions_are_trimmed_of_any_blank() {
        let dim = |v: &str| Text::dim(&Some(v.to_string())).map(str::to_string);
        assert_eq!(dim("a b"), Some("a b".into()));
        assert_eq!(dim(" a\t"), Some("a".into()));
        assert_eq!(dim("\u{3000}é\u{a0}"), Some("é".into()));
        assert_eq!(dim("é"), Some("é".into()));
        assert_eq!(dim("\u{2003}\n"), None);
        assert_eq!(dim(""), None);
    }

    #[test]
    fn values_follow_the_columns() {
        let e = NewEvent {
            ts_ms: 7,
            provider: Some("  ".into()),
            model: "m".into(),
            agent: Some("a".into()),
            cache_creation_tokens: 3,
            cache_creation_1h_tokens: 9,
            cost_usd: Some(0.5),
            source: "s".into(),
            unique_key: Some(String::new()),
            ..Default::default()
        };
        let v = e.values().unwrap();
        let at = |c: &str| v[NewEvent::COLUMNS.iter().position(|x| *x == c).unwrap()];
        assert_eq!(at("ts"), Value::Int(7));
        assert_eq!(
            at("provider"),
            Value::Text(None),
            "a blank dimension is NULL"
        );
        assert_eq!(at("model"), Value::Text(Some("m")));
        assert_eq!(at("agent"), Value::Text(Some("a")));
        assert_eq!(
            at("cache_creation_1h_tokens"),
            Value::Int(3),
            "at most the cache writes"
        );
        assert_eq!(at("cost_usd"), Value::Real(Some(0.5)));
        assert_eq!(at("duration_ms"), Value::Real(None));
        assert_eq!(
            at("unique_key"),
            Value::Text(Some("")),
            "other text as it is"
        );
        for (v, t) in v.iter().zip(NewEvent::SQL_TYPES) {
            let same = matches!(
                (v, t),
                (Value::Int(_), SqlType::Int)
                    | (Value::Real(_), SqlType::Real)
                    | (Value::Text(_), SqlType::Text)
            );
            assert!(same, "{v:?} is not {t:?}");
        }
    }

    #[test]
    fn a_count_past_i64_is_named() {
        let e = NewEvent {
            output_tokens: u64::MAX,
            ..Default::default()
        };
        let err = e.values().unwrap_err();
        assert_eq!(
            err.to_string(),
            format!("output tokens {} is too large to store", u64::MAX)
        );
    }
}
