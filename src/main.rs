//! The `sockwarden` binary: everything lives in the library; see `cli`.

fn main() -> std::process::ExitCode {
    sockwarden::cli::main()
}
