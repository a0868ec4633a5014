//! The Segment Tracking API shapes the generator writes, and the ids it stamps on them.
//!
//! The structs borrow everything they can: the generator writes about a quarter of a million
//! messages, and serializing typed structs straight to a string is several times faster than
//! building `serde_json::Value` trees first. Field order in the structs is the key order in the
//! output, which keeps the output byte-stable.

use serde::Serialize;
use serde_json::value::RawValue;

/// Mixes 64 bits with the SplitMix64 finalizer.
///
/// The finalizer is a bijection on `u64`, so distinct inputs always give distinct outputs; ids
/// built from it look random yet are unique by construction, with no collision check needed.
pub(crate) fn mix64(mut x: u64) -> u64 {
    x ^= x >> 30;
    x = x.wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x ^= x >> 27;
    x = x.wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

/// Derives per-purpose keys from the seed so ids differ between seeds and between kinds.
#[derive(Debug, Clone, Copy)]
pub(crate) struct IdKeys {
    /// Key of message ids.
    message: u64,
    /// Second key of message ids, for their last 32 bits.
    message_tail: u64,
    /// Key of cart, order and email ids.
    object: u64,
}

impl IdKeys {
    /// Derives the keys of one seed.
    pub(crate) fn new(seed: u64) -> Self {
        IdKeys {
            message: mix64(seed ^ 0x6d65_7373_6167_6501),
            message_tail: mix64(seed ^ 0x7461_696c_0000_0002),
            object: mix64(seed ^ 0x6f62_6a65_6374_0003),
        }
    }

    /// A message id: `demo-` and 24 hex digits, unique for each `(user, sequence)` pair.
    ///
    /// The first 16 digits are a bijection of `user << 24 | sequence`, so they alone make the
    /// id unique as long as a user sends fewer than 2^24 messages.
    #[cfg(test)]
    pub(crate) fn message_id(&self, user: u64, sequence: u64) -> String {
        let mut id = String::with_capacity(29);
        self.write_message_id(&mut id, user, sequence);
        id
    }

    /// Writes the message id of `(user, sequence)` into a reused buffer, replacing its content.
    pub(crate) fn write_message_id(&self, out: &mut String, user: u64, sequence: u64) {
        let counter = (user << 24) | (sequence & 0xff_ffff);
        out.clear();
        out.push_str("demo-");
        push_hex(out, mix64(counter ^ self.message), 16);
        push_hex(out, mix64(counter ^ self.message_tail) >> 32, 8);
    }

    /// A cart, order or email id: a prefix and 16 hex digits, unique per `(user, n)` pair.
    ///
    /// The prefix salts the key, so the third cart and the third order of a person do not
    /// share their digits.
    pub(crate) fn object_id(&self, prefix: &str, user: u64, n: u64) -> String {
        let counter = (user << 24) | (n & 0xff_ffff);
        let salt = prefix
            .bytes()
            .fold(0xcbf2_9ce4_8422_2325_u64, |hash, b| (hash ^ u64::from(b)).wrapping_mul(0x100_0000_01b3));
        let mut id = String::with_capacity(prefix.len() + 17);
        id.push_str(prefix);
        id.push('-');
        push_hex(&mut id, mix64(counter ^ self.object ^ salt), 16);
        id
    }
}

/// Appends the low `digits` hex digits of `value`, zero-padded.
///
/// Ids are written for every message; this is several times cheaper than `format!("{:016x}")`.
fn push_hex(out: &mut String, value: u64, digits: u32) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    for shift in (0..digits).rev() {
        out.push(char::from(HEX[((value >> (4 * shift)) & 0xf) as usize]));
    }
}

/// Formats Unix milliseconds as RFC 3339 UTC with milliseconds, e.g. `2026-06-01T12:00:00.000Z`.
///
/// The generator clamps its window to years jiff supports, so the fallback never shows in
/// practice; it exists so that no input can make formatting panic.
pub(crate) fn format_timestamp(ms: i64) -> String {
    let mut text = String::with_capacity(24);
    write_timestamp(&mut text, ms);
    text
}

