//! Small drawing helpers shared by the panels: images as textures, colours, thumbnails.

use egui::{Color32, ColorImage, Response, Sense, TextureHandle, TextureOptions, Ui, Vec2};

/// Nearest-neighbour sampling: 32-px images are shown enlarged, and blurring them would hide
/// exactly the pixels the augmentations changed.
pub const PIXELATED: TextureOptions = TextureOptions::NEAREST;

pub fn rgb_texture(ctx: &egui::Context, name: &str, rgb: &[u8], w: usize, h: usize) -> TextureHandle {
    ctx.load_texture(name, ColorImage::from_rgb([w, h], rgb), PIXELATED)
}

/// A [3, s, s] plane-major view with values in [0, 1] as a texture.
pub fn chw_texture(ctx: &egui::Context, name: &str, chw: &[f32], s: usize) -> TextureHandle {
    let plane = s * s;
    let to_u8 = |v: f32| (v.clamp(0.0, 1.0) * 255.0).round() as u8;
    let px = (0..plane)
        .map(|i| Color32::from_rgb(to_u8(chw[i]), to_u8(chw[plane + i]), to_u8(chw[2 * plane + i])))
        .collect();
    ctx.load_texture(name, ColorImage::new([s, s], px), PIXELATED)
}

/// A diverging colour for a cosine similarity in [-1, 1]: blue (−1), black (0), yellow (+1).
pub fn similarity_color(s: f32) -> Color32 {
    let s = s.clamp(-1.0, 1.0);
    if s >= 0.0 {
        Color32::from_rgb((255.0 * s) as u8, (220.0 * s) as u8, (40.0 * s) as u8)
    } else {
        Color32::from_rgb(0, (90.0 * -s) as u8, (255.0 * -s) as u8)
    }
}

pub fn heat_texture(ctx: &egui::Context, values: &[f32], n: usize) -> TextureHandle {
    let px = values.iter().map(|&v| similarity_color(v)).collect();
    ctx.load_texture("similarity", ColorImage::new([n, n], px), PIXELATED)
}

/// Distinct colours for up to 10 classes (tab10), repeated beyond.
pub fn label_color(l: u32) -> Color32 {
    const TAB10: [(u8, u8, u8); 10] = [
        (31, 119, 180),
        (255, 127, 14),
        (44, 160, 44),
        (214, 39, 40),
        (148, 103, 189),
        (140, 86, 75),
        (227, 119, 194),
        (127, 127, 127),
        (188, 189, 34),
        (23, 190, 207),
    ];
    let (r, g, b) = TAB10[l as usize % 10];
    Color32::from_rgb(r, g, b)
}

/// A clickable image of side `side`, outlined when `selected`.
pub fn thumb(ui: &mut Ui, tex: &TextureHandle, side: f32, selected: bool) -> Response {
    let r = ui.add(
        egui::Image::from_texture(tex)
            .fit_to_exact_size(Vec2::splat(side))
            .sense(Sense::click()),
    );
    if selected {
        let stroke = egui::Stroke::new(2.0, Color32::YELLOW);
        ui.painter().rect_stroke(r.rect, 0.0, stroke, egui::StrokeKind::Outside);
    }
    r
}

/// A label and the widget it names (for screen readers and the UI tests, which find widgets by
/// their accessible name).
pub fn labelled(ui: &mut Ui, label: &str, add: impl FnOnce(&mut Ui) -> Response) -> Response {
    let l = ui.label(label);
    add(ui).labelled_by(l.id)
}
