//! Compression of stored messages with a zstd dictionary trained on the shop's own traffic.
//!
//! Segment messages of one shop repeat the same keys, user agents, URLs and consent blocks, so
//! a dictionary trained on a few thousand of them shrinks a message about sixfold (886 → 138
//! bytes on the demo shop). Fewer bytes per event is what lifts SQLite's append rate, so the
//! edge compresses in parallel on the request threads and the writer only stores bytes.
//!
//! Dictionaries are facts (table `dictionaries`); a message names the one it was compressed
//! with, so old rows stay readable when a new dictionary is trained.

use std::sync::Arc;

use parking_lot::RwLock;
use regard_core::message::RawMessage;

/// zstd level used with the dictionary: the fastest, since most of the gain comes from the dictionary (level 3 compressed the demo only a few percent better at twice the CPU).
pub const LEVEL: i32 = 1;
/// Messages collected before the first dictionary is trained.
pub const TRAINING_SAMPLES: usize = 8_000;
/// Size of a trained dictionary.
pub const DICTIONARY_BYTES: usize = 64 * 1024;

/// One trained dictionary, prepared for compression.
pub struct Codec {
    /// Its id in the store.
    pub dictionary_id: u32,
    /// Prepared once, shared by every compressing thread. Leaked on purpose: a process trains a
    /// handful of dictionaries at most, and a `'static` borrow lets each thread keep its own
    /// compression context.
    encoder: &'static zstd::dict::EncoderDictionary<'static>,
}

impl std::fmt::Debug for Codec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Codec").field("dictionary_id", &self.dictionary_id).finish()
    }
}

impl Codec {
    /// Prepares `dictionary` (the bytes stored under `dictionary_id`).
    pub fn new(dictionary_id: u32, dictionary: &[u8]) -> Codec {
        let encoder = Box::leak(Box::new(zstd::dict::EncoderDictionary::copy(dictionary, LEVEL)));
        Codec { dictionary_id, encoder }
    }

    /// Compresses `text`, falling back to plain text if compression fails or does not help.
    pub fn compress(&self, text: &str) -> RawMessage {
        thread_local! {
            static CONTEXT: std::cell::RefCell<Option<(u32, zstd::bulk::Compressor<'static>)>> =
                const { std::cell::RefCell::new(None) };
        }
        CONTEXT.with(|slot| {
            let mut slot = slot.borrow_mut();
            if slot.as_ref().is_none_or(|(id, _)| *id != self.dictionary_id) {
                *slot = zstd::bulk::Compressor::with_prepared_dictionary(self.encoder)
                    .ok()
                    .map(|c| (self.dictionary_id, c));
            }
            match slot.as_mut().and_then(|(_, compressor)| compressor.compress(text.as_bytes()).ok()) {
                Some(bytes) if bytes.len() < text.len() => {
                    RawMessage::Compressed { dictionary: self.dictionary_id, bytes: bytes.into_boxed_slice() }
                }
                _ => RawMessage::Text(text.into()),
            }
        })
    }
}

/// The codec the edge should use now; empty until the first dictionary is trained.
#[derive(Debug, Default, Clone)]
pub struct CurrentCodec(Arc<RwLock<Option<Arc<Codec>>>>);

impl CurrentCodec {
    /// Compresses with the current dictionary, or keeps plain text when there is none yet.
    pub fn compress(&self, text: &str) -> RawMessage {
        let codec = self.0.read().clone();
        match codec {
            Some(codec) => codec.compress(text),
            None => RawMessage::Text(text.into()),
        }
    }

    /// Publishes a new dictionary.
    pub fn publish(&self, codec: Codec) {
        *self.0.write() = Some(Arc::new(codec));
    }

    /// Whether a dictionary is in use.
    pub fn is_trained(&self) -> bool {
        self.0.read().is_some()
    }
}

/// A dictionary prepared for decompression. Leaked on purpose, like [`Codec`]'s: preparing one
/// costs far more than decompressing a message, so each is prepared once per process.
pub struct Decoder {
    dictionary_id: u32,
    prepared: &'static zstd::dict::DecoderDictionary<'static>,
}

impl std::fmt::Debug for Decoder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Decoder").field("dictionary_id", &self.dictionary_id).finish()
    }
}

