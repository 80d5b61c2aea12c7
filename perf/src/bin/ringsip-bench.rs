//! `ringsip-bench`: end-to-end benchmarks of ringsip. `ringsip-bench lb --help`.

fn main() -> std::process::ExitCode {
    ringsip_perf::bench::main()
}
