//! What each epoch trains on, in which order, and the dropout stream it trains with, as a
//! function of the seed, the epoch and the position only. A run resumed from a checkpoint
//! therefore reads the same batches (pretraining: the same draws, crops and masks; heads: the
//! same shuffled order) with the same dropout as the uninterrupted run would have, whatever the
//! number of loader threads. For pretraining an epoch is one checkpoint interval.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use burn::data::dataloader::{DataLoader, DataLoaderIterator};
use burn::data::dataset::{Dataset, DatasetError};
use burn::tensor::Device;
use prottrans_data::{BatchedSequences, DataError, ResidueBatch};
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{RngExt, SeedableRng};

/// SplitMix64's finaliser: unrelated streams for neighbouring inputs.
fn mix(seed: u64, value: u64) -> u64 {
    let mut z = seed ^ value.wrapping_mul(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// What an [`EpochLoader`] shares with the dataset under it: the epoch being read, and the seed.
pub type EpochHandle = (Arc<AtomicUsize>, u64);

/// The pretraining batches of one checkpoint interval: `size` planned batches drawn with
/// replacement, the one at `position` of interval `epoch` (0-based) chosen and read as draw
/// `epoch * size + position`.
pub struct IntervalDraws {
    data: Arc<BatchedSequences>,
    size: usize,
    seed: u64,
    /// The interval being read, set by [`EpochLoader`] when it starts one.
    epoch: Arc<AtomicUsize>,
}

impl IntervalDraws {
    /// `size` draws per interval from `data`.
    pub fn new(data: BatchedSequences, size: usize, seed: u64) -> Self {
        Self {
            data: Arc::new(data),
            size,
            seed,
            epoch: Arc::new(AtomicUsize::new(0)),
        }
    }

    /// What an [`EpochLoader`] over these draws shares with them.
    pub fn handle(&self) -> EpochHandle {
        (self.epoch.clone(), self.seed)
    }
}

impl Dataset<ResidueBatch> for IntervalDraws {
    fn get(&self, position: usize) -> Result<ResidueBatch, DatasetError> {
        if position >= self.size || self.data.is_empty() {
            return Err(DatasetError::new(DataError::Batching(format!(
                "draw {position} of an interval of {} ({} planned batches)",
                self.size,
                self.data.len()
            ))));
        }
        let draw = (self.epoch.load(Ordering::SeqCst) * self.size + position) as u64;
        let index = StdRng::seed_from_u64(mix(self.seed, draw)).random_range(0..self.data.len());
        self.data.get_drawn(index, draw)
    }

    fn len(&self) -> usize {
        self.size
    }
}

/// Examples in an order shuffled per epoch from the seed and the epoch.
pub struct EpochShuffled<I> {
    items: Vec<I>,
    seed: u64,
    epoch: Arc<AtomicUsize>,
    /// The epoch the order was drawn for, and the order.
    order: Mutex<(usize, Vec<usize>)>,
}

impl<I> EpochShuffled<I> {
    /// `items`, shuffled per epoch from `seed`.
    pub fn new(items: Vec<I>, seed: u64) -> Self {
        Self {
            items,
            seed,
            epoch: Arc::new(AtomicUsize::new(0)),
            order: Mutex::new((usize::MAX, Vec::new())),
        }
    }

    /// What an [`EpochLoader`] over these examples shares with them.
    pub fn handle(&self) -> EpochHandle {
        (self.epoch.clone(), self.seed)
    }
}

impl<I: Clone + Send + Sync> Dataset<I> for EpochShuffled<I> {
    fn get(&self, position: usize) -> Result<I, DatasetError> {
        let epoch = self.epoch.load(Ordering::SeqCst);
        let mut order = self
            .order
            .lock()
            .map_err(|_| DatasetError::new(DataError::Batching("order lock poisoned".into())))?;
        if order.0 != epoch {
            let mut shuffled: Vec<usize> = (0..self.items.len()).collect();
            shuffled.shuffle(&mut StdRng::seed_from_u64(mix(self.seed, epoch as u64)));
            *order = (epoch, shuffled);
        }
        order
            .1
            .get(position)
            .map(|&i| self.items[i].clone())
            .ok_or_else(|| {
                DatasetError::new(DataError::Batching(format!(
                    "example {position} of {}",
                    self.items.len()
                )))
            })
    }

    fn len(&self) -> usize {
        self.items.len()
    }
}

/// The training loader of a run: each `iter` starts the next epoch, pointing the dataset under
/// it at that epoch and reseeding the training device (dropout, sampled replacements) from it.
pub struct EpochLoader<O> {
    inner: Arc<dyn DataLoader<O>>,
    epoch: Arc<AtomicUsize>,
    /// The epoch the next `iter` starts (0-based): the checkpoint resumed from.
    next: AtomicUsize,
    seed: u64,
    device: Option<Device>,
}

impl<O> EpochLoader<O> {
    /// Wraps `inner`, a loader over the dataset whose [`EpochHandle`] is `handle`; the first
    /// epoch is `first` (0-based: the number of epochs a resumed run has behind it).
    pub fn new(inner: Arc<dyn DataLoader<O>>, (epoch, seed): EpochHandle, first: usize) -> Self {
        Self {
            inner,
            epoch,
            next: AtomicUsize::new(first),
            seed,
            device: None,
        }
    }

    fn wrapping(&self, inner: Arc<dyn DataLoader<O>>, device: Option<Device>) -> Self {
        Self {
            inner,
            epoch: self.epoch.clone(),
            next: AtomicUsize::new(self.next.load(Ordering::SeqCst)),
            seed: self.seed,
            device,
        }
    }
}

impl<O: 'static> DataLoader<O> for EpochLoader<O> {
    fn iter<'a>(&'a self) -> Box<dyn DataLoaderIterator<O> + 'a> {
        let epoch = self.next.fetch_add(1, Ordering::SeqCst);
        self.epoch.store(epoch, Ordering::SeqCst);
        if let Some(device) = &self.device {
            device.seed(mix(self.seed ^ 0xD50_0D17, epoch as u64));
        }
        self.inner.iter()
    }

    fn num_items(&self) -> usize {
        self.inner.num_items()
    }

    fn to_device(&self, device: &Device) -> Arc<dyn DataLoader<O>> {
        Arc::new(self.wrapping(self.inner.to_device(device), Some(device.clone())))
    }

    fn slice(&self, start: usize, end: usize) -> Arc<dyn DataLoader<O>> {
        Arc::new(self.wrapping(self.inner.slice(start, end), self.device.clone()))
    }
}
