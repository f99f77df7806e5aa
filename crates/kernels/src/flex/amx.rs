//! Matrix products on Intel AMX: operands rounded to bf16, products accumulated in f32
//! (`tdpbf16ps`), as `torch.set_float32_matmul_precision("medium")` does.
//!
//! One tile multiply takes a 16 x 32 bf16 block of the left operand and a 32 x 16 block of the
//! right one, packed as 16 rows of pairs ("VNNI" layout), into a 16 x 16 f32 accumulator. The
//! kernel keeps a 32 x 32 block of the output in four accumulator tiles and streams the two
//! operands through the other four, 32 values of `k` at a time. The left operand is rounded
//! to bf16 once per call into a row-major buffer whose `k` is padded to a multiple of 32; the
//! right operand (a weight) is packed once per call into tiles. Both pads are zeros, so they
//! add nothing to the sums. Each task of [`matmul`] sums its 4 x 8 blocks in a buffer of its
//! own, 256 values of `k` at a time, and copies them out at the end.
//!
//! The tile loads, not the multiplies, bound the speed: on the Xeon of the book's performance
//! page one core multiplies tiles at about 3 TFLOP/s from registers, 0.9 TFLOP/s when each
//! multiply's operands are loaded from L1, and this kernel reaches 0.4-0.75 TFLOP/s on two
//! cores for ProtBert's and ProtT5's linear layers, rounding and packing included (gemm's
//! AVX-512 f32 kernels: 0.25-0.3).
//!
//! Linux hands AMX's 8 KiB of tile registers to a process only on request
//! (`arch_prctl(ARCH_REQ_XCOMP_PERM)`); [`available`] asks once and is `false` on CPUs
//! without AMX-BF16, on other systems, or when the kernel refuses.

use std::cell::RefCell;
use std::sync::OnceLock;
use std::thread::LocalKey;

use rayon::prelude::*;

use super::MatrixView;

/// Rows of a tile, and of the output block each tile covers.
const TILE_ROWS: usize = 16;
/// bf16 values in a tile row (64 bytes): the `k` step of one tile multiply.
const TILE_K: usize = 32;
/// Output rows and columns computed per block (two tiles each way).
pub(crate) const BLOCK: usize = 2 * TILE_ROWS;
/// `u16`s of one packed right-operand tile.
const TILE_ELEMS: usize = TILE_ROWS * TILE_K;
/// Output blocks of 32 columns per task: a task's slice of the packed weight (`k x 256`
/// bf16, 512 KiB at `k = 1024`) stays in the core's L2 while its row blocks stream by.
const COLUMN_BLOCKS_PER_TASK: usize = 8;
/// Row blocks per task.
const ROW_BLOCKS_PER_TASK: usize = 4;
/// Tiles of `k` per pass over a task's blocks: 32 rows of the left operand (16 KiB at 8) stay
/// in L1 across the task's column blocks.
const K_TILES_PER_CHUNK: usize = 8;

/// Whether this process can run the AMX-BF16 kernel (checked once).
pub(crate) fn available() -> bool {
    static AVAILABLE: OnceLock<bool> = OnceLock::new();
    *AVAILABLE.get_or_init(|| cpu_has_amx_bf16() && request_tile_data())
}

#[cfg(target_arch = "x86_64")]
fn cpu_has_amx_bf16() -> bool {
    use std::arch::x86_64::{__cpuid, __cpuid_count};
    // Leaf 7 is read only when the CPU reports it.
    if __cpuid(0).eax < 7 {
        return false;
    }
    let edx = __cpuid_count(7, 0).edx;
    // EDX bit 22: AMX-BF16, bit 24: AMX-TILE.
    edx & (1 << 22) != 0 && edx & (1 << 24) != 0
}

#[cfg(not(target_arch = "x86_64"))]
fn cpu_has_amx_bf16() -> bool {
    false
}

#[cfg(all(target_arch = "x86_64", target_os = "linux"))]
fn request_tile_data() -> bool {
    const ARCH_REQ_XCOMP_PERM: libc::c_long = 0x1023;
    const XFEATURE_XTILEDATA: libc::c_long = 18;
    // SAFETY: a plain system call with integer arguments.
    unsafe {
        libc::syscall(
            libc::SYS_arch_prctl,
            ARCH_REQ_XCOMP_PERM,
            XFEATURE_XTILEDATA,
        ) == 0
    }
}

