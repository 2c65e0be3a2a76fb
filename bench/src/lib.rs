//! hie-bench: criterion benchmarks live in `benches/`; this library holds the inputs they
//! share (corpus loading, synthetic messages) so every benchmark measures the same bytes.