/// Writes [`format_timestamp`]'s text into a reused buffer, replacing its content.
pub(crate) fn write_timestamp(out: &mut String, ms: i64) {
    use std::fmt::Write;
    out.clear();
    let written = match jiff::Timestamp::from_millisecond(ms) {
        Ok(timestamp) => write!(out, "{timestamp:.3}"),
        Err(_) => Err(std::fmt::Error),
    };
    if written.is_err() {
        out.clear();
        out.push_str("1970-01-01T00:00:00.000Z");
    }
}

/// `context.consent.categoryPreferences`, as Segment's consent management sends it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct CategoryPreferences {
    /// Product analytics.
    pub analytics: bool,
    /// Personalized content and recommendations.
    pub personalization: bool,
    /// Advertising audiences and retargeting.
    pub advertising: bool,
    /// Marketing email.
    pub email: bool,
    /// Predictive profiling (churn scores, lifetime value).
    pub profiling: bool,
}

/// The `context.consent` object.
#[derive(Debug, Clone, Copy, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Consent {
    /// The visitor's choices per category.
    pub category_preferences: CategoryPreferences,
}

/// A marketing campaign as `context.campaign` carries it (the page URL's `utm_*` parameters).
#[derive(Debug, Serialize)]
pub(crate) struct Campaign {
    /// `utm_source`.
    pub source: &'static str,
    /// `utm_medium`.
    pub medium: &'static str,
    /// `utm_campaign`.
    pub name: String,
    /// `utm_term`, for paid search.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub term: Option<&'static str>,
    /// `utm_content`, for creative variants.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub content: Option<&'static str>,
}

impl Campaign {
    /// The query string the campaign adds to its landing URL, starting with `?`.
    pub(crate) fn query_string(&self) -> String {
        let mut query = format!("?utm_source={}&utm_medium={}&utm_campaign={}", self.source, self.medium, self.name);
        if let Some(term) = self.term {
            query.push_str("&utm_term=");
            query.push_str(&term.replace(' ', "+"));
        }
        if let Some(content) = self.content {
            query.push_str("&utm_content=");
            query.push_str(content);
        }
        query
    }
}

/// A page as both `context.page` and the properties of a `page` call describe it.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct PageInfo {
    /// Path without the query string.
    pub path: String,
    /// Full URL including the query string.
    pub url: String,
    /// Document title.
    pub title: String,
    /// The referring URL, empty for direct visits.
    pub referrer: String,
    /// The query string including `?`, when there is one.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub search: String,
}

/// The `context` object of every message.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Context<'a> {
    /// Client IP address (always from the documentation ranges).
    pub ip: &'a str,
    /// Browser locale.
    pub locale: &'a str,
    /// IANA time zone of the browser.
    pub timezone: &'a str,
    /// Browser user agent.
    pub user_agent: &'a str,
    /// The page the visitor is on, serialized once per page view; absent for server-side
    /// email events.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub page: Option<&'a RawValue>,
    /// UTM parameters of the landing page.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub campaign: Option<&'a Campaign>,
    /// The visitor's consent at the time of the message.
    pub consent: Consent,
}

/// One product line of a cart or an order.
#[derive(Debug, Serialize)]
pub(crate) struct LineItem<'a> {
    /// Product id.
    pub product_id: &'a str,
    /// Merchant SKU.
    pub sku: &'a str,
    /// Leaf category.
    pub category: &'a str,
    /// Product name.
    pub name: &'a str,
    /// Unit price in the message's currency.
    pub price: f64,
    /// Units.
    pub quantity: u32,
}

