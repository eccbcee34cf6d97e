//! The `sockwarden` binary: everything lives in the library; see `cli`.

/// mimalloc rather than glibc's malloc: a request's buffers are often freed on another worker
/// thread than the one that allocated them, and glibc then takes the allocating arena's lock —
/// under load most of the process's futex calls were those locks (measured with `perf record
/// -e syscalls:sys_enter_futex`). mimalloc frees across threads without a lock.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    sockwarden::cli::main()
}
