//! Every WGSL file in `shaders/`, compiled into the binary by `build.rs` (no list to edit).

// (name, source) of every shader; the name is the file stem.
include!(concat!(env!("OUT_DIR"), "/shaders.rs"));

/// The WGSL source of `shaders/<name>.wgsl`.
pub fn shader_source(name: &str) -> Option<&'static str> {
    SHADERS.iter().find(|(n, _)| *n == name).map(|(_, s)| *s)
}
