//! Backend selection for prottrans.
//!
//! Cargo features decide which burn backends are compiled in (`flex` by default; `ndarray`,
//! `cpu`, `wgpu`, `vulkan`, `metal`, `cuda`, `rocm`, `tch` on request). At run time a
//! [`DeviceSpec`], usually parsed from a `--device` flag, picks one of them. Asking for a backend
//! that was not compiled in is an error that names the cargo feature to enable.
//!
//! Model code never names a backend: it takes a [`burn::tensor::Device`].
//!
//! ```
//! use prottrans_backend::DeviceSpec;
//!
//! let spec: DeviceSpec = "cpu".parse().unwrap();
//! let device = spec.device().unwrap();
//! # let _ = device;
//! ```
#![allow(deprecated)] // burn 0.22 deprecates the ndarray and libtorch constructors we still offer.

use std::fmt;
use std::str::FromStr;

use burn::tensor::Device;

/// Errors from parsing or opening a device.
#[derive(Debug, thiserror::Error)]
pub enum BackendError {
    /// The text is not a device this library knows.
    #[error(
        "unknown device '{0}'; expected one of: cpu, flex, ndarray, cubecl-cpu, wgpu[:N], vulkan[:N], metal, cuda[:N], rocm[:N], tch, tch-cuda[:N]"
    )]
    Unknown(String),
    /// The device is known but its backend was not compiled into this build.
    #[error(
        "device '{device}' needs the '{feature}' cargo feature, which this build does not have; rebuild with `--features {feature}` (compiled in: {compiled})"
    )]
    NotCompiled {
        /// The device as the user wrote it.
        device: String,
        /// The cargo feature of the `prottrans` crate (and CLI) that compiles it in.
        feature: &'static str,
        /// The backends this build does have.
        compiled: String,
    },
}

/// One backend of burn that prottrans can compile in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BackendInfo {
    /// Short name used in `--device`.
    pub name: &'static str,
    /// The cargo feature that compiles it in.
    pub feature: &'static str,
    /// Whether this build has it.
    pub compiled: bool,
    /// What it runs on.
    pub description: &'static str,
}

/// Every backend prottrans knows, in the order `cpu` prefers the CPU ones.
pub const BACKENDS: [BackendInfo; 9] = [
    BackendInfo {
        name: "flex",
        feature: "flex",
        compiled: cfg!(feature = "flex"),
        description: "pure-Rust CPU backend (SIMD, rayon); the default",
    },
    BackendInfo {
        name: "ndarray",
        feature: "ndarray",
        compiled: cfg!(feature = "ndarray"),
        description: "pure-Rust CPU backend on ndarray (deprecated by burn, f32 only)",
    },
    BackendInfo {
        name: "cubecl-cpu",
        feature: "cpu",
        compiled: cfg!(feature = "cpu"),
        description: "CubeCL CPU JIT through LLVM (needs the LLVM bundle at build time)",
    },
    BackendInfo {
        name: "wgpu",
        feature: "wgpu",
        compiled: cfg!(feature = "wgpu"),
        description: "WebGPU API over Vulkan, Metal or DirectX (AMD, Intel, Apple, NVIDIA)",
    },
    BackendInfo {
        name: "vulkan",
        feature: "vulkan",
        compiled: cfg!(feature = "vulkan"),
        description: "wgpu pinned to Vulkan with SPIR-V kernels",
    },
    BackendInfo {
        name: "metal",
        feature: "metal",
        compiled: cfg!(feature = "metal"),
        description: "wgpu pinned to Metal with native MSL kernels (Apple)",
    },
    BackendInfo {
        name: "cuda",
        feature: "cuda",
        compiled: cfg!(feature = "cuda"),
        description: "NVIDIA GPUs through CUDA",
    },
    BackendInfo {
        name: "rocm",
        feature: "rocm",
        compiled: cfg!(feature = "rocm"),
        description: "AMD GPUs through ROCm/HIP",
    },
    BackendInfo {
        name: "tch",
        feature: "tch",
        compiled: cfg!(feature = "tch"),
        description: "libtorch (CPU or CUDA), deprecated by burn",
    },
];

/// The backends compiled into this build.
pub fn compiled_backends() -> impl Iterator<Item = &'static BackendInfo> {
    BACKENDS.iter().filter(|b| b.compiled)
}