#[cfg(not(all(target_arch = "x86_64", target_os = "linux")))]
fn request_tile_data() -> bool {
    false
}

/// `f32` to bf16, rounding to nearest even; NaN stays NaN (plain rounding could carry a NaN's
/// mantissa into its sign).
#[inline(always)]
fn to_bf16(x: f32) -> u16 {
    let bits = x.to_bits();
    if bits & 0x7fff_ffff > 0x7f80_0000 {
        return 0x7fc0;
    }
    ((bits + 0x7fff + ((bits >> 16) & 1)) >> 16) as u16
}

/// `a @ b` into `output` (made `m x n`, row-major), with both operands rounded to bf16.
///
/// # Safety
/// [`available`] must be `true`, and the views must address `m x k` and `k x n` matrices inside
/// their storage.
pub(crate) unsafe fn matmul(
    a: &MatrixView,
    b: &MatrixView,
    m: usize,
    k: usize,
    n: usize,
    output: &mut Vec<f32>,
) {
    debug_assert!(available());
    with_scratch(&LEFT, |left| {
        with_scratch(&RIGHT, |right| {
            // SAFETY: forwarded from the caller.
            let (left_len, right_len) = unsafe {
                (
                    round_rows(a, m, k, true, left),
                    pack_columns(b, k, n, true, right),
                )
            };
            // SAFETY: forwarded from the caller.
            unsafe { multiply(&left[..left_len], &right[..right_len], m, k, n, output) }
        })
    })
}

/// [`matmul`] of the rounded and packed operands.
///
/// # Safety
/// As [`matmul`].
unsafe fn multiply(
    left: &[u16],
    right: &[u16],
    m: usize,
    k: usize,
    n: usize,
    output: &mut Vec<f32>,
) {
    let k_pad = padded(k);
    let k_tiles = k_pad / TILE_K;
    let (row_blocks, column_blocks) = (m.div_ceil(BLOCK), n.div_ceil(BLOCK));
    // Zeroed pages are mapped lazily: the copy below is their first writer.
    *output = vec![0.0; m * n];
    let out = super::SendPtr(output.as_mut_ptr());
    let row_groups = row_blocks.div_ceil(ROW_BLOCKS_PER_TASK);
    let column_groups = column_blocks.div_ceil(COLUMN_BLOCKS_PER_TASK);
    (0..row_groups * column_groups)
        .into_par_iter()
        .for_each(|task| {
            with_scratch(&SUMS, |sums| {
                // Column-major over tasks: neighbouring tasks share their slice of the weight.
                let (column_group, row_group) = (task / row_groups, task % row_groups);
                let rows = row_group * ROW_BLOCKS_PER_TASK
                    ..((row_group + 1) * ROW_BLOCKS_PER_TASK).min(row_blocks);
                let columns = column_group * COLUMN_BLOCKS_PER_TASK
                    ..((column_group + 1) * COLUMN_BLOCKS_PER_TASK).min(column_blocks);
                // The task's blocks, each 32 x 32 contiguous: rows of a block in memory far apart
                // (the output's 16 KiB rows) would share cache sets.
                sums.clear();
                sums.resize(rows.len() * columns.len() * BLOCK * BLOCK, 0.0);
                // SAFETY: AMX is available; every block lies inside both operands and `sums`, and
                // each task writes its own output blocks.
                unsafe {
                    let _tiles = Tiles::configure();
                    // `k` in chunks: a row block's chunk of the left operand stays in L1 while the
                    // task's column blocks stream by from L2.
                    for first in (0..k_tiles).step_by(K_TILES_PER_CHUNK) {
                        let steps = K_TILES_PER_CHUNK.min(k_tiles - first);
                        for (i, row_block) in rows.clone().enumerate() {
                            let left = left
                                .as_ptr()
                                .add(row_block * BLOCK * k_pad + first * TILE_K);
                            for (j, column_block) in columns.clone().enumerate() {
                                let tile_column = right
                                    .as_ptr()
                                    .add((column_block * 2 * k_tiles + first) * TILE_ELEMS);
                                let sum = (i * columns.len() + j) * BLOCK * BLOCK;
                                block(
                                    left,
                                    k_pad,
                                    [tile_column, tile_column.add(k_tiles * TILE_ELEMS)],
                                    steps,
                                    sums.as_mut_ptr().add(sum),
                                    BLOCK,
                                    first > 0,
                                );
                            }
                        }
                    }
                    let target = Target {
                        data: out.get(),
                        rows: m,
                        columns: n,
                        stride: n,
                    };
                    for (i, row_block) in rows.clone().enumerate() {
                        for (j, column_block) in columns.clone().enumerate() {
                            let sum = &sums[(i * columns.len() + j) * BLOCK * BLOCK..];
                            let at = (row_block * BLOCK, column_block * BLOCK);
                            copy_block(sum, &target, at);
                        }
                    }
                }
            })
        });
}

