//! Criterion benchmarks of payload masking: the word-at-a-time
//! [`apply_mask`] against its byte-at-a-time twin [`mask_scalar`], and the
//! copy-and-mask [`extend_masked`] that builds outgoing frames against a
//! copy followed by [`apply_mask`].
//!
//! Sizes: 32 B (a chat message, below the fast loop's gain), 1 KiB (a JSON
//! update) and 64 KiB (a bulk frame). Throughput is in payload bytes, so
//! criterion prints GiB/s. Run with `cargo bench -p courier-ws --bench mask`.

use std::hint::black_box;
use std::time::Duration;

use courier_ws::mask::{apply_mask, extend_masked, mask_scalar};
use criterion::{BenchmarkId, Criterion, Throughput, criterion_main};

/// Payload sizes measured, with their labels.
const SIZES: [(usize, &str); 3] = [(32, "32B"), (1024, "1KiB"), (64 * 1024, "64KiB")];

/// An arbitrary key; every byte differs so no shortcut applies.
const KEY: [u8; 4] = [0x37, 0xfa, 0x21, 0x3d];

/// In-place masking, fast and scalar, at offset 1 (so the key rotation is
/// exercised; at offset 0 the figures are the same).
fn bench_in_place(c: &mut Criterion) {
    let mut group = c.benchmark_group("mask");
    for (size, label) in SIZES {
        let mut buf: Vec<u8> = (0..size).map(|i| i.to_le_bytes()[0]).collect();
        group.throughput(Throughput::Bytes(size as u64));
        group.bench_function(BenchmarkId::new("fast", label), |b| {
            b.iter(|| apply_mask(black_box(&mut buf), black_box(KEY), 1));
        });
        group.bench_function(BenchmarkId::new("scalar", label), |b| {
            b.iter(|| mask_scalar(black_box(&mut buf), black_box(KEY), 1));
        });
    }
    group.finish();
}

/// Appending a masked payload to a frame buffer: one pass
/// ([`extend_masked`]) against `extend_from_slice` then [`apply_mask`].
///
/// 1 MiB is added to show the one-pass loop, which [`extend_masked`] uses
/// from 512 KiB on.
fn bench_copy(c: &mut Criterion) {
    let mut group = c.benchmark_group("mask_copy");
    for (size, label) in SIZES.into_iter().chain([(1 << 20, "1MiB")]) {
        let data: Vec<u8> = (0..size).map(|i| i.to_le_bytes()[0]).collect();
        let mut out = Vec::with_capacity(size + 14);
        group.throughput(Throughput::Bytes(size as u64));
        group.bench_function(BenchmarkId::new("extend_masked", label), |b| {
            b.iter(|| {
                out.clear();
                extend_masked(&mut out, black_box(&data), black_box(KEY));
                black_box(&out);
            });
        });
        group.bench_function(BenchmarkId::new("copy_then_mask", label), |b| {
            b.iter(|| {
                out.clear();
                out.extend_from_slice(black_box(&data));
                apply_mask(&mut out, black_box(KEY), 0);
                black_box(&out);
            });
        });
    }
    group.finish();
}

/// Short runs: 14 benchmarks at about 3 s each.
fn config() -> Criterion {
    Criterion::default()
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2))
        .sample_size(50)
}

/// Runs every group with [`config`], overridden by the command line.
///
/// Written out rather than with `criterion_group!`, whose function has no
/// doc comment for the workspace's `missing_docs` lint.
fn benches() {
    let mut c = config().configure_from_args();
    bench_in_place(&mut c);
    bench_copy(&mut c);
}

criterion_main!(benches);
