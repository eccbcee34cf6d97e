//! Field tables: one declaration per Docker struct, listing each field (Go spelling) with the
//! function that checks its value.
//!
//! The table *is* the set of known fields: a key that matches no entry is an unknown field
//! (refused, or let through where a rule allows unknown fields), and a key that matches an entry
//! is handed to that entry's check. There is no second list to keep in step and no fallback
//! `match` arm, so a field cannot be known without being checked.
//!
//! Keys match Go's struct decoding: ASCII case-insensitively (the reader has already refused
//! non-ASCII keys and keys equal after folding, see [`Object::as_struct`]), and a `null` value
//! is skipped (Go leaves the zero value). The path handed to a check uses the field's canonical
//! name (`HostConfig.Privileged` even when the body wrote `privileged`).
//!
//! `F` is the check's function-pointer type; each inspector picks its own context (the rules,
//! the cross-field state and the summary it fills), so a table costs one indirect call per field.
//!
//! [`Object::as_struct`]: super::docker_json::Object::as_struct

use std::sync::OnceLock;

use super::common::{deny, deny_rule};
use super::docker_json::{Path, Struct, Value};
use super::Violation;

/// A Docker struct: its name (for messages) and its fields, each with its check.
pub(crate) struct Table<F: 'static> {
    what: &'static str,
    fields: &'static [(&'static str, F)],
    /// The lookup index, built on first use.
    index: OnceLock<Index<F>>,
}