/// `k` padded to whole tiles.
pub(crate) fn padded(k: usize) -> usize {
    k.div_ceil(TILE_K) * TILE_K
}

/// Where [`product_block`] writes: a `rows x columns` f32 matrix, `stride` floats between rows.
pub(crate) struct Target {
    pub data: *mut f32,
    pub rows: usize,
    pub columns: usize,
    pub stride: usize,
}

/// The 32 x 32 block (`row_block`, `column_block`) of `left @ right`, for operands made by
/// [`round_rows`] (`k_pad` values per row) and [`pack_columns`], stored with its first element
/// at `(row, column)` of `target`. Blocks inside the target are stored straight into it,
/// blocks on its edge through a buffer.
///
/// # Safety
/// Tiles must be configured ([`Tiles::configure`]) on this thread; the block must lie inside
/// both operands, and the target's elements inside its allocation.
#[allow(clippy::too_many_arguments)]
pub(crate) unsafe fn product_block(
    left: &[u16],
    row_block: usize,
    k_pad: usize,
    right: &[u16],
    column_block: usize,
    target: &Target,
    (row, column): (usize, usize),
) {
    let k_tiles = k_pad / TILE_K;
    debug_assert!(left.len() >= (row_block + 1) * BLOCK * k_pad);
    debug_assert!(right.len() >= (column_block + 1) * 2 * k_tiles * TILE_ELEMS);
    // SAFETY: inside both operands (checked above in debug builds, by the caller's contract).
    let (left, right) = unsafe {
        let right = right.as_ptr().add(column_block * 2 * k_tiles * TILE_ELEMS);
        (
            left.as_ptr().add(row_block * BLOCK * k_pad),
            [right, right.add(k_tiles * TILE_ELEMS)],
        )
    };
    if row + BLOCK <= target.rows && column + BLOCK <= target.columns {
        // SAFETY: the whole block lies inside the target.
        unsafe {
            block(
                left,
                k_pad,
                right,
                k_tiles,
                target.data.add(row * target.stride + column),
                target.stride,
                false,
            )
        };
    } else {
        let mut spill = [0.0f32; BLOCK * BLOCK];
        // SAFETY: `spill` holds a block; the copy stays inside the target's shape.
        unsafe {
            block(
                left,
                k_pad,
                right,
                k_tiles,
                spill.as_mut_ptr(),
                BLOCK,
                false,
            );
            copy_block(&spill, target, (row, column));
        }
    }
}

/// The part inside `target` of a 32 x 32 block (rows of 32 in `block`) placed at
/// `(row, column)`.
///
/// # Safety
/// The target's elements lie inside its allocation, and no other thread writes them.
unsafe fn copy_block(block: &[f32], target: &Target, (row, column): (usize, usize)) {
    let width = BLOCK.min(target.columns - column);
    for r in 0..BLOCK.min(target.rows - row) {
        // SAFETY: row `r` of the block is in `block`; its part inside the target is in bounds.
        unsafe {
            let (from, to) = (
                block.as_ptr().add(r * BLOCK),
                target.data.add((row + r) * target.stride + column),
            );
            if width == BLOCK {
                // A constant length: vector moves, not a call to memcpy.
                std::ptr::copy_nonoverlapping(from, to, BLOCK);
            } else {
                std::ptr::copy_nonoverlapping(from, to, width);
            }
        }
    }
}

/// `values` rounded to bf16 into `out`.
///
/// # Safety
/// [`available`] (every CPU with AMX has AVX-512, which this is compiled for).
#[cfg_attr(target_arch = "x86_64", target_feature(enable = "avx512f,avx512bw"))]
pub(crate) unsafe fn round_into(values: &[f32], out: &mut [u16]) {
    for (o, &v) in out.iter_mut().zip(values) {
        *o = to_bf16(v);
    }
}

