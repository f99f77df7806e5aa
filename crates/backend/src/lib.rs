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

use burn::tensor::{Device, FloatDType};
use serde::{Deserialize, Serialize};

/// Errors from parsing or opening a device.
#[derive(Debug, thiserror::Error)]
pub enum BackendError {
    /// The text is not a device this library knows.
    #[error(
        "unknown device '{0}'; expected one of: cpu, flex, ndarray, cubecl-cpu, wgpu[:N], vulkan[:N], metal, cuda[:N], rocm[:N], tch, tch-cuda[:N]"
    )]
    Unknown(String),
    /// The backend is compiled in but the device does not work on this machine (no GPU, no
    /// driver, missing CUDA or libtorch libraries).
    #[error("device '{device}' is compiled in but cannot run here: {reason}")]
    Unavailable {
        /// The device as the user wrote it.
        device: String,
        /// What went wrong, as the backend said it.
        reason: String,
    },
    /// The device cannot hold or compute in the requested float type.
    #[error(
        "{device} does not compute in {precision}; f16 and bf16 run on flex (CPU), CUDA and libtorch, \
         f16 on wgpu adapters with shader-f16 (no bf16 on wgpu), and ndarray is f32 only: \
         choose another device or --precision f32"
    )]
    UnsupportedPrecision {
        /// The device.
        device: String,
        /// What was asked for.
        precision: Precision,
    },
    /// The text names no precision.
    #[error("unknown precision '{0}' (expected f32, f16 or bf16)")]
    UnknownPrecision(String),
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

/// Floating-point precision of a model's computation: of the weights and forward pass at
/// inference (embeddings are always returned as f32), of the forward and backward passes in
/// training (where the master weights and the optimiser state stay f32).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Precision {
    /// 32-bit floats, the reference.
    #[default]
    F32,
    /// IEEE half precision (as the released ProtT5 half-precision encoder).
    F16,
    /// bfloat16: f32's range with 8 bits of mantissa.
    Bf16,
}

impl Precision {
    /// The burn float type.
    pub fn dtype(self) -> FloatDType {
        match self {
            Self::F32 => FloatDType::F32,
            Self::F16 => FloatDType::F16,
            Self::Bf16 => FloatDType::BF16,
        }
    }
}

impl fmt::Display for Precision {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::F32 => "f32",
            Self::F16 => "f16",
            Self::Bf16 => "bf16",
        })
    }
}

impl FromStr for Precision {
    type Err = BackendError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "f32" | "fp32" | "float32" => Ok(Self::F32),
            "f16" | "fp16" | "float16" | "half" => Ok(Self::F16),
            "bf16" | "bfloat16" => Ok(Self::Bf16),
            _ => Err(BackendError::UnknownPrecision(s.to_string())),
        }
    }
}

