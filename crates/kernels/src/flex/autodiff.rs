//! The fused kernels under burn's autodiff on flex (training), each recorded in the graph as
//! one operation with a backward pass of our own:
//!
//! - attention: the forward kernel of [`super::attention`], whose backward pass is
//!   [`super::attention_backward`], in place of the dozen operations (and `[batch, heads, seq,
//!   seq]` intermediates) burn's decomposed attention records;
//! - linear layers with their bias and activation ([`super::linear`]).
//!
//! Only `Autodiff<Flex>` without gradient checkpointing takes it (a checkpointing device's
//! tensors do not convert); anywhere else the caller takes burn's op.

use std::sync::Arc;

use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::NoCheckpointing;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, NodeGuard, Ops, OpsKind};
use burn::backend::tensor::FloatTensor;
use burn::backend::{Autodiff, Flex};
use burn::tensor::{Bool, Bytes, DType, Shape, Tensor};
use burn_flex::{FlexTensor, Layout};

use super::attention::{self, Problem};
use super::{attention_backward, linear};
use crate::Epilogue;

/// An `f32` tensor of an autodiff flex device, as burn-autodiff's primitive.
fn tracked_f32<const D: usize>(tensor: &Tensor<D>) -> Option<FloatTensor<Autodiff<Flex>>> {
    if tensor.dtype() != DType::F32 {
        return None;
    }
    tensor.clone().try_into_primitive::<Autodiff<Flex>>().ok()
}

fn contiguous(values: Vec<f32>, shape: Shape) -> FlexTensor {
    FlexTensor::new(
        Bytes::from_elems(values),
        Layout::contiguous(shape),
        DType::F32,
    )
}

/// `output`, recorded in the graph as `op` over the `parents` (with `state` for its backward
/// pass), or as an untracked step when no parent requires a gradient.
fn record<Op, State, const N: usize, const D: usize>(
    op: Op,
    parents: [NodeGuard; N],
    state: State,
    output: FlexTensor,
) -> Tensor<D>
where
    Op: Backward<Flex, N, State = State>,
    State: Clone + Send + std::fmt::Debug + 'static,
{
    let output = match op
        .prepare::<NoCheckpointing>(parents)
        .compute_bound()
        .stateful()
    {
        OpsKind::Tracked(prep) => prep.finish(state, output),
        OpsKind::UnTracked(prep) => prep.finish(output),
    };
    Tensor::from_primitive::<Autodiff<Flex>>(output)
}

/// [`super::self_attention`] for tensors of an autodiff flex device: the fused forward kernel
/// and a backward pass of our own. Same shapes and meaning; `None` when the inputs are not
/// `f32` tensors of `Autodiff<Flex>` without checkpointing.
#[allow(clippy::too_many_arguments)]
pub(crate) fn tracked_self_attention(
    query: &Tensor<3>,
    key: &Tensor<3>,
    value: &Tensor<3>,
    heads: usize,
    scale: f32,
    key_padding: Option<&Tensor<2, Bool>>,
    relative_bias: Option<&Tensor<2>>,
) -> Option<Tensor<3>> {
    let (q, k, v) = (tracked_f32(query)?, tracked_f32(key)?, tracked_f32(value)?);
    let bias = match relative_bias {
        Some(bias) => Some(tracked_f32(bias)?),
        None => None,
    };
    let problem = Problem::new(
        q.primitive(),
        k.primitive(),
        v.primitive(),
        heads,
        scale,
        key_padding,
        bias.as_ref().map(|b| b.primitive()),
    )?;
    let context = attention::forward(&problem, q.primitive(), k.primitive(), v.primitive(), false)?;
    let context = contiguous(
        context,
        Shape::new([problem.batch, problem.q_len, problem.width]),
    );
    let state = State {
        problem: Arc::new(problem),
        query: q.primitive().clone(),
        key: k.primitive().clone(),
        value: v.primitive().clone(),
    };
    Some(match bias {
        None => record(
            FusedAttention,
            [q.node(), k.node(), v.node()],
            state,
            context,
        ),
        Some(b) => record(
            FusedAttention,
            [q.node(), k.node(), v.node(), b.node()],
            state,
            context,
        ),
    })
}

/// The recorded operation: parents query, key, value and, when given, the relative bias.
#[derive(Debug)]
struct FusedAttention;

/// What the backward pass needs: the problem and the forward pass's inputs (the
/// probabilities are recomputed, not stored).
#[derive(Debug, Clone)]
struct State {
    problem: Arc<Problem>,
    query: FlexTensor,
    key: FlexTensor,
    value: FlexTensor,
}

impl<const N: usize> Backward<Flex, N> for FusedAttention {
    type State = State;

