//! The crate's only threads: scoped workers over blocks of rows, joined before returning.
//!
//! Training splits its work (items for the co-occurrence pass, users or items for an ALS
//! half-step) into blocks handed out dynamically, so a block of heavy items does not leave the
//! other core idle. No thread outlives the call that started it, and no pool is kept: a trained
//! snapshot is plain data.

use std::ops::Range;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

/// The number of worker threads: the machine's parallelism, or `requested` when non-zero.
pub(crate) fn worker_count(requested: usize) -> usize {
    if requested > 0 {
        return requested;
    }
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// Runs `work` over `0..n` in blocks of `block` rows on `threads` threads, each with its own
/// scratch state from `scratch`, and returns the blocks' results in row order.
pub(crate) fn map_blocks<S, T, I, W>(n: usize, block: usize, threads: usize, scratch: I, work: W) -> Vec<T>
where
    T: Send,
    I: Fn() -> S + Sync,
    W: Fn(Range<usize>, &mut S) -> T + Sync,
{
    let block = block.max(1);
    let n_blocks = n.div_ceil(block);
    let next = AtomicUsize::new(0);
    let run = || {
        let mut state = scratch();
        let mut done = Vec::new();
        loop {
            let block_idx = next.fetch_add(1, Ordering::Relaxed);
            if block_idx >= n_blocks {
                break;
            }
            let start = block_idx * block;
            done.push((block_idx, work(start..(start + block).min(n), &mut state)));
        }
        done
    };
    let threads = threads.clamp(1, n_blocks.max(1));
    let mut results: Vec<(usize, T)> = if threads == 1 {
        run()
    } else {
        std::thread::scope(|scope| {
            let handles: Vec<_> = (0..threads).map(|_| scope.spawn(run)).collect();
            handles
                .into_iter()
                .flat_map(|h| h.join().unwrap_or_else(|panic| std::panic::resume_unwind(panic)))
                .collect()
        })
    };
    results.sort_unstable_by_key(|(block_idx, _)| *block_idx);
    results.into_iter().map(|(_, result)| result).collect()
}

/// Calls `work(first_row, rows, scratch)` for every block of `rows_per_block` rows of a row-major
/// matrix `data` whose rows are `row_len` long, on `threads` threads. Blocks are disjoint, so
/// each worker writes its rows without locks; the mutex only hands blocks out.
pub(crate) fn for_each_row_block<S, I, W>(
    data: &mut [f32],
    row_len: usize,
    rows_per_block: usize,
    threads: usize,
    scratch: I,
    work: W,
) where
    I: Fn() -> S + Sync,
    W: Fn(usize, &mut [f32], &mut S) + Sync,
{
    let row_len = row_len.max(1);
    let rows_per_block = rows_per_block.max(1);
    let blocks = Mutex::new(data.chunks_mut(row_len * rows_per_block).enumerate());
    let run = || {
        let mut state = scratch();
        loop {
            let next = blocks.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).next();
            let Some((block_idx, rows)) = next else { break };
            work(block_idx * rows_per_block, rows, &mut state);
        }
    };
    if threads <= 1 {
        run();
    } else {
        std::thread::scope(|scope| {
            for _ in 0..threads {
                scope.spawn(run);
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocks_come_back_in_row_order_whatever_thread_ran_them() {
        let sums = map_blocks(1_000, 7, 4, || (), |rows, _| rows.sum::<usize>());
        assert_eq!(sums.len(), 143);
        assert_eq!(sums.iter().sum::<usize>(), (0..1_000).sum::<usize>());
        assert_eq!(sums[0], (0..7).sum::<usize>());
    }

    #[test]
    fn every_row_block_is_written_once() {
        let mut data = vec![0.0_f32; 10 * 3];
        for_each_row_block(
            &mut data,
            3,
            4,
            2,
            || (),
            |first_row, rows, _| {
                for (offset, row) in rows.chunks_mut(3).enumerate() {
                    row.fill((first_row + offset) as f32);
                }
            },
        );
        assert_eq!(data[3 * 9], 9.0);
        assert_eq!(data[3 * 4 + 2], 4.0);
    }
}
