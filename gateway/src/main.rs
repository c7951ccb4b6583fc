//! `mcpbus-gateway`: see `cli.rs`.

/// mimalloc instead of glibc's malloc: glibc's allocator was 28 % of the gateway's CPU per
/// call (issue 18's profile; ADR 0026). Only the binary sets it, so embedders of the
/// library keep their own choice.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// No transparent huge pages for mimalloc's memory. mimalloc advises them for its arenas on
/// Linux, and with the kernel's usual `madvise` setting the pages that idle connections
/// touch were backed 2 MiB at a time: ~29 KB of RSS per idle HTTP/1.1 connection instead of
/// ~21 KB (ADR 0026). A default, so `MIMALLOC_ALLOW_THP=1` still turns them back on.
///
/// It must be set before the first allocation reserves mimalloc's first arena, which
/// happens before `main` (set at the top of `main` it changed nothing, measured), hence a
/// constructor. A numbered `.init_array` entry runs before the unnumbered ones, mimalloc's
/// own among them; Rust's standard library uses 99 for its arguments.
#[cfg(target_os = "linux")]
#[used]
#[link_section = ".init_array.00100"]
static NO_TRANSPARENT_HUGE_PAGES: extern "C" fn() = no_transparent_huge_pages;

/// `mi_option_allow_thp` in mimalloc 3's `mimalloc.h` (libmimalloc-sys names no constant
/// for it).
#[cfg(target_os = "linux")]
const MI_OPTION_ALLOW_THP: libmimalloc_sys::mi_option_t = 43;

#[cfg(target_os = "linux")]
extern "C" fn no_transparent_huge_pages() {
    // SAFETY: stores an option's default; mimalloc reads its options (and the environment)
    // lazily, and nothing runs concurrently this early.
    unsafe { libmimalloc_sys::mi_option_set_default(MI_OPTION_ALLOW_THP, 0) };
}

fn main() -> std::process::ExitCode {
    mcpbus_gateway::cli::main()
}
