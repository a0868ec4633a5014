//! Segment wire JSON in, domain [`Message`]s out.
//!
//! Parsing borrows from the request body: `properties` and the rest of the message are never
//! built into a JSON tree; only the fields Regard reads are decoded. Every failure names the
//! field it is about, as a path from the message (`context.page.url`).

use std::borrow::Cow;
use std::hash::{BuildHasher, RandomState};
use std::sync::atomic::{AtomicU64, Ordering};

use regard_core::catalog::{Durability, Product};
use regard_core::message::{Campaign, Message, MessageContext, MessageKind, RawMessage};
use regard_core::time::{corrected_timestamp_ms, parse_iso8601_ms, ReportedTimes};
use serde::Deserialize;
use serde_json::value::RawValue;

use crate::error::{ApiError, ErrorCode};

/// Segment's limit on one message.
pub const MAX_MESSAGE_BYTES: usize = 32 * 1024;
/// Segment's limit on one batch request.
pub const MAX_BATCH_BYTES: usize = 500 * 1024;
/// Longest id Regard accepts (userId, anonymousId, messageId...).
pub const MAX_ID_BYTES: usize = 1_024;

#[derive(Deserialize)]
struct WireMessage<'a> {
    #[serde(rename = "type", borrow, default)]
    kind: Option<Cow<'a, str>>,
    #[serde(rename = "messageId", borrow, default)]
    message_id: Option<&'a RawValue>,
    #[serde(rename = "userId", borrow, default)]
    user_id: Option<&'a RawValue>,
    #[serde(rename = "anonymousId", borrow, default)]
    anonymous_id: Option<&'a RawValue>,
    #[serde(rename = "previousId", borrow, default)]
    previous_id: Option<&'a RawValue>,
    #[serde(rename = "groupId", borrow, default)]
    group_id: Option<&'a RawValue>,
    #[serde(borrow, default)]
    event: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    name: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    timestamp: Option<Cow<'a, str>>,
    #[serde(rename = "originalTimestamp", borrow, default)]
    original_timestamp: Option<Cow<'a, str>>,
    #[serde(rename = "sentAt", borrow, default)]
    sent_at: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    traits: Option<&'a RawValue>,
    #[serde(borrow, default)]
    properties: Option<&'a RawValue>,
    #[serde(borrow, default)]
    context: Option<WireContext<'a>>,
    #[serde(rename = "writeKey", borrow, default)]
    write_key: Option<Cow<'a, str>>,
}

#[derive(Deserialize, Default)]
struct WireContext<'a> {
    #[serde(borrow, default)]
    page: Option<WirePage<'a>>,
    #[serde(borrow, default)]
    campaign: Option<WireCampaign<'a>>,
    #[serde(borrow, default)]
    ip: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    locale: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    timezone: Option<Cow<'a, str>>,
    #[serde(rename = "userAgent", borrow, default)]
    user_agent: Option<Cow<'a, str>>,
    #[serde(default)]
    consent: Option<WireConsent>,
}

#[derive(Deserialize, Default)]
struct WirePage<'a> {
    #[serde(borrow, default)]
    url: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    path: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    referrer: Option<Cow<'a, str>>,
}

#[derive(Deserialize, Default)]
struct WireCampaign<'a> {
    #[serde(borrow, default)]
    source: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    medium: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    name: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    term: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    content: Option<Cow<'a, str>>,
}

#[derive(Deserialize, Default)]
struct WireConsent {
    #[serde(rename = "categoryPreferences", default)]
    category_preferences: Option<serde_json::Map<String, serde_json::Value>>,
}

/// The envelope of `/v1/batch` and `/v1/import`.
#[derive(Deserialize)]
struct WireBatch<'a> {
    #[serde(borrow)]
    batch: Vec<&'a RawValue>,
    #[serde(rename = "sentAt", borrow, default)]
    sent_at: Option<Cow<'a, str>>,
    #[serde(rename = "writeKey", borrow, default)]
    write_key: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    context: Option<&'a RawValue>,
}

/// A parsed batch envelope: its messages still raw, so each can be parsed and reported on its
/// own.
#[derive(Debug)]
pub struct BatchEnvelope<'a> {
    /// The raw messages.
    pub messages: Vec<&'a RawValue>,
    /// The batch-level `sentAt`, used for messages without their own.
    pub sent_at_ms: Option<i64>,
    /// The write key given in the body.
    pub write_key: Option<String>,
    /// The batch-level `context`, used for messages without their own.
    pub context: Option<&'a RawValue>,
}

