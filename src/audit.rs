//! The audit log: one JSON object per request, session and reload, and the offline tooling that
//! reads it back (`sockwarden audit summarize`, `sockwarden audit suggest`).

pub mod report;
