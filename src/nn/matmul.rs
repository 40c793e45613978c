//! Host side of `shaders/matmul.wgsl`: C = op(A)·op(B) (+ bias) (+ ReLU) with either kernel flavour.

use crate::gpu::{grid_1d, Gpu, GpuError, KernelFlavor, Program, Tensor, Uniform};

#[repr(C)]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
struct Params {
    m: u32,
    n: u32,
    k: u32,
    tiles_n: u32,
    tiles_m: u32,
    _pad: [u32; 3],
}

/// Output block of one workgroup, per flavour (must match the WGSL constants).
const TILED_TILE: usize = 64;
const ROWS_RM: usize = 16;
const ROWS_COLS_PER_LANE: usize = 8;

/// One matrix product. `op(a)` is `a` ([M,K]) or, with `trans_a`, `aᵀ` (`a` stored [K,M]);
/// likewise `op(b)` is [K,N] or, with `trans_b`, `bᵀ` (`b` stored [N,K]). `c` is [M,N] and is
/// overwritten: `c = op(a)·op(b) + bias` (bias [N], broadcast over rows), then ReLU if `relu`.
#[derive(Clone, Copy, Debug)]
pub struct Gemm<'a> {
    pub a: &'a Tensor,
    pub b: &'a Tensor,
    pub c: &'a Tensor,
    pub trans_a: bool,
    pub trans_b: bool,
    pub bias: Option<&'a Tensor>,
    pub relu: bool,
}

impl<'a> Gemm<'a> {
    pub fn new(a: &'a Tensor, b: &'a Tensor, c: &'a Tensor) -> Self {
        Gemm {
            a,
            b,
            c,
            trans_a: false,
            trans_b: false,
            bias: None,
            relu: false,
        }
    }

    fn op_name(&self) -> String {
        let t = |x: bool| if x { "ᵀ" } else { "" };
        format!("matmul (A{}·B{})", t(self.trans_a), t(self.trans_b))
    }

    /// (M, K, N) after checking every shape.
    fn dims(&self) -> Result<(usize, usize, usize), GpuError> {
        let op = self.op_name();
        let (a, b, c) = (self.a, self.b, self.c);
        for t in [a, b, c] {
            if t.shape.len() != 2 {
                return Err(GpuError::shapes(
                    &format!("{op}: operands must be 2-D"),
                    (&t.name, &t.shape),
                    ("a matrix [rows, cols]", &[]),
                ));
            }
        }
        let (m, k) = if self.trans_a {
            (a.shape[1], a.shape[0])
        } else {
            (a.shape[0], a.shape[1])
        };
        let (kb, n) = if self.trans_b {
            (b.shape[1], b.shape[0])
        } else {
            (b.shape[0], b.shape[1])
        };
        if k != kb {
            return Err(GpuError::shapes(
                &format!("{op}: inner dimensions differ ({k} vs {kb})"),
                (&a.name, &a.shape),
                (&b.name, &b.shape),
            ));
        }
        if c.shape != [m, n] {
            return Err(GpuError::shapes(
                &format!("{op}: output"),
                (&c.name, &c.shape),
                ("the product", &[m, n]),
            ));
        }
        for input in [Some(a), Some(b), self.bias].into_iter().flatten() {
            if input.buffer == c.buffer {
                return Err(GpuError::Device(format!(
                    "{op}: output '{}' must not share its buffer with input '{}'",
                    c.name, input.name
                )));
            }
        }
        if let Some(bias) = self.bias {
            if bias.shape != [n] {
                return Err(GpuError::shapes(
                    &format!("{op}: bias"),
                    (&bias.name, &bias.shape),
                    (&c.name, &c.shape),
                ));
            }
        }
        Ok((m, k, n))
    }
}

/// C = op(A)·op(B) with the kernels chosen for this adapter (`gpu.flavor`). Shapes: see [`Gemm`].
pub fn matmul(
    gpu: &Gpu,
    a: &Tensor,
    b: &Tensor,
    c: &Tensor,
    trans_a: bool,
    trans_b: bool,
) -> Result<Program, GpuError> {
    gemm(
        gpu,
        gpu.flavor,
        &Gemm {
            trans_a,
            trans_b,
            ..Gemm::new(a, b, c)
        },
    )
}

