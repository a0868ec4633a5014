//! Interning of repeated strings (event names, trait keys) so that per-profile state holds
//! four-byte ids instead of heap strings.

use rustc_hash::FxHashMap;

/// An interned string's id; valid only with the [`SymbolTable`] that issued it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Symbol(pub u32);

/// Maps strings to dense ids and back. Strings are never removed: the set of event names and
/// trait keys of a shop is small and stable.
#[derive(Debug, Default, Clone)]
pub struct SymbolTable {
    ids: FxHashMap<Box<str>, Symbol>,
    names: Vec<Box<str>>,
}

impl SymbolTable {
    /// The id of `name`, issuing a new one on first sight.
    pub fn intern(&mut self, name: &str) -> Symbol {
        if let Some(&symbol) = self.ids.get(name) {
            return symbol;
        }
        let symbol = Symbol(self.names.len() as u32);
        self.names.push(name.into());
        self.ids.insert(name.into(), symbol);
        symbol
    }

    /// The id of `name` if it was ever interned.
    pub fn get(&self, name: &str) -> Option<Symbol> {
        self.ids.get(name).copied()
    }

    /// The string behind `symbol`.
    pub fn name(&self, symbol: Symbol) -> &str {
        self.names.get(symbol.0 as usize).map(|s| &**s).unwrap_or("")
    }

    /// How many distinct strings are interned.
    pub fn len(&self) -> usize {
        self.names.len()
    }

    /// Whether nothing is interned yet.
    pub fn is_empty(&self) -> bool {
        self.names.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn interning_is_stable_and_reversible() {
        let mut table = SymbolTable::default();
        let a = table.intern("Product Viewed");
        let b = table.intern("Order Completed");
        assert_eq!(table.intern("Product Viewed"), a);
        assert_ne!(a, b);
        assert_eq!(table.name(b), "Order Completed");
        assert_eq!(table.get("nope"), None);
    }
}
