use super::error::GpuError;
use super::kernel::PipelineCache;
use std::fmt;

/// Which graphics API to open the device on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum BackendChoice {
    #[default]
    Auto,
    Vulkan,
    Metal,
    Dx12,
    Gl,
}

impl BackendChoice {
    fn backends(self) -> wgpu::Backends {
        match self {
            BackendChoice::Auto => wgpu::Backends::VULKAN | wgpu::Backends::METAL | wgpu::Backends::DX12,
            BackendChoice::Vulkan => wgpu::Backends::VULKAN,
            BackendChoice::Metal => wgpu::Backends::METAL,
            BackendChoice::Dx12 => wgpu::Backends::DX12,
            BackendChoice::Gl => wgpu::Backends::GL,
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        <Self as clap::ValueEnum>::from_str(s, true).ok()
    }
}

/// How the kernels are written for this adapter. CPU drivers (lavapipe) run kernels without
/// workgroup memory or barriers 2–3× faster; real GPUs want workgroup-memory tiling.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KernelFlavor {
    /// Workgroup-memory tiles + register blocking: real GPUs.
    Tiled,
    /// All invocations of a workgroup share the same rows, no workgroup memory: CPU drivers.
    Rows,
}

/// Device selection; `from_env` reads `SIMCLR_BACKEND` and `SIMCLR_ADAPTER`.
#[derive(Clone, Debug, Default)]
pub struct DeviceOptions {
    pub backend: BackendChoice,
    /// Case-insensitive substring of the adapter name.
    pub adapter: Option<String>,
}

impl DeviceOptions {
    pub fn from_env() -> Self {
        let backend = std::env::var("SIMCLR_BACKEND")
            .ok()
            .and_then(|s| BackendChoice::parse(&s))
            .unwrap_or_default();
        let adapter = std::env::var("SIMCLR_ADAPTER").ok().filter(|s| !s.is_empty());
        DeviceOptions { backend, adapter }
    }
}

/// One opened device with the adapter's own limits and the kernel flavour chosen for it.
pub struct Gpu {
    pub device: wgpu::Device,
    pub queue: wgpu::Queue,
    pub info: wgpu::AdapterInfo,
    pub limits: wgpu::Limits,
    pub features: wgpu::Features,
    pub flavor: KernelFlavor,
    pub(crate) pipelines: PipelineCache,
}

impl fmt::Debug for Gpu {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "Gpu({} on {:?}, {:?} kernels)",
            self.info.name, self.info.backend, self.flavor
        )
    }
}

fn type_rank(t: wgpu::DeviceType) -> u32 {
    match t {
        wgpu::DeviceType::DiscreteGpu => 0,
        wgpu::DeviceType::IntegratedGpu => 1,
        wgpu::DeviceType::VirtualGpu => 2,
        wgpu::DeviceType::Cpu => 3,
        wgpu::DeviceType::Other => 4,
    }
}

fn instance(backends: wgpu::Backends) -> wgpu::Instance {
    let mut desc = wgpu::InstanceDescriptor::new_without_display_handle();
    desc.backends = backends;
    wgpu::Instance::new(desc)
}

fn no_adapter_hint() -> String {
    if cfg!(target_os = "linux") {
        "Install a Vulkan driver: your GPU vendor's, or Mesa's software one \
         (Debian/Ubuntu: `sudo apt-get install mesa-vulkan-drivers libvulkan1`), \
         or try `--backend gl`."
            .into()
    } else if cfg!(target_os = "macos") {
        "Metal should always be available on macOS; check that the system is up to date.".into()
    } else {
        "Install or update your GPU driver (Vulkan or DX12), or try `--backend gl`.".into()
    }
}

/// All adapters visible on the requested backends (auto: Vulkan/Metal/DX12, then GL if none).
pub fn list_adapters(backend: BackendChoice) -> Vec<wgpu::Adapter> {
    let mut found = pollster::block_on(instance(backend.backends()).enumerate_adapters(backend.backends()));
    if found.is_empty() && backend == BackendChoice::Auto {
        found = pollster::block_on(instance(wgpu::Backends::GL).enumerate_adapters(wgpu::Backends::GL));
    }
    found
}

impl Gpu {
    /// Open the best adapter allowed by `opts`: discrete, then integrated, then software.
    pub fn open(opts: &DeviceOptions) -> Result<Gpu, GpuError> {
        let mut adapters = list_adapters(opts.backend);
        if let Some(filter) = &opts.adapter {
            let f = filter.to_lowercase();
            adapters.retain(|a| a.get_info().name.to_lowercase().contains(&f));
        }
        adapters.sort_by_key(|a| {
            let i = a.get_info();
            (type_rank(i.device_type), (i.backend == wgpu::Backend::Gl) as u32)
        });
        let Some(adapter) = adapters.into_iter().next() else {
            let tried = match opts.backend {
                BackendChoice::Auto => "vulkan, metal, dx12, gl".to_string(),
                b => format!("{b:?}").to_lowercase(),
            };
            return Err(GpuError::NoAdapter {
                tried,
                filter: opts.adapter.clone().unwrap_or_else(|| "none".into()),
                hint: no_adapter_hint(),
            });
        };
        Self::from_adapter(adapter)
    }