/// A device request, as written after `--device`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum DeviceSpec {
    /// The best CPU backend compiled in (flex, then ndarray, then the CubeCL CPU JIT, then libtorch).
    #[default]
    Cpu,
    /// burn's flex CPU backend.
    Flex,
    /// burn's ndarray CPU backend.
    NdArray,
    /// CubeCL's LLVM CPU JIT (burn's `cpu` backend).
    CubeclCpu,
    /// wgpu on the default adapter (`None`) or the n-th discrete GPU.
    Wgpu(Option<usize>),
    /// wgpu pinned to Vulkan.
    Vulkan(Option<usize>),
    /// wgpu pinned to Metal.
    Metal,
    /// CUDA device index.
    Cuda(usize),
    /// ROCm device index.
    Rocm(usize),
    /// libtorch on the CPU.
    TchCpu,
    /// libtorch on a CUDA device.
    TchCuda(usize),
}

impl FromStr for DeviceSpec {
    type Err = BackendError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let lower = text.trim().to_ascii_lowercase();
        let (name, index) = match lower.split_once(':') {
            Some((name, index)) => {
                let index = index
                    .parse::<usize>()
                    .map_err(|_| BackendError::Unknown(text.to_string()))?;
                (name, Some(index))
            }
            None => (lower.as_str(), None),
        };
        let no_index = |spec: DeviceSpec| match index {
            None => Ok(spec),
            Some(_) => Err(BackendError::Unknown(text.to_string())),
        };
        match name {
            "cpu" => no_index(Self::Cpu),
            "flex" => no_index(Self::Flex),
            "ndarray" => no_index(Self::NdArray),
            "cubecl-cpu" => no_index(Self::CubeclCpu),
            "wgpu" => Ok(Self::Wgpu(index)),
            "vulkan" => Ok(Self::Vulkan(index)),
            "metal" => no_index(Self::Metal),
            "cuda" => Ok(Self::Cuda(index.unwrap_or(0))),
            "rocm" | "hip" => Ok(Self::Rocm(index.unwrap_or(0))),
            "tch" | "libtorch" => no_index(Self::TchCpu),
            "tch-cuda" | "libtorch-cuda" => Ok(Self::TchCuda(index.unwrap_or(0))),
            _ => Err(BackendError::Unknown(text.to_string())),
        }
    }
}

impl fmt::Display for DeviceSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Cpu => write!(f, "cpu"),
            Self::Flex => write!(f, "flex"),
            Self::NdArray => write!(f, "ndarray"),
            Self::CubeclCpu => write!(f, "cubecl-cpu"),
            Self::Wgpu(None) => write!(f, "wgpu"),
            Self::Wgpu(Some(i)) => write!(f, "wgpu:{i}"),
            Self::Vulkan(None) => write!(f, "vulkan"),
            Self::Vulkan(Some(i)) => write!(f, "vulkan:{i}"),
            Self::Metal => write!(f, "metal"),
            Self::Cuda(i) => write!(f, "cuda:{i}"),
            Self::Rocm(i) => write!(f, "rocm:{i}"),
            Self::TchCpu => write!(f, "tch"),
            Self::TchCuda(i) => write!(f, "tch-cuda:{i}"),
        }
    }
}

impl DeviceSpec {
    /// The cargo feature this device needs.
    pub fn feature(&self) -> &'static str {
        match self {
            Self::Cpu | Self::Flex => "flex",
            Self::NdArray => "ndarray",
            Self::CubeclCpu => "cpu",
            Self::Wgpu(_) => "wgpu",
            Self::Vulkan(_) => "vulkan",
            Self::Metal => "metal",
            Self::Cuda(_) => "cuda",
            Self::Rocm(_) => "rocm",
            Self::TchCpu | Self::TchCuda(_) => "tch",
        }
    }

    /// Resolves `cpu` to the CPU backend this build prefers; other specs are returned unchanged.
    pub fn resolve(&self) -> Self {
        if *self != Self::Cpu {
            return self.clone();
        }
        if cfg!(feature = "flex") {
            Self::Flex
        } else if cfg!(feature = "ndarray") {
            Self::NdArray
        } else if cfg!(feature = "cpu") {
            Self::CubeclCpu
        } else if cfg!(feature = "tch") {
            Self::TchCpu
        } else {
            Self::Flex // reported as not compiled below
        }
    }

    /// Opens the device (without autodiff; call `.autodiff()` for training).
    pub fn device(&self) -> Result<Device, BackendError> {
        let resolved = self.resolve();
        open(&resolved).ok_or_else(|| BackendError::NotCompiled {
            device: self.to_string(),
            feature: resolved.feature(),
            compiled: {
                let names: Vec<_> = compiled_backends().map(|b| b.name).collect();
                if names.is_empty() {
                    "none".to_string()
                } else {
                    names.join(", ")
                }
            },
        })
    }
}

