//! A capture search for the simplest anchored regexes, the shape of most `match` rules and
//! line formats: `^Failed password for (?:invalid user )?(?P<user>\S+) from (?P<ip>\S+) port (?P<port>\d+)`.
//!
//! What it takes (anything else, and the regex crate searches): after `^`, a sequence of
//! literals, single characters of a class, greedy `C+` and `C*` of a class `C`, greedy
//! options of these (at most [`MAX_OPTIONS`], not one inside another), captures around any
//! part, and `^` and `$` (of the text; `^` only first, `$` not in an option); `C{n}` is `n`
//! single characters. And each `C+` or `C*` must be followed by what cannot start with a
//! character of `C`: no character of `C` can start what comes after it (looking through
//! options and `C*`, which may be skipped, and out of an option to what follows it).
//!
//! Why it finds what the regex crate finds: the crate's leftmost-first search gives the
//! first success, in priority order, of a backtracking search (greedy repetitions try the
//! longest first; a greedy option tries to take its text first). Under the rule above a
//! repetition has one useful length, its longest: a shorter one stops before a character
//! of `C`, where what follows cannot start (it would consume a character that cannot
//! start it), nor match empty (that needs the end of the text, `$`, which is not there; or
//! matches empty everywhere, the longest length included, which was tried first). So
//! only options branch (what is inside one matches in one way or not at all), and the
//! search tries each combination in the crate's order, taken before skipped: at most
//! 2^[`MAX_OPTIONS`] passes over the text, linear still. A capture in a skipped option
//! took no part in the match. A property test holds it to
//! the regex crate on random regexes of this shape and random texts.
//!
//! Why it exists: the regex crate finds captures of a regex that is not one-pass (the
//! optional `invalid user ` above: `invalid` is also a user) with a backtracking search
//! after a DFA pass, about 4,700 instructions on an sshd line; this takes a few hundred.

use regex_syntax::hir::{Class, Hir, HirKind, Look};

/// Options per regex taken: each doubles the passes a failing text may cost.
pub const MAX_OPTIONS: usize = 3;

/// A set of characters: ASCII as a bitmap, the rest as sorted inclusive ranges.
#[derive(Clone, Debug, Default)]
struct Set {
    ascii: [u64; 2],
    wide: Box<[(char, char)]>,
}

impl Set {
    fn of_ranges(ranges: impl IntoIterator<Item = (u32, u32)>) -> Set {
        let mut set = Set::default();
        let mut wide = Vec::new();
        for (lo, hi) in ranges {
            for c in lo..=hi.min(0x7f) {
                set.ascii[c as usize / 64] |= 1 << (c % 64);
            }
            if hi >= 0x80 {
                let lo = char::from_u32(lo.max(0x80)).expect("a char");
                let hi = char::from_u32(hi).expect("a char");
                wide.push((lo, hi));
            }
        }
        set.wide = wide.into();
        set
    }

    /// The class of a regex; `None` for a byte class that reaches past ASCII (which a
    /// regex on text does not have).
    fn of_class(c: &Class) -> Option<Set> {
        match c {
            Class::Unicode(u) => Some(Set::of_ranges(
                u.ranges()
                    .iter()
                    .map(|r| (r.start() as u32, r.end() as u32)),
            )),
            Class::Bytes(b) => {
                let ranges: Vec<(u32, u32)> = b
                    .ranges()
                    .iter()
                    .map(|r| (r.start() as u32, r.end() as u32))
                    .collect();
                if ranges.iter().any(|&(_, hi)| hi >= 0x80) {
                    return None;
                }
                Some(Set::of_ranges(ranges))
            }
        }
    }

    fn of_char(c: char) -> Set {
        Set::of_ranges([(c as u32, c as u32)])
    }

    #[inline]
    fn has(&self, c: char) -> bool {
        let c32 = c as u32;
        if c32 < 0x80 {
            return self.ascii[c32 as usize / 64] >> (c32 % 64) & 1 == 1;
        }
        self.wide
            .binary_search_by(|&(lo, hi)| {
                if hi < c {
                    std::cmp::Ordering::Less
                } else if lo > c {
                    std::cmp::Ordering::Greater
                } else {
                    std::cmp::Ordering::Equal
                }
            })
            .is_ok()
    }

    /// The length of the character at `pos` of `s` when it is in the set.
    #[inline]
    fn step(&self, s: &str, pos: usize) -> Option<usize> {
        let b = *s.as_bytes().get(pos)?;
        if b < 0x80 {
            return (self.ascii[b as usize / 64] >> (b % 64) & 1 == 1).then_some(1);
        }
        let c = s[pos..].chars().next().expect("a char boundary");
        self.has(c).then(|| c.len_utf8())
    }

