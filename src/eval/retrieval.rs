//! Nearest-neighbour retrieval: a query's k most similar images and a picture of them (the
//! query, then each neighbour with its cosine similarity written under it).

use image::{Rgb, RgbImage};

/// 3×5 bitmaps of the characters needed to write a similarity ("0.987", "-0.12").
fn glyph(c: char) -> [u8; 5] {
    match c {
        '0' => [0b111, 0b101, 0b101, 0b101, 0b111],
        '1' => [0b010, 0b110, 0b010, 0b010, 0b111],
        '2' => [0b111, 0b001, 0b111, 0b100, 0b111],
        '3' => [0b111, 0b001, 0b111, 0b001, 0b111],
        '4' => [0b101, 0b101, 0b111, 0b001, 0b001],
        '5' => [0b111, 0b100, 0b111, 0b001, 0b111],
        '6' => [0b111, 0b100, 0b111, 0b101, 0b111],
        '7' => [0b111, 0b001, 0b010, 0b010, 0b010],
        '8' => [0b111, 0b101, 0b111, 0b101, 0b111],
        '9' => [0b111, 0b101, 0b111, 0b001, 0b111],
        '.' => [0, 0, 0, 0, 0b010],
        '-' => [0, 0, 0b111, 0, 0],
        _ => [0; 5],
    }
}

/// Write `text` at (x, y) with pixels of `px`×`px`.
fn draw_text(img: &mut RgbImage, x: u32, y: u32, text: &str, px: u32, colour: Rgb<u8>) {
    for (i, c) in text.chars().enumerate() {
        let g = glyph(c);
        for (row, bits) in g.iter().enumerate() {
            for col in 0..3u32 {
                if bits & (0b100 >> col) != 0 {
                    for dy in 0..px {
                        for dx in 0..px {
                            let (xx, yy) = (x + (i as u32 * 4 + col) * px + dx, y + row as u32 * px + dy);
                            if xx < img.width() && yy < img.height() {
                                img.put_pixel(xx, yy, colour);
                            }
                        }
                    }
                }
            }
        }
    }
}

/// One row: the query (HWC bytes, h×w), a gap, then each neighbour with its similarity below.
/// Images are scaled up `scale` times (nearest pixel).
pub fn neighbour_grid(query: &[u8], neighbours: &[(&[u8], f32)], h: usize, w: usize, scale: usize) -> RgbImage {
    let (ch, cw) = ((h * scale) as u32, (w * scale) as u32);
    let pad = 4u32;
    let text_px = (scale as u32).clamp(1, 3);
    let label_h = 7 * text_px;
    let cells = 1 + neighbours.len() as u32;
    let width = pad + cells * (cw + pad) + 2 * pad;
    let height = pad + ch + pad + label_h + pad;
    let mut img = RgbImage::from_pixel(width, height, Rgb([255, 255, 255]));
    let mut blit = |x0: u32, src: &[u8]| {
        for y in 0..ch {
            for x in 0..cw {
                let p = ((y as usize / scale) * w + x as usize / scale) * 3;
                img.put_pixel(x0 + x, pad + y, Rgb([src[p], src[p + 1], src[p + 2]]));
            }
        }
    };
    blit(pad, query);
    for (i, (src, _)) in neighbours.iter().enumerate() {
        blit(3 * pad + (i as u32 + 1) * (cw + pad), src);
    }
    // A dark separator between the query and its neighbours.
    for y in pad..pad + ch {
        for x in 0..pad {
            img.put_pixel(cw + 2 * pad + x - pad / 2, y, Rgb([60, 60, 60]));
        }
    }
    for (i, (_, s)) in neighbours.iter().enumerate() {
        let x = 3 * pad + (i as u32 + 1) * (cw + pad);
        draw_text(&mut img, x, pad + ch + pad, &format!("{s:.3}"), text_px, Rgb([0, 0, 0]));
    }
    img
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grid_has_one_cell_per_image_and_writes_the_similarity() {
        let q = vec![200u8; 4 * 4 * 3];
        let n1 = vec![10u8; 4 * 4 * 3];
        let img = neighbour_grid(&q, &[(&n1, 0.5), (&n1, 1.0)], 4, 4, 3);
        // query cell starts at the padding and is the query's colour
        assert_eq!(img.get_pixel(5, 5), &Rgb([200, 200, 200]));
        // first neighbour cell
        let x = 3 * 4 + 12 + 4;
        assert_eq!(img.get_pixel(x + 1, 5), &Rgb([10, 10, 10]));
        // some black text pixels below the neighbour
        let text_rows = (4 + 12 + 4)..img.height();
        let dark = text_rows
            .flat_map(|y| (x..x + 12).map(move |xx| (xx, y)))
            .filter(|&(xx, y)| img.get_pixel(xx, y) == &Rgb([0, 0, 0]))
            .count();
        assert!(dark > 5, "similarity text missing");
    }
}
