//! `dmctl`: see `dmctl::cli`.

fn main() -> std::process::ExitCode {
    dmctl::cli::main()
}