impl Precision {
    /// Checks that `device` holds and computes `self`'s float type; f32 is always supported.
    pub fn check(self, device: &Device) -> Result<(), BackendError> {
        let dtype = self.dtype();
        if dtype == FloatDType::F32 {
            return Ok(());
        }
        // Asking a CubeCL device opens it, which panics where its runtime is missing.
        let supported =
            std::panic::catch_unwind(|| device.supports_dtype(dtype)).map_err(|panic| {
                BackendError::Unavailable {
                    device: format!("{device:?}"),
                    reason: panic_message(panic.as_ref()),
                }
            })?;
        if supported {
            Ok(())
        } else {
            Err(BackendError::UnsupportedPrecision {
                device: format!("{device:?}"),
                precision: self,
            })
        }
    }
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

/// The index after `name:` of a device kind that takes one.
trait DeviceIndex: Copy {
    /// From the parsed index (`None` when the text has none).
    fn from_parsed(index: Option<usize>) -> Self;
    /// The index to write back, if any.
    fn shown(self) -> Option<usize>;
}

/// Optional: without one, the backend's default device.
impl DeviceIndex for Option<usize> {
    fn from_parsed(index: Option<usize>) -> Self {
        index
    }
    fn shown(self) -> Option<usize> {
        self
    }
}

/// Defaults to device 0.
impl DeviceIndex for usize {
    fn from_parsed(index: Option<usize>) -> Self {
        index.unwrap_or(0)
    }
    fn shown(self) -> Option<usize> {
        Some(self)
    }
}

/// From the table of devices, [`DeviceSpec`] (with parsing, display, its cargo feature and
/// opening), [`BACKENDS`] (the rows that describe a backend), the devices each backend lists,
/// and the order `cpu` prefers the CPU backends in (table order).
macro_rules! devices {
    ($(
        $(#[$doc:meta])*
        $variant:ident $(($index:ident: $kind:ty))? {
            names: [$name:literal $(, $alias:literal)*],
            feature: $feature:literal,
            cpu: $cpu:literal,
            open: $open:expr,
            $(backend: $description:literal, devices: $devices:expr,)?
        }
    )+) => {
        /// A device request, as written after `--device`.
        #[derive(Debug, Clone, PartialEq, Eq, Default)]
        pub enum DeviceSpec {
            /// The best CPU backend compiled in (flex, then ndarray, then the CubeCL CPU JIT,
            /// then libtorch).
            #[default]
            Cpu,
            $($(#[$doc])* $variant $(($kind))?,)+
        }

        /// Every backend prottrans knows, in the order `cpu` prefers the CPU ones.
        pub const BACKENDS: &[BackendInfo] = &[$($(BackendInfo {
            name: $name,
            feature: $feature,
            compiled: cfg!(feature = $feature),
            description: $description,
        },)?)+];

        impl FromStr for DeviceSpec {
            type Err = BackendError;

            fn from_str(text: &str) -> Result<Self, Self::Err> {
                let unknown = || BackendError::Unknown(text.to_string());
                let lower = text.trim().to_ascii_lowercase();
                let (name, index) = match lower.split_once(':') {
                    Some((name, index)) => {
                        (name, Some(index.parse::<usize>().map_err(|_| unknown())?))
                    }
                    None => (lower.as_str(), None),
                };
                if name == "cpu" {
                    return index.map_or(Ok(Self::Cpu), |_| Err(unknown()));
                }
                $(
                    if [$name $(, $alias)*].contains(&name) {
                        let takes_index = false $(|| { let _ = stringify!($kind); true })?;
                        if index.is_some() && !takes_index {
                            return Err(unknown());
                        }
                        return Ok(Self::$variant $((<$kind as DeviceIndex>::from_parsed(index)))?);
                    }
                )+
                Err(unknown())
            }
        }

        impl fmt::Display for DeviceSpec {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                match self {
                    Self::Cpu => f.write_str("cpu"),
                    $(Self::$variant $(($index))? => {
                        let shown: Option<usize> = None $(.or(DeviceIndex::shown(*$index)))?;
                        match shown {
                            None => f.write_str($name),
                            Some(i) => write!(f, "{}:{i}", $name),
                        }
                    })+
                }
            }
        }

        impl DeviceSpec {
            /// The cargo feature this device needs.
            pub fn feature(&self) -> &'static str {
                match self {
                    Self::Cpu => self.resolve().feature(),
                    $(Self::$variant $(($index))? => {
                        $(let _ = $index;)?
                        $feature
                    })+
                }
            }

            /// Resolves `cpu` to the CPU backend this build prefers; other specs are returned
            /// unchanged.
            pub fn resolve(&self) -> Self {
                if *self != Self::Cpu {
                    return self.clone();
                }
                $(
                    if $cpu && cfg!(feature = $feature) {
                        return Self::$variant $((<$kind as DeviceIndex>::from_parsed(None)))?;
                    }
                )+
                Self::Flex // reported as not compiled
            }
        }

        #[allow(unused_variables, unreachable_code)]
        fn open(spec: &DeviceSpec) -> Option<Device> {
            match spec {
                DeviceSpec::Cpu => None,
                $(DeviceSpec::$variant $(($index))? => {
                    $(let $index = *$index;)?
                    #[cfg(feature = $feature)]
                    return Some($open);
                    None
                })+
            }
        }

        /// The devices burn lists for the backend named `backend`.
        #[allow(unused_variables)]
        fn enumerate(backend: &str) -> Vec<Device> {
            #[allow(unused_imports)]
            use burn::tensor::DeviceType;
            $($(
                #[cfg(feature = $feature)]
                {
                    let _ = $description;
                    if backend == $name {
                        return $devices;
                    }
                }
            )?)+
            Vec::new()
        }
    };
}

devices! {
    /// burn's flex CPU backend.
    Flex {
        names: ["flex"],
        feature: "flex",
        cpu: true,
        open: Device::flex(),
        backend: "pure-Rust CPU backend (SIMD, rayon); the default",
        devices: Device::enumerate(DeviceType::Flex).to_vec(),
    }
    /// burn's ndarray CPU backend.
    NdArray {
        names: ["ndarray"],
        feature: "ndarray",
        cpu: true,
        open: Device::ndarray(),
        backend: "pure-Rust CPU backend on ndarray (deprecated by burn, f32 only)",
        devices: Device::enumerate(DeviceType::NdArray).to_vec(),
    }
    /// CubeCL's LLVM CPU JIT (burn's `cpu` backend).
    CubeclCpu {
        names: ["cubecl-cpu"],
        feature: "cpu",
        cpu: true,
        open: Device::cpu(),
        backend: "CubeCL CPU JIT through LLVM (needs the LLVM bundle at build time)",
        devices: Device::enumerate(DeviceType::Cpu).to_vec(),
    }
    /// wgpu on the default adapter (`None`) or the n-th discrete GPU.
    Wgpu(index: Option<usize>) {
        names: ["wgpu"],
        feature: "wgpu",
        cpu: false,
        open: Device::wgpu(device_kind(index)),
        backend: "WebGPU API over Vulkan, Metal or DirectX (AMD, Intel, Apple, NVIDIA)",
        devices: Device::enumerate(DeviceType::Wgpu).to_vec(),
    }
    /// wgpu pinned to Vulkan.
    Vulkan(index: Option<usize>) {
        names: ["vulkan"],
        feature: "vulkan",
        cpu: false,
        open: Device::vulkan(device_kind(index)),
        backend: "wgpu pinned to Vulkan with SPIR-V kernels",
        devices: Device::enumerate(DeviceType::Vulkan).to_vec(),
    }
    /// wgpu pinned to Metal.
    Metal {
        names: ["metal"],
        feature: "metal",
        cpu: false,
        open: Device::metal(burn::tensor::DeviceKind::DefaultDevice),
        backend: "wgpu pinned to Metal with native MSL kernels (Apple)",
        devices: Device::enumerate(DeviceType::Metal).to_vec(),
    }
    /// CUDA device index.
    Cuda(index: usize) {
        names: ["cuda"],
        feature: "cuda",
        cpu: false,
        open: Device::cuda(index),
        backend: "NVIDIA GPUs through CUDA",
        devices: Device::enumerate(DeviceType::Cuda).to_vec(),
    }
    /// ROCm device index.
    Rocm(index: usize) {
        names: ["rocm", "hip"],
        feature: "rocm",
        cpu: false,
        open: Device::rocm(index),
        backend: "AMD GPUs through ROCm/HIP",
        devices: Device::enumerate(DeviceType::Rocm).to_vec(),
    }
    /// libtorch on the CPU.
    TchCpu {
        names: ["tch", "libtorch"],
        feature: "tch",
        cpu: true,
        open: Device::libtorch(),
        backend: "libtorch (CPU or CUDA), deprecated by burn",
        // burn lists libtorch's CUDA devices only; its CPU device is always there.
        devices: std::iter::once(Device::libtorch())
            .chain(Device::enumerate(DeviceType::LibTorch).iter().cloned())
            .collect(),
    }
    /// libtorch on a CUDA device.
    TchCuda(index: usize) {
        names: ["tch-cuda", "libtorch-cuda"],
        feature: "tch",
        cpu: false,
        open: Device::libtorch_cuda(index),
    }
}

/// The backends compiled into this build.
pub fn compiled_backends() -> impl Iterator<Item = &'static BackendInfo> {
    BACKENDS.iter().filter(|b| b.compiled)
}

impl DeviceSpec {
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

impl DeviceSpec {
    /// Opens the device and runs a small computation on it, so that a backend that is compiled
    /// in but cannot run here (a CUDA build on a machine without a GPU) is an error now rather
    /// than a panic deep inside the first model call.
    ///
    /// A backend that fails this way may print its own panic message to standard error.
    pub fn probe(&self) -> Result<Device, BackendError> {
        let device = self.device()?;
        let check = device.clone();
        let outcome = std::panic::catch_unwind(move || {
            let x = burn::tensor::Tensor::<1>::from_floats([1.0, 2.0, 3.0], &check);
            (x.clone() * x).sum().into_scalar::<f32>()
        });
        let reason = match outcome {
            Ok(sum) if (sum - 14.0).abs() < 1e-4 => return Ok(device),
            Ok(sum) => format!("a test computation gave {sum} instead of 14"),
            Err(panic) => panic_message(panic.as_ref()),
        };
        Err(BackendError::Unavailable {
            device: self.to_string(),
            reason,
        })
    }
}

/// Whether burn 0.22 runs collective operations (the all-reduce of distributed data-parallel
/// training) on `device`: on CUDA devices only, through NCCL. Every other backend lacks them
/// (burn panics when asked), so callers refuse those devices up front.
pub fn supports_collectives(device: &Device) -> bool {
    #[cfg(feature = "cuda")]
    {
        use burn_dispatch::{DispatchDevice, devices::CubeDevice};
        if let DispatchDevice::Cube(CubeDevice::Cuda(_)) = device.clone().inner().as_dispatch() {
            return true;
        }
    }
    let _ = device;
    false
}

/// What a backend sees on this machine, for `prottrans devices`.
#[derive(Debug, Clone)]
pub struct BackendDevices {
    /// The backend.
    pub backend: BackendInfo,
    /// The devices burn enumerates for it (empty when it finds none; the CPU backends list one).
    pub devices: Vec<String>,
    /// Whether its default device ran a test computation, and why not.
    pub usable: Result<(), String>,
}

/// Lists, for every backend compiled in, the devices it sees and whether its default device
/// works here. Opens devices, so a GPU backend may take a moment.
pub fn survey() -> Vec<BackendDevices> {
    compiled_backends()
        .map(|backend| {
            let spec: DeviceSpec = backend
                .name
                .parse()
                .expect("backend names parse as devices");
            BackendDevices {
                backend: *backend,
                devices: std::panic::catch_unwind(|| enumerate(backend.name))
                    .unwrap_or_default()
                    .iter()
                    .map(|device| format!("{device:?}"))
                    .collect(),
                usable: spec.probe().map(|_| ()).map_err(|e| match e {
                    BackendError::Unavailable { reason, .. } => reason,
                    other => other.to_string(),
                }),
            }
        })
        .collect()
}

fn panic_message(panic: &(dyn std::any::Any + Send)) -> String {
    let text = panic
        .downcast_ref::<String>()
        .map(String::as_str)
        .or_else(|| panic.downcast_ref::<&str>().copied())
        .unwrap_or("the backend panicked");
    if text.contains("RecvError") {
        // CubeCL runtimes open devices on a worker thread; its panic message is printed above.
        return "the backend's device thread failed (its message is printed above)".to_string();
    }
    // Backends' messages can run over many lines (a driver's error chain); the first says what.
    text.lines().next().unwrap_or(text).to_string()
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
        assert!(
            message.contains(&format!("--features {}", missing.feature)),
            "{message}"
        );
    }

