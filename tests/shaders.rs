//! Every WGSL file parses and validates with naga (no GPU needed).

use simclr_wgpu::gpu::{validate_wgsl, SHADERS};

#[test]
fn every_shader_validates_with_naga() {
    for (name, src) in SHADERS {
        if let Err(e) = validate_wgsl(name, src) {
            panic!("{e}");
        }
    }
}

#[test]
fn every_shader_file_is_compiled_in() {
    let n = std::fs::read_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/shaders"))
        .unwrap()
        .filter(|e| e.as_ref().unwrap().path().extension().is_some_and(|x| x == "wgsl"))
        .count();
    assert_eq!(n, SHADERS.len());
}