    fn add(&mut self, other: &Set) {
        self.ascii[0] |= other.ascii[0];
        self.ascii[1] |= other.ascii[1];
        let mut wide = self.wide.to_vec();
        wide.extend_from_slice(&other.wide);
        self.wide = wide.into();
    }

    fn meets(&self, other: &Set) -> bool {
        (self.ascii[0] & other.ascii[0]) | (self.ascii[1] & other.ascii[1]) != 0
            || self
                .wide
                .iter()
                .any(|&(lo, hi)| other.wide.iter().any(|&(olo, ohi)| lo <= ohi && olo <= hi))
    }
}

#[derive(Clone, Debug)]
enum Op {
    Lit(Box<[u8]>),
    One(Set),
    /// Greedy `C*` (`min1` false) or `C+`, always at its longest.
    Rep {
        set: Set,
        min1: bool,
    },
    /// A greedy option: its ops, and the capture slots among them (cleared when skipped).
    Opt(Box<[Op]>, Box<[usize]>),
    /// Slot of a capture's start (even) or end (odd).
    Save(usize),
    Start,
    End,
}

/// A compiled regex of the shape the module doc describes.
#[derive(Clone, Debug)]
pub struct Seq {
    ops: Box<[Op]>,
    slots: usize,
}

impl Seq {
    /// The search for `src` (a regex as the regex crate reads it by default), with `groups`
    /// capture groups (the whole match's included); `None` when it is not of the shape.
    pub fn new(src: &str, groups: usize) -> Option<Seq> {
        let hir = regex_syntax::parse(src).ok()?;
        let mut ops = Vec::new();
        flatten(&hir, &mut ops, true)?;
        // Anchored at the start, and only there: a `^` further on would hold only after
        // what matched empty, which the argument above does not cover.
        if !matches!(ops.first(), Some(Op::Start))
            || ops[1..].iter().any(|o| matches!(o, Op::Start))
        {
            return None;
        }
        if ops.iter().filter(|o| matches!(o, Op::Opt(..))).count() > MAX_OPTIONS {
            return None;
        }
        check(&ops, &[])?;
        let slots = 2 * groups;
        let saves = |ops: &[Op]| {
            ops.iter().all(|o| match o {
                Op::Save(i) => *i < slots,
                _ => true,
            })
        };
        if !saves(&ops)
            || !ops
                .iter()
                .all(|o| !matches!(o, Op::Opt(sub, _) if !saves(sub)))
        {
            return None;
        }
        Some(Seq {
            ops: ops.into(),
            slots,
        })
    }

    /// The number of slots [`Seq::search`] fills: two per group.
    pub fn slots(&self) -> usize {
        self.slots
    }

    /// Search `s`; on a match, true, with each group's start and end in `slots` (group 0
    /// the whole match).
    #[inline]
    pub fn search(&self, s: &str, slots: &mut [Option<usize>]) -> bool {
        slots.fill(None);
        match run(&self.ops, s, 0, slots) {
            Some(end) => {
                slots[0] = Some(0);
                slots[1] = Some(end);
                true
            }
            None => false,
        }
    }
}

/// Match `ops` at `pos` of `s`: the end of the match.
fn run(ops: &[Op], s: &str, mut pos: usize, slots: &mut [Option<usize>]) -> Option<usize> {
    let b = s.as_bytes();
    for (k, op) in ops.iter().enumerate() {
        match op {
            Op::Lit(l) => {
                if !b[pos..].starts_with(l) {
                    return None;
                }
                pos += l.len();
            }
            Op::One(set) => pos += set.step(s, pos)?,
            Op::Rep { set, min1 } => {
                let from = pos;
                while let Some(n) = set.step(s, pos) {
                    pos += n;
                }
                if *min1 && pos == from {
                    return None;
                }
            }
            Op::Opt(sub, saves) => {
                if let Some(p) = run(sub, s, pos, slots) {
                    if let Some(end) = run(&ops[k + 1..], s, p, slots) {
                        return Some(end);
                    }
                }
                for &i in saves.iter() {
                    slots[i] = None;
                }
            }
            Op::Save(i) => slots[*i] = Some(pos),
            Op::Start => {
                if pos != 0 {
                    return None;
                }
            }
            Op::End => {
                if pos != b.len() {
                    return None;
                }
            }
        }
    }
    Some(pos)
}

/// The rule of the module doc for each repetition of `ops`, which `after` follows.
fn check(ops: &[Op], after: &[Op]) -> Option<()> {
    for (j, op) in ops.iter().enumerate() {
        match op {
            Op::Rep { set, .. } => {
                let (mut next, through) = first(&ops[j + 1..]);
                if through {
                    next.add(&first(after).0);
                }
                if next.meets(set) {
                    return None;
                }
            }
            Op::Opt(sub, _) => check(sub, &ops[j + 1..])?,
            _ => {}
        }
    }
    Some(())
}

