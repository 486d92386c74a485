//! `ebpf-harness`: the harness's commands in any project directory.

fn main() -> std::process::ExitCode {
    ebpf_harness::main("ebpf-harness")
}
