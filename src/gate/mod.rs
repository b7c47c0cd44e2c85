//! Release gates over reports: a baseline of known deviations
//! (`baseline`), the difference between two runs (`diff`) and the merging
//! of a sharded run (`merge`). Pure functions over [`crate::report::Report`].

pub mod baseline;
pub mod diff;
pub mod merge;

use crate::report::Verdict;

/// How bad a verdict is, for "did it get worse": a pass and a
/// not-applicable rank alike (neither is a deviation; a move between them is
/// a change worth reporting, not a regression), then non-strict, then fail
/// and error alike (an error is the harness's trouble, not a better or worse
/// target).
pub fn rank(v: Verdict) -> u8 {
    match v {
        Verdict::Pass | Verdict::NotApplicable => 0,
        Verdict::NonStrict => 1,
        Verdict::Fail | Verdict::Error => 2,
    }
}

/// Whether moving from `old` to `new` is a regression.
pub fn worse(old: Verdict, new: Verdict) -> bool {
    rank(new) > rank(old)
}

/// Whether `pattern` matches the case id `id`: `*` stands for any run of
/// characters within one `/`-separated segment, `**` for any run across
/// segments; everything else matches itself.
pub fn matches(pattern: &str, id: &str) -> bool {
    let p: Vec<char> = pattern.chars().collect();
    let s: Vec<char> = id.chars().collect();
    glob(&p, &s)
}

/// Whether `pattern` holds a wildcard.
pub fn is_pattern(pattern: &str) -> bool {
    pattern.contains('*')
}

// Backtracking over chars, one level of recursion per star; ids and
// patterns are short, so even a pattern of many stars stays cheap.
fn glob(p: &[char], s: &[char]) -> bool {
    match p.first() {
        None => s.is_empty(),
        Some('*') => {
            let across = p.get(1) == Some(&'*');
            let rest = if across { &p[2..] } else { &p[1..] };
            for i in 0..=s.len() {
                if glob(rest, &s[i..]) {
                    return true;
                }
                if i < s.len() && !across && s[i] == '/' {
                    return false;
                }
            }
            false
        }
        Some(c) => s.first() == Some(c) && glob(&p[1..], &s[1..]),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn star_stays_in_one_segment_double_star_crosses() {
        let id = "matrix/in/t-RO1/p-ON1/cn-only/srv";
        assert!(matches(id, id));
        assert!(matches("matrix/in/t-RO1/*/cn-only/*", id));
        assert!(matches("matrix/in/t-RO1/p-O*/cn-only/srv", id));
        assert!(!matches("matrix/in/*/cn-only/*", id));
        assert!(matches("matrix/in/**/cn-only/*", id));
        assert!(matches("matrix/**", id));
        assert!(matches("**", id));
        assert!(!matches("matrix/in/t-RO1/*", id));
        assert!(!matches("matrix/in/t-RO1/p-ON1/cn-only/sr", id));
        assert!(!matches("matrix/out/**", id));
        assert!(matches("config/*", "config/NN0"));
        assert!(!matches("config/*", "config/NN0/x"));
    }

    #[test]
    fn ranks_order_regressions() {
        use Verdict::*;
        assert!(worse(Pass, NonStrict));
        assert!(worse(NonStrict, Fail));
        assert!(worse(NotApplicable, Fail));
        assert!(worse(Pass, Error));
        assert!(!worse(Pass, NotApplicable));
        assert!(!worse(NotApplicable, Pass));
        assert!(!worse(Fail, Error));
        assert!(!worse(Error, Fail));
        assert!(!worse(Fail, Pass));
    }
}
