//! Links the binaries with packed relative relocations (`-z pack-relative-relocs`, DT_RELR;
//! GNU ld 2.38+, glibc 2.36+): the dynamic loader reads about 10 KiB of relocations at start
//! instead of about 700 KiB (pages that would then stay in the process's RSS).
//! `ANNALS_NO_RELR=1` links without it, for an older toolchain. The build script of both
//! `annals-cli` and `annals-agent` (their `build` key).
fn main() {
    println!("cargo:rerun-if-env-changed=ANNALS_NO_RELR");
    let var = |k: &str| std::env::var(k).unwrap_or_default();
    if var("CARGO_CFG_TARGET_OS") == "linux"
        && var("CARGO_CFG_TARGET_ENV") == "gnu"
        && var("ANNALS_NO_RELR").is_empty()
    {
        println!("cargo:rustc-link-arg-bins=-Wl,-z,pack-relative-relocs");
    }
}
