//! The kernels on burn's flex backend: reading its tensors in place and handing results back
//! without copies.

pub(crate) mod amx;
mod attention;
mod attention_backward;
mod autodiff;
mod linear;

pub(crate) use attention::self_attention;
pub(crate) use autodiff::{tracked_linear, tracked_self_attention};
pub(crate) use linear::linear;

use burn::backend::{Autodiff, Flex};
use burn::tensor::{Bool, Bytes, DType, Shape, Tensor};
use burn_flex::{FlexTensor, Layout};

/// The flex `f32` primitive behind `tensor`, or `None` when it lives elsewhere: another backend,
/// an autodiff graph (burn's op keeps the gradient there), or another dtype.
pub(crate) fn f32_primitive<const D: usize>(tensor: &Tensor<D>) -> Option<FlexTensor> {
    if tensor.dtype() != DType::F32 {
        return None;
    }
    let primitive = tensor.clone().try_into_primitive::<Flex>().ok()?;
    (primitive.dtype() == DType::F32).then_some(primitive)
}

/// The values of a flex bool tensor in row-major order (on an autodiff device too: bool
/// tensors are never tracked).
pub(crate) fn bool_values<const D: usize>(tensor: &Tensor<D, Bool>) -> Option<Vec<bool>> {
    let primitive = match tensor.clone().try_into_primitive::<Flex>() {
        Ok(primitive) => primitive,
        Err(_) => tensor.clone().try_into_primitive::<Autodiff<Flex>>().ok()?,
    };
    let contiguous = primitive.to_contiguous();
    let start = contiguous.layout().start_offset();
    let count = contiguous.layout().num_elements();
    let bytes = &contiguous.bytes()[start..start + count];
    Some(bytes.iter().map(|&b| b != 0).collect())
}

/// A row-major `f32` matrix view into flex storage: `rows x cols`, element `(r, c)` at
/// `offset + r * row_stride + c * col_stride`.
pub(crate) struct MatrixView<'a> {
    pub data: &'a [f32],
    pub offset: usize,
    pub row_stride: isize,
    pub col_stride: isize,
}

impl<'a> MatrixView<'a> {
    /// The last two dimensions of `tensor` as a matrix per leading index; `None` for layouts
    /// with a broadcast or negative stride (the caller makes those contiguous first).
    pub fn of(tensor: &'a FlexTensor) -> Option<(Self, Vec<isize>)> {
        let layout = tensor.layout();
        let strides = layout.strides();
        let rank = strides.len();
        if rank < 2 || strides.iter().any(|&s| s < 0) {
            return None;
        }
        let view = MatrixView {
            data: tensor.storage::<f32>(),
            offset: layout.start_offset(),
            row_stride: strides[rank - 2],
            col_stride: strides[rank - 1],
        };
        Some((view, strides[..rank - 2].to_vec()))
    }

    /// The same matrix starting `extra` elements further (a slice of its leading dimensions or
    /// columns).
    pub fn starting_at(&self, extra: usize) -> MatrixView<'a> {
        MatrixView {
            data: self.data,
            offset: self.offset + extra,
            row_stride: self.row_stride,
            col_stride: self.col_stride,
        }
    }

    /// The transposed matrix, on the same storage.
    pub fn transposed(&self) -> MatrixView<'a> {
        MatrixView {
            data: self.data,
            offset: self.offset,
            row_stride: self.col_stride,
            col_stride: self.row_stride,
        }
    }

    /// The matrix starting `extra` elements further, from element `(row, col)` on, as an
    /// operand of [`product`].
    pub fn at(&self, extra: usize, row: usize, col: usize) -> Operand {
        Operand {
            ptr: self.ptr(extra, row, col),
            row_stride: self.row_stride,
            col_stride: self.col_stride,
        }
    }

    /// Pointer to element `(row, col)` of the matrix starting `extra` elements further.
    pub fn ptr(&self, extra: usize, row: usize, col: usize) -> *const f32 {
        let index = self.offset as isize
            + extra as isize
            + row as isize * self.row_stride
            + col as isize * self.col_stride;
        debug_assert!(index >= 0 && (index as usize) < self.data.len().max(1));
        // SAFETY: callers stay inside the tensor's shape, whose elements the layout places inside
        // the storage.
        unsafe { self.data.as_ptr().offset(index) }
    }
}

/// A strided `f32` matrix operand of [`product`]: element `(r, c)` at
/// `ptr + r * row_stride + c * col_stride`.
#[derive(Clone, Copy)]
pub(crate) struct Operand {
    pub ptr: *const f32,
    pub row_stride: isize,
    pub col_stride: isize,
}

impl Operand {
    /// A row-major matrix of `columns` columns.
    pub fn row_major(ptr: *const f32, columns: usize) -> Self {
        Self {
            ptr,
            row_stride: columns as isize,
            col_stride: 1,
        }
    }

    /// The transposed matrix, on the same memory.
    pub fn t(self) -> Self {
        Self {
            ptr: self.ptr,
            row_stride: self.col_stride,
            col_stride: self.row_stride,
        }
    }
}

/// `dst <- beta * lhs * rhs`, or with `accumulate` `dst <- dst + beta * lhs * rhs`, for `lhs`
/// `m x k`, `rhs` `k x n` and `dst` an `m x n` row-major block with rows `dst_stride` apart
/// (`gemm`'s kernels: AVX-512, AVX2 or the baseline, picked at run time).
///
/// # Safety
/// The operands address `m x k` and `k x n` readable elements, `dst` `m x n` writable ones
/// that nothing else reads or writes meanwhile.
#[allow(clippy::too_many_arguments)]
pub(crate) unsafe fn product(
    [m, n, k]: [usize; 3],
    dst: *mut f32,
    dst_stride: usize,
    accumulate: bool,
    lhs: Operand,
    rhs: Operand,
    beta: f32,
    parallelism: gemm::Parallelism,
) {
    // SAFETY: forwarded from the caller.
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            dst,
            1,
            dst_stride as isize,
            accumulate,
            lhs.ptr,
            lhs.col_stride,
            lhs.row_stride,
            rhs.ptr,
            rhs.col_stride,
            rhs.row_stride,
            if accumulate { 1.0 } else { 0.0 },
            beta,
            false,
            false,
            false,
            parallelism,
        )
    }
}

/// A contiguous flex tensor holding `values`.
pub(crate) fn tensor_from_vec<const D: usize>(values: Vec<f32>, shape: [usize; D]) -> Tensor<D> {
    let primitive = FlexTensor::new(
        Bytes::from_elems(values),
        Layout::contiguous(Shape::new(shape)),
        DType::F32,
    );
    Tensor::from_primitive::<Flex>(primitive)
}

/// A raw pointer that may cross threads: each task writes a region no other task touches.
#[derive(Clone, Copy)]
pub(crate) struct SendPtr(pub *mut f32);
// SAFETY: see the type's documentation; every use writes disjoint elements.
unsafe impl Send for SendPtr {}
unsafe impl Sync for SendPtr {}

impl SendPtr {
    /// The pointer (a method, so closures capture the whole `Send` wrapper).
    pub fn get(self) -> *mut f32 {
        self.0
    }
}
