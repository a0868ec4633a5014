//! The demo catalog: leaf categories with price ranges and word lists, and the products drawn
//! from them.
//!
//! Each leaf category carries what the behaviour model needs besides the products themselves:
//! a URL slug, search queries people type for it, and a popularity weight. Within a leaf,
//! product popularity follows a Zipf-like law, so that "most viewed" and co-view statistics
//! have a head and a long tail as in a real shop.

use rand::seq::SliceRandom;
use rand::Rng;
use rand_chacha::ChaCha8Rng;
use regard_core::catalog::{Durability, Product};
use serde_json::{Map, Value};

/// The shop's base URL; every page and product URL starts with it.
pub(crate) const SHOP_URL: &str = "https://demo.regard.shop";

/// Currencies the shop displays prices in, with the fixed demo rate per US dollar.
///
/// Product prices are stored in USD; a visitor sees them converted to the currency of their
/// country, as a real multi-currency storefront would show them.
pub const EXCHANGE_RATES: [(&str, f64); 6] =
    [("USD", 1.0), ("EUR", 0.92), ("GBP", 0.79), ("JPY", 150.0), ("CAD", 1.36), ("AUD", 1.52)];

/// Index of a currency in [`EXCHANGE_RATES`].
pub(crate) type CurrencyIndex = usize;

/// Which extra attribute a leaf's products carry besides their brand.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ExtraAttribute {
    /// No further attribute.
    None,
    /// `roast`: light, medium or dark (coffee).
    Roast,
    /// `firmness` (mattresses).
    Firmness,
    /// `color` (shoes, headphones).
    Color,
    /// `size` in weight or count (pet food, baby care).
    Size,
}

/// A leaf category of the demo shop and everything needed to fill and browse it.
#[derive(Debug)]
pub(crate) struct Leaf {
    /// Path from the root, e.g. `["Home", "Bedroom", "Mattresses"]`.
    pub path: &'static [&'static str],
    /// URL slug of the category page.
    pub slug: &'static str,
    /// Prefix of the merchant SKU (`sku` property), distinct from the product id.
    pub sku_prefix: &'static str,
    /// Relative share of the catalog and of browsing attention.
    pub weight: f64,
    /// Lowest and highest price in USD.
    pub price_usd: (f64, f64),
    /// Whether products are used up or kept.
    pub durability: Durability,
    /// Brand names.
    pub brands: &'static [&'static str],
    /// Adjectives placed between brand and noun.
    pub adjectives: &'static [&'static str],
    /// Product nouns.
    pub nouns: &'static [&'static str],
    /// What people type into the search box when they look for this category.
    pub queries: &'static [&'static str],
    /// The extra attribute its products carry.
    pub extra: ExtraAttribute,
}

impl Leaf {
    /// The leaf category name, as `properties.category` carries it.
    pub(crate) fn name(&self) -> &'static str {
        self.path.last().copied().unwrap_or("")
    }
}

/// Indexes into [`LEAVES`] that other modules refer to by name.
pub(crate) mod leaf {
    /// Coffee beans, the archetypal monthly reorder.
    pub const COFFEE: usize = 0;
    /// Tea.
    pub const TEA: usize = 1;
    /// Coffee makers, a durable that pairs with coffee.
    pub const COFFEE_MAKERS: usize = 2;
    /// Running shoes.
    pub const RUNNING_SHOES: usize = 4;
    /// Hiking gear.
    pub const HIKING: usize = 6;
    /// Mattresses, the archetypal "do not advertise it after the purchase" durable.
    pub const MATTRESSES: usize = 8;
    /// Living-room furniture.
    pub const FURNITURE: usize = 10;
    /// Headphones.
    pub const HEADPHONES: usize = 13;
    /// Smart-home devices.
    pub const SMART_HOME: usize = 14;
    /// Skin care.
    pub const SKIN_CARE: usize = 15;
    /// Vitamins.
    pub const VITAMINS: usize = 16;
    /// Dog food.
    pub const DOG_FOOD: usize = 18;
}