/// Parses the envelope of a batch request.
pub fn parse_batch(body: &str) -> Result<BatchEnvelope<'_>, ApiError> {
    let batch: WireBatch<'_> = deserialize(body)?;
    let sent_at_ms = match batch.sent_at.as_deref() {
        Some(text) => Some(parse_time(text).ok_or_else(|| bad_time("sentAt", text))?),
        None => None,
    };
    Ok(BatchEnvelope {
        messages: batch.batch,
        sent_at_ms,
        write_key: batch.write_key.map(Cow::into_owned),
        context: batch.context,
    })
}

fn deserialize<'a, T: Deserialize<'a>>(text: &'a str) -> Result<T, ApiError> {
    match serde_json::from_str(text) {
        Ok(value) => Ok(value),
        Err(first) => {
            // Parse again, slowly, only to learn which field was wrong.
            let mut de = serde_json::Deserializer::from_str(text);
            match serde_path_to_error::deserialize::<_, T>(&mut de) {
                Err(e) => {
                    let path = e.path().to_string();
                    let inner = e.into_inner();
                    let code = if inner.is_syntax() || inner.is_eof() {
                        ErrorCode::InvalidJson
                    } else {
                        ErrorCode::InvalidField
                    };
                    if path.is_empty() || path == "." || path == "?" || code == ErrorCode::InvalidJson {
                        Err(ApiError::new(code, inner.to_string()))
                    } else {
                        Err(ApiError::field(code, path, inner.to_string()))
                    }
                }
                Ok(_) => Err(ApiError::new(ErrorCode::InvalidJson, first.to_string())),
            }
        }
    }
}

fn parse_time(text: &str) -> Option<i64> {
    parse_iso8601_ms(text)
}

fn bad_time(field: &str, text: &str) -> ApiError {
    ApiError::field(ErrorCode::InvalidField, field, format!("{text:?} is not an ISO-8601 date-time"))
}

/// Reads an id that SDKs send as a string or a number.
fn id_value(raw: Option<&RawValue>, field: &str) -> Result<Option<String>, ApiError> {
    let Some(raw) = raw else { return Ok(None) };
    let text = raw.get();
    let value = match text.as_bytes().first() {
        Some(b'"') => serde_json::from_str::<String>(text)
            .map_err(|e| ApiError::field(ErrorCode::InvalidField, field, e.to_string()))?,
        Some(b'n') if text == "null" => return Ok(None),
        Some(b'-' | b'0'..=b'9') => text.to_owned(),
        _ => return Err(ApiError::field(ErrorCode::InvalidField, field, "must be a string or a number")),
    };
    if value.is_empty() {
        return Ok(None);
    }
    if value.len() > MAX_ID_BYTES {
        return Err(ApiError::field(ErrorCode::InvalidField, field, format!("must be at most {MAX_ID_BYTES} bytes")));
    }
    Ok(Some(value))
}

fn owned(text: Option<Cow<'_, str>>) -> Option<String> {
    text.map(Cow::into_owned).filter(|s| !s.is_empty())
}

fn require_object(raw: Option<&RawValue>, field: &str) -> Result<(), ApiError> {
    match raw.map(|r| r.get().as_bytes().first()) {
        None | Some(Some(b'{')) => Ok(()),
        Some(_) if raw.is_some_and(|r| r.get() == "null") => Ok(()),
        Some(_) => Err(ApiError::field(ErrorCode::InvalidField, field, "must be an object")),
    }
}

static GENERATED_IDS: AtomicU64 = AtomicU64::new(0);

/// A messageId for a message that came without one (Segment generates one too). Such a
/// message cannot be de-duplicated if retried.
fn generated_message_id() -> String {
    let n = GENERATED_IDS.fetch_add(1, Ordering::Relaxed);
    let a = RandomState::new().hash_one(n);
    let b = RandomState::new().hash_one(a);
    format!("regard-{a:016x}{b:016x}")
}