/// The left operand (`m x k`) as bf16 rows of `k` padded to whole tiles, rows padded to a
/// multiple of [`BLOCK`], pads zero, written into `rounded` (grown as needed; its values past
/// the returned length are stale). Rows in parallel when `parallel`.
///
/// # Safety
/// [`available`], and the view must address an `m x k` matrix inside its storage.
pub(crate) unsafe fn round_rows(
    a: &MatrixView,
    m: usize,
    k: usize,
    parallel: bool,
    rounded: &mut Vec<u16>,
) -> usize {
    let k_pad = padded(k);
    let len = m.div_ceil(BLOCK) * BLOCK * k_pad;
    if rounded.len() < len {
        rounded.resize(len, 0);
    }
    // SAFETY: AMX is available (the caller's contract); rows inside the view.
    let round = |(row, out): (usize, &mut [u16])| unsafe {
        round_row(a, row, k, out);
        out[k..].fill(0);
    };
    let (rows, padding) = rounded[..len].split_at_mut(m * k_pad);
    padding.fill(0);
    if parallel {
        rows.par_chunks_mut(k_pad).enumerate().for_each(round);
    } else {
        rows.chunks_mut(k_pad).enumerate().for_each(round);
    }
    len
}

/// Row `row` of `a` (`k` values) rounded into `out`.
///
/// # Safety
/// As [`round_into`]; the row lies inside the view.
#[cfg_attr(target_arch = "x86_64", target_feature(enable = "avx512f,avx512bw"))]
unsafe fn round_row(a: &MatrixView, row: usize, k: usize, out: &mut [u16]) {
    let start = a.ptr(0, row, 0);
    if a.col_stride == 1 {
        // SAFETY: row `row` of the view holds `k` consecutive values.
        unsafe { round_into(std::slice::from_raw_parts(start, k), out) };
    } else {
        for (col, o) in out[..k].iter_mut().enumerate() {
            // SAFETY: inside the view's shape.
            *o = to_bf16(unsafe { *start.offset(col as isize * a.col_stride) });
        }
    }
}

/// The right operand (`k x n`) as tiles: for each 16-column block, `k_pad / 32` tiles of 16
/// rows, row `r` holding columns `c` = 0..16 as the pairs `(b[2r][c], b[2r + 1][c])`. Columns
/// are padded to a multiple of [`BLOCK`] and `k` to whole tiles, with zeros. Written into
/// `packed` as [`round_rows`] writes; column blocks in parallel when `parallel`.
///
/// # Safety
/// [`available`], and the view must address a `k x n` matrix inside its storage.
pub(crate) unsafe fn pack_columns(
    b: &MatrixView,
    k: usize,
    n: usize,
    parallel: bool,
    packed: &mut Vec<u16>,
) -> usize {
    let k_tiles = padded(k) / TILE_K;
    let chunk = k_tiles * TILE_ELEMS;
    let len = n.div_ceil(BLOCK) * 2 * chunk;
    if packed.len() < len {
        packed.resize(len, 0);
    }
    // SAFETY: AMX is available (the caller's contract); columns inside the view.
    let pack = |(tile_column, tiles): (usize, &mut [u16])| unsafe {
        tiles.fill(0);
        pack_tile_column(b, tile_column, k, n, tiles)
    };
    if parallel {
        packed[..len]
            .par_chunks_mut(chunk)
            .enumerate()
            .for_each(pack);
    } else {
        packed[..len].chunks_mut(chunk).enumerate().for_each(pack);
    }
    len
}

/// Runs `f` with this thread's buffer behind `key`, or a fresh one if it is in use (a thread
/// waiting inside one product may run another's task). Kept between calls: fresh pages for
/// every product cost more in page faults than the rounding itself.
pub(crate) fn with_scratch<T: Default + 'static, R>(
    key: &'static LocalKey<RefCell<T>>,
    f: impl FnOnce(&mut T) -> R,
) -> R {
    key.with(|cell| match cell.try_borrow_mut() {
        Ok(mut buffer) => f(&mut buffer),
        Err(_) => f(&mut T::default()),
    })
}

thread_local! {
    static LEFT: RefCell<Vec<u16>> = const { RefCell::new(Vec::new()) };
    static RIGHT: RefCell<Vec<u16>> = const { RefCell::new(Vec::new()) };
    static SUMS: RefCell<Vec<f32>> = const { RefCell::new(Vec::new()) };
}

