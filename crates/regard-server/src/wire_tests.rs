use super::*;

fn envelope(kind: Option<MessageKind>) -> MessageEnvelope<'static> {
    MessageEnvelope { kind, received_at_ms: 1_000_000, batch_sent_at_ms: None, batch_context: None, encode: None }
}

/// Parses `raw` as a message for the route `kind` and returns the error's (code, field).
fn check_error(kind: Option<MessageKind>, raw: &str, expected: (&str, Option<&str>)) {
    let error = parse_message(raw, envelope(kind)).expect_err(raw);
    assert_eq!((error.code.as_str(), error.field.as_deref()), expected, "{raw}: {}", error.message);
}

#[test]
fn bad_messages_are_refused_naming_the_field() {
    use MessageKind::*;
    check_error(Some(Track), r#"{"anonymousId":"a"}"#, ("missing_field", Some("event")));
    check_error(Some(Track), r#"{"event":"x"}"#, ("missing_field", Some("userId")));
    check_error(Some(Track), r#"{"event":"x","userId":{"a":1}}"#, ("invalid_field", Some("userId")));
    check_error(Some(Track), r#"{"event":"x","userId":"u","timestamp":"soon"}"#, ("invalid_field", Some("timestamp")));
    check_error(Some(Track), r#"{"event":"x","userId":"u","properties":[1]}"#, ("invalid_field", Some("properties")));
    check_error(Some(Track), r#"{"event":7,"userId":"u"}"#, ("invalid_field", Some("event")));
    check_error(
        Some(Track),
        r#"{"event":"x","userId":"u","context":{"page":{"url":3}}}"#,
        ("invalid_field", Some("context.page.url")),
    );
    check_error(
        Some(Track),
        r#"{"event":"x","userId":"u","context":{"consent":{"categoryPreferences":{"Ads":"yes"}}}}"#,
        ("invalid_field", Some("context.consent.categoryPreferences.Ads")),
    );
    check_error(Some(Track), r#"{"type":"page","event":"x","userId":"u"}"#, ("invalid_field", Some("type")));
    check_error(None, r#"{"event":"x","userId":"u"}"#, ("missing_field", Some("type")));
    check_error(None, r#"{"type":"purchase","userId":"u"}"#, ("invalid_field", Some("type")));
    check_error(Some(Alias), r#"{"userId":"u"}"#, ("missing_field", Some("previousId")));
    check_error(Some(Group), r#"{"userId":"u"}"#, ("missing_field", Some("groupId")));
    check_error(Some(Track), r#"{"event":"x","userId":"u""#, ("invalid_json", None));
}

#[test]
fn an_oversized_message_is_refused() {
    let raw = format!(r#"{{"event":"x","userId":"u","properties":{{"pad":"{}"}}}}"#, "a".repeat(MAX_MESSAGE_BYTES));
    let error = parse_message(&raw, envelope(Some(MessageKind::Track))).expect_err("too large");
    assert_eq!(error.code, ErrorCode::MessageTooLarge);
}

#[test]
fn a_track_message_parses_with_its_context() {
    let raw = r#"{"type":"track","event":"Product Viewed","userId":42,"anonymousId":"a-1","messageId":"m-1",
        "timestamp":"1970-01-01T00:16:30Z","sentAt":"1970-01-01T00:16:40Z",
        "properties":{"product_id":"p1"},
        "context":{"ip":"192.0.2.1","locale":"de-DE","timezone":"Europe/Berlin","userAgent":"UA",
                   "page":{"url":"https://shop/p1","path":"/p1","referrer":"https://www.google.com/"},
                   "campaign":{"source":"newsletter","medium":"email","name":"spring"},
                   "consent":{"categoryPreferences":{"Analytics":true,"Advertising":false}}},
        "writeKey":"wk"}"#;
    let parsed = parse_message(raw, envelope(None)).expect("valid");
    let m = parsed.message;
    assert_eq!(parsed.write_key.as_deref(), Some("wk"));
    assert_eq!(m.kind, MessageKind::Track);
    assert_eq!(m.user_id.as_deref(), Some("42"));
    assert_eq!(m.name.as_deref(), Some("Product Viewed"));
    // Device clock 10 s ahead of the server's: corrected to received - (sent - ts) = 1000 - 10 s.
    assert_eq!(m.timestamp_ms, 1_000_000 - 10_000);
    assert_eq!(m.context.referrer.as_deref(), Some("https://www.google.com/"));
    assert_eq!(m.context.campaign.and_then(|c| c.name).as_deref(), Some("spring"));
    assert_eq!(m.context.consent_categories.len(), 2);
}

#[test]
fn a_batch_item_borrows_the_batch_sent_at_and_context() {
    let body = r#"{"batch":[{"type":"page","anonymousId":"a","timestamp":"1970-01-01T00:16:30Z"}],
                   "sentAt":"1970-01-01T00:16:30Z","context":{"locale":"fr-FR"}}"#;
    let batch = parse_batch(body).expect("batch");
    let env = MessageEnvelope {
        kind: None,
        received_at_ms: 2_000_000,
        batch_sent_at_ms: batch.sent_at_ms,
        batch_context: batch.context,
        encode: None,
    };
    let m = parse_message(batch.messages[0].get(), env).expect("item").message;
    assert_eq!(m.timestamp_ms, 2_000_000);
    assert_eq!(m.context.locale.as_deref(), Some("fr-FR"));
}

#[test]
fn page_properties_stand_in_for_a_missing_page_context() {
    let raw = r#"{"anonymousId":"a","name":"Home","properties":{"url":"https://shop/","path":"/"}}"#;
    let m = parse_message(raw, envelope(Some(MessageKind::Page))).expect("page").message;
    assert_eq!(m.context.page_path.as_deref(), Some("/"));
    assert_eq!(m.name.as_deref(), Some("Home"));
}

#[test]
fn products_parse_from_loose_json() {
    let object = serde_json::json!({"id": "sku-1", "name": "Mattress", "category": "Home > Bedroom", "price": "499.00",
        "currency": "eur", "in_stock": "false", "durable": true, "brand": "Sleepy"});
    let product = product_from_json(object.as_object().cloned().expect("object")).expect("valid");
    assert_eq!(product.category_path, ["Home", "Bedroom"]);
    assert_eq!(product.price, Some(499.0));
    assert_eq!(product.currency.as_deref(), Some("EUR"));
    assert!(!product.in_stock);
    assert_eq!(product.durability, Durability::Durable);
    assert_eq!(product.attributes.get("brand"), Some(&serde_json::json!("Sleepy")));
    let bad = serde_json::json!({"id": "x", "name": "y", "price": "cheap"});
    assert_eq!(
        product_from_json(bad.as_object().cloned().expect("object")).expect_err("bad").field.as_deref(),
        Some("price")
    );
}
