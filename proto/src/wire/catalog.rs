//! SPEC 7.6 quick-sale catalog: what the partner sets for a session
//! (`PUT /v1/sessions/:id/catalog`) and what its terminals read
//! (`GET /v1/terminals/:tid/catalog`), with its version.
//!
//! Both sides validate with [`PutCatalog::validate`] / [`Catalog::validate`]:
//! the backend before storing, the terminal before keeping what it fetched.
//! The item rules ([`check_item_id`], [`check_item_name`]) also hold for the
//! item lines of a transaction.

use std::collections::HashSet;

use serde::{Deserialize, Serialize};

use crate::money::Money;

/// At most this many items in a session's catalog.
pub const MAX_CATALOG_ITEMS: usize = 200;
/// Longest item id, in characters (`[A-Za-z0-9_-]`).
pub const MAX_ITEM_ID_CHARS: usize = 64;
/// Longest item name or category, in characters (what a terminal line shows).
pub const MAX_ITEM_NAME_CHARS: usize = 40;

/// One item of the catalog, in the order the terminal numbers them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct CatalogItem {
    #[cfg_attr(feature = "openapi", schema(pattern = r"^[A-Za-z0-9_-]{1,64}$"))]
    pub item_id: String,
    #[cfg_attr(
        feature = "openapi",
        schema(
            min_length = 1,
            max_length = 40,
            pattern = r"^[^\u0000-\u001f\u007f-\u009f]*[^\s\u0000-\u001f\u007f-\u009f][^\u0000-\u001f\u007f-\u009f]*$"
        )
    )]
    pub name: String,
    #[cfg_attr(feature = "openapi", schema(schema_with = crate::openapi::positive_money))]
    pub price: Money,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(max_length = 40))]
    pub category: Option<String>,
}

/// The body of `PUT /v1/sessions/:id/catalog`: the whole catalog, replacing
/// the last one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PutCatalog {
    #[cfg_attr(feature = "openapi", schema(max_items = 200))]
    pub items: Vec<CatalogItem>,
}

/// The catalog as stored and served: its items and version (1 for the
/// first `PUT`, one more for each `PUT`; 0 for a session never given one).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Catalog {
    pub version: u64,
    #[serde(default)]
    pub items: Vec<CatalogItem>,
}

impl Catalog {
    /// What a session that never got a catalog serves.
    pub fn empty() -> Catalog {
        Catalog {
            version: 0,
            items: Vec::new(),
        }
    }

    /// Checks every item (see [`PutCatalog::validate`]).
    pub fn validate(&self) -> Result<(), CatalogError> {
        validate_items(&self.items)
    }
}

impl PutCatalog {
    /// Checks every item: ids 1–64 characters of `[A-Za-z0-9_-]` and
    /// unique, names 1–40 characters without control characters, prices
    /// above zero, categories at most 40 characters, at most
    /// [`MAX_CATALOG_ITEMS`] items.
    pub fn validate(&self) -> Result<(), CatalogError> {
        validate_items(&self.items)
    }
}

/// Why a catalog was refused: the field (`items[3].price`) and what is
/// wrong with it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct CatalogError {
    pub field: String,
    pub message: String,
}

/// An item id: 1–64 characters of `[A-Za-z0-9_-]`.
pub fn check_item_id(id: &str) -> Result<(), String> {
    let ok = !id.is_empty()
        && id.len() <= MAX_ITEM_ID_CHARS
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
    if ok {
        Ok(())
    } else {
        Err(format!(
            "1 to {MAX_ITEM_ID_CHARS} characters of A-Z, a-z, 0-9, '_' and '-'"
        ))
    }
}

/// An item name: 1–40 characters, not only spaces, no control characters.
pub fn check_item_name(name: &str) -> Result<(), String> {
    if name.trim().is_empty() || name.chars().count() > MAX_ITEM_NAME_CHARS {
        return Err(format!("1 to {MAX_ITEM_NAME_CHARS} characters"));
    }
    if name.chars().any(char::is_control) {
        return Err("must not contain control characters".into());
    }
    Ok(())
}