    #[cfg(feature = "flex")]
    #[test]
    fn flex_probes_and_computes_in_every_precision() {
        let device = DeviceSpec::Flex.probe().unwrap();
        for precision in [Precision::F32, Precision::F16, Precision::Bf16] {
            precision.check(&device).unwrap();
        }
        let survey = survey();
        let flex = survey.iter().find(|b| b.backend.name == "flex").unwrap();
        assert_eq!(flex.devices.len(), 1, "{flex:?}");
        assert!(flex.usable.is_ok(), "{flex:?}");
    }

    #[cfg(feature = "ndarray")]
    #[test]
    fn ndarray_refuses_half_precision_and_points_to_flex() {
        let device = DeviceSpec::NdArray.probe().unwrap();
        Precision::F32.check(&device).unwrap();
        let err = Precision::Bf16.check(&device).unwrap_err();
        assert!(
            err.to_string().contains("does not compute in bf16")
                && err.to_string().contains("flex"),
            "{err}"
        );
    }

    #[cfg(feature = "flex")]
    #[test]
    fn cpu_opens_flex_by_default() {
        assert_eq!(DeviceSpec::Cpu.resolve(), DeviceSpec::Flex);
        DeviceSpec::Cpu.device().unwrap();
    }

    #[test]
    fn cpu_devices_have_no_collectives() {
        let cpu = DeviceSpec::Cpu.device().unwrap();
        assert!(!supports_collectives(&cpu));
        assert!(!supports_collectives(&cpu.autodiff()));
    }
}
