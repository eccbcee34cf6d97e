//! The `sockwarden` binary: everything lives in the library; see `cli`.

/// mimalloc rather than glibc's malloc: a request's buffers are often freed on another thread
/// than the one that allocated them, and glibc then takes the allocating arena's lock — under
/// load most of the process's futex calls were those locks (measured with `perf record -e
/// syscalls:sys_enter_futex`). mimalloc frees across threads without a lock. Built without its
/// transparent-huge-page advice (`no_thp`): with it, the peak RSS went from 18 to 32 MiB.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    // Nor may the kernel use huge pages on its own (`transparent_hugepage=always` hosts): a
    // 2 MiB page for a few KiB of a proxy's heap is memory the host loses. Best effort.
    let _ = nix::sys::prctl::set_thp_disable(true);
    sockwarden::cli::main()
}