/// The demo shop's leaf categories. Order matters: [`leaf`] indexes into it.
pub(crate) static LEAVES: [Leaf; 23] = [
    Leaf {
        path: &["Coffee & Tea", "Coffee Beans"],
        slug: "coffee-tea/coffee-beans",
        sku_prefix: "COF",
        weight: 8.0,
        price_usd: (8.0, 25.0),
        durability: Durability::Consumable,
        brands: &["Altura", "Black Ridge", "Kona Crest", "Little Owl", "Bergmann & Sons", "Copper Kettle"],
        adjectives: &["Dark Roast", "Medium Roast", "Light Roast", "Organic", "Fair Trade", "Small Batch"],
        nouns: &[
            "Espresso Blend",
            "House Blend",
            "Breakfast Blend",
            "Ethiopia Yirgacheffe",
            "Colombia Huila",
            "Guatemala Antigua",
            "Sumatra Mandheling",
            "Kenya AA",
            "Brazil Santos",
            "Decaf Colombia",
        ],
        queries: &["coffee beans", "espresso", "dark roast", "decaf coffee", "ethiopian coffee", "whole bean coffee"],
        extra: ExtraAttribute::Roast,
    },
    Leaf {
        path: &["Coffee & Tea", "Tea"],
        slug: "coffee-tea/tea",
        sku_prefix: "TEA",
        weight: 4.0,
        price_usd: (5.0, 20.0),
        durability: Durability::Consumable,
        brands: &["Jade Leaf", "Harrow & Hill", "Yamamoto-en", "Chai Wallah", "Meadowsweet"],
        adjectives: &["Organic", "Loose Leaf", "First Flush", "Ceremonial", "Herbal", "Cold Brew"],
        nouns: &["Sencha", "Earl Grey", "Darjeeling", "Matcha", "Rooibos", "Chamomile", "Masala Chai", "Oolong"],
        queries: &["green tea", "matcha", "earl grey", "herbal tea", "chai"],
        extra: ExtraAttribute::None,
    },
    Leaf {
        path: &["Kitchen", "Coffee Makers"],
        slug: "kitchen/coffee-makers",
        sku_prefix: "CMK",
        weight: 5.0,
        price_usd: (30.0, 450.0),
        durability: Durability::Durable,
        brands: &["Brewmaster", "Kessler", "Aeroline", "Moka Bros", "Stahlwerk"],
        adjectives: &["Classic", "Compact", "Programmable", "Stainless", "Dual Boiler", "Glass"],
        nouns: &["Espresso Machine", "Pour-Over Set", "French Press", "Drip Coffee Maker", "Burr Grinder", "Moka Pot"],
        queries: &["espresso machine", "coffee grinder", "french press", "coffee maker"],
        extra: ExtraAttribute::None,
    },
    Leaf {
        path: &["Kitchen", "Cookware"],
        slug: "kitchen/cookware",
        sku_prefix: "CKW",
        weight: 5.0,
        price_usd: (15.0, 250.0),
        durability: Durability::Unknown,
        brands: &["Ironhearth", "Maison Cuivre", "Nordic Pan", "Kessler", "Terracotta Co."],
        adjectives: &["Cast Iron", "Nonstick", "Copper", "Enameled", "Tri-Ply", "Carbon Steel"],
        nouns: &["Skillet", "Dutch Oven", "Saucepan", "Wok", "Stock Pot", "Roasting Pan", "Chef's Knife"],
        queries: &["cast iron skillet", "dutch oven", "nonstick pan", "chef knife"],
        extra: ExtraAttribute::None,
    },
    Leaf {
        path: &["Sports", "Running Shoes"],
        slug: "sports/running-shoes",
        sku_prefix: "RUN",
        weight: 6.0,
        price_usd: (60.0, 180.0),
        durability: Durability::Unknown,
        brands: &["Stride", "Velocita", "Northpeak", "Aerofoot", "Kinetic"],
        adjectives: &["Trail", "Road", "Lightweight", "Cushioned", "Waterproof", "Racing"],
        nouns: &["Runner", "Trainer", "Racer", "Glide", "Tempo", "Ultra"],
        queries: &["running shoes", "trail running shoes", "marathon shoes", "waterproof trainers"],
        extra: ExtraAttribute::Color,
    },
    Leaf {
        path: &["Sports", "Fitness"],
        slug: "sports/fitness",
        sku_prefix: "FIT",
        weight: 4.0,
        price_usd: (10.0, 120.0),
        durability: Durability::Unknown,
        brands: &["Corefit", "Zenflow", "Ironbell", "Pulse"],
        adjectives: &["Non-Slip", "Adjustable", "Eco", "Foldable", "Pro"],
        nouns: &["Yoga Mat", "Dumbbell Set", "Resistance Bands", "Kettlebell", "Foam Roller", "Jump Rope"],
        queries: &["yoga mat", "dumbbells", "kettlebell", "resistance bands"],
        extra: ExtraAttribute::Color,
    },
    Leaf {
        path: &["Outdoor", "Hiking"],
        slug: "outdoor/hiking",
        sku_prefix: "HIK",
        weight: 5.0,
        price_usd: (20.0, 300.0),
        durability: Durability::Unknown,
        brands: &["Northpeak", "Fjellgear", "Summit & Co.", "Alpenglow", "Trailhead"],
        adjectives: &["Ultralight", "Waterproof", "Insulated", "Packable", "Merino"],
        nouns: &["Daypack", "Hiking Boots", "Rain Jacket", "Trekking Poles", "Fleece", "Hydration Pack"],
        queries: &["hiking boots", "rain jacket", "backpack", "trekking poles"],
        extra: ExtraAttribute::Color,
    },
    Leaf {
        path: &["Outdoor", "Camping"],
        slug: "outdoor/camping",
        sku_prefix: "CMP",
        weight: 4.0,
        price_usd: (25.0, 400.0),
        durability: Durability::Unknown,
        brands: &["Campfire", "Fjellgear", "Basecamp", "Wildside"],
        adjectives: &["2-Person", "4-Season", "Ultralight", "Family", "Compact"],
        nouns: &["Tent", "Sleeping Bag", "Camp Stove", "Headlamp", "Camping Chair", "Cooler"],
        queries: &["tent", "sleeping bag", "camping stove", "headlamp"],
        extra: ExtraAttribute::None,
    },
    Leaf {
        path: &["Home", "Bedroom", "Mattresses"],
        slug: "home/bedroom/mattresses",
        sku_prefix: "MAT",
        weight: 3.0,
        price_usd: (400.0, 1500.0),
        durability: Durability::Durable,
        brands: &["Dreamwell", "Slumberline", "Nordbett", "Cloud Nine", "Restora"],
        adjectives: &["Memory Foam", "Hybrid", "Pocket Spring", "Organic Latex", "Cooling Gel"],
        nouns: &["Mattress Queen", "Mattress King", "Mattress Double", "Mattress Twin"],
        queries: &["mattress", "memory foam mattress", "hybrid mattress", "king mattress"],
        extra: ExtraAttribute::Firmness,
    },
    Leaf {
        path: &["Home", "Bedroom", "Bedding"],
        slug: "home/bedroom/bedding",
        sku_prefix: "BED",
        weight: 4.0,
        price_usd: (25.0, 200.0),
        durability: Durability::Unknown,
        brands: &["Linen House", "Slumberline", "Cotton & Co.", "Nordbett"],
        adjectives: &["Percale", "Sateen", "Linen", "Bamboo", "Down"],
        nouns: &["Sheet Set", "Duvet Cover", "Pillow", "Mattress Topper", "Comforter", "Throw Blanket"],
        queries: &["sheets", "pillow", "duvet cover", "mattress topper"],
        extra: ExtraAttribute::None,
    },
    Leaf {
        path: &["Home", "Living Room", "Furniture"],
        slug: "home/living-room/furniture",
        sku_prefix: "FUR",
        weight: 4.0,
        price_usd: (120.0, 1400.0),
        durability: Durability::Durable,
        brands: &["Hygge Haus", "Oak & Iron", "Modulo", "Casa Verde"],
        adjectives: &["Mid-Century", "Scandinavian", "Solid Oak", "Velvet", "Modular"],
        nouns: &["Sofa", "Armchair", "Coffee Table", "Bookshelf", "TV Stand", "Side Table"],
        queries: &["sofa", "coffee table", "bookshelf", "armchair"],
        extra: ExtraAttribute::Color,
    },
    Leaf {
        path: &["Books", "Fiction"],
        slug: "books/fiction",
        sku_prefix: "BKF",
        weight: 6.0,
        price_usd: (8.0, 30.0),
        durability: Durability::Unknown,
        brands: &["Harbor Press", "Quill Books", "Lantern House", "Greywood"],
        adjectives: &["The Silent", "The Last", "A Distant", "The Paper", "The Winter", "The Hidden"],
        nouns: &["Garden", "Lighthouse", "Orchard", "Cartographer", "River", "Archive", "Station"],
        queries: &["novel", "mystery book", "fiction bestseller", "paperback"],
        extra: ExtraAttribute::None,
    },
    Leaf {
        path: &["Books", "Cookbooks"],
        slug: "books/cookbooks",
        sku_prefix: "BKC",
        weight: 3.0,
        price_usd: (15.0, 45.0),
        durability: Durability::Unknown,
        brands: &["Harbor Press", "Saltwater Kitchen", "Quill Books"],
        adjectives: &["Everyday", "Plant-Based", "Simple", "Weeknight", "Essential"],
        nouns: &["Baking", "Italian Cooking", "Japanese Home Cooking", "Sourdough", "One-Pot Meals", "Grilling"],
        queries: &["cookbook", "baking book", "vegetarian cookbook"],
        extra: ExtraAttribute::None,
    },
    Leaf {
        path: &["Electronics", "Headphones"],
        slug: "electronics/headphones",
        sku_prefix: "HPH",
        weight: 4.0,
        price_usd: (30.0, 400.0),
        durability: Durability::Durable,
        brands: &["Sonora", "Klangwerk", "Echo Lane", "Resonant"],
        adjectives: &["Wireless", "Noise-Cancelling", "Over-Ear", "Sport", "Studio"],
        nouns: &["Headphones", "Earbuds", "Headset", "Earphones"],
        queries: &["wireless headphones", "noise cancelling headphones", "earbuds"],
        extra: ExtraAttribute::Color,
    },
    Leaf {
        path: &["Electronics", "Smart Home"],
        slug: "electronics/smart-home",
        sku_prefix: "SMH",
        weight: 4.0,
        price_usd: (25.0, 300.0),
        durability: Durability::Durable,
        brands: &["Hearthlink", "Nestor", "Lumos", "Brightnode"],
        adjectives: &["Smart", "Wi-Fi", "Voice-Controlled", "Mini", "Outdoor"],
        nouns: &["Speaker", "Thermostat", "Light Bulb Kit", "Security Camera", "Plug", "Doorbell"],
        queries: &["smart speaker", "thermostat", "smart bulb", "security camera"],
        extra: ExtraAttribute::None,
    },
    Leaf {
        path: &["Beauty", "Skin Care"],
        slug: "beauty/skin-care",
        sku_prefix: "SKN",
        weight: 5.0,
        price_usd: (10.0, 80.0),
        durability: Durability::Consumable,
        brands: &["Lumière", "Dewdrop", "Botanica", "Kōgen", "Pure Theory"],
        adjectives: &["Hydrating", "Vitamin C", "Gentle", "Retinol", "Fragrance-Free", "Overnight"],
        nouns: &["Face Serum", "Moisturizer", "Cleanser", "Eye Cream", "Sunscreen SPF 50", "Toner"],
        queries: &["moisturizer", "vitamin c serum", "sunscreen", "retinol"],
        extra: ExtraAttribute::Size,
    },
    Leaf {
        path: &["Health & Wellness", "Vitamins"],
        slug: "health-wellness/vitamins",
        sku_prefix: "VIT",
        weight: 5.0,
        price_usd: (8.0, 45.0),
        durability: Durability::Consumable,
        brands: &["Vitalis", "Nature's Path", "Optima", "Greenleaf Labs"],
        adjectives: &["Daily", "Vegan", "High-Strength", "Chewable", "Slow-Release"],
        nouns: &["Vitamin D3", "Multivitamin", "Omega-3", "Magnesium", "Vitamin B12", "Probiotic", "Iron"],
        queries: &["vitamin d", "multivitamin", "omega 3", "magnesium"],
        extra: ExtraAttribute::Size,
    },
    Leaf {
        path: &["Baby", "Care"],
        slug: "baby/care",
        sku_prefix: "BAB",
        weight: 4.0,
        price_usd: (5.0, 40.0),
        durability: Durability::Unknown,
        brands: &["Little Sprout", "Bebé Bloom", "Cuddle Co."],
        adjectives: &["Sensitive", "Organic", "Unscented", "Gentle", "Overnight"],
        nouns: &["Diapers", "Baby Wipes", "Diaper Cream", "Baby Wash", "Bottle Set", "Teether"],
        queries: &["diapers", "baby wipes", "baby shampoo", "bottles"],
        extra: ExtraAttribute::Size,
    },
    Leaf {
        path: &["Pet Supplies", "Dog Food"],
        slug: "pet-supplies/dog-food",
        sku_prefix: "DOG",
        weight: 4.0,
        price_usd: (25.0, 80.0),
        durability: Durability::Consumable,
        brands: &["Happy Paws", "Wolfsberg", "Barkley's", "Prairie Pup"],
        adjectives: &["Grain-Free", "Senior", "Puppy", "Salmon & Rice", "Lamb & Rice", "Adult"],
        nouns: &["Dry Dog Food", "Wet Dog Food", "Kibble", "Dog Food"],
        queries: &["dog food", "grain free dog food", "puppy food"],
        extra: ExtraAttribute::Size,
    },
    Leaf {
        path: &["Pet Supplies", "Cat Food"],
        slug: "pet-supplies/cat-food",
        sku_prefix: "CAT",
        weight: 3.0,
        price_usd: (15.0, 60.0),
        durability: Durability::Consumable,
        brands: &["Whisker & Co.", "Happy Paws", "Felinia"],
        adjectives: &["Indoor", "Kitten", "Salmon", "Chicken", "Grain-Free"],
        nouns: &["Dry Cat Food", "Wet Cat Food", "Cat Food"],
        queries: &["cat food", "kitten food", "wet cat food"],
        extra: ExtraAttribute::Size,
    },
    Leaf {
        path: &["Toys", "Building Sets"],
        slug: "toys/building-sets",
        sku_prefix: "TOY",
        weight: 4.0,
        price_usd: (10.0, 150.0),
        durability: Durability::Unknown,
        brands: &["Brickwise", "Tinker Town", "Blocko"],
        adjectives: &["Space", "Castle", "City", "Dinosaur", "Robot", "Pirate"],
        nouns: &["Building Set", "Starter Kit", "Deluxe Set", "Adventure Pack"],
        queries: &["building blocks", "lego", "kids toys", "robot kit"],
        extra: ExtraAttribute::None,
    },
    Leaf {
        path: &["Garden", "Tools"],
        slug: "garden/tools",
        sku_prefix: "GRT",
        weight: 4.0,
        price_usd: (10.0, 120.0),
        durability: Durability::Unknown,
        brands: &["Greenthumb", "Spade & Fork", "Gartenwerk"],
        adjectives: &["Ergonomic", "Stainless", "Cordless", "Heavy-Duty", "Telescopic"],
        nouns: &["Pruning Shears", "Hand Trowel", "Hedge Trimmer", "Garden Hose", "Rake", "Watering Can"],
        queries: &["pruning shears", "garden hose", "garden tools"],
        extra: ExtraAttribute::None,
    },
    Leaf {
        path: &["Garden", "Plants & Seeds"],
        slug: "garden/plants-seeds",
        sku_prefix: "PLT",
        weight: 3.0,
        price_usd: (3.0, 40.0),
        durability: Durability::Unknown,
        brands: &["Seedling & Co.", "Greenthumb", "Wildflower Farm"],
        adjectives: &["Heirloom", "Organic", "Dwarf", "Perennial", "Fast-Growing"],
        nouns: &["Tomato Seeds", "Herb Garden Kit", "Lavender", "Succulent Set", "Basil Seeds", "Rose Bush"],
        queries: &["seeds", "herb garden", "succulents", "tomato plants"],
        extra: ExtraAttribute::None,
    },
];

