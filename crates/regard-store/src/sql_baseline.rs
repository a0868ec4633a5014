//! The SQL baseline of the segment backfill benchmark (`regard bench backfill`): the same
//! segment definitions computed by plain SQL over a copy of the event log, to say how Regard's
//! backfill compares with what a team would write against a warehouse table.
//!
//! The copy stores each message as uncompressed JSON text (the store's own rows are
//! zstd-compressed, which SQL cannot read), so the SQL side never pays for decompression; it
//! also gets, ready-made, what Regard works out itself: which profile each event's profile was
//! merged into, which profiles allow each purpose, and each product's category path. Building
//! the copy is not timed. Definitions are translated by [`segment_sql`], which covers events
//! with counts and windows, catalog categories, sequences, purchases and their combinations;
//! other conditions (traits, visits, context) return `None`.

use std::path::Path;
use std::time::{Duration, Instant};

use regard_core::consent::ConsentPurpose;
use regard_core::facts::ProfileId;
use regard_core::segments::definition::{CountBound, EventMatch, FilterOp, Window};
use regard_core::segments::{Condition, SegmentDefinition};
use rusqlite::{params, Connection};
use serde_json::Value;

use crate::sqlite::StoreError;
use crate::Engine;

const DAY_MS: i64 = 86_400_000;

/// A plain-SQL copy of a store's events, ready to compute segments.
pub struct SqlBaseline {
    connection: Connection,
    /// Events copied.
    pub events: u64,
    /// Time taken to build the copy (decoding and inserting; not part of any comparison).
    pub build: Duration,
}

impl std::fmt::Debug for SqlBaseline {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqlBaseline").field("events", &self.events).finish()
    }
}

impl SqlBaseline {
    /// Builds the copy at `path` (replaced if present) from the engine's store and live state.
    pub fn build(engine: &Engine, path: &Path) -> Result<SqlBaseline, StoreError> {
        let started = Instant::now();
        let _ = std::fs::remove_file(path);
        let mut connection = Connection::open(path)?;
        connection.pragma_update(None, "journal_mode", "OFF")?;
        connection.pragma_update(None, "synchronous", "OFF")?;
        // The same page cache as the store's connections.
        connection.pragma_update(None, "cache_size", -65_536)?;
        connection.execute_batch(
            "CREATE TABLE events (profile_id INTEGER NOT NULL, name TEXT, ts_ms INTEGER NOT NULL, raw TEXT NOT NULL);
             CREATE TABLE canonical (profile_id INTEGER PRIMARY KEY, canonical INTEGER NOT NULL);
             CREATE TABLE profiles (canonical INTEGER PRIMARY KEY);
             CREATE TABLE eligible (purpose TEXT NOT NULL, canonical INTEGER NOT NULL, PRIMARY KEY (purpose, canonical)) WITHOUT ROWID;
             CREATE TABLE products (product_id TEXT PRIMARY KEY, path TEXT NOT NULL) WITHOUT ROWID;",
        )?;
        let transaction = connection.transaction()?;
        let mut events = 0u64;
        let mut filed_under: Vec<ProfileId> = Vec::new();
        {
            let mut insert =
                transaction.prepare("INSERT INTO events (profile_id, name, ts_ms, raw) VALUES (?1, ?2, ?3, ?4)")?;
            let mut failure = None;
            engine.reader().scan_events(&[], &mut |profile_id, name, timestamp_ms, raw| {
                if failure.is_some() {
                    return;
                }
                match insert.execute(params![profile_id as i64, name, timestamp_ms, raw]) {
                    Ok(_) => {
                        events += 1;
                        filed_under.push(profile_id);
                    }
                    Err(error) => failure = Some(error),
                }
            })?;
            if let Some(error) = failure {
                return Err(error.into());
            }
        }
        {
            let live = engine.state();
            filed_under.sort_unstable();
            filed_under.dedup();
            let mut insert = transaction.prepare("INSERT INTO canonical (profile_id, canonical) VALUES (?1, ?2)")?;
            for id in filed_under {
                insert.execute(params![id as i64, live.canonical(id) as i64])?;
            }
            let mut insert_profile = transaction.prepare("INSERT INTO profiles (canonical) VALUES (?1)")?;
            let mut insert_eligible =
                transaction.prepare("INSERT INTO eligible (purpose, canonical) VALUES (?1, ?2)")?;
            for profile in live.profiles() {
                insert_profile.execute([profile.id as i64])?;
                for purpose in ConsentPurpose::ALL {
                    if live.allows(profile, purpose) {
                        insert_eligible.execute(params![purpose.as_str(), profile.id as i64])?;
                    }
                }
            }
            let mut insert_product = transaction.prepare("INSERT INTO products (product_id, path) VALUES (?1, ?2)")?;
            for (id, path) in live.catalog_category_paths() {
                insert_product.execute(params![id, path_key(&path)])?;
            }
        }
        transaction.commit()?;
        connection.execute_batch("ANALYZE")?;
        Ok(SqlBaseline { connection, events, build: started.elapsed() })
    }

