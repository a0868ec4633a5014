//! Signed user tokens: the operator's proof that a browser speaks for a userId.
//!
//! The write key ships in every browser, and a browser knows its own userId, so a userId in a
//! request proves nothing: anyone could claim anyone's. Identified personalization (and the
//! explanations that come with it) therefore needs a token that the operator's backend signed
//! with the instance's secret when the person signed in:
//!
//! ```text
//! v1.<userId, base64url>.<expiry, unix seconds>.<signature, base64url>
//! signature = HMAC-SHA256(key = the secret's UTF-8 bytes, message = "v1|" + userId + "|" + expiry)
//! ```
//!
//! The expiry is decimal digits and comes last in the message, so no two (userId, expiry) pairs
//! sign the same bytes even when the userId contains `|`. base64url may be sent with or without
//! `=` padding. A token is valid until its expiry second (`now < expiry`). The signature is
//! checked first and in constant time, so a forged token learns nothing about which part is wrong.

use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use base64::Engine as _;
use hmac::{Hmac, Mac};
use sha2::Sha256;

/// The header a browser sends its user token in (`X-Regard-User-Token`).
pub const USER_TOKEN_HEADER: &str = "x-regard-user-token";

/// The header's name as people write it, for error fields and documentation.
pub const USER_TOKEN_HEADER_DISPLAY: &str = "X-Regard-User-Token";

/// The format version, the token's first part and the first part of what is signed.
const VERSION: &str = "v1";

/// Longest token accepted: a 256-character userId in base64url, an expiry and a signature fit
/// well within it; anything longer is refused before any work.
const MAX_TOKEN_LEN: usize = 1024;

/// base64url that writes no padding and reads it either way (Python's `urlsafe_b64encode` pads).
const BASE64URL: GeneralPurpose = GeneralPurpose::new(
    &base64::alphabet::URL_SAFE,
    GeneralPurposeConfig::new().with_encode_padding(false).with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// Why a user token was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    /// Not of the form `v1.<userId>.<expiry>.<signature>`.
    #[error("the user token is malformed: expected v1.<userId base64url>.<expiry unix seconds>.<signature base64url>")]
    Malformed,
    /// Not signed with this instance's secret, or altered after signing.
    #[error("the user token's signature is not valid: it was not signed with this instance's secret, or was altered")]
    BadSignature,
    /// Signed correctly, but its expiry has passed.
    #[error("the user token has expired: the operator's backend should sign a new one")]
    Expired,
    /// Signed correctly, but for another userId than the request's.
    #[error("the user token was signed for another userId than the request's")]
    WrongUser,
}

fn mac(secret: &str, user_id: &str, expiry_text: &str) -> Hmac<Sha256> {
    // HMAC takes keys of any length: this cannot fail.
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("HMAC accepts keys of any length");
    mac.update(VERSION.as_bytes());
    mac.update(b"|");
    mac.update(user_id.as_bytes());
    mac.update(b"|");
    mac.update(expiry_text.as_bytes());
    mac
}

/// Unix seconds of a clock reading in milliseconds (0 before the epoch), as tokens count time.
pub fn unix_secs(now_ms: i64) -> u64 {
    now_ms.max(0).div_euclid(1000) as u64
}

/// A token for `user_id`, valid until `expires_at_secs` (unix seconds), signed with `secret`.
pub fn sign(secret: &str, user_id: &str, expires_at_secs: u64) -> String {
    let expiry = expires_at_secs.to_string();
    let signature = mac(secret, user_id, &expiry).finalize().into_bytes();
    format!("{VERSION}.{}.{expiry}.{}", BASE64URL.encode(user_id), BASE64URL.encode(signature))
}