/// A product as the behaviour model needs it: where it sits and what it costs in each currency.
#[derive(Debug)]
pub(crate) struct ShopItem {
    /// Index of its leaf in [`LEAVES`].
    pub leaf: usize,
    /// Merchant SKU sent as the `sku` property.
    pub sku: String,
    /// Brand, used in searches for it.
    pub brand: &'static str,
    /// Price per currency of [`EXCHANGE_RATES`], rounded as a storefront shows it.
    pub prices: [f64; EXCHANGE_RATES.len()],
    /// The roast of a coffee, for the `preferred_roast` trait.
    pub roast: Option<&'static str>,
}

/// The generated catalog plus the indexes the behaviour model samples from.
#[derive(Debug)]
pub(crate) struct ShopCatalog {
    /// The products in id order, as the public output carries them.
    pub products: Vec<Product>,
    /// Parallel to `products`.
    pub items: Vec<ShopItem>,
    /// Per leaf: its products, most popular first.
    pub by_leaf: Vec<Vec<usize>>,
    /// Per leaf: cumulative popularity weights parallel to `by_leaf`, for sampling.
    pub cumulative_popularity: Vec<Vec<f64>>,
}

impl ShopCatalog {
    /// Draws a product of a leaf, favouring the popular head; `None` for an empty leaf.
    pub(crate) fn pick(&self, leaf: usize, rng: &mut ChaCha8Rng) -> Option<usize> {
        let products = self.by_leaf.get(leaf)?;
        let cumulative = self.cumulative_popularity.get(leaf)?;
        let total = *cumulative.last()?;
        let target = rng.gen::<f64>() * total;
        let position = cumulative.partition_point(|&c| c <= target).min(products.len() - 1);
        products.get(position).copied()
    }