fn validate_items(items: &[CatalogItem]) -> Result<(), CatalogError> {
    if items.len() > MAX_CATALOG_ITEMS {
        return Err(CatalogError {
            field: "items".into(),
            message: format!("{} items; at most {MAX_CATALOG_ITEMS}", items.len()),
        });
    }
    let mut seen = HashSet::new();
    for (i, item) in items.iter().enumerate() {
        let refuse = |field: &str, message: String| CatalogError {
            field: format!("items[{i}].{field}"),
            message,
        };
        check_item_id(&item.item_id).map_err(|m| refuse("item_id", m))?;
        if !seen.insert(item.item_id.as_str()) {
            return Err(refuse(
                "item_id",
                format!("{:?} is listed twice", item.item_id),
            ));
        }
        check_item_name(&item.name).map_err(|m| refuse("name", m))?;
        if item.price.is_zero() {
            return Err(refuse("price", "must be above 0.00".into()));
        }
        if let Some(c) = &item.category {
            if c.chars().count() > MAX_ITEM_NAME_CHARS || c.chars().any(char::is_control) {
                return Err(refuse(
                    "category",
                    format!("at most {MAX_ITEM_NAME_CHARS} characters, no control characters"),
                ));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    use crate::wire::test_util::round_trip;

    #[test]
    fn catalog_on_the_wire() {
        let c: Catalog = round_trip(json!({
            "version": 2,
            "items": [
                {"item_id": "beer-33", "name": "Star Lager 33cl", "price": "1500.00", "category": "Drinks"},
                {"item_id": "water", "name": "Water", "price": "300.00"}
            ]
        }));
        assert_eq!(c.items[1].category, None);
        assert!(c.validate().is_ok());
        let put: PutCatalog = round_trip(json!({"items": []}));
        assert!(put.validate().is_ok());
        assert!(serde_json::from_value::<PutCatalog>(json!({})).is_err());
        assert_eq!(
            serde_json::to_value(Catalog::empty()).unwrap(),
            json!({"version": 0, "items": []})
        );
    }

    #[test]
    fn bad_items_are_refused_with_their_field() {
        let item = |id: &str, name: &str, price: &str| json!({"item_id": id, "name": name, "price": price});
        let field = |items: Vec<serde_json::Value>| {
            let p: PutCatalog = serde_json::from_value(json!({ "items": items })).unwrap();
            p.validate().map_err(|e| e.field)
        };
        assert_eq!(field(vec![item("a", "A", "1.00")]), Ok(()));
        assert_eq!(
            field(vec![item("", "A", "1.00")]),
            Err("items[0].item_id".into())
        );
        assert_eq!(
            field(vec![item("a b", "A", "1.00")]),
            Err("items[0].item_id".into())
        );
        assert_eq!(
            field(vec![item(&"x".repeat(65), "A", "1.00")]),
            Err("items[0].item_id".into())
        );
        assert_eq!(field(vec![item(&"x".repeat(64), "A", "1.00")]), Ok(()));
        assert_eq!(
            field(vec![item("a", "A", "1.00"), item("a", "B", "2.00")]),
            Err("items[1].item_id".into())
        );
        assert_eq!(
            field(vec![item("a", "", "1.00")]),
            Err("items[0].name".into())
        );
        assert_eq!(
            field(vec![item("a", "Beer\n", "1.00")]),
            Err("items[0].name".into())
        );
        assert_eq!(
            field(vec![item("a", &"é".repeat(41), "1.00")]),
            Err("items[0].name".into())
        );
        assert_eq!(field(vec![item("a", &"é".repeat(40), "1.00")]), Ok(()));
        assert_eq!(
            field(vec![item("a", "A", "0.00")]),
            Err("items[0].price".into())
        );
        let mut long_cat = item("a", "A", "1.00");
        long_cat["category"] = json!("c".repeat(41));
        assert_eq!(field(vec![long_cat]), Err("items[0].category".into()));
        let many: Vec<_> = (0..=MAX_CATALOG_ITEMS)
            .map(|i| item(&format!("i{i}"), "A", "1.00"))
            .collect();
        assert_eq!(field(many.clone()), Err("items".into()));
        assert_eq!(field(many[..MAX_CATALOG_ITEMS].to_vec()), Ok(()));
        let e = serde_json::from_value::<PutCatalog>(json!({"items": [item("a", "A", "1.5")]}));
        assert!(e.is_err(), "a malformed price is a decoding error");
    }
}
