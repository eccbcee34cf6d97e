//! Reading audit logs back: `sockwarden audit summarize` and `sockwarden audit suggest`.
