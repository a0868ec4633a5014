//! The built-in segments from the personalization guide, ready on every store: new and
//! returning visitors, product viewers, cart abandoners, purchasers, repeat purchasers, lapsed
//! customers, and two fed by the predictive models (customers at risk of churning, and those
//! whose predicted reorder is due); those two stay empty until the models are served and hold
//! only people who gave `profiling` consent. Interest segments demand at least two signals on two days, never one
//! glance.

/// The built-in definitions as JSON, in the form an operator would save them.
pub const BUILTIN_SEGMENTS: [&str; 9] = [
    r#"{"id": "new-visitors", "name": "New visitors", "purpose": "personalization",
        "description": "People on their first visit.",
        "condition": {"visitor": "new"}}"#,
    r#"{"id": "returning-visitors", "name": "Returning visitors", "purpose": "personalization",
        "description": "People who visited before this visit.",
        "condition": {"visitor": "returning"}}"#,
    r#"{"id": "product-viewers", "name": "Product viewers", "purpose": "personalization",
        "description": "Viewed products at least twice, on two different days, in the last 30 days.",
        "condition": {"event": {"name": "Product Viewed", "count": {"gte": 2}, "min_distinct_days": 2, "within_days": 30}}}"#,
    r#"{"id": "cart-abandoners", "name": "Cart abandoners", "purpose": "email",
        "description": "Added to cart in the last 7 days and have not completed an order since.",
        "condition": {"sequence": {"first": {"name": "Product Added", "within_days": 7}, "then_never": {"name": "Order Completed"}}}}"#,
    r#"{"id": "purchasers", "name": "Purchasers", "purpose": "personalization",
        "description": "Completed at least one order.",
        "condition": {"purchases": {"count": {"gte": 1}}}}"#,
    r#"{"id": "repeat-purchasers", "name": "Repeat purchasers", "purpose": "personalization",
        "description": "Completed at least two orders.",
        "condition": {"purchases": {"count": {"gte": 2}}}}"#,
    r#"{"id": "lapsed-customers", "name": "Lapsed customers", "purpose": "email",
        "description": "Bought before, but not in the last 90 days.",
        "condition": {"purchases": {"count": {"gte": 1}, "last_before_days": 90}}}"#,
    r#"{"id": "at-risk-customers", "name": "Customers at risk", "purpose": "personalization",
        "description": "Repeat customers the BG/NBD model gives a churn risk above 70%.",
        "condition": {"score": {"name": "churn_risk", "op": "gt", "value": 0.7}}}"#,
    r#"{"id": "reorder-due", "name": "Reorder due", "purpose": "personalization",
        "description": "Customers with a regular cadence whose reminder date has come, up to two weeks past their predicted order date.",
        "condition": {"all": [{"score": {"name": "days_until_reorder_reminder", "op": "lte", "value": 0}},
                              {"score": {"name": "days_until_next_order", "op": "gte", "value": -14}}]}}"#,
];

#[cfg(test)]
mod tests {
    use super::*;
    use crate::segments::{check_definition, PolicyConfig};

    #[test]
    fn every_builtin_segment_passes_the_policy_check() {
        for json in BUILTIN_SEGMENTS {
            if let Err(error) = check_definition(json, &PolicyConfig::default()) {
                panic!("{json}\n{error}");
            }
        }
    }
}
