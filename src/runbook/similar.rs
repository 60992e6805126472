//! "Did you mean …?": the closest known name to a mistyped one.

/// The candidate closest to `typed` by edit distance (case-insensitive), if it is close enough to be a plausible
/// typo: at most a third of the longer name's length, and never more than 4 edits. Ties go to the first candidate.
pub(super) fn closest<'a>(typed: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    let typed = typed.trim().to_lowercase();
    let mut best: Option<(usize, &str)> = None;
    for candidate in candidates {
        let distance = edit_distance(&typed, &candidate.to_lowercase());
        let longest = typed.chars().count().max(candidate.chars().count());
        let limit = (longest / 3).clamp(1, 4);
        if distance <= limit && best.is_none_or(|(d, _)| distance < d) {
            best = Some((distance, candidate));
        }
    }
    best.map(|(_, c)| c)
}

/// Levenshtein distance over characters.
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut previous: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut current = Vec::with_capacity(b.len() + 1);
        current.push(i + 1);
        for (j, cb) in b.iter().enumerate() {
            let substitution = previous[j] + usize::from(ca != *cb);
            current.push(substitution.min(previous[j + 1] + 1).min(current[j] + 1));
        }
        previous = current;
    }
    previous[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn edit_distance_counts_insertions_deletions_and_substitutions() {
        assert_eq!(edit_distance("kitten", "sitting"), 3);
        assert_eq!(edit_distance("", "abc"), 3);
        assert_eq!(edit_distance("same", "same"), 0);
    }

    #[test]
    fn closest_finds_typos_but_not_unrelated_names() {
        let names = ["orders-by-customer", "orders-by-status", "order-by-id"];
        assert_eq!(closest("orders-by-custmer", names), Some("orders-by-customer"));
        assert_eq!(closest("Orders-By-Status", names), Some("orders-by-status"));
        assert_eq!(closest("order-by-ids", names), Some("order-by-id"));
        assert_eq!(closest("refunds", names), None);
        assert_eq!(closest("x", ["y"]), Some("y"), "one edit is always allowed");
    }
}
