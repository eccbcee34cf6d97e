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
    /// Entry indices by name length, built on first use.
    by_len: OnceLock<Box<[Box<[u16]>]>>,
}

impl<F: Copy + 'static> Table<F> {
    /// A table named `what` (as in "unknown field in `what` refused").
    pub(crate) const fn new(what: &'static str, fields: &'static [(&'static str, F)]) -> Self {
        Table {
            what,
            fields,
            by_len: OnceLock::new(),
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

    fn index(&self) -> &[Box<[u16]>] {
        self.by_len.get_or_init(|| {
            let longest = self.fields.iter().map(|(n, _)| n.len()).max().unwrap_or(0);
            let mut by_len: Vec<Vec<u16>> = vec![Vec::new(); longest + 1];
            for (i, (name, _)) in self.fields.iter().enumerate() {
                if let (Some(bucket), Ok(i)) = (by_len.get_mut(name.len()), u16::try_from(i)) {
                    bucket.push(i);
                }
            }
            by_len.into_iter().map(Vec::into_boxed_slice).collect()
        })
    }

    /// The field `key` names (Go's case-insensitive match): its canonical name and its check.
    pub(crate) fn find(&self, key: &str) -> Option<(&'static str, F)> {
        let bucket = self.index().get(key.len())?;
        bucket.iter().find_map(|&i| {
            let (name, check) = self.fields.get(usize::from(i))?;
            name.eq_ignore_ascii_case(key).then_some((*name, *check))
        })
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
        if keys_first {
            for (key, _) in s.entries() {
                if self.find(key).is_none() {
                    if let Some(refusal) = unknown(&p.field(key)) {
                        return Err(refusal);
                    }
                }
            }
        }
        for (key, v) in s.entries() {
            match self.find(key) {
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
