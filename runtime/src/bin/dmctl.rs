//! `dmctl`: see `dm_runtime::cli`.

fn main() -> std::process::ExitCode {
    dm_runtime::cli::main()
}
