//! The `sockwarden` binary: everything lives in the library; see `cli`.

/// mimalloc rather than the system allocator: the request path allocates and frees many small
/// objects across threads (a request's trail is freed by the audit writer), which glibc's
/// arenas serve with locks and consolidation passes.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    sockwarden::cli::main()
}
