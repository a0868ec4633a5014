//! `regard slots list|show|create|update|delete|decide`, and the demo store's slots.
//!
//! Like `regard segments`, these work on a data directory directly (stop the server first, or
//! use the HTTP API on a running one): the checks are the same code the API runs.

use std::io::Read;
use std::path::Path;
use std::sync::Arc;

use anyhow::{bail, Context};
use clap::Args;
use regard_content::decide::{Person, RequestContext};
use regard_server::content::{ContentService, EXCHANGE_RATES, STORES};
use regard_store::Engine;

use crate::config::StoreArgs;
use crate::serve::{open_content, open_engine};

fn read_file(file: &Path) -> anyhow::Result<String> {
    let mut text = String::new();
    if file.as_os_str() == "-" {
        std::io::stdin().read_to_string(&mut text).context("reading standard input")?;
    } else {
        text = std::fs::read_to_string(file).with_context(|| format!("reading {}", file.display()))?;
    }
    Ok(text)
}

fn now_ms() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or(0)
}

fn open(store: &StoreArgs) -> anyhow::Result<(Arc<Engine>, Arc<ContentService>)> {
    let engine = open_engine(store.common.engine_config(&store.data)?)?;
    let content = open_content(&store.data, engine.config().live.policy.clone())?;
    Ok((engine, content))
}

/// Checks and saves one slot; `update` saves a new version of an existing one.
fn save(engine: &Engine, content: &ContentService, text: &str, update: bool) -> anyhow::Result<(String, u32)> {
    let definition = {
        let live = engine.state();
        content.check(text, &live).map_err(|e| anyhow::anyhow!("{e}"))?
    };
    let stored = content.save(&definition, text, Some(update), now_ms()).map_err(|e| anyhow::anyhow!("{e}"))?;
    Ok((stored.definition.id.clone(), stored.version))
}

/// `regard slots create FILE` / `regard slots update FILE`.
pub fn create(file: &Path, store: &StoreArgs, update: bool) -> anyhow::Result<()> {
    let text = read_file(file)?;
    let (engine, content) = open(store)?;
    let result = save(&engine, &content, &text, update).with_context(|| format!("{}", file.display()));
    content.store.shutdown();
    engine.shutdown();
    let (id, version) = result?;
    println!("saved slot {id} version {version}");
    Ok(())
}

/// `regard slots list`.
pub fn list(store: &StoreArgs) -> anyhow::Result<()> {
    let content = open_content(&store.data, store.common.policy()?)?;
    let snapshot = content.snapshot();
    println!("{:<24} {:>3}  {:<12} {:>8}  name", "id", "v", "kind", "variants");
    for slot in snapshot.slots() {
        let kind = serde_json::to_value(slot.definition.kind).unwrap_or_default();
        println!(
            "{:<24} {:>3}  {:<12} {:>8}  {}",
            slot.definition.id,
            slot.version,
            kind.as_str().unwrap_or(""),
            slot.definition.variants.len(),
            slot.definition.name
        );
    }
    content.store.shutdown();
    Ok(())
}

/// `regard slots show ID`: the stored JSON.
pub fn show(id: &str, store: &StoreArgs) -> anyhow::Result<()> {
    let content = open_content(&store.data, store.common.policy()?)?;
    let snapshot = content.snapshot();
    let Some(slot) = snapshot.slot(id) else {
        content.store.shutdown();
        bail!("no slot {id:?}");
    };
    let value: serde_json::Value = serde_json::from_str(&slot.json)?;
    println!("{}", serde_json::to_string_pretty(&value)?);
    content.store.shutdown();
    Ok(())
}

/// `regard slots delete ID`.
pub fn delete(id: &str, store: &StoreArgs) -> anyhow::Result<()> {
    let content = open_content(&store.data, store.common.policy()?)?;
    let deleted = content.delete(id, now_ms()).map_err(|e| anyhow::anyhow!("{e}"))?;
    content.store.shutdown();
    if !deleted {
        bail!("no slot {id:?}");
    }
    println!("deleted slot {id}");
    Ok(())
}

/// Who and in what context `regard slots decide` decides for.
#[derive(Debug, Clone, Args)]
pub struct DecideArgs {
    /// Slots to decide (repeat the flag, or separate with commas).
    #[arg(long = "slot", value_delimiter = ',', required = true)]
    pub slots: Vec<String>,
    /// The person, by userId, anonymousId or internal id.
    #[arg(long)]
    pub profile: Option<String>,
    /// `utm_campaign` of the visit.
    #[arg(long)]
    pub utm_campaign: Option<String>,
    /// `utm_source` of the visit.
    #[arg(long)]
    pub utm_source: Option<String>,
    /// Country of the visit (ISO alpha-2).
    #[arg(long)]
    pub country: Option<String>,
    /// Region of the visit (ISO 3166-2, `US-CA`).
    #[arg(long)]
    pub region: Option<String>,
    /// Browser locale.
    #[arg(long)]
    pub locale: Option<String>,
    /// `mobile`, `tablet` or `desktop`.
    #[arg(long)]
    pub device: Option<String>,
    #[command(flatten)]
    pub store: StoreArgs,
}

