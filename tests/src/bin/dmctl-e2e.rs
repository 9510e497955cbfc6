//! `dmctl` as the end-to-end tests run it: the same entry point.

fn main() -> std::process::ExitCode {
    dmctl::cli::main()
}
