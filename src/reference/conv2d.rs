//! Conv2d by direct loops: NCHW activations, OIHW weights, zero padding, no bias, f64 accumulation.
//! `Conv` carries the shapes; every function takes and returns flat row-major slices.

/// Shapes of one convolution: x [n,c,h,w], weight [o,c,kh,kw], y [n,o,ho,wo].
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Conv {
    pub n: usize,
    pub c: usize,
    pub h: usize,
    pub w: usize,
    pub o: usize,
    pub kh: usize,
    pub kw: usize,
    pub stride: usize,
    pub pad: usize,
}

impl Conv {
    /// (Ho, Wo) = floor((H + 2p − k)/s) + 1.
    pub fn out_hw(&self) -> (usize, usize) {
        (
            (self.h + 2 * self.pad - self.kh) / self.stride + 1,
            (self.w + 2 * self.pad - self.kw) / self.stride + 1,
        )
    }

    pub fn x_len(&self) -> usize {
        self.n * self.c * self.h * self.w
    }
    pub fn w_len(&self) -> usize {
        self.o * self.c * self.kh * self.kw
    }
    pub fn y_len(&self) -> usize {
        let (ho, wo) = self.out_hw();
        self.n * self.o * ho * wo
    }

    /// Calls f(x index, w index, y index) for every tap that lands inside the input (padding taps add 0).
    fn for_each_tap(&self, mut f: impl FnMut(usize, usize, usize)) {
        let (ho, wo) = self.out_hw();
        for n in 0..self.n {
            for o in 0..self.o {
                for oy in 0..ho {
                    for ox in 0..wo {
                        let yi = ((n * self.o + o) * ho + oy) * wo + ox;
                        for c in 0..self.c {
                            for u in 0..self.kh {
                                let iy = (oy * self.stride + u) as isize - self.pad as isize;
                                if iy < 0 || iy >= self.h as isize {
                                    continue;
                                }
                                for v in 0..self.kw {
                                    let ix = (ox * self.stride + v) as isize - self.pad as isize;
                                    if ix < 0 || ix >= self.w as isize {
                                        continue;
                                    }
                                    let xi = ((n * self.c + c) * self.h + iy as usize) * self.w + ix as usize;
                                    let wi = ((o * self.c + c) * self.kh + u) * self.kw + v;
                                    f(xi, wi, yi);
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}

/// y[n,o,oy,ox] = Σ_{c,u,v} w[o,c,u,v] · x[n,c,oy·s+u−p, ox·s+v−p]
pub fn forward(g: &Conv, x: &[f32], w: &[f32]) -> Vec<f32> {
    to_f32(forward_f64(g, &to_f64(x), &to_f64(w)))
}

/// dx = ∂(Σ y·dy)/∂x: every tap sends dy · w back to the input pixel it read.
pub fn backward_input(g: &Conv, dy: &[f32], w: &[f32]) -> Vec<f32> {
    to_f32(backward_input_f64(g, &to_f64(dy), &to_f64(w)))
}

/// dw = ∂(Σ y·dy)/∂w: Σ over images and output pixels of dy · x.
pub fn backward_weight(g: &Conv, x: &[f32], dy: &[f32]) -> Vec<f32> {
    to_f32(backward_weight_f64(g, &to_f64(x), &to_f64(dy)))
}

/// `forward` in f64 throughout (for finite-difference checks).
pub fn forward_f64(g: &Conv, x: &[f64], w: &[f64]) -> Vec<f64> {
    let mut y = vec![0.0; g.y_len()];
    g.for_each_tap(|xi, wi, yi| y[yi] += w[wi] * x[xi]);
    y
}

/// Gather form: each input pixel sums over the (o, u, v) whose output position (iy+p−u)/s, (ix+p−v)/s is a
/// whole number inside the output (written independently of `forward`, so the finite-difference test means something).
pub fn backward_input_f64(g: &Conv, dy: &[f64], w: &[f64]) -> Vec<f64> {
    let (ho, wo) = g.out_hw();
    // Output index along one axis reached from input index i by tap t, if any.
    let out_of = |i: usize, t: usize, n_out: usize| -> Option<usize> {
        let d = (i + g.pad).checked_sub(t)?;
        (d % g.stride == 0 && d / g.stride < n_out).then_some(d / g.stride)
    };
    let mut dx = vec![0.0; g.x_len()];
    for n in 0..g.n {
        for c in 0..g.c {
            for iy in 0..g.h {
                for ix in 0..g.w {
                    let mut acc = 0.0;
                    for o in 0..g.o {
                        for u in 0..g.kh {
                            let Some(oy) = out_of(iy, u, ho) else { continue };
                            for v in 0..g.kw {
                                let Some(ox) = out_of(ix, v, wo) else { continue };
                                acc +=
                                    w[((o * g.c + c) * g.kh + u) * g.kw + v] * dy[((n * g.o + o) * ho + oy) * wo + ox];
                            }
                        }
                    }
                    dx[((n * g.c + c) * g.h + iy) * g.w + ix] = acc;
                }
            }
        }
    }
    dx
}

/// dw[o,c,u,v] = Σ_{n,oy,ox} dy[n,o,oy,ox] · x[n,c,oy·s+u−p, ox·s+v−p], one weight at a time.
pub fn backward_weight_f64(g: &Conv, x: &[f64], dy: &[f64]) -> Vec<f64> {
    let (ho, wo) = g.out_hw();
    let at = |i: usize, t: usize, n_in: usize| -> Option<usize> {
        (i * g.stride + t).checked_sub(g.pad).filter(|&v| v < n_in)
    };
    let mut dw = vec![0.0; g.w_len()];
    for o in 0..g.o {
        for c in 0..g.c {
            for u in 0..g.kh {
                for v in 0..g.kw {
                    let mut acc = 0.0;
                    for n in 0..g.n {
                        for oy in 0..ho {
                            let Some(iy) = at(oy, u, g.h) else { continue };
                            for ox in 0..wo {
                                let Some(ix) = at(ox, v, g.w) else { continue };
                                acc +=
                                    dy[((n * g.o + o) * ho + oy) * wo + ox] * x[((n * g.c + c) * g.h + iy) * g.w + ix];
                            }
                        }
                    }
                    dw[((o * g.c + c) * g.kh + u) * g.kw + v] = acc;
                }
            }
        }
    }
    dw
}

fn to_f64(v: &[f32]) -> Vec<f64> {
    v.iter().map(|&a| a as f64).collect()
}

fn to_f32(v: Vec<f64>) -> Vec<f32> {
    v.into_iter().map(|a| a as f32).collect()
}
