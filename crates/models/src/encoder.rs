//! The seam between architectures and everything that consumes their hidden states
//! (embedding extraction, supervised heads): below every model, importing none.

use burn::tensor::{Int, Tensor};

/// A padded batch of framed token ids.
#[derive(Debug, Clone)]
pub struct EncoderInput {
    /// Token ids, `[batch, seq]`.
    pub input_ids: Tensor<2, Int>,
    /// 1 at real tokens (special tokens included), 0 at padding, `[batch, seq]`; `None` when
    /// no sequence of the batch is padded. Attention without a mask is markedly faster on some
    /// backends (flex: 23% on proteins of over 1000 residues), so leave it out when it is all
    /// ones.
    pub attention_mask: Option<Tensor<2, Int>>,
    /// Segment ids (BERT's token types), `[batch, seq]`; zeros when absent.
    pub token_type_ids: Option<Tensor<2, Int>>,
    /// Also return the output of the embeddings and of every layer.
    pub output_hidden_states: bool,
}

impl EncoderInput {
    /// Ids and mask, no token types, final hidden state only.
    pub fn new(input_ids: Tensor<2, Int>, attention_mask: Tensor<2, Int>) -> Self {
        Self {
            input_ids,
            attention_mask: Some(attention_mask),
            token_type_ids: None,
            output_hidden_states: false,
        }
    }

    /// Ids of sequences that all fill the batch's width (no padding), so no mask is needed.
    pub fn unpadded(input_ids: Tensor<2, Int>) -> Self {
        Self {
            input_ids,
            attention_mask: None,
            token_type_ids: None,
            output_hidden_states: false,
        }
    }

    /// Asks for the hidden states of every layer.
    pub fn with_hidden_states(mut self) -> Self {
        self.output_hidden_states = true;
        self
    }
}

/// What an encoder returns.
#[derive(Debug, Clone)]
pub struct EncoderOutput {
    /// Final hidden states, `[batch, seq, d_model]`.
    pub last_hidden_state: Tensor<3>,
    /// Embedding output then each layer's output, when asked for; empty otherwise.
    pub hidden_states: Vec<Tensor<3>>,
}

/// Any model that turns token ids into per-token hidden states.
pub trait ProteinEncoder {
    /// Width of the hidden states.
    fn hidden_size(&self) -> usize;

    /// Runs the encoder.
    fn encode(&self, input: EncoderInput) -> EncoderOutput;

    /// Whether the architecture carries a memory from one segment to the next (XLNet,
    /// Transformer-XL), so a protein longer than one segment can be read in pieces.
    fn has_segment_memory(&self) -> bool {
        false
    }

    /// Sets the encoder up the way its authors embed proteins and returns the segment length
    /// a protein read alone is split into (`None`: one pass).
    fn prepare_for_embedding(&mut self) -> Option<usize> {
        None
    }

    /// Reads unpadded sequences in consecutive segments of `segment_len` tokens, each after
    /// the memory of the previous ones; `None` for architectures without memory.
    ///
    /// # Shapes
    /// - input_ids: `[batch, seq]` -> `[batch, seq, d]`
    fn encode_in_segments(
        &self,
        input_ids: Tensor<2, Int>,
        segment_len: usize,
    ) -> Option<Tensor<3>> {
        let _ = (input_ids, segment_len);
        None
    }
}