    /// Draws an in-stock product of a leaf, trying a few times before giving up.
    pub(crate) fn pick_in_stock(&self, leaf: usize, rng: &mut ChaCha8Rng) -> Option<usize> {
        for _ in 0..8 {
            let product = self.pick(leaf, rng)?;
            if self.products.get(product).is_some_and(|p| p.in_stock) {
                return Some(product);
            }
        }
        self.by_leaf.get(leaf)?.iter().copied().find(|&p| self.products.get(p).is_some_and(|p| p.in_stock))
    }
}

/// Rounds a price the way shops print them: `x.99` below 100, `xx9.99`-style above.
fn storefront_price(raw: f64, decimals: bool) -> f64 {
    if !decimals {
        // Yen prices are whole numbers, rounded to tens.
        return ((raw / 10.0).round() * 10.0).max(10.0);
    }
    if raw < 100.0 {
        (raw.floor() + 0.99).max(0.99)
    } else {
        ((raw / 10.0).round() * 10.0 - 0.01).max(0.99)
    }
}

/// Rounds to cents, so that JSON prints `12.5` rather than `12.499999999999998`.
pub(crate) fn cents(value: f64) -> f64 {
    (value * 100.0).round() / 100.0
}

/// Splits `n_products` across leaves in proportion to their weights, largest remainders first.
fn allocate(n_products: usize) -> Vec<usize> {
    let total_weight: f64 = LEAVES.iter().map(|l| l.weight).sum();
    let exact: Vec<f64> = LEAVES.iter().map(|l| n_products as f64 * l.weight / total_weight).collect();
    let mut counts: Vec<usize> = exact.iter().map(|x| x.floor() as usize).collect();
    let mut remainders: Vec<(usize, f64)> = exact.iter().enumerate().map(|(i, x)| (i, x - x.floor())).collect();
    // Sorting by remainder, then by index, keeps the split deterministic on ties.
    remainders.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
    let missing = n_products.saturating_sub(counts.iter().sum());
    for (index, _) in remainders.into_iter().take(missing) {
        counts[index] += 1;
    }
    counts
}