/// Properties of a track or page call, one variant per event shape.
///
/// The enum is untagged: each variant serializes as the plain object of its fields.
#[derive(Debug, Serialize)]
#[serde(untagged)]
pub(crate) enum Properties<'a> {
    /// A `page` call: the page itself, serialized once.
    Page(&'a RawValue),
    /// "Products Searched".
    Search {
        /// The search text.
        query: &'a str,
    },
    /// "Product List Viewed".
    ProductList {
        /// The list's id (the category slug).
        list_id: &'a str,
        /// The leaf category.
        category: &'a str,
    },
    /// "Product Viewed".
    Product {
        /// Product id.
        product_id: &'a str,
        /// Merchant SKU.
        sku: &'a str,
        /// Leaf category.
        category: &'a str,
        /// Product name.
        name: &'a str,
        /// Brand.
        brand: &'a str,
        /// Unit price in `currency`.
        price: f64,
        /// ISO 4217 code.
        currency: &'a str,
        /// Product page URL.
        url: &'a str,
    },
    /// "Product Added".
    ProductAdded {
        /// The cart it was added to.
        cart_id: &'a str,
        /// Product id.
        product_id: &'a str,
        /// Merchant SKU.
        sku: &'a str,
        /// Leaf category.
        category: &'a str,
        /// Product name.
        name: &'a str,
        /// Unit price in `currency`.
        price: f64,
        /// Units added.
        quantity: u32,
        /// ISO 4217 code.
        currency: &'a str,
    },
    /// "Cart Viewed".
    Cart {
        /// The cart.
        cart_id: &'a str,
        /// Its lines.
        products: &'a [LineItem<'a>],
    },
    /// "Checkout Started".
    Checkout {
        /// The order being placed.
        order_id: &'a str,
        /// The cart being checked out (a custom property linking cart and order).
        cart_id: &'a str,
        /// Cart value.
        value: f64,
        /// Revenue after discounts.
        revenue: f64,
        /// ISO 4217 code.
        currency: &'a str,
        /// The lines.
        products: &'a [LineItem<'a>],
    },
    /// "Order Completed".
    Order {
        /// The order.
        order_id: &'a str,
        /// The cart that became the order (a custom property linking cart and order).
        cart_id: &'a str,
        /// Revenue plus shipping.
        total: f64,
        /// Subtotal after discounts, before shipping.
        revenue: f64,
        /// Shipping cost.
        shipping: f64,
        /// Discount granted by the coupon.
        discount: f64,
        /// Coupon code, when one was used.
        #[serde(skip_serializing_if = "Option::is_none")]
        coupon: Option<&'a str>,
        /// ISO 4217 code.
        currency: &'a str,
        /// The lines.
        products: &'a [LineItem<'a>],
    },
    /// "Email Opened".
    EmailOpened {
        /// The email (one per recipient and campaign).
        email_id: &'a str,
        /// The campaign.
        campaign_id: &'a str,
        /// Subject line.
        subject: &'a str,
    },
    /// "Email Link Clicked".
    EmailLinkClicked {
        /// The email.
        email_id: &'a str,
        /// The campaign.
        campaign_id: &'a str,
        /// The link's target.
        url: &'a str,
    },
    /// "Signed Up".
    SignedUp {
        /// How the account was created.
        method: &'a str,
    },
    /// Events that carry no properties of their own.
    Empty {},
}

/// Traits sent with an `identify` call.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Traits {
    /// Full name.
    pub name: String,
    /// Given name.
    pub first_name: &'static str,
    /// Family name.
    pub last_name: &'static str,
    /// Email address on an `example.*` domain.
    pub email: String,
    /// Locale, e.g. `de-DE`.
    pub locale: &'static str,
    /// ISO 4217 code.
    pub currency: &'static str,
    /// ISO 3166 country code.
    pub country: &'static str,
    /// City.
    pub city: &'static str,
    /// IANA time zone.
    pub timezone: &'static str,
    /// `YYYY-MM-DD`.
    pub birthday: String,
    /// When the account was created, RFC 3339.
    pub created_at: String,
    /// Whether the person subscribed to the newsletter.
    pub newsletter: bool,
    /// Favourite coffee roast, for coffee drinkers.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub preferred_roast: Option<&'static str>,
}