impl Decoder {
    /// Prepares `dictionary` (the bytes stored under `dictionary_id`).
    pub fn new(dictionary_id: u32, dictionary: &[u8]) -> Decoder {
        Decoder { dictionary_id, prepared: Box::leak(Box::new(zstd::dict::DecoderDictionary::copy(dictionary))) }
    }

    /// The id of the dictionary in the store.
    pub fn dictionary_id(&self) -> u32 {
        self.dictionary_id
    }

    /// Decompresses a stored message, reusing this thread's decompression context.
    pub fn decompress(&self, bytes: &[u8]) -> std::io::Result<String> {
        let mut plain = Vec::new();
        self.decompress_into(bytes, &mut plain)?;
        String::from_utf8(plain).map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e))
    }

    /// Decompresses a stored message into `out` (cleared first), reusing this thread's
    /// decompression context and `out`'s buffer: a history scan decompresses millions.
    pub fn decompress_into(&self, bytes: &[u8], out: &mut Vec<u8>) -> std::io::Result<()> {
        thread_local! {
            static CONTEXT: std::cell::RefCell<Option<(u32, zstd::bulk::Decompressor<'static>)>> =
                const { std::cell::RefCell::new(None) };
        }
        let capacity =
            zstd::zstd_safe::get_frame_content_size(bytes).ok().flatten().unwrap_or(64 * 1024).min(1 << 20) as usize;
        out.clear();
        out.reserve(capacity.max(1));
        CONTEXT.with(|slot| {
            let mut slot = slot.borrow_mut();
            if slot.as_ref().is_none_or(|(id, _)| *id != self.dictionary_id) {
                *slot = Some((self.dictionary_id, zstd::bulk::Decompressor::with_prepared_dictionary(self.prepared)?));
            }
            let Some((_, decompressor)) = slot.as_mut() else { return Err(std::io::Error::other("no context")) };
            decompressor.decompress_to_buffer(bytes, out).map(|_| ())
        })
    }
}

/// Decompresses a stored message with a dictionary prepared just for this call (tests, tools).
pub fn decompress(dictionary: &[u8], bytes: &[u8]) -> std::io::Result<String> {
    let mut decompressor = zstd::bulk::Decompressor::with_dictionary(dictionary)?;
    let capacity =
        zstd::zstd_safe::get_frame_content_size(bytes).ok().flatten().unwrap_or(64 * 1024).min(1 << 20) as usize;
    let plain = decompressor.decompress(bytes, capacity.max(1))?;
    String::from_utf8(plain).map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e))
}

/// Trains a dictionary from sample messages.
pub fn train(samples: &[String]) -> std::io::Result<Vec<u8>> {
    train_with_size(samples, DICTIONARY_BYTES)
}

/// Trains a dictionary of at most `bytes` from sample messages.
pub fn train_with_size(samples: &[String], bytes: usize) -> std::io::Result<Vec<u8>> {
    zstd::dict::from_samples(samples, bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn samples() -> Vec<String> {
        (0..2_000)
            .map(|i| {
                format!(
                    r#"{{"type":"track","event":"Product Viewed","messageId":"m-{i}","anonymousId":"anon-{}","properties":{{"product_id":"sku-{:04}","price":{}.5}},"context":{{"userAgent":"Mozilla/5.0 (X11; Linux x86_64)","locale":"en-US"}}}}"#,
                    i * 7919 % 1000,
                    i % 500,
                    i % 40
                )
            })
            .collect()
    }

    #[test]
    fn a_trained_dictionary_shrinks_messages_and_round_trips() {
        let samples = samples();
        let dictionary = train(&samples).expect("train");
        let codec = Codec::new(1, &dictionary);
        let text = &samples[1_234];
        let compressed = codec.compress(text);
        let RawMessage::Compressed { dictionary: id, bytes } = &compressed else { panic!("not compressed") };
        assert_eq!(*id, 1);
        assert!(bytes.len() * 3 < text.len(), "{} vs {}", bytes.len(), text.len());
        assert_eq!(&decompress(&dictionary, bytes).expect("decompress"), text);
    }

    #[test]
    fn without_a_dictionary_text_stays_plain() {
        let current = CurrentCodec::default();
        assert_eq!(current.compress("{}"), RawMessage::Text("{}".into()));
        assert!(!current.is_trained());
    }
}
