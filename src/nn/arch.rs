//! Encoders (tiny, ResNet-18/34/50) and the projection head, built as a `Graph` whose parameter
//! names and layouts are PyTorch's (`encoder.layer1.0.conv1.weight`, OIHW), so checkpoints
//! load into torchvision models unchanged.

use super::conv2d::{conv2d_out_hw, ConvGeom};
use super::graph::{ActId, BnState, Graph, Op};
use super::pool::maxpool_out_hw;
use serde::{Deserialize, Serialize};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Arch {
    Tiny,
    Resnet18,
    Resnet34,
    Resnet50,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ModelConfig {
    pub arch: Arch,
    /// Channel width multiplier.
    pub width: f32,
    pub image_size: usize,
    /// 2 (SimCLR v1) or 3 (v2) linear layers.
    pub head_layers: usize,
    /// Hidden width of the head; None = the encoder's feature width.
    pub head_hidden: Option<usize>,
    pub out_dim: usize,
}

impl Default for ModelConfig {
    fn default() -> Self {
        ModelConfig {
            arch: Arch::Resnet18,
            width: 1.0,
            image_size: 32,
            head_layers: 2,
            head_hidden: None,
            out_dim: 128,
        }
    }
}

struct Builder {
    g: Graph,
}

impl Builder {
    fn chw(&self, a: ActId) -> (usize, usize, usize) {
        let s = &self.g.acts[a];
        (s[0], s[1], s[2])
    }

    fn conv(&mut self, name: &str, x: ActId, cout: usize, k: usize, stride: usize, pad: usize) -> ActId {
        let (c, h, w) = self.chw(x);
        let geom = ConvGeom { stride, pad };
        let (ho, wo) = conv2d_out_hw(h, w, k, k, geom);
        let wp = self.g.param(format!("{name}.weight"), vec![cout, c, k, k]);
        let y = self.g.act(vec![cout, ho, wo]);
        self.g.ops.push(Op::Conv { w: wp, geom, x, y });
        y
    }

    fn bn(&mut self, name: &str, x: ActId, relu: bool) -> ActId {
        let shape = self.g.acts[x].clone();
        let c = shape[0];
        let gamma = self.g.param(format!("{name}.weight"), vec![c]);
        let beta = self.g.param(format!("{name}.bias"), vec![c]);
        self.g.bn.push(BnState {
            prefix: name.to_string(),
            channels: c,
        });
        let state = self.g.bn.len() - 1;
        let y = self.g.act(shape);
        self.g.ops.push(Op::BatchNorm {
            gamma,
            beta,
            state,
            x,
            y,
            relu,
        });
        y
    }

    #[allow(clippy::too_many_arguments)]
    fn conv_bn(
        &mut self,
        conv: &str,
        bn: &str,
        x: ActId,
        cout: usize,
        k: usize,
        s: usize,
        p: usize,
        relu: bool,
    ) -> ActId {
        let c = self.conv(conv, x, cout, k, s, p);
        self.bn(bn, c, relu)
    }

    fn add(&mut self, a: ActId, b: ActId, relu: bool) -> ActId {
        let y = self.g.act(self.g.acts[a].clone());
        self.g.ops.push(Op::Add { a, b, y, relu });
        y
    }

    fn linear(&mut self, name: &str, x: ActId, out: usize) -> ActId {
        let inp = self.g.acts[x][0];
        let w = self.g.param(format!("{name}.weight"), vec![out, inp]);
        let b = self.g.param(format!("{name}.bias"), vec![out]);
        let y = self.g.act(vec![out]);
        self.g.ops.push(Op::Linear { w, b: Some(b), x, y });
        y
    }

    fn basic_block(&mut self, p: &str, x: ActId, planes: usize, stride: usize) -> ActId {
        let cin = self.chw(x).0;
        let h = self.conv_bn(
            &format!("{p}.conv1"),
            &format!("{p}.bn1"),
            x,
            planes,
            3,
            stride,
            1,
            true,
        );
        let h = self.conv_bn(&format!("{p}.conv2"), &format!("{p}.bn2"), h, planes, 3, 1, 1, false);
        let short = if stride != 1 || cin != planes {
            self.conv_bn(
                &format!("{p}.downsample.0"),
                &format!("{p}.downsample.1"),
                x,
                planes,
                1,
                stride,
                0,
                false,
            )
        } else {
            x
        };
        self.add(h, short, true)
    }

    fn bottleneck(&mut self, p: &str, x: ActId, planes: usize, stride: usize) -> ActId {
        let cin = self.chw(x).0;
        let out = planes * 4;
        let h = self.conv_bn(&format!("{p}.conv1"), &format!("{p}.bn1"), x, planes, 1, 1, 0, true);
        // torchvision (v1.5) strides the 3×3 conv, not the first 1×1.
        let h = self.conv_bn(
            &format!("{p}.conv2"),
            &format!("{p}.bn2"),
            h,
            planes,
            3,
            stride,
            1,
            true,
        );
        let h = self.conv_bn(&format!("{p}.conv3"), &format!("{p}.bn3"), h, out, 1, 1, 0, false);
        let short = if stride != 1 || cin != out {
            self.conv_bn(
                &format!("{p}.downsample.0"),
                &format!("{p}.downsample.1"),
                x,
                out,
                1,
                stride,
                0,
                false,
            )
        } else {
            x
        };
        self.add(h, short, true)
    }

    fn pool(&mut self, x: ActId) -> ActId {
        let c = self.chw(x).0;
        let y = self.g.act(vec![c]);
        self.g.ops.push(Op::AvgPool { x, y });
        y
    }
}

fn scaled(c: usize, width: f32) -> usize {
    ((c as f32 * width).round() as usize).max(1)
}

/// Build the encoder + projection head graph.
pub fn build(cfg: &ModelConfig) -> Graph {
    let s = cfg.image_size;
    let mut b = Builder {
        g: Graph::new(&[3, s, s]),
    };
    let w = cfg.width;
    let mut x = 0;
    match cfg.arch {
        Arch::Tiny => {
            for (i, (c, stride)) in [(32, 1), (64, 2), (128, 2), (256, 2)].into_iter().enumerate() {
                x = b.conv_bn(
                    &format!("encoder.body.{i}.0"),
                    &format!("encoder.body.{i}.1"),
                    x,
                    scaled(c, w),
                    3,
                    stride,
                    1,
                    true,
                );
            }
        }
        Arch::Resnet18 | Arch::Resnet34 | Arch::Resnet50 => {
            let c0 = scaled(64, w);
            if s <= 64 {
                // CIFAR stem: 3×3 stride-1 conv, no max-pool.
                x = b.conv_bn("encoder.conv1", "encoder.bn1", x, c0, 3, 1, 1, true);
            } else {
                x = b.conv_bn("encoder.conv1", "encoder.bn1", x, c0, 7, 2, 3, true);
                let (c, h, wd) = b.chw(x);
                let (ho, wo) = maxpool_out_hw(h, wd);
                let y = b.g.act(vec![c, ho, wo]);
                b.g.ops.push(Op::MaxPool { x, y });
                x = y;
            }
            let blocks = match cfg.arch {
                Arch::Resnet18 => [2, 2, 2, 2],
                _ => [3, 4, 6, 3],
            };
            for (li, &n) in blocks.iter().enumerate() {
                let planes = scaled(64 << li, w);
                for bi in 0..n {
                    let stride = if li > 0 && bi == 0 { 2 } else { 1 };
                    let p = format!("encoder.layer{}.{bi}", li + 1);
                    x = if cfg.arch == Arch::Resnet50 {
                        b.bottleneck(&p, x, planes, stride)
                    } else {
                        b.basic_block(&p, x, planes, stride)
                    };
                }
            }
        }
    }
    let feats = b.pool(x);
    b.g.features = feats;
    b.g.encoder_end = b.g.ops.len();
    let f = b.g.acts[feats][0];
    let hidden = cfg.head_hidden.unwrap_or(f);
    // torch.nn.Sequential indices: Linear, BN, ReLU, Linear[, BN, ReLU, Linear].
    let mut h = feats;
    let mut idx = 0;
    for _ in 0..cfg.head_layers.saturating_sub(1) {
        h = b.linear(&format!("head.{idx}"), h, hidden);
        h = b.bn(&format!("head.{}", idx + 1), h, true);
        idx += 3;
    }
    b.linear(&format!("head.{idx}"), h, cfg.out_dim);
    b.g
}

/// Feature width of the encoder for `cfg`.
pub fn feature_dim(cfg: &ModelConfig) -> usize {
    let g = build(cfg);
    g.acts[g.features][0]
}