/// One Segment message.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Message<'a> {
    /// `identify`, `track`, `page` or `alias`.
    #[serde(rename = "type")]
    pub kind: &'static str,
    /// Unique, deterministic id.
    pub message_id: &'a str,
    /// RFC 3339 UTC with milliseconds.
    pub timestamp: &'a str,
    /// Present once the visitor has identified.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user_id: Option<&'a str>,
    /// The device's anonymous id, always present.
    pub anonymous_id: &'a str,
    /// For `alias`: the id being merged into `userId`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub previous_id: Option<&'a str>,
    /// For `track`: the event name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub event: Option<&'a str>,
    /// For `page`: the page name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<&'a str>,
    /// For `track` and `page`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub properties: Option<Properties<'a>>,
    /// For `identify`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub traits: Option<&'a Traits>,
}

/// Writes a message into `out` with its already-serialized `context` object spliced in as
/// the last key.
///
/// Every call made from one page shares the same context (device, locale, page, campaign,
/// consent), which is the larger half of each message; serializing it once per page view
/// instead of once per message halves the generator's running time.
pub(crate) fn write_message(out: &mut Vec<u8>, message: &Message<'_>, context: &[u8]) -> serde_json::Result<()> {
    out.clear();
    serde_json::to_writer(&mut *out, message)?;
    // A serialized struct always ends with the closing brace of its object.
    if out.last() == Some(&b'}') {
        out.pop();
    }
    out.extend_from_slice(b",\"context\":");
    out.extend_from_slice(context);
    out.push(b'}');
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_unique_per_user_and_sequence_and_change_with_the_seed() {
        let keys = IdKeys::new(42);
        let mut seen = std::collections::BTreeSet::new();
        for user in 0..50 {
            for sequence in 0..200 {
                assert!(seen.insert(keys.message_id(user, sequence)));
            }
        }
        let id = keys.message_id(3, 4);
        assert_eq!(id.len(), "demo-".len() + 24);
        assert!(id[5..].chars().all(|c| c.is_ascii_hexdigit()));
        assert_ne!(IdKeys::new(43).message_id(3, 4), id);
        assert_ne!(keys.object_id("ord", 3, 4), keys.object_id("ord", 4, 3));
        assert_ne!(keys.object_id("ord", 3, 4)[4..], keys.object_id("cart", 3, 4)[5..]);
    }

    #[test]
    fn messages_carry_the_spliced_context_as_their_last_key() {
        let message = Message {
            kind: "track",
            message_id: "demo-1",
            timestamp: "2026-06-01T12:00:00.000Z",
            user_id: None,
            anonymous_id: "a",
            previous_id: None,
            event: Some("Product Viewed"),
            name: None,
            properties: Some(Properties::Search { query: "dark \"roast\"" }),
            traits: None,
        };
        let mut out = Vec::new();
        assert!(write_message(&mut out, &message, br#"{"ip":"192.0.2.1"}"#).is_ok());
        let parsed: serde_json::Value = serde_json::from_slice(&out).unwrap_or_default();
        assert_eq!(parsed["context"]["ip"], "192.0.2.1");
        assert_eq!(parsed["properties"]["query"], "dark \"roast\"");
        assert_eq!(parsed["anonymousId"], "a");
    }

    #[test]
    fn timestamps_print_in_utc_with_milliseconds() {
        assert_eq!(format_timestamp(1_780_315_200_000), "2026-06-01T12:00:00.000Z");
        assert_eq!(format_timestamp(1_780_315_200_007), "2026-06-01T12:00:00.007Z");
        assert_eq!(format_timestamp(i64::MAX), "1970-01-01T00:00:00.000Z");
    }

    #[test]
    fn campaign_query_strings_carry_every_utm_parameter() {
        let campaign = Campaign {
            source: "google",
            medium: "cpc",
            name: "running-shoes".into(),
            term: Some("trail running shoes"),
            content: Some("ad-1"),
        };
        assert_eq!(
            campaign.query_string(),
            "?utm_source=google&utm_medium=cpc&utm_campaign=running-shoes&utm_term=trail+running+shoes&utm_content=ad-1"
        );
    }
}