    /// `open` with `DeviceOptions::from_env()`.
    pub fn open_default() -> Result<Gpu, GpuError> {
        Self::open(&DeviceOptions::from_env())
    }

    fn from_adapter(adapter: wgpu::Adapter) -> Result<Gpu, GpuError> {
        let info = adapter.get_info();
        // The adapter's own limits: wgpu's defaults cap storage bindings at 128 MiB and
        // workgroup memory at 16 KiB, far below what real GPUs offer.
        let limits = adapter.limits();
        // Subgroups let the CPU-driver conv kernels load shared GEMM rows once per subgroup.
        let wanted =
            wgpu::Features::TIMESTAMP_QUERY | wgpu::Features::TIMESTAMP_QUERY_INSIDE_PASSES | wgpu::Features::SUBGROUP;
        let features = adapter.features() & wanted;
        let desc = wgpu::DeviceDescriptor {
            label: Some("simclr"),
            required_features: features,
            required_limits: limits.clone(),
            ..Default::default()
        };
        let (device, queue) =
            pollster::block_on(adapter.request_device(&desc)).map_err(|e| GpuError::RequestDevice {
                adapter: info.name.clone(),
                reason: e.to_string(),
            })?;
        let flavor = match std::env::var("SIMCLR_KERNELS").as_deref() {
            Ok("tiled") => KernelFlavor::Tiled,
            Ok("rows") => KernelFlavor::Rows,
            Ok(other) if !other.is_empty() => {
                eprintln!("warning: SIMCLR_KERNELS={other} is not 'tiled' or 'rows'; choosing by adapter type");
                if info.device_type == wgpu::DeviceType::Cpu {
                    KernelFlavor::Rows
                } else {
                    KernelFlavor::Tiled
                }
            }
            _ if info.device_type == wgpu::DeviceType::Cpu => KernelFlavor::Rows,
            _ => KernelFlavor::Tiled,
        };
        Ok(Gpu {
            device,
            queue,
            info,
            limits,
            features,
            flavor,
            pipelines: PipelineCache::default(),
        })
    }

    /// True for CPU-emulated adapters such as lavapipe / llvmpipe.
    pub fn is_software(&self) -> bool {
        self.info.device_type == wgpu::DeviceType::Cpu
    }

    /// One line for logs: adapter name, backend and type.
    pub fn describe(&self) -> String {
        format!(
            "{} ({:?}, {:?}, driver {} {})",
            self.info.name, self.info.backend, self.info.device_type, self.info.driver, self.info.driver_info
        )
    }

    /// Block until all submitted work is done.
    pub fn wait(&self) -> Result<(), GpuError> {
        self.device
            .poll(wgpu::PollType::wait_indefinitely())
            .map(|_| ())
            .map_err(|e| GpuError::Device(e.to_string()))
    }
}

/// What `simclr devices` prints for one adapter.
#[derive(Debug, Clone, serde::Serialize)]
pub struct AdapterReport {
    pub name: String,
    pub backend: String,
    pub device_type: String,
    pub driver: String,
    pub max_storage_buffer_binding_size: u64,
    pub max_buffer_size: u64,
    pub max_compute_workgroup_storage_size: u32,
    pub max_compute_invocations_per_workgroup: u32,
    pub max_storage_buffers_per_shader_stage: u32,
    pub shader_f16: bool,
    pub subgroups: bool,
    pub timestamp_queries: bool,
}

/// Describe every adapter visible on `backend`.
pub fn adapter_report(backend: BackendChoice) -> Vec<AdapterReport> {
    let backend_set = match backend {
        BackendChoice::Auto => wgpu::Backends::all(),
        b => b.backends(),
    };
    pollster::block_on(instance(backend_set).enumerate_adapters(backend_set))
        .iter()
        .map(|a| {
            let i = a.get_info();
            let l = a.limits();
            let f = a.features();
            AdapterReport {
                name: i.name.clone(),
                backend: format!("{:?}", i.backend),
                device_type: format!("{:?}", i.device_type),
                driver: [i.driver.as_str(), i.driver_info.as_str()]
                    .iter()
                    .filter(|s| !s.is_empty())
                    .copied()
                    .collect::<Vec<_>>()
                    .join(" "),
                max_storage_buffer_binding_size: l.max_storage_buffer_binding_size,
                max_buffer_size: l.max_buffer_size,
                max_compute_workgroup_storage_size: l.max_compute_workgroup_storage_size,
                max_compute_invocations_per_workgroup: l.max_compute_invocations_per_workgroup,
                max_storage_buffers_per_shader_stage: l.max_storage_buffers_per_shader_stage,
                shader_f16: f.contains(wgpu::Features::SHADER_F16),
                subgroups: f.contains(wgpu::Features::SUBGROUP),
                timestamp_queries: f.contains(wgpu::Features::TIMESTAMP_QUERY),
            }
        })
        .collect()
}
