//! Content similarity: how alike two items are by what the catalogue says, for items nobody
//! has interacted with yet.
//!
//! Three signals, each in [0, 1]: the shared part of the category paths (`Kitchen > Coffee
//! Makers > French Presses` and `Kitchen > Coffee Makers > Grinders` share two of three
//! levels), the Jaccard overlap of the attributes (`brand=Bodum`, `colour=black`), and the
//! price band (1 for the same price, falling to 0 at a factor of 4 apart). They are weighted
//! 0.6, 0.25 and 0.15 over the signals both items have.

use crate::catalog::ItemCatalog;
use crate::interactions::{ItemIdx, ItemMeta};
use crate::itemknn::{by_score_then_item, Neighbour};

const CATEGORY_WEIGHT: f32 = 0.6;
const ATTRIBUTE_WEIGHT: f32 = 0.25;
const PRICE_WEIGHT: f32 = 0.15;

/// The content similarity of two items, in [0, 1]; 0 when the catalogue says nothing of either.
pub fn content_similarity(a: &ItemMeta, b: &ItemMeta) -> f32 {
    let mut score = 0.0;
    let mut weight = 0.0;
    if !a.category_path.is_empty() && !b.category_path.is_empty() {
        let shared =
            a.category_path.iter().zip(&b.category_path).take_while(|(x, y)| x.eq_ignore_ascii_case(y)).count();
        score += CATEGORY_WEIGHT * shared as f32 / a.category_path.len().max(b.category_path.len()) as f32;
        weight += CATEGORY_WEIGHT;
    }
    if !a.attributes.is_empty() && !b.attributes.is_empty() {
        let shared = a
            .attributes
            .iter()
            .filter(|(ka, va)| b.attributes.iter().any(|(kb, vb)| ka == kb && va.eq_ignore_ascii_case(vb)))
            .count();
        let union = a.attributes.len() + b.attributes.len() - shared;
        score += ATTRIBUTE_WEIGHT * shared as f32 / union as f32;
        weight += ATTRIBUTE_WEIGHT;
    }
    if let (Some(pa), Some(pb)) = (a.price, b.price) {
        if pa > 0.0 && pb > 0.0 {
            let distance = ((pa / pb).ln().abs() / 4.0_f64.ln()).min(1.0) as f32;
            score += PRICE_WEIGHT * (1.0 - distance);
            weight += PRICE_WEIGHT;
        }
    }
    if weight == 0.0 {
        0.0
    } else {
        score / weight
    }
}

/// The `k` items most similar by content to `item`, searching the items of its top-level
/// category (all items when it has none). Support counts are zero: these are not co-occurrences.
pub(crate) fn content_neighbours(catalog: &ItemCatalog, item: ItemIdx, k: usize) -> Vec<Neighbour> {
    let meta = catalog.meta(item);
    let top_level = meta.category_path.first();
    let mut list: Vec<Neighbour> = Vec::new();
    let mut consider = |other: ItemIdx| {
        if other == item {
            return;
        }
        let score = content_similarity(meta, catalog.meta(other));
        if score > 0.0 {
            list.push(Neighbour { item: other, score, support: 0, bought_together: 0 });
        }
    };
    match top_level {
        Some(root) => {
            for (category, members) in catalog.category_items.iter().enumerate() {
                let path = catalog.categories.key(category as u32);
                let category_root = path.split(" > ").next().unwrap_or(path);
                if category_root.eq_ignore_ascii_case(root) {
                    members.iter().copied().for_each(&mut consider);
                }
            }
        }
        None => (0..catalog.len() as u32).map(ItemIdx).for_each(&mut consider),
    }
    if list.len() > k && k > 0 {
        list.select_nth_unstable_by(k - 1, by_score_then_item);
        list.truncate(k);
    }
    list.sort_unstable_by(by_score_then_item);
    list.truncate(k);
    list
}

#[cfg(test)]
mod tests {
    use super::*;

    fn item(path: &[&str], brand: &str, price: f64) -> ItemMeta {
        ItemMeta {
            category_path: path.iter().map(|p| (*p).to_owned()).collect(),
            attributes: vec![("brand".into(), brand.into())],
            price: Some(price),
            ..ItemMeta::default()
        }
    }

    #[test]
    fn category_attributes_and_price_band_add_up() {
        let press = item(&["Kitchen", "Coffee Makers", "French Presses"], "Bodum", 40.0);
        let same = item(&["Kitchen", "Coffee Makers", "French Presses"], "Bodum", 40.0);
        let grinder = item(&["Kitchen", "Coffee Makers", "Grinders"], "Bodum", 160.0);
        let tent = item(&["Outdoor", "Tents"], "Vango", 400.0);
        assert!((content_similarity(&press, &same) - 1.0).abs() < 1e-6);
        // Two of three levels, same brand, prices a factor 4 apart.
        let expected = 0.6 * 2.0 / 3.0 + 0.25;
        assert!((content_similarity(&press, &grinder) - expected).abs() < 1e-6);
        assert_eq!(content_similarity(&press, &tent), 0.0);
        assert_eq!(content_similarity(&ItemMeta::default(), &press), 0.0);
    }
}