/// What the edge knows about a message before parsing it.
#[derive(Clone, Copy)]
pub struct MessageEnvelope<'a> {
    /// The kind the route implies (`/v1/track`); None for batch items, which carry `type`.
    pub kind: Option<MessageKind>,
    /// Arrival time.
    pub received_at_ms: i64,
    /// The batch's `sentAt`, for items without their own.
    pub batch_sent_at_ms: Option<i64>,
    /// The batch's `context`, for items without their own.
    pub batch_context: Option<&'a RawValue>,
    /// How the stored copy is encoded (the engine's dictionary compression); plain text when
    /// None.
    pub encode: Option<&'a (dyn Fn(&str) -> RawMessage + Sync)>,
}

impl std::fmt::Debug for MessageEnvelope<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MessageEnvelope")
            .field("kind", &self.kind)
            .field("received_at_ms", &self.received_at_ms)
            .field("batch_sent_at_ms", &self.batch_sent_at_ms)
            .field("encode", &self.encode.is_some())
            .finish_non_exhaustive()
    }
}

/// A parsed message and the write key its body carried, if any.
#[derive(Debug)]
pub struct ParsedMessage {
    /// The message.
    pub message: Message,
    /// `writeKey` from the body.
    pub write_key: Option<String>,
}

/// Parses and checks one Segment message.
pub fn parse_message(raw: &str, envelope: MessageEnvelope<'_>) -> Result<ParsedMessage, ApiError> {
    if raw.len() > MAX_MESSAGE_BYTES {
        return Err(ApiError::new(
            ErrorCode::MessageTooLarge,
            format!("a message may be at most {MAX_MESSAGE_BYTES} bytes; this one is {}", raw.len()),
        ));
    }
    let wire: WireMessage<'_> = deserialize(raw)?;
    let kind = match (wire.kind.as_deref(), envelope.kind) {
        (Some(text), route) => {
            let parsed = MessageKind::parse(text).ok_or_else(|| {
                ApiError::field(
                    ErrorCode::InvalidField,
                    "type",
                    format!("{text:?} is not one of identify, track, page, screen, group, alias"),
                )
            })?;
            if route.is_some_and(|r| r != parsed) {
                return Err(ApiError::field(
                    ErrorCode::InvalidField,
                    "type",
                    format!("{text:?} does not match the route"),
                ));
            }
            parsed
        }
        (None, Some(route)) => route,
        (None, None) => return Err(ApiError::field(ErrorCode::MissingField, "type", "a batch item needs a type")),
    };
    let user_id = id_value(wire.user_id, "userId")?;
    let anonymous_id = id_value(wire.anonymous_id, "anonymousId")?;
    let previous_id = id_value(wire.previous_id, "previousId")?;
    let group_id = id_value(wire.group_id, "groupId")?;
    let message_id = id_value(wire.message_id, "messageId")?.unwrap_or_else(generated_message_id);
    match kind {
        MessageKind::Alias => {
            if user_id.is_none() {
                return Err(ApiError::field(ErrorCode::MissingField, "userId", "alias needs a userId"));
            }
            if previous_id.is_none() {
                return Err(ApiError::field(ErrorCode::MissingField, "previousId", "alias needs a previousId"));
            }
        }
        _ if user_id.is_none() && anonymous_id.is_none() => {
            return Err(ApiError::field(ErrorCode::MissingField, "userId", "a userId or an anonymousId is required"));
        }
        MessageKind::Group if group_id.is_none() => {
            return Err(ApiError::field(ErrorCode::MissingField, "groupId", "group needs a groupId"));
        }
        _ => {}
    }
    let name = match kind {
        MessageKind::Track => {
            let event = owned(wire.event)
                .ok_or_else(|| ApiError::field(ErrorCode::MissingField, "event", "track needs an event name"))?;
            if event.len() > MAX_ID_BYTES {
                return Err(ApiError::field(ErrorCode::InvalidField, "event", "must be at most 1024 bytes"));
            }
            Some(event)
        }
        MessageKind::Page | MessageKind::Screen => owned(wire.name).filter(|n| n.len() <= MAX_ID_BYTES),
        _ => None,
    };
    require_object(wire.properties, "properties")?;
    require_object(wire.traits, "traits")?;
    let traits = match (kind, wire.traits) {
        (MessageKind::Identify | MessageKind::Group, Some(raw)) if raw.get() != "null" => Some(
            serde_json::from_str::<serde_json::Map<String, serde_json::Value>>(raw.get())
                .map_err(|e| ApiError::field(ErrorCode::InvalidField, "traits", e.to_string()))?,
        ),
        _ => None,
    };
    let timestamp_ms = match wire.timestamp.as_deref().or(wire.original_timestamp.as_deref()) {
        Some(text) => {
            let field = if wire.timestamp.is_some() { "timestamp" } else { "originalTimestamp" };
            Some(parse_time(text).ok_or_else(|| bad_time(field, text))?)
        }
        None => None,
    };
    let sent_at_ms = match wire.sent_at.as_deref() {
        Some(text) => Some(parse_time(text).ok_or_else(|| bad_time("sentAt", text))?),
        None => envelope.batch_sent_at_ms,
    };
    let timestamp_ms = corrected_timestamp_ms(ReportedTimes { timestamp_ms, sent_at_ms }, envelope.received_at_ms);
    let context = match (wire.context, envelope.batch_context) {
        (Some(context), _) => context_of(context, kind, wire.properties)?,
        (None, Some(batch_context)) => {
            let context: WireContext<'_> = deserialize(batch_context.get()).map_err(|e| e.within("context"))?;
            context_of(context, kind, wire.properties)?
        }
        (None, None) => context_of(WireContext::default(), kind, wire.properties)?,
    };
    Ok(ParsedMessage {
        message: Message {
            kind,
            message_id,
            user_id,
            anonymous_id,
            previous_id,
            group_id,
            name,
            timestamp_ms,
            received_at_ms: envelope.received_at_ms,
            traits,
            properties: wire.properties.filter(|r| r.get() != "null").map(|r| r.get().into()),
            context,
            raw: match envelope.encode {
                Some(encode) => encode(raw),
                None => raw.into(),
            },
        },
        write_key: owned(wire.write_key),
    })
}