    fn backward(self, ops: Ops<State, N>, grads: &mut Gradients, _: &mut Checkpointer) {
        let State {
            problem,
            query,
            key,
            value,
        } = ops.state;
        let grad = grads.consume::<Flex>(&ops.node);
        let want_bias = ops.parents.get(3).is_some_and(Option::is_some);
        let gradients =
            attention_backward::backward(&problem, &query, &key, &value, &grad, want_bias)
                .or_else(|| {
                    // A layout the views do not read (negative or broadcast strides): contiguous.
                    attention_backward::backward(
                        &problem,
                        &query.to_contiguous(),
                        &key.to_contiguous(),
                        &value.to_contiguous(),
                        &grad.to_contiguous(),
                        want_bias,
                    )
                })
                .expect("contiguous f32 tensors have views");
        let (batch, q_len, k_len, width) =
            (problem.batch, problem.q_len, problem.k_len, problem.width);
        let mut outputs = [
            Some(contiguous(
                gradients.query,
                Shape::new([batch, q_len, width]),
            )),
            Some(contiguous(gradients.key, Shape::new([batch, k_len, width]))),
            Some(contiguous(
                gradients.value,
                Shape::new([batch, k_len, width]),
            )),
            gradients
                .bias
                .map(|bias| contiguous(bias, Shape::new([problem.heads, problem.bias_width()]))),
        ];
        for (parent, gradient) in ops.parents.iter().zip(outputs.iter_mut()) {
            if let (Some(parent), Some(gradient)) = (parent, gradient.take()) {
                grads.register::<Flex>(parent.id, gradient);
            }
        }
    }
}

/// [`super::linear`] for tensors of an autodiff flex device: the product, bias and activation
/// recorded as one operation, whose backward pass is [`linear::backward`] (threaded products,
/// the activation's derivative recorded in the forward pass), in place of burn's product,
/// broadcast add and activation, each with its own backward. `None` when the inputs are not
/// `f32` tensors of `Autodiff<Flex>` without checkpointing.
///
/// # Shapes
/// - x: `[rows, d_in]`, weight: `[d_in, d_out]`, bias: `[d_out]` -> `[rows, d_out]`
pub(crate) fn tracked_linear(
    x: &Tensor<2>,
    weight: &Tensor<2>,
    bias: Option<&Tensor<1>>,
    epilogue: Epilogue,
) -> Option<Tensor<2>> {
    let (x, weight) = (tracked_f32(x)?, tracked_f32(weight)?);
    let bias = match bias {
        Some(bias) => Some(tracked_f32(bias)?),
        None => None,
    };
    let [rows, d_out] = linear::shape_of(
        x.primitive(),
        weight.primitive(),
        bias.as_ref().map(|b| b.primitive()),
    )?;
    let bias_values = bias.as_ref().map(|b| linear::vector(b.primitive()));
    let (output, slopes) = linear::forward(
        x.primitive(),
        weight.primitive(),
        bias_values.as_deref(),
        epilogue,
        false,
        true,
    )?;
    let output = contiguous(output, Shape::new([rows, d_out]));
    let state = LinearState {
        x: x.primitive().clone(),
        weight: weight.primitive().clone(),
        slopes: slopes.map(Arc::new),
    };
    Some(match bias {
        None => record(FusedLinear, [x.node(), weight.node()], state, output),
        Some(b) => record(
            FusedLinear,
            [x.node(), weight.node(), b.node()],
            state,
            output,
        ),
    })
}

/// The recorded operation: parents x, weight and, when given, the bias.
#[derive(Debug)]
struct FusedLinear;

/// What the backward pass needs: the inputs of the product and the activation's derivative.
#[derive(Debug, Clone)]
struct LinearState {
    x: FlexTensor,
    weight: FlexTensor,
    /// `[rows, d_out]`; `None` without an activation.
    slopes: Option<Arc<Vec<f32>>>,
}

impl<const N: usize> Backward<Flex, N> for FusedLinear {
    type State = LinearState;

    fn backward(self, ops: Ops<LinearState, N>, grads: &mut Gradients, _: &mut Checkpointer) {
        let LinearState { x, weight, slopes } = ops.state;
        let grad = grads.consume::<Flex>(&ops.node);
        let want = [0, 1, 2].map(|i| ops.parents.get(i).is_some_and(Option::is_some));
        let slopes = slopes.as_deref().map(Vec::as_slice);
        let gradients = linear::backward(&x, &weight, slopes, &grad, want)
            .or_else(|| {
                // A layout the views do not read (negative or broadcast strides): contiguous.
                linear::backward(
                    &x.to_contiguous(),
                    &weight.to_contiguous(),
                    slopes,
                    &grad,
                    want,
                )
            })
            .expect("contiguous f32 tensors have views");
        let [rows, d_in]: [usize; 2] = x.layout().shape().dims();
        let d_out = weight.layout().shape().dims::<2>()[1];
        let mut outputs = [
            gradients.x.map(|g| contiguous(g, Shape::new([rows, d_in]))),
            gradients
                .weight
                .map(|g| contiguous(g, Shape::new([d_in, d_out]))),
            gradients.bias.map(|g| contiguous(g, Shape::new([d_out]))),
        ];
        for (parent, gradient) in ops.parents.iter().zip(outputs.iter_mut()) {
            if let (Some(parent), Some(gradient)) = (parent, gradient.take()) {
                grads.register::<Flex>(parent.id, gradient);
            }
        }
    }
}