/// Generates the catalog of `n_products` products from the catalog's own random stream.
pub(crate) fn generate_catalog(n_products: usize, rng: &mut ChaCha8Rng) -> ShopCatalog {
    // First draw every product per leaf, then shuffle so that ids do not group by category.
    let mut drafts: Vec<(Product, ShopItem)> = Vec::with_capacity(n_products);
    let mut taken_names = std::collections::BTreeSet::new();
    for (leaf_index, count) in allocate(n_products).into_iter().enumerate() {
        let leaf = &LEAVES[leaf_index];
        for _ in 0..count {
            drafts.push(draft_product(leaf_index, leaf, &mut taken_names, rng));
        }
    }
    drafts.shuffle(rng);

    let mut products = Vec::with_capacity(drafts.len());
    let mut items = Vec::with_capacity(drafts.len());
    let mut by_leaf = vec![Vec::new(); LEAVES.len()];
    for (index, (mut product, mut item)) in drafts.into_iter().enumerate() {
        let number = index + 1;
        product.id = format!("sku-{number:04}");
        product.url = Some(format!("{SHOP_URL}/p/{}", product.id));
        product.image = Some(format!("{SHOP_URL}/img/{}.jpg", product.id));
        item.sku = format!("{}-{number:04}", LEAVES[item.leaf].sku_prefix);
        by_leaf[item.leaf].push(index);
        products.push(product);
        items.push(item);
    }

    // Popularity: a random order within each leaf, then Zipf-like weights down that order.
    let mut cumulative_popularity = Vec::with_capacity(LEAVES.len());
    for leaf_products in &mut by_leaf {
        leaf_products.shuffle(rng);
        let mut running = 0.0;
        let cumulative: Vec<f64> = (0..leaf_products.len())
            .map(|rank| {
                running += 1.0 / ((rank + 1) as f64).powf(0.9);
                running
            })
            .collect();
        cumulative_popularity.push(cumulative);
    }
    ShopCatalog { products, items, by_leaf, cumulative_popularity }
}