    /// Runs a query from [`segment_sql`]: the members (surviving profile ids, ascending) and
    /// the time the query took.
    pub fn members(&self, sql: &str) -> Result<(Vec<ProfileId>, Duration), StoreError> {
        let started = Instant::now();
        let mut select = self.connection.prepare(sql)?;
        let mut ids: Vec<ProfileId> = select
            .query_map([], |row| row.get::<_, i64>(0))?
            .map(|id| id.map(|id| id as ProfileId))
            .collect::<Result<_, _>>()?;
        let elapsed = started.elapsed();
        ids.sort_unstable();
        Ok((ids, elapsed))
    }
}

/// A category path as the `products` table keeps it: lower-case segments between `>` marks,
/// so that `instr` finds a wanted path anywhere along it.
fn path_key<S: AsRef<str>>(path: &[S]) -> String {
    let mut key = String::from(">");
    for segment in path {
        key.push_str(&segment.as_ref().to_ascii_lowercase());
        key.push('>');
    }
    key
}

fn quote(text: &str) -> String {
    format!("'{}'", text.replace('\'', "''"))
}

/// The SQL selecting the members of `definition` at `now_ms` (one `canonical` column), or
/// `None` when a condition has no translation here.
pub fn segment_sql(definition: &SegmentDefinition, now_ms: i64) -> Option<String> {
    let condition = condition_sql(definition.condition(), now_ms)?;
    Some(format!(
        "SELECT canonical FROM eligible WHERE purpose = {} INTERSECT SELECT canonical FROM ({condition})",
        quote(definition.purpose().consent_purpose().as_str())
    ))
}

/// The events and the profile each belongs to now.
const EVENTS: &str = "events e JOIN canonical c ON c.profile_id = e.profile_id";

fn condition_sql(condition: &Condition, now_ms: i64) -> Option<String> {
    let children = |children: &[Condition], operator: &str| -> Option<String> {
        let parts: Option<Vec<String>> = children
            .iter()
            .map(|child| condition_sql(child, now_ms).map(|sql| format!("SELECT canonical FROM ({sql})")))
            .collect();
        Some(parts?.join(&format!(" {operator} ")))
    };
    match condition {
        Condition::All(list) => children(list, "INTERSECT"),
        Condition::Any(list) => children(list, "UNION"),
        Condition::Not(child) => {
            Some(format!("SELECT canonical FROM profiles EXCEPT SELECT canonical FROM ({})", condition_sql(child, now_ms)?))
        }
        Condition::Event(c) => counted(&c.event, c.window, c.count, c.min_distinct_days, now_ms),
        Condition::Catalog(c) => counted(&c.event, c.window, c.count, c.min_distinct_days, now_ms),
        Condition::Never(c) => Some(format!(
            "SELECT canonical FROM profiles EXCEPT SELECT c.canonical FROM {EVENTS} WHERE {} AND {}",
            match_sql(&c.event)?,
            window_sql(c.window, now_ms)
        )),
        Condition::NotWithinDays(c) => Some(format!(
            "SELECT c.canonical FROM {EVENTS} WHERE {} AND e.ts_ms <= {now_ms} GROUP BY c.canonical HAVING max(e.ts_ms) <= {}",
            match_sql(&c.event)?,
            now_ms - i64::from(c.days) * DAY_MS
        )),
        Condition::Sequence(c) => Some(format!(
            "SELECT f.canonical FROM
               (SELECT c.canonical, max(e.ts_ms) AS t FROM {EVENTS} WHERE {} AND {} GROUP BY c.canonical) f
             LEFT JOIN
               (SELECT c.canonical, max(e.ts_ms) AS t FROM {EVENTS} WHERE {} AND e.ts_ms <= {now_ms} GROUP BY c.canonical) n
             ON n.canonical = f.canonical
             WHERE n.t IS NULL OR n.t <= f.t",
            match_sql(&c.first)?,
            window_sql(c.first_window, now_ms),
            match_sql(&c.then_never)?
        )),
        Condition::Purchases(c) => {
            let CountBound::Gte(n) = c.count else { return None };
            if n == 0 {
                return None;
            }
            let mut having = format!("sum(CASE WHEN {} THEN 1 ELSE 0 END) >= {n}", window_sql(c.window, now_ms));
            if let Some(days) = c.last_before_days {
                having.push_str(&format!(" AND max(e.ts_ms) <= {}", now_ms - i64::from(days) * DAY_MS));
            }
            if let Some(days) = c.last_within_days {
                having.push_str(&format!(" AND max(e.ts_ms) > {}", now_ms - i64::from(days) * DAY_MS));
            }
            Some(format!(
                "SELECT c.canonical FROM {EVENTS} WHERE e.name = 'Order Completed' AND e.ts_ms <= {now_ms}
                 GROUP BY c.canonical HAVING {having}"
            ))
        }
        Condition::Trait(_)
        | Condition::Visitor(_)
        | Condition::Context(_)
        | Condition::Segment(_)
        | Condition::Score(_) => None,
    }
}

