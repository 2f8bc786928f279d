//! Pagination: the [`PageQuery`] query and the [`Page`] of a list.

use serde::{Deserialize, Serialize};

/// Pagination query `?page=0&size=20`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PageQuery {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub page: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size: Option<u32>,
}

/// One page of a list (note the camelCase of the totals).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Page<T> {
    pub content: Vec<T>,
    pub page: u32,
    pub size: u32,
    #[serde(rename = "totalElements")]
    pub total_elements: u64,
    #[serde(rename = "totalPages")]
    pub total_pages: u32,
}

impl<T> Page<T> {
    /// Cuts page `page` of `size` items out of `all` (size 0 is treated as 1).
    pub fn slice(all: Vec<T>, page: u32, size: u32) -> Page<T> {
        let size = size.max(1);
        let total = all.len() as u64;
        let total_pages = total.div_ceil(u64::from(size)) as u32;
        let start = (u64::from(page) * u64::from(size)).min(total) as usize;
        let content: Vec<T> = all.into_iter().skip(start).take(size as usize).collect();
        Page {
            content,
            page,
            size,
            total_elements: total,
            total_pages,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    use crate::wire::test_util::round_trip;

    #[test]
    fn pages_use_camel_case_totals() {
        let p: Page<u32> = round_trip(json!({
            "content": [1, 2], "page": 0, "size": 2, "totalElements": 5, "totalPages": 3
        }));
        assert_eq!(p, Page::slice(vec![1, 2, 3, 4, 5], 0, 2));
        let last = Page::slice(vec![1, 2, 3, 4, 5], 2, 2);
        assert_eq!(last.content, vec![5]);
        let beyond = Page::slice(vec![1, 2, 3], 9, 2);
        assert!(beyond.content.is_empty());
        assert_eq!(beyond.total_pages, 2);
        let empty = Page::<u32>::slice(vec![], 0, 20);
        assert_eq!((empty.total_elements, empty.total_pages), (0, 0));
        let q: PageQuery = serde_json::from_value(json!({"page": 3})).unwrap();
        assert_eq!(q.size, None);
    }
}
