//! A Segment-style message after it has been parsed and checked at the edge.
//!
//! The HTTP layer turns wire JSON into [`Message`]; from here on the message is known to be
//! well formed: it has a kind, a messageId, at least one of userId / anonymousId, and a
//! corrected timestamp. The message's raw JSON is kept as it arrived, because that is the fact
//! the store keeps and an access request returns.

use serde::{Deserialize, Serialize};

/// The Segment call a message came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MessageKind {
    /// Who the user is, with traits.
    Identify,
    /// Something the user did.
    Track,
    /// A web page view.
    Page,
    /// A mobile screen view.
    Screen,
    /// Membership of an account or organisation.
    Group,
    /// Two ids are the same person.
    Alias,
}

impl MessageKind {
    /// Every kind, in the order of [`MessageKind::index`].
    pub const ALL: [MessageKind; 6] = [
        MessageKind::Identify,
        MessageKind::Track,
        MessageKind::Page,
        MessageKind::Screen,
        MessageKind::Group,
        MessageKind::Alias,
    ];

    /// A dense index for per-kind counters.
    pub fn index(self) -> usize {
        self as usize
    }

    /// The kind's wire name (`"track"`...).
    pub fn as_str(self) -> &'static str {
        match self {
            MessageKind::Identify => "identify",
            MessageKind::Track => "track",
            MessageKind::Page => "page",
            MessageKind::Screen => "screen",
            MessageKind::Group => "group",
            MessageKind::Alias => "alias",
        }
    }

    /// Parses a wire name.
    pub fn parse(text: &str) -> Option<MessageKind> {
        MessageKind::ALL.into_iter().find(|kind| kind.as_str() == text)
    }

    /// The stable small integer the store keeps for this kind.
    pub fn code(self) -> u8 {
        self as u8
    }

    /// The kind for a stored code.
    pub fn from_code(code: u8) -> Option<MessageKind> {
        MessageKind::ALL.get(code as usize).copied()
    }
}

/// UTM parameters of the campaign that brought the visitor (`context.campaign`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Campaign {
    /// `utm_source`.
    pub source: Option<String>,
    /// `utm_medium`.
    pub medium: Option<String>,
    /// `utm_campaign`.
    pub name: Option<String>,
    /// `utm_term`.
    pub term: Option<String>,
    /// `utm_content`.
    pub content: Option<String>,
}

/// The parts of Segment's `context` object that Regard reads.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MessageContext {
    /// `context.page.url`.
    pub page_url: Option<String>,
    /// `context.page.path`.
    pub page_path: Option<String>,
    /// `context.page.referrer`.
    pub referrer: Option<String>,
    /// `context.campaign`.
    pub campaign: Option<Campaign>,
    /// `context.ip`.
    pub ip: Option<String>,
    /// `context.locale`.
    pub locale: Option<String>,
    /// `context.timezone` (IANA name).
    pub timezone: Option<String>,
    /// `context.userAgent`.
    pub user_agent: Option<String>,
    /// `context.consent.categoryPreferences`, in the order sent.
    pub consent_categories: Vec<(String, bool)>,
}

/// A parsed, checked Segment message.
#[derive(Debug, Clone, PartialEq)]
pub struct Message {
    /// The call it came from.
    pub kind: MessageKind,
    /// The client's id for this message; retries carry the same one.
    pub message_id: String,
    /// The operator's id for the user, once known.
    pub user_id: Option<String>,
    /// The device/browser id.
    pub anonymous_id: Option<String>,
    /// `previousId` of an alias call.
    pub previous_id: Option<String>,
    /// `groupId` of a group call.
    pub group_id: Option<String>,
    /// The event name of a track call, or the page/screen name.
    pub name: Option<String>,
    /// When it happened, after clock-skew correction (Unix ms).
    pub timestamp_ms: i64,
    /// When the server received it (Unix ms).
    pub received_at_ms: i64,
    /// Identify (or group) traits, parsed.
    pub traits: Option<serde_json::Map<String, serde_json::Value>>,
    /// The `properties` object as JSON text, parsed by the writer only when a saved segment
    /// counts events of this name.
    pub properties: Option<Box<str>>,
    /// The parts of `context` Regard reads.
    pub context: MessageContext,
    /// The message exactly as received.
    pub raw: RawMessage,
}

/// A message's original JSON as the event log keeps it: plain, or compressed at the edge with
/// the store's shared dictionary. The core only carries the bytes; the store owns the codec.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RawMessage {
    /// Compact JSON text.
    Text(Box<str>),
    /// zstd-compressed JSON, made with the store's dictionary number `dictionary`.
    Compressed {
        /// The dictionary's id in the store.
        dictionary: u32,
        /// The compressed bytes.
        bytes: Box<[u8]>,
    },
}

impl RawMessage {
    /// Bytes held.
    pub fn len(&self) -> usize {
        match self {
            RawMessage::Text(text) => text.len(),
            RawMessage::Compressed { bytes, .. } => bytes.len(),
        }
    }

    /// Whether nothing is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The plain text, when the message is not compressed.
    pub fn as_text(&self) -> Option<&str> {
        match self {
            RawMessage::Text(text) => Some(text),
            RawMessage::Compressed { .. } => None,
        }
    }
}

impl From<&str> for RawMessage {
    fn from(text: &str) -> RawMessage {
        RawMessage::Text(text.into())
    }
}

impl From<String> for RawMessage {
    fn from(text: String) -> RawMessage {
        RawMessage::Text(text.into_boxed_str())
    }
}

impl Message {
    /// The identity this message is filed under first: the userId when there is one.
    pub fn primary_identity(&self) -> Option<(IdentityKind, &str)> {
        self.user_id
            .as_deref()
            .map(|id| (IdentityKind::UserId, id))
            .or_else(|| self.anonymous_id.as_deref().map(|id| (IdentityKind::AnonymousId, id)))
    }
}

/// The two kinds of id a profile is known by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum IdentityKind {
    /// The operator's own id for a known user.
    UserId,
    /// A device or browser id.
    AnonymousId,
}

impl IdentityKind {
    /// The stable code the store keeps.
    pub fn code(self) -> u8 {
        match self {
            IdentityKind::UserId => 0,
            IdentityKind::AnonymousId => 1,
        }
    }

    /// The kind for a stored code.
    pub fn from_code(code: u8) -> Option<IdentityKind> {
        match code {
            0 => Some(IdentityKind::UserId),
            1 => Some(IdentityKind::AnonymousId),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_round_trip_through_names_and_codes() {
        for kind in MessageKind::ALL {
            assert_eq!(MessageKind::parse(kind.as_str()), Some(kind));
            assert_eq!(MessageKind::from_code(kind.code()), Some(kind));
        }
        assert_eq!(MessageKind::parse("Track"), None);
    }
}