/// Plan one product with an explicit kernel flavour (tests check both on any adapter).
pub fn gemm(gpu: &Gpu, flavor: KernelFlavor, g: &Gemm) -> Result<Program, GpuError> {
    let (m, k, n) = g.dims()?;
    let mut prog = Program::new();
    if m == 0 || n == 0 {
        return Ok(prog);
    }
    let too_big = |what: &str| GpuError::Device(format!("{}: {what} does not fit in u32 indices", g.op_name()));
    let words = |x: usize| u32::try_from(x).map_err(|_| too_big("a dimension"));
    // The bias binding is always present in the shader; without a bias, bind a dummy word.
    let no_bias;
    let bias = match g.bias {
        Some(t) => t,
        None => {
            no_bias = Tensor::zeros(gpu, "matmul.no_bias", &[1])?;
            &no_bias
        }
    };
    let mut consts = vec![
        ("TRANS_A", g.trans_a as u32 as f64),
        ("HAS_BIAS", g.bias.is_some() as u32 as f64),
        ("RELU", g.relu as u32 as f64),
    ];
    let (entry, tiles_m, tiles_n, b) = match flavor {
        KernelFlavor::Tiled => {
            consts.push(("TRANS_B", g.trans_b as u32 as f64));
            (
                "matmul_tiled",
                m.div_ceil(TILED_TILE),
                n.div_ceil(TILED_TILE),
                g.b.clone(),
            )
        }
        KernelFlavor::Rows => {
            let b = if g.trans_b && k > 0 {
                let bt = Tensor::zeros(gpu, &format!("{}.transposed", g.b.name), &[k, n])?;
                prog.extend(&transpose(gpu, g.b, &bt)?);
                bt
            } else {
                g.b.clone()
            };
            let lanes = if n <= 64 { 8 } else { 16 };
            consts.push(("LANES", lanes as f64));
            (
                "matmul_rows",
                m.div_ceil(ROWS_RM),
                n.div_ceil(lanes * ROWS_COLS_PER_LANE),
                b,
            )
        }
    };
    let tiles = tiles_m
        .checked_mul(tiles_n)
        .filter(|&t| t <= 65535 * 65535)
        .ok_or_else(|| too_big("the workgroup count"))?;
    let params = Params {
        m: words(m)?,
        n: words(n)?,
        k: words(k)?,
        tiles_n: tiles_n as u32,
        tiles_m: tiles_m as u32,
        _pad: [0; 3],
    };
    let u = Uniform::new(gpu, "matmul.params", &params);
    let kernel = gpu.kernel_with("matmul", entry, &consts)?;
    prog.push(gpu.dispatch(
        &kernel,
        &[&u.buffer, &g.a.buffer, &b.buffer, &bias.buffer, &g.c.buffer],
        grid_1d(tiles as u32),
    )?);
    Ok(prog)
}

fn elementwise_params(gpu: &Gpu, rows: usize, cols: usize, what: &str) -> Result<Uniform, GpuError> {
    let w = |x: usize| u32::try_from(x).map_err(|_| GpuError::Device(format!("{what}: {x} does not fit in u32")));
    let p = Params {
        m: w(rows)?,
        n: w(cols)?,
        k: 0,
        tiles_n: 0,
        tiles_m: 0,
        _pad: [0; 3],
    };
    Ok(Uniform::new(gpu, what, &p))
}

/// out[N] = Σ over rows of x[M, N] (the bias gradient of a linear layer).
pub fn col_sum(gpu: &Gpu, x: &Tensor, out: &Tensor) -> Result<Program, GpuError> {
    if x.shape.len() != 2 || out.shape != [x.shape[1]] {
        return Err(GpuError::shapes(
            "column sum",
            (&x.name, &x.shape),
            (&out.name, &out.shape),
        ));
    }
    let (m, n) = (x.shape[0], x.shape[1]);
    let mut prog = Program::new();
    if n == 0 {
        return Ok(prog);
    }
    let u = elementwise_params(gpu, m, n, "col_sum.params")?;
    let groups = u32::try_from(n.div_ceil(64)).map_err(|_| GpuError::Device("column sum: too many columns".into()))?;
    prog.push(gpu.launch(
        "matmul",
        "col_sum",
        &[&u.buffer, &x.buffer, &x.buffer, &x.buffer, &out.buffer],
        grid_1d(groups),
    )?);
    Ok(prog)
}

/// out[N, M] = x[M, N]ᵀ.
pub fn transpose(gpu: &Gpu, x: &Tensor, out: &Tensor) -> Result<Program, GpuError> {
    if x.shape.len() != 2 || out.shape != [x.shape[1], x.shape[0]] {
        return Err(GpuError::shapes(
            "transpose",
            (&x.name, &x.shape),
            (&out.name, &out.shape),
        ));
    }
    let mut prog = Program::new();
    let total = x.numel();
    if total == 0 {
        return Ok(prog);
    }
    let u = elementwise_params(gpu, x.shape[0], x.shape[1], "transpose.params")?;
    let groups = u32::try_from(total.div_ceil(64)).map_err(|_| GpuError::Device("transpose: too large".into()))?;
    prog.push(gpu.launch(
        "matmul",
        "transpose",
        &[&u.buffer, &x.buffer, &x.buffer, &x.buffer, &out.buffer],
        grid_1d(groups),
    )?);
    Ok(prog)
}