fn context_of(
    wire: WireContext<'_>,
    kind: MessageKind,
    properties: Option<&RawValue>,
) -> Result<MessageContext, ApiError> {
    let mut page = wire.page.unwrap_or_default();
    // analytics.js puts the page in `properties` too; other SDKs only there.
    if kind == MessageKind::Page && page.url.is_none() && page.path.is_none() {
        if let Some(raw) = properties.filter(|r| r.get() != "null") {
            // The page fields of `properties` have the same names as `context.page`'s.
            page = serde_json::from_str::<WirePage<'_>>(raw.get()).unwrap_or_default();
        }
    }
    let campaign = wire.campaign.map(|c| Campaign {
        source: owned(c.source),
        medium: owned(c.medium),
        name: owned(c.name),
        term: owned(c.term),
        content: owned(c.content),
    });
    let consent_categories = wire
        .consent
        .and_then(|c| c.category_preferences)
        .map(|prefs| {
            prefs
                .into_iter()
                .map(|(category, value)| match value {
                    serde_json::Value::Bool(granted) => Ok((category, granted)),
                    _ => Err(ApiError::field(
                        ErrorCode::InvalidField,
                        format!("context.consent.categoryPreferences.{category}"),
                        "must be true or false",
                    )),
                })
                .collect::<Result<Vec<_>, _>>()
        })
        .transpose()?
        .unwrap_or_default();
    Ok(MessageContext {
        page_url: owned(page.url),
        page_path: owned(page.path),
        referrer: owned(page.referrer),
        campaign,
        ip: owned(wire.ip),
        locale: owned(wire.locale),
        timezone: owned(wire.timezone),
        user_agent: owned(wire.user_agent),
        consent_categories,
    })
}