/// "At least N matching events in the window (on at least D distinct days)".
fn counted(event: &EventMatch, window: Window, count: CountBound, days: Option<u32>, now_ms: i64) -> Option<String> {
    // Bounds that hold for zero events would also need every profile without one.
    let CountBound::Gte(n) = count else { return None };
    if n == 0 {
        return None;
    }
    let mut having = format!("count(*) >= {n}");
    if let Some(days) = days {
        having.push_str(&format!(" AND count(DISTINCT e.ts_ms / {DAY_MS}) >= {days}"));
    }
    Some(format!(
        "SELECT c.canonical FROM {EVENTS} WHERE {} AND {} GROUP BY c.canonical HAVING {having}",
        match_sql(event)?,
        window_sql(window, now_ms)
    ))
}

fn window_sql(window: Window, now_ms: i64) -> String {
    match window {
        Window::Ever => format!("e.ts_ms <= {now_ms}"),
        Window::LastDays(_) | Window::LastHours(_) => {
            format!("e.ts_ms <= {now_ms} AND e.ts_ms > {}", now_ms - window.sliding_ms().unwrap_or(0))
        }
        Window::Between { start_ms, end_ms } => {
            format!("e.ts_ms <= {now_ms} AND e.ts_ms >= {start_ms} AND e.ts_ms < {end_ms}")
        }
    }
}

/// The predicate on `e` for an event match: name, property filters through `json_extract`,
/// and the category of the event's `product_id` (not of the items of an order).
fn match_sql(event: &EventMatch) -> Option<String> {
    let mut parts = vec![format!("e.name = {}", quote(&event.name))];
    for filter in &event.filters {
        if filter.property.contains(['"', '\'', '\\']) {
            return None;
        }
        let actual = format!("json_extract(e.raw, '$.properties.\"{}\"')", filter.property);
        let literal = match &filter.value {
            Value::String(text) => Some(quote(text)),
            Value::Number(number) => Some(number.to_string()),
            Value::Bool(flag) => Some(if *flag { "1" } else { "0" }.to_owned()),
            _ => None,
        };
        let part = match (filter.op, literal) {
            (FilterOp::Exists, _) => format!("{actual} IS NOT NULL"),
            (FilterOp::Equals, Some(v)) => format!("{actual} = {v}"),
            (FilterOp::NotEquals, Some(v)) => format!("{actual} <> {v}"),
            (FilterOp::Gt, Some(v)) => format!("{actual} > {v}"),
            (FilterOp::Gte, Some(v)) => format!("{actual} >= {v}"),
            (FilterOp::Lt, Some(v)) => format!("{actual} < {v}"),
            (FilterOp::Lte, Some(v)) => format!("{actual} <= {v}"),
            _ => return None,
        };
        parts.push(part);
    }
    if let Some(category) = &event.category {
        let wanted = path_key(&regard_core::catalog::Product::parse_category_path(category));
        parts.push(format!(
            "json_extract(e.raw, '$.properties.product_id') IN (SELECT product_id FROM products WHERE instr(path, {}) > 0)",
            quote(&wanted)
        ));
    }
    Some(parts.join(" AND "))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn definitions_translate_to_sql_or_say_they_cannot() {
        let parse = |condition: &str| {
            SegmentDefinition::parse_str(&format!(
                r#"{{"id": "s", "name": "S", "purpose": "email", "condition": {condition}}}"#
            ))
            .expect("valid")
        };
        let lapsed =
            segment_sql(&parse(r#"{"purchases": {"count": {"gte": 1}, "last_before_days": 90}}"#), 100 * DAY_MS)
                .expect("translates");
        assert!(lapsed.contains("max(e.ts_ms) <= 864000000") && lapsed.contains("purpose = 'email'"), "{lapsed}");
        let fans = segment_sql(
            &parse(r#"{"catalog": {"category": "Sports > Running Shoes", "count": {"gte": 2}, "within_days": 30}}"#),
            0,
        )
        .expect("translates");
        assert!(fans.contains("'>sports>running shoes>'"), "{fans}");
        assert!(segment_sql(&parse(r#"{"visitor": "returning"}"#), 0).is_none());
    }
}