/// Tile column `tile_column` (16 columns from `16 x tile_column`) of the `k x n` right
/// operand, packed into `tiles` (see [`pack_columns`]).
///
/// # Safety
/// As [`round_into`]; the columns lie inside the view.
#[cfg_attr(target_arch = "x86_64", target_feature(enable = "avx512f,avx512bw"))]
unsafe fn pack_tile_column(
    b: &MatrixView,
    tile_column: usize,
    k: usize,
    n: usize,
    tiles: &mut [u16],
) {
    let first = tile_column * TILE_ROWS;
    let width = TILE_ROWS.min(n.saturating_sub(first));
    if width == 0 {
        return;
    }
    if b.col_stride == 1 && width == TILE_ROWS {
        // Rows of 16 consecutive values, interleaved in pairs (vectorised).
        for pair in 0..k / 2 {
            let (tile, within) = (2 * pair / TILE_K, (2 * pair % TILE_K) / 2);
            let out = &mut tiles[tile * TILE_ELEMS + within * TILE_K..][..TILE_K];
            // SAFETY: rows 2 * pair and 2 * pair + 1 hold 16 consecutive values from `first`.
            let (even, odd) = unsafe {
                (
                    std::slice::from_raw_parts(b.ptr(0, 2 * pair, first), TILE_ROWS),
                    std::slice::from_raw_parts(b.ptr(0, 2 * pair + 1, first), TILE_ROWS),
                )
            };
            for c in 0..TILE_ROWS {
                out[2 * c] = to_bf16(even[c]);
                out[2 * c + 1] = to_bf16(odd[c]);
            }
        }
        if k % 2 == 1 {
            pack_row(b, k - 1, first, width, tiles);
        }
    } else if b.row_stride == 1 {
        // A transposed row-major matrix (keys for `q . k^T`): each column's values are
        // consecutive, and a pair of rows is a pair of neighbours.
        for c in 0..width {
            // SAFETY: column `first + c` holds `k` consecutive values.
            let column = unsafe { std::slice::from_raw_parts(b.ptr(0, 0, first + c), k) };
            for (tile, values) in column.chunks(TILE_K).enumerate() {
                let out = &mut tiles[tile * TILE_ELEMS..][..TILE_ELEMS];
                for (i, &v) in values.iter().enumerate() {
                    out[(i / 2) * TILE_K + 2 * c + i % 2] = to_bf16(v);
                }
            }
        }
    } else {
        for row in 0..k {
            pack_row(b, row, first, width, tiles);
        }
    }
}

/// Row `row` of the `width` columns from `first` into its place in a tile column.
fn pack_row(b: &MatrixView, row: usize, first: usize, width: usize, tiles: &mut [u16]) {
    let (tile, within) = (row / TILE_K, row % TILE_K);
    let base = tile * TILE_ELEMS + (within / 2) * TILE_K + within % 2;
    let start = b.ptr(0, row, first);
    for c in 0..width {
        // SAFETY: inside the view's `k x n` shape (the caller's contract).
        let v = unsafe { *start.offset(c as isize * b.col_stride) };
        tiles[base + 2 * c] = to_bf16(v);
    }
}

/// The tile registers configured on this thread, released when dropped.
pub(crate) struct Tiles(());

impl Tiles {
    /// # Safety
    /// [`available`] must be `true`.
    pub(crate) unsafe fn configure() -> Self {
        // SAFETY: forwarded.
        unsafe { configure_tiles() };
        Tiles(())
    }
}

impl Drop for Tiles {
    fn drop(&mut self) {
        // SAFETY: only made by `configure`, after the availability check.
        unsafe { release_tiles() };
    }
}

/// Tile configuration (palette 1): eight tiles of 16 rows of 64 bytes.
#[repr(C, align(64))]
struct TileConfig {
    palette: u8,
    start_row: u8,
    reserved: [u8; 14],
    bytes_per_row: [u16; 16],
    rows: [u8; 16],
}

#[cfg(target_arch = "x86_64")]
unsafe fn configure_tiles() {
    let mut config = TileConfig {
        palette: 1,
        start_row: 0,
        reserved: [0; 14],
        bytes_per_row: [0; 16],
        rows: [0; 16],
    };
    for tile in 0..8 {
        config.bytes_per_row[tile] = 64;
        config.rows[tile] = TILE_ROWS as u8;
    }
    // SAFETY: the caller checked that AMX is available; the configuration is valid for palette 1.
    unsafe {
        std::arch::asm!("ldtilecfg [{0}]", in(reg) &config, options(nostack, readonly));
    }
}