#[allow(unused_variables, unreachable_code)]
fn open(spec: &DeviceSpec) -> Option<Device> {
    match spec {
        DeviceSpec::Cpu => None,
        DeviceSpec::Flex => {
            #[cfg(feature = "flex")]
            return Some(Device::flex());
            None
        }
        DeviceSpec::NdArray => {
            #[cfg(feature = "ndarray")]
            return Some(Device::ndarray());
            None
        }
        DeviceSpec::CubeclCpu => {
            #[cfg(feature = "cpu")]
            return Some(Device::cpu());
            None
        }
        DeviceSpec::Wgpu(index) => {
            #[cfg(feature = "wgpu")]
            return Some(Device::wgpu(device_kind(*index)));
            None
        }
        DeviceSpec::Vulkan(index) => {
            #[cfg(feature = "vulkan")]
            return Some(Device::vulkan(device_kind(*index)));
            None
        }
        DeviceSpec::Metal => {
            #[cfg(feature = "metal")]
            return Some(Device::metal(burn::tensor::DeviceKind::DefaultDevice));
            None
        }
        DeviceSpec::Cuda(index) => {
            #[cfg(feature = "cuda")]
            return Some(Device::cuda(*index));
            None
        }
        DeviceSpec::Rocm(index) => {
            #[cfg(feature = "rocm")]
            return Some(Device::rocm(*index));
            None
        }
        DeviceSpec::TchCpu => {
            #[cfg(feature = "tch")]
            return Some(Device::libtorch());
            None
        }
        DeviceSpec::TchCuda(index) => {
            #[cfg(feature = "tch")]
            return Some(Device::libtorch_cuda(*index));
            None
        }
    }
}

#[cfg(any(feature = "wgpu", feature = "vulkan"))]
fn device_kind(index: Option<usize>) -> burn::tensor::DeviceKind {
    match index {
        None => burn::tensor::DeviceKind::DefaultDevice,
        Some(i) => burn::tensor::DeviceKind::DiscreteGpu(i),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_every_documented_form() {
        let cases = [
            ("cpu", DeviceSpec::Cpu),
            ("CPU", DeviceSpec::Cpu),
            ("flex", DeviceSpec::Flex),
            ("ndarray", DeviceSpec::NdArray),
            ("cubecl-cpu", DeviceSpec::CubeclCpu),
            ("wgpu", DeviceSpec::Wgpu(None)),
            ("wgpu:1", DeviceSpec::Wgpu(Some(1))),
            ("vulkan", DeviceSpec::Vulkan(None)),
            ("metal", DeviceSpec::Metal),
            ("cuda", DeviceSpec::Cuda(0)),
            ("cuda:3", DeviceSpec::Cuda(3)),
            ("rocm:1", DeviceSpec::Rocm(1)),
            ("tch", DeviceSpec::TchCpu),
            ("tch-cuda:2", DeviceSpec::TchCuda(2)),
        ];
        for (text, expected) in cases {
            let parsed: DeviceSpec = text.parse().unwrap();
            assert_eq!(parsed, expected, "{text}");
            // Display gives back something that parses to the same spec.
            assert_eq!(parsed.to_string().parse::<DeviceSpec>().unwrap(), expected);
        }
    }

    #[test]
    fn rejects_unknown_and_malformed_devices() {
        for text in ["gpu", "cuda:x", "flex:1", "", "metal:0"] {
            let err = text.parse::<DeviceSpec>().unwrap_err();
            assert!(matches!(err, BackendError::Unknown(_)), "{text}: {err}");
        }
    }

    #[test]
    fn missing_backend_names_the_feature() {
        let missing = BACKENDS.iter().find(|b| !b.compiled);
        let Some(missing) = missing else { return }; // every backend compiled in
        let spec: DeviceSpec = match missing.name {
            "cubecl-cpu" => DeviceSpec::CubeclCpu,
            other => other.parse().unwrap(),
        };
        let err = spec.device().unwrap_err();
        let message = err.to_string();
        assert!(message.contains(&format!("--features {}", missing.feature)), "{message}");
    }

    #[cfg(feature = "flex")]
    #[test]
    fn cpu_opens_flex_by_default() {
        assert_eq!(DeviceSpec::Cpu.resolve(), DeviceSpec::Flex);
        DeviceSpec::Cpu.device().unwrap();
    }
}
