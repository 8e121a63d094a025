//! "Did you mean ...?": the closest of a few names by edit distance.

/// The candidate closest to `word` (case-insensitive), when it is close
/// enough to be a likely typo: at most 1 edit for words of up to 3
/// characters, 2 up to 6, 3 beyond.
pub(crate) fn closest<'a>(word: &str, candidates: &[&'a str]) -> Option<&'a str> {
    let word: Vec<char> = word.to_lowercase().chars().collect();
    let limit = match word.len() {
        0 => return None,
        1..=3 => 1,
        4..=6 => 2,
        _ => 3,
    };
    candidates
        .iter()
        .map(|c| {
            (
                distance(&word, &c.to_lowercase().chars().collect::<Vec<_>>()),
                *c,
            )
        })
        .filter(|(d, _)| *d <= limit)
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c)
}

/// Optimal string alignment distance: insertions, deletions, substitutions
/// and transpositions of neighbours (`CPOY` is one edit from `COPY`).
fn distance(a: &[char], b: &[char]) -> usize {
    // Long words cannot be typos of short keywords; skip the quadratic work.
    if a.len() > b.len() + 3 {
        return usize::MAX;
    }
    let mut d = vec![vec![0usize; b.len() + 1]; a.len() + 1];
    for (i, row) in d.iter_mut().enumerate() {
        row[0] = i;
    }
    for (j, cell) in d[0].iter_mut().enumerate() {
        *cell = j;
    }
    for i in 1..=a.len() {
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            let mut best = (d[i - 1][j] + 1)
                .min(d[i][j - 1] + 1)
                .min(d[i - 1][j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                best = best.min(d[i - 2][j - 2] + 1);
            }
            d[i][j] = best;
        }
    }
    d[a.len()][b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn typos_find_their_keyword() {
        let kw = ["FROM", "RUN", "COPY", "ADD", "ENTRYPOINT", "EXPOSE"];
        assert_eq!(closest("RUNN", &kw), Some("RUN"));
        assert_eq!(closest("cpoy", &kw), Some("COPY"));
        assert_eq!(closest("ENTRYPIONT", &kw), Some("ENTRYPOINT"));
        assert_eq!(closest("FORM", &kw), Some("FROM"));
        assert_eq!(closest("apt-get", &kw), None);
        assert_eq!(closest("", &kw), None);
        assert_eq!(closest(&"x".repeat(10_000), &kw), None);
    }
}