#[cfg(target_arch = "x86_64")]
unsafe fn release_tiles() {
    // SAFETY: as configure_tiles.
    unsafe { std::arch::asm!("tilerelease", options(nostack, nomem)) };
}

/// One 32 x 32 output block over `steps` tiles of `k`: `left` points at 32 bf16 rows of
/// `k_pad` (at the first `k` of the range), `right` at the first tile of the range in each of
/// the block's two tile columns. The f32 block at `target` (`stride` floats between rows) is
/// overwritten, or added to when `accumulate`.
#[cfg(target_arch = "x86_64")]
unsafe fn block(
    left: *const u16,
    k_pad: usize,
    right: [*const u16; 2],
    steps: usize,
    target: *mut f32,
    stride: usize,
    accumulate: bool,
) {
    let left_stride = k_pad * 2;
    let lower = unsafe { left.add(TILE_ROWS * k_pad) };
    let bytes = stride * 4;
    // SAFETY: tiles are configured; every load stays inside the rounded and packed buffers
    // (the caller's range of 32 rows and of both tile columns), every load and store of the
    // accumulators inside the 32 x 32 block at `target`.
    unsafe {
        let c = [
            target,
            target.add(TILE_ROWS),
            target.add(TILE_ROWS * stride),
            target.add(TILE_ROWS * stride + TILE_ROWS),
        ];
        if accumulate {
            std::arch::asm!(
                "tileloadd tmm0, [{c0} + {s} * 1]",
                "tileloadd tmm1, [{c1} + {s} * 1]",
                "tileloadd tmm2, [{c2} + {s} * 1]",
                "tileloadd tmm3, [{c3} + {s} * 1]",
                c0 = in(reg) c[0],
                c1 = in(reg) c[1],
                c2 = in(reg) c[2],
                c3 = in(reg) c[3],
                s = in(reg) bytes,
                options(nostack, readonly)
            );
        } else {
            std::arch::asm!(
                "tilezero tmm0",
                "tilezero tmm1",
                "tilezero tmm2",
                "tilezero tmm3",
                options(nostack, nomem)
            );
        }
        for t in 0..steps {
            std::arch::asm!(
                "tileloadd tmm4, [{a0} + {sa} * 1]",
                "tileloadd tmm5, [{a1} + {sa} * 1]",
                "tileloadd tmm6, [{b0} + {sb} * 1]",
                "tileloadd tmm7, [{b1} + {sb} * 1]",
                "tdpbf16ps tmm0, tmm4, tmm6",
                "tdpbf16ps tmm1, tmm4, tmm7",
                "tdpbf16ps tmm2, tmm5, tmm6",
                "tdpbf16ps tmm3, tmm5, tmm7",
                a0 = in(reg) left.add(t * TILE_K),
                a1 = in(reg) lower.add(t * TILE_K),
                sa = in(reg) left_stride,
                b0 = in(reg) right[0].add(t * TILE_ELEMS),
                b1 = in(reg) right[1].add(t * TILE_ELEMS),
                sb = in(reg) 64usize,
                options(nostack, readonly)
            );
        }
        std::arch::asm!(
            "tilestored [{c0} + {s} * 1], tmm0",
            "tilestored [{c1} + {s} * 1], tmm1",
            "tilestored [{c2} + {s} * 1], tmm2",
            "tilestored [{c3} + {s} * 1], tmm3",
            c0 = in(reg) c[0],
            c1 = in(reg) c[1],
            c2 = in(reg) c[2],
            c3 = in(reg) c[3],
            s = in(reg) bytes,
            options(nostack)
        );
    }
}

#[cfg(not(target_arch = "x86_64"))]
unsafe fn configure_tiles() {}
#[cfg(not(target_arch = "x86_64"))]
unsafe fn release_tiles() {}
#[cfg(not(target_arch = "x86_64"))]
unsafe fn block(
    _: *const u16,
    _: usize,
    _: [*const u16; 2],
    _: usize,
    _: *mut f32,
    _: usize,
    _: bool,
) {
    unreachable!("AMX is never available off x86_64")
}