/// Checks that `token` was signed with `secret` for `user_id` and has not expired at `now_secs`.
pub fn verify(secret: &str, token: &str, user_id: &str, now_secs: u64) -> Result<(), TokenError> {
    if token.len() > MAX_TOKEN_LEN {
        return Err(TokenError::Malformed);
    }
    let mut parts = token.split('.');
    let (Some(version), Some(user_part), Some(expiry_text), Some(signature_part), None) =
        (parts.next(), parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(TokenError::Malformed);
    };
    if version != VERSION || expiry_text.is_empty() || expiry_text.len() > 20 {
        return Err(TokenError::Malformed);
    }
    if !expiry_text.bytes().all(|b| b.is_ascii_digit()) {
        return Err(TokenError::Malformed);
    }
    let expires_at_secs: u64 = expiry_text.parse().map_err(|_| TokenError::Malformed)?;
    let signed_user = BASE64URL
        .decode(user_part)
        .ok()
        .and_then(|bytes| String::from_utf8(bytes).ok())
        .ok_or(TokenError::Malformed)?;
    let signature = BASE64URL.decode(signature_part).map_err(|_| TokenError::Malformed)?;
    // `verify_slice` compares in constant time (and refuses a signature of the wrong length).
    mac(secret, &signed_user, expiry_text).verify_slice(&signature).map_err(|_| TokenError::BadSignature)?;
    if signed_user != user_id {
        return Err(TokenError::WrongUser);
    }
    if now_secs >= expires_at_secs {
        return Err(TokenError::Expired);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &str = "uts_test-secret";
    const NOW: u64 = 1_780_000_000;

    fn check(token: &str, user_id: &str, now_secs: u64, expected: Result<(), TokenError>) {
        assert_eq!(verify(SECRET, token, user_id, now_secs), expected, "{token} for {user_id:?} at {now_secs}");
    }

    /// The token with part `index` replaced by `part`.
    fn with_part(token: &str, index: usize, part: &str) -> String {
        let mut parts: Vec<&str> = token.split('.').collect();
        parts[index] = part;
        parts.join(".")
    }

    #[test]
    fn a_fresh_token_for_the_same_user_is_valid() {
        let token = sign(SECRET, "user-42", NOW + 3600);
        assert!(token.starts_with("v1.dXNlci00Mg."), "{token}");
        check(&token, "user-42", NOW, Ok(()));
        // userIds with separators, non-ASCII and padding-length variety all round-trip.
        for user in ["a", "ab", "abc", "alice@example.com", "a|1", "a.b.c", "Zoë 🙂"] {
            check(&sign(SECRET, user, NOW + 1), user, NOW, Ok(()));
        }
    }

    #[test]
    fn the_signature_matches_a_reference_hmac() {
        // Computed with Python's standard library, as the README shows operators:
        // base64.urlsafe_b64encode(hmac.new(b"uts_test-secret", b"v1|user-42|1780003600",
        // hashlib.sha256).digest()).rstrip(b"=").
        assert_eq!(
            sign(SECRET, "user-42", 1_780_003_600),
            "v1.dXNlci00Mg.1780003600.AHeK0QRf4-Utpj3UHkzjeMxxyIMeMAYdeyE7V98UnmI"
        );
    }

    #[test]
    fn padded_base64url_is_accepted() {
        // "a" is 2 base64 characters (2 pads), "ab" 3 (1 pad); a signature is 43 (1 pad).
        for user in ["a", "ab"] {
            let token = sign(SECRET, user, NOW + 10);
            let parts: Vec<&str> = token.split('.').collect();
            let pad = |part: &str| format!("{part}{}", "=".repeat((4 - part.len() % 4) % 4));
            let padded = format!("{}.{}.{}.{}", parts[0], pad(parts[1]), parts[2], pad(parts[3]));
            assert!(padded.contains("=."), "{padded}");
            check(&padded, user, NOW, Ok(()));
        }
    }

    #[test]
    fn the_expiry_second_itself_is_too_late() {
        let token = sign(SECRET, "u", NOW);
        check(&token, "u", NOW - 1, Ok(()));
        check(&token, "u", NOW, Err(TokenError::Expired));
        check(&token, "u", NOW + 1, Err(TokenError::Expired));
    }

    #[test]
    fn another_users_token_is_refused() {
        check(&sign(SECRET, "alice", NOW + 60), "bob", NOW, Err(TokenError::WrongUser));
    }

    #[test]
    fn another_instances_token_is_refused() {
        check(&sign("uts_other", "alice", NOW + 60), "alice", NOW, Err(TokenError::BadSignature));
    }

    #[test]
    fn tampering_with_any_part_is_detected() {
        let token = sign(SECRET, "alice", NOW + 60);
        let signature = token.rsplit('.').next().expect("signature");
        let cases = [
            // Another user named inside a token signed for alice.
            (with_part(&token, 1, &BASE64URL.encode("bob")), "bob", TokenError::BadSignature),
            // A later expiry.
            (with_part(&token, 2, &(NOW + 86_400).to_string()), "alice", TokenError::BadSignature),
            // The same expiry written with a leading zero signs other bytes.
            (with_part(&token, 2, &format!("0{}", NOW + 60)), "alice", TokenError::BadSignature),
            // One signature character changed (the first, so its bits are all significant).
            (
                with_part(
                    &token,
                    3,
                    &format!("{}{}", if signature.starts_with('A') { 'B' } else { 'A' }, &signature[1..]),
                ),
                "alice",
                TokenError::BadSignature,
            ),
            // A truncated signature.
            (with_part(&token, 3, &signature[..20]), "alice", TokenError::BadSignature),
            // Another version.
            (with_part(&token, 0, "v2"), "alice", TokenError::Malformed),
        ];
        for (tampered, user, expected) in cases {
            check(&tampered, user, NOW, Err(expected));
        }
    }

    #[test]
    fn malformed_tokens_are_named_so() {
        let long = "v1.".to_owned() + &"A".repeat(2_000) + ".1.AA";
        for token in [
            "",
            "v1",
            "v1.YQ.1",
            "v1.YQ.1.AA.extra",
            "v1.YQ..AA",
            "v1.YQ.-1.AA",
            "v1.YQ.+1.AA",
            "v1.YQ.1e9.AA",
            "v1.YQ.99999999999999999999999.AA",
            "v1.!!.1.AA",
            "v1.YQ.1.!!",
            "v1.__8.1.AA",
            long.as_str(),
        ] {
            check(token, "a", NOW, Err(TokenError::Malformed));
        }
    }
}
