use thiserror::Error;

/// Errors of the device layer. Every variant says what was asked and what the limit or the
/// mismatch was, so that a user can act on it without reading the code.
#[derive(Debug, Error)]
pub enum GpuError {
    #[error("no GPU adapter found (tried backends: {tried}; adapter filter: {filter}).\n{hint}")]
    NoAdapter {
        tried: String,
        filter: String,
        hint: String,
    },
    #[error("could not open a device on adapter '{adapter}': {reason}")]
    RequestDevice { adapter: String, reason: String },
    #[error(
        "tensor '{name}' needs {bytes} bytes, above this device's {what} of {limit} bytes; \
         use a smaller batch or split the work"
    )]
    TooLarge {
        name: String,
        bytes: u64,
        what: &'static str,
        limit: u64,
    },
    #[error("shape mismatch in {op}: {left_name} has shape {left:?} but {right_name} has shape {right:?}")]
    ShapeMismatch {
        op: String,
        left_name: String,
        left: Vec<usize>,
        right_name: String,
        right: Vec<usize>,
    },
    #[error("{op}: {reason}")]
    Invalid { op: String, reason: String },
    #[error("unknown shader '{0}' (not in gpu::SHADERS)")]
    UnknownShader(String),
    #[error("GPU error: {0}")]
    Device(String),
}

impl GpuError {
    /// Shorthand for an invalid argument (a hyper-parameter, a count) of one op.
    pub fn invalid(op: &str, reason: impl Into<String>) -> Self {
        GpuError::Invalid {
            op: op.to_string(),
            reason: reason.into(),
        }
    }

    /// Shorthand for a shape mismatch between two named operands of one op.
    pub fn shapes(op: &str, a: (&str, &[usize]), b: (&str, &[usize])) -> Self {
        GpuError::ShapeMismatch {
            op: op.to_string(),
            left_name: a.0.to_string(),
            left: a.1.to_vec(),
            right_name: b.0.to_string(),
            right: b.1.to_vec(),
        }
    }
}