/// `regard slots decide --slot S --profile ID`: what this person sees, with the level and the
/// explanation (a preview: nothing is logged).
pub fn decide(args: &DecideArgs) -> anyhow::Result<()> {
    let (engine, content) = open(&args.store)?;
    let snapshot = content.snapshot();
    let mut request = RequestContext {
        country: args.country.as_deref().and_then(regard_server::content::country_code),
        region: args.region.as_deref().map(str::to_ascii_uppercase),
        locale: args.locale.clone(),
        device: args.device.clone(),
        ..RequestContext::default()
    };
    request.campaign.name = args.utm_campaign.clone();
    request.campaign.source = args.utm_source.clone();
    let now = now_ms();
    let outcome: anyhow::Result<Vec<serde_json::Value>> = (|| {
        let live = engine.state();
        let profile = match &args.profile {
            Some(key) => Some(live.find_profile(key).with_context(|| format!("no profile is known by {key:?}"))?),
            None => None,
        };
        let recently_viewed = profile.map(|p| regard_server::views::recently_viewed(&live, p)).unwrap_or_default();
        let person = Person::read(&live, profile.map(|p| p.id), &request, snapshot.settings(), now)
            .with_recently_viewed(recently_viewed);
        args.slots
            .iter()
            .map(|slot| {
                let decision = snapshot.decide(slot, &person, now)?;
                Ok(serde_json::json!({
                    "slot": decision.slot,
                    "variant": decision.variant,
                    "level": decision.level,
                    "explanation": decision.explanation,
                    "content": decision.content,
                    "skipped": decision.skipped,
                }))
            })
            .collect()
    })();
    content.store.shutdown();
    engine.shutdown();
    for decision in outcome? {
        println!("{}", serde_json::to_string_pretty(&decision)?);
    }
    Ok(())
}

/// The demo store's slots: one per targeting kind (segment and exclusion, new vs returning,
/// campaign, country, region, trait, device, time of day, recently viewed, nearest store,
/// currency) and a recommendation row.
pub const DEMO_SLOTS: [&str; 5] = [
    include_str!("../demo/slots/home_hero.json"),
    include_str!("../demo/slots/home_banner.json"),
    include_str!("../demo/slots/product_row.json"),
    include_str!("../demo/slots/email_header.json"),
    include_str!("../demo/slots/recommended_row.json"),
];

/// The demo's exchange rates (ECB-style, per 1 USD).
pub const DEMO_EXCHANGE_RATES: &str = include_str!("../demo/exchange-rates.json");
/// The demo's physical stores.
pub const DEMO_STORES: &str = include_str!("../demo/stores.json");

/// Installs the demo's settings and the slots it does not have yet; returns how many slots.
pub fn install_demo(engine: &Engine, content: &ContentService) -> anyhow::Result<usize> {
    let at = now_ms();
    if content.setting(EXCHANGE_RATES).map_err(|e| anyhow::anyhow!("{e}"))?.is_none() {
        content.put_setting(EXCHANGE_RATES, DEMO_EXCHANGE_RATES.trim(), at).map_err(|e| anyhow::anyhow!("{e}"))?;
    }
    if content.setting(STORES).map_err(|e| anyhow::anyhow!("{e}"))?.is_none() {
        content.put_setting(STORES, DEMO_STORES.trim(), at).map_err(|e| anyhow::anyhow!("{e}"))?;
    }
    let mut installed = 0;
    for json in DEMO_SLOTS {
        let id = serde_json::from_str::<serde_json::Value>(json)?
            .get("id")
            .and_then(|v| v.as_str())
            .map(str::to_owned)
            .context("a demo slot without an id")?;
        if content.snapshot().slot(&id).is_none() {
            save(engine, content, json, false).with_context(|| format!("demo slot {id}"))?;
            installed += 1;
        }
    }
    Ok(installed)
}

#[cfg(test)]
mod tests {
    use super::*;
    use regard_content::decide::ContentSnapshot;
    use regard_content::slot::SlotDefinition;
    use regard_content::template::{ContentSettings, LintPolicy};
    use regard_core::segments::builtin::BUILTIN_SEGMENTS;
    use regard_core::segments::PolicyConfig;

    #[test]
    fn demo_slots_pass_every_check_and_cover_every_targeting_kind() {
        let settings = ContentSettings {
            exchange_rates: Some(serde_json::from_str(DEMO_EXCHANGE_RATES).unwrap()),
            stores: serde_json::from_str(DEMO_STORES).unwrap(),
        };
        settings.validate().unwrap();
        let builtin: Vec<String> = BUILTIN_SEGMENTS
            .iter()
            .map(|json| serde_json::from_str::<serde_json::Value>(json).unwrap()["id"].as_str().unwrap().to_owned())
            .collect();
        let mut all_json = String::new();
        for json in DEMO_SLOTS {
            let slot = SlotDefinition::parse_str(json, &PolicyConfig::default()).unwrap();
            ContentSnapshot::check_slot(&slot, &settings, &LintPolicy::default()).unwrap();
            for (path, segment) in slot.segments() {
                assert!(builtin.iter().any(|id| id == segment.as_str()), "{}: {path}: {}", slot.id, segment.as_str());
            }
            all_json.push_str(json);
        }
        for needle in [
            "\"segment\"",
            "\"exclude\"",
            "\"visitor\": \"returning\"",
            "\"visitor\": \"new\"",
            "\"field\": \"country\"",
            "\"field\": \"region\"",
            "\"field\": \"utm_campaign\"",
            "\"field\": \"referrer_domain\"",
            "\"field\": \"device\"",
            "\"trait\"",
            "\"local_hours\"",
            "recently_viewed",
            "nearest_store",
            "money(",
            "\"recommend\"",
        ] {
            assert!(all_json.contains(needle), "no demo slot shows {needle}");
        }
    }
}