/// Draws one product of a leaf with a name not used before.
fn draft_product(
    leaf_index: usize,
    leaf: &Leaf,
    taken_names: &mut std::collections::BTreeSet<String>,
    rng: &mut ChaCha8Rng,
) -> (Product, ShopItem) {
    let mut brand = leaf.brands[0];
    let mut adjective = leaf.adjectives[0];
    let mut name = String::new();
    for attempt in 0.. {
        brand = leaf.brands[rng.gen_range(0..leaf.brands.len())];
        adjective = leaf.adjectives[rng.gen_range(0..leaf.adjectives.len())];
        let noun = leaf.nouns[rng.gen_range(0..leaf.nouns.len())];
        name = if leaf.sku_prefix == "BKF" {
            // Novels read "The Silent Orchard" by a publisher, not "Harbor Press The Silent Orchard".
            format!("{adjective} {noun}")
        } else {
            format!("{brand} {adjective} {noun}")
        };
        if attempt >= 12 {
            // The word lists are exhausted for this leaf; a edition number keeps names unique.
            name = format!("{name} No. {}", attempt - 10);
        }
        if taken_names.insert(name.clone()) {
            break;
        }
    }

    let (low, high) = leaf.price_usd;
    // Log-uniform prices put more products at the cheap end, as real assortments do.
    let raw_usd = (low.ln() + rng.gen::<f64>() * (high.ln() - low.ln())).exp();
    let price_usd = storefront_price(raw_usd, true).clamp(low.min(high) - 1.0, high);
    let mut prices = [0.0; EXCHANGE_RATES.len()];
    for (slot, (code, rate)) in prices.iter_mut().zip(EXCHANGE_RATES) {
        *slot = if code == "USD" { price_usd } else { storefront_price(price_usd * rate, code != "JPY") };
    }

    let mut attributes = Map::new();
    attributes.insert("brand".into(), Value::from(brand));
    let mut roast = None;
    match leaf.extra {
        ExtraAttribute::None => {}
        ExtraAttribute::Roast => {
            let chosen = match adjective {
                "Dark Roast" => "dark",
                "Medium Roast" => "medium",
                "Light Roast" => "light",
                _ => ["light", "medium", "dark"][rng.gen_range(0..3)],
            };
            roast = Some(chosen);
            attributes.insert("roast".into(), Value::from(chosen));
        }
        ExtraAttribute::Firmness => {
            let firmness = ["soft", "medium", "medium-firm", "firm"][rng.gen_range(0..4)];
            attributes.insert("firmness".into(), Value::from(firmness));
        }
        ExtraAttribute::Color => {
            let color = ["black", "white", "grey", "navy", "red", "green", "sand"][rng.gen_range(0..7)];
            attributes.insert("color".into(), Value::from(color));
        }
        ExtraAttribute::Size => {
            let size = match leaf.sku_prefix {
                "DOG" => ["2 kg", "6 kg", "12 kg"][rng.gen_range(0..3)],
                "CAT" => ["1.5 kg", "4 kg", "12 x 85 g"][rng.gen_range(0..3)],
                "VIT" => ["60 capsules", "90 capsules", "120 tablets"][rng.gen_range(0..3)],
                "SKN" => ["30 ml", "50 ml", "100 ml"][rng.gen_range(0..3)],
                _ => ["small", "medium", "large"][rng.gen_range(0..3)],
            };
            attributes.insert("size".into(), Value::from(size));
        }
    }

    let product = Product {
        id: String::new(),
        name,
        category_path: leaf.path.iter().map(|part| (*part).to_owned()).collect(),
        price: Some(price_usd),
        currency: Some("USD".into()),
        url: None,
        image: None,
        in_stock: rng.gen::<f64>() >= 0.05,
        durability: leaf.durability,
        attributes,
    };
    let item = ShopItem { leaf: leaf_index, sku: String::new(), brand, prices, roast };
    (product, item)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    fn catalog(n_products: usize) -> ShopCatalog {
        generate_catalog(n_products, &mut ChaCha8Rng::seed_from_u64(7))
    }

    #[test]
    fn named_leaf_indexes_point_at_the_intended_categories() {
        let cases = [
            (leaf::COFFEE, "Coffee Beans"),
            (leaf::TEA, "Tea"),
            (leaf::COFFEE_MAKERS, "Coffee Makers"),
            (leaf::RUNNING_SHOES, "Running Shoes"),
            (leaf::HIKING, "Hiking"),
            (leaf::MATTRESSES, "Mattresses"),
            (leaf::FURNITURE, "Furniture"),
            (leaf::HEADPHONES, "Headphones"),
            (leaf::SMART_HOME, "Smart Home"),
            (leaf::SKIN_CARE, "Skin Care"),
            (leaf::VITAMINS, "Vitamins"),
            (leaf::DOG_FOOD, "Dog Food"),
        ];
        for (index, name) in cases {
            assert_eq!(LEAVES[index].name(), name);
        }
    }

    #[test]
    fn products_get_sequential_ids_unique_names_and_prices_in_their_range() {
        let catalog = catalog(600);
        assert_eq!(catalog.products.len(), 600);
        assert_eq!(catalog.products[0].id, "sku-0001");
        assert_eq!(catalog.products[599].id, "sku-0600");
        let names: std::collections::BTreeSet<_> = catalog.products.iter().map(|p| &p.name).collect();
        assert_eq!(names.len(), 600);
        for (product, item) in catalog.products.iter().zip(&catalog.items) {
            let (low, high) = LEAVES[item.leaf].price_usd;
            let price = product.price.unwrap_or(-1.0);
            assert!(price >= low - 1.0 && price <= high, "{} costs {price}", product.name);
            assert!(product.validate().is_ok());
        }
    }

    #[test]
    fn durability_follows_the_category() {
        let catalog = catalog(600);
        for (product, item) in catalog.products.iter().zip(&catalog.items) {
            let expected = match item.leaf {
                leaf::COFFEE | leaf::VITAMINS | leaf::DOG_FOOD | leaf::SKIN_CARE => Durability::Consumable,
                leaf::MATTRESSES | leaf::FURNITURE | leaf::COFFEE_MAKERS | leaf::HEADPHONES => Durability::Durable,
                _ => continue,
            };
            assert_eq!(product.durability, expected, "{}", product.name);
        }
    }

    #[test]
    fn about_one_product_in_twenty_is_out_of_stock() {
        let catalog = catalog(2000);
        let out_of_stock = catalog.products.iter().filter(|p| !p.in_stock).count();
        assert!((40..=170).contains(&out_of_stock), "{out_of_stock} of 2000 out of stock");
    }

    #[test]
    fn popular_products_are_picked_more_often() {
        let catalog = catalog(600);
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        let head = catalog.by_leaf[leaf::COFFEE][0];
        let tail = *catalog.by_leaf[leaf::COFFEE].last().unwrap_or(&head);
        let picks: Vec<_> = (0..5000).filter_map(|_| catalog.pick(leaf::COFFEE, &mut rng)).collect();
        let count = |p: usize| picks.iter().filter(|&&x| x == p).count();
        assert!(count(head) > 3 * count(tail));
    }

    #[test]
    fn tiny_catalogs_still_work() {
        let catalog = catalog(3);
        assert_eq!(catalog.products.len(), 3);
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        let empty_leaf = catalog.by_leaf.iter().position(Vec::is_empty).unwrap_or(0);
        assert_eq!(catalog.pick(empty_leaf, &mut rng), None);
    }
}