/// The characters `ops` may start by consuming (looking through what may match empty),
/// and whether they may consume nothing.
fn first(ops: &[Op]) -> (Set, bool) {
    let mut set = Set::default();
    for op in ops {
        match op {
            Op::Lit(l) => {
                let c = std::str::from_utf8(l)
                    .ok()
                    .and_then(|l| l.chars().next())
                    .expect("a literal of text");
                set.add(&Set::of_char(c));
                return (set, false);
            }
            Op::One(s) => {
                set.add(s);
                return (set, false);
            }
            Op::Rep { set: s, min1 } => {
                set.add(s);
                if *min1 {
                    return (set, false);
                }
            }
            Op::Opt(sub, _) => set.add(&first(sub).0),
            Op::Save(_) | Op::Start => {}
            // Nothing is consumed past the end.
            Op::End => return (set, false),
        }
    }
    (set, true)
}

/// The ops of `hir` onto `out`; `top` is false inside an option (where no option, `^` or
/// `$` is taken). `None` when the shape is not one this search takes.
fn flatten(hir: &Hir, out: &mut Vec<Op>, top: bool) -> Option<()> {
    match hir.kind() {
        HirKind::Empty => {}
        HirKind::Literal(l) => {
            std::str::from_utf8(&l.0).ok()?;
            out.push(Op::Lit(l.0.clone()));
        }
        HirKind::Class(c) => out.push(Op::One(Set::of_class(c)?)),
        HirKind::Look(Look::Start) if top => out.push(Op::Start),
        HirKind::Look(Look::End) if top => out.push(Op::End),
        HirKind::Look(_) => return None,
        HirKind::Capture(c) => {
            out.push(Op::Save(2 * c.index as usize));
            flatten(&c.sub, out, top)?;
            out.push(Op::Save(2 * c.index as usize + 1));
        }
        HirKind::Concat(subs) => {
            for s in subs {
                flatten(s, out, top)?;
            }
        }
        HirKind::Alternation(_) => return None,
        HirKind::Repetition(r) => {
            if !r.greedy {
                return None;
            }
            match (r.min, r.max) {
                (0 | 1, None) => {
                    let set = match r.sub.kind() {
                        HirKind::Class(c) => Set::of_class(c)?,
                        HirKind::Literal(l) => {
                            let l = std::str::from_utf8(&l.0).ok()?;
                            let mut cs = l.chars();
                            match (cs.next(), cs.next()) {
                                (Some(c), None) => Set::of_char(c),
                                _ => return None,
                            }
                        }
                        _ => return None,
                    };
                    out.push(Op::Rep {
                        set,
                        min1: r.min == 1,
                    });
                }
                (0, Some(1)) if top => {
                    let mut sub = Vec::new();
                    flatten(&r.sub, &mut sub, false)?;
                    if sub.is_empty() {
                        return None;
                    }
                    let saves = sub
                        .iter()
                        .filter_map(|o| match o {
                            Op::Save(i) => Some(*i),
                            _ => None,
                        })
                        .collect();
                    out.push(Op::Opt(sub.into(), saves));
                }
                (n, Some(m)) if n == m && n <= 16 => {
                    for _ in 0..n {
                        flatten(&r.sub, out, top)?;
                    }
                }
                _ => return None,
            }
        }
    }
    Some(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use proptest::strategy::ValueTree;
    use regex::Regex;

    /// Whether `Seq` takes `re`; when it does, it must find on `text` what the crate finds.
    fn both(re: &str, text: &str) -> bool {
        let regex = Regex::new(re).unwrap();
        let want = regex.captures(text).map(|c| {
            (0..regex.captures_len())
                .map(|g| c.get(g).map(|m| (m.start(), m.end())))
                .collect::<Vec<_>>()
        });
        let Some(seq) = Seq::new(re, regex.captures_len()) else {
            return false;
        };
        let mut slots = vec![None; seq.slots()];
        let got = seq.search(text, &mut slots).then(|| {
            slots
                .chunks(2)
                .map(|p| Some((p[0]?, p[1]?)))
                .collect::<Vec<_>>()
        });
        assert_eq!(got, want, "{re} on {text:?}");
        true
    }

    #[test]
    fn the_sshd_rule_is_taken_and_agrees() {
        let re = r"^(?:Failed password for (?:invalid user )?(?P<user>\S+) from (?P<ip>\S+) port (?P<port>\d+))";
        let rest = r"^(?:(?:invalid user )?(?P<user>\S+) from (?P<ip>\S+) port (?P<port>\d+))";
        for text in [
            "Failed password for invalid user pi from 197.147.66.190 port 29573 ssh2",
            "Failed password for root from 10.0.0.1 port 22 ssh2",
            "Failed password for invalid user  from 1.2.3.4 port 5",
            "Failed password for invalid user from 1.2.3.4 port 5",
            "Failed password for invalid from 1.2.3.4 port 5",
            "Failed password for ünïcode from ::1 port ٣",
            "Failed password for x\u{a0}y from 1.2.3.4 port 5",
            "Failed password for",
            "",
        ] {
            assert!(both(re, text), "{re}");
            let rest_text = text.strip_prefix("Failed password for ").unwrap_or(text);
            assert!(both(rest, rest_text), "{rest}");
        }
    }

    #[test]
    fn shapes_taken_and_not() {
        let taken = [
            r"^(?P<x>\d{4}-\d\d) \[(?P<l>\w+)\] (?P<m>.*)",
            r"^a*b",
            r"^(?i)abc(?P<x>[^ ]+)$",
            r"^x(?:ab)?(?:cd)?y",
            r"^(?P<t>\d+): (?:\*(?P<c>\d+) )?(?P<m>.*)",
            r"^(?P<d>\d+(?:\.\d+)?) ms",
        ];
        let refused = [
            r"^(?P<x>\S+)\S",  // the repetition could give back
            r"^(?P<x>.*)b",    // the same
            r"(?P<x>a)",       // not anchored
            r"^(?:a(?:b)?)?c", // an option in an option
            r"^(?:\d+)?\d",    // a repetition in an option that could give back
            r"^a+?b",          // lazy
            r"^(?:a|bc)",      // alternation
            r"^\bfoo",         // word boundary
            r"^a?a?a?a?b",     // too many options
            r"^a*^",           // a `^` past the start
        ];
        for re in taken {
            assert!(
                Seq::new(re, Regex::new(re).unwrap().captures_len()).is_some(),
                "{re}"
            );
        }
        for re in refused {
            assert!(
                Seq::new(re, Regex::new(re).unwrap().captures_len()).is_none(),
                "{re}"
            );
        }
    }

    /// A regex of this module's shape, often enough, from pieces over a small alphabet.
    fn piece() -> impl Strategy<Value = String> {
        prop_oneof![
            Just("a".to_string()),
            Just("b".to_string()),
            Just(" ".to_string()),
            Just("é".to_string()),
            Just("ab".to_string()),
            Just(r"\S+".to_string()),
            Just(r"\S*".to_string()),
            Just(r"\s".to_string()),
            Just(r"\d+".to_string()),
            Just(r"[^ ]*".to_string()),
            Just(r"[ab]+".to_string()),
            Just(r"[a-z]".to_string()),
            Just(r".*".to_string()),
            Just(r"b{2}".to_string()),
            Just(r"(?:a )?".to_string()),
            Just(r"(?:b)?".to_string()),
            Just(r"(?i:A)".to_string()),
            Just(r"$".to_string()),
            Just(r"(?P<g>\S+)".to_string()),
            Just(r"(?P<h>a[ab]*)".to_string()),
            Just(r"(?:\d )?".to_string()),
            Just(r"(?:(?P<o>\S+) )?".to_string()),
            Just(r"(?:a\d*)?".to_string()),
            Just(r"(?:[ab]+)?".to_string()),
        ]
    }

    /// `^` and the pieces, each capture name made unique by the piece's place.
    fn assemble(pieces: &[String]) -> String {
        let mut re = String::from("^");
        for (i, p) in pieces.iter().enumerate() {
            for g in ["g", "h", "o"] {
                if p.contains(&format!("?P<{g}>")) {
                    re.push_str(&p.replace(&format!("?P<{g}>"), &format!("?P<{g}{i}>")));
                }
            }
            if !p.contains("?P<") {
                re.push_str(p);
            }
        }
        re
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(4000))]
        #[test]
        fn agrees_with_the_regex_crate(
            pieces in prop::collection::vec(piece(), 0..7),
            texts in prop::collection::vec("[ab é1٣x\u{a0}]{0,12}", 1..8),
        ) {
            let re = assemble(&pieces);
            for text in &texts {
                both(&re, text);
            }
        }
    }

    /// The property test above is not vacuous: most of its regexes are taken.
    #[test]
    fn most_generated_regexes_are_taken() {
        let mut runner = proptest::test_runner::TestRunner::deterministic();
        let strategy = prop::collection::vec(piece(), 0..7);
        let (mut taken, mut all) = (0, 0);
        for _ in 0..2000 {
            let re = assemble(&strategy.new_tree(&mut runner).unwrap().current());
            all += 1;
            taken += both(&re, "ab a 1") as usize;
        }
        assert!(taken * 4 > all, "{taken} of {all} taken");
    }
}