/// The fields of one or more tables ordered by name length (table order within a length), so
/// a key is only compared with the names of its length.
pub(crate) struct Index<F: 'static> {
    /// `starts[n]..starts[n + 1]` are the entries whose name is `n` bytes long.
    starts: Box<[u32]>,
    entries: Box<[(&'static str, F)]>,
}

impl<F: Copy + 'static> Index<F> {
    fn build(tables: &[&[(&'static str, F)]]) -> Index<F> {
        let all = || tables.iter().flat_map(|t| t.iter());
        let longest = all().map(|(n, _)| n.len()).max().unwrap_or(0);
        let mut entries: Vec<(&'static str, F)> = all().copied().collect();
        entries.sort_by_key(|(n, _)| n.len()); // stable: table order within a length
        let mut starts = Vec::with_capacity(longest + 2);
        let mut at = 0usize;
        for len in 0..=longest + 1 {
            while entries.get(at).is_some_and(|(n, _)| n.len() < len) {
                at += 1;
            }
            starts.push(u32::try_from(at).unwrap_or(u32::MAX));
        }
        Index {
            starts: starts.into_boxed_slice(),
            entries: entries.into_boxed_slice(),
        }
    }

    /// The position of the entry `key` names (ASCII case-insensitively), first in table order.
    fn position(&self, key: &str) -> Option<usize> {
        let len = key.len();
        let (Some(&a), Some(&b)) = (self.starts.get(len), self.starts.get(len + 1)) else {
            return None;
        };
        let (a, b) = (a as usize, b as usize);
        // A cheap first-byte filter before the full comparison (keys are ASCII here).
        let first = key.as_bytes().first()? | 0x20;
        let bucket = self.entries.get(a..b)?;
        let i = bucket.iter().position(|(n, _)| {
            n.as_bytes().first().is_some_and(|c| c | 0x20 == first) && n.eq_ignore_ascii_case(key)
        })?;
        Some(a + i)
    }

    fn entry(&self, at: usize) -> Option<(&'static str, F)> {
        self.entries.get(at).copied()
    }

    /// The field `key` names: its canonical name and its check.
    pub(crate) fn find(&self, key: &str) -> Option<(&'static str, F)> {
        self.entry(self.position(key)?)
    }
}

impl<F: Copy + 'static> Table<F> {
    /// A table named `what` (as in "unknown field in `what` refused").
    pub(crate) const fn new(what: &'static str, fields: &'static [(&'static str, F)]) -> Self {
        Table {
            what,
            fields,
            index: OnceLock::new(),
        }
    }

    /// The struct's name, as used in refusals.
    #[cfg(test)]
    pub(crate) fn what(&self) -> &'static str {
        self.what
    }

    /// The declared field names, in declaration order.
    #[cfg(test)]
    pub(crate) fn names(&self) -> impl Iterator<Item = &'static str> + '_ {
        self.fields.iter().map(|(n, _)| *n)
    }

    /// The lookup index, for the lookups of one struct.
    pub(crate) fn index(&self) -> &Index<F> {
        self.index.get_or_init(|| Index::build(&[self.fields]))
    }

    /// The field `key` names (Go's case-insensitive match): its canonical name and its check.
    #[cfg(test)]
    pub(crate) fn find(&self, key: &str) -> Option<(&'static str, F)> {
        self.index().find(key)
    }

    /// Walks a struct whose unknown fields are refused: every key is looked up first (an
    /// unknown one is refused before any value is checked), then each known, non-null field is
    /// handed to `run` with its check, its value and its path, in document order.
    pub(crate) fn strict<'v>(
        &self,
        s: &Struct<'v>,
        p: &Path<'_>,
        run: impl FnMut(F, &'v Value<'v>, &Path<'_>) -> Result<(), Violation>,
    ) -> Result<(), Violation> {
        self.walk(s, p, true, |fp| Some(self.unknown(fp)), run)
    }

    /// [`Table::strict`] for a struct that is not security-relevant by itself: unknown fields
    /// pass when `allow_unknown` (the `allow_unknown_config_fields` setting), else they are
    /// refused naming that setting.
    pub(crate) fn lenient<'v>(
        &self,
        s: &Struct<'v>,
        p: &Path<'_>,
        allow_unknown: bool,
        run: impl FnMut(F, &'v Value<'v>, &Path<'_>) -> Result<(), Violation>,
    ) -> Result<(), Violation> {
        let unknown = |fp: &Path<'_>| (!allow_unknown).then(|| unknown_lenient(fp));
        self.walk(s, p, true, unknown, run)
    }

    /// [`Table::lenient`], one field at a time: a value is checked before a later key is looked
    /// up.
    pub(crate) fn lenient_in_order<'v>(
        &self,
        s: &Struct<'v>,
        p: &Path<'_>,
        allow_unknown: bool,
        run: impl FnMut(F, &'v Value<'v>, &Path<'_>) -> Result<(), Violation>,
    ) -> Result<(), Violation> {
        let unknown = |fp: &Path<'_>| (!allow_unknown).then(|| unknown_lenient(fp));
        self.walk(s, p, false, unknown, run)
    }

    /// Walks the entries of `s`; `unknown` says what an unknown key means (a refusal, or
    /// `None` to skip it); with `keys_first`, every key is looked up before any value is
    /// checked.
    pub(crate) fn walk<'v>(
        &self,
        s: &Struct<'v>,
        p: &Path<'_>,
        keys_first: bool,
        unknown: impl Fn(&Path<'_>) -> Option<Violation>,
        mut run: impl FnMut(F, &'v Value<'v>, &Path<'_>) -> Result<(), Violation>,
    ) -> Result<(), Violation> {
        let index = self.index();
        // The positions found by the first pass, so the second does not look the keys up again
        // (for the first keys; a larger struct looks the rest up twice).
        let mut found = [usize::MAX; 24];
        if keys_first {
            for (i, (key, _)) in s.entries().iter().enumerate() {
                match index.position(key) {
                    Some(at) => {
                        if let Some(slot) = found.get_mut(i) {
                            *slot = at;
                        }
                    }
                    None => {
                        if let Some(refusal) = unknown(&p.field(key)) {
                            return Err(refusal);
                        }
                    }
                }
            }
        }
        for (i, (key, v)) in s.entries().iter().enumerate() {
            let at = match found.get(i) {
                Some(&at) if at != usize::MAX => Some(at),
                _ => index.position(key),
            };
            match at.and_then(|at| index.entry(at)) {
                Some((name, check)) => {
                    if !v.is_null() {
                        run(check, v, &p.field(name))?;
                    }
                }
                None => {
                    if let Some(refusal) = unknown(&p.field(key)) {
                        return Err(refusal);
                    }
                }
            }
        }
        Ok(())
    }

    /// The refusal of an unknown field of this struct.
    pub(crate) fn unknown(&self, fp: &Path<'_>) -> Violation {
        unknown_in(self.what, fp)
    }
}

/// The refusal of an unknown field in a struct whose unknown fields are refused.
pub(crate) fn unknown_in(what: &str, fp: &Path<'_>) -> Violation {
    deny(
        fp,
        format!("unknown field in {what} refused (it would reach the daemon uninspected)"),
    )
}

/// The refusal of an unknown field that `allow_unknown_config_fields` would let through.
pub(crate) fn unknown_lenient(fp: &Path<'_>) -> Violation {
    deny_rule(fp, "unknown field refused", "allow_unknown_config_fields")
}

/// Several tables read as one struct (`HostConfig` embeds `Resources`): a key is looked up in
/// each table in order, with one index over all of them.
pub(crate) struct Joined<F: 'static> {
    tables: &'static [&'static Table<F>],
    index: OnceLock<Index<F>>,
}

impl<F: Copy + 'static> Joined<F> {
    pub(crate) const fn new(tables: &'static [&'static Table<F>]) -> Self {
        Joined {
            tables,
            index: OnceLock::new(),
        }
    }

    /// The index over all the tables, for the lookups of one struct.
    pub(crate) fn index(&self) -> &Index<F> {
        self.index.get_or_init(|| {
            let fields: Vec<&[(&'static str, F)]> = self.tables.iter().map(|t| t.fields).collect();
            Index::build(&fields)
        })
    }
}