/// Builds a catalog product from a JSON object, as `POST /v1/catalog` and the importers
/// receive it. Known fields: `id`, `name`, `category` (a path such as `"Home > Bedroom"`) or
/// `category_path` (an array), `price`, `currency`, `url`, `image`, `in_stock`, `durable`
/// (bool) or `durability` (`durable`/`consumable`/`unknown`), `attributes`; every other field
/// becomes an attribute.
pub fn product_from_json(mut object: serde_json::Map<String, serde_json::Value>) -> Result<Product, ApiError> {
    use serde_json::Value;
    fn text(value: Option<Value>, field: &str) -> Result<Option<String>, ApiError> {
        match value {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) if s.trim().is_empty() => Ok(None),
            Some(Value::String(s)) => Ok(Some(s)),
            Some(Value::Number(n)) => Ok(Some(n.to_string())),
            Some(_) => Err(ApiError::field(ErrorCode::InvalidField, field, "must be a string")),
        }
    }
    fn boolean(value: Option<Value>, field: &str) -> Result<Option<bool>, ApiError> {
        match value {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Bool(b)) => Ok(Some(b)),
            Some(Value::String(s)) => match s.trim().to_ascii_lowercase().as_str() {
                "" => Ok(None),
                "true" | "1" | "yes" | "y" => Ok(Some(true)),
                "false" | "0" | "no" | "n" => Ok(Some(false)),
                _ => Err(ApiError::field(ErrorCode::InvalidField, field, format!("{s:?} is not true or false"))),
            },
            Some(Value::Number(n)) => Ok(Some(n.as_f64() != Some(0.0))),
            Some(_) => Err(ApiError::field(ErrorCode::InvalidField, field, "must be true or false")),
        }
    }
    let id = text(object.remove("id"), "id")?
        .ok_or_else(|| ApiError::field(ErrorCode::MissingField, "id", "a product needs an id"))?;
    let name = text(object.remove("name"), "name")?
        .ok_or_else(|| ApiError::field(ErrorCode::MissingField, "name", "a product needs a name"))?;
    let category_path = match (object.remove("category_path"), object.remove("category")) {
        (Some(Value::Array(parts)), _) => parts
            .into_iter()
            .map(|p| match p {
                Value::String(s) => Ok(s),
                _ => Err(ApiError::field(ErrorCode::InvalidField, "category_path", "must be an array of strings")),
            })
            .collect::<Result<Vec<_>, _>>()?,
        (Some(Value::String(path)), _) | (_, Some(Value::String(path))) => Product::parse_category_path(&path),
        (None | Some(Value::Null), None | Some(Value::Null)) => Vec::new(),
        (Some(_), _) => {
            return Err(ApiError::field(ErrorCode::InvalidField, "category_path", "must be an array of strings"))
        }
        (_, Some(_)) => {
            return Err(ApiError::field(
                ErrorCode::InvalidField,
                "category",
                "must be a string such as \"Home > Bedroom\"",
            ))
        }
    };
    let price = match object.remove("price") {
        None | Some(Value::Null) => None,
        Some(Value::Number(n)) => n.as_f64(),
        Some(Value::String(s)) if s.trim().is_empty() => None,
        Some(Value::String(s)) => Some(
            s.trim()
                .parse::<f64>()
                .map_err(|_| ApiError::field(ErrorCode::InvalidField, "price", format!("{s:?} is not a number")))?,
        ),
        Some(_) => return Err(ApiError::field(ErrorCode::InvalidField, "price", "must be a number")),
    };
    let currency = text(object.remove("currency"), "currency")?.map(|c| c.to_ascii_uppercase());
    let url = text(object.remove("url"), "url")?;
    let image = text(object.remove("image"), "image")?;
    let in_stock = boolean(object.remove("in_stock"), "in_stock")?.unwrap_or(true);
    let durability =
        match (text(object.remove("durability"), "durability")?, boolean(object.remove("durable"), "durable")?) {
            (Some(d), _) => match d.to_ascii_lowercase().as_str() {
                "durable" => Durability::Durable,
                "consumable" => Durability::Consumable,
                "unknown" => Durability::Unknown,
                _ => {
                    return Err(ApiError::field(
                        ErrorCode::InvalidField,
                        "durability",
                        "must be durable, consumable or unknown",
                    ))
                }
            },
            (None, Some(true)) => Durability::Durable,
            (None, Some(false)) => Durability::Consumable,
            (None, None) => Durability::Unknown,
        };
    let mut attributes = match object.remove("attributes") {
        None | Some(Value::Null) => serde_json::Map::new(),
        Some(Value::Object(map)) => map,
        Some(_) => return Err(ApiError::field(ErrorCode::InvalidField, "attributes", "must be an object")),
    };
    for (key, value) in object {
        if !value.is_null() && value != Value::String(String::new()) {
            attributes.insert(key, value);
        }
    }
    let product = Product { id, name, category_path, price, currency, url, image, in_stock, durability, attributes };
    product.validate().map_err(|e| ApiError::field(ErrorCode::InvalidField, e.field, e.message))?;
    Ok(product)
}

#[cfg(test)]
#[path = "wire_tests.rs"]
mod tests;
